"""Loading the query generator a ``train_xqg`` stage wrote (``xqg.model``: ``warm``, ``xaug.warm``; ``tiny``
or a HF id/path, ``xaug.seq2seq``). Both generators share one interface: ``generate(passages, lang,
settings) -> (queries per passage, generated tokens)``, ``source_lengths(passages, lang)``, ``to(device)``,
``set_copy_vocabulary(texts, max_df)`` and ``shared_encoder()``. Training: ``xaug.xqg_training``."""
from __future__ import annotations

from pathlib import Path

from .formats import GENERATOR_FILE, read_kind
from .seq2seq import Seq2SeqGenerator
from .warm import WarmGenerator, load_warm


def load_generator(path) -> WarmGenerator | Seq2SeqGenerator:
    """The query generator a train_xqg stage wrote in ``path``."""
    path = Path(path)
    meta = read_kind(path, GENERATOR_FILE, "query generator", "train_xqg")
    if meta["kind"] == "warm":
        return load_warm(path, meta)
    return Seq2SeqGenerator.load(path / "model", meta["max_source_length"])
