"""ec2_course_fleet's ownership rules, with an in-memory EC2 stand-in (no AWS endpoint).

The stand-in answers the handful of EC2 calls the module makes (filters on tags, ids,
states and addresses); the provider tests run the same code against moto."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.modules import ec2_course_fleet as fleet  # noqa: E402
from fleet_fake_module import FleetModule  # noqa: E402  (tests/unit, on the path as the test's folder)

REGION = "eu-west-1"
OURS = {"Course": "madrid", "ManagedBy": "scipion_cloud"}


class FakeEC2:
    """Instances and addresses in memory, with the filters the module uses."""

    def __init__(self) -> None:
        self.instances: dict[str, dict[str, Any]] = {}
        self.addresses: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.on_call: dict[str, Any] = {}

    def add_instance(self, instance_id: str, state: str = "running", **tags: str) -> None:
        self.instances[instance_id] = {"InstanceId": instance_id, "State": {"Name": state}, "LaunchTime": len(self.instances),
                                       "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def add_address(self, allocation_id: str, instance_id: str = "", **tags: str) -> None:
        self.addresses[allocation_id] = {"AllocationId": allocation_id, "PublicIp": f"127.0.0.{len(self.addresses) + 1}",
                                         "InstanceId": instance_id, "AssociationId": f"assoc-{allocation_id}" if instance_id else "",
                                         "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def _hook(self, name: str) -> None:
        self.calls.append(name)
        if name in self.on_call:
            self.on_call[name]()

    @staticmethod
    def _matches(item: dict[str, Any], filters: list[dict[str, Any]], fields: dict[str, Any]) -> bool:
        tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
        for flt in filters:
            name, values = flt["Name"], flt["Values"]
            value = tags.get(name[4:]) if name.startswith("tag:") else fields[name](item)
            if value not in values:
                return False
        return True

    def get_paginator(self, name: str) -> Any:
        assert name == "describe_instances"
        fields = {"instance-id": lambda i: i["InstanceId"], "instance-state-name": lambda i: i["State"]["Name"]}

        class Pages:
            def paginate(inner, Filters: list[dict[str, Any]] | None = None, InstanceIds: list[str] | None = None):
                found = [i for i in self.instances.values() if self._matches(i, Filters or [], fields)
                         and (InstanceIds is None or i["InstanceId"] in InstanceIds)]
                return [{"Reservations": [{"Instances": [dict(i) for i in found]}]}]

        return Pages()

    def describe_addresses(self, Filters: list[dict[str, Any]] | None = None, aws_retry: bool = False) -> dict[str, Any]:
        fields = {"instance-id": lambda a: a["InstanceId"], "allocation-id": lambda a: a["AllocationId"]}
        return {"Addresses": [dict(a) for a in self.addresses.values() if self._matches(a, Filters or [], fields)]}

    def describe_account_attributes(self, AttributeNames: list[str], aws_retry: bool = False) -> dict[str, Any]:
        return {"AccountAttributes": [{"AttributeValues": [{"AttributeValue": "5"}]}]}

    def terminate_instances(self, InstanceIds: list[str], aws_retry: bool = False) -> None:
        self._hook("terminate_instances")
        for instance_id in InstanceIds:
            self.instances[instance_id]["State"] = {"Name": "terminated"}

    def stop_instances(self, InstanceIds: list[str], aws_retry: bool = False) -> None:
        self._hook("stop_instances")
        for instance_id in InstanceIds:
            self.instances[instance_id]["State"] = {"Name": "stopped"}

    def disassociate_address(self, AssociationId: str, aws_retry: bool = False) -> None:
        self._hook("disassociate_address")
        for address in self.addresses.values():
            if address["AssociationId"] == AssociationId:
                address.update(InstanceId="", AssociationId="")

    def release_address(self, AllocationId: str, aws_retry: bool = False) -> None:
        self._hook("release_address")
        assert not self.addresses[AllocationId]["AssociationId"], "released while associated"
        del self.addresses[AllocationId]

    def allocate_address(self, Domain: str, TagSpecifications: list[dict[str, Any]], aws_retry: bool = False) -> dict[str, Any]:
        self._hook("allocate_address")
        allocation_id = f"eipalloc-{len(self.addresses) + 100}"
        self.add_address(allocation_id, **{t["Key"]: t["Value"] for t in TagSpecifications[0]["Tags"]})
        return {"AllocationId": allocation_id, "PublicIp": self.addresses[allocation_id]["PublicIp"]}

    def associate_address(self, AllocationId: str, InstanceId: str, aws_retry: bool = False) -> None:
        self._hook("associate_address")
        self.addresses[AllocationId].update(InstanceId=InstanceId, AssociationId=f"assoc-{AllocationId}")

    def create_tags(self, Resources: list[str], Tags: list[dict[str, str]], aws_retry: bool = False) -> None:
        for resource in Resources:
            self.addresses[resource]["Tags"] += Tags


class FakeModule(FleetModule):
    """The fleet of these tests: two seats, reading unless a test says otherwise, short waits."""

    def __init__(self, check_mode: bool = False, **params: Any) -> None:
        super().__init__(check_mode, **{"state": "status", "seat_names": ["madrid-training-01", "madrid-training-02"],
                                        "tags": {"UserName": "i2pc"}, "wait_timeout": 5, "wait_delay": 0,
                                        "max_parallel_launches": 1, **params})


def write_record(path: Path, **entry: Any) -> None:
    path.write_text(json.dumps({"version": 1, "course": "madrid", "aws": {REGION: entry}}))


def read_entry(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())["aws"][REGION]


@pytest.fixture
def ec2() -> FakeEC2:
    client = FakeEC2()
    client.add_instance("i-seat1", Name="madrid-training-01", **OURS)
    client.add_instance("i-seat2", Name="madrid-training-02", **OURS)
    client.add_instance("i-decoy", Name="madrid-training-01", **OURS)  # tagged by hand, under a seat's name
    return client


def run(ec2: FakeEC2, check_mode: bool = False, **params: Any) -> tuple[dict[str, Any], FakeModule]:
    module = FakeModule(check_mode, **params)
    return fleet.Fleet(module, ec2).run(), module


def test_only_recorded_machines_are_stopped_and_the_decoy_is_named(ec2: FakeEC2, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    write_record(record, instances=["i-seat1", "i-seat2"])
    result, module = run(ec2, state="stopped", record=str(record))
    assert ec2.instances["i-decoy"]["State"]["Name"] == "running"
    assert {ec2.instances[i]["State"]["Name"] for i in ("i-seat1", "i-seat2")} == {"stopped"}
    assert [s["id"] for s in result["seats"]] == ["i-seat1", "i-seat2"] and result["extra"] == []
    assert result["foreign"] == [{"name": "madrid-training-01", "id": "i-decoy", "state": "running"}]
    assert len(module.warnings) == 1 and "i-decoy (madrid-training-01)" in module.warnings[0]
    assert "-e course_adopt=i-decoy" in module.warnings[0]


def test_foreign_machines_are_returned_without_a_warning_when_the_caller_reports_them(ec2: FakeEC2, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    write_record(record, instances=["i-seat1", "i-seat2"])
    result, module = run(ec2, state="status", record=str(record), warn_foreign=False)
    assert [m["id"] for m in result["foreign"]] == ["i-decoy"] and module.warnings == []


def test_adopted_machine_is_recorded_then_acted_on(ec2: FakeEC2, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    write_record(record, instances=["i-seat1", "i-seat2"])
    result, _ = run(ec2, state="stopped", record=str(record), adopt=["i-decoy"])
    assert ec2.instances["i-decoy"]["State"]["Name"] == "stopped" and result["adopted"] == ["i-decoy"]
    assert read_entry(record)["instances"] == ["i-seat1", "i-seat2", "i-decoy"]
    assert [e["id"] for e in result["extra"]] == ["i-decoy"], "a second machine of a seat's name is beyond the seats"


def test_adopting_an_unknown_id_changes_nothing(ec2: FakeEC2, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    write_record(record, instances=["i-seat1"])
    with pytest.raises(fleet.FleetError) as error:
        run(ec2, state="stopped", record=str(record), adopt=["i-0nothere"])
    assert "course_adopt names i-0nothere, not a live machine tagged with course madrid" in str(error.value)
    assert ec2.calls == [] and read_entry(record) == {"instances": ["i-seat1"]}
    result, _ = run(ec2, state="status", record=str(record), adopt=["i-0nothere"], require_adopted=False)
    assert result["adopted"] == []


def test_without_any_record_tagged_machines_stop_everything_but_status(ec2: FakeEC2, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    for state in ("stopped", "running", "rebooted", "absent"):
        with pytest.raises(fleet.FleetError) as error:
            run(ec2, state=state, record=str(record))
        assert "has no record of what it created" in str(error.value) and "-e course_adopt=all" in str(error.value)
    assert ec2.calls == [] and not record.exists()
    status, _ = run(ec2, state="status", record=str(record))
    assert status["seats"] == [] and "-e course_adopt=all" in status["unrecorded"] and not record.exists()
    adopted, _ = run(ec2, state="stopped", record=str(record), adopt=["all"])
    assert sorted(read_entry(record)["instances"]) == ["i-decoy", "i-seat1", "i-seat2"] and adopted["unrecorded"] == ""


def test_record_is_pruned_of_terminated_machines_quietly(ec2: FakeEC2, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    ec2.add_instance("i-old", state="terminated", **OURS)
    write_record(record, instances=["i-seat1", "i-seat2", "i-old"])
    result, _ = run(ec2, state="status", record=str(record))
    assert read_entry(record)["instances"] == ["i-seat1", "i-seat2"] and result["changed"] is False


def test_absent_releases_recorded_addresses_and_those_on_its_machines(ec2: FakeEC2, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    ec2.add_address("eipalloc-untagged", instance_id="i-seat1")            # on a seat, never tagged
    ec2.add_address("eipalloc-spare", **OURS)                                # recorded, on no machine
    ec2.add_address("eipalloc-decoy", instance_id="i-decoy", **OURS)         # on the decoy: not the course's
    ec2.add_address("eipalloc-tagged", **OURS)                               # tagged by hand, never recorded
    write_record(record, instances=["i-seat1", "i-seat2"], addresses=["eipalloc-spare", "eipalloc-gone"])
    result, _ = run(ec2, state="absent", record=str(record))
    assert sorted(ec2.addresses) == ["eipalloc-decoy", "eipalloc-tagged"]
    assert ec2.instances["i-decoy"]["State"]["Name"] == "running"
    assert ec2.calls.index("terminate_instances") < ec2.calls.index("release_address"), "machines first, then addresses"
    assert read_entry(record) == {"instances": [], "addresses": []} and len(result["released"]) == 2


def test_addresses_are_tagged_at_allocation_and_recorded_before_association(ec2: FakeEC2, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    ec2.add_address("eipalloc-spare", **OURS)
    write_record(record, instances=["i-seat1", "i-seat2"], addresses=["eipalloc-spare"])
    associated_while_recorded = []
    ec2.on_call["associate_address"] = lambda: associated_while_recorded.append(sorted(read_entry(record)["addresses"]))
    result, _ = run(ec2, state="present", record=str(record), elastic_ips=True)
    assert result["allocated"] == ["madrid-training-01", "madrid-training-02"]
    assert ec2.calls.count("allocate_address") == 1, "the recorded spare address is used first"
    on = {a["InstanceId"]: a for a in ec2.addresses.values()}
    assert on["i-seat1"]["AllocationId"] == "eipalloc-spare"
    new = on["i-seat2"]["AllocationId"]
    assert associated_while_recorded == [["eipalloc-spare"], sorted(["eipalloc-spare", new])]
    assert fleet.tag_dict(on["i-seat2"]) == {**OURS, "Name": "madrid-training-02", "Seat": "2", "UserName": "i2pc"}
    assert fleet.tag_dict(on["i-seat1"])["Name"] == "madrid-training-01"
    again, _ = run(ec2, state="present", record=str(record), elastic_ips=True)
    assert again["changed"] is False and again["allocated"] == []


def test_each_launch_is_recorded_as_soon_as_it_returns(tmp_path: Path) -> None:
    record = tmp_path / "out" / "resources.json"
    module = FakeModule(state="running", record=str(record))
    seen: list[list[str]] = []

    class Launcher:
        def __init__(self) -> None:
            self.count = 0

        def describe_images(self, **_: Any) -> dict[str, Any]:
            return {"Images": [{"RootDeviceName": "/dev/xvda"}]}

        def run_instances(self, **request: Any) -> dict[str, Any]:
            seen.append(read_entry(record)["instances"] if record.exists() else [])
            self.count += 1
            if self.count == 3:
                raise fleet.botocore.exceptions.ClientError({"Error": {"Code": "InsufficientInstanceCapacity"}}, "RunInstances")
            return {"Instances": [{"InstanceId": f"i-{self.count}", "State": {"Name": "pending"}}]}

    params = dict(module.params, image_id="ami-1", instance_type="g4dn.xlarge")
    recorder = fleet.FleetRecord(str(record), "madrid", REGION, check=False)
    launched, shortfall, unrecorded = fleet.launch_seats(Launcher(), params, [(1, "a"), (2, "b"), (3, "c")],
                                                         lambda i: recorder.change(add={"instances": [i["InstanceId"]]}))
    assert seen == [[], ["i-1"], ["i-1", "i-2"]]
    assert sorted(launched) == ["a", "b"] and [s["name"] for s in shortfall] == ["c"] and unrecorded == []
    assert read_entry(record)["instances"] == ["i-1", "i-2"]


def test_check_mode_writes_no_record(ec2: FakeEC2, tmp_path: Path) -> None:
    record = tmp_path / "resources.json"
    write_record(record, instances=["i-seat1"])
    before = record.read_text()
    result, _ = run(ec2, check_mode=True, state="stopped", record=str(record), adopt=["all"])
    assert result["changed"] and record.read_text() == before and ec2.calls == []
