"""`say(en, pt)`: a lesson's prose in the learner's language. Torch-free, so it costs nothing to import.

The language comes from the environment variable TOCHA_LESSON_LANG: `pt` (also `pt_BR`, `pt-BR`) for
Portuguese, anything else English. `tocha lesson run NAME --lang pt` sets it; so can a learner who
runs a lesson file directly.
"""

from __future__ import annotations

import os
import textwrap

LANG_VAR = "TOCHA_LESSON_LANG"
LANGUAGES = ("en", "pt")


def language() -> str:
    """`en` or `pt`, from $TOCHA_LESSON_LANG."""
    # A lesson never fails over its language: a regional spelling or an unknown value still reads well.
    value = os.environ.get(LANG_VAR, "").strip().lower()
    return "pt" if value.startswith("pt") else "en"


def say(en: str, pt: str) -> None:
    """Print the prose in the learner's language, set apart from the code's output by blank lines."""
    text = pt if language() == "pt" else en
    print("\n" + textwrap.dedent(text).strip() + "\n", flush=True)
