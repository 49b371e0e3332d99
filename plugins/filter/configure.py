"""What a machine is configured with, as one fingerprint, and which ansible-core configures it.

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


# The system Python of base OSes whose Python is older than the main runner's minimum
# (ansible-core 2.19 runs modules with Python 3.8+). Such machines are configured by the
# legacy runner (ansible-core 2.15: targets with Python 2.7 or 3.5+).
OLD_PYTHON_BASE_OS = {
    ("Ubuntu", "16.04"): "3.5",
    ("Ubuntu", "18.04"): "3.6",
    ("Debian", "9"): "3.5",
    ("Debian", "10"): "3.7",
}
RUNNERS = ("main", "legacy")


def configure_runner(profile: dict[str, Any]) -> str:
    """'legacy' or 'main': the profile's `runner`, else what its base OS's Python needs."""
    declared = profile.get("runner")
    if declared:
        if declared not in RUNNERS:
            raise AnsibleFilterError(
                f"profile {profile.get('profile_name', '?')}: runner is {declared!r}; choose one of {', '.join(RUNNERS)}"
                " (or leave it out: the base OS decides)")
        return str(declared)
    base_os = profile.get("base_os") or {}
    key = (str(base_os.get("distribution", "")), str(base_os.get("version", "")))
    return "legacy" if key in OLD_PYTHON_BASE_OS else "main"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"configuration_fingerprint": configuration_fingerprint, "configure_runner": configure_runner}
