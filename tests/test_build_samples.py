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
