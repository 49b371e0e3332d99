#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The newest public base image of an OS, deprecated ones included (Canonical deprecates old Ubuntus)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_base_image
short_description: Find the newest AMI of a publisher by name, deprecated AMIs included
description:
  - Looks up AMIs with DescribeImages and C(IncludeDeprecated=true), then returns the newest.
  - AWS hides deprecated AMIs from a plain DescribeImages by name. Canonical has deprecated its
    Ubuntu 16.04 (xenial) AMIs, so without this flag the base image of the 2018 course is not found
    (amazon.aws.ec2_ami_info has no such option).
  - Says whether the chosen image is deprecated, and since when.
  - Read-only; boto3's usual settings (C(AWS_PROFILE), C(AWS_ENDPOINT_URL)...) apply.
version_added: 0.1.0
author: I2PC scipion_cloud maintainers (@I2PC)
options:
  region:
    description: AWS region.
    type: str
    required: true
  image_id:
    description: A given AMI id; C(owner) and C(name) are then not used.
    type: str
  owner:
    description: Account that publishes the AMI (Canonical is C(099720109477)).
    type: str
  name:
    description: AMI name pattern (wildcards allowed).
    type: str
  architecture:
    description: Architecture of the AMI.
    type: str
    default: x86_64
requirements: [boto3]
"""

EXAMPLES = r"""
- name: Find Ubuntu 16.04's newest AMI, deprecated or not
  i2pc.scipion_cloud.ec2_base_image:
    region: eu-west-1
    owner: "099720109477"
    name: ubuntu/images/hvm-ssd*/ubuntu-*-16.04-amd64-server-*
  register: base
"""

RETURN = r"""
images:
  description: Every matching AMI, oldest first (image_id, name, owner_id, creation_date, deprecation_time, root_device_name).
  type: list
  elements: dict
  returned: always
image:
  description: The newest matching AMI, or an empty dict when none matches.
  type: dict
  returned: always
deprecated:
  description: Whether the chosen AMI is deprecated (its deprecation time has passed).
  type: bool
  returned: always
"""

from datetime import datetime, timezone
from typing import Any

from ansible.module_utils.basic import AnsibleModule

try:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - reported by main()
    boto3 = None


def _summary(image: dict[str, Any]) -> dict[str, Any]:
    return {
        "image_id": image["ImageId"],
        "name": image.get("Name", ""),
        "owner_id": image.get("OwnerId", ""),
        "creation_date": image.get("CreationDate", ""),
        "deprecation_time": image.get("DeprecationTime", ""),
        "root_device_name": image.get("RootDeviceName", "/dev/sda1"),
    }


def is_deprecated(image: dict[str, Any], now: datetime) -> bool:
    when = image.get("deprecation_time")
    if not when:
        return False
    return datetime.fromisoformat(when.replace("Z", "+00:00")) <= now


def find_base_images(ec2: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every matching AMI, deprecated included, oldest first."""
    request: dict[str, Any] = {"IncludeDeprecated": True}
    if params.get("image_id"):
        request["ImageIds"] = [params["image_id"]]
    else:
        request["Owners"] = [params["owner"]]
        request["Filters"] = [
            {"Name": "name", "Values": [params["name"]]},
            {"Name": "state", "Values": ["available"]},
            {"Name": "architecture", "Values": [params.get("architecture") or "x86_64"]},
        ]
    images = ec2.describe_images(**request)["Images"]
    return sorted((_summary(i) for i in images), key=lambda i: i["creation_date"])


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "region": {"type": "str", "required": True},
            "image_id": {"type": "str"},
            "owner": {"type": "str"},
            "name": {"type": "str"},
            "architecture": {"type": "str", "default": "x86_64"},
        },
        required_one_of=[("image_id", "name")],
        required_by={"name": "owner"},
        supports_check_mode=True,
    )
    if boto3 is None:
        module.fail_json(msg="ec2_base_image needs boto3 on the controller (pip install boto3).")
    try:
        ec2 = boto3.session.Session().client("ec2", region_name=module.params["region"])
        images = find_base_images(ec2, module.params)
    except (ClientError, BotoCoreError) as exc:
        module.fail_json(msg=f"Could not look up the base image in {module.params['region']}: {exc}")
    image = images[-1] if images else {}
    module.exit_json(changed=False, images=images, image=image,
                     deprecated=bool(image) and is_deprecated(image, datetime.now(timezone.utc)))


if __name__ == "__main__":
    main()
