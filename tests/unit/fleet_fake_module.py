"""A stand-in for AnsibleAWSModule in ec2_course_fleet's unit tests.

Its parameters are the module's own option defaults (ec2_course_fleet.ARGUMENT_SPEC), so a new
option needs no edit here; each test file passes only what its tests choose differently.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.modules import ec2_course_fleet as fleet  # noqa: E402

REGION = "eu-west-1"


class FleetModule:
    """What Fleet reads of its module: params, check_mode, region; warnings are kept for the tests."""

    def __init__(self, check_mode: bool = False, **params: Any) -> None:
        defaults = {name: copy.deepcopy(spec.get("default")) for name, spec in fleet.ARGUMENT_SPEC.items()}
        self.params = {**defaults, "course": "madrid", **params}
        self.check_mode = check_mode
        self.region = REGION
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)
