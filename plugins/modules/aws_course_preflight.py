#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only AWS checks before a course creates anything."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_course_preflight
short_description: Check that an AWS account and region can run a course, before anything is created
description:
  - Read-only checks with boto3 (C(AWS_ENDPOINT_URL), C(AWS_PROFILE) and the other usual boto3 settings apply).
  - Checks, in order, credentials (STS GetCallerIdentity), that the course image exists (O(image_id), or an
    available AMI named like O(image_name) among O(image_owners)), that the instance type is offered in the region,
    that the profile's NVIDIA driver branch drives the type's GPU, each fallback type of O(instance_types)
    (offered, driven by the driver branch, and able to run every one of the profile's GPU programs), the
    O(placements) (each zone or subnet exists and offers at least one of the types), the running-instance or
    vCPU quota for the seats, and the Elastic IPs needed against the account limit.
  - Never fails on a failed check; returns every check with C(ok), C(detail) and C(fix), and the caller
    (playbooks/course_plan.yml) refuses the course after the whole report.
  - Without working credentials every check that needs AWS is returned with C(not_run=true), C(ok=false) and a
    C(detail) starting with C(not run:) that says why; the GPU and driver checks still run from the family table
    (roles/course_aws/vars/instance_types.yml) where it names the type's GPU.
  - Also says, as information and never as a failed check, which of the profile's GPU programs
    (C(gpu_programs)) can run on the type's GPU (C(gpu_fit)).
  - Instances and Elastic IPs already tagged C(Course=<course>) count as the course's own, so a re-run
    after a partial provisioning is not refused for them.
version_added: 0.1.0
author: I2PC scipion_cloud maintainers (@I2PC)
options:
  course:
    description: Course name (value of the C(Course) tag of its resources).
    type: str
    required: true
  region:
    description: AWS region of the course.
    type: str
    required: true
  instance_type:
    description: EC2 instance type of the seats.
    type: str
    required: true
  image_id:
    description: AMI id of the course image (C(aws.image_id)).
    type: str
    default: ""
  image_name:
    description: AMI name pattern of the course image (C(aws.image_name)); the newest available match is used.
    type: str
    default: ""
  image_owners:
    description: Accounts whose AMIs O(image_name) may match.
    type: list
    elements: str
    default: [self]
  instance_types:
    description:
      - The instance types the seats may use, in order of preference (C(course_spec.aws.instance_types)); the
        first is O(instance_type), the others are fallbacks tried when it has no capacity.
      - Empty means O(instance_type) only.
    type: list
    elements: str
    default: []
  placements:
    description:
      - Zones or subnets the seats may go to, in order of preference (C(course_spec.aws.placements)).
      - Entries with neither key set (the region picks) are not checked.
    type: list
    elements: dict
    default: []
    suboptions:
      subnet_id:
        description: A subnet of the region.
        type: str
        default: ""
      availability_zone:
        description: A zone of the region.
        type: str
        default: ""
  record:
    description:
      - The course's record (C(output/<course>/resources.json)). When it names machines in O(region) and the
        credentials work, C(seats) says where they are.
    type: path
  seats:
    description: Number of machines.
    type: int
    required: true
  elastic_ips:
    description: Whether each seat gets an Elastic IP.
    type: bool
    default: false
  spot:
    description: Whether the seats run as spot instances (selects the spot vCPU quota).
    type: bool
    default: false
  driver_branch:
    description: NVIDIA driver branch of the profile (C(nvidia_driver_branch)); empty skips the GPU check.
    type: str
  require_gpu:
    description: Refuse a type without an NVIDIA GPU (the profile's C(gpu)).
    type: bool
    default: false
  gpu_support:
    description:
      - The GPU support table of roles/course/vars/gpu_support.yml (C(branches), C(gpus), C(cuda_toolkits)) with
        AWS's instance families and proposed types of roles/course_aws/vars/instance_types.yml (C(families),
        C(instance_types)); the C(course_aws) role merges them.
    type: dict
    required: true
  compare_regions:
    description: Other regions to name when the type is not offered in C(region).
    type: list
    elements: str
    default: []
  gpu_programs:
    description:
      - The profile's GPU programs (C(gpu_programs) of the profile), for C(gpu_fit).
      - Architectures and PTX left out mean not known.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Program name.
        type: str
        required: true
      version:
        description: Program version.
        type: str
        required: true
      cuda:
        description: CUDA toolkit the program was built with, for example C(7.5).
        type: str
        required: true
      build:
        description: C(vendor) for a vendor's binary, C(source) for a build on the machine.
        type: str
        choices: [vendor, source]
        default: vendor
      architectures:
        description: Compute capabilities the program carries native code for (C(3.5), C(sm_52)).
        type: list
        elements: str
      ptx:
        description: Compute capabilities the program carries PTX for; an empty list means none.
        type: list
        elements: str
notes:
  - Supports check mode; it reads only.
  - The vCPU quota comes from Service Quotas where it answers; otherwise the legacy C(max-instances)
    account attribute is used and the detail says so.
"""

EXAMPLES = r"""
- name: Check the account before a course
  i2pc.scipion_cloud.aws_course_preflight:
    course: madrid
    region: eu-west-1
    instance_type: g4dn.xlarge
    instance_types: [g4dn.xlarge, g5.xlarge]
    placements:
      - {availability_zone: eu-west-1a}
      - {availability_zone: eu-west-1b}
    record: output/madrid/resources.json
    seats: 20
    driver_branch: "470"
    require_gpu: true
    gpu_support: "{{ __course_aws_gpu_table }}"
    gpu_programs:
      - {name: Gctf, version: "1.06", cuda: "7.5"}
      - {name: Relion, version: "2.0", cuda: "8.0", build: source}
  register: preflight
"""

RETURN = r"""
checks:
  description: One entry per check, in order.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: credentials, ok: true, detail: "account 123456789012 (arn:aws:iam::123456789012:user/me)", fix: ""}
    - {name: instance type offered, ok: false, detail: "g6.xlarge is not offered in eu-west-1.", fix: "..."}
    - name: vCPU quota
      ok: false
      not_run: true
      detail: "not run: no credentials (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; see the
        credentials check)."
      fix: "Make the credentials work (see the credentials check), then run again."
seats:
  description:
    - The course's machines in O(region) according to its O(record) (C(recorded), how many), and where they are
      (C(machines), each C({name, instance_id, instance_type, availability_zone, subnet_id, state}); null when
      AWS was not asked). C(note) says why the record could not be read ('' when it could).
  returned: always
  type: dict
  sample:
    recorded: 1
    machines:
      - {name: madrid-training-01, instance_id: i-0123456789abcdef0, instance_type: g4dn.xlarge,
         availability_zone: eu-west-1a, subnet_id: subnet-0123, state: running}
    note: ""
gpu:
  description: GPU model, architecture and compute capability of the instance type (null without a GPU).
  returned: always
  type: dict
  sample: {name: T4, architecture: Turing, compute_capability: "7.5"}
gpu_fit:
  description:
    - One entry per GPU program, in the order given. C(verdict) is C(native) (it carries native code for
      the GPU), C(ptx) (it runs through its PTX), C(needs_ptx) (the GPU is beyond what its CUDA toolkit
      builds native code for, and whether it carries PTX is not known), C(cannot) or C(unknown).
    - Information only; no check fails because of it (a fallback type's check does, see O(instance_types)).
  returned: always
  type: list
  elements: dict
  sample:
    - name: Gctf
      version: "1.06"
      cuda: "7.5"
      verdict: needs_ptx
      detail: "no native code for the T4 (7.5); runs only if the binary carries PTX, not known"
      line: "Gctf 1.06 (CUDA 7.5 build, reaches compute capability 5.2): no native code for the T4 (7.5); runs only
        if the binary carries PTX, not known."
offered_types:
  description: The table's candidate GPU types offered in the region (null when AWS was not asked).
  returned: always
  type: list
  elements: str
room:
  description:
    - How many seats more than the course asks of this region (O(seats)) the free quota still holds, with the
      course's O(instance_type). It is the least of what the vCPU quota (or, without it, the C(max-instances) limit) and, with
      O(elastic_ips), the Elastic IP limit hold; instances and Elastic IPs already the course's are not counted twice.
    - 0 when the quota is already short (never negative); null when no limit is known, or AWS was not asked (no
      credentials).
  returned: always
  type: int
  sample: 4
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_record as rec
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import gpu_support as gpus
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils.aws_client import client

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError, ProfileNotFound
except ImportError:  # pragma: no cover - reported by the module
    boto3 = None

CREDENTIALS_FIX = (
    "Set AWS_PROFILE to a profile of ~/.aws/credentials or ~/.aws/config (aws configure --profile NAME), "
    "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys), "
    "then run again."
)
# Why the checks after a failed credentials check were not run, and what to do.
NO_CREDENTIALS = ("no credentials (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; "
                  "see the credentials check)")
CREDENTIALS_REFUSED = "the credentials do not work (see the credentials check)"
AWS_UNREACHABLE = "AWS could not be reached (see the credentials check)"
NOT_RUN_FIX = "Make the credentials work (see the credentials check), then run again."
READ_REFUSED_FIX = ("Give the course's credentials the read permissions of docs/iam/provisioning-policy.json "
                    "(ec2:Describe*, servicequotas:GetServiceQuota), then run again.")
REJECTED_CODES = {
    "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
    "AuthFailure", "UnrecognizedClientException", "InvalidAccessKeyId",
}
# Service Quotas codes of the running vCPU quotas, by instance class and purchase option.
VCPU_QUOTAS = {
    ("G", False): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("P", False): ("L-417A185B", "Running On-Demand P instances"),
    ("Standard", False): ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"),
    ("G", True): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("P", True): ("L-7212CCBC", "All P Spot Instance Requests"),
    ("Standard", True): ("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests"),
}
LIVE_STATES = ["pending", "running"]
EXISTING_STATES = ["pending", "running", "stopping", "stopped"]
# Where the GPU of an instance family is written: what the checks made without AWS name.
FAMILY_FILE = "roles/course_aws/vars/instance_types.yml"
TABLE_NOTE = f"GPU from {FAMILY_FILE}; AWS was not asked"


def check(name: str, ok: bool, detail: str, fix: str = "") -> dict[str, Any]:
    """One preflight result."""
    return {"name": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


def not_run(name: str, reason: str, fix: str = NOT_RUN_FIX, known: str = "") -> dict[str, Any]:
    """A check that could not run; ``known`` adds what was checked without AWS."""
    detail = f"not run: {reason}." + (f" {known}" if known else "")
    return {"name": name, "ok": False, "not_run": True, "detail": detail, "fix": fix}


def instance_choices(params: dict[str, Any]) -> list[str]:
    """The instance type, then the fallback types of ``instance_types``, in order, each once."""
    ordered = [params["instance_type"], *(params.get("instance_types") or [])]
    return list(dict.fromkeys(t for t in ordered if t))


def placement_choices(params: dict[str, Any]) -> list[dict[str, str]]:
    """The placements that name a subnet or a zone, in order ([] when the region picks)."""
    chosen = []
    for entry in params.get("placements") or []:
        subnet = str(entry.get("subnet_id") or "").strip()
        zone = str(entry.get("availability_zone") or "").strip()
        if subnet or zone:
            chosen.append({"subnet_id": subnet, "availability_zone": zone})
    return chosen


def instance_class(instance_type: str) -> str | None:
    """Quota class of an instance type: G (g*, vt*), P (p*), Standard, or None (own quotas)."""
    family = gpus.family_of(instance_type)
    if family.startswith(("g", "vt")):
        return "G"
    if family.startswith("p"):
        return "P"
    if family[:1] in "acdhimrtz" and not family.startswith(("inf", "dl", "trn")):
        return "Standard"
    return None


def credentials_check(session: Any, region: str) -> tuple[dict[str, Any], str]:
    """Who the credentials are, or why they do not work; and why the other checks cannot run ('' when they can)."""
    try:
        identity = client(session, "sts", region).get_caller_identity()
    except ProfileNotFound as exc:
        return check("credentials", False, f"{exc}.", CREDENTIALS_FIX), NO_CREDENTIALS
    except (NoCredentialsError, PartialCredentialsError) as exc:
        return (check("credentials", False, f"No usable AWS credentials were found ({exc}).", CREDENTIALS_FIX),
                NO_CREDENTIALS)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        detail = f"AWS rejected the credentials ({code}: {exc.response.get('Error', {}).get('Message', '')})."
        if code not in REJECTED_CODES:
            detail = f"STS GetCallerIdentity failed ({code}): {exc}."
        return (check("credentials", False, detail,
                      "Check that the keys or the profile are current and belong to the course's account. "
                      + CREDENTIALS_FIX), CREDENTIALS_REFUSED)
    except BotoCoreError as exc:
        return (check("credentials", False, f"Could not reach AWS to check the credentials: {exc}.",
                      "Check the network (or AWS_ENDPOINT_URL) and the region name, then run again."), AWS_UNREACHABLE)
    return check("credentials", True, f"account {identity['Account']} ({identity['Arn']})"), ""


def offered(ec2: Any, types: list[str]) -> set[str]:
    """The subset of ``types`` offered in the client's region."""
    if not types:
        return set()
    answer = ec2.describe_instance_type_offerings(
        LocationType="region", Filters=[{"Name": "instance-type", "Values": sorted(set(types))}]
    )
    return {item["InstanceType"] for item in answer.get("InstanceTypeOfferings", [])}


def describe_type(ec2: Any, instance_type: str) -> dict[str, Any] | None:
    """DescribeInstanceTypes entry of one type, or None when the API does not know it."""
    try:
        answer = ec2.describe_instance_types(InstanceTypes=[instance_type])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("InvalidInstanceType", "InvalidParameterValue"):
            return None
        raise
    items = answer.get("InstanceTypes", [])
    return items[0] if items else None


def image_check(ec2: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The course image exists: the AMI id, or the newest available AMI named like the pattern."""
    image_id, pattern, region = params.get("image_id") or "", params.get("image_name") or "", params["region"]
    owners = params.get("image_owners") or ["self"]
    fix = ("Check aws.image_id / aws.image_name / aws.image_owners and aws.region in the course file, or build the "
           "course image first (playbooks/image.yml).")
    if image_id:
        images = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [image_id]}]).get("Images", [])
        missing = f"Image {image_id} does not exist in {region} (or this account cannot use it)."
    else:
        images = ec2.describe_images(Owners=owners, Filters=[{"Name": "name", "Values": [pattern]},
                                                             {"Name": "state", "Values": ["available"]}]).get("Images", [])
        missing = f"No available AMI named like \"{pattern}\" owned by {', '.join(owners)} in {region}."
    if not images:
        return check("image", False, missing, fix)
    newest = max(images, key=lambda image: image.get("CreationDate", ""))
    found = f"{newest['ImageId']} ({newest.get('Name', 'unnamed')}, created {newest.get('CreationDate', '?')})"
    if image_id:
        return check("image", True, f"{found}.")
    return check("image", True, f"{found}, the newest of {len(images)} AMI(s) named like \"{pattern}\".")


def image_set_check(params: dict[str, Any], reason: str, fix: str) -> dict[str, Any]:
    """Without AWS: only whether the course names an image at all."""
    if params.get("image_id") or params.get("image_name"):
        return not_run("image", reason, fix)
    return check("image", False, "The course names no image.",
                 "Set aws.image_id (an AMI id) or aws.image_name (an AMI name pattern, newest wins).")


# --- what is known of each instance type: offered, GPU, vCPUs -----------------------
# {"offered": bool | None (not asked), "known": whether the GPU (or its absence) is known,
#  "gpu": GPU model or None, "vcpus": int | None}

def type_facts_offline(table: dict[str, Any], instance_type: str) -> dict[str, Any]:
    """What the GPU table alone says of a type: its family's GPU, when the table names the family."""
    gpu = gpus.gpu_of_type(table, instance_type)
    return {"offered": None, "known": gpu is not None, "gpu": gpu, "vcpus": None}


def type_facts_online(ec2: Any, table: dict[str, Any], instance_type: str, in_region: set[str]) -> dict[str, Any]:
    """Offering and GPU from the API; the family table covers types the API no longer describes."""
    description = describe_type(ec2, instance_type)
    api_gpus = ((description or {}).get("GpuInfo") or {}).get("Gpus") or []
    api_gpu = next((g.get("Name") for g in api_gpus if g.get("Manufacturer", "NVIDIA") == "NVIDIA"), None)
    gpu = gpus.gpu_of_type(table, instance_type, api_gpu) if (description is None or api_gpus) else None
    return {"offered": instance_type in in_region, "known": True, "gpu": gpu,
            "vcpus": ((description or {}).get("VCpuInfo") or {}).get("DefaultVCpus")}


def offering_check(params: dict[str, Any], is_offered: bool, working_offered: list[str],
                   elsewhere: list[str]) -> dict[str, Any]:
    """Is the type offered in the region; if not, what is."""
    itype, region = params["instance_type"], params["region"]
    if is_offered:
        return check("instance type offered", True, f"{itype} is offered in {region}.")
    fix = []
    if working_offered:
        fix.append(f"GPU types offered in {region} that fit the profile's driver: {', '.join(working_offered)}")
    if elsewhere:
        fix.append(f"{itype} is offered in {', '.join(elsewhere)}")
    fix.append("set aws.instance_type or aws.region in the course file")
    detail = f"{itype} is not offered in {region}"
    family = gpus.family_of(itype)
    if family in ("p2", "g3", "g3s", "p3"):
        detail += " (AWS has retired this previous-generation family)"
    return check("instance type offered", False, detail + ".", "; ".join(fix) + ".")


def _types_text(params: dict[str, Any], types: list[str], offered_known: bool) -> str:
    """'offered in eu-west-1: a, b' or, when the region was not asked, 'such as a, b (not checked in eu-west-1)'."""
    if offered_known:
        return f"offered in {params['region']}: {', '.join(types) or 'none'}"
    return f"such as {', '.join(types) or 'none'} (whether {params['region']} offers them was not checked)"


def gpu_check(params: dict[str, Any], table: dict[str, Any], gpu: str | None,
              offered_candidates: list[str] | None) -> dict[str, Any]:
    """Does the profile's driver branch drive the type's GPU.

    ``offered_candidates`` are the table's types offered in the region; None when the
    region was not asked (the fix then names the table's types).
    """
    itype, branch_text = params["instance_type"], params.get("driver_branch")
    known = offered_candidates is not None
    candidates = offered_candidates if known else list(table.get("instance_types", []))
    if gpu is None:
        if params["require_gpu"]:
            if known:
                where = f"offered in {params['region']}: {', '.join(candidates) or 'none in this region'}"
            else:
                where = _types_text(params, candidates, False)
            return check("GPU and driver", False, f"{itype} has no NVIDIA GPU, and the profile needs one.",
                         f"Choose a GPU instance type; {where}.")
        return check("GPU and driver", True, f"{itype} has no GPU; the profile does not need one.")
    if not branch_text:
        return check("GPU and driver", True, f"{itype} has an NVIDIA {gpu}; the profile installs no driver branch.")
    branch = gpus.parse_branch(branch_text)
    if branch is None:
        return check("GPU and driver", False, f"nvidia_driver_branch '{branch_text}' is not a driver branch number.",
                     "Set profile_vars.nvidia_driver_branch to a branch such as \"470\" or \"550\".")
    arch = gpus.architecture(table, gpu)
    if gpu not in table.get("gpus", {}):
        return check("GPU and driver", False,
                     f"{itype} has an NVIDIA {gpu}, which roles/course/vars/gpu_support.yml does not list.",
                     "Add the GPU with its first/last driver branch to roles/course/vars/gpu_support.yml.")
    if gpus.branch_drives(table, branch, gpu):
        return check("GPU and driver", True,
                     f"driver branch {branch} drives the {gpu} ({arch}) of {itype}.")
    branches = ", ".join(str(b) for b in gpus.working_branches(table, gpu)) or "none known"
    fitting = gpus.working_types(table, branch, candidates)
    return check(
        "GPU and driver", False,
        f"driver branch {branch} cannot drive the {gpu} ({arch}) of {itype}: the {gpu} needs "
        f"{gpus.support_range(table, gpu)}.",
        f"Set profile_vars.nvidia_driver_branch to one of {branches} "
        f"(the CUDA toolkits of the profile keep working on a newer driver), or choose an instance type "
        f"that branch {branch} drives; {_types_text(params, fitting, known)}.",
    )


def main_gpu_check(params: dict[str, Any], table: dict[str, Any], facts: dict[str, Any],
                   offered_candidates: list[str] | None, reason: str, fix: str) -> dict[str, Any]:
    """gpu_check of the course's own type; without AWS, from the family table when it names the type."""
    if not facts["known"]:
        return not_run("GPU and driver", f"{reason}, and {FAMILY_FILE} does not name the GPU of "
                                         f"{params['instance_type']}", fix)
    result = gpu_check(params, table, facts["gpu"], offered_candidates)
    if facts["offered"] is None:
        result["detail"] = f"{result['detail'][:-1]} ({TABLE_NOTE})."
    return result


def programs_that_cannot_run(params: dict[str, Any], table: dict[str, Any], instance_type: str,
                             gpu: str | None) -> list[str]:
    """'Name version: why' of each of the profile's GPU programs that cannot run on the type's GPU."""
    if not params["require_gpu"]:
        return []
    verdicts = gpus.programs_fit(table, params.get("gpu_programs") or [], gpu,
                                 f"no NVIDIA GPU is known for {instance_type}")
    return [f"{v['name']} {v['version']} (CUDA {v['cuda']} build) {v['detail']}"
            for v in verdicts if v["verdict"] == "cannot"]


def fallback_check(params: dict[str, Any], table: dict[str, Any], instance_type: str, facts: dict[str, Any],
                   offered_candidates: list[str] | None, reason: str, fix: str) -> dict[str, Any]:
    """A fallback type goes through the same offering and GPU/driver checks, and the profile's
    GPU programs must be able to run on its GPU: seats that land on it get no other warning."""
    name, region = f"fallback instance type {instance_type}", params["region"]
    problems, fixes, passed = [], [], []
    if facts["offered"] is False:
        problems.append(f"{instance_type} is not offered in {region}")
    elif facts["offered"]:
        passed.append(f"offered in {region}")
    if facts["known"]:
        driver = gpu_check(dict(params, instance_type=instance_type), table, facts["gpu"], offered_candidates)
        (passed if driver["ok"] else problems).append(driver["detail"].rstrip("."))
        if not driver["ok"]:
            fixes.append(driver["fix"])
        cannot = programs_that_cannot_run(params, table, instance_type, facts["gpu"])
        if cannot:
            problems.append("the profile's GPU programs cannot all run on it: " + "; ".join(cannot))
    if problems:
        checked = "" if facts["offered"] is not None else f". Whether {region} offers it was not checked ({TABLE_NOTE})"
        return check(name, False, "; ".join(problems) + checked + ".",
                     f"Remove {instance_type} from aws.fallback_instance_types, or replace it with a type that "
                     "passes these checks." + "".join(f" {f}" for f in fixes))
    if facts["offered"] is None or not facts["known"]:
        missing = ([f"whether {region} offers {instance_type}"] if facts["offered"] is None else []) + \
                  ([f"its GPU ({FAMILY_FILE} does not name it)"] if not facts["known"] else [])
        known = f"Checked from {FAMILY_FILE} and {gpus.TABLE_FILE}: {'; '.join(passed)}." if passed else ""
        return not_run(name, f"{reason}: {' and '.join(missing)}", fix, known)
    return check(name, True, "; ".join(passed) + ".")


def course_filter(course: str) -> dict[str, Any]:
    return {"Name": "tag:Course", "Values": [course]}


def instances(ec2: Any, states: list[str]) -> list[dict[str, Any]]:
    """Every instance of the region in the given states."""
    found = []
    for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": states}]
    ):
        for reservation in page.get("Reservations", []):
            found.extend(reservation.get("Instances", []))
    return found


def is_course(resource: dict[str, Any], course: str) -> bool:
    return any(t.get("Key") == "Course" and t.get("Value") == course for t in resource.get("Tags", []))


def account_attribute(ec2: Any, name: str) -> int | None:
    answer = ec2.describe_account_attributes(AttributeNames=[name])
    for attribute in answer.get("AccountAttributes", []):
        if attribute.get("AttributeName") != name:
            continue
        for value in attribute.get("AttributeValues", []):
            try:
                return int(value["AttributeValue"])
            except (KeyError, ValueError):
                return None
    return None


def vcpus_of(instance: dict[str, Any], type_vcpus: dict[str, int]) -> int:
    options = instance.get("CpuOptions") or {}
    if options.get("CoreCount") and options.get("ThreadsPerCore"):
        return int(options["CoreCount"]) * int(options["ThreadsPerCore"])
    return type_vcpus.get(instance.get("InstanceType", ""), 0)


def service_quota(session: Any, region: str, code: str) -> tuple[float | None, str]:
    """Value of an EC2 quota from Service Quotas, or (None, why not)."""
    try:
        answer = client(session, "service-quotas", region).get_service_quota(
            ServiceCode="ec2", QuotaCode=code)
    except ClientError as exc:
        return None, exc.response.get("Error", {}).get("Code", "error")
    except BotoCoreError as exc:
        return None, type(exc).__name__
    return float(answer["Quota"]["Value"]), ""


def capacity_check(session: Any, ec2: Any, params: dict[str, Any],
                   vcpus: int | None) -> tuple[dict[str, Any], int | None]:
    """Seats within the running vCPU quota (Service Quotas) or, failing that, max-instances; and how many seats
    more than the course's that quota holds (negative when short, None when no limit is known)."""
    course, seats, region, itype = params["course"], params["seats"], params["region"], params["instance_type"]
    live = instances(ec2, LIVE_STATES)
    others = [i for i in live if not is_course(i, course)]
    klass = instance_class(itype)
    why = "no vCPU quota applies to this family"
    if klass and vcpus:
        code, label = VCPU_QUOTAS[(klass, bool(params["spot"]))]
        quota, why = service_quota(session, region, code)
        if quota is not None:
            used = sum(vcpus_of(i, {}) for i in others if instance_class(i.get("InstanceType", "")) == klass)
            need = seats * vcpus
            room = int((quota - used - need) // vcpus)
            if used + need <= quota:
                return check("vCPU quota", True,
                             f"{seats} x {itype} need {need} vCPUs; quota '{label}' is {quota:g}, {used} in use."), room
            return check(
                "vCPU quota", False,
                f"{seats} x {itype} need {need} vCPUs, but the quota '{label}' ({code}) in {region} is {quota:g} "
                f"with {used} in use by other instances: {used + need - quota:g} vCPUs short.",
                f"Request a higher '{label}' quota in the Service Quotas console (days before the course; new "
                f"accounts often start at 0 for GPU types), lower seats to {max(int((quota - used) // vcpus), 0)}, "
                "or stop other instances.",
            ), room
    limit = account_attribute(ec2, "max-instances")
    if limit is None:
        return check("instance quota", True, f"not checked: Service Quotas gave no value ({why}) and the account "
                                             "reports no max-instances."), None
    total = len(others) + seats
    note = (f"Service Quotas gave no vCPU quota ({why}), so the legacy max-instances attribute ({limit}) "
            "was used")
    if total <= limit:
        return check("instance quota", True, f"{note}: {len(others)} other instances running + {seats} seats = "
                                             f"{total} <= {limit}."), limit - total
    return check(
        "instance quota", False,
        f"{note}: {len(others)} other instances running + {seats} seats = {total}, over the limit of {limit}.",
        f"Lower seats to {max(limit - len(others), 0)}, stop other instances, or raise the account's instance "
        "quota (Service Quotas console).",
    ), limit - total


def elastic_ip_check(ec2: Any, params: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """Elastic IPs needed by the course against the account's VPC limit; and how many seats more than the course's
    the free Elastic IPs hold (negative when short, None when none are needed or the limit is not known)."""
    course, seats, region = params["course"], params["seats"], params["region"]
    if not params["elastic_ips"]:
        return check("Elastic IPs", True, "none needed (aws.elastic_ips is false)."), None
    limit = account_attribute(ec2, "vpc-max-elastic-ips")
    addresses = ec2.describe_addresses().get("Addresses", [])
    own = sum(1 for a in addresses if is_course(a, course))
    used = len(addresses) - own
    needed = max(seats - own, 0)
    if limit is None:
        return check("Elastic IPs", True, f"not checked: the account reports no vpc-max-elastic-ips; {needed} "
                                          "to allocate."), None
    room = limit - (used + own + needed)
    if used + own + needed <= limit:
        return check("Elastic IPs", True,
                     f"{needed} to allocate ({own} already the course's); {used + own} of {limit} in use in {region}."), room
    short = used + own + needed - limit
    return check(
        "Elastic IPs", False,
        f"{seats} seats need {needed} new Elastic IPs ({own} already the course's), but {region} allows {limit} and "
        f"{used + own} are allocated: {short} too many.",
        f"Set aws.elastic_ips: false (seats then get a new public IP at each start), lower seats to "
        f"{max(limit - used, 0)}, release unused Elastic IPs, or request a higher 'EC2-VPC Elastic IPs' quota "
        "(L-0263D0A3) in the Service Quotas console.",
    ), room


# --- placements: the zones or subnets the seats may go to, in order -----------------

def zone_offerings(ec2: Any, zones: list[str], types: list[str]) -> dict[str, set[str]]:
    """Zone name -> the given types offered there, for each of ``zones`` that exists.

    Asks for every type offered in the zones, so that a zone that exists but offers none of
    the types is told apart from one that does not exist (no DescribeAvailabilityZones needed).
    """
    found: dict[str, set[str]] = {}
    if not zones:
        return found
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    for page in paginator.paginate(LocationType="availability-zone",
                                   Filters=[{"Name": "location", "Values": sorted(set(zones))}]):
        for item in page.get("InstanceTypeOfferings", []):
            found.setdefault(item["Location"], set())
            if item["InstanceType"] in types:
                found[item["Location"]].add(item["InstanceType"])
    return found


def subnet_zones(ec2: Any, subnet_ids: list[str]) -> dict[str, str]:
    """Subnet id -> its zone, for the subnets that exist in the region."""
    if not subnet_ids:
        return {}
    answer = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": sorted(set(subnet_ids))}])
    return {s["SubnetId"]: s["AvailabilityZone"] for s in answer.get("Subnets", [])}


def placement_text(placement: dict[str, str], zone: str | None, choices: list[str],
                   offers: dict[str, set[str]], region: str) -> tuple[str, str]:
    """('subnet subnet-1', 'in eu-west-1b: g4dn.xlarge, g5.xlarge') and, second, '' when usable, else why not."""
    subnet, given_zone = placement["subnet_id"], placement["availability_zone"]
    label = f"subnet {subnet}" if subnet else f"zone {given_zone}"
    if zone is None:
        return label, f"does not exist in {region}" if subnet else f"is not a zone of {region}"
    here = [t for t in choices if t in offers.get(zone, set())]
    where = f" (in {zone})" if subnet else ""
    if not here:
        return f"{label}{where}", f"offers none of {', '.join(choices)}"
    missing = [t for t in choices if t not in here]
    return f"{label}{where}: {', '.join(here)}" + (f" (not {', '.join(missing)})" if missing else ""), ""


def placement_check(ec2: Any, params: dict[str, Any], choices: list[str]) -> dict[str, Any]:
    """Every placement exists in the region and offers at least one of the instance types."""
    placements, region = placement_choices(params), params["region"]
    subnets = subnet_zones(ec2, [p["subnet_id"] for p in placements if p["subnet_id"]])
    named = [p["availability_zone"] for p in placements if not p["subnet_id"]]
    offers = zone_offerings(ec2, named + list(subnets.values()), choices)
    lines, bad = [], []
    for index, placement in enumerate(placements, start=1):
        if placement["subnet_id"]:
            zone = subnets.get(placement["subnet_id"])
        else:
            zone = placement["availability_zone"] if placement["availability_zone"] in offers else None
        text, problem = placement_text(placement, zone, choices, offers, region)
        lines.append(f"{index}. {text}" + (f" {problem}" if problem else ""))
        if problem:
            bad.append(text)
    detail = "in order: " + "; ".join(lines) + "."
    if not bad:
        return check("placements", True, detail)
    return check("placements", False, detail,
                 f"Remove or replace {', '.join(bad)} in aws.availability_zones or "
                 f"aws.subnet_ids (aws ec2 describe-availability-zones / describe-subnets --region {region}; "
                 "aws ec2 describe-instance-type-offerings --location-type availability-zone).")


# --- where the course's seats are now (from its record) -----------------------------

def recorded_instances(params: dict[str, Any]) -> tuple[list[str], str]:
    """Instance ids the course's record holds for its region, and a note when it cannot be read."""
    path = params.get("record") or ""
    if not path:
        return [], ""
    try:
        record = rec.read_record(path, params["course"])
    except (rec.RecordError, OSError) as exc:
        return [], f"The course record cannot be read: {exc}"
    if record is None:
        return [], ""
    entry = (record.get("aws") or {}).get(params["region"]) or {}
    return [str(i) for i in entry.get("instances") or []], ""


def tag_value(resource: dict[str, Any], key: str) -> str:
    return next((t.get("Value", "") for t in resource.get("Tags", []) if t.get("Key") == key), "")


def seats_report(ec2: Any, params: dict[str, Any]) -> dict[str, Any]:
    """{recorded, machines, note}: machines (name, id, type, zone, subnet, state) read only when ``ec2`` is given."""
    ids, note = recorded_instances(params)
    report: dict[str, Any] = {"recorded": len(ids), "machines": None, "note": note}
    if ec2 is None or not ids:
        return report
    machines = []
    paginator = ec2.get_paginator("describe_instances")
    for start in range(0, len(ids), 200):
        for page in paginator.paginate(Filters=[{"Name": "instance-id", "Values": ids[start:start + 200]}]):
            for reservation in page.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    machines.append({
                        "name": tag_value(instance, "Name") or instance["InstanceId"],
                        "instance_id": instance["InstanceId"],
                        "instance_type": instance.get("InstanceType", ""),
                        "availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone", ""),
                        "subnet_id": instance.get("SubnetId", ""),
                        "state": (instance.get("State") or {}).get("Name", ""),
                    })
    report["machines"] = sorted(machines, key=lambda m: (m["name"], m["instance_id"]))
    return report


# --- the report ---------------------------------------------------------------------

def gpu_facts(table: dict[str, Any], gpu: str | None) -> dict[str, Any] | None:
    """Name, architecture and compute capability of a GPU model (None without a GPU)."""
    if not gpu:
        return None
    capability = gpus.gpu_capability(table, gpu)
    return {"name": gpu, "architecture": gpus.architecture(table, gpu),
            "compute_capability": gpus.capability_text(capability) if capability else None}


def least_room(*rooms: int | None) -> int | None:
    """The seats more than the course's that every known quota holds: the least of them, 0 when one is short,
    None when no quota is known."""
    known = [r for r in rooms if r is not None]
    return max(min(known), 0) if known else None


def report(params: dict[str, Any], checks: list[dict[str, Any]], main: dict[str, Any],
           offered_types: list[str] | None, seats: dict[str, Any], seat_room: int | None = None) -> dict[str, Any]:
    table, itype = params["gpu_support"], params["instance_type"]
    return {
        "checks": checks,
        "gpu": gpu_facts(table, main["gpu"]),
        "gpu_fit": gpus.programs_fit(table, params.get("gpu_programs") or [], main["gpu"] if main["known"] else None,
                                     f"no NVIDIA GPU is known for {itype}"),
        "offered_types": offered_types,
        "seats": seats,
        "room": seat_room,
    }


def offline_report(params: dict[str, Any], first: dict[str, Any], reason: str,
                   fix: str = NOT_RUN_FIX) -> dict[str, Any]:
    """Every check, those that need AWS marked not run with ``reason``; the GPU table's checks still run."""
    table, choices = params["gpu_support"], instance_choices(params)
    facts = {t: type_facts_offline(table, t) for t in choices}
    main = facts[choices[0]]
    checks = [
        first,
        image_set_check(params, reason, fix),
        not_run("instance type offered", reason, fix),
        main_gpu_check(params, table, main, None, reason, fix),
        *(fallback_check(params, table, t, facts[t], None, reason, fix) for t in choices[1:]),
        *([not_run("placements", reason, fix)] if placement_choices(params) else []),
        not_run("vCPU quota", reason, fix),
        elastic_ip_check(None, params)[0] if not params["elastic_ips"] else not_run("Elastic IPs", reason, fix),
    ]
    return report(params, checks, main, None, seats_report(None, params))


def online_report(session: Any, params: dict[str, Any], first: dict[str, Any]) -> dict[str, Any]:
    """Every check, with AWS's answers."""
    table, region, choices = params["gpu_support"], params["region"], instance_choices(params)
    ec2 = client(session, "ec2", region)
    candidates = list(table.get("instance_types", []))
    in_region = offered(ec2, candidates + choices)
    offered_candidates = [t for t in candidates if t in in_region]
    branch = gpus.parse_branch(params.get("driver_branch") or "")
    working_offered = (gpus.working_types(table, branch, offered_candidates) if branch is not None
                       else offered_candidates)
    facts = {t: type_facts_online(ec2, table, t, in_region) for t in choices}
    main = facts[choices[0]]
    elsewhere = []
    if not main["offered"]:
        for other in params["compare_regions"]:
            if other != region and choices[0] in offered(client(session, "ec2", other), [choices[0]]):
                elsewhere.append(other)
    checks = [
        first,
        image_check(ec2, params) if params.get("image_id") or params.get("image_name")
        else image_set_check(params, "", NOT_RUN_FIX),
        offering_check(params, main["offered"], working_offered, elsewhere),
        gpu_check(params, table, main["gpu"], offered_candidates),
        *(fallback_check(params, table, t, facts[t], offered_candidates, "", NOT_RUN_FIX) for t in choices[1:]),
        *([placement_check(ec2, params, choices)] if placement_choices(params) else []),
    ]
    capacity, capacity_room = capacity_check(session, ec2, params, main["vcpus"])
    elastic_ips, elastic_ip_room = elastic_ip_check(ec2, params)
    checks += [capacity, elastic_ips]
    return report(params, checks, main, offered_candidates, seats_report(ec2, params),
                  least_room(capacity_room, elastic_ip_room))


THROTTLING_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException"}
THROTTLED_FIX = "AWS is limiting this account's request rate: run again in a few minutes."


def aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}"
    return str(exc)


def run_checks(params: dict[str, Any]) -> dict[str, Any]:
    """Every check, in order. Without working credentials, the checks that need AWS are reported as not run."""
    try:
        session = boto3.session.Session()
    except ProfileNotFound as exc:
        return offline_report(params, check("credentials", False, f"{exc}.", CREDENTIALS_FIX), NO_CREDENTIALS)
    first, reason = credentials_check(session, params["region"])
    if not first["ok"]:
        return offline_report(params, first, reason)
    try:
        return online_report(session, params, first)
    except (ClientError, BotoCoreError) as exc:
        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in THROTTLING_CODES:
            return offline_report(params, first, f"AWS throttled the reads ({aws_error(exc)})", THROTTLED_FIX)
        return offline_report(params, first, f"AWS refused a read ({aws_error(exc)})", READ_REFUSED_FIX)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "course": {"type": "str", "required": True},
            "region": {"type": "str", "required": True},
            "instance_type": {"type": "str", "required": True},
            "image_id": {"type": "str", "default": ""},
            "image_name": {"type": "str", "default": ""},
            "image_owners": {"type": "list", "elements": "str", "default": ["self"]},
            "instance_types": {"type": "list", "elements": "str", "default": []},
            "placements": {"type": "list", "elements": "dict", "default": [], "options": {
                "subnet_id": {"type": "str", "default": ""},
                "availability_zone": {"type": "str", "default": ""},
            }},
            "seats": {"type": "int", "required": True},
            "elastic_ips": {"type": "bool", "default": False},
            "spot": {"type": "bool", "default": False},
            "driver_branch": {"type": "str"},
            "require_gpu": {"type": "bool", "default": False},
            "gpu_support": {"type": "dict", "required": True},
            "compare_regions": {"type": "list", "elements": "str", "default": []},
            "record": {"type": "path"},
            "gpu_programs": {"type": "list", "elements": "dict", "default": [], "options": {
                "name": {"type": "str", "required": True},
                "version": {"type": "str", "required": True},
                "cuda": {"type": "str", "required": True},
                "build": {"type": "str", "choices": ["vendor", "source"], "default": "vendor"},
                "architectures": {"type": "list", "elements": "str"},
                "ptx": {"type": "list", "elements": "str"},
            }},
        },
        supports_check_mode=True,
    )
    if boto3 is None:
        module.fail_json(msg="aws_course_preflight needs boto3 on the controller (pip install boto3).")
    problems = gpus.program_problems(module.params["gpu_programs"])
    if problems:
        module.fail_json(msg="The profile's gpu_programs cannot be read: " + " ".join(problems))
    module.exit_json(changed=False, **run_checks(module.params))


if __name__ == "__main__":
    main()
