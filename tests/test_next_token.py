"""Next-token models (`--task next-token`, `data.corpus`, `tasks.next_token`) and generation
(`tocha generate`, `model.generate`): the corpus split in order, a rule learnt to the last token,
generation seeded and repeatable, an exact resume, and each bad input in one line."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, run_main, straight_and_stopped_at

import tocha
from tocha.config import DataConfig
from tocha.data.corpus import load_corpus
from tocha.errors import TochaError


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def cycle_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ "the cat sat." and "a dog ran." in a seeded random order: within a sentence every next
    character is certain; only a sentence's first one is a coin toss."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "cycle.txt"
    path.write_text(
        " ".join(rng.choice(["the cat sat.", "a dog ran."]) for _ in range(1500)), encoding="utf-8"
    )
    return path


NEXT = {"task": "next-token", "context": 32, "progress": False, "threads": 1}


@pytest.fixture(scope="module")
def trained(cycle_corpus: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 (a TrainResult)
    out = tmp_path_factory.mktemp("runs")
    return tocha.train(
        data=str(cycle_corpus), model="gru", epochs=4, lr=0.01, out_dir=str(out), log=quiet, **NEXT
    )


def test_the_corpus_is_split_in_order_and_the_vocabulary_is_the_training_text(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("ab" * 300 + "xyz" * 30, encoding="utf-8")  # x, y, z only in the test stretch
    data = load_corpus(
        DataConfig(name=str(path), task="next-token", context=10, test_fraction=0.2, val_fraction=0.1),
        str(path),
        quiet,
    )
    assert data.classes == ["<pad>", "<unk>", "a", "b"]  # the test text's letters are not in it
    train, test = data.train.images[:, :, 0, 0], data.test.images[:, :, 0, 0]
    assert train.shape[1] == 10 and (data.train.labels[:, :-1] == train[:, 1:]).all()  # one step on
    assert (train[0] == (data.classes.index("a") + np.arange(10) % 2)).all()  # the text's start, in order
    assert (test[-1] == 1).all() and (data.test.labels[-1] == 1).all()  # the text's end: unknown here
    assert (test[0] > 1).all()  # the test stretch begins with the training text's letters
    assert data.task == "next-token" and "in order" in data.val_source


def test_a_gru_learns_the_rule_and_writes_it(trained):
    assert trained.final.values["accuracy"] > 0.85  # all but each sentence's first letter
    assert trained.final.values["perplexity"] < 1.5
    model = tocha.load(trained.run_dir)
    text = model.generate("the c", 30, temperature=0)
    assert text.startswith("at sat. ")
    assert model.generate("a d", 30, seed=3) == model.generate("a d", 30, seed=3)  # seeded: repeatable
    draws = {model.generate("", 60, seed=s, temperature=1.5) for s in range(4)}
    assert len(draws) > 1  # the seed matters


def test_tocha_generate_streams_the_prompt_and_its_text(trained):
    args = [
        sys.executable,
        "-m",
        "tocha",
        "generate",
        str(trained.run_dir),
        "the c",
        "--length",
        "12",
        "--temperature",
        "0",
    ]
    said = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert said.returncode == 0, said.stderr
    assert (
        said.stdout
        == "the cat sat. " + tocha.load(trained.run_dir).generate("the c", 12, temperature=0)[8:] + "\n"
    )
    topk = run_main("generate", str(trained.run_dir), "a d", "--length", "20", "--top-k", "1")
    assert topk.returncode == 0 and topk.stdout.startswith("a dog ran.")  # top-1 is the most likely


def test_a_next_token_run_stopped_mid_epoch_resumes_exactly(tmp_path, cycle_corpus):
    from test_resume import assert_same

    from tocha.config import RunConfig, set_value

    def config(name: str) -> RunConfig:
        cfg = RunConfig(out_dir=str(tmp_path), run_name=name)
        for key, value in {"data.name": str(cycle_corpus), "data.task": "next-token", "data.context": 16,
                           "model.name": "transformer", "train.epochs": 2, "train.batch_size": 32,
                           "train.threads": 1}.items():  # fmt: skip
            set_value(cfg, key, value)
        return cfg

    assert_same(*straight_and_stopped_at(config, 30))  # in epoch 2


def test_generate_refuses_what_it_cannot_do(tmp_path, trained):
    said = run_main("generate", str(trained.run_dir), "x", "--temperature", "-1")
    assert said.returncode == 2 and "--temperature -1.0: give 0" in said.stderr
    with pytest.raises(TochaError, match="a next-token run writes text: tocha generate"):
        tocha.load(trained.run_dir).predict(["the"])


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--context", "5000"], "no longer than one context of 5000"),
        (
            ["--model", "bag"],
            "model bag cannot predict the next token; next-token models: rnn, lstm, gru, transformer",
        ),
        (["--model", "gru", "--bidirectional"], "--bidirectional would read the token it is asked for"),
    ],
)
def test_bad_next_token_input_is_one_line_and_writes_nothing(tmp_path, cycle_corpus, extra, said):
    result = run_main(
        "train", "--data", str(cycle_corpus), "--task", "next-token", *extra, "--out", str(tmp_path / "runs")
    )
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
