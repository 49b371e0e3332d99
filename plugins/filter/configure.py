"""What a machine was configured with, as one fingerprint.

playbooks/configure.yml records on each machine the fingerprint of the profile it applied
(with the course's overrides), the image roles it ran and the content of those roles. A
later run whose fingerprint is the same skips the machine (nothing the roles would do has
changed); any change to the profile, the role list or a role file runs the roles again.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ansible.errors import AnsibleFilterError


def configuration_fingerprint(profile: dict[str, Any], roles: list[str], roles_dir: str) -> str:
    """sha256 of the profile, the role names, and every file of the roles' folders."""
    if not os.path.isdir(roles_dir):
        raise AnsibleFilterError(f"configuration_fingerprint: no roles folder {roles_dir}")
    digest = hashlib.sha256()
    digest.update(json.dumps(profile, sort_keys=True, default=str).encode())
    digest.update(json.dumps(list(roles)).encode())
    for top, folders, files in os.walk(roles_dir):
        folders.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            digest.update(os.path.relpath(path, roles_dir).encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"configuration_fingerprint": configuration_fingerprint}
