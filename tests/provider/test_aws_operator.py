"""The operator account (playbooks/operator.yml) and the shipped IAM policies.

Against a moto server of its own with IAM enforcement (``/moto-api/reset-auth``): the operator's
keys from operator.credentials run lifecycle.yml and nothing else; a user holding only
docs/iam/provisioning-policy.json runs plan, provision, operator, lifecycle and teardown.
moto checks actions only, so the tag and ARN conditions of both policies are proven with
principalmapper's local policy simulation, and both policies are linted with parliament.
"""

from __future__ import annotations

import collections
import collections.abc
import configparser
import importlib.util
import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import botocore.exceptions
import pytest

from aws_course_helpers import failure, recap, tags

# principalmapper 1.1.5 imports Mapping and MutableMapping from collections, which Python 3.10 removed
# (they live in collections.abc): give them back before importing it.
for _name in ("Mapping", "MutableMapping"):
    setattr(collections, _name, getattr(collections, _name, None) or getattr(collections.abc, _name))

from principalmapper.common import Group, Node, Policy  # noqa: E402  (needs the names above)
from principalmapper.querying.query_interface import local_check_authorization  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REGION = "eu-west-1"
ACCOUNT = "123456789012"
MANAGED_BY = "scipion_cloud"
DENIED = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}
PROVISIONING_POLICY = PROJECT / "docs/iam/provisioning-policy.json"

# moto 5.2.5 with IAM enforcement, plus two stand-ins for what it lacks:
# - iam:ListServiceSpecificCredentials is not implemented; amazon.aws.iam_user state=absent
#   calls it, so it answers "none" (for an existing user; NoSuchEntity otherwise).
# - moto authorises every request against the resource "*" (it never builds the resource's
#   ARN), so a statement scoped to ARNs would never match: a Resource pattern is taken as
#   matching, as moto already takes every Condition as met. moto thus checks the actions;
#   test_policy_conditions checks resources and conditions.
PATCHED_MOTO_SERVER = r"""
import sys
from moto.core.responses import ActionResult
from moto.iam.access_control import IAMPolicyStatement
from moto.iam.responses import IamResponse
from moto.server import main

def list_service_specific_credentials(self):
    self.backend.get_user(self._get_param("UserName"))
    return ActionResult({"ServiceSpecificCredentials": []})

_element_matches = IAMPolicyStatement._check_element_matches

def element_matches(self, element, value):
    if element == "Resource" and value == "*":
        return True
    return _element_matches(self, element, value)

IamResponse.list_service_specific_credentials = list_service_specific_credentials
IAMPolicyStatement._check_element_matches = element_matches
main(sys.argv[1:])
"""


@dataclass
class Keys:
    access_key_id: str
    secret_access_key: str

    @classmethod
    def from_credentials_file(cls, path: Path, profile: str) -> Keys:
        parser = configparser.ConfigParser()
        parser.read(path)
        return cls(parser[profile]["aws_access_key_id"], parser[profile]["aws_secret_access_key"])


@dataclass
class Account:
    """The moto account: an administrator, and a provisioner that holds only the shipped provisioning policy."""

    url: str
    admin: Keys
    provisioner: Keys
    outputs: list[str] = field(default_factory=list)

    def client(self, service: str, keys: Keys | None = None, region: str = REGION) -> Any:
        keys = keys or self.admin
        return boto3.client(service, region_name=region, endpoint_url=self.url, aws_access_key_id=keys.access_key_id,
                            aws_secret_access_key=keys.secret_access_key)

    def env(self, keys: Keys | None = None, **extra: str) -> dict[str, str]:
        """The playbook's AWS settings: moto, and the keys (or, with no keys, AWS_SHARED_CREDENTIALS_FILE...)."""
        env = {"AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        if keys:
            env.update(AWS_ACCESS_KEY_ID=keys.access_key_id, AWS_SECRET_ACCESS_KEY=keys.secret_access_key)
        env.update(extra)
        return env

    def run(self, playbook: str, *args: str, env: dict[str, str], ok: bool = True) -> tuple[str, dict[str, int]]:
        """ansible-playbook with only the given AWS settings (none inherited), output kept for the secret check."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        base.update(ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                    PATH=f"{VENV_BIN}:{base.get('PATH', '')}", **env)
        result = subprocess.run([str(VENV_BIN / "ansible-playbook"), f"playbooks/{playbook}", *args], cwd=PROJECT,
                                env=base, text=True, timeout=900, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.outputs.append(result.stdout)
        assert (result.returncode == 0) == ok, result.stdout[-6000:]
        return result.stdout, recap(result.stdout)


def reset_auth(url: str) -> None:
    """From now on moto checks every request's signature and IAM permissions."""
    request = urllib.request.Request(f"{url}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=10)


@pytest.fixture
def account(start_moto) -> Iterator[Account]:
    # A moto server of this test only: IAM enforcement must not reach a shared one.
    with start_moto([sys.executable, "-c", PATCHED_MOTO_SERVER]) as url:
        bootstrap = boto3.client("iam", region_name=REGION, endpoint_url=url, aws_access_key_id="bootstrap",
                                 aws_secret_access_key="bootstrap")
        bootstrap.create_user(UserName="admin")
        bootstrap.put_user_policy(UserName="admin", PolicyName="everything", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        admin = bootstrap.create_access_key(UserName="admin")["AccessKey"]
        bootstrap.create_user(UserName="provisioner")
        policy = bootstrap.create_policy(PolicyName="scipion-cloud-provisioning",
                                         PolicyDocument=PROVISIONING_POLICY.read_text())["Policy"]["Arn"]
        bootstrap.attach_user_policy(UserName="provisioner", PolicyArn=policy)
        provisioner = bootstrap.create_access_key(UserName="provisioner")["AccessKey"]
        reset_auth(url)
        yield Account(url, Keys(admin["AccessKeyId"], admin["SecretAccessKey"]),
                      Keys(provisioner["AccessKeyId"], provisioner["SecretAccessKey"]))


def course_file(**aws: Any) -> dict[str, Any]:
    return {
        "description": "operator test course",
        "provider": "aws",
        "profile": "scipion-3",
        "seats": 2,
        "disk_gb": 30,
        "tags": {"UserName": "i2pc-training"},
        "access": {"ssh_cidrs": ["198.51.100.0/24"], "web_cidrs": ["0.0.0.0/0"]},
        "schedule": {"days": 1, "hours_up_per_day": 8},
        "aws": {"region": REGION, "instance_type": "g4dn.xlarge", **aws},
    }


def linux_image_id(ec2: Any) -> str:
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm-*"]}])["Images"]
    return sorted(i["ImageId"] for i in images if i.get("RootDeviceName"))[0]


def launch(ec2: Any, image_id: str, **tag_values: str) -> str:
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tag_values.items()]}]
    return ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                             TagSpecifications=spec)["Instances"][0]["InstanceId"]


def states(ec2: Any, course: str) -> dict[str, str]:
    """Name -> state of the course's live machines."""
    filters = [{"Name": "tag:Course", "Values": [course]}, {"Name": "tag:ManagedBy", "Values": [MANAGED_BY]},
               {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    found = [i for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]
    return {tags(i)["Name"]: i["State"]["Name"] for i in found}


def state_of(ec2: Any, instance_id: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


def refused(call: Callable[[], Any]) -> str:
    """The error code of a call that AWS must refuse."""
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


def operator_iam(iam: Any) -> dict[str, Any]:
    """What exists under the operators' path, seen by the administrator."""
    groups = iam.list_groups(PathPrefix="/scipion-cloud/")["Groups"]
    return {
        "users": [u["UserName"] for u in iam.list_users(PathPrefix="/scipion-cloud/")["Users"]],
        "groups": [g["GroupName"] for g in groups],
        "group_policies": {g["GroupName"]: iam.list_group_policies(GroupName=g["GroupName"])["PolicyNames"] for g in groups},
        "managed_policies": [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]],
    }


def lint_module() -> Any:
    """scripts/lint-iam-policies.py as a module (its file name has dashes)."""
    spec = importlib.util.spec_from_file_location("lint_iam_policies", PROJECT / "scripts/lint-iam-policies.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass needs to find the module
    spec.loader.exec_module(module)
    return module


def test_operator_starts_stops_and_reboots_its_course_and_nothing_else(account: Account, course_catalogue,
                                                                      tmp_path: Path) -> None:
    ec2, iam = account.client("ec2"), account.client("iam")
    image_id = linux_image_id(ec2)
    other_course = launch(ec2, image_id, Name="other-training-01", Course="other", ManagedBy=MANAGED_BY)
    untagged = launch(ec2, image_id, Name="by-hand")
    course = "opcourse"
    args = course_catalogue(course, course_file(image_id=image_id))
    output = tmp_path / "output" / course
    credentials, sheet = output / "operator.credentials", output / "operator.html"
    admin = account.env(account.admin)
    account.run("provision.yml", *args, env=admin)
    assert set(states(ec2, course).values()) == {"running"}

    # The operator: a user under /scipion-cloud/ in its own group, whose policy is the role's template for the course.
    _, counts = account.run("operator.yml", *args, env=admin)
    assert counts["changed"] > 0
    user = iam.get_user(UserName=f"{course}-operator")["User"]
    assert user["Path"] == "/scipion-cloud/" and {t["Key"]: t["Value"] for t in user["Tags"]} == {
        "Course": course, "ManagedBy": MANAGED_BY}
    group = iam.get_group(GroupName=f"{course}-operators")
    assert group["Group"]["Path"] == "/scipion-cloud/" and [u["UserName"] for u in group["Users"]] == [f"{course}-operator"]
    document = iam.get_group_policy(GroupName=f"{course}-operators", PolicyName=f"{course}-operator")["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document == json.loads(lint_module().render_operator_policy({"name": course, "aws": {"region": REGION}}))
    assert iam.list_attached_group_policies(GroupName=f"{course}-operators")["AttachedPolicies"] == []
    assert iam.list_user_policies(UserName=f"{course}-operator")["PolicyNames"] == []

    # Its key, once, in the shared-credentials format under the course's profile (0600); the sheet says how to use it.
    assert credentials.stat().st_mode & 0o777 == 0o600
    operator = Keys.from_credentials_file(credentials, course)
    keys = iam.list_access_keys(UserName=f"{course}-operator")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [operator.access_key_id]
    text = sheet.read_text()
    for words in (f"AWS_SHARED_CREDENTIALS_FILE={credentials}", f"AWS_PROFILE={course}",
                  f"ansible-playbook playbooks/lifecycle.yml -e course={course} -e course_action=stop",
                  "course_action=start", "course_action=reboot", "resources.json"):
        assert words in text, words
    assert operator.secret_access_key not in text

    # A re-run changes nothing and keeps the key and its file.
    before = (credentials.read_bytes(), credentials.stat().st_mtime_ns)
    _, counts = account.run("operator.yml", *args, env=admin)
    assert counts["changed"] == 0
    assert (credentials.read_bytes(), credentials.stat().st_mtime_ns) == before
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=f"{course}-operator")["AccessKeyMetadata"]] == [
        operator.access_key_id]

    # With only the operator's keys, as the sheet says: stop, start, reboot and status work.
    as_operator = account.env(AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_PROFILE=course)
    _, counts = account.run("lifecycle.yml", *args, "-e", "course_action=stop", env=as_operator)
    assert counts["changed"] > 0 and set(states(ec2, course).values()) == {"stopped"}
    _, counts = account.run("lifecycle.yml", *args, "-e", "course_action=start", env=as_operator)
    assert counts["changed"] > 0 and set(states(ec2, course).values()) == {"running"}
    _, counts = account.run("lifecycle.yml", *args, "-e", "course_action=reboot", env=as_operator)
    assert counts["changed"] > 0 and set(states(ec2, course).values()) == {"running"}
    assert state_of(ec2, other_course) == "running" and state_of(ec2, untagged) == "running"

    # Anything else is refused: terminate, launch, tag changes, IAM.
    own_ec2, own_iam = account.client("ec2", operator), account.client("iam", operator)
    seat = sorted(i["InstanceId"] for r in ec2.describe_instances(
        Filters=[{"Name": "tag:Course", "Values": [course]}])["Reservations"] for i in r["Instances"])[0]
    assert refused(lambda: own_ec2.terminate_instances(InstanceIds=[seat])) in DENIED
    assert refused(lambda: own_ec2.run_instances(ImageId=image_id, InstanceType="t3.micro", MinCount=1,
                                                 MaxCount=1)) in DENIED
    assert refused(lambda: own_ec2.create_tags(Resources=[untagged], Tags=[{"Key": "Course", "Value": course}])) in DENIED
    assert refused(lambda: own_ec2.delete_tags(Resources=[seat], Tags=[{"Key": "Course"}])) in DENIED
    assert refused(lambda: own_iam.create_user(UserName="intruder")) in DENIED
    assert refused(lambda: own_iam.create_access_key(UserName=f"{course}-operator")) in DENIED
    assert state_of(ec2, seat) == "running" and tags(ec2.describe_instances(InstanceIds=[seat])["Reservations"][0][
        "Instances"][0])["Course"] == course
    assert "intruder" not in [u["UserName"] for u in iam.list_users()["Users"]]

    # The file is lost while the key exists: the run says so and how to rotate, and makes no key.
    credentials.rename(tmp_path / "saved.credentials")
    out, counts = account.run("operator.yml", *args, env=admin)
    assert counts["changed"] == 0 and not credentials.exists()
    assert f"{credentials} is missing" in out and f"-e course={course} -e operator_rotate_key=true" in out
    assert len(iam.list_access_keys(UserName=f"{course}-operator")["AccessKeyMetadata"]) == 1

    # Rotation: the old key is deleted (and stops working), a new one is written.
    _, counts = account.run("operator.yml", *args, "-e", "operator_rotate_key=true", env=admin)
    assert counts["changed"] > 0 and credentials.stat().st_mode & 0o777 == 0o600
    rotated = Keys.from_credentials_file(credentials, course)
    assert rotated.access_key_id != operator.access_key_id
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=f"{course}-operator")["AccessKeyMetadata"]] == [
        rotated.access_key_id]
    assert refused(lambda: own_ec2.describe_instances()) in {"AuthFailure", "InvalidClientTokenId"}
    assert set(states(account.client("ec2", rotated), course).values()) == {"running"}

    # Removal: key, membership, policy, user and group go, and the files; a second removal changes nothing.
    _, counts = account.run("operator.yml", *args, "-e", "operator_state=absent", env=admin)
    assert counts["changed"] > 0
    assert operator_iam(iam) == {"users": [], "groups": [], "group_policies": {},
                                 "managed_policies": ["scipion-cloud-provisioning"]}
    assert refused(lambda: iam.list_access_keys(UserName=f"{course}-operator")) == "NoSuchEntity"
    assert not credentials.exists() and not sheet.exists()
    _, counts = account.run("operator.yml", *args, "-e", "operator_state=absent", env=admin)
    assert counts["changed"] == 0

    for secret in (operator.secret_access_key, rotated.secret_access_key):
        assert all(secret not in text for text in account.outputs), "an operator's secret key appeared in the output"


def test_provisioning_policy_alone_runs_plan_provision_operator_lifecycle_and_teardown(
        account: Account, course_catalogue, tmp_path: Path) -> None:
    ec2, iam = account.client("ec2"), account.client("iam")
    image_id = linux_image_id(ec2)
    course = "leastpriv"
    args = course_catalogue(course, course_file(image_id=image_id, elastic_ips=True))
    provisioner = account.env(account.provisioner)
    assert refused(lambda: account.client("iam", account.provisioner).list_users()) in DENIED  # only the policy

    account.run("plan.yml", *args, env=provisioner)
    _, counts = account.run("provision.yml", *args, env=provisioner)
    assert counts["changed"] > 0 and set(states(ec2, course).values()) == {"running"}
    addresses = ec2.describe_addresses(Filters=[{"Name": "tag:Course", "Values": [course]}])["Addresses"]
    assert len(addresses) == 2 and all(a.get("InstanceId") for a in addresses)
    _, counts = account.run("provision.yml", *args, env=provisioner)
    assert counts["changed"] == 0
    account.run("operator.yml", *args, env=provisioner)
    assert operator_iam(iam)["users"] == [f"{course}-operator"]
    _, counts = account.run("lifecycle.yml", *args, "-e", "course_action=stop", env=provisioner)
    assert set(states(ec2, course).values()) == {"stopped"}
    account.run("lifecycle.yml", *args, "-e", "course_action=start", env=provisioner)
    account.run("lifecycle.yml", *args, "-e", "course_action=reboot", env=provisioner)
    assert set(states(ec2, course).values()) == {"running"}

    # Teardown removes the machines, addresses, group, key pair, and the operator; again with no operator left.
    out, _ = account.run("teardown.yml", *args, "-e", f"confirm_teardown={course}", env=provisioner)
    assert "nothing tagged with it is left" in out
    assert states(ec2, course) == {}
    assert ec2.describe_addresses(Filters=[{"Name": "tag:Course", "Values": [course]}])["Addresses"] == []
    assert ec2.describe_security_groups(Filters=[{"Name": "tag:Course", "Values": [course]}])["SecurityGroups"] == []
    assert ec2.describe_key_pairs(Filters=[{"Name": "tag:Course", "Values": [course]}])["KeyPairs"] == []
    assert operator_iam(iam) == {"users": [], "groups": [], "group_policies": {},
                                 "managed_policies": ["scipion-cloud-provisioning"]}
    out, _ = account.run("teardown.yml", *args, "-e", f"confirm_teardown={course}", env=provisioner)
    assert "nothing tagged with it is left" in out

    # The image role's cleanup of an interrupted build (its builder, key pair and group) works under the policy too.
    build_id = "scipion3-20260101000000-dead"
    name = f"scipion-image-{build_id}"
    spec = [{"Key": "ManagedBy", "Value": MANAGED_BY}, {"Key": "Purpose", "Value": "image-builder"},
            {"Key": "BuildId", "Value": build_id}]
    ec2.create_key_pair(KeyName=name, TagSpecifications=[{"ResourceType": "key-pair", "Tags": spec}])
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=name, Description="left", VpcId=vpc, TagSpecifications=[
        {"ResourceType": "security-group", "Tags": spec}])["GroupId"]
    builder = ec2.run_instances(ImageId=image_id, InstanceType="m5.xlarge", MinCount=1, MaxCount=1, KeyName=name,
                                SecurityGroupIds=[group], TagSpecifications=[{"ResourceType": "instance", "Tags": spec}])[
        "Instances"][0]["InstanceId"]
    out, _ = account.run("image.yml", "-e", "profile=scipion-3", "-e", "image_operation=cleanup",
                         "-e", f"image_build_id={build_id}", "-e", f"image_output_dir={tmp_path / 'images'}",
                         env=provisioner)
    assert f"Removed: instance {builder}, key-pair {name}, security-group {group}." in out
    assert state_of(ec2, builder) == "terminated"
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"] == []


def test_operator_refuses_a_course_that_is_not_on_aws(run_playbook) -> None:
    for course, provider, hint in (("demo", "local", "lifecycle.yml on its host"),
                                   ("fedcloud", "openstack", "member account of the project")):
        result = run_playbook("operator.yml", "-e", f"course={course}", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
        assert result.returncode != 0
        message = failure(result.stdout)
        assert f"Course {course} runs on {provider}" in message and "provider: aws" in message and hint in message


# --- Conditions: principalmapper's local policy simulation -----------------------------------------------------

def user(name: str, group_policy: dict[str, Any] | None = None, policy: dict[str, Any] | None = None) -> Node:
    """An IAM user holding a group's inline policy or an attached policy."""
    groups = []
    if group_policy is not None:
        group_arn = f"arn:aws:iam::{ACCOUNT}:group/scipion-cloud/{name}s"
        groups = [Group(group_arn, [Policy(group_arn, name, group_policy)])]
    attached = [Policy(f"arn:aws:iam::{ACCOUNT}:policy/{name}", name, policy)] if policy is not None else []
    return Node(f"arn:aws:iam::{ACCOUNT}:user/scipion-cloud/{name}", "AIDAEXAMPLE", attached, groups, None, None, 1,
                False, False, None, False, None)


def instance_arn(instance_id: str, region: str = REGION) -> str:
    return f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{instance_id}"


def resource_tags(**values: str) -> dict[str, str]:
    return {f"aws:ResourceTag/{k}": v for k, v in values.items()}


def tag_request(*keys: str, create_action: str | None = None, **values: str) -> dict[str, Any]:
    """The condition keys of a CreateTags/DeleteTags request (or of tags at creation, with create_action)."""
    context: dict[str, Any] = {"aws:TagKeys": list(keys) + list(values)}
    context.update({f"aws:RequestTag/{k}": v for k, v in values.items()})
    if create_action:
        context["ec2:CreateAction"] = create_action
    return context


def allowed(node: Node, action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
    return local_check_authorization(node, action, resource, context or {})


def test_policy_conditions() -> None:
    lint = lint_module()
    operator_policy = json.loads(lint.render_operator_policy({"name": "madrid", "aws": {"region": REGION}}))
    operator = user("madrid-operator", group_policy=operator_policy)
    ours = resource_tags(Course="madrid", ManagedBy=MANAGED_BY)

    # The operator: start, stop and reboot the course's machines in its region only.
    for action in ("ec2:StartInstances", "ec2:StopInstances", "ec2:RebootInstances"):
        assert allowed(operator, action, instance_arn("i-0course"), ours)
        assert not allowed(operator, action, instance_arn("i-0decoy"))
        assert not allowed(operator, action, instance_arn("i-0decoy"), resource_tags(Course="madrid"))
        assert not allowed(operator, action, instance_arn("i-0other"), resource_tags(Course="lisbon", ManagedBy=MANAGED_BY))
        assert not allowed(operator, action, instance_arn("i-0region", "us-east-1"), ours)
    assert allowed(operator, "ec2:DescribeInstances", "*")
    for action in ("ec2:TerminateInstances", "ec2:RunInstances", "ec2:ModifyInstanceAttribute", "iam:CreateUser",
                   "iam:CreateAccessKey"):
        assert not allowed(operator, action, instance_arn("i-0course"), ours), action
    assert not allowed(operator, "ec2:CreateTags", instance_arn("i-0decoy"), tag_request(Course="madrid"))

    # Its deny holds even when another policy allows tagging: the tags that select machines change only at launch.
    tagger = user("madrid-operator", group_policy=operator_policy, policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ec2:CreateTags", "ec2:DeleteTags"], "Resource": "*"}]})
    for key in ("Course", "ManagedBy", "UserName"):
        assert not allowed(tagger, "ec2:CreateTags", instance_arn("i-0decoy"), tag_request(**{key: "madrid"}))
        assert not allowed(tagger, "ec2:DeleteTags", instance_arn("i-0course"), tag_request(key))
        assert allowed(tagger, "ec2:CreateTags", instance_arn("i-0new"),
                       tag_request(create_action="RunInstances", **{key: "madrid"}))
    assert not allowed(tagger, "ec2:CreateTags", instance_arn("i-0decoy"), tag_request("Name", Course="madrid"))
    assert allowed(tagger, "ec2:CreateTags", instance_arn("i-0course"), tag_request(Name="seat-1"))

    # The provisioning policy: tags at launch, and changes only to what carries ManagedBy=scipion_cloud.
    provisioner = user("provisioner", policy=json.loads(PROVISIONING_POLICY.read_text()))
    managed = resource_tags(ManagedBy=MANAGED_BY)
    launch_tags = tag_request(create_action="RunInstances", Course="madrid", ManagedBy=MANAGED_BY, Name="madrid-1")
    assert allowed(provisioner, "ec2:CreateTags", instance_arn("i-0new"), launch_tags)
    assert not allowed(provisioner, "ec2:CreateTags", instance_arn("i-0decoy"), tag_request(Course="madrid"))
    assert not allowed(provisioner, "ec2:CreateTags", instance_arn("i-0decoy"), tag_request(ManagedBy=MANAGED_BY))
    assert allowed(provisioner, "ec2:RunInstances", instance_arn("*"), {"aws:RequestTag/ManagedBy": MANAGED_BY})
    assert not allowed(provisioner, "ec2:RunInstances", instance_arn("*"))
    assert allowed(provisioner, "ec2:RunInstances", f"arn:aws:ec2:{REGION}::image/ami-0123")
    for action in ("ec2:TerminateInstances", "ec2:StopInstances", "ec2:ModifyInstanceAttribute"):
        assert allowed(provisioner, action, instance_arn("i-0course"), managed), action
        assert not allowed(provisioner, action, instance_arn("i-0decoy")), action
    group_arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0123"
    assert allowed(provisioner, "ec2:DeleteSecurityGroup", group_arn, managed)
    assert not allowed(provisioner, "ec2:DeleteSecurityGroup", group_arn)
    assert not allowed(provisioner, "ec2:AuthorizeSecurityGroupIngress", group_arn)
    assert allowed(provisioner, "ec2:CreateSecurityGroup", group_arn, {"aws:RequestTag/ManagedBy": MANAGED_BY})
    assert not allowed(provisioner, "ec2:CreateSecurityGroup", group_arn)
    address_arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:elastic-ip/eipalloc-0123"
    assert allowed(provisioner, "ec2:ReleaseAddress", address_arn, managed)
    assert not allowed(provisioner, "ec2:ReleaseAddress", address_arn)
    assert not allowed(provisioner, "ec2:DeleteKeyPair", f"arn:aws:ec2:{REGION}:{ACCOUNT}:key-pair/key-0123")
    image_arn = f"arn:aws:ec2:{REGION}::image/ami-0123"
    assert allowed(provisioner, "ec2:DeregisterImage", image_arn, managed)
    assert not allowed(provisioner, "ec2:DeregisterImage", image_arn)
    assert allowed(provisioner, "ec2:CreateTags", image_arn, tag_request(ManagedBy=MANAGED_BY, Profile="scipion-3"))
    assert not allowed(provisioner, "ec2:CreateTags", image_arn, tag_request(Profile="scipion-3"))
    # IAM: users and groups under /scipion-cloud/ only.
    assert allowed(provisioner, "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/scipion-cloud/madrid-operator")
    assert not allowed(provisioner, "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/admin")
    assert not allowed(provisioner, "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/admin")
    assert not allowed(provisioner, "iam:PutGroupPolicy", f"arn:aws:iam::{ACCOUNT}:group/Admins")
    assert allowed(provisioner, "iam:PutGroupPolicy", f"arn:aws:iam::{ACCOUNT}:group/scipion-cloud/madrid-operators")
    assert not allowed(provisioner, "iam:AttachUserPolicy", f"arn:aws:iam::{ACCOUNT}:user/scipion-cloud/madrid-operator")
    assert not allowed(provisioner, "iam:CreatePolicy", f"arn:aws:iam::{ACCOUNT}:policy/anything")


def test_iam_policies_pass_parliament_and_a_bad_one_fails() -> None:
    result = subprocess.run([sys.executable, "scripts/lint-iam-policies.py"], cwd=PROJECT, text=True,
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   operator" in result.stdout and "ok   provisioning" in result.stdout
    lint = lint_module()
    bad = {"Version": "2012-10-17", "Statement": [{"Sid": "Typo", "Effect": "Allow", "Action": "ec2:StartInstance",
                                                   "Resource": "*"}]}
    lines = lint.lint({"operator": json.dumps(bad, indent=2)})
    assert any(line.startswith("FAIL operator in Typo: LOW UNKNOWN_ACTION") for line in lines), lines
