# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The course's record of what it created: output/<course>/resources.json.

Ownership rests on this record, not on tags (anyone allowed to tag can tag). The record
holds, per provider and per scope (an AWS region, an OpenStack site or cloud), the ids of
what the course created:

    {"version": 1, "course": "madrid",
     "aws": {"eu-west-1": {"instances": ["i-..."], "addresses": ["eipalloc-..."],
                           "security_group": {"name": "madrid-sg", "id": "sg-..."},
                           "key_pair": {"name": "madrid-key", "id": "key-..."}}},
     "openstack": {"IISAS-FedCloud-cloud": {"servers": [...], "floating_ips": [...], ...}}}

A security group or key pair recorded with an empty id is an intent: the course was about
to create it (written just before the call, so that a run killed in between can still
claim what it made). Lists other than ids name what a run was about to create
(``pending_servers``). Every change is one read-modify-write under an exclusive lock of a
sibling lock file, written to a temporary file and renamed over the record (0600), so an
interrupted run leaves the old or the new record, never half of one.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from typing import Any, Callable, Iterator

RECORD_VERSION = 1
RECORD_FILE = "resources.json"
ADOPT_ALL = "all"


class RecordError(Exception):
    """A record that cannot be read or written; the message says what to do."""


def empty_record(course: str) -> dict[str, Any]:
    return {"version": RECORD_VERSION, "course": course}


def parse_record(text: str, path: str, course: str) -> dict[str, Any]:
    """The record's content, checked: a JSON object of version 1 for this course."""
    fix = ("It is the course's record of what it created: restore it from a copy of the course's output folder, "
           "or move it away and adopt the course's machines again with -e course_adopt=all.")
    try:
        record = json.loads(text)
    except ValueError as error:
        raise RecordError(f"{path} is not valid JSON ({error}). {fix}") from None
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        raise RecordError(f"{path} is not a version {RECORD_VERSION} course record. {fix}")
    if record.get("course") != course:
        raise RecordError(f"{path} is the record of course {record.get('course')!r}, not of {course!r}. {fix}")
    return record


def entry_of(record: dict[str, Any], provider: str, scope: str) -> dict[str, Any]:
    """The record's entry of one provider and scope (empty when there is none)."""
    return record.get(provider, {}).get(scope, {})


def read_record(path: str, course: str) -> dict[str, Any] | None:
    """The record, or None when the file does not exist."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return parse_record(handle.read(), path, course)


def render_record(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, sort_keys=True) + "\n"


def write_atomically(path: str, text: str) -> None:
    """Replace path with text (mode 0600) in one rename."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".resources-", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


@contextmanager
def locked(path: str) -> Iterator[None]:
    """An exclusive lock of <path>.lock, so that two runs never interleave their changes."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with open(path + ".lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def scope_entry(record: dict[str, Any], provider: str, scope: str) -> dict[str, Any]:
    """The record's entry for one provider scope, created empty when missing."""
    return record.setdefault(provider, {}).setdefault(scope, {})


def add_ids(entry: dict[str, Any], key: str, ids: list[str]) -> None:
    new = [i for i in dict.fromkeys(ids) if i and i not in entry.get(key, [])]
    if new:
        entry.setdefault(key, []).extend(new)


def remove_ids(entry: dict[str, Any], key: str, ids: list[str]) -> None:
    if key in entry:
        entry[key] = [i for i in entry[key] if i not in set(ids)]


def apply_change(entry: dict[str, Any], add: dict[str, list[str]] | None = None,
                 remove: dict[str, list[str]] | None = None, set_values: dict[str, Any] | None = None) -> None:
    """Add ids to lists, remove ids from lists, set single values (None removes the value)."""
    for key, ids in (add or {}).items():
        add_ids(entry, key, list(ids or []))
    for key, ids in (remove or {}).items():
        remove_ids(entry, key, list(ids or []))
    for key, value in (set_values or {}).items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value


def update_record(path: str, course: str, provider: str, scope: str,
                  change: Callable[[dict[str, Any]], None], check_mode: bool = False) -> tuple[dict[str, Any], bool]:
    """Apply change to the scope's entry; returns the record after it and whether it changed.

    The file is written only when the content changes, and never in check mode (which takes no lock
    and creates nothing)."""
    if check_mode:
        return changed_record(read_record(path, course), course, provider, scope, change)
    with locked(path):
        before = read_record(path, course)
        record, changed = changed_record(before, course, provider, scope, change)
        if changed:
            write_atomically(path, render_record(record))
        return record, changed


def changed_record(before: dict[str, Any] | None, course: str, provider: str, scope: str,
                   change: Callable[[dict[str, Any]], None]) -> tuple[dict[str, Any], bool]:
    """A copy of the record with change applied to the scope's entry, and whether it differs."""
    record = json.loads(json.dumps(before)) if before is not None else empty_record(course)
    change(scope_entry(record, provider, scope))
    if not record[provider][scope]:  # nothing recorded there: no empty scope either
        del record[provider][scope]
        if not record[provider]:
            del record[provider]
    changed = render_record(record) != (render_record(before) if before is not None else render_record(empty_record(course)))
    return record, changed


def parse_adopt(value: Any) -> list[str]:
    """-e course_adopt=i-1,i-2 (a string), a list, or nothing: a list of unique ids (or 'all')."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return list(dict.fromkeys(i.strip() for i in items if i and i.strip()))


def owned_and_foreign(found: list[dict[str, Any]], recorded: list[str], adopt: list[str],
                      claimable_names: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Split resources found by the course's tags into the course's own and the others.

    found: resources carrying the course's tags, each with "id" and "name". Own: recorded, or
    adopted (by id, or 'all'), or named in claimable_names (what the course was about to create
    when a run was interrupted). Returns {"owned", "foreign", "adopted", "claimed"}."""
    recorded_ids = set(recorded)
    adopt_all = ADOPT_ALL in adopt
    result: dict[str, list[dict[str, Any]]] = {"owned": [], "foreign": [], "adopted": [], "claimed": []}
    claimable = set(claimable_names or [])
    for item in found:
        if item["id"] in recorded_ids:
            result["owned"].append(item)
        elif adopt_all or item["id"] in adopt:
            result["owned"].append(item)
            result["adopted"].append(item)
        elif item.get("name") in claimable:
            claimable.discard(item.get("name"))
            result["owned"].append(item)
            result["claimed"].append(item)
        else:
            result["foreign"].append(item)
    return result


def describe(items: list[dict[str, Any]]) -> str:
    """"id (name), id (name)" for messages."""
    return ", ".join(f"{i['id']} ({i.get('name') or 'no name'})" for i in items)


def unrecorded_refusal(course: str, path: str, where: str, kind: str, items: list[dict[str, Any]]) -> str:
    """Why a course without a record refuses to act on machines tagged with it, and what to do."""
    ids = ",".join(i["id"] for i in items)
    return (f"Course {course} has no record of what it created ({path} does not exist: the course was provisioned "
            f"before records were kept, or from another controller whose output folder was not copied here), but "
            f"{len(items)} {kind}(s) in {where} are tagged with it: {describe(items)}. Tags alone do not make them "
            f"the course's, so nothing was changed. If they are the course's, adopt them and run again: "
            f"-e course_adopt=all (every {kind} tagged with the course, with the course's own security group and "
            f"key pair) or -e course_adopt={ids}. If the course's output folder is on another controller, copy it "
            f"here instead.")


def foreign_notice(course: str, path: str, where: str, kind: str, items: list[dict[str, Any]]) -> str:
    """Which tagged machines were left alone because the course did not create them."""
    ids = ",".join(i["id"] for i in items)
    return (f"Left alone: {len(items)} {kind}(s) in {where} tagged with course {course} that the course did not "
            f"create (not in {path}): {describe(items)}. If they are the course's, adopt them with "
            f"-e course_adopt={ids}.")
