"""IDX reader: files written here byte by byte (raw and gzipped), good and broken."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tocha.data.idx import parse_idx, read_idx, read_idx_pair
from tocha.errors import TochaError


def idx_bytes(array: np.ndarray, dtype_byte: int = 0x08, dims: tuple[int, ...] | None = None) -> bytes:
    """IDX encoding of `array`: magic 0 0 TYPE NDIM, big-endian uint32 dims, raw payload."""
    dims = array.shape if dims is None else dims
    header = struct.pack(">BBBB", 0, 0, dtype_byte, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, **kwargs: object) -> Path:
    raw = idx_bytes(array, **kwargs)  # type: ignore[arg-type]
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_returns_exact_array(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    images = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)  # non-square: catches H/W swaps
    path = write_idx(tmp_path / f"images-idx3-ubyte{suffix}", images)
    out = read_idx(path)
    assert out.dtype == np.uint8
    assert out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_pair_shapes_and_values(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    images = rng.integers(0, 256, size=(6, 4, 9), dtype=np.uint8)
    labels = rng.integers(0, 10, size=6, dtype=np.uint8)
    img_path = write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    lbl_path = write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    out_images, out_labels = read_idx_pair(img_path, lbl_path)
    assert out_images.shape == (6, 1, 4, 9)
    assert out_labels.shape == (6,)
    np.testing.assert_array_equal(out_images[:, 0], images)
    np.testing.assert_array_equal(out_labels, labels)


def test_gz_and_raw_give_the_same_array(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(0, 256, size=(3, 2, 2), dtype=np.uint8)
    raw = read_idx(write_idx(tmp_path / "a-idx3-ubyte", data))
    gz = read_idx(write_idx(tmp_path / "a-idx3-ubyte.gz", data))
    np.testing.assert_array_equal(raw, gz)


def test_wrong_magic_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad-magic-idx3-ubyte"
    good = idx_bytes(np.zeros((2, 2, 2), np.uint8))
    path.write_bytes(b"\x01" + good[1:])
    with pytest.raises(TochaError, match="bad-magic-idx3-ubyte"):
        read_idx(path)


@pytest.mark.parametrize("dtype_byte", [0x09, 0x0B, 0x0C, 0x0D, 0x0E])  # every non-ubyte IDX type
def test_wrong_dtype_byte_names_the_file(tmp_path: Path, dtype_byte: int) -> None:
    path = write_idx(tmp_path / "float-idx3-ubyte", np.zeros((2, 2, 2), np.uint8), dtype_byte=dtype_byte)
    with pytest.raises(TochaError, match="float-idx3-ubyte"):
        read_idx(path)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_header_dims_larger_than_payload(tmp_path: Path, suffix: str) -> None:
    path = write_idx(tmp_path / f"short-idx3-ubyte{suffix}", np.zeros((2, 3, 3), np.uint8), dims=(3, 3, 3))
    with pytest.raises(TochaError, match="short-idx3-ubyte") as e:
        read_idx(path)
    assert "27" in str(e.value) and "18" in str(e.value)  # expected vs actual byte counts


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_payload_larger_than_header(tmp_path: Path, suffix: str) -> None:
    path = write_idx(tmp_path / f"long-idx3-ubyte{suffix}", np.zeros((4, 3, 3), np.uint8), dims=(3, 3, 3))
    with pytest.raises(TochaError, match="long-idx3-ubyte"):
        read_idx(path)


def test_header_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "cut-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", 5))  # 3 dims announced, 1 given
    with pytest.raises(TochaError, match="cut-idx3-ubyte"):
        read_idx(path)


def test_truncated_gzip_names_the_file(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(0, 256, size=(20, 8, 8), dtype=np.uint8)
    compressed = gzip.compress(idx_bytes(data))
    path = tmp_path / "trunc-idx3-ubyte.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(TochaError, match="trunc-idx3-ubyte.gz"):
        read_idx(path)


def test_gz_name_but_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "plain-idx3-ubyte.gz"
    path.write_bytes(idx_bytes(np.zeros((1, 2, 2), np.uint8)))
    with pytest.raises(TochaError, match="plain-idx3-ubyte.gz"):
        read_idx(path)


def test_missing_file_is_tocha_error(tmp_path: Path) -> None:
    with pytest.raises(TochaError, match="nothing-here"):
        read_idx(tmp_path / "nothing-here.gz")


def test_image_label_count_mismatch(tmp_path: Path) -> None:
    img = write_idx(tmp_path / "imgs-idx3-ubyte", np.zeros((5, 2, 2), np.uint8))
    lbl = write_idx(tmp_path / "lbls-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(TochaError, match="imgs-idx3-ubyte") as e:
        read_idx_pair(img, lbl)
    assert "lbls-idx1-ubyte" in str(e.value)
    assert "5" in str(e.value) and "4" in str(e.value)


def test_labels_file_with_two_dims(tmp_path: Path) -> None:
    img = write_idx(tmp_path / "imgs-idx3-ubyte", np.zeros((4, 2, 2), np.uint8))
    lbl = write_idx(tmp_path / "lbls2d-idx1-ubyte", np.zeros((4, 1), np.uint8))
    with pytest.raises(TochaError, match="lbls2d-idx1-ubyte"):
        read_idx_pair(img, lbl)


def test_images_file_with_wrong_dims(tmp_path: Path) -> None:
    img = write_idx(tmp_path / "imgs2d-idx3-ubyte", np.zeros((4, 4), np.uint8))
    lbl = write_idx(tmp_path / "lbls-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(TochaError, match="imgs2d-idx3-ubyte"):
        read_idx_pair(img, lbl)


def test_overflowing_header_dims_are_a_tocha_error() -> None:
    raw = bytes([0, 0, 8, 4]) + struct.pack(">4I", 65536, 65536, 65536, 65536)
    with pytest.raises(TochaError, match="overflow-idx"):
        parse_idx(raw, "overflow-idx")


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.one_of(
        st.binary(max_size=200),
        # A valid-looking magic makes the header/payload checks reachable, not just the magic check.
        st.tuples(st.integers(1, 4), st.binary(max_size=196)).map(lambda t: bytes([0, 0, 8, t[0]]) + t[1]),
    )
)
def test_parse_idx_arbitrary_bytes(raw: bytes) -> None:
    try:
        out = parse_idx(raw, "fuzz")
    except TochaError as e:
        assert "fuzz" in str(e)
    else:
        assert isinstance(out, np.ndarray)
        assert out.dtype == np.uint8
        assert 1 <= out.ndim <= 4
        assert 4 + 4 * out.ndim + out.size == len(raw)
