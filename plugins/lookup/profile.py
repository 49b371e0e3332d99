# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lookup('i2pc.scipion_cloud.profile', NAME): an image profile with its overrides merged in."""

from __future__ import annotations

DOCUMENTATION = r"""
name: profile
author: I2PC scipion_cloud maintainers (@I2PC)
short_description: Load an image profile, merged with the profile_vars overrides
description:
  - Returns the image profile NAME, the file C(profiles/NAME.yml) of the project folder if the project has one
    (a facility's own profile), else C(inventories/profiles/NAME.yml) of this collection, merged recursively
    with the overrides C(profile_vars), and with C(profile_name) set to NAME.
  - The one loader of profiles for the course, configure and image code; C(profile_vars) is the one override variable.
  - Without a name, returns the names of the known profiles (C(query('i2pc.scipion_cloud.profile'))).
  - An unknown name fails, listing the known profiles and the folders they were looked for in.
options:
  _terms:
    description: Names of profiles (file names without C(.yml)). None for the list of known profiles.
    type: list
    elements: str
    required: false
  profile_vars:
    description:
      - Overrides of the profile's variables, merged recursively over the profile (a dict of dicts merges key by key;
        lists and other values are replaced).
      - Pass C(profile_vars={}) for the profile as its file has it.
    type: dict
    default: {}
    vars:
      - name: profile_vars
  project_dir:
    description:
      - The project folder whose C(profiles/) is searched before the collection's own profiles.
      - Default the course role's C(course_project_dir), else the folder ansible-playbook runs in.
    type: path
    vars:
      - name: course_project_dir
"""

EXAMPLES = r"""
- name: The profile of the 2018 course image, with the driver branch raised
  ansible.builtin.debug:
    msg: "{{ lookup('i2pc.scipion_cloud.profile', 'scipion-1.1', profile_vars={'nvidia_driver_branch': '470'}) }}"

- name: The profile given with -e profile=NAME, merged with -e profile_vars=...
  ansible.builtin.set_fact:
    configure_profile: "{{ lookup('i2pc.scipion_cloud.profile', profile) }}"

- name: The names of the known profiles
  ansible.builtin.debug:
    msg: "{{ query('i2pc.scipion_cloud.profile') }}"
"""

RETURN = r"""
_raw:
  description:
    - One profile (a dict) per name, with C(profile_name) set; without names, the names of the known profiles.
  type: list
  elements: raw
"""

import os
from collections.abc import Mapping
from typing import Any

import yaml

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

# plugins/lookup/ -> the collection's root, whose inventories/profiles ship with it.
COLLECTION_PROFILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "inventories", "profiles")
PROJECT_PROFILES = "profiles"


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """base with overrides on top; dicts found on both sides merge key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def profile_folders(project_dir: str) -> list[str]:
    """Where profiles are looked for, first match wins: the project's own, then the collection's."""
    return [os.path.join(project_dir, PROJECT_PROFILES), os.path.normpath(COLLECTION_PROFILES)]


def known_profiles(folders: list[str]) -> list[str]:
    names: set[str] = set()
    for folder in folders:
        if os.path.isdir(folder):
            names |= {entry[:-4] for entry in os.listdir(folder) if entry.endswith(".yml")}
    return sorted(names)


def profile_path(name: str, folders: list[str]) -> str:
    """The file of profile `name`, or an error naming the known profiles and where they were looked for."""
    for folder in folders:
        path = os.path.join(folder, f"{name}.yml")
        if "/" not in name and os.path.isfile(path):
            return path
    known = ", ".join(known_profiles(folders)) or "none"
    raise AnsibleLookupError(
        f"Unknown profile '{name}': known profiles are {known} (the .yml files of {' and '.join(folders)}). "
        f"Name one of them, or add {os.path.join(folders[0], name)}.yml."
    )


def load_profile(name: str, folders: list[str], overrides: Mapping[str, Any]) -> dict[str, Any]:
    path = profile_path(name, folders)
    with open(path, encoding="utf-8") as handle:
        try:
            profile = yaml.safe_load(handle)
        except yaml.YAMLError as exc:
            raise AnsibleLookupError(f"Profile {path} is not valid YAML: {exc}") from exc
    if not isinstance(profile, Mapping):
        raise AnsibleLookupError(f"Profile {path} must be a mapping of variables, not {type(profile).__name__}.")
    return merge(merge(profile, overrides), {"profile_name": name})


class ProjectLookupBase(LookupBase):
    """A lookup of the project's profiles: options from the run's variables, and the project folder."""

    # The variables behind the options, rendered (a role default such as course_project_dir is a template).
    OPTION_VARIABLES: tuple[str, ...] = ("course_project_dir",)

    def _set_options_from(self, variables: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> None:
        read = {name: self._templar.template(variables[name]) for name in self.OPTION_VARIABLES if name in (variables or {})}
        self.set_options(var_options=read, direct=kwargs)

    def _project_dir(self) -> str:
        """The project folder: the option, else the folder ansible-playbook runs in."""
        return os.path.abspath(self.get_option("project_dir") or os.getcwd())


class LookupModule(ProjectLookupBase):
    OPTION_VARIABLES = ("profile_vars", "course_project_dir")

    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        self._set_options_from(variables, kwargs)
        overrides = self.get_option("profile_vars") or {}
        if not isinstance(overrides, Mapping):
            raise AnsibleLookupError(f"profile_vars must be a dict of profile variables, not {type(overrides).__name__}.")
        folders = profile_folders(self._project_dir())
        if not terms:
            return known_profiles(folders)
        return [load_profile(str(name), folders, overrides) for name in terms]
