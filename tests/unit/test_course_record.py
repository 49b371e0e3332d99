"""The course's record of what it created (module_utils/course_record.py, modules/course_resources.py, lookup/course_record.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.module_utils import course_record as rec  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.modules import course_resources  # noqa: E402


def add(path: Path, **ids: list[str]) -> tuple[dict, bool]:
    return rec.update_record(str(path), "madrid", "aws", "eu-west-1", lambda entry: rec.apply_change(entry, add=ids))


def test_first_change_creates_a_private_record_in_a_private_folder(tmp_path: Path) -> None:
    path = tmp_path / "output" / "madrid" / "resources.json"
    record, changed = add(path, instances=["i-1", "i-2", "i-1"])
    assert changed and record == {"version": 1, "course": "madrid", "aws": {"eu-west-1": {"instances": ["i-1", "i-2"]}}}
    assert json.loads(path.read_text()) == record
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["resources.json", "resources.json.lock"], "no temporary file left"


def test_recording_nothing_creates_no_record(tmp_path: Path) -> None:
    """An empty record would read as 'the course has a record' and lift the refusal of a course without one."""
    path = tmp_path / "resources.json"
    record, changed = add(path, instances=[])
    assert not changed and not path.exists() and record == {"version": 1, "course": "madrid"}
    _, changed = rec.update_record(str(path), "madrid", "aws", "eu-west-1",
                                   lambda entry: rec.apply_change(entry, remove={"instances": ["i-1"]},
                                                                  set_values={"security_group": None}))
    assert not changed and not path.exists()


def test_same_change_twice_is_no_change(tmp_path: Path) -> None:
    path = tmp_path / "resources.json"
    add(path, instances=["i-1"])
    before = path.stat().st_mtime_ns
    _, changed = add(path, instances=["i-1"])
    assert not changed and path.stat().st_mtime_ns == before


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out" / "resources.json"
    record, changed = rec.update_record(str(path), "madrid", "aws", "eu-west-1",
                                        lambda entry: rec.apply_change(entry, add={"instances": ["i-1"]}), check_mode=True)
    assert changed and record["aws"]["eu-west-1"]["instances"] == ["i-1"]
    assert not (tmp_path / "out").exists()


def test_set_and_remove_keep_other_regions(tmp_path: Path) -> None:
    path = tmp_path / "resources.json"
    add(path, instances=["i-1"], addresses=["eipalloc-1"])
    rec.update_record(str(path), "madrid", "aws", "eu-central-1",
                      lambda entry: rec.apply_change(entry, set_values={"security_group": {"name": "madrid-sg", "id": "sg-1"}}))
    record, changed = rec.update_record(str(path), "madrid", "aws", "eu-west-1",
                                        lambda entry: rec.apply_change(entry, remove={"instances": ["i-1"]}))
    assert changed
    assert record["aws"] == {"eu-west-1": {"instances": [], "addresses": ["eipalloc-1"]},
                             "eu-central-1": {"security_group": {"name": "madrid-sg", "id": "sg-1"}}}


def test_parallel_changes_are_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "resources.json"
    threads = [threading.Thread(target=add, args=(path,), kwargs={"instances": [f"i-{n}"]}) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(json.loads(path.read_text())["aws"]["eu-west-1"]["instances"]) == sorted(f"i-{n}" for n in range(24))


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", "is not valid JSON"),
    ('{"version": 2, "course": "madrid"}', "is not a version 1 course record"),
    ('{"version": 1, "course": "other"}', "is the record of course 'other', not of 'madrid'"),
])
def test_a_broken_record_is_refused_with_what_to_do(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "resources.json"
    path.write_text(text)
    with pytest.raises(rec.RecordError) as error:
        rec.read_record(str(path), "madrid")
    assert expected in str(error.value) and "-e course_adopt=all" in str(error.value)


@pytest.mark.parametrize(("value", "expected"), [
    (None, []), ("", []), ("all", ["all"]), (" i-1, i-2 ,,i-1", ["i-1", "i-2"]), (["i-1", "i-1", " i-3"], ["i-1", "i-3"]),
])
def test_parse_adopt(value: object, expected: list[str]) -> None:
    assert rec.parse_adopt(value) == expected


FOUND = [{"id": "s-1", "name": "c-01"}, {"id": "s-2", "name": "c-02"}, {"id": "s-3", "name": "c-02"}, {"id": "s-4", "name": "x"}]


def test_owned_are_recorded_adopted_or_claimed_once() -> None:
    split = rec.owned_and_foreign(FOUND, recorded=["s-1", "s-9"], adopt=["s-4"], claimable_names=["c-02"])
    assert [i["id"] for i in split["owned"]] == ["s-1", "s-2", "s-4"]
    assert [i["id"] for i in split["adopted"]] == ["s-4"] and [i["id"] for i in split["claimed"]] == ["s-2"]
    assert [i["id"] for i in split["foreign"]] == ["s-3"], "a claim is one server per pending name"
    every = rec.owned_and_foreign(FOUND, recorded=[], adopt=["all"])
    assert [i["id"] for i in every["adopted"]] == ["s-1", "s-2", "s-3", "s-4"] and every["foreign"] == []


def test_messages_name_the_machines_and_the_way_out() -> None:
    items = FOUND[:2]
    refusal = rec.unrecorded_refusal("madrid", "/o/madrid/resources.json", "region eu-west-1", "machine", items)
    assert "Course madrid has no record of what it created (/o/madrid/resources.json does not exist" in refusal
    assert "2 machine(s) in region eu-west-1 are tagged with it: s-1 (c-01), s-2 (c-02)" in refusal
    assert "-e course_adopt=all" in refusal and "-e course_adopt=s-1,s-2" in refusal and "nothing was changed" in refusal
    notice = rec.foreign_notice("madrid", "/o/r.json", "cloud x", "server", items[:1])
    assert notice == ("Left alone: 1 server(s) in cloud x tagged with course madrid that the course did not create "
                      "(not in /o/r.json): s-1 (c-01). If they are the course's, adopt them with -e course_adopt=s-1.")


def sort(tmp_path: Path, exists: bool, **changes: object) -> dict:
    params = {"course": "c", "provider": "openstack", "scope": "site", "found": {"s-1": "c-01", "s-2": "c-02"},
              "list_key": "servers", "claim_key": "pending_servers", "adopt": None, "kind": "server", "where": "cloud x",
              **changes}
    entry = {"servers": ["s-1"], "pending_servers": ["c-02"]} if exists else {}
    return course_resources.sort_found(params, entry, exists, str(tmp_path / "resources.json"))


def test_resources_module_refuses_only_a_course_without_any_record(tmp_path: Path) -> None:
    with_record = sort(tmp_path, exists=True)
    assert [i["id"] for i in with_record["owned"]] == ["s-1", "s-2"] and with_record["refusal"] == ""
    without = sort(tmp_path, exists=False)
    assert without["owned"] == [] and "has no record of what it created" in without["refusal"]
    assert "s-1 (c-01), s-2 (c-02)" in without["refusal"]
    adopted = sort(tmp_path, exists=False, adopt="all")
    assert adopted["refusal"] == "" and [i["id"] for i in adopted["adopted"]] == ["s-1", "s-2"]


def read_with_lookup(path: Path, course: str = "madrid") -> subprocess.CompletedProcess:
    """lookup('i2pc.scipion_cloud.course_record') in a real ansible run on the controller."""
    expression = (f"{{{{ lookup('i2pc.scipion_cloud.course_record', '{path}', course='{course}', provider='aws', "
                  "scope='eu-west-1') }}")
    return subprocess.run([str(Path(sys.executable).parent / "ansible"), "localhost", "-m", "ansible.builtin.debug",
                           "-a", f"msg={expression}"],
                          cwd=PROJECT, capture_output=True, text=True, check=False,
                          env={**os.environ, "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")})


def message(run: subprocess.CompletedProcess) -> dict:
    """The debug message of a one-line ad-hoc result: localhost | SUCCESS => {...}."""
    return json.loads(run.stdout.split("=> ", 1)[1])["msg"]


def test_lookup_reads_the_record_and_the_entry_of_its_scope_as_the_module_does(tmp_path: Path) -> None:
    path = tmp_path / "resources.json"
    missing = read_with_lookup(path)
    assert missing.returncode == 0, missing.stdout + missing.stderr
    assert message(missing) == {
        "exists": False, "record": {"version": 1, "course": "madrid"}, "entry": {}}
    add(path, instances=["i-1"])
    rec.update_record(str(path), "madrid", "aws", "us-east-1", lambda entry: rec.apply_change(entry, add={"instances": ["i-2"]}))
    found = read_with_lookup(path)
    assert message(found) == {"exists": True, "record": rec.read_record(str(path), "madrid"), "entry": {"instances": ["i-1"]}}


def test_lookup_refuses_another_courses_record_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "resources.json"
    add(path, instances=["i-1"])
    refused = read_with_lookup(path, course="other")
    assert refused.returncode != 0
    assert "is the record of course 'madrid', not of 'other'" in refused.stdout + refused.stderr
