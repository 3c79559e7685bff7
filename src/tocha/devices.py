"""Choosing the device (`auto` picks cuda, then mps, then cpu), the precision and the layout."""

from __future__ import annotations

import contextlib

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


def resolve_precision(name: str, device: torch.device) -> tuple[str, torch.dtype | None]:
    """`auto` is bf16 autocast on a CUDA GPU that supports it, else fp32 (CPUs without bf16
    matrix units run bf16 slower than fp32). Returns the resolved name and the autocast dtype."""
    if name == "auto":
        name = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return name, (torch.bfloat16 if name == "bf16" else None)


def resolve_channels_last(setting: bool | None, device: torch.device, model: torch.nn.Module) -> bool:
    """`None` means: channels_last for models with convolutions on CUDA and on the CPU, whose
    oneDNN convolutions are faster in NHWC (TinyVGG trains about 2x faster on a 2-core CPU)."""
    if setting is not None:
        return setting
    has_conv = any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    return device.type in ("cuda", "cpu") and has_conv


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass when `dtype` is given (bf16), else nothing."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
