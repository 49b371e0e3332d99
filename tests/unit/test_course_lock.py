"""course_lock: taking, refusing, breaking stale locks and releasing, on real processes and a real /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.action import course_lock  # noqa: E402

COURSE = "madrid"


@pytest.fixture
def lock_path(tmp_path: Path) -> str:
    return str(tmp_path / "output" / COURSE / "run.lock")


@pytest.fixture
def other_run() -> Iterator[subprocess.Popen]:
    """A live process standing in for another ansible-playbook run."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def this_run(playbook: str = "provision.yml") -> dict[str, Any]:
    """The lock record of this test process, standing in for the run that takes the lock."""
    return course_lock.holder_record(os.getpid(), COURSE, playbook)


def dead_pid() -> int:
    """A pid whose process has ended and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def write_lock(path: str, record: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Path(path).write_text(json.dumps(record))


def read(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


# -- /proc


def test_start_time_is_field_22_of_proc_stat() -> None:
    fields = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    assert course_lock.process_start_time(os.getpid()) == int(fields[19])


def test_start_time_reads_a_command_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    proc_dir = tmp_path / "proc" / "77"
    proc_dir.mkdir(parents=True)
    fields = ["S"] + [str(n) for n in range(4, 22)] + ["9876543"] + ["0"] * 30
    (proc_dir / "stat").write_text("77 (odd ) name) " + " ".join(fields) + "\n")
    assert course_lock.process_start_time(77, proc=str(tmp_path / "proc")) == 9876543


def test_start_time_of_an_ended_process_is_none() -> None:
    assert course_lock.process_start_time(dead_pid()) is None


def test_a_zombie_has_ended() -> None:
    proc = subprocess.Popen(["true"])
    stat = Path(f"/proc/{proc.pid}/stat")
    deadline = time.monotonic() + 10
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not end"
        time.sleep(0.01)
    try:
        assert course_lock.process_start_time(proc.pid) is None
    finally:
        proc.wait()


def test_holder_record_names_the_run() -> None:
    record = this_run()
    assert record["pid"] == os.getpid()
    assert record["start_time"] == course_lock.process_start_time(os.getpid())
    assert record["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert record["playbook"] == "provision.yml" and record["course"] == COURSE
    assert record["started"].endswith("Z") and len(record["started"]) == len("2026-12-02T08:30:00Z")


# -- acquire


def test_acquire_writes_the_lock_and_its_folder(lock_path: str) -> None:
    me = this_run()
    outcome = course_lock.acquire(lock_path, COURSE, me)
    assert read(lock_path) == me and outcome.lock == me
    assert outcome.warnings == [] and outcome.broken == {}
    assert os.stat(os.path.dirname(lock_path)).st_mode & 0o777 == 0o700
    assert os.listdir(os.path.dirname(lock_path)) == ["run.lock"]  # no temporary file left


def test_a_lock_file_is_created_only_where_there_is_none(lock_path: str) -> None:
    write_lock(lock_path, {"pid": 1})
    assert course_lock.create_lock(lock_path, this_run()) is False
    assert read(lock_path) == {"pid": 1}
    assert os.listdir(os.path.dirname(lock_path)) == ["run.lock"]


def test_acquire_again_by_the_same_run_changes_nothing(lock_path: str) -> None:
    me = this_run()
    course_lock.acquire(lock_path, COURSE, me)
    before = os.stat(lock_path)
    outcome = course_lock.acquire(lock_path, COURSE, dict(me, playbook="lifecycle.yml"))
    assert outcome.lock == me and outcome.warnings == []
    assert os.stat(lock_path).st_ino == before.st_ino and read(lock_path)["playbook"] == "provision.yml"


def test_acquire_refuses_a_live_holder_and_names_it(lock_path: str, other_run: subprocess.Popen) -> None:
    holder = course_lock.holder_record(other_run.pid, COURSE, "teardown.yml")
    holder["started"] = "2026-12-02T08:30:00Z"
    write_lock(lock_path, holder)
    with pytest.raises(course_lock.LockError) as refused:
        course_lock.acquire(lock_path, COURSE, this_run())
    assert str(refused.value) == (
        f"course madrid is being changed by another run: teardown.yml started 2026-12-02 08:30:00 UTC "
        f"by {holder['user']} on host {holder['host']} (pid {other_run.pid}). "
        f"Wait for it to finish; if it is not running any more, remove {lock_path}.")
    assert read(lock_path) == holder


def test_acquire_refuses_a_live_holder_in_check_mode_too(lock_path: str, other_run: subprocess.Popen) -> None:
    holder = course_lock.holder_record(other_run.pid, COURSE, "provision.yml")
    write_lock(lock_path, holder)
    with pytest.raises(course_lock.LockError, match="is being changed by another run"):
        course_lock.acquire(lock_path, COURSE, this_run(), check_mode=True)
    assert read(lock_path) == holder


def test_a_lock_whose_process_is_gone_is_broken_with_a_warning(lock_path: str) -> None:
    gone = dict(this_run("lifecycle.yml"), pid=dead_pid())
    write_lock(lock_path, gone)
    me = this_run()
    outcome = course_lock.acquire(lock_path, COURSE, me)
    assert read(lock_path) == me and outcome.broken == gone
    assert outcome.warnings == [
        f"Broke the stale lock of course madrid ({lock_path}): {course_lock.describe(gone)} is not running any more "
        f"(its process is gone)."]
    assert "lifecycle.yml started" in outcome.warnings[0] and f"(pid {gone['pid']})" in outcome.warnings[0]


def test_a_lock_whose_pid_was_reused_is_broken(lock_path: str, other_run: subprocess.Popen) -> None:
    live = course_lock.holder_record(other_run.pid, COURSE, "provision.yml")
    reused = dict(live, start_time=live["start_time"] - 1000)
    write_lock(lock_path, reused)
    me = this_run()
    outcome = course_lock.acquire(lock_path, COURSE, me)
    assert read(lock_path) == me and outcome.broken == reused
    assert f"its pid {other_run.pid} now belongs to another process" in outcome.warnings[0]


def test_a_lock_of_our_own_pid_with_another_start_time_is_not_ours(lock_path: str) -> None:
    me = this_run()
    earlier_process = dict(me, start_time=me["start_time"] - 1)
    write_lock(lock_path, earlier_process)
    outcome = course_lock.acquire(lock_path, COURSE, me)
    assert outcome.broken == earlier_process and read(lock_path) == me


def test_a_lock_from_before_a_restart_is_broken(lock_path: str, other_run: subprocess.Popen) -> None:
    before_restart = dict(course_lock.holder_record(other_run.pid, COURSE, "provision.yml"), boot_id="an-earlier-boot")
    write_lock(lock_path, before_restart)
    outcome = course_lock.acquire(lock_path, COURSE, this_run())
    assert outcome.broken == before_restart and "this machine was restarted since" in outcome.warnings[0]


def test_a_lock_of_another_host_is_refused_and_kept(lock_path: str) -> None:
    elsewhere = dict(this_run(), host="laptop-of-the-teacher", pid=dead_pid())
    write_lock(lock_path, elsewhere)
    with pytest.raises(course_lock.LockError) as refused:
        course_lock.acquire(lock_path, COURSE, this_run())
    message = str(refused.value)
    assert message.startswith("course madrid is being changed by a run on another controller: provision.yml started ")
    assert "on host laptop-of-the-teacher" in message and "cannot tell whether it is still running" in message
    assert message.endswith(f"if it is not running any more, remove {lock_path}.")
    assert read(lock_path) == elsewhere


def test_a_lock_that_cannot_be_read_is_refused(lock_path: str) -> None:
    os.makedirs(os.path.dirname(lock_path))
    Path(lock_path).write_text("")
    with pytest.raises(course_lock.LockError, match="is not a course lock that can be read .*remove it and run again"):
        course_lock.acquire(lock_path, COURSE, this_run())
    assert Path(lock_path).read_text() == ""


def test_check_mode_takes_no_lock_and_breaks_none(lock_path: str) -> None:
    assert course_lock.acquire(lock_path, COURSE, this_run(), check_mode=True).lock["pid"] == os.getpid()
    assert not os.path.exists(os.path.dirname(lock_path))
    gone = dict(this_run(), pid=dead_pid())
    write_lock(lock_path, gone)
    outcome = course_lock.acquire(lock_path, COURSE, this_run(), check_mode=True)
    assert read(lock_path) == gone and outcome.broken == gone
    assert outcome.warnings[0].startswith("Would break (not in check mode) the stale lock of course madrid")


def test_of_runs_racing_for_a_stale_lock_exactly_one_gets_it(lock_path: str) -> None:
    """Threads of this process stand in for runs: each has its own identity (a fake, live start time)."""
    write_lock(lock_path, dict(this_run(), pid=dead_pid()))
    runs = [dict(this_run(), start_time=n) for n in range(8)]  # our pid, but none of them matches our start time
    real_state = course_lock.holder_state

    def holder_state(lock: Any, me: dict[str, Any], proc: str = course_lock.PROC) -> str:
        # Each stand-in run sees the others' locks as live (they are threads of one live process).
        if lock is not None and lock.get("start_time") in range(8) and lock["start_time"] != me["start_time"]:
            return course_lock.LIVE
        return real_state(lock, dict(me, start_time=course_lock.process_start_time(os.getpid())), proc)

    real_read = course_lock.read_lock

    def slow_read_lock(path: str) -> Any:
        lock = real_read(path)
        time.sleep(0.05)  # widen the window between reading a stale lock and breaking it
        return lock

    results: list[str] = []
    barrier = threading.Barrier(len(runs))

    def take(me: dict[str, Any]) -> None:
        barrier.wait()
        try:
            course_lock.acquire(lock_path, COURSE, me)
            results.append("taken")
        except course_lock.LockError:
            results.append("refused")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(course_lock, "holder_state", holder_state)
        patch.setattr(course_lock, "read_lock", slow_read_lock)
        threads = [threading.Thread(target=take, args=(me,)) for me in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(results) == ["refused"] * 7 + ["taken"]
    assert read(lock_path)["start_time"] in range(8)


# -- release


def test_release_removes_our_lock(lock_path: str) -> None:
    me = this_run()
    course_lock.acquire(lock_path, COURSE, me)
    outcome = course_lock.release(lock_path, COURSE, me)
    assert outcome.released and outcome.lock == me and not os.path.exists(lock_path)
    assert course_lock.release(lock_path, COURSE, me).released is False


def test_release_leaves_another_runs_lock(lock_path: str, other_run: subprocess.Popen) -> None:
    theirs = course_lock.holder_record(other_run.pid, COURSE, "lifecycle.yml")
    write_lock(lock_path, theirs)
    outcome = course_lock.release(lock_path, COURSE, this_run())
    assert not outcome.released and read(lock_path) == theirs
    assert outcome.warnings == [f"The lock of course madrid ({lock_path}) is not this run's and was left as it is: "
                                f"{course_lock.describe(theirs)}."]


def test_release_leaves_a_stale_lock_of_another_run(lock_path: str) -> None:
    gone = dict(this_run(), pid=dead_pid())
    write_lock(lock_path, gone)
    assert not course_lock.release(lock_path, COURSE, this_run()).released
    assert read(lock_path) == gone


def test_release_without_a_lock_or_folder_does_nothing(lock_path: str) -> None:
    outcome = course_lock.release(lock_path, COURSE, this_run())
    assert not outcome.released and outcome.warnings == [] and not os.path.exists(os.path.dirname(lock_path))
