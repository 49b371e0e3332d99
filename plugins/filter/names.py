"""course_resource_names: the names and tags of a course's resources (module_utils/course_names.py)."""

from __future__ import annotations

from typing import Any

from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_names


def course_resource_names(course: str) -> dict[str, Any]:
    """{managed_by, key_pair, security_group, tags} of course ``course`` (its name)."""
    return {
        "managed_by": course_names.MANAGED_BY,
        "key_pair": course_names.key_pair_name(course),
        "security_group": course_names.security_group_name(course),
        "tags": course_names.own_tags(course),
    }


class FilterModule:
    """Course resource name filters."""

    def filters(self) -> dict[str, Any]:
        return {"course_resource_names": course_resource_names}
