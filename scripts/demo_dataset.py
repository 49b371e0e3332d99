#!/usr/bin/env python3
"""Build the demo course's small dataset: demo_micrographs.tgz with a Scipion MANIFEST.

The real course datasets (relion13_tutorial, hundreds of MB) come from the course's own
URL or a site mirror. The `demo` course runs on the organiser's machine without either,
so this script synthesises a small dataset in the real formats: four 256 x 256 MRC
micrographs (MRC2014, mode 2, 1.77 A/px) of noise with Gaussian "particles", and one
RELION coordinates STAR file per micrograph listing the particle centres. The archive is
byte-for-byte reproducible (fixed seed, mtime and ordering), so the demo course file can
pin its sha256 like any other artifact.

    python scripts/demo_dataset.py --out DIR      # writes DIR/demo_micrographs.tgz, prints its sha256
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import math
import random
import struct
import sys
import tarfile
from array import array
from pathlib import Path

NAME = "demo_micrographs"
ARCHIVE = f"{NAME}.tgz"
SIZE = 256
MICROGRAPHS = 4
PARTICLES = 12
PIXEL_SIZE = 1.77
MTIME = 1514764800  # 2018-01-01, fixed so the archive's checksum never changes


def mrc(pixels: array, nx: int, ny: int) -> bytes:
    """An MRC2014 file (mode 2, float32, little-endian) holding one image."""
    values = list(pixels)
    mean = sum(values) / len(values)
    rms = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    header = struct.pack("<3i i 3i 3i 3f 3f 3i 3f 2i", nx, ny, 1, 2, 0, 0, 0, nx, ny, 1,
                         nx * PIXEL_SIZE, ny * PIXEL_SIZE, PIXEL_SIZE, 90.0, 90.0, 90.0, 1, 2, 3,
                         min(values), max(values), mean, 0, 0)
    header += bytes(8) + b"MRCO" + struct.pack("<i", 20140) + bytes(84)  # EXTRA, with EXTTYP and NVERSION
    header += struct.pack("<3f", 0.0, 0.0, 0.0) + b"MAP " + bytes([0x44, 0x44, 0, 0])
    header += struct.pack("<f i", rms, 1) + b"scipion_cloud demo micrograph".ljust(800, b" ")
    assert len(header) == 1024, len(header)
    return header + pixels.tobytes()


def micrograph(rng: random.Random) -> tuple[bytes, list[tuple[int, int]]]:
    pixels = array("f", (rng.gauss(0.0, 1.0) for _ in range(SIZE * SIZE)))
    centres = [(rng.randint(24, SIZE - 24), rng.randint(24, SIZE - 24)) for _ in range(PARTICLES)]
    for cx, cy in centres:
        for y in range(cy - 15, cy + 16):
            for x in range(cx - 15, cx + 16):
                pixels[y * SIZE + x] += 3.0 * math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 6.0 ** 2))
    return mrc(pixels, SIZE, SIZE), centres


def star(centres: list[tuple[int, int]]) -> bytes:
    rows = "".join(f"{x:d} {y:d}\n" for x, y in centres)
    return f"\ndata_\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n{rows}".encode()


def dataset_files() -> dict[str, bytes]:
    rng = random.Random(2018)
    files: dict[str, bytes] = {}
    for index in range(1, MICROGRAPHS + 1):
        image, centres = micrograph(rng)
        files[f"Micrographs/mic_{index:04d}.mrc"] = image
        files[f"Coordinates/mic_{index:04d}_autopick.star"] = star(centres)
    files["README"] = (f"{NAME}: {MICROGRAPHS} synthetic {SIZE}x{SIZE} micrographs at {PIXEL_SIZE} A/px with "
                       f"{PARTICLES} Gaussian particles each (coordinates in Coordinates/). Demo data, not a "
                       "real sample.\n").encode()
    return files


def archive() -> bytes:
    files = dataset_files()
    files["MANIFEST"] = "".join(f"{path} {hashlib.md5(data).hexdigest()}\n"
                                for path, data in sorted(files.items())).encode()
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.GNU_FORMAT) as tar:
        folders = sorted({str(Path(NAME, p).parent) for p in files} | {NAME})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
            tar.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{NAME}/{path}")
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, filename="") as gz:
        gz.write(tar_bytes.getvalue())
    return compressed.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write demo_micrographs.tgz into")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    data = archive()
    target = args.out / ARCHIVE
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    print(hashlib.sha256(data).hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
