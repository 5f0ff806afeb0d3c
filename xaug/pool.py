"""A function over a list of tasks in forked worker processes, results in task order.

Forked workers inherit the parent's memory: what a task needs beyond its own small tuple (large
arrays) is set in a module-level context before the call, not pickled with every task."""
from __future__ import annotations

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
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_one_thread) as pool:
        return list(tqdm(pool.map(functools.partial(_then_release, func), tasks), total=len(tasks), desc=desc,
                         unit=unit, mininterval=5))


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
