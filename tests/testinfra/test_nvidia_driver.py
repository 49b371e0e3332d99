"""The nvidia_driver role: driver user space and OpenGL libraries, nouveau blacklisted,
persistence daemon, and the reboot discipline.

The branch comes from the profile (SCIPION_CLOUD_PROFILE: a name under
inventories/profiles/ or a path; default scipion-1.1), so the suite runs unchanged in
molecule (stand-in runfile, container) and on a live machine. Checks that need a GPU are
marked ``gpu`` and skip where /dev/nvidia0 is absent; the molecule-only checks skip where
molecule's prepare step left no record.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
UNIT = "nvidia-persistenced.service"


def _profile() -> dict:
    name = os.environ.get("SCIPION_CLOUD_PROFILE", "scipion-1.1")
    path = Path(name) if "/" in name else PROJECT / "inventories/profiles" / f"{name}.yml"
    return yaml.safe_load(path.read_text())


BRANCH = str(_profile()["nvidia_driver_branch"])


def _loader_cache(host) -> dict[str, str]:
    """SONAME -> path, from ldconfig -p (first entry wins, as for the loader)."""
    entries: dict[str, str] = {}
    for line in host.check_output("ldconfig -p").splitlines()[1:]:
        match = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if match and "x86-64" in match.group(2):
            entries.setdefault(match.group(1), match.group(3))
    return entries


@pytest.fixture
def gpu(host):
    if not host.file("/dev/nvidia0").exists:
        pytest.skip("no NVIDIA GPU on this host (/dev/nvidia0 is absent)")


@pytest.fixture
def molecule_record(host):
    record = host.file("/root/pid1-starttime")
    if not record.exists:
        pytest.skip("not a molecule container (no /root/pid1-starttime from its prepare step)")
    return record


def test_nouveau_is_blacklisted(host):
    conf = host.file("/etc/modprobe.d/blacklist-nouveau.conf")
    assert conf.user == "root" and conf.mode == 0o644
    lines = conf.content_string.splitlines()
    assert "blacklist nouveau" in lines
    assert "options nouveau modeset=0" in lines


def test_driver_libraries_are_of_the_profile_branch(host):
    cache = _loader_cache(host)
    for soname in ("libcuda.so.1", "libnvidia-ml.so.1"):
        assert soname in cache, f"{soname} is not in the loader cache"
        real = host.file(cache[soname]).linked_to if host.file(cache[soname]).is_symlink else cache[soname]
        assert re.search(rf"\.so\.{BRANCH}\.\d+", real), f"{soname} -> {real} is not driver branch {BRANCH}"


def test_opengl_libraries_are_installed(host):
    """VirtualGL renders through NVIDIA's GLX: the driver must bring its OpenGL libraries."""
    cache = _loader_cache(host)
    assert "libGLX_nvidia.so.0" in cache
    assert "libGL.so.1" in cache


def test_driver_tools_are_installed(host):
    for tool in ("nvidia-smi", "nvidia-persistenced"):
        assert host.exists(tool), f"{tool} is not on PATH"


def test_persistence_daemon_is_enabled_at_boot(host):
    assert host.check_output(f"systemctl is-enabled {UNIT}") == "enabled"
    drop_in = host.file(f"/etc/systemd/system/{UNIT}.d/scipion_cloud.conf")
    assert "ConditionVirtualization=!container" in drop_in.content_string.splitlines()


def test_reboot_state_matches_the_driver_state(host):
    """A driver that is installed but not loaded leaves a reboot request; a loaded one none."""
    loaded = host.file("/proc/driver/nvidia/version").exists
    pending = host.file("/run/reboot-required.pkgs")
    requested = pending.exists and "nvidia-driver" in pending.content_string.splitlines()
    if loaded:
        assert not requested, "the driver is loaded but a reboot is still requested for it"
    else:
        assert requested, "the driver is not loaded and no reboot is recorded in /run/reboot-required.pkgs"
        assert host.file("/run/reboot-required").exists


def test_container_was_not_rebooted(host, molecule_record):
    started = host.check_output("cut -d' ' -f22 /proc/1/stat")
    assert started == molecule_record.content_string.strip(), "PID 1 restarted: the container was rebooted"


def test_role_reported_the_reboot_as_required(host, molecule_record):
    facts = json.loads(host.file("/root/nvidia_driver-facts.json").content_string)
    assert facts == {"nvidia_driver_reboot_required": True}


def test_no_kernel_module_was_built_in_the_container(host, molecule_record):
    assert host.run("find /lib/modules /usr/lib/modules -name 'nvidia*.ko*' 2>/dev/null").stdout == ""
    assert not host.file("/sys/module/nvidia").exists


def test_persistence_daemon_stays_off_in_a_container(host, molecule_record):
    assert host.run(f"systemctl is-active {UNIT}").stdout.strip() == "inactive"


@pytest.mark.gpu
def test_nvidia_smi_shows_the_profile_branch(host, gpu):
    versions = host.check_output("nvidia-smi --query-gpu=driver_version --format=csv,noheader").splitlines()
    assert versions and all(version.startswith(f"{BRANCH}.") for version in versions), versions


@pytest.mark.gpu
def test_persistence_mode_is_on(host, gpu):
    modes = host.check_output("nvidia-smi --query-gpu=persistence_mode --format=csv,noheader").splitlines()
    assert modes and all(mode.strip() == "Enabled" for mode in modes), modes
    assert host.service("nvidia-persistenced").is_running
