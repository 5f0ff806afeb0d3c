"""The resumable chunk runner of the corpus jobs (query generation, passage translation): length-sorted
chunks, one atomic file per finished chunk in a work folder keyed by a fingerprint of every input, so
a killed run resumes and a changed input never reuses stale chunks."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from tqdm import tqdm

from .backend import open_pool
from .download import sha256_file, sha256_tree
from .io import atomic_path, read_json

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
    the encoder states file the generator reads (if any), the package's code and the settings: a
    changed input never reuses stale chunks."""
    inputs = [sha256_tree(model), read_json(Path(data) / "stats.json"), code_digest(),
              sha256_file(states) if states and Path(states).is_file() else None]
    return Path(root) / f"{lang}-{fingerprint(*inputs, *settings, lang)}"


def run_chunked(items: list[dict], lengths: list[int] | None, work_dir: Path, chunk_size: int,
                fn, desc: str, progress: bool = True, backend=None) -> tuple[list[dict], dict]:
    """Apply ``fn`` to length-sorted chunks of ``items`` (``chunk_size``, a positive integer, each), one
    atomic file per finished chunk.

    A re-run with the same ``work_dir`` skips finished chunks; ``fn`` gets the chunk index so it can
    seed itself per chunk, which makes a resumed run identical to an uninterrupted one. ``fn`` is the
    per-chunk function or a job whose ``load()`` returns it, run where ``backend`` (``xaug.backend``:
    local by default, or Ray actors) says; ``lengths`` None: the loaded function's ``lengths(items)``.
    Returns the rows in ``items`` order and stats (chunks done now / reused, seconds summed over all
    chunks, backend, workers, device).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict] = {}
    reused = seconds = 0.0
    with open_pool(fn, backend) as pool:
        if lengths is None:
            lengths = pool.lengths(items)
        order = sorted(range(len(items)), key=lambda i: (-lengths[i], i))
        chunks = [order[i : i + chunk_size] for i in range(0, len(order), chunk_size)]
        todo = []
        with tqdm(total=len(items), desc=desc, unit="passage", disable=not progress) as bar:
            for c, idx in enumerate(chunks):
                path = work_dir / f"chunk-{c:05d}.jsonl"
                if not path.is_file():
                    todo.append(c)
                    continue
                lines = path.read_text(encoding="utf-8").splitlines()
                meta, chunk_rows = json.loads(lines[0]), [json.loads(l) for l in lines[1:]]
                reused += 1
                seconds += meta["seconds"]
                rows.update(zip(idx, chunk_rows))
                bar.update(len(idx))
            for c, chunk_rows, chunk_seconds in pool.imap((c, [items[i] for i in chunks[c]]) for c in todo):
                meta = {"seconds": chunk_seconds}
                with atomic_path(work_dir / f"chunk-{c:05d}.jsonl") as tmp:
                    tmp.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [meta, *chunk_rows]) + "\n",
                                   encoding="utf-8")
                seconds += chunk_seconds
                rows.update(zip(chunks[c], chunk_rows))
                bar.update(len(chunks[c]))
        where = {"backend": pool.backend, "workers": pool.workers, "device": ", ".join(sorted(set(pool.devices)))}
    if reused:
        log.info("%s: reused %d of %d finished chunks from %s", desc, int(reused), len(chunks), work_dir)
    return [rows[i] for i in range(len(items))], {"chunks": len(chunks), "chunks_reused": int(reused),
                                                  "seconds": round(seconds, 2), **where}


def keep_only(work_dir: Path) -> None:
    """Once a language's output is written: keep its finished chunks (a re-run of the stage for another
    list of languages reuses them) and drop the language's folders of earlier inputs (other fingerprints)."""
    lang = work_dir.name.rsplit("-", 1)[0]
    for other in work_dir.parent.glob(f"{lang}-*"):
        if other != work_dir and other.is_dir() and other.name.rsplit("-", 1)[0] == lang:
            shutil.rmtree(other, ignore_errors=True)
