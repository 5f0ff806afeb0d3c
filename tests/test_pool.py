"""Forked workers (``xaug.pool.forked_map``): results in task order, and a worker's freed memory given back after
each task under the stages' malloc settings (``xaug.cli.MALLOC_ENV``), which otherwise keep it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xaug.cli import MALLOC_ENV
from xaug.pool import forked_map

REPO = Path(__file__).resolve().parents[1]

# Each task reports its worker's private memory as it starts, then touches and frees 300 MB in arrays of 1 MB
# (heap allocations under MALLOC_ENV). Four tasks on two workers: at least two start in a worker that ran one.
_SCRIPT = """
import json, sys
import numpy as np
from xaug.pool import forked_map

def private_mb():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1]) / 1024

def task(i):
    start = private_mb()
    arrays = [np.ones(1 << 17) for _ in range(300)]  # 300 x 1 MB, every page touched
    del arrays
    return start

print(json.dumps(forked_map(task, list(range(4)), 2, "tasks")))
"""


def _starts() -> list[float]:
    env = {**os.environ, **MALLOC_ENV, "XAUG_MALLOC_SET": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_forked_map_keeps_task_order_in_and_out_of_workers():
    tasks = list(range(7))
    assert forked_map(abs, [-t for t in tasks], 2, "tasks") == tasks
    assert forked_map(abs, [-t for t in tasks], 1, "tasks") == tasks


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists() or sys.platform != "linux",
                    reason="reads a worker's memory from Linux's /proc and frees it with glibc's malloc_trim")
def test_a_worker_gives_back_what_a_task_freed_before_the_next_one():
    starts = _starts()
    # every task starts with well under the 300 MB an earlier task in its worker touched and freed (without the
    # release, the later tasks start at about 300 MB)
    assert max(starts) < 150, starts


def test_the_release_runs_after_a_task_that_raises_too(monkeypatch):
    import xaug.pool as pool

    calls = []
    monkeypatch.setattr(pool, "release_memory", lambda: calls.append(1))
    assert pool._then_release(abs, -3) == 3 and calls == [1]
    with pytest.raises(ZeroDivisionError):
        pool._then_release(lambda t: 1 / t, 0)
    assert calls == [1, 1]


def _mapped_rss_kb(path) -> int:
    """This process's resident kB of its mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            inside = len(fields) >= 6 and fields[-1] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_release_memory_drops_the_pages_a_process_read_of_the_items_maps(tmp_path):
    """A worker that summed a method's memory-mapped items (``xaug.io.read_mapped``) gives their pages back with
    its heap's (``release_memory``): they leave its resident set, and read again from the file they are the same."""
    import numpy as np

    from xaug.cli import release_memory
    from xaug.io import read_mapped

    path = (tmp_path / "items.npy").resolve()
    np.save(path, np.arange(1 << 20, dtype=np.float32))
    array = read_mapped(path)
    total = float(array.sum(dtype=np.float64))
    assert _mapped_rss_kb(path) >= 3000  # 4 MB read
    release_memory()
    assert _mapped_rss_kb(path) < 100
    assert float(array.sum(dtype=np.float64)) == total


def test_importing_the_stages_cli_leaves_numpy_unloaded():
    """Stages set one BLAS thread (``one_blas_thread``) after importing ``xaug.cli`` and before numpy loads: the
    module and what it imports must not load numpy."""
    out = subprocess.run([sys.executable, "-c", "import sys, xaug.cli; print('numpy' in sys.modules)"], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
