"""`say(en, pt)`: a lesson's prose in the learner's language; and a claim that fails says what it
claimed and what the values were. Torch-free, so it costs nothing to import.

The language comes from the environment variable TOCHA_LESSON_LANG: `pt` (also `pt_BR`, `pt-BR`) for
Portuguese, anything else English. `tocha lesson run NAME --lang pt` sets it; so can a learner who
runs a lesson file directly. `tocha lesson export` writes this module's code into the exported
file in place of its import, so an exported lesson runs with torch and NumPy alone.
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
import textwrap

LANG_VAR = "TOCHA_LESSON_LANG"
LANGUAGES = ("en", "pt")


def language() -> str:
    """`en` or `pt`, from $TOCHA_LESSON_LANG."""
    # A lesson never fails over its language: a regional spelling or an unknown value still reads well.
    value = os.environ.get(LANG_VAR, "").strip().lower()
    return "pt" if value.startswith("pt") else "en"


def t(en: str, pt: str) -> str:
    """A label the lesson's code prints, in the learner's language (code itself stays as written)."""
    return pt if language() == "pt" else en


def say(en: str, pt: str) -> None:
    """Print the prose in the learner's language, set apart from the code's output by blank lines."""
    text = pt if language() == "pt" else en
    print("\n" + textwrap.dedent(text).strip() + "\n", flush=True)


def explain_failed_claim(kind: type[BaseException], error: BaseException, trace: object) -> None:
    """For a bare AssertionError from a lesson's `assert`: the claim as written and the value of
    every name in it, in the learner's language, after the usual traceback."""
    sys.__excepthook__(kind, error, trace)  # type: ignore[arg-type]
    if not isinstance(error, AssertionError) or error.args or trace is None:
        return
    last = trace
    while last.tb_next is not None:  # type: ignore[attr-defined]
        last = last.tb_next  # type: ignore[attr-defined]
    frame, line = last.tb_frame, last.tb_lineno  # type: ignore[attr-defined]
    source = "".join(linecache.getlines(frame.f_code.co_filename))
    try:
        claim = next(
            node
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Assert) and node.lineno <= line <= (node.end_lineno or node.lineno)
        )
    except (SyntaxError, StopIteration):
        return
    names = sorted({n.id for n in ast.walk(claim.test) if isinstance(n, ast.Name)})
    scope = {**frame.f_globals, **frame.f_locals}
    values = [
        f"    {name} = {short(scope[name])}" for name in names if name in scope and not callable(scope[name])
    ]
    said = (
        "Uma afirmação desta lição não se confirmou:"
        if language() == "pt"
        else "A claim of this lesson did not hold:"
    )
    print(f"\n{said}\n    {ast.get_source_segment(source, claim.test)}", *values, sep="\n", file=sys.stderr)


def short(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


sys.excepthook = explain_failed_claim  # a lesson imports this module before anything it claims
