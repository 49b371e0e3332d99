"""Where the legacy_runner role looks for the legacy ansible-playbook: the user's project folder's
.venv-legacy first, then the collection checkout's; none found is refused with how to make one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = "tests/playbooks/legacy_runner_found.yml"
CHECKOUT_RUNNER = PROJECT / ".venv-legacy/bin/ansible-playbook"
VENV_BIN = Path(sys.executable).parent


def flat(text: str) -> str:
    return " ".join(text.split())


def runner_in(folder: Path) -> Path:
    path = folder / ".venv-legacy/bin/ansible-playbook"
    path.parent.mkdir(parents=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_the_project_folders_legacy_runner_comes_first(run_playbook, tmp_path: Path) -> None:
    found = runner_in(tmp_path / "project")
    result = run_playbook(PLAYBOOK, "-e", f"course_project_dir={tmp_path / 'project'}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"legacy runner: {found}" in result.stdout


@pytest.mark.skipif(not CHECKOUT_RUNNER.exists(), reason="no legacy runner in the checkout: make legacy-runner")
def test_without_one_in_the_project_the_checkouts_is_used(run_playbook, tmp_path: Path) -> None:
    result = run_playbook(PLAYBOOK, "-e", f"course_project_dir={tmp_path}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"legacy runner: {CHECKOUT_RUNNER}" in result.stdout


def test_none_found_says_how_to_make_one_in_the_project(run_playbook, tmp_path: Path) -> None:
    result = run_playbook(PLAYBOOK, "-e", f"course_project_dir={tmp_path}",
                          "-e", json.dumps({"legacy_runner_search_dirs": [str(tmp_path)]}))
    assert result.returncode != 0
    text = flat(result.stdout)
    assert f"is not installed: none of {tmp_path}/.venv-legacy/bin/ansible-playbook exists." in text, text[-3000:]
    assert (f"create it in your project folder: python3 -m venv {tmp_path}/.venv-legacy && "
            f"{tmp_path}/.venv-legacy/bin/pip install ansible-core==2.15.13") in text


@pytest.mark.skipif(not CHECKOUT_RUNNER.exists(), reason="no legacy runner in the checkout: make legacy-runner")
def test_an_installed_collection_runs_the_legacy_child_from_the_users_project(tmp_path: Path) -> None:
    """No checkout: the collection installed from its tarball, the legacy runner in the user's project
    (.venv-legacy), no ansible.cfg; the child run finds the collection where it was installed."""
    build = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path),
                            str(PROJECT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = tmp_path.glob("i2pc-scipion_cloud-*.tar.gz")
    project = tmp_path / "project"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(project / "collections"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    install = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", "collections",
                              str(tarball)], cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    (project / ".venv-legacy").symlink_to(PROJECT / ".venv-legacy")
    (project / "child.yml").write_text(
        "- hosts: legacy_runner\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n        msg: \"{{ 'demo' | i2pc.scipion_cloud.course_resource_names }}\"\n")
    (project / "legacy.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.include_role:\n        name: i2pc.scipion_cloud.legacy_runner\n"
        "      vars:\n        legacy_runner_playbook: \"{{ playbook_dir }}/child.yml\"\n"
        "        legacy_runner_hosts: [localhost]\n")
    result = subprocess.run([str(VENV_BIN / "ansible-playbook"), "legacy.yml"], cwd=project, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Legacy runner: ansible-playbook [core 2.15." in result.stdout
    # The child's recap: the play ran its task on the host, with the installed collection's filter.
    assert "localhost : ok=1 changed=0 unreachable=0 failed=0" in flat(result.stdout), result.stdout[-3000:]
