"""Reader for the official CIFAR-10 python version (`cifar-10-python.tar.gz`).

The batches are Python pickles, and a pickle is a program: it can call functions and make the
unpickler allocate whatever sizes it declares. So a batch is read in three guarded steps:
- its size is capped (an official batch is 31 MB);
- its opcodes are walked first (pickletools), which checks every declared length against the bytes
  really there, and memo indices against the opcode count: a lying header fails before the
  unpickler allocates what it claims;
- the unpickler admits only stand-ins for the few NumPy callables an array needs, which check
  what the stream gives them (plain numeric dtypes, shapes that match their bytes) before NumPy
  sees it. Anything else in the stream is refused.
"""

from __future__ import annotations

import io
import lzma
import math
import pickle
import pickletools
import tarfile
import zlib
from pathlib import Path

import numpy as np

from tocha.errors import TochaError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
CLASSES = 10
MAX_BATCH_BYTES = 64 * 2**20  # an official batch is 31 MB; a larger file is refused unread
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats: no objects, no records


class _DtypeSpec:
    """Stands in for numpy.dtype while unpickling: the stream's dtype state never reaches NumPy
    (an object dtype would make it allocate and fill as much memory as a shape declares); a fresh
    plain numeric dtype is built from its type string and byte order instead."""

    def __init__(self, spec: object, *_flags: object) -> None:
        self.spec = spec.decode("ascii") if isinstance(spec, bytes) else spec
        self.byteorder: object = "|"

    def __setstate__(self, state: object) -> None:
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else "|"
        self.byteorder = order.decode("ascii") if isinstance(order, bytes) else order

    def resolve(self) -> np.dtype:
        if not isinstance(self.spec, str):
            raise pickle.UnpicklingError(f"dtype {self.spec!r} is not a type string")
        dtype = np.dtype(self.spec)
        if dtype.kind not in _NUMERIC_KINDS:
            raise pickle.UnpicklingError(f"refusing arrays of dtype {dtype}")
        return dtype.newbyteorder(self.byteorder) if self.byteorder in ("<", ">") else dtype


def _dtype(value: object) -> np.dtype:
    if not isinstance(value, _DtypeSpec):
        raise pickle.UnpicklingError(f"expected a dtype, got {type(value).__name__}")
    return value.resolve()


def _shape(value: object, dtype: np.dtype, data: object) -> tuple[int, ...]:
    """A shape of at most 32 non-negative dims that exactly fits `data`, a bytes-like payload."""
    if (
        not isinstance(value, tuple | list)
        or len(value) > 32
        or any(type(n) is not int or n < 0 for n in value)
    ):
        raise pickle.UnpicklingError(f"bad array shape {value!r}")
    if not isinstance(data, bytes | bytearray) or len(data) != math.prod(value) * dtype.itemsize:
        raise pickle.UnpicklingError(f"array payload does not fit shape {tuple(value)} of {dtype}")
    return tuple(value)


class _CheckedArray(np.ndarray):
    """What `_reconstruct` returns: an empty array whose state from the stream is checked before
    NumPy's own __setstate__ sees it."""

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise pickle.UnpicklingError("unexpected array state")
        version, shape, dtype, fortran, data = state
        dtype = _dtype(dtype)
        super().__setstate__((version, _shape(shape, dtype, data), dtype, bool(fortran), data))


_NDARRAY = object()  # numpy.ndarray as the stream names it: an argument of _reconstruct, never called


def _reconstruct(subtype: object, *_shape_and_typecode: object) -> np.ndarray:
    # NumPy's pickles always start from an empty array; the real shape arrives in __setstate__.
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
    return _CheckedArray((0,), np.uint8)


def _frombuffer(buf: object, dtype: object, shape: object, order: object) -> np.ndarray:
    dtype = _dtype(dtype)
    shape = _shape(shape, dtype, buf)
    return np.frombuffer(buf, dtype).reshape(shape, order="F" if order == "F" else "C")  # type: ignore[arg-type]


def _scalar(dtype: object, data: object) -> np.generic:
    dtype = _dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"scalar payload does not fit {dtype}")
    return np.frombuffer(data, dtype)[0]


def _encode(text: object, encoding: object) -> bytes:
    # How Python 3 writes bytes in protocol-2 pickles. Only latin-1: other codecs can be slow.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode other than str to latin-1")
    return text.encode("latin-1")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeSpec,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("_codecs", "encode"): _encode,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # protocol-5 arrays
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return _ALLOWED[module, name]


def _check_opcodes(raw: bytes) -> None:
    """Every declared length must be present (pickletools checks) and every memo index at most the
    opcode count: the unpickler sizes its memo table by the largest index it is given."""
    for count, (opcode, arg, _pos) in enumerate(pickletools.genops(raw)):
        if opcode.name in _MEMO_PUTS and arg > count:
            raise pickle.UnpicklingError(f"memo index {arg} at opcode {count}")


def _labels(labels: object, count: int, name: str) -> np.ndarray:
    """(N,) int64 from a list of ints or an integer array, each a class index."""
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise TochaError(f"{name}: labels are not a flat integer array")
    elif not isinstance(labels, list | tuple) or not all(isinstance(x, int | np.integer) for x in labels):
        # Item by item: as an array, nested lists that share their items can be astronomically large.
        raise TochaError(f"{name}: labels are not a list of integers")
    if len(labels) != count:
        raise TochaError(f"{name}: {count} images but {len(labels)} labels")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (OverflowError, ValueError, TypeError) as e:
        raise TochaError(f"{name}: labels are not class indices ({e})") from e
    if len(labels) and not 0 <= labels.min() <= labels.max() < CLASSES:
        raise TochaError(f"{name}: labels outside 0..{CLASSES - 1}")
    return labels


def parse_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    if len(raw) > MAX_BATCH_BYTES:
        raise TochaError(f"{name}: {len(raw)} bytes, larger than any CIFAR-10 batch")
    try:
        _check_opcodes(raw)
        batch = _ArraysOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # any malformed stream is the file's fault, reported as such
        raise TochaError(f"{name}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise TochaError(f"{name}: not a CIFAR-10 batch (no data/labels entries)")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise TochaError(f"{name}: data is not a uint8 (N, 3072) array")
    return data.view(np.ndarray).reshape(-1, 3, 32, 32), _labels(labels, len(data), name)


def _check_size(where: object, size: int) -> None:
    if size > MAX_BATCH_BYTES:
        raise TochaError(f"{where}: {size} bytes, larger than any CIFAR-10 batch; not read")


def _read_members(source: Path, names: list[str]) -> dict[str, bytes]:
    """Batch files by name, from the tarball or from an extracted `cifar-10-batches-py` folder."""
    if source.is_dir():
        missing = [n for n in names if not (source / n).is_file()]
        if missing:
            raise TochaError(f"{source}: missing {', '.join(missing)}")
        for n in names:
            _check_size(source / n, (source / n).stat().st_size)
        return {n: (source / n).read_bytes() for n in names}
    out = {}
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if base in names and member.isfile():
                    _check_size(f"{source}:{member.name}", member.size)  # before reading it
                    out[base] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
        # a damaged compressed stream raises its codec's own error, not a TarError
        raise TochaError(f"{source}: not a readable tar archive ({type(e).__name__}: {e})") from e
    missing = [n for n in names if n not in out]
    if missing:
        raise TochaError(f"{source}: archive lacks {', '.join(missing)}")
    return out


def read_cifar10(source: Path) -> dict[str, np.ndarray]:
    """train/test images and labels from the official archive or its extracted folder."""
    raw = _read_members(source, TRAIN_BATCHES + TEST_BATCHES)
    out = {}
    for split, names in (("train", TRAIN_BATCHES), ("test", TEST_BATCHES)):
        parts = [parse_batch(raw[n], f"{source}:{n}") for n in names]
        out[f"{split}_images"] = np.concatenate([p[0] for p in parts])
        out[f"{split}_labels"] = np.concatenate([p[1] for p in parts])
    return out
