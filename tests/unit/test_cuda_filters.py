"""plugins/filter/cuda.py: planning the cuda role's toolkits and reading installed releases."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import pytest
import yaml

from ansible.errors import AnsibleFilterError

PROJECT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("cuda_filters", PROJECT / "plugins/filter/cuda.py")
cuda = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cuda)

ROOT, WORK = "/usr/local", "/var/tmp/scipion_cloud-cuda"


def profile(name: str) -> dict:
    return yaml.safe_load((PROJECT / f"inventories/profiles/{name}.yml").read_text())


def runfile(name: str) -> dict:
    return {"name": name, "url": f"https://vendor.invalid/{name}", "sha256": "0" * 64}


def test_scipion_1_1_plan_installs_7_5_and_8_0_with_the_perl_workaround() -> None:
    spec = profile("scipion-1.1")
    plan = cuda.cuda_toolkit_plan(spec["cuda_toolkits"], ROOT, WORK, spec["cuda_default_version"])
    assert [(t["version"], t["release"], t["dir"]) for t in plan] == [
        ("7.5", "7.5.18", "/usr/local/cuda-7.5"), ("8.0", "8.0.61", "/usr/local/cuda-8.0")]
    for toolkit in plan:
        assert toolkit["perl_workaround"] and toolkit["version_file"] == "version.txt"
        assert toolkit["installer_args"] == ["--silent", "--toolkit", f"--toolkitpath={toolkit['dir']}",
                                             "--override", "--verbose", f"--tmpdir={WORK}/tmp"]


def test_scipion_3_plan_uses_the_new_installer() -> None:
    spec = profile("scipion-3")
    (toolkit,) = cuda.cuda_toolkit_plan(spec["cuda_toolkits"], ROOT, WORK, spec["cuda_default_version"])
    assert toolkit["release"] == "12.4.1" and toolkit["version_file"] == "version.json"
    assert toolkit["new_installer"] and not toolkit["perl_workaround"]
    assert "--verbose" not in toolkit["installer_args"]


def test_profiles_keep_the_published_checksums() -> None:
    sums = {t["runfile"]["name"]: t["runfile"]["sha256"] for t in profile("scipion-1.1")["cuda_toolkits"]}
    assert sums == {
        "cuda_7.5.18_linux.run": "08411d536741075131a1858a68615b8b73c51988e616e83b835e4632eea75eec",
        "cuda_8.0.61_375.26_linux.run": "9ceca9c2397f841024e03410bfd6eabfd72b384256fbed1c1e4834b5b0ce9dc4",
    }


def test_extra_args_and_explicit_release() -> None:
    (toolkit,) = cuda.cuda_toolkit_plan(
        [{"version": "9.2", "release": "9.2.148", "runfile": runfile("cuda_9.2_linux.run"),
          "installer_args": ["--no-opengl-libs"]}], ROOT + "/", WORK)
    assert toolkit["release"] == "9.2.148" and not toolkit["perl_workaround"]
    assert toolkit["installer_args"][-1] == "--no-opengl-libs"
    assert toolkit["dir"] == "/usr/local/cuda-9.2"


def test_package_method_needs_no_runfile() -> None:
    (toolkit,) = cuda.cuda_toolkit_plan([{"version": "12.4", "method": "package",
                                          "packages": ["cuda-toolkit-12-4"]}], ROOT, WORK, "12.4")
    assert toolkit["packages"] == ["cuda-toolkit-12-4"] and "installer_args" not in toolkit


@pytest.mark.parametrize("toolkits, default, message", [
    ([{"version": "7", "runfile": runfile("cuda_7.0.28_linux.run")}], "", "major.minor"),
    ([{"version": "8.0", "runfile": runfile("cuda_7.5.18_linux.run")}], "", "release 7.5.18 is not a CUDA 8.0"),
    ([{"version": "8.0"}], "", "needs runfile"),
    ([{"version": "8.0", "runfile": runfile("my-cuda.run")}], "", "set release"),
    ([{"version": "12.4", "method": "package"}], "", "needs packages"),
    ([{"version": "12.4", "method": "conda", "packages": ["x"]}], "", "runfile or package"),
    ([{"version": "7.5", "runfile": runfile("cuda_7.5.18_linux.run")}] * 2, "", "more than once"),
    ([{"version": "7.5", "runfile": runfile("cuda_7.5.18_linux.run")}], "8.0", "cuda_default_version 8.0"),
])
def test_bad_toolkit_lists_are_refused(toolkits: list, default: str, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        cuda.cuda_toolkit_plan(toolkits, ROOT, WORK, default)


@pytest.mark.parametrize("content, version_file, release", [
    ("CUDA Version 7.5.18\n", "version.txt", "7.5.18"),
    ('{"cuda": {"name": "CUDA SDK", "version": "12.4.1"}}', "version.json", "12.4.1"),
    ("garbage", "version.txt", ""),
    ("not json", "version.json", ""),
])
def test_release_from_version_file(content: str, version_file: str, release: str) -> None:
    assert cuda.cuda_release_from_version_file(content, version_file) == release


def test_missing_toolkits_are_the_absent_or_other_releases() -> None:
    spec = profile("scipion-1.1")
    plan = cuda.cuda_toolkit_plan(spec["cuda_toolkits"] + [{"version": "9.0", "release": "9.0.176",
                                                            "runfile": runfile("cuda_9.0.176_384.81_linux.run")}],
                                  ROOT, WORK)
    nvcc = [{"item": t, "stat": {"exists": t["version"] != "9.0"}} for t in plan]
    contents = {"7.5": "CUDA Version 7.5.18\n", "8.0": "CUDA Version 8.0.44\n"}
    versions = [{"item": {"item": t}, "content": base64.b64encode(contents[t["version"]].encode()).decode()}
                for t in plan if t["version"] in contents]
    missing = cuda.cuda_missing_toolkits(plan, nvcc, versions)
    assert [t["version"] for t in missing] == ["8.0", "9.0"]
