"""The grid of `tocha compare`: `--vary key=v1,v2` options, their product, each cell's config.

Option names come from the config's own keys (`tocha.config.config_keys`), so any option can be
varied under its config name, its last part (`lr`, `activation`) or a short alias (`model`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from typing import Any

from tocha.config import RunConfig, copy_config, model_option, resolve_key, set_value, typed_value
from tocha.config_fields import brief, read_yaml
from tocha.errors import TochaError
from tocha.training.plan import with_model_chosen

SHORT = {"model.name": "model", "data.name": "data", "train.seed": "seed"}  # for labels


def parse_vary(text: str) -> tuple[str, list[Any]]:
    """`key=v1,v2` -> (config key, values). A YAML list (`key=[[128,64],[256]]`) gives list values."""
    if "=" not in text:
        raise TochaError(f"--vary {text!r}: expected KEY=VALUE1,VALUE2")
    name, raw = text.split("=", 1)
    spelt = [v.strip() for v in raw.split(",") if v.strip()]
    values = read_yaml(raw, f"--vary {name}") if raw.strip().startswith("[") else [_scalar(v) for v in spelt]
    if not isinstance(values, list) or not values:
        raise TochaError(f"--vary {brief(text)}: no values")
    key = resolve_key(name)
    typed = [typed_value(key, value) for value in values]  # 0.01, 0.010 and 1e-2 are one value
    spelt = spelt if len(spelt) == len(values) else [brief(v) for v in values]
    seen: dict[str, str] = {}
    for value, given in zip(typed, spelt, strict=True):
        if repr(value) in seen:
            raise TochaError(
                f"--vary {name}: {seen[repr(value)]} and {given} are the same value "
                f"({value!r}); give each once"
            )
        seen[repr(value)] = given
    return key, typed


def _scalar(text: str) -> Any:
    """YAML's reading of one value, except that `1e-3` (YAML 1.1: a string) is a number."""
    value = read_yaml(text, "--vary")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def expand_grid(varies: list[str]) -> list[dict[str, Any]]:
    """The product of all `--vary` options, as a list of {config key: value} cells."""
    axes = [parse_vary(v) for v in varies]
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise TochaError("--vary: the same option is varied twice")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(vals for _, vals in axes))]


def cell_label(cell: dict[str, Any]) -> str:
    """`activation=relu optimizer=sgd`, short keys, for tables and plots."""
    return " ".join(f"{SHORT.get(k, k.split('.')[-1])}={v}" for k, v in cell.items()) or "base"


def cell_slug(cell: dict[str, Any]) -> str:
    """A folder name that is the cell's alone. A short label of safe characters is used as it is;
    any other (cut, or with characters replaced) keeps a readable prefix and gains a `~` (which a
    label used as it is never holds) and a hash of the whole cell, so two cells never share a folder."""
    label = cell_label(cell)
    if re.fullmatch(r"[A-Za-z0-9.=_-]{1,100}", label):
        return label
    digest = hashlib.sha256(json.dumps(cell, sort_keys=True, default=repr).encode()).hexdigest()[:12]
    # [128, 64] -> 128-64 and key=value pairs joined by "__": still readable once made folder-safe.
    readable = "__".join(re.sub(r"[\[\]]", "", label.replace(", ", "-")).split(" "))
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", readable)[:100] + "~" + digest


def cell_config(base: RunConfig, cell: dict[str, Any]) -> RunConfig:
    """The base config with the cell's values. A family's cell drops the base's model options it
    does not take (hidden_sizes for tinyvgg, a constructor argument of your model's for mlp) and
    the record of your model's file, so one base can describe every model of a `--vary model=...`
    grid; a model of your own is given every option of the base (its constructor refuses one it does
    not take). An inapplicable option the cell itself sets is still an error."""
    from tocha.models import model_options
    from tocha.models.user_names import is_own

    config = copy_config(base)
    for key, value in cell.items():
        set_value(config, key, value)
    config = with_model_chosen(config)
    if is_own(config.model.name):
        return config
    varied = {model_option(key) for key in cell} | {key.removeprefix("model.") for key in cell}
    taken = set(model_options(config.model.name)) | varied
    config.model.args = {k: v for k, v in (config.model.args or {}).items() if k in taken} or None
    for recorded in ("file", "file_sha256", "sources", "signature", "flatten"):  # your model's alone
        if recorded not in varied:
            setattr(config.model, recorded, None)
    return config


def cell_digest(cell: dict[str, Any]) -> str:
    """A short stable fingerprint of a cell's full content."""
    return hashlib.sha256(json.dumps(cell, sort_keys=True).encode()).hexdigest()[:8]
