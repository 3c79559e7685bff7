"""The Lightning adapter: tocha's data and models under `lightning.Trainer`, DDP included, and a
Lightning checkpoint turned into a tocha run that evaluate, predict and export take."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import pytest
from helpers import REPO, run_main
from trained_runs import train_quick

L = pytest.importorskip("lightning", reason="the lightning extra: pip install -e .[lightning]")


def test_importing_tocha_never_imports_lightning():
    code = ("import sys, tocha, tocha.cli, tocha.api, tocha.training, tocha.inference.predict; "
            "print('lightning' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def lightning_accuracy(tmp_path, seed: int) -> float:
    from tocha.lightning import TochaDataModule, TochaModule

    data = TochaDataModule(data="mnist-sample", model="mlp", epochs=1, seed=seed)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False,
                        default_root_dir=str(tmp_path))  # fmt: skip
    module = TochaModule.for_data(data)
    trainer.fit(module, data)
    assert len(data.val_dataloader().data) == 399 and len(data.test_dataloader().data) == 1000  # the splits
    assert 0.8 < float(trainer.callback_metrics["val_accuracy"]) <= 1  # validation: what choices see
    trainer.test(module, data, verbose=False)  # the test split, once, at the end
    return float(trainer.callback_metrics["test_accuracy"])


def test_one_epoch_through_the_trainer_reaches_tochas_accuracy(tmp_path):
    seeds = [0, 1, 2]
    through_lightning = [lightning_accuracy(tmp_path / f"l{s}", s) for s in seeds]
    through_tocha = [train_quick(tmp_path / f"t{s}", data__name="mnist-sample", model__name="mlp",
                                 train__epochs=1, train__seed=s).final.accuracy for s in seeds]  # fmt: skip
    spread = max(statistics.stdev(through_tocha), statistics.stdev(through_lightning), 0.002)
    assert abs(statistics.fmean(through_lightning) - statistics.fmean(through_tocha)) <= 2 * spread
    assert min(through_lightning) > 0.8  # it learns: a tenth would be chance


def test_the_data_module_trains_from_a_prepared_folder_on_disk_as_from_memory(tmp_path):
    import torch

    from tocha.data.prepare import prepare
    from tocha.lightning import TochaDataModule, TochaModule

    prepare("mnist-sample", tmp_path / "prep", log=lambda _line: None)

    def fitted(in_memory: str) -> dict[str, torch.Tensor]:
        data = TochaDataModule(data=str(tmp_path / "prep"), model="mlp", epochs=1, in_memory=in_memory,
                               shuffle="blocks", threads=1)  # fmt: skip
        trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                            enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                            default_root_dir=str(tmp_path / in_memory))  # fmt: skip
        module = TochaModule.for_data(data)
        trainer.fit(module, data)
        on_disk = not isinstance(data.prepare().train.images, torch.Tensor)
        assert on_disk == (in_memory == "no")
        return module.model.state_dict()

    from_disk, from_memory = fitted("no"), fitted("yes")
    assert all(torch.equal(from_disk[k], from_memory[k]) for k in from_memory)


def test_ddp_on_two_processes_and_the_checkpoint_becomes_a_tocha_run(tmp_path):
    script = REPO / "examples" / "lightning_train.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(script), "--devices", "2", "--epochs", "1", "--out", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("tocha run folder") == 1  # rank 0 converts it
    said = next(line for line in done.stdout.splitlines() if "tocha run folder" in line)
    assert "val metrics {'val_" in said and "test metrics of the best weights {'test_" in said
    run = tmp_path / "lightning-mlp"
    evaluated = run_main("evaluate", str(run), "--out", str(tmp_path / "eval"))
    assert evaluated.returncode == 0, evaluated.stderr
    accuracy = json.loads((tmp_path / "eval" / "evaluation.json").read_text())["accuracy"]
    assert accuracy > 0.8 and f"{100 * accuracy:.2f}%" in evaluated.stdout
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(image)
    predicted = run_main("predict", str(run), str(image), "--json")
    assert predicted.returncode == 0 and len(json.loads(predicted.stdout)[0]["top"]) == 3
    pytest.importorskip("onnxruntime")
    exported = run_main("export", str(run), "--format", "onnx")
    assert exported.returncode == 0, exported.stderr
    assert json.loads((run / "model.onnx.parity.json").read_text())["ok"]
