#!/usr/bin/python
"""Read-only AWS checks before a course creates anything."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_course_preflight
short_description: Check that an AWS account and region can run a course, before anything is created
description:
  - Read-only checks with boto3 (C(AWS_ENDPOINT_URL), C(AWS_PROFILE) and the other usual boto3 settings apply).
  - Checks, in order, credentials (STS GetCallerIdentity), that the instance type is offered in the region,
    that the profile's NVIDIA driver branch drives the type's GPU, the running-instance or vCPU quota for
    the seats, and the Elastic IPs needed against the account limit.
  - Never fails on a failed check; returns every check with C(ok), C(detail) and C(fix), and the caller
    (roles/course tasks/preflight.yml) refuses the course. A failed credentials check stops the others.
  - Also says, as information and never as a failed check, which of the profile's GPU programs
    (C(gpu_programs)) can run on the type's GPU (C(gpu_fit)).
  - Instances and Elastic IPs already tagged C(Course=<course>) count as the course's own, so a re-run
    after a partial provisioning is not refused for them.
version_added: 0.1.0
author: scipion_cloud maintainers
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
    description: The GPU support table of roles/course/vars/gpu_support.yml (C(branches), C(gpus), C(families), C(instance_types)).
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
    seats: 20
    driver_branch: "470"
    require_gpu: true
    gpu_support: "{{ __course_gpu_support }}"
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
gpu:
  description: GPU model, architecture and compute capability of the instance type (null without a GPU).
  returned: when credentials work
  type: dict
  sample: {name: T4, architecture: Turing, compute_capability: "7.5"}
gpu_fit:
  description:
    - One entry per GPU program, in the order given. C(verdict) is C(native) (it carries native code for
      the GPU), C(ptx) (it runs through its PTX), C(needs_ptx) (the GPU is beyond what its CUDA toolkit
      builds native code for, and whether it carries PTX is not known), C(cannot) or C(unknown).
    - Information only; no check fails because of it.
  returned: when credentials work
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
  description: The table's candidate GPU types offered in the region.
  returned: when credentials work
  type: list
  elements: str
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import gpu_support as gpus

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
    from botocore.exceptions import ProfileNotFound
except ImportError:  # pragma: no cover - reported by the module
    boto3 = None

CREDENTIALS_FIX = (
    "Set AWS_PROFILE to a profile of ~/.aws/credentials or ~/.aws/config (aws configure --profile NAME), "
    "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys), "
    "then run again."
)
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


def check(name: str, ok: bool, detail: str, fix: str = "") -> dict[str, Any]:
    """One preflight result."""
    return {"name": name, "ok": ok, "detail": detail, "fix": "" if ok else fix}


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


def credentials_check(session: Any, region: str) -> dict[str, Any]:
    """Who the credentials are, or why they do not work."""
    try:
        identity = session.client("sts", region_name=region).get_caller_identity()
    except ProfileNotFound as exc:
        return check("credentials", False, f"{exc}.", CREDENTIALS_FIX)
    except (NoCredentialsError, PartialCredentialsError) as exc:
        return check("credentials", False, f"No usable AWS credentials were found ({exc}).", CREDENTIALS_FIX)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        detail = f"AWS rejected the credentials ({code}: {exc.response.get('Error', {}).get('Message', '')})."
        if code not in REJECTED_CODES:
            detail = f"STS GetCallerIdentity failed ({code}): {exc}."
        return check("credentials", False, detail,
                     "Check that the keys or the profile are current and belong to the course's account. "
                     + CREDENTIALS_FIX)
    except BotoCoreError as exc:
        return check("credentials", False, f"Could not reach AWS to check the credentials: {exc}.",
                     "Check the network (or AWS_ENDPOINT_URL) and the region name, then run again.")
    return check("credentials", True, f"account {identity['Account']} ({identity['Arn']})")


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


def gpu_check(params: dict[str, Any], table: dict[str, Any], gpu: str | None,
              offered_candidates: list[str]) -> dict[str, Any]:
    """Does the profile's driver branch drive the type's GPU."""
    itype, branch_text = params["instance_type"], params.get("driver_branch")
    if gpu is None:
        if params["require_gpu"]:
            types = ", ".join(offered_candidates) or "none in this region"
            return check("GPU and driver", False, f"{itype} has no NVIDIA GPU, and the profile needs one.",
                         f"Choose a GPU instance type; offered in {params['region']}: {types}.")
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
    fitting = ", ".join(gpus.working_types(table, branch, offered_candidates)) or "none"
    return check(
        "GPU and driver", False,
        f"driver branch {branch} cannot drive the {gpu} ({arch}) of {itype}: the {gpu} needs "
        f"{gpus.support_range(table, gpu)}.",
        f"Set profile_vars.nvidia_driver_branch to one of {branches} "
        f"(the CUDA toolkits of the profile keep working on a newer driver), or choose an instance type "
        f"that branch {branch} drives; offered in {params['region']}: {fitting}.",
    )


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
        answer = session.client("service-quotas", region_name=region).get_service_quota(
            ServiceCode="ec2", QuotaCode=code)
    except ClientError as exc:
        return None, exc.response.get("Error", {}).get("Code", "error")
    except BotoCoreError as exc:
        return None, type(exc).__name__
    return float(answer["Quota"]["Value"]), ""


def capacity_check(session: Any, ec2: Any, params: dict[str, Any], vcpus: int | None) -> dict[str, Any]:
    """Seats within the running vCPU quota (Service Quotas) or, failing that, max-instances."""
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
            if used + need <= quota:
                return check("vCPU quota", True,
                             f"{seats} x {itype} need {need} vCPUs; quota '{label}' is {quota:g}, {used} in use.")
            return check(
                "vCPU quota", False,
                f"{seats} x {itype} need {need} vCPUs, but the quota '{label}' ({code}) in {region} is {quota:g} "
                f"with {used} in use by other instances: {used + need - quota:g} vCPUs short.",
                f"Request a higher '{label}' quota in the Service Quotas console (days before the course; new "
                f"accounts often start at 0 for GPU types), lower seats to {max(int((quota - used) // vcpus), 0)}, "
                "or stop other instances.",
            )
    limit = account_attribute(ec2, "max-instances")
    if limit is None:
        return check("instance quota", True, f"not checked: Service Quotas gave no value ({why}) and the account "
                                             "reports no max-instances.")
    total = len(others) + seats
    note = (f"Service Quotas gave no vCPU quota ({why}), so the legacy max-instances attribute ({limit}) "
            "was used")
    if total <= limit:
        return check("instance quota", True, f"{note}: {len(others)} other instances running + {seats} seats = "
                                             f"{total} <= {limit}.")
    return check(
        "instance quota", False,
        f"{note}: {len(others)} other instances running + {seats} seats = {total}, over the limit of {limit}.",
        f"Lower seats to {max(limit - len(others), 0)}, stop other instances, or raise the account's instance "
        "quota (Service Quotas console).",
    )


def elastic_ip_check(ec2: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Elastic IPs needed by the course against the account's VPC limit."""
    course, seats, region = params["course"], params["seats"], params["region"]
    if not params["elastic_ips"]:
        return check("Elastic IPs", True, "none needed (aws.elastic_ips is false).")
    limit = account_attribute(ec2, "vpc-max-elastic-ips")
    addresses = ec2.describe_addresses().get("Addresses", [])
    own = sum(1 for a in addresses if is_course(a, course))
    used = len(addresses) - own
    needed = max(seats - own, 0)
    if limit is None:
        return check("Elastic IPs", True, f"not checked: the account reports no vpc-max-elastic-ips; {needed} "
                                          "to allocate.")
    if used + own + needed <= limit:
        return check("Elastic IPs", True,
                     f"{needed} to allocate ({own} already the course's); {used + own} of {limit} in use in {region}.")
    short = used + own + needed - limit
    return check(
        "Elastic IPs", False,
        f"{seats} seats need {needed} new Elastic IPs ({own} already the course's), but {region} allows {limit} and "
        f"{used + own} are allocated: {short} too many.",
        f"Set aws.elastic_ips: false (seats then get a new public IP at each start), lower seats to "
        f"{max(limit - used, 0)}, release unused Elastic IPs, or request a higher 'EC2-VPC Elastic IPs' quota "
        "(L-0263D0A3) in the Service Quotas console.",
    )


def run_checks(params: dict[str, Any]) -> dict[str, Any]:
    """Every check, in order; stops after a credentials failure."""
    try:
        session = boto3.session.Session()
    except ProfileNotFound as exc:
        return {"checks": [check("credentials", False, f"{exc}.", CREDENTIALS_FIX)]}
    first = credentials_check(session, params["region"])
    if not first["ok"]:
        return {"checks": [first]}
    table, region, itype = params["gpu_support"], params["region"], params["instance_type"]
    ec2 = session.client("ec2", region_name=region)
    candidates = list(table.get("instance_types", []))
    in_region = offered(ec2, candidates + [itype])
    offered_candidates = [t for t in candidates if t in in_region]
    branch = gpus.parse_branch(params.get("driver_branch") or "")
    working_offered = (gpus.working_types(table, branch, offered_candidates) if branch is not None
                       else offered_candidates)
    is_offered = itype in in_region
    elsewhere = []
    if not is_offered:
        for other in params["compare_regions"]:
            if other != region and itype in offered(session.client("ec2", region_name=other), [itype]):
                elsewhere.append(other)
    description = describe_type(ec2, itype)
    api_gpus = ((description or {}).get("GpuInfo") or {}).get("Gpus") or []
    api_gpu = next((g.get("Name") for g in api_gpus if g.get("Manufacturer", "NVIDIA") == "NVIDIA"), None)
    gpu = gpus.gpu_of_type(table, itype, api_gpu) if (description is None or api_gpus) else None
    vcpus = ((description or {}).get("VCpuInfo") or {}).get("DefaultVCpus")
    checks = [
        first,
        offering_check(params, is_offered, working_offered, elsewhere),
        gpu_check(params, table, gpu, offered_candidates),
        capacity_check(session, ec2, params, vcpus),
        elastic_ip_check(ec2, params),
    ]
    return {
        "checks": checks,
        "gpu": gpu_facts(table, gpu),
        "gpu_fit": gpus.programs_fit(table, params.get("gpu_programs") or [], gpu,
                                     f"no NVIDIA GPU is known for {itype}"),
        "offered_types": offered_candidates,
    }


def gpu_facts(table: dict[str, Any], gpu: str | None) -> dict[str, Any] | None:
    """Name, architecture and compute capability of a GPU model (None without a GPU)."""
    if not gpu:
        return None
    capability = gpus.gpu_capability(table, gpu)
    return {"name": gpu, "architecture": gpus.architecture(table, gpu),
            "compute_capability": gpus.capability_text(capability) if capability else None}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "course": {"type": "str", "required": True},
            "region": {"type": "str", "required": True},
            "instance_type": {"type": "str", "required": True},
            "seats": {"type": "int", "required": True},
            "elastic_ips": {"type": "bool", "default": False},
            "spot": {"type": "bool", "default": False},
            "driver_branch": {"type": "str"},
            "require_gpu": {"type": "bool", "default": False},
            "gpu_support": {"type": "dict", "required": True},
            "compare_regions": {"type": "list", "elements": "str", "default": []},
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
    try:
        result = run_checks(module.params)
    except (ClientError, BotoCoreError) as exc:
        module.fail_json(msg=f"AWS preflight could not read the account: {exc}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
