"""plan.yml against a real moto server (and without any AWS credentials or clouds.yaml): the whole report
(resources, every check passed, failed or not run, the GPU fit, the cost estimate with fallback types), then one
refusal naming everything to fix; nothing created."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

PROJECT = Path(__file__).resolve().parents[2]
MADRID_LIKE: dict[str, Any] = {
    "description": "plan test course",
    "provider": "aws",
    "profile": "scipion-1.1",
    "profile_vars": {"nvidia_driver_branch": "470"},
    "seats": 20,
    "disk_gb": 30,
    "budget_usd": 600,
    "expected_download_gb_per_seat": 1,
    "access": {"ssh_cidrs": ["10.20.0.0/16"], "web_cidrs": ["0.0.0.0/0"]},
    "schedule": {"days": 2, "hours_up_per_day": 8, "hours_existing": 48},
    "aws": {"region": "eu-west-1", "instance_type": "g4dn.xlarge", "image_name": "i2pc-cloud-training*"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def course_with(**changes: Any) -> dict[str, Any]:
    course = copy.deepcopy(MADRID_LIKE)
    for key, value in changes.items():
        if key in ("aws", "schedule"):
            course[key].update(value)
        elif value is None:
            course.pop(key, None)
        else:
            course[key] = value
    return course


COURSE_IMAGE = "i2pc-cloud-training-2026"


def register_course_image(region: str = "eu-west-1") -> str:
    """An AMI of the account named like the courses' aws.image_name (moto has none of ours)."""
    ec2 = boto3.client("ec2", region_name=region)
    return ec2.register_image(Name=COURSE_IMAGE, RootDeviceName="/dev/sda1", Architecture="x86_64",
                              VirtualizationType="hvm")["ImageId"]


def assert_nothing_created(region: str = "eu-west-1", instances: tuple[str, ...] = ()) -> None:
    """No instance (but ``instances``), key pair, course security group, address or volume exists after a plan."""
    ec2 = boto3.client("ec2", region_name=region)
    found = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert sorted(found) == sorted(instances)
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] == ["default"]
    assert ec2.describe_addresses()["Addresses"] == []
    volumes = ec2.describe_volumes()["Volumes"]
    assert all(a["InstanceId"] in instances for v in volumes for a in v["Attachments"]) and len(volumes) == len(instances)


def failure(stdout: str) -> str:
    """The msg of the failed task (the refusal), from the default callback's output."""
    lines = [line for line in stdout.splitlines() if line.startswith("fatal: [localhost]: FAILED!")]
    assert len(lines) == 1, stdout
    return lines[0]


def shown(stdout: str) -> list[str]:
    """The lines the debug tasks printed, unquoted."""
    return [line.strip().rstrip(",").strip('"').replace('\\"', '"') for line in stdout.splitlines()]


MADRID_GPU_FIT = [
    "GPU programs of profile scipion-1.1 on the T4 (compute capability 7.5) of g4dn.xlarge:",
    "Gctf 1.06 (CUDA 7.5 build, reaches compute capability 5.2): no native code for the T4 (7.5); runs only if the "
    "binary carries PTX, not known.",
    "Gautomatch 0.53 (CUDA 7.5 build, reaches compute capability 5.2): no native code for the T4 (7.5); runs only if "
    "the binary carries PTX, not known.",
    "motioncorr 2.1 (CUDA 7.5 build, reaches compute capability 5.2): no native code for the T4 (7.5); runs only if "
    "the binary carries PTX, not known.",
    "MotionCor2 1.0.2 (CUDA 8.0 build, reaches compute capability 6.2): no native code for the T4 (7.5); runs only if "
    "the binary carries PTX, not known.",
    "Relion 2.0 (CUDA 8.0 build, reaches compute capability 6.2): no native code for the T4 (7.5); runs only if the "
    "build carries PTX, not known.",
]


def assert_gpu_fit_shown(stdout: str) -> None:
    """The plan names each program's verdict on the T4, after the preflight checks and before the cost."""
    shown = [line.strip().strip('",') for line in stdout.splitlines()]
    start = shown.index(MADRID_GPU_FIT[0])
    assert shown[start:start + len(MADRID_GPU_FIT)] == MADRID_GPU_FIT
    assert "cuobjdump --list-elf and --list-ptx" in shown[start + len(MADRID_GPU_FIT)]
    assert stdout.index("[ok]   GPU and driver") < stdout.index(MADRID_GPU_FIT[0]) < stdout.index("Cost estimate")


def test_shipped_madrid_course_plans_and_says_where_its_seats_are(aws_env, run_playbook, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2", region_name="eu-west-1")
    image_id = register_course_image()
    subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["eu-west-1b"]}])["Subnets"][0]
    seat = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="g4dn.xlarge",
                             SubnetId=subnet["SubnetId"], TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                 {"Key": "Name", "Value": "madrid-training-01"}, {"Key": "Course", "Value": "madrid"},
                                 {"Key": "ManagedBy", "Value": "scipion_cloud"}]}])["Instances"][0]["InstanceId"]
    (tmp_path / "madrid").mkdir()
    (tmp_path / "madrid/resources.json").write_text(json.dumps(
        {"version": 1, "course": "madrid", "aws": {"eu-west-1": {"instances": [seat]}}}))

    result = run_playbook("plan.yml", "-e", "course=madrid", "-e", f"course_output_root={tmp_path}")
    assert result.returncode == 0, result.stdout
    out = result.stdout
    for expected in (
        "Instances: 20 x g4dn.xlarge (on-demand), image newest AMI named i2pc-cloud-training* owned by self, "
        "encrypted gp3 root volume 30 GB each, default VPC",
        "Placements: any zone of eu-west-1 (AWS picks)",
        "Key pair: i2pc-training (aws.key_pair, reused; madrid-key is created if it does not exist)",
        "Elastic IPs: none (each seat gets a new public IP at each start)",
        f"[ok]   image: {image_id} ({COURSE_IMAGE}, created ",
        "[ok]   instance type offered: g4dn.xlarge is offered in eu-west-1.",
        "[ok]   GPU and driver: driver branch 470 drives the T4 (Turing) of g4dn.xlarge.",
        "[ok]   instance quota: Service Quotas gave no vCPU quota (NoSuchResourceException), so the legacy "
        "max-instances attribute (20) was used: 0 other instances running + 20 seats = 20 <= 20.",
        "Cost estimate, price table aws-2026-08 (2026-08-26), USD excluding tax (VAT): 20 seats, up 16 h, existing 48 h",
        "Estimated total 194.76 $ excluding tax (VAT) is within the budget of 600.00 $ (405.24 $ to spare).",
    ):
        assert expected in out
    lines = shown(out)
    assert lines[lines.index("The course already has 1 of its 1 recorded machine(s) in eu-west-1:") + 1] == (
        f"  madrid-training-01: g4dn.xlarge in eu-west-1b, subnet {subnet['SubnetId']} (running)")
    table_rows = [line.split() for line in out.splitlines() if "$/seat" in line]
    assert [row[-4] for row in table_rows] == ["9.392", "0.176", "0.08", "0.09", "9.738"]
    assert [row[-2] for row in table_rows] == ["187.84", "3.52", "1.60", "1.80", "194.76"]
    assert "per seat / total for 20 seats, excluding tax (VAT)" in out
    # The GPU programs' fit is information: the plan succeeds all the same.
    assert_gpu_fit_shown(out)
    assert_nothing_created(instances=(seat,))


NO_CREDENTIALS = "not run: no credentials (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; see the " \
                 "credentials check)."
CUDA_12_RELION = {"name": "Relion", "version": "5.0", "cuda": "12.4", "build": "source"}


def test_without_credentials_the_plan_reports_everything_and_names_what_to_fix(
        run_playbook, course_catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS credentials anywhere (and no moto): the checks that need AWS are not run, the GPU table's checks and
    the estimate still are. A fallback whose K80 the profile's CUDA 12.4 build cannot run is refused by name."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in {"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                       "AWS_EC2_METADATA_DISABLED": "true"}.items():
        monkeypatch.setenv(key, value)
    course = course_with(
        budget_usd=300, profile_vars={"nvidia_driver_branch": "470", "gpu_programs": [CUDA_12_RELION]},
        aws={"fallback_instance_types": ["g5.xlarge", "p2.xlarge"], "availability_zones": ["eu-west-1b", "eu-west-1a"]})
    result = run_playbook("plan.yml", *course_catalogue("offline", course))
    assert result.returncode != 0
    lines = shown(result.stdout)
    for expected in (
        "Instance types, in order: g4dn.xlarge, g5.xlarge, p2.xlarge (a fallback is tried for a seat when the types "
        "before it have no capacity)",
        "Placements, in order: zone eu-west-1b, zone eu-west-1a",
        "[FAIL] credentials: No usable AWS credentials were found (Unable to locate credentials). Fix: Set AWS_PROFILE "
        "to a profile of ~/.aws/credentials or ~/.aws/config (aws configure --profile NAME), or export "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys), then run again.",
        f"[--]   image: {NO_CREDENTIALS}",
        f"[--]   instance type offered: {NO_CREDENTIALS}",
        "[ok]   GPU and driver: driver branch 470 drives the T4 (Turing) of g4dn.xlarge (GPU from "
        "roles/course_aws/vars/instance_types.yml; AWS was not asked).",
        f"[--]   fallback instance type g5.xlarge: {NO_CREDENTIALS[:-1]}: whether eu-west-1 offers g5.xlarge. Checked "
        "from roles/course_aws/vars/instance_types.yml and roles/course/vars/gpu_support.yml: driver branch 470 "
        "drives the A10G (Ampere) of g5.xlarge.",
        "[FAIL] fallback instance type p2.xlarge: the profile's GPU programs cannot all run on it: Relion 5.0 (CUDA "
        "12.4 build) cannot run on the K80 (3.7): CUDA 12.4 builds start at compute capability 5.0. Whether eu-west-1 "
        "offers it was not checked (GPU from roles/course_aws/vars/instance_types.yml; AWS was not asked). Fix: Remove "
        "p2.xlarge from aws.fallback_instance_types, or replace it with a type that passes these checks.",
        f"[--]   placements: {NO_CREDENTIALS}",
        f"[--]   vCPU quota: {NO_CREDENTIALS}",
        "[ok]   Elastic IPs: none needed (aws.elastic_ips is false).",
        "Cost estimate, price table aws-2026-08 (2026-08-26), USD excluding tax (VAT): 20 seats, up 16 h, existing 48 h",
        "If every seat landed on fallback g5.xlarge instead of g4dn.xlarge: 18.314 $/seat, 366.28 $ in total "
        "(instance hours at 1.123 $/h).",
        "If every seat landed on fallback p2.xlarge instead of g4dn.xlarge: 15.898 $/seat, 317.96 $ in total "
        "(instance hours at 0.972 $/h).",
    ):
        assert expected in lines, expected
    assert [row.split()[-2] for row in lines if "$/seat" in row and "$/h" not in row.split()[-1]][-1] == "194.76"
    budget = (
        "The budget check uses the most expensive allowed choice, every seat on g5.xlarge (a fallback type): the "
        "estimated total of 366.28 $ excluding tax (VAT) for 20 seats exceeds the course budget of 300.00 $ by 66.28 $ "
        "(price table aws-2026-08 (2026-08-26)). Over the budget: g5.xlarge (366.28 $), p2.xlarge (317.96 $). To "
        "proceed: remove g5.xlarge, p2.xlarge from aws.fallback_instance_types; or lower seats to 16 or fewer "
        "(18.314 $ per seat); or "
    )
    assert any(line.startswith(budget) for line in lines)
    msg = failure(result.stdout)
    assert "Plan refused course offline before creating anything; 4 to fix: (1) credentials: No usable AWS " \
           "credentials were found (Unable to locate credentials). Fix: Set AWS_PROFILE" in msg
    assert "(2) fallback instance type p2.xlarge: the profile's GPU programs cannot all run on it: Relion 5.0" in msg
    assert ("(3) not run: image, instance type offered, fallback instance type g5.xlarge, placements, vCPU quota. "
            "Fix: Make the credentials work (see the credentials check), then run again. (4) budget: " + budget) in msg
    # Everything printed before the refusal: resources, checks, GPU fit, estimate.
    out = result.stdout
    assert out.index("Instance types, in order") < out.index("[FAIL] credentials") < out.index(
        "GPU programs of profile scipion-1.1") < out.index("Cost estimate") < out.index("fatal: [localhost]")


BUDGET_REFUSAL = (
    "Plan refused course budget before creating anything; 1 to fix: (1) budget: The estimated total of 366.28 $ "
    "excluding tax (VAT) for 20 seats exceeds the course budget of 300.00 $ by 66.28 $ (price table aws-2026-08 "
    "(2026-08-26)). To proceed: lower seats to 16 or fewer (18.314 $ per seat); or choose a cheaper instance type that "
    "fits the budget: g4dn.xlarge (194.76 $ in total); or shorten the schedule or raise budget_usd in the course file; "
    "or accept the cost with -e course_accept_cost=true."
)


def test_one_failing_check_is_named_after_the_whole_report_and_provision_creates_nothing(
        aws_env, run_playbook, course_catalogue, tmp_path: Path) -> None:
    """provision.yml imports the same plan: a budget too small is its only failing check, every other check is shown
    as passed with the estimate, and the run stops before any password or resource is made."""
    register_course_image()
    args = course_catalogue("budget", course_with(budget_usd=300, aws={"instance_type": "g5.xlarge"}))
    result = run_playbook("provision.yml", *args)
    assert result.returncode != 0
    checks = [line for line in shown(result.stdout) if line.startswith(("[ok]", "[FAIL]", "[--]"))]
    assert [line.split(":")[0] for line in checks] == [
        "[ok]   credentials", "[ok]   image", "[ok]   instance type offered", "[ok]   GPU and driver",
        "[ok]   instance quota", "[ok]   Elastic IPs"]
    assert "per seat / total for 20 seats, excluding tax (VAT)" in result.stdout
    assert BUDGET_REFUSAL in failure(result.stdout)
    assert "TASK [Let no other run change the course" not in result.stdout
    assert not (tmp_path / "output/budget/credentials.yml").exists()
    assert_nothing_created()


def test_the_old_name_accept_cost_is_refused_with_the_new_one_named(aws_env, run_playbook, course_catalogue) -> None:
    register_course_image()
    course = course_with(budget_usd=300, aws={"instance_type": "g5.xlarge"})
    result = run_playbook("plan.yml", *course_catalogue("budget", course), "-e", "accept_cost=true")
    assert result.returncode != 0
    assert "accept_cost is no longer read; it is now course_accept_cost (-e course_accept_cost=true)." in failure(
        result.stdout)
    assert_nothing_created()


def test_accepted_cost_with_fallback_types_and_zones(aws_env, run_playbook, course_catalogue) -> None:
    register_course_image()
    course = course_with(budget_usd=300, aws={"instance_type": "g5.xlarge", "fallback_instance_types": ["g4dn.xlarge"],
                                              "availability_zones": ["eu-west-1c", "eu-west-1a"]})
    result = run_playbook("plan.yml", *course_catalogue("budget", course), "-e", "course_accept_cost=true")
    assert result.returncode == 0, result.stdout
    lines = shown(result.stdout)
    for expected in (
        "Instance types, in order: g5.xlarge, g4dn.xlarge (a fallback is tried for a seat when the types before it "
        "have no capacity)",
        "Placements, in order: zone eu-west-1c, zone eu-west-1a",
        "[ok]   fallback instance type g4dn.xlarge: offered in eu-west-1; driver branch 470 drives the T4 (Turing) of "
        "g4dn.xlarge.",
        "[ok]   placements: in order: 1. zone eu-west-1c: g5.xlarge, g4dn.xlarge; 2. zone eu-west-1a: g5.xlarge, "
        "g4dn.xlarge.",
        "If every seat landed on fallback g4dn.xlarge instead of g5.xlarge: 9.738 $/seat, 194.76 $ in total "
        "(instance hours at 0.587 $/h).",
        "The budget check uses the most expensive allowed choice, every seat on g5.xlarge (the main type): the "
        "estimated total of 366.28 $ excluding tax (VAT) for 20 seats exceeds the course budget of 300.00 $ by 66.28 $ "
        "(price table aws-2026-08 (2026-08-26)). Over the budget: g5.xlarge (366.28 $). Going ahead because "
        "course_accept_cost=true was given.",
    ):
        assert expected in lines, expected
    assert_nothing_created()


def test_many_problems_are_all_named_at_once(aws_env, run_playbook, course_catalogue) -> None:
    """No course image, a type not offered whose L4 the driver cannot drive, no price for it, the instance and
    Elastic IP limits: one run names them all."""
    course = course_with(seats=21, budget_usd=None, aws={"instance_type": "g6.xlarge", "elastic_ips": True})
    result = run_playbook("plan.yml", *course_catalogue("many", course))
    assert result.returncode != 0
    msg = failure(result.stdout)
    assert "Plan refused course many before creating anything; 6 to fix: (1) image: No available AMI named like " \
           "\\\"i2pc-cloud-training*\\\" owned by self in eu-west-1." in msg
    assert (
        "instance type offered: g6.xlarge is not offered in eu-west-1. Fix: GPU types offered in eu-west-1 that fit "
        "the profile's driver: g4dn.xlarge, g5.xlarge, p4d.24xlarge; g6.xlarge is offered in eu-central-1, "
        "us-east-1; set aws.instance_type or aws.region in the course file."
    ) in msg
    assert (
        "GPU and driver: driver branch 470 cannot drive the L4 (Ada) of g6.xlarge: the L4 needs branch 525 or later. "
        "Fix: Set profile_vars.nvidia_driver_branch to one of 525, 535, 550, 570, 580 (the CUDA toolkits of the "
        "profile keep working on a newer driver), or choose an instance type that branch 470 drives; offered in "
        "eu-west-1: g4dn.xlarge, g5.xlarge, p4d.24xlarge."
    ) in msg
    assert (
        "instance quota: Service Quotas gave no vCPU quota (NoSuchResourceException), so the legacy max-instances "
        "attribute (20) was used: 0 other instances running + 21 seats = 21, over the limit of 20. Fix: Lower seats "
        "to 20, stop other instances, or raise the account's instance quota (Service Quotas console)."
    ) in msg
    assert (
        "Elastic IPs: 21 seats need 21 new Elastic IPs (0 already the course's), but eu-west-1 allows 5 and 0 are "
        "allocated: 16 too many. Fix: Set aws.elastic_ips: false (seats then get a new public IP at each start), "
        "lower seats to 5, release unused Elastic IPs, or request a higher 'EC2-VPC Elastic IPs' quota "
        "(L-0263D0A3) in the Service Quotas console."
    ) in msg
    assert "(6) cost estimate: Price table aws-2026-08 (2026-08-26) has no on-demand price for g6.xlarge in eu-west-1" \
        in msg
    assert "Cost estimate: none, the price table cannot price the course: Price table aws-2026-08" in result.stdout
    assert_nothing_created()


def test_local_course_has_no_cloud_preflight_and_costs_nothing(run_playbook) -> None:
    result = run_playbook("plan.yml", "-e", "course=demo")
    assert result.returncode == 0, result.stdout
    assert "No cloud preflight for provider local." in result.stdout
    assert "Machines: demo-training-01 on https://127.0.0.1:6901/vnc.html, demo-training-02 on " \
           "https://127.0.0.1:6902/vnc.html" in result.stdout
    assert "No budget set (budget_usd); estimated total 0.00 $." in result.stdout


# --- the 2018 course on p2.xlarge, on a moto that still offers p2 ----------------

@pytest.fixture(scope="module")
def moto_with_p2() -> Iterator[str]:
    """A private moto server (tests/fixtures/moto_previous_generation.py) offering p2.xlarge in eu-west-1."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(PROJECT / "tests/fixtures/moto_previous_generation.py"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def p2_env(moto_with_p2: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    urllib.request.urlopen(urllib.request.Request(f"{moto_with_p2}/moto-api/reset", method="POST"), timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_with_p2)
    return moto_with_p2


COURSE_2018 = course_with(
    seats=1, budget_usd=None, expected_download_gb_per_seat=0, profile_vars={}, price_table="aws-2018-01",
    aws={"instance_type": "p2.xlarge"},
)


def test_2018_course_on_p2_with_driver_384_costs_17_706_per_machine(p2_env, run_playbook, course_catalogue) -> None:
    register_course_image()
    result = run_playbook("plan.yml", *course_catalogue("routine2018", COURSE_2018))
    assert result.returncode == 0, result.stdout
    assert "[ok]   instance type offered: p2.xlarge is offered in eu-west-1." in result.stdout
    assert "[ok]   GPU and driver: driver branch 384 drives the K80 (Kepler) of p2.xlarge." in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if "$/seat" in line]
    assert [(row[0].strip('"'), row[-4]) for row in rows] == [("instance", "17.44"), ("gp2", "0.266"), ("per", "17.706")]
    # The K80 (3.7) is within CUDA 7.5's and 8.0's reach; what the 2018 binaries carry is not known.
    assert ("Gctf 1.06 (CUDA 7.5 build, reaches compute capability 5.2): unknown: a CUDA 7.5 build can carry native "
            "code for the K80 (3.7), but which architectures this binary carries is not known.") in result.stdout
    assert_nothing_created()


def test_2018_course_with_elastic_ips_pays_for_them_while_stopped(p2_env, run_playbook, course_catalogue) -> None:
    course = copy.deepcopy(COURSE_2018)
    course["aws"]["elastic_ips"] = True
    register_course_image()
    result = run_playbook("plan.yml", *course_catalogue("eip2018", course))
    assert result.returncode == 0, result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if "$/seat" in line]
    assert [row[-4] for row in rows] == ["17.44", "0.266", "0.192", "17.898"]  # 32 h stopped x 0.006 $/h
    assert "idle Elastic IP while stopped" in result.stdout and "public IPv4" not in result.stdout
    assert "No budget set (budget_usd); estimated total 17.898 $ excluding tax (VAT)." in result.stdout
    assert_nothing_created()


def test_rejected_credentials(p2_env, run_playbook, course_catalogue) -> None:
    auth = urllib.request.Request(f"{p2_env}/moto-api/reset-auth", data=b"0", method="POST",
                                  headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(auth, timeout=10)  # from now on this private server checks keys (IAM has none)
    try:
        result = run_playbook("plan.yml", *course_catalogue("badkeys", COURSE_2018))
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{p2_env}/moto-api/reset-auth", data=b"inf", method="POST",
                                                      headers={"Content-Type": "text/plain"}), timeout=10)
    assert result.returncode != 0
    assert (
        "credentials: AWS rejected the credentials (InvalidClientTokenId: The security token included in the request "
        "is invalid.). Fix: Check that the keys or the profile are current and belong to the course's account. "
        "Set AWS_PROFILE"
    ) in failure(result.stdout)
    assert "[--]   vCPU quota: not run: the credentials do not work (see the credentials check)." in shown(result.stdout)
    assert "17.706 $/seat" in result.stdout  # the estimate all the same
    assert os.environ["AWS_ENDPOINT_URL"] == p2_env


# --- OpenStack: no clouds.yaml -------------------------------------------------------

def test_openstack_course_without_clouds_yaml_reports_the_login_and_the_estimate(
        run_playbook, course_catalogue, tmp_path: Path) -> None:
    course = {
        "description": "plan without a clouds.yaml", "provider": "openstack", "profile": "scipion-1.1", "seats": 2,
        "access": {"ssh_cidrs": ["198.18.0.0/15"], "web_cidrs": ["0.0.0.0/0"]},
        "schedule": {"days": 2, "hours_up_per_day": 8},
        "openstack": {"cloud": "plan-test-cloud", "image": "scipion-1.1-course", "flavor": "g1.c06r12"},
    }
    env = {"OS_CLIENT_CONFIG_FILE": str(tmp_path / "no-clouds.yaml")}
    result = run_playbook("plan.yml", *course_catalogue("noclouds", course), env=env)
    assert result.returncode != 0
    lines = shown(result.stdout)
    assert "Servers: 2 x flavour g1.c06r12, image scipion-1.1-course, disk 30 GB" in lines
    login = next(line for line in lines if line.startswith("[FAIL] OpenStack login: "))
    assert "Could not log in to cloud plan-test-cloud (openstack.cloud) with your clouds.yaml" in login
    assert login.endswith("Fix: Add an entry named plan-test-cloud (openstack.cloud) to a clouds.yaml "
                          "(OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml or "
                          "/etc/openstack/clouds.yaml) with a valid password or application credential, then run again.")
    unrun = [line.split(": ")[0].removeprefix("[--]   ") for line in lines if line.startswith("[--]")]
    assert unrun == ["OpenStack flavour", "OpenStack image", "OpenStack image profile", "OpenStack network",
                     "OpenStack key pair", "OpenStack seat names", "OpenStack record of the course's servers",
                     "OpenStack security group", "OpenStack seats to remove", "OpenStack quota", "OpenStack quota",
                     "OpenStack quota", "OpenStack quota"]
    assert "[--]   OpenStack quota: cores: not run: no login to cloud plan-test-cloud (see the OpenStack login check)." \
        in lines
    assert "Price table egi-fedcloud: free at the point of use." in lines
    refusals = [line for line in result.stdout.splitlines() if line.startswith("fatal: [localhost]: FAILED!")]
    assert "Plan refused course noclouds before creating anything; 2 to fix: (1) OpenStack login: Could not log in" \
        in refusals[-1]
    assert ("(2) not run: OpenStack flavour, OpenStack image, OpenStack image profile, OpenStack network, OpenStack key "
            "pair, OpenStack seat names, OpenStack record of the course's servers, OpenStack security group, OpenStack "
            "seats to remove, OpenStack quota: instances, OpenStack quota: cores, OpenStack quota: RAM (MB), OpenStack "
            "quota: floating IPs. Fix: Make the login work (see the OpenStack login check), then run again.") \
        in refusals[-1]
