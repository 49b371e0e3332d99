"""The image manifest filters (plugins/filter/image.py): what the shipped profiles put in an image's tags."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible.errors import AnsibleFilterError  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.filter import image  # noqa: E402

BUILD = {"id": "scipion11-20260101120000-0a1b", "date": "2026-01-01T12:00:00Z", "base_image": "ami-0123 ubuntu/images/x"}
COLLECTION = {"name": "i2pc.scipion_cloud", "version": "0.1.0", "commit": "a" * 40}


def profile(name: str) -> dict:
    return yaml.safe_load((PROJECT / "inventories/profiles" / f"{name}.yml").read_text())


def manifest(name: str, **overrides) -> dict:
    return image.image_manifest({**profile(name), **overrides}, name, ["desktop"], BUILD, COLLECTION,
                                {"turbovnc_2.1.1_amd64.deb": "B" * 64}, overrides)


def test_every_declared_artifact_has_a_checksum_entry():
    found = image.image_artifacts(profile("scipion-1.1"), {"turbovnc_2.1.1_amd64.deb": "B" * 64})
    assert found["cuda_8.0.61_375.26_linux.run"] == "9ceca9c2397f841024e03410bfd6eabfd72b384256fbed1c1e4834b5b0ce9dc4"
    assert found["turbovnc_2.1.1_amd64.deb"] == "b" * 64, "an operator-confirmed checksum fills a null"
    assert found["chimera-1.10.1-linux_x86_64.tgz"] == "unconfirmed"
    assert len(found) == 19


def test_checksums_of_the_artifact_lock_fill_nulls_but_never_a_published_one():
    lock = {"virtualgl_2.5.2_amd64.deb": {"sha256": "C" * 64, "size": 10},
            "cuda_8.0.61_375.26_linux.run": {"sha256": "d" * 64, "size": 10}}
    found = image.image_artifacts(profile("scipion-1.1"), lock)
    assert found["virtualgl_2.5.2_amd64.deb"] == "c" * 64
    assert found["cuda_8.0.61_375.26_linux.run"] == "9ceca9c2397f841024e03410bfd6eabfd72b384256fbed1c1e4834b5b0ce9dc4"


def test_components_follow_the_profile_and_its_gpu_switch():
    components = image.image_components(profile("scipion-3"))
    assert components["cuda"] == "12.4 default 12.4" and components["virtualgl"] == "3.1.1 egl"
    assert components["vnc_server"] == "turbovnc 3.1.2" and components["novnc"] == "1.6.0"
    assert components["scipion"].startswith("3 scipion-pyworkflow==3.11.7")
    without_gpu = image.image_components({**profile("scipion-3"), "gpu": False, "turbovnc_server": "tigervnc",
                                          "novnc_source": "distro"})
    assert "cuda" not in without_gpu and "nvidia_driver" not in without_gpu
    assert without_gpu["vnc_server"] == "tigervnc distro" and without_gpu["novnc"] == "distro"


def test_shipped_profiles_fit_in_aws_tags_one_per_artifact():
    for name in ("scipion-1.1", "scipion-3"):
        tags = image.image_tags(manifest(name), {"Name": "x" * 60})
        assert len(tags) <= 50 and all(len(v) <= 256 for v in tags.values())
        assert tags["ManagedBy"] == "scipion_cloud" and tags["Profile"] == name
        assert {k for k in tags if k.startswith("artifact:")} == {f"artifact:{a}" for a in manifest(name)["artifacts"]}


def test_long_values_are_cut_into_numbered_tags_without_losing_words():
    plugins = [f"scipion-em-plugin{n:02d}==3.{n}.0" for n in range(20)]
    tags = image.image_tags(manifest("scipion-3", scipion_plugins=plugins))
    parts = [tags[k] for k in sorted(tags) if k.startswith("component:scipion_plugins:")]
    assert len(parts) == 3 and all(len(p) <= 256 for p in parts)
    assert " ".join(parts).split() == plugins


def test_too_many_artifacts_are_folded_then_refused():
    many = [{"package": f"pkg-{n}", "tarball": {"name": f"pkg-{n}.tgz", "url": "", "sha256": "c" * 64}} for n in range(40)]
    big = manifest("scipion-1.1", scipion_em_packages=many)
    folded = image.image_tags(big)
    assert len(folded) <= 50 and not [k for k in folded if k.startswith("artifact:")]
    words = " ".join(v for k, v in folded.items() if k.startswith("artifacts:")).split()
    assert words == [f"{name}={checksum}" for name, checksum in big["artifacts"].items()]
    assert f"pkg-39.tgz={'c' * 64}" in words
    with pytest.raises(AnsibleFilterError, match=r"needs \d+ tags .* at most 50"):
        image.image_tags(manifest("scipion-1.1", scipion_em_packages=many * 4 + [
            {"package": f"x{n}", "tarball": {"name": f"x{n}.tgz", "url": "", "sha256": None}} for n in range(200)]))


def test_a_file_name_too_long_for_a_tag_key_folds_the_checksums():
    long_name = {"name": "x" * 130 + ".tgz", "url": "", "sha256": "d" * 64}
    tags = image.image_tags(manifest("scipion-3", course_data_projects=[{"name": "p", "archive": long_name}]))
    assert all(len(k) <= 128 for k in tags) and not [k for k in tags if k.startswith("artifact:")]
    assert any(long_name["name"] + "=" + "d" * 64 in v.split() for k, v in tags.items() if k.startswith("artifacts:"))


def test_the_manifest_keys_win_over_extra_tags():
    tags = image.image_tags(manifest("scipion-3"), {"ManagedBy": "someone", "UserName": "i2pc-training"})
    assert tags["ManagedBy"] == "scipion_cloud" and tags["UserName"] == "i2pc-training"


def test_controller_networks():
    assert image.image_cidr_problems(["203.0.113.7/32"]) == []
    assert "not set" in image.image_cidr_problems([])[0]
    assert "whole Internet" in image.image_cidr_problems(["0.0.0.0/0"])[0]
    assert image.image_cidr_problems(["::/0"], allow_world=True) == []
    assert "not a network" in image.image_cidr_problems(["203.0.113.7/24"])[0]
