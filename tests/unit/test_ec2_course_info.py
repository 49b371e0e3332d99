"""ec2_course_info: what creating a course reads in one call, against moto's in-process EC2."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.modules import ec2_course_info as info  # noqa: E402

REGION = "eu-west-1"


def params(**changes: Any) -> dict[str, Any]:
    base = {"region": REGION, "image_id": "", "image_name": "", "image_owners": ["self"], "profile": "",
            "managed_by": "", "key_names": [], "course_key": "", "subnet_id": "", "security_group": "",
            "course_security_group": ""}
    return {**base, **changes}


@pytest.fixture(name="ec2")
def fixture_ec2(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def register(ec2: Any, name: str, **tags: str) -> str:
    source = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=source, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=instance, Name=name)["ImageId"]
    if tags:
        ec2.create_tags(Resources=[image], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    time.sleep(0.01)  # distinct creation dates
    return image


def test_image_by_name_among_owners_and_the_profiles_images(ec2: Any) -> None:
    older = register(ec2, "scipion-1.1-a", ManagedBy="scipion_cloud", Profile="scipion-1.1")
    newer = register(ec2, "scipion-1.1-b", ManagedBy="scipion_cloud", Profile="scipion-3")
    register(ec2, "other-c")
    found = info.read(ec2, params(image_name="scipion-1.1-*", profile="scipion-1.1", managed_by="scipion_cloud"))
    assert sorted(image["image_id"] for image in found["images"]) == sorted([older, newer])
    assert next(i for i in found["images"] if i["image_id"] == newer)["tags"] == {
        "ManagedBy": "scipion_cloud", "Profile": "scipion-3"}
    assert [image["image_id"] for image in found["profile_images"]] == [older]
    assert {"name", "creation_date"} <= set(found["images"][0])
    by_id = info.read(ec2, params(image_id=newer, image_name="ignored-*"))
    assert [image["image_id"] for image in by_id["images"]] == [newer]
    assert info.read(ec2, params(image_id="ami-0123456789abcdef0"))["images"] == []
    assert info.read(ec2, params(image_name="none-*"))["profile_images"] == []


def test_key_pairs_and_the_machines_that_use_the_course_key(ec2: Any) -> None:
    ec2.create_key_pair(KeyName="madrid-key", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "Course", "Value": "madrid"}]}])
    ec2.create_key_pair(KeyName="mine")
    ec2.create_key_pair(KeyName="unrelated")
    source = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    user = ec2.run_instances(ImageId=source, MinCount=1, MaxCount=1, KeyName="madrid-key")["Instances"][0]["InstanceId"]
    gone = ec2.run_instances(ImageId=source, MinCount=1, MaxCount=1, KeyName="madrid-key")["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[gone])
    found = info.read(ec2, params(key_names=["mine", "madrid-key"], course_key="madrid-key"))
    keys = {key["key_name"]: key for key in found["key_pairs"]}
    assert sorted(keys) == ["madrid-key", "mine"]
    assert keys["madrid-key"]["tags"] == {"Course": "madrid"} and keys["madrid-key"]["key_pair_id"].startswith("key-")
    assert found["key_users"] == [user], "a terminated machine does not use the key any more"
    assert info.read(ec2, params())["key_pairs"] == [] and info.read(ec2, params())["key_users"] == []


def test_network_and_the_groups_in_it(ec2: Any) -> None:
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    in_default = ec2.create_security_group(GroupName="madrid-sg", Description="d", VpcId=default_vpc)["GroupId"]
    in_other = ec2.create_security_group(GroupName="madrid-sg", Description="d", VpcId=other_vpc)["GroupId"]
    ec2.create_security_group(GroupName="shared", Description="d", VpcId=other_vpc)
    ec2.create_tags(Resources=[in_other], Tags=[{"Key": "ManagedBy", "Value": "scipion_cloud"}])

    default = info.read(ec2, params(course_security_group="madrid-sg"))
    assert default["vpc_id"] == default_vpc
    assert [group["group_id"] for group in default["course_security_groups"]] == [in_default]
    assert default["named_security_groups"] == []

    chosen = info.read(ec2, params(subnet_id=subnet, security_group="shared", course_security_group="madrid-sg"))
    assert chosen["vpc_id"] == other_vpc
    assert [group["group_name"] for group in chosen["named_security_groups"]] == ["shared"]
    assert chosen["course_security_groups"] == [{"group_id": in_other, "group_name": "madrid-sg", "vpc_id": other_vpc,
                                                 "tags": {"ManagedBy": "scipion_cloud"}}]

    missing = info.read(ec2, params(subnet_id="subnet-0123456789abcdef0", course_security_group="madrid-sg"))
    assert missing["vpc_id"] == "" and missing["course_security_groups"] == []
