"""Small builders shared by the tests: IDX bytes, PNG folders, running the CLI."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def idx_bytes(array: np.ndarray) -> bytes:
    """uint8 array -> IDX bytes (magic 0 0 8 ndim, big-endian dims, payload)."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_image_folder(root: Path, classes: dict[str, int], size=(12, 10), mode="L", seed=0) -> None:
    """ROOT/<class>/<i>.png with random pixels: `classes` maps class name -> image count."""
    rng = np.random.default_rng(seed)
    channels = 1 if mode == "L" else 3
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (size[0], size[1], channels), dtype=np.uint8)
            Image.fromarray(pixels.squeeze(-1) if mode == "L" else pixels, mode).save(
                root / name / f"{i}.png"
            )


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m tocha ARGS` in a real subprocess; text output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tocha", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def run_main(*args: str) -> subprocess.CompletedProcess:
    """`tocha ARGS` in this process (`tocha.cli.main`), output captured: for tests of what the
    command says and does, where the process boundary is not what is tested (no 2 s torch import)."""
    import contextlib
    import io

    from tocha.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else 2
    return subprocess.CompletedProcess(["tocha", *args], code, out.getvalue(), err.getvalue())


def one_epoch(model, data, loss_fn, optimizer, preprocess, batch_size, generator):
    """One epoch of `tocha.training.loop.train_one_epoch` over `data` in the generator's order,
    with `loss_fn` as the task's loss; returns samples, loss, accuracy, first_nonfinite_step."""
    from types import SimpleNamespace

    from tocha.data.batches import device_batches, shuffled_order
    from tocha.tasks import ClassificationTask
    from tocha.training.loop import Optimization, train_one_epoch
    from tocha.training.tally import EpochTally

    task = ClassificationTask()
    task.loss = loss_fn
    tally = EpochTally.begin(task, shuffled_order(len(data), generator, data.images.device))
    batches = device_batches(data, tally.order, batch_size, preprocess)
    train_one_epoch(model, batches, task, Optimization(optimizer), tally=tally)
    samples = min(tally.steps_done * batch_size, len(data))
    metrics = task.summarize(tally.sums, samples) if samples else {}
    return SimpleNamespace(samples=samples, first_nonfinite_step=tally.first_nonfinite_step(), **metrics)


def stopped_after_epoch_one_then_resumed(config):  # noqa: ANN001, ANN201 (a RunConfig; a TrainResult)
    """Train `config` into its run folder, stopped by SIGTERM's request as the first epoch's line is
    said (so at the next step), then resume it there: the resumed run's result."""
    import signal

    import pytest

    from tocha.errors import Interrupted
    from tocha.training import resume, train
    from tocha.training.interrupt import StopRequest

    stop = StopRequest()

    def log(line: str) -> None:
        if line.startswith("epoch 1/"):
            stop.request(signal.SIGTERM)

    with pytest.raises(Interrupted):
        train(config, log=log, progress=False, stop=stop)
    return resume(Path(config.out_dir) / config.run_name, log=lambda _line: None, progress=False)


def straight_and_stopped_at(config_of, call: int):  # noqa: ANN001, ANN201 (out -> RunConfig; two dicts)
    """The checkpoints of two runs of `config_of(out)`: one straight, one stopped by SIGTERM's
    request at the `call`-th check for a stop (that is, part-way through an epoch) and resumed in
    this process from its checkpoint. An exact resume makes them the same."""
    import signal

    import pytest

    from tocha.errors import Interrupted
    from tocha.runs.checkpoint import load_checkpoint
    from tocha.training import resume, train
    from tocha.training.interrupt import StopRequest

    class StopAt(StopRequest):
        calls = 0

        def __call__(self) -> bool:
            self.calls += 1
            if self.calls == call:
                self.request(signal.SIGTERM)
            return super().__call__()

    straight = train(config_of("straight"), log=lambda _line: None, progress=False)
    stopped = config_of("stopped")
    with pytest.raises(Interrupted, match=r"at epoch \d+, step"):
        train(stopped, log=lambda _line: None, progress=False, stop=StopAt())
    resumed = resume(Path(stopped.out_dir) / stopped.run_name, log=lambda _line: None, progress=False)
    return load_checkpoint(straight.run_dir), load_checkpoint(resumed.run_dir)
