"""What a provider test holds on to: the running double and the clouds.yaml that points at it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .server import OpenStackDouble
from .state import Cloud

EGI_CLOUD = "IISAS-FedCloud-cloud"
PASSWORD_CLOUD = "site-password"


@dataclass
class OpenStackSite:
    """The running double, its state, and the files that point openstacksdk at it."""

    double: OpenStackDouble
    clouds_yaml: Path

    @property
    def cloud(self) -> Cloud:
        return self.double.cloud

    @property
    def auth_url(self) -> str:
        return self.double.auth_url

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for ansible-playbook: the password clouds.yaml, no stray EGI token."""
        env = {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml), "EGI_ACCESS_TOKEN": "",
               "OS_ACCESS_TOKEN": "", "OIDC_ACCESS_TOKEN": ""}
        env.update(extra)
        return env
