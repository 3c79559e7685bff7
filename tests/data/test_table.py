"""Tables: the CSV reader and encoder on real files and on every kind of broken one."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from helpers import SHARED_DATA

from tocha.data import table as tables
from tocha.data.table import read_table, read_target
from tocha.data.table_encoder import TableEncoder
from tocha.errors import TochaError

TABLES = SHARED_DATA / "tables"


@pytest.mark.parametrize(
    ("name", "target", "task", "rows", "features"),
    [
        ("diabetes", "progression", "regression", 442, 10),
        ("wine", "cultivar", "classification", 178, 13),
        ("iris", "species", "classification", 150, 4),
        ("breast_cancer", "diagnosis", "classification", 569, 30),
        ("diamonds", "price", "regression", 53940, 26),
    ],  # fmt: skip
)
def test_the_real_tables_read_and_encode(name, target, task, rows, features):
    path = TABLES / f"{name}.csv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    t = read_table(path)
    y = read_target(t, target)
    assert len(t) == rows and y.task == task and len(y.values) == rows
    columns = [c for c in t.columns if c != target]
    encoder = TableEncoder.fit(t, columns, np.arange(rows), None)
    x, adjusted = encoder.transform(t)
    assert x.shape == (rows, features) and x.dtype == np.float32 and adjusted == []
    assert len(encoder.feature_names) == features


def write(tmp_path, text: str, name: str = "t.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_separators_quotes_bom_and_gzip(tmp_path):
    semicolon = read_table(write(tmp_path, "a;b;y\n1;2;3\n4;5;6\n", "s.csv"))
    assert semicolon.columns == ["a", "b", "y"] and semicolon.values["b"] == ["2", "5"]
    tab = read_table(write(tmp_path, "a\tb\n1\t2\n", "t.tsv"))
    assert tab.values["b"] == ["2"]
    quoted = read_table(write(tmp_path, 'name,y\n"Smith, John",1\n"Doe, Jane",2\n', "q.csv"))
    assert quoted.values["name"] == ["Smith, John", "Doe, Jane"]
    bom = read_table(write(tmp_path, "\ufeffa,y\n1,2\n", "b.csv"))
    assert bom.columns == ["a", "y"]
    packed = tmp_path / "g.csv.gz"
    packed.write_bytes(gzip.compress(b"a,y\n1,2\n3,4\n"))
    assert read_table(packed).values["y"] == ["2", "4"]


@pytest.mark.parametrize(
    ("text", "target", "fragments"),
    [
        ("", "y", ["empty file"]),
        ("a,b,y\n", "y", ["a header and no rows"]),
        ("a,b\n1,2\n", "y", ["no column 'y'", "a, b"]),
        ("a,y\n1,2\n3,4,5\n", "y", ["line 3", "3 fields where the header has 2"]),
        (
            "a,y\n" + "".join(f"{i},{i}\n" for i in range(30)) + "x7,1\n",
            "y",
            ["row 31", "'a'", "'x7' is not a number"],
        ),
        ("a,y\n1,5\n2,5\n3,5\n", "y", []),  # 1 distinct integer value: one class
        ("a,y\n" + "".join(f"{i},2.5\n" for i in range(30)), "y", ["constant"]),
        ("a,y\n1,\n2,3\n", "y", ["target 'y' is missing in 1 rows"]),
        ("just one column\n1\n", "y", ["no comma, semicolon or tab"]),
        ("a,a,y\n1,2,3\n", "y", ["appear twice: a"]),
    ],
)
def test_broken_tables_get_one_clear_error(tmp_path, text, target, fragments):
    with pytest.raises(TochaError) as caught:  # the whole reading: the table, its target, its features
        t = read_table(write(tmp_path, text))
        read_target(t, target)
        TableEncoder.fit(t, [c for c in t.columns if c != target], np.arange(len(t)), None)
    for fragment in fragments or ["one class"]:
        assert fragment in str(caught.value), str(caught.value)


def test_the_task_is_inferred_and_classes_sort_as_numbers(tmp_path):
    t = read_table(write(tmp_path, "a,y\n" + "".join(f"{i},{i % 11}\n" for i in range(40))))
    y = read_target(t, "y")
    assert y.task == "classification" and y.classes == [str(i) for i in range(11)]  # 10 after 9, not after 1
    assert "11 integer values" in y.why and y.values[:12].tolist() == [*range(11), 0]
    numeric = read_target(
        read_table(write(tmp_path, "a,y\n" + "".join(f"{i},{i * 1.5}\n" for i in range(40)))), "y"
    )
    assert numeric.task == "regression" and numeric.values.dtype == np.float32
    forced = read_target(t, "y", task="regression")
    assert forced.task == "regression" and forced.why == "as asked"


def test_missing_values_are_named_unless_filled_and_new_categories_become_zeros(tmp_path):
    t = read_table(write(tmp_path, "a,b,c,y\n1,,red,1\n2,4,blue,0\n,6,red,1\n8,8,blue,0\n"))
    with pytest.raises(TochaError, match=r"missing values in a \(1\), b \(1\); give --fill"):
        TableEncoder.fit(t, ["a", "b", "c"], np.arange(4), None)
    mean = TableEncoder.fit(t, ["a", "b", "c"], np.arange(4), "mean")
    x, _ = mean.transform(t)
    assert x[2, 0] == pytest.approx((1 + 2 + 8) / 3) and x[0, 1] == pytest.approx(6.0)
    assert mean.feature_names == ["a", "b", "c=blue", "c=red"] and x[:, 2:].tolist()[0] == [0.0, 1.0]
    median = TableEncoder.fit(t, ["a"], np.arange(4), "median")
    assert median.fill["a"] == 2.0
    trained_on_red = TableEncoder.fit(t, ["c"], np.array([0, 2]), None)
    x, adjusted = trained_on_red.transform(t)
    assert trained_on_red.categories == {"c": ["red"]} and x[1].tolist() == [0.0]
    assert [(a.row, a.text()) for a in adjusted] == [
        (1, "c 'blue' not seen in training: no known category"),
        (3, "c 'blue' not seen in training: no known category"),
    ]
    assert trained_on_red.count_unseen(x) == 2 and trained_on_red.count_unseen(x[[0, 2]]) == 0
    x, adjusted = mean.transform(t)  # with a numeric prefix too, and the filled cells said
    assert mean.count_unseen(x) == 0 and [(a.row, a.column) for a in adjusted] == [(0, "b"), (2, "a")]
    with pytest.raises(TochaError, match="--fill 'zero'"):
        TableEncoder.fit(t, ["a"], np.arange(4), "zero")


def test_huge_files_are_refused_before_they_are_read(tmp_path, monkeypatch):
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as f:  # sparse: 600 MB on paper, nothing on disk
        f.write(b"a,y\n1,2\n")
        f.truncate(600 << 20)
    with pytest.raises(TochaError, match="over the 536,870,912 a table read into memory may have; prepare"):
        read_table(huge)
    monkeypatch.setattr(tables, "MAX_ROWS", 100)
    with pytest.raises(TochaError, match="over 100 rows"):
        read_table(write(tmp_path, "a,y\n" + "1,2\n" * 101))
