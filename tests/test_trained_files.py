"""Every kind of trained file is checked as checkpoints are, by the one reader: exports with NaN
weights, a std of 0, a cut-short or hostile header, foreign or wrong metadata, sizes beyond bounds,
a damaged table record. Each is refused by every command that reads it, in one line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_cli, run_main

from tocha.errors import TochaError
from tocha.runs.checkpoint import CHECKPOINT_NAME

pytest.importorskip("onnxruntime", reason="the export extra: pip install -e .[export]")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A digit model and a regression table model, each with its safetensors and ONNX exports."""
    out = tmp_path_factory.mktemp("trained")
    for name, args in {"digits": ["--data", "mnist-sample", "--model", "mlp", "--hidden-sizes", "16"],
                       "prices": ["--data", "diabetes", "--model", "linear"]}.items():  # fmt: skip
        assert run_main("train", *args, "--epochs", "1", "--out", out, "--name", name).returncode == 0
        for fmt in ("safetensors", "onnx"):
            assert run_main("export", out / name, "--format", fmt).returncode == 0
    return out


def refused_everywhere(path, image, rows, *fragments):
    for command in (["predict", path, image], ["predict", path, rows], ["evaluate", path], ["serve", path]):
        if path.suffix == ".onnx" and command[0] == "evaluate":
            continue  # evaluate takes what it can rebuild; it says so for an ONNX file (below)
        result = run_main(*command)
        assert result.returncode == 2 and "Traceback" not in result.stderr, (command, result.stderr)
        assert all(f in result.stderr for f in fragments), (command, result.stderr)


@pytest.fixture
def inputs(tmp_path):
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.new("L", (28, 28), 128).save(image)
    rows = tmp_path / "rows.csv"
    rows.write_text("age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n" + ",".join(["0.01"] * 10) + "\n")
    return image, rows


def edited_safetensors(src, dest, weights=None, meta=None):
    from safetensors.torch import load_file, safe_open, save_file

    with safe_open(str(src), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(src))
    if weights:
        weights(tensors)
    if meta:
        meta(metadata)
    save_file(tensors, str(dest), metadata=metadata)
    return dest


def test_safetensors_exports_are_checked_as_checkpoints(runs, tmp_path, inputs):
    src = runs / "digits" / "model.safetensors"

    def nan(tensors):
        tensors[next(iter(tensors))].fill_(float("nan"))

    def std_zero(meta):
        norm = json.loads(meta["normalization"])
        norm["std"] = [0.0]
        meta["normalization"] = json.dumps(norm)

    def foreign(meta):
        meta["format"] = "something-else"

    refused_everywhere(edited_safetensors(src, tmp_path / "nan.safetensors", weights=nan), *inputs,
                       "holds NaN or infinite values")  # fmt: skip
    refused_everywhere(edited_safetensors(src, tmp_path / "std.safetensors", meta=std_zero), *inputs,
                       "std that is not positive")  # fmt: skip
    refused_everywhere(edited_safetensors(src, tmp_path / "foreign.safetensors", meta=foreign), *inputs,
                       "without tocha's metadata")  # fmt: skip
    whole = src.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(whole[: len(whole) // 2])
    refused_everywhere(tmp_path / "cut.safetensors", *inputs, "cut.safetensors")
    (tmp_path / "huge.safetensors").write_bytes((1 << 60).to_bytes(8, "little") + b'{"a": 1}')
    refused_everywhere(tmp_path / "huge.safetensors", *inputs, "header of 1,152,921,504,606,846,976 bytes")


def edited_onnx(src, dest, change):
    import onnx

    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props}
    change(meta)
    del model.metadata_props[:]
    model.metadata_props.extend(onnx.StringStringEntryProto(key=k, value=v) for k, v in meta.items())
    onnx.save(model, str(dest))
    return dest


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda m: m.update(classes=json.dumps(["0", "1"])), "metadata says 2"),
        (lambda m: m.update(classes="null"), "class names"),
        (lambda m: m.update(image_shape='"abc"'), "image shape"),
        (lambda m: m.update(image_shape="[1, 40000, 40000]"), "beyond what tocha reads"),
        (lambda m: m.update(image_shape="[1, 2, 2]"), "graph takes inputs of (1, 28, 28)"),
        (lambda m: m.pop("config"), "incomplete"),
    ],
)
def test_onnx_metadata_is_validated(runs, tmp_path, inputs, change, fragment):
    bad = edited_onnx(runs / "digits" / "model.onnx", tmp_path / "bad.onnx", change)
    refused_everywhere(bad, *inputs, fragment)


def damaged_checkpoint(run, tmp_path, change):
    ckpt = torch.load(run / CHECKPOINT_NAME, weights_only=True)
    change(ckpt)
    folder = tmp_path / "damaged"
    folder.mkdir()
    torch.save(ckpt, folder / CHECKPOINT_NAME)
    (folder / "config.yaml").write_text((run / "config.yaml").read_text())
    return folder


@pytest.mark.parametrize(
    ("model", "change", "fragment"),
    [
        ("digits", lambda c: c.update(image_shape=[1, 40000, 40000]), "beyond what tocha reads"),
        ("prices", lambda c: c["table"].update(target_scale=[150.0, float("nan")]), "target scale"),
        ("prices", lambda c: c.update(table="abc"), "table record is not a mapping"),
        ("prices", lambda c: c["table"].update(features=7), "does not name its 10 features"),
        ("prices", lambda c: c["table"]["encoder"]["fill"].update(age=float("inf")), "not finite"),
    ],
)
def test_a_checkpoints_shape_and_table_record_are_checked(runs, tmp_path, inputs, model, change, fragment):
    folder = damaged_checkpoint(runs / model, tmp_path, change)
    commands = (["evaluate", folder], ["predict", folder, inputs[1]], ["export", folder, "--format", "onnx"],
                ["train", "--resume", folder])  # fmt: skip
    for command in commands:
        result = run_main(*command)
        assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr, (
            command, result.stderr)  # fmt: skip


def test_evaluate_says_what_it_takes_of_an_onnx_file(runs):
    result = run_main("evaluate", runs / "digits" / "model.onnx")
    assert result.returncode == 2 and "is an ONNX export; tocha evaluate takes" in result.stderr


def test_a_recorded_shape_the_model_cannot_run_on_is_refused_in_one_line(shared_run, tmp_path, inputs):
    """A ResNet's weights fit any image size (it pools globally), so only running it shows that
    2x2 pools down to nothing: refused when the file is read, naming the file, the shape and what
    failed, by a real `tocha predict` process and by every other reader of the file."""
    import tocha
    from tocha.exports import export_model

    run = shared_run(data__name="mnist-sample", model__name="resnet", model__widths=[4, 8, 8, 8],
                     train__epochs=1)  # fmt: skip
    folder = damaged_checkpoint(run.run_dir, tmp_path, lambda c: c.update(image_shape=[1, 2, 2]))
    fragments = (str(folder / CHECKPOINT_NAME), "(1, 2, 2)", "resnet's forward failed")
    result = run_cli("predict", folder, inputs[0])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("tocha: error: ") and all(f in lines[0] for f in fragments), lines
    for command in (["serve", folder], ["export", folder, "--format", "onnx"]):
        result = run_main(*command)
        assert result.returncode == 2 and all(f in result.stderr for f in fragments), (command, result.stderr)
    with pytest.raises(TochaError, match=r"\(1, 2, 2\): resnet's forward failed"):
        tocha.load(folder)
    # The same shape in a safetensors export's metadata: the same check, the export's name.
    exported = export_model(run.run_dir, "safetensors", tmp_path / "resnet.safetensors", log=lambda _l: None)
    bad = edited_safetensors(exported.path, tmp_path / "bad.safetensors",
                             meta=lambda m: m.update(image_shape="[1, 2, 2]"))  # fmt: skip
    result = run_main("predict", bad, inputs[0])
    assert result.returncode == 2 and "bad.safetensors: its model cannot run" in result.stderr, result.stderr
    assert "(1, 2, 2)" in result.stderr and "Traceback" not in result.stderr
