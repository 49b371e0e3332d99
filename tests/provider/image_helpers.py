"""Helpers of the image build tests: a podman container standing in for the cloud builder.

Neither moto's instances nor the OpenStack double's servers can be reached over SSH, so
the build's configuration step runs against a systemd container through the role's
image_builder_connection seam. The container is seeded with what a used machine holds
(host keys, a seat file, the seat's TLS key, VNC password, shell histories, a cloud-init
instance, cached artifacts), so that the generalisation can be checked on it afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

PROJECT = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("BASE_IMAGE", "localhost/scipion-cloud/debian12-systemd:latest")
# Debian 11 (Python 3.9): the legacy runner's test machine, standing in for an Ubuntu 16.04 one.
LEGACY_BASE_IMAGE = os.environ.get("LEGACY_BASE_IMAGE", "localhost/scipion-cloud/debian11-systemd:latest")

# What a configured, used machine holds and no image may carry.
MACHINE_STATE = [
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_ed25519_key.pub",
    "/etc/scipion_cloud/seat.yml",
    "/etc/scipion_cloud/tls/novnc.key",
    "/etc/scipion_cloud/tls/novnc.crt",
    "/var/lib/scipion_cloud/vnc-seat.sha256",
    "/home/ubuntu/.vnc/passwd",
    "/home/ubuntu/.bash_history",
    "/home/ubuntu/.ssh/authorized_keys",
    "/root/.bash_history",
    "/var/lib/cloud/instances/i-0builder",
    "/var/cache/scipion_cloud/artifacts/turbovnc_2.1.1_amd64.deb",
    "/var/cache/scipion_cloud/artifacts/.cuda_8.0.61_375.26_linux.run.part",
]
# Next to it, files that belong in the image and must stay.
KEPT = ["/etc/ssh/sshd_config", "/etc/scipion_cloud/tls/README", "/home/ubuntu/.profile"]

SEED_SCRIPT = r"""
set -eu
id ubuntu >/dev/null 2>&1 || useradd --create-home --shell /bin/bash ubuntu
mkdir -p /etc/ssh /etc/scipion_cloud/tls /var/lib/scipion_cloud /home/ubuntu/.vnc /home/ubuntu/.ssh \
    /var/lib/cloud/instances/i-0builder /var/cache/scipion_cloud/artifacts /var/lib/dbus
for f in /etc/ssh/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/sshd_config \
    /etc/scipion_cloud/tls/novnc.key /etc/scipion_cloud/tls/novnc.crt /etc/scipion_cloud/tls/README \
    /var/lib/scipion_cloud/vnc-seat.sha256 /home/ubuntu/.vnc/passwd /home/ubuntu/.bash_history /root/.bash_history \
    /var/lib/cloud/instances/i-0builder/user-data.txt /var/cache/scipion_cloud/artifacts/turbovnc_2.1.1_amd64.deb \
    /var/cache/scipion_cloud/artifacts/.cuda_8.0.61_375.26_linux.run.part; do
  echo "state of a used machine" > "$f"
done
printf 'course: seed\nvnc_password: s33d-pass\n' > /etc/scipion_cloud/seat.yml
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuilderKeyOfTheBuild builder" > /home/ubuntu/.ssh/authorized_keys
ln -sfn /var/lib/cloud/instances/i-0builder /var/lib/cloud/instance
rm -f /var/lib/dbus/machine-id && cp /etc/machine-id /var/lib/dbus/machine-id
"""


def podman(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=True, timeout=timeout)


@contextmanager
def builder_container(prefix: str, apt_lists: bool = False, image: str = BASE_IMAGE) -> Iterator[str]:
    """A booted systemd container with an ubuntu account, removed afterwards; yields its name."""
    assert podman("image", "exists", image, check=False).returncode == 0, \
        f"image {image} is missing: run make setup"
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    try:
        podman("run", "--detach", "--name", name, "--hostname", "builder", "--systemd=always", image, "/sbin/init")
        deadline = time.monotonic() + 120
        state = ""
        # Right after the start systemd's bus may not answer yet: ask again.
        while state not in ("running", "degraded") and time.monotonic() < deadline:
            state = podman("exec", name, "systemctl", "is-system-running", "--wait", check=False).stdout.strip()
            if state not in ("running", "degraded"):
                time.sleep(1)
        assert state in ("running", "degraded"), f"systemd in {name} did not boot: {state!r}"
        if apt_lists:
            # The base image ships empty package lists; the desktop role installs from the archive.
            podman("exec", name, "apt-get", "update", "-qq", timeout=600)
        yield name
    finally:
        podman("rm", "--force", name, check=False)


def seed_machine_state(container: str) -> None:
    subprocess.run(["podman", "exec", "-i", container, "bash"], input=SEED_SCRIPT, text=True, check=True,
                   capture_output=True, timeout=120)


def existing(container: str, paths: list[str]) -> list[str]:
    """The paths that exist in the container."""
    script = 'for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done'
    out = podman("exec", container, "sh", "-c", script, "sh", *paths).stdout
    return out.split()


def machine_id_size(container: str) -> int:
    return int(podman("exec", container, "stat", "-c", "%s", "/etc/machine-id").stdout)


def builder_connection(container: str) -> dict[str, str]:
    return {"ansible_connection": "i2pc.scipion_cloud.podman", "ansible_host": container}


def extra_vars(**values: Any) -> list[str]:
    return ["-e", json.dumps(values)]


def collection_version() -> str:
    return yaml.safe_load((PROJECT / "galaxy.yml").read_text())["version"]


def is_project_commit(described: str) -> bool:
    """A 'git describe --always --dirty --abbrev=40' of this repository: a commit it has, maybe '-dirty'.

    Not compared with HEAD: the repository may get a commit while a build runs.
    """
    commit = described.removesuffix("-dirty")
    if not re.fullmatch(r"[0-9a-f]{40}", commit):
        return False
    return subprocess.run(["git", "-C", str(PROJECT), "cat-file", "-e", f"{commit}^{{commit}}"],
                          capture_output=True).returncode == 0


def profile(name: str) -> dict[str, Any]:
    return yaml.safe_load((PROJECT / "inventories" / "profiles" / f"{name}.yml").read_text())
