"""Choosing the device: `auto` picks cuda, then mps, then cpu."""

from __future__ import annotations

import torch

from tocha.errors import TochaError


def resolve_device(name: str) -> torch.device:
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps`, checked against what this machine has."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TochaError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TochaError(f"device {name!r} requested but no CUDA GPU is available; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TochaError(f"device {name!r} requested but MPS is not available; use --device cpu")
    return device
