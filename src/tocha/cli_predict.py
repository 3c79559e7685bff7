"""`tocha predict`: image files through a run or an export, or the rows of a table's CSV."""

from __future__ import annotations

import argparse
import sys

from tocha.data.tables import is_table_path


def cmd_predict(args: argparse.Namespace) -> int:
    from tocha.formats import GRAPHS
    from tocha.runs.trained import kind_of  # here: `tocha --help` stays free of NumPy

    if all(is_table_path(str(path)) or str(path) == "-" for path in args.images):  # rows: tables, text lines
        return print_rows(args)
    if kind_of(args.run) in GRAPHS:  # the export's own graph (ONNX: no torch is imported)
        from tocha.exports.onnx_predict import answer_onnx

        answers = answer_onnx(args.run, args.images, args.top_k)
    else:
        from tocha.inference.predict import answer_files

        answers = answer_files(
            args.run,
            args.images,
            args.top_k,
            args.device,
            model_file=args.model_file,
            trust_code=args.trust_code,
        )
    say_notes(answers.notes)
    print(answers.json() if args.json else "\n".join(answers.lines()))
    return 0


def say_notes(notes: list[str]) -> None:
    """What was done to the inputs to answer them (a resized photo, a filled cell), on stderr: the
    answers on stdout stay what a pipe reads."""
    for note in notes:
        print(f"note: {note}", file=sys.stderr)


def print_rows(args: argparse.Namespace) -> int:
    """Each row's answer as CSV (row, then the task's columns: a value; a class and its
    probability), or JSON."""
    from tocha.formats import GRAPHS
    from tocha.runs.trained import kind_of

    if kind_of(args.run) in GRAPHS:  # the export's own graph (ONNX: no torch is imported)
        from tocha.exports.onnx_predict import answer_onnx_rows

        results = [answer_onnx_rows(args.run, path, args.top_k) for path in args.images]
    else:
        from tocha.inference.predict import answer_rows

        results = [
            answer_rows(
                args.run,
                path,
                args.top_k,
                args.device,
                model_file=args.model_file,
                trust_code=args.trust_code,
            )
            for path in args.images
        ]
    for answers in results:
        say_notes(answers.notes)
    if args.json:  # one file: its rows; several: a list of each file's
        print(results[0].json() if len(results) == 1 else "[" + ",\n".join(a.json() for a in results) + "]")
        return 0
    for path, answers in zip(args.images, results, strict=True):
        if len(args.images) > 1:
            print(f"# {path}")
        print(answers.csv(), end="")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """`tocha generate RUN [PROMPT]`: the prompt, then the text a next-token run writes after it,
    streamed to stdout token by token."""
    from tocha.devices import resolve_device
    from tocha.inference.generate import check_generation
    from tocha.inference.model import load_inference_model

    check_generation(args.length, args.temperature, args.top_k)  # before the model is loaded
    model = load_inference_model(args.run, resolve_device(args.device))
    stream = model.generate_stream(args.prompt, args.length, temperature=args.temperature, top_k=args.top_k,
                                   seed=args.seed)  # fmt: skip
    sys.stdout.write(args.prompt)
    for token in stream:
        sys.stdout.write(token)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
