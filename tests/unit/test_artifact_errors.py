"""The artifact role's failures say what went wrong and what to do; nothing half-fetched stays."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

CONTENT = b"stand-in runfile\n"
GOOD_SHA = hashlib.sha256(CONTENT).hexdigest()
BAD_SHA = "0" * 64


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "cuda_7.5.18_linux.run").write_bytes(CONTENT)
    return folder


def fetch(run_playbook, tmp_path: Path, items: list[dict], *extra: str):
    return run_playbook(
        "tests/playbooks/artifact_fetch.yml",
        "-e", json.dumps({"items": items, "cache": str(tmp_path / "cache")}), *extra,
    )


def flat(text: str) -> str:
    return " ".join(text.split())


def test_mirror_folder_fetch_then_cache_hit(run_playbook, tmp_path, mirror):
    item = {"name": "cuda_7.5.18_linux.run", "url": "https://vendor.invalid/x.run", "sha256": GOOD_SHA}
    first = fetch(run_playbook, tmp_path, [item], "-e", f"artifact_mirror={mirror}")
    assert first.returncode == 0, first.stdout
    assert (tmp_path / "cache/cuda_7.5.18_linux.run").read_bytes() == CONTENT
    (mirror / "cuda_7.5.18_linux.run").unlink()  # a cache hit must not need the source
    second = fetch(run_playbook, tmp_path, [item], "-e", f"artifact_mirror={mirror}")
    assert second.returncode == 0, second.stdout
    assert "changed=0" in second.stdout


def test_checksum_mismatch_names_both_checksums(run_playbook, tmp_path, mirror):
    item = {"name": "cuda_7.5.18_linux.run", "url": "https://vendor.invalid/x.run", "sha256": BAD_SHA}
    result = fetch(run_playbook, tmp_path, [item], "-e", f"artifact_mirror={mirror}")
    assert result.returncode == 2
    assert (f"Checksum mismatch for cuda_7.5.18_linux.run from file://{mirror}/cuda_7.5.18_linux.run: "
            f"expected sha256 {BAD_SHA}, got {GOOD_SHA}.") in flat(result.stdout)
    assert os.listdir(tmp_path / "cache") == []


def test_missing_file_names_the_mirror(run_playbook, tmp_path, mirror):
    item = {"name": "cuda_8.0.61_375.26_linux.run", "url": "https://vendor.invalid/y.run", "sha256": GOOD_SHA}
    result = fetch(run_playbook, tmp_path, [item], "-e", f"artifact_mirror={mirror}")
    assert result.returncode == 2
    assert (f"Not found: cuda_8.0.61_375.26_linux.run at file://{mirror}/cuda_8.0.61_375.26_linux.run "
            f"(artifact_mirror {mirror}). Put the file in the mirror") in flat(result.stdout)


def test_licence_gated_file_names_the_variable(run_playbook, tmp_path):
    item = {"name": "chimera-1.10.1-linux_x86_64.bin", "sha256": GOOD_SHA, "supplied_by": "chimera_installer",
            "licence": "Download it from the UCSF Chimera site after accepting its licence"}
    result = fetch(run_playbook, tmp_path, [item])
    assert result.returncode == 2
    assert ("chimera-1.10.1-linux_x86_64.bin is licence-gated and cannot be downloaded automatically. "
            "Download it from the UCSF Chimera site after accepting its licence, then set "
            "-e chimera_installer=/path/on/the/controller/chimera-1.10.1-linux_x86_64.bin") in flat(result.stdout)


def test_licence_gated_file_supplied_by_the_operator(run_playbook, tmp_path, mirror):
    item = {"name": "chimera-1.10.1-linux_x86_64.bin", "sha256": GOOD_SHA, "supplied_by": "chimera_installer"}
    result = fetch(run_playbook, tmp_path, [item], "-e", f"chimera_installer={mirror}/cuda_7.5.18_linux.run")
    assert result.returncode == 0, result.stdout
    assert (tmp_path / "cache/chimera-1.10.1-linux_x86_64.bin").read_bytes() == CONTENT
