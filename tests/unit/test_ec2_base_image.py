"""ec2_base_image asks AWS for deprecated AMIs too (moto knows no deprecation, so botocore's Stubber checks the request)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timezone
from pathlib import Path

import boto3
from botocore.stub import Stubber

PROJECT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("ec2_base_image", PROJECT / "plugins/modules/ec2_base_image.py")
module = importlib.util.module_from_spec(spec)
sys.modules["ec2_base_image"] = module
spec.loader.exec_module(module)

XENIAL = "ubuntu/images/hvm-ssd*/ubuntu-*-16.04-amd64-server-*"


def image(image_id: str, created: str, deprecated: str = "") -> dict:
    found = {"ImageId": image_id, "Name": f"ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-amd64-server-{created[:10]}",
             "OwnerId": "099720109477", "CreationDate": created, "RootDeviceName": "/dev/sda1"}
    if deprecated:
        found["DeprecationTime"] = deprecated
    return found


def test_lookup_by_name_includes_deprecated_images_and_returns_them_oldest_first():
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(ec2)
    stubber.add_response(
        "describe_images",
        {"Images": [image("ami-new", "2021-04-20T00:00:00.000Z", "2023-04-20T00:00:00.000Z"),
                    image("ami-old", "2019-01-01T00:00:00.000Z", "2021-01-01T00:00:00.000Z")]},
        {"IncludeDeprecated": True, "Owners": ["099720109477"],
         "Filters": [{"Name": "name", "Values": [XENIAL]}, {"Name": "state", "Values": ["available"]},
                     {"Name": "architecture", "Values": ["x86_64"]}]})
    with stubber:
        found = module.find_base_images(ec2, {"owner": "099720109477", "name": XENIAL})
    stubber.assert_no_pending_responses()
    assert [i["image_id"] for i in found] == ["ami-old", "ami-new"]
    assert found[-1]["root_device_name"] == "/dev/sda1"
    assert module.is_deprecated(found[-1], datetime(2026, 12, 2, tzinfo=timezone.utc))


def test_lookup_by_id_includes_deprecated_images_too():
    ec2 = boto3.client("ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(ec2)
    stubber.add_response("describe_images", {"Images": [image("ami-1", "2021-04-20T00:00:00.000Z")]},
                         {"IncludeDeprecated": True, "ImageIds": ["ami-1"]})
    with stubber:
        found = module.find_base_images(ec2, {"image_id": "ami-1"})
    assert [i["image_id"] for i in found] == ["ami-1"]


def test_deprecation_in_the_future_or_absent_is_not_deprecated():
    now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    assert not module.is_deprecated({"deprecation_time": "2027-01-01T00:00:00.000Z"}, now)
    assert not module.is_deprecated({"deprecation_time": ""}, now)
