"""Your own `nn.Module`: the notes' model classes, written into files as the notes write them, trained
through the command line and through `tocha.train`, resumed after SIGTERM, evaluated, asked about the
real PNGs, exported to ONNX, served, trained on two processes and fine-tuned from a plain state dict;
and every kind of bad model said in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import SHARED_DATA, run_cli, run_main, write_image_folder
from notes_models import FASHION_V2_ARGS, write_notes_models
from test_resume import assert_same, metrics_rows, wait_for
from torch import nn

import tocha
from tocha.api import make_config
from tocha.errors import Interrupted, TochaError
from tocha.runs.checkpoint import load_checkpoint

FASHION_PNGS = sorted((SHARED_DATA / "samples").glob("fashionMNIST_*.png"))
QUIET = {"log": lambda _line: None, "progress": False}


def main_in(folder: Path, *args: object) -> subprocess.CompletedProcess:
    """`tocha ARGS` run from `folder` (so `notes.py:NAME` is relative), in this process: the
    command's own main, without a fresh process's 2 s of importing torch."""
    here = Path.cwd()
    os.chdir(folder)
    try:
        return run_main(*args)
    finally:
        os.chdir(here)


def train_cli(folder: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    """`tocha train ARGS` run from `folder`, in this process, into `folder`/runs/NAME."""
    result = main_in(folder, "train", *args, "--out", folder / "runs", "--name", name, "--no-progress")
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> Path:
    """A folder holding notes.py, where the commands run (so `notes.py:NAME` is relative)."""
    folder = tmp_path_factory.mktemp("own")
    write_notes_models(folder)
    return folder


@pytest.fixture(scope="module")
def v2_run(notes) -> Path:
    """FashionMNISTModelV2 from notes.py, trained by `tocha train` for one epoch."""
    train_cli(
        notes,
        "v2",
        "--model",
        "notes.py:FashionMNISTModelV2",
        *FASHION_V2_ARGS,
        "--data",
        "fashion-mnist-sample",
        "--epochs",
        "1",
    )
    return notes / "runs" / "v2"


def test_the_notes_tinyvgg_class_trains_to_the_very_weights_of_tocha_tinyvgg(notes, v2_run):
    """FashionMNISTModelV2 is TinyVGG written as a class: built under the same seed, on the same
    batches, it must end with tocha's built-in tinyvgg's weights to the last bit."""
    train_cli(notes, "builtin", "--model", "tinyvgg", "--data", "fashion-mnist-sample", "--epochs", "1")
    mine, builtin = load_checkpoint(v2_run), load_checkpoint(notes / "runs" / "builtin")
    assert mine["model"].keys() == builtin["model"].keys()  # block_1.0.weight ... classifier.1.bias
    assert all(torch.equal(mine["model"][k], builtin["model"][k]) for k in mine["model"])
    assert mine["history"][0]["val_accuracy"] == builtin["history"][0]["val_accuracy"]
    model = mine["config"]["model"]
    source = (notes / "notes.py").read_bytes()
    assert model["name"] == "notes.py:FashionMNISTModelV2"
    assert model["file"] == str((notes / "notes.py").resolve())
    assert model["file_sha256"] == __import__("hashlib").sha256(source).hexdigest()
    assert model["args"] == {"input_shape": 1, "hidden_units": 10, "output_shape": 10}
    assert (v2_run / "model_source.py").read_bytes() == source  # the record of what was trained
    summary = json.loads((v2_run / "summary.json").read_text())
    assert summary["model"] == "notes.py:FashionMNISTModelV2"


def test_the_notes_sequential_gets_flat_images_and_nll_and_each_seed_its_own_start(notes):
    """The EstudoCaso1 model is a module object of Linear layers ending in LogSoftmax, fed
    `images.view(N, -1)` by its loop: tocha flattens the images, picks NLLLoss, and re-initialises
    the object's layers under the run's seed (same seed, same start; another seed, another)."""
    seq = ["--model", "notes.py:model", "--data", "mnist-sample", "--epochs", "1", "--optimizer", "sgd",
           "--lr", "0.003", "--momentum", "0.9"]  # fmt: skip
    out = train_cli(notes, "seq0", *seq)
    assert "each 1x28x28 image is given as 784 values" in out.stdout
    train_cli(notes, "seq0b", *seq)
    train_cli(notes, "seq1", *seq, "--seed", "1")
    a, b, c = (load_checkpoint(notes / "runs" / n) for n in ("seq0", "seq0b", "seq1"))
    assert a["config"]["train"]["loss"] == "nll" and a["config"]["model"]["flatten"] is True
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert not torch.equal(a["model"]["0.weight"], c["model"]["0.weight"])
    assert a["history"][0]["val_accuracy"] > 0.5  # it learned on flat rows
    assert a["normalization"]["rows"] is True  # predict and exports flatten as training did


def test_simple_linear_model_gets_table_rows_as_the_notes_give_them(notes):
    """The issue's own example: `tocha.train(model=SimpleLinearModel(10, 1), data=...)`, the model
    receiving (N, 10) rows, not (N, 10, 1, 1)."""
    sys.path.insert(0, str(notes))
    try:
        from notes import SimpleLinearModel
    finally:
        sys.path.remove(str(notes))
    torch.manual_seed(42)
    model = SimpleLinearModel(10, 1)
    shapes = set()
    model.register_forward_pre_hook(lambda _m, args: shapes.add(tuple(args[0].shape[1:])))
    run = tocha.train(
        model=model,
        data="synthetic-regression",
        loss="mse",
        optimizer="sgd",
        lr=0.01,
        epochs=3,
        out_dir=str(notes / "runs"),
        run_name="slm",
        **QUIET,
    )
    assert shapes == {(10,)}
    assert run.model is model and run.config.model.name == "python:SimpleLinearModel"  # trained in place
    assert run.config.model.file is None  # an object's arguments are not known: no file to rebuild from
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]
    again = tocha.load(run)  # a copy of the trained object, its weights loaded from the checkpoint
    assert again.model is not model and torch.equal(again.model.linear.weight, model.linear.weight)
    assert again.predict(torch.randn(3, 10))[2]["row"] == 3  # rows in, answers out


def test_mlp_classcifier_trains_from_python_as_a_class_on_cifar_shaped_images(tmp_path, notes):
    write_image_folder(tmp_path / "cifarish", {c: 12 for c in "abcdefghij"}, size=(32, 32), mode="RGB")
    sys.path.insert(0, str(notes))
    try:
        from notes import MLPClasscifier
    finally:
        sys.path.remove(str(notes))
    run = tocha.train(
        model=MLPClasscifier,
        model_args={"hidden_size": 64},
        data=str(tmp_path / "cifarish"),
        epochs=1,
        out_dir=str(tmp_path / "runs"),
        **QUIET,
    )
    assert run.config.model.args == {"input_size": 3072, "hidden_size": 64, "num_classes": 10}  # defaults
    assert run.config.model.flatten is False  # it flattens itself
    assert tocha.evaluate(run).evaluation.samples == len(run.data.test)


def test_a_function_returning_a_module_and_a_dotted_module(tmp_path):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        "from torch import nn\n\ndef make(width: int = 16):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.Tanh(), nn.Linear(width, 10))\n"
    )
    result = main_in(  # in this process: the package is found from the working folder all the same
        tmp_path,
        "train",
        "--model",
        "mypkg.nets:make",
        "--model-arg",
        "width=8",
        "--data",
        "mnist-sample",
        "--epochs",
        "1",
        "--out",
        "runs",
        "--name",
        "f",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    config = load_checkpoint(tmp_path / "runs" / "f")["config"]["model"]
    assert config["file"] == str((package / "nets.py").resolve()) and config["args"] == {"width": 8}
    assert load_checkpoint(tmp_path / "runs" / "f")["model"]["1.weight"].shape == (8, 784)


def test_sigterm_then_resume_is_bit_exact_and_a_changed_file_is_refused_naming_the_line(tmp_path):
    write_notes_models(tmp_path)
    args = [
        "--model",
        "notes.py:FashionMNISTModelV2",
        *FASHION_V2_ARGS,
        "--data",
        "fashion-mnist-sample",
        "--epochs",
        "3",
        "--batch-size",
        "32",
        "--schedule",
        "onecycle",
        "--augment-flip",
        "--train-limit",  # a stop and an exact resume need steps, not the sample's 6,000 images
        "2000",
    ]
    train_cli(tmp_path, "straight", *args)
    command = [
        sys.executable,
        "-m",
        "tocha",
        "train",
        *args,
        "--out",
        "runs",
        "--name",
        "stopped",
        "--no-progress",
    ]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stopped = tmp_path / "runs" / "stopped"
    wait_for(lambda: metrics_rows(stopped) >= 1 or process.poll() is not None, what="epoch 1")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr

    source = tmp_path / "notes.py"
    original = source.read_text()
    source.write_text(original.replace("nn.MaxPool2d(2),", "nn.AvgPool2d(2),"))  # an edit after the stop
    refused = main_in(tmp_path, "train", "--resume", stopped, "--no-progress")
    assert refused.returncode == 2 and "changed since the run was trained" in refused.stderr
    assert "'nn.AvgPool2d(2),' where it was 'nn.MaxPool2d(2),'" in refused.stderr  # the line that changed
    assert len(refused.stderr.strip().splitlines()) == 1

    source.write_text(original)
    resumed = main_in(tmp_path, "train", "--resume", stopped, "--no-progress")  # the stop was a real one
    assert resumed.returncode == 0, resumed.stderr
    assert_same(load_checkpoint(stopped), load_checkpoint(tmp_path / "runs" / "straight"))


def test_evaluate_predict_export_and_serve_the_notes_model(notes, v2_run, tmp_path, shared_data):
    evaluated = run_main("evaluate", v2_run, "--out", tmp_path / "eval")
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads((v2_run / "summary.json").read_text())
    assert f"accuracy {summary['final_test_accuracy']:.2%}" in evaluated.stdout

    predicted = run_main("predict", v2_run, *FASHION_PNGS, "--json")
    assert predicted.returncode == 0, predicted.stderr
    answers = json.loads(predicted.stdout)
    truth = [int(p.stem.rsplit("_", 1)[1]) for p in FASHION_PNGS]
    right = sum(a["top"][0]["index"] == t for a, t in zip(answers, truth, strict=True))
    assert right >= len(truth) // 2  # one epoch on 6,000 images: most of the 20 real PNGs

    exported = run_main("export", v2_run, "--format", "onnx", "--out", tmp_path / "v2.onnx")
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / "v2.onnx.parity.json").read_text())["within_tolerance"]
    moved = notes / "elsewhere.py"
    (notes / "notes.py").rename(moved)  # the model's source gone: the ONNX file needs none
    try:
        via_onnx = run_cli("predict", str(tmp_path / "v2.onnx"), *map(str, FASHION_PNGS), "--json")
        assert via_onnx.returncode == 0, via_onnx.stderr
        assert [a["top"][0]["class"] for a in json.loads(via_onnx.stdout)] == [
            a["top"][0]["class"] for a in answers
        ]
        gone = run_main("predict", v2_run, FASHION_PNGS[0])  # the run's weights need their code
        assert (
            gone.returncode == 2 and "is not on this machine" in gone.stderr and "--model-file" in gone.stderr
        )
        named = run_main("predict", v2_run, FASHION_PNGS[0], "--model-file", moved, "--json")
        assert named.returncode == 0, named.stderr
        got, want = json.loads(named.stdout)[0]["top"][0], answers[0]["top"][0]  # one image, not 20:
        assert got["class"] == want["class"]  # the last digits of a batch's sums may differ
        assert got["probability"] == pytest.approx(want["probability"], rel=1e-5)
    finally:
        moved.rename(notes / "notes.py")

    httpx = pytest.importorskip("httpx", reason="the test extra: pip install -e .[test]")
    from test_serve import Server

    server = Server(v2_run)
    try:
        card = httpx.get(f"{server.url}/model", timeout=30).json()
        assert card["model"] == "FashionMNISTModelV2"  # its name, not its file's path
        reply = httpx.post(
            f"{server.url}/predict",
            content=FASHION_PNGS[0].read_bytes(),
            headers={"Content-Type": "image/png"},
            timeout=60,
        ).json()
        assert reply[0]["top"][0]["class"] == answers[0]["top"][0]["class"]
    finally:
        server.stop()


def test_two_processes_train_the_notes_linear_model_as_one_does(notes, tmp_path):
    args = [
        "--model",
        "notes.py:SimpleLinearModel",
        "--model-arg",
        "input_size=10",
        "--model-arg",
        "output_size=1",
        "--data",
        "synthetic-regression",
        "--loss",
        "mse",
        "--optimizer",
        "sgd",
        "--lr",
        "0.01",
        "--batch-size",
        "20",
        "--epochs",
        "3",
    ]
    # One process: in this one (torchrun's launch is what the two-process run is about).
    done = main_in(notes, "train", *args, "--out", tmp_path, "--name", "one", "--no-progress")
    assert done.returncode == 0, done.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tocha", "train", *args, "--nproc", "2", "--out", str(tmp_path),
               "--name", "two", "--no-progress"]  # fmt: skip
    done = subprocess.run(command, cwd=notes, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    one, two = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert two["training_state"]["world_size"] == 2
    assert max((one["model"][k] - two["model"][k]).abs().max().item() for k in one["model"]) < 1e-6


def test_fine_tuning_from_a_plain_state_dict_and_freezing_the_last_linear(notes, v2_run, tmp_path):
    weights = load_checkpoint(v2_run)["model"]
    torch.save(weights, tmp_path / "state.pt")  # torch.save(model.state_dict(), path), as the notes do
    lines: list[str] = []
    run = tocha.train(
        model=str(notes / "notes.py") + ":FashionMNISTModelV2",
        model_args={"input_shape": 1, "hidden_units": 10, "output_shape": 10},
        data="fashion-mnist-sample",
        init_from=str(tmp_path / "state.pt"),
        freeze="backbone",
        epochs=1,
        out_dir=str(tmp_path / "runs"),
        log=lines.append,
        progress=False,
    )
    text = "\n".join(lines)
    assert "every weight of the state dict loaded (10 tensors)" in text
    assert "the head is classifier.1 (the last nn.Linear of FashionMNISTModelV2)" in text
    trained = load_checkpoint(run.run_dir)["model"]
    assert torch.equal(trained["block_1.0.weight"], weights["block_1.0.weight"])  # frozen
    assert not torch.equal(trained["classifier.1.weight"], weights["classifier.1.weight"])  # trained
    assert run.history[0]["train_accuracy"] > 0.7  # started from trained weights, not from scratch

    other = {k: v for k, v in weights.items()}
    other["classifier.1.weight"], other["classifier.1.bias"] = torch.zeros(5, 490), torch.zeros(5)
    torch.save(other, tmp_path / "five.pt")
    lines.clear()
    tocha.train(
        model=str(notes / "notes.py") + ":FashionMNISTModelV2",
        model_args={"input_shape": 1, "hidden_units": 10, "output_shape": 10},
        data="fashion-mnist-sample",
        init_from=str(tmp_path / "five.pt"),
        epochs=1,
        out_dir=str(tmp_path / "runs"),
        log=lines.append,
        progress=False,
    )
    assert any(
        "new head classifier.1 (the last nn.Linear: (5, 490) there, (10, 490) here" in line for line in lines
    )

    wrong = {("x." + k): v for k, v in weights.items()}
    torch.save(wrong, tmp_path / "wrong.pt")
    with pytest.raises(TochaError, match=r"does not fit FashionMNISTModelV2 \(block_1.0.weight missing"):
        tocha.train(
            model=str(notes / "notes.py") + ":FashionMNISTModelV2",
            model_args={"input_shape": 1, "hidden_units": 10, "output_shape": 10},
            data="fashion-mnist-sample",
            init_from=str(tmp_path / "wrong.pt"),
            out_dir=str(tmp_path / "refused"),
            **QUIET,
        )
    assert not (tmp_path / "refused").exists()  # nothing written


def test_get_classifier_is_the_head_when_a_model_has_it(tmp_path):
    (tmp_path / "headed.py").write_text(
        "from torch import nn\n\nclass Headed(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU())\n"
        "        self.head = nn.Linear(32, 10)\n        self.extra = nn.Linear(10, 10)\n"
        "    def forward(self, x):\n        return self.extra(self.head(self.body(x)))\n"
        "    def get_classifier(self):\n        return self.head\n"
    )
    lines: list[str] = []
    tocha.train(
        model=str(tmp_path / "headed.py") + ":Headed",
        data="mnist-sample",
        freeze="backbone",
        epochs=1,
        out_dir=str(tmp_path / "runs"),
        log=lines.append,
        progress=False,
    )
    assert any("the head is head (get_classifier() of Headed)" in line for line in lines), lines


def notebook_class() -> type:
    """A class as a notebook cell defines it: no file tocha could read it from again."""

    class TinyNet(nn.Module):
        def __init__(self, hidden: int = 16) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.Tanh(), nn.Linear(hidden, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    return TinyNet


def test_a_notebook_class_trains_loads_evaluates_exports_and_resumes_in_its_process(tmp_path, shared_data):
    from tocha.training import train
    from tocha.training.interrupt import StopRequest

    TinyNet = notebook_class()  # noqa: N806 - a class
    torch.manual_seed(0)
    run = tocha.train(
        model=TinyNet(), data="mnist-sample", epochs=2, out_dir=str(tmp_path), run_name="nb", **QUIET
    )
    assert run.config.model.name == "python:TinyNet" and run.config.model.file is None
    assert "TinyNet(" in (run.run_dir / "model.txt").read_text()  # its repr, for the record
    assert len(tocha.load(run).predict([str(SHARED_DATA / "samples" / "mnist_00_7.png")])) == 1
    assert tocha.evaluate(run).evaluation.samples == 1000
    assert tocha.export(run, "onnx", log=lambda _l: None).parity.within_tolerance
    with pytest.raises(TochaError, match=r"given as a Python object.*tocha.load\(run, model=TinyNet"):
        tocha.load(run.run_dir)
    fresh = tocha.load(run.run_dir, model=TinyNet())
    assert torch.equal(fresh.model.net[1].weight, load_checkpoint(run.run_dir)["model"]["net.1.weight"])
    with pytest.raises(TochaError, match="do not fit TinyNet"):
        tocha.load(run.run_dir, model=TinyNet(hidden=8))  # keys and shapes checked

    torch.manual_seed(0)
    config = make_config(data="mnist-sample", epochs=2, out_dir=str(tmp_path), run_name="halted")
    stop = StopRequest()

    def log(line: str) -> None:
        if line.startswith("epoch 1/"):
            stop.request(signal.SIGTERM)  # what the signal handler does, at an exact epoch boundary

    with pytest.raises(Interrupted, match="stopped by SIGTERM at epoch 2, step 0"):
        train(config, log=log, progress=False, stop=stop, given=TinyNet())
    with pytest.raises(TochaError, match="given as a Python object"):
        tocha.resume(tmp_path / "halted", **QUIET)  # the object is needed again
    torch.manual_seed(123)  # its own weights do not matter: the checkpoint's are loaded
    tocha.resume(tmp_path / "halted", model=TinyNet(), **QUIET)
    assert_same(load_checkpoint(tmp_path / "halted")["model"], load_checkpoint(tmp_path / "nb")["model"])


def test_compare_a_class_given_in_python_with_tocha_tinyvgg(tmp_path, notes):
    sys.path.insert(0, str(notes))
    try:
        from notes import FashionMNISTModelV2
    finally:
        sys.path.remove(str(notes))
    result = tocha.compare(
        models={"mine": lambda: FashionMNISTModelV2(1, 10, 10), "tinyvgg": "tinyvgg"},
        seeds=2,
        out=tmp_path / "report",
        data="fashion-mnist-sample",
        train_limit=1000,  # the same weights either way: a thousand images show it as well as 6,000
        epochs=1,
        log=lambda _l: None,
    )
    rows = {row["cell"]: row for row in result.rows}
    assert set(rows) == {"model=python:mine", "model=tinyvgg"}
    assert rows["model=python:mine"]["accuracy_mean"] == rows["model=tinyvgg"]["accuracy_mean"]
    with pytest.raises(TochaError, match="module object: compare builds each run's model afresh"):
        tocha.compare(models={"mine": FashionMNISTModelV2(1, 10, 10)}, out=tmp_path / "r2")


def test_compare_from_the_command_line_with_a_file_and_a_family(notes, tmp_path):
    result = main_in(
        notes,
        "compare",
        "--vary",
        "model=notes.py:FashionMNISTModelV2,tinyvgg",
        *FASHION_V2_ARGS,
        "--data",
        "fashion-mnist-sample",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "report"),
    )
    assert result.returncode == 0, result.stderr
    runs = sorted(p.name for p in (tmp_path / "report" / "runs").iterdir())
    assert len(runs) == 2
    configs = [load_checkpoint(tmp_path / "report" / "runs" / r)["config"]["model"] for r in runs]
    assert {c["name"] for c in configs} == {"notes.py:FashionMNISTModelV2", "tinyvgg"}
    # tinyvgg's own options: hidden_units (an option of both) taken, the class's input_shape and
    # output_shape left out, the rest its defaults
    assert [c["args"] for c in configs if c["name"] == "tinyvgg"] == [
        {"hidden_units": 10, "activation": "relu", "log_softmax": False}
    ]


def test_summary_shows_the_notes_model_layer_by_layer(notes):
    result = main_in(notes, "summary", "--model", "notes.py:FashionMNISTModelV2", *FASHION_V2_ARGS,
                     "--data", "fashion-mnist")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "FashionMNISTModelV2 for fashion-mnist: input (1, 28, 28)" in result.stdout
    assert "classifier.0  Flatten" in result.stdout and "<- 10 * 7 * 7" in result.stdout
    assert "total parameters: 7,740" in result.stdout


BAD = {
    "no file": (["--model", "missing.py:Net"], "missing.py: no such model file"),
    "no such class": (
        ["--model", "notes.py:Nope"],
        "has no 'Nope'; it defines SimpleLinearModel, FashionMNISTModelV2, MLPClasscifier, model",
    ),
    "not a module class": (["--model", "bad.py:NotAModule"], "NotAModule in"),
    "not callable": (["--model", "bad.py:NUMBER"], "NUMBER in"),
    "a function returning a number": (["--model", "bad.py:gives_a_number"], "gives_a_number returned a int"),
    "an argument it does not take": (
        [
            "--model",
            "notes.py:SimpleLinearModel",
            "--model-arg",
            "input_size=784",
            "--model-arg",
            "output_size=10",
            "--model-arg",
            "depth=3",
        ],
        "SimpleLinearModel takes no argument 'depth'; it takes input_size, output_size",
    ),
    "an argument missing": (
        ["--model", "notes.py:SimpleLinearModel", "--model-arg", "input_size=784"],
        "SimpleLinearModel needs output_size",
    ),
    "__init__ raises": (["--model", "bad.py:Raises"], "Raises() raised ValueError: no layers for you"),
    "forward raises": (
        ["--model", "bad.py:BadForward"],
        "BadForward's forward failed on a batch of (2, 1, 28, 28): RuntimeError: broken forward",
    ),
    "wrong output": (
        [
            "--model",
            "notes.py:FashionMNISTModelV2",
            "--model-arg",
            "input_shape=1",
            "--model-arg",
            "hidden_units=4",
            "--model-arg",
            "output_shape=3",
        ],
        "FashionMNISTModelV2 returned Bx3 (torch.float32) for a batch of (Bx1x28x28); the task "
        "needs Bx10 floats",
    ),
    "a tuple out": (
        ["--model", "bad.py:Pair"],
        "Pair returned a tuple for a batch of (Bx1x28x28); tocha needs one tensor of (B, 10)",
    ),
    "integer parameters": (
        ["--model", "bad.py:IntWeights"],
        "IntWeights's parameter w is torch.int64: gradients need floating-point parameters",
    ),
    "no parameters": (["--model", "bad.py:Nothing"], "Nothing has no parameters"),
    "a syntax error": (["--model", "broken.py:Net"], "running it failed: SyntaxError"),
    "family options": (
        ["--model", "notes.py:model", "--hidden-sizes", "32"],
        "notes.py is a module object, built already: it takes no --model-arg",
    ),
    "arguments to a family": (
        ["--model", "mlp", "--model-arg", "x=1"],
        "model 'mlp' has no option(s) x; its options: hidden_sizes",
    ),
    "not a spec": (["--model", "notes.py:two words"], "expected FILE.py:NAME or package.module:NAME"),
}
BAD_PY = """\
import torch
from torch import nn

NUMBER = 3


class NotAModule:
    pass


def gives_a_number():
    return 3


class Raises(nn.Module):
    def __init__(self):
        raise ValueError("no layers for you")


class BadForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        raise RuntimeError("broken forward")


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        out = self.fc(x.flatten(1))
        return out, out


class IntWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(3, dtype=torch.long), requires_grad=False)

    def forward(self, x):
        return x.flatten(1)[:, :10]


class Nothing(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]
"""


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_bad_model_is_one_line_exit_2_and_nothing_written(tmp_path, case):
    write_notes_models(tmp_path)
    (tmp_path / "bad.py").write_text(BAD_PY)
    (tmp_path / "broken.py").write_text("from torch import nn\nclass Net(nn.Module:\n    pass\n")
    args, said = BAD[case]
    cwd = Path.cwd()
    os.chdir(tmp_path)  # the model files are named relative to the working folder
    try:
        result = run_main("train", *args, "--data", "mnist-sample", "--out", str(tmp_path / "runs"))
    finally:
        os.chdir(cwd)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "runs").exists()  # nothing written


def test_a_checkpoint_alone_never_imports_code(tmp_path, v2_run, shared_data):
    """A run folder copied to where its model file is something else, or is missing: tocha refuses
    before running a line of it."""
    copy = tmp_path / "copied"
    subprocess.run(["cp", "-r", str(v2_run), str(copy)], check=True)
    config = load_checkpoint(copy)["config"]
    marker = tmp_path / "ran"
    planted = Path(config["model"]["file"]).with_name("planted.py")
    planted.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    # The recorded path now holds other code: its hash differs, so it is not imported.
    original = Path(config["model"]["file"]).read_bytes()
    Path(config["model"]["file"]).write_bytes(planted.read_bytes())
    try:
        for command in (
            ["evaluate", str(copy)],
            ["predict", str(copy), str(FASHION_PNGS[0])],
            ["export", str(copy), "--format", "safetensors", "--out", str(tmp_path / "m.safetensors")],
            ["serve", str(copy), "--port", "0"],
        ):
            result = run_main(*command)
            assert result.returncode == 2 and "changed since the run was trained" in result.stderr, command
        assert not marker.exists()
    finally:
        Path(config["model"]["file"]).write_bytes(original)
        planted.unlink()
    with pytest.raises(TochaError, match="one of tocha's own models; it needs no file"):
        tocha.load(load_checkpoint_run(tmp_path), model_file=str(planted))


def load_checkpoint_run(tmp_path: Path) -> Path:
    """A run of one of tocha's own models, for --model-file's refusal."""
    run = tocha.train(model="linear", data="mnist-sample", epochs=1, out_dir=str(tmp_path / "own"), **QUIET)
    return run.run_dir


def test_the_other_route_for_each_notes_model(notes, tmp_path):
    """Each of the notes' models both ways: the CIFAR MLP from the command line, the EstudoCaso1
    module object from Python (an object given in Python is trained as it is, in place), and the
    arguments from a config file's `model.args`."""
    write_image_folder(tmp_path / "cifarish", {c: 12 for c in "abcdefghij"}, size=(32, 32), mode="RGB")
    train_cli(notes, "mlpc", "--model", "notes.py:MLPClasscifier", "--model-arg", "hidden_size=32",
              "--data", str(tmp_path / "cifarish"), "--epochs", "1")  # fmt: skip
    assert load_checkpoint(notes / "runs" / "mlpc")["model"]["fc1.weight"].shape == (32, 3072)

    sys.path.insert(0, str(notes))
    try:
        import notes as module
    finally:
        sys.path.remove(str(notes))
    sequential = module.model
    before = sequential[0].weight.detach().clone()
    run = tocha.train(model=sequential, data="mnist-sample", optimizer="sgd", lr=0.003, epochs=1,
                      out_dir=str(tmp_path / "runs"), **QUIET)  # fmt: skip
    assert run.config.model.flatten is True and run.config.train.loss == "nll"
    assert not torch.equal(before, sequential[0].weight)  # trained in place, as Lightning and Keras do

    (tmp_path / "run.yaml").write_text(
        f"data:\n  name: synthetic-regression\nmodel:\n  name: {notes / 'notes.py'}:SimpleLinearModel\n"
        "  args:\n    input_size: 10\n    output_size: 1\ntrain:\n  epochs: 2\n  loss: mse\n"
    )
    command = ["train", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "runs"), "--name",
               "from-yaml", "--no-progress"]  # fmt: skip
    refused = run_main(*command)  # a config file names the code; this command line does not
    assert refused.returncode == 2 and "named by a file" in refused.stderr
    assert "--trust-code" in refused.stderr
    assert not (tmp_path / "runs" / "from-yaml").exists()
    done = run_main(*command, "--trust-code")
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(tmp_path / "runs" / "from-yaml")["config"]["model"]["args"] == {
        "input_size": 10, "output_size": 1}  # fmt: skip


def test_pt2_and_safetensors_exports_and_init_from_a_run_of_the_notes_model(notes, v2_run, tmp_path):
    for fmt in ("pt2", "safetensors"):
        done = run_main("export", v2_run, "--format", fmt, "--out", tmp_path / f"v2.{fmt}")
        assert done.returncode == 0, done.stderr
        assert json.loads((tmp_path / f"v2.{fmt}.parity.json").read_text())["within_tolerance"]
    lines: list[str] = []
    run = tocha.train(init_from=str(tmp_path / "v2.safetensors"), data="fashion-mnist-sample", epochs=1,
                      out_dir=str(tmp_path / "runs"), log=lines.append, progress=False)  # fmt: skip
    assert run.config.model.name == "notes.py:FashionMNISTModelV2"  # the export brings its model
    assert any("every weight loaded" in line for line in lines), lines


def test_compare_and_search_vary_an_argument_of_your_model(tmp_path):
    """`--vary model-arg.NAME=...` (or `args.NAME`) is one of your constructor's arguments: each cell
    builds the model with its value; `--space` takes the same key; a built-in model refuses it."""
    from tocha.experiments.space import parse_spaces

    (tmp_path / "net.py").write_text(
        "from torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self, hidden: int = 16):\n"
        "        super().__init__()\n"
        "        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),\n"
        "                                    nn.Linear(hidden, 10))\n"
        "\n    def forward(self, x):\n        return self.layers(x)\n"
    )
    base = ["--data", "mnist-sample", "--epochs", "1", "--seeds", "1", "--train-limit", "256"]
    done = run_main("compare", "--model", f"{tmp_path / 'net.py'}:Net", "--vary", "model-arg.hidden=8,32",
                    *base, "--out", tmp_path / "report")  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = tmp_path / "report" / "runs"
    assert {r.name: load_checkpoint(r)["config"]["model"]["args"] for r in runs.iterdir()} == {
        "hidden=8-seed0": {"hidden": 8}, "hidden=32-seed0": {"hidden": 32}}  # fmt: skip
    assert load_checkpoint(runs / "hidden=32-seed0")["model"]["layers.1.weight"].shape == (32, 784)
    assert [d.key for d in parse_spaces(["args.hidden=int:8:64"])] == ["model.args.hidden"]
    refused = run_main("compare", "--model", "mlp", "--vary", "model-arg.hidden=8,32", *base,
                       "--out", tmp_path / "mlp")  # fmt: skip
    assert refused.returncode == 2 and "model 'mlp' has no option(s) hidden; its options" in refused.stderr
