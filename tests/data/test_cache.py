"""The decoded-data cache is verified at every read: damaged or malformed entries are rebuilt with a
warning (never trained on), a failed write costs only speed, stale temporary files go."""

from __future__ import annotations

import os
import time

import pytest
import torch

from tocha.data import cache
from tocha.data.cache import cached_tensors, digest
from tocha.files import TMP_PREFIX


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TOCHA_CACHE_DIR", str(tmp_path))
    return tmp_path / "decoded"


def dataset(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "train_images": torch.randint(0, 256, (50, 1, 8, 8), dtype=torch.uint8, generator=g),
        "train_labels": torch.randint(0, 3, (50,), generator=g),
        "test_images": torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8, generator=g),
        "test_labels": torch.randint(0, 3, (10,), generator=g),
    }


def test_a_flipped_byte_inside_a_cached_tensor_is_caught_and_rebuilt(cache_dir, capsys):
    builds = []
    build = lambda: builds.append(1) or dataset()  # noqa: E731
    first = cached_tensors("toy", "k", build)
    entry = cache_dir / "toy-k.pt"
    raw = bytearray(entry.read_bytes())
    payload = bytes(first["train_images"].flatten()[:16].tolist())
    at = raw.find(payload)  # the stored pixels themselves (torch does not check zip CRCs)
    assert at > 0
    raw[at] ^= 0xFF
    entry.write_bytes(bytes(raw))
    assert (
        torch.load(entry, weights_only=True)["tensors"]["train_images"].flatten()[0]
        != first["train_images"].flatten()[0]
    )
    again = cached_tensors("toy", "k", build)
    assert (
        len(builds) == 2
        and "is damaged (its content does not match its digest): rebuilding" in capsys.readouterr().err
    )
    assert all(torch.equal(again[k], first[k]) for k in first)
    assert cached_tensors("toy", "k", build) and len(builds) == 2  # the rebuilt entry is trusted again


@pytest.mark.parametrize("damage", ["missing key", "float images", "not a dict", "old format"])
def test_malformed_entries_are_rebuilt_not_fatal(cache_dir, capsys, damage):
    cache_dir.mkdir(parents=True)
    tensors = dataset()
    if damage == "missing key":
        del tensors["test_labels"]
    if damage == "float images":
        tensors["train_images"] = tensors["train_images"].float()
    entry = {"tensors": tensors, "digest": digest(tensors)}  # a valid digest: only the layout is wrong
    if damage == "not a dict":
        entry = [1, 2, 3]
    if damage == "old format":
        entry = dataset()
    torch.save(entry, cache_dir / "toy-k.pt")
    got = cached_tensors("toy", "k", dataset)
    assert "rebuilding it" in capsys.readouterr().err
    assert all(torch.equal(got[k], v) for k, v in dataset().items())


def test_a_failed_cache_write_is_a_warning_and_the_data_still_comes(cache_dir, capsys):
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    cache_dir.write_text("a file where the cache folder should be")  # every write there fails
    got = cached_tensors("toy", "k", dataset)
    assert torch.equal(got["train_images"], dataset()["train_images"])
    assert "could not keep decoded toy data" in capsys.readouterr().err


def test_stale_temporary_files_of_killed_writers_are_removed_fresh_ones_kept(cache_dir):
    cache_dir.mkdir(parents=True)
    stale, fresh = cache_dir / f"{TMP_PREFIX}old.pt.x", cache_dir / f"{TMP_PREFIX}new.pt.y"
    stale.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    cached_tensors("toy", "k", dataset)
    assert not stale.exists() and fresh.exists()


def test_content_keys_see_a_file_changed_with_the_same_size_and_mtime(tmp_path, monkeypatch):
    f = tmp_path / "a.png"
    f.write_bytes(b"one")
    st = f.stat()
    before = cache.file_stamp(f)
    f.write_bytes(b"two")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.file_stamp(f) == before  # the cheap key cannot see it...
    monkeypatch.setenv(cache.BY_CONTENT_ENV, "1")
    f.write_bytes(b"one")
    one = cache.file_stamp(f)
    f.write_bytes(b"two")
    assert cache.file_stamp(f) != one  # ...the content key does


def test_an_entry_copied_over_another_is_caught_and_rebuilt(cache_dir, capsys):
    """The digest is bound to the entry's name (its dataset and its sources' key): another dataset's
    entry copied in its place, even with a digest recomputed the old way over its tensors alone, is
    never trained on."""
    digits, clothes = dataset(0), dataset(1)
    cached_tensors("digits", "k1", lambda: digits)
    cached_tensors("clothes", "k2", lambda: clothes)
    (cache_dir / "clothes-k2.pt").write_bytes((cache_dir / "digits-k1.pt").read_bytes())
    got = cached_tensors("clothes", "k2", lambda: clothes)
    assert "holds the entry 'digits-k1', not clothes-k2" in capsys.readouterr().err
    assert all(torch.equal(got[k], clothes[k]) for k in clothes)
    forged = {"tensors": digits, "key": "clothes-k2", "digest": digest(digits)}  # unbound digest
    torch.save(forged, cache_dir / "clothes-k2.pt")
    got = cached_tensors("clothes", "k2", lambda: clothes)
    assert "does not match its digest" in capsys.readouterr().err
    assert all(torch.equal(got[k], clothes[k]) for k in clothes)
