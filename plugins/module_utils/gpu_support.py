"""Which NVIDIA driver branch drives which GPU, from the table in roles/course/vars/gpu_support.yml.

The table maps EC2 families to GPU models (``families``), GPU models to their
architecture and the range of driver branches that support them (``gpus``:
``first_branch`` inclusive, ``last_branch`` inclusive, either may be absent), and
lists the production branches (``branches``) used to name working alternatives.
Shared by the preflight module and the cost filters.
"""

from __future__ import annotations

import re
from typing import Any

BRANCH_RE = re.compile(r"^\s*(\d{3})(?:\.\d+)*\s*$")


def parse_branch(branch: Any) -> int | None:
    """Return the branch number of '470', 470 or '470.256.02'; None when it is not one."""
    match = BRANCH_RE.match(str(branch))
    return int(match.group(1)) if match else None


def family_of(instance_type: str) -> str:
    """EC2 family of an instance type: 'g4dn' for 'g4dn.xlarge'."""
    return instance_type.split(".", 1)[0]


def gpu_of_type(table: dict[str, Any], instance_type: str, api_gpu_name: str | None = None) -> str | None:
    """GPU model of an instance type: the API's answer when given, else the family table."""
    if api_gpu_name:
        return api_gpu_name
    return table.get("families", {}).get(family_of(instance_type))


def branch_drives(table: dict[str, Any], branch: int, gpu: str) -> bool:
    """True when driver branch ``branch`` supports GPU model ``gpu`` (unknown GPUs: False)."""
    entry = table.get("gpus", {}).get(gpu)
    if entry is None:
        return False
    first = entry.get("first_branch")
    last = entry.get("last_branch")
    return (first is None or branch >= int(first)) and (last is None or branch <= int(last))


def support_range(table: dict[str, Any], gpu: str) -> str:
    """Plain words for the branches that support ``gpu``: 'branch 410 or later'."""
    entry = table.get("gpus", {}).get(gpu, {})
    first, last = entry.get("first_branch"), entry.get("last_branch")
    if first is not None and last is not None:
        return f"branches {first} to {last}"
    if first is not None:
        return f"branch {first} or later"
    if last is not None:
        return f"branch {last} or earlier"
    return "any branch"


def working_branches(table: dict[str, Any], gpu: str) -> list[int]:
    """The table's production branches that drive ``gpu``, oldest first."""
    return [b for b in sorted(int(x) for x in table.get("branches", [])) if branch_drives(table, b, gpu)]


def working_types(table: dict[str, Any], branch: int, candidates: list[str] | None = None) -> list[str]:
    """Instance types (the table's ``instance_types`` unless given) whose GPU the branch drives."""
    types = candidates if candidates is not None else list(table.get("instance_types", []))
    result = []
    for instance_type in types:
        gpu = gpu_of_type(table, instance_type)
        if gpu is not None and branch_drives(table, branch, gpu):
            result.append(instance_type)
    return result


def architecture(table: dict[str, Any], gpu: str) -> str:
    """Architecture name of a GPU model ('Turing' for 'T4'), or 'unknown architecture'."""
    return table.get("gpus", {}).get(gpu, {}).get("architecture", "unknown architecture")
