"""Every relative link in the README, LEIAME, BENCHMARKS and docs/ leads somewhere: the file exists,
and a `#anchor` into a Markdown file names one of its headings (GitHub's slugs)."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import REPO

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    return [*sorted(REPO.glob("*.md")), *sorted((REPO / "docs").rglob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text, fence, found = path.read_text(), False, set()
    for line in text.splitlines():
        fence = fence != line.startswith("```")
        if not fence and (m := re.match(r"#{1,6} (.+)", line)):
            found.add(slug(m.group(1)))
    return found


def links(path: Path) -> list[str]:
    """The link targets outside fenced code."""
    found, fence = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence:
            found += LINK.findall(line)
    return [t for t in found if not re.match(r"[a-z]+:", t)]  # http:, mailto: ... are not ours to check


def test_every_relative_link_resolves():
    checked = 0
    for document in documents():
        for target in links(document):
            file, _, anchor = target.partition("#")
            path = (document.parent / file).resolve() if file else document
            assert path.exists(), f"{document.relative_to(REPO)}: {target}: no such file"
            if anchor and path.suffix == ".md":
                assert anchor in anchors(path), f"{document.relative_to(REPO)}: {target}: no such heading"
            checked += 1
    assert checked > 50  # the guide's pages link to each other, the README to all of them


def test_a_broken_link_and_a_missing_heading_are_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## A section: `code`\n\n[gone](nowhere.md) [here](#a-section-code) [not](#absent)\n"
    )
    targets = links(page)
    assert targets == ["nowhere.md", "#a-section-code", "#absent"]
    assert not (tmp_path / "nowhere.md").exists()
    assert "a-section-code" in anchors(page) and "absent" not in anchors(page)


def test_the_portuguese_quick_starts_commands_are_accepted():
    """Every `tocha train` / `tocha compare` / `tocha summary` command of LEIAME.md parses, and a
    train's config passes the checks `tocha train` makes before reading any data."""
    import shlex

    from tocha.cli import build_parser
    from tocha.flags import config_from_args
    from tocha.training.plan import plan

    text = (REPO / "LEIAME.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("  #")[0].strip()
            if command.startswith(("tocha train", "tocha compare", "tocha summary")) and "&&" not in command:
                commands.append(shlex.split(command)[1:])
    assert len(commands) >= 7
    for args in commands:
        parsed = build_parser().parse_args([str(REPO / a) if a.startswith("examples/") else a for a in args])
        if args[0] == "train":
            plan(config_from_args(parsed))  # a config key the model does not take, a bad name: refused here
