"""Short, runnable lessons on PyTorch fundamentals, in English and Portuguese.

Each lesson is a percent-format script (`NN_slug.py`, cells separated by `# %%`) that prints its
explanation and checks its own claims with `assert`. Its module docstring carries its titles, one
line each: `en: ...` and `pt: ...`. This module only reads the files: importing it imports no torch.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tocha.errors import TochaError
from tocha.lessons.text import LANG_VAR, LANGUAGES

LESSONS_DIR = Path(__file__).resolve().parent
# Two digits, an underscore, a slug: the digits keep the files in teaching order and unimportable.
FILE_NAME = re.compile(r"^(\d{2})_([a-z][a-z0-9_]*)\.py$")


@dataclass(frozen=True)
class Lesson:
    name: str  # the slug: `tensors`
    number: int
    path: Path
    title_en: str
    title_pt: str

    def title(self, lang: str = "en") -> str:
        return self.title_pt if lang == "pt" else self.title_en


def read_titles(path: Path) -> tuple[str, str]:
    """The `en:` and `pt:` lines of the lesson's module docstring."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    titles = {}
    for line in docstring.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in LANGUAGES:
            titles[key.strip()] = value.strip()
    if not titles.get("en") or not titles.get("pt"):
        raise TochaError(f"{path}: the module docstring needs an 'en: <title>' and a 'pt: <título>' line")
    return titles["en"], titles["pt"]


def list_lessons() -> list[Lesson]:
    """Every lesson shipped, in teaching order."""
    found = []
    for path in LESSONS_DIR.iterdir():
        match = FILE_NAME.match(path.name)
        if match:
            title_en, title_pt = read_titles(path)
            found.append(Lesson(match[2], int(match[1]), path, title_en, title_pt))
    return sorted(found, key=lambda lesson: lesson.number)


def find_lesson(name: str | int) -> Lesson:
    """A lesson by its name (`tensors`) or its number (`1`, `01`)."""
    lessons = list_lessons()
    key = str(name).strip()
    for lesson in lessons:
        if key == lesson.name or (key.isdigit() and int(key) == lesson.number):
            return lesson
    known = ", ".join(lesson.name for lesson in lessons)
    raise TochaError(f"no lesson {name!r}; the lessons are: {known} (or their numbers 1-{len(lessons)})")


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise TochaError(f"unknown language {lang!r}: choose {' or '.join(LANGUAGES)}")
    return lang


def run_lesson(name: str | int, lang: str = "en") -> int:
    """Run the lesson file in a fresh Python, as a learner would, its output streaming through.

    Returns its exit status: 0 when every claim it checks held.
    """
    lesson = find_lesson(name)
    env = {**os.environ, LANG_VAR: check_language(lang)}
    sys.stdout.flush()  # what was printed before must come before the lesson's own output
    sys.stderr.flush()
    return subprocess.run([sys.executable, str(lesson.path)], env=env, check=False).returncode


def export_lesson(name: str | int, dest: str | Path | None = None) -> Path:
    """Copy the lesson file to `dest` (a folder, or a file path; default the current folder), with
    `tocha.lessons.text` written into it in place of its import: it runs with torch and NumPy alone.

    Never overwrites: an existing file is the learner's edited copy.
    """
    lesson = find_lesson(name)
    target = Path(dest) if dest is not None else Path.cwd()
    if target.is_dir() or str(dest).endswith(("/", os.sep)):  # `lessons/`: a folder, made if need be
        target = target / lesson.path.name
    # Created exclusively (O_EXCL): a file that appears between a check and a write is never replaced.
    # Written rather than copied with its mode: installed files may be read-only, the copy is for editing.
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise TochaError(
            f"{target} already exists; not overwriting it (remove it or choose another path)"
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(standalone(lesson.path.read_text(encoding="utf-8")))
    return target


TEXT_IMPORT = re.compile(r"^from tocha\.lessons\.text import [\w, ]+\n", flags=re.M)


def standalone(source: str) -> str:
    """A lesson's source with the code of `tocha.lessons.text` (its docstring and future import
    left out) in place of the line that imports it."""
    text = (Path(__file__).parent / "text.py").read_text(encoding="utf-8")
    body = text.split("from __future__ import annotations\n", 1)[1].strip()
    inlined = (
        "# say() and a failed claim's explanation, copied from tocha.lessons.text: this file needs "
        f"no tocha\n{body}\n# end of the copy\n"
    )
    return TEXT_IMPORT.sub(lambda _match: inlined, source, count=1)
