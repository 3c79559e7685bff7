"""`tocha train`, `compare`, `search`, `lr-find`: the commands that train, their flags derived from the
config's fields. Parse, call the library, print; heavy modules are imported inside each command."""

from __future__ import annotations

import argparse
from pathlib import Path

from tocha.errors import TochaError
from tocha.flags import add_flags, add_trust_code, code_trust, config_from_args, given, names


def nproc_of(args: argparse.Namespace) -> int:
    """`--nproc`, checked once for each command that takes it (1 when not given)."""
    if args.nproc is not None and args.nproc < 1:
        raise TochaError(f"--nproc must be at least 1, not {args.nproc}")
    return args.nproc or 1


def cmd_train(args: argparse.Namespace) -> int:
    nproc = nproc_of(args)
    from tocha.training.launch import launch, under_torchrun

    if nproc > 1 and not under_torchrun():
        return launch(args.argv, nproc)
    from tocha.training import resume, train
    from tocha.training.runtime import prints_here

    progress = False if args.no_progress else None
    if args.resume:
        if args.config or args.out_dir or args.run_name:
            raise TochaError("--resume continues a run in its own folder with its own config.yaml; "
                             "drop --config, --out and --name")  # fmt: skip
        result = resume(args.resume, given(args), progress=progress, trust_code=args.trust_code)
    else:
        config = config_from_args(args)
        result = train(config, progress=progress, trust=code_trust(args),
                       data_trust=code_trust(args, section="data"))  # fmt: skip
    if prints_here() and result.run_dir is not None:  # one done line (a fast dev run said its own)
        print(f"done: test {result.task.headline(result.final)} · run folder {result.run_dir}"
              f"{busy_note(result.busy)}")  # fmt: skip
    return 0


def busy_note(busy: tuple[int, int] | None) -> str:
    """Why the same command can give other last digits: fewer threads, as other work was running."""
    if busy is None:
        return ""
    used, usual = busy
    return (
        f"\nnote: {used} thread{'s' * (used != 1)} of the usual {usual}, as other work was using the CPU; "
        f"the thread count changes the last digits: --threads {used} repeats them on an idle machine"
    )


def cmd_compare(args: argparse.Namespace) -> int:
    import time

    from tocha.experiments.compare import compare
    from tocha.experiments.report import text_table

    config = config_from_args(args)
    report_dir = Path(args.report_dir or Path("reports") / time.strftime("%Y%m%d-%H%M%S"))
    result = compare(config, args.vary, list(range(args.seeds)), report_dir, baselines=args.baselines,
                     nproc=nproc_of(args), trust=code_trust(args, args.vary),
                     data_trust=code_trust(args, args.vary, "data"))  # fmt: skip
    print()
    print(text_table(result.rows + result.baseline_rows, result.task))
    print(f"\n{result.detectable}")
    print(f"report: {result.report_dir / 'report.md'} (table.md, summary.csv, runs.csv, figures)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    import time

    from tocha.experiments.report import text_table
    from tocha.experiments.search import search

    config = config_from_args(args)
    report_dir = Path(args.report_dir or Path("searches") / time.strftime("%Y%m%d-%H%M%S"))
    result = search(
        config,
        args.space,
        args.trials,
        report_dir,
        sampler=args.sampler,
        prune=args.prune,
        confirm=args.confirm,
        seeds=list(range(args.seeds)),
        baselines=args.baselines,
        trust=code_trust(args, args.space),
        data_trust=code_trust(args, args.space, "data"),
    )
    if result.confirm is not None:
        print()
        print(text_table(result.confirm.rows + result.confirm.baseline_rows, result.confirm.task))
        print(f"\nconfirmed: {result.confirm.report_dir / 'report.md'}")
    print(f"search: {report_dir / 'search.csv'} (history.png, parameters.png, importances.png, study.db)")
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from tocha.runs import RunFolder
    from tocha.training.lr_find import range_test, write_range_test

    config = config_from_args(args)
    result = range_test(config, args.start_lr, args.end_lr, args.steps, trust=code_trust(args),
                        data_trust=code_trust(args, section="data"))  # fmt: skip
    default = Path("runs") / ("lr-find-" + RunFolder.default_name(config.data.name, config.model.name))
    folder = Path(args.report_dir) if args.report_dir else default
    write_range_test(result, folder, f"{config.model.name} on {config.data.name}")
    print(f"{len(result.rates)} steps, {result.stopped}")
    low, high = result.safe_range
    print(f"suggested --lr {result.suggested:.2g}: the smaller of the steepest descent of the smoothed "
          f"loss ({result.steepest:.2g}) and the minimum's rate / 10 ({result.minimum_rate / 10:.2g}); rates "
          f"from {low:.2g} to {high:.2g} trained in every case measured (BENCHMARKS.md), 3x above did not "
          "always")  # fmt: skip
    command = " ".join(part for part in ("tocha train", without_finder_flags(args.argv[1:]),
                                         f"--lr {result.suggested:.2g}") if part)  # fmt: skip
    print(f"train with: {command}")
    print(f"curve: {folder / 'lr_find.png'} (and lr_find.csv, lr_find.json)")
    return 0


def without_finder_flags(argv: list[str]) -> str:
    """The lr-find command line as `tocha train` takes it: the finder's own flags and any --lr out."""
    import shlex

    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--start-lr", "--end-lr", "--steps", "--out", "--lr"):
            skip = True
        elif not arg.startswith(("--start-lr=", "--end-lr=", "--steps=", "--out=", "--lr=")):
            kept.append(arg)
    return shlex.join(kept)


def add_training_commands(sub: argparse._SubParsersAction) -> None:
    """train, compare: every config option is a flag."""
    p = sub.add_parser("train", help="train a model; writes a run folder")
    p.add_argument("--config", metavar="YAML", help="run config file; flags override it")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a stopped run where it stopped (--epochs N: train it longer)",
    )
    add_flags(p, ("data", "model", "train", ""))
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train on N processes (torchrun --standalone --nproc-per-node=N)")  # fmt: skip
    add_trust_code(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compare", help="train a grid of options over several seeds; table, plots, report")
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                   help="an option and its values (repeatable: the grid is the product); "
                        "none: one configuration, over seeds and against --baselines")  # fmt: skip
    p.add_argument("--seeds", type=int, default=3, help="runs per cell (seeds 0..N-1)")
    p.add_argument("--baselines", type=names, default=[], metavar="NAME,NAME",
                   help="scikit-learn rows: logreg, random_forest, svm, knn, mlp")  # fmt: skip
    p.add_argument("--out", dest="report_dir", metavar="DIR", help="report folder (default reports/<time>)")
    p.add_argument("--config", metavar="YAML", help="base run config; flags override it")
    p.add_argument("--nproc", type=int, metavar="N", help="train each run on N processes (torchrun)")
    add_flags(p, ("data", "model", "train"))
    add_trust_code(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("search", help="hyperparameters beyond a grid (Optuna): trials, pruning, resumable")
    p.add_argument("--space", action="append", default=[], metavar="KEY=SPEC",
                   help="a dimension: lr=log:1e-4:1e-1, dropout=float:0:0.5, epochs=int:2:8, "
                        "optimizer=choice:sgd|adam, hidden_sizes=choice:64|128,64 (repeatable)")  # fmt: skip
    p.add_argument("--trials", type=int, default=20, help="trials to finish (completed or pruned)")
    p.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    p.add_argument("--prune", choices=["none", "median"], default="none",
                   help="median: end a trial whose validation metric falls below the others' "
                        "median")  # fmt: skip
    p.add_argument("--confirm", type=int, default=0, metavar="K",
                   help="rerun the K best configurations over --seeds as compare does")  # fmt: skip
    p.add_argument("--seeds", type=int, default=3, help="--confirm's runs per configuration")
    p.add_argument("--baselines", type=names, default=[], metavar="NAME,NAME",
                   help="--confirm's scikit-learn rows")  # fmt: skip
    p.add_argument("--out", dest="report_dir", metavar="DIR", help="report folder (default searches/<time>)")
    p.add_argument("--config", metavar="YAML", help="base run config; flags override it")
    add_flags(p, ("data", "model", "train"))
    add_trust_code(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("lr-find", help="the learning-rate range test: a curve and a suggested --lr")
    p.add_argument("--start-lr", type=float, default=1e-7, help="the first step's rate (default 1e-7)")
    p.add_argument("--end-lr", type=float, default=10.0, help="the last step's rate (default 10)")
    p.add_argument("--steps", type=int, default=100, help="steps of the test (default 100)")
    p.add_argument("--out", dest="report_dir", metavar="DIR",
                   help="the finder's folder (default runs/lr-find-<time>-<data>-<model>)")  # fmt: skip
    p.add_argument("--config", metavar="YAML", help="run config file; flags override it")
    add_flags(p, ("data", "model", "train"))
    add_trust_code(p)
    p.set_defaults(func=cmd_lr_find)
