"""Corpus jobs: what a worker needs to run one language's generation or translation (picklable: paths and
settings, no model), loaded where the chunks run (``xaug.backend``: here or on a Ray actor).

``Job.load()`` is the one loading recipe: set the worker's torch threads, then, in the driver's working
directory, load the model (``load_model``), move it to the device, let the job prepare it, read the
shared encoder states, and return the per-chunk function (``per_chunk``). ``xaug.xqg.GenerationJob`` and
``xaug.translation.TranslationJob`` fill in those steps.
"""
from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from .device import resolve_device
from .formats import load_states


@contextlib.contextmanager
def in_folder(root: str | None):
    """Run a job's loading in the driver's working directory (a model folder may name others relative
    to it), when this machine has that folder."""
    if not root or not os.path.isdir(root) or os.path.abspath(root) == os.getcwd():
        yield
        return
    before = os.getcwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(before)


@dataclass
class Job(ABC):
    """One language's corpus job: ``model`` (a folder a training stage wrote), target ``lang``, its
    ``settings``, the ``device`` (a ``device`` parameter value, resolved where it runs), the encoder
    ``states`` (a safetensors file, optional), torch ``threads`` of the worker (None: leave them) and
    ``root``, the driver's working directory, against which relative paths are resolved."""

    model: str
    lang: str
    settings: object
    device: str = "auto"
    states: str | None = None
    threads: int | None = None
    root: str | None = None

    def load(self):
        """The per-chunk function of this job, with its model loaded on its device."""
        if self.threads:
            torch.set_num_threads(int(self.threads))
        with in_folder(self.root):
            model = self.load_model().to(resolve_device(self.device))
            self.prepare(model)
            states = load_states(self.states) if self.states else None
        return self.per_chunk(model, states)

    @abstractmethod
    def load_model(self):
        """The job's model, loaded from ``self.model`` (on the CPU)."""

    def prepare(self, model) -> None:
        """Anything the job sets on its loaded model before the chunks run (nothing by default)."""

    @abstractmethod
    def per_chunk(self, model, states: dict | None):
        """The per-chunk function ``fn(chunk, index) -> rows`` over the loaded model and ``states`` (by key)."""
