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


def run_stage(main) -> None:
    """Run ``main()``; bad input exits 2 with a single ``error:`` line, nothing half-written."""
    started = time.perf_counter()
    try:
        main()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.getLogger("xaug").info("done in %.1fs", time.perf_counter() - started)
