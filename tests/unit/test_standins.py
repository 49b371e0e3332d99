"""The stand-in builder (tests/fixtures/standins/build.py) and the contract of its files.

The stand-ins replace NVIDIA's runfiles in molecule; these tests hold them to the real
files' command line: Makeself options, the CUDA <= 8 installer's flags and its failure on
Perl >= 5.26 without the InstallUtils.pm workaround, the driver installer's refusals.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from tests.fixtures.standins import build  # noqa: E402

CUDA75 = "cuda_7.5.18_linux.run"
CUDA80 = "cuda_8.0.61_375.26_linux.run"
DRIVER = "NVIDIA-Linux-x86_64-384.111.run"


def perl_version() -> float:
    out = subprocess.run(["perl", "-e", "print $]"], capture_output=True, text=True, check=True).stdout
    return float(out)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mirror")
    build.build_mirror(out)
    return out


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {key: value for key, value in os.environ.items() if key != "PERL5LIB"}
    full_env.update(env or {})
    return subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60)


def test_builds_are_reproducible(tmp_path: Path) -> None:
    first = build.build_mirror(tmp_path / "a")
    second = build.build_mirror(tmp_path / "b")
    assert first == second
    assert set(first) == {CUDA75, CUDA80, DRIVER}


def test_sha256sums_lists_what_was_built(tmp_path: Path) -> None:
    build.build_mirror(tmp_path, [CUDA75])
    sums = build.build_mirror(tmp_path, [DRIVER])
    lines = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert lines == sorted(lines, key=lambda line: line.split()[1])
    assert f"{sums[DRIVER]}  {DRIVER}" in lines
    digest = hashlib.sha256((tmp_path / CUDA75).read_bytes()).hexdigest()
    assert f"{digest}  {CUDA75}" in lines


def test_unknown_standin_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="cuda_7.5.18_linux.run"):
        build.build_mirror(tmp_path, ["cuda_9.9_linux.run"])


def test_command_line_prints_checksums(tmp_path: Path) -> None:
    result = run([sys.executable, str(PROJECT / "tests/fixtures/standins/build.py"), "--out", str(tmp_path), CUDA80],
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert CUDA80 in result.stdout and (tmp_path / CUDA80).is_file()


def test_makeself_check_and_list(mirror: Path, tmp_path: Path) -> None:
    check = run(["sh", str(mirror / CUDA75), "--check"], cwd=tmp_path)
    assert check.returncode == 0 and "All good" in check.stdout
    listing = run(["sh", str(mirror / CUDA75), "--list"], cwd=tmp_path)
    assert "./InstallUtils.pm" in listing.stdout and "./toolkit/bin/nvcc" in listing.stdout


def test_makeself_detects_a_damaged_payload(mirror: Path, tmp_path: Path) -> None:
    damaged = tmp_path / CUDA75
    damaged.write_bytes((mirror / CUDA75).read_bytes() + b"damage")
    result = run(["sh", str(damaged), "--check"], cwd=tmp_path)
    assert result.returncode != 0 and "Error in MD5 checksums" in result.stderr


@pytest.mark.skipif(shutil.which("perl") is None or perl_version() < 5.026, reason="needs Perl >= 5.26")
def test_cuda8_installer_fails_without_the_perl_workaround(mirror: Path, tmp_path: Path) -> None:
    result = run(["sh", str(mirror / CUDA80), "--silent", "--toolkit", f"--toolkitpath={tmp_path}/cuda-8.0",
                  "--override"], cwd=tmp_path)
    assert result.returncode != 0
    assert "Can't locate InstallUtils.pm in @INC" in result.stderr
    assert not (tmp_path / "cuda-8.0").exists()


@pytest.mark.parametrize("name, short, release, banner", [
    (CUDA75, "7.5", "7.5.18", "Cuda compilation tools, release 7.5, V7.5.17"),
    (CUDA80, "8.0", "8.0.61", "Cuda compilation tools, release 8.0, V8.0.61"),
])
def test_cuda_installer_with_the_workaround_lays_out_the_toolkit(mirror: Path, tmp_path: Path, name: str,
                                                                 short: str, release: str, banner: str) -> None:
    extract = run(["sh", str(mirror / name), "--tar", "mxvf", "./InstallUtils.pm"], cwd=tmp_path)
    assert extract.returncode == 0 and (tmp_path / "InstallUtils.pm").is_file()
    prefix = tmp_path / f"cuda-{short}"
    result = run(["sh", str(mirror / name), "--silent", "--toolkit", f"--toolkitpath={prefix}", "--override",
                  "--verbose", f"--tmpdir={tmp_path}"], cwd=tmp_path, env={"PERL5LIB": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Toolkit: Installed in {prefix}" in result.stdout
    nvcc = run([str(prefix / "bin/nvcc"), "--version"], cwd=tmp_path)
    assert nvcc.stdout.splitlines()[-1] == banner
    assert (prefix / "version.txt").read_text() == f"CUDA Version {release}\n"
    assert os.readlink(prefix / f"lib64/libcudart.so.{short}") == f"libcudart.so.{release}"


def test_cuda_installer_refuses_an_unsupported_compiler_without_override(mirror: Path, tmp_path: Path) -> None:
    run(["sh", str(mirror / CUDA75), "--tar", "mxvf", "./InstallUtils.pm"], cwd=tmp_path)
    # CUDA 7.5 accepts gcc <= 4.9; a newer gcc, or none, needs --override.
    result = run(["sh", str(mirror / CUDA75), "--silent", "--toolkit", f"--toolkitpath={tmp_path}/cuda-7.5"],
                 cwd=tmp_path, env={"PERL5LIB": str(tmp_path)})
    assert result.returncode == 1
    assert "Toolkit: Installation Failed. Using unsupported Compiler." in result.stdout


def test_cuda_installer_needs_silent_and_knows_its_options(mirror: Path, tmp_path: Path) -> None:
    run(["sh", str(mirror / CUDA75), "--tar", "mxvf", "./InstallUtils.pm"], cwd=tmp_path)
    env = {"PERL5LIB": str(tmp_path)}
    assert run(["sh", str(mirror / CUDA75), "--toolkit"], cwd=tmp_path, env=env).returncode == 1
    unknown = run(["sh", str(mirror / CUDA75), "--silent", "--toolkit", "--installpath=/x"], cwd=tmp_path, env=env)
    assert unknown.returncode == 1 and "Unknown option: --installpath=/x" in unknown.stderr


@pytest.mark.skipif(shutil.which("ldconfig") is None and not Path("/usr/sbin/ldconfig").exists(),
                    reason="needs ldconfig")
def test_stand_in_libraries_carry_their_soname(tmp_path: Path) -> None:
    (tmp_path / "libcudart.so.7.5.18").write_bytes(build.elf_shared_object("libcudart.so.7.5"))
    ldconfig = shutil.which("ldconfig") or "/usr/sbin/ldconfig"
    result = run([ldconfig, "-v", "-N", "-n", str(tmp_path)], cwd=tmp_path)
    assert "libcudart.so.7.5 -> libcudart.so.7.5.18" in result.stdout


def test_driver_runfile_extracts_and_reports_its_version(mirror: Path, tmp_path: Path) -> None:
    result = run(["sh", str(mirror / DRIVER), "-x"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    installer = tmp_path / "NVIDIA-Linux-x86_64-384.111/nvidia-installer"
    assert "version 384.111" in run([str(installer), "--version"], cwd=tmp_path).stdout
    assert (tmp_path / "NVIDIA-Linux-x86_64-384.111/lib-opengl/libGLX_nvidia.so.0").is_symlink()


def test_driver_installer_asks_for_silent_mode(mirror: Path, tmp_path: Path) -> None:
    result = run(["sh", str(mirror / DRIVER)], cwd=tmp_path)
    assert result.returncode == 1
    assert "ERROR:" in result.stderr and ("--silent" in result.stderr or "run as root" in result.stderr)


@pytest.mark.skipif(os.geteuid() != 0, reason="the installer checks root first")
def test_driver_installer_needs_a_kernel_tree_unless_no_kernel_module(mirror: Path, tmp_path: Path) -> None:
    result = run(["sh", str(mirror / DRIVER), "--silent", "--kernel-name=0.0.0-no-such-kernel"], cwd=tmp_path)
    assert result.returncode == 1
    assert ("Unable to find the kernel source tree" in result.stderr
            or "Nouveau kernel driver is currently in use" in result.stderr)


def test_driver_installer_rejects_unknown_options(mirror: Path, tmp_path: Path) -> None:
    result = run(["sh", str(mirror / DRIVER), "--silent", "--no-such-option"], cwd=tmp_path)
    assert result.returncode == 1 and "Invalid commandline" in result.stderr
