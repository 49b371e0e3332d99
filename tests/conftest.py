"""Shared pytest fixtures: run the real playbooks, a local moto server for AWS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def playbook_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
    )
    env.update(extra or {})
    return env


@pytest.fixture
def run_playbook() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a playbook of playbooks/ (or a path) from the project root; output in .stdout."""

    def run(playbook: str, *args: str, env: dict[str, str] | None = None, timeout: int = 600):
        path = playbook if "/" in playbook else f"playbooks/{playbook}"
        cmd = [str(VENV_BIN / "ansible-playbook"), path, *args]
        return subprocess.run(
            cmd, cwd=PROJECT, env=playbook_env(env), text=True, timeout=timeout,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )

    return run


@pytest.fixture
def course_catalogue(tmp_path: Path) -> Callable[[str, dict], list[str]]:
    """Write a course file into a temporary catalogue; returns the extra-vars to use it."""
    catalogue = tmp_path / "courses"
    catalogue.mkdir()

    def write(name: str, course: dict | str) -> list[str]:
        text = course if isinstance(course, str) else yaml.safe_dump(course, sort_keys=False)
        (catalogue / f"{name}.yml").write_text(text)
        return ["-e", f"course={name}", "-e", f"course_catalogue_dir={catalogue}",
                "-e", f"course_output_root={tmp_path / 'output'}"]

    return write


@contextmanager
def moto_process(command: list[str] | None = None) -> Iterator[str]:
    """A real moto server on 127.0.0.1 (also used by tests/bench); yields its URL, stops it after.

    `command` replaces moto_server (a test's own patched server), given the same -H/-p arguments.
    """
    port = free_port()
    proc = subprocess.Popen(
        [*(command or [str(VENV_BIN / "moto_server")]), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
                break
            except OSError as error:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from error
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def start_moto() -> Callable[..., Any]:
    """moto_process for a test that needs a moto server of its own."""
    return moto_process


def reset_moto(url: str) -> None:
    """Empty moto's state."""
    req = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(req, timeout=10)


def moto_settings(url: str, region: str = "eu-west-1") -> dict[str, str]:
    """AWS settings that point boto3 and Ansible at moto only."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_CONFIG_FILE": "/dev/null",
    }


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real moto server on 127.0.0.1 for the whole session; yields its URL."""
    with moto_process() as url:
        yield url


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fresh moto state and AWS settings that point boto3 and Ansible at it."""
    reset_moto(moto_server)
    env = moto_settings(moto_server)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
