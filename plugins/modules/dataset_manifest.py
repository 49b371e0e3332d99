#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a dataset folder against its per-file md5 MANIFEST (Scipion's `path md5` lines).

Runs on the course machines, so it keeps to Python 3.5 (Ubuntu 16.04): no f-strings,
no variable annotations; types are given as type comments.
"""

DOCUMENTATION = r"""
module: dataset_manifest
short_description: Check a dataset folder against its per-file md5 MANIFEST
description:
  - Reads a MANIFEST of C(path md5) lines, the format of Scipion's test datasets
    (C(scipion testdata --download)), and checks every listed file under O(path).
  - Reports the files that are missing and those whose md5 differs, with both checksums.
  - Read-only; never reports a change.
version_added: 0.1.0
author: I2PC scipion_cloud maintainers (@I2PC)
options:
  path:
    description: The dataset folder; MANIFEST paths are relative to it.
    type: path
    required: true
  manifest:
    description:
      - The MANIFEST file. Relative paths are relative to O(path).
      - When it does not exist, every file counts as missing and RV(manifest_found) is false.
    type: path
    default: MANIFEST
  fail_on_invalid:
    description: Fail, naming each missing or corrupted file with both checksums, unless the dataset is complete and valid.
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Check relion13_tutorial
  i2pc.scipion_cloud.dataset_manifest:
    path: /data/relion13_tutorial
  register: dataset

- name: Fail on any missing or corrupted file
  i2pc.scipion_cloud.dataset_manifest:
    path: /data/relion13_tutorial
    fail_on_invalid: true
"""

RETURN = r"""
manifest_found:
  description: Whether the MANIFEST exists.
  type: bool
  returned: always
files:
  description: Number of files the MANIFEST lists.
  type: int
  returned: always
missing:
  description: Listed files that do not exist, as MANIFEST paths.
  type: list
  elements: str
  returned: always
invalid:
  description: Listed files whose md5 differs from the MANIFEST.
  type: list
  elements: dict
  returned: always
  contains:
    path: {description: MANIFEST path, type: str}
    expected: {description: md5 in the MANIFEST, type: str}
    actual: {description: md5 of the file on disk, type: str}
valid:
  description: True when the MANIFEST exists and every listed file exists with its md5.
  type: bool
  returned: always
"""

import hashlib
import os
from typing import Dict, List, Tuple  # noqa: F401  (used by the type comments)

from ansible.module_utils.basic import AnsibleModule


def parse_manifest(text):
    # type: (str) -> List[Tuple[str, str]]
    """`path md5` per line; blank lines and # comments ignored. Paths may contain spaces."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or len(parts[1]) != 32:
            raise ValueError("line {0} is not 'path md5': {1!r}".format(number, line))
        entries.append((parts[0], parts[1].lower()))
    return entries


def file_md5(path):
    # type: (str) -> str
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(folder, entries):
    # type: (str, List[Tuple[str, str]]) -> Tuple[List[str], List[Dict[str, str]]]
    missing, invalid = [], []
    for name, expected in entries:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            missing.append(name)
            continue
        actual = file_md5(path)
        if actual != expected:
            invalid.append({"path": name, "expected": expected, "actual": actual})
    return missing, invalid


def failure_message(folder, missing, invalid):
    # type: (str, List[str], List[Dict[str, str]]) -> str
    lines = ["{0}: {1} missing and {2} corrupted file(s).".format(folder, len(missing), len(invalid))]
    lines += ["missing: {0}".format(name) for name in missing]
    lines += ["corrupted: {path}: MANIFEST md5 {expected}, file md5 {actual}".format(**item)
              for item in invalid]
    return " ".join(lines)


def main():
    # type: () -> None
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "manifest": {"type": "path", "default": "MANIFEST"},
            "fail_on_invalid": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    folder = module.params["path"]
    manifest = os.path.join(folder, module.params["manifest"])
    if not os.path.isfile(manifest):
        if module.params["fail_on_invalid"]:
            module.fail_json(msg="{0}: no MANIFEST at {1}".format(folder, manifest))
        module.exit_json(changed=False, manifest_found=False, files=0, missing=[], invalid=[], valid=False)
    try:
        with open(manifest, encoding="utf-8") as handle:
            entries = parse_manifest(handle.read())
    except ValueError as error:
        module.fail_json(msg="{0}: {1}".format(manifest, error))
    missing, invalid = check(folder, entries)
    valid = not missing and not invalid
    result = {"changed": False, "manifest_found": True, "files": len(entries),
              "missing": missing, "invalid": invalid, "valid": valid}
    if module.params["fail_on_invalid"] and not valid:
        module.fail_json(msg=failure_message(folder, missing, invalid), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
