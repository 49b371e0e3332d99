"""Scipion 3 installed for real from PyPI by the scipion role (Debian 12 container), one
plugin binary installed by installb from a stand-in tarball, and the stand-in dataset."""

import configparser
import json
import os
import re
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
PROFILE = yaml.safe_load((PROJECT / "inventories/profiles/scipion-3.yml").read_text())
HOME = PROFILE["scipion_home"]
PYTHON = f"{HOME}/.venv/bin/python"
# Python module of each plugin distribution (scipion-em-<x> installs package <x>).
PLUGIN_MODULES = [re.match(r"scipion-em-(\w+)==", p).group(1) for p in PROFILE["scipion_plugins"]]


def as_student(host, command: str):
    return host.run(f"sudo -u ubuntu -H {command}")


def test_scipion3_command_for_every_user(host):
    command = host.file("/usr/local/bin/scipion3")
    assert command.is_symlink or command.is_file
    assert host.file(f"{HOME}/scipion3").mode == 0o755
    usage = as_student(host, "/usr/local/bin/scipion3 help")
    assert "Scipion v3.8.3" in usage.stdout, usage.stderr
    assert "installb" in usage.stdout


@pytest.mark.parametrize("requirement", PROFILE["scipion_pip_packages"] + PROFILE["scipion_plugins"])
def test_exact_versions_from_pypi(host, requirement):
    name, version = requirement.split("==")
    shown = host.run(f"{PYTHON} -m pip show {name}")
    assert shown.rc == 0, shown.stderr
    assert f"Version: {version}\n" in shown.stdout


def test_plugins_import(host):
    code = "import importlib; [importlib.import_module(m) for m in %r]; print('ok')" % PLUGIN_MODULES
    result = as_student(host, f"/usr/local/bin/scipion3 python -c \"{code}\"")
    assert result.rc == 0, result.stderr
    assert "ok" in result.stdout.splitlines(), result.stdout


def test_config_unattended_with_usage_statistics_off(host):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(host.file(f"{HOME}/config/scipion.conf").content_string)
    assert parser["PYWORKFLOW"]["SCIPION_NOTIFY"] == "False"
    assert host.file(f"{HOME}/config/hosts.conf").is_file


def test_printenv_shows_cuda_mpi_and_notify(host):
    env = as_student(host, "/usr/local/bin/scipion3 printenv")
    assert env.rc == 0, env.stderr
    assert 'SCIPION_NOTIFY="False"' in env.stdout
    assert 'MPI_LIBDIR="/usr/lib/x86_64-linux-gnu/openmpi/lib"' in env.stdout
    assert 'MPI_BINDIR="/usr/bin"' in env.stdout
    assert f'CUDA_LIB="{PROFILE["scipion_cuda_lib"]}"' in env.stdout
    assert 'SCIPION_USER_DATA="/home/ubuntu/ScipionUserData"' in env.stdout


def test_a_project_is_created_headless(host):
    code = ("from pyworkflow.project import Manager; "
            "p = Manager().createProject('SmokeTest'); print(p.getPath())")
    result = as_student(host, f"/usr/local/bin/scipion3 python -c \"{code}\"")
    assert result.rc == 0, result.stderr
    sqlite = host.file("/home/ubuntu/ScipionUserData/projects/SmokeTest/project.sqlite")
    assert sqlite.is_file and sqlite.user == "ubuntu"
    host.run("rm -rf /home/ubuntu/ScipionUserData/projects/SmokeTest")


def test_binary_installed_by_installb_from_the_mirror(host):
    listing = host.run("/usr/local/bin/scipion3 installb")
    assert re.search(r"ctffind4\s+4\.1\.14\s+\[X\]", listing.stdout), listing.stdout
    ctffind = host.run(f"{HOME}/software/em/ctffind4-4.1.14/bin/ctffind")
    assert ctffind.stdout.startswith("ctffind 4.1.14")
    assert not host.file(f"{HOME}/software/em/ctffind4-4.1.14.tgz").exists
    assert not host.file("/var/cache/scipion_cloud/artifacts/ctffind4-4.1.14.tgz").exists


def test_desktop_entry_starts_scipion3(host):
    entry = host.file("/usr/share/applications/scipion.desktop").content_string
    assert "Exec=/usr/local/bin/scipion3\n" in entry
    icon = re.search(r"^Icon=(.+)$", entry, re.M).group(1)
    assert host.file(icon).is_file


def test_dataset_verified_and_owned_by_the_student(host):
    mirror = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")) / "mirror" / "standins.json"
    if not mirror.exists():
        pytest.skip("stand-in manifest not found (run through molecule)")
    for name, md5 in json.loads(mirror.read_text())["dataset_md5"].items():
        data = host.file(f"/data/relion13_tutorial/{name}")
        assert data.md5sum == md5, name
        assert data.user == "ubuntu", name
