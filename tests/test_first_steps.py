"""What a new user hits first: a misspelt flag, a flip that changes a digit, a rerun comparison,
words that say what happened."""

from __future__ import annotations

import re

from helpers import run_main


def test_a_misspelt_flag_names_the_one_meant(tmp_path):
    result = run_main("train", "--optimiser", "sgd", "--out", tmp_path)
    assert result.returncode == 2 and "--optimiser: did you mean --optimizer?" in result.stderr
    result = run_main("compare", "--vary", "lr=0.1", "--learning-rate=0.1")
    assert result.returncode == 2 and "unrecognized arguments: --learning-rate=0.1" in result.stderr
    result = run_main("evaluate", "r", "--optimiser", "sgd")  # evaluate has no --optimizer: no guess
    assert result.returncode == 2 and "did you mean" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_flipping_digits_is_said_flipping_clothes_is_not(tmp_path):
    common = (
        "--epochs",
        "1",
        "--model",
        "linear",
        "--train-limit",
        "600",
        "--out",
        tmp_path,
        "--no-progress",
    )
    digits = run_main("train", "--data", "mnist-sample", "--augment-flip", "--tta-flip", *common)
    assert digits.returncode == 0, digits.stderr
    assert "note: --augment-flip and --tta-flip mirror mnist-sample's images" in digits.stdout
    assert "a mirrored digit is another symbol" in digits.stdout
    clothes = run_main("train", "--data", "fashion-mnist-sample", "--augment-flip", *common)
    assert clothes.returncode == 0 and "mirror" not in clothes.stdout


def test_a_folder_of_train_and_val_is_a_split_not_two_classes(tmp_path):
    from helpers import write_image_folder

    from tocha.data.folder import load_folder

    root = tmp_path / "pets"
    write_image_folder(root / "train", {"cat": 10, "dog": 10})
    write_image_folder(root / "val", {"cat": 3, "dog": 3}, seed=1)
    data = load_folder(root, log=lambda _line: None)
    assert data.classes == ["cat", "dog"]  # not ["train", "val"]
    assert len(data.val) == 6 and len(data.train) + len(data.test) == 20 and len(data.test) == 4
    (root / "train").rename(root / "test")  # test/ and val/: nothing to train on
    refused = run_main("train", "--data", root, "--out", tmp_path / "runs")
    assert refused.returncode == 2 and "holds split folders (test/, val/), not classes" in refused.stderr
    assert not (tmp_path / "runs").exists()


def test_summary_of_a_trained_run_its_checkpoint_and_its_export(tmp_path):
    runs = tmp_path / "runs"
    common = ("--epochs", "1", "--train-limit", "300", "--out", runs, "--no-progress")
    assert run_main("train", "--data", "fashion-mnist-sample", "--name", "fm", *common).returncode == 0
    assert (
        run_main("train", "--data", "iris", "--name", "iris", "--out", runs, "--epochs", "1").returncode == 0
    )
    assert run_main("export", runs / "fm", "--format", "onnx").returncode == 0
    for path, described in ((runs / "fm", "a run folder"), (runs / "fm" / "checkpoint.pt", "a checkpoint"),
                            (runs / "fm" / "model.onnx", "an ONNX export")):  # fmt: skip
        shown = run_main("summary", path)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(
            f"tinyvgg for fashion-mnist-sample (as recorded in {described}, {path})"
        )
        assert (
            "(B, 490)                 0  <- 10 * 7 * 7" in shown.stdout
            and "total parameters: 7,740" in shown.stdout
        )
    table = run_main("summary", runs / "iris").stdout
    assert "input           (B, 4)" in table and "(B, 4, 1, 1)" not in table and "<-" not in table
    from_config = run_main("summary", "--config", runs / "fm" / "config.yaml")
    assert from_config.returncode == 0 and "total parameters: 7,740" in from_config.stdout
    mixed = run_main("summary", runs / "fm", "--model", "mlp")
    assert mixed.returncode == 2 and "give no --config, model or data options" in mixed.stderr


def test_a_pt2_export_predicts_and_serves_as_its_run_does(tmp_path):
    import numpy as np
    from helpers import SHARED_DATA

    from tocha.inference.predict import predict_files
    from tocha.serve.predictor import load_predictor

    run = tmp_path / "runs" / "fm"
    assert run_main("train", "--data", "fashion-mnist-sample", "--epochs", "1", "--train-limit", "300",
                    "--out", run.parent, "--name", "fm", "--no-progress").returncode == 0  # fmt: skip
    assert run_main("export", run, "--format", "pt2").returncode == 0
    pngs = sorted((SHARED_DATA / "samples").glob("fashionMNIST_*.png"))[:4] or [tmp_path / "x.png"]
    if not pngs[0].exists():
        from PIL import Image

        Image.fromarray(np.arange(784, dtype=np.uint8).reshape(28, 28)).save(pngs[0])
    printed = run_main("predict", run / "model.pt2", *pngs, "--json")
    assert printed.returncode == 0, printed.stderr
    import json

    got = [item["top"][0]["class"] for item in json.loads(printed.stdout)]
    assert got == [item["top"][0]["class"] for item in predict_files(run, pngs)]
    served = load_predictor(run / "model.pt2")
    assert served.card["runtime"] == "torch.export"
    batch = np.stack([served.decode(p.read_bytes(), p.name) for p in pngs])
    from_run = load_predictor(run).run(batch)
    assert np.allclose(served.run(batch), from_run, rtol=1e-4, atol=1e-4)


def test_optimizer_defaults_are_torch_optims(tmp_path):
    """A learner compares tocha's SGD with torch.optim.SGD(params, lr): no hidden momentum; AdamW
    decays by 0.01 as torch's does; the resolved config records the numbers."""
    import torch
    import yaml

    from tocha.config import TrainConfig
    from tocha.training.optimizers import make_optimizer

    params = [torch.nn.Parameter(torch.zeros(2))]
    references = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    for name, make in references.items():
        reference = make(params, lr=0.1)
        ours = make_optimizer(params, TrainConfig(optimizer=name, lr=0.1)).param_groups[0]
        theirs = reference.param_groups[0]
        for key in ("momentum", "nesterov", "weight_decay", "dampening", "betas", "eps", "amsgrad"):
            assert ours.get(key) == theirs.get(key), (name, key)
    runs = tmp_path / "runs"
    for name in ("sgd", "adamw"):
        assert run_main("train", "--data", "iris", "--optimizer", name, "--epochs", "1", "--out", runs,
                        "--name", name).returncode == 0  # fmt: skip
    recorded = {n: yaml.safe_load((runs / n / "config.yaml").read_text())["train"] for n in ("sgd", "adamw")}
    assert (recorded["sgd"]["momentum"], recorded["sgd"]["weight_decay"]) == (0.0, 0.0)
    assert recorded["adamw"]["weight_decay"] == 0.01


def test_predict_says_what_it_changed_to_answer(tmp_path):
    """A 32x32 RGB photo for a 28x28 grayscale model, a row with a missing number or an unknown
    category: answered, and said on stderr and in --json; rows keep the ID column the run dropped."""
    import json

    import numpy as np
    from PIL import Image

    runs = tmp_path / "runs"
    assert run_main("train", "--data", "fashion-mnist-sample", "--epochs", "1", "--train-limit", "300",
                    "--out", runs, "--name", "fm", "--no-progress").returncode == 0  # fmt: skip
    photo, gray = tmp_path / "photo.png", tmp_path / "gray.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(photo)
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(gray)
    assert run_main("export", runs / "fm", "--format", "onnx").returncode == 0
    for model in (runs / "fm", runs / "fm" / "model.onnx"):
        result = run_main("predict", model, photo, gray, "--json")
        assert result.returncode == 0, result.stderr
        said = "resized from 32x32 to 28x28, RGB to grayscale (the model takes 28x28 grayscale)"
        assert result.stderr.splitlines() == [f"note: {photo}: {said}"]
        items = json.loads(result.stdout)
        assert [item["converted"] for item in items] == [
            "resized from 32x32 to 28x28, RGB to grayscale",
            None,
        ]

    rows = ["id,age,color,y"] + [
        f"{100 + i},{20 + i},{'red' if i % 2 else 'blue'},{2 * i}" for i in range(40)
    ]
    (tmp_path / "shop.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "new.csv").write_text("id,age,color\n7,30,red\n8,,blue\n9,40,purple\n")
    shop = ("--data", tmp_path / "shop.csv", "--target", "y", "--drop", "id", "--fill", "median")
    assert run_main("train", *shop, "--epochs", "1", "--out", runs, "--name", "shop").returncode == 0
    assert run_main("export", runs / "shop", "--format", "onnx").returncode == 0
    for model in (runs / "shop", runs / "shop" / "model.onnx"):
        result = run_main("predict", model, tmp_path / "new.csv")
        assert result.returncode == 0, result.stderr
        assert [line.split(",")[0] for line in result.stdout.splitlines()] == ["id", "7", "8", "9"]
        filled, unknown = result.stderr.splitlines()
        median = r"\d+(\.\d+)? \(from the training rows\)"
        assert re.fullmatch(rf"note: new.csv: id 8: age missing, filled with {median}", filled)
        assert unknown == "note: new.csv: id 9: color 'purple' not seen in training: no known category"
    items = json.loads(run_main("predict", runs / "shop", tmp_path / "new.csv", "--json").stdout)
    assert [len(item.get("adjusted", [])) for item in items] == [0, 1, 1]
    assert items[2]["adjusted"] == ["color 'purple' not seen in training: no known category"]


def test_slow_reading_says_how_it_goes_and_quick_reading_says_nothing(tmp_path, monkeypatch):
    from helpers import write_image_folder

    from tocha.data import progress
    from tocha.data.folder import load_folder

    write_image_folder(tmp_path / "shapes", {"a": 6, "b": 6})
    lines: list[str] = []
    load_folder(tmp_path / "shapes", log=lines.append)
    assert lines == []  # well under a second: nothing to say
    monkeypatch.setattr(progress, "QUIET_SECONDS", -1.0)  # every stage counts as slow
    monkeypatch.setenv("TOCHA_CACHE_DIR", str(tmp_path / "fresh-cache"))  # decode again, not from the cache
    load_folder(tmp_path / "shapes", log=lines.append)
    assert lines[0] == "reading image headers: 1 file of 12 files so far, going on..."
    assert re.fullmatch(r"reading image headers: 12 files in \d+\.\ds \([\d,]+ files/s\)", lines[1])
    assert lines[2] == "decoding images: 1 image of 12 images so far, going on..."
    assert re.fullmatch(r"decoding images: 12 images in \d+\.\ds \([\d,]+ images/s\)", lines[3])
