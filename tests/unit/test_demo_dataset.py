"""The demo course's synthetic dataset: reproducible, pinned by the course file, real formats."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import struct
import tarfile
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("demo_dataset", PROJECT / "scripts/demo_dataset.py")
demo_dataset = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_dataset)


def members() -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(demo_dataset.archive()), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_archive_is_reproducible_and_pinned_by_the_demo_course(tmp_path):
    assert demo_dataset.main(["--out", str(tmp_path)]) == 0
    first = (tmp_path / "demo_micrographs.tgz").read_bytes()
    assert first == demo_dataset.archive()
    course = yaml.safe_load((PROJECT / "inventories/courses/demo.yml").read_text())
    (declared,) = course["profile_vars"]["course_data_datasets"]
    assert declared["archive"]["name"] == "demo_micrographs.tgz"
    assert declared["archive"]["sha256"] == hashlib.sha256(first).hexdigest()


def test_manifest_lists_every_file_with_its_md5():
    files = members()
    manifest = files.pop("demo_micrographs/MANIFEST").decode().splitlines()
    listed = dict(line.rsplit(" ", 1) for line in manifest)
    assert listed == {name.removeprefix("demo_micrographs/"): hashlib.md5(data).hexdigest() for name, data in files.items()}
    assert len([n for n in listed if n.endswith(".mrc")]) == 4


def test_micrographs_are_mrc2014_float_images():
    data = members()["demo_micrographs/Micrographs/mic_0001.mrc"]
    nx, ny, nz, mode = struct.unpack_from("<4i", data, 0)
    assert (nx, ny, nz, mode) == (256, 256, 1, 2)
    assert data[208:212] == b"MAP " and data[104:108] == b"MRCO"
    assert struct.unpack_from("<i", data, 108)[0] == 20140
    assert len(data) == 1024 + 256 * 256 * 4
    dmin, dmax, dmean = struct.unpack_from("<3f", data, 76)
    assert dmin < dmean < dmax


def test_coordinates_are_relion_star_files_inside_the_images():
    star = members()["demo_micrographs/Coordinates/mic_0001_autopick.star"].decode()
    assert "_rlnCoordinateX #1" in star and "_rlnCoordinateY #2" in star
    rows = [tuple(map(int, line.split())) for line in star.splitlines() if line[:1].isdigit()]
    assert len(rows) == 12 and all(0 < x < 256 and 0 < y < 256 for x, y in rows)
