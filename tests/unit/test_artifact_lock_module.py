"""artifact_lock: merging recorded checksums, stable text, atomic and concurrent writes of the lock file."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible_collections.i2pc.scipion_cloud.plugins.modules import artifact_lock  # noqa: E402

SHA_A = hashlib.sha256(b"stand-in a\n").hexdigest()
SHA_B = hashlib.sha256(b"stand-in b\n").hexdigest()
NOW = "2025-01-31T10:00:00Z"


def entry(name: str, sha256: str, size: int = 11, source: str = "file:///mirror/x") -> dict:
    return {"name": name, "sha256": sha256, "size": size, "url": f"https://vendor.invalid/{name}", "source": source}


def lock_with(**artifacts: dict) -> dict:
    return dict(artifact_lock.empty_lock(), artifacts=artifacts)


def test_merge_adds_a_new_entry_with_its_record() -> None:
    merged, added = artifact_lock.merge_entries(artifact_lock.empty_lock(), [entry("a.deb", SHA_A)], NOW, "/l.json")
    assert added == ["a.deb"]
    assert merged["artifacts"] == {"a.deb": {"sha256": SHA_A, "size": 11, "url": "https://vendor.invalid/a.deb",
                                             "source": "file:///mirror/x", "recorded": NOW}}


def test_merge_lowercases_the_checksum() -> None:
    merged, _ = artifact_lock.merge_entries(artifact_lock.empty_lock(), [entry("a.deb", SHA_A.upper())], NOW, "/l")
    assert merged["artifacts"]["a.deb"]["sha256"] == SHA_A


def test_merge_keeps_an_agreeing_entry_as_it_was() -> None:
    old = {"sha256": SHA_A, "size": 11, "url": "u", "source": "old mirror", "recorded": "2024-01-01T00:00:00Z"}
    lock = lock_with(**{"a.deb": old})
    merged, added = artifact_lock.merge_entries(lock, [entry("a.deb", SHA_A, source="new mirror")], NOW, "/l")
    assert added == []
    assert merged["artifacts"]["a.deb"] == old


def test_merge_refuses_to_overwrite_a_different_checksum_and_names_both() -> None:
    lock = lock_with(**{"a.deb": {"sha256": SHA_A, "size": 11, "recorded": "2024-01-01T00:00:00Z", "source": "m"}})
    with pytest.raises(artifact_lock.LockError) as error:
        artifact_lock.merge_entries(lock, [entry("a.deb", SHA_B, size=12)], NOW, "/p/scipion-1.1.lock.json")
    message = str(error.value)
    assert SHA_A in message and SHA_B in message
    assert 'delete the entry "a.deb" from /p/scipion-1.1.lock.json' in message
    assert "-e artifact_lock=record" in message


def test_merge_refuses_a_malformed_checksum() -> None:
    with pytest.raises(artifact_lock.LockError, match="is not an sha256"):
        artifact_lock.merge_entries(artifact_lock.empty_lock(), [entry("a.deb", "abc")], NOW, "/l")


def test_render_is_sorted_stable_and_ends_with_a_newline() -> None:
    lock = lock_with(**{"z.run": {"sha256": SHA_B, "size": 1}, "a.deb": {"size": 2, "sha256": SHA_A}})
    text = artifact_lock.render_lock(lock)
    assert text.endswith("}\n")
    assert text.index('"a.deb"') < text.index('"z.run"')
    assert text.index('"about"') < text.index('"artifacts"') < text.index('"version"')
    assert artifact_lock.render_lock(json.loads(text)) == text


@pytest.mark.parametrize(("text", "complaint"), [
    ("{not json", "is not valid JSON"),
    ('{"version": 1}', "has no 'artifacts' object"),
    ('{"version": 2, "artifacts": {}}', "has lock version 2"),
    ('{"version": 1, "artifacts": {"a.deb": {"sha256": "xyz"}}}', "the entry 'a.deb' has no valid sha256"),
])
def test_a_broken_lock_is_refused_with_the_way_out(text: str, complaint: str) -> None:
    with pytest.raises(artifact_lock.LockError) as error:
        artifact_lock.parse_lock(text, "/p/x.lock.json")
    assert complaint in str(error.value)
    assert "record again with -e artifact_lock=record" in str(error.value)


def test_a_missing_lock_reads_as_empty(tmp_path: Path) -> None:
    assert artifact_lock.read_lock(str(tmp_path / "none.lock.json"))["artifacts"] == {}


def test_write_atomically_replaces_keeps_the_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "x.lock.json"
    path.write_text("old\n")
    path.chmod(0o640)
    artifact_lock.write_atomically(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["x.lock.json"]


def test_write_atomically_leaves_the_old_file_when_the_write_fails(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "x.lock.json"
    path.write_text("old\n")

    def broken_replace(source: str, target: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(artifact_lock.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        artifact_lock.write_atomically(str(path), "new\n")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["x.lock.json"]


def test_record_writes_only_when_something_was_added(tmp_path: Path) -> None:
    path = str(tmp_path / "x.lock.json")
    _, after, added = artifact_lock.record(path, [entry("a.deb", SHA_A)], check_mode=False)
    assert added == ["a.deb"]
    written = Path(path).stat().st_mtime_ns
    first = Path(path).read_text()
    assert json.loads(first)["artifacts"] == after["artifacts"]
    _, _, added_again = artifact_lock.record(path, [entry("a.deb", SHA_A)], check_mode=False)
    assert added_again == []
    assert Path(path).read_text() == first and Path(path).stat().st_mtime_ns == written


def test_record_in_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.lock.json"
    _, after, added = artifact_lock.record(str(path), [entry("a.deb", SHA_A)], check_mode=True)
    assert added == ["a.deb"] and "a.deb" in after["artifacts"]
    assert not path.exists()


def _record_one(path: str, index: int) -> None:
    sha256 = hashlib.sha256(f"stand-in {index}\n".encode()).hexdigest()
    artifact_lock.record(path, [entry(f"f{index:02d}.deb", sha256), entry("shared.deb", SHA_A)], check_mode=False)


def test_concurrent_recorders_lose_no_entry(tmp_path: Path) -> None:
    path = str(tmp_path / "x.lock.json")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pool.starmap(_record_one, [(path, index) for index in range(24)])
    artifacts = json.loads(Path(path).read_text())["artifacts"]
    assert sorted(artifacts) == sorted([f"f{index:02d}.deb" for index in range(24)] + ["shared.deb"])
    assert artifacts["f07.deb"]["sha256"] == hashlib.sha256(b"stand-in 7\n").hexdigest()
    assert os.listdir(tmp_path) == ["x.lock.json"]
