"""configure.yml picks the ansible-core that can configure a machine, before any module runs there.

ansible-core 2.19 runs modules with Python 3.8+ only; Ubuntu 16.04 has 3.5. Such a machine (or
any machine of a profile that declares `runner: legacy`) is handed to the legacy runner
(ansible-core 2.15 in .venv-legacy), which runs playbooks/configure_roles.yml there. The user
types the same command.

The machine is a systemd container from the Debian 12 base image (Python 3.11). Ubuntu 16.04's
python3 is played by a stand-in that answers the version probe as Python 3.5 does and hands
everything else to the container's real python3 (2.15 runs its modules on 3.11 as on 3.5): the
routing is what is tested here, not Python 3.5 itself.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from image_helpers import PROJECT, builder_container, podman

PYTHON_STANDIN = """#!/bin/sh
# Stand-in for an old python3: answers the version probe as Python {version}, runs the rest.
case "$*" in
  *version_info*) echo {version} ;;
  *) exec /usr/bin/python3 "$@" ;;
esac
"""


@pytest.fixture(scope="module")
def machine():
    with builder_container("cfgpy") as name:
        yield name


def install_python_standin(machine: str, version: str) -> str:
    path = f"/usr/local/bin/python{version.replace('.', '')}"
    subprocess.run(["podman", "exec", "-i", machine, "sh", "-c", f"cat > {path} && chmod 755 {path}"],
                   input=PYTHON_STANDIN.format(version=version), text=True, check=True, timeout=60)
    podman("exec", machine, "rm", "-f", "/etc/scipion_cloud/configured.json")
    return path


def configure(run_playbook, tmp_path: Path, machine: str, *extra: str, **host_vars: str):
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"old_python": {"hosts": {machine: {
        "ansible_connection": "i2pc.scipion_cloud.podman", "ansible_host": machine, **host_vars}}}}))
    # No image role: the record alone shows which ansible-core ran configure_roles.yml on the machine.
    return run_playbook("configure.yml", "-i", str(inventory), "-e", "profile=scipion-3", "-e", "configure_hosts=old_python",
                        "-e", '{"configure_roles": []}', "-e", '{"profile_vars": {"gpu": false}}', *extra)


def record(machine: str) -> dict:
    return json.loads(podman("exec", machine, "cat", "/etc/scipion_cloud/configured.json").stdout)


def test_python_3_5_machine_is_configured_by_the_legacy_runner_python35_standin(run_playbook, tmp_path, machine):
    python = install_python_standin(machine, "3.5")
    result = configure(run_playbook, tmp_path, machine, ansible_python_interpreter=python)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{machine} (Python 3.5) is configured by the legacy runner (ansible-core 2.15): ansible-core 2.19 runs its modules" \
        in result.stdout
    assert "Legacy runner: ansible-playbook [core 2.15." in result.stdout
    done = record(machine)
    assert done["runner"] == "legacy" and done["ansible_core"].startswith("2.15."), done
    assert done["profile"] == "scipion-3"

    # Again: the record matches, the machine is skipped (by the legacy runner), nothing changes.
    again = configure(run_playbook, tmp_path, machine, ansible_python_interpreter=python)
    assert again.returncode == 0, again.stdout[-3000:]
    legacy_recap = re.search(rf"{machine} +: ok=\d+ +changed=(\d+) .*skipped=(\d+)", again.stdout)
    assert legacy_recap and legacy_recap.group(1) == "0", again.stdout[-3000:]
    assert re.search(r"localhost +: ok=\d+ +changed=0 ", again.stdout.split("PLAY RECAP")[-1]), again.stdout[-2000:]
    log = (PROJECT / "output" / "configure-legacy.log").read_text()
    assert f"{machine} is configured with this profile and these roles already" in log


def test_python_3_11_machine_stays_with_the_main_runner(run_playbook, tmp_path, machine):
    podman("exec", machine, "rm", "-f", "/etc/scipion_cloud/configured.json")
    result = configure(run_playbook, tmp_path, machine)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "configured by the legacy runner" not in result.stdout
    done = record(machine)
    assert done["runner"] == "main" and done["ansible_core"].startswith("2.19."), done


def test_missing_legacy_runner_is_refused_naming_the_make_target(run_playbook, tmp_path, machine):
    python = install_python_standin(machine, "3.5")
    result = configure(run_playbook, tmp_path, machine, "-e", "legacy_runner_ansible_playbook=/nonexistent/ansible-playbook",
                       ansible_python_interpreter=python)
    assert result.returncode != 0
    assert "The legacy runner (ansible-core 2.15, for machines whose Python is too old for ansible-core 2.19" in result.stdout
    assert "/nonexistent/ansible-playbook is missing. Run `make legacy-runner`" in result.stdout, result.stdout[-3000:]
    assert podman("exec", machine, "test", "-e", "/etc/scipion_cloud/configured.json", check=False).returncode == 1


def test_python_3_4_machine_is_refused_naming_the_version(run_playbook, tmp_path, machine):
    python = install_python_standin(machine, "3.4")
    result = configure(run_playbook, tmp_path, machine, ansible_python_interpreter=python)
    assert result.returncode != 0
    assert f"{machine} has Python 3.4 ({python}), which no runner of this collection can use: ansible-core 2.19 needs Python 3.8" \
        in result.stdout, result.stdout[-3000:]
    assert "Legacy runner:" not in result.stdout
    assert podman("exec", machine, "test", "-e", "/etc/scipion_cloud/configured.json", check=False).returncode == 1


def test_machine_without_the_interpreter_is_refused(run_playbook, tmp_path, machine):
    result = configure(run_playbook, tmp_path, machine, ansible_python_interpreter="/usr/bin/python3.99")
    assert result.returncode != 0
    assert f"{machine} could not run /usr/bin/python3.99 (no such interpreter?): install Python 3 on it" in result.stdout, \
        result.stdout[-3000:]
