"""`tocha data list|show|info`: the datasets' commands, parsed and run (see `tocha.cli`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from tocha.config_fields import MAX_SIDE
from tocha.errors import TochaError
from tocha.flags import _pair as pair

MAX_PER_CLASS = 64


def cmd_data_list(args: argparse.Namespace) -> int:
    from tocha.data.load import is_available
    from tocha.data.registry import DATASETS
    from tocha.data.tables import SYNTHETIC, TABLES, table_file
    from tocha.data.text_datasets import TEXT_DATASETS, text_on_disk

    for name, spec in DATASETS.items():
        state = (
            "on disk" if is_available(name, args.data_dir) else "downloadable" if spec.mirrors else "missing"
        )
        print(f"{name:<22} {spec.sizes[0]:>6} train {spec.sizes[1]:>6} test  [{state}]  {spec.title}")
    print("\ntables (--data NAME, or --data FILE.csv --target COLUMN):")
    for name, table in TABLES.items():
        try:
            state = "shipped" if table.shipped else f"on disk: {table_file(table, args.data_dir)}"
        except TochaError:
            state = "missing: pass --data-dir"
        print(f"{name:<22} {table.rows:>6} rows  {table.task:<14} [{state}]  {table.title}")
    for name, title in SYNTHETIC.items():
        print(f"{name:<22} {'':>6}       {'regression':<14} [generated]  {title}")
    print("\ntext (--data NAME, a folder of .txt files per class, or --data FILE.csv --text COLUMN):")
    for name, text in TEXT_DATASETS.items():
        state = "on disk" if text_on_disk(name, args.data_dir) else "downloadable"
        print(
            f"{name:<22} {text.size:>6} texts {'classification':<14} [{state}]  {text.title}; {text.licence}"
        )
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    from tocha.data.load import load_dataset
    from tocha.figures.gallery import sample_grid

    if not 1 <= args.per_class <= MAX_PER_CLASS:  # the figure's size grows with it: keep it drawable
        raise TochaError(f"--per-class must be 1 to {MAX_PER_CLASS}, got {args.per_class}")
    data = load_dataset(args.name, args.data_dir)
    out = Path(args.out or f"{Path(args.name).name}-samples.png")
    sample_grid(data, out, per_class=args.per_class, seed=args.seed, split=args.split)
    print(f"wrote {out}: {args.per_class} {args.split} images of each of {len(data.classes)} classes")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from tocha.data.describe import describe

    print(describe(args.name, args.data_dir))
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from tocha.data.prepare import prepare
    from tocha.data.tables import TABLES, is_table_path

    if args.workers is not None and not 1 <= args.workers <= 4 * (os.cpu_count() or 1):
        raise TochaError(f"--workers must be 1 to {4 * (os.cpu_count() or 1)}, got {args.workers}")
    if not 0 < args.test_fraction < 1:
        raise TochaError(f"--test-fraction must be between 0 and 1, got {args.test_fraction}")
    if is_table_path(args.source) or args.source in TABLES:
        return prepare_table_command(args)
    given = [flag for flag, value in table_flags(args).items() if value is not None]
    if given:
        raise TochaError(f"{', '.join(given)}: options of a table; {args.source} is images")
    size = image_size(args.image_size) if args.image_size else None
    manifest = prepare(args.source, Path(args.out), image_size=size, data_dir=args.data_dir,
                       test_fraction=args.test_fraction, split_seed=args.split_seed,
                       on_bad_image=args.on_bad_image, workers=args.workers,
                       data_args=dict(args.data_arg) if args.data_arg else None)  # fmt: skip
    print(f"wrote {manifest.parent}: train on it with tocha train --data {manifest.parent}")
    return 0


def cmd_data_verify(args: argparse.Namespace) -> int:
    """Every file of a prepared folder read and checked against its recorded SHA-256, and its
    source checked as it was; what a load skips for files unchanged since their last check."""
    from tocha.data.prepared import check_arrays, check_files, check_source, read_manifest

    path = Path(args.folder).expanduser()
    manifest = read_manifest(path)
    check_files(path, manifest, print, full=True)
    check_arrays(path, manifest)
    check_source(path, manifest)
    size = sum(record["bytes"] for record in manifest["files"].values())
    print(f"{path}: {len(manifest['files'])} files, {size / 1e6:,.1f} MB, each as its SHA-256 was recorded; "
          f"prepared from {manifest['source']}, which has not changed (or is not here)")  # fmt: skip
    return 0


def table_flags(args: argparse.Namespace) -> dict[str, object]:
    """The options only a table takes, as given (None where not)."""
    return {"--target": args.target, "--task": args.task, "--drop": args.drop, "--fill": args.fill,
            "--decimal": args.decimal, "--val-fraction": args.val_fraction,
            "--val-seed": args.val_seed}  # fmt: skip


def prepare_table_command(args: argparse.Namespace) -> int:
    """`tocha data prepare TABLE --target COLUMN --out DIR`: a table of any size, streamed."""
    from tocha.data.prepare_table import TableOptions, prepare_table
    from tocha.data.tables import TABLES, table_file

    spec = TABLES.get(args.source)
    source = table_file(spec, args.data_dir) if spec else Path(args.source)
    target = args.target or (spec.target if spec else None)
    if target is None:
        raise TochaError(f"{args.source}: which column is the target? Give --target COLUMN")
    if args.image_size or args.on_bad_image != "fail":
        raise TochaError("--image-size and --on-bad-image are for image folders, not tables")
    val_fraction = 0.1 if args.val_fraction is None else args.val_fraction
    if not 0 <= val_fraction < 1:
        raise TochaError(f"--val-fraction must be 0 or more and under 1, got {val_fraction}")
    drop = [c.strip() for part in args.drop or [] for c in part.split(",") if c.strip()]
    options = TableOptions(target=target, task=args.task or "auto", drop=drop, fill=args.fill,
                           decimal=args.decimal or "auto", test_fraction=args.test_fraction,
                           split_seed=args.split_seed, val_fraction=val_fraction,
                           val_seed=args.val_seed or 0)  # fmt: skip
    manifest = prepare_table(source, Path(args.out), options)
    print(f"wrote {manifest.parent}: train on it with tocha train --data {manifest.parent}")
    return 0


def image_size(text: str) -> tuple[int, int]:
    """`HxW` (or one number for a square) as (H, W), each 1 to MAX_SIDE (4,096) pixels."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts) * (2 if len(parts) == 1 else 1)
    except ValueError:
        size = ()
    if len(size) != 2 or not all(1 <= v <= MAX_SIDE for v in size):
        raise TochaError(f"--image-size {text}: give HxW, each 1 to {MAX_SIDE} pixels")
    return size  # type: ignore[return-value]


def cmd_data_samples(args: argparse.Namespace) -> int:
    from tocha.data.sample_files import write_samples

    if not 1 <= args.count <= 1000:
        raise TochaError(f"--count must be 1 to 1000, got {args.count}")
    written = write_samples(Path(args.folder), args.count)
    print(f"wrote {len(written)} PNG files to {args.folder}: {written[0].name} ... {written[-1].name}")
    return 0


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    """data list, data show, data info, data samples, data prepare, data verify."""
    p = sub.add_parser("data", help="datasets and tables: list, show, info, samples, prepare, verify")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    q = data_sub.add_parser("list", help="registered datasets and whether they are on disk")
    q.add_argument("--data-dir", metavar="DIR")
    q.set_defaults(func=cmd_data_list)
    q = data_sub.add_parser("show", help="a grid of sample images with their class names (PNG)")
    q.add_argument("name", metavar="NAME_OR_FOLDER")
    q.add_argument("--data-dir", metavar="DIR")
    q.add_argument("--per-class", type=int, default=8)
    q.add_argument("--split", choices=["train", "test"], default="train")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", metavar="PNG", help="default: <name>-samples.png")
    q.set_defaults(func=cmd_data_show)
    q = data_sub.add_parser(
        "samples", help="write real test images (Fashion-MNIST, MNIST) as PNG files, to try predict and serve"
    )
    q.add_argument("folder", metavar="DIR")
    q.add_argument("--count", type=int, default=20, help="images of each dataset (default 20)")
    q.set_defaults(func=cmd_data_samples)
    q = data_sub.add_parser("info", help="classes, files, checksums, sources, licence")
    q.add_argument("name")
    q.add_argument("--data-dir", metavar="DIR")
    q.set_defaults(func=cmd_data_info)
    q = data_sub.add_parser("prepare", help="decode a dataset once into memory-mappable files to train from")
    sources = "a registered dataset, an image folder, a table, or your own data's FILE.py:NAME"
    q.add_argument("source", metavar="SOURCE", help=sources)
    arg_help = "an argument of the function or class FILE.py:NAME names, as YAML (repeatable)"
    q.add_argument("--data-arg", action="append", type=pair, metavar="NAME=VALUE", help=arg_help)
    q.add_argument(
        "--out", required=True, metavar="DIR", help="the prepared folder (empty, or a prepare to finish)"
    )
    q.add_argument(
        "--image-size", metavar="HxW", help="resize every image to this (default: the most common)"
    )
    q.add_argument("--data-dir", metavar="DIR")
    q.add_argument("--test-fraction", type=float, default=0.2, help="held out when the folder has no test/")
    q.add_argument("--split-seed", type=int, default=0)
    q.add_argument("--on-bad-image", choices=["fail", "skip"], default="fail")
    q.add_argument("--workers", type=int, metavar="N", help="decoding processes (default: one per core)")
    t = q.add_argument_group("tables (a .csv / .tsv file of any size, or a registered table)")
    t.add_argument("--target", metavar="COLUMN", help="the column to predict")
    t.add_argument("--task", choices=["auto", "classification", "regression"])
    t.add_argument("--drop", action="append", metavar="COL,COL", help="columns to leave out (IDs)")
    t.add_argument("--fill", choices=["mean", "median", "drop-rows"], help="missing values (median: refused)")
    t.add_argument("--decimal", choices=["auto", ".", ","])
    t.add_argument("--val-fraction", type=float, help="validation rows carved before encoding (default 0.1)")
    t.add_argument("--val-seed", type=int)
    q.set_defaults(func=cmd_data_prepare)
    q = data_sub.add_parser("verify", help="read a prepared folder's every file and check its SHA-256")
    q.add_argument("folder", metavar="DIR")
    q.set_defaults(func=cmd_data_verify)
