"""provision.yml and teardown.yml when AWS misbehaves: moto behind the fault proxy (tests/fault_proxy).

Stand-ins: moto for AWS, and the fault proxy in front of it for AWS's faults (throttling,
a zone without capacity, calls held so that a run can be killed at a chosen point). The
playbooks talk to the proxy; the checks go to moto directly, through boto3, so they are
never throttled themselves.

A killed run is SIGKILLed with every process under it (ansible-playbook, its workers, which
detach into sessions of their own, and the module processes), as when the controller
dies; the plain re-run
that follows must finish the course: exactly the course's seats, each tagged and in the
course's record, the access sheet written, nothing left over, the dead run's lock broken.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any, Callable

import boto3
import botocore.config
import botocore.exceptions
import pytest

from aws_course_helpers import (
    REGION,
    Runs,
    course_file,
    course_instances,
    ec2,
    linux_image_id,
    tagged_with_course,
    tags,
)
from fault_proxy import FaultProxy
from fault_proxy.fixtures import PlaybookRun, proxy_env

FULL_ZONE, FREE_ZONE = "eu-west-1a", "eu-west-1b"
HOLD = 300  # seconds a held call waits: far longer than a test needs to kill the run


def seat_names(course: str, seats: int) -> list[str]:
    return [f"{course}-training-{n:02d}" for n in range(1, seats + 1)]


def every_instance() -> list[dict[str, Any]]:
    """Every instance moto has, in any state (each test starts from an empty moto)."""
    pages = ec2().get_paginator("describe_instances").paginate()
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def recorded_instances(output: Path) -> list[str]:
    """The machines the course's record names (none when teardown removed the record or the region)."""
    path = output / "resources.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    return record.get("aws", {}).get(REGION, {}).get("instances", [])


def sheet_names(output: Path) -> list[str]:
    rows = (output / "access.csv").read_text().splitlines()[1:]
    return [row.split(",")[1].strip('"') for row in rows]


def assert_course_complete(course: str, output: Path, seats: int, zone: str = "") -> None:
    """Exactly the seats, one machine each, none launched twice, all tagged and recorded, on the access sheet."""
    names = seat_names(course, seats)
    live = course_instances(course)
    assert [tags(i)["Name"] for i in live] == names
    launched = every_instance()
    assert len(launched) == seats, f"{len(launched)} machines were launched for {seats} seats"
    for inst in launched:
        inst_tags = tags(inst)
        assert inst_tags.get("Course") == course and inst_tags.get("ManagedBy") == "scipion_cloud", inst_tags
        assert inst_tags.get("Seat") == str(names.index(inst_tags["Name"]) + 1)
    assert sorted(recorded_instances(output)) == sorted(i["InstanceId"] for i in live)
    assert sheet_names(output) == names
    if zone:
        assert {i["Placement"]["AvailabilityZone"] for i in live} == {zone}
    assert not (output / "run.lock").exists(), "the run did not release the course's lock"


def assert_stale_lock_broken(course: str, output: str, killed: PlaybookRun) -> None:
    """The re-run found the killed run's lock and broke it, saying so."""
    assert f"Broke the stale lock of course {course}" in output, output[-3000:]
    assert str(killed.proc.pid) in output.split(f"Broke the stale lock of course {course}", 1)[1][:600]


def wait_for_record(output: Path, count: int, timeout: float = 30) -> None:
    """Until the course's record lists `count` machines (the module writes it just after each launch)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(recorded_instances(output)) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"the record never listed {count} machines")


# ---------------------------------------------------------------------------- the stand-in itself
def test_moto_fault_proxy_answers_as_ec2_does(fault_proxy: FaultProxy) -> None:
    """The proxy's faults reach boto3 as AWS's do: codes, HTTP statuses, messages, retries, ClientToken idempotency."""
    no_retry = botocore.config.Config(retries={"mode": "standard", "max_attempts": 1})
    client = boto3.client("ec2", region_name=REGION, endpoint_url=fault_proxy.url, config=no_retry)
    image = linux_image_id()
    subnet = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2().describe_subnets()["Subnets"] if s["DefaultForAz"]}

    def error_of(call: Callable[[], Any]) -> tuple[str, int, str]:
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            call()
        response = raised.value.response
        return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]

    fault_proxy.set_rules([{"throttle": {"percent": 100, "actions": ["DescribeVpcs"]}}])
    code, status, _ = error_of(client.describe_vpcs)
    assert (code, status) == ("RequestLimitExceeded", 503)
    assert client.describe_subnets()["Subnets"], "only the listed actions are throttled"
    sts = boto3.client("sts", region_name=REGION, endpoint_url=fault_proxy.url, config=no_retry)
    fault_proxy.set_rules([{"throttle": {"actions": "all"}}])
    assert error_of(sts.get_caller_identity)[:2] == ("Throttling", 400)

    # 50 % throttling, seeded: botocore's own retries get through, and the same seed throttles the same calls.
    fault_proxy.set_rules([{"throttle": {"percent": 50}}], seed=3)
    retrying = boto3.client("ec2", region_name=REGION, endpoint_url=fault_proxy.url,
                            config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 10}))
    for _ in range(6):
        retrying.describe_availability_zones()
    first = [e["status"] for e in fault_proxy.find("DescribeAvailabilityZones")]
    assert 503 in first and 200 in first
    fault_proxy.forget()
    fault_proxy.set_rules([{"throttle": {"percent": 50}}], seed=3)
    for _ in range(6):
        retrying.describe_availability_zones()
    assert [e["status"] for e in fault_proxy.find("DescribeAvailabilityZones")] == first

    # No capacity in one zone: by Placement or by the subnet's zone, HTTP 500 and EC2's message; other zones launch.
    fault_proxy.set_rules([{"capacity": {"zone": FULL_ZONE, "instance_type": "g4dn.xlarge"}}])
    launch = functools.partial(client.run_instances, ImageId=image, InstanceType="g4dn.xlarge", MinCount=1, MaxCount=1)
    code, status, message = error_of(lambda: launch(Placement={"AvailabilityZone": FULL_ZONE}))
    assert (code, status) == ("InsufficientInstanceCapacity", 500)
    assert message.startswith(f"We currently do not have sufficient g4dn.xlarge capacity in the Availability Zone you "
                              f"requested ({FULL_ZONE}).") and f"choosing {FREE_ZONE}, eu-west-1c." in message
    assert error_of(lambda: launch(SubnetId=subnet[FULL_ZONE]))[0] == "InsufficientInstanceCapacity"
    assert launch(SubnetId=subnet[FULL_ZONE], InstanceType="g5.xlarge")["Instances"], "another type still fits"
    placed = launch(SubnetId=subnet[FREE_ZONE])["Instances"][0]
    assert placed["Placement"]["AvailabilityZone"] == FREE_ZONE

    # ClientToken: the same launch again returns the same machine; other parameters or a terminated machine are refused.
    fault_proxy.set_rules([])
    one = launch(ClientToken="seat-1")["Instances"][0]["InstanceId"]
    assert launch(ClientToken="seat-1")["Instances"][0]["InstanceId"] == one
    assert error_of(lambda: launch(ClientToken="seat-1", InstanceType="g5.xlarge"))[:2] == ("IdempotentParameterMismatch", 400)
    ec2().terminate_instances(InstanceIds=[one])
    assert error_of(lambda: launch(ClientToken="seat-1"))[:2] == ("IdempotentInstanceTerminated", 400)

    # A dropped connection is retried by botocore; a call held at request never reaches moto if its caller hangs up.
    fault_proxy.set_rules([{"drop": {"actions": ["DescribeKeyPairs"], "times": 1}}])
    assert retrying.describe_key_pairs()["KeyPairs"] == []
    assert [e["status"] for e in fault_proxy.find("DescribeKeyPairs")] == ["dropped", 200]
    fault_proxy.set_rules([{"delay": {"seconds": 1.5, "actions": ["DescribeKeyPairs"]}}])
    started = time.monotonic()
    client.describe_key_pairs()
    assert time.monotonic() - started >= 1.5
    impatient = boto3.client("ec2", region_name=REGION, endpoint_url=fault_proxy.url,
                             config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 1}, read_timeout=1))
    fault_proxy.set_rules([{"delay": {"seconds": HOLD, "actions": ["CreateKeyPair"]}}])
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        impatient.create_key_pair(KeyName="never-made")
    fault_proxy.wait_for("CreateKeyPair", status="abandoned", timeout=10)
    assert ec2().describe_key_pairs()["KeyPairs"] == []

    logged = [json.loads(line) for line in (fault_proxy.log_path or Path()).read_text().splitlines()]
    assert {"request", "forwarded", "answer"} <= {e["event"] for e in logged}


# ---------------------------------------------------------------------------- throttling and capacity
def test_twenty_seats_on_moto_with_injected_throttling_and_a_zone_out_of_capacity(
        fault_proxy: FaultProxy, run_playbook, course_catalogue, tmp_path: Path) -> None:
    course, seats = "crowded", 20
    fault_proxy.set_rules([{"throttle": {"percent": 20, "actions": "all"}}, {"capacity": {"zone": FULL_ZONE}}], seed=20)
    args = course_catalogue(course, course_file(seats, image_id=linux_image_id(), availability_zones=[FULL_ZONE, FREE_ZONE]))
    runs = Runs(functools.partial(run_playbook, env=proxy_env(fault_proxy)), args)
    output = tmp_path / "output" / course

    runs("provision.yml")
    assert_course_complete(course, output, seats, zone=FREE_ZONE)
    throttled = fault_proxy.find(code="RequestLimitExceeded")
    assert len(throttled) >= 10 and len({e["action"] for e in throttled}) >= 5, "the run was hardly throttled"
    assert "RunInstances" in {e["action"] for e in throttled}
    assert fault_proxy.find("RunInstances", code="InsufficientInstanceCapacity"), "no launch was tried in the full zone"

    before = len(fault_proxy.find(code="RequestLimitExceeded"))
    _, counts = runs("provision.yml")
    assert counts["changed"] == 0
    assert len(fault_proxy.find(code="RequestLimitExceeded")) > before, "the re-run was not throttled"
    assert_course_complete(course, output, seats, zone=FREE_ZONE)


# ---------------------------------------------------------------------------- killed runs
SEATS = 4
CREATING = {"CreateKeyPair", "ImportKeyPair", "CreateSecurityGroup"}  # the first calls of a run that create something


def kill_before_launch(proxy: FaultProxy, output: Path) -> None:
    """Hold the first call that creates something (key pair or group); kill the run while it waits."""
    proxy.set_rules([{"delay": {"seconds": HOLD, "actions": sorted(CREATING)}}])
    proxy.wait_until(lambda events: any(e["event"] == "request" and e["action"] in CREATING for e in events))


def after_kill_before_launch(proxy: FaultProxy, course: str, output: Path) -> None:
    held = [e for e in proxy.find(event="request") if e["action"] in CREATING]
    proxy.wait_for(held[0]["action"], status="abandoned", timeout=10)
    assert every_instance() == [] and not proxy.find("RunInstances", event="request")


def kill_in_key_pair(proxy: FaultProxy, output: Path) -> None:
    """AWS makes the key pair but its answer (the private key) is held: kill then."""
    proxy.set_rules([{"delay": {"seconds": HOLD, "actions": ["CreateKeyPair"], "at": "answer"}}])
    proxy.wait_for("CreateKeyPair", event="forwarded")


def after_kill_in_key_pair(proxy: FaultProxy, course: str, output: Path) -> None:
    assert every_instance() == [] and tagged_with_course(course)["key_pairs"], "the key pair should exist, unanswered"


def kill_mid_launch(proxy: FaultProxy, output: Path, answered: int = 1) -> None:
    """`answered` launches are answered; the others reach moto but their answers are held: kill then."""
    proxy.set_rules([{"delay": {"seconds": HOLD, "actions": ["RunInstances"], "after": answered, "at": "answer"}}])
    proxy.wait_for("RunInstances", event="forwarded", count=SEATS)
    if answered:
        proxy.wait_for("RunInstances", event="answer", count=answered)
        wait_for_record(output, answered)


def after_kill_mid_launch(proxy: FaultProxy, course: str, output: Path, answered: int = 1) -> None:
    assert len(course_instances(course)) == SEATS and len(recorded_instances(output)) == answered, \
        "the killed run should leave machines that its record does not name"


def kill_after_launch(proxy: FaultProxy, output: Path) -> None:
    """Every launch answered and recorded; kill on the first poll of the wait for the machines to run."""
    proxy.set_rules([{"delay": {"seconds": 5, "actions": ["RunInstances"], "after": SEATS - 1, "at": "answer"}}])
    last = proxy.wait_for("RunInstances", event="forwarded", count=SEATS)[-1]
    proxy.set_rules([{"delay": {"seconds": HOLD, "actions": ["DescribeInstances"]}}])  # before the held answer is sent
    proxy.wait_until(lambda events: any(e["event"] == "request" and e["action"] == "DescribeInstances"
                                        and e["seq"] > last["seq"] for e in events))


def after_kill_after_launch(proxy: FaultProxy, course: str, output: Path) -> None:
    assert len(recorded_instances(output)) == SEATS and not (output / "access.csv").exists()


KILL_POINTS = {
    "before_launch": (kill_before_launch, after_kill_before_launch),
    # The key pair was made but its private key never came back: the re-run makes it again.
    "keypair_unanswered": (kill_in_key_pair, after_kill_in_key_pair),
    "mid_launch": (kill_mid_launch, after_kill_mid_launch),
    # Every launch reached AWS, none was answered: the record names no seat, yet the re-run keeps
    # the edition (the machines are named like the seats) and gets them back by their launch tokens.
    "unanswered_launch": (functools.partial(kill_mid_launch, answered=0),
                          functools.partial(after_kill_mid_launch, answered=0)),
}


def killed_provision_is_finished(point: tuple[Callable, Callable], proxy: FaultProxy, run_playbook, args: list[str],
                                 course: str, output: Path, log: Path) -> None:
    """Provision killed at a point, then a plain re-run: the course is complete and the dead run's lock broken."""
    kill_at, check_killed = point
    with PlaybookRun("provision.yml", args, proxy_env(proxy), log) as killed:
        kill_at(proxy, output)
        assert killed.proc.poll() is None, killed.output[-3000:]
        killed.kill()
    check_killed(proxy, course, output)
    assert (output / "run.lock").exists(), "the killed run left no lock"

    proxy.set_rules([])
    rerun = run_playbook("provision.yml", *args, env=proxy_env(proxy))
    assert rerun.returncode == 0, rerun.stdout[-5000:]
    assert_course_complete(course, output, SEATS)
    assert_stale_lock_broken(course, rerun.stdout, killed)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_provision_killed_on_moto_is_finished_by_a_rerun(point: str, fault_proxy: FaultProxy, run_playbook,
                                                          course_catalogue, tmp_path: Path) -> None:
    course = f"killed-{point.split('_')[0]}"
    args = course_catalogue(course, course_file(SEATS, image_id=linux_image_id()))
    killed_provision_is_finished(KILL_POINTS[point], fault_proxy, run_playbook, args, course, tmp_path / "output" / course,
                                 tmp_path / "killed.log")


def test_provision_killed_on_moto_before_the_sheet_then_teardown_killed_after_its_terminate_are_finished_by_reruns(
        fault_proxy: FaultProxy, run_playbook, course_catalogue, tmp_path: Path) -> None:
    course = "killed-after"
    args = course_catalogue(course, course_file(SEATS, image_id=linux_image_id()))
    output = tmp_path / "output" / course
    killed_provision_is_finished((kill_after_launch, after_kill_after_launch), fault_proxy, run_playbook, args, course,
                                 output, tmp_path / "killed-provision.log")

    # moto terminates at once; the answer is held, so the killed run never learns it and keeps its record.
    fault_proxy.set_rules([{"delay": {"seconds": HOLD, "actions": ["TerminateInstances"], "at": "answer"}}])
    teardown = [*args, "-e", f"confirm_teardown={course}"]
    with PlaybookRun("teardown.yml", teardown, proxy_env(fault_proxy), tmp_path / "killed-teardown.log") as killed:
        fault_proxy.wait_for("TerminateInstances", event="forwarded")
        assert killed.proc.poll() is None, killed.output[-3000:]
        killed.kill()
    assert course_instances(course) == [] and len(recorded_instances(output)) == SEATS
    assert tagged_with_course(course)["security_groups"] and tagged_with_course(course)["key_pairs"]
    assert (output / "run.lock").exists(), "the killed run left no lock"

    fault_proxy.set_rules([])
    rerun = run_playbook("teardown.yml", *teardown, env=proxy_env(fault_proxy))
    assert rerun.returncode == 0, rerun.stdout[-5000:]
    assert "nothing tagged with it is left" in rerun.stdout
    assert tagged_with_course(course) == {k: [] for k in tagged_with_course(course)}
    assert {i["State"]["Name"] for i in every_instance()} == {"terminated"} and len(every_instance()) == SEATS
    assert recorded_instances(output) == [] and not (output / "run.lock").exists()
    assert_stale_lock_broken(course, rerun.stdout, killed)
