"""The i2pc.scipion_cloud.podman connection: containers.podman.podman with pipelining, its
exec given --interactive whenever a module comes on standard input. A podman stand-in on
the command line records what the connection runs (the real podman is used by molecule,
the local provider and the end-to-end test). Each case runs in a Python of its own, where
Ansible's plugin loader finds the project's collection."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

# Records each call (argv and standard input) as a JSON line; `mount` answers a folder with a file.
# An exec in the container "gone" fails as podman does when there is no such container.
PODMAN_STANDIN = """#!/usr/bin/env python3
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "calls.jsonl"), "a") as log:
    log.write(json.dumps({"argv": sys.argv[1:], "stdin": sys.stdin.read()}) + "\\n")
if "gone" in sys.argv:
    sys.stderr.write('Error: no container with name or ID "gone" found: no such container\\n')
    sys.exit(125)
print(os.path.join(here, "rootfs") if sys.argv[1] == "mount" else "ran")
"""

# Loads the connection as a play would (the play context carries the host's address and user),
# runs one command and prints whether pipelining is on and what the command returned.
DRIVER = """
import json, sys
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader, init_plugin_loader
project, host_vars, cmd, in_data = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
init_plugin_loader([project + "/collections"])
context = PlayContext()
context.remote_addr = host_vars["ansible_host"]
context.remote_user = host_vars.get("ansible_user")
conn = connection_loader.get("i2pc.scipion_cloud.podman", context, None)
conn.set_options(var_options=host_vars)
from ansible.errors import AnsibleConnectionFailure
try:
    rc, out, _ = conn.exec_command(cmd, in_data=in_data.encode() if in_data else None)
except AnsibleConnectionFailure as error:
    print(json.dumps({"unreachable": str(error)}))
else:
    print(json.dumps({"pipelining": conn.is_pipelining_enabled(), "rc": rc, "out": out.decode().strip()}))
"""


@pytest.fixture
def podman(tmp_path: Path) -> Path:
    (tmp_path / "rootfs/etc").mkdir(parents=True)
    program = tmp_path / "podman"
    program.write_text(PODMAN_STANDIN)
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return program


def run(podman: Path, cmd: str, in_data: str = "", **host_vars) -> tuple[dict, list[dict]]:
    host_vars = {"ansible_host": "seat-01", "ansible_podman_executable": str(podman), **host_vars}
    result = subprocess.run([sys.executable, "-c", DRIVER, str(PROJECT), json.dumps(host_vars), cmd, in_data],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in (podman.parent / "calls.jsonl").read_text().splitlines()]
    return json.loads(result.stdout.splitlines()[-1]), calls


def test_a_module_on_standard_input_runs_in_one_interactive_exec(podman: Path):
    answer, calls = run(podman, "/bin/sh -c '/usr/bin/python3 && sleep 0'", "print('module')")
    assert answer == {"pipelining": True, "rc": 0, "out": "ran"}
    assert calls == [
        {"argv": ["mount", "seat-01"], "stdin": ""},
        {"argv": ["exec", "--interactive", "seat-01", "/bin/sh", "-c", "/usr/bin/python3 && sleep 0"],
         "stdin": "print('module')"},
    ]


def test_a_command_without_input_runs_without_interactive_and_as_the_remote_user(podman: Path):
    _, calls = run(podman, "echo ~", ansible_user="scipionuser")
    assert calls[-1] == {"argv": ["exec", "--user", "scipionuser", "seat-01", "echo", "~"], "stdin": ""}


def test_pipelining_can_be_turned_off_per_host(podman: Path):
    answer, _ = run(podman, "true", ansible_pipelining=False)
    assert answer["pipelining"] is False


def test_a_container_that_is_gone_makes_the_host_unreachable_not_the_task_failed(podman: Path):
    answer, _ = run(podman, "/bin/sh -c '/usr/bin/python3 && sleep 0'", "print('module')", ansible_host="gone")
    assert answer == {"unreachable": 'podman exec in gone: Error: no container with name or ID "gone" found: no such container'}
