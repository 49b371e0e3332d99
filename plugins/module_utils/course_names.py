"""The names a course gives what it creates, in one place.

Every cloud resource a course creates carries the tags (AWS) or metadata (OpenStack)
``Course=<course>`` and ``ManagedBy=MANAGED_BY``, and local containers the label
``scipion_cloud.managed_by=MANAGED_BY``: discovery, lifecycle and teardown select by them.
The course's own key pair and security group are named ``<course><suffix>``.
"""

from __future__ import annotations

MANAGED_BY = "scipion_cloud"
KEY_PAIR_SUFFIX = "-key"
SECURITY_GROUP_SUFFIX = "-sg"


def key_pair_name(course: str) -> str:
    """Name of the course's own key pair (and of its private key file, without extension)."""
    return f"{course}{KEY_PAIR_SUFFIX}"


def security_group_name(course: str) -> str:
    """Name of the course's own security group."""
    return f"{course}{SECURITY_GROUP_SUFFIX}"


def own_tags(course: str) -> dict[str, str]:
    """The tags (or metadata) that mark a resource as the course's."""
    return {"Course": course, "ManagedBy": MANAGED_BY}
