"""The Python API: `import tocha` stays instant; train, load, predict, evaluate, compare, export."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import tocha
from tocha.errors import TochaError


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api")
    return tocha.train(
        data="mnist-sample", model="mlp", hidden_sizes=[32], epochs=1, out_dir=str(out), log=quiet
    )


def test_import_tocha_is_instant_and_torch_free():
    code = "import sys, tocha; f = tocha.train; print('torch' in sys.modules, callable(f))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


def test_train_takes_options_by_short_or_dotted_name(api_run, tmp_path):
    assert api_run.config.model.args["hidden_sizes"] == [32] and api_run.config.train.epochs == 1
    assert isinstance(api_run.history, list) and api_run.history[0]["epoch"] == 1
    assert set(api_run.history[0]) >= {"train_loss", "val_accuracy", "seconds"}
    config_file = tmp_path / "run.yaml"
    config_file.write_text("data:\n  name: mnist-sample\nmodel:\n  name: linear\n")
    again = tocha.train(config_file, **{"train.epochs": 1, "out_dir": str(tmp_path)}, log=quiet)
    assert again.config.model.name == "linear"
    with pytest.raises(TochaError, match="unknown option 'colour'"):
        tocha.train(colour="red", log=quiet)
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(TochaError, match="pip install pandas"):
            api_run.history_frame()
    else:
        assert list(api_run.history_frame()["epoch"]) == [1]


def test_load_and_predict_from_paths_pillow_numpy_and_tensors(api_run, tmp_path):
    model = tocha.load(api_run.run_dir)
    assert model.classes == api_run.data.classes
    images = api_run.data.test.images[:3]
    expected = model.logits(images).argmax(1).tolist()
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image[0].numpy()).save(paths[-1])
    as_paths = model.predict(paths, top_k=2)
    assert [p[0]["index"] for p in as_paths] == expected and len(as_paths[0]) == 2
    pillow = [Image.open(p) for p in paths]
    assert [p[0]["index"] for p in model.predict(pillow)] == expected
    hwc = images[0].permute(1, 2, 0).numpy()  # (28, 28, 1), as Pillow or matplotlib hold it
    assert model.predict(hwc)[0][0]["index"] == expected[0]
    assert model.predict(images[0, 0].numpy())[0][0]["index"] == expected[0]  # (H, W)
    assert [p[0]["index"] for p in model.predict(images)] == expected
    with pytest.raises(TochaError, match="expected uint8 images"):
        model.predict(images.float())
    with pytest.raises(TochaError, match="Pillow images"):
        model.predict(42)
    assert np.isclose(sum(t["probability"] for t in model.predict(images[0], top_k=10)[0]), 1.0)


def test_top_k_is_a_whole_number_from_1_wherever_python_gives_it(api_run, tmp_path):
    """A "3" or a 2.5 failed deep inside with a TypeError, and True passed as 1: every place that
    takes top_k refuses what is not a whole number of at least 1, naming top_k and what it got."""
    from tocha.exports.onnx_predict import predict_onnx
    from tocha.inference.predict import predict_files
    from tocha.serve.server import check_options

    image = tmp_path / "digit.png"
    Image.fromarray(api_run.data.test.images[0, 0].numpy()).save(image)
    model = tocha.load(api_run.run_dir)
    onnx = tocha.export(api_run.run_dir, "onnx", tmp_path / "m.onnx", log=quiet).path
    takers = {
        "InferenceModel.predict": lambda k: model.predict([image], top_k=k),
        "InferenceModel.answers": lambda k: model.answers(api_run.data.test.images[:1], k),
        "the task's answers": lambda k: model.task.answers(np.zeros((1, 10), np.float32), model.classes, k),
        "predict_files": lambda k: predict_files(api_run.run_dir, [image], top_k=k),
        "predict_onnx": lambda k: predict_onnx(onnx, [image], top_k=k),
    }
    wrong = {"3": "str '3'", 2.5: "float 2.5", True: "bool True", 0: "int 0", -2: "int -2"}
    for bad, shown in wrong.items():
        said = re.escape(f"top_k must be a whole number of at least 1, not {shown}")
        for taker, call in takers.items():
            with pytest.raises(TochaError, match=said):
                call(bad)
                pytest.fail(f"{taker} took top_k={bad!r}")
    with pytest.raises(TochaError, match=re.escape("--top-k must be a whole number of at least 1, not str")):
        check_options(
            "127.0.0.1", 0, "3", 10.0, max_batch=64, max_pixels=1000
        )  # `tocha serve`'s options, as Python gives them
    assert len(model.predict([image], top_k=np.int64(2))[0]) == 2  # a NumPy integer is a whole number
    assert [len(a) for a in (predict_files(api_run.run_dir, [image], top_k=1)[0]["top"],
                             predict_onnx(onnx, [image], top_k=4)[0]["top"])] == [1, 4]  # fmt: skip


def test_evaluate_compare_and_export(api_run, tmp_path):
    evaluation = tocha.evaluate(api_run.run_dir, out_dir=tmp_path / "eval")
    assert evaluation.evaluation.accuracy == pytest.approx(api_run.final.accuracy)
    result = tocha.compare(["lr=0.001,0.01"], seeds=1, out=tmp_path / "cmp", data="mnist-sample",
                           model="linear", epochs=1, log=quiet)  # fmt: skip
    assert [row["cell"] for row in result.rows] == ["lr=0.001", "lr=0.01"]
    pytest.importorskip("onnxruntime")
    exported = tocha.export(api_run.run_dir, "onnx", tmp_path / "m.onnx", log=quiet)
    assert exported.parity.ok and exported.path.is_file()


def test_a_notebook_gets_a_progress_bar(monkeypatch, tmp_path, capsys):
    from tocha.api import in_notebook

    tocha.train(data="mnist-sample", model="linear", epochs=1, out_dir=str(tmp_path), log=quiet)
    assert not in_notebook() and "epoch 1/1" not in capsys.readouterr().err  # not a terminal: no bar
    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # what a Jupyter kernel has imported
    assert in_notebook()
    tocha.train(data="mnist-sample", model="linear", epochs=1, out_dir=str(tmp_path), log=quiet)
    assert "epoch 1/1" in capsys.readouterr().err  # tqdm.auto: a widget in Jupyter, text here


def test_wrong_argument_types_and_empty_batches_are_named(api_run):
    """The Python API names the argument a value does not fit, and an empty batch, instead of a
    TypeError from deep inside."""
    cases = {
        "run_or_file": lambda: tocha.load(123),
        "vary": lambda: tocha.compare("lr=0.1"),
        "batch_size": lambda: tocha.evaluate(api_run.run_dir, batch_size="9"),
        "no option 'bogus'": lambda: tocha.evaluate(api_run.run_dir, bogus=1),
        "format": lambda: tocha.export(api_run.run_dir, 3),
        "progress": lambda: tocha.train(progress="yes"),
        "config": lambda: tocha.train(config=42),
    }
    for fragment, call in cases.items():
        with pytest.raises(TochaError, match=fragment):
            call()
    model = tocha.load(api_run.run_dir)
    for empty in (np.zeros((0, 28, 28), np.uint8), torch.zeros((0, 1, 28, 28), dtype=torch.uint8), []):
        with pytest.raises(TochaError, match="no images to predict"):
            model.predict(empty)
