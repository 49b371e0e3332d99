"""Fixtures for the OpenStack provider tests: the OpenStack API double and a clouds.yaml for it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# fault_proxy: the AWS fault tests' fixture (their stand-in in front of moto), imported here for pytest to find.
from fault_proxy.fixtures import fault_proxy  # noqa: E402, F401  (needs the path above)
from openstack_double import OpenStackDouble  # noqa: E402
from openstack_double.site import PASSWORD_CLOUD, OpenStackSite  # noqa: E402


@pytest.fixture(scope="session")
def openstack_double() -> Iterator[OpenStackDouble]:
    """One OpenStack API double on 127.0.0.1 for the session."""
    double = OpenStackDouble().start()
    yield double
    double.stop()


@pytest.fixture
def openstack_site(openstack_double: OpenStackDouble, tmp_path: Path) -> OpenStackSite:
    """Fresh double state and a clouds.yaml with a password entry for it (the organiser's own file)."""
    openstack_double.reset()
    clouds = {
        "clouds": {
            PASSWORD_CLOUD: {
                "auth_type": "password",
                "auth": {
                    "auth_url": openstack_double.auth_url,
                    "username": "course-admin",
                    "password": "s3cret",
                    "project_name": openstack_double.cloud.project_name,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": "RegionOne",
            }
        }
    }
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump(clouds))
    path.chmod(0o600)
    return OpenStackSite(double=openstack_double, clouds_yaml=path)
