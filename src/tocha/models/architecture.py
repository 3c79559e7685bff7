"""`Architecture`: what builds a run's network and what it takes in, whoever wrote it.

One of tocha's families with its options (`models.registry`), the user's class, function or module
object named by a file (`models.user`), or a module or function given in Python: each is built,
checked and sized through this one class, so a user's model gets every check a built-in one does.
The checks run the model on PyTorch's meta device (shapes, no storage) where it can run there, and
on a batch of two real zeros where it cannot (a forward that reads a value, say).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tocha.config import ModelConfig
from tocha.errors import TochaError
from tocha.memory import check_fits
from tocha.models.code_trust import CodeTrust
from tocha.models.meta import meta_copy
from tocha.models.registry import create_model, family_options, with_defaults
from tocha.models.trial_run import DoesNotRun, ForwardFailed, trial_run
from tocha.models.user import call_builder, check_arguments, own_maker
from tocha.models.user_names import is_own, model_label


@dataclass
class Architecture:
    """A run's network as something to build: from a config (and an object given in Python)."""

    config: ModelConfig
    in_shape: tuple[int, int, int]  # (C, H, W) of an image; a table's rows are (F, 1, 1) in the data
    outputs: int  # what the task needs per input (10 classes: 10; a regression: 1)
    rows: bool = False  # a table: the network takes rows (N, F), as the notes' models do (and an image
    # model whose config says `flatten`: (N, C*H*W))
    given: Any = None  # an nn.Module or a function returning one, given in Python
    source_copy: Path | None = None  # the run's copy of its model file, to say what changed in it
    trust: CodeTrust = CodeTrust.RECORDED  # who chose a user's model's code (`models.code_trust`)
    signal: tuple[int, ...] | None = None  # your own data's (C, L) inputs, held as (C, L, 1): taken as (C, L)
    integer: bool = False  # the inputs are int64 (token ids), as an nn.Embedding takes them
    vocab: int = 0  # a text run's vocabulary size (`data.text`): what tocha's text models embed
    columns: int = 0  # table features a text run reads before its ids (`data.text.columns_of`)
    per_token: bool = False  # next-token: outputs at every position, (B, T, outputs)
    # What it made once, reused by every check and build after (a user's file imported once, the
    # network built on meta once): see `maker`, `on_meta`, `with_config`.
    _made: Any = field(default=None, init=False, repr=False, compare=False)
    _meta: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def label(self) -> str:
        return model_label(self.config.name)

    @property
    def own(self) -> bool:
        """The user's model, not one of tocha's families."""
        return self.given is not None or is_own(self.config.name)

    @property
    def flat(self) -> bool:
        """Whether the network takes each input as one row of values."""
        return self.rows or bool(self.config.flatten)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One input as the network takes it: (C, H, W), or (F,) for a table's row or a flattened image."""
        if self.flat:
            return (math.prod(self.in_shape),)
        return tuple(self.signal) if self.signal else tuple(self.in_shape)

    def zeros(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """A batch of zero inputs as the network takes them (int64 token ids where the inputs are)."""
        return torch.zeros(
            batch, *self.sample_shape, device=device, dtype=torch.long if self.integer else None
        )

    def build(self) -> nn.Module:
        """The network, initialised from torch's current seed (a module given in Python: itself)."""
        return self.maker()()

    def with_config(self, config: ModelConfig) -> Architecture:
        """This architecture under `config`; what it made is kept where `config` builds the same
        network (it differs at most in `flatten`, how the inputs are given)."""
        other = dataclasses.replace(self, config=config)
        if unflattened(config) == unflattened(self.config):
            other._made, other._meta = self._made, self._meta
        return other

    def with_outputs(self, outputs: int) -> Architecture:
        """This architecture giving `outputs` values per input (the task's, once it is known); what
        it made is kept where that does not change the network (a user's model builds itself)."""
        other = dataclasses.replace(self, outputs=outputs)
        if self.own or outputs == self.outputs:
            other._made, other._meta = self._made, self._meta
        return other

    def same_network(self, other: Architecture) -> bool:
        """Whether `other` builds this very network (a built-in's defaults spelt out or not; how the
        inputs are given aside): then what one made serves the other."""

        def key(a: Architecture) -> tuple:
            return (with_defaults(unflattened(a.config)), a.in_shape, a.outputs, a.rows, a.signal, a.integer,
                    a.vocab, a.columns, a.per_token, id(a.given))  # fmt: skip

        return key(self) == key(other)

    def made_by(self, maker: Callable[[], nn.Module]) -> Architecture:
        """This architecture built by `maker`, made already (a user's file imported to record it)."""
        self._made = self.lengths_given(maker)
        return self

    def maker(self) -> Callable[[], nn.Module]:
        """What builds the network when called, made once: a file is imported here (once), outside
        any device context, so what its top level builds is real."""
        if self._made is None:
            self._made = self.new_maker()
        return self._made

    def new_maker(self) -> Callable[[], nn.Module]:
        return self.lengths_given(self.own_or_family_maker())

    def lengths_given(self, make: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        """Your own text model gets each text's length beside its ids where its forward takes
        `lengths`, and columns beside the text apart (`sequence_layers.given_lengths`, `given_columns`)."""
        if not (self.own and self.vocab):
            return make
        from tocha.models.sequence_layers import given_columns, given_lengths

        return lambda: given_lengths(given_columns(make(), self.columns))

    def own_or_family_maker(self) -> Callable[[], nn.Module]:
        given, c = self.given, self.config
        if isinstance(given, nn.Module):
            return lambda: given
        if given is not None:
            args = check_arguments(given, c.args or {}, self.label)
            return lambda: call_builder(given, args, self.label)
        if is_own(c.name):
            return own_maker(c, self.source_copy, self.trust)
        options = family_options(c)
        text = {"vocab_size": self.vocab, "per_token": self.per_token, "columns": self.columns}
        return lambda: create_model(c.name, self.in_shape, self.outputs, **text, **options)

    def on_meta(self) -> nn.Module:
        """The network with shapes and no storage, to count and check before memory is taken, built
        once (on the CPU where its construction needs real values). Checks run it, never change it."""
        if self._meta is None:
            self._meta = self.new_meta()
        return self._meta

    def new_meta(self) -> nn.Module:
        if isinstance(self.given, nn.Module):
            return meta_copy(self.given)
        make = self.maker()
        try:
            with torch.device("meta"):
                return make()
        except TochaError:
            raise
        except Exception:  # a constructor that reads a value (`.item()`) cannot run on meta
            if not self.own:
                raise
        return make()

    def parameters(self) -> int:
        return sum(p.numel() for p in self.on_meta().parameters())

    def check_fits(self, copies: int = 4) -> int:
        """Its parameter count, after checking that `copies` float32 copies of them fit in memory
        (training: weights, gradients and Adam's two moments)."""
        n = self.parameters()
        check_fits(4 * copies * n, f"model {self.label} with {n:,} parameters")
        return n

    def check(self) -> nn.Module:
        """Refuse, in one line, a network tocha cannot train: parameters that are not floating point,
        none at all, a forward that fails, an output that does not fit the task. Returns it on meta."""
        model = self.on_meta()
        params = list(model.parameters())
        if not params:
            raise TochaError(f"{self.label} has no parameters: there is nothing to train")
        wrong = next((n for n, p in model.named_parameters() if not p.is_floating_point()), None)
        if wrong is not None:
            raise TochaError(
                f"{self.label}'s parameter {wrong} is {model.get_parameter(wrong).dtype}: "
                "gradients need floating-point parameters"
            )
        self.check_runs(model)
        return model

    def check_runs(self, model: nn.Module) -> None:
        """Refuse (`DoesNotRun`, one line) a network that fails on a batch of its input shape or whose
        output is not the task's (B, outputs) floats: the part of `check` that also holds for a
        trained file's model, whose recorded shape is not trusted (`inference.model.assemble`)."""
        output, _ = trial_run(self, model, 2)
        batch = "x".join(["B", *map(str, self.sample_shape)])
        if not isinstance(output, torch.Tensor):
            raise DoesNotRun(
                f"{self.label} returned a {type(output).__name__} for a batch of ({batch}); "
                f"tocha needs one tensor of (B, {self.outputs})"
            )
        expected = (2, *self.sample_shape, self.outputs) if self.per_token else (2, self.outputs)
        if tuple(output.shape) != expected or not output.is_floating_point():
            shape = "x".join(["B", *map(str, output.shape[1:])]) if output.ndim else "a scalar"
            raise DoesNotRun(
                f"{self.label} returned {shape} ({output.dtype}) for a batch of ({batch}); {self.expected()}"
            )

    def input_layout(self) -> bool:
        """Whether a user's image model takes flattened images: its config says so, or its forward
        fails on (B, C, H, W) and works on (B, C*H*W) (the notes' nn.Sequential of Linear layers,
        fed `images.view(N, -1)` by their loop). Checks the model either way."""
        if self.rows or self.config.flatten is not None or not self.own:
            self.check()
            return bool(self.config.flatten)
        try:
            self.check()
            return False
        except ForwardFailed as as_images:
            flat = self.with_config(dataclasses.replace(self.config, flatten=True))  # the same network
            try:
                flat.check()
            except TochaError:
                raise as_images from None
            return True

    def expected(self) -> str:
        what = (
            "one value per input" if self.outputs == 1 else f"{self.outputs} values per input, one per class"
        )
        return f"the task needs Bx{self.outputs} floats ({what}): check the last layer's size"

    def activation_bytes(self, batch: int) -> tuple[int, int]:
        """Bytes of every layer's outputs for one batch, summed and the largest: what training keeps
        for backward, and what evaluation holds at its peak."""
        _, sizes = trial_run(self, self.on_meta(), batch)
        return sum(sizes), max(sizes, default=0)

    def check_activations_fit(self, have: int, train_batch: int = 0, eval_batch: int = 0) -> None:
        """Refuse, before a byte is taken, a batch whose activations cannot fit in `have` bytes:
        training keeps every layer's output and as much again in gradients; evaluation, without
        gradients, about two layers' at a time."""
        size = "x".join(map(str, self.in_shape[1:])) if not self.rows else f"{self.sample_shape[0]} features"
        if train_batch:
            total, _ = self.activation_bytes(train_batch)
            check_fits(
                2 * total,
                f"training {self.label} on batches of {train_batch} at {size}",
                have,
                "; give a smaller --batch-size (or --image-size)",
            )
        if eval_batch:
            _, largest = self.activation_bytes(eval_batch)
            check_fits(
                2 * largest,
                f"evaluating {self.label} in batches of {eval_batch} at {size}",
                have,
                "; give a smaller --eval-batch-size (evaluate: --batch-size)",
            )

    def check_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """`weights` are this network's, key for key and shape for shape (checked on meta, before a
        declared size is trusted); else a RuntimeError naming a few that are not."""
        declared = self.on_meta().state_dict()
        wrong = [
            k for k, v in declared.items() if k not in weights or tuple(weights[k].shape) != tuple(v.shape)
        ]
        extra = sorted(set(weights) - set(declared))
        if wrong or extra:
            shown = [
                f"{k} {tuple(weights[k].shape) if k in weights else 'missing'} where the model has "
                f"{tuple(declared[k].shape)}"
                for k in wrong[:3]
            ]
            shown += [f"{k} (not in the model)" for k in extra[:3]]
            raise RuntimeError("; ".join(shown))  # the caller says whose weights


def unflattened(config: ModelConfig) -> ModelConfig:
    """`config` without `flatten`: how the inputs are given, not what is built."""
    return dataclasses.replace(config, flatten=None)
