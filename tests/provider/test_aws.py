"""provision.yml, lifecycle.yml and teardown.yml against a real moto server.

Each test runs the real playbooks (course_load, course_plan, the course role's credentials
and sheet tasks, the course_aws role and its ec2_course_fleet module, amazon.aws modules)
and checks the result through boto3, independently of what the playbooks report.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from aws_course_helpers import (
    SSH_CIDR,
    Runs,
    ansible_inventory,
    course_file,
    course_instances,
    ec2,
    failure,
    ingress,
    instance,
    instances,
    key_pair_names,
    launch_decoy,
    linux_image_id,
    passwords,
    read_credentials,
    read_edition,
    root_volume,
    seat_file_of,
    security_group,
    tagged_with_course,
    tags,
)


def assert_seat_machines(course: str, names: list[str], image_id: str, disk_gb: int, credentials: dict) -> None:
    """Each seat: one instance with the tags, IMDSv2, stop on shutdown, encrypted gp3 root, its own user data."""
    found = course_instances(course)
    assert [tags(i)["Name"] for i in found] == names
    for number, inst in enumerate(found, 1):
        inst_tags = tags(inst)
        assert inst_tags["Course"] == course and inst_tags["ManagedBy"] == "scipion_cloud"
        assert inst_tags["Seat"] == str(number) and inst_tags["UserName"] == "i2pc-training"
        assert "training" in inst_tags["Name"]
        assert inst["ImageId"] == image_id and inst["InstanceType"] == "g4dn.xlarge"
        assert inst["MetadataOptions"]["HttpTokens"] == "required"
        shutdown = ec2().describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="instanceInitiatedShutdownBehavior")
        assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
        volume = root_volume(inst)
        assert (volume["Encrypted"], volume["VolumeType"], volume["Size"]) == (True, "gp3", disk_gb)
        assert tags(volume)["Course"] == course and tags(volume)["Name"] == inst_tags["Name"]
        seat = seat_file_of(inst["InstanceId"])
        assert seat == {"course": course, "seat": inst_tags["Name"], **credentials[inst_tags["Name"]]}


def assert_access_sheet(output: Path, credentials: dict, key_file: str) -> None:
    """access.csv lists every running seat with its current address and password; the files are private."""
    for name in ("access.csv", "access.html", "instructor.html", "credentials.yml"):
        assert (output / name).stat().st_mode & 0o777 == 0o600, name
    rows = [line.split(",") for line in (output / "access.csv").read_text().splitlines()]
    assert rows[0] == ["seat", "name", "state", "ip", "url", "password", "shell", "instance_type", "availability_zone",
                       "site"]
    machines = {tags(i)["Name"]: i for i in course_instances(output.name)}
    assert len(rows) - 1 == len(machines)
    html = (output / "access.html").read_text()
    instructor = (output / "instructor.html").read_text()
    for row in rows[1:]:
        name, ip = row[1].strip('"'), row[3].strip('"')
        assert ip == machines[name]["PublicIpAddress"]
        assert row[4] == f'"https://{ip}/vnc.html"'
        assert row[5] == f'"{credentials[name]["vnc_password"]}"'
        ssh = f"ssh -i {key_file} ubuntu@{ip}" if key_file else f"ssh ubuntu@{ip}"
        assert row[6] == f'"{ssh}"'
        zone = machines[name]["Placement"]["AvailabilityZone"]
        assert row[7:] == ['"g4dn.xlarge"', f'"{zone}"', '""']  # site: none, a course on one site
        # Where the seat landed and its on-demand price (aws-2026-08: g4dn.xlarge in eu-west-1).
        assert (f'<td class="mono">g4dn.xlarge</td>\n    <td class="mono">{zone}</td>\n    <td>0.587</td>'
                in instructor), instructor
        assert f"https://{ip}/vnc.html" in html and credentials[name]["vnc_password"] in html
        assert credentials[name]["vnc_view_password"] not in html
        assert credentials[name]["vnc_view_password"] in instructor


def test_course_from_check_mode_to_teardown(aws_env, run_playbook, course_catalogue, tmp_path: Path) -> None:
    image_id = linux_image_id()
    hand_made = launch_decoy(image_id, "someone-else-training-01")
    other_course = launch_decoy(image_id, "decoy-training-01", Course="decoy", ManagedBy="scipion_cloud")
    decoy_group = ec2().create_security_group(GroupName="decoy-sg", Description="not the course's")["GroupId"]
    ec2().create_key_pair(KeyName="decoy-key")
    course = "madrid"  # a course of the temporary catalogue, so that inventories/madrid.aws_ec2.yml applies
    args = course_catalogue(course, course_file(3, image_id=image_id))
    output = tmp_path / "output" / course
    runs = Runs(run_playbook, args)

    # Check mode: reports what it would do and creates nothing.
    _, counts = runs("provision.yml", "--check")
    assert counts["changed"] > 0
    assert course_instances(course) == [] and "madrid-key" not in key_pair_names() and security_group("madrid-sg") is None
    assert not (output / "credentials.yml").exists()

    # Provision 3 seats.
    out, counts = runs("provision.yml")
    assert counts["changed"] > 0 and "access.html" in out
    credentials = read_credentials(output / "credentials.yml")
    names = [f"madrid-training-0{n}" for n in (1, 2, 3)]
    assert sorted(credentials) == names
    edition = read_edition(output / "credentials.yml")
    assert re.fullmatch(r"\d{8}T\d{6}Z", edition), edition
    for seat in credentials.values():
        for password in seat.values():
            assert len(password) == 8 and not set(password) & set("0O1lI")
    assert_seat_machines(course, names, image_id, 40, credentials)
    key_file = output / "madrid-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600 and "PRIVATE KEY" in key_file.read_text()
    group = security_group("madrid-sg")
    assert ingress(group) == {(22, SSH_CIDR), (443, "0.0.0.0/0")}
    assert tags(group)["Course"] == course
    for inst in course_instances(course):
        assert inst["KeyName"] == "madrid-key"
        assert [g["GroupId"] for g in inst["SecurityGroups"]] == [group["GroupId"]]
    assert_access_sheet(output, credentials, str(key_file))
    first_ids = [i["InstanceId"] for i in course_instances(course)]

    # The dynamic inventory finds the seats by their Course tag and names them by Name.
    inventory = ansible_inventory("inventories/madrid.aws_ec2.yml")
    assert sorted(inventory["course_madrid"]["hosts"]) == names
    assert inventory["_meta"]["hostvars"][names[0]]["ansible_host"] == course_instances(course)[0]["PublicIpAddress"]

    # A re-run converges without changing anything.
    _, counts = runs("provision.yml")
    assert counts["changed"] == 0

    # The course key pair exists but its private key is gone: a clear refusal, nothing launched.
    key_file.rename(tmp_path / "saved.pem")
    out, _ = runs("provision.yml", ok=False)
    assert "madrid-key" in failure(out) and "private key" in failure(out) and "is missing" in failure(out)
    (tmp_path / "saved.pem").rename(key_file)

    # Grow to 5 seats: exactly the 2 missing ones are launched (verbose: task results are shown, passwords must not be).
    course_catalogue(course, course_file(5, image_id=image_id))
    _, counts = runs("provision.yml", "-v")
    credentials = read_credentials(output / "credentials.yml")
    names5 = names + ["madrid-training-04", "madrid-training-05"]
    assert [i["InstanceId"] for i in course_instances(course)][:3] == first_ids
    assert_seat_machines(course, names5, image_id, 40, credentials)

    # Shrink to 4: refused without confirmation, naming the seat; done with it.
    course_catalogue(course, course_file(4, image_id=image_id))
    out, _ = runs("provision.yml", ok=False)
    assert "madrid-training-05" in failure(out) and "course_aws_allow_shrink=true" in failure(out)
    assert len(course_instances(course)) == 5
    _, counts = runs("provision.yml", "-e", "course_aws_allow_shrink=true")
    assert [tags(i)["Name"] for i in course_instances(course)] == names5[:4]

    # Lifecycle: stop (twice: the second changes nothing), start, reboot, status.
    _, counts = runs("lifecycle.yml", "-e", "course_action=stop")
    assert counts["changed"] > 0 and {i["State"]["Name"] for i in course_instances(course)} == {"stopped"}
    _, counts = runs("lifecycle.yml", "-e", "course_action=stop")
    assert counts["changed"] == 0
    _, counts = runs("lifecycle.yml", "-e", "course_action=start")
    assert counts["changed"] > 0 and {i["State"]["Name"] for i in course_instances(course)} == {"running"}
    assert_access_sheet(output, credentials, str(key_file))  # new addresses after start are on the sheet
    out, counts = runs("lifecycle.yml", "-e", "course_action=reboot")
    assert counts["changed"] > 0 and {i["State"]["Name"] for i in course_instances(course)} == {"running"}
    out, counts = runs("lifecycle.yml", "-e", "course_action=status")
    assert counts["changed"] == 0
    for inst in course_instances(course):
        assert f"{tags(inst)['Name']}  running  https://{inst['PublicIpAddress']}/vnc.html" in out

    # Teardown: refused without confirmation; then exactly the course's resources go.
    out, _ = runs("teardown.yml", ok=False)
    assert "-e confirm_teardown=madrid" in failure(out) and len(course_instances(course)) == 4
    out, counts = runs("teardown.yml", "-e", "confirm_teardown=madrid")
    assert "nothing tagged with it is left" in out
    assert tagged_with_course(course) == {k: [] for k in tagged_with_course(course)}
    assert "madrid-key" not in key_pair_names() and not key_file.exists()
    assert security_group("madrid-sg") is None
    assert instance(hand_made)["State"]["Name"] == "running" and instance(other_course)["State"]["Name"] == "running"
    assert security_group("decoy-sg")["GroupId"] == decoy_group and "decoy-key" in key_pair_names()
    assert [tags(i)["Name"] for i in instances(Course="decoy")] == ["decoy-training-01"]

    for password in passwords(credentials):
        assert all(password not in text for text in runs.outputs), "a password appeared in a playbook's output"


def register_image(name: str) -> str:
    return ec2().register_image(Name=name, RootDeviceName="/dev/xvda", Architecture="x86_64",
                                VirtualizationType="hvm")["ImageId"]


def test_reused_key_and_group_image_by_name_and_elastic_ips(aws_env, run_playbook, course_catalogue, tmp_path: Path) -> None:
    client = ec2()
    client.create_key_pair(KeyName="shared-key")
    shared = client.create_security_group(GroupName="shared-sg", Description="the institute's group")["GroupId"]
    client.authorize_security_group_ingress(GroupId=shared, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="10.0.0.0/8")
    older = register_image("scipion-course-2024")
    time.sleep(1.2)  # AMI creation dates have a resolution of one second
    newer = register_image("scipion-course-2025")
    register_image("other-image-2026")
    course = "eipcourse"
    args = course_catalogue(course, course_file(2, image_name="scipion-course-*", image_owners=["self"],
                                                key_pair="shared-key", security_group="shared-sg", elastic_ips=True))
    output = tmp_path / "output" / course
    runs = Runs(run_playbook, args)

    _, counts = runs("provision.yml")
    machines = course_instances(course)
    assert len(machines) == 2 and {i["ImageId"] for i in machines} == {newer} != {older}
    assert {i["KeyName"] for i in machines} == {"shared-key"}
    assert {g["GroupId"] for i in machines for g in i["SecurityGroups"]} == {shared}
    assert ingress(security_group("shared-sg")) == {(22, "10.0.0.0/8")}, "a reused group must stay as it was"
    assert not list(output.glob("*.pem")) and security_group(f"{course}-sg") is None
    addresses = client.describe_addresses()["Addresses"]
    by_instance = {a["InstanceId"]: a for a in addresses}
    assert len(addresses) == 2 and set(by_instance) == {i["InstanceId"] for i in machines}
    for inst in machines:
        address = by_instance[inst["InstanceId"]]
        assert inst["PublicIpAddress"] == address["PublicIp"]
        wanted = {"Name": tags(inst)["Name"], "Seat": tags(inst)["Seat"], "Course": course, "ManagedBy": "scipion_cloud",
                  "UserName": "i2pc-training"}
        assert tags(address) == wanted
    credentials = read_credentials(output / "credentials.yml")
    assert_access_sheet(output, credentials, "")

    _, counts = runs("provision.yml")
    assert counts["changed"] == 0
    assert len(client.describe_addresses()["Addresses"]) == 2

    out, _ = runs("teardown.yml", "-e", f"confirm_teardown={course}")
    assert "nothing tagged with it is left" in out
    assert client.describe_addresses()["Addresses"] == []
    assert course_instances(course) == []
    assert "shared-key" in key_pair_names() and security_group("shared-sg")["GroupId"] == shared

    for password in passwords(credentials):
        assert all(password not in text for text in runs.outputs), "a password appeared in a playbook's output"


def test_image_not_found_is_refused_before_anything_is_created(aws_env, run_playbook, course_catalogue) -> None:
    result = run_playbook("provision.yml", *course_catalogue("noimage", course_file(1, image_name="no-such-course-image-*")))
    assert result.returncode != 0
    message = failure(result.stdout)
    assert all(text in message for text in ("named like", "no-such-course-image-*", "owned by self", "aws.image_name")), message
    assert course_instances("noimage") == [] and "noimage-key" not in key_pair_names() and security_group("noimage-sg") is None
