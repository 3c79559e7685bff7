"""`tocha lesson list|run|export`: the lessons' commands, parsed and run (see `tocha.cli`)."""

from __future__ import annotations

import argparse

LANG_HELP = "en (English) or pt (Português); default $TOCHA_LESSON_LANG, else en"


def chosen_language(args: argparse.Namespace) -> str:
    from tocha.lessons.text import language

    return args.lang or language()


def cmd_lesson_list(args: argparse.Namespace) -> int:
    from tocha.lessons import list_lessons

    lang = chosen_language(args)
    for lesson in list_lessons():
        print(f"{lesson.number:>2}  {lesson.name:<16} {lesson.title(lang)}")
    return 0


def cmd_lesson_run(args: argparse.Namespace) -> int:
    from tocha.lessons import run_lesson

    return run_lesson(args.name, chosen_language(args))


def cmd_lesson_export(args: argparse.Namespace) -> int:
    from tocha.lessons import export_lesson

    path = export_lesson(args.name, args.dest)
    print(f"wrote {path} (run it with python, or open it as a notebook: its cells are the # %% lines)")
    return 0


def add_lesson_commands(sub: argparse._SubParsersAction) -> None:
    """lesson list, lesson run, lesson export."""
    p = sub.add_parser("lesson", help="short runnable PyTorch lessons, in English or Portuguese")
    lesson_sub = p.add_subparsers(dest="lesson_command", metavar="ACTION", required=True)
    q = lesson_sub.add_parser("list", help="the lessons, in order, with their titles")
    q.add_argument("--lang", choices=["en", "pt"], help=LANG_HELP)
    q.set_defaults(func=cmd_lesson_list)
    q = lesson_sub.add_parser("run", help="run a lesson: it explains and checks each step")
    q.add_argument("name", metavar="NAME", help="a lesson's name or number (tocha lesson list)")
    q.add_argument("--lang", choices=["en", "pt"], help=LANG_HELP)
    q.set_defaults(func=cmd_lesson_run)
    q = lesson_sub.add_parser("export", help="copy a lesson's file to edit and run it yourself")
    q.add_argument("name", metavar="NAME", help="a lesson's name or number (tocha lesson list)")
    q.add_argument("dest", nargs="?", metavar="DEST", help="a folder or a file path (default: here)")
    q.set_defaults(func=cmd_lesson_export)
