"""What `--pretrained` brings to a run, decided when it is planned: the fine-tuning recipe and the
weights' input contract.

The recipe (fastai's `fine_tune`, measured in BENCHMARKS.md), each part switchable: the new head
trained first with the backbone frozen (`--freeze auto` -> `backbone`, `--freeze-epochs 1`; its
batch norms keep ImageNet's statistics), then every layer with discriminative rates (the backbone
at `--backbone-lr-mult` 0.1 of the head's), each phase under a one-cycle schedule (`--schedule auto`
-> `onecycle`: a warm-up, so the first steps do not wreck the pretrained features). Without
`--pretrained`, `auto` is what it always was: nothing frozen, a constant rate.

The contract: ImageNet's mean and std (not the data's own: the weights were trained on those
numbers; `training.resolve`), RGB (a grayscale image is repeated to three channels, by the network),
and image folders read at 224x224 unless `--image-size` says otherwise.
"""

from __future__ import annotations

import dataclasses

from tocha.config import RunConfig
from tocha.data.registry import DATASETS
from tocha.data.tables import is_table
from tocha.errors import TochaError
from tocha.models.backbone_layers import IMAGENET_MEAN, IMAGENET_STD
from tocha.models.pretrained import IMAGENET_URLS, PretrainedWeights, read_pretrained

PRETRAINED_SIZE = [224, 224]  # what the ImageNet weights were trained at


def with_recipe(config: RunConfig) -> RunConfig:
    """`--freeze auto` and `--schedule auto` decided (the recipe for `--pretrained`, else none and
    constant), and a pretrained run's image folder read at 224x224 unless its size is given."""
    t, d, pretrained = config.train, config.data, config.model.pretrained is not None
    if pretrained and config.model.name not in IMAGENET_URLS:
        raise TochaError(f"--pretrained is for {', '.join(IMAGENET_URLS)} (torchvision's networks), not "
                         f"{config.model.name}; your own model starts from a weights file with --init-from "
                         "FILE")  # fmt: skip
    if pretrained and t.init_from:
        raise TochaError("--pretrained and --init-from both give starting weights: give one of them")
    freeze = t.freeze if t.freeze != "auto" else ("backbone" if pretrained else "none")
    freeze_epochs = 1 if t.freeze == "auto" and pretrained and t.freeze_epochs is None else t.freeze_epochs
    schedule = t.schedule if t.schedule != "auto" else ("onecycle" if pretrained else "constant")
    folder = d.name not in DATASETS and not is_table(d.name) and d.name != "auto"
    size = PRETRAINED_SIZE if pretrained and folder and not d.image_size else d.image_size
    return dataclasses.replace(
        config,
        train=dataclasses.replace(t, freeze=freeze, freeze_epochs=freeze_epochs, schedule=schedule),
        data=dataclasses.replace(d, image_size=size),
    )


def pretrained_weights(config: RunConfig) -> tuple[RunConfig, PretrainedWeights | None]:
    """The weights `--pretrained` names, read and checked before any data is (a missing file costs
    nothing), and the config recording their SHA-256; a resumed run's recorded hash must match."""
    m = config.model
    if m.pretrained is None:
        return config, None
    weights = read_pretrained(m.name, m.pretrained)
    if m.pretrained_sha256 is not None and m.pretrained_sha256 != weights.sha256:
        raise TochaError(f"--pretrained {m.pretrained}: {weights.path} has SHA-256 {weights.sha256[:12]}..., "
                         f"not the recorded {m.pretrained_sha256[:12]}...: the weights changed")  # fmt: skip
    recorded = dataclasses.replace(m, pretrained_sha256=weights.sha256)
    return dataclasses.replace(config, model=recorded), weights


def imagenet_normalization(channels: int) -> tuple[list[float], list[float]]:
    """ImageNet's mean and std for `channels` (a grayscale image: their means, as it is repeated)."""
    if channels == 3:
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    return [sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3]


def recipe_line(config: RunConfig, channels: int) -> str | None:
    """What a pretrained run does, said once as it starts (None for a run from scratch)."""
    if config.model.pretrained is None:
        return None
    t = config.train
    rates = f"the backbone at {t.backbone_lr_mult:g}x the head's rate (--backbone-lr-mult)"
    if t.freeze != "backbone":
        phases = "every layer at one rate (--freeze none)"
    elif t.freeze_epochs is None:
        phases = "the head alone, the backbone frozen throughout (--freeze backbone)"
    elif t.freeze_epochs == 0:
        phases = f"every layer from the start, {rates}"
    else:
        epochs = f"{t.freeze_epochs} epoch{'s' * (t.freeze_epochs != 1)}"
        phases = f"the head alone for {epochs} (--freeze-epochs), then every layer, {rates}"
    gray = ", each grayscale image repeated to RGB" if channels == 1 else ""
    return (f"fine-tuning: {phases}; a {t.schedule} schedule per phase; ImageNet's mean and std{gray}; "
            "frozen batch norms keep ImageNet's statistics")  # fmt: skip
