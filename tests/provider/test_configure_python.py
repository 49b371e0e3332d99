"""configure.yml refuses, by name and reason, a machine whose Python cannot run Ansible's modules
(Ubuntu 16.04 has 3.5, 18.04 has 3.6; ansible-core 2.19 needs 3.8), before any module runs there.

The machine is a systemd container from the base image (Debian 12, Python 3.11). Ubuntu 16.04's
Python is played by a stand-in `python3` that answers the version probe as Python 3.5 does and
fails anything else, the way a 3.5 interpreter fails on today's module code.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from image_helpers import builder_container, podman

PYTHON35_STANDIN = """#!/bin/sh
# Stand-in for Ubuntu 16.04's python3 (3.5.2): answers the version probe, fails any module.
case "$*" in
  *version_info*) echo 3.5 ;;
  *) echo 'SyntaxError: invalid syntax' >&2; exit 1 ;;
esac
"""


@pytest.fixture(scope="module")
def machine():
    with builder_container("cfgpy") as name:
        yield name


def configure(run_playbook, tmp_path: Path, machine: str, **host_vars: str):
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"old_python": {"hosts": {machine: {
        "ansible_connection": "containers.podman.podman", "ansible_host": machine, **host_vars}}}}))
    return run_playbook("configure.yml", "-i", str(inventory), "-e", "profile=scipion-3", "-e", "configure_hosts=old_python",
                        "-e", '{"configure_roles": ["desktop"]}', "-e", '{"configure_profile_vars": {"gpu": false}}')


def test_python_3_5_machine_is_refused_naming_the_version_and_the_way_out(run_playbook, tmp_path, machine):
    subprocess.run(["podman", "exec", "-i", machine, "sh", "-c", "cat > /usr/local/bin/python35 && chmod 755 /usr/local/bin/python35"],
                   input=PYTHON35_STANDIN, text=True, check=True, timeout=60)
    result = configure(run_playbook, tmp_path, machine, ansible_python_interpreter="/usr/local/bin/python35")
    assert result.returncode != 0
    assert f"{machine} has Python 3.5 (/usr/local/bin/python35), and ansible-core 2.19 runs its modules with Python 3.8" \
        in result.stdout, result.stdout[-3000:]
    assert "Ubuntu 16.04 (Python 3.5) and 18.04 (3.6) are too old" in result.stdout
    # Refused before any module ran: the desktop role left nothing.
    assert "TASK [i2pc.scipion_cloud.desktop" not in result.stdout
    assert podman("exec", machine, "test", "-e", "/etc/scipion_cloud/configured.json", check=False).returncode == 1


def test_machine_without_the_interpreter_is_refused(run_playbook, tmp_path, machine):
    result = configure(run_playbook, tmp_path, machine, ansible_python_interpreter="/usr/bin/python3.99")
    assert result.returncode != 0
    assert f"{machine} could not run /usr/bin/python3.99 (no such interpreter?): install Python 3.8 or newer" in result.stdout, result.stdout[-3000:]
