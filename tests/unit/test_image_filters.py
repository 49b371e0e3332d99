"""The image roles' retention and audit filters (plugins/filter/image.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.filter import image  # noqa: E402


def ami(image_id: str, date: str | None, created: str = "2020-01-01T00:00:00.000Z", snapshots: tuple = ("snap-1",)) -> dict:
    tags = {"ManagedBy": "scipion_cloud", "Profile": "scipion-3"}
    if date is not None:
        tags["BuildDate"] = date
    mappings = [{"device_name": "/dev/sda1", "ebs": {"snapshot_id": s}} for s in snapshots]
    mappings.append({"device_name": "/dev/sdb", "virtual_name": "ephemeral0"})  # no EBS: no snapshot
    return {"image_id": image_id, "name": f"name-{image_id}", "creation_date": created, "tags": tags,
            "block_device_mappings": mappings}


def test_aws_images_are_sorted_by_build_date_falling_back_to_creation_date():
    owned = image.image_aws_owned([ami("ami-old", "2025-01-01T00:00:00Z"), ami("ami-untagged", None, "2025-06-01T00:00:00.000Z"),
                                   ami("ami-new", "2026-01-01T00:00:00Z", snapshots=("snap-a", "snap-b"))], "eu-west-1")
    assert [i["id"] for i in owned] == ["ami-new", "ami-untagged", "ami-old"]
    assert owned[0] == {"id": "ami-new", "name": "name-ami-new", "region": "eu-west-1", "date": "2026-01-01T00:00:00Z",
                        "snapshots": ["snap-a", "snap-b"]}
    assert owned[1]["date"] == "2025-06-01T00:00:00.000Z"


def test_retention_keeps_the_newest_and_every_older_image_a_machine_uses():
    images = [{"id": f"i-{n}", "date": f"2026-0{n}-01"} for n in (5, 4, 3, 2, 1)]
    decision = image.image_retention(images, 2, ["i-3", "i-1", "i-5", "i-unrelated"])
    assert [i["id"] for i in decision["delete"]] == ["i-2"]
    assert [i["id"] for i in decision["in_use"]] == ["i-3", "i-1"], "a used image among the newest is simply kept"


def test_retention_with_fewer_images_than_kept_deletes_nothing_and_keep_may_be_text():
    images = [{"id": "i-1", "date": "2026-01-01"}]
    assert image.image_retention(images, "3", []) == {"delete": [], "in_use": []}
    assert image.image_retention([], 1, None) == {"delete": [], "in_use": []}


def test_retention_refuses_to_keep_no_image():
    with pytest.raises(AnsibleFilterError, match="keep at least 1 image"):
        image.image_retention([{"id": "i-1", "date": "x"}], 0, [])


def glance(image_id: str, date: str | None, owner: str | None = "proj", profile: str = "scipion-3",
           managed: str = "scipion_cloud") -> dict:
    properties = {"ManagedBy": managed, "Profile": profile}
    if date is not None:
        properties["BuildDate"] = date
    return {"id": image_id, "name": f"name-{image_id}", "created_at": "2020-01-01T00:00:00Z", "owner": owner,
            "properties": properties}


def test_openstack_images_are_ours_of_the_profile_and_of_this_project_only():
    images = [glance("new", "2026-01-01T00:00:00Z"), glance("old", "2025-01-01T00:00:00Z"),
              glance("no-date", None), glance("other-profile", "2027-01-01", profile="scipion-1.1"),
              glance("not-ours", "2027-01-01", managed="someone"), glance("other-project", "2027-01-01", owner="elsewhere"),
              glance("no-owner", "2024-01-01", owner=""), {"id": "site", "name": "Ubuntu 24.04", "properties": None}]
    owned = image.image_openstack_owned(images, "scipion-3", "cloud-a", "proj")
    assert [i["id"] for i in owned] == ["new", "old", "no-owner", "no-date"]
    assert owned[0] == {"id": "new", "name": "name-new", "region": "cloud-a", "date": "2026-01-01T00:00:00Z"}
    # owner_id when there is no owner field (older SDKs).
    legacy = {**glance("legacy", "2026-02-01"), "owner_id": "proj"}
    del legacy["owner"]
    assert [i["id"] for i in image.image_openstack_owned([legacy], "scipion-3", "cloud-a", "proj")] == ["legacy"]


def test_local_images_are_the_repositorys_counted_once_newest_first():
    repo = "localhost/scipion-cloud/demo-scipion-3"
    images = [
        {"Id": "aaa", "Created": "2026-01-02T10:00:00Z", "RepoTags": [f"{repo}:latest", f"{repo}:20260102-100000-v0.1.0"]},
        {"Id": "bbb", "Created": "2026-01-01T10:00:00Z", "RepoTags": [f"{repo}:20260101-100000-v0.1.0"]},
        {"Id": "ccc", "Created": "2027-01-01T10:00:00Z", "RepoTags": [f"{repo}-other:latest"]},
        {"Id": "ddd", "Created": "2027-01-01T10:00:00Z", "RepoTags": None},
    ]
    owned = image.image_local_owned(images, repo)
    assert owned == [{"id": "aaa", "name": f"{repo}:20260102-100000-v0.1.0", "date": "2026-01-02T10:00:00Z"},
                     {"id": "bbb", "name": f"{repo}:20260101-100000-v0.1.0", "date": "2026-01-01T10:00:00Z"}]


def test_aws_leftovers_name_each_resource_and_its_build():
    found = image.image_aws_leftovers(
        [{"instance_id": "i-1", "tags": {"BuildId": "b1"}}], [{"key_name": "scipion-image-b1", "tags": {"BuildId": "b1"}}],
        [{"group_id": "sg-1", "tags": {}}], [{"id": "vol-1"}])
    assert found == ["instance i-1 (build b1)", "key-pair scipion-image-b1 (build b1)", "security-group sg-1 (build ?)",
                     "volume vol-1 (build ?)"]
    assert image.image_aws_leftovers([], [], [], []) == []


def test_openstack_leftovers_are_builders_by_metadata_and_temporaries_by_name():
    servers = [{"id": "s-1", "metadata": {"Purpose": "image-builder", "BuildId": "b1"}},
               {"id": "s-2", "metadata": {"Course": "fedcloud"}}, {"id": "s-3", "metadata": {"Purpose": "image-builder"}},
               {"id": "s-4", "metadata": None}]
    keys = [{"name": "scipion-image-b1"}, {"name": "fedcloud-key"}]
    groups = [{"id": "g-1", "name": "scipion-image-b2"}, {"id": "g-0", "name": "default"}]
    assert image.image_openstack_leftovers(servers, keys, groups) == [
        "server s-1 (build b1)", "server s-3 (build ?)", "key-pair scipion-image-b1 (build b1)", "security-group g-1 (build b2)"]


def test_openstack_builder_rules_let_ssh_in_from_the_controller_only():
    rules = image.image_openstack_ssh_rules(["198.51.100.7/32", "2001:db8::1/128"])
    assert rules[:2] == [{"direction": "egress", "ether_type": "IPv4"}, {"direction": "egress", "ether_type": "IPv6"}]
    assert [(r["direction"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"], r["ether_type"]) for r in rules[2:]] == \
        [("ingress", 22, 22, "198.51.100.7/32", "IPv4"), ("ingress", 22, 22, "2001:db8::1/128", "IPv6")]
    assert len(image.image_openstack_ssh_rules([])) == 2


def test_podman_label_changes_quote_keys_and_values_in_key_order():
    changes = image.image_podman_label_changes({"Profile": "scipion-3", "artifacts:1": 'a="b" c', "BuildId": 7})
    assert changes == ['--change=LABEL "scipion_cloud.artifacts:1"="a=\\"b\\" c"',
                       '--change=LABEL "scipion_cloud.BuildId"="7"', '--change=LABEL "scipion_cloud.Profile"="scipion-3"']
    for change in changes:
        key, _, value = change.removeprefix("--change=LABEL ").partition("=")
        assert json.loads(key).startswith("scipion_cloud.") and isinstance(json.loads(value), str)
