"""Your own data from Python (`tocha.data.given`): a `Dataset` written the way the notes write one,
tensors `(X, y)`, a mapping of splits; read once, split and checked as tocha's own datasets are.
The headline: a `Dataset` over the real Fashion-MNIST files trains the notes' FashionMNISTModelV2 to
the very weights `--data fashion-mnist` gives under the same seed and split."""

from __future__ import annotations

import gzip
import signal

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import tocha
from tocha.errors import Interrupted, TochaError
from tocha.runs.checkpoint import read_checkpoint

CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
QUIET = {"progress": False, "log": lambda _line: None}


class FashionMNIST(Dataset):
    """The notes' pattern: the raw files read once, one (image, label) per `__getitem__`; the image
    as the uint8 pixels the file holds, (1, 28, 28)."""

    classes = CLASSES

    def __init__(self, root, train: bool = True) -> None:
        prefix = "train" if train else "t10k"
        with gzip.open(root / "fashion-mnist" / f"{prefix}-images-idx3-ubyte.gz") as f:
            self.images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
        with gzip.open(root / "fashion-mnist" / f"{prefix}-labels-idx1-ubyte.gz") as f:
            self.labels = np.frombuffer(f.read(), np.uint8, offset=8)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.images[i].copy()), int(self.labels[i])


class FashionMNISTModelV2(nn.Module):
    """The notes' TinyVGG, as they write it."""

    def __init__(self, input_shape: int, hidden_units: int, output_shape: int) -> None:
        super().__init__()
        self.block_1 = nn.Sequential(
            nn.Conv2d(input_shape, hidden_units, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.block_2 = nn.Sequential(
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(hidden_units * 7 * 7, output_shape))

    def forward(self, x):
        return self.classifier(self.block_2(self.block_1(x)))


MODEL = {
    "model": FashionMNISTModelV2,
    "model_args": {"input_shape": 1, "hidden_units": 8, "output_shape": 10},
}


def test_a_notes_dataset_trains_to_the_very_weights_of_the_registered_dataset(shared_data, tmp_path):
    common = {
        **MODEL,
        **QUIET,
        "epochs": 1,
        "batch_size": 64,
        "lr": 0.01,
        "train_limit": 3000,
        "out_dir": str(tmp_path),
    }
    lines = []
    mine = tocha.train(data=(FashionMNIST(shared_data, True), FashionMNIST(shared_data, False)),
                       **{**common, "log": lines.append})  # fmt: skip
    theirs = tocha.train(data="fashion-mnist", data_dir=str(shared_data), **common)
    ours, registered = read_checkpoint(mine.run_dir), read_checkpoint(theirs.run_dir)
    assert ours.weights.keys() == registered.weights.keys()
    assert all(torch.equal(ours.weights[k], registered.weights[k]) for k in ours.weights)  # bit for bit
    assert mine.final.accuracy == theirs.final.accuracy and mine.final.accuracy > 0.5
    assert mine.config.data.name == "python:FashionMNIST" and mine.data.classes == CLASSES  # its `classes`
    said = next(line for line in lines if line.startswith("python:FashionMNIST: given in Python"))
    assert "60,000 train, 10,000 test items of (1, 28, 28) uint8, 0..255" in said and "image bytes" in said


def digits(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images (N, 1, 8, 8) in [0, 1], as ToTensor gives them, of 4 classes a model can tell
    apart: a bright quadrant per class, and noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.3
    for k in range(4):
        r, c = divmod(k, 2)
        x[y == k, :, r * 4 : r * 4 + 4, c * 4 : c * 4 + 4] += 0.7
    return x, y


def test_float_inputs_reach_the_model_exactly_as_given(tmp_path):
    x, y = digits()
    seen = []

    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))

        def forward(self, batch):
            if torch.is_grad_enabled():  # the training batches, not tocha's trial run (without gradients)
                seen.append(batch.detach().clone())
            return self.layer(batch)

    result = tocha.train(data=(x, y), model=Flat(), epochs=3, batch_size=32, lr=0.05, shuffle="full",
                         out_dir=str(tmp_path), **QUIET)  # fmt: skip
    trained = read_checkpoint(result.run_dir)
    assert trained.normalization["mean"] == [0.0] and trained.normalization["std"] == [1.0]
    assert trained.normalization["input_scale"] == 1.0
    rows = {tuple(row.flatten().tolist()) for row in x}
    assert all(tuple(sample.flatten().tolist()) in rows for sample in seen[0])  # bit for bit, no rescale
    assert result.final.accuracy > 0.9  # 4 quadrants: learnt
    assert result.config.data.name == "python:tensors" and result.data.classes == ["0", "1", "2", "3"]
    loaded = tocha.load(result.run_dir, model=Flat)  # asked from Python on inputs as the data gives them
    assert [a[0]["index"] for a in loaded.answers(x[:40])] == y[:40].tolist()
    assert loaded(x[:2]).grad_fn is None and loaded.model(x[:2].flatten(1)).grad_fn is None  # for answering
    from PIL import Image

    Image.new("L", (8, 8)).save(tmp_path / "one.png")
    with pytest.raises(
        TochaError, match="trained on your own data's inputs, \\(1, 8, 8\\) float32"
    ):  # not 0..255 pixels
        loaded.predict([tmp_path / "one.png"])


def test_one_split_given_is_split_as_a_folder_is_and_a_given_val_is_kept(tmp_path):
    x, y = digits(200)
    one = tocha.train(data=(x, y), model="mlp", epochs=1, test_fraction=0.25, out_dir=str(tmp_path), **QUIET)
    # a quarter of each class's 50 held out for testing (12, rounded half to even), then 10% of each
    # class's 38 carved for validation (4): seeded and stratified, as an image folder is split
    assert (len(one.data.train), len(one.data.val), len(one.data.test)) == (136, 16, 48)
    assert torch.bincount(one.data.test.labels).tolist() == [12] * 4
    assert torch.bincount(one.data.val.labels).tolist() == [4] * 4
    splits = {"train": (x[:150], y[:150]), "val": (x[150:170], y[150:170]), "test": (x[170:], y[170:])}
    given = tocha.train(data=splits, model="mlp", epochs=1, out_dir=str(tmp_path), **QUIET)
    assert (len(given.data.train), len(given.data.val), len(given.data.test)) == (150, 20, 30)
    assert torch.equal(given.data.val.images, x[150:170])  # used as it is, not carved


class Items(Dataset):
    """A dataset whose items are what the test says."""

    def __init__(self, items) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        value = self.items[i]
        if isinstance(value, Exception):
            raise value
        return value


GOOD = (torch.zeros(1, 4, 4), 0)
BAD_DATA = {
    "not a pair": ([GOOD, torch.zeros(1, 4, 4)], "train item 1 is Tensor, not a pair (input, target)"),
    "a shape that varies": ([GOOD, GOOD, (torch.zeros(1, 5, 4), 1)], "train item 2's input is (1, 5, 4)"),
    "a raising item": (
        [GOOD, ValueError("no such file: 7.png")],
        "reading train item 1 failed: ValueError: no such",
    ),
    "a lying len": (
        [GOOD, IndexError("list index out of range")],
        "train item 1 does not exist though len() says 2",
    ),
    "NaN": ([GOOD, (torch.full((1, 4, 4), float("nan")), 1)], "train item 1's input holds NaN or infinity"),
    "float targets": ([GOOD, (torch.zeros(1, 4, 4), 0.5)], "train item 1's target is torch.float"),
    "an empty split": ([], "the train split is empty"),
    "token ids for mlp": ([(torch.zeros(5, dtype=torch.long), 0)] * 4, "integer inputs (5,) int64"),
    "booleans": ([(torch.zeros(5, dtype=torch.bool), 0)] * 4, "the inputs are torch.bool"),
    "four dimensions": ([(torch.zeros(1, 2, 2, 2), 0)] * 4, "inputs of one to three dimensions"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_one_line_naming_the_item_and_nothing_is_written(tmp_path, case):
    items, expected = BAD_DATA[case]
    with pytest.raises(TochaError) as refused:
        tocha.train(data=Items(items), model="mlp", epochs=1, out_dir=str(tmp_path / "runs"), **QUIET)
    assert expected in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "runs").exists()


def test_an_unknown_split_is_refused_and_a_run_is_evaluated_on_its_data_given_again(tmp_path):
    x, y = digits(40)
    with pytest.raises(TochaError, match="takes the keys train"):
        tocha.train(data={"training": (x, y)}, model="mlp", out_dir=str(tmp_path), **QUIET)
    run = tocha.train(data=(x, y), model="mlp", epochs=1, out_dir=str(tmp_path), **QUIET)
    with pytest.raises(TochaError, match=r"trained on data given in Python \(python:tensors\)"):
        tocha.evaluate(run.run_dir)
    again = tocha.evaluate(run.run_dir, data=(x, y))  # given again: its test split, as training split it
    assert again.evaluation.samples == len(run.data.test) and again.evaluation.accuracy == run.final.accuracy


def test_a_stopped_run_resumes_on_the_same_data_to_the_same_weights(tmp_path):
    from tocha.api import make_config
    from tocha.training import train
    from tocha.training.interrupt import StopRequest

    x, y = digits(300)
    settings = {"model": "mlp", "hidden_sizes": [16], "epochs": 3, "batch_size": 20, "data": "python:tensors"}
    straight = train(
        make_config(out_dir=str(tmp_path), run_name="straight", **settings), data=(x, y), **QUIET
    )
    stop = StopRequest()

    def log(line: str) -> None:
        if line.startswith("epoch 1/"):
            stop.request(signal.SIGTERM)  # as SIGTERM does: the run stops at its next step

    stopped = make_config(out_dir=str(tmp_path), run_name="stopped", **settings)
    with pytest.raises(Interrupted):
        train(stopped, data=(x, y), log=log, progress=False, stop=stop)
    with pytest.raises(TochaError, match="trained on data given in Python"):  # its data is not on disk
        tocha.resume(tmp_path / "stopped", **QUIET)
    resumed = tocha.resume(tmp_path / "stopped", data=(x, y), **QUIET)
    a, b = read_checkpoint(straight.run_dir).weights, read_checkpoint(resumed.run_dir).weights
    assert all(torch.equal(a[k], b[k]) for k in a) and resumed.final.accuracy == straight.final.accuracy
    with pytest.raises(TochaError, match="trained on other data than python:tensors"):  # the fingerprint
        tocha.resume(tmp_path / "straight", data=(x.flip(0), y.flip(0)), epochs=4, **QUIET)


def test_compare_takes_your_data_and_your_model(tmp_path):
    class Small(nn.Module):
        def __init__(self, hidden: int = 8) -> None:
            super().__init__()
            self.layers = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 4))

        def forward(self, x):
            return self.layers(x)

    x, y = digits(240)
    result = tocha.compare(vary=["lr=0.01,0.05"], seeds=1, out=tmp_path / "r", models={"small": Small},
                           data=(x, y), epochs=2, log=lambda _line: None)  # fmt: skip
    assert len(result.rows) == 2 and all(len(cell.runs) == 1 for cell in result.results)
    runs = sorted((tmp_path / "r" / "runs").iterdir())
    assert {read_checkpoint(r).config["data"]["name"] for r in runs} == {"python:tensors"}
    with pytest.raises(TochaError, match="baselines read their data by name"):
        tocha.compare(vary=["lr=0.01"], seeds=1, out=tmp_path / "b", data=(x, y), baselines=["knn"],
                      log=lambda _line: None)  # fmt: skip
    # each model its own arguments, and labels with a dash
    two = tocha.compare(seeds=1, out=tmp_path / "m", models={"small-4": (Small, {"hidden": 4}),
                        "small-16": (Small, {"hidden": 16}), "mlp": "mlp"}, data=(x, y), epochs=1,
                        log=lambda _line: None)  # fmt: skip
    recorded = {
        r.cell["model.name"]: read_checkpoint(r.runs[0].run_dir).config["model"]["args"] for r in two.results
    }
    assert recorded["python:small-4"] == {"hidden": 4} and recorded["python:small-16"] == {"hidden": 16}
    assert [row["cell"] for row in two.rows][:2] == [
        "model=python:small-4 hidden=4",
        "model=python:small-16 hidden=16",
    ]
    widths = {r.cell["model.name"]: r.runs[0].summary.parameters for r in two.results}
    assert widths["python:small-4"] < widths["python:small-16"]


def test_feature_rows_classify_and_a_regression_learns_from_tensors(tmp_path):
    """Rows (N, F) reach the model as (B, F); float targets make a regression, learnt as given."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 5, generator=g)
    y = x @ torch.tensor([1.5, -2.0, 0.5, 0.0, 3.0]) + 0.1 * torch.randn(600, generator=g)
    shapes = set()

    class Line(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(5, 1)

        def forward(self, rows):
            shapes.add(tuple(rows.shape[1:]))
            return self.layer(rows)

    lines = []
    regression = tocha.train(data=(x, y), model=Line, epochs=15, batch_size=32, lr=0.05,
                             out_dir=str(tmp_path), progress=False, log=lines.append)  # fmt: skip
    assert regression.task.name == "regression" and regression.final.r2 > 0.99, regression.final.values
    assert shapes == {(5,)}  # rows, as the notes' models take them
    assert any("items of (5,) float32" in line and "numbers (regression)" in line for line in lines)
    answers = tocha.load(regression.run_dir, model=Line).answers(x[:3])
    assert torch.allclose(torch.tensor(answers).flatten(), y[:3], atol=0.5)
    classes = tocha.train(data=(x, (y > 0).long()), model="mlp", epochs=5, out_dir=str(tmp_path), **QUIET)
    assert classes.task.name == "classification" and classes.final.accuracy > 0.9
    with pytest.raises(TochaError, match="augmentations are for images"):  # not images: no flips, no shifts
        tocha.train(data=(x, y), model=Line, augment_flip=True, out_dir=str(tmp_path), **QUIET)
