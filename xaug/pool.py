"""A function over a list of tasks in forked worker processes, results in task order.

Forked workers inherit the parent's memory: what a task needs beyond its own small tuple (large
arrays) is set in a module-level context before the call, not pickled with every task."""
from __future__ import annotations

import contextlib
import functools
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

from tqdm import tqdm

from .cli import release_memory


def forked_map(func, tasks: list, workers: int, desc: str, unit: str = "task") -> list:
    """``[func(t) for t in tasks]`` in ``workers`` forked processes (1 = in this process), with a progress bar.
    The parent's free heap pages go back to the system first (``release_memory``): a forked worker inherits
    every resident page of its parent, and what the parent had freed but kept (a stage's scoring before the
    fork, the scaling stage's baseline scoring) would count in each worker's memory. Each worker gives back
    its own after every task (``_then_release``)."""
    if workers <= 1:
        return [func(t) for t in tqdm(tasks, desc=desc, unit=unit, mininterval=5)]
    release_memory()
    global _PEAK_LOCK
    context = multiprocessing.get_context("fork")
    _PEAK_LOCK = context.Lock()  # the workers inherit it (``one_worker_at_a_time``)
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_one_thread) as pool:
            return list(tqdm(pool.map(functools.partial(_then_release, func), tasks), total=len(tasks), desc=desc,
                             unit=unit, mininterval=5))
    finally:
        _PEAK_LOCK = None


_PEAK_LOCK = None  # forked_map's lock while its workers run


@contextlib.contextmanager
def one_worker_at_a_time():
    """The phase of a task whose memory peaks, run by one of ``forked_map``'s workers at a time, its free heap
    given back to the system when it ends (``release_memory``). The scaling and tune stages' sets of items: each
    candidate list's top K of every query (``xaug.sweep.found_tops``) until each query block's union is built
    (``block_candidates``) holds about twice what scoring the blocks does, and two workers in that phase at once
    were the stages' peak (``benchmarks/scale.py``). The phase is a small part of a set's time, so the other
    worker scores meanwhile; results do not depend on the order. Nothing is held outside ``forked_map``'s
    workers (``workers`` 1: no lock)."""
    if _PEAK_LOCK is None:
        yield
        return
    with _PEAK_LOCK:
        try:
            yield
        finally:
            release_memory()


def _then_release(func, task):
    """``func(task)`` in a worker, then its free heap pages back to the system: under ``MALLOC_ENV`` a process keeps
    what it frees (``xaug.cli``), so a worker would otherwise hold the largest task's high-water mark through every
    later task (the scaling stage's sweeps: one set of items a task, a minute or more each at P = 100k), and the
    workers together the sum of their largest tasks, whatever runs beside them."""
    try:
        return func(task)
    finally:
        release_memory()


def _one_thread() -> None:
    """A forked worker runs faiss on one OpenMP thread: each worker is one of ``workers`` processes, and a
    parent that ran faiss's OpenMP pool before forking leaves the child a pool without threads (its first
    parallel region would wait for them forever)."""
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(1)
