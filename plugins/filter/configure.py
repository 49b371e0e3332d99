"""What a machine was configured with, as one fingerprint.

playbooks/configure.yml records on each machine the fingerprint of the profile it applied
(with the course's overrides), the image roles it ran, and the files those roles are made
of: their folders, the artifact role they all use, and the collection's modules. A later
run whose fingerprint is the same skips the machine (nothing the roles would do has
changed); any change to the profile, the role list or one of those files runs the roles
again. Other roles (the providers, the image role) do not count.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ansible.errors import AnsibleFilterError


SHARED_ROLES = ("artifact",)
PLUGIN_DIRS = ("plugins/modules", "plugins/module_utils")


def _add_tree(digest: "hashlib._Hash", top_dir: str, base: str) -> None:
    for top, folders, files in os.walk(top_dir):
        folders[:] = sorted(f for f in folders if f != "__pycache__")
        for name in sorted(files):
            path = os.path.join(top, name)
            digest.update(os.path.relpath(path, base).encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())


def configuration_fingerprint(profile: dict[str, Any], roles: list[str], project_dir: str) -> str:
    """sha256 of the profile, the role names, and the files of those roles, the shared roles and the modules."""
    roles_dir = os.path.join(project_dir, "roles")
    if not os.path.isdir(roles_dir):
        raise AnsibleFilterError(f"configuration_fingerprint: no roles folder in {project_dir}")
    digest = hashlib.sha256()
    digest.update(json.dumps(profile, sort_keys=True, default=str).encode())
    digest.update(json.dumps(list(roles)).encode())
    for role in sorted(set(roles) | set(SHARED_ROLES)):
        _add_tree(digest, os.path.join(roles_dir, role), project_dir)
    for folder in PLUGIN_DIRS:
        _add_tree(digest, os.path.join(project_dir, folder), project_dir)
    return digest.hexdigest()


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"configuration_fingerprint": configuration_fingerprint}
