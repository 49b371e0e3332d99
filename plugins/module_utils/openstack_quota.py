# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quotas and usage of the OpenStack project a connection is scoped to, readable by any project member.

Nova's C(GET /limits) for instances, cores and RAM; Neutron's C(GET /quotas/<project>/details) for
floating IPs, or, where a site's policy refuses the details, the plain quota and a count of the
project's floating IPs. A limit of -1 means unlimited.
"""

from __future__ import annotations

from typing import Any

try:
    from openstack import exceptions as sdk_exceptions
except ImportError:  # pragma: no cover - the modules that use this report it
    sdk_exceptions = None

QUOTA_RESOURCES = ("instances", "cores", "ram_mb", "floating_ips")


def usage(limit: Any, used: Any) -> dict[str, int]:
    """One quota entry; a missing limit counts as unlimited."""
    return {"limit": -1 if limit is None else int(limit), "used": int(used or 0)}


def compute_quota(conn: Any) -> dict[str, dict[str, int]]:
    absolute = conn.compute.get_limits().absolute
    return {
        "instances": usage(absolute.instances, absolute.instances_used),
        "cores": usage(absolute.total_cores, absolute.total_cores_used),
        "ram_mb": usage(absolute.total_ram, absolute.total_ram_used),
    }


def floating_ip_quota(conn: Any, project_id: str) -> dict[str, int]:
    try:
        details = conn.network.get_quota(project_id, details=True)
        entry = details.floating_ips or {}
        return usage(entry.get("limit"), entry.get("used"))
    except sdk_exceptions.SDKException:
        quota = conn.network.get_quota(project_id)
        used = len(list(conn.network.ips(project_id=project_id)))
        return usage(quota.floating_ips, used)


def project_quota(conn: Any) -> tuple[str, dict[str, dict[str, int]]]:
    """The project's id, and its limit and usage of instances, cores, RAM (MiB) and floating IPs."""
    project_id = conn.current_project_id
    quota = compute_quota(conn)
    quota["floating_ips"] = floating_ip_quota(conn, project_id)
    return project_id, quota
