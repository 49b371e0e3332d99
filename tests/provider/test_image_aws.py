"""playbooks/image.yml on AWS against moto, and provision.yml's refusal of an image of another profile.

The builder is a real moto instance with its real temporaries (key pair, security group),
but moto instances cannot be reached over SSH: the configuration and generalisation run
against a podman container through the role's image_builder_connection seam. A thread
watches moto during the build, because the temporaries exist only while it runs.

The scipion-1.1 profile needs the legacy runner (Ubuntu 16.04: Python 3.5), so the bake goes
through it, and the container standing in for the 16.04 builder is Debian 11 (Python 3.9; no
Ubuntu archive here). The image says so: its BaseOS is what the profile asks for (Ubuntu 16.04,
from Canonical's xenial AMI in moto's catalogue; moto knows no AMI deprecation, so the lookup's
IncludeDeprecated is checked in tests/unit/test_ec2_base_image.py), its ConfiguredOn tag is
what the builder itself recorded: Debian 11, ansible-core 2.15.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from aws_course_helpers import failure, key_pair_names, launch_decoy, tags
from image_helpers import (
    KEPT,
    LEGACY_BASE_IMAGE,
    MACHINE_STATE,
    builder_connection,
    builder_container,
    collection_version,
    existing,
    extra_vars,
    is_project_commit,
    machine_id_size,
    profile,
    seed_machine_state,
)

REGION = "eu-west-1"
COPY_REGION = "eu-central-1"
CANONICAL = "099720109477"
CONTROLLER = "198.51.100.7/32"
XENIAL = "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-*"
BUILDER_FILTER = [{"Name": "tag:Purpose", "Values": ["image-builder"]}, {"Name": "tag:ManagedBy", "Values": ["scipion_cloud"]}]
LIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]


def ec2(region: str = REGION) -> Any:
    return boto3.client("ec2", region_name=region)


@pytest.fixture(scope="module")
def builder() -> Any:
    with builder_container("imgaws", apt_lists=True, image=LEGACY_BASE_IMAGE) as name:
        yield name


def build_args(container: str, output: Path, **extra: Any) -> list[str]:
    values = {"image_builder_connection": builder_connection(container), "image_output_dir": str(output),
              "image_configure_roles": ["desktop"], "profile_vars": {"gpu": False}}
    values.update(extra)
    return ["-e", "profile=scipion-1.1", "-e", "provider=aws", "-e", f"image_controller_cidr={CONTROLLER}",
            *extra_vars(**values)]


class BuilderWatch(threading.Thread):
    """Records the image-builder resources moto holds while a build runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.instances: dict[str, dict[str, Any]] = {}
        self.volumes: dict[str, dict[str, Any]] = {}
        self.key_pairs: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}

    def run(self) -> None:
        client = ec2()
        while not self.stop.is_set():
            try:
                for reservation in client.describe_instances(Filters=BUILDER_FILTER)["Reservations"]:
                    for inst in reservation["Instances"]:
                        self.instances.setdefault(inst["InstanceId"], inst)
                        attached = client.describe_volumes(
                            Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}])["Volumes"]
                        for volume in attached:
                            self.volumes.setdefault(volume["VolumeId"], volume)
                for key in client.describe_key_pairs(Filters=BUILDER_FILTER)["KeyPairs"]:
                    self.key_pairs.setdefault(key["KeyName"], key)
                for group in client.describe_security_groups(Filters=BUILDER_FILTER)["SecurityGroups"]:
                    self.groups[group["GroupId"]] = group
            except Exception:  # noqa: BLE001  (a poll racing a deletion; the next one sees the new state)
                pass
            self.stop.wait(0.3)

    def __enter__(self) -> "BuilderWatch":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.join(timeout=10)


def builder_leftovers() -> dict[str, list[str]]:
    """Image-builder resources still in the region, found independently of the role's audit."""
    client = ec2()
    live = BUILDER_FILTER + [{"Name": "instance-state-name", "Values": LIVE}]
    return {
        "instances": [i["InstanceId"] for r in client.describe_instances(Filters=live)["Reservations"] for i in r["Instances"]],
        "key_pairs": [k["KeyName"] for k in client.describe_key_pairs(Filters=BUILDER_FILTER)["KeyPairs"]],
        "security_groups": [g["GroupId"] for g in client.describe_security_groups(Filters=BUILDER_FILTER)["SecurityGroups"]],
    }


def register_tagged(region: str, name: str, **tag_values: str) -> tuple[str, str]:
    """An AMI with tags (and the snapshot moto makes for it); returns (image id, snapshot id)."""
    client = ec2(region)
    image_id = client.register_image(Name=name, RootDeviceName="/dev/sda1", Architecture="x86_64",
                                     VirtualizationType="hvm")["ImageId"]
    if tag_values:
        client.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tag_values.items()])
    image = client.describe_images(ImageIds=[image_id])["Images"][0]
    return image_id, image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]


def ours(profile_name: str, date: str) -> dict[str, str]:
    return {"ManagedBy": "scipion_cloud", "Profile": profile_name, "BuildDate": date}


def image_ids(region: str, **tag_values: str) -> set[str]:
    flt = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tag_values.items()]
    return {i["ImageId"] for i in ec2(region).describe_images(Owners=["self"], Filters=flt)["Images"]}


def snapshot_ids(region: str) -> set[str]:
    return {s["SnapshotId"] for s in ec2(region).describe_snapshots(OwnerIds=["self"])["Snapshots"]}


def last_failure(stdout: str) -> str:
    """The message of the run's last failed task on the controller: the one that ended the run."""
    lines = [line for line in stdout.splitlines() if line.startswith("fatal: [localhost]: FAILED!")]
    assert lines, stdout[-3000:]
    return lines[-1]


def canonical_xenial() -> str:
    images = ec2().describe_images(Owners=[CANONICAL], Filters=[{"Name": "name", "Values": [XENIAL]}])["Images"]
    assert images, "moto's catalogue has no Canonical 16.04 AMI"
    return max(images, key=lambda i: i["CreationDate"])["ImageId"]


def test_legacy_bake_on_a_debian11_standin_builder_captures_a_tagged_image_prunes_old_ones_and_leaves_no_builder(
        aws_env, run_playbook, builder, tmp_path: Path) -> None:
    client = ec2()
    base = canonical_xenial()
    # Canonical's naming in another account, and newer: the owner filter must skip it.
    impostor, _ = register_tagged(REGION, "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-29990101")
    old = {month: register_tagged(REGION, f"i2pc-cloud-training-scipion-1.1-2025{month}01-000000-v0.0.9",
                                  **ours("scipion-1.1", f"2025-{month}-01T00:00:00Z")) for month in ("01", "02", "03", "04", "05")}
    in_use_running = launch_decoy(old["01"][0], "madrid-training-01", Course="madrid", ManagedBy="scipion_cloud")
    in_use_stopped = launch_decoy(old["03"][0], "madrid-training-02", Course="madrid", ManagedBy="scipion_cloud")
    client.stop_instances(InstanceIds=[in_use_stopped])
    other_profile, _ = register_tagged(REGION, "i2pc-cloud-training-scipion-3-20240101", **ours("scipion-3", "2024-01-01T00:00:00Z"))
    not_ours, _ = register_tagged(REGION, "someone-elses-scipion-1.1", Profile="scipion-1.1", BuildDate="2024-01-01T00:00:00Z")
    old_copies = [register_tagged(COPY_REGION, f"scipion-1.1-2025{m}", **ours("scipion-1.1", f"2025-{m}-01T00:00:00Z"))
                  for m in ("01", "02", "03")]
    seed_machine_state(builder)
    output = tmp_path / "images"

    with BuilderWatch() as watch:
        started = time.monotonic()
        result = run_playbook("image.yml", *build_args(builder, output, image_aws_copy_regions=[COPY_REGION],
                                                        image_keep=3, image_tags={"UserName": "i2pc-training"}))
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-6000:]
    print(f"image build against moto and a container: {elapsed:.0f} s")

    # The builder: the newest Canonical 16.04 AMI, IMDSv2, an encrypted gp3 root of the profile's size,
    # the build's key pair, and a group open to the controller's address only.
    assert len(watch.instances) == 1, watch.instances
    (inst,) = watch.instances.values()
    build_id = tags(inst)["BuildId"]
    assert inst["ImageId"] == base != impostor
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    assert tags(inst)["Purpose"] == "image-builder" and tags(inst)["Profile"] == "scipion-1.1"
    assert inst["KeyName"] == f"scipion-image-{build_id}" and set(watch.key_pairs) == {inst["KeyName"]}
    (volume,) = watch.volumes.values()
    assert (volume["Encrypted"], volume["VolumeType"], volume["Size"]) == (True, "gp3", profile("scipion-1.1")["min_disk_gb"])
    (group,) = watch.groups.values()
    assert [g["GroupId"] for g in inst["NetworkInterfaces"][0]["Groups"]] == [group["GroupId"]]
    assert [(p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]]) for p in group["IpPermissions"]] == \
        [(22, 22, [CONTROLLER])]

    # The image: versioned name, the manifest as tags, its snapshot named after it.
    (image_id,) = image_ids(REGION, BuildId=build_id)
    image = client.describe_images(ImageIds=[image_id])["Images"][0]
    image_tags = tags(image)
    assert re.fullmatch(rf"i2pc-cloud-training-scipion-1\.1-\d{{8}}-\d{{6}}-v{re.escape(collection_version())}", image["Name"])
    assert image_tags["ManagedBy"] == "scipion_cloud" and image_tags["Profile"] == "scipion-1.1"
    assert image_tags["BaseImage"].startswith(base + " ubuntu/images/") and image_tags["BaseOS"] == "Ubuntu 16.04"
    # Configured by the legacy runner, on what really stood in for the builder.
    assert re.fullmatch(r"Debian 11(\.\d+)? \(Python 3\.9\.\d+\), ansible-core 2\.15\.\d+ \(legacy runner\)",
                        image_tags["ConfiguredOn"]), image_tags["ConfiguredOn"]
    assert "Legacy runner: ansible-playbook [core 2.15." in result.stdout
    assert image_tags["Roles"] == "desktop" and image_tags["UserName"] == "i2pc-training"
    assert image_tags["Collection"] == f"i2pc.scipion_cloud {collection_version()}"
    assert is_project_commit(image_tags["CollectionCommit"])
    assert image_tags["component:vnc_server"] == "turbovnc 2.1.1" and image_tags["component:novnc"] == "1.0.0"
    scipion = profile("scipion-1.1")
    assert image_tags["component:scipion"] == (f"1 release {scipion['scipion_release_version']} "
                                               f"devel {scipion['scipion_devel_version']}")
    assert "chimera-1.10.1" in image_tags["component:em_packages"]
    assert "component:cuda" not in image_tags, "a build with gpu: false must not claim a CUDA stack"
    assert image_tags["artifact:cuda_7.5.18_linux.run"] == scipion["cuda_toolkits"][0]["runfile"]["sha256"]
    assert image_tags["artifact:relion-2.0.4.tgz"] == "unconfirmed"
    assert len(image_tags) <= 50 and max(len(v) for v in image_tags.values()) <= 256
    snapshot = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot_tags = tags(client.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0])
    assert snapshot_tags["Name"] == image["Name"] and snapshot_tags["Profile"] == "scipion-1.1"

    # The copy: same name and manifest, plus where it came from.
    (copy_id,) = image_ids(COPY_REGION, BuildId=build_id)
    copy = ec2(COPY_REGION).describe_images(ImageIds=[copy_id])["Images"][0]
    assert copy["Name"] == image["Name"]
    assert tags(copy) == {**image_tags, "SourceImage": f"{REGION}/{image_id}"}

    # Retention: the newest 3 of the profile kept, older ones deleted with their snapshots, except the
    # images a machine (running or stopped) uses; other profiles' and other people's images untouched.
    assert image_ids(REGION, ManagedBy="scipion_cloud", Profile="scipion-1.1") == \
        {image_id, old["05"][0], old["04"][0], old["03"][0], old["01"][0]}
    assert old["02"][1] not in snapshot_ids(REGION) and old["05"][1] in snapshot_ids(REGION)
    assert {other_profile, not_ours, impostor} <= {i["ImageId"] for i in client.describe_images(Owners=["self"])["Images"]}
    assert f"Kept although older, because a machine uses them: {old['03'][0]}, {old['01'][0]}" in result.stdout
    assert image_ids(COPY_REGION, Profile="scipion-1.1") == {copy_id, old_copies[2][0], old_copies[1][0]}
    assert old_copies[0][1] not in snapshot_ids(COPY_REGION)
    assert {in_use_running, in_use_stopped} <= {i["InstanceId"] for r in client.describe_instances()["Reservations"]
                                                for i in r["Instances"] if i["State"]["Name"] in ("running", "stopped")}

    # Nothing of the builder is left, and the run says what it removed.
    assert builder_leftovers() == {"instances": [], "key_pairs": [], "security_groups": []}
    assert f"Removed: instance {inst['InstanceId']}, key-pair {inst['KeyName']}, security-group {group['GroupId']}." in result.stdout
    assert "No image-builder resources are left in eu-west-1." in result.stdout
    assert not list(output.glob(".build-*")), "the build's private folder (key, inventory) must be removed"

    # The manifest file, and the log of both legacy runner's runs on the builder.
    manifest = json.loads((output / f"{image['Name']}.json").read_text())
    assert manifest["images"] == {REGION: image_id, COPY_REGION: copy_id}
    assert manifest["build"]["id"] == build_id and manifest["profile_overrides"] == {"gpu": False}
    assert manifest["artifacts"]["turbovnc_2.1.1_amd64.deb"] == "unconfirmed" and len(manifest["artifacts"]) == 19
    log = (output / f"{image['Name']}.log").read_text()
    assert "PLAY [Configure the machines]" in log and "PLAY [Generalise the machine]" in log

    # The container that stood in for the builder: configured (the desktop role ran) and generalised.
    assert existing(builder, MACHINE_STATE) == []
    assert existing(builder, KEPT) == KEPT
    assert existing(builder, ["/usr/bin/openbox", "/etc/scipion_cloud/xstartup"]) == ["/usr/bin/openbox", "/etc/scipion_cloud/xstartup"]
    assert machine_id_size(builder) == 0
    assert "s33d-pass" not in result.stdout and "s33d-pass" not in log


def test_failed_configuration_leaves_no_builder_and_points_at_the_log(aws_env, run_playbook, builder,
                                                                      tmp_path: Path) -> None:
    output = tmp_path / "images"
    # An invalid value of the desktop role makes its argument check fail at once on the builder.
    args = build_args(builder, output, profile_vars={"gpu": False, "desktop_idle_stop_minutes": "soon"})
    with BuilderWatch() as watch:
        result = run_playbook("image.yml", *args)
    assert result.returncode != 0
    # The legacy runner's failure is printed where it happens, then the last play fails with it, after the cleanup.
    message = last_failure(result.stdout)
    (log,) = output.glob("*.log")
    assert "Configuring the builder with profile scipion-1.1 failed" in message and str(log) in message, message
    assert "The builder and its temporaries were removed" in message
    assert "desktop_idle_stop_minutes" in log.read_text()
    assert "desktop_idle_stop_minutes" in result.stdout, "the end of the log is shown"

    (inst,) = watch.instances.values()
    (group,) = watch.groups
    assert builder_leftovers() == {"instances": [], "key_pairs": [], "security_groups": []}
    assert f"Removed: instance {inst['InstanceId']}, key-pair {inst['KeyName']}, security-group {group}." in result.stdout
    assert image_ids(REGION, ManagedBy="scipion_cloud") == set(), "no image may be captured from a failed build"
    assert not list(output.glob(".build-*")) and not list(output.glob("*.json"))


def test_cleanup_removes_an_interrupted_build_and_reports_another(aws_env, run_playbook, tmp_path: Path) -> None:
    """A build killed before its cleanup: -e image_operation=cleanup removes its temporaries, found by their tags."""
    client = ec2()
    vpc = client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]

    def leave_builder(build_id: str) -> dict[str, str]:
        tag_list = [{"Key": "ManagedBy", "Value": "scipion_cloud"}, {"Key": "Purpose", "Value": "image-builder"},
                    {"Key": "BuildId", "Value": build_id}]
        name = f"scipion-image-{build_id}"
        client.create_key_pair(KeyName=name, TagSpecifications=[{"ResourceType": "key-pair", "Tags": tag_list}])
        group = client.create_security_group(GroupName=name, Description="left", VpcId=vpc,
                                             TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list}])["GroupId"]
        instance = client.run_instances(ImageId=canonical_xenial(), InstanceType="m5.xlarge", MinCount=1, MaxCount=1,
                                        KeyName=name, SecurityGroupIds=[group],
                                        TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list}])["Instances"][0]["InstanceId"]
        return {"key": name, "group": group, "instance": instance}

    interrupted = leave_builder("scipion11-20260101000000-dead")
    running = leave_builder("scipion3-20260101000000-beef")
    result = run_playbook("image.yml", "-e", "profile=scipion-1.1", "-e", "image_operation=cleanup",
                          "-e", "image_build_id=scipion11-20260101000000-dead", "-e", f"image_output_dir={tmp_path}")
    assert result.returncode == 0, result.stdout[-4000:]
    assert (f"Removed: instance {interrupted['instance']}, key-pair {interrupted['key']}, "
            f"security-group {interrupted['group']}.") in result.stdout
    assert (f"Left over in eu-west-1: instance {running['instance']} (build scipion3-20260101000000-beef), "
            f"key-pair {running['key']} (build scipion3-20260101000000-beef), security-group {running['group']} "
            "(build scipion3-20260101000000-beef).") in result.stdout
    assert builder_leftovers() == {"instances": [running["instance"]], "key_pairs": [running["key"]],
                                   "security_groups": [running["group"]]}


def test_bad_input_is_refused_before_any_cloud_call(run_playbook, tmp_path: Path) -> None:
    # A closed port as the AWS endpoint: any cloud call would fail with a connection error instead.
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION}
    cases = [
        (["-e", "profile=scipion-9", "-e", f"image_controller_cidr={CONTROLLER}"],
         ["Unknown profile 'scipion-9'", "scipion-1.1, scipion-3"]),
        (["-e", "profile=scipion-3", "-e", "provider=gcp", "-e", f"image_controller_cidr={CONTROLLER}"],
         ["Unknown provider 'gcp'", "aws, openstack"]),
        (["-e", "profile=scipion-3", "-e", "image_controller_cidr=0.0.0.0/0"],
         ["whole Internet", "image_allow_world_ssh=true"]),
        (["-e", "profile=scipion-3"], ["image_controller_cidr is not set"]),
        (["-e", "profile=scipion-3", "-e", "image_ansible_playbook=/opt/ansible-playbook", "-e", f"image_controller_cidr={CONTROLLER}"],
         ["image_forward_vars and image_ansible_playbook are no longer read", "Remove them"]),
    ]
    for args, expected in cases:
        result = run_playbook("image.yml", *args, "-e", f"image_output_dir={tmp_path}", env=env)
        assert result.returncode != 0
        message = failure(result.stdout)
        assert all(text in message for text in expected), message
    assert list(tmp_path.iterdir()) == []


COURSE: dict[str, Any] = {
    "description": "Image profile check",
    "provider": "aws",
    "profile": "scipion-1.1",
    "profile_vars": {"nvidia_driver_branch": "470"},
    "seats": 1,
    "access": {"ssh_cidrs": ["198.51.100.0/24"], "web_cidrs": ["0.0.0.0/0"]},
    "schedule": {"days": 1, "hours_up_per_day": 8},
    "aws": {"region": REGION, "instance_type": "g4dn.xlarge"},
}


def test_provision_refuses_an_image_of_another_profile_and_names_the_fitting_ones(aws_env, run_playbook,
                                                                                  course_catalogue) -> None:
    wrong, _ = register_tagged(REGION, "i2pc-cloud-training-scipion-3-20260101-000000-v0.1.0",
                               **ours("scipion-3", "2026-01-01T00:00:00Z"))
    right, _ = register_tagged(REGION, "i2pc-cloud-training-scipion-1.1-20260101-000000-v0.1.0",
                               **ours("scipion-1.1", "2026-01-01T00:00:00Z"))
    args = course_catalogue("profilecheck", {**COURSE, "aws": {**COURSE["aws"], "image_id": wrong}})

    result = run_playbook("provision.yml", *args)
    assert result.returncode != 0
    message = failure(result.stdout)
    for text in (f"{wrong} (i2pc-cloud-training-scipion-3-", "was built from profile scipion-3", "uses profile scipion-1.1",
                 f"{right} (i2pc-cloud-training-scipion-1.1-20260101-000000-v0.1.0)", "course_image_profile_check=false"):
        assert text in message, message
    assert "profilecheck-key" not in key_pair_names()

    # With the override the course goes ahead with that image (in check mode: creating the seats proves no more).
    result = run_playbook("provision.yml", *args, "--check", "-e", "course_image_profile_check=false")
    assert result.returncode == 0, result.stdout[-4000:]
    assert f"Course image: {wrong} (i2pc-cloud-training-scipion-3-" in result.stdout
