"""Lightning users get tocha's datasets, device batches and models (`pip install "tocha[lightning]"`).

    import lightning as L
    from tocha.lightning import TochaDataModule, TochaModule

    data = TochaDataModule(data="mnist-sample", model="mlp", epochs=2)
    L.Trainer(max_epochs=2).fit(TochaModule.for_data(data), data)

Both are built from a tocha config (keywords as `tocha.train` takes them, or a RunConfig or YAML
file): the data module reads the dataset once and yields uint8 batches by index, each rank its
share of every global batch under `strategy="ddp"`; the module normalises, augments and trains
the config's model with its loss, optimizer and per-batch schedule. `val_dataloader` is the
validation split (what `ModelCheckpoint(monitor="val_accuracy")` and `EarlyStopping` choose on;
none with `val_fraction=0`), `test_dataloader` the test split (`trainer.test`, once, at the end).
A prepared folder (`tocha data prepare`) is read as `tocha train` reads it: with
`in_memory="no"` its training images stay on disk and each batch is read as it is needed.
Lightning's loggers, callbacks and strategies do the rest. `to_tocha_run` turns a Lightning
checkpoint into a tocha run folder that `tocha evaluate`, `predict` and `export` take. Importing
tocha never imports this module (nor Lightning).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch

from tocha.api import chosen_code, make_config
from tocha.config import RunConfig, config_from_dict, to_dict
from tocha.data.batches import device_batches, shuffled_order, steps_per_epoch
from tocha.data.normalize import Normalize
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.errors import TochaError
from tocha.files import regular_file
from tocha.models.architecture import Architecture
from tocha.runs import Checkpoint, RunFolder
from tocha.tasks import task_of
from tocha.training.augment import Augment, augment_names, augment_seed
from tocha.training.finetune import InitSource, load_initial_weights
from tocha.training.optimizers import make_optimizer
from tocha.training.plan import plan, with_head
from tocha.training.resolve import load_data, resolve
from tocha.training.schedules import make_scheduler


class DeviceBatches:
    """An epoch's (images, labels, weight) uint8 batches from a tensor set, each rank its share of
    every global batch of one seeded permutation (no DataLoader, no per-sample Python); the weight
    makes the ranks' averaged gradients the whole batch's (`data.batches`; 0: a stand-in sample)."""

    def __init__(self, data: TensorSet, batch_size: int, seed: int, shuffle: bool, *, rank: int = 0,
                 world_size: int = 1, blocks: bool = False) -> None:  # fmt: skip
        self.data, self.batch_size, self.shuffle, self.blocks = data, batch_size, shuffle, blocks
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return steps_per_epoch(len(self.data), self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        order = shuffled_order(len(self.data), self.generator, torch.device("cpu"), self.blocks) \
            if self.shuffle else torch.arange(len(self.data))  # fmt: skip
        for _step, x, y, weight in device_batches(self.data, order, self.batch_size, lambda images: images,
                                                  rank=self.rank, world_size=self.world_size):  # fmt: skip
            yield x, y, weight


class TochaDataModule(L.LightningDataModule):
    def __init__(self, config: RunConfig | str | Path | None = None, trust_code: bool = False,
                 **options: Any) -> None:  # fmt: skip
        super().__init__()
        self.trust = chosen_code(config, options, trust_code)  # who chose a user's model's code
        self.config = make_config(config, **options)
        self.data: LoadedData | None = None
        self.source: InitSource | None = None  # `init_from`'s weights, read by tocha's one reader

    def prepare(self) -> LoadedData:
        """Read the dataset (once) and resolve the config as `tocha train` does (`training.resolve`)."""
        if self.data is None:
            planned = plan(self.config, trust=self.trust)
            self.source = planned.source
            name, data = load_data(planned.config, print)
            if data.table is not None:
                raise TochaError(f"{name}: tocha.lightning trains images; a table trains with tocha train")
            self.data = data
            self.config = resolve(planned, name, self.data, torch.device("cpu")).config
        return self.data

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DeviceBatches:
        rank, world = self._ranks()
        t = self.config.train
        blocks = t.shuffle == "blocks"
        return DeviceBatches(
            self.prepare().train, t.batch_size, t.seed, True, rank=rank, world_size=world, blocks=blocks
        )

    def val_dataloader(self) -> DeviceBatches | list:
        """The validation split (none: an empty list, and Lightning validates nothing)."""
        val = self.prepare().val
        return self._held_out(val) if val is not None else []

    def test_dataloader(self) -> DeviceBatches:
        """The test split: for `trainer.test`, once, on the weights chosen on validation."""
        return self._held_out(self.prepare().test)

    def _held_out(self, split: TensorSet) -> DeviceBatches:
        rank, world = self._ranks()
        batch = self.config.train.eval_batch_size * world  # a global batch: each rank its share
        return DeviceBatches(split, batch, 0, False, rank=rank, world_size=world)


class TochaModule(L.LightningModule):
    """The config's model, task (loss and metrics), optimizer and schedule; uint8 batches in."""

    def __init__(self, config: RunConfig, image_shape: tuple[int, int, int], classes: list[str],
                 source: InitSource | None = None) -> None:  # fmt: skip
        super().__init__()
        self.config, self.image_shape, self.classes = config, tuple(image_shape), list(classes)
        self.task = task_of(config)
        self.model = Architecture(
            with_head(config), self.image_shape, self.task.output_size(self.classes)
        ).build()
        if source is not None:  # fine-tuning: the weights of a run, a checkpoint or a safetensors export
            load_initial_weights(self.model, source, self.classes, self.image_shape, log=print)
        self.normalize = Normalize(config.data.mean, config.data.std, rows=bool(config.model.flatten))
        self.augment: Augment | None = None
        self.sums: dict[str, torch.Tensor] = {}  # validation: the task's sums on this rank
        self.seen = 0

    @classmethod
    def for_data(cls, data: TochaDataModule) -> TochaModule:
        """A module for `data`'s dataset (its classes, image shape and normalisation)."""
        loaded = data.prepare()
        torch.manual_seed(data.config.train.seed)  # the model's initialisation, as `tocha train`
        return cls(data.config, loaded.image_shape, loaded.classes, data.source)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(images))

    def on_fit_start(self) -> None:
        d = self.config.data
        seed = augment_seed(self.config.train.seed, self.global_rank)  # as `tocha train` seeds it
        generator = torch.Generator(device=self.device).manual_seed(seed)
        augment = Augment(d.augment_flip, d.augment_translate, generator, augment_names(d.augment),
                          classes=len(self.classes))  # fmt: skip
        self.augment = augment if augment else None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, float], _index: int) -> torch.Tensor:
        images, labels, weight = batch
        x = self.normalize(images)
        if self.augment is not None:  # MixUp / CutMix: the labels become class shares
            x, labels = self.augment(x, labels)
        loss = self.task.loss(self.model(x).float(), labels)
        self.log("train_loss", loss, prog_bar=True)
        return loss * weight if weight != 1 else loss  # several processes: this rank's share of the batch

    def on_validation_epoch_start(self) -> None:
        self._start_split()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor, float], _index: int) -> None:
        self._add_batch(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_split("val")

    def on_test_epoch_start(self) -> None:
        self._start_split()

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor, float], _index: int) -> None:
        self._add_batch(batch)

    def on_test_epoch_end(self) -> None:
        self._log_split("test")

    def _start_split(self) -> None:
        self.sums, self.seen = self.task.new_sums(self.device), 0

    def _add_batch(self, batch: tuple[torch.Tensor, torch.Tensor, float]) -> None:
        images, labels, weight = batch
        if not weight:  # a stand-in sample: this rank has no share of a short last batch
            return
        out = self(images).float()
        self.task.add(self.sums, self.task.loss(out, labels), out, labels)  # the loop's own sums
        self.seen += len(labels)

    def _log_split(self, split: str) -> None:
        sums = {k: self.all_gather(v) for k, v in self.sums.items()}  # every rank's, stacked
        samples = self.all_gather(torch.tensor(self.seen, device=self.device))
        if samples.ndim:  # several processes: add up their parts
            sums, samples = {k: v.sum(0) for k, v in sums.items()}, samples.sum()
        metrics = self.task.summarize(sums, int(samples))
        self.log_dict({f"{split}_{k}": v for k, v in metrics.items()}, rank_zero_only=True)

    def configure_optimizers(self) -> Any:
        t = self.config.train
        optimizer = make_optimizer(self.model.parameters(), t, self.device)
        scheduler = make_scheduler(optimizer, t.schedule, int(self.trainer.estimated_stepping_batches),
                                   t.warmup_fraction)  # fmt: skip
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tocha"] = {"config": to_dict(self.config), "classes": self.classes,
                               "image_shape": list(self.image_shape)}  # fmt: skip


def to_tocha_run(lightning_checkpoint: str | Path, out_dir: str | Path, name: str) -> Path:
    """A tocha run folder (config.yaml, checkpoint.pt) from a TochaModule's Lightning checkpoint."""
    saved = torch.load(regular_file(lightning_checkpoint, "Lightning checkpoint"), map_location="cpu",
                       weights_only=True)  # fmt: skip
    info = saved["tocha"]
    config = config_from_dict(info["config"], str(lightning_checkpoint))
    weights = {k.removeprefix("model."): v for k, v in saved["state_dict"].items() if k.startswith("model.")}
    folder = RunFolder.create(out_dir, name)
    folder.write_config(config)
    folder.write_checkpoint(Checkpoint(
        config=to_dict(config), classes=info["classes"], image_shape=info["image_shape"],
        normalization={"mean": config.data.mean, "std": config.data.std}, weights=weights, optimizer=None,
        epoch=int(saved.get("epoch", 0)) + 1, finished=True, history=[], training=None,
    ))  # fmt: skip
    return folder.path
