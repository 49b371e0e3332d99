"""The GPU on a seat: the driver answers and CUDA sees the card. Marked `gpu`: they run where
the seat has an NVIDIA card on its PCI bus and are reported as skipped elsewhere. A card
without a loaded driver (no /dev/nvidia0) is a failure, not a skip: that is the seat the
organiser must hear about before the course."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu


def require_gpu(host, profile) -> None:
    """Skip where the seat is to have no GPU or has no NVIDIA card; fail where the card has no driver."""
    if not profile["gpu"]:
        pytest.skip("the course runs without GPU components")
    # PCI vendor 0x10de is NVIDIA; the bus shows the card whether or not a driver is loaded.
    cards = host.run("grep -l 0x10de /sys/bus/pci/devices/*/vendor")
    if cards.rc != 0 or not cards.stdout.strip():
        pytest.skip("no NVIDIA card on this seat's PCI bus")
    assert host.file("/dev/nvidia0").exists, \
        "the seat has an NVIDIA card but no /dev/nvidia0: the driver is not loaded (dmesg, nvidia-smi say why)"


@pytest.fixture(scope="module")
def gpu(host, profile):
    require_gpu(host, profile)


def test_driver_answers_with_the_profile_branch(host, profile, gpu):
    smi = host.run("nvidia-smi --query-gpu=name,driver_version --format=csv,noheader")
    assert smi.rc == 0, f"nvidia-smi failed: {smi.stderr or smi.stdout}"
    branch = str(profile.get("nvidia_driver_branch", ""))
    assert not branch or any(line.split(",")[-1].strip().startswith(branch + ".") for line in smi.stdout.splitlines()), \
        f"driver is not of branch {branch}: {smi.stdout.strip()}"


def test_default_cuda_compiler_runs(host, profile, gpu):
    version = str(profile.get("cuda_default_version", ""))
    nvcc = host.run("/usr/local/cuda/bin/nvcc --version")
    assert nvcc.rc == 0, f"nvcc failed: {nvcc.stderr}"
    assert not version or f"release {version}" in nvcc.stdout, nvcc.stdout
