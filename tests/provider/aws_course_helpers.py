"""Helpers of the AWS course tests: read what the playbooks did through boto3 (against moto)."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml

PROJECT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
LIVE_STATES = ["pending", "running", "stopping", "stopped"]
RECAP_RE = re.compile(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def ec2(region: str = REGION) -> Any:
    return boto3.client("ec2", region_name=region)


def recap(stdout: str) -> dict[str, int]:
    """The PLAY RECAP counters of localhost."""
    found = RECAP_RE.findall(stdout)
    assert found, f"no PLAY RECAP in the output:\n{stdout[-3000:]}"
    ok, changed, unreachable, failed = (int(v) for v in found[-1])
    return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


def failure(stdout: str) -> str:
    """The message of the task that failed."""
    lines = [line for line in stdout.splitlines() if line.startswith("fatal: [localhost]: FAILED!")]
    assert len(lines) == 1, stdout[-3000:]
    return lines[0]


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def instances(**tag_filters: str) -> list[dict[str, Any]]:
    """Live instances (not terminated or shutting down) with the given tags, by Name."""
    filters = [{"Name": "instance-state-name", "Values": LIVE_STATES}]
    filters += [{"Name": f"tag:{k}", "Values": [v]} for k, v in tag_filters.items()]
    found = [i for r in ec2().describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]
    return sorted(found, key=lambda i: tags(i).get("Name", i["InstanceId"]))


def course_instances(course: str) -> list[dict[str, Any]]:
    return instances(Course=course, ManagedBy="scipion_cloud")


def instance(instance_id: str) -> dict[str, Any]:
    return ec2().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def seat_file_of(instance_id: str) -> dict[str, Any]:
    """The /etc/scipion_cloud/seat.yml that the instance's cloud-init user data writes."""
    raw = ec2().describe_instance_attribute(InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]
    text = base64.b64decode(raw).decode()
    assert text.startswith("#cloud-config\n"), text[:80]
    files = yaml.safe_load(text)["write_files"]
    assert [f["path"] for f in files] == ["/etc/scipion_cloud/seat.yml"]
    assert files[0]["permissions"] == "0600" and files[0]["owner"] == "root:root"
    return yaml.safe_load(files[0]["content"])


def root_volume(inst: dict[str, Any]) -> dict[str, Any]:
    volumes = ec2().describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}])["Volumes"]
    assert len(volumes) == 1, volumes
    return volumes[0]


def tagged_with_course(course: str) -> dict[str, list[str]]:
    """Everything still tagged Course=<course>, found independently of the role's audit."""
    client = ec2()
    flt = [{"Name": "tag:Course", "Values": [course]}]
    return {
        "instances": [i["InstanceId"] for i in instances(Course=course)],
        "volumes": [v["VolumeId"] for v in client.describe_volumes(Filters=flt)["Volumes"]],
        "addresses": [a["AllocationId"] for a in client.describe_addresses(Filters=flt)["Addresses"]],
        "security_groups": [g["GroupId"] for g in client.describe_security_groups(Filters=flt)["SecurityGroups"]],
        "key_pairs": [k["KeyName"] for k in client.describe_key_pairs(Filters=flt)["KeyPairs"]],
        "snapshots": [s["SnapshotId"] for s in client.describe_snapshots(Filters=flt)["Snapshots"]],
    }


def security_group(name: str) -> dict[str, Any] | None:
    groups = ec2().describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
    return groups[0] if groups else None


def ingress(group: dict[str, Any]) -> set[tuple[int, str]]:
    """(port, CIDR) pairs a security group lets in."""
    return {(p["FromPort"], r["CidrIp"]) for p in group["IpPermissions"] for r in p.get("IpRanges", [])} | {
        (p["FromPort"], r["CidrIpv6"]) for p in group["IpPermissions"] for r in p.get("Ipv6Ranges", [])}


def key_pair_names() -> set[str]:
    return {k["KeyName"] for k in ec2().describe_key_pairs()["KeyPairs"]}


def linux_image_id() -> str:
    """One of moto's stock AMIs (with a root device), for courses that give aws.image_id."""
    images = ec2().describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])["Images"]
    images = [i for i in images if i.get("RootDeviceName")]
    assert images, "moto has no amzn2 AMI"
    return sorted(images, key=lambda i: i["ImageId"])[0]["ImageId"]


def launch_decoy(image_id: str, name: str, **tag_values: str) -> str:
    """An instance made outside the course (by hand, or by another course)."""
    all_tags = {"Name": name, **tag_values}
    response = ec2().run_instances(
        ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in all_tags.items()]}],
    )
    return response["Instances"][0]["InstanceId"]


def read_credentials(path: Path) -> dict[str, dict[str, str]]:
    """The seats' passwords of a credentials file (without its edition, which read_edition gives)."""
    return {name: seat for name, seat in yaml.safe_load(path.read_text()).items() if name != "edition"}


def read_edition(path: Path) -> str:
    return yaml.safe_load(path.read_text())["edition"]


def passwords(credentials: dict[str, dict[str, str]]) -> list[str]:
    return [p for seat in credentials.values() for p in (seat["vnc_password"], seat["vnc_view_password"])]


def ansible_inventory(inventory: str) -> dict[str, Any]:
    """`ansible-inventory --list` of an inventory file of the project, as JSON."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", inventory, "--list"],
        cwd=PROJECT, text=True, capture_output=True, timeout=120,
        env={**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout, object_hook=lambda d: d.get("__ansible_unsafe", d) if len(d) == 1 else d)


SSH_CIDR = "198.51.100.0/24"
BASE_COURSE: dict[str, Any] = {
    "description": "AWS provider test course",
    "provider": "aws",
    "profile": "scipion-3",
    "seats": 3,
    "disk_gb": 40,
    "tags": {"UserName": "i2pc-training"},
    "access": {"ssh_cidrs": [SSH_CIDR], "web_cidrs": ["0.0.0.0/0"]},
    "schedule": {"days": 1, "hours_up_per_day": 8},
    "aws": {"region": REGION, "instance_type": "g4dn.xlarge"},
}


def course_file(seats: int, **aws: Any) -> dict[str, Any]:
    course = copy.deepcopy(BASE_COURSE)
    course["seats"] = seats
    course["aws"].update(aws)
    return course


class Runs:
    """Runs playbooks for one course and keeps every output, to check that no password leaks."""

    def __init__(self, run_playbook: Any, args: list[str]) -> None:
        self.run_playbook = run_playbook
        self.args = args
        self.outputs: list[str] = []

    def __call__(self, playbook: str, *extra: str, ok: bool = True) -> tuple[str, dict[str, int]]:
        result = self.run_playbook(playbook, *self.args, *extra)
        self.outputs.append(result.stdout)
        if ok:
            assert result.returncode == 0, result.stdout[-5000:]
        else:
            assert result.returncode != 0, result.stdout[-5000:]
        return result.stdout, recap(result.stdout)
