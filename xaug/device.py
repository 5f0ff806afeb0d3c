"""Where models run: `device` in params.yaml (`auto`: the GPU when torch sees one, else the CPU).

Models are moved once, after loading; every batch is moved to the device of the model that reads it,
so the same code serves the embedded CPU profile and the paper profile on a GPU.
"""
from __future__ import annotations

import contextlib

import torch

from .errors import ConfigError


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a torch device that exists here."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(str(name))
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device: {name!r} requested but torch {torch.__version__} sees no CUDA GPU here; "
                              f"use auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device: {name!r} requested but only {torch.cuda.device_count()} GPU(s) are visible")
    return device


def device_of(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (CPU for a module without parameters)."""
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def bf16_autocast(device: torch.device, enabled: bool):
    """bfloat16 autocast on ``device`` (CPU or CUDA), or nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()
