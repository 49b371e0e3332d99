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
def project(tmp_path):
    for path, text in {"roles/desktop/tasks/main.yml": "- name: A\n", "roles/novnc/defaults/main.yml": "novnc_port: 443\n",
                       "roles/artifact/tasks/main.yml": "- name: Fetch\n", "roles/course_aws/tasks/main.yml": "- name: B\n",
                       "plugins/modules/dataset_manifest.py": "# module\n"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def test_same_inputs_same_fingerprint(project):
    assert fingerprint({"gpu": False, "a": 1}, ["desktop"], str(project)) == fingerprint({"a": 1, "gpu": False}, ["desktop"], str(project))


@pytest.mark.parametrize("change", ["profile", "roles", "file content", "new file", "renamed file", "artifact role", "module"])
def test_any_change_gives_another_fingerprint(project, change):
    before = fingerprint({"gpu": False}, ["desktop", "novnc"], str(project))
    profile, names = {"gpu": False}, ["desktop", "novnc"]
    if change == "profile":
        profile = {"gpu": True}
    elif change == "roles":
        names = ["desktop"]
    elif change == "file content":
        (project / "roles/novnc/defaults/main.yml").write_text("novnc_port: 8443\n")
    elif change == "new file":
        (project / "roles/desktop/tasks/extra.yml").write_text("")
    elif change == "renamed file":
        (project / "roles/desktop/tasks/main.yml").rename(project / "roles/desktop/tasks/other.yml")
    elif change == "artifact role":
        (project / "roles/artifact/tasks/main.yml").write_text("- name: Fetch it\n")
    else:
        (project / "plugins/modules/dataset_manifest.py").write_text("# changed\n")
    assert fingerprint(profile, names, str(project)) != before


def test_roles_that_do_not_configure_machines_do_not_count(project):
    before = fingerprint({}, ["desktop"], str(project))
    (project / "roles/course_aws/tasks/main.yml").write_text("- name: Changed\n")
    (project / "roles/novnc/defaults/main.yml").write_text("novnc_port: 8443\n")  # not in this run's roles
    assert fingerprint({}, ["desktop"], str(project)) == before


def test_missing_roles_folder_is_an_error(tmp_path):
    with pytest.raises(AnsibleFilterError, match="no roles folder"):
        fingerprint({}, [], str(tmp_path / "nope"))
