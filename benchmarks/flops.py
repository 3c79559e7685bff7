"""The compute floor of training each tocha model on this CPU, and how close tocha gets to it.

    python benchmarks/flops.py [--setups linear-b64 mlp-b64 tinyvgg-b32 tinyvgg-b256]
                               [--data-dir ../shared/data] [--min-seconds 1.0]

Prints JSON lines: a header (machine, versions, others_cpu_share: the share of the CPU other
processes used in the second before the start; every record that times something has one too, as
on 2 cores a busy neighbour slows 2-thread torch many-fold: run it on a quiet machine), then

- record "matmul": float32 `torch.mm` on square n x n matrices (2*n^3 flops per call) at torch's
  default thread count, after a warm-up, over at least --min-seconds in 5 windows: "gflops" is the
  best window (least disturbed by other processes), "gflops_median" the median one; "attempts"
  above 1 means a measurement was retaken because other processes were busy.
- record "peak": the best square rate, used below as this CPU's peak.
- record "shape": the rate of each distinct layer of the selected models at its own shape, batch
  32/64/128/256: `torch.mm` (B, in) x (in, out) for Linear layers, `conv2d` for Conv2d layers,
  forward only, one call at a time as a training loop makes them (so per-call overhead counts).
  "attainable at this shape": small layers run far below the square-matrix peak.
- record "setup", one per training setup (full MNIST, 60000 train / 10000 test images):
  - flops_per_sample: FLOPs of one training step per sample, counted by
    torch.utils.flop_counter.FlopCounterMode over forward + loss and over backward of one batch,
    divided by the batch size. It counts matmuls and convolutions only (activations, pooling,
    loss, normalisation and the optimizer step are a few percent at most and are not counted).
  - flops_per_sample_by_hand: the same from the layer shapes: forward 2*in*out per Linear,
    2*H*W*Cout*Cin*k*k per Conv2d (MLP 784-128-64-10: 2*(784*128 + 128*64 + 64*10));
    backward = weight gradients (= forward) + input gradients (= forward minus the first layer's,
    since the images need no gradient), so a little under 2x forward.
  - flops_per_epoch: training flops per sample * training-set size; test_eval_flops: forward
    flops per sample * test-set size (the evaluation after each epoch, reported separately).
  - seconds_per_epoch: tocha's real training epoch (`tocha.training.train`, 2 epochs, the second
    one's `seconds`, as the first includes warm-up); achieved_gflops = flops_per_epoch / seconds.
  - peak_gflops, fraction_of_peak = achieved / peak, floor_seconds_per_epoch = flops / peak:
    the epoch time if every flop ran at the square-matmul peak (an unreachable lower bound).
  - torch_loop_seconds_per_epoch: a bare PyTorch loop (same model, loss, optimizer and batch
    size, one pre-normalised batch reused, no shuffling or bookkeeping) scaled to an epoch's
    steps: what PyTorch itself needs at this batch size, so seconds_per_epoch minus it is tocha's
    own overhead, and it minus the floor is per-op overhead and small-shape inefficiency.
- record "peak_check": the peak size timed again after the setups; vs_peak well below 1 means
  the machine slowed down during the run (it drifts by 10-20% on a shared host), so compare
  figures from one run only.
- record "model", for a registered model with no setup here: its flops (default options, same
  counts) and floor_seconds_per_epoch on MNIST, without timing an epoch.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from common import SHARED_DATA, emit, local_config, machine
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tocha.config import RunConfig
from tocha.models import create_model, list_models, model_options
from tocha.tasks.classification import make_loss
from tocha.training import train
from tocha.training.optimizers import make_optimizer

IN_SHAPE = (1, 28, 28)  # MNIST
NUM_CLASSES = 10
MNIST_TRAIN, MNIST_TEST = 60000, 10000  # for models counted but not trained here
SQUARE_SIZES = (512, 1024, 2048)
SHAPE_BATCHES = (32, 64, 128, 256)
BUSY_SHARE = 0.1  # other processes above this share of the CPU disturb a measurement
RETRIES = 2

# The EstudoCaso1 optimizer (SGD lr 0.003 momentum 0.9, NLLLoss) for linear and MLP, so the two
# differ only in the model; TinyVGG as in the learnpytorch course (SGD lr 0.1, no momentum),
# at its batch 32 and at batch 256 to see how much of its time is per-batch overhead.
EPOCHS = 2  # the second epoch is the one timed
SGD_NLL = {"train.optimizer": "sgd", "train.lr": 0.003, "train.momentum": 0.9, "train.loss": "nll"}
SETUPS: dict[str, dict[str, object]] = {
    "linear-b64": {"model.name": "linear", **SGD_NLL, "train.batch_size": 64},
    "mlp-b64": {"model.name": "mlp", "model.hidden_sizes": [128, 64], "model.activation": "relu",
                **SGD_NLL, "train.batch_size": 64},
    "tinyvgg-b32": {"model.name": "tinyvgg", "model.hidden_units": 10, "train.optimizer": "sgd",
                    "train.lr": 0.1, "train.momentum": 0.0, "train.batch_size": 32},
    "tinyvgg-b256": {"model.name": "tinyvgg", "model.hidden_units": 10, "train.optimizer": "sgd",
                     "train.lr": 0.1, "train.momentum": 0.0, "train.batch_size": 256},
}  # fmt: skip


def make_config(setup: str, data_dir: str, out_dir: str) -> RunConfig:
    # All 60,000 training images, as the loop it is timed against trains on (no validation carve).
    settings = {"data.name": "mnist", "data.val_fraction": 0, **SETUPS[setup], "train.epochs": EPOCHS}
    return local_config(settings, data_dir, out_dir)


def build_model(config: RunConfig) -> nn.Module:
    """The setup's model through the registry, with the log-softmax head exactly when the loss is nll
    (as `tocha train` resolves it), so the counted model is the trained one."""
    wanted = {**(config.model.args or {}), "log_softmax": config.train.loss == "nll"}
    options = model_options(config.model.name)
    kwargs = {k: v for k, v in wanted.items() if k in options}
    return create_model(config.model.name, IN_SHAPE, NUM_CLASSES, **kwargs)


# --- measured rates -------------------------------------------------------------------------------


def cpu_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (steal included), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """Share of the machine's CPU that other processes (and the hypervisor, as steal) took while a
    measurement ran. On 2 cores one busy neighbour stalls every 2-thread parallel region, so a
    slow figure with a high share here is interference, not tocha."""

    def __init__(self) -> None:
        self.busy, self.own, self.wall = cpu_busy_seconds(), time.process_time(), time.perf_counter()

    def share(self) -> float | None:
        busy = cpu_busy_seconds()
        if busy is None or self.busy is None:
            return None
        others = (busy - self.busy) - (time.process_time() - self.own)  # process_time: all threads
        return round(max(0.0, others) / ((time.perf_counter() - self.wall) * (os.cpu_count() or 1)), 3)


@dataclass
class Rate:
    gflops: float  # best window
    gflops_median: float  # median window
    seconds_per_call: float  # best window
    others_cpu_share: float | None  # see OtherLoad
    attempts: int  # more than 1: earlier attempts were disturbed by other processes


def rate(fn: Callable[[], object], flops: float, min_seconds: float, windows: int = 5) -> Rate:
    """GFLOP/s of `fn` (doing `flops` per call) after a warm-up (MKL/oneDNN pick kernels, caches and
    the thread pool settle), timed over whole calls for at least `min_seconds` split in `windows`.
    "gflops" is the best window: another process taking a core for a moment slows some windows
    many-fold, and the best one is the closest to what this CPU does on its own. A measurement
    during which other processes took more than BUSY_SHARE of the CPU is taken again, up to
    RETRIES times (a burst that long spoils every window)."""
    warm_until = time.perf_counter() + min(0.2, min_seconds / 4)
    while time.perf_counter() < warm_until:
        fn()
    attempts = 0
    while True:
        attempts += 1
        load = OtherLoad()
        per_call: list[float] = []
        for _ in range(windows):
            calls = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < min_seconds / windows:
                fn()
                calls += 1
            per_call.append(elapsed / calls)
        share = load.share()
        if share is None or share <= BUSY_SHARE or attempts > RETRIES:
            break
        time.sleep(1.0)  # give the other process a moment to finish
    best, median = min(per_call), statistics.median(per_call)
    return Rate(flops / best / 1e9, flops / median / 1e9, best, share, attempts)


def square_rate(n: int, min_seconds: float) -> Rate:
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)  # out= so the rate is the kernel's, not the allocator's
    return rate(lambda: torch.mm(a, b, out=out), 2.0 * n**3, min_seconds)


@dataclass(frozen=True)
class Layer:
    """One Linear or Conv2d layer as it runs inside a model on one sample."""

    kind: str  # "linear" or "conv"
    in_features: int  # linear: in; conv: in channels
    out_features: int  # linear: out; conv: out channels
    kernel: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    in_hw: tuple[int, int] = (1, 1)  # conv input height, width
    out_hw: tuple[int, int] = (1, 1)  # conv output height, width

    @property
    def forward_flops(self) -> int:
        """Per sample: 2 flops (multiply + add) per multiply-accumulate; bias adds not counted,
        as FlopCounterMode does not count them either."""
        kh, kw = self.kernel
        return 2 * self.out_hw[0] * self.out_hw[1] * self.out_features * self.in_features * kh * kw

    def label(self) -> str:
        if self.kind == "linear":
            return f"linear {self.in_features}->{self.out_features}"
        h, w = self.in_hw
        kh, kw = self.kernel
        return f"conv{kh}x{kw} {self.in_features}->{self.out_features} @{h}x{w}"


def model_layers(model: nn.Module) -> list[Layer]:
    """The model's Linear and Conv2d layers in call order, read off one forward pass with hooks
    (so the shapes follow the model's code instead of being typed in here)."""
    layers: list[Layer] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if isinstance(module, nn.Linear):
            layers.append(Layer("linear", module.in_features, module.out_features))
        elif isinstance(module, nn.Conv2d):
            layers.append(Layer(
                "conv", module.in_channels, module.out_channels, tuple(module.kernel_size),
                tuple(module.padding), tuple(inputs[0].shape[-2:]), tuple(output.shape[-2:]),
            ))  # fmt: skip

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *IN_SHAPE))
    finally:
        for handle in handles:
            handle.remove()
    return layers


def shape_rate(layer: Layer, batch: int, min_seconds: float, peak: float) -> dict[str, object]:
    """Forward rate of one layer at batch `batch`, the way the training loop calls it."""
    if layer.kind == "linear":
        x, w = torch.randn(batch, layer.in_features), torch.randn(layer.in_features, layer.out_features)
        out = torch.empty(batch, layer.out_features)
        fn: Callable[[], object] = lambda: torch.mm(x, w, out=out)  # noqa: E731
        shape = [batch, layer.in_features, layer.out_features]
    else:
        x = torch.randn(batch, layer.in_features, *layer.in_hw)
        w = torch.randn(layer.out_features, layer.in_features, *layer.kernel)
        bias = torch.randn(layer.out_features)
        fn = lambda: F.conv2d(x, w, bias, padding=layer.padding)  # noqa: E731
        shape = list(x.shape)
    measured = rate(fn, layer.forward_flops * batch, min_seconds)
    return {"record": "shape", "layer": layer.label(), "batch_size": batch, "shape": shape,
            **asdict(measured), "fraction_of_peak": measured.gflops / peak}  # fmt: skip


# --- counted flops --------------------------------------------------------------------------------


def counted_flops(model: nn.Module, loss_fn: Callable[..., torch.Tensor], batch: int) -> dict[str, float]:
    """Per-sample flops of forward (+ loss) and backward of one batch, by FlopCounterMode."""
    x = torch.randn(batch, *IN_SHAPE)
    y = torch.randint(0, NUM_CLASSES, (batch,))
    with FlopCounterMode(display=False) as forward:
        loss = loss_fn(model(x), y)
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    model.zero_grad(set_to_none=True)
    f, b = forward.get_total_flops() / batch, backward.get_total_flops() / batch
    return {"forward": f, "backward": b, "total": f + b}


def by_hand_flops(layers: list[Layer]) -> dict[str, float]:
    """Forward: sum of the layers' flops. Backward: the weight gradient of every layer costs its
    forward again, and so does the input gradient, except the first layer's (the images do not
    require a gradient, so autograd skips it)."""
    f = sum(layer.forward_flops for layer in layers)
    b = 2 * f - (layers[0].forward_flops if layers else 0)
    return {"forward": f, "backward": b, "total": f + b}


# --- timed training -------------------------------------------------------------------------------


def torch_loop_seconds(config: RunConfig, steps: int, min_seconds: float) -> float:
    """Seconds for `steps` training steps of a bare PyTorch loop at the setup's batch size."""
    model = build_model(config)
    loss_fn = make_loss(config.train.loss)
    optimizer = make_optimizer(model.parameters(), config.train)
    batch = config.train.batch_size
    x, y = torch.randn(batch, *IN_SHAPE), torch.randint(0, NUM_CLASSES, (batch,))

    def step() -> None:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return rate(step, 1.0, min_seconds).seconds_per_call * steps


def run_setup(setup: str, data_dir: str, peak: float, min_seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as out_dir:
        config = make_config(setup, data_dir, out_dir)
        load = OtherLoad()
        result = train(config, log=lambda _line: None, progress=False)
        others_share = load.share()
    if others_share is not None and others_share > BUSY_SHARE:
        print(f"flops.py: {setup}: other processes used {others_share:.0%} of the CPU", file=sys.stderr)
    n_train, n_test = len(result.data.train), len(result.data.test)
    batch = config.train.batch_size
    model = build_model(config)
    counter = counted_flops(model, make_loss(config.train.loss), batch)
    by_hand = by_hand_flops(model_layers(model))
    last = result.history[-1]  # epoch 2: the first one includes one-off warm-up
    flops_per_epoch = counter["total"] * n_train
    test_eval_flops = counter["forward"] * n_test
    seconds = last["seconds"]
    loop_seconds = torch_loop_seconds(config, math.ceil(n_train / batch), min_seconds)
    return {
        "record": "setup",
        "setup": setup,
        "model": config.model.name,
        "batch_size": batch,
        "optimizer": f"{config.train.optimizer} lr {config.train.lr} momentum {config.train.momentum}",
        "loss": config.train.loss,
        "train_samples": n_train,
        "flops_per_sample": counter,
        "flops_per_sample_by_hand": by_hand,
        "backward_over_forward": counter["backward"] / counter["forward"],
        "flops_per_epoch": flops_per_epoch,
        "seconds_per_epoch": seconds,
        "epoch_seconds": [row["seconds"] for row in result.history],
        "achieved_gflops": flops_per_epoch / seconds / 1e9,
        "peak_gflops": peak,
        "fraction_of_peak": flops_per_epoch / seconds / 1e9 / peak,
        "floor_seconds_per_epoch": flops_per_epoch / (peak * 1e9),
        "others_cpu_share_during_training": others_share,
        "torch_loop_seconds_per_epoch": loop_seconds,
        "torch_loop_gflops": flops_per_epoch / loop_seconds / 1e9,
        "test_eval_flops": test_eval_flops,
        "test_eval_seconds": last["eval_seconds"],
        "test_eval_gflops": test_eval_flops / last["eval_seconds"] / 1e9,
        "test_accuracy": result.final.accuracy,
    }


def count_only(name: str, peak: float) -> dict[str, object]:
    """Flops and floor of a registered model that has no timed setup here (default options).
    Batch 2, not 1: batch-norm layers refuse a single sample in training mode."""
    model = create_model(name, IN_SHAPE, NUM_CLASSES)
    counter = counted_flops(model, make_loss("cross_entropy"), batch=2)
    flops_per_epoch = counter["total"] * MNIST_TRAIN
    return {
        "record": "model", "model": name, "timed": False,
        "flops_per_sample": counter,
        "flops_per_sample_by_hand": by_hand_flops(model_layers(model)),
        "flops_per_epoch": flops_per_epoch,
        "test_eval_flops": counter["forward"] * MNIST_TEST,
        "peak_gflops": peak,
        "floor_seconds_per_epoch": flops_per_epoch / (peak * 1e9),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="timing window per square matmul and per bare-loop measurement")  # fmt: skip
    args = parser.parse_args()
    torch.manual_seed(0)
    # Other processes on a 2-core machine slow every figure here, many-fold: say how busy it was.
    idle = OtherLoad()
    time.sleep(1.0)
    others = idle.share()
    emit({"benchmark": "flops", **machine(), "loadavg_1min": os.getloadavg()[0], "others_cpu_share": others})
    if others is not None and others > BUSY_SHARE:
        print(f"flops.py: other processes use {others:.0%} of the CPU: figures will be low", file=sys.stderr)
    squares = {n: square_rate(n, args.min_seconds) for n in SQUARE_SIZES}
    for n, measured in squares.items():
        emit({"record": "matmul", "n": n, **asdict(measured)})
    best = max(squares, key=lambda n: squares[n].gflops)
    peak = squares[best].gflops
    emit({"record": "peak", "peak_gflops": peak, "n": best})

    # Half the window per shape: there are many of them, and small calls converge quickly.
    layers: list[Layer] = []
    for setup in args.setups:  # out_dir unused: nothing is trained here
        layers += model_layers(build_model(make_config(setup, args.data_dir, out_dir="")))
    for layer in dict.fromkeys(layers):  # distinct layers, in first-seen order
        for batch in SHAPE_BATCHES:
            emit(shape_rate(layer, batch, args.min_seconds / 2, peak))

    for setup in args.setups:
        emit(run_setup(setup, args.data_dir, peak, args.min_seconds))

    # The machine's speed drifts (other virtual machines on the host, clock speed) by 10-20% in
    # ways the CPU-share figures do not show: measuring the peak size again says whether it did.
    again = square_rate(best, args.min_seconds)
    emit({"record": "peak_check", "n": best, **asdict(again), "vs_peak": again.gflops / peak})

    # A model registered after these setups were written still gets its flops and floor (too
    # slow to time a CPU epoch of, perhaps); one still being written must not lose the rest.
    for name in sorted(set(list_models()) - {str(SETUPS[s]["model.name"]) for s in SETUPS}):
        try:
            emit(count_only(name, peak))
        except Exception as e:  # whatever it is, report it and go on
            print(f"flops.py: cannot count model {name!r}: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
