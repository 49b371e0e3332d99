# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin course_lock: one run at a time changes a course (documented in plugins/modules/course_lock.py).

The logic is plain functions over the lock file and /proc, so that it is tested without
Ansible (by the unit tests); ActionModule at the bottom only wires them up.

The holder of a lock is the ansible-playbook process: the action runs in a worker that
ansible-playbook forks for each task (ansible.utils.multiprocessing uses the fork context),
so the worker's parent is the run itself, alive for as long as the run is. A lock names that
process by its pid and its start time (field 22 of /proc/<pid>/stat, in clock ticks after
boot), plus the machine's boot id, so that a pid reused by another process, or a lock left
from before a restart, is not mistaken for its holder.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import json
import os
import socket
import tempfile
from dataclasses import dataclass, field
from typing import Any, Iterator

from ansible.plugins.action import ActionBase

PROC = "/proc"

# What holder_state() finds.
FREE = "free"               # no lock file
OURS = "ours"               # held by this run
LIVE = "live"               # held by another run that is still going
GONE = "gone"               # stale: its process is gone
REUSED = "reused"           # stale: its pid now belongs to another process
REBOOTED = "rebooted"       # stale: the machine was restarted since
OTHER_HOST = "other-host"   # held by a run on another controller: cannot be told, never broken

STALE_REASONS = {
    GONE: "its process is gone",
    REUSED: "its pid {pid} now belongs to another process",
    REBOOTED: "this machine was restarted since",
}


class LockError(Exception):
    """The lock cannot be taken or read; the message says what to do."""


@dataclass
class Outcome:
    """What acquire() or release() did: the lock now held (or that would be), warnings, a stale lock broken."""

    lock: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    broken: dict[str, Any] = field(default_factory=dict)
    released: bool = False


# ---------------------------------------------------------------------------------------------
# Processes


def process_start_time(pid: int, proc: str = PROC) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks after boot); None when the process has ended.

    A zombie (state Z or X: ended, not yet reaped by its parent) has ended too.
    """
    try:
        with open(f"{proc}/{pid}/stat", encoding="utf-8", errors="replace") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Field 2 (the command name, in parentheses) may hold spaces and parentheses: split after the last ')'.
    after_name = text[text.rindex(")") + 2:].split()
    if after_name[3 - 3] in ("Z", "X", "x"):
        return None
    return int(after_name[22 - 3])


def boot_id(proc: str = PROC) -> str:
    """The kernel's id of the current boot ('' when unknown)."""
    try:
        with open(f"{proc}/sys/kernel/random/boot_id", encoding="utf-8") as source:
            return source.read().strip()
    except OSError:
        return ""


def boot_time(proc: str = PROC) -> int:
    """Seconds since the epoch at boot (btime of /proc/stat)."""
    with open(f"{proc}/stat", encoding="utf-8") as stat:
        for line in stat:
            if line.startswith("btime "):
                return int(line.split()[1])
    raise LockError(f"{proc}/stat has no btime line")


def started_utc(start_ticks: int, proc: str = PROC) -> str:
    """The wall-clock start of a process, UTC ISO 8601 to the second."""
    seconds = boot_time(proc) + start_ticks / os.sysconf("SC_CLK_TCK")
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_name() -> str:
    """The name of the user this process runs as (its uid when it has none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def holder_record(pid: int, course: str, playbook: str, proc: str = PROC) -> dict[str, Any]:
    """The lock that process `pid` (a live ansible-playbook run) holds on `course`."""
    start = process_start_time(pid, proc)
    if start is None:
        raise LockError(f"process {pid}, the run that takes the lock, is not in {proc}")
    return {
        "pid": pid,
        "start_time": start,
        "boot_id": boot_id(proc),
        "host": socket.gethostname(),
        "user": user_name(),
        "playbook": playbook,
        "course": course,
        "started": started_utc(start, proc),
    }


def holder_state(lock: dict[str, Any] | None, me: dict[str, Any], proc: str = PROC) -> str:
    """Who holds `lock` as seen by the run `me` (a holder_record): one of the states above."""
    if lock is None:
        return FREE
    if lock.get("host") != me["host"]:
        return OTHER_HOST
    if lock.get("boot_id") and me["boot_id"] and lock["boot_id"] != me["boot_id"]:
        return REBOOTED
    start = process_start_time(int(lock["pid"]), proc)
    if start is None:
        return GONE
    if start != lock.get("start_time"):
        return REUSED
    return OURS if int(lock["pid"]) == me["pid"] else LIVE


def describe(lock: dict[str, Any]) -> str:
    """'provision.yml started 2026-12-02 08:30:00 UTC by root on host X (pid 1234)'."""
    started = str(lock.get("started", "?")).replace("T", " ").replace("Z", " UTC")
    return (f"{lock.get('playbook') or 'a run'} started {started} by {lock.get('user', '?')} "
            f"on host {lock.get('host', '?')} (pid {lock.get('pid', '?')})")


# ---------------------------------------------------------------------------------------------
# The lock file


def read_lock(path: str) -> dict[str, Any] | None:
    """The lock at `path`, None when there is none; LockError when it is not a lock this plugin wrote."""
    try:
        with open(path, encoding="utf-8") as source:
            text = source.read()
    except FileNotFoundError:
        return None
    try:
        lock = json.loads(text)
        if not isinstance(lock, dict):
            raise ValueError("not a JSON object")
        int(lock["pid"])
        int(lock["start_time"])
        str(lock["host"])
    except (ValueError, KeyError, TypeError) as error:
        raise LockError(
            f"{path} is not a course lock that can be read ({type(error).__name__}: {error}). "
            f"If no other run is changing the course, remove it and run again."
        ) from error
    return lock


def create_lock(path: str, record: dict[str, Any]) -> bool:
    """Write `record` to `path` only if there is no file there; False when there is one.

    Atomic: the whole record goes to a temporary file of the same folder, which is then
    hard-linked to `path` (link() fails if `path` exists), so no reader ever sees a partly
    written lock and two runs never both create it.
    """
    folder = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".run.lock.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(temporary)


@contextlib.contextmanager
def folder_guard(folder: str) -> Iterator[None]:
    """Hold an exclusive flock on `folder` while a lock is read and then broken, taken or removed.

    Taking a free lock is atomic by itself (create_lock); the guard is for breaking a stale
    one: without it, two runs that both found the same stale lock could each remove what
    the other had just taken. The kernel drops the flock when its process dies.
    """
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def refusal(course: str, path: str, lock: dict[str, Any], state: str, me: dict[str, Any]) -> str:
    """The message of a run that finds the course locked by another."""
    if state == OTHER_HOST:
        return (f"course {course} is being changed by a run on another controller: {describe(lock)}. "
                f"This controller ({me['host']}) cannot tell whether it is still running, so the lock is not broken. "
                f"Wait for it to finish; if it is not running any more, remove {path}.")
    return (f"course {course} is being changed by another run: {describe(lock)}. "
            f"Wait for it to finish; if it is not running any more, remove {path}.")


def stale_reason(state: str, lock: dict[str, Any]) -> str:
    return STALE_REASONS[state].format(pid=lock.get("pid", "?"))


def acquire(path: str, course: str, me: dict[str, Any], check_mode: bool = False, proc: str = PROC) -> Outcome:
    """Take the lock of `course` at `path` for the run `me`; LockError naming the holder when another run has it.

    Taking it again in the same run changes nothing. A stale lock (holder gone, pid reused,
    machine restarted) is broken with a warning. In check mode nothing is written: a run
    that changes nothing only has to refuse while another run holds the lock.
    """
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        if check_mode:
            return Outcome(lock=me)
        os.makedirs(folder, mode=0o700, exist_ok=True)
    with contextlib.nullcontext() if check_mode else folder_guard(folder):
        lock = read_lock(path)
        state = holder_state(lock, me, proc)
        if state in (LIVE, OTHER_HOST):
            raise LockError(refusal(course, path, lock, state, me))
        if state == OURS:
            return Outcome(lock=lock)
        outcome = Outcome(lock=me)
        if state != FREE:
            outcome.broken = lock
            action = "Would break (not in check mode)" if check_mode else "Broke"
            outcome.warnings.append(
                f"{action} the stale lock of course {course} ({path}): {describe(lock)} is not running any more "
                f"({stale_reason(state, lock)}).")
            if not check_mode:
                os.unlink(path)
        if not check_mode and not create_lock(path, me):
            # Unreachable while every run takes the guard; a run on another controller sharing the folder may race.
            raise LockError(refusal(course, path, read_lock(path) or {}, LIVE, me))
        return outcome


def release(path: str, course: str, me: dict[str, Any], proc: str = PROC) -> Outcome:
    """Remove the lock at `path` if the run `me` holds it; leave any other lock as it is (with a warning)."""
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        return Outcome()
    with folder_guard(folder):
        try:
            lock = read_lock(path)
        except LockError as error:
            return Outcome(warnings=[f"The lock of course {course} was left as it is: {error}"])
        state = holder_state(lock, me, proc)
        if state == FREE:
            return Outcome()
        if state != OURS:
            return Outcome(warnings=[f"The lock of course {course} ({path}) is not this run's and was left as it is: "
                                     f"{describe(lock)}."])
        os.unlink(path)
        return Outcome(lock=lock, released=True)


# ---------------------------------------------------------------------------------------------
# The action


class ActionModule(ActionBase):
    """Runs on the controller: no module is sent anywhere."""

    TRANSFERS_FILES = False
    _requires_connection = False

    ARGUMENT_SPEC = {
        "path": {"type": "path", "required": True},
        "course": {"type": "str", "required": True},
        "state": {"type": "str", "default": "acquired", "choices": ["acquired", "released"]},
        "playbook": {"type": "str", "default": ""},
    }

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        # The lock is bookkeeping of the run, not a change to the course: changed stays false
        # for acquire and release, so a second run of a playbook still reports changed=0.
        result["changed"] = False
        try:
            # The worker that runs this action is forked from ansible-playbook: its parent is the run.
            me = holder_record(os.getppid(), args["course"], args["playbook"])
            if args["state"] == "acquired":
                outcome = acquire(args["path"], args["course"], me, check_mode=bool(self._play_context.check_mode))
            else:
                outcome = release(args["path"], args["course"], me)
        except (LockError, OSError) as error:
            result.update(failed=True, msg=str(error))
            return result
        result.update(lock=outcome.lock, broken=outcome.broken, released=outcome.released)
        if outcome.warnings:
            result["warnings"] = outcome.warnings
        return result
