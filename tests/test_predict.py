"""predict: a prediction from a real PNG equals the prediction on the same test image from the
dataset files (the bundled samples are the official first test images, like the PNGs)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from helpers import SHARED_DATA, write_image_folder
from image_files import BAD_FILES, ODD_MODES, H, W, write_bad
from PIL import Image
from trained_runs import train_quick

from tocha.devices import resolve_device
from tocha.errors import TochaError
from tocha.inference.model import load_inference_model as restore
from tocha.inference.predict import load_for_model, predict_files

SAMPLES = SHARED_DATA / "samples"


def sample_pngs(prefix: str) -> list[tuple[int, int, object]]:
    """(test index, true label, path) of the shared PNGs named `<prefix>_<index>_<label>.png`."""
    if not SAMPLES.is_dir():
        pytest.skip(f"{SAMPLES} not present")
    found = []
    for path in sorted(SAMPLES.glob(f"{prefix}_*.png")):
        index, label = map(int, re.match(rf"{prefix}_(\d+)_(\d+)\.png", path.name).groups())
        found.append((index, label, path))
    assert len(found) == 20
    return found


@pytest.mark.parametrize(
    ("dataset", "prefix", "model"),
    [("fashion-mnist-sample", "fashionMNIST", "tinyvgg"), ("mnist-sample", "mnist", "mlp")],
)
def test_png_prediction_equals_dataset_prediction(shared_run, dataset, prefix, model):
    run = shared_run(data__name=dataset, model__name=model, train__epochs=1)
    pngs = sample_pngs(prefix)
    trained = restore(run.run_dir, resolve_device("cpu"))
    # Same pixels: decoding the file gives exactly the dataset's uint8 image.
    from_files = load_for_model([p for _, _, p in pngs], trained)
    from_dataset = run.data.test.images[[i for i, _, _ in pngs]]
    assert torch.equal(from_files, from_dataset)
    assert [lbl for _, lbl, _ in pngs] == run.data.test.labels[[i for i, _, _ in pngs]].tolist()
    # Same predictions: the CLI path (files) against the evaluation path (dataset tensors).
    results = predict_files(run.run_dir, [p for _, _, p in pngs], top_k=3)
    reference = trained.logits(from_dataset).softmax(dim=1)
    for r, ref in zip(results, reference, strict=True):
        assert r["top"][0]["index"] == ref.argmax().item()
        assert r["top"][0]["probability"] == pytest.approx(ref.max().item(), rel=1e-5)
        probs = [t["probability"] for t in r["top"]]
        assert probs == sorted(probs, reverse=True) and len(probs) == 3
    correct = sum(r["top"][0]["index"] == lbl for r, (_, lbl, _) in zip(results, pngs, strict=True))
    assert correct >= 12  # a trained model gets most of the 20 right


def test_rgb_folder_model_predicts_its_own_files_consistently(tmp_path):
    """RGB path: a model trained on a folder of PNGs predicts each file as on its dataset tensor."""
    root = tmp_path / "shapes"
    write_image_folder(root / "train", {"a": 6, "b": 6}, size=(16, 16), mode="RGB")
    write_image_folder(root / "test", {"a": 3, "b": 3}, size=(16, 16), mode="RGB", seed=1)
    run = train_quick(
        tmp_path, data__name=str(root), model__name="tinyvgg", model__hidden_units=4, train__epochs=1
    )
    files = sorted((root / "test").rglob("*.png"))  # same order as the folder reader: class, then name
    results = predict_files(run.run_dir, files, top_k=2)
    trained = restore(run.run_dir, resolve_device("cpu"))
    reference = trained.logits(run.data.test.images).softmax(dim=1)
    assert [r["top"][0]["index"] for r in results] == reference.argmax(dim=1).tolist()


def test_predict_resizes_and_converts_like_training(tmp_path, shared_run):
    run = shared_run(data__name="mnist-sample", model__name="linear", train__epochs=1)
    big_rgb = tmp_path / "big.png"
    Image.new("RGB", (56, 40), (200, 30, 30)).save(big_rgb)
    trained = restore(run.run_dir, resolve_device("cpu"))
    batch = load_for_model([big_rgb], trained)
    assert batch.shape == (1, 1, 28, 28) and batch.dtype == torch.uint8
    assert predict_files(run.run_dir, [big_rgb], top_k=1)[0]["top"][0]["probability"] > 0


def test_bytes_are_predicted_as_their_file_is(tmp_path, shared_run):
    """`decode_for_model` (an upload's bytes) feeds the model exactly what `load_for_model` does."""
    from tocha.inference.predict import decode_for_model, ranked_classes

    run = shared_run(data__name="mnist-sample", model__name="linear", train__epochs=1)
    model = restore(run.run_dir, resolve_device("cpu"))
    image = tmp_path / "digit.png"
    Image.new("RGB", (40, 30), (90, 200, 10)).save(image)
    from_bytes = decode_for_model(image.read_bytes(), model, name="digit.png")
    assert torch.equal(from_bytes, load_for_model([image], model))
    assert ranked_classes(model, from_bytes, 2) == [predict_files(run.run_dir, [image], top_k=2)[0]["top"]]


def test_predict_errors_name_the_file(tmp_path, shared_run):
    run = shared_run(data__name="mnist-sample", model__name="linear", train__epochs=1)
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is text, not a PNG")
    with pytest.raises(TochaError, match="notes.png"):
        predict_files(run.run_dir, [not_image])
    with pytest.raises(TochaError, match="missing.png"):
        predict_files(run.run_dir, [tmp_path / "missing.png"])
    with pytest.raises(TochaError, match="top_k"):
        predict_files(run.run_dir, [not_image], top_k=0)


@pytest.fixture(scope="module")
def small_rgb_run(tmp_path_factory):
    """A linear model on 3x4 RGB images: files of that size reach it without resizing."""
    out = tmp_path_factory.mktemp("small-rgb")
    write_image_folder(out / "folder", {"a": 3, "b": 3}, size=(H, W), mode="RGB")
    return train_quick(out, data__name=str(out / "folder"), model__name="linear", train__epochs=1)


def test_predict_converts_odd_modes_exactly(tmp_path, small_rgb_run):
    """Palette (with and without transparency), 16-bit, CMYK, RGBA, LA: the pixels the model sees."""
    files = [tmp_path / name for name in ODD_MODES]
    expected = [ODD_MODES[f.name](f) for f in files]
    trained = restore(small_rgb_run.run_dir, resolve_device("cpu"))
    batch = load_for_model(files, trained)
    for f, got, want in zip(files, batch.numpy(), expected, strict=True):
        np.testing.assert_array_equal(got.transpose(1, 2, 0), want, err_msg=f.name)
    results = predict_files(small_rgb_run.run_dir, files, top_k=1)
    assert [r["path"] for r in results] == [str(f) for f in files]


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_predict_names_each_bad_file_and_why(tmp_path, small_rgb_run, name):
    (bad,) = write_bad(tmp_path, [name])
    good = tmp_path / "good.png"
    Image.new("RGB", (W, H), (1, 2, 3)).save(good)
    with pytest.raises(TochaError) as e:
        predict_files(small_rgb_run.run_dir, [good, bad])
    assert str(bad) in str(e.value) and BAD_FILES[name][1] in str(e.value)
    assert "good.png" not in str(e.value)


def test_predict_names_all_bad_files_at_once(tmp_path, small_rgb_run):
    bad = write_bad(tmp_path)
    good = tmp_path / "good.png"
    Image.new("RGB", (W, H), (1, 2, 3)).save(good)
    with pytest.raises(TochaError) as e:
        predict_files(small_rgb_run.run_dir, [bad[0], good, *bad[1:]])
    assert f"{len(bad)} of the {len(bad) + 1} image files are not readable" in str(e.value)
    for path in bad:
        assert str(path) in str(e.value)
