"""CIFAR-10 python-version reader on tiny fake archives with the official layout.

The official batches were written by Python 2's cPickle (protocol 2): the dict keys, the
`batch_label` and the array's raw bytes are py2 `str`, stored as BINSTRING opcodes, and the
array is rebuilt by `numpy.core.multiarray._reconstruct`. `py2_pickle` reproduces that form.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import pickle
import struct
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tocha.data.cifar import MAX_BATCH_BYTES, TEST_BATCHES, TRAIN_BATCHES, parse_batch, read_cifar10
from tocha.data.load import load_registered
from tocha.errors import ChecksumError, TochaError

FOLDER = "cifar-10-batches-py"
BATCH_SIZES = {**{name: 3 for name in TRAIN_BATCHES}, "test_batch": 4}


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler lets bytes be written as py2 str
    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes_as_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes_as_py2_str


def py2_pickle(obj: object) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 2 names its private module numpy._core; the official files say numpy.core.
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def make_batch(data: np.ndarray, labels: list[int], label: bytes = b"batch") -> bytes:
    filenames = [f"img_{i}.png".encode() for i in range(len(labels))]
    return py2_pickle({b"batch_label": label, b"labels": labels, b"data": data, b"filenames": filenames})


def fake_batches(seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, n in BATCH_SIZES.items():
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, size=n)]
        out[name] = (data, labels)
    return out


def write_tarball(path: Path, members: dict[str, bytes], folder: str = FOLDER) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        folder_info = tarfile.TarInfo(folder)  # a directory entry first, like the real archive
        folder_info.type = tarfile.DIRTYPE
        tar.addfile(folder_info)
        for name, raw in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def encoded(batches: dict[str, tuple[np.ndarray, list[int]]]) -> dict[str, bytes]:
    return {name: make_batch(d, lbl, name.encode()) for name, (d, lbl) in batches.items()}


@pytest.fixture
def batches() -> dict[str, tuple[np.ndarray, list[int]]]:
    return fake_batches()


@pytest.fixture
def tarball(tmp_path: Path, batches: dict[str, tuple[np.ndarray, list[int]]]) -> Path:
    return write_tarball(tmp_path / "cifar-10-python.tar.gz", encoded(batches))


def check_layout(out: dict[str, np.ndarray], batches: dict[str, tuple[np.ndarray, list[int]]]) -> None:
    for split, names in (("train", TRAIN_BATCHES), ("test", TEST_BATCHES)):
        data = np.concatenate([batches[n][0] for n in names])
        labels = [x for n in names for x in batches[n][1]]
        images = out[f"{split}_images"]
        assert images.shape == (len(data), 3, 32, 32)
        assert images.dtype == np.uint8
        assert out[f"{split}_labels"].tolist() == labels  # batch order kept
        # pixel [i, c, y, x] is byte c*1024 + y*32 + x of row i (channel-major, then row-major)
        for i, c, y, x in [(0, 0, 0, 0), (1, 1, 5, 31), (len(data) - 1, 2, 31, 0), (2, 2, 17, 9)]:
            assert images[i, c, y, x] == data[i, c * 1024 + y * 32 + x]
        np.testing.assert_array_equal(images.reshape(len(data), -1), data)


def test_py2_pickle_helper_matches_the_official_form(batches: dict) -> None:
    raw = make_batch(*batches["test_batch"])
    assert raw.startswith(b"\x80\x02")
    assert b"U\x04data" in raw  # SHORT_BINSTRING 'data', as in the official files
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    assert b"_codecs" not in raw


def test_read_tarball(tarball: Path, batches: dict) -> None:
    out = read_cifar10(tarball)
    assert set(out) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert out["train_labels"].dtype == np.int64
    check_layout(out, batches)


def test_read_extracted_folder(tmp_path: Path, batches: dict) -> None:
    folder = tmp_path / FOLDER
    folder.mkdir()
    for name, raw in encoded(batches).items():
        (folder / name).write_bytes(raw)
    (folder / "batches.meta").write_bytes(py2_pickle({b"label_names": [b"airplane"]}))
    check_layout(read_cifar10(folder), batches)


def test_protocol_4_pickle_is_accepted(batches: dict) -> None:
    data, labels = batches["test_batch"]
    images, out_labels = parse_batch(pickle.dumps({b"data": data, b"labels": labels}, protocol=4), "b")
    np.testing.assert_array_equal(images.reshape(len(data), -1), data)
    assert out_labels.tolist() == labels


@pytest.mark.parametrize("protocol", [2, 5])
def test_python3_pickles_of_other_protocols(batches: dict, protocol: int) -> None:
    data, labels = batches["test_batch"]
    raw = pickle.dumps({b"data": data, b"labels": labels}, protocol=protocol)
    images, _ = parse_batch(raw, "b")
    np.testing.assert_array_equal(images.reshape(len(data), -1), data)


class _WritesMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch '{self.marker}'",))


class _OpensMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("payload", [_WritesMarker, _OpensMarker])
@pytest.mark.parametrize("where", ["tarball", "folder"])
def test_malicious_pickle_is_refused_and_not_run(
    tmp_path: Path, batches: dict, payload: type, where: str
) -> None:
    marker = tmp_path / "pwned"
    members = encoded(batches)
    data, labels = batches["data_batch_3"]
    members["data_batch_3"] = py2_pickle({b"data": data, b"labels": labels, b"x": payload(marker)})
    if where == "tarball":
        source = write_tarball(tmp_path / "cifar-10-python.tar.gz", members)
    else:
        source = tmp_path / FOLDER
        source.mkdir()
        for name, raw in members.items():
            (source / name).write_bytes(raw)
    with pytest.raises(TochaError, match="data_batch_3"):
        read_cifar10(source)
    assert not marker.exists()


def test_tarball_missing_test_batch(tmp_path: Path, batches: dict) -> None:
    members = encoded(batches)
    del members["test_batch"]
    source = write_tarball(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(TochaError, match="test_batch"):
        read_cifar10(source)


def test_folder_missing_a_batch(tmp_path: Path, batches: dict) -> None:
    folder = tmp_path / FOLDER
    folder.mkdir()
    for name, raw in encoded(batches).items():
        if name != "data_batch_4":
            (folder / name).write_bytes(raw)
    with pytest.raises(TochaError, match="data_batch_4"):
        read_cifar10(folder)


@pytest.mark.parametrize(
    "data",
    [
        np.zeros((3, 3073), np.uint8),  # wrong row length
        np.zeros((3, 3, 32, 32), np.uint8),  # already reshaped
        np.zeros((3, 3072), np.int64),  # wrong dtype
    ],
    ids=["3073-columns", "4d", "int64"],
)
def test_wrong_data_shape_or_dtype(tmp_path: Path, batches: dict, data: np.ndarray) -> None:
    members = encoded(batches)
    members["data_batch_2"] = make_batch(data, [0, 1, 2])
    source = write_tarball(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(TochaError, match="data_batch_2"):
        read_cifar10(source)


def test_label_count_mismatch(batches: dict) -> None:
    data, _ = batches["test_batch"]
    with pytest.raises(TochaError, match="labels"):
        parse_batch(make_batch(data, [1, 2]), "test_batch")


@pytest.mark.parametrize("raw", [b"", b"not a pickle", py2_pickle([1, 2, 3]), py2_pickle({b"data": 1})])
def test_not_a_batch(raw: bytes) -> None:
    with pytest.raises(TochaError, match="weird_batch"):
        parse_batch(raw, "weird_batch")


def test_not_a_tar_archive(tmp_path: Path) -> None:
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(TochaError, match="cifar-10-python.tar.gz"):
        read_cifar10(path)


def test_registered_cifar10_from_extracted_folder(tmp_path: Path, batches: dict) -> None:
    folder = tmp_path / "data" / "cifar10" / FOLDER
    folder.mkdir(parents=True)
    for name, raw in encoded(batches).items():
        (folder / name).write_bytes(raw)
    data = load_registered("cifar10", data_dir=tmp_path / "data", download=False, log=lambda s: None)
    assert data.classes[0] == "airplane" and len(data.classes) == 10
    assert data.image_shape == (3, 32, 32)
    assert (len(data.train), len(data.test)) == (15, 4)
    assert "not checksum-verified" in data.source
    expected = np.concatenate([batches[n][0] for n in TRAIN_BATCHES]).reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(data.train.images.numpy(), expected)
    assert data.test.labels.tolist() == batches["test_batch"][1]


def test_registered_cifar10_fake_tarball_fails_checksum(tmp_path: Path, tarball: Path) -> None:
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    tarball.rename(folder / "cifar-10-python.tar.gz")
    with pytest.raises(ChecksumError, match="checksum"):
        load_registered("cifar10", data_dir=tmp_path / "data", download=False, log=lambda s: None)


@pytest.mark.parametrize("labels", [[0, 10, 3], [0, -1, 3], [0, 2**70, 3]], ids=["10", "-1", "2**70"])
def test_labels_outside_the_ten_classes(batches: dict, labels: list[int]) -> None:
    data, _ = batches["data_batch_1"]
    with pytest.raises(TochaError, match="data_batch_1"):
        parse_batch(make_batch(data, labels), "data_batch_1")


# Hostile streams: a pickle is a program, and these ask for gigabytes, or for memory unsafety.


class _Reduces:
    """Pickles as the given __reduce__ value: how these tests write hand-made streams."""

    def __init__(self, value: tuple) -> None:
        self.value = value

    def __reduce__(self) -> tuple:
        return self.value


def _numpy_callable(obj: object) -> Callable:
    return obj.__reduce__()[0]  # type: ignore[attr-defined]


def _nested_labels(depth: int) -> list:
    labels: list = [0]
    for _ in range(depth):
        labels = [labels, labels]  # shared, so the pickle stays small; as an array: 2**depth labels
    return labels


def _hostile() -> dict[str, bytes]:
    reconstruct = _numpy_callable(np.zeros(1))
    scalar = _numpy_callable(np.int64(5))
    two_rows = np.zeros((2, 3072), np.uint8)
    return {
        "bytes of 2 GB declared": b"\x80\x03" + pickle.BINBYTES + struct.pack("<I", 2**31) + b"abc.",
        "bytes8 of 64 GB declared": b"\x80\x04" + pickle.BINBYTES8 + struct.pack("<Q", 2**36) + b"abc.",
        "bytearray8 of 64 GB declared": b"\x80\x05" + pickle.BYTEARRAY8 + struct.pack("<Q", 2**36) + b".",
        "memo index 2**28": b"\x80\x02" + pickle.NONE + pickle.LONG_BINPUT + struct.pack("<I", 2**28) + b".",
        "ndarray called for 10**9 items": pickle.dumps(_Reduces((np.ndarray, ((10**9,),))), protocol=2),
        "_reconstruct of 10**9 items": pickle.dumps(
            _Reduces((reconstruct, (np.ndarray, (10**9,), b"b"))), protocol=2
        ),
        "object array of 10**9 items": pickle.dumps(
            _Reduces((reconstruct, (np.ndarray, (0,), b"b"), (1, (10**9,), np.dtype(object), False, []))),
            protocol=2,
        ),
        "object scalar from file bytes": pickle.dumps(
            _Reduces((scalar, (np.dtype(object), b"\1" * 8))), protocol=2
        ),
        "labels nested 30 deep": pickle.dumps({b"data": two_rows, b"labels": _nested_labels(30)}, protocol=2),
        "quadratic codec": pickle.dumps(_Reduces((codecs.encode, ("x" * 1000, "punycode"))), protocol=2),
    }


@pytest.mark.parametrize("case", list(_hostile()))
def test_hostile_stream_is_refused_without_allocating(case: str) -> None:
    raw = _hostile()[case]
    assert len(raw) < 20_000
    tracemalloc.start()
    try:
        with pytest.raises(TochaError, match="hostile_batch"):
            parse_batch(raw, "hostile_batch")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**22, f"{case}: {peak} bytes allocated"


def _parse_small(raw: bytes) -> None:
    """parse_batch gives arrays or a TochaError, and allocates in proportion to the input."""
    tracemalloc.start()
    try:
        images, labels = parse_batch(raw, "fuzz")
    except TochaError as e:
        assert "fuzz" in str(e)
    else:
        assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32)
        assert labels.dtype == np.int64 and labels.shape == (len(images),)
        assert labels.min(initial=0) >= 0 and labels.max(initial=0) < 10
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 50 * len(raw) + 2**20


FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"\x80\x02" + b)))
def test_parse_batch_arbitrary_bytes(raw: bytes) -> None:
    _parse_small(raw)


def _valid_small_batches() -> list[bytes]:
    """One small batch in each form the reader accepts: official py2, protocols 2, 4 and 5."""
    data = np.random.default_rng(3).integers(0, 256, size=(2, 3072), dtype=np.uint8)
    return [
        make_batch(data, [1, 9]),
        pickle.dumps({b"data": data, b"labels": np.array([1, 9])}, protocol=2),
        pickle.dumps({b"data": data, b"labels": [np.int64(1), np.int64(9)]}, protocol=4),
        pickle.dumps({b"data": data, b"labels": [1, 9]}, protocol=5),
    ]


_VALID = _valid_small_batches()
# Positions mostly in the opcodes around the 6 KB of pixels, where a flip changes the structure.
_POSITION = st.one_of(
    st.integers(0, 300), st.integers(0, 7000).map(lambda i: -1 - i % 300), st.integers(0, 7000)
)


@FUZZ
@given(
    st.sampled_from(range(len(_VALID))),
    st.one_of(st.none(), st.integers(0, 7000)),
    st.lists(st.tuples(_POSITION, st.integers(1, 255)), max_size=6),
)
def test_parse_batch_mutated_valid_batches(base: int, cut: int | None, flips: list[tuple[int, int]]) -> None:
    raw = bytearray(_VALID[base])
    for position, xor in flips:
        raw[position % len(raw)] ^= xor
    _parse_small(bytes(raw if cut is None else raw[: cut % len(raw)]))


def test_batches_over_the_size_cap_are_not_read(tmp_path: Path, batches: dict) -> None:
    folder = tmp_path / FOLDER
    folder.mkdir()
    for name, raw in encoded(batches).items():
        (folder / name).write_bytes(raw)
    with open(folder / "data_batch_2", "r+b") as f:
        f.truncate(MAX_BATCH_BYTES + 1)  # sparse: large on paper, nothing written
    with pytest.raises(TochaError, match="data_batch_2.*larger than any CIFAR-10 batch"):
        read_cifar10(folder)
    # A tar header may declare any size: the member is refused before a byte of it is read.
    info = tarfile.TarInfo(f"{FOLDER}/data_batch_1")
    info.size = 2**40
    tarball = tmp_path / "cifar-10-python.tar.gz"
    tarball.write_bytes(gzip.compress(info.tobuf(tarfile.GNU_FORMAT) + bytes(4096)))
    with pytest.raises(TochaError, match="data_batch_1.*larger than any CIFAR-10 batch"):
        read_cifar10(tarball)
    with pytest.raises(TochaError, match="big.*larger"):
        parse_batch(bytes(MAX_BATCH_BYTES + 1), "big")


def _read_or_refuse(path: Path) -> None:
    try:
        out = read_cifar10(path)
    except TochaError as e:
        assert path.name in str(e)
    else:
        assert out["train_images"].shape[1:] == (3, 32, 32)


@settings(FUZZ, max_examples=60)
@given(st.binary(max_size=3000))
def test_random_bytes_as_a_tarball(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(raw)
    _read_or_refuse(path)


@pytest.fixture(scope="module")
def plain_tar() -> tuple[bytes, list[int]]:
    """A valid uncompressed archive of small batches, and where its member headers start."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, raw in encoded(fake_batches()).items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        headers = [m.offset for m in tar.getmembers()]
    return buf.getvalue(), headers


@settings(FUZZ, max_examples=80)
@given(
    st.booleans(),
    st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 511), st.integers(1, 255)), min_size=1, max_size=4
    ),
)
def test_mutated_tarballs(tmp_path: Path, plain_tar: tuple[bytes, list[int]], gz: bool, flips: list) -> None:
    """Flips in member headers (plain tar) or anywhere in the gzip stream: arrays or a TochaError."""
    raw, headers = bytearray(plain_tar[0]), plain_tar[1]
    if gz:
        raw = bytearray(gzip.compress(bytes(raw), mtime=0))
    for which, offset, xor in flips:
        position = which if gz else headers[which % len(headers)] + offset
        raw[position % len(raw)] ^= xor
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(raw)
    _read_or_refuse(path)
