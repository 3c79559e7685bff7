"""The bundled samples are reproducible: the script rebuilds them byte for byte from the full data."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO

from tocha.data.registry import BUNDLED_DIR


def test_build_script_reproduces_the_bundled_files(tmp_path, shared_data):
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_samples.py"), "--source", str(shared_data),
                    "--out", str(tmp_path)], check=True, capture_output=True)  # fmt: skip
    built = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.gz"))
    shipped = sorted(p.relative_to(BUNDLED_DIR) for p in BUNDLED_DIR.rglob("*.gz"))
    assert built == shipped and len(built) == 8
    for rel in built:
        assert (tmp_path / rel).read_bytes() == (BUNDLED_DIR / rel).read_bytes(), rel
    assert (BUNDLED_DIR / "fashion-mnist-sample" / "LICENSE").is_file()
    assert (BUNDLED_DIR / "mnist-sample" / "LICENSE").is_file()


def test_data_samples_writes_the_official_test_images_pixel_for_pixel(shared_data, tmp_path):
    """`tocha data samples DIR`: from the bundled samples, the same images as the PNGs of the
    official test split that ../shared/data/samples holds (named alike), in a fresh folder."""
    import numpy as np
    from helpers import run_main
    from PIL import Image

    done = run_main("data", "samples", tmp_path / "pngs")
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "pngs").iterdir())
    assert len(written) == 40 and written[0] == "fashionMNIST_00_9.png"
    for name in written:
        theirs = shared_data / "samples" / name
        assert theirs.is_file(), name  # the same index and label in the name
        assert np.array_equal(
            np.asarray(Image.open(tmp_path / "pngs" / name)), np.asarray(Image.open(theirs))
        )
    assert run_main("data", "samples", tmp_path / "x", "--count", "0").returncode == 2
