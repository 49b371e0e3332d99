"""Ownership on AWS (against moto): the course acts on what its record says it created, not on tags.

Anyone allowed to tag can give a machine or a group the course's tags; these tests make
such decoys with boto3 and check that lifecycle, provision and teardown leave them alone
(naming them) until they are adopted, that Elastic IPs leave no trace after an interrupted
run, and that teardown covers every region the course used.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aws_course_helpers import (
    PROJECT,
    REGION,
    Runs,
    course_file,
    course_instances,
    ec2,
    failure,
    ingress,
    instance,
    key_pair_names,
    launch_decoy,
    linux_image_id,
    security_group,
    tagged_with_course,
    tags,
)

OTHER_REGION = "eu-central-1"
OURS = {"Course": "madrid", "ManagedBy": "scipion_cloud"}


def record_of(output: Path) -> dict[str, Any]:
    return json.loads((output / "resources.json").read_text())


def one_line(text: str) -> str:
    return " ".join(text.split())


def state_of(instance_id: str) -> str:
    return instance(instance_id)["State"]["Name"]


def test_decoy_tagged_by_hand_is_left_alone_until_adopted(aws_env, run_playbook, course_catalogue, tmp_path: Path) -> None:
    image_id = linux_image_id()
    args = course_catalogue("madrid", course_file(2, image_id=image_id))
    output = tmp_path / "output" / "madrid"
    runs = Runs(run_playbook, args)
    runs("provision.yml")
    seats = [i["InstanceId"] for i in course_instances("madrid")]
    assert sorted(record_of(output)["aws"][REGION]["instances"]) == sorted(seats)

    # Tagged into the course by hand, even under the name of seat 1.
    decoy = launch_decoy(image_id, "madrid-training-01", **OURS)

    out, _ = runs("lifecycle.yml", "-e", "course_action=stop")
    assert {state_of(i) for i in seats} == {"stopped"} and state_of(decoy) == "running"
    text = one_line(out)
    assert f"{decoy} (madrid-training-01)" in text and f"-e course_adopt={decoy}" in text, text[-3000:]

    # The course's status and access sheet know only its own machines.
    out, _ = runs("lifecycle.yml", "-e", "course_action=status")
    assert out.count("madrid-training-01  stopped") == 1

    out, _ = runs("teardown.yml", "-e", "confirm_teardown=madrid", ok=False)
    assert all(state_of(i) == "terminated" for i in seats) and state_of(decoy) == "running"
    assert security_group("madrid-sg") is None and "madrid-key" not in key_pair_names()
    text = one_line(out)
    assert "Still tagged with course madrid after teardown" in text and f"{REGION}: instance {decoy} (madrid-training-01)" in text
    assert f"-e course_adopt={decoy}" in one_line(out)

    # Adopted, it is the course's: stopped by lifecycle, then terminated by teardown.
    runs("lifecycle.yml", "-e", "course_action=stop", "-e", f"course_adopt={decoy}")
    assert state_of(decoy) == "stopped" and decoy in record_of(output)["aws"][REGION]["instances"]
    out, _ = runs("teardown.yml", "-e", "confirm_teardown=madrid")
    assert state_of(decoy) == "terminated" and "nothing tagged with it is left" in out
    assert record_of(output)["aws"][REGION].get("instances", []) == []


def test_course_without_a_record_refuses_until_adopted(aws_env, run_playbook, course_catalogue, tmp_path: Path) -> None:
    """A course provisioned before records were kept: tagged machines, no resources.json."""
    args = course_catalogue("madrid", course_file(2, image_id=linux_image_id()))
    output = tmp_path / "output" / "madrid"
    runs = Runs(run_playbook, args)
    runs("provision.yml")
    seats = [i["InstanceId"] for i in course_instances("madrid")]
    (output / "resources.json").unlink()

    for playbook, extra in (("lifecycle.yml", "course_action=stop"), ("teardown.yml", "confirm_teardown=madrid"),
                            ("provision.yml", "course_aws_allow_shrink=false")):
        out, _ = runs(playbook, "-e", extra, ok=False)
        text = one_line(failure(out))
        assert "has no record of what it created" in text and "-e course_adopt=all" in text, text
        assert f"-e course_adopt={','.join(seats)}" in text or f"-e course_adopt={','.join(reversed(seats))}" in text
        assert {state_of(i) for i in seats} == {"running"}
    assert not (output / "resources.json").exists()

    # Status still reports (nothing of the course's own), and says what to do.
    out, _ = runs("lifecycle.yml", "-e", "course_action=status")
    assert "-e course_adopt=all" in one_line(out)

    runs("lifecycle.yml", "-e", "course_action=stop", "-e", "course_adopt=all")
    assert {state_of(i) for i in seats} == {"stopped"}
    assert sorted(record_of(output)["aws"][REGION]["instances"]) == sorted(seats)

    # Its group and key pair carry its tags but are not recorded: left alone, until adopted too.
    out, _ = runs("teardown.yml", "-e", "confirm_teardown=madrid", ok=False)
    assert security_group("madrid-sg") is not None and "madrid-key" in key_pair_names()
    assert {state_of(i) for i in seats} == {"terminated"}
    out, _ = runs("teardown.yml", "-e", "confirm_teardown=madrid", "-e", "course_adopt=all")
    assert "nothing tagged with it is left" in out
    assert security_group("madrid-sg") is None and "madrid-key" not in key_pair_names()
    assert not (output / "madrid-key.pem").exists()


def test_hand_made_group_of_the_course_name_is_refused_and_kept(aws_env, run_playbook, course_catalogue) -> None:
    client = ec2()
    premade = client.create_security_group(GroupName="madrid-sg", Description="the institute's own")["GroupId"]
    client.authorize_security_group_ingress(GroupId=premade, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="10.0.0.0/8")
    image_id = linux_image_id()
    runs = Runs(run_playbook, course_catalogue("madrid", course_file(1, image_id=image_id)))

    out, _ = runs("provision.yml", ok=False)
    text = one_line(failure(out))
    assert f"Security group madrid-sg ({premade}) already exists" in text and "was not created by this collection" in text
    assert "set aws.security_group: madrid-sg" in text, text
    assert course_instances("madrid") == [] and "madrid-key" not in key_pair_names(), "refused before creating anything"
    assert ingress(security_group("madrid-sg")) == {(22, "10.0.0.0/8")}

    out, _ = runs("teardown.yml", "-e", "confirm_teardown=madrid")
    assert security_group("madrid-sg")["GroupId"] == premade and ingress(security_group("madrid-sg")) == {(22, "10.0.0.0/8")}

    # Reused on purpose (aws.security_group), it launches the seats as it is and survives teardown.
    runs.args = course_catalogue("madrid", course_file(1, image_id=image_id, security_group="madrid-sg"))
    runs("provision.yml")
    (seat,) = course_instances("madrid")
    assert [g["GroupId"] for g in seat["SecurityGroups"]] == [premade]
    assert ingress(security_group("madrid-sg")) == {(22, "10.0.0.0/8")} and "ManagedBy" not in tags(security_group("madrid-sg"))
    out, _ = runs("teardown.yml", "-e", "confirm_teardown=madrid")
    assert "nothing tagged with it is left" in out and state_of(seat["InstanceId"]) == "terminated"
    assert security_group("madrid-sg")["GroupId"] == premade and ingress(security_group("madrid-sg")) == {(22, "10.0.0.0/8")}

    # A group given the course's tags by hand is not the course's either: refused, naming how to adopt it.
    forged = client.create_security_group(GroupName="forged-sg", Description="tagged by hand", TagSpecifications=[
        {"ResourceType": "security-group", "Tags": [{"Key": "Course", "Value": "forged"},
                                                     {"Key": "ManagedBy", "Value": "scipion_cloud"}]}])["GroupId"]
    runs.args = course_catalogue("forged", course_file(1, image_id=image_id))
    out, _ = runs("provision.yml", ok=False)
    text = one_line(failure(out))
    assert f"Security group forged-sg ({forged})" in text and "carries the course's tags" in text
    assert f"-e course_adopt={forged}" in text and course_instances("forged") == []


def run_until_recorded(args: list[str], output: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """provision.yml, killed (SIGKILL, with the module it runs) as soon as the record names a machine."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/provision.yml", *args],
                            cwd=PROJECT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            path = output / "resources.json"
            if path.exists() and json.loads(path.read_text()).get("aws", {}).get(REGION, {}).get("instances"):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "")


def test_provision_killed_after_launch_leaves_no_address_after_teardown(aws_env, run_playbook, course_catalogue,
                                                                        tmp_path: Path) -> None:
    # One seat: the kill comes right after its record is written (with several seats launched in
    # parallel, one could return in the instant between the kill and its record).
    args = course_catalogue("madrid", course_file(1, image_id=linux_image_id(), elastic_ips=True))
    output = tmp_path / "output" / "madrid"
    killed = run_until_recorded(args, output)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-3000:]
    launched = record_of(output)["aws"][REGION]["instances"]
    assert launched and all(state_of(i) in ("pending", "running") for i in launched)

    # What an interrupted run of the old two-step routine left: an address on a seat, never tagged.
    untagged = ec2().allocate_address(Domain="vpc")["AllocationId"]
    ec2().associate_address(AllocationId=untagged, InstanceId=launched[0])

    out, _ = Runs(run_playbook, args)("teardown.yml", "-e", "confirm_teardown=madrid")
    assert "nothing tagged with it is left" in out
    assert ec2().describe_addresses()["Addresses"] == []
    assert course_instances("madrid") == [] and all(state_of(i) == "terminated" for i in launched)


def test_every_region_the_course_used_is_torn_down_and_audited(aws_env, run_playbook, course_catalogue,
                                                               tmp_path: Path) -> None:
    for region in (REGION, OTHER_REGION):
        ec2(region).register_image(Name="scipion-course-2026", RootDeviceName="/dev/xvda", Architecture="x86_64",
                                   VirtualizationType="hvm")
    image = {"image_name": "scipion-course-*", "image_owners": ["self"]}
    output = tmp_path / "output" / "madrid"
    runs = Runs(run_playbook, course_catalogue("madrid", course_file(1, elastic_ips=True, **image)))
    runs("provision.yml")
    private_key = (output / "madrid-key.pem").read_text()
    runs.args = course_catalogue("madrid", course_file(1, region=OTHER_REGION, **image))
    runs("provision.yml")

    record = record_of(output)["aws"]
    assert sorted(record) == [OTHER_REGION, REGION]
    for region in (REGION, OTHER_REGION):
        assert len(record[region]["instances"]) == 1 and record[region]["security_group"]["id"].startswith("sg-")
        assert record[region]["key_pair"]["name"] == "madrid-key"
    assert len(record[REGION]["addresses"]) == 1 and "addresses" not in record[OTHER_REGION]
    # One course key everywhere: the key kept from the first region was imported into the second.
    assert (output / "madrid-key.pem").read_text() == private_key
    assert all(ec2(r).describe_key_pairs(KeyNames=["madrid-key"])["KeyPairs"] for r in record)

    out, _ = runs("lifecycle.yml", "-e", "course_action=status")
    assert f"names machines in {REGION} too" in one_line(out)

    out, _ = runs("teardown.yml", "-e", "confirm_teardown=madrid")
    assert "nothing tagged with it is left" in out
    for region in (REGION, OTHER_REGION):
        assert f"Find machines still tagged with the course: {region}" in out
        client = ec2(region)
        assert client.describe_addresses()["Addresses"] == []
        assert [i for r in client.describe_instances()["Reservations"] for i in r["Instances"]
                if i["State"]["Name"] != "terminated"] == []
        assert client.describe_key_pairs()["KeyPairs"] == []
        assert [g["GroupName"] for g in client.describe_security_groups()["SecurityGroups"]] == ["default"]
    assert tagged_with_course("madrid") == {k: [] for k in tagged_with_course("madrid")}
    assert not (output / "madrid-key.pem").exists()
