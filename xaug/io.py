"""Small I/O helpers: atomic writes (a killed stage never leaves a half-written output), JSONL, and read-only
memory maps of arrays whose resident pages a process can give back (``read_mapped``, ``release_mapped``)."""
from __future__ import annotations

import contextlib
import gc
import json
import mmap
import os
import shutil
import re
import socket
import tempfile
import weakref
from pathlib import Path
from typing import Iterable, Iterator

from .errors import ConfigError

_MAPS: list = []  # weak references to the live arrays of ``read_mapped``


def read_mapped(path):
    """A ``.npy`` file as a read-only memory map (``np.load(mmap_mode="r")``), known to ``release_mapped``."""
    import numpy as np  # here: a stage imports this module (through ``xaug.cli``) before it sets BLAS threads

    array = np.load(path, mmap_mode="r")
    _MAPS.append(weakref.ref(array))
    return array


def release_mapped() -> None:
    """Drop this process's resident pages of every live map of ``read_mapped`` (``madvise(MADV_DONTNEED)``); a page is
    read again from the page cache when next touched. A forked worker that read a method's items once (every set of
    its items sums them) would otherwise keep them in its resident set, and in the stage's summed PSS, through all its
    later tasks (the scale benchmark's P = 100k: 0.4 GB of real questions, 0.3 GB of their question ids)."""
    alive = []
    for ref in _MAPS:
        array = ref()
        if array is None:
            continue
        alive.append(ref)
        handle = getattr(array, "_mmap", None)
        if handle is not None and not handle.closed:
            handle.madvise(mmap.MADV_DONTNEED)
    _MAPS[:] = alive


def _owner() -> str:
    """This process, as the temporary files beside an output name their writer: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_SWEPT: set[Path] = set()


def _sweep_once(folder: Path) -> None:
    """``remove_stale(folder)`` the first time this process writes into ``folder`` (a chunk folder holds
    thousands of files: once, not once per file)."""
    key = folder.resolve()
    if key not in _SWEPT:
        _SWEPT.add(key)
        remove_stale(folder)


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporary files and folders in ``folder`` (``atomic_path`` / ``atomic_dir``) whose writer on
    this host is gone: a stage killed outright (SIGKILL, out of memory) cannot clean up after itself. Writers
    on other hosts (a shared file system) and live ones are left alone; a previous output moved aside by a
    writer killed before the new one took its place is put back. Returns what was removed or restored."""
    host = re.escape(socket.gethostname())
    stale = re.compile(rf"^\.(?P<name>.+)\.(?:{host}-(?P<pid>\d+)\.[^.]*\.part|old-{host}-(?P<old>\d+))$")
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        m = stale.match(entry.name)
        if m is None or _alive(int(m.group("pid") or m.group("old"))):
            continue
        target = folder / m.group("name")
        if m.group("old") and not os.path.lexists(target):  # killed between moving it aside and the new one in
            os.replace(entry, target)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_owner()}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; it replaces ``path`` as a whole only if the
    block succeeds, so a failed stage leaves its previous outputs, never a mix of old and new files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_owner()}.", suffix=".part", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
        old = None
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            old = path.with_name(f".{path.name}.old-{_owner()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a block builds many acyclic objects (parsed JSON, rows of
    dicts, runs): each full collection walks every live object, so the collections that a growing structure
    triggers make building it superlinear (prepare and evaluate in the scale benchmark, docs/testing.md).
    Reference counting still frees what the block drops; a cycle made meanwhile waits for the next collection.
    A context manager, or a decorator of a function that builds them."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike):
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: malformed JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: malformed JSON line ({exc.msg})") from None
    return rows

