"""Where per-chunk work runs: in this process (``local``) or on Ray actors (``ray``), whatever the work is.

The chunked runners (``xaug.chunks.run_chunked``: query generation, passage translation, keeping a log
of finished chunks; ``xaug.encoding.encode_with``: encode and encode_items, writing each chunk's vectors
into a memory-mapped output) split a corpus into length-sorted chunks; this module only decides who
computes a chunk. A *job* is a picklable recipe (paths and settings, no loaded model) whose ``load()``
returns the per-chunk function ``fn(chunk, index) -> rows``; that function may also offer
``lengths(items)`` (the sort key of the chunking) and ``device`` (a torch device). A job may name a
``device`` (a value of the ``device`` parameter): on Ray, ``cuda``/``cuda:N`` (or ``auto`` on a cluster
with GPUs) reserves one GPU per actor. A plain function is a job of its own (local only).

- ``local``: the job is loaded once here and the chunks run one after the other.
- ``ray``: ``<group>.ray_workers`` actors each load the job once; chunks go to whichever actor is free
  and come back to this process, which writes them. An actor that dies (its process killed, its
  node lost) is restarted up to ``ACTOR_RESTARTS`` times and reloads the job; the chunk it was
  computing is run again (up to ``TASK_RETRIES`` times), so a lost worker costs its chunk only. Each
  chunk seeds itself by its index, so the rows do not depend on the backend, the number of workers or
  the order chunks finish in.
  ``<group>.ray_address``: '' starts a Ray instance on this machine; ``auto`` (run on a node of a
  cluster started with ``ray start``), ``host:6379`` (its head) or ``ray://head:10001`` (Ray Client,
  which needs ``pip install 'ray[client]==2.60.0'``) joins an existing cluster. Actors take one CPU
  each (one GPU on a GPU device); no more actors start than the cluster has of those. The actors read the
  job's files (model, encoder states, corpus) by the paths the driver gives them, resolved against
  the driver's working directory: on a cluster of several machines they must see the repository at
  the same path (a shared file system) and have the requirements installed; ``xaug`` itself is
  shipped with the job.

``ray`` is imported only by the ``ray`` backend.
"""
from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass, is_dataclass, replace
from typing import Iterable, Iterator

import torch

from .device import cpuinfo
from .errors import ConfigError
from .params import check_int

log = logging.getLogger(__name__)
BACKENDS = ("local", "ray")
ACTOR_RESTARTS = 3  # a Ray actor that dies is restarted this many times (then the run stops)
TASK_RETRIES = 3    # a chunk whose actor died is re-run this many times
LENGTH_BLOCK = 8192  # items per task of the length pass (the chunking's sort key), spread over the actors


@dataclass
class BackendSettings:
    """``<group>.backend``, ``<group>.ray_address`` and ``<group>.ray_workers`` of params.yaml."""

    backend: str = "local"
    ray_address: str = ""
    ray_workers: int = 2
    group: str = "xqg"  # the params group, for error messages

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ConfigError(f"{self.group}.backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        check_int(self.ray_workers, f"{self.group}.ray_workers")
        if self.ray_address is None:
            self.ray_address = ""
        if not isinstance(self.ray_address, str):
            raise ConfigError(f"{self.group}.ray_address: expected '' (a local Ray instance), auto or "
                              f"ray://host:port, got {self.ray_address!r}")

    @classmethod
    def from_params(cls, cfg: dict, group: str) -> "BackendSettings":
        return cls(backend=cfg.get("backend", "local"), ray_address=cfg.get("ray_address", "") or "",
                   ray_workers=cfg.get("ray_workers", 2), group=group)


def device_name(device=None) -> str:
    """What a device is called: the GPU's name (``torch.cuda.get_device_name``) or the CPU's model."""
    if device is not None and str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    for line in cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def _load(job):
    return job.load() if hasattr(job, "load") else job


def _run(fn, index: int, chunk: list[dict]) -> tuple[int, list[dict], float]:
    started = time.perf_counter()
    rows = fn(chunk, index)
    return index, rows, time.perf_counter() - started


class LocalPool:
    """The job loaded once in this process; chunks run in the order given."""

    workers = 1

    def __init__(self, job):
        self.fn = _load(job)
        self.devices = [device_name(getattr(self.fn, "device", None))]

    def lengths(self, items: list[dict]) -> list[int]:
        """The sort key of every item, ``LENGTH_BLOCK`` items at a time (as the Ray actors take them): a tokenizer's
        output for the whole corpus at once is gigabytes at 100k passages."""
        return [n for i in range(0, len(items), LENGTH_BLOCK) for n in self.fn.lengths(items[i : i + LENGTH_BLOCK])]

    def imap(self, tasks: Iterable[tuple[int, list[dict]]]) -> Iterator[tuple[int, list[dict], float]]:
        for index, chunk in tasks:
            yield _run(self.fn, index, chunk)

    def close(self) -> None:
        self.fn = None


class ChunkWorker:
    """A Ray actor's state: the job, loaded once (``setup``, or the first chunk of an actor Ray restarted),
    then applied to chunk after chunk."""

    def __init__(self, job):
        self.job, self.fn = job, None

    def _loaded(self):
        if self.fn is None:
            self.fn = _load(self.job)
        return self.fn

    def setup(self) -> str:
        return device_name(getattr(self._loaded(), "device", None))

    def lengths(self, items: list[dict]) -> list[int]:
        return list(self._loaded().lengths(items))

    def run(self, index: int, chunk: list[dict]) -> tuple[int, list[dict], float]:
        return _run(self._loaded(), index, chunk)


def _unwrap(exc: BaseException) -> BaseException:
    """A bad-input error raised on a worker, as itself (a one-line error), not Ray's traceback dump."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, ConfigError) else exc


class RayPool:
    """``settings.ray_workers`` actors, each holding the loaded job."""

    def __init__(self, job, settings: BackendSettings):
        import ray  # ray: optional, only this backend needs it
        from ray.util import ActorPool

        self.ray, self.started = ray, False
        if not ray.is_initialized():
            self._connect(settings)
        spec = str(getattr(job, "device", "cpu") or "cpu")
        gpus = ray.cluster_resources().get("GPU", 0)
        num_gpus = 1 if spec.startswith("cuda") or (spec in ("", "auto") and gpus >= 1) else 0
        if num_gpus and is_dataclass(job) and hasattr(job, "device"):
            job = replace(job, device="cuda")  # the actor sees only the GPU Ray gave it
        unit = "GPU" if num_gpus else "CPU"
        have = int(ray.cluster_resources().get(unit, 0))
        if have < 1:
            self.close()
            raise ConfigError(f"device: {spec!r} needs a {unit} per Ray actor, but the cluster has none")
        workers = min(settings.ray_workers, have)  # more actors than the cluster holds would wait forever
        if workers < settings.ray_workers:
            log.warning("%s.ray_workers = %d, but the Ray cluster has %d %s(s): %d actor(s), one %s each",
                        settings.group, settings.ray_workers, have, unit, workers, unit)
        actor = ray.remote(num_cpus=1, num_gpus=num_gpus, max_restarts=ACTOR_RESTARTS,
                           max_task_retries=TASK_RETRIES)(ChunkWorker)
        self.actors = [actor.remote(job) for _ in range(workers)]
        try:
            self.devices = ray.get([a.setup.remote() for a in self.actors])
        except ray.exceptions.RayError as exc:
            self.close()
            raise _unwrap(exc) from None
        self.workers = len(self.actors)
        self.pool = ActorPool(self.actors)
        log.info("ray: %d actor(s) on %s", self.workers, ", ".join(sorted(set(self.devices))))

    def _connect(self, settings: BackendSettings) -> None:
        ray = self.ray
        kwargs = dict(include_dashboard=False, logging_level=logging.WARNING,
                      runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}})
        if settings.ray_address:  # an existing cluster: ship this checkout's xaug (this module's folder) with the job
            kwargs["runtime_env"]["py_modules"] = [os.path.dirname(os.path.abspath(__file__))]
            kwargs.pop("include_dashboard")
            try:
                ray.init(address=settings.ray_address, **kwargs)
            except (ValueError, ConnectionError, TimeoutError) as exc:  # no cluster there, no ray[client], ...
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ConfigError(f"{settings.group}.ray_address: cannot join the Ray cluster at "
                                  f"{settings.ray_address!r}: {first}") from None
        else:
            ray.init(address="local", num_cpus=max(os.cpu_count() or 1, settings.ray_workers), **kwargs)
        self.started = True

    def lengths(self, items: list[dict]) -> list[int]:
        """The sort key of every item, ``LENGTH_BLOCK`` items per task over all the actors, in order."""
        blocks = [items[i : i + LENGTH_BLOCK] for i in range(0, len(items), LENGTH_BLOCK)]
        try:
            return [n for part in self.pool.map(lambda actor, block: actor.lengths.remote(block), blocks)
                    for n in part]
        except self.ray.exceptions.RayError as exc:
            raise _unwrap(exc) from None

    def imap(self, tasks: Iterable[tuple[int, list[dict]]]) -> Iterator[tuple[int, list[dict], float]]:
        tasks = list(tasks)
        if not tasks:
            return
        try:
            yield from self.pool.map_unordered(lambda actor, task: actor.run.remote(*task), tasks)
        except self.ray.exceptions.RayError as exc:
            raise _unwrap(exc) from None

    def close(self) -> None:
        for actor in getattr(self, "actors", []):
            self.ray.kill(actor)
        self.actors = []
        if self.started:
            self.ray.shutdown()
            self.started = False


class open_pool:
    """``with open_pool(job, settings) as pool``: ``pool.lengths(items)``, ``pool.imap((index, chunk), ...)``
    yielding ``(index, rows, seconds)`` as chunks finish, ``pool.workers`` and ``pool.devices``."""

    def __init__(self, job, settings: BackendSettings | None = None):
        self.job, self.settings = job, settings or BackendSettings()

    def __enter__(self):
        if self.settings.backend == "local":
            self.pool = LocalPool(self.job)
        else:
            if not hasattr(self.job, "load"):
                raise ConfigError(f"{self.settings.group}.backend: ray needs a job with load(), not a function")
            self.pool = RayPool(self.job, self.settings)
        self.pool.backend = self.settings.backend
        return self.pool

    def __exit__(self, *exc):
        self.pool.close()
        return False
