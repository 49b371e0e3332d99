"""configure.yml skips a machine only when the profile, the role list and every role file are unchanged."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

PROJECT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("configure_filter", PROJECT / "plugins/filter/configure.py")
configure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(configure)
fingerprint = configure.configuration_fingerprint


@pytest.fixture
def roles(tmp_path):
    (tmp_path / "desktop" / "tasks").mkdir(parents=True)
    (tmp_path / "desktop" / "tasks" / "main.yml").write_text("- name: A\n")
    (tmp_path / "novnc" / "defaults").mkdir(parents=True)
    (tmp_path / "novnc" / "defaults" / "main.yml").write_text("novnc_port: 443\n")
    return tmp_path


def test_same_inputs_same_fingerprint(roles):
    assert fingerprint({"gpu": False, "a": 1}, ["desktop"], str(roles)) == fingerprint({"a": 1, "gpu": False}, ["desktop"], str(roles))


@pytest.mark.parametrize("change", ["profile", "roles", "file content", "new file", "renamed file"])
def test_any_change_gives_another_fingerprint(roles, change):
    before = fingerprint({"gpu": False}, ["desktop"], str(roles))
    profile, names = {"gpu": False}, ["desktop"]
    if change == "profile":
        profile = {"gpu": True}
    elif change == "roles":
        names = ["desktop", "novnc"]
    elif change == "file content":
        (roles / "novnc" / "defaults" / "main.yml").write_text("novnc_port: 8443\n")
    elif change == "new file":
        (roles / "desktop" / "tasks" / "extra.yml").write_text("")
    else:
        (roles / "desktop" / "tasks" / "main.yml").rename(roles / "desktop" / "tasks" / "other.yml")
    assert fingerprint(profile, names, str(roles)) != before


def test_missing_roles_folder_is_an_error(tmp_path):
    with pytest.raises(AnsibleFilterError, match="no roles folder"):
        fingerprint({}, [], str(tmp_path / "nope"))
