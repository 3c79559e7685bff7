"""Stopping and resuming: exact resume, SIGTERM/SIGINT to a real process, kill -9 mid-write, edge cases.

Every fault is real: signals go to a real `tocha train` process, the kill lands while the
checkpoint's temporary file is being written, and resumed runs start in a fresh process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import run_cli, run_main, write_image_folder

from tocha.config import RunConfig, set_value
from tocha.errors import Interrupted
from tocha.files import TMP_PREFIX
from tocha.runs.checkpoint import load_checkpoint
from tocha.training import train
from tocha.training.interrupt import StopRequest

# A small run that still uses every piece of state a resume must restore: a schedule, the
# weight average, augmentation draws from the run's generator, momentum in the optimizer.
ARGS = {
    "--data": "mnist-sample",
    "--model": "mlp",
    "--hidden-sizes": "32",
    "--batch-size": "100",
    "--epochs": "4",
    "--optimizer": "sgd",
    "--lr": "0.05",
    "--schedule": "onecycle",
    "--ema-decay": "0.9",
    "--augment-translate": "2",
    "--seed": "3",
}
# Not compared: how long things took, and where the run folder is.
UNCOMPARED = {"seconds", "samples_per_second", "eval_seconds", "wall_seconds", "out_dir", "run_name"}


def cli_args(**changes: str | None) -> list[str]:
    """ARGS with some flags changed (None: left out), as a command line."""
    merged = {**ARGS, **{f"--{k.replace('_', '-')}": v for k, v in changes.items()}}
    return [item for flag, value in merged.items() if value is not None for item in (flag, value)]


def library_config(out: Path, name: str) -> RunConfig:
    """The same run as ARGS, as a RunConfig for in-process training."""
    from tocha.cli import build_parser

    args = build_parser().parse_args(["train", *cli_args(), "--out", str(out), "--name", name])
    config = RunConfig()
    for key, value in vars(args).items():
        if "." in key and value is not None:
            set_value(config, key, value)
    config.out_dir, config.run_name = str(out), name
    return config


def start_training(out: Path, name: str, *extra: str, args: list[str] | None = None) -> subprocess.Popen:
    args = cli_args() if args is None else args
    return subprocess.Popen(
        [sys.executable, "-m", "tocha", "train", *args, "--out", str(out), "--name", name, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition: Any, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def assert_same(a: Any, b: Any, where: str = "checkpoint") -> None:
    """Equal to the last bit: tensors with torch.equal, everything else with ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {a.keys()} vs {b.keys()}"
        for key in a:
            if key not in UNCOMPARED:
                assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def metrics_rows(run_dir: Path) -> int:
    path = run_dir / "metrics.csv"
    return len(path.read_text().splitlines()) - 1 if path.is_file() else 0


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The reference: the same run trained to the end without a stop, in its own process."""
    out = tmp_path_factory.mktemp("straight")
    result = run_cli("train", *cli_args(), "--out", str(out), "--name", "run", "--no-progress")
    assert result.returncode == 0, result.stderr
    return load_checkpoint(out / "run")


def test_stop_after_an_epoch_then_resume_in_a_fresh_process_is_exact(tmp_path, straight):
    stop = StopRequest()
    config = library_config(tmp_path, "run")

    def log(line: str) -> None:
        if line.startswith("epoch 1/"):
            stop.request(signal.SIGTERM)  # what the signal handler does, at an exact epoch boundary

    with pytest.raises(Interrupted, match="stopped by SIGTERM at epoch 2, step 0") as caught:
        train(config, log=log, progress=False, stop=stop)
    assert caught.value.exit_status == 143
    saved = load_checkpoint(tmp_path / "run")
    assert saved["epoch"] == 1 and not saved["finished"]
    assert saved["training_state"]["epoch_progress"]["steps_done"] == 0

    result = run_cli("train", "--resume", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "resuming at epoch 2/4 from its start" in result.stdout
    resumed = load_checkpoint(tmp_path / "run")
    assert resumed["finished"] and resumed["epoch"] == 4
    assert_same(resumed, straight)  # weights, optimizer, scheduler, average, RNG states, history


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_training_saves_a_checkpoint_and_resume_is_exact(tmp_path, straight, sig, status):
    run_dir = tmp_path / "run"
    process = start_training(tmp_path, "run", "--no-progress")
    wait_for(lambda: metrics_rows(run_dir) >= 1 or process.poll() is not None, what="the first epoch")
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert f"stopped by {signal.Signals(sig).name} at epoch" in stderr
    assert f"tocha train --resume {run_dir}" in stderr
    assert "Traceback" not in stderr
    saved = load_checkpoint(run_dir)
    assert not saved["finished"] and saved["training_state"]["epoch_progress"] is not None

    result = run_cli("train", "--resume", str(run_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert_same(load_checkpoint(run_dir), straight)
    assert (run_dir / "summary.json").is_file() and (run_dir / "curves.png").is_file()
    assert metrics_rows(run_dir) == 4


def test_a_cnn_in_bf16_and_channels_last_resumes_exactly_after_sigterm(tmp_path):
    """TinyVGG in channels_last with bf16 autocast, Adam, a cosine schedule and random flips: the
    CNN paths a resume must carry too."""
    # bf16 on a CPU is slow: 2,000 training images (18 steps an epoch) carry every path as well.
    cnn = {"model": "tinyvgg", "hidden_sizes": None, "hidden_units": "8", "epochs": "3", "optimizer": "adam",
           "lr": "0.003", "schedule": "cosine", "ema_decay": None, "precision": "bf16",
           "train_limit": "2000"}  # fmt: skip
    args = [*cli_args(**cnn), "--augment-flip"]
    # The reference in this process; the stop and the resume are real processes.
    straight_run = run_main("train", *args, "--out", str(tmp_path), "--name", "straight", "--no-progress")
    assert straight_run.returncode == 0, straight_run.stderr
    process = start_training(tmp_path, "stopped", "--no-progress", args=args)
    wait_for(lambda: metrics_rows(tmp_path / "stopped") >= 1 or process.poll() is not None, what="epoch 1")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert not load_checkpoint(tmp_path / "stopped")["finished"]
    resumed = run_cli("train", "--resume", str(tmp_path / "stopped"), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    saved = load_checkpoint(tmp_path / "stopped")
    assert saved["config"]["train"]["channels_last"] and saved["config"]["train"]["precision"] == "bf16"
    assert_same(saved, load_checkpoint(tmp_path / "straight"), "checkpoint")


def test_kill_9_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path):
    """SIGKILL while checkpoint.pt's temporary file is being written: the old checkpoint loads,
    evaluate and predict ignore the leftover, and --resume removes it and finishes the run."""
    run_dir = tmp_path / "run"
    # A wide MLP makes each checkpoint tens of MB, so its write lasts long enough to land a kill in;
    # 1,000 training images (not 3,601) keep its epochs short: the checkpoints are as large.
    process = start_training(tmp_path, "run", "--no-progress", "--hidden-sizes", "2048,2048", "--epochs", "6",
                             "--train-limit", "1000")  # fmt: skip

    def writing_after_first_checkpoint() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"training ended before the kill: {process.communicate()[1]}")
        return (run_dir / "checkpoint.pt").is_file() and any(run_dir.glob(TMP_PREFIX + "checkpoint.pt*"))

    wait_for(writing_after_first_checkpoint, what="a checkpoint write after the first checkpoint")
    process.kill()
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    leftovers = list(run_dir.glob(TMP_PREFIX + "*"))
    assert leftovers, "the kill did not land during the write"
    before = load_checkpoint(run_dir)  # the previous, complete checkpoint
    assert before["epoch"] >= 1 and len(before["history"]) == before["epoch"]

    evaluated = run_main("evaluate", str(run_dir), "--out", str(tmp_path / "eval"))
    assert evaluated.returncode == 0, evaluated.stderr

    result = run_cli("train", "--resume", str(run_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"removed {leftovers[0].name}" in result.stdout
    assert not list(run_dir.glob(TMP_PREFIX + "*"))
    assert load_checkpoint(run_dir)["epoch"] == 6


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("tocha: error:") and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished one-epoch runs: `mlp` (constant lr) and `linear`."""
    out = tmp_path_factory.mktemp("finished")
    for model, hidden_sizes in (("mlp", "32"), ("linear", None)):
        args = cli_args(epochs="1", schedule="constant", model=model, hidden_sizes=hidden_sizes)
        result = run_main("train", *args, "--out", str(out), "--name", model, "--no-progress")
        assert result.returncode == 0, result.stderr
    return out


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_resume_a_missing_run_folder(tmp_path):
    assert_refused(run_main("train", "--resume", str(tmp_path / "nope")), "no such run folder")


def test_resume_a_run_that_never_saved_a_checkpoint(tmp_path, finished_runs):
    run_dir = copy_run(finished_runs / "mlp", tmp_path / "run")
    (run_dir / "checkpoint.pt").unlink()
    assert_refused(run_main("train", "--resume", str(run_dir)), "no checkpoint.pt", "--config")


def test_resume_a_finished_run(finished_runs):
    before = (finished_runs / "mlp" / "checkpoint.pt").read_bytes()
    assert_refused(run_main("train", "--resume", str(finished_runs / "mlp")), "already finished its 1 epochs")
    assert (finished_runs / "mlp" / "checkpoint.pt").read_bytes() == before


def test_a_finished_constant_lr_run_can_be_trained_longer(tmp_path, finished_runs):
    run_dir = copy_run(finished_runs / "mlp", tmp_path / "run")
    assert run_main("export", str(run_dir), "--format", "safetensors").returncode == 0
    result = run_main("train", "--resume", str(run_dir), "--epochs", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run_dir)["epoch"] == 2 and metrics_rows(run_dir) == 2
    assert "epochs: 2" in (run_dir / "config.yaml").read_text()
    # The export made before holds epoch 1's weights: said, with the command that replaces it.
    said = "model.safetensors holds the weights of before this resume; once it is done, tocha export"
    assert f"{said} {run_dir} --format safetensors --force replaces it" in result.stdout


def test_a_scheduled_run_cannot_be_stretched(tmp_path, straight):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save(straight, run_dir / "checkpoint.pt")
    assert_refused(run_main("train", "--resume", str(run_dir), "--epochs", "5"), "onecycle schedule")


def test_a_checkpoint_from_another_run_is_refused(tmp_path, finished_runs):
    run_dir = copy_run(finished_runs / "mlp", tmp_path / "run")
    shutil.copy(finished_runs / "linear" / "checkpoint.pt", run_dir / "checkpoint.pt")
    result = run_main("train", "--resume", str(run_dir), "--epochs", "2")
    assert_refused(result, "config.yaml and checkpoint.pt disagree on model.name", "another run")


def test_resume_with_another_model_or_dataset_is_refused(finished_runs):
    run = str(finished_runs / "mlp")
    assert_refused(run_main("train", "--resume", run, "--model", "linear"), "model.name is 'mlp' there")
    assert_refused(run_main("train", "--resume", run, "--data", "mnist"), "data.name is 'mnist-sample'")
    assert_refused(run_main("train", "--resume", run, "--out", "elsewhere"), "drop --config, --out")


def test_resume_when_the_data_changed_is_refused(tmp_path):
    folder = tmp_path / "images"
    write_image_folder(folder, {"a": 6, "b": 6})
    args = ["train", "--data", str(folder), "--model", "linear", "--epochs", "1", "--out", str(tmp_path)]
    assert run_main(*args, "--name", "run").returncode == 0
    (folder / "a" / "0.png").unlink()
    assert_refused(run_main("train", "--resume", str(tmp_path / "run"), "--epochs", "2"), "training images")


def test_a_checkpoint_without_training_state_cannot_be_resumed(tmp_path, finished_runs):
    run_dir = copy_run(finished_runs / "mlp", tmp_path / "run")
    old = load_checkpoint(run_dir)
    del old["training_state"]
    old["format_version"] = 1
    torch.save(old, run_dir / "checkpoint.pt")
    assert_refused(run_main("train", "--resume", str(run_dir), "--epochs", "2"), "older tocha")
    # Evaluating it still works: the weights are all a version-1 checkpoint needs.
    assert run_main("evaluate", str(run_dir), "--out", str(tmp_path / "eval")).returncode == 0


def test_a_checkpoint_from_a_newer_format_is_refused(tmp_path, finished_runs):
    newer = load_checkpoint(finished_runs / "mlp")
    newer["format_version"] = 99
    torch.save(newer, tmp_path / "newer.pt")
    assert_refused(run_main("evaluate", str(tmp_path / "newer.pt")), "format 99 is newer", "upgrade tocha")


class _RunsCode:
    """Unpickling this calls os.system: a checkpoint made of it must not get that far."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"format": "tocha-checkpoint", "model": _RunsCode(marker)}, tmp_path / "evil.pt")
    for command in (["evaluate", str(tmp_path / "evil.pt")], ["train", "--resume", str(tmp_path)]):
        if command[0] == "train":
            shutil.copy(tmp_path / "evil.pt", tmp_path / "checkpoint.pt")
        assert_refused(run_main(*command), "not a loadable checkpoint")
    assert not marker.exists()


def test_random_bytes_as_a_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(os.urandom(4096))
    assert_refused(run_main("train", "--resume", str(run_dir)), "not a loadable checkpoint")


def test_sigterm_during_compare_then_the_same_command_resumes_the_stopped_run(tmp_path):
    report = tmp_path / "report"
    command = ["compare", "--vary", "optimizer=sgd,adam", "--seeds", "1", "--out", str(report),
               *cli_args(epochs="30", schedule="constant")]  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "tocha", *command], stderr=subprocess.PIPE, text=True)
    first = report / "runs" / "optimizer=sgd-seed0"
    wait_for(lambda: metrics_rows(first) >= 1 or process.poll() is not None, what="the first epoch")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "run the same tocha compare command again" in stderr
    assert not (first / "summary.json").exists()

    result = run_cli(*command)
    assert result.returncode == 0, result.stderr
    assert "resuming optimizer=sgd-seed0 from its checkpoint" in result.stdout
    assert metrics_rows(first) == 30 and (report / "report.md").is_file()


def test_a_loss_that_becomes_nan_later_leaves_the_last_good_checkpoint(tmp_path, finished_runs):
    """Weights blown up to 1e30 make epoch 2's loss infinite: the run stops naming epoch 2, step 1,
    and checkpoint.pt and metrics.csv stay byte for byte as they were after epoch 1."""
    run_dir = copy_run(finished_runs / "mlp", tmp_path / "run")
    ckpt = load_checkpoint(run_dir)
    ckpt["model"] = {k: v * 1e30 if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    ckpt["config"]["train"]["ema_decay"] = None  # so that the blown-up weights are the trained ones
    ckpt["training_state"].update(model=None, averaged=None)
    torch.save(ckpt, run_dir / "checkpoint.pt")
    config_file = run_dir / "config.yaml"
    config_file.write_text(config_file.read_text().replace("ema_decay: 0.9", "ema_decay: null"))
    before = {name: (run_dir / name).read_bytes() for name in ("checkpoint.pt", "metrics.csv")}
    result = run_main("train", "--resume", str(run_dir), "--epochs", "2", "--no-progress")
    assert_refused(result, "diverged", "epoch 2, step 1", "keeps the last state saved")
    assert {name: (run_dir / name).read_bytes() for name in before} == before


def test_resume_on_data_with_the_same_counts_but_other_contents_is_refused(tmp_path):
    """A table whose labels were rewritten, an image folder whose class folders were swapped: the
    same counts and classes, other data. The run's fingerprint of its data says so."""
    table = tmp_path / "t.csv"
    rows = [f"{i % 7},{(i * 3) % 5},{i % 2}" for i in range(60)]
    table.write_text("a,b,y\n" + "\n".join(rows) + "\n")
    args = ["train", "--data", str(table), "--target", "y", "--epochs", "1", "--out", str(tmp_path)]
    assert run_main(*args, "--name", "table").returncode == 0
    table.write_text("a,b,y\n" + "\n".join(r[:-1] + str(1 - int(r[-1])) for r in rows) + "\n")
    assert_refused(run_main("train", "--resume", str(tmp_path / "table"), "--epochs", "2"), "other data",
                   "other contents")  # fmt: skip
    folder = tmp_path / "images"
    write_image_folder(folder, {"a": 6, "b": 6}, seed=1)
    assert run_main("train", "--data", str(folder), "--model", "linear", "--epochs", "1", "--out",
                    str(tmp_path / "runs"), "--name", "images").returncode == 0  # fmt: skip
    (folder / "a").rename(folder / "swap")
    (folder / "b").rename(folder / "a")
    (folder / "swap").rename(folder / "b")
    assert_refused(
        run_main("train", "--resume", str(tmp_path / "runs" / "images"), "--epochs", "2"), "other data"
    )
