# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lookup('i2pc.scipion_cloud.profile_lock', NAME): the artifact lock file of a profile, beside the profile."""

from __future__ import annotations

DOCUMENTATION = r"""
name: profile_lock
author: I2PC scipion_cloud maintainers (@I2PC)
short_description: The artifact lock file of an image profile, beside the profile the profile lookup loads
description:
  - Returns the path of the lock file (C(NAME.lock.json)) that holds the checksums recorded with
    C(-e artifact_lock=record) for profile NAME. It lives beside the profile that C(i2pc.scipion_cloud.profile)
    loads - C(profiles/NAME.lock.json) of the project folder when the project has C(profiles/NAME.yml), else
    C(inventories/profiles/NAME.lock.json) of this collection - so that a facility's own profile keeps its own lock.
  - The file need not exist yet (a profile without a recorded lock).
  - When C(artifact_lock=record) would write into the folder of an installed collection (it has a C(MANIFEST.json))
    or into one that is not writable, the lookup fails and says what to do (copy the profile (and its lock) into
    the project's C(profiles/), or give C(-e artifact_lock_file=PATH)). A git checkout of the collection records into
    its own C(inventories/profiles/), where the shipped locks are kept and committed.
  - C(artifact_lock_file) set by the caller wins over this lookup (the roles only call it when it is not set).
options:
  _terms:
    description: The name of one profile (a file name without C(.yml)).
    type: list
    elements: str
    required: true
  project_dir:
    description:
      - The project folder whose C(profiles/) is searched before the collection's own profiles.
      - Default the course role's C(course_project_dir), else the folder ansible-playbook runs in.
    type: path
    vars:
      - name: course_project_dir
  artifact_lock:
    description: The artifact role's mode; C(record) refuses a lock file the run must not write.
    type: str
    default: verify
    vars:
      - name: artifact_lock
"""

EXAMPLES = r"""
- name: Where the checksums of the 2018 profile are recorded and read
  ansible.builtin.debug:
    msg: "{{ lookup('i2pc.scipion_cloud.profile_lock', 'scipion-1.1') }}"
"""

RETURN = r"""
_raw:
  description: One lock file path per profile name.
  type: list
  elements: path
"""

import os
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible_collections.i2pc.scipion_cloud.plugins.lookup.profile import ProjectLookupBase, profile_folders


def collection_is_installed(profiles_folder: str) -> bool:
    """True for a collection that ansible-galaxy installed: it carries MANIFEST.json (a checkout has galaxy.yml)."""
    root = os.path.dirname(os.path.dirname(profiles_folder))
    return os.path.isfile(os.path.join(root, "MANIFEST.json"))


def lock_path(name: str, project_dir: str, record: bool) -> str:
    """The lock file beside profile ``name``: the project's when the project has the profile, else the collection's."""
    project_folder, collection_folder = profile_folders(project_dir)
    if os.path.isfile(os.path.join(project_folder, f"{name}.yml")):
        return os.path.join(project_folder, f"{name}.lock.json")
    path = os.path.join(collection_folder, f"{name}.lock.json")
    if record and (collection_is_installed(collection_folder) or not os.access(collection_folder, os.W_OK)):
        project_lock = os.path.join(project_folder, f"{name}.lock.json")
        raise AnsibleLookupError(
            f"artifact_lock=record would write the checksums of profile {name} into {path}, inside the installed "
            f"collection (shared, and replaced by the next install). Record them in your project instead: "
            f"mkdir -p {project_folder} && cp {os.path.join(collection_folder, name)}.yml {project_folder}/"
            + (f" && cp {path} {project_folder}/" if os.path.isfile(path) else "")
            + f", then run again; the profile's lock is then {project_lock}, which later runs read. "
            f"Or give -e artifact_lock_file=PATH on this run and every later one."
        )
    return path


class LookupModule(ProjectLookupBase):
    OPTION_VARIABLES = ("course_project_dir", "artifact_lock")

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        self._set_options_from(variables, kwargs)
        if not terms:
            raise AnsibleLookupError("profile_lock needs the name of a profile: lookup('i2pc.scipion_cloud.profile_lock', NAME).")
        record = str(self.get_option("artifact_lock") or "") == "record"
        return [lock_path(str(name), self._project_dir(), record) for name in terms]
