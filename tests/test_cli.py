"""The command line: every command runs for real, and a user's mistake gives one clear line on
stderr, exit code 2, no traceback, and nothing half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import SHARED_DATA, run_cli, run_main, write_image_folder


@pytest.fixture
def mnist_run(shared_run):
    return shared_run(data__name="mnist-sample", model__name="mlp", train__epochs=1)


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("tocha: error:")
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def test_help_does_not_import_torch_nor_numpy():
    code = ("import sys; from tocha.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"  # `tocha --help` in under a tenth of a second
    assert "train" in run_cli("--help").stdout


def test_train_evaluate_predict_summary_through_the_cli(tmp_path):
    """The main job as a user runs it, in real processes."""
    trained = run_cli(
        "train",
        "--data",
        "mnist-sample",
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--name",
        "r",
    )
    assert trained.returncode == 0, trained.stderr
    assert "epoch 1/1" in trained.stdout and "samples/s" in trained.stdout and "device cpu" in trained.stdout
    run = tmp_path / "r"
    evaluated = run_cli("evaluate", str(run))
    assert evaluated.returncode == 0, evaluated.stderr
    assert (
        "accuracy" in evaluated.stdout
        and "precision" in evaluated.stdout
        and "confusion matrix" in evaluated.stdout
    )
    report = json.loads((run / "eval-mnist-sample" / "evaluation.json").read_text())
    assert report["samples"] == 1000 and len(report["per_class"]) == 10
    assert (run / "eval-mnist-sample" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "eval-mnist-sample" / "confidently_wrong.png").read_bytes()[:4] == b"\x89PNG"
    wrong = report["confidently_wrong"]
    probabilities = [w["probability"] for w in wrong]
    assert 0 < len(wrong) <= 16 and probabilities == sorted(probabilities, reverse=True)
    accuracy_in_train = json.loads((run / "summary.json").read_text())["final_test_accuracy"]
    assert report["accuracy"] == pytest.approx(accuracy_in_train)  # same model, same data, same number

    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (28, 28), 0).save(image)
    predicted = run_cli("predict", str(run), str(image), "--json", "--top-k", "2")
    assert predicted.returncode == 0, predicted.stderr
    top = json.loads(predicted.stdout)[0]["top"]
    assert len(top) == 2 and 0 < top[0]["probability"] <= 1

    summary = run_cli("summary", "--model", "tinyvgg", "--data", "mnist", "--hidden-units", "10")
    assert summary.returncode == 0
    assert "(B, 490)" in summary.stdout and "10 * 7 * 7" in summary.stdout and "7,740" in summary.stdout


def test_config_file_with_flag_override(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "data:\n  name: mnist-sample\nmodel:\n  name: linear\ntrain:\n  epochs: 3\n  lr: 0.01\n"
    )
    out = ["--out", str(tmp_path), "--name", "r"]
    result = run_main("train", "--config", str(config), "--epochs", "1", *out)
    assert result.returncode == 0, result.stderr
    import yaml

    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert (
        saved["train"]["epochs"] == 1 and saved["train"]["lr"] == 0.01 and saved["model"]["name"] == "linear"
    )


def test_models_and_data_listings():
    models = run_main("models")
    assert all(name in models.stdout for name in ("linear", "mlp", "tinyvgg"))
    assert "your own: --model FILE.py:NAME" in models.stdout
    listing = run_main("data", "list")
    assert "fashion-mnist-sample" in listing.stdout and "[on disk]" in listing.stdout
    info = run_main("data", "info", "mnist")
    assert "2646ac647ad5339dbf082846283269ea" in info.stdout and "CC BY-SA" in info.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--data", "imagenet"], ["unknown dataset 'imagenet'", "mnist", "cifar10"]),
        (["train", "--data", "mnist-sample", "--model", "resnet9000"], ["unknown model", "tinyvgg"]),
        (
            ["train", "--data", "mnist-sample", "--model", "mlp", "--activation", "swish"],
            ["unknown activation", "leaky_relu"],
        ),
        (["train", "--data", "mnist-sample", "--optimizer", "lbfgs"], ["unknown optimizer", "adamw"]),
        (["train", "--data", "mnist-sample", "--loss", "hinge"], ["unknown loss", "cross_entropy"]),
        (["train", "--data", "mnist-sample", "--epochs", "0"], ["train.epochs"]),
        (["train", "--data", "mnist-sample", "--lr", "0"], ["train.lr"]),
        (["train", "--data", "mnist-sample", "--model", "linear", "--hidden-units", "3"], ["hidden_units"]),
        (
            ["train", "--data", "mnist", "--no-download"],
            ["mnist not found", "Looked in", "TOCHA_DATA_DIR=DIR"],
        ),
        (["train", "--device", "cuda"], ["no CUDA GPU"]),
        (["train", "--nproc", "0"], ["--nproc", "must be at least 1"]),  # checked once, as it is read
        (["compare", "--nproc", "-2"], ["--nproc", "must be at least 1"]),
        (["data", "info", "nope"], ["unknown dataset"]),
    ],
)
def test_user_mistakes_get_one_clear_error(tmp_path, args, fragments):
    result = run_main(*args, "--out", str(tmp_path)) if args[0] == "train" else run_main(*args)
    assert_user_error(result, *fragments)
    assert not any(tmp_path.iterdir()), "a failed run must not leave a run folder"


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "mlp", "--activation", "swish"],
        ["--model", "linear", "--hidden-units", "3"],
        ["--optimizer", "lbfgs"],
        ["--loss", "hinge"],
    ],  # fmt: skip
)
def test_name_mistakes_are_found_before_any_data_is_loaded(tmp_path, args):
    """With `--data auto` nothing is loaded (and nothing said about the data) before the error."""
    result = run_main("train", *args, "--out", str(tmp_path))
    assert result.returncode == 2 and result.stderr.startswith("tocha: error:")
    assert result.stdout == ""


def test_bad_yaml_and_unknown_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [epochs: 3\n")
    assert_user_error(run_main("train", "--config", str(bad)), "bad.yaml", "not valid YAML")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("train:\n  epoch: 3\n")
    assert_user_error(run_main("train", "--config", str(unknown)), "unknown.yaml", "train.epoch")
    assert_user_error(run_main("train", "--config", str(tmp_path / "absent.yaml")), "absent.yaml")


def test_image_folder_problems_are_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(run_main("train", "--data", str(empty)), "no class folders")
    broken = tmp_path / "broken"
    write_image_folder(broken, {"cat": 3, "dog": 3})
    (broken / "dog" / "evil.png").write_bytes(b"not an image at all")
    assert_user_error(run_main("train", "--data", str(broken), "--out", str(tmp_path / "runs")), "evil.png")
    assert not (tmp_path / "runs").exists()


def test_checksum_mismatch_is_refused(tmp_path):
    fake = tmp_path / "mnist"
    fake.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (fake / name).write_bytes(
            b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"
        )  # a valid 1-item IDX, wrong content
    out = ["--out", str(tmp_path / "runs")]
    result = run_main("train", "--data", "mnist", "--data-dir", str(tmp_path), *out)
    assert_user_error(result, "checksum mismatch", "train-images-idx3-ubyte")
    assert not (tmp_path / "runs").exists()


def test_checkpoints_that_are_not_tochas(tmp_path, mnist_run):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    assert_user_error(run_main("evaluate", str(text)), "notes.pt", "not a loadable checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    assert_user_error(run_main("predict", str(foreign), str(foreign)), "foreign.pt", "not a tocha checkpoint")
    assert_user_error(run_main("evaluate", str(tmp_path / "nothing-here")), "no checkpoint found")
    truncated = tmp_path / "truncated.pt"
    whole = (mnist_run.run_dir / "checkpoint.pt").read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    assert_user_error(run_main("evaluate", str(truncated)), "truncated.pt")


def test_evaluate_on_another_dataset_with_other_shapes_is_refused(tmp_path, mnist_run):
    """A 28x28 grayscale model cannot be evaluated on 16x16 RGB images: a clear error, no report."""
    folder = tmp_path / "colour"
    write_image_folder(folder, {str(i): 2 for i in range(10)}, size=(16, 16), mode="RGB")
    out = tmp_path / "eval"
    result = run_main("evaluate", str(mnist_run.run_dir), "--data", str(folder), "--out", str(out))
    assert_user_error(result, "(3, 16, 16)", "(1, 28, 28)")
    assert not out.exists()


@pytest.mark.skipif(not (SHARED_DATA / "fashion-mnist").is_dir(), reason="needs ../shared/data")
def test_auto_prefers_the_full_dataset_when_present(tmp_path, monkeypatch):
    """With full Fashion-MNIST on disk, the default run says so and records it in its config."""
    from tocha.config import RunConfig
    from tocha.data.load import resolve_name
    from tocha.training.resolve import load_data, resolve_config

    assert resolve_name("auto", SHARED_DATA) == "fashion-mnist"
    assert resolve_name("auto", Path(tmp_path)) == "fashion-mnist-sample"
    monkeypatch.setenv("TOCHA_DATA_DIR", str(SHARED_DATA))
    result = run_main("summary")  # cheap: resolves the data without training
    assert result.returncode == 0, result.stderr
    assert "input (1, 28, 28) (C, H, W), 10 classes" in result.stdout
    said = []
    name, data = load_data(RunConfig(), said.append)  # what `tocha train` does first
    assert said[0] == "found full fashion-mnist on this machine: training on it"
    assert len(data.train) + len(data.val) == 60000 and len(data.val) == 6000  # a 10% validation carve
    assert resolve_config(RunConfig(), name, data, torch.device("cpu")).data.name == "fashion-mnist"


def test_on_bad_image_skip_trains_and_fail_names_the_file(tmp_path, capsys):
    """In-process `tocha.cli.main`: the flag reaches the folder reader through the run config."""
    from tocha.cli import main

    folder = tmp_path / "pets"
    write_image_folder(folder, {"cat": 3, "dog": 3}, size=(8, 8))
    (folder / "dog" / "chewed.png").write_text("not a PNG")
    runs = tmp_path / "runs"
    args = ["train", "--data", str(folder), "--out", str(runs), *"--model linear --epochs 1".split()]
    for extra in ([], ["--on-bad-image", "fail"]):  # fail is the default
        assert main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tocha: error:") and "dog/chewed.png" in err and "--on-bad-image skip" in err
        assert not runs.exists()
    assert main([*args, "--on-bad-image", "skip", "--name", "r"]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "skipped 1 unreadable image file(s): dog/chewed.png" in out
    import yaml

    assert yaml.safe_load((runs / "r" / "config.yaml").read_text())["data"]["on_bad_image"] == "skip"
