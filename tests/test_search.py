"""`tocha search`: a real Optuna study in SQLite, trials that are real runs, pruning on the
validation metric, a search killed (SIGTERM, SIGKILL) and run again that ends with the trials asked
for and none counted twice, `--confirm` reported as compare reports, and bad input in one line."""

from __future__ import annotations

import csv
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from helpers import run_main

pytest.importorskip("optuna", reason='the search extra: pip install -e ".[search]"')

BASE = ("--data", "mnist-sample", "--model", "mlp", "--epochs", "2", "--threads", "1")
SPACE = ("--space", "lr=log:1e-4:1e-1", "--space", "hidden_sizes=choice:32|64,32", "--space",
         "optimizer=choice:sgd|adam")  # fmt: skip


def states(report) -> dict[str, int]:
    with sqlite3.connect(report / "study.db") as db:
        rows = db.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall()
    return dict(rows)


def test_a_search_with_pruning_and_confirmation(tmp_path):
    report = tmp_path / "search"
    done = run_main("search", *BASE, *SPACE, "--trials", "6", "--prune", "median", "--confirm", "2",
                    "--seeds", "2", "--out", report)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with (report / "search.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    assert all(1e-4 <= float(r["train.lr"]) <= 1e-1 for r in rows)
    assert {r["model.hidden_sizes"] for r in rows} <= {"32", "64,32"}
    for figure in ("history.png", "parameters.png", "importances.png"):
        assert (report / figure).read_bytes()[:4] == b"\x89PNG"
    assert len(list((report / "trials").iterdir())) == 6  # each trial a run folder
    best = max((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: float(r["value"]))
    assert f"best: trial {best['trial']}," in done.stdout
    # said as compare says it: accuracy in %, a drawn rate to 4 significant digits
    best_line = next(line for line in done.stdout.splitlines() if line.startswith("best: trial"))
    assert re.search(r"val_accuracy \d+\.\d\d%$", best_line), best_line
    trials = [line for line in done.stdout.splitlines() if line.startswith(("trial ", "best: trial"))]
    assert trials and not any(re.search(r"\d\.\d{7,}", line) for line in trials), trials
    summary = (report / "confirm" / "summary.csv").read_text()
    assert (
        summary.count("\n") == 3 and "validation" in done.stdout
    )  # 2 configurations, ranked as compare does
    assert "verdict" in done.stdout and (report / "confirm" / "report.md").is_file()


def test_a_search_killed_mid_trial_goes_on_and_counts_each_trial_once(tmp_path):
    """SIGTERM during the second trial, the same command again, SIGKILL during its next trial, the
    same command again: the trials asked for, each stopped one failed and never counted."""
    report = tmp_path / "search"
    command = [sys.executable, "-m", "tocha", "search", *BASE, "--epochs", "6", *SPACE, "--trials", "4",
               "--out", str(report)]  # fmt: skip
    for sig, trial in ((signal.SIGTERM, 1), (signal.SIGKILL, 3)):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (report / "trials" / f"trial-{trial:04d}" / "metrics.csv").exists():  # it is training
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
        if sig == signal.SIGTERM:
            assert process.returncode == 143 and "Continue with: the same tocha search command" in stderr
        else:
            assert process.returncode == -signal.SIGKILL
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "going on with the search in" in again.stdout and ": 2 of 4 trials finished" in again.stdout
    counted = states(report)
    assert counted.get("COMPLETE", 0) + counted.get("PRUNED", 0) == 4  # the trials asked for, no more
    assert counted.get("FAIL", 0) == 2 and counted.get("RUNNING", 0) == 0  # the stopped ones, not counted
    with (report / "search.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["trial"]) for r in rows] == list(range(6))  # every trial once
    assert len({r["train.lr"] for r in rows}) == 6  # each start drew new points, not its first ones again


TINY = ("--data", "mnist-sample", "--model", "linear", "--epochs", "1", "--train-limit", "300",
        "--threads", "1", "--space", "lr=log:1e-4:1e-1", "--sampler", "random")  # fmt: skip


def rates(report) -> list[str]:
    """Each trial's rate, in trial order, as search.csv records it."""
    with (report / "search.csv").open() as f:
        return [r["train.lr"] for r in csv.DictReader(f)]


def test_a_search_extended_draws_what_a_search_run_straight_draws(tmp_path):
    """3 trials, then the same command asking for 5: the 2 more are new points, and trial n is the
    point a 5-trial search run straight draws as its trial n (each trial's sampler is seeded from
    its number; one sampler seeded once per start drew trials 0 and 1 again)."""
    for trials, report in (("3", "extended"), ("5", "extended"), ("5", "straight")):
        done = run_main("search", *TINY, "--trials", trials, "--out", tmp_path / report)
        assert done.returncode == 0, done.stderr
    extended = rates(tmp_path / "extended")
    assert len(extended) == len(set(extended)) == 5
    assert extended == rates(tmp_path / "straight")


def test_a_damaged_study_is_refused_and_nothing_is_changed(tmp_path):
    """An empty study.db, random bytes, an SQLite file without the trials table, one whose study
    is not tocha's: one line naming the file, and study.db, search.csv and the trials as they were
    (Optuna would have made a new study in it, and the report lost the trials run)."""
    import random
    import shutil

    first = run_main("search", *TINY, "--trials", "1", "--out", tmp_path / "made")
    assert first.returncode == 0, first.stderr

    def in_sqlite(statement: str):  # noqa: ANN202
        def damage(path) -> None:  # noqa: ANN001
            db = sqlite3.connect(path)
            db.execute(statement)
            db.commit()
            db.close()

        return damage

    damages = {
        "empty": (lambda path: path.write_bytes(b""), "empty (0 bytes)"),
        "random bytes": (lambda path: path.write_bytes(random.Random(0).randbytes(8192)), "not an SQLite"),
        "no trials table": (in_sqlite("DROP TABLE trials"), "without Optuna's table(s) trials"),
        "another study": (in_sqlite("UPDATE studies SET study_name = 'x'"), "holds no study named 'tocha'"),
    }
    for name, (damage, said) in damages.items():
        report = tmp_path / name
        shutil.copytree(tmp_path / "made", report)
        damage(report / "study.db")
        before = {p: p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file() and p.name != ".lock"}
        result = run_main("search", *TINY, "--trials", "2", "--out", report)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
        assert f"{report / 'study.db'}: " in result.stderr and said in result.stderr, (name, result.stderr)
        assert "nothing was changed" in result.stderr
        after = {p: p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file() and p.name != ".lock"}
        assert after == before, name  # study.db, search.csv and every trial's files, byte for byte


def test_bad_searches_are_one_line(tmp_path):
    cases = [
        (("--space", "lr=uniform:0:1"), "give KEY=log:LOW:HIGH"),
        (("--space", "optimizer=choice:sgd||adam"), "an empty choice"),
        (("--space", "lr=log:0:0.1"), "a log scale needs bounds above 0"),
        (("--space", "optimizer=choice:sgd|nope"), "nope"),
        (
            ("--space", "lr=log:1e-4:1e-1", "--prune", "median", "--val-fraction", "0"),
            "needs a validation split",
        ),
        (
            ("--space", "lr=log:1e-4:1e-1", "--log", "tensorboard", "--trials", "0"),
            "--trials must be at least 1",
        ),
        ((), "needs at least one --space"),
    ]
    for flags, message in cases:
        result = run_main("search", *BASE, *flags, "--out", tmp_path / "bad")
        assert result.returncode == 2 and message in result.stderr, (flags, result.stderr)
        assert not (tmp_path / "bad").exists() or not (tmp_path / "bad" / "study.db").exists()
    first = run_main("search", *BASE, "--space", "lr=log:1e-3:1e-2", "--trials", "1", "--out", tmp_path / "s")
    assert first.returncode == 0, first.stderr
    other = run_main("search", *BASE, "--space", "lr=log:1e-4:1e-2", "--trials", "1", "--out", tmp_path / "s")
    assert other.returncode == 2 and "made by another command" in other.stderr
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("x")
    taken = run_main("search", *BASE, "--space", "lr=log:1e-3:1e-2", "--out", tmp_path / "notes")
    assert taken.returncode == 2 and "not empty and holds no search" in taken.stderr
    blocked = (
        "import sys; sys.modules['optuna'] = None; from tocha.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    missing = subprocess.run([sys.executable, "-c", blocked, "search", *BASE, "--space", "lr=log:1e-3:1e-2",
                              "--out", str(tmp_path / "none")], capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 2 and 'pip install "tocha[search]"' in missing.stderr
