"""Shared by the seat suites that the verify role (playbooks/verify.yml) runs on every seat of a course.

The role writes the course's profile (with the course's profile_vars merged in) to a
JSON file and runs pytest once per seat with:
  SCIPION_CLOUD_PROFILE_JSON  that file
  SCIPION_CLOUD_SEAT_URL      the seat's noVNC address as the students get it
and --hosts=podman://<seat> (local seats) or ssh://<user>@<ip> (cloud seats).
Each check names what is wrong on the seat, since its message ends up in verify.html.
"""

from __future__ import annotations

import json
import os

import pytest

# The image roles' defaults that the checks rely on when a profile does not set them.
DEFAULTS = {
    "gpu": False,
    "desktop_user": "ubuntu",
    "turbovnc_server": "turbovnc",
    "turbovnc_display": 1,
    "novnc_port": 443,
    "scipion_major_version": 3,
    "scipion_home": "/usr/local/scipion3",
    "scipion_release_dir": "/usr/local/scipion",
    "scipion_bin_dir": "/usr/local/bin",
    "scipion_pip_packages": [],
    "scipion_plugins": [],
    "scipion_em_packages": [],
    "course_data_root": "/data",
    "course_data_user": "ubuntu",
    "course_data_datasets": [],
    "course_data_projects": [],
    "course_data_user_data_dir": "ScipionUserData",
}


@pytest.fixture(scope="session")
def profile() -> dict:
    path = os.environ.get("SCIPION_CLOUD_PROFILE_JSON")
    if not path:
        pytest.fail("SCIPION_CLOUD_PROFILE_JSON is not set: run these suites through playbooks/verify.yml")
    with open(path, encoding="utf-8") as handle:
        return {**DEFAULTS, **json.load(handle)}


@pytest.fixture(scope="session")
def seat_url() -> str:
    return os.environ.get("SCIPION_CLOUD_SEAT_URL", "")
