"""The resumable chunk runner of the corpus jobs (query generation, passage translation): length-sorted
chunks, each finished chunk appended as one line to a log (``chunks.jsonl``) in a work folder keyed by
a fingerprint of every input, so a killed run resumes, a changed input never reuses stale chunks, and a
million passages are one file, not a file per chunk."""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from tqdm import tqdm

from .backend import open_pool
from .download import sha256_tree
from .io import read_json

log = logging.getLogger(__name__)


def fingerprint(*parts) -> str:
    """A short digest of everything that determines a generation run (model, inputs, settings)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode() + b"\0")
    return h.hexdigest()[:16]


def code_digest() -> str:
    """A digest of the xaug package's source: chunks written by other code are not reused."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def work_folder(root, lang: str, model, data, *settings, states=None) -> Path:
    """A language's scratch folder for resumable chunks, keyed by the model's files, the prepared data,
    the encoder states the generator reads (a folder of shards, if any), the package's code and the
    settings: a changed input never reuses stale chunks."""
    inputs = [sha256_tree(model), read_json(Path(data) / "stats.json"), code_digest(),
              _states_digest(*_written(states)) if states and (Path(states) / "index.json").is_file() else None]
    return Path(root) / f"{lang}-{fingerprint(*inputs, *settings, lang)}"


def _written(folder) -> tuple[str, int, int]:
    """The folder and its index's inode and mtime: a folder written again (replaced whole) is another key."""
    index = os.stat(Path(folder) / "index.json")
    return str(Path(folder).resolve()), index.st_ino, index.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _states_digest(folder: str, inode: int, mtime_ns: int) -> str:
    """The encoder states' digest, read once per written folder (a stage keys every language's folder with it)."""
    return sha256_tree(folder)


CHUNK_LOG = "chunks.jsonl"  # one line per finished chunk: {"chunk", "seconds", "rows"}


class ChunkLog:
    """The finished chunks of a work folder: one JSON line each, appended and flushed to disk as a chunk
    finishes. A line cut short by a kill is dropped when the log is opened again (its chunk runs again)."""

    def __init__(self, work_dir: Path):
        self.path = Path(work_dir) / CHUNK_LOG

    def read(self) -> dict[int, tuple[float, list[dict]]]:
        """Chunk index -> (seconds, rows) of the complete lines; the file is cut back to its last complete
        line, so what is appended next starts on a line of its own."""
        done: dict[int, tuple[float, list[dict]]] = {}
        if not self.path.is_file():
            return done
        good = 0
        with open(self.path, "rb") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                    done[int(entry["chunk"])] = (float(entry["seconds"]), entry["rows"])
                except (ValueError, KeyError, TypeError):
                    break  # a line cut short (or anything after it) is not trusted
                if not line.endswith(b"\n"):
                    done.pop(int(entry["chunk"]))
                    break
                good += len(line)
        if good < self.path.stat().st_size:
            log.warning("%s: dropped an incomplete chunk line (a killed run); it runs again", self.path)
            os.truncate(self.path, good)
        return done

    def __enter__(self) -> "ChunkLog":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a", encoding="utf-8")
        return self

    def append(self, chunk: int, seconds: float, rows: list[dict]) -> None:
        self.fh.write(json.dumps({"chunk": chunk, "seconds": seconds, "rows": rows}, ensure_ascii=False) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def __exit__(self, *exc) -> None:
        self.fh.close()


def run_chunked(items: list[dict], lengths: list[int] | None, work_dir: Path, chunk_size: int,
                fn, desc: str, progress: bool = True, backend=None) -> tuple[list[dict], dict]:
    """Apply ``fn`` to length-sorted chunks of ``items`` (``chunk_size``, a positive integer, each), each
    finished chunk appended to the work folder's ``ChunkLog``.

    A re-run with the same ``work_dir`` skips finished chunks; ``fn`` gets the chunk index so it can
    seed itself per chunk, which makes a resumed run identical to an uninterrupted one. ``fn`` is the
    per-chunk function or a job whose ``load()`` returns it, run where ``backend`` (``xaug.backend``:
    local by default, or Ray actors) says; ``lengths`` None: the loaded function's ``lengths(items)``.
    Returns the rows in ``items`` order and stats (chunks done now / reused, seconds summed over all
    chunks, backend, workers, device).
    """
    chunk_log = ChunkLog(work_dir)
    finished = chunk_log.read()
    rows: dict[int, dict] = {}
    reused = seconds = 0.0
    with open_pool(fn, backend) as pool, chunk_log:
        if lengths is None:
            lengths = pool.lengths(items)
        order = sorted(range(len(items)), key=lambda i: (-lengths[i], i))
        chunks = [order[i : i + chunk_size] for i in range(0, len(order), chunk_size)]
        todo = []
        with tqdm(total=len(items), desc=desc, unit="passage", disable=not progress) as bar:
            for c, idx in enumerate(chunks):
                if c not in finished:
                    todo.append(c)
                    continue
                chunk_seconds, chunk_rows = finished[c]
                reused += 1
                seconds += chunk_seconds
                rows.update(zip(idx, chunk_rows))
                bar.update(len(idx))
            for c, chunk_rows, chunk_seconds in pool.imap((c, [items[i] for i in chunks[c]]) for c in todo):
                chunk_log.append(c, chunk_seconds, chunk_rows)
                seconds += chunk_seconds
                rows.update(zip(chunks[c], chunk_rows))
                bar.update(len(chunks[c]))
        where = {"backend": pool.backend, "workers": pool.workers, "device": ", ".join(sorted(set(pool.devices)))}
    if reused:
        log.info("%s: reused %d of %d finished chunks from %s", desc, int(reused), len(chunks), chunk_log.path)
    return [rows[i] for i in range(len(items))], {"chunks": len(chunks), "chunks_reused": int(reused),
                                                  "seconds": round(seconds, 2), **where}


def keep_only(work_dir: Path) -> None:
    """Once a language's output is written: keep its finished chunks (a re-run of the stage for another
    list of languages reuses them) and drop the language's folders of earlier inputs (other fingerprints)."""
    lang = work_dir.name.rsplit("-", 1)[0]
    for other in work_dir.parent.glob(f"{lang}-*"):
        if other != work_dir and other.is_dir() and other.name.rsplit("-", 1)[0] == lang:
            shutil.rmtree(other, ignore_errors=True)
