"""`tocha data prepare TABLE.csv`: a table read a chunk at a time is typed, split and encoded
exactly as the table read whole is, trains to the same weights from disk, and what it cannot do
(a median over rows it never holds at once, another target than the one prepared) is one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_main
from test_prepare import same, trained_weights

from tocha.config import DataConfig
from tocha.data import table as table_module
from tocha.data.load import load_configured
from tocha.data.prepare_table import TableOptions, prepare_table
from tocha.errors import TochaError

QUIET = lambda _line: None  # noqa: E731


def write_csv(path: Path, rows: int = 230, seed: int = 0) -> Path:
    """Numbers with gaps, a text column, an ID, and a text target of three classes."""
    rng = np.random.default_rng(seed)
    lines = ["id,size,weight,colour,kind"]
    for i in range(rows):
        size = "" if i % 17 == 5 else f"{rng.normal(10, 3):.3f}"
        weight = "NA" if i % 23 == 7 else f"{rng.normal(50, 9):.2f}"
        colour = ["red", "green", "blue", ""][int(rng.integers(4))]
        kind = ["ant", "bee", "cat"][int(rng.integers(3))]
        lines.append(f"{1000 + i},{size},{weight},{colour},{kind}")
    path.write_text("\n".join(lines) + "\n")
    return path


def split_arrays(data, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    part = getattr(data, name)
    images = part.images if isinstance(part.images, torch.Tensor) else part.images.in_memory()
    return images, part.labels


@pytest.mark.parametrize("fill", ["mean", "drop-rows"])
def test_a_table_prepared_a_chunk_at_a_time_is_the_table_read_whole(tmp_path, fill):
    csv = write_csv(tmp_path / "animals.csv")
    options = TableOptions(target="kind", drop=["id"], fill=fill)
    prepare_table(csv, tmp_path / "prep", options, log=QUIET, chunk_rows=37)  # seven chunks, the last short
    whole = load_configured(DataConfig(name=str(csv), target="kind", drop=["id"], fill=fill), log=QUIET)
    prepared = load_configured(DataConfig(name=str(tmp_path / "prep"), in_memory="no"), log=QUIET)
    for name in ("train", "val", "test"):
        (x, y), (px, py) = split_arrays(whole, name), split_arrays(prepared, name)
        assert torch.equal(y, py) and x.shape == px.shape, name
        torch.testing.assert_close(px, x, rtol=1e-6, atol=0)  # a fill's mean summed chunk by chunk
    assert prepared.classes == whole.classes == ["ant", "bee", "cat"]
    assert prepared.table["encoder"]["categories"] == whole.table["encoder"]["categories"]
    assert prepared.table["features"] == whole.table["features"]
    assert prepared.val_source == f"{whole.val_source}, as prepared" and prepared.task == whole.task
    assert not isinstance(prepared.train.images, torch.Tensor)  # read from disk a batch at a time


def test_a_prepared_table_trains_from_disk_to_the_weights_of_its_csv(tmp_path):
    csv = write_csv(tmp_path / "animals.csv")
    made = run_main("data", "prepare", csv, "--target", "kind", "--drop", "id", "--fill", "mean",
                    "--out", tmp_path / "prep")  # fmt: skip
    assert made.returncode == 0, made.stderr
    from_csv = trained_weights(tmp_path, str(csv), "csv", **{"data.target": "kind", "data.drop": ["id"],
                                                             "data.fill": "mean"})  # fmt: skip
    from_disk = trained_weights(tmp_path, str(tmp_path / "prep"), "disk", **{"data.in_memory": "no"})
    assert same(from_csv, from_disk)
    evaluated = run_main("evaluate", tmp_path / "runs" / "disk")
    assert evaluated.returncode == 0, evaluated.stderr
    predicted = run_main("predict", tmp_path / "runs" / "disk", csv)
    lines = predicted.stdout.splitlines()
    assert predicted.returncode == 0 and lines[0] == "id,predicted,probability"
    assert lines[1].startswith("1000,")  # the ID column left out names the rows


def test_a_regression_target_read_in_chunks_keeps_rows_of_one_value(tmp_path):
    """A chunk whose target is one value is fine: only the whole column must vary."""
    csv = tmp_path / "sorted.csv"
    csv.write_text("x,y\n" + "".join(f"{i},{1.0 if i < 50 else i / 7:.4f}\n" for i in range(120)))
    prepare_table(csv, tmp_path / "prep", TableOptions(target="y"), log=QUIET, chunk_rows=25)
    manifest = json.loads((tmp_path / "prep" / "manifest.json").read_text())
    assert manifest["task"] == "regression" and manifest["counts"] == {"train": 86, "val": 10, "test": 24}
    assert manifest["table"]["target_scale"][1] > 0


def test_a_word_in_a_later_chunk_is_named_by_its_row_in_the_file(tmp_path):
    csv = tmp_path / "t.csv"
    rows = [f"{i},{i % 3}" for i in range(100)]
    rows[71] = "oops,1"
    csv.write_text("x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(TochaError, match=r"row 72, column 'x': 'oops' is not a number"):
        prepare_table(csv, tmp_path / "prep", TableOptions(target="y"), log=QUIET, chunk_rows=10)


def test_a_table_too_large_to_read_whole_says_prepare_it(tmp_path, monkeypatch):
    csv = write_csv(tmp_path / "animals.csv", rows=40)
    monkeypatch.setattr(table_module, "MAX_ROWS", 30)
    with pytest.raises(TochaError, match=r"over 30 rows.*tocha data prepare FILE --target COLUMN --out DIR"):
        table_module.read_table(csv)
    prepare_table(csv, tmp_path / "prep", TableOptions(target="kind", fill="mean"), log=QUIET, chunk_rows=30)
    assert (tmp_path / "prep" / "manifest.json").is_file()  # the same file, prepared


def test_bad_table_prepares_and_mismatched_options_are_one_line(tmp_path):
    csv = write_csv(tmp_path / "animals.csv")
    cases = [
        (["--target", "kind", "--fill", "median"], "--fill median needs every training value"),  # argparse
        (["--target", "nope"], "no column 'nope'"),
        (["--target", "kind"], "missing values in size (14), weight (10); give --fill mean or drop-rows"),
        (["--target", "kind", "--fill", "mean", "--image-size", "8"], "are for image folders, not tables"),
    ]
    for flags, message in cases:
        result = run_main("data", "prepare", csv, "--out", tmp_path / "bad", *flags)
        assert result.returncode == 2 and message in result.stderr, (flags, result.stderr)
        left = [p.name for p in (tmp_path / "bad").glob("*")] if (tmp_path / "bad").is_dir() else []
        assert left in ([], [".lock"]), left  # nothing half-written
    folder = tmp_path / "imgs"
    (folder / "a").mkdir(parents=True)
    result = run_main("data", "prepare", folder, "--out", tmp_path / "bad2", "--target", "kind")
    assert result.returncode == 2 and "--target: options of a table" in result.stderr

    made = run_main("data", "prepare", csv, "--target", "kind", "--fill", "mean", "--out", tmp_path / "prep")
    assert made.returncode == 0, made.stderr
    other = run_main("train", "--data", tmp_path / "prep", "--target", "colour", "--epochs", "1")
    assert other.returncode == 2 and "target colour would change it: prepare it again" in other.stderr
    csv.write_text(csv.read_text() + "1999,1.0,2.0,red,ant\n")
    os.utime(csv, ns=(1, 1))
    stale = run_main("train", "--data", tmp_path / "prep", "--epochs", "1")
    assert stale.returncode == 2 and "changed since it was prepared; prepare it again" in stale.stderr


def crafted_table(folder: Path, change_manifest=None, change_files=None) -> Path:  # noqa: ANN001
    """The prepared table at `folder`, changed, with its manifest's hashes made to match its files
    (so only the field and header checks can see what is wrong)."""
    from tocha.files import file_sha256

    manifest = json.loads((folder / "manifest.json").read_text())
    if change_files:
        change_files(folder)
    if change_manifest:
        change_manifest(manifest)
    for name, record in manifest["files"].items():
        record.update(bytes=(folder / name).stat().st_size, sha256=file_sha256(folder / name))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def resave(name: str, dtype: object):  # noqa: ANN201
    def change(folder: Path) -> None:
        np.save(folder / name, np.load(folder / name).astype(dtype))

    return change


@pytest.mark.parametrize(("table", "manifest", "files", "said"), [
    ("iris", lambda m: m["table"].update(features="all"), None, '"table" is'),
    ("iris", lambda m: m.update(task="clustering"), None, '"task" is "clustering"'),
    ("iris", lambda m: m["table"].update(features=m["table"]["features"][:3]), None,
     "train_images.npy holds float32 (108, 4, 1, 1) where float32 (108, 3, 1, 1) belongs"),
    ("iris", None, resave("train_images.npy", np.float64), "train_images.npy holds float64 (108, 4, 1, 1) "
     "where float32 (108, 4, 1, 1) belongs"),
    ("diabetes", None, resave("val_labels.npy", np.int64), "val_labels.npy holds int64 (35,) where "
     "float32 (35,) belongs"),
], ids=["features not a list", "an unknown task", "3 features for 4 columns", "float64 rows",
        "a regression's labels as integers"])  # fmt: skip
def test_a_crafted_prepared_table_is_one_line(tmp_path, table, manifest, files, said):
    made = run_main("data", "prepare", table, "--out", tmp_path / "prep")
    assert made.returncode == 0, made.stderr
    folder = crafted_table(tmp_path / "prep", manifest, files)
    result = run_main("train", "--data", folder, "--out", tmp_path / "runs", "--epochs", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and said in result.stderr, result.stderr
    assert "prepare it again" in result.stderr and not (tmp_path / "runs").exists()
