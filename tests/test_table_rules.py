"""Tables are typed by one stated rule and read within bounds: real files with the faults a real
table has (decimal commas, Excel's #N/A, a word among numbers, inf, huge integers as labels, gaps in
several columns, missing targets, IDs, zip bombs, giant cells, other encodings), each either read
right or refused in one line naming where, before any run folder exists."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from helpers import run_main

from tocha.data import table as tables
from tocha.data.table import read_table, read_target
from tocha.errors import TochaError


def write(tmp_path, text: str, name: str = "t.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def train(tmp_path, path, *args):
    return run_main("train", "--data", path, "--model", "linear", "--epochs", "1", "--out", tmp_path / "runs",
                    *args)  # fmt: skip


def refused(result, *fragments, tmp_path=None):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    if tmp_path is not None:
        assert not (tmp_path / "runs").exists()  # refused before any folder was made


def test_huge_integer_labels_stay_two_classes(tmp_path):
    big = 2**53
    rows = "".join(f"{i},{big + i % 2}\n" for i in range(20))
    target = read_target(read_table(write(tmp_path, "a,y\n" + rows)), "y")
    assert target.task == "classification" and target.classes == [str(big), str(big + 1)]
    assert target.values.tolist() == [i % 2 for i in range(20)]  # float64 would merge them into one


def test_decimal_commas_in_a_semicolon_file_are_numbers(tmp_path):
    rows = "".join(
        f"{i};{i * 0.37:.2f}".replace(".", ",") + f";{i * 1.5:.1f}\n".replace(".", ",") for i in range(60)
    )
    path = write(tmp_path, "a;b;price\n" + rows)
    table = read_table(path)
    assert table.decimal == ","
    target = read_target(table, "price")
    assert target.task == "regression" and target.values[3] == pytest.approx(4.5)  # not 60 classes
    result = train(tmp_path, path, "--target", "price")
    assert result.returncode == 0 and "2 features from 2 columns" in result.stdout, result.stderr


def test_excel_missing_markers_are_missing_values(tmp_path):
    rows = "".join(f"{v},{i % 2}\n" for i, v in enumerate(["1.5", "#N/A", "2.5", "n/a", "N/A"] * 8))
    path = write(tmp_path, "x,y\n" + rows)
    assert np.isnan(tables.column_numbers(read_table(path), "x")).sum() == 24
    refused(train(tmp_path, path, "--target", "y"), "missing values in x (24)", tmp_path=tmp_path)
    assert train(tmp_path, path, "--target", "y", "--fill", "mean").returncode == 0


def test_a_word_among_numbers_is_named_never_one_hot(tmp_path):
    cells = [str(i) for i in range(30)]
    cells[4], cells[9], cells[20] = "abc", "n.a.", "tbd"  # 3 words in 30: still a column of numbers
    path = write(tmp_path, "x,y\n" + "".join(f"{c},{i % 2}\n" for i, c in enumerate(cells)))
    refused(train(tmp_path, path, "--target", "y"), "row 5, column 'x'", "'abc' is not a number",
            "'n.a.' (row 10)", "--drop x", tmp_path=tmp_path)  # fmt: skip
    words = "".join(f"{c},{i % 2}\n" for i, c in enumerate(["red", "blue", "7"] * 10))
    text = write(tmp_path, "x,y\n" + words, "text.csv")
    assert tables.column_numbers(read_table(text), "x") is None  # mostly words: a text column


@pytest.mark.parametrize("value", ["inf", "-Infinity", "1e999", "1e39"])
def test_numbers_a_model_cannot_take_are_refused_naming_row_and_column(tmp_path, value):
    rows = "".join(f"{value if i == 6 else i},{i % 2}\n" for i in range(30))
    refused(train(tmp_path, write(tmp_path, "x,y\n" + rows), "--target", "y"), "row 7, column 'x'",
            tmp_path=tmp_path)  # fmt: skip


def test_drop_rows_with_gaps_in_several_columns_trains(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(80):
        a, b = (
            ("" if i % 13 == 0 else f"{rng.normal():.3f}"),
            ("NA" if i % 17 == 0 else f"{rng.normal():.3f}"),
        )
        lines.append(f"{a},{b},{i % 2}\n")
    path = write(tmp_path, "a,b,y\n" + "".join(lines))
    result = train(tmp_path, path, "--target", "y", "--fill", "drop-rows")
    assert result.returncode == 0, result.stderr
    assert "dropped 11 rows with missing values" in result.stdout


def test_rows_without_a_target_are_left_out_only_under_a_fill(tmp_path):
    rows = "".join(f"{i},{'' if i % 10 == 3 else i % 2}\n" for i in range(50))
    path = write(tmp_path, "x,y\n" + rows)
    refused(train(tmp_path, path, "--target", "y"), "target 'y' is missing in 5 rows", "any --fill",
            tmp_path=tmp_path)  # fmt: skip
    result = train(tmp_path, path, "--target", "y", "--fill", "mean")
    assert result.returncode == 0 and "left out 5 rows whose target 'y' is missing" in result.stdout


def test_an_id_column_is_refused_before_its_one_hot_block_is_made(tmp_path):
    rows = "".join(f"user-{i:06d},{i % 2},{i % 7}\n" for i in range(3000))
    refused(train(tmp_path, write(tmp_path, "id,x,y\n" + rows), "--target", "y"), "column 'id'",
            "--drop id", tmp_path=tmp_path)  # fmt: skip
    assert (
        train(tmp_path, write(tmp_path, "id,x,y\n" + rows), "--target", "y", "--drop", "id").returncode == 0
    )


def test_a_gz_that_inflates_past_the_limit_is_refused_while_streaming(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "MAX_BYTES", 1 << 20)  # 1 MB, for the test's sake; 512 MB in use
    packed = tmp_path / "bomb.csv.gz"
    with gzip.open(packed, "wb") as f:
        f.write(b"a,y\n" + b"1,2\n" * 2_000_000)  # 8 MB of text in a few kB
    assert packed.stat().st_size < 100_000
    with pytest.raises(TochaError, match="over 1,048,576 bytes once decompressed"):
        read_table(packed)


def test_giant_cells_are_refused(tmp_path):
    giant = "a,y\n" + "x" * 120_000 + ",1\n"
    with pytest.raises(TochaError, match="a cell of over 100,000 characters"):
        read_table(write(tmp_path, giant))
    beyond_csv = "a,y\n" + '"' + "x" * 200_000 + '",1\n'  # over the csv module's own field limit
    with pytest.raises(TochaError, match="line 2: not a table's line"):
        read_table(write(tmp_path, beyond_csv, "beyond.csv"))


def test_encodings_utf16_is_read_and_latin1_is_named(tmp_path):
    text = "name,y\nJosé,1\nZoë,2\n"
    assert read_table(write(tmp_path, text, "u16.csv", "utf-16")).values["name"] == [
        "José",
        "Zoë",
    ]  # with a BOM
    with pytest.raises(TochaError, match=r"not UTF-8 text \(byte 0xe9"):
        read_table(write(tmp_path, text, "latin.csv", "latin-1"))


def test_a_fifo_as_a_table_is_refused_instead_of_hanging(tmp_path):
    import os

    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    refused(train(tmp_path, fifo, "--target", "y"), "not a regular file", tmp_path=tmp_path)
