"""load_dataset / load_registered: bundled samples, checksums, search folders, `auto`."""

from __future__ import annotations

import gzip
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from tocha.data.idx import read_idx_pair
from tocha.data.load import is_available, load_dataset, load_registered, resolve_name
from tocha.data.registry import BUNDLED_DIR, DATASETS, IDX_ROLES
from tocha.errors import ChecksumError, TochaError


def quiet(_: str) -> None:
    pass


def decoded_files(cache: Path) -> list[Path]:
    folder = cache / "decoded"
    return sorted(folder.glob("*")) if folder.is_dir() else []


def write_fake_idx_set(folder: Path, n_train: int = 5, n_test: int = 3) -> None:
    """The four IDX files of an MNIST-like dataset, gzipped, with generated content."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for role in IDX_ROLES:
        n = n_train if role.startswith("train") else n_test
        if "images" in role:
            array = rng.integers(0, 256, size=(n, 28, 28))
        else:
            array = rng.integers(0, 10, size=n)
        header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        (folder / f"{role}.gz").write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.mark.parametrize(
    ("name", "n_train", "first_class"),
    [("fashion-mnist-sample", 6000, "T-shirt/top"), ("mnist-sample", 4000, "0")],
)
def test_bundled_samples(name: str, n_train: int, first_class: str, isolated_cache: Path) -> None:
    data = load_dataset(name, download=False, log=quiet)
    assert data.name == name
    assert (len(data.train), len(data.test)) == (n_train, 1000)
    assert data.image_shape == (1, 28, 28)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    assert len(data.classes) == 10 and data.classes[0] == first_class
    for split in (data.train, data.test):
        assert 0 <= int(split.labels.min()) and int(split.labels.max()) <= 9
        assert len(set(split.labels.tolist())) == 10  # every class present in a 1000+ sample
    assert "bundled" in data.source
    assert int(data.train.images.max()) > 200  # real pixel content, not zeros
    assert len(decoded_files(isolated_cache)) == 1  # verified, then cached
    again = load_dataset(name, download=False, log=quiet)
    assert torch.equal(again.test.images, data.test.images)


def test_generated_files_fail_the_checksum_and_are_not_cached(tmp_path: Path, isolated_cache: Path) -> None:
    data_dir = tmp_path / "data"
    write_fake_idx_set(data_dir / "mnist")
    with pytest.raises(ChecksumError, match="checksum") as e:
        load_registered("mnist", data_dir=data_dir, download=False, log=quiet)
    assert str(data_dir / "mnist" / "train-images-idx3-ubyte.gz") in str(e.value)
    assert decoded_files(isolated_cache) == []
    # the error repeats: nothing unverified was kept anywhere
    with pytest.raises(ChecksumError):
        load_dataset("mnist", data_dir=data_dir, download=False, log=quiet)
    assert decoded_files(isolated_cache) == []


def test_data_dir_may_point_at_the_files_themselves(tmp_path: Path) -> None:
    write_fake_idx_set(tmp_path / "files")
    with pytest.raises(ChecksumError, match=re.escape(str(tmp_path / "files"))):
        load_registered("mnist", data_dir=tmp_path / "files", download=False, log=quiet)


def copy_sample(name: str, dest: Path, decompress: bool = False) -> None:
    dest.mkdir(parents=True)
    for role in IDX_ROLES:
        src = BUNDLED_DIR / name / f"{role}.gz"
        if decompress:
            (dest / role).write_bytes(gzip.decompress(src.read_bytes()))
        else:
            shutil.copy(src, dest / f"{role}.gz")


@pytest.mark.parametrize("decompress", [False, True], ids=["gz", "uncompressed"])
def test_sample_copy_in_data_dir_is_used_and_verified(tmp_path: Path, decompress: bool) -> None:
    copy_sample("mnist-sample", tmp_path / "data" / "mnist-sample", decompress)
    data = load_registered("mnist-sample", data_dir=tmp_path / "data", download=False, log=quiet)
    assert data.source == str(tmp_path / "data" / "mnist-sample")  # data_dir before the bundled copy
    bundled = load_registered("mnist-sample", download=False, log=quiet)
    assert "bundled" in bundled.source
    assert torch.equal(data.train.images, bundled.train.images)
    assert torch.equal(data.test.labels, bundled.test.labels)


def test_one_changed_pixel_fails_the_checksum(tmp_path: Path, isolated_cache: Path) -> None:
    folder = tmp_path / "data" / "mnist-sample"
    copy_sample("mnist-sample", folder, decompress=True)
    target = folder / "t10k-images-idx3-ubyte"
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte") as e:
        load_registered("mnist-sample", data_dir=tmp_path / "data", download=False, log=quiet)
    assert "checksum" in str(e.value)
    assert decoded_files(isolated_cache) == []


def test_not_found_without_download_lists_the_folders(tmp_path: Path, isolated_cache: Path) -> None:
    data_dir = tmp_path / "nowhere"
    with pytest.raises(TochaError, match="not found") as e:
        load_dataset("mnist", data_dir=data_dir, download=False, log=quiet)
    message = str(e.value)
    for folder in (data_dir / "mnist", data_dir, isolated_cache / "datasets" / "mnist"):
        assert str(folder) in message


def test_not_found_lists_tocha_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCHA_DATA_DIR", str(tmp_path / "envdir"))
    with pytest.raises(TochaError) as e:
        load_registered("mnist", download=False, log=quiet)
    assert str(tmp_path / "envdir" / "mnist") in str(e.value)


def test_tocha_data_dir_is_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_sample("mnist-sample", tmp_path / "envdir" / "mnist-sample")
    monkeypatch.setenv("TOCHA_DATA_DIR", str(tmp_path / "envdir"))
    data = load_registered("mnist-sample", download=False, log=quiet)
    assert data.source == str(tmp_path / "envdir" / "mnist-sample")


@pytest.mark.parametrize("loader", [load_dataset, load_registered])
def test_unknown_name_lists_valid_names(
    loader: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # so the name cannot be taken for a folder
    with pytest.raises(TochaError, match="no-such-set") as e:
        loader("no-such-set", download=False, log=quiet)  # type: ignore[operator]
    for name in ("mnist", "cifar10", "fashion-mnist"):
        assert name in str(e.value)


def test_a_file_path_is_not_a_dataset(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"")
    with pytest.raises(TochaError, match="folder"):
        load_dataset(str(path), log=quiet)


def test_resolve_name_in_a_clean_environment(tmp_path: Path) -> None:
    if any(d.is_dir() for d in DATASETS["fashion-mnist"].extra_dirs):
        pytest.skip("a system-wide Fashion-MNIST is installed, so auto picks it")
    assert resolve_name("auto", None) == "fashion-mnist-sample"
    assert resolve_name("auto", tmp_path) == "fashion-mnist-sample"
    assert resolve_name("mnist", None) == "mnist"
    assert not is_available("fashion-mnist", tmp_path)
    assert is_available("fashion-mnist-sample")


def test_resolve_name_with_full_fashion_mnist(shared_data: Path) -> None:
    assert resolve_name("auto", shared_data) == "fashion-mnist"
    assert resolve_name("auto", shared_data / "fashion-mnist") == "fashion-mnist"


def test_full_mnist_and_its_bundled_sample(shared_data: Path, isolated_cache: Path) -> None:
    full = load_dataset("mnist", data_dir=shared_data, download=False, log=quiet)
    assert (len(full.train), len(full.test)) == (60000, 10000)
    assert full.image_shape == (1, 28, 28)
    assert full.source == str(shared_data / "mnist")
    assert len(decoded_files(isolated_cache)) == 1
    sample = load_dataset("mnist-sample", log=quiet)
    # the bundled sample is the official first 4000 train and first 1000 test images
    assert torch.equal(full.test.images[:1000], sample.test.images)
    assert torch.equal(full.test.labels[:1000], sample.test.labels)
    assert torch.equal(full.train.images[:4000], sample.train.images)
    assert torch.equal(full.train.labels[:4000], sample.train.labels)
    # class balance of the official test set: 980 zeros ... 1009 nines
    assert torch.bincount(full.test.labels).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


def test_fashion_sample_is_the_start_of_the_full_set(shared_data: Path) -> None:
    folder = shared_data / "fashion-mnist"
    sample = load_dataset("fashion-mnist-sample", log=quiet)
    for split, prefix, n in (("train", "train", 6000), ("test", "t10k", 1000)):
        images, labels = read_idx_pair(
            folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
        )
        part = getattr(sample, split)
        np.testing.assert_array_equal(part.images.numpy(), images[:n])
        np.testing.assert_array_equal(part.labels.numpy(), labels[:n].astype(np.int64))
