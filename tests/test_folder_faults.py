"""Run and report folders under faults, with real processes: one writer per folder (a second is
refused with the holder's PID, and a lock dies with its process, kill -9 included), and a run killed
after its last checkpoint is completed by --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, run_main

from tocha.errors import TochaError
from tocha.locks import hold


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_a_held_lock_names_its_holder_and_dies_with_it(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from tocha.locks import hold\n"
        "with hold(Path(sys.argv[1]), 'testing'):\n"
        "    Path(sys.argv[1], 'held').touch(); time.sleep(60)"), str(tmp_path)])  # fmt: skip
    try:
        wait_for(tmp_path / "held")
        with pytest.raises(TochaError, match=f"in use by process {holder.pid} "), hold(tmp_path, "again"):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with hold(tmp_path, "after the holder died"):  # the kernel released it with the process
        assert (tmp_path / ".lock").read_text() == str(os.getpid())


def test_resume_is_refused_while_the_run_trains(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = ["train", "--data", "synthetic-linear", "--model", "linear", "--epochs", "100000",
               "--out", str(tmp_path), "--name", "r", "--no-progress"]  # fmt: skip
    trainer = subprocess.Popen([sys.executable, "-m", "tocha", *command], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    try:
        wait_for(tmp_path / "r" / "checkpoint.pt")
        refused = run_main("train", "--resume", tmp_path / "r")
        assert refused.returncode == 2, refused.stderr
        assert f"in use by process {trainer.pid}" in refused.stderr
    finally:
        trainer.send_signal(signal.SIGTERM)  # saves a resumable checkpoint and exits
        _, err = trainer.communicate(timeout=60)
    assert trainer.returncode != 0 and b"Continue with: tocha train --resume" in err
    # Once the trainer is gone (while it runs, its own writes come and go under temporary names),
    # the refused resume has left nothing behind.
    assert not [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith(".tmp-")]


def test_two_comparisons_in_one_report_folder_are_refused(tmp_path):
    report = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = ["compare", "--data", "synthetic-linear", "--model", "linear", "--epochs", "100000",
               "--vary", "train.lr=0.01,0.001", "--seeds", "1", "--out", str(report)]  # fmt: skip
    first = subprocess.Popen([sys.executable, "-m", "tocha", *command], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(report / "comparison.yaml")
        second = run_main(*command)
        assert second.returncode == 2 and f"in use by process {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


MISSING = [
    ("summary.json",),
    ("summary.json", "confusion_matrix.png", "curves.png"),
    ("summary.json", "metrics.csv"),
]


@pytest.mark.parametrize("missing", MISSING)
def test_a_run_killed_after_its_last_checkpoint_is_completed_by_resume(tmp_path, missing):
    """kill -9 after the final checkpoint but before the last files: --resume writes what is missing
    (metrics.csv from the checkpoint's history), without training again."""
    import json

    first = run_main(
        "train", "--data", "iris", "--model", "linear", "--epochs", "2", "--out", tmp_path, "--name", "r"
    )
    assert first.returncode == 0, first.stderr
    run = tmp_path / "r"
    kept = {name: (run / name).read_bytes() for name in ("summary.json", "metrics.csv", "checkpoint.pt")}
    for name in missing:
        (run / name).unlink()
    again = run_main("train", "--resume", run)
    assert again.returncode == 0, again.stderr
    assert (
        "writing the summary and figures" in again.stdout and "epoch 1/" not in again.stdout
    )  # nothing trained
    assert all((run / name).is_file() for name in missing)
    assert (run / "checkpoint.pt").read_bytes() == kept["checkpoint.pt"]  # nothing trained
    assert (run / "metrics.csv").read_text() == kept["metrics.csv"].decode()
    before, after = json.loads(kept["summary.json"]), json.loads((run / "summary.json").read_text())
    assert after["final_test_accuracy"] == before["final_test_accuracy"] and after["epochs"] == 2
    finished = run_main("train", "--resume", run)
    assert finished.returncode == 2 and "already finished its 2 epochs" in finished.stderr


def test_damaged_report_files_are_named_or_rebuilt(tmp_path):
    """A truncated summary.json of a finished run is written again from its checkpoint by the same
    compare command (nothing retrained); an empty or list-valued comparison.yaml is one clear line."""
    report = tmp_path / "report"
    command = ["compare", "--data", "iris", "--model", "linear", "--epochs", "2",
               "--vary", "train.lr=0.01,0.1", "--seeds", "1", "--out", report]  # fmt: skip
    assert run_main(*command).returncode == 0
    run = report / "runs" / "lr=0.01-seed0"
    checkpoint = (run / "checkpoint.pt").read_bytes()
    summary = run / "summary.json"
    summary.write_text(summary.read_text()[:40])  # cut mid-way
    again = run_main(*command)
    assert again.returncode == 0, again.stderr
    assert (
        json.loads(summary.read_text())["epochs"] == 2 and (run / "checkpoint.pt").read_bytes() == checkpoint
    )
    for damaged in ("", "- 1\n- 2\n"):
        (report / "comparison.yaml").write_text(damaged)
        refused = run_main(*command)
        assert refused.returncode == 2 and "comparison.yaml is damaged" in refused.stderr
        assert "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    "damage",
    [
        "metrics cut short",
        "summary NaN",
        "summary 1e308",
        "diverged cut short",
        "plan 5,000 deep",
        "plan 2 MB",
    ],
)
def test_damaged_compare_records_are_rebuilt_or_named_never_believed(tmp_path, damage):
    report = tmp_path / "report"
    command = ["compare", "--data", "iris", "--model", "linear", "--epochs", "2",
               "--vary", "train.lr=0.01,0.1", "--seeds", "1", "--out", report]  # fmt: skip
    assert run_main(*command).returncode == 0
    run = report / "runs" / "lr=0.01-seed0"
    summary, metrics = run / "summary.json", run / "metrics.csv"
    checkpoint = (run / "checkpoint.pt").read_bytes()
    if damage == "metrics cut short":
        metrics.write_text(metrics.read_text()[:-30])
    elif damage.startswith("summary"):
        record = json.loads(summary.read_text())
        record["final_test_accuracy"] = float("nan") if damage == "summary NaN" else 1e308
        summary.write_text(json.dumps(record))
    elif damage == "diverged cut short":
        (run / "diverged.json").write_text('{"epoch": 1, "st')
    elif damage == "plan 5,000 deep":
        (report / "comparison.yaml").write_text("[" * 5000 + "]" * 5000 + "\n")
    else:
        (report / "comparison.yaml").write_text("a: " + "x" * (2 << 20) + "\n")
    again = run_main(*command)
    if damage.startswith("plan"):
        assert again.returncode == 2 and "comparison.yaml is damaged" in again.stderr, again.stderr
        assert "Traceback" not in again.stderr
        return
    assert again.returncode == 0, again.stderr
    assert "inf" not in again.stdout and "nan" not in again.stdout.lower().replace("n/a", "")
    assert (run / "checkpoint.pt").read_bytes() == checkpoint  # written again from it, not retrained
    assert 0 <= json.loads(summary.read_text())["final_test_accuracy"] <= 1
    assert len(metrics.read_text().splitlines()) == 3


def test_a_comparison_never_mixes_one_and_several_processes(tmp_path):
    report = tmp_path / "report"
    command = [
        "compare",
        "--data",
        "iris",
        "--model",
        "linear",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--out",
        report,
    ]
    assert run_main(*command).returncode == 0
    mixed = run_main(*command, "--nproc", "2")
    assert (
        mixed.returncode == 2
        and "trains each run on 1 process(es); run it again with --nproc 1" in mixed.stderr
    )


def test_equal_values_spelt_differently_are_one_value(tmp_path):
    result = run_main("compare", "--data", "iris", "--vary", "lr=0.01,0.010,1e-2", "--out", tmp_path / "r")
    assert result.returncode == 2 and "0.01 and 0.010 are the same value" in result.stderr, result.stderr
    assert not (tmp_path / "r").exists()


def test_sigterm_as_a_finished_run_writes_its_files_ends_the_run_complete(tmp_path):
    """`tocha train` on its own: a SIGTERM that arrives after the last epoch and the test score (as
    the figures are written) lets every file be written and ends with 0 and a line saying the run is
    complete, rather than a silent 143 whose printed way on (`--resume`) would be refused."""
    import os
    import subprocess
    import sys

    code = ("import os, signal, sys\n"
            "import tocha.runs.folder as folder\n"
            "write = folder.RunFolder.write_figures\n"
            "def late(self, draw):\n"
            "    os.kill(os.getpid(), signal.SIGTERM)  # as the finished run writes its figures\n"
            "    write(self, draw)\n"
            "folder.RunFolder.write_figures = late\n"
            "from tocha.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, "train", "--data", "iris", "--model", "linear",
                           "--epochs", "1", "--out", str(tmp_path), "--name", "r"],
                          capture_output=True, text=True, env=os.environ.copy())  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SIGTERM arrived after training" in done.stdout and "the run is complete" in done.stdout
    run = tmp_path / "r"
    assert all((run / name).is_file() for name in ("summary.json", "curves.png", "metrics.csv"))
    again = run_main("train", "--resume", run)
    assert again.returncode == 2 and "nothing to resume" in again.stderr


def test_sigterm_as_a_finished_run_writes_its_files_stops_the_comparison(tmp_path):
    """The signal arrives while the first run, trained to its end, draws its figures: it finishes
    writing them (the run is kept whole) and the comparison stops there with 143, instead of going on
    through the grid and exiting 0 as if nothing had been asked."""
    import os
    import signal
    import subprocess
    import sys

    report = tmp_path / "report"
    code = ("import os, signal, sys\n"
            "import tocha.runs.folder as folder\n"
            "write = folder.RunFolder.write_figures\n"
            "def late(self, draw):\n"
            "    os.kill(os.getpid(), signal.SIGTERM)  # as the first finished run writes its figures\n"
            "    write(self, draw)\n"
            "folder.RunFolder.write_figures = late\n"
            "from tocha.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, "compare", "--data", "iris", "--model", "linear",
                           "--epochs", "1", "--vary", "lr=0.01,0.1", "--seeds", "1", "--out", str(report)],
                          capture_output=True, text=True, env=os.environ.copy())  # fmt: skip
    assert done.returncode == 128 + signal.SIGTERM, done.stdout + done.stderr
    assert "run the same tocha compare command again" in done.stderr
    first, second = report / "runs" / "lr=0.01-seed0", report / "runs" / "lr=0.1-seed0"
    assert (first / "summary.json").is_file() and (first / "curves.png").is_file()  # kept whole
    assert not second.exists()  # the grid did not go on
    again = ["compare", "--data", "iris", "--model", "linear", "--epochs", "1", "--vary", "lr=0.01,0.1",
             "--seeds", "1", "--out", report]  # fmt: skip
    assert run_main(*again).returncode == 0


def test_a_lock_is_removed_when_let_go_and_a_stale_opener_takes_the_new_one(tmp_path):
    """A finished holder removes `.lock`; a process that opened the old file just before holds a file
    no path names, sees it, and takes the lock on the file the path names now: never two holders."""
    import fcntl
    import os

    from tocha.errors import TochaError
    from tocha.locks import LOCK_NAME, hold

    with hold(tmp_path, "first"):
        stale = os.open(tmp_path / LOCK_NAME, os.O_RDWR)  # opened while held, as a racing process would
    assert not (tmp_path / LOCK_NAME).exists()  # let go of: removed
    fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the old file's lock is free, but names nothing
    with hold(tmp_path, "second"):
        assert (tmp_path / LOCK_NAME).is_file()
        with pytest.raises(TochaError, match="in use by process"):
            with hold(tmp_path, "third"):
                pass
    os.close(stale)


def test_an_image_folder_packed_as_a_tar_gz_trains_as_the_folder_and_a_hostile_one_is_refused(tmp_path):
    """`--data pack.tar.gz` (as the JPEG copy of CIFAR-10 comes): extracted once into the cache and
    read as the folder it holds, to the folder's very weights; an archive with a member leading out
    of its folder is refused in one line, nothing written outside."""
    import io
    import tarfile

    import torch
    from helpers import run_main, write_image_folder

    from tocha.runs.checkpoint import read_checkpoint

    write_image_folder(tmp_path / "pack" / "train", {"a": 12, "b": 12})
    write_image_folder(tmp_path / "pack" / "test", {"a": 4, "b": 4}, seed=1)
    with tarfile.open(tmp_path / "pack.tar.gz", "w:gz") as archive:
        for part in ("train", "test"):
            archive.add(tmp_path / "pack" / part, arcname=part)
    common = ["--model", "mlp", "--epochs", "1", "--out", tmp_path / "runs", "--no-progress"]
    assert run_main("train", "--data", tmp_path / "pack", *common, "--name", "folder").returncode == 0
    done = run_main("train", "--data", tmp_path / "pack.tar.gz", *common, "--name", "archive")
    assert done.returncode == 0, done.stderr
    a, b = (
        read_checkpoint(tmp_path / "runs" / "folder").weights,
        read_checkpoint(tmp_path / "runs" / "archive").weights,
    )
    assert all(torch.equal(a[k], b[k]) for k in a)

    with tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as archive:
        member = tarfile.TarInfo("../escaped.txt")
        member.size = 3
        archive.addfile(member, io.BytesIO(b"bad"))
    done = run_main("train", "--data", tmp_path / "evil.tar.gz", *common)
    assert done.returncode == 2 and "cannot extract it as an image folder" in done.stderr
    assert not any(p.name == "escaped.txt" for p in tmp_path.rglob("*"))
