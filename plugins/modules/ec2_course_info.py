#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read, in one call, what creating a course on EC2 builds on: its image, key pairs, network and security groups."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_course_info
short_description: Read what creating a course on EC2 builds on, in one call
description:
  - Read-only, with boto3 (C(AWS_ENDPOINT_URL), C(AWS_PROFILE) and the other usual boto3 settings apply). Reads the
    course image (O(image_id), or the available AMIs named like O(image_name) among O(image_owners)), the images this
    collection built from the course's O(profile), the key pairs of O(key_names), the machines that use
    O(course_key), the network (the VPC of O(subnet_id), or the region's default VPC) and, in that network, the
    security groups O(security_group) and O(course_security_group).
  - Decides nothing; the course_aws role chooses, refuses or creates from what it returns. One process and one
    client instead of one module per read.
  - Calls are retried with backoff when AWS limits the request rate (up to 10 tries); any other refusal fails the
    module, naming the call.
version_added: 0.1.0
author: I2PC scipion_cloud maintainers (@I2PC)
options:
  region:
    description: The AWS region.
    type: str
    required: true
  image_id:
    description: The course image's AMI id. Takes precedence over O(image_name).
    type: str
    default: ""
  image_name:
    description: An AMI name pattern (wildcards C(*) and C(?)); the available AMIs named like it among O(image_owners).
    type: str
    default: ""
  image_owners:
    description: Owners of the AMIs named like O(image_name) (account ids, C(self), C(amazon)).
    type: list
    elements: str
    default: [self]
  profile:
    description: The course's profile. With O(managed_by), the available images of this profile are returned as RV(profile_images).
    type: str
    default: ""
  managed_by:
    description: The C(ManagedBy) tag value of the images this collection built.
    type: str
    default: ""
  key_names:
    description: Names of the key pairs to read.
    type: list
    elements: str
    default: []
  course_key:
    description: The course key pair's name; the machines that use it are returned as RV(key_users).
    type: str
    default: ""
  subnet_id:
    description: The subnet the seats launch in; empty for the region's default VPC.
    type: str
    default: ""
  security_group:
    description: A security group to reuse, by name, in the network.
    type: str
    default: ""
  course_security_group:
    description: The course's own security group's name, read in the network.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Read what the course builds on
  i2pc.scipion_cloud.ec2_course_info:
    region: eu-west-1
    image_name: scipion-1.1-*
    profile: scipion-1.1
    managed_by: scipion_cloud
    key_names: [madrid-key]
    course_key: madrid-key
    course_security_group: madrid-sg
  register: found
"""

RETURN = r"""
images:
  description: The AMIs that match O(image_id) or O(image_name) (image_id, name, creation_date, tags as a mapping).
  returned: always
  type: list
  elements: dict
profile_images:
  description: The available AMIs among O(image_owners) and C(self) tagged with O(managed_by) and O(profile); empty without O(profile).
  returned: always
  type: list
  elements: dict
key_pairs:
  description: The key pairs of O(key_names) that exist (key_name, key_pair_id, tags as a mapping).
  returned: always
  type: list
  elements: dict
key_users:
  description: Ids of the machines (pending, running, stopping or stopped) that use O(course_key).
  returned: always
  type: list
  elements: str
vpc_id:
  description: The network's VPC id; empty when O(subnet_id) does not exist or the region has no default VPC.
  returned: always
  type: str
named_security_groups:
  description: The groups named O(security_group) in the network (group_id, group_name, tags as a mapping); empty without it.
  returned: always
  type: list
  elements: dict
course_security_groups:
  description: The groups named O(course_security_group) in the network; empty without it or without a network.
  returned: always
  type: list
  elements: dict
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.i2pc.scipion_cloud.plugins.module_utils.aws_client import client, tag_dict

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - reported by the module
    boto3 = None

EXISTING_STATES = ["pending", "running", "stopping", "stopped"]


def image_fields(image: dict[str, Any]) -> dict[str, Any]:
    return {"image_id": image["ImageId"], "name": image.get("Name", ""), "creation_date": image.get("CreationDate", ""),
            "tags": tag_dict(image)}


def group_fields(group: dict[str, Any]) -> dict[str, Any]:
    return {"group_id": group["GroupId"], "group_name": group["GroupName"], "vpc_id": group.get("VpcId", ""),
            "tags": tag_dict(group)}


def images(ec2: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    if params["image_id"]:
        found = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [params["image_id"]]}])["Images"]
    elif params["image_name"]:
        found = ec2.describe_images(Owners=params["image_owners"], Filters=[
            {"Name": "name", "Values": [params["image_name"]]}, {"Name": "state", "Values": ["available"]}])["Images"]
    else:
        found = []
    return [image_fields(image) for image in found]


def profile_images(ec2: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    if not (params["profile"] and params["managed_by"]):
        return []
    owners = list(dict.fromkeys(params["image_owners"] + ["self"]))
    found = ec2.describe_images(Owners=owners, Filters=[
        {"Name": "tag:ManagedBy", "Values": [params["managed_by"]]}, {"Name": "tag:Profile", "Values": [params["profile"]]},
        {"Name": "state", "Values": ["available"]}])["Images"]
    return [image_fields(image) for image in found]


def key_pairs(ec2: Any, names: list[str]) -> list[dict[str, Any]]:
    if not names:
        return []
    found = ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": names}])["KeyPairs"]
    return [{"key_name": key["KeyName"], "key_pair_id": key.get("KeyPairId", ""), "tags": tag_dict(key)} for key in found]


def key_users(ec2: Any, key_name: str) -> list[str]:
    if not key_name:
        return []
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "key-name", "Values": [key_name]}, {"Name": "instance-state-name", "Values": EXISTING_STATES}])
    return sorted(instance["InstanceId"] for page in pages for reservation in page["Reservations"]
                  for instance in reservation["Instances"])


def vpc_id(ec2: Any, subnet_id: str) -> str:
    if subnet_id:
        subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])["Subnets"]
        return subnets[0]["VpcId"] if subnets else ""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpcs[0]["VpcId"] if vpcs else ""


def groups(ec2: Any, name: str, vpc: str) -> list[dict[str, Any]]:
    if not (name and vpc):
        return []
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]},
                                                  {"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    return [group_fields(group) for group in found]


def read(ec2: Any, params: dict[str, Any]) -> dict[str, Any]:
    vpc = vpc_id(ec2, params["subnet_id"])
    return {
        "images": images(ec2, params),
        "profile_images": profile_images(ec2, params),
        "key_pairs": key_pairs(ec2, params["key_names"]),
        "key_users": key_users(ec2, params["course_key"]),
        "vpc_id": vpc,
        "named_security_groups": groups(ec2, params["security_group"], vpc),
        "course_security_groups": groups(ec2, params["course_security_group"], vpc),
    }


def aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name}: {error.get('Code', 'error')}: {error.get('Message', '')}"
    return str(exc)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "region": {"type": "str", "required": True},
            "image_id": {"type": "str", "default": ""},
            "image_name": {"type": "str", "default": ""},
            "image_owners": {"type": "list", "elements": "str", "default": ["self"]},
            "profile": {"type": "str", "default": ""},
            "managed_by": {"type": "str", "default": ""},
            "key_names": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "course_key": {"type": "str", "default": "", "no_log": False},
            "subnet_id": {"type": "str", "default": ""},
            "security_group": {"type": "str", "default": ""},
            "course_security_group": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    if boto3 is None:
        module.fail_json(msg="ec2_course_info needs boto3 on the controller (pip install boto3).")
    params = module.params
    try:
        ec2 = client(boto3.session.Session(), "ec2", params["region"])
        found = read(ec2, params)
    except (ClientError, BotoCoreError) as exc:
        module.fail_json(msg=f"AWS refused a read in {params['region']} ({aws_error(exc)}). Check the course's credentials "
                             "and aws.region, then run again.")
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
