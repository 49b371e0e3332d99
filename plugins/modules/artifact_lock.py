#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read the artifact lock file on the controller, or record checksums in it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: artifact_lock
short_description: Read or add to the lock file of artifact checksums
description:
  - The lock file holds the sha256 and size of the files a profile declares without a
    published checksum (C(sha256) null), recorded from a download with
    C(-e artifact_lock=record), so that later runs verify those files unattended.
  - Without O(record), reads the lock and returns its entries; a missing file has none.
  - With O(record), adds the entries the lock does not hold yet. An entry the lock holds
    already is verified, never overwritten; a different sha256 fails, naming both.
    To change an entry, delete it from the lock file first.
  - Safe when several hosts record at once (one task delegated to the controller);
    the folder is locked while the file is read, merged and replaced atomically.
  - The file is JSON with sorted keys and a stable layout, for review and commit.
  - Run it on the controller, delegated to localhost.
version_added: 0.1.0
author: I2PC scipion_cloud maintainers (@I2PC)
options:
  path:
    description:
      - The lock file. A relative path is relative to the folder C(ansible-playbook) runs in.
      - Its folder must exist.
    type: path
    required: true
  record:
    description: Entries to add. Empty to only read.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: File name, as in the profile.
        type: str
        required: true
      sha256:
        description: sha256 of the downloaded file.
        type: str
        required: true
      size:
        description: Size of the downloaded file in bytes.
        type: int
        required: true
      url:
        description: Vendor URL declared in the profile.
        type: str
        default: ""
      source:
        description: Where the recorded copy came from (mirror, vendor URL or the operator's file).
        type: str
        default: ""
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Read the lock
  i2pc.scipion_cloud.artifact_lock:
    path: /srv/scipion_cloud/inventories/profiles/scipion-1.1.lock.json
  delegate_to: localhost
  become: false
  register: lock

- name: Record a download's checksum
  i2pc.scipion_cloud.artifact_lock:
    path: /srv/scipion_cloud/inventories/profiles/scipion-1.1.lock.json
    record:
      - name: turbovnc_2.1.1_amd64.deb
        sha256: "{{ fetched.stat.checksum }}"
        size: "{{ fetched.stat.size }}"
        url: https://sourceforge.net/projects/turbovnc/files/2.1.1/turbovnc_2.1.1_amd64.deb/download
        source: https://mirror.example.org/artifacts/turbovnc_2.1.1_amd64.deb
  delegate_to: localhost
  become: false
"""

RETURN = r"""
path:
  description: The lock file's absolute path.
  type: str
  returned: always
exists:
  description: Whether the lock file exists (after recording, unless in check mode).
  type: bool
  returned: always
artifacts:
  description: The lock's entries by file name, after recording.
  type: dict
  returned: always
  sample:
    turbovnc_2.1.1_amd64.deb:
      sha256: 0b4a1c0e1ba2bd30cd09e2e4d2e5bd7b0e4f3d0d5c1b3a8b3a4e6f2f6f0c1d2e
      size: 2389174
      url: https://sourceforge.net/projects/turbovnc/files/2.1.1/turbovnc_2.1.1_amd64.deb/download
      source: https://mirror.example.org/artifacts/turbovnc_2.1.1_amd64.deb
      recorded: "2025-01-31T10:00:00Z"
recorded:
  description: Names of the entries this run added.
  type: list
  elements: str
  returned: always
"""

import fcntl
import json
import os
import re
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator

from ansible.module_utils.basic import AnsibleModule

LOCK_VERSION = 1
ABOUT = ("sha256 and size of the profile's files that have no published checksum, recorded from a download "
         "with -e artifact_lock=record. Review the diff and commit it; to re-record an entry, delete it first.")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class LockError(Exception):
    """A lock file that cannot be used, or a recording that contradicts it; the message says what to do."""


def empty_lock() -> dict:
    return {"about": ABOUT, "version": LOCK_VERSION, "artifacts": {}}


def parse_lock(text: str, path: str) -> dict:
    """The lock's content, checked: version 1 and an sha256 in every entry."""
    fix = "Fix it, or delete it (and its entries) and record again with -e artifact_lock=record."
    try:
        lock = json.loads(text)
    except ValueError as error:
        raise LockError(f"{path} is not valid JSON ({error}). {fix}") from None
    if not isinstance(lock, dict) or not isinstance(lock.get("artifacts"), dict):
        raise LockError(f"{path} is not an artifact lock: it has no 'artifacts' object. {fix}")
    if lock.get("version") != LOCK_VERSION:
        raise LockError(f"{path} has lock version {lock.get('version')!r}; this collection reads version "
                        f"{LOCK_VERSION}. {fix}")
    for name, entry in lock["artifacts"].items():
        if not isinstance(entry, dict) or not SHA256.match(str(entry.get("sha256", ""))):
            raise LockError(f"{path}: the entry {name!r} has no valid sha256 (64 lowercase hex digits). {fix}")
    return lock


def read_lock(path: str) -> dict:
    if not os.path.exists(path):
        return empty_lock()
    with open(path, encoding="utf-8") as handle:
        return parse_lock(handle.read(), path)


def render_lock(lock: dict) -> str:
    """Stable text: sorted keys, two-space indent, final newline, so diffs show only what changed."""
    return json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def conflict_message(path: str, name: str, locked: dict, found: dict) -> str:
    return (
        f"{name} changed since it was recorded in the lock {path}: the lock has sha256 {locked['sha256']} "
        f"(size {locked.get('size', '?')}, recorded {locked.get('recorded', '?')} from {locked.get('source') or '?'}), "
        f"the file found has sha256 {found['sha256']} (size {found['size']}, from {found.get('source') or '?'}). "
        f"A recorded entry is never overwritten. Check the new file; if it is right, delete the entry "
        f"\"{name}\" from {path} and run again with -e artifact_lock=record, then review and commit the lock. "
        f"If it is not, fix the copy in your mirror."
    )


def merge_entries(lock: dict, entries: list[dict], now: str, path: str) -> tuple[dict, list[str]]:
    """The lock with the entries it lacks added; entries it holds must agree on sha256.

    Returns the new lock and the names added. Raises LockError on a different sha256."""
    artifacts = dict(lock["artifacts"])
    added = []
    for entry in entries:
        name = entry["name"]
        sha256 = entry["sha256"].lower()
        if name in artifacts:
            if artifacts[name]["sha256"] != sha256:
                raise LockError(conflict_message(path, name, artifacts[name], dict(entry, sha256=sha256)))
            continue
        if not SHA256.match(sha256):
            raise LockError(f"Cannot record {name}: {entry['sha256']!r} is not an sha256 (64 hex digits).")
        artifacts[name] = {"sha256": sha256, "size": entry["size"], "url": entry.get("url") or "",
                           "source": entry.get("source") or "", "recorded": now}
        added.append(name)
    return dict(lock, about=ABOUT, version=LOCK_VERSION, artifacts=artifacts), added


def write_atomically(path: str, text: str) -> None:
    """Replace path with text in one rename: readers see the old or the new file, never half of one."""
    folder = os.path.dirname(path)
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    handle, temporary = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


@contextmanager
def folder_locked(folder: str) -> Iterator[None]:
    """An exclusive lock on the folder, held by one recorder at a time (the file itself is replaced)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(path: str, entries: list[dict], check_mode: bool) -> tuple[dict, dict, list[str]]:
    """Under the folder lock: read, merge, write when something was added. Returns (before, after, added)."""
    with folder_locked(os.path.dirname(path)):
        before = read_lock(path)
        after, added = merge_entries(before, entries, utc_now(), path)
        if added and not check_mode:
            write_atomically(path, render_lock(after))
    return before, after, added


def run(module: AnsibleModule) -> dict:
    path = os.path.abspath(module.params["path"])
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise LockError(f"The folder of the lock file {path} does not exist: create it, or set artifact_lock_file "
                        "to a path in an existing folder.")
    entries = module.params["record"]
    if not entries:
        lock = read_lock(path)
        return {"changed": False, "path": path, "exists": os.path.exists(path), "artifacts": lock["artifacts"],
                "recorded": []}
    existed = os.path.exists(path)
    before, after, added = record(path, entries, module.check_mode)
    result = {"changed": bool(added), "path": path, "exists": os.path.exists(path), "artifacts": after["artifacts"],
              "recorded": added}
    if added and module._diff:
        result["diff"] = {"before": render_lock(before) if existed else "", "after": render_lock(after),
                          "before_header": path, "after_header": path}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "record": {"type": "list", "elements": "dict", "default": [], "options": {
                "name": {"type": "str", "required": True},
                "sha256": {"type": "str", "required": True},
                "size": {"type": "int", "required": True},
                "url": {"type": "str", "default": ""},
                "source": {"type": "str", "default": ""},
            }},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except LockError as error:
        module.fail_json(msg=str(error))
    except OSError as error:
        module.fail_json(msg=f"Cannot read or write the lock file {module.params['path']}: {error}. "
                             "Check that the folder is writable by the user running ansible-playbook.")


if __name__ == "__main__":
    main()
