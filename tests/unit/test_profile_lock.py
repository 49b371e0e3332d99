"""profile_lock lookup: the artifact lock of a profile lives beside the profile the profile lookup loads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT / "collections"))

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible_collections.i2pc.scipion_cloud.plugins.lookup import profile_lock  # noqa: E402


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A user's project and a collection, each with a profiles folder; the lookup searches them in that order."""
    project, collection = tmp_path / "project", tmp_path / "collection"
    (project / "profiles").mkdir(parents=True)
    (collection / "inventories/profiles").mkdir(parents=True)
    (collection / "inventories/profiles/shipped.yml").write_text("---\n{}\n")
    monkeypatch.setattr(profile_lock, "profile_folders",
                        lambda project_dir: [str(Path(project_dir) / "profiles"), str(collection / "inventories/profiles")])
    return project, collection


def test_the_project_profile_has_its_lock_in_the_project(folders) -> None:
    project, _ = folders
    (project / "profiles/shipped.yml").write_text("---\n{}\n")
    for record in (False, True):
        assert profile_lock.lock_path("shipped", str(project), record) == str(project / "profiles/shipped.lock.json")


def test_a_checkout_records_the_shipped_profile_into_its_own_folder(folders) -> None:
    project, collection = folders
    (collection / "galaxy.yml").write_text("namespace: i2pc\n")
    for record in (False, True):
        assert profile_lock.lock_path("shipped", str(project), record) == \
            str(collection / "inventories/profiles/shipped.lock.json")


def test_an_installed_collection_is_read_but_never_recorded_into(folders) -> None:
    project, collection = folders
    (collection / "MANIFEST.json").write_text("{}\n")
    (collection / "inventories/profiles/shipped.lock.json").write_text('{"version": 1, "artifacts": {}}\n')
    shipped_lock = collection / "inventories/profiles/shipped.lock.json"
    assert profile_lock.lock_path("shipped", str(project), False) == str(shipped_lock)
    with pytest.raises(AnsibleLookupError) as error:
        profile_lock.lock_path("shipped", str(project), True)
    message = str(error.value)
    assert f"would write the checksums of profile shipped into {shipped_lock}, inside the installed collection" in message
    assert (f"mkdir -p {project}/profiles && cp {collection}/inventories/profiles/shipped.yml {project}/profiles/ "
            f"&& cp {shipped_lock} {project}/profiles/, then run again") in message
    assert f"the profile's lock is then {project}/profiles/shipped.lock.json" in message
    assert "Or give -e artifact_lock_file=PATH" in message
