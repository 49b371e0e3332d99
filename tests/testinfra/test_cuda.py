"""The cuda role's toolkits, default link, loader and login-shell settings.

Expectations come from the profile (SCIPION_CLOUD_PROFILE: a name under
inventories/profiles/ or a path; default scipion-1.1) through the role's own planning
filter, so the suite runs unchanged in molecule (stand-in runfiles) and on a live
machine. Checks that need a GPU are marked ``gpu`` and skip where /dev/nvidia0 is absent.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
INSTALL_ROOT = "/usr/local"
LD_CONF = "/etc/ld.so.conf.d/cuda-toolkits.conf"
WORK_DIR = "/var/tmp/scipion_cloud-cuda"


def _load_filters():
    spec = importlib.util.spec_from_file_location("cuda_filters", PROJECT / "plugins/filter/cuda.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _profile() -> dict:
    name = os.environ.get("SCIPION_CLOUD_PROFILE", "scipion-1.1")
    path = Path(name) if "/" in name else PROJECT / "inventories/profiles" / f"{name}.yml"
    return yaml.safe_load(path.read_text())


FILTERS = _load_filters()
PROFILE = _profile()
DEFAULT = str(PROFILE.get("cuda_default_version", ""))
TOOLKITS = FILTERS.cuda_toolkit_plan(PROFILE.get("cuda_toolkits", []), INSTALL_ROOT, WORK_DIR, DEFAULT)
RUNFILE_TOOLKITS = [toolkit for toolkit in TOOLKITS if toolkit["method"] == "runfile"]


def _ids(toolkits: list[dict]) -> list[str]:
    return [f"cuda-{toolkit['version']}" for toolkit in toolkits]


@pytest.fixture
def gpu(host):
    if not host.file("/dev/nvidia0").exists:
        pytest.skip("no NVIDIA GPU on this host (/dev/nvidia0 is absent)")


def test_profile_declares_toolkits():
    assert TOOLKITS, "the profile declares no cuda_toolkits"


@pytest.mark.parametrize("toolkit", RUNFILE_TOOLKITS, ids=_ids(RUNFILE_TOOLKITS))
def test_toolkit_is_installed_at_its_release(host, toolkit):
    nvcc = host.file(f"{toolkit['dir']}/bin/nvcc")
    assert nvcc.is_file and nvcc.mode & 0o111
    version_file = host.file(f"{toolkit['dir']}/{toolkit['version_file']}").content_string
    assert FILTERS.cuda_release_from_version_file(version_file, toolkit["version_file"]) == toolkit["release"]


@pytest.mark.parametrize("toolkit", TOOLKITS, ids=_ids(TOOLKITS))
def test_nvcc_prints_the_toolkit_version(host, toolkit):
    out = host.check_output(f"{toolkit['dir']}/bin/nvcc --version")
    assert re.search(rf"Cuda compilation tools, release {re.escape(toolkit['version'])}, "
                     rf"V{re.escape(toolkit['version'])}\.\d+", out), out


@pytest.mark.parametrize("toolkit", TOOLKITS, ids=_ids(TOOLKITS))
def test_runtime_library_is_in_the_loader_cache(host, toolkit):
    cache = host.check_output("ldconfig -p")
    # ldconfig keeps the first folder for a SONAME: the default toolkit's comes through the link.
    folders = [f"{toolkit['dir']}/lib64/"]
    if toolkit["version"] == DEFAULT:
        folders.append(f"{INSTALL_ROOT}/cuda/lib64/")
    entries = [line for line in cache.splitlines()
               if "libcudart.so." in line and any(f"=> {folder}" in line for folder in folders)]
    assert entries, f"ldconfig -p has no libcudart from {' or '.join(folders)}"


def test_default_link_points_at_the_default_toolkit(host):
    link = host.file(f"{INSTALL_ROOT}/cuda")
    assert link.is_symlink
    assert link.linked_to == f"{INSTALL_ROOT}/cuda-{DEFAULT}"


def test_loader_config_lists_every_toolkit(host):
    conf = host.file(LD_CONF)
    assert conf.user == "root" and conf.mode == 0o644
    lines = [line for line in conf.content_string.splitlines() if line and not line.startswith("#")]
    assert lines == [f"{INSTALL_ROOT}/cuda/lib64"] + [f"{toolkit['dir']}/lib64" for toolkit in TOOLKITS]


def test_login_shell_finds_the_default_nvcc(host):
    out = host.check_output("bash -lc 'command -v nvcc; echo \"$CUDA_HOME\"; nvcc --version'")
    lines = out.splitlines()
    assert lines[0] == f"{INSTALL_ROOT}/cuda/bin/nvcc"
    assert lines[1] == f"{INSTALL_ROOT}/cuda"
    assert f"release {DEFAULT}, V{DEFAULT}." in out


def test_login_shell_path_has_cuda_once(host):
    out = host.check_output("bash -lc '. /etc/profile.d/cuda.sh; echo \"$PATH\"'")
    assert out.split(":").count(f"{INSTALL_ROOT}/cuda/bin") == 1


def test_no_scratch_or_runfile_left(host):
    assert not host.file(WORK_DIR).exists
    for toolkit in RUNFILE_TOOLKITS:
        assert not host.file(f"/var/cache/scipion_cloud/artifacts/{toolkit['runfile']['name']}").exists


@pytest.mark.gpu
@pytest.mark.parametrize("toolkit", TOOLKITS, ids=_ids(TOOLKITS))
def test_cuda_runtime_counts_the_gpus(host, gpu, toolkit):
    """The toolkit's own libcudart talks to the driver: cudaGetDeviceCount succeeds (0) with >= 1 GPU."""
    script = (
        "import ctypes, glob; "
        f"lib = ctypes.CDLL(sorted(glob.glob('{toolkit['dir']}/lib64/libcudart.so.*'))[0]); "
        "n = ctypes.c_int(); print(lib.cudaGetDeviceCount(ctypes.byref(n)), n.value)"
    )
    status, count = host.check_output(f'python3 -c "{script}"').split()
    assert status == "0", f"cudaGetDeviceCount returned error {status}"
    assert int(count) >= 1
