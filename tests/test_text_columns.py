"""Text read beside a table's numeric and categorical columns (`data.text_set.with_columns`,
`models.text_models.beside_columns`): the columns count (a rule neither the text nor the columns
tell alone is learnt from both), predict and exports read a CSV's rows with them, an exact resume,
the TF-IDF baseline with the columns, and what is refused, each in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_main, straight_and_stopped_at
from text_data import texts_beside_columns

import tocha
from tocha.errors import TochaError

BESIDE = {"text": "review", "target": "label", "tokens": "words", "progress": False, "threads": 1}


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def xor_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return texts_beside_columns(tmp_path_factory.mktemp("beside") / "shop.csv")


@pytest.fixture(scope="module")
def gru_run(tmp_path_factory: pytest.TempPathFactory, xor_csv: Path):  # noqa: ANN201 (a run's result)
    out = tmp_path_factory.mktemp("runs")
    return tocha.train(data=str(xor_csv), model="gru", drop=["id"], hidden_size=32, epochs=12, lr=0.01,
                       out_dir=str(out), run_name="gru", log=quiet, **BESIDE)  # fmt: skip


def test_the_columns_beside_the_text_are_read_and_learnt_with_it(tmp_path, xor_csv, gru_run):
    """The label is the text's "good" flipped by the shop: with the columns a GRU (and a bag of
    words: the rule needs no order) is right on the test rows; the text alone is a coin's odds."""
    from tocha.config import DataConfig
    from tocha.data.text_set import load_text

    said: list[str] = []
    cfg = DataConfig(name=str(xor_csv), text="review", target="label", drop=["id"], tokens="words")
    data = load_text(cfg, str(xor_csv), said.append)
    beside = data.text["beside"]
    assert beside["features"] == ["price", "shop=a", "shop=b"]  # a number, then a category one-hot
    assert data.train.images.dtype == torch.float32 and data.train.images.shape[1] == 3 + 8  # 8 words at most
    assert "beside it 3 features from price, shop" in data.source
    stats = data.details["input_stats"]
    prices = data.train.images[:, 0, 0, 0].double()
    assert stats["mean"][0] == pytest.approx(prices.mean().item(), rel=1e-5)  # the training rows' own
    assert stats["mean"][1:] == [0.0] * 10 and stats["std"][1:] == [1.0] * 10  # one-hot and ids as they are

    assert gru_run.final.values["accuracy"] >= 0.95
    bag = tocha.train(data=str(xor_csv), model="bag", drop=["id"], epochs=12, lr=0.01, out_dir=str(tmp_path),
                      log=quiet, **BESIDE)  # fmt: skip
    assert bag.final.values["accuracy"] >= 0.95
    alone = tocha.train(data=str(xor_csv), model="gru", drop=["id", "price", "shop"], hidden_size=32,
                        epochs=12, lr=0.01, out_dir=str(tmp_path), log=quiet, **BESIDE)  # fmt: skip
    assert alone.final.values["accuracy"] <= 0.7


def test_predict_reads_a_csvs_rows_with_their_columns_and_refuses_lines_alone(tmp_path, xor_csv, gru_run):
    rows = tmp_path / "rows.csv"
    rows.write_text("review,price,shop\ngood fine,10,a\ngood fine,10,b\nbad okay,10,a\nbad okay,10,b\n")
    said = run_main("predict", gru_run.run_dir, rows)
    assert said.returncode == 0, said.stderr
    answers = [line.split(",")[1] for line in said.stdout.splitlines()[1:]]
    assert answers == ["yes", "no", "no", "yes"]  # the same words, the shop flips the answer
    model = tocha.load(gru_run.run_dir)
    assert [a[0]["class"] for a in model.predict(rows)] == answers  # in Python, from the CSV's path

    lines = tmp_path / "lines.txt"
    lines.write_text("good fine\n")
    refused = run_main("predict", gru_run.run_dir, lines)
    assert refused.returncode == 2 and "beside the columns price, shop: give a CSV" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    with pytest.raises(TochaError, match="give a CSV's path"):
        model.predict(["good fine"])
    served = subprocess.run([sys.executable, "-m", "tocha", "serve", str(gru_run.run_dir), "--port", "0"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert served.returncode == 2 and "reads each text beside table columns" in served.stderr, served.stderr
    missing = tmp_path / "no_shop.csv"
    missing.write_text("review,price\ngood,1\n")
    refused = run_main("predict", gru_run.run_dir, missing)
    assert refused.returncode == 2 and "no column shop" in refused.stderr, refused.stderr


def test_onnx_and_pt2_exports_read_the_columns_too(tmp_path, xor_csv, gru_run):
    """Parity checked by export itself (at the training length, said by the file's input shape),
    then predict through each file answers a CSV's rows as the run does."""
    import onnxruntime as ort

    expected = run_main("predict", gru_run.run_dir, xor_csv).stdout
    for kind in ("onnx", "pt2"):
        target = tmp_path / f"model.{kind}"
        written = run_main("export", gru_run.run_dir, "--format", kind, "--out", target)
        assert written.returncode == 0 and "top-1 agreement 100.00%" in written.stdout, written.stderr
        said = run_main("predict", target, xor_csv)
        assert said.returncode == 0, said.stderr
        assert said.stdout == expected
    shape = ort.InferenceSession(str(tmp_path / "model.onnx")).get_inputs()[0].shape
    assert shape[1] == 3 + 8  # the columns, then the ids at the training length


def test_a_run_with_columns_beside_its_text_resumes_exactly(tmp_path, xor_csv):
    from test_resume import assert_same

    from tocha.config import RunConfig, set_value

    def config(name: str) -> RunConfig:
        cfg = RunConfig(out_dir=str(tmp_path), run_name=name)
        values = {"data.name": str(xor_csv), "data.text": "review", "data.target": "label",
                  "data.drop": ["id"], "data.tokens": "words", "model.name": "gru", "model.hidden_size": 16,
                  "train.epochs": 2, "train.batch_size": 32, "train.lr": 0.01, "train.threads": 1,
                  "train.shuffle": "lengths"}  # fmt: skip
        for key, value in values.items():
            set_value(cfg, key, value)
        return cfg

    assert_same(*straight_and_stopped_at(config, 20))  # in epoch 2 (14 steps an epoch)


OWN_MODEL = """
import torch
from torch import nn


class WordsAndColumns(nn.Module):
    def __init__(self, vocab_size: int, columns: int = 3):
        super().__init__()
        self.words = nn.EmbeddingBag(vocab_size, 16, padding_idx=0)
        self.head = nn.Sequential(nn.Linear(16 + columns, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, ids, columns, lengths):
        assert ids.dtype == torch.int64 and columns.dtype == torch.float32
        assert bool((lengths == (ids != 0).sum(1).clamp(min=1)).all())  # counted on the ids alone
        return self.head(torch.cat([self.words(ids), columns], dim=1))
"""


def test_your_own_model_gets_the_ids_and_the_columns_apart(tmp_path, xor_csv, monkeypatch):
    (tmp_path / "mine.py").write_text(OWN_MODEL)
    monkeypatch.chdir(tmp_path)
    said: list[str] = []
    vocab = 10  # <pad>, <unk> and the eight words
    run = tocha.train(data=str(xor_csv), model="mine.py:WordsAndColumns", model_args={"vocab_size": vocab},
                      drop=["id"], epochs=12, lr=0.01, out_dir=str(tmp_path), log=said.append,
                      **BESIDE)  # fmt: skip
    assert "a vocabulary of 10 tokens" in said[0]
    assert run.final.values["accuracy"] >= 0.95
    rows = tmp_path / "rows.csv"
    rows.write_text("review,price,shop\ngood fine,10,a\ngood fine,10,b\n")
    assert [a[0]["class"] for a in tocha.load(run.run_dir).predict(rows)] == ["yes", "no"]


def test_the_tfidf_baseline_reads_the_columns_beside_the_text(tmp_path):
    """Under "good, or a price over 70", TF-IDF and logistic regression read both (near every
    answer right); given the text alone it cannot see the price."""
    from tocha.config import DataConfig
    from tocha.data.text_set import load_text
    from tocha.experiments.baselines import run_baseline

    path = texts_beside_columns(tmp_path / "or.csv", rule="or")

    def fitted(drop: list[str]) -> float:
        cfg = DataConfig(name=str(path), text="review", target="label", drop=drop, tokens="words")
        return run_baseline("tfidf", load_text(cfg, str(path), quiet)).accuracy

    with_columns, alone = fitted(["id"]), fitted(["id", "price", "shop"])
    assert with_columns >= 0.95 and alone <= 0.85, (with_columns, alone)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--model", "notes.py:Mine"], "give its forward a `columns` parameter"),
        (["--fill", "drop-rows"], "--fill drop-rows is for tables"),
        ([], "missing values in price (1); give --fill"),
        (["--drop", "nope"], "--drop nope: no such column"),
    ],
)
def test_bad_columns_beside_a_text_are_one_line_and_write_nothing(tmp_path, monkeypatch, extra, said):
    path = texts_beside_columns(tmp_path / "t.csv", n=60)
    lines = path.read_text().splitlines()
    lines[5] = ",".join(c if i != 2 else "" for i, c in enumerate(lines[5].split(",")))  # one price missing
    path.write_text("\n".join(lines) + "\n")
    (tmp_path / "notes.py").write_text(
        "from torch import nn\n\nclass Mine(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.e = nn.EmbeddingBag(100, 2)\n\n"
        "    def forward(self, ids):\n        return self.e(ids)\n"
    )
    monkeypatch.chdir(tmp_path)
    fill = [] if extra == [] or "--fill" in extra else ["--fill", "mean"]
    result = run_main("train", "--data", path, "--text", "review", "--target", "label", "--tokens", "words",
                      *fill, *extra, "--out", tmp_path / "runs", "--no-progress")  # fmt: skip
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_a_gap_in_a_column_is_filled_with_the_training_rows_mean(tmp_path):
    from tocha.config import DataConfig
    from tocha.data.text_set import load_text

    path = texts_beside_columns(tmp_path / "t.csv", n=60)
    lines = path.read_text().splitlines()
    lines[5] = ",".join(c if i != 2 else "" for i, c in enumerate(lines[5].split(",")))
    path.write_text("\n".join(lines) + "\n")
    cfg = DataConfig(name=str(path), text="review", target="label", drop=["id"], fill="mean", val_fraction=0)
    data = load_text(cfg, str(path), quiet)
    fill = data.text["beside"]["encoder"]["fill"]["price"]
    prices = np.array([float(line.split(",")[2]) for line in lines[1:] if line.split(",")[2]])
    assert min(prices) < fill < max(prices)  # a mean of the training rows' prices
    everything = torch.cat([data.train.images, data.test.images])[:, 0, 0, 0]
    assert torch.isclose(everything, torch.tensor(fill, dtype=torch.float32)).sum() == 1  # the gap, filled


def test_summary_of_a_text_with_columns_reads_the_data(xor_csv):
    said = run_main("summary", "--data", xor_csv, "--text", "review", "--target", "label", "--drop", "id",
                    "--tokens", "words", "--model", "bag")  # fmt: skip
    assert said.returncode == 0, said.stderr
    assert "(B, 67)" in said.stdout  # the bag's 64 features and the 3 columns, into the layer before the head
