"""Pytest fixtures and helpers for runs through the fault proxy.

Import the fixture into a test module (``from fault_proxy.fixtures import fault_proxy``);
it needs tests/conftest.py's ``aws_env`` and ``moto_server``. Checks made by the test
itself through boto3 keep going to moto directly (aws_env's AWS_ENDPOINT_URL): only the
playbooks get the proxy, through ``proxy_env``.
"""

from __future__ import annotations

import contextlib
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
    """ansible-playbook in a session of its own, its output in a file, so that it can be killed at a chosen point."""

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
        """SIGKILL to ansible-playbook and every process under it, as when the controller dies.

        The process group is not enough: ansible's workers detach into sessions of their own
        (os.setsid), so a module would live on and finish its call. The tree is frozen
        (SIGSTOP) until no new process appears, then killed at once.
        """
        frozen: set[int] = set()
        while True:
            tree = descendants(self.proc.pid) | {self.proc.pid}
            if tree <= frozen:
                break
            for pid in tree - frozen:
                signal_quietly(pid, signal.SIGSTOP)
            frozen |= tree
        for pid in frozen:
            signal_quietly(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in frozen):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of the run survived SIGKILL: {sorted(p for p in frozen if running(p))}")
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


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            table[int(stat.parent.name)] = (int(fields[1]), fields[0])
        except (OSError, IndexError, ValueError):
            continue
    return table


def descendants(root: int) -> set[int]:
    table = process_table()
    found: set[int] = set()
    parents = {root}
    while parents:
        children = {pid for pid, (ppid, _) in table.items() if ppid in parents and pid not in found}
        found |= children
        parents = children
    return found


def running(pid: int) -> bool:
    """Whether the process still runs (a zombie waiting for its reaper does not)."""
    state = process_table().get(pid)
    return state is not None and state[1] != "Z"


def signal_quietly(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
