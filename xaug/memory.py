"""Arrays outside the heap: large arrays with a lifetime of their own in anonymous memory maps.

The stages that allocate many arrays of a few MB keep freed heap memory in the process (``xaug.cli.MALLOC_ENV``),
which makes their arrays fast to allocate again but leaves holes: a large array freed in the middle of the heap stays
resident, and arrays of other sizes placed in and around it keep the heap's pages in use. An array in its own map goes
back to the system when it is freed, whatever the heap does."""
from __future__ import annotations

import mmap

import numpy as np


def mapped_array(shape: tuple[int, ...], dtype, fill=None) -> np.ndarray:
    """A writable array of ``shape`` and ``dtype`` in an anonymous memory map of its own (zeros, or ``fill``),
    unmapped once it and every view of it are freed."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    out = np.frombuffer(mmap.mmap(-1, max(count * dtype.itemsize, 1)), dtype=dtype, count=count).reshape(shape)
    if fill is not None and fill != 0:  # a fresh map is zeros
        out.fill(fill)
    return out

