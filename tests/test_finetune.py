"""Fine-tuning: weights from a trained run, a new head for new classes, a frozen backbone, exact resume."""

from __future__ import annotations

import shutil
import signal

import pytest
import torch
from test_resume import assert_same
from trained_runs import train_quick

from tocha.config import RunConfig, set_value
from tocha.errors import Interrupted, TochaError
from tocha.runs.checkpoint import load_checkpoint
from tocha.training import resume, train
from tocha.training.interrupt import StopRequest
from tocha.training.setup import build_setup


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A small ResNet (it has batch norms) trained on MNIST digits."""
    out = tmp_path_factory.mktemp("source")
    return train_quick(out, data__name="mnist-sample", model__name="resnet", model__widths=[4, 8, 8, 8],
                       train__epochs=1, train__batch_size=128)  # fmt: skip


def config(tmp_path, **values) -> RunConfig:
    cfg = RunConfig(out_dir=str(tmp_path))
    for key, value in values.items():
        set_value(cfg, key.replace("__", "."), value)
    return cfg


def quiet(_line: str) -> None:
    pass


def test_the_same_classes_load_every_weight(tmp_path, source):
    lines = []
    s = build_setup(
        config(tmp_path, data__name="mnist-sample", train__init_from=str(source.run_dir)), lines.append
    )
    saved = load_checkpoint(source.run_dir)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in s.model.state_dict().items())
    assert s.cfg.model.name == "resnet" and s.cfg.model.args["widths"] == [4, 8, 8, 8]  # the source's model
    assert any("every weight loaded" in line for line in lines)


def test_other_classes_get_a_new_head_and_keep_the_backbone(tmp_path, source):
    lines = []
    cfg = config(tmp_path, data__name="fashion-mnist-sample", train__init_from=str(source.run_dir))
    s = build_setup(cfg, lines.append)
    saved = load_checkpoint(source.run_dir)["model"]
    new = s.model.state_dict()
    assert any("new classifier" in line and "freshly initialised" in line for line in lines), lines
    changed = {k for k in new if not torch.equal(new[k], saved[k])}
    assert changed and all(k.rsplit(".", 1)[0] in lines[-1] for k in changed), (changed, lines[-1])
    assert len(s.cfg.train.init_from_sha256 or "") == 64


def test_freeze_backbone_trains_the_head_only(tmp_path, source):
    cfg = config(tmp_path, data__name="fashion-mnist-sample", data__train_limit=500, train__epochs=1,
                 train__init_from=str(source.run_dir), train__freeze="backbone")  # fmt: skip
    run = train(cfg, log=quiet, progress=False)
    before, after = load_checkpoint(source.run_dir)["model"], load_checkpoint(run.run_dir)["model"]
    changed = {k.rsplit(".", 1)[0] for k in after if not torch.equal(after[k], before[k])}
    assert len(changed) == 1  # the classifier, and nothing else: not even batch-norm statistics
    ckpt = load_checkpoint(run.run_dir)
    (group,) = ckpt["optimizer"]["param_groups"]
    assert len(group["params"]) == 2  # the optimizer holds the head's weight and bias only


def test_freeze_epochs_then_unfreezes_with_a_lower_backbone_rate(tmp_path, source):
    cfg = config(tmp_path, data__name="fashion-mnist-sample", data__train_limit=500, train__epochs=2,
                 train__init_from=str(source.run_dir), train__freeze="backbone", train__freeze_epochs=1,
                 train__lr=0.01, train__backbone_lr_mult=0.25)  # fmt: skip
    run = train(cfg, log=quiet, progress=False)
    before, after = load_checkpoint(source.run_dir)["model"], load_checkpoint(run.run_dir)["model"]
    assert sum(not torch.equal(after[k], before[k]) for k in after) > 4  # the backbone trained too
    head, backbone = load_checkpoint(run.run_dir)["optimizer"]["param_groups"]
    assert head["lr"] == 0.01 and backbone["lr"] == pytest.approx(0.0025) and len(head["params"]) == 2


def test_a_fine_tuned_run_resumes_exactly_across_the_phase_change(tmp_path, source):
    values = dict(data__name="fashion-mnist-sample", data__train_limit=600, train__epochs=3,
                  train__batch_size=100, train__init_from=str(source.run_dir), train__freeze="backbone",
                  train__freeze_epochs=1, train__schedule="cosine", train__optimizer="sgd",
                  train__lr=0.05)  # fmt: skip
    straight = train(config(tmp_path / "a", **values), log=quiet, progress=False)

    class StopAt(StopRequest):  # a stop request in the middle of epoch 2, the first unfrozen one
        calls = 0

        def __call__(self) -> bool:
            self.calls += 1
            if self.calls == 10:
                self.request(signal.SIGTERM)
            return super().__call__()

    with pytest.raises(Interrupted, match="at epoch 2, step"):
        train(config(tmp_path / "b", **values), log=quiet, progress=False, stop=StopAt())
    stopped = next((tmp_path / "b").iterdir())
    moved = shutil.move(source.run_dir, tmp_path / "gone")  # a resume needs its own weights only
    try:
        resumed = resume(stopped, log=quiet, progress=False)
    finally:
        shutil.move(moved, source.run_dir)
    assert_same(load_checkpoint(resumed.run_dir), load_checkpoint(straight.run_dir))


def test_fine_tuning_errors(tmp_path, source):
    with pytest.raises(TochaError, match="brings its own model"):
        build_setup(config(tmp_path, train__init_from=str(source.run_dir), model__name="mlp"), quiet)
    folder = tmp_path / "colour"
    from helpers import write_image_folder

    write_image_folder(folder, {"a": 4, "b": 4}, size=(28, 28), mode="RGB")
    with pytest.raises(TochaError, match="number of channels must be the same"):
        build_setup(config(tmp_path, data__name=str(folder), train__init_from=str(source.run_dir)), quiet)
    mlp = train_quick(tmp_path / "mlp", data__name="mnist-sample", model__name="mlp", train__epochs=1)
    small = tmp_path / "small"
    write_image_folder(small, {"a": 4, "b": 4}, size=(20, 20))
    with pytest.raises(TochaError, match="--image-size 28x28"):
        build_setup(config(tmp_path, data__name=str(small), train__init_from=str(mlp.run_dir)), quiet)
    recorded = config(tmp_path, data__name="mnist-sample", train__init_from=str(mlp.run_dir),
                      train__init_from_sha256="0" * 64)  # fmt: skip
    with pytest.raises(TochaError, match="checksum"):
        build_setup(recorded, quiet)
    from tocha.exports import export_model

    for fmt in ("onnx", "pt2"):  # real exports: told apart by their content, not their names
        exported = export_model(mlp.run_dir, fmt, tmp_path / f"model-{fmt}.bin", log=quiet).path
        with pytest.raises(TochaError, match="cannot be trained further"):
            build_setup(config(tmp_path, train__init_from=str(exported)), quiet)


def test_init_from_a_safetensors_export(tmp_path, source):
    from tocha.exports import export_model

    pytest.importorskip("safetensors")
    path = export_model(source.run_dir, "safetensors", tmp_path / "m.safetensors", log=quiet).path
    s = build_setup(config(tmp_path, data__name="mnist-sample", train__init_from=str(path)), quiet)
    saved = load_checkpoint(source.run_dir)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in s.model.state_dict().items())
