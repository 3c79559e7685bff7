"""Training on several processes with torchrun + DistributedDataParallel (gloo on the CPU): the same
weights as one process, a stop agreed by every rank and an exact resume, a killed rank, two
torchrun agents meeting on 127.0.0.1 as two nodes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import run_main
from test_resume import assert_same, metrics_rows, wait_for

from tocha.config import RunConfig, set_value
from tocha.errors import TochaError
from tocha.runs import RunFolder
from tocha.runs.checkpoint import load_checkpoint
from tocha.training import resume, train

# tanh, not ReLU: one process and two round their sums differently, and with ReLU an input within
# rounding of 0 can switch off in one and not the other, which moves the weights 1e-5..1e-3 apart
# on some CPUs (tests/test_loop.py); with tanh they stay 1e-7 apart.
# The 3,601 training images the validation carve leaves: 36 batches of 100, then a last batch of one
# image, fewer than the processes: one rank takes it, the other a stand-in weighted 0, and two
# processes still train what one does (`data.batches`).
ARGS = ["--data", "mnist-sample", "--model", "mlp", "--hidden-sizes", "64",
        "--activation", "tanh", "--batch-size", "100", "--optimizer", "sgd", "--lr", "0.05", "--seed", "3",
        "--no-progress"]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def tocha(*args: str, out: Path, name: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tocha", "train", *args, "--out", str(out), "--name", name]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)


def start(*args: str, out: Path, name: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "tocha", "train", *args, "--out", str(out), "--name", name]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def resume_command(run_dir: Path) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "tocha",
        "train",
        "--resume",
        str(run_dir),
        "--nproc",
        "2",
        "--no-progress",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir)["model"]


# Two epochs of ARGS on one process and on two: the reference runs that three tests compare their
# own with, trained once for the module (no test changes their folders).
@pytest.fixture(scope="module")
def one_process(tmp_path_factory):  # noqa: ANN201 - a TrainResult
    """ARGS for two epochs on one process: this one."""
    config = RunConfig(out_dir=str(tmp_path_factory.mktemp("one")), run_name="one")
    for key, value in {"data.name": "mnist-sample", "model.name": "mlp",
                       "model.hidden_sizes": [64],
                       "model.activation": "tanh", "train.batch_size": 100, "train.optimizer": "sgd",
                       "train.lr": 0.05, "train.seed": 3,
                       "train.epochs": 2}.items():  # fmt: skip
        set_value(config, key, value)
    return train(config, log=lambda _l: None, progress=False)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """ARGS for two epochs on two local processes (`--nproc 2`): what it printed, its run folder."""
    out = tmp_path_factory.mktemp("two")
    return tocha(*ARGS, "--epochs", "2", "--nproc", "2", out=out, name="two"), out / "two"


def test_two_processes_train_the_weights_one_process_trains(one_process, two_processes):
    """Every one of the 3,601 images, the last batch of one image included: the weights within 1e-6,
    the same accuracies, the test score within 1e-6."""
    two, two_dir = two_processes
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("done:") == 1 and two.stdout.count("epoch 2/2") == 1  # rank 0 speaks
    one = one_process
    a, b = weights(one.run_dir), weights(two_dir)
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    h1, h2 = one.history, load_checkpoint(two_dir)["history"]
    for r1, r2 in zip(h1, h2, strict=True):  # the validation split, sharded like the test split
        assert r1["val_accuracy"] == r2["val_accuracy"] and r1["train_accuracy"] == r2["train_accuracy"]
        assert r1["val_loss"] == pytest.approx(r2["val_loss"], abs=1e-6)
        assert r1["train_loss"] == pytest.approx(r2["train_loss"], abs=1e-6)
    assert one.final.metrics() == pytest.approx(RunFolder(two_dir).read_summary().final_test, abs=1e-6)
    ckpt = load_checkpoint(two_dir)
    assert ckpt["training_state"]["world_size"] == 2 and len(ckpt["training_state"]["rank_states"]) == 2
    assert [p.name for p in two_dir.parent.iterdir()] == ["two"]  # one folder, written by rank 0


def test_sigterm_stops_every_rank_at_one_step_and_resume_is_exact(tmp_path):
    run = [*ARGS, "--epochs", "3", "--nproc", "2", "--schedule", "plateau", "--plateau-patience", "0",
           "--early-stop", "2", "--ema-decay", "0.9", "--augment-translate", "2"]  # fmt: skip
    straight = tocha(*run, out=tmp_path, name="straight")
    assert straight.returncode == 0, straight.stderr
    process = start(*run, out=tmp_path, name="stopped")
    wait_for(lambda: metrics_rows(tmp_path / "stopped") >= 1 or process.poll() is not None, what="epoch 1")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert stderr.count("stopped by SIGTERM") == 1 and "Traceback" not in stderr
    assert f"Continue with: tocha train --resume {tmp_path / 'stopped'} --nproc 2" in stderr  # as it trained
    saved = load_checkpoint(tmp_path / "stopped")
    assert not saved["finished"] and saved["training_state"]["world_size"] == 2
    with pytest.raises(TochaError, match=r"training on 2 process\(es\), not 1.*--nproc 2"):
        resume(tmp_path / "stopped", log=lambda _l: None)  # one process cannot go on exactly
    resumed = resume_command(tmp_path / "stopped")
    assert resumed.returncode == 0, resumed.stderr
    assert_same(load_checkpoint(tmp_path / "stopped"), load_checkpoint(tmp_path / "straight"))


def test_a_killed_rank_fails_the_job_and_the_last_checkpoint_resumes(tmp_path):
    process = start(
        *ARGS, "--hidden-sizes", "512,512", "--epochs", "6", "--nproc", "2", out=tmp_path, name="run"
    )
    wait_for(lambda: metrics_rows(tmp_path / "run") >= 1 or process.poll() is not None, what="epoch 1")
    ranks = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert len(ranks) == 2, ranks
    os.kill(int(ranks[-1]), signal.SIGKILL)
    process.communicate(timeout=120)
    assert process.returncode != 0
    before = load_checkpoint(tmp_path / "run")
    assert 1 <= before["epoch"] < 6
    resumed = resume_command(tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(tmp_path / "run")["finished"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_on_loopback_train_what_two_local_processes_train(tmp_path, two_processes):
    local, local_dir = two_processes
    assert local.returncode == 0, local.stderr
    endpoint = f"127.0.0.1:{free_port()}"
    agents = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                "--nproc-per-node=1",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint={endpoint}",
                "--rdzv-id=tocha-test",
                f"--node-rank={node}",
                "-m",
                "tocha",
                "train",
                *ARGS,
                "--epochs",
                "2",
                "--out",
                str(tmp_path),
                "--name",
                "nodes",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )  # fmt: skip
        for node in (0, 1)
    ]
    deadline = time.monotonic() + 120
    for agent in agents:
        agent.communicate(timeout=max(1, deadline - time.monotonic()))
        assert agent.returncode == 0
    a, b = weights(local_dir), weights(tmp_path / "nodes")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_sync_batchnorm_on_the_cpu_is_refused_with_the_reason(tmp_path):
    done = tocha("--data", "mnist-sample", "--model", "resnet", "--widths", "4,8,8,8", "--epochs", "1",
                 "--nproc", "2", "--sync-batchnorm", "--no-progress", out=tmp_path, name="bn")  # fmt: skip
    assert done.returncode == 2 and "SyncBatchNorm does not run on the CPU" in done.stderr


def test_compare_trains_each_run_on_several_processes(tmp_path):
    from tocha.experiments.compare import compare

    base = RunConfig()
    for key, value in {"data.name": "mnist-sample", "model.name": "mlp", "train.epochs": 1,
                       "train.optimizer": "sgd", "train.batch_size": 100}.items():  # fmt: skip
        set_value(base, key, value)
    result = compare(base, ["lr=0.01,1000"], [0], tmp_path / "report", log=lambda _l: None, nproc=2)
    (good, blown) = result.results
    assert len(good.runs) == 1 and blown.diverged == [0]  # a diverged run on 2 processes is a result too
    assert load_checkpoint(good.runs[0].run_dir)["training_state"]["world_size"] == 2


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (an ended child its parent has not reaped counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_a_stopped_rank_fails_the_job_in_its_timeout_naming_it(tmp_path):
    """SIGSTOP of one rank left the other waiting in a gloo collective for torch's 30 minutes with
    nothing printed: with --collective-timeout the waiting rank says which is silent, in one line."""
    process = start(
        *ARGS, "--epochs", "500", "--nproc", "2", "--collective-timeout", "5", out=tmp_path, name="run"
    )
    wait_for(lambda: metrics_rows(tmp_path / "run") >= 1 or process.poll() is not None, what="epoch 1")
    ranks = sorted(int(p) for p in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                                   text=True).stdout.split())  # fmt: skip
    assert len(ranks) == 2, ranks
    os.kill(ranks[-1], signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        # Rank 0 gives up after the timeout; then torchrun would wait 30 s for the stopped rank to
        # heed its SIGTERM: the test ends that rank itself once rank 0 has ended, to save the wait.
        wait_for(lambda: not alive(ranks[0]), what="rank 0 to give up", timeout=60)
        os.kill(ranks[-1], signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
    finally:
        for pid in ranks:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert process.returncode == 2, stderr
    assert "rank 0: no answer from rank 1 within 5 s (--collective-timeout)" in stderr
    assert "Traceback" not in stderr and time.monotonic() - stopped_at < 90


def test_a_full_disk_under_two_processes_is_one_line_from_each(tmp_path):
    """Rank 0 cannot write its checkpoint: it says so; rank 1, whose collective then fails, says in
    one line that another process failed (it printed gloo's 30-line traceback)."""
    from test_filesystem_faults import mounted

    with mounted(tmp_path / "small", "size=400k") as small:
        done = tocha(*ARGS, "--hidden-sizes", "512,512", "--epochs", "3", "--nproc", "2", out=small, name="r")
    lines = [line for line in done.stderr.splitlines() if line.startswith("tocha:")]
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert any("no space left on the device" in line for line in lines), done.stderr
    assert any("rank 1 stopped: another process of the run failed" in line for line in lines), done.stderr


def test_two_processes_reading_a_prepared_folder_from_disk_train_what_one_does_in_memory(
    tmp_path, one_process
):
    """Each process reads only its share of every batch from the file; together they train the
    weights one process trains on the same images held in memory."""
    from tocha.data.prepare import prepare

    prepare("mnist-sample", tmp_path / "prep", log=lambda _line: None)
    on_disk = [tmp_path / "prep" if a == "mnist-sample" else a for a in ARGS]
    two = tocha(*map(str, on_disk), "--in-memory", "no", "--epochs", "2", "--nproc", "2", out=tmp_path,
                name="two")  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert "training images read from disk a batch at a time" in two.stdout
    a, b = weights(one_process.run_dir), weights(tmp_path / "two")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_a_text_run_on_two_processes_trains_what_one_process_trains(tmp_path):
    """A GRU on texts of several lengths, batched by `--shuffle lengths`: each rank cuts its half of
    a batch to its own longest text (padding changes no answer), and DDP's average of the two halves'
    gradients is the one-process gradient of the whole batch."""
    from text_data import order_texts

    data = order_texts(tmp_path / "order.csv", n=400)
    args = ["--data", str(data), "--text", "text", "--target", "label", "--drop", "id", "--model", "gru",
            "--hidden-size", "32", "--batch-size", "32", "--lr", "0.01", "--shuffle", "lengths", "--epochs",
            "2", "--no-progress"]  # fmt: skip
    one = run_main("train", *args, "--out", tmp_path, "--name", "one")  # one process: this one
    two = tocha(*args, "--nproc", "2", out=tmp_path, name="two")
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    h1, h2 = load_checkpoint(tmp_path / "one")["history"], load_checkpoint(tmp_path / "two")["history"]
    assert [r["val_accuracy"] for r in h1] == [r["val_accuracy"] for r in h2]
