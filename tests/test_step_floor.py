"""What a step does beyond the eager floor changes nothing it computes: the same weights and train
metrics, to the last bit, as a hand-written loop; the sums added in batches equal the sums added
step by step; the inputs normalised once equal those normalised per batch; a stop part-way resumes
exactly."""

from __future__ import annotations

import pytest
import torch
from helpers import straight_and_stopped_at
from torch.nn import functional as F
from trained_runs import train_quick

from tocha.config import RunConfig, set_value
from tocha.data.batches import device_batches
from tocha.data.load import load_dataset
from tocha.data.normalize import Normalize
from tocha.data.tensorset import TensorSet
from tocha.models import create_model
from tocha.runs.checkpoint import load_checkpoint
from tocha.tasks import ClassificationTask
from tocha.training.loop import Optimization, train_one_epoch
from tocha.training.prepared_inputs import prepare_inputs
from tocha.training.tally import SETTLE_BYTES, SETTLE_STEPS, EpochTally

MEAN, STD, BATCH, LR, MOMENTUM = 0.1307, 0.3081, 64, 0.01, 0.9
UNTIMED = ("seconds", "samples_per_second", "eval_seconds")


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the run's own count (train.threads 1): the same kernels' same splits
    yield
    torch.set_num_threads(before)


def eager_run(epochs: int, order_seed: int) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    """The notes' loop by hand, with tocha's pieces where the bits depend on them: its model and
    seeded initialisation, fused SGD with momentum as tocha builds it on a CPU, `Normalize` on each
    batch of uint8 images, and the task's own per-step sums. The weights and each epoch's train
    loss and accuracy."""
    data = load_dataset("mnist-sample")
    torch.manual_seed(0)
    model = create_model("mlp", (1, 28, 28), 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, fused=True)
    normalize, task = Normalize([MEAN], [STD]), ClassificationTask()
    order_generator = torch.Generator().manual_seed(order_seed)
    rows = []
    for _ in range(epochs):
        model.train()
        sums = task.new_sums(torch.device("cpu"))
        for idx in torch.randperm(len(data.train), generator=order_generator).split(BATCH):
            out = model(normalize(data.train.images.index_select(0, idx)))
            y = data.train.labels.index_select(0, idx)
            loss = F.cross_entropy(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            task.add(sums, loss.detach(), out.detach(), y)  # each step's, at once, in order
        rows.append(task.summarize(sums, len(data.train)))
    return model.state_dict(), rows


@pytest.fixture(scope="module")
def tocha_run(tmp_path_factory):
    before = torch.get_num_threads()
    run = train_quick(tmp_path_factory.mktemp("run"), data__name="mnist-sample", data__val_fraction=0,
                      model__name="mlp", data__mean=[MEAN], data__std=[STD], train__optimizer="sgd",
                      train__lr=LR, train__momentum=MOMENTUM, train__batch_size=BATCH, train__epochs=2,
                      train__precision="fp32", train__threads=1)  # fmt: skip
    torch.set_num_threads(before)
    return load_checkpoint(run.run_dir)


def test_tocha_trains_the_weights_and_metrics_of_a_hand_written_loop_to_the_last_bit(tocha_run, one_thread):
    weights, rows = eager_run(epochs=2, order_seed=0)
    assert tocha_run["model"].keys() == weights.keys()
    for name, w in weights.items():
        assert torch.equal(tocha_run["model"][name], w), name
    for row, theirs in zip(tocha_run["history"], rows, strict=True):
        assert (row["train_loss"], row["train_accuracy"]) == (theirs["loss"], theirs["accuracy"])


def test_the_bitwise_comparison_fails_when_the_batch_order_differs(tocha_run, one_thread):
    weights, rows = eager_run(epochs=1, order_seed=1)
    assert not all(torch.equal(tocha_run["model"][name], w) for name, w in weights.items())
    assert tocha_run["history"][0]["train_loss"] != rows[0]["loss"]


def steps(count: int, classes: int = 10, batch: int = 16, seed: int = 0) -> list[tuple]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand((), generator=g) * 3, torch.randn(batch, classes, generator=g),
             torch.randint(0, classes, (batch,), generator=g)) for _ in range(count)]  # fmt: skip


def added_step_by_step(task: ClassificationTask, batches: list[tuple]) -> dict[str, torch.Tensor]:
    sums = task.new_sums(torch.device("cpu"))
    for loss, out, y in batches:
        task.add(sums, loss, out, y)
    return sums


@pytest.mark.parametrize("count", [1, SETTLE_STEPS - 1, SETTLE_STEPS, 2 * SETTLE_STEPS + 7])
def test_sums_added_in_batches_equal_the_sums_added_at_each_step(count):
    task, batches = ClassificationTask(), steps(count)
    tally = EpochTally.begin(task, torch.arange(10))
    for step, (loss, out, y) in enumerate(batches, 1):
        tally.add(step, loss, out, y)
    saved = tally.state_dict()  # a stop part-way: every step in it
    expected = added_step_by_step(task, batches)
    for name, value in expected.items():
        assert torch.equal(saved[name], value) and torch.equal(tally.sums[name], value), name
    assert tally.metrics(16 * count) == task.summarize(expected, 16 * count)


def test_mixed_labels_are_counted_by_their_larger_share_as_the_task_counts_them():
    task, batches = ClassificationTask(), steps(SETTLE_STEPS + 3)
    batches = [
        (loss, out, F.one_hot(y, 10) * 0.7 + 0.03 if i % 2 else y) for i, (loss, out, y) in enumerate(batches)
    ]
    tally = EpochTally.begin(task, torch.arange(10))
    for step, (loss, out, y) in enumerate(batches, 1):
        tally.add(step, loss, out, y)
    assert tally.metrics(100) == task.summarize(added_step_by_step(task, batches), 100)


def test_large_outputs_are_added_as_they_come():
    """A language model's outputs are not held for later: they go into the sums at once."""
    task = ClassificationTask()
    tally = EpochTally.begin(task, torch.arange(10))
    classes = SETTLE_BYTES // 4 // 2 + 1  # two rows of float32 outputs: over the bytes held
    (loss, out, y), = steps(1, classes=classes, batch=2)  # fmt: skip
    tally.add(1, loss, out, y)
    assert not tally._pending and int(tally.sums["correct"]) == int((out.argmax(1) == y).sum())


def test_the_loop_leaves_its_sums_complete_when_it_stops_part_way():
    data = TensorSet(torch.randint(0, 256, (96, 1, 2, 2), dtype=torch.uint8), torch.randint(0, 3, (96,)))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    task = ClassificationTask()
    tally = EpochTally.begin(task, torch.arange(96))
    seen = []

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value = F.cross_entropy(out, y)
        seen.append((value.detach(), out.detach(), y))
        return value

    task.loss = loss
    batches = device_batches(data, tally.order, 8, lambda x: x.float())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_one_epoch(model, batches, task, Optimization(optimizer), tally=tally, stop=lambda: len(seen) == 5)
    assert tally.steps_done == 5 and not tally._pending
    for name, value in added_step_by_step(task, seen).items():
        assert torch.equal(tally.sums[name], value), name


def test_a_run_stopped_part_way_resumes_to_the_same_bits(tmp_path):
    def config(name: str) -> RunConfig:
        cfg = RunConfig(out_dir=str(tmp_path / "runs"), run_name=name)
        values = {"data.name": "mnist-sample", "model.name": "mlp", "model.hidden_sizes": [32],
                  "train.epochs": 2, "train.threads": 1, "train.batch_size": 50, "train.optimizer": "sgd",
                  "train.lr": 0.05, "train.momentum": 0.9, "data.augment_translate": 2}  # fmt: skip
        for key, value in values.items():
            set_value(cfg, key, value)
        return cfg

    # 72 steps an epoch: the 100th check for a stop is epoch 2's step 27, with steps waiting in the sums.
    straight, resumed = straight_and_stopped_at(config, 100)
    for name, w in straight["model"].items():
        assert torch.equal(resumed["model"][name], w), name
    assert untimed(straight["history"]) == untimed(resumed["history"])


def untimed(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k not in UNTIMED} for row in history]


def unlabelled(images: torch.Tensor) -> TensorSet:
    return TensorSet(images, torch.zeros(len(images), dtype=torch.long))


def pixels(*shape: int) -> torch.Tensor:
    return torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("images", "normalize", "batch"),
    [
        (pixels(300, 1, 28, 28), Normalize([0.13], [0.31]), 64),
        (pixels(300, 1, 28, 28), Normalize([0.13], [0.31], rows=True), 50),
        (pixels(200, 3, 8, 8), Normalize([0.4, 0.5, 0.45], [0.2, 0.25, 0.3], channels_last=True), 32),
        (torch.randn(500, 26, 1, 1) * 100, Normalize([3.0] * 26, [7.0] * 26, input_scale=1.0, rows=True), 99),
    ],
    ids=["images", "flat", "channels-last", "table"],
)
def test_inputs_normalised_once_are_the_batches_normalised_one_by_one(images, normalize, batch):
    prepared = prepare_inputs(unlabelled(images), normalize, batch)
    assert prepared is not None
    for idx in torch.randperm(len(images), generator=torch.Generator().manual_seed(0)).split(batch):
        ours = prepared(prepared.rows.images.index_select(0, idx))
        theirs = normalize(images.index_select(0, idx))
        assert ours.shape == theirs.shape and ours.stride() == theirs.stride() and torch.equal(ours, theirs)


def test_token_ids_and_odd_layouts_are_normalised_per_batch_as_before():
    ids = unlabelled(torch.randint(0, 50, (40, 12, 1, 1)))
    assert prepare_inputs(ids, Normalize([0.0], [1.0], integer=True), 8) is None
    # (N, C, 1, 1) channels-last: Normalize leaves its own layout, which a gathered row does not have
    assert (
        prepare_inputs(
            unlabelled(pixels(40, 5, 1, 1)), Normalize([0.1] * 5, [0.2] * 5, channels_last=True), 8
        )
        is None
    )


@pytest.mark.parametrize("start_step", [0, 3, 7])
def test_one_process_reads_each_batch_of_the_order_whole(start_step):
    data = TensorSet(torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1), torch.arange(100))
    order = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    batches = list(device_batches(data, order, 16, lambda x: x, start_step=start_step))
    assert [b.step for b in batches] == list(range(start_step + 1, 8))
    for b in batches:
        assert torch.equal(b.y, order[(b.step - 1) * 16 : b.step * 16]) and b.weight == 1.0
