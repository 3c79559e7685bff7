"""Build the small real subsets bundled inside tocha from verified full copies of the datasets.

    python scripts/build_samples.py --source ../shared/data

Takes the first N training and first M test images of MNIST and Fashion-MNIST (so test image i of
a sample is test image i of the official set), writes them as gzip IDX files with a fixed gzip
header (byte-identical on every run) and prints their content md5s for the dataset registry.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import struct
from pathlib import Path

from tocha.data.checksum import content_md5
from tocha.data.idx import read_idx
from tocha.data.registry import DATASETS

SAMPLES = ("mnist", "fashion-mnist")  # sizes and checksums: the registry's "<name>-sample" entries
OUT = Path(__file__).resolve().parents[1] / "src" / "tocha" / "data" / "bundled"


def idx_bytes(array) -> bytes:
    """Serialise a uint8 array as IDX: magic 0x00000800 + ndim, big-endian dims, payload."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=OUT, help="default: the package's bundled/ folder")
    args = parser.parse_args()
    for name in SAMPLES:
        spec = DATASETS[name]
        n_train, n_test = DATASETS[f"{name}-sample"].sizes
        out_dir = args.out / f"{name}-sample"
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in spec.files:
            src = args.source / name / (f.name + ".gz")
            if content_md5(src) != f.md5:
                raise SystemExit(f"{src}: checksum mismatch, refusing to build a sample from it")
            count = n_train if f.name.startswith("train") else n_test
            raw = idx_bytes(read_idx(src)[:count])
            # mtime=0 and no file name in the header: the .gz is the same bytes on every build.
            (out_dir / (f.name + ".gz")).write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
            print(f"{name}-sample {f.name} {count} items md5 {hashlib.md5(raw).hexdigest()}")


if __name__ == "__main__":
    main()
