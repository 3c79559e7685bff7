"""Several processes on this machine, the collectives' costs, and a scaling model for GPUs.

    python benchmarks/distributed.py [--data-dir ../shared/data]

1. `tocha train` on Fashion-MNIST for 2 epochs, one process and `--nproc 2` (gloo, 1 thread each),
   for the MLP and TinyVGG: the second epoch's seconds (the first includes warm-up).
2. Under torchrun with 2 processes (this script starts itself with `--measure`): the time of the
   stop agreement (an all-reduce of 2 numbers), of one gradient all-reduce per model (DDP's volume:
   4 bytes per parameter), and of the test evaluation sharded over the ranks against rank 0 alone.
3. A model of scaling on GPUs from the measured parameter counts and FLOPs per sample: ring
   all-reduce time 2(N-1)/N · bytes / bandwidth + 2(N-1) · latency, compute per step
   FLOPs · per-GPU batch / (peak · utilisation) + a fixed per-step overhead, no overlap of the two
   (DDP overlaps them partly: the efficiencies are lower bounds). Every assumption is printed.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import SHARED_DATA, emit, machine

MODELS = {"mlp": (1, 28, 28), "tinyvgg": (1, 28, 28), "resnet": (3, 32, 32)}
# Assumptions of the scaling model (H100 SXM): bf16 dense peak, the share of it small CNNs reach,
# the per-step floor of kernel launches and the optimizer, and the interconnects.
PEAK_FLOPS, UTILISATION, STEP_OVERHEAD_S = 989e12, 0.3, 0.5e-3
LINKS = {
    "NVLink (8 GPUs, ~350 GB/s bus, 3 us)": (350e9, 3e-6),
    "InfiniBand NDR (50 GB/s, 10 us)": (50e9, 10e-6),
}


def epoch_seconds(model: str, nproc: int, data_dir: str, out: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "tocha",
        "train",
        "--data",
        "fashion-mnist",
        "--data-dir",
        data_dir,
        "--model",
        model,
        "--epochs",
        "2",
        "--no-progress",
        "--out",
        str(out),
        "--name",
        f"{model}-{nproc}",
    ]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
                   if nproc > 1 else os.environ)  # fmt: skip
    rows = list(csv.DictReader((out / f"{model}-{nproc}" / "metrics.csv").open()))
    return float(rows[-1]["seconds"])


def flops_per_sample(model: torch.nn.Module, shape: tuple[int, int, int]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(8, *shape)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    return counter.get_total_flops() / 8


def timed(fn, repeats: int) -> float:  # noqa: ANN001
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def measure(data_dir: str) -> None:
    """Run under torchrun: collectives and evaluation, timed on rank 0."""
    import torch.distributed as dist

    from tocha.config import RunConfig
    from tocha.models import create_model
    from tocha.training.distributed import Ranks, gather_rows, ranks_from_env, shard

    dist.init_process_group("gloo")
    ranks = ranks_from_env()
    flags = torch.zeros(2)
    stop_check = timed(lambda: dist.all_reduce(flags, op=dist.ReduceOp.MAX), 2000)
    records = {"stop_check_us": round(1e6 * stop_check, 1)}
    for name, shape in MODELS.items():
        model = create_model(name, shape, 10)
        params = sum(p.numel() for p in model.parameters())
        buffer = torch.zeros(params)
        records[name] = {"parameters": params, "gradient_bytes": 4 * params,
                         "allreduce_ms": round(1e3 * timed(lambda b=buffer: dist.all_reduce(b), 30), 3),
                         "flops_per_sample": flops_per_sample(model, shape)}  # fmt: skip
    from tocha.data.load import load_configured

    config = RunConfig()
    config.data.name, config.data.data_dir = "fashion-mnist", data_dir
    test = load_configured(config.data, log=lambda _l: None).test
    model = create_model("tinyvgg", (1, 28, 28), 10).eval()

    def sharded() -> None:
        with torch.inference_mode():
            gather_rows(model(test.images[shard(len(test), ranks)].float()), len(test))

    def rank0_only() -> None:
        if ranks.main:
            with torch.inference_mode():
                model(test.images.float())
        dist.barrier()

    records["eval_sharded_s"] = round(timed(sharded, 3), 3)
    records["eval_rank0_s"] = round(timed(rank0_only, 3), 3)
    if ranks.main:
        emit({"collectives": records, "world_size": dist.get_world_size(), "backend": "gloo"})
    del Ranks
    dist.destroy_process_group()


def scaling(records: dict) -> None:
    for name in MODELS:
        r = records[name]
        for link, (bandwidth, latency) in LINKS.items():
            for n in (2, 8, 64):
                allreduce = 2 * (n - 1) / n * r["gradient_bytes"] / bandwidth + 2 * (n - 1) * latency
                # the per-GPU batch from which a step spends at least 80% of its time computing
                per_sample = r["flops_per_sample"] / (PEAK_FLOPS * UTILISATION)
                knee = max(0.0, (4 * allreduce - STEP_OVERHEAD_S) / per_sample)
                for batch in (64, 256):
                    compute = per_sample * batch + STEP_OVERHEAD_S
                    emit({"model": name, "link": link, "gpus": n, "per_gpu_batch": batch,
                          "allreduce_ms": round(1e3 * allreduce, 3), "compute_ms": round(1e3 * compute, 3),
                          "efficiency": round(compute / (compute + allreduce), 3),
                          "per_gpu_batch_for_80_percent": round(knee)})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.data_dir)
        return
    emit({"benchmark": "distributed", **machine(),
          "assumptions": {"peak_flops": PEAK_FLOPS, "utilisation": UTILISATION,
                          "step_overhead_s": STEP_OVERHEAD_S, "links": LINKS}})  # fmt: skip
    out = Path(tempfile.mkdtemp())
    for model in ("mlp", "tinyvgg"):
        one, two = (epoch_seconds(model, n, args.data_dir, out) for n in (1, 2))
        emit({"model": model, "seconds_per_epoch_1_process": one, "seconds_per_epoch_2_processes": two,
              "speedup": round(one / two, 2)})  # fmt: skip
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*torchrun, __file__, "--measure", "--data-dir", args.data_dir],
                          capture_output=True, text=True, check=True, env=env)  # fmt: skip
    import json

    line = next(line for line in done.stdout.splitlines() if line.startswith('{"collectives"'))
    print(line, flush=True)
    scaling(json.loads(line)["collectives"])


if __name__ == "__main__":
    main()
