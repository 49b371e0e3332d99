"""plan.yml against a real moto server: preflight refusals, cost table, budget guard, nothing created."""

from __future__ import annotations

import copy
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


def assert_nothing_created(region: str = "eu-west-1") -> None:
    """No instance, key pair, course security group, address or volume exists after a plan."""
    ec2 = boto3.client("ec2", region_name=region)
    assert ec2.describe_instances()["Reservations"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]] == ["default"]
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_volumes()["Volumes"] == []


def failure(stdout: str) -> str:
    """The msg of the failed task (the refusal), from the default callback's output."""
    lines = [line for line in stdout.splitlines() if line.startswith("fatal: [localhost]: FAILED!")]
    assert len(lines) == 1, stdout
    return lines[0]


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


def test_shipped_madrid_course_plans_and_creates_nothing(aws_env, run_playbook) -> None:
    result = run_playbook("plan.yml", "-e", "course=madrid")
    assert result.returncode == 0, result.stdout
    out = result.stdout
    for expected in (
        "Instances: 20 x g4dn.xlarge (on-demand), image newest AMI named i2pc-cloud-training* owned by self, "
        "encrypted gp3 root volume 30 GB each, default VPC",
        "Key pair: i2pc-training (aws.key_pair, reused; madrid-key is created if it does not exist)",
        "Elastic IPs: none (each seat gets a new public IP at each start)",
        "[ok]   instance type offered: g4dn.xlarge is offered in eu-west-1.",
        "[ok]   GPU and driver: driver branch 470 drives the T4 (Turing) of g4dn.xlarge.",
        "[ok]   instance quota: Service Quotas gave no vCPU quota (NoSuchResourceException), so the legacy "
        "max-instances attribute (20) was used: 0 other instances running + 20 seats = 20 <= 20.",
        "Cost estimate, price table aws-2026-08 (2026-08-26), USD excluding tax (VAT): 20 seats, up 16 h, existing 48 h",
        "Estimated total 194.76 $ excluding tax (VAT) is within the budget of 600.00 $ (405.24 $ to spare).",
    ):
        assert expected in out
    table_rows = [line.split() for line in out.splitlines() if "$/seat" in line]
    assert [row[-4] for row in table_rows] == ["9.392", "0.176", "0.08", "0.09", "9.738"]
    assert [row[-2] for row in table_rows] == ["187.84", "3.52", "1.60", "1.80", "194.76"]
    assert "per seat / total for 20 seats, excluding tax (VAT)" in out
    # The GPU programs' fit is information: the plan succeeds all the same.
    assert_gpu_fit_shown(out)
    assert_nothing_created()


def test_type_not_offered_and_driver_too_old_for_l4(aws_env, run_playbook, course_catalogue) -> None:
    args = course_catalogue("l4course", course_with(aws={"instance_type": "g6.xlarge"}))
    result = run_playbook("plan.yml", *args)
    assert result.returncode != 0
    msg = failure(result.stdout)
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
    assert "Cost estimate" not in result.stdout
    assert_nothing_created()


def test_driver_384_on_t4_is_refused_naming_working_branches(aws_env, run_playbook, course_catalogue) -> None:
    args = course_catalogue("olddriver", course_with(profile_vars={}))  # scipion-1.1 default: 384
    result = run_playbook("plan.yml", *args)
    assert result.returncode != 0
    assert (
        "Preflight refused course olddriver before creating anything. GPU and driver: driver branch 384 cannot "
        "drive the T4 (Turing) of g4dn.xlarge: the T4 needs branch 410 or later. Fix: Set "
        "profile_vars.nvidia_driver_branch to one of 410, 418, 440, 450, 460, 470, 510, 525, 535, 550, 570, 580 "
        "(the CUDA toolkits of the profile keep working on a newer driver), or choose an instance type that branch "
        "384 drives; offered in eu-west-1: none."
    ) in failure(result.stdout)
    assert_nothing_created()


BUDGET_REFUSAL = (
    "Course budget: The estimated total of 366.28 $ excluding tax (VAT) for 20 seats exceeds the course budget of "
    "300.00 $ by 66.28 $ (price table aws-2026-08 (2026-08-26)). To proceed: lower seats to 16 or fewer (18.314 $ per seat); or choose "
    "a cheaper instance type that fits the budget: g4dn.xlarge (194.76 $ in total); or shorten the schedule or "
    "raise budget_usd in the course file; or accept the cost with -e accept_cost=true."
)


@pytest.mark.parametrize("accept", [False, True], ids=["refused", "accept_cost"])
def test_budget_guard(aws_env, run_playbook, course_catalogue, accept: bool) -> None:
    args = course_catalogue("budget", course_with(budget_usd=300, aws={"instance_type": "g5.xlarge"}))
    result = run_playbook("plan.yml", *args, *(["-e", "accept_cost=true"] if accept else []))
    if accept:
        assert result.returncode == 0, result.stdout
        assert ("exceeds the course budget of 300.00 $ by 66.28 $ (price table aws-2026-08 (2026-08-26)). "
                "Going ahead because accept_cost=true was given.") in result.stdout
    else:
        assert result.returncode != 0
        assert BUDGET_REFUSAL in failure(result.stdout)
    assert_nothing_created()


def test_elastic_ips_and_instances_over_the_account_limits(aws_env, run_playbook, course_catalogue) -> None:
    args = course_catalogue("big", course_with(seats=21, budget_usd=None, aws={"elastic_ips": True}))
    result = run_playbook("plan.yml", *args)
    assert result.returncode != 0
    msg = failure(result.stdout)
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
    assert os.environ["AWS_ENDPOINT_URL"] == p2_env
