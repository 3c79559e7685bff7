"""The user guide's "Guarantees" table (docs/guide/errors-guarantees.md) points at tests: every
file and test it names must exist."""

from __future__ import annotations

import ast
import re

from helpers import REPO

ABBREVIATIONS = {"R": "tests/test_resume.py", "D/": "tests/data/"}


def guarantees_section() -> str:
    text = (REPO / "docs" / "guide" / "errors-guarantees.md").read_text()
    return text.split("## Guarantees", 1)[1].split("\n## ", 1)[0]


def defined_tests(path: str) -> set[str]:
    tree = ast.parse((REPO / path).read_text())
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test")
    }


def test_every_test_the_guarantees_name_exists() -> None:
    rows = [line for line in guarantees_section().splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 15
    checked = 0
    for row in rows[1:]:  # the header names no test
        current_file = None
        for ref in re.findall(r"`([^`]+)`", row.split("|")[-2]):
            for short, full in ABBREVIATIONS.items():
                if ref.startswith(short) and not ref.startswith("tests/"):
                    ref = full + ref[len(short) :]
            file_part, _, name = ref.partition("::")
            if file_part:  # `::name` continues the file before it
                current_file = file_part
            assert current_file and (REPO / current_file).exists(), f"{ref}: no such file"
            if name:
                assert name in defined_tests(current_file), f"{current_file} has no test {name}"
                checked += 1
        assert current_file, f"row names no test: {row}"
    assert checked >= 20
