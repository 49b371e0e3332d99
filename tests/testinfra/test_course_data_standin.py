"""The course_data role's result after side_effect.yml broke it and ran it again: the
stand-in dataset verified file by file, the FEICourse project unpacked for the student."""

import json
import os
from pathlib import Path

import pytest

DATASET = "/data/relion13_tutorial"
PROJECT = "/home/ubuntu/ScipionUserData/projects/FEICourse"


@pytest.fixture(scope="module")
def standins() -> dict:
    manifest = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")) / "mirror" / "standins.json"
    if not manifest.exists():
        pytest.skip("stand-in manifest not found (run through molecule)")
    return json.loads(manifest.read_text())


def test_every_dataset_file_matches_the_manifest(host, standins):
    manifest = host.file(f"{DATASET}/MANIFEST").content_string
    assert len(manifest.splitlines()) == len(standins["dataset_md5"])
    for name, md5 in standins["dataset_md5"].items():
        assert f"{name} {md5}\n" in manifest
        assert host.file(f"{DATASET}/{name}").md5sum == md5, name


def test_data_belongs_to_the_student(host):
    wrong = host.run(f"find {DATASET} {PROJECT} ! -user ubuntu")
    assert wrong.stdout == "", wrong.stdout
    assert host.file("/data").user == "root"


def test_project_is_complete_and_its_imports_resolve_into_data(host, standins):
    assert host.file(f"{PROJECT}/project.sqlite").is_file
    for movie in standins["movies"]:
        link = host.file(f"{PROJECT}/Runs/000002_ProtImportMovies/extra/{movie}")
        assert link.linked_to == f"{DATASET}/betagal/Micrographs/{movie}"
        assert host.file(link.linked_to).md5sum == standins["dataset_md5"][f"betagal/Micrographs/{movie}"]


def test_no_half_unpacked_project_is_left(host):
    assert not host.file("/home/ubuntu/ScipionUserData/projects/.FEICourse.unpacking").exists
    marker = host.file("/var/lib/scipion_cloud/course_data/FEICourse.unpacked").content_string
    assert marker.startswith("FEICourse.tgz sha256 ")


def test_archives_are_not_kept_in_the_cache(host):
    left = host.run("ls /var/cache/scipion_cloud/artifacts").stdout.split()
    assert "relion13_tutorial.tgz" not in left and "FEICourse.tgz" not in left
