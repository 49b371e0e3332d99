"""lookup('i2pc.scipion_cloud.profile', NAME): the one profile loader, and its one override variable."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

from ansible.errors import AnsibleLookupError

PROJECT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("profile_lookup", PROJECT / "plugins/lookup/profile.py")
profile_lookup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile_lookup)

SHIPPED = sorted(p.stem for p in (PROJECT / "inventories/profiles").glob("*.yml"))


def shipped(name: str) -> dict:
    return yaml.safe_load((PROJECT / "inventories/profiles" / f"{name}.yml").read_text())


def test_merge_is_recursive_for_dicts_and_replaces_everything_else():
    base = {"a": {"x": 1, "y": {"deep": 1, "keep": 2}}, "list": [1, 2], "n": 1}
    merged = profile_lookup.merge(base, {"a": {"y": {"deep": 9}}, "list": [3], "new": True})
    assert merged == {"a": {"x": 1, "y": {"deep": 9, "keep": 2}}, "list": [3], "n": 1, "new": True}
    assert base["a"]["y"]["deep"] == 1  # the profile itself is not changed


def test_project_profile_comes_before_the_collections(tmp_path: Path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/scipion-3.yml").write_text("description: ours\ngpu: false\n")
    folders = profile_lookup.profile_folders(str(tmp_path))
    assert profile_lookup.load_profile("scipion-3", folders, {}) == {
        "description": "ours", "gpu": False, "profile_name": "scipion-3"}
    assert profile_lookup.load_profile("scipion-1.1", folders, {})["description"] == shipped("scipion-1.1")["description"]


def test_unknown_profile_names_the_known_ones_and_where_they_were_looked_for(tmp_path: Path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/facility.yml").write_text("gpu: true\n")
    folders = profile_lookup.profile_folders(str(tmp_path))
    with pytest.raises(AnsibleLookupError) as error:
        profile_lookup.load_profile("scipion-9", folders, {})
    message = str(error.value)
    assert f"Unknown profile 'scipion-9': known profiles are {', '.join(sorted(['facility', *SHIPPED]))}" in message
    assert f"{tmp_path}/profiles and {PROJECT}/inventories/profiles" in message
    assert f"add {tmp_path}/profiles/scipion-9.yml" in message


def test_a_path_is_not_a_profile_name(tmp_path: Path):
    (tmp_path / "elsewhere.yml").write_text("gpu: true\n")
    with pytest.raises(AnsibleLookupError, match="Unknown profile '../elsewhere'"):
        profile_lookup.load_profile("../elsewhere", profile_lookup.profile_folders(str(tmp_path / "project")), {})


@pytest.mark.parametrize("text, kind", [("- a list\n", "list"), ("", "NoneType")])
def test_a_profile_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str, kind: str):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles/odd.yml").write_text(text)
    with pytest.raises(AnsibleLookupError, match=f"profiles/odd.yml must be a mapping of variables, not {kind}"):
        profile_lookup.load_profile("odd", profile_lookup.profile_folders(str(tmp_path)), {})


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    course_project_dir: "{{ project }}"
  tasks:
    - name: Write what the lookup returns
      ansible.builtin.copy:
        dest: "{{ result }}"
        mode: "0600"
        content: >-
          {{ {'known': query('i2pc.scipion_cloud.profile'),
              'plain': lookup('i2pc.scipion_cloud.profile', 'scipion-3', profile_vars={}),
              'from_variable': lookup('i2pc.scipion_cloud.profile', 'scipion-3'),
              'given': lookup('i2pc.scipion_cloud.profile', 'scipion-3', profile_vars={'gpu': true}),
              'facility': lookup('i2pc.scipion_cloud.profile', 'facility')} | to_json }}
"""


def test_lookup_in_a_play_merges_profile_vars_and_reads_the_project(run_playbook, tmp_path: Path):
    project = tmp_path / "project"
    (project / "profiles").mkdir(parents=True)
    (project / "profiles/facility.yml").write_text("description: our image\ngpu: true\n")
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    result_file = tmp_path / "result.json"
    overrides = {"gpu": False, "nvidia_driver_branch": "{{ '5' ~ '35' }}"}
    result = run_playbook(str(playbook), "-e", f"project={project}", "-e", f"result={result_file}",
                          "-e", json.dumps({"profile_vars": overrides}))
    assert result.returncode == 0, result.stdout[-3000:]
    found = json.loads(result_file.read_text())
    assert found["known"] == sorted(["facility", *SHIPPED])
    assert found["plain"] == {**shipped("scipion-3"), "profile_name": "scipion-3"}
    # profile_vars is read from the variables (templated), and a profile_vars given in the call wins.
    assert found["from_variable"] == {**shipped("scipion-3"), "gpu": False, "nvidia_driver_branch": "535",
                                      "profile_name": "scipion-3"}
    assert found["given"]["gpu"] is True and found["given"]["nvidia_driver_branch"] == shipped("scipion-3")["nvidia_driver_branch"]
    assert found["facility"] == {"description": "our image", "gpu": False, "nvidia_driver_branch": "535",
                                 "profile_name": "facility"}


def test_unknown_profile_in_a_play_fails_with_the_known_ones(run_playbook, tmp_path: Path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.replace("'facility'", "'scipion-9'"))
    result = run_playbook(str(playbook), "-e", f"project={tmp_path}", "-e", f"result={tmp_path / 'result.json'}")
    assert result.returncode == 2
    assert re.search(r"Unknown profile 'scipion-9': known profiles are scipion-1\.1, scipion-3 \(the \.yml files of "
                     + re.escape(f"{tmp_path}/profiles and "), result.stdout), result.stdout[-3000:]
