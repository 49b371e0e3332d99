"""The artifact lock: record the checksums of files without a published sha256 once, verify every
later run against them unattended, refuse a file that changed, under ansible-core 2.19 and 2.15.

The files are stand-ins with the 2018 profile's names, served from a mirror folder in tmp_path;
the machines are local hosts (several at once, to record concurrently into one lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
LEGACY_PLAYBOOK = PROJECT / ".venv-legacy/bin/ansible-playbook"
MAIN_SITE_PACKAGES = PROJECT / ".venv/lib/python3.11/site-packages"
PLAYBOOK = "tests/playbooks/artifact_lock.yml"

# sha256 null in the profile: no published checksum.
UNPUBLISHED = ["turbovnc_2.1.1_amd64.deb", "noVNC-1.0.0.tar.gz"]
PUBLISHED = "cuda_7.5.18_linux.run"


def standin_content(name: str) -> bytes:
    return f"stand-in {name}\n".encode()


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def items(published_sha256: str | None = None) -> list[dict]:
    unpublished = [{"name": name, "url": f"https://vendor.invalid/{name}/download", "sha256": None} for name in UNPUBLISHED]
    published = {"name": PUBLISHED, "url": f"https://vendor.invalid/{PUBLISHED}",
                 "sha256": published_sha256 or sha256_of(standin_content(PUBLISHED))}
    return [published, *unpublished]


def flat(text: str) -> str:
    return " ".join(text.split())


def recap(stdout: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counts per host."""
    counts = {}
    for host, fields in re.findall(r"^(\S+)\s+: (ok=.*)$", stdout, re.M):
        counts[host] = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", fields)}
    return counts


class Site:
    """A mirror of stand-ins, a lock path, per-host caches and an inventory of local hosts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mirror = root / "mirror"
        self.mirror.mkdir()
        for name in [PUBLISHED, *UNPUBLISHED]:
            (self.mirror / name).write_bytes(standin_content(name))
        self.lock = root / "profiles" / "standin.lock.json"
        self.lock.parent.mkdir()
        self.cache = root / "cache"
        self.inventory = root / "inventory.yml"
        hosts = {f"seat{n}": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
                 for n in (1, 2, 3)}
        self.inventory.write_text(json.dumps({"seats": {"hosts": hosts}}))

    def extra(self, entries: list[dict]) -> str:
        return json.dumps({"items": entries, "cache": str(self.cache), "mirror": str(self.mirror), "lock": str(self.lock)})

    def clear_caches(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)

    def lock_entries(self) -> dict:
        return json.loads(self.lock.read_text())["artifacts"]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def run_lock(run_playbook, site: Site, *extra: str, entries: list[dict] | None = None, seats: bool = False):
    hosts = ["-i", str(site.inventory), "-e", "lock_hosts=seats"] if seats else []
    return run_playbook(PLAYBOOK, *hosts, "-e", site.extra(entries or items()), *extra)


def run_legacy(site: Site, *extra: str) -> subprocess.CompletedProcess[str]:
    """The same playbook with the legacy runner (ansible-core 2.15); bundled collections from the main venv."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_COLLECTIONS_PATH=f"{PROJECT / 'collections'}:{MAIN_SITE_PACKAGES}")
    return subprocess.run([str(LEGACY_PLAYBOOK), PLAYBOOK, "-e", site.extra(items()), *extra], cwd=PROJECT, env=env,
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)


def test_record_standins_from_three_hosts_at_once(run_playbook, site):
    result = run_lock(run_playbook, site, "-e", "artifact_lock=record", seats=True)
    assert result.returncode == 0, result.stdout[-3000:]

    entries = site.lock_entries()
    assert sorted(entries) == sorted(UNPUBLISHED)  # the published checksum stays in the profile only
    for name in UNPUBLISHED:
        content = standin_content(name)
        assert entries[name]["sha256"] == sha256_of(content)
        assert entries[name]["size"] == len(content)
        assert entries[name]["source"] == f"file://{site.mirror}/{name}"
        assert entries[name]["url"] == f"https://vendor.invalid/{name}/download"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entries[name]["recorded"])
        for seat in ("seat1", "seat2", "seat3"):
            assert (site.cache / seat / name).read_bytes() == content
    text = site.lock.read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert sorted(os.listdir(site.lock.parent)) == ["standin.lock.json"]

    again = run_lock(run_playbook, site, "-e", "artifact_lock=record", seats=True)
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values()), again.stdout[-1500:]
    assert site.lock.read_text() == text


def test_record_verifies_a_published_standin_against_the_profile_not_the_lock(run_playbook, site):
    real = sha256_of(standin_content(PUBLISHED))
    site.lock.write_text(json.dumps({"version": 1, "artifacts": {PUBLISHED: {"sha256": "0" * 64, "size": 1}}}))
    accepted = run_lock(run_playbook, site, "-e", "artifact_lock=record")
    assert accepted.returncode == 0, accepted.stdout[-3000:]
    assert site.lock_entries()[PUBLISHED]["sha256"] == "0" * 64  # an entry is never rewritten

    site.clear_caches()
    site.lock.write_text(json.dumps({"version": 1, "artifacts": {PUBLISHED: {"sha256": real, "size": 1}}}))
    refused = run_lock(run_playbook, site, "-e", "artifact_lock=record", entries=items(published_sha256="1" * 64))
    assert refused.returncode == 2
    assert (f"Checksum mismatch for {PUBLISHED} from file://{site.mirror}/{PUBLISHED}: expected sha256 {'1' * 64}, "
            f"got {real}.") in flat(refused.stdout)
    assert not (site.cache / "localhost" / PUBLISHED).exists()


def test_verify_takes_standin_checksums_from_the_lock_unattended(run_playbook, site):
    recorded = run_lock(run_playbook, site, "-e", "artifact_lock=record")
    assert recorded.returncode == 0, recorded.stdout[-3000:]
    lock_text = site.lock.read_text()

    cached = run_lock(run_playbook, site)
    assert cached.returncode == 0, cached.stdout[-3000:]
    assert recap(cached.stdout)["localhost"]["changed"] == 0

    site.clear_caches()
    fetched = run_lock(run_playbook, site)
    assert fetched.returncode == 0, fetched.stdout[-3000:]
    for name in UNPUBLISHED:
        assert (site.cache / "localhost" / name).read_bytes() == standin_content(name)
    assert site.lock.read_text() == lock_text


def test_tampered_standin_is_refused_naming_both_checksums(run_playbook, site):
    recorded = run_lock(run_playbook, site, "-e", "artifact_lock=record")
    assert recorded.returncode == 0, recorded.stdout[-3000:]
    lock_text = site.lock.read_text()
    name = UNPUBLISHED[0]
    (site.mirror / name).write_bytes(b"stand-in, republished upstream\n")
    site.clear_caches()

    for mode in ("verify", "record"):
        result = run_lock(run_playbook, site, "-e", f"artifact_lock={mode}")
        assert result.returncode == 2, result.stdout[-3000:]
        text = flat(result.stdout)
        assert (f"Checksum mismatch for {name} from file://{site.mirror}/{name}: the lock {site.lock} recorded sha256 "
                f"{sha256_of(standin_content(name))}") in text
        assert f"the file found has sha256 {sha256_of(b'stand-in, republished upstream' + bytes([10]))}" in text
        assert f'delete the entry "{name}" from {site.lock} and run again with -e artifact_lock=record' in text
        assert not (site.cache / "localhost" / name).exists()
        assert site.lock.read_text() == lock_text


def test_no_lock_and_no_checksum_is_refused_naming_record(run_playbook, site):
    item = items()[1]
    result = run_playbook("tests/playbooks/artifact_fetch.yml", "-e",
                          json.dumps({"items": [item], "cache": str(site.cache)}), "-e", f"artifact_mirror={site.mirror}")
    assert result.returncode == 2
    text = flat(result.stdout)
    assert f"The profile declares no sha256 for {item['name']}" in text
    assert "Unattended: run once with -e artifact_lock=record -e artifact_lock_file=/path/to/PROFILE.lock.json" in text

    unrecorded = run_lock(run_playbook, site)
    assert unrecorded.returncode == 2
    assert (f"The profile declares no sha256 for {item['name']} (sha256: null: the published checksum is not known), "
            f"and the lock {site.lock} has no entry for it. Unattended: run once with -e artifact_lock=record to record") \
        in flat(unrecorded.stdout)
    assert not site.lock.exists()

    no_file = run_playbook("tests/playbooks/artifact_fetch.yml", "-e",
                           json.dumps({"items": [item], "cache": str(site.cache)}), "-e", "artifact_lock=record")
    assert no_file.returncode == 2
    assert "artifact_lock=record writes the checksums it records into a lock file, and artifact_lock_file is not set" \
        in flat(no_file.stdout)


def test_record_standins_fetched_on_the_controller(run_playbook, site):
    controller_cache = site.root / "controller-cache"
    result = run_lock(run_playbook, site, "-e", "artifact_lock=record", "-e", "artifact_fetch_on=controller",
                      "-e", f"artifact_controller_cache_dir={controller_cache}")
    assert result.returncode == 0, result.stdout[-3000:]
    entries = site.lock_entries()
    for name in UNPUBLISHED:
        assert entries[name]["sha256"] == sha256_of(standin_content(name))
        assert (controller_cache / name).read_bytes() == standin_content(name)
        assert (site.cache / "localhost" / name).read_bytes() == standin_content(name)


def test_a_project_profile_keeps_its_lock_beside_it_in_the_project(run_playbook, site):
    """A profile of the user's project folder (profiles/NAME.yml) records into and verifies from
    profiles/NAME.lock.json of that folder, never the collection's inventories/profiles/."""
    project = site.root / "project"
    (project / "profiles").mkdir(parents=True)
    (project / "profiles" / "standin.yml").write_text("---\nprofile_description: stand-in\n")
    lock = project / "profiles" / "standin.lock.json"
    extra = json.dumps({"items": items(), "cache": str(site.cache), "mirror": str(site.mirror),
                        "lock_profile": "standin", "course_project_dir": str(project)})

    recorded = run_playbook(PLAYBOOK, "-e", extra, "-e", "artifact_lock=record")
    assert recorded.returncode == 0, recorded.stdout[-3000:]
    entries = json.loads(lock.read_text())["artifacts"]
    assert {name: entry["sha256"] for name, entry in entries.items()} == \
        {name: sha256_of(standin_content(name)) for name in UNPUBLISHED}
    assert not (PROJECT / "inventories/profiles/standin.lock.json").exists()

    site.clear_caches()
    (site.mirror / UNPUBLISHED[0]).write_bytes(b"stand-in, republished upstream\n")
    refused = run_playbook(PLAYBOOK, "-e", extra)
    assert refused.returncode == 2
    assert f"the lock {lock} recorded sha256 {sha256_of(standin_content(UNPUBLISHED[0]))}" in flat(refused.stdout)


@pytest.mark.skipif(not LEGACY_PLAYBOOK.exists(), reason="no legacy runner: make legacy-runner")
def test_legacy_runner_records_and_verifies_standins(site):
    assert "[core 2.15." in subprocess.run([str(LEGACY_PLAYBOOK), "--version"], text=True, stdout=subprocess.PIPE).stdout
    recorded = run_legacy(site, "-e", "artifact_lock=record")
    assert recorded.returncode == 0, recorded.stdout[-3000:]
    entries = site.lock_entries()
    assert {name: (entry["sha256"], entry["size"]) for name, entry in entries.items()} == \
        {name: (sha256_of(standin_content(name)), len(standin_content(name))) for name in UNPUBLISHED}
    site.clear_caches()

    verified = run_legacy(site)
    assert verified.returncode == 0, verified.stdout[-3000:]
    for name in UNPUBLISHED:
        assert (site.cache / "localhost" / name).read_bytes() == standin_content(name)
    again = run_legacy(site)
    assert again.returncode == 0, again.stdout[-3000:]
    assert recap(again.stdout)["localhost"]["changed"] == 0
    assert site.lock_entries() == entries
