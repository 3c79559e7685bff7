"""`tocha predict`: image files through a run or an export, or the rows of a table's CSV."""

from __future__ import annotations

import argparse
import json

from tocha.data.tables import is_table_path
from tocha.runs.trained import ONNX, kind_of


def cmd_predict(args: argparse.Namespace) -> int:
    if all(is_table_path(str(path)) for path in args.images):  # rows of tables
        return print_rows(args)
    if kind_of(args.run) == ONNX:  # onnxruntime only: no torch is imported
        from tocha.exports.onnx_predict import predict_onnx

        results = predict_onnx(args.run, args.images, args.top_k)
    else:
        from tocha.inference.predict import predict_files

        results = predict_files(args.run, args.images, args.top_k, args.device)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        ranked = ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in r["top"])
        print(f"{r['path']}: {ranked}")
    return 0


def print_rows(args: argparse.Namespace) -> int:
    """Each row's prediction as CSV (row, value; or row, class, probability), or JSON."""
    from tocha.inference.table_rows import predict_rows

    results = [predict_rows(args.run, path, args.top_k, args.device) for path in args.images]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        return 0
    for path, rows in zip(args.images, results, strict=True):
        if len(args.images) > 1:
            print(f"# {path}")
        value = next(k for k in rows[0] if k != "row") if rows else "top"
        print("row," + ("predicted,probability" if value == "top" else value))
        for r in rows:
            top = r.get("top")
            print(
                f"{r['row']},{top[0]['class']},{top[0]['probability']:.4f}"
                if top
                else f"{r['row']},{r[value]:.6g}"
            )
    return 0
