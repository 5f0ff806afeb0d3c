"""Where models run: `device` in params.yaml (`auto`: the GPU when torch sees one, else the CPU).

Models are moved once, after loading; every batch is moved to the device of the model that reads it,
so the same code serves the embedded CPU profile and the paper profile on a GPU.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from .errors import ConfigError


def deterministic_cuda() -> None:
    """Reproducible CUDA kernels for a seeded run: deterministic algorithms where torch has them (a
    warning where it has none) and the cuBLAS workspace setting they need; call before the first kernel."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a torch device that exists here (a GPU is set up
    for deterministic kernels)."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            deterministic_cuda()
            return torch.device("cuda")
        return torch.device("cpu")
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
        deterministic_cuda()
    return device


def device_of(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (CPU for a module without parameters)."""
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def cpuinfo() -> str:
    """The text of ``/proc/cpuinfo`` (empty where there is none): the CPU's model and flags."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return ""


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16); without it bf16 autocast is
    slower than fp32 (measured: 75 s vs 51 s to encode the corpus on a 2-core Xeon without AMX)."""
    flags = cpuinfo()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def use_bf16(setting, device: torch.device, param: str = "bf16") -> bool:
    """Resolve a ``bf16`` parameter: true | false | auto (bf16 on a GPU that supports it and on CPUs
    with native bfloat16, fp32 elsewhere)."""
    if setting in (True, False):
        return setting
    if setting != "auto":
        raise ConfigError(f"{param}: expected true, false or auto, got {setting!r}")
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def bf16_autocast(device: torch.device, enabled):
    """bfloat16 autocast on ``device`` (CPU or CUDA), or nothing; ``enabled`` may be ``auto``."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16(enabled, device) else contextlib.nullcontext()
