"""A profile entry with `sha256: null` (no confirmed checksum) is refused until the operator supplies one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

NAME = "turbovnc_2.1.1_amd64.deb"
CONTENT = b"stand-in .deb\n"
SHA = hashlib.sha256(CONTENT).hexdigest()
ITEM = {"name": NAME, "url": "https://vendor.invalid/turbovnc_2.1.1_amd64.deb/download", "sha256": None}


def fetch(run_playbook, tmp_path: Path, *extra: str):
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    (mirror / NAME).write_bytes(CONTENT)
    return run_playbook(
        "tests/playbooks/artifact_fetch.yml",
        "-e", json.dumps({"items": [ITEM], "cache": str(tmp_path / "cache")}),
        "-e", f"artifact_mirror={mirror}", *extra,
    )


def test_null_checksum_is_refused_with_the_way_out(run_playbook, tmp_path):
    result = fetch(run_playbook, tmp_path)
    assert result.returncode == 2, result.stdout
    text = " ".join(result.stdout.split())
    assert f"The profile declares no sha256 for {NAME}" in text
    assert f'{{"artifact_sha256": {{"{NAME}": "SHA256"}}}}' in text
    assert not (tmp_path / "cache" / NAME).exists()


def test_operator_checksum_fetches_and_is_enforced(run_playbook, tmp_path):
    good = fetch(run_playbook, tmp_path, "-e", json.dumps({"artifact_sha256": {NAME: SHA}}))
    assert good.returncode == 0, good.stdout
    assert (tmp_path / "cache" / NAME).read_bytes() == CONTENT

    (tmp_path / "cache" / NAME).unlink()
    bad = fetch(run_playbook, tmp_path, "-e", json.dumps({"artifact_sha256": {NAME: "0" * 64}}))
    assert bad.returncode == 2
    assert f"expected sha256 {'0' * 64}, got {SHA}" in " ".join(bad.stdout.split())
