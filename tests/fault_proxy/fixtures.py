"""Pytest fixtures and helpers for runs through the fault proxy.

Import the fixture into a test module (``from fault_proxy.fixtures import fault_proxy``);
it needs tests/conftest.py's ``aws_env`` and ``moto_server``. Checks made by the test
itself through boto3 keep going to moto directly (aws_env's AWS_ENDPOINT_URL): only the
playbooks get the proxy, through ``proxy_env``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from .server import FaultProxy

PROJECT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def fault_proxy(aws_env: dict[str, str], moto_server: str, tmp_path: Path) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's moto server (emptied by aws_env), with no rules yet."""
    proxy = FaultProxy(moto_server, tmp_path / "faults.yml", tmp_path / "faults.log").start()
    yield proxy
    proxy.stop()


def proxy_env(proxy: FaultProxy) -> dict[str, str]:
    """The environment change that sends a playbook's AWS calls through the proxy."""
    return {"AWS_ENDPOINT_URL": proxy.url}


class PlaybookRun:
    """ansible-playbook in its own process group, its output in a file, so that it can be killed at a chosen point."""

    def __init__(self, playbook: str, args: list[str], env: dict[str, str], log: Path) -> None:
        path = playbook if "/" in playbook else f"playbooks/{playbook}"
        full_env = dict(os.environ)
        full_env.update(ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                        PATH=f"{VENV_BIN}:{full_env.get('PATH', '')}")
        full_env.update(env)
        self.log = log
        self.started = time.monotonic()
        with log.open("w") as out:
            self.proc = subprocess.Popen([str(VENV_BIN / "ansible-playbook"), path, *args], cwd=PROJECT, env=full_env,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def kill(self) -> None:
        """SIGKILL to the whole process group (ansible-playbook, its workers and the module processes)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while group_alive(self.proc.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"process group {self.proc.pid} survived SIGKILL")
            time.sleep(0.1)

    def wait(self, timeout: float = 600) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def __enter__(self) -> "PlaybookRun":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies waiting for their reaper do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
