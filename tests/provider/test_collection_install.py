"""The collection as a user installs it: the built tarball, installed with ansible-galaxy into a
scratch folder, runs from the user's own project folder (its courses/, profiles/ and output/),
and never writes into the installed collection.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from aws_course_helpers import course_file, course_instances, linux_image_id, read_credentials, recap

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

# What stays in the repository: the development tree, not what a user runs.
DEVELOPMENT_ONLY = ("tests/", "molecule/", "scripts/", ".ci/", ".config/", ".venv", "output/", "collections/ansible_collections")
DEVELOPMENT_FILES = ("Makefile", "pytest.ini", "ansible.cfg", ".ansible-lint", ".yamllint", ".gitignore")


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(PROJECT)],
                   check=True, capture_output=True, text=True, timeout=300)
    (built,) = out.glob("i2pc-scipion_cloud-*.tar.gz")
    return built


@pytest.fixture
def user_project(tarball: Path, tmp_path: Path) -> Iterator[Path]:
    """A user's project folder with the collection installed in ./collections (as `-p collections`)."""
    project = tmp_path / "classroom-project"
    project.mkdir()
    install = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", "collections", str(tarball)],
        cwd=project, capture_output=True, text=True, timeout=300, env=user_env(project),
    )
    assert install.returncode == 0, install.stdout + install.stderr
    yield project


def user_env(project: Path) -> dict[str, str]:
    """A user's shell: no ansible.cfg of ours, the collection found where it was installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(project / "collections"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PATH=f"{VENV_BIN}:{env.get('PATH', '')}")
    return env


def installed_files(collection: Path) -> dict[str, tuple[int, int]]:
    """Every file of the installed collection with its size and modification time."""
    return {str(p.relative_to(collection)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in collection.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def play(project: Path, playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), f"i2pc.scipion_cloud.{playbook}", *args], cwd=project,
                          env=user_env(project), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)


def test_tarball_holds_what_a_user_runs_and_no_development_tree(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert {"roles/course/tasks/main.yml", "plugins/lookup/profile.py", "playbooks/provision.yml",
            "inventories/profiles/scipion-3.yml", "inventories/prices/aws-2026-08.yml"} <= set(names)
    shipped_dev = [n for n in names if n.startswith(DEVELOPMENT_ONLY) or n in DEVELOPMENT_FILES
                   or (n.startswith("requirements") and n.endswith(".txt"))]
    assert shipped_dev == []


def test_installed_collection_plans_and_provisions_from_the_users_folder(aws_env, user_project: Path) -> None:
    collection = user_project / "collections/ansible_collections/i2pc/scipion_cloud"
    # The user's own course file and a facility profile of their own (a copy of the shipped one).
    (user_project / "courses").mkdir()
    (user_project / "profiles").mkdir()
    profile = yaml.safe_load((collection / "inventories/profiles/scipion-3.yml").read_text())
    profile["description"] = "Our facility's Scipion 3 image"
    (user_project / "profiles/facility.yml").write_text(yaml.safe_dump(profile))
    course = course_file(1, image_id=linux_image_id())
    course["profile"] = "facility"
    (user_project / "courses/classroom.yml").write_text(yaml.safe_dump(course))
    before = installed_files(collection)

    planned = play(user_project, "plan", "-e", "course=classroom")
    assert planned.returncode == 0, planned.stdout[-5000:]
    assert "facility" in planned.stdout

    # A course the user does not have is named with where it was looked for.
    unknown = play(user_project, "plan", "-e", "course=madrid")
    assert unknown.returncode != 0
    assert (f"Unknown course madrid: there is no madrid.yml in {user_project}/courses or "
            f"{user_project}/inventories/courses. Known courses: classroom.") in unknown.stdout

    provisioned = play(user_project, "provision", "-e", "course=classroom")
    assert provisioned.returncode == 0, provisioned.stdout[-5000:]
    assert recap(provisioned.stdout)["changed"] > 0
    output = user_project / "output/classroom"
    assert sorted(read_credentials(output / "credentials.yml")) == ["classroom-training-01"]
    assert (output / "access.csv").stat().st_mode & 0o777 == 0o600
    assert [i["InstanceId"] for i in course_instances("classroom")]

    # Nothing was written into the installed collection: no output/, no secrets, no changed file.
    assert installed_files(collection) == before
    assert not (collection / "output").exists()
