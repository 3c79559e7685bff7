"""`tocha train --nproc N`: start the same command on N processes with PyTorch's `torchrun`.

It is exactly `torchrun --standalone --nproc-per-node=N -m tocha train ...` (without `--nproc`):
SIGTERM or Ctrl-C to it reaches every rank once; the ranks agree on a step, save one checkpoint
and stop, and it exits as the signal would have (143, 130) instead of with torchrun's traceback.
"""

from __future__ import annotations

import logging
import os


def under_torchrun() -> bool:
    """Whether this process is one of torchrun's ranks already (its environment says so)."""
    return "LOCAL_RANK" in os.environ


def without_nproc(argv: list[str]) -> list[str]:
    """`argv` with `--nproc N` / `--nproc=N` taken out."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def torchrun_args(argv: list[str], nproc: int) -> list[str]:
    return ["--standalone", f"--nproc-per-node={nproc}", "-m", "tocha", *without_nproc(argv)]


def launch(argv: list[str], nproc: int) -> int:
    """Run `tocha <argv>` on `nproc` processes; the exit status to give.

    This process is torchrun's agent (`torch.distributed.run.run`, the function behind the `torchrun`
    command): it starts the ranks in sessions of their own, so a Ctrl-C in the terminal reaches the
    agent alone, which passes the signal on to each rank once."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default for several processes
    # The ranks say what went wrong, a line each; the agent's own records of it only repeat that.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(get_args_parser().parse_args(torchrun_args(argv, nproc)))
    except SignalException as e:  # the ranks have saved their checkpoint and stopped
        return 128 + int(e.sigval)
    except ChildFailedError as e:  # a rank failed: it has printed why; its exit status is ours
        first = min(e.failures.values(), key=lambda failure: failure.timestamp)
        return first.exitcode if first.exitcode > 0 else 128 - first.exitcode
    return 0


def run_on(nproc: int, args: list[str]) -> None:
    """`tocha train ARGS --nproc N` as a child process, its failures raised again as tocha's own
    errors (a diverged run as DivergedError, a stop as Interrupted): how `tocha compare` trains each
    run on several processes."""
    import re
    import subprocess
    import sys

    from tocha.errors import DivergedError, Interrupted, TochaError

    command = [sys.executable, "-m", "tocha", "train", *args, "--nproc", str(nproc), "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 0:
        return
    said = done.stderr.strip().splitlines()
    reason = next((line for line in reversed(said) if line.startswith("tocha: ")), said[-1] if said else "")
    if done.returncode in (130, 143):
        raise Interrupted(reason.removeprefix("tocha: "), done.returncode - 128, "")
    where = re.search(r"diverged.*at epoch (\d+), step (\d+)", reason)
    if where:
        raise DivergedError(reason.removeprefix("tocha: error: "), int(where[1]), int(where[2]))
    raise TochaError(f"a run on {nproc} processes failed (exit {done.returncode}): {reason}")
