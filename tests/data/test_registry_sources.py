"""Registered datasets from every source they can come from: a download from a (local) mirror,
the CIFAR-10 pickles, the CIFAR-10 class folders (e.g. the JPEG copy), checksum refusals."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA, idx_bytes, write_image_folder

from tocha.data import registry
from tocha.data.load import load_dataset
from tocha.data.paths import cache_dir
from tocha.errors import ChecksumError, DownloadError, TochaError


@pytest.fixture
def mirror(tmp_path):
    """A static HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, folder, request log)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean; record the paths instead
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root, requests
    server.shutdown()
    server.server_close()


def tiny_idx_dataset(folder, n_train=30, n_test=10, seed=0) -> dict[str, str]:
    """Write the four gzip IDX files of a tiny 10-class dataset; return content md5s by file."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    md5s = {}
    for name, array in arrays.items():
        raw = idx_bytes(array)
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        md5s[name] = hashlib.md5(raw).hexdigest()
    return md5s


def register_tiny(monkeypatch, md5s, mirrors):
    spec = replace(registry.DATASETS["mnist"], name="tiny", mirrors=tuple(mirrors), sizes=(30, 10),
                   files=tuple(registry.DataFile(n, m) for n, m in md5s.items()))  # fmt: skip
    monkeypatch.setitem(registry.DATASETS, "tiny", spec)


def test_missing_dataset_is_downloaded_verified_and_cached(monkeypatch, mirror):
    url, www, requests = mirror
    register_tiny(monkeypatch, tiny_idx_dataset(www), ["http://127.0.0.1:9/nothing-listens-here/", url])
    data = load_dataset("tiny", log=lambda _line: None)
    assert len(data.train) == 30 and len(data.test) == 10 and data.image_shape == (1, 28, 28)
    assert data.train.labels.tolist() == [i % 10 for i in range(30)]
    stored = cache_dir() / "datasets" / "tiny"
    assert sorted(p.name for p in stored.iterdir()) == sorted(f"{n}.gz" for n in registry.IDX_ROLES)
    served = len(requests)
    again = load_dataset("tiny", log=lambda _line: None)  # found on disk now: no new request
    assert len(requests) == served and torch.equal(again.train.images, data.train.images)


def test_download_with_wrong_content_is_not_kept(monkeypatch, mirror):
    url, www, _ = mirror
    md5s = tiny_idx_dataset(www)
    md5s["t10k-images-idx3-ubyte"] = "0" * 32  # the mirror serves something else than published
    register_tiny(monkeypatch, md5s, [url])
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte"):
        load_dataset("tiny", log=lambda _line: None)
    assert not (cache_dir() / "datasets" / "tiny" / "t10k-images-idx3-ubyte.gz").exists()


def test_offline_failure_says_where_it_looked_and_what_to_do(monkeypatch, tmp_path):
    register_tiny(monkeypatch, {n: "0" * 32 for n in registry.IDX_ROLES}, ["http://127.0.0.1:9/"])
    with pytest.raises(DownloadError) as error:
        load_dataset("tiny", data_dir=tmp_path, log=lambda _line: None)
    message = str(error.value)
    assert str(tmp_path / "tiny") in message and "127.0.0.1:9" in message and "--data-dir" in message


def fake_cifar_batch(n: int, seed: int) -> tuple[bytes, np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    return pickle.dumps({b"data": data, b"labels": labels}, protocol=2), data, labels


def test_cifar10_from_extracted_batches(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    expected = []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        raw, data, labels = fake_cifar_batch(4, seed=i)
        (folder / name).write_bytes(raw)
        expected.append((data, labels))
    loaded = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert len(loaded.train) == 20 and len(loaded.test) == 4 and loaded.image_shape == (3, 32, 32)
    first = expected[0][0][0].reshape(3, 32, 32)
    assert torch.equal(loaded.train.images[0], torch.from_numpy(first))
    assert loaded.test.labels.tolist() == expected[-1][1]
    assert "not checksum-verified" in loaded.source and loaded.classes[0] == "airplane"


def test_cifar10_tarball_with_wrong_checksum_is_refused(tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        raw, _, _ = fake_cifar_batch(2, 0)
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    (folder / "cifar-10-python.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(ChecksumError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


def test_cifar10_from_class_folders_uses_the_official_class_order(tmp_path):
    classes = {name: 2 for name in registry.CIFAR10}
    write_image_folder(tmp_path / "cifar10" / "train", classes, size=(32, 32), mode="RGB")
    write_image_folder(
        tmp_path / "cifar10" / "test", {n: 1 for n in registry.CIFAR10}, size=(32, 32), mode="RGB"
    )
    loaded = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert loaded.classes == list(registry.CIFAR10) and len(loaded.train) == 20 and len(loaded.test) == 10
    (tmp_path / "cifar10" / "train" / "truck").rename(tmp_path / "cifar10" / "train" / "lorry")
    (tmp_path / "cifar10" / "test" / "truck").rename(tmp_path / "cifar10" / "test" / "lorry")
    with pytest.raises(TochaError, match="class folders"):
        load_dataset("cifar10", data_dir=tmp_path, download=False)


@pytest.mark.skipif(not (SHARED_DATA / "cifar10-jpeg-q75.tar.gz").is_file(), reason="needs ../shared/data")
def test_the_real_cifar10_jpeg_copy_loads_as_cifar10(tmp_path):
    """A slice of the real JPEG copy (first 3 images of each class and split) read as cifar10."""
    target = tmp_path / "cifar10"
    with tarfile.open(SHARED_DATA / "cifar10-jpeg-q75.tar.gz") as tar:
        wanted = [m for m in tar if m.isfile() and int(m.name.rsplit("/", 1)[-1].split(".")[0]) < 3]
        tar.extractall(target, members=wanted, filter="data")
    loaded = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert len(loaded.train) == 30 and len(loaded.test) == 30 and loaded.image_shape == (3, 32, 32)
    assert loaded.train.images.float().std() > 20  # real photographs, not blank images
