"""The repo is an installable collection whose dependencies the pinned bundle satisfies."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from ansible.utils.version import SemanticVersion

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _in_range(version: str, spec: str) -> bool:
    have = SemanticVersion(version)
    for clause in spec.split(","):
        clause = clause.strip()
        op = clause.rstrip("0123456789.")
        want = SemanticVersion(clause[len(op):])
        ok = {">=": have >= want, "<": have < want, ">": have > want, "<=": have <= want, "==": have == want}[op]
        if not ok:
            return False
    return True


def test_required_collections_are_bundled_in_range():
    required = yaml.safe_load((PROJECT / "collections/requirements.yml").read_text())["collections"]
    listing = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "list", "--format", "json"],
        cwd=PROJECT, capture_output=True, text=True, check=True,
    )
    installed: dict[str, str] = {}
    for collections in json.loads(listing.stdout).values():
        for name, info in collections.items():
            installed.setdefault(name, info["version"])
    for item in required:
        assert item["name"] in installed, f"{item['name']} is not in the pinned ansible bundle"
        assert _in_range(installed[item["name"]], item["version"]), (item, installed[item["name"]])


def test_our_collection_resolves_from_the_project():
    doc = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", "role", "i2pc.scipion_cloud.course", "--json"],
        cwd=PROJECT, capture_output=True, text=True, check=True,
    )
    entry_points = json.loads(doc.stdout)["i2pc.scipion_cloud.course"]["entry_points"]
    assert {"main", "course_file"} <= set(entry_points)


def test_runtime_admits_the_legacy_runner():
    # The image roles and the modules they run on machines also run under the legacy runner
    # (ansible-core 2.15, requirements-legacy.txt); everything else needs 2.19 (requirements.txt).
    runtime = yaml.safe_load((PROJECT / "meta/runtime.yml").read_text())
    assert runtime["requires_ansible"] == ">=2.15.0"
    legacy = (PROJECT / "requirements-legacy.txt").read_text()
    assert "ansible-core==2.15." in legacy


def test_galaxy_build_produces_an_installable_tarball(tmp_path):
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), str(PROJECT)],
        check=True, capture_output=True, text=True,
    )
    (tarball,) = tmp_path.glob("i2pc-scipion_cloud-*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "roles/course/meta/argument_specs.yml" in names
    assert "plugins/filter/course.py" in names
    assert not [n for n in names if n.startswith((".venv", "output/", "collections/ansible_collections"))]
    install = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force", "-p", str(tmp_path / "installed"),
         str(tarball)],
        capture_output=True, text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (tmp_path / "installed/ansible_collections/i2pc/scipion_cloud/roles/course/tasks/main.yml").is_file()


def test_product_code_does_not_depend_on_the_test_tree() -> None:
    # The tarball leaves tests/ out (galaxy.yml build_ignore): no role, plugin, playbook or profile may
    # read a file from there. Role READMEs may still point developers at the tests that prove a claim.
    offenders = []
    for top in ("roles", "plugins", "playbooks", "inventories", "meta"):
        for path in sorted((PROJECT / top).rglob("*")):
            if not path.is_file() or path.suffix not in {".yml", ".yaml", ".py", ".j2", ".json", ".sh"}:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if "tests/" in line:
                    offenders.append(f"{path.relative_to(PROJECT)}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
