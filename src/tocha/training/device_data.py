"""The data on the training device: every split copied there once, the normalisation and the
augmentation that turn a uint8 batch into the model's input, and the generators of the batch order
and of the augmentation draws."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from tocha.data.batches import Batch, device_batches, length_order, share_of, shuffled_order, steps_per_epoch
from tocha.data.given import inputs_of, where_of
from tocha.data.normalize import Normalize
from tocha.data.stream import Stream
from tocha.data.tensorset import LoadedData, TensorSet
from tocha.tasks import Task
from tocha.training.augment import Augment, augment_names, augment_seed
from tocha.training.prepared_inputs import PreparedInputs, prepare_inputs
from tocha.training.resolved import ResolvedRun
from tocha.training.runtime import Runtime
from tocha.training.tally import EpochTally


@dataclass
class DeviceData:
    loaded: LoadedData  # as loaded (CPU): its name, classes, source, table record
    train_set: TensorSet  # on the training device, labels as the task's loss takes them
    test_set: TensorSet
    val_set: TensorSet | None  # what every choice is made on; None without a validation split
    normalize: Normalize
    augment: Augment | None
    shuffle_generator: torch.Generator  # the batch order: the same on every rank
    augment_generator: torch.Generator  # augmentation draws: a stream of its own per rank
    batch_size: int  # the global batch
    world_size: int = 1
    blocks: bool = False  # `--shuffle blocks`: the order in runs of consecutive samples (`shuffled_order`)
    by_length: bool = False  # `--shuffle lengths`: each batch of texts of near lengths
    fixed: bool = False  # `--overfit-batches`: the same batches in the same order every epoch
    fingerprint: str = ""  # `LoadedData.fingerprint`: what a resumed run checks it trains on
    prepared: PreparedInputs | None = None  # the training inputs normalised once (`prepare`), or None

    @classmethod
    def build(cls, run: ResolvedRun, loaded: LoadedData, runtime: Runtime) -> DeviceData:
        """Both splits on `runtime.device` (the one copy of a run), the normalisation in the layout
        the model trains in, and the two generators seeded from the run's seed."""
        cfg, task, device = run.config, run.task, runtime.device
        t = cfg.train
        rows = loaded.rows or bool(cfg.model.flatten)  # the model takes (N, F) rows
        given = {"integer": loaded.integer, "shape": list(loaded.item_shape), "text": loaded.text}
        normalize = Normalize(
            cfg.data.mean, cfg.data.std, bool(t.channels_last), loaded.input_scale, rows=rows, **given
        )
        normalize = normalize.to(device)
        augment_generator = torch.Generator(device=device).manual_seed(augment_seed(t.seed, runtime.rank))
        augment = Augment(cfg.data.augment_flip, cfg.data.augment_translate, augment_generator,
                          augment_names(cfg.data.augment), classes=len(loaded.classes))  # fmt: skip
        data = cls(
            loaded=loaded,
            train_set=TensorSet(loaded.train.images, task.prepare(loaded.train.labels)).to(device),
            test_set=loaded.test.to(device),
            val_set=loaded.val.to(device) if loaded.val is not None else None,
            normalize=normalize,
            augment=augment if augment else None,
            shuffle_generator=torch.Generator(device=device).manual_seed(t.seed),
            augment_generator=augment_generator,
            batch_size=t.batch_size * t.accumulate,  # a step's batch, its gradient in `accumulate` parts
            world_size=runtime.world_size,
            blocks=t.shuffle == "blocks",
            by_length=t.shuffle == "lengths",
            fixed=bool(t.overfit_batches),
            fingerprint=loaded.fingerprint(),
        )
        data.prepare()
        return data

    def prepare(self) -> None:
        """The training inputs normalised once, a step's batch at a time, where that is possible
        (`training.prepared_inputs`): then a step only gathers its batch."""
        self.prepared = prepare_inputs(self.train_set, self.normalize, self.batch_size // self.world_size)

    @property
    def classes(self) -> list[str]:
        return self.loaded.classes

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.train_set), self.batch_size)

    @property
    def global_samples_per_epoch(self) -> int:
        """Training samples all processes together see per epoch: every one."""
        return len(self.train_set)

    def samples_per_epoch(self, rank: int) -> int:
        """Training samples process `rank` sees per epoch (its share of each batch)."""
        full, last = divmod(len(self.train_set), self.batch_size)
        of_full = share_of(self.batch_size, rank, self.world_size)
        of_last = share_of(last, rank, self.world_size)
        return full * (of_full.stop - of_full.start) + of_last.stop - of_last.start

    def read_again(self, epoch: int) -> None:
        """`--stream`: the training split read again from your Dataset for `epoch`, each item under
        its own seed (`data.stream`); the first epoch trains on the first read."""
        stream = self.loaded.details.get("stream")
        if stream is None or epoch <= 1:
            return
        origin = self.loaded.train.origin
        assert origin is not None and isinstance(stream, Stream)
        images = self.train_set.images
        stream.read_again(origin, epoch - 1, images, self.loaded.train.labels,
                          lambda x: inputs_of(x, "train", where_of(self.loaded.name)))  # fmt: skip
        self.prepare()  # the new read, normalised in its turn

    def new_epoch(self, task: Task) -> EpochTally:
        """A fresh epoch: a new shuffled order, empty sums."""
        device = self.train_set.labels.device  # the images may be on disk
        order = shuffled_order(len(self.train_set), self.shuffle_generator, device, self.blocks)
        if self.by_length:  # texts of near lengths together (`data.batches.length_order`)
            ids = self.train_set.images[:, self.normalize.columns :]  # after any table columns beside them
            lengths = (ids != 0).flatten(1).sum(1)
            order = length_order(order, lengths, self.batch_size, self.shuffle_generator)
        if self.fixed:  # drawn all the same (the generator moves as it would), then not used
            order = torch.arange(len(self.train_set), device=device)
        return EpochTally.begin(task, order)

    def batches(self, tally: EpochTally, rank: int = 0) -> Iterator[Batch]:
        """The epoch's batches (this rank's share of each) from where `tally` stands: its start, or
        a stop part-way."""
        prepared = self.prepared
        return device_batches(
            prepared.rows if prepared is not None else self.train_set,
            tally.order,
            self.batch_size,
            prepared if prepared is not None else self.normalize,
            augment=self.augment,
            rank=rank,
            world_size=self.world_size,
            start_step=tally.steps_done,
        )
