"""The stage harness: what every stage script shares (``--params``, params.yaml, logging, threads,
one-line errors). A stage script is wiring: ``arguments(ap)`` adds its options, ``main(args, p, log)``
calls the package, and ``run(main, __doc__, arguments, threads="xqg.threads")`` does the rest."""
from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import signal
import sys
import threading
import time

from .errors import ConfigError
from .io import release_mapped
from .params import check_int, load_params


def setup(threads: int | None = None) -> logging.Logger:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # the hub client logs every retry; a failed load is reported once, as a one-line error
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    if threads:
        import torch  # heavy (seconds): only the stages that set torch threads load it here

        torch.set_num_threads(int(threads))
    return logging.getLogger("xaug")


# glibc malloc settings for stages that allocate and free many arrays of a few MB each: keep freed
# memory in the heap instead of unmapping it, so that the next array does not page-fault afresh (the
# scaling sweep spent as much time in the kernel as in numpy without them; 57 s -> 7 s of system time).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "2000000000", "MALLOC_TRIM_THRESHOLD_": "4000000000",
              "MALLOC_TOP_PAD_": str(256 << 20)}


def malloc_settings_on() -> bool:
    """Whether this process runs with ``MALLOC_ENV`` (``reexec_with_malloc_settings``)."""
    return os.environ.get("XAUG_MALLOC_SET") == "1"


def release_memory() -> None:
    """Return the heap's free pages to the system (glibc ``malloc_trim``): under ``MALLOC_ENV`` a process keeps
    up to its trim threshold (4 GB) of freed memory, which a stage's parent should give back once a large
    phase is over (the scaling stage between corpus settings); and the pages it read of the items' memory
    maps (``xaug.io.release_mapped``). The heap's part: nothing elsewhere than glibc."""
    release_mapped()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reexec_with_malloc_settings() -> None:
    """Restart this script with ``MALLOC_ENV`` set (glibc reads it only at process start); call it first."""
    if not malloc_settings_on():
        os.environ.update(MALLOC_ENV, XAUG_MALLOC_SET="1")
        os.execv(sys.executable, [sys.executable, *sys.argv])


BLAS_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_blas_thread() -> None:
    """One BLAS thread per process unless the environment says otherwise (for stages that run their own worker
    processes); BLAS reads it when numpy loads, so call it before importing numpy."""
    for var in BLAS_THREAD_ENV:
        os.environ.setdefault(var, "1")


class _Stopped(BaseException):
    """SIGTERM, raised where the stage is, so that its ``finally`` blocks (atomic outputs) run."""


def _stop(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise _Stopped


def run_stage(main) -> None:
    """Run ``main()``; bad input (or a full disk, a missing file) exits 2 with a single ``error:`` line;
    outputs are written atomically, so nothing is half-written. SIGTERM (a scheduler's or DVC's stop) unwinds
    like Ctrl-C, so the stage's temporary outputs are removed on the way out (exit 143)."""
    started = time.perf_counter()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if main_thread else None
    try:
        main()
    except _Stopped:
        print("error: stopped by SIGTERM (no output was replaced)", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.ENOENT):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc} (no output was replaced)", file=sys.stderr)
        sys.exit(2)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    logging.getLogger("xaug").info("done in %.1fs", time.perf_counter() - started)


def run(main, doc: str | None, arguments=None, *, threads: str | None = None, params: bool = True) -> None:
    """The stage harness: parse ``--params`` and the stage's own ``arguments(ap)``, load params.yaml,
    set up logging and the torch threads of the ``threads`` parameter (e.g. ``xqg.threads``), then
    ``main(args, params, log)`` under ``run_stage``'s one-line errors (``params=False``: a stage that
    reads no parameter gets ``None``)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if params:
        ap.add_argument("--params", default="params.yaml", help="the parameters file (default params.yaml)")
    if arguments is not None:
        arguments(ap)
    args = ap.parse_args()

    def body():
        p = load_params(args.params) if params else None
        n_threads = p.get_path(threads, None) if threads else None
        if n_threads is not None:
            check_int(n_threads, threads)
        main(args, p, setup(n_threads))

    run_stage(body)
