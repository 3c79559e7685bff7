"""The `train` section of a run's config: the loop's length and batches, the optimizer and its
schedule, the loss, precision and layout, what is kept and when to stop, fine-tuning.

Each field is declared once with its help text and checks (`config_fields.option`); the flags,
`--vary` keys and validation are derived from these declarations (`tocha.config`).
"""

from __future__ import annotations

from dataclasses import dataclass

from tocha.config_fields import (
    SEED_LIMIT,
    Freezable,
    at_least,
    in_range,
    option,
    recorded_option,
    threads_of_this_machine,
)


@dataclass
class TrainConfig(Freezable):
    epochs: int = option(2, "passes over the training set", check=at_least(1))
    batch_size: int = option(
        64, "training batch (with several processes: the global batch)", check=at_least(1)
    )
    eval_batch_size: int = option(1000, "evaluation batches", check=at_least(1))
    accumulate: int = option(
        1,
        "gradient accumulation: each step's batch is batch_size x N, its gradient "
        "summed over N parts of batch_size (a batch N times what fits in memory)",
        metavar="N",
        check=at_least(1),
    )
    clip_grad_norm: float | None = option(
        None,
        "cut the gradient's norm to this before each step (the "
        "norms' mean and max per epoch go into metrics.csv)",
        metavar="X",
        check=(lambda v: v > 0, "must be > 0"),
    )
    optimizer: str = option("adam", "sgd, adam, adamw (from Python also an optimizer factory: python:NAME)")
    optimizer_given: str | None = recorded_option(
        "what optimizer= gave in Python: its class and every default it was built with"
    )
    lr: float = option(0.001, "learning rate", check=(lambda v: v > 0, "must be positive"))
    momentum: float = option(0.0, "sgd momentum (0, as torch.optim.SGD)", check=in_range(0, 1))
    nesterov: bool = option(False, "sgd: Nesterov momentum")
    weight_decay: float | None = option(
        None,
        "L2 penalty (decoupled with adamw); default the optimizer's own, as in torch.optim: 0 (adamw 0.01)",
        check=(lambda v: v is None or v >= 0, "must be >= 0"),
    )
    loss: str = option(
        "auto",
        "auto (cross_entropy; tables' regression: mse); classification: "
        "cross_entropy, nll (with the log-softmax head), mse; regression: mse, l1, huber (from Python "
        "also a loss module or function: python:NAME)",
    )
    loss_given: str | None = recorded_option(
        "what loss= gave in Python: its class and settings, or its function"
    )
    label_smoothing: float = option(0.0, "cross_entropy only", check=in_range(0, 1))
    class_weights: str | None = option(
        None,
        "weigh each class in the loss: balanced (N / (classes x "
        "count)) or W,W,... one per class; recorded as the numbers",
        metavar="balanced|W,W,...",
    )
    seed: int = option(
        0, "seed of initialisation, batch order and augmentation", check=in_range(0, SEED_LIMIT)
    )
    shuffle: str = option(
        "full",
        "the batch order: full (a permutation of every sample) or blocks (runs "
        "of 64 consecutive samples in a random order, mixed within windows of 16 runs: "
        "longer reads for data read from a slow disk) or lengths (text: each batch of texts of "
        "near lengths, the batches in a random order: less padding to step through)",
        choices=("full", "blocks", "lengths"),
    )
    device: str = option("auto", "auto (cuda, mps, cpu), cpu, cuda, cuda:N, mps")
    threads: int | None = option(
        None,
        "CPU threads (at most 4 per core); default: one per idle core, counted at the start",
        metavar="N",
        check=threads_of_this_machine(),
    )
    schedule: str = option(
        "auto",
        "constant, onecycle, linear, cosine (stepped per batch), plateau "
        "(ReduceLROnPlateau on the monitored validation metric, per epoch); auto: onecycle for "
        "--pretrained, else constant",
    )
    plateau_factor: float = option(
        0.1,
        "plateau: the learning rate's factor at each reduction",
        check=(lambda v: 0 < v < 1, "must be in (0, 1)"),
    )
    plateau_patience: int = option(
        2, "plateau: epochs without improvement before a reduction", check=at_least(0)
    )
    warmup_fraction: float = option(
        0.25, "onecycle: share of the steps spent warming up", check=in_range(0, 1)
    )
    precision: str = option(
        "auto",
        "auto (bf16 on a CUDA GPU that has it, else fp32), fp32, bf16",
        choices=("auto", "fp32", "bf16"),
    )
    channels_last: bool | None = option(None, "NHWC layout; default: on for CNNs on CUDA and CPU")
    compile: bool = option(False, "torch.compile the model")
    sync_batchnorm: bool = option(False, "several processes: batch-norm statistics over the global batch")
    collective_timeout: float = option(
        600.0,
        "several processes: seconds a process waits for the others in a collective before the run "
        "fails naming the silent one",
        metavar="SECONDS",
        check=(lambda v: 1 <= v <= 86400, "must be 1 to 86400"),
    )
    keep: str = option(
        "auto",
        "the weights a run keeps for evaluate, predict, export, serve: best (the "
        "epoch with the best monitored validation metric), last; auto: best with a "
        "validation split, else last",
        choices=("auto", "best", "last"),
    )
    monitor: str = option(
        "auto",
        "the validation metric choices are made on: val_loss, val_accuracy, val_f1 (macro F1), "
        "val_r2...; auto: the task's primary one",
        metavar="VAL_METRIC",
    )
    early_stop: int | None = option(
        None,
        "stop when the monitored validation metric has not improved for PATIENCE epochs",
        metavar="PATIENCE",
        check=at_least(1),
    )
    min_delta: float = option(
        0.0,
        "the least change that counts as an improvement (early stop, best)",
        check=(lambda v: v >= 0, "must be >= 0"),
    )
    test_every_epoch: bool = option(
        False,
        "also score the test split after every epoch, for the course's "
        "curve (drawn and logged as not used for any choice)",
    )
    ema_decay: float | None = option(
        None, "evaluate a moving average of the weights", check=(lambda v: 0 < v < 1, "must be in (0, 1)")
    )
    log_every: int = option(1, "print every N-th epoch's line (and the last)", metavar="N", check=at_least(1))
    fast_dev_run: bool = option(
        False,
        "one training step, one validation batch, one test batch, "
        "and nothing written: a first check that the pieces fit (as Lightning's)",
    )
    overfit_batches: int | None = option(
        None,
        "train on the same N batches every epoch, in the same "
        "order, and validate on them: a learner's first check that the "
        "model can fit (as Lightning's)",
        metavar="N",
        check=at_least(1),
    )
    log: str = option(
        "none",
        "tensorboard: also write TensorBoard event files into the run folder's tb/ "
        "(pip install 'tocha[tensorboard]')",
        choices=("none", "tensorboard"),
    )
    tta_flip: bool = option(False, "evaluate/predict: average the outputs of each image and its mirror")
    init_from: str | None = option(
        None,
        "start from trained weights: a run folder, checkpoint or .safetensors export (fine-tuning)",
        metavar="RUN_OR_FILE",
    )
    init_from_sha256: str | None = option(
        None, "checksum of the init_from weights (recorded by tocha)", metavar="HEX"
    )
    init_from_partial: bool = option(
        False,
        "with --init-from a state dict: load the tensors whose name and shape the model shares, "
        "and name every one skipped (default: every key must fit, the head excepted)",
    )
    freeze: str = option(
        "auto",
        "backbone: train the classifier only; none: everything; auto: backbone for --pretrained "
        "(with --freeze-epochs 1), else none",
        choices=("auto", "none", "backbone"),
    )
    freeze_epochs: int | None = option(
        None,
        "with --freeze backbone: unfreeze everything after N epochs, the backbone at "
        "--backbone-lr-mult (0: from the start; default: stay frozen)",
        metavar="N",
        check=at_least(0),
    )
    backbone_lr_mult: float = option(
        0.1,
        "after unfreezing, the backbone's learning rate as a share of --lr",
        check=(lambda v: v > 0, "must be positive"),
    )
