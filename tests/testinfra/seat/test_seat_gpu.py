"""The GPU on a seat: the driver answers and CUDA sees the card. Marked `gpu`: they run where
the seat has an NVIDIA device and are reported as skipped elsewhere."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def gpu(host, profile):
    if not profile["gpu"]:
        pytest.skip("the course runs without GPU components")
    if not host.file("/dev/nvidia0").exists:
        pytest.skip("no NVIDIA device on this seat (/dev/nvidia0 absent)")


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
