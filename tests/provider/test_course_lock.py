"""One run at a time changes a course: provision.yml runs on moto, concurrent and killed.

A run that holds the lock is frozen with SIGSTOP (its whole process group) so that the
other run meets it at a known point, whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aws_course_helpers import (
    PROJECT,
    course_file,
    course_instances,
    failure,
    key_pair_names,
    linux_image_id,
    recap,
    tagged_with_course,
)

COURSE = "madrid"


def start_playbook(log: Path, playbook: str, *args: str) -> subprocess.Popen[str]:
    """ansible-playbook in its own process group (so that it can be frozen or killed with its workers), output to `log`."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    with log.open("w") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "ansible-playbook"), f"playbooks/{playbook}", *args],
            cwd=PROJECT, env=env, text=True, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_for(what: str, condition: Any, proc: subprocess.Popen[str], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{log.read_text()[-5000:]}")
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.1)


def start_time_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def course_state(output: Path) -> dict[str, Any]:
    """What a run could have changed: the course's cloud resources and its output files (the lock aside)."""
    files = {p.name: p.read_bytes() for p in output.iterdir() if p.is_file() and p.name != "run.lock"} if output.exists() else {}
    return {"cloud": tagged_with_course(COURSE), "key_pairs": key_pair_names(), "files": files}


def test_one_provision_at_a_time_and_a_killed_one_leaves_a_lock_that_the_next_breaks(
        aws_env, run_playbook, course_catalogue, tmp_path: Path) -> None:
    args = course_catalogue(COURSE, course_file(2, image_id=linux_image_id()))
    output = tmp_path / "output" / COURSE
    lock = output / "run.lock"
    log = tmp_path / "first.log"
    first = start_playbook(log, "provision.yml", *args)
    try:
        wait_for("lock", lock.exists, first, log)
        os.killpg(first.pid, signal.SIGSTOP)
        held = json.loads(lock.read_text())
        # The holder is the ansible-playbook process itself, named by its pid and start time.
        assert (held["pid"], held["start_time"]) == (first.pid, start_time_of(first.pid))
        assert held["playbook"] == "provision.yml" and held["course"] == COURSE
        before = course_state(output)

        # A second provision of the course refuses, naming the first, before it reads or makes anything.
        second = run_playbook("provision.yml", *args)

        assert second.returncode != 0, second.stdout[-5000:]
        started = held["started"].replace("T", " ").replace("Z", " UTC")
        assert (f"course madrid is being changed by another run: provision.yml started {started} by {held['user']} "
                f"on host {held['host']} (pid {first.pid}). Wait for it to finish; if it is not running any more, "
                f"remove {lock}.") in failure(second.stdout)
        assert "TASK [Let no other run change the course until this one ends]" in second.stdout
        assert "TASK [Read which seats of the course exist already]" not in second.stdout
        assert course_state(output) == before
        assert json.loads(lock.read_text()) == held

        # The first goes on, and is killed while it makes the seats (after the passwords).
        os.killpg(first.pid, signal.SIGCONT)
        wait_for("credentials", (output / "credentials.yml").exists, first, log)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    assert json.loads(lock.read_text()) == held

    # A plain re-run breaks the killed run's lock with a warning, finishes the course and releases its own lock.
    rerun = run_playbook("provision.yml", *args)

    assert rerun.returncode == 0, rerun.stdout[-5000:]
    assert recap(rerun.stdout)["failed"] == 0
    warning = re.search(r"\[WARNING\]: Broke the stale lock of course madrid \((.*?)\): (.*?) is not running any more "
                        r"\((.*?)\)\.", rerun.stdout)
    assert warning, rerun.stdout[-5000:]
    assert warning.group(1) == str(lock)
    assert warning.group(2) == f"provision.yml started {started} by {held['user']} on host {held['host']} (pid {first.pid})"
    assert warning.group(3) in ("its process is gone", f"its pid {first.pid} now belongs to another process")
    assert len(course_instances(COURSE)) == 2
    assert not lock.exists()
