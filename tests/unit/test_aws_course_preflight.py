"""aws_course_preflight checks that need no AWS endpoint: quota classes, GPU messages, bad profiles, GPU program fit."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.modules import aws_course_preflight as preflight  # noqa: E402

# The table the course_aws role passes: the provider-neutral one with AWS's instance families.
GPU_TABLE = {
    **yaml.safe_load((PROJECT / "roles/course_aws/vars/instance_types.yml").read_text())["__course_aws_instance_types"],
    **yaml.safe_load((PROJECT / "roles/course/vars/gpu_support.yml").read_text())["__course_gpu_support"],
}


def params(**changes: object) -> dict:
    base = {"course": "c", "region": "eu-west-1", "instance_type": "g4dn.xlarge", "seats": 2, "elastic_ips": False,
            "spot": False, "driver_branch": "384", "require_gpu": True, "gpu_support": GPU_TABLE, "compare_regions": [],
            "image_id": "", "image_name": "", "image_owners": ["self"], "instance_types": [], "placements": [],
            "record": None}
    return {**base, **changes}


@pytest.mark.parametrize(("instance_type", "klass"), [
    ("g4dn.xlarge", "G"), ("g5.xlarge", "G"), ("p3.2xlarge", "P"), ("t3.micro", "Standard"),
    ("m5.large", "Standard"), ("inf1.xlarge", None), ("x2idn.16xlarge", None),
])
def test_instance_class(instance_type: str, klass: str | None) -> None:
    assert preflight.instance_class(instance_type) == klass


def test_retired_p2_uses_the_family_table_and_drives_with_384() -> None:
    gpu = preflight.gpus.gpu_of_type(GPU_TABLE, "p2.xlarge")
    result = preflight.gpu_check(params(instance_type="p2.xlarge"), GPU_TABLE, gpu, [])
    assert result == {"name": "GPU and driver", "ok": True, "fix": "",
                      "detail": "driver branch 384 drives the K80 (Kepler) of p2.xlarge."}


def test_current_driver_on_kepler_is_refused() -> None:
    result = preflight.gpu_check(params(instance_type="p2.xlarge", driver_branch="550"), GPU_TABLE, "K80",
                                 ["g4dn.xlarge", "g5.xlarge"])
    assert result["detail"] == ("driver branch 550 cannot drive the K80 (Kepler) of p2.xlarge: the K80 needs "
                                "branch 470 or earlier.")
    assert result["fix"] == ("Set profile_vars.nvidia_driver_branch to one of 384, 390, 410, 418, 440, 450, 460, 470 "
                             "(the CUDA toolkits of the profile keep working on a newer driver), or choose an instance "
                             "type that branch 550 drives; offered in eu-west-1: g4dn.xlarge, g5.xlarge.")


def test_type_without_gpu_for_a_gpu_profile() -> None:
    result = preflight.gpu_check(params(instance_type="t3.micro"), GPU_TABLE, None, ["g4dn.xlarge"])
    assert (result["ok"], result["detail"]) == (False, "t3.micro has no NVIDIA GPU, and the profile needs one.")
    assert preflight.gpu_check(params(instance_type="t3.micro", require_gpu=False), GPU_TABLE, None, [])["ok"]


def test_unknown_gpu_and_bad_branch() -> None:
    assert preflight.gpu_check(params(), GPU_TABLE, "B200", [])["fix"].startswith("Add the GPU")
    bad = preflight.gpu_check(params(driver_branch="latest"), GPU_TABLE, "T4", [])
    assert bad["detail"] == "nvidia_driver_branch 'latest' is not a driver branch number."


NOT_RUN = ("not run: no credentials (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; see the "
           "credentials check).")


def without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_missing_profile_is_a_credentials_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    without_credentials(monkeypatch)
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    result = preflight.run_checks(params(image_name="course*"))
    assert result["checks"][0] == {
        "name": "credentials", "ok": False,
        "detail": "The config profile (no-such-profile) could not be found.",
        "fix": preflight.CREDENTIALS_FIX,
    }
    assert preflight.CREDENTIALS_FIX.startswith("Set AWS_PROFILE to a profile of ~/.aws/credentials")
    assert result["checks"][1] == {"name": "image", "ok": False, "not_run": True, "detail": NOT_RUN,
                                   "fix": "Make the credentials work (see the credentials check), then run again."}


def test_missing_credentials_leave_every_aws_check_not_run_and_the_table_checks_run(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    without_credentials(monkeypatch)
    record = tmp_path / "resources.json"
    record.write_text(json.dumps({"version": 1, "course": "c", "aws": {"eu-west-1": {"instances": ["i-1", "i-2"]}}}))
    result = preflight.run_checks(params(image_name="course*", elastic_ips=True, record=str(record),
                                         placements=[{"subnet_id": "", "availability_zone": "eu-west-1a"}]))
    checks = {check["name"]: check for check in result["checks"]}
    assert list(checks) == ["credentials", "image", "instance type offered", "GPU and driver", "placements",
                            "vCPU quota", "Elastic IPs"]
    assert checks["credentials"]["detail"] == "No usable AWS credentials were found (Unable to locate credentials)."
    assert [name for name, check in checks.items() if check.get("not_run")] == [
        "image", "instance type offered", "placements", "vCPU quota", "Elastic IPs"]
    assert all(checks[name]["detail"] == NOT_RUN and checks[name]["ok"] is False for name in ("image", "vCPU quota"))
    # The driver branch 384 cannot drive the T4: the family table says so without AWS.
    assert checks["GPU and driver"]["ok"] is False
    assert checks["GPU and driver"]["detail"] == (
        "driver branch 384 cannot drive the T4 (Turing) of g4dn.xlarge: the T4 needs branch 410 or later (GPU from "
        "roles/course_aws/vars/instance_types.yml; AWS was not asked).")
    assert checks["GPU and driver"]["fix"].endswith(
        "or choose an instance type that branch 384 drives; such as p2.xlarge, g3s.xlarge, p3.2xlarge (whether "
        "eu-west-1 offers them was not checked).")
    assert result["seats"] == {"recorded": 2, "machines": None, "note": ""}
    assert result["offered_types"] is None
    assert result["room"] is None, "no quota was read"


def test_a_course_without_an_image_fails_its_image_check_without_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    without_credentials(monkeypatch)
    image = preflight.run_checks(params())["checks"][1]
    assert (image["name"], image["ok"], image.get("not_run")) == ("image", False, None)
    assert image["fix"] == "Set aws.image_id (an AMI id) or aws.image_name (an AMI name pattern, newest wins)."


CUDA_12 = [{"name": "Relion", "version": "5.0", "cuda": "12.4", "build": "source", "architectures": None, "ptx": None}]


def test_fallback_whose_gpu_the_profile_cuda_cannot_run_is_refused_without_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    without_credentials(monkeypatch)
    result = preflight.run_checks(params(driver_branch="470", gpu_programs=CUDA_12,
                                         instance_types=["g4dn.xlarge", "g5.xlarge", "p2.xlarge", "m5.large"]))
    checks = {check["name"]: check for check in result["checks"]}
    p2 = checks["fallback instance type p2.xlarge"]
    assert (p2["ok"], p2.get("not_run")) == (False, None)
    assert p2["detail"] == (
        "the profile's GPU programs cannot all run on it: Relion 5.0 (CUDA 12.4 build) cannot run on the K80 (3.7): "
        "CUDA 12.4 builds start at compute capability 5.0. Whether eu-west-1 offers it was not checked (GPU from "
        "roles/course_aws/vars/instance_types.yml; AWS was not asked).")
    assert p2["fix"] == ("Remove p2.xlarge from aws.fallback_instance_types, or replace it with a type that passes "
                         "these checks.")
    g5 = checks["fallback instance type g5.xlarge"]
    assert (g5["ok"], g5["not_run"]) == (False, True)
    assert g5["detail"] == (NOT_RUN[:-1] + ": whether eu-west-1 offers g5.xlarge. Checked from "
                            "roles/course_aws/vars/instance_types.yml and roles/course/vars/gpu_support.yml: "
                            "driver branch 470 drives the A10G (Ampere) of g5.xlarge.")
    # A family the table does not know: nothing can be said without AWS.
    assert checks["fallback instance type m5.large"]["detail"] == (
        NOT_RUN[:-1] + ": whether eu-west-1 offers m5.large and its GPU (roles/course_aws/vars/instance_types.yml "
        "does not name it).")


def test_fallback_that_the_driver_branch_cannot_drive_is_refused() -> None:
    facts = preflight.type_facts_offline(GPU_TABLE, "g6.xlarge")
    result = preflight.fallback_check(params(driver_branch="470"), GPU_TABLE, "g6.xlarge", dict(facts, offered=True),
                                      ["g4dn.xlarge", "g5.xlarge"], "", preflight.NOT_RUN_FIX)
    assert result == {
        "name": "fallback instance type g6.xlarge", "ok": False,
        "detail": "driver branch 470 cannot drive the L4 (Ada) of g6.xlarge: the L4 needs branch 525 or later.",
        "fix": "Remove g6.xlarge from aws.fallback_instance_types, or replace it with a type that passes these checks. "
               "Set profile_vars.nvidia_driver_branch to one of 525, 535, 550, 570, 580 (the CUDA toolkits of the "
               "profile keep working on a newer driver), or choose an instance type that branch 470 drives; offered "
               "in eu-west-1: g4dn.xlarge, g5.xlarge.",
    }
    passed = preflight.fallback_check(params(driver_branch="470"), GPU_TABLE, "g5.xlarge",
                                      {"offered": True, "known": True, "gpu": "A10G", "vcpus": 4}, [], "", "")
    assert passed == {"name": "fallback instance type g5.xlarge", "ok": True, "fix": "",
                      "detail": "offered in eu-west-1; driver branch 470 drives the A10G (Ampere) of g5.xlarge."}


# --- the profile's GPU programs (information, never a failed check) ------------------

PROFILE = yaml.safe_load((PROJECT / "inventories/profiles/scipion-1.1.yml").read_text())


def module_programs() -> list[dict]:
    """The profile's gpu_programs as the module's argument spec hands them over (every option present)."""
    return [{"build": "vendor", "architectures": None, "ptx": None, **program} for program in PROFILE["gpu_programs"]]


def test_gpu_facts_name_the_compute_capability() -> None:
    assert preflight.gpu_facts(GPU_TABLE, "T4") == {"name": "T4", "architecture": "Turing", "compute_capability": "7.5"}
    assert preflight.gpu_facts(GPU_TABLE, "B200") == {"name": "B200", "architecture": "unknown architecture",
                                                      "compute_capability": None}
    assert preflight.gpu_facts(GPU_TABLE, None) is None


MOTO_IMAGE = "Windows_Server-2016-English-Nano-Base-2017.10.13"  # one of moto's own AMIs


def moto_account(monkeypatch: pytest.MonkeyPatch) -> Any:
    moto = pytest.importorskip("moto")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return moto


def test_run_checks_with_aws_fallbacks_placements_image_gpu_fit_and_where_the_seats_are(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """In-process moto stand-in for AWS: g4dn.xlarge is described with its T4 by the API, p4d.24xlarge is offered
    only in eu-west-1c, g6.xlarge not in eu-west-1."""
    moto = moto_account(monkeypatch)
    with moto.mock_aws():
        ec2 = boto3.client("ec2", region_name="eu-west-1")
        subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["eu-west-1b"]}])["Subnets"][0]
        image_id = ec2.describe_images(Filters=[{"Name": "name", "Values": [MOTO_IMAGE]}])["Images"][0]["ImageId"]
        found = preflight.run_checks(params(driver_branch="470", gpu_programs=module_programs(), image_id=image_id))
        seat = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="g4dn.xlarge",
                                 SubnetId=subnet["SubnetId"], TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                     {"Key": "Name", "Value": "c-01"}, {"Key": "Course", "Value": "c"}]}])
        seat_id = seat["Instances"][0]["InstanceId"]
        record = tmp_path / "resources.json"
        record.write_text(json.dumps({"version": 1, "course": "c",
                                      "aws": {"eu-west-1": {"instances": [seat_id, "i-0000000000000dead"]}}}))
        placements = [{"subnet_id": "", "availability_zone": "eu-west-1a"},
                      {"subnet_id": subnet["SubnetId"], "availability_zone": ""},
                      {"subnet_id": "subnet-0000dead", "availability_zone": ""}]
        result = preflight.run_checks(params(
            driver_branch="470", image_name="no-such-image-*", record=str(record), placements=placements,
            instance_types=["g4dn.xlarge", "p4d.24xlarge", "g6.xlarge"]))
    # The course's own image and type: every check passes, and the GPU programs' fit is information only.
    assert [check["ok"] for check in found["checks"]] == [True] * 6
    assert re.fullmatch(rf"{image_id} \({MOTO_IMAGE}, created \d{{4}}-\d\d-\d\dT[0-9:.]+Z\)\.",
                        found["checks"][1]["detail"]), found["checks"][1]
    assert found["gpu"] == {"name": "T4", "architecture": "Turing", "compute_capability": "7.5"}
    assert [(fit["name"], fit["verdict"]) for fit in found["gpu_fit"]] == [
        ("Gctf", "needs_ptx"), ("Gautomatch", "needs_ptx"), ("motioncorr", "needs_ptx"), ("MotionCor2", "needs_ptx"),
        ("Relion", "needs_ptx")]
    assert found["gpu_fit"][0]["line"] == ("Gctf 1.06 (CUDA 7.5 build, reaches compute capability 5.2): no native "
                                           "code for the T4 (7.5); runs only if the binary carries PTX, not known.")
    assert found["seats"] == {"recorded": 0, "machines": None, "note": ""}

    checks = {check["name"]: check for check in result["checks"]}
    assert list(checks) == ["credentials", "image", "instance type offered", "GPU and driver",
                            "fallback instance type p4d.24xlarge", "fallback instance type g6.xlarge", "placements",
                            "instance quota", "Elastic IPs"]
    assert checks["image"] == {
        "name": "image", "ok": False,
        "detail": "No available AMI named like \"no-such-image-*\" owned by self in eu-west-1.",
        "fix": "Check aws.image_id / aws.image_name / aws.image_owners and aws.region in the course file, or build "
               "the course image first (playbooks/image.yml)."}
    assert checks["fallback instance type p4d.24xlarge"]["ok"] is True
    assert checks["fallback instance type g6.xlarge"]["detail"] == (
        "g6.xlarge is not offered in eu-west-1; driver branch 470 cannot drive the L4 (Ada) of g6.xlarge: the L4 "
        "needs branch 525 or later.")
    assert checks["placements"]["detail"] == (
        "in order: 1. zone eu-west-1a: g4dn.xlarge (not p4d.24xlarge, g6.xlarge); "
        f"2. subnet {subnet['SubnetId']} (in eu-west-1b): g4dn.xlarge (not p4d.24xlarge, g6.xlarge); "
        "3. subnet subnet-0000dead does not exist in eu-west-1.")
    assert checks["placements"]["fix"].startswith("Remove or replace subnet subnet-0000dead in aws.availability_zones")
    assert result["seats"] == {"recorded": 2, "note": "", "machines": [{
        "name": "c-01", "instance_id": seat_id, "instance_type": "g4dn.xlarge", "availability_zone": "eu-west-1b",
        "subnet_id": subnet["SubnetId"], "state": "running"}]}


def launch(ec2: Any, image_id: str, course: str = "") -> None:
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "Course", "Value": course}]}] if course else []
    ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="g4dn.xlarge", TagSpecifications=tags)


def allocate_elastic_ip(ec2: Any, course: str = "") -> None:
    tags = [{"ResourceType": "elastic-ip", "Tags": [{"Key": "Course", "Value": course}]}] if course else []
    ec2.allocate_address(Domain="vpc", TagSpecifications=tags)


def another_and_the_course_instance() -> tuple[Any, str]:
    """In a moto region: one instance of somebody else and one of course c; the EC2 client and the image."""
    ec2 = boto3.client("ec2", region_name="eu-west-1")
    image_id = ec2.describe_images(Filters=[{"Name": "name", "Values": [MOTO_IMAGE]}])["Images"][0]["ImageId"]
    launch(ec2, image_id)
    launch(ec2, image_id, course="c")
    return ec2, image_id


def test_room_under_moto_is_measured_on_max_instances_and_elastic_ips(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto stand-in for AWS, which answers no Service Quotas: the max-instances attribute (20) and the
    Elastic IP limit (5) are what limit. The course's own instance and Elastic IP are not counted twice."""
    moto = moto_account(monkeypatch)
    with moto.mock_aws():
        ec2, image_id = another_and_the_course_instance()
        no_ips = preflight.run_checks(params(driver_branch="470", image_id=image_id))
        allocate_elastic_ip(ec2)
        allocate_elastic_ip(ec2, course="c")
        with_ips = preflight.run_checks(params(driver_branch="470", image_id=image_id, elastic_ips=True))
        crowded = preflight.run_checks(params(driver_branch="470", image_id=image_id, seats=22))
        full_ips = preflight.run_checks(params(driver_branch="470", image_id=image_id, elastic_ips=True, seats=4))
        few_ips = preflight.run_checks(params(driver_branch="470", image_id=image_id, elastic_ips=True, seats=5))
    quota = {check["name"]: check for check in no_ips["checks"]}["instance quota"]
    assert quota["detail"].endswith("1 other instances running + 2 seats = 3 <= 20."), quota
    # 20 instances: 1 another's, 2 seats (one running already), 17 more.
    assert no_ips["room"] == 17
    # 5 Elastic IPs: 1 another's, 1 the course's, 1 to allocate: 2 more.
    assert {check["name"]: check for check in with_ips["checks"]}["Elastic IPs"]["ok"] is True
    assert with_ips["room"] == 2
    # Exactly full: 1 another's + 4 seats' Elastic IPs (1 the course's already) = 5.
    assert {check["name"]: check for check in full_ips["checks"]}["Elastic IPs"]["ok"] is True
    assert full_ips["room"] == 0
    # Short: 1 + 22 instances over 20, and 1 + 5 Elastic IPs over 5.
    assert (crowded["room"], few_ips["room"]) == (0, 0)
    assert {check["name"]: check for check in crowded["checks"]}["instance quota"]["ok"] is False
    assert {check["name"]: check for check in few_ips["checks"]}["Elastic IPs"]["ok"] is False


def test_room_on_the_vcpu_quota_is_floored_to_whole_seats(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto stand-in for AWS, with Service Quotas answering a G vCPU quota of 18 (moto answers none) and
    the instances' CpuOptions described as AWS does."""
    moto = moto_account(monkeypatch)
    asked = []

    def g_quota(_session: object, _region: str, code: str) -> tuple[float | None, str]:
        asked.append(code)
        return 18.0, ""

    monkeypatch.setattr(preflight, "service_quota", g_quota)
    moto_instances = preflight.instances

    def described(ec2: Any, states: list[str]) -> list[dict[str, Any]]:
        """AWS describes every instance's CpuOptions (a g4dn.xlarge: 2 cores x 2 threads); moto leaves them out."""
        return [{"CpuOptions": {"CoreCount": 2, "ThreadsPerCore": 2}, **i} for i in moto_instances(ec2, states)]

    monkeypatch.setattr(preflight, "instances", described)
    with moto.mock_aws():
        _ec2, image_id = another_and_the_course_instance()
        result = preflight.run_checks(params(driver_branch="470", image_id=image_id))
        short = preflight.run_checks(params(driver_branch="470", image_id=image_id, seats=4))
    assert asked == ["L-DB2E81BA", "L-DB2E81BA"]
    checks = {check["name"]: check for check in result["checks"]}
    assert checks["vCPU quota"]["detail"] == (
        "2 x g4dn.xlarge need 8 vCPUs; quota 'Running On-Demand G and VT instances' is 18, 4 in use.")
    # 18 vCPUs, 4 another's, 8 for the two seats: 6 left, one more 4-vCPU seat.
    assert result["room"] == 1
    assert short["room"] == 0


@pytest.mark.parametrize(("rooms", "least"), [((None, None), None), ((3, None), 3), ((3, 1), 1), ((-2, 5), 0)])
def test_least_room_is_the_tightest_known_quota_never_negative(rooms: tuple[int | None, ...], least: int | None) -> None:
    assert preflight.least_room(*rooms) == least


def test_a_read_that_aws_refuses_leaves_the_checks_not_run_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto stand-in for AWS; DescribeInstanceTypeOfferings is made to answer AccessDenied."""
    moto = moto_account(monkeypatch)

    def refused(*_args: object, **_kwargs: object) -> None:
        raise preflight.ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}},
                                    "DescribeInstanceTypeOfferings")

    monkeypatch.setattr(preflight, "offered", refused)
    with moto.mock_aws():
        result = preflight.run_checks(params(driver_branch="470", image_name="x*"))
    credentials, image = result["checks"][:2]
    assert credentials["ok"] is True
    assert image == {"name": "image", "ok": False, "not_run": True,
                     "detail": "not run: AWS refused a read (UnauthorizedOperation: not allowed).",
                     "fix": preflight.READ_REFUSED_FIX}


def test_module_refuses_malformed_gpu_programs_before_any_aws_call(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ansible.module_utils.testing import patch_module_args

    def no_aws(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("AWS was called")

    monkeypatch.setattr(preflight, "run_checks", no_aws)
    args = {**params(), "gpu_programs": [{"name": "Gctf", "version": "1.06", "cuda": "7.5", "ptx": ["Maxwell"]}]}
    with patch_module_args(args), pytest.raises(SystemExit):
        preflight.main()
    answer = json.loads(capsys.readouterr().out)
    assert answer["failed"] is True
    assert answer["msg"] == ("The profile's gpu_programs cannot be read: gpu_programs[0] (Gctf).ptx: 'Maxwell' is not "
                             "a compute capability; write them as \"5.2\" or sm_52.")
