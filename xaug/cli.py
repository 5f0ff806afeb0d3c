"""What every stage script shares: logging, thread settings and one-line errors."""
from __future__ import annotations

import logging
import os
import sys
import time

from .errors import ConfigError


def setup(threads: int | None = None) -> logging.Logger:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # the hub client logs every retry; a failed load is reported once, as a one-line error
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    return logging.getLogger("xaug")


# glibc malloc settings for stages that allocate and free many arrays of a few MB each: keep freed
# memory in the heap instead of unmapping it, so that the next array does not page-fault afresh (the
# scaling sweep spent as much time in the kernel as in numpy without them; 57 s -> 7 s of system time).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "2000000000", "MALLOC_TRIM_THRESHOLD_": "4000000000",
              "MALLOC_TOP_PAD_": str(256 << 20)}


def reexec_with_malloc_settings() -> None:
    """Restart this script with ``MALLOC_ENV`` set (glibc reads it only at process start); call it first."""
    if os.environ.get("XAUG_MALLOC_SET") != "1":
        os.environ.update(MALLOC_ENV, XAUG_MALLOC_SET="1")
        os.execv(sys.executable, [sys.executable, *sys.argv])


def run_stage(main) -> None:
    """Run ``main()``; bad input exits 2 with a single ``error:`` line, nothing half-written."""
    started = time.perf_counter()
    try:
        main()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.getLogger("xaug").info("done in %.1fs", time.perf_counter() - started)
