"""The `tocha` command: parse arguments, call the library, print. No logic of its own.

Heavy modules (torch, matplotlib) are imported inside the command functions so that
`tocha --help` answers instantly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tocha.cli_data import add_data_commands
from tocha.cli_lesson import add_lesson_commands
from tocha.cli_predict import cmd_generate, cmd_predict
from tocha.cli_train import add_training_commands
from tocha.errors import Interrupted, TochaError
from tocha.flags import (
    add_flags,
    add_trust_code,
    code_trust,
    config_from_args,
    given,
    names,
    parse_with_suggestions,
    positive_int,
)
from tocha.formats import EXPORTS
from tocha.version import __version__


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tocha.inference.evaluate import evaluate_checkpoint
    from tocha.tasks import is_given_loss

    result = evaluate_checkpoint(
        args.run,
        args.data,
        args.data_dir,
        args.device,
        out_dir=args.out,
        batch_size=args.batch_size,
        allow_other_classes=args.allow_other_classes,
        model_file=args.model_file,
        trust_code=args.trust_code,
    )
    ev, task = result.evaluation, result.task
    print(f"{result.dataset} {result.split}: {ev.samples} samples · {task.headline(ev)}")
    if is_given_loss(task.loss_name):
        print(f"note: this run's loss was given in Python ({task.loss_name}): a command line has not got it, "
              "so the loss is not scored (nan); tocha.evaluate(run, loss=...) scores it")  # fmt: skip
    if report := task.report_text(ev, result.classes):
        print("\n" + report)
    print(f"\nwrote {result.out_dir}/: " + ", ".join(sorted(p.name for p in result.out_dir.iterdir())))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tocha.exports import export_model

    result = export_model(args.run, args.format, args.out, force=args.force, model_file=args.model_file,
                          trust_code=args.trust_code)  # fmt: skip
    print(f"parity report: {result.parity_path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tocha.serve.server import serve

    serve(args.run, args.host, args.port, args.top_k, max_upload_mb=args.max_upload_mb,
          max_batch=args.max_batch, max_pixels=args.max_pixels, allowed_hosts=args.allowed_hosts,
          model_file=args.model_file, trust_code=args.trust_code, workers=args.workers,
          reuse_port=args.reuse_port)  # fmt: skip
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    import dataclasses

    from tocha.data.load import dataset_shape
    from tocha.data.tables import is_table
    from tocha.data.text import columns_of, vocab_size_of
    from tocha.data.text_set import is_text
    from tocha.models.architecture import Architecture
    from tocha.models.summary import format_summary, layer_rows
    from tocha.models.user_names import is_own, model_label
    from tocha.runs.trained import read_trained
    from tocha.training.plan import plan, with_head

    inputs: dict[str, Any] = {}  # your own data's signals (C, L) and integer token ids, where it has them
    if args.run:  # the model a run, checkpoint or export recorded, at the shape it was trained on
        options = given(args)
        model_file = options.pop("model.file", None)  # the code to use instead of the recorded file
        if options or args.config:
            raise TochaError(f"tocha summary {args.run} shows the model it recorded; give no --config, "
                             "model or data options with it (--model-file aside), not "
                             f"{sorted(options)}")  # fmt: skip
        trained = read_trained(args.run, purpose="tocha summary", model_file=model_file,
                               trust_code=args.trust_code)  # fmt: skip
        config, shape, classes, trust = (
            trained.config,
            trained.image_shape,
            len(trained.classes),
            trained.trust,
        )
        norm = trained.normalization or {}
        inputs = {
            "signal": tuple(norm["shape"]) if norm.get("shape") else None,
            "integer": norm.get("integer") is True,
            "vocab": vocab_size_of(norm),
            "columns": columns_of(norm.get("text")),
        }
        table = trained.table is not None or norm.get("rows") is True
        source = f" (as recorded in {trained.described}, {args.run})"
    else:
        trust = code_trust(args)
        planned = plan(config_from_args(args), trust=trust, data_trust=code_trust(args, section="data"))
        config = planned.config  # the checks `tocha train` makes
        if planned.data is not None or is_text(config.data):  # read: its shape, a text's vocabulary
            from tocha.data.given import load_given
            from tocha.data.load import load_configured

            d = config.data
            loaded = (load_given(planned.data, d, d.name, log=None) if planned.data is not None
                      else load_configured(d, log=lambda _line: None))  # fmt: skip
            (shape, classes), table, source = (loaded.image_shape, len(loaded.classes)), loaded.rows, ""
            signal = loaded.item_shape if len(loaded.item_shape) == 2 else None
            inputs = {"signal": signal, "integer": loaded.integer, "vocab": loaded.vocab_size,
                      "columns": columns_of(loaded.text), "per_token": d.task == "next-token"}  # fmt: skip
        else:
            (shape, classes), table, source = dataset_shape(config.data), is_table(config.data.name), ""
    own = is_own(config.model.name)
    architecture = Architecture(with_head(config), shape, classes, rows=table, trust=trust, **inputs)
    architecture.check_fits(copies=1)
    if own:  # one line for an output that does not fit, before the table; flat images where it takes them
        flat_config = dataclasses.replace(architecture.config, flatten=architecture.input_layout())
        architecture = dataclasses.replace(architecture, config=flat_config)
    model = architecture.build()
    total = sum(p.numel() for p in model.parameters())
    layout = "(F)" if table else "(C*H*W)" if architecture.flat else "(C, H, W)"
    shape_words = f"input {architecture.sample_shape} {layout}, {classes} classes"
    print(f"{model_label(config.model.name)} for {config.data.name}{source}: {shape_words}\n")
    rows = layer_rows(model, architecture.sample_shape, integer=architecture.integer)
    print(format_summary(rows, architecture.sample_shape, total))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from tocha.models import list_models, model_options

    models = list_models()
    width = max(map(len, models))
    for name, description in models.items():
        print(f"{name:<{width}} {description}\n{'':<{width}} options: {', '.join(model_options(name))}")
    print("\nyour own: --model FILE.py:NAME (or package.module:NAME), NAME a class, a function returning "
          "an nn.Module, or a module object; its arguments: --model-arg NAME=VALUE")  # fmt: skip
    return 0


def cmd_plot_activations(args: argparse.Namespace) -> int:
    from tocha.figures.gallery import plot_activations

    plot_activations(Path(args.out))
    print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tocha",
        description="Train, evaluate, compare and export PyTorch models on images and tables.",
    )
    parser.add_argument("--version", action="version", version=f"tocha {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    add_training_commands(sub)
    _add_model_commands(sub)
    _add_deploy_commands(sub)
    _add_inspect_commands(sub)
    add_data_commands(sub)
    add_lesson_commands(sub)
    return parser


def _add_model_commands(sub: argparse._SubParsersAction) -> None:
    """evaluate, predict."""
    p = sub.add_parser("evaluate", help="loss, accuracy, per-class report and confusion matrix")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument(
        "--data",
        help="dataset to evaluate on (default: the one trained on; your own data's FILE.py:NAME too)",
    )
    p.add_argument("--data-dir", metavar="DIR")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", metavar="DIR", help="where to write the PNG and JSON (default RUN/eval-DATA)")
    p.add_argument("--batch-size", type=positive_int, default=1000)
    p.add_argument("--allow-other-classes", action="store_true",
                   help="evaluate on a dataset whose class names differ from the model's")  # fmt: skip
    add_model_file(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="answers for image files, a .csv table's rows, or .npy/.pt tensors")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT",
                   help="a run folder, a checkpoint, or an export (safetensors, ONNX, pt2, "
                        "TorchScript)")  # fmt: skip
    p.add_argument("images", nargs="+", metavar="IMAGE_CSV_OR_TENSORS")
    p.add_argument("--top-k", type=positive_int, default=3)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--device", default="cpu")
    add_model_file(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("generate", help="text from a next-token run, after a prompt (seeded: repeatable)")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("prompt", nargs="?", default="", help="the text to go on from (default: none)")
    p.add_argument("--length", type=positive_int, default=200, help="tokens to write (default 200)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="below 1: safer, above 1: wilder; 0: always the most likely token")  # fmt: skip
    p.add_argument(
        "--top-k", type=positive_int, default=None, help="draw among the K most likely tokens only"
    )
    p.add_argument("--seed", type=int, default=0, help="the draws' seed (the same seed, the same text)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_generate)


def _add_deploy_commands(sub: argparse._SubParsersAction) -> None:
    """export, serve: a trained model outside tocha."""
    p = sub.add_parser("export", help="the model as ONNX, torch.export (pt2) or safetensors, parity-checked")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--format", required=True, choices=EXPORTS)
    p.add_argument("--out", metavar="PATH", help="the file to write (default RUN/model.<format>)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing file (never a run's own records)")  # fmt: skip
    add_model_file(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("serve", help="a page to draw or drop images for the model, and a JSON API")
    p.add_argument(
        "run", metavar="RUN_OR_CHECKPOINT_OR_EXPORT", help="a run folder, a checkpoint, or an export"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (0: any free one; the URL is printed)")
    p.add_argument("--top-k", type=int, default=5, help="classes shown per answer")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="larger uploads are refused (413)")
    p.add_argument("--max-batch", type=int, default=64,
                   help="images of concurrent requests run together (1: each request alone)")  # fmt: skip
    p.add_argument("--max-pixels", type=int, default=25_000_000,
                   help="an upload of more pixels is refused (413), from its header")  # fmt: skip
    p.add_argument("--allowed-hosts", type=names, metavar="NAME,NAME",
                   help="the Host headers answered (default: on a loopback address, its names only; "
                        "elsewhere any)")  # fmt: skip
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="server processes on one port, each with the model (Linux; default 1)")  # fmt: skip
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # run as one of the workers
    add_model_file(p)
    p.set_defaults(func=cmd_serve)


def add_model_file(parser: argparse.ArgumentParser) -> None:
    """--model-file: the code of a run's own model, instead of the file the run recorded."""
    parser.add_argument("--model-file", metavar="FILE.py",
                        help="your model's code, instead of the file the run recorded (named: trusted, "
                             "even if it changed; its weights are checked)")  # fmt: skip
    add_trust_code(parser)


def _add_inspect_commands(sub: argparse._SubParsersAction) -> None:
    """summary, plot, models."""
    p = sub.add_parser("summary", help="every layer's output shape and parameter count")
    p.add_argument("run", nargs="?", metavar="RUN_OR_CHECKPOINT_OR_EXPORT",
                   help="the model a run, checkpoint or export recorded (not model options)")  # fmt: skip
    p.add_argument(
        "--config", metavar="YAML", help="a run config file (a run's config.yaml); flags override it"
    )
    add_flags(p, ("model", "data"))
    add_trust_code(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("plot", help="figures: activations")
    plot_sub = p.add_subparsers(dest="plot_command", metavar="FIGURE", required=True)
    q = plot_sub.add_parser("activations", help="ReLU, LeakyReLU, Sigmoid, Tanh, GELU and their derivatives")
    q.add_argument("--out", default="activations.png", metavar="PNG")
    q.set_defaults(func=cmd_plot_activations)

    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(func=cmd_models)


def main(argv: list[str] | None = None) -> int:
    args = parse_with_suggestions(build_parser(), argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except Interrupted as e:  # a resumable checkpoint was saved; exit as the signal would have
        from tocha.training.runtime import prints_here

        if prints_here():  # one message for a run on several processes
            print(f"tocha: {e}", file=sys.stderr)
        return e.exit_status
    except TochaError as e:
        print(f"tocha: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tocha: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): silence the final flush, as the Python docs advise.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:  # read-only, full, a file where a folder goes: one line, never a traceback
        from tocha.files import os_error_line

        print(f"tocha: error: {os_error_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
