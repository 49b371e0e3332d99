"""ec2_course_fleet against a misbehaving EC2: throttling, capacity, quotas, retried launches, dying machines.

A real boto3 EC2 client whose answers come from botocore's Stubber (no endpoint is called): every
call must match the queued request, so the tests also assert what the module asked for, and in
which order (a choice that is skipped has no queued answer). Sleeps are recorded, not slept."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from botocore.stub import ANY, Stubber

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.modules import ec2_course_fleet as fleet  # noqa: E402
from fleet_fake_module import FleetModule  # noqa: E402  (tests/unit, on the path as the test's folder)

REGION = "eu-west-1"
IMAGE = "ami-0123456789abcdef0"
GROUP = "sg-0123456789abcdef0"
SEATS = ["madrid-training-01", "madrid-training-02", "madrid-training-03"]
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48}
COURSE_FILTERS = [
    {"Name": "tag:Course", "Values": ["madrid"]},
    {"Name": "tag:ManagedBy", "Values": ["scipion_cloud"]},
    {"Name": "instance-state-name", "Values": fleet.LIVE_STATES},
]


class FakeModule(FleetModule):
    """The fleet of these tests: launching, one launch at a time, placements and types as each test sets."""

    def __init__(self, seats: int = 1, **params: Any) -> None:
        super().__init__(**{"state": "present", "seat_names": SEATS[:seats], "image_id": IMAGE,
                            "instance_type": "g4dn.xlarge", "edition": "20250101T000000Z", "fail_on_shortfall": False,
                            "security_group_ids": [GROUP], "max_parallel_launches": 1, **params})


def machine(instance_id: str, name: str, state: str = "running", instance_type: str = "g4dn.xlarge",
            zone: str = "eu-west-1a", subnet: str = "subnet-aaaa", reason: str = "") -> dict[str, Any]:
    described: dict[str, Any] = {
        "InstanceId": instance_id, "State": {"Name": state, "Code": STATE_CODES[state]}, "InstanceType": instance_type,
        "Placement": {"AvailabilityZone": zone}, "SubnetId": subnet, "PublicIpAddress": "203.0.113.10",
        "Tags": [{"Key": "Name", "Value": name}, {"Key": "Course", "Value": "madrid"},
                 {"Key": "ManagedBy", "Value": "scipion_cloud"}]}
    if reason:
        described["StateReason"] = {"Code": reason.split(":")[0], "Message": reason}
    return described


def token(module: FakeModule, seat: int, instance_type: str = "g4dn.xlarge", subnet: str = "", zone: str = "",
          generation: int = 0) -> str:
    return fleet.client_token(module.params, SEATS[seat - 1], fleet.Choice(instance_type, subnet, zone), generation)


def run_params(client_token: str, instance_type: str = "g4dn.xlarge", subnet: str = "", zone: str = "") -> dict[str, Any]:
    """A RunInstances request: the type, the placement and the token exactly; the rest is the ownership tests' business."""
    request: dict[str, Any] = {key: ANY for key in ("ImageId", "MinCount", "MaxCount", "MetadataOptions",
                                                    "InstanceInitiatedShutdownBehavior", "BlockDeviceMappings",
                                                    "TagSpecifications")}
    request.update(InstanceType=instance_type, ClientToken=client_token)
    if subnet:
        request["NetworkInterfaces"] = [{"DeviceIndex": 0, "SubnetId": subnet, "AssociatePublicIpAddress": True,
                                         "Groups": [GROUP]}]
    else:
        request["SecurityGroupIds"] = [GROUP]
    if zone:
        request["Placement"] = {"AvailabilityZone": zone}
    return request


class Cloud:
    """The stubbed client, wrapped with the module's retry decorator as AnsibleAWSModule.client() does."""

    def __init__(self, client: Any) -> None:
        self.stub = Stubber(client)
        self.stub.activate()
        self.ec2 = RetryingBotoClientWrapper(client, fleet.retry_decorator())

    def error(self, operation: str, code: str, params: dict[str, Any], status: int = 400) -> None:
        self.stub.add_client_error(operation, service_error_code=code, service_message=f"{code}: stubbed",
                                   http_status_code=status, expected_params=params)

    def course_has(self, *instances: dict[str, Any]) -> None:
        self.stub.add_response("describe_instances", {"Reservations": [{"Instances": list(instances)}]},
                               {"Filters": COURSE_FILTERS})

    def image(self) -> None:
        self.stub.add_response("describe_images", {"Images": [{"ImageId": IMAGE, "RootDeviceName": "/dev/sda1"}]},
                               {"ImageIds": [IMAGE]})

    def launches(self, request: dict[str, Any], instance: dict[str, Any]) -> None:
        self.stub.add_response("run_instances", {"Instances": [instance]}, request)

    def refuses(self, request: dict[str, Any], code: str) -> None:
        self.error("run_instances", code, request)

    def described(self, *instances: dict[str, Any]) -> None:
        self.stub.add_response("describe_instances", {"Reservations": [{"Instances": list(instances)}]},
                               {"InstanceIds": [i["InstanceId"] for i in instances]})


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff and poll delays (AWSRetry's and the wait loop's) are recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(fleet.time, "sleep", slept.append)
    return slept


@pytest.fixture(scope="module")
def client() -> Any:
    """One client for the module (building it reads the EC2 model); each test stubs it afresh."""
    return boto3.client("ec2", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing",
                        endpoint_url="https://ec2.eu-west-1.example.invalid")


@pytest.fixture
def cloud(client: Any) -> Iterator[Cloud]:
    stubbed = Cloud(client)
    yield stubbed
    stubbed.stub.deactivate()
    stubbed.stub.assert_no_pending_responses()


def run(cloud: Cloud, module: FakeModule) -> dict[str, Any]:
    return fleet.Fleet(module, cloud.ec2).run()


def test_throttled_paginated_read_and_launch_are_retried_without_a_duplicate(cloud: Cloud, sleeps: list[float]) -> None:
    module = FakeModule()
    first_page, second_page = {"Filters": COURSE_FILTERS}, {"Filters": COURSE_FILTERS, "NextToken": "page-2"}
    cloud.error("describe_instances", "RequestLimitExceeded", first_page, 503)
    cloud.stub.add_response("describe_instances", {"Reservations": [], "NextToken": "page-2"}, first_page)
    cloud.error("describe_instances", "RequestLimitExceeded", second_page, 503)
    cloud.stub.add_response("describe_instances", {"Reservations": [], "NextToken": "page-2"}, first_page)
    cloud.stub.add_response("describe_instances", {"Reservations": []}, second_page)
    cloud.error("describe_images", "ThrottlingException", {"ImageIds": [IMAGE]})
    cloud.image()
    request = run_params(token(module, 1))
    cloud.refuses(request, "RequestLimitExceeded")
    cloud.refuses(request, "RequestLimitExceeded")
    cloud.launches(request, machine("i-1", SEATS[0], "pending"))
    cloud.error("describe_instances", "Throttling", {"InstanceIds": ["i-1"]})
    cloud.described(machine("i-1", SEATS[0]))
    result = run(cloud, module)
    assert [(s["name"], s["id"], s["state"]) for s in result["seats"]] == [(SEATS[0], "i-1", "running")]
    assert result["launched"] == [SEATS[0]] and result["shortfall"] == []
    assert len(sleeps) == 6 and all(0 <= s <= fleet.RETRY["max_delay"] for s in sleeps), "one backoff per refusal"


def test_capacity_in_the_first_subnet_lands_in_the_next_and_later_seats_skip_it(cloud: Cloud) -> None:
    module = FakeModule(seats=2, placements=[{"subnet_id": "subnet-aaaa"}, {"subnet_id": "subnet-bbbb"}])
    cloud.course_has()
    cloud.image()
    cloud.refuses(run_params(token(module, 1, subnet="subnet-aaaa"), subnet="subnet-aaaa"), "InsufficientInstanceCapacity")
    cloud.launches(run_params(token(module, 1, subnet="subnet-bbbb"), subnet="subnet-bbbb"),
                   machine("i-1", SEATS[0], "pending", zone="eu-west-1b", subnet="subnet-bbbb"))
    # the second seat goes straight to subnet-bbbb: no request for subnet-aaaa is queued
    cloud.launches(run_params(token(module, 2, subnet="subnet-bbbb"), subnet="subnet-bbbb"),
                   machine("i-2", SEATS[1], "pending", zone="eu-west-1b", subnet="subnet-bbbb"))
    cloud.described(machine("i-1", SEATS[0], zone="eu-west-1b", subnet="subnet-bbbb"),
                    machine("i-2", SEATS[1], zone="eu-west-1b", subnet="subnet-bbbb"))
    result = run(cloud, module)
    assert [(s["id"], s["instance_type"], s["availability_zone"], s["subnet_id"]) for s in result["seats"]] == [
        ("i-1", "g4dn.xlarge", "eu-west-1b", "subnet-bbbb"), ("i-2", "g4dn.xlarge", "eu-west-1b", "subnet-bbbb")]
    assert result["shortfall"] == [] and result["missing"] == []


def every_choice_out_of_capacity(cloud: Cloud, module: FakeModule) -> None:
    """Seat 1 lands in the first choice; then every choice is out of capacity for seat 2; seat 3 asks for nothing."""
    cloud.course_has()
    cloud.image()
    cloud.launches(run_params(token(module, 1, zone="eu-west-1a"), zone="eu-west-1a"), machine("i-1", SEATS[0], "pending"))
    for instance_type, zone, code in [("g4dn.xlarge", "eu-west-1a", "InsufficientInstanceCapacity"),
                                      ("g4dn.xlarge", "eu-west-1b", "InsufficientInstanceCapacity"),
                                      ("g5.xlarge", "eu-west-1a", "InsufficientCapacity"),
                                      ("g5.xlarge", "eu-west-1b", "Unsupported")]:
        cloud.refuses(run_params(token(module, 2, instance_type, zone=zone), instance_type, zone=zone), code)
    cloud.described(machine("i-1", SEATS[0]))


CAPACITY_MODULE = dict(seats=3, instance_types=["g4dn.xlarge", "g5.xlarge"],
                       placements=[{"availability_zone": "eu-west-1a"}, {"availability_zone": "eu-west-1b"}])
SEAT_2_REASON = ("tried g4dn.xlarge in eu-west-1a (InsufficientInstanceCapacity), g4dn.xlarge in eu-west-1b "
                 "(InsufficientInstanceCapacity), g5.xlarge in eu-west-1a (InsufficientCapacity), g5.xlarge in "
                 "eu-west-1b (Unsupported)")
SEAT_3_REASON = ("tried g4dn.xlarge in eu-west-1a (InsufficientInstanceCapacity, met earlier in this run), g4dn.xlarge in "
                 "eu-west-1b (InsufficientInstanceCapacity, met earlier in this run), g5.xlarge in eu-west-1a "
                 "(InsufficientCapacity, met earlier in this run), g5.xlarge in eu-west-1b (Unsupported, met earlier "
                 "in this run)")
ZONES_HINT = ("add availability zones (aws.availability_zones) or fallback instance types (aws.fallback_instance_types) "
              "to the course file, or run again later")


def test_every_choice_out_of_capacity_returns_the_launched_seats_and_the_shortfall(cloud: Cloud, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    module = FakeModule(**CAPACITY_MODULE, record=str(record))
    every_choice_out_of_capacity(cloud, module)
    result = run(cloud, module)
    assert [(s["name"], s["state"]) for s in result["seats"]] == [(SEATS[0], "running")]
    assert result["shortfall"] == [{"name": SEATS[1], "reason": SEAT_2_REASON, "hint": ZONES_HINT},
                                   {"name": SEATS[2], "reason": SEAT_3_REASON, "hint": ZONES_HINT}]
    assert result["missing"] == SEATS[1:] and result["launched"] == [SEATS[0]] and result["changed"] is True
    assert json.loads(record.read_text())["aws"][REGION]["instances"] == ["i-1"]


def test_every_choice_out_of_capacity_fails_with_every_reason_when_asked(cloud: Cloud) -> None:
    module = FakeModule(**CAPACITY_MODULE, fail_on_shortfall=True)
    every_choice_out_of_capacity(cloud, module)
    run_of = fleet.Fleet(module, cloud.ec2)
    with pytest.raises(fleet.FleetError) as error:
        run_of.run()
    assert str(error.value) == (f"2 of 3 seats could not be launched: {SEATS[1]}: {SEAT_2_REASON}; {SEATS[2]}: "
                                f"{SEAT_3_REASON}. A{ZONES_HINT[1:]}.")
    assert [s["id"] for s in run_of.result["seats"]] == ["i-1"], "the failure still returns the launched seats"
    assert [s["name"] for s in run_of.result["shortfall"]] == SEATS[1:]


def test_a_quota_skips_the_type_everywhere_and_says_to_ask_for_more(cloud: Cloud) -> None:
    module = FakeModule(seats=2, instance_types=["g4dn.xlarge", "g5.xlarge"],
                        placements=[{"availability_zone": "eu-west-1a"}, {"availability_zone": "eu-west-1b"}])
    cloud.course_has()
    cloud.image()
    cloud.refuses(run_params(token(module, 1, zone="eu-west-1a"), zone="eu-west-1a"), "VcpuLimitExceeded")
    cloud.launches(run_params(token(module, 1, "g5.xlarge", zone="eu-west-1a"), "g5.xlarge", zone="eu-west-1a"),
                   machine("i-1", SEATS[0], "pending", "g5.xlarge"))
    for zone in ("eu-west-1a", "eu-west-1b"):
        cloud.refuses(run_params(token(module, 2, "g5.xlarge", zone=zone), "g5.xlarge", zone=zone),
                      "InsufficientInstanceCapacity")
    cloud.described(machine("i-1", SEATS[0], instance_type="g5.xlarge"))
    result = run(cloud, module)
    assert [(s["name"], s["instance_type"]) for s in result["seats"]] == [(SEATS[0], "g5.xlarge")]
    [missing] = result["shortfall"]
    assert missing["reason"].startswith("tried g4dn.xlarge in eu-west-1a (VcpuLimitExceeded, met earlier in this run), "
                                        "g4dn.xlarge in eu-west-1b (VcpuLimitExceeded, met earlier in this run), ")
    assert missing["hint"].startswith(ZONES_HINT + "; ask AWS for a higher EC2 quota for g4dn.xlarge")


def test_a_machine_that_dies_while_starting_is_reported_at_once(cloud: Cloud, sleeps: list[float]) -> None:
    module = FakeModule(seats=2)
    cloud.course_has()
    cloud.image()
    cloud.launches(run_params(token(module, 1)), machine("i-1", SEATS[0], "pending"))
    cloud.launches(run_params(token(module, 2)), machine("i-2", SEATS[1], "pending"))
    reason = "Server.InsufficientInstanceCapacity: Insufficient capacity to satisfy instance request"
    cloud.described(machine("i-1", SEATS[0], "terminated", reason=reason), machine("i-2", SEATS[1], "pending"))
    cloud.described(machine("i-2", SEATS[1]))  # only the live one is still waited for
    result = run(cloud, module)
    assert sleeps == [5], "one poll, not the 900 s timeout"
    assert [s["name"] for s in result["seats"]] == [SEATS[1]] and result["missing"] == [SEATS[0]]
    assert result["shortfall"] == [{
        "name": SEATS[0], "reason": f"i-1 (g4dn.xlarge in subnet-aaaa) went terminated while starting: {reason}",
        "hint": "add availability zones (aws.availability_zones) or subnets (aws.subnet_ids) or fallback instance "
                "types (aws.fallback_instance_types) to the course file, or run again later"}]


def test_a_machine_not_yet_visible_after_its_launch_is_looked_up_again(cloud: Cloud, sleeps: list[float]) -> None:
    module = FakeModule()
    cloud.course_has()
    cloud.image()
    cloud.launches(run_params(token(module, 1)), machine("i-1", SEATS[0], "pending"))
    cloud.error("describe_instances", "InvalidInstanceID.NotFound", {"InstanceIds": ["i-1"]})
    cloud.error("describe_instances", "InvalidInstanceID.NotFound", {"InstanceIds": ["i-1"]})
    cloud.described(machine("i-1", SEATS[0]))
    result = run(cloud, module)
    assert [(s["id"], s["state"]) for s in result["seats"]] == [("i-1", "running")] and len(sleeps) == 2


def test_a_launch_retried_after_a_server_error_keeps_its_token_and_makes_one_machine(cloud: Cloud) -> None:
    module = FakeModule()
    seat_token = token(module, 1)
    cloud.course_has()
    cloud.image()
    cloud.error("run_instances", "InternalError", run_params(seat_token), 500)  # AWS may have launched it anyway
    cloud.launches(run_params(seat_token), machine("i-1", SEATS[0], "pending"))  # the same token: that machine
    cloud.described(machine("i-1", SEATS[0]))
    result = run(cloud, module)
    assert [s["id"] for s in result["seats"]] == ["i-1"] and result["launched"] == [SEATS[0]]


def test_the_token_of_a_terminated_machine_gives_way_to_the_next_generation(cloud: Cloud) -> None:
    module = FakeModule()
    cloud.course_has()
    cloud.image()
    cloud.refuses(run_params(token(module, 1)), "IdempotentInstanceTerminated")
    cloud.launches(run_params(token(module, 1, generation=1)), machine("i-2", SEATS[0], "pending"))
    cloud.described(machine("i-2", SEATS[0]))
    result = run(cloud, module)
    assert [s["id"] for s in result["seats"]] == ["i-2"] and result["shortfall"] == []
    assert token(module, 1, generation=1) == token(module, 1) + "-1"


def test_when_every_token_generation_is_spent_the_seat_tries_its_next_choice(cloud: Cloud) -> None:
    module = FakeModule(placements=[{"subnet_id": "subnet-aaaa"}, {"subnet_id": "subnet-bbbb"}])
    cloud.course_has()
    cloud.image()
    for generation in range(fleet.TOKEN_GENERATIONS):
        cloud.refuses(run_params(token(module, 1, subnet="subnet-aaaa", generation=generation), subnet="subnet-aaaa"),
                      "IdempotentInstanceTerminated")
    cloud.launches(run_params(token(module, 1, subnet="subnet-bbbb"), subnet="subnet-bbbb"),
                   machine("i-9", SEATS[0], "pending", subnet="subnet-bbbb"))
    cloud.described(machine("i-9", SEATS[0], subnet="subnet-bbbb"))
    result = run(cloud, module)
    assert [(s["id"], s["subnet_id"]) for s in result["seats"]] == [("i-9", "subnet-bbbb")] and result["shortfall"] == []


def test_a_token_reused_with_other_settings_names_the_seat_and_tries_nothing_else(cloud: Cloud) -> None:
    module = FakeModule(placements=[{"subnet_id": "subnet-aaaa"}, {"subnet_id": "subnet-bbbb"}], fail_on_shortfall=True)
    cloud.course_has()
    cloud.image()
    cloud.refuses(run_params(token(module, 1, subnet="subnet-aaaa"), subnet="subnet-aaaa"), "IdempotentParameterMismatch")
    with pytest.raises(fleet.FleetError) as error:
        run(cloud, module)
    message = str(error.value)
    assert message.startswith(f"1 of 1 seats could not be launched: {SEATS[0]}: tried g4dn.xlarge in subnet-aaaa "
                              "(IdempotentParameterMismatch: IdempotentParameterMismatch: stubbed)")
    assert "same ClientToken) used other settings" in message and "-e course_adopt=<id>" in message


def test_a_launch_the_record_missed_is_recovered_by_its_token(cloud: Cloud, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    record.write_text(json.dumps({"version": 1, "course": "madrid", "aws": {REGION: {"instances": []}}}))
    module = FakeModule(record=str(record))
    cloud.course_has(machine("i-1", SEATS[0], "pending"))  # launched, then the run died before recording it
    cloud.image()
    cloud.launches(run_params(token(module, 1)), machine("i-1", SEATS[0], "pending"))
    cloud.described(machine("i-1", SEATS[0]))
    result = run(cloud, module)
    assert [s["id"] for s in result["seats"]] == ["i-1"] and result["foreign"] == [] and module.warnings == []
    assert json.loads(record.read_text())["aws"][REGION]["instances"] == ["i-1"]


def test_tokens_are_stable_and_distinct_per_seat_choice_and_edition() -> None:
    module = FakeModule()
    first = token(module, 1)
    assert first == token(FakeModule(), 1) and len(first) == 48 and int(first, 16) >= 0
    others = {token(module, 2), token(module, 1, "g5.xlarge"), token(module, 1, subnet="subnet-aaaa"),
              token(module, 1, zone="eu-west-1a"), token(FakeModule(edition="20250201T000000Z"), 1)}
    assert len(others) == 5 and first not in others
    assert len(token(module, 1, generation=fleet.TOKEN_GENERATIONS - 1)) <= 64


def test_check_mode_calls_nothing_after_reading_and_leaves_where_empty(cloud: Cloud) -> None:
    module = FakeModule(instance_types=["g4dn.xlarge", "g5.xlarge"])
    module.check_mode = True
    cloud.course_has()
    result = run(cloud, module)
    assert [(s["name"], s["state"], s["instance_type"], s["availability_zone"], s["subnet_id"]) for s in result["seats"]] \
        == [(SEATS[0], "pending", "", "", "")]
    assert result["launched"] == [SEATS[0]] and result["shortfall"] == [] and result["missing"] == []
