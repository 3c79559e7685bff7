"""`--log tensorboard`: real event files, read back with TensorBoard's own `EventAccumulator`, hold
what metrics.csv holds; a resumed run's steps are not counted twice; compare writes one run per
cell and seed; the page itself, served by a real `tensorboard` process, in a real browser."""

from __future__ import annotations

import csv
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import run_main, stopped_after_epoch_one_then_resumed

pytest.importorskip("tensorboard", reason='the tensorboard extra: pip install -e ".[tensorboard]"')
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from tocha.config import RunConfig, set_value  # noqa: E402
from tocha.models.code_trust import CodeTrust  # noqa: E402
from tocha.training import train  # noqa: E402
from tocha.training.tensorboard_log import STEP_EVERY  # noqa: E402

QUIET = {"log": lambda _line: None, "progress": False}


def events(run: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def config(tmp_path: Path, name: str, epochs: int = 3) -> RunConfig:
    cfg = RunConfig(out_dir=str(tmp_path / "runs"), run_name=name)
    values = {"data.name": "mnist-sample", "model.name": "mlp", "train.epochs": epochs, "train.threads": 1,
              "train.log": "tensorboard", "train.batch_size": 32}  # fmt: skip
    for key, value in values.items():
        set_value(cfg, key, value)
    return cfg


def test_the_events_hold_what_metrics_csv_holds(tmp_path):
    result = train(config(tmp_path, "run"), **QUIET)
    found = events(result.run_dir)
    with (result.run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    steps = 3597 // 32 + 1  # the sample's training images after the validation carve, in batches of 32
    for column in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        split, metric = column.split("_", 1)
        logged = found.Scalars(f"{metric}/{split}")
        assert [e.step for e in logged] == [steps * e for e in (1, 2, 3)]  # at the step each epoch ends on
        assert [e.value for e in logged] == pytest.approx([float(r[column]) for r in rows], rel=1e-6)
    losses = found.Scalars("step/loss")
    every = [epoch * steps + step for epoch in range(3) for step in range(STEP_EVERY, steps + 1, STEP_EVERY)]
    assert [e.step for e in losses] == every  # every STEP_EVERY-th step of each epoch
    assert losses[0].value > losses[-1].value  # it learns
    rates = [e.value for e in found.Scalars("step/lr")]
    assert len(rates) == len(losses) and rates == pytest.approx([result.config.train.lr] * len(rates))
    assert set(found.Tags()["images"]) == {"figures/curves", "figures/confusion_matrix"}
    assert found.Scalars("hparam/test_accuracy")[0].value == pytest.approx(result.final.accuracy, rel=1e-6)
    assert "_hparams_/session_start_info" in found.PluginTagToContent("hparams")


def test_a_resumed_run_appends_its_steps_once_to_the_same_values(tmp_path):
    straight = train(config(tmp_path, "straight"), **QUIET)
    resumed = stopped_after_epoch_one_then_resumed(config(tmp_path, "stopped"))
    for tag in ("step/loss", "loss/val", "accuracy/train"):
        once = [(e.step, e.value) for e in events(straight.run_dir).Scalars(tag)]
        again = [(e.step, e.value) for e in events(resumed.run_dir).Scalars(tag)]
        assert again == once, tag  # every step once, with the values of the run never stopped


def test_compare_writes_a_run_per_cell_and_seed_and_a_missing_extra_is_one_line(tmp_path):
    done = run_main("compare", "--data", "mnist-sample", "--model", "mlp", "--vary", "lr=0.01,0.1", "--seeds",
                    "2", "--epochs", "1", "--log", "tensorboard", "--out", tmp_path / "report")  # fmt: skip
    assert done.returncode == 0, done.stderr
    logs = sorted((tmp_path / "report").rglob("tb"))
    assert len(logs) == 4 and all(events(p.parent).Scalars("loss/val") for p in logs)
    blocked = ("import sys; sys.modules['tensorboard'] = None; from tocha.cli import main; "
               "sys.exit(main(sys.argv[1:]))")  # fmt: skip
    command = [sys.executable, "-c", blocked, "train", "--data", "mnist-sample", "--log", "tensorboard",
               "--out", str(tmp_path / "none")]  # fmt: skip
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and 'pip install "tocha[tensorboard]"' in refused.stderr
    assert not (tmp_path / "none").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_tensorboard_page_shows_the_run_in_a_real_browser(tmp_path):
    from test_serve import CHROMIUM, SCREENSHOTS, browser_or_skip

    sync_playwright = browser_or_skip()
    train(config(tmp_path, "mlp-on-mnist-sample", epochs=4), **QUIET)
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path / "runs"),
                              "--host", "127.0.0.1", "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if "mlp-on-mnist-sample" in httpx.get(f"http://127.0.0.1:{port}/data/runs", timeout=2).text:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and board.poll() is None, "tensorboard did not start"
            time.sleep(0.5)
        shots = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(
                f"http://127.0.0.1:{port}/?tagFilter=%5E(loss|accuracy)%2F&_smoothingWeight=0#timeseries"
            )
            page.get_by_text("loss/val").first.wait_for(timeout=60_000)
            page.get_by_text("mlp-on-mnist-sample").first.wait_for(timeout=60_000)
            time.sleep(2)  # the charts draw after their data arrives
            page.screenshot(path=str(shots / "tensorboard.png"))
            browser.close()
        assert (shots / "tensorboard.png").stat().st_size > 20_000
    finally:
        board.send_signal(signal.SIGTERM)
        board.communicate(timeout=30)


def test_your_own_model_with_arguments_logs_its_hparams(tmp_path):
    """A model's arguments (numbers, lists) reach TensorBoard's HParams as values it
    takes: each argument by its own key, nothing left that add_hparams refuses, no lock left."""
    (tmp_path / "net.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n"
        "    def __init__(self, hidden=8, sizes=(4, 2)):\n        super().__init__()\n"
        "        self.body = nn.Sequential(\n"
        "            nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10)\n        )\n\n"
        "    def forward(self, x):\n        return self.body(x)\n"
    )
    cfg = config(tmp_path, "own", epochs=1)
    set_value(cfg, "model.name", f"{tmp_path / 'net.py'}:Net")
    set_value(cfg, "model.args", {"hidden": 16, "sizes": [8, 4]})
    result = train(cfg, trust=CodeTrust.NAMED, **QUIET)  # named in this call, as --model names it
    found = events(result.run_dir)
    assert found.Scalars("hparam/test_accuracy")[0].value == pytest.approx(result.final.accuracy, rel=1e-6)
    assert not (result.run_dir / ".lock").exists()
