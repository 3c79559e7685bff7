"""The `model` section of a run's config: which model, its own options, and your model's record.

A model's options are its own: one mapping (`args`) holds what this model takes, never a field
every model shares. Each of tocha's families declares its options beside its factory
(`models.registry`: checked against them before any data is read); a model of your own takes its
constructor's arguments (checked against its signature) and is recorded by file, SHA-256 and
signature (`models.code_trust`). A family's option has a flag and a key of its own name
(`--hidden-units 16`, `model.hidden_units`); any model's option can be given as `--model-arg
NAME=VALUE` and varied as `model-arg.NAME`. A config written when the options were fields of
their own (`model: {hidden_units: 16}`) still loads: the key is the option's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tocha.config_fields import (
    CODE_RECORD,
    Freezable,
    arguments_option,
    code_file_option,
    option,
    recorded_option,
)

# The options tocha's families declare (`models.registry`), by name and the type a config holds:
# each has a flag (`--hidden-units`) and a key (`model.hidden_units`), and its value goes into the
# options of the model that takes it (`ModelConfig.args`). A test holds these and the declarations
# together.
FAMILY_OPTIONS: dict[str, Any] = {
    "hidden_units": int | None,
    "hidden_sizes": list[int] | None,
    "widths": list[int] | None,
    "activation": str | None,
    "log_softmax": bool | None,
    "dropout": float | None,
    "embed_dim": int | None,
    "hidden_size": int | None,
    "num_layers": int | None,
    "bidirectional": bool | None,
    "kernel_size": int | None,
    "num_heads": int | None,
}


@dataclass
class ModelConfig(Freezable):
    """The model, its options, and where a model of your own was read from."""

    name: str = option(
        "auto",
        "a model of tocha's (tocha models; default auto: tinyvgg, or mlp for a "
        "table), or your own: FILE.py:NAME or package.module:NAME, NAME a class or a "
        "function returning an nn.Module",
        flag="--model",
        metavar="MODEL",
    )
    # The model's own options: a family's (hidden_units...), or your model's constructor's arguments.
    args: dict[str, Any] | None = arguments_option(
        "one of the model's options, as YAML (repeatable): your model's constructor argument "
        "(--model-arg hidden_units=10), or a family's option (as its flag)",
        "--model-arg",
    )
    # Your own model (`tocha.models.user`): the file it was read from, and the record of it.
    file: str | None = code_file_option(
        "model", "--model-file", "--model", "--resume, evaluate, predict, export, serve"
    )
    file_sha256: str | None = recorded_option(CODE_RECORD["file_sha256"])
    sources: list[str] | None = recorded_option(CODE_RECORD["sources"])
    signature: str | None = recorded_option(CODE_RECORD["signature"])
    pretrained: str | None = option(
        None,
        "start mobilenet_v2, resnet18, resnet34 or resnet50 from trained weights: imagenet "
        "(torchvision's file, from torch's hub cache or downloaded there) or a weights file's path; "
        "brings ImageNet's normalisation, 224 px folders and the fine-tuning recipe",
        metavar="imagenet|PATH",
    )
    pretrained_sha256: str | None = recorded_option("the SHA-256 of the pretrained weights file")
    flatten: bool | None = option(
        None,
        "give your model each image flattened, (N, C*H*W), as the "
        "notes' images.view(N, -1) does (default: when its forward takes "
        "only that)",
    )
