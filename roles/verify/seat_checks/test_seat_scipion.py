"""Scipion on a seat: the command the desktop shortcut runs works for the student."""

from __future__ import annotations

import re

import pytest


def as_student(host, profile, command: str):
    return host.run(f"sudo -u {profile['desktop_user']} -H {command}")


def test_scipion_command_works_for_the_student(host, profile):
    if int(profile["scipion_major_version"]) >= 3:
        result = as_student(host, profile, f"{profile['scipion_bin_dir']}/scipion3 printenv")
        assert result.rc == 0, f"scipion3 printenv failed: {(result.stderr or result.stdout)[-800:]}"
        assert "SCIPION_HOME" in result.stdout
    else:
        result = as_student(host, profile, f"{profile['scipion_release_dir']}/scipion printenv")
        assert result.rc == 0, f"scipion printenv failed: {(result.stderr or result.stdout)[-800:]}"


def test_pinned_python_packages(host, profile):
    if int(profile["scipion_major_version"]) < 3:
        pytest.skip("Scipion 1.x has no PyPI packages")
    python = f"{profile['scipion_home']}/.venv/bin/python"
    wanted = dict(r.split("==") for r in profile["scipion_pip_packages"] + profile["scipion_plugins"])
    listed = host.run(f"{python} -m pip list --format=freeze")
    assert listed.rc == 0, listed.stderr
    found = dict(line.split("==") for line in listed.stdout.splitlines() if "==" in line)
    wrong = {name: found.get(name, "missing") for name, version in wanted.items() if found.get(name) != version}
    assert not wrong, f"packages not at their pinned versions: {wrong}"


def test_plugins_import(host, profile):
    if int(profile["scipion_major_version"]) < 3:
        pytest.skip("Scipion 1.x packages are checked by their install folders")
    modules = [re.match(r"scipion-em-(\w+)==", p).group(1) for p in profile["scipion_plugins"]]
    code = "import importlib; [importlib.import_module(m) for m in %r]; print('ok')" % modules
    result = as_student(host, profile, f"{profile['scipion_bin_dir']}/scipion3 python -c \"{code}\"")
    assert result.rc == 0 and "ok" in result.stdout.splitlines(), f"plugins do not import: {result.stderr[-800:]}"


def test_em_packages_installed(host, profile):
    if int(profile["scipion_major_version"]) >= 3:
        pytest.skip("Scipion 3 plugins are checked by import")
    em = f"{profile['scipion_release_dir']}/software/em"
    missing = [p["package"] for p in profile["scipion_em_packages"] if not host.file(f"{em}/{p['package']}").is_directory]
    assert not missing, f"EM packages missing under {em}: {missing}"
