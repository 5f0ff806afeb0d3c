"""The pipeline's on-disk formats, each written and read here only.

- embeddings: ``<prefix>.npy`` (float32 rows, written memory-mapped as they are computed) +
  ``<prefix>.ids.txt`` (one id per line, row order);
- generated texts: ``<folder>/<lang>.jsonl`` (``{"id": passage id, <field>: [texts]}``, field
  ``queries`` for generated and real questions, ``texts`` for translations and parallel contexts; real
  questions also ``sources``, the question id of each text) beside ``<lang>.stats.json`` (what was
  generated and what it cost);
- encoder states (warm generators): a folder of safetensors shards, ``shard-<n>.safetensors`` (``states``:
  float16, its sources concatenated; ``offsets``), each about ``STATES_SHARD_BYTES``, and ``index.json``
  (``shards``: each shard's file and source keys); written as the encoder produces them, read lazily, a
  source's rows at a time;
- generated items: a folder ``<folder>/<lang>`` of memory-mappable arrays, ``items.npy`` (passages x width
  x dim, float16, zero padded; written as the encoder produces them), ``counts.npy`` (valid items per
  passage, corpus order), and for real questions ``sources.npy`` (passages x width, the question id of
  each item, '' for padding);
- left-out passages: ``data/augmented/<method>.leave_out.npz`` with ``questions``, ``passages`` (ids) and
  ``vectors``: a passage fused without one question's items (``xaug.leave_out``; empty for other methods);
- TREC qrels: ``qid 0 docid relevance`` per line (prepare's ``qrels.eval.trec``, ``qrels.tune.trec``);
- TREC runs: ``qid Q0 docid rank score tag`` per line (evaluate's run files);
- ``dataset.json`` of a prepared folder: ``{"corpus_language", "languages"}``;
- ``source.json`` of the downloaded archive's folder: where the archive came from (``source``, ``kind``,
  ``sha256``), its file name (``archive``), splits and languages;
- tables (CSV, one header row, ``%.6g`` floats, empty cells for missing values): the scaling stage's
  ``plots/scaling.csv``, ``plots/contrasts.csv`` and ``plots/scaling/*.csv``, evaluate's per-query measures,
  the learning curves ``plots/training/<model>.csv`` of the warm generators;
- the kind file of a trained generator or translator folder (``xqg.json``, ``translator.json``): which
  model it holds and how to load it.

Files that belong together are written together: every temporary file is complete before the first
is renamed into place, so a failure (a full disk) leaves the previous outputs, not a mix.
"""
from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError
from .io import atomic_dir, atomic_path, read_json, read_jsonl, read_mapped, write_json
from .languages import is_supported

TEXT_FIELDS = ("queries", "texts")
GENERATOR_FILE = "xqg.json"     # a train_xqg folder's kind file
TRANSLATOR_FILE = "translator.json"  # a train_translator folder's kind file
SOURCE_FILE = "source.json"     # the download stage's provenance: written by write_source, read by read_source
DATASET_FILE = "dataset.json"   # {"corpus_language", "languages"}: written by write_dataset, read by read_dataset
TRAINING_FILE = "training.json"  # how a trained model folder's model was trained: write_training, read_training


@contextlib.contextmanager
def atomic_paths(*paths) -> Iterator[list[Path]]:
    """Temporary paths for several files; all replace their targets only once every one is written."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_path(p)) for p in paths]


def _write_ids(tmp: Path, ids) -> None:
    tmp.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")


def write_ids(path, ids) -> None:
    with atomic_path(path) as tmp:
        _write_ids(tmp, ids)


def read_ids(path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: ids file not found")
    return path.read_text(encoding="utf-8").split("\n")[:-1]


@contextlib.contextmanager
def embeddings_writer(prefix, ids: Sequence[str], dim: int) -> Iterator[np.ndarray]:
    """A float32 ``(len(ids), dim)`` array memory-mapped onto ``<prefix>.npy`` (zeros until written); the
    file and ``<prefix>.ids.txt`` replace their targets together once the block succeeds."""
    with atomic_paths(f"{prefix}.npy", f"{prefix}.ids.txt") as (npy, txt):
        if len(ids) and dim:
            out = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(len(ids), dim))
            yield out
            out.flush()
            del out
        else:  # nothing to map (an empty split)
            yield np.zeros((len(ids), dim), dtype=np.float32)
            with open(npy, "wb") as fh:
                np.save(fh, np.zeros((len(ids), dim), dtype=np.float32))
        _write_ids(txt, ids)


def write_embeddings(prefix, vectors: np.ndarray, ids: Sequence[str]) -> None:
    if len(ids) != len(vectors):
        raise ValueError(f"{prefix}: {len(vectors)} vectors but {len(ids)} ids")
    with embeddings_writer(prefix, ids, vectors.shape[1] if vectors.ndim == 2 else 0) as out:
        out[:] = vectors


def read_embeddings(prefix) -> tuple[np.ndarray, list[str]]:
    path = Path(f"{prefix}.npy")
    if not path.is_file():
        raise ConfigError(f"{path}: embeddings not found")
    vectors, ids = np.load(path), read_ids(f"{prefix}.ids.txt")
    if len(ids) != len(vectors):
        raise ConfigError(f"{prefix}.ids.txt: {len(ids)} ids for {len(vectors)} vectors in {path}; re-run the stage")
    return vectors, ids


def write_texts(folder, lang: str, rows: Sequence[dict], stats: dict) -> None:
    """A language's generated texts (rows ``{"id", "queries" | "texts"}``) and their stats, together."""
    folder = Path(folder)
    with atomic_paths(folder / f"{lang}.jsonl", folder / f"{lang}.stats.json") as (jsonl, stats_file):
        with open(jsonl, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        stats_file.write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_texts(folder, lang: str) -> dict[str, list[str]]:
    """Passage id -> its generated texts, from ``<folder>/<lang>.jsonl``."""
    path = Path(folder) / f"{lang}.jsonl"
    out = {}
    for n, row in enumerate(read_jsonl(path), 1):
        field = next((f for f in TEXT_FIELDS if f in row), None)
        if "id" not in row or field is None:
            raise ConfigError(f"{path}:{n}: expected 'id' and one of {list(TEXT_FIELDS)}")
        out[row["id"]] = row[field]
    return out


def read_sources(folder, lang: str) -> dict[str, list[str]]:
    """Passage id -> the question id of each of its texts (``sources``), from ``<folder>/<lang>.jsonl``;
    empty when the texts have no sources (generated ones)."""
    path = Path(folder) / f"{lang}.jsonl"
    out = {}
    for n, row in enumerate(read_jsonl(path), 1):
        if "sources" in row:
            if len(row["sources"]) != len(row.get("queries", row.get("texts", []))):
                raise ConfigError(f"{path}:{n}: {len(row['sources'])} sources for a different number of texts")
            out[row["id"]] = row["sources"]
    return out


def read_text_stats(folder, lang: str) -> dict:
    return read_json(Path(folder) / f"{lang}.stats.json")


ITEM_FILES = ("items.npy", "counts.npy")  # and sources.npy for items with question ids


def items_path(folder, lang: str) -> Path:
    """The items folder of one language: ``<folder>/<lang>``."""
    return Path(folder) / lang


class ItemsWriter:
    """Puts vectors into a generated-items folder as they come (``put``), memory-mapped: item ``i`` of the
    flat order (passage after passage, ``counts[p]`` items each) goes to ``items[p, slot]``."""

    def __init__(self, items: np.ndarray, counts: np.ndarray):
        self.items, self.ends = items, np.cumsum(counts)
        self.starts = self.ends - counts

    def put(self, index: np.ndarray, vectors: np.ndarray) -> None:
        index = np.asarray(index, dtype=np.int64)
        rows = np.searchsorted(self.ends, index, side="right")
        self.items[rows, index - self.starts[rows]] = vectors


@contextlib.contextmanager
def items_writer(path, counts: Sequence[int], dim: int, sources: Sequence[str] | None = None) -> Iterator[ItemsWriter]:
    """A generated-items folder written as the vectors come: ``items.npy`` (passages x width x dim,
    float16, zero padded, memory-mapped), ``counts.npy`` (valid items per passage, corpus order) and, with
    ``sources`` (one question id per item, flat order), ``sources.npy`` (passages x width, '' for
    padding). The folder replaces ``path`` as a whole once the block succeeds."""
    counts = np.asarray(counts, dtype=np.int64)
    total, width = int(counts.sum()), int(counts.max()) if len(counts) else 0
    if sources is not None and len(sources) != total:
        raise ValueError(f"{path}: {len(sources)} sources for {total} items")
    shape = (len(counts), width, dim)
    with atomic_dir(path) as tmp:
        mapped = total > 0 and dim > 0
        items = np.lib.format.open_memmap(tmp / "items.npy", mode="w+", dtype=np.float16, shape=shape) if mapped \
            else np.zeros(shape, dtype=np.float16)
        yield ItemsWriter(items, counts)
        if mapped:
            items.flush()
            del items
        else:
            np.save(tmp / "items.npy", np.zeros(shape, dtype=np.float16))
        np.save(tmp / "counts.npy", counts)
        if sources is not None:
            ids = np.full((len(counts), width), "", dtype=f"<U{max([1, *map(len, sources)])}")
            rows = np.repeat(np.arange(len(counts)), counts)
            ids[rows, np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)] = list(sources)
            np.save(tmp / "sources.npy", ids)


def write_items(path, vectors: np.ndarray, counts: Sequence[int], sources: Sequence[str] | None = None) -> None:
    """Items of each passage (``counts[i]`` consecutive rows of ``vectors``) as a generated-items folder
    (``items_writer``); with ``sources`` (one question id per vector), their ids in the same layout."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.sum() != len(vectors):
        raise ValueError(f"{path}: counts sum to {counts.sum()} but there are {len(vectors)} vectors")
    with items_writer(path, counts, vectors.shape[1] if vectors.ndim == 2 else 0, sources) as writer:
        if len(vectors):
            writer.put(np.arange(len(vectors)), vectors)


def _items_folder(path) -> Path:
    path = Path(path)
    if not all((path / name).is_file() for name in ITEM_FILES):
        raise ConfigError(f"{path}: generated items not found")
    return path


def read_items(path) -> tuple[np.ndarray, np.ndarray]:
    """``(items, counts)`` of a generated-items folder; ``items`` memory-mapped (read-only)."""
    path = _items_folder(path)
    return read_mapped(path / "items.npy"), np.load(path / "counts.npy")


def read_item_sources(path) -> np.ndarray | None:
    """The question id of each item (passages x width, '' for padding) of a generated-items folder, memory-mapped
    (read-only), or None when its items have no sources (generated ones)."""
    file = _items_folder(path) / "sources.npy"
    return read_mapped(file) if file.is_file() else None  # read where a leave-out needs them, not kept resident


def write_leave_out(path, questions: Sequence[str], passages: Sequence[str], vectors: np.ndarray) -> None:
    """Fused passages without one question's items: question id, passage id, vector per row."""
    if not len(questions) == len(passages) == len(vectors):
        raise ValueError(f"{path}: {len(questions)} questions, {len(passages)} passages, {len(vectors)} vectors")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, questions=np.array(list(questions), dtype=str), passages=np.array(list(passages), dtype=str),
                     vectors=np.asarray(vectors, dtype=np.float32))


def read_leave_out(path) -> tuple[list[str], list[str], np.ndarray]:
    """``(questions, passages, vectors)`` of a left-out passages file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: left-out passages not found (run the augment stage)")
    with np.load(path) as arrays:
        return arrays["questions"].tolist(), arrays["passages"].tolist(), arrays["vectors"]


def flat_items(items: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The valid items as rows, and the passage row each belongs to."""
    owner = np.repeat(np.arange(len(counts)), counts)
    slots = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    return items[owner, slots], owner


STATES_SHARD_BYTES = 256 << 20  # encoder states per shard file, about


class StatesWriter:
    """Writes encoder states, a source at a time (``put``), into shards of about ``shard_bytes`` each, in the
    folder ``tmp``; ``close`` writes the last shard and the index (``states_writer`` makes it atomic)."""

    def __init__(self, tmp: Path, shard_bytes: int | None = None):
        self.tmp, self.shard_bytes = Path(tmp), shard_bytes or STATES_SHARD_BYTES
        self.shards: list[dict] = []
        self.keys: list[str] = []
        self.buffer: list = []
        self.size = 0

    def put(self, key: str, states) -> None:
        self.keys.append(str(key))
        self.buffer.append(states)
        self.size += states.numel() * 2
        if self.size >= self.shard_bytes:
            self._flush()

    def _flush(self) -> None:
        import torch  # heavy, with safetensors: loaded only by the warm generators that use this format
        from safetensors.torch import save_file

        if not self.keys:
            return
        name = f"shard-{len(self.shards):05d}.safetensors"
        lengths = torch.tensor([0] + [s.shape[0] for s in self.buffer], dtype=torch.int64)
        with atomic_path(self.tmp / name) as part:  # the folder's file mode, not safetensors' 0600
            save_file({"states": torch.cat([s.to(torch.float16) for s in self.buffer]),
                       "offsets": torch.cumsum(lengths, 0)}, str(part))
        self.shards.append({"file": name, "keys": self.keys})
        self.keys, self.buffer, self.size = [], [], 0

    def close(self) -> int:
        """Write what is buffered and the index; the number of sources written."""
        self._flush()
        write_json(self.tmp / "index.json", {"shards": self.shards})
        return sum(len(s["keys"]) for s in self.shards)


@contextlib.contextmanager
def states_writer(folder, shard_bytes: int | None = None) -> Iterator[StatesWriter]:
    """A ``StatesWriter`` whose folder replaces ``folder`` whole when the block succeeds (never a partial set)."""
    with atomic_dir(folder) as tmp:
        writer = StatesWriter(tmp, shard_bytes)
        yield writer
        writer.close()


def save_states(folder, keys: Sequence[str], states, shard_bytes: int | None = None) -> None:
    """Encoder states of many sources (a list of [len, hidden] tensors) as a sharded folder."""
    with states_writer(folder, shard_bytes) as writer:
        for key, state in zip(keys, states):
            writer.put(key, state)


class States(Mapping):
    """Encoder states by source key, read from the shards lazily: a source's rows are sliced out of its shard
    when asked for (the last few shards stay open), so no process holds the states of the whole corpus."""

    OPEN_SHARDS = 8

    def __init__(self, folder):
        self.path = str(folder)
        index = Path(folder) / "index.json"
        if not index.is_file():
            raise ConfigError(f"{index}: no encoder states index (written by stages/encode_sources.py)")
        shards = read_json(index)["shards"]
        self.files = [s["file"] for s in shards]
        self.where = {k: (n, i) for n, s in enumerate(shards) for i, k in enumerate(s["keys"])}
        self._open: dict[int, tuple] = {}

    def _shard(self, n: int):
        if n not in self._open:
            from safetensors import safe_open  # loaded only by the warm generators that use this format

            if len(self._open) >= self.OPEN_SHARDS:
                self._open.pop(next(iter(self._open)))
            handle = safe_open(str(Path(self.path) / self.files[n]), framework="pt")
            self._open[n] = (handle, handle.get_slice("states"), handle.get_tensor("offsets").tolist())
        return self._open[n]

    def __getitem__(self, key):
        n, i = self.where[key]
        _, states, offsets = self._shard(n)
        return states[offsets[i] : offsets[i + 1]]

    def __iter__(self):
        return iter(self.where)

    def __len__(self) -> int:
        return len(self.where)

    def __reduce__(self):  # a job's states travel as their path and are opened again where they are read
        return (States, (self.path,))


def load_states(folder) -> States:
    """The encoder states of a ``states_writer`` folder, by source key, read lazily (``States``)."""
    return States(folder)


def write_trec_qrels(path, qrels) -> None:
    """TREC qrels from ``(qid, docid, relevance)`` triples: ``qid 0 docid relevance`` per line."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for qid, docid, rel in qrels:
            fh.write(f"{qid} 0 {docid} {rel}\n")


def read_trec_qrels(path) -> dict[str, dict[str, int]]:
    """Query id -> {docid: relevance} of a TREC qrels file."""
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise ConfigError(f"{path}:{lineno}: expected 'qid 0 docid relevance'")
            qrels[parts[0]][parts[2]] = int(parts[3])
    return dict(qrels)


def write_run(path, ranking: dict[str, list[str]], scores: dict[str, list[float]], tag: str) -> None:
    """TREC run file: ``qid Q0 docid rank score tag``."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for q in sorted(ranking):
            for rank, (doc, score) in enumerate(zip(ranking[q], scores[q]), 1):
                fh.write(f"{q} Q0 {doc} {rank} {score:.6f} {tag}\n")


def write_dataset(data_dir, corpus_language: str, languages: list[str]) -> None:
    """``dataset.json`` of a prepared folder (prepare writes it; every later stage reads it)."""
    write_json(Path(data_dir) / DATASET_FILE, {"corpus_language": corpus_language, "languages": languages})


def read_dataset(data_dir) -> dict:
    """``dataset.json`` of a prepared folder: ``{"corpus_language", "languages"}`` (prepare writes it)."""
    path = Path(data_dir) / DATASET_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: not found; re-run the prepare stage (it records the corpus language there)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: malformed JSON ({exc})") from None
    if not isinstance(info, dict) or not is_supported(info.get("corpus_language")) \
            or not isinstance(info.get("languages"), list):
        raise ConfigError(f"{path}: expected {{'corpus_language': <supported code>, 'languages': [...]}}, got {info!r}")
    return info


def write_source(raw_dir, provenance: dict) -> None:
    """``source.json`` beside the downloaded archive (the download stage writes it; prepare reads it)."""
    write_json(Path(raw_dir) / SOURCE_FILE, provenance)


def read_source(raw_dir) -> dict:
    return read_json(Path(raw_dir) / SOURCE_FILE)


def write_table(path, frame: pd.DataFrame) -> None:
    """A table as CSV (``%.6g`` floats, no index), written atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def read_table(path) -> pd.DataFrame:
    """A table ``write_table`` wrote (empty cells are missing values; text such as "nan" stays text)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


CURVE_COLUMNS = ("step", "train_loss", "tune_loss")


def write_curve(path, curve: Sequence[dict]) -> None:
    """A learning curve as a CSV (``plots/training/<model>.csv``): per tune check the step, the mean training
    loss since the previous check and the tune loss (header only when training made no checks)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_table(path, pd.DataFrame(list(curve), columns=list(CURVE_COLUMNS)))


def training_record(history: dict) -> dict:
    """A training history (steps, losses, learning curve) without its wall-clock ``seconds`` (they go to the
    log): what the model folder and the metrics keep, so their hashes move only with the model."""
    return {k: v for k, v in history.items() if k != "seconds"}


def write_training(folder, history: dict) -> None:
    """A trained model folder's training record (``training_record``)."""
    write_json(Path(folder) / TRAINING_FILE, training_record(history))


def read_training(folder) -> dict:
    """The training record of a model folder (``write_training``); empty when it has none (a Hugging Face
    translator is recorded, not trained)."""
    path = Path(folder) / TRAINING_FILE
    return read_json(path) if path.is_file() else {}


def write_kind(folder, name: str, meta: dict) -> None:
    """The kind file ``name`` (``GENERATOR_FILE``, ``TRANSLATOR_FILE``) of a trained model folder."""
    (Path(folder) / name).write_text(json.dumps(meta, indent=2) + "\n")


def read_kind(folder, name: str, what: str, stage: str) -> dict:
    """The kind file ``name`` of ``folder``; a one-line error when ``folder`` is not a ``what`` folder that
    ``stage`` wrote."""
    path = Path(folder) / name
    if not path.is_file():
        raise ConfigError(f"{folder}: not a {what} folder written by {stage} (no {name})")
    return json.loads(path.read_text())
