"""Shared fixtures: every test gets its own empty cache folder and no TOCHA_DATA_DIR.

So no test reads or writes the user's ~/.cache/tocha (nor its trust key), and no test sees a dataset
by accident.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# ../shared/data relative to the repository root: full MNIST / Fashion-MNIST (gz IDX) and PNGs.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# One thread count for every run, in this process and the ones it starts: tocha otherwise counts idle
# cores, and runs on different counts differ in their last digits, which the exact-resume tests would
# see. Set here, before any test module imports torch (which reads it once); with the suite spread
# over several processes (pytest-xdist) they share the cores. tests/test_threads.py unsets it to test
# the counting.
THREADS = str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
os.environ["OMP_NUM_THREADS"] = THREADS

# The Python processes the tests start (`tocha` commands, torchrun's ranks, servers, lessons) keep
# the bytecode they compile, as Python does by default: an environment that sets
# PYTHONDONTWRITEBYTECODE (some CI images and sandboxes do) made each of them compile tocha's sources
# again, half a second of every process's start.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Isolation for module- and session-scoped fixtures too (they run before per-test ones)."""
    cache = tmp_path_factory.mktemp("tocha-session-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOCHA_CACHE_DIR", str(cache))
        mp.delenv("TOCHA_DATA_DIR", raising=False)
        # This session's own key for signing the model records it trains (`models.code_trust`): the
        # user's ~/.local/share/tocha is never read or written.
        mp.setenv("TOCHA_TRUST_KEY", str(cache / "trust.key"))
        mp.setenv("OMP_NUM_THREADS", THREADS)  # (see THREADS) put back after a test that unset it
        yield cache


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $TOCHA_CACHE_DIR per test; $TOCHA_DATA_DIR unset."""
    cache = tmp_path_factory.mktemp("tocha-cache")
    monkeypatch.setenv("TOCHA_CACHE_DIR", str(cache))
    monkeypatch.delenv("TOCHA_DATA_DIR", raising=False)
    return cache


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder; the test is skipped (with the reason) when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not present (full MNIST/Fashion-MNIST files)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - returns a function
    """`shared_run(**overrides)`: a run trained once per session for each set of overrides, for the
    tests that only read it (predict, evaluate, checkpoints). A test that changes a run folder
    trains its own with `train_quick`."""
    from trained_runs import train_quick

    trained = {}

    def get(**overrides: object):  # noqa: ANN202
        key = repr(sorted(overrides.items()))
        if key not in trained:
            trained[key] = train_quick(tmp_path_factory.mktemp("shared-run"), **overrides)
        return trained[key]

    return get
