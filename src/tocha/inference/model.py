"""`InferenceModel`: preprocessing, model and the task's output layer as one module, uint8 images
in, outputs out.

It is the single artefact that evaluation during training, `tocha evaluate`, `tocha predict` (and
export and serving) use, so every path computes the same numbers: the stored normalisation, the
model in the memory layout and precision it was trained in, and flip test-time augmentation when
the run used it. Loaded from a checkpoint once, by `load_inference_model`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tocha.config import RunConfig
from tocha.data.answered import answered_rows
from tocha.data.normalize import Normalize
from tocha.data.text import TextRecord, columns_of, vocab_size_of
from tocha.devices import autocast, resolve_precision
from tocha.errors import TochaError
from tocha.formats import CHECKPOINT, RUN, WITH_WEIGHTS
from tocha.inference.generate import generated_tokens
from tocha.inference.inputs import as_batch
from tocha.inference.table_rows import as_rows, encode_rows
from tocha.inference.tensors import given_batch, is_tensor_file, read_tensor_file
from tocha.inference.text_inputs import sources_inputs, text_ids
from tocha.models.architecture import Architecture, DoesNotRun
from tocha.models.code_trust import CodeTrust
from tocha.models.user_names import SOURCE_COPY, model_label
from tocha.runs.trained import Trained, item_shape, read_trained, takes_tensors
from tocha.tasks import Task, check_top_k, make_task, task_of


class InferenceModel(nn.Module):
    """uint8 (N, C, H, W) -> outputs, float32, exactly as evaluated in training; for a table,
    float32 rows (N, F) -> outputs. The task's output layer comes last (a regression's outputs
    in the target's units), and the task reads the outputs as answers (`predict`)."""

    def __init__(
        self,
        model: nn.Module,
        normalize: Normalize,
        *,
        task: Task | None = None,
        tta_flip: bool = False,
        amp_dtype: torch.dtype | None = None,
        classes: list[str] | None = None,
        image_shape: tuple[int, int, int] | None = None,
        config: RunConfig | None = None,
        epoch: int = 0,
        table: dict | None = None,
    ) -> None:
        super().__init__()
        self.normalize, self.model = normalize, model
        self.task = task or make_task()  # a classifier unless told
        self.output = self.task.output_layer()  # from the model's outputs to what a user gets
        self.tta_flip = tta_flip  # average each image's outputs with its mirror image's
        self.amp_dtype = amp_dtype  # the autocast dtype it was evaluated in during training
        self.classes = list(classes or [])
        self.image_shape = image_shape  # (C, H, W) of the images the model was trained on
        self.config = config
        self.epoch = epoch
        self.table = table  # a table's encoding and target (`data.table_set.table_info`), else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim == 2:  # table rows (N, F): a feature per channel, as in training
            images = images[:, :, None, None]
        elif images.ndim == 3:  # your own data's signals (N, C, L), held as (N, C, L, 1)
            images = images[..., None]
        x = self.normalize(images)  # (N, C, H, W) float
        with autocast(x.device, self.amp_dtype):
            out = self.model(x).float()  # (N, outputs)
            if self.tta_flip:
                out = (out + self.model(x.flip(3)).float()) / 2
        return self.output(out)

    def predict(self, inputs: object, top_k: int = 3) -> list:
        """Each input's answer, as its task gives it: for a classifier, its `top_k` classes (class,
        index, probability), most probable first. `inputs`: image paths, Pillow images, or uint8
        arrays / tensors (`inference.inputs.as_batch`); a model trained on a table takes a CSV's
        path (each row answered under the ID column the run dropped, else its number, with what was
        filled or unknown in it as `adjusted`) or encoded rows (N, F), answered under their number; a
        text run takes a string or a list of strings."""
        top_k = check_top_k(top_k)  # before the inputs are read
        if self.normalize.columns:  # text beside table columns: a CSV's rows, or their inputs (N, F + T)
            return self.answers(self.beside_inputs(inputs), top_k)
        if self.normalize.text is not None:  # a text run: a text, a list of texts, or token ids (N, T)
            if isinstance(inputs, torch.Tensor | np.ndarray):
                ids = torch.as_tensor(inputs)
                if ids.ndim != 2 or ids.is_floating_point():
                    raise TochaError(f"token ids are integers (N, T), not {ids.dtype} {tuple(ids.shape)}")
                TextRecord.from_dict(self.normalize.text).check_ids(ids.numpy(), "predict")
                return self.answers(ids.long(), top_k)
            texts = [inputs] if isinstance(inputs, str) else list(inputs)  # type: ignore[call-overload]
            if not all(isinstance(t, str) for t in texts):
                raise TochaError("a text model answers texts: give a string or a list of strings")
            return self.answers(text_ids(self.normalize.text, texts)[0], top_k)
        if self.takes_tensors:  # your own data's inputs: tensors, arrays, .npy / .pt files
            items = inputs if isinstance(inputs, list | tuple) else [inputs]
            if any(isinstance(i, str | Path) and not is_tensor_file(i) for i in items):
                self.check_takes_pixels()  # an image file: refused, saying what the model takes
            read = [read_tensor_file(i) if isinstance(i, str | Path) else i for i in items]
            return self.answers(given_batch(read, self.item_shape, self.normalize.integer), top_k)
        if self.table is None:
            self.check_takes_pixels()
            batch = as_batch(inputs, self.image_shape)  # type: ignore[arg-type]
            return self.answers(batch, top_k)
        if isinstance(inputs, str | Path):
            x, table, adjusted = encode_rows(self.table, inputs)
            answers = self.answers(x, top_k)
            dropped = self.config.data.drop
            return answered_rows(
                self.task, self.classes, answers, table, adjusted=adjusted, record=self.table, dropped=dropped
            ).items
        key = self.task.answer_key(self.classes)
        answers = self.answers(as_rows(inputs, self.table), top_k)
        return [{"row": i + 1, key: answer} for i, answer in enumerate(answers)]

    def beside_inputs(self, inputs: object) -> torch.Tensor:
        """What a run reading text beside table columns takes: a CSV's path (its text column and
        the columns, encoded as in training), or inputs already encoded, (N, F + T) float32."""
        record = self.normalize.text
        if isinstance(inputs, torch.Tensor | np.ndarray):
            x = torch.as_tensor(inputs)
            if x.ndim != 2 or x.shape[1] <= self.normalize.columns or not x.is_floating_point():
                raise TochaError(f"inputs beside columns are float (N, {self.normalize.columns} + T), "
                                 f"not {x.dtype} {tuple(x.shape)}")  # fmt: skip
            TextRecord.from_dict(record).check_ids(x[:, self.normalize.columns :].long().numpy(), "predict")
            return x.float()
        if not isinstance(inputs, str | Path):
            raise TochaError("this run reads each text beside table columns: give a CSV's path, with them")
        return sources_inputs(record, [inputs])[0]

    def generate(self, prompt: str = "", length: int = 200, *, temperature: float = 1.0,
                 top_k: int | None = None, seed: int = 0) -> str:  # fmt: skip
        """A next-token run's text after `prompt`: `length` tokens drawn one at a time (seeded, so the
        same call writes the same text; `inference.generate`). The prompt is not repeated."""
        return "".join(self.generate_stream(prompt, length, temperature=temperature, top_k=top_k, seed=seed,
                                            separator=True))  # fmt: skip

    def generate_stream(self, prompt: str = "", length: int = 200, *, temperature: float = 1.0,
                        top_k: int | None = None, seed: int = 0,
                        separator: bool = True) -> Iterator[str]:  # fmt: skip
        """`generate`'s tokens as they are drawn (words with a space before each)."""
        if not self.task.per_position or self.normalize.text is None:
            raise TochaError(
                "this run does not write text: generate needs a next-token run (--task next-token)"
            )
        record = TextRecord.from_dict(self.normalize.text)
        space = " " if separator and record.tokens == "words" else ""
        self.eval()
        with torch.inference_mode():
            for token in generated_tokens(
                self, record, prompt, length, temperature, top_k, seed, self.device
            ):
                yield space + token

    @property
    def takes_tensors(self) -> bool:
        """Whether it was trained on your own data's inputs as given (`runs.trained.takes_tensors`)."""
        return takes_tensors(self.normalize.to_dict(), self.table is not None)

    @property
    def item_shape(self) -> tuple[int, ...]:
        """One input as it was given in training: (C, H, W), (F,), (C, L) or (T,)."""
        return item_shape(self.normalize.to_dict(), tuple(self.image_shape), self.table is not None)

    def check_takes_pixels(self) -> None:
        """A model trained on your own data's inputs as given (`data.given`: floats, not 0..255
        pixels; token ids) is refused image files and pixels: they are not what it learnt from."""
        if self.takes_tensors:
            raise TochaError(
                f"this model was trained on your own data's inputs, {self.item_shape} "
                f"{'int64' if self.normalize.integer else 'float32'}, passed to it as given; an image "
                "decodes to 0..255 pixels, which it never saw: give it tensors of that shape (.npy or "
                ".pt files, or tocha.load(run).predict(x) in Python)"
            )

    def answers(self, inputs: torch.Tensor, top_k: int = 3) -> list:
        """The task's answers for a batch of inputs as the model takes them."""
        top_k = check_top_k(top_k)  # whatever the task: a regression's answers ignore it, yet it was given
        outputs = self.logits(inputs.to(self.device)).cpu().numpy()
        return self.task.answers(outputs, self.classes, top_k)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def logits(self, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Outputs for uint8 images (N, C, H, W), in eval mode and large batches."""
        self.eval()
        outputs = [self(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
        return torch.cat(outputs) if outputs else torch.empty(0)


def load_inference_model(run_or_file: str | Path, device: torch.device, given: Any = None,
                         model_file: str | Path | None = None,
                         *, trust_code: bool = False) -> InferenceModel:  # fmt: skip
    """The model a run folder, a checkpoint or a safetensors export holds (read by the one reader,
    `runs.trained`), its weights loaded behind its preprocessing; in eval mode, on `device`. `given`:
    the module (or function) of a model trained from Python; `model_file`: the user's model's code
    to use instead of the recorded file; `trust_code`: run the recorded code though it was not
    recorded on this machine (`models.code_trust`)."""
    trained = read_trained(run_or_file, WITH_WEIGHTS, "this", model_file, trust_code=trust_code)
    return inference_model(trained, device, given)


def inference_model(trained: Trained, device: torch.device, given: Any = None) -> InferenceModel:
    """A read trained file's model, rebuilt from its config and weights: a run's in the memory layout
    and precision it was evaluated in during training (same layout: same numbers), an export's in
    float32, as its file was checked."""
    config, as_trained = trained.config, trained.kind in (RUN, CHECKPOINT)
    channels_last = as_trained and bool(config.train.channels_last)
    amp_dtype = resolve_precision(config.train.precision, device)[1] if as_trained else None
    copy = trained.folder.file(SOURCE_COPY) if trained.folder is not None else None
    try:
        inference = assemble(
            config,
            trained.classes,
            trained.image_shape,
            trained.weights,  # type: ignore[arg-type]
            normalization=trained.normalization,
            epoch=trained.epoch,
            tta_flip=config.train.tta_flip,
            table=trained.table,
            channels_last=channels_last,
            amp_dtype=amp_dtype,
            given=given,
            source_copy=copy,
            trust=trained.trust,
        )
    except DoesNotRun as e:
        shape = tuple(trained.image_shape)  # type: ignore[arg-type]
        raise TochaError(f"{trained.path}: its model cannot run on the input shape it records, {shape}: "
                         f"{e}") from e  # fmt: skip
    except (KeyError, RuntimeError, TypeError) as e:
        why = str(e).strip().splitlines()[0]
        raise TochaError(
            f"{trained.path}: the weights do not fit {model_label(config.model.name)} ({why})"
        ) from e
    # For answering, not training: its outputs carry no graph (no grad_fn), however it is called.
    return inference.to(device).eval().requires_grad_(False)


def assemble(config: RunConfig, classes: list[str], image_shape: list[int] | tuple[int, ...],
             weights: dict[str, torch.Tensor], *, normalization: dict[str, list[float]], epoch: int,
             tta_flip: bool, channels_last: bool = False, amp_dtype: torch.dtype | None = None,
             table: dict | None = None, given: Any = None, source_copy: Path | None = None,
             trust: CodeTrust = CodeTrust.RECORDED) -> InferenceModel:  # fmt: skip
    """The config's model with `weights` loaded (RuntimeError if they do not fit; `DoesNotRun` if
    it cannot run on `image_shape` or gives what the task cannot read), behind its normalisation:
    the one place a stored model becomes an inference model."""
    shape, task = tuple(image_shape), task_of(config, table)
    rows = table is not None or normalization.get("rows") is True  # a table's, or rows given in Python
    signal = normalization.get("shape")  # your own data's (C, L) signals, and its integer token ids
    architecture = Architecture(config.model, shape, task.output_size(classes), rows=rows,  # type: ignore[arg-type]
                                given=given, source_copy=source_copy, trust=trust,
                                signal=tuple(signal) if signal else None,
                                integer=normalization.get("integer") is True,
                                vocab=vocab_size_of(normalization), per_token=task.per_position,
                                columns=columns_of(normalization.get("text")))  # fmt: skip
    architecture.check_weights(weights)  # before building: a declared size is not trusted
    # Weights that fit say nothing of the recorded shape where the network pools or adapts (a ResNet
    # takes any size its pooling leaves above 0x0): run it first (`models.trial_run`), so a shape
    # it cannot take is refused here rather than failing inside the first prediction.
    architecture.check_runs(architecture.on_meta())
    model = architecture.build()
    model.load_state_dict(weights)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    normalize = Normalize.from_dict(normalization, channels_last)
    return InferenceModel(
        model,
        normalize,
        task=task,
        tta_flip=tta_flip,
        amp_dtype=amp_dtype,
        classes=classes,
        image_shape=shape,
        config=config,
        epoch=epoch,
        table=table,
    )  # type: ignore[arg-type]


def dynamic_dims(model: InferenceModel) -> dict[int, Any]:
    """What an export leaves free in its input's shape: the batch, and a text run's length where
    the network allows (`Dim.AUTO`: torch.export keeps it free unless a layer fixes it, as the
    recurrent layers' exports do; the file's input shape then says the length it takes)."""
    dims: dict[int, Any] = {0: torch.export.Dim("batch")}
    # Text beside table columns keeps the training length: its ids are a slice after the columns, and
    # torch 2.13's ONNX lowering of a recurrent layer fails on a length left free there.
    if model.normalize.text is not None and not model.normalize.columns:
        dims[1] = torch.export.Dim.AUTO
    return dims
