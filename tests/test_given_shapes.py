"""Your own data of other shapes (`tocha.data.given`): integer token ids reach your model as int64
(an `nn.Embedding` takes them, a GRU learns an order a bag of tokens cannot see), signals (C, L)
reach it as (C, L), and a vector of numbers per item is a regression with several outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import run_main
from torch import nn

import tocha

QUIET = {"progress": False, "log": lambda _line: None}


def ordered_tokens(n: int, length: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids 1..9, each sequence holding a 1 and a 2 once; the class: whether the 1 comes first.
    Every sequence of either class holds the same tokens, so only their order tells the class."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(3, 10, (n, length), generator=g)
    for row in x:
        first, second = torch.randperm(length, generator=g)[:2].tolist()
        row[first], row[second] = 1, 2
    y = ((x == 1).long().argmax(1) < (x == 2).long().argmax(1)).long()
    return x, y


class GRUClassifier(nn.Module):
    """An own sequence model, as a learner writes one: embedding, GRU, the last state to the classes."""

    def __init__(self, vocab: int = 10, hidden: int = 32, classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.gru = nn.GRU(16, hidden, batch_first=True)
        self.out = nn.Linear(hidden, classes)

    def forward(self, tokens):
        assert tokens.dtype == torch.int64 and tokens.ndim == 2
        _, last = self.gru(self.embed(tokens))
        return self.out(last[-1])


class BagOfTokens(nn.Module):
    """The same tokens without their order: it cannot tell the classes apart."""

    def __init__(self, vocab: int = 10, classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab, 16)
        self.out = nn.Linear(16, classes)

    def forward(self, tokens):
        return self.out(self.embed(tokens))


def test_token_ids_reach_an_embedding_and_a_gru_learns_their_order(tmp_path):
    x, y = ordered_tokens(1200)
    lines = []
    common = {"epochs": 12, "optimizer": "adam", "lr": 0.01, "batch_size": 64, "out_dir": str(tmp_path)}
    gru = tocha.train(data=(x, y), model=GRUClassifier, progress=False, log=lines.append, **common)
    bag = tocha.train(data=(x, y), model=BagOfTokens, **common, **QUIET)
    assert gru.final.accuracy > 0.9, gru.final.values
    assert bag.final.accuracy < 0.75, bag.final.values  # the order is all there is to learn
    said = next(line for line in lines if "given in Python" in line)
    assert "items of (10,) int64, 1..9" in said and "as integers (int64)" in said
    again = tocha.load(gru.run_dir, model=GRUClassifier)
    assert again.answers(x[:50])  # the trained model takes token ids again
    evaluated = tocha.evaluate(gru.run_dir, data=(x, y), model=GRUClassifier)
    assert evaluated.evaluation.accuracy == gru.final.accuracy

    # exported, and asked with a .npy file of token ids from the command line
    exported = tocha.export(gru.run_dir, "onnx", model=GRUClassifier, data=(x, y), log=lambda _line: None)
    assert exported.parity.ok
    np.save(tmp_path / "tokens.npy", x[:5].numpy())
    done = run_main("predict", exported.path, tmp_path / "tokens.npy", "--json")
    assert done.returncode == 0, done.stderr
    expected = [answer[0]["class"] for answer in again.predict(x[:5])]
    assert [item["top"][0]["class"] for item in json.loads(done.stdout)] == expected


class Conv1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 8, 5, padding=2)
        self.out = nn.Linear(8, 3)

    def forward(self, signals):
        assert signals.ndim == 3 and signals.shape[1:] == (2, 32)
        return self.out(torch.relu(self.conv(signals)).mean(-1))


def test_signals_reach_the_model_as_given_and_several_numbers_are_a_regression(tmp_path):
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 6.28, 32)
    frequency = torch.randint(1, 4, (600,), generator=g)
    signals = torch.stack((torch.sin(frequency[:, None] * t), torch.cos(frequency[:, None] * t)), 1)
    signals = signals + 0.1 * torch.randn(signals.shape, generator=g)
    run = tocha.train(data=(signals, frequency - 1), model=Conv1d, epochs=15, optimizer="adam", lr=0.01,
                      out_dir=str(tmp_path), **QUIET)  # fmt: skip
    assert run.final.accuracy > 0.9, run.final.values

    inputs = torch.randn(800, 4, generator=g)
    targets = torch.stack((inputs[:, 0] + inputs[:, 1], 10 + 3 * inputs[:, 2] - inputs[:, 3]), 1)
    lines = []
    two = tocha.train(data=(inputs, targets), model="linear", epochs=80, optimizer="adam", lr=0.05,
                      out_dir=str(tmp_path), progress=False, log=lines.append)  # fmt: skip
    assert two.task.name == "regression" and two.data.classes == ["target0", "target1"]
    assert any("2 numbers each (regression)" in line for line in lines)
    assert two.final.r2 > 0.99 and two.final.rmse < 0.2, two.final.values
    answers = tocha.load(two.run_dir).answers(inputs[:4])
    assert torch.allclose(torch.tensor(answers), targets[:4], atol=0.3)


def test_a_run_on_your_inputs_is_served_a_npy_file_each(tmp_path):
    httpx = pytest.importorskip("httpx", reason="the test extra: pip install -e .[test]")
    pytest.importorskip("starlette", reason="the serve extra: pip install -e .[serve]")
    from test_serve import Server

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g)
    run = tocha.train(data=(x, (x.sum(1) > 0).long()), model="mlp", epochs=3, out_dir=str(tmp_path), **QUIET)
    server = Server(run.run_dir)
    try:
        card = httpx.get(f"{server.url}/model").json()
        assert card["input"] == "a .npy file of one input [3]"
        np.save(tmp_path / "one.npy", x[7].numpy())
        answer = httpx.post(f"{server.url}/predict", content=(tmp_path / "one.npy").read_bytes(),
                            headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert answer.status_code == 200
        assert answer.json()[0]["top"][0]["class"] == tocha.load(run.run_dir).predict(x[7])[0][0]["class"]
        np.save(tmp_path / "wrong.npy", np.zeros(4))
        refused = httpx.post(f"{server.url}/predict", content=(tmp_path / "wrong.npy").read_bytes(),
                             headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert refused.status_code == 400 and "not numbers of (3,)" in refused.json()["error"]
    finally:
        assert server.stop()[0] == 0


def test_sets_of_labels_are_a_multilabel_task_from_training_to_an_export(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(900, 5, generator=g)
    tags = torch.stack((x[:, 0] > 0, x[:, 1] > 0, x[:, 2] + x[:, 3] > 0.5), 1).long()  # (N, 3) of 0/1
    lines = []
    run = tocha.train(data=(x, tags), model="mlp", epochs=8, optimizer="adam", lr=0.01, out_dir=str(tmp_path),
                      progress=False, log=lines.append)  # fmt: skip
    assert run.task.name == "multilabel" and run.data.classes == ["0", "1", "2"]
    assert any("sets of 3 labels (multilabel)" in line for line in lines)
    assert run.final.f1 > 0.85 and run.final.exact_match > 0.6, run.final.values
    answers = tocha.load(run.run_dir).predict(x[:20])
    assert all(0.5 < a["probability"] <= 1 for answer in answers for a in answer)
    found = [{a["index"] for a in answer} for answer in answers]
    right = sum(f == set(t.nonzero().flatten().tolist()) for f, t in zip(found, tags[:20], strict=True))
    assert right >= 12  # most sets whole, as the exact-match score says
    exported = tocha.export(run.run_dir, "onnx", data=(x, tags), log=lambda _line: None)
    assert exported.parity.ok
    with pytest.raises(tocha.errors.TochaError, match="not a vector of 0/1 labels"):
        tocha.train(data=(x, tags * 2), model="mlp", task="multilabel", out_dir=str(tmp_path / "no"), **QUIET)


def test_a_model_that_takes_images_flattened_is_asked_with_whole_images_and_its_export_too(tmp_path):
    """The notes' nn.Sequential of Linear layers takes images flattened (inside the normalisation):
    its run and its ONNX export are still asked with the images as they were given, (C, H, W), a
    PNG's pixels for a run on image bytes, a .npy of floats for one on floats."""
    pytest.importorskip("onnxruntime")
    from tocha.data.sample_files import write_samples

    def flat() -> nn.Module:
        return nn.Sequential(nn.Linear(64, 2))

    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 8, 8, generator=g)
    y = (x.mean((1, 2, 3)) > 0.5).long()
    run = tocha.train(data=(x, y), model=flat, epochs=1, out_dir=str(tmp_path), **QUIET)
    loaded = tocha.load(run.run_dir, model=flat)
    assert loaded.item_shape == (1, 8, 8) and len(loaded.predict(x[:3])) == 3
    exported = tocha.export(run.run_dir, "onnx", model=flat, data=(x, y), log=lambda _line: None)
    np.save(tmp_path / "three.npy", x[:3].numpy())
    done = run_main("predict", exported.path, tmp_path / "three.npy", "--json")
    assert done.returncode == 0 and len(json.loads(done.stdout)) == 3, done.stderr

    (tmp_path / "mlp.py").write_text(
        "from torch import nn\n\n\ndef notes_mlp():\n    return nn.Sequential(nn.Linear(784, 10))\n"
    )
    pixels = tocha.train(data="mnist-sample", model=f"{tmp_path / 'mlp.py'}:notes_mlp", epochs=1,
                         out_dir=str(tmp_path), **QUIET)  # fmt: skip
    onnx = tocha.export(pixels.run_dir, "onnx", log=lambda _line: None).path
    (png,) = [p for p in write_samples(tmp_path / "pngs", 1) if p.name.startswith("mnist")]
    done = run_main("predict", onnx, png)
    assert done.returncode == 0 and done.stdout.startswith(str(png)), done.stderr
