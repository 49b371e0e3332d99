# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection's boto3 modules share: one retry policy for their clients, and tags as a mapping."""

from __future__ import annotations

from typing import Any

try:
    from botocore.config import Config
except ImportError:  # pragma: no cover - the modules report a missing boto3
    Config = None

# A busy account gets RequestLimitExceeded: more tries than botocore's standard 3 before a read gives up.
MAX_ATTEMPTS = 10


def client(session: Any, service: str, region: str) -> Any:
    """A client of the session whose calls are retried with backoff (throttling, 5xx) up to MAX_ATTEMPTS times."""
    return session.client(service, region_name=region,
                          config=Config(retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS}))


def tag_dict(resource: dict[str, Any]) -> dict[str, str]:
    """A resource's AWS tags (a list of Key and Value) as a mapping."""
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}
