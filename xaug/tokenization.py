"""SentencePiece-style unigram tokenizers built with ``tokenizers`` (no sentencepiece dependency)."""
from __future__ import annotations

import json
from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

METASPACE = "\u2581"
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # XLM-R order: ids 0..3


def configure_pipeline(tok: Tokenizer, bos: str, eos: str, bos_id: int, eos_id: int,
                       pre_normalizers: list | None = None) -> Tokenizer:
    """NFKC, collapsed spaces, Metaspace and ``<s> $A </s>``: the XLM-R/E5 recipe."""
    steps = list(pre_normalizers or []) + [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, bos_id), (eos, eos_id)],
    )
    return tok


def wrap_tokenizer(tok: Tokenizer, *, bos="<s>", eos="</s>", pad="<pad>", unk="<unk>", max_length=512, mask=None):
    """A ``tokenizers.Tokenizer`` as a transformers fast tokenizer (saved with ``save_pretrained``)."""
    from transformers import PreTrainedTokenizerFast  # heavy: loaded only when a tokenizer is wrapped

    kwargs = dict(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
                  cls_token=bos, sep_token=eos, model_max_length=max_length)
    if mask:
        kwargs["mask_token"] = mask
    return PreTrainedTokenizerFast(**kwargs)


def train_unigram_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int = 512,
                            extra_specials: list[str] | None = None):
    """Train a unigram tokenizer on ``texts`` (deterministic for the same texts and size)."""
    specials = SPECIALS + list(extra_specials or [])
    tok = Tokenizer(models.Unigram())
    configure_pipeline(tok, "<s>", "</s>", 0, 2)
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    tok.model = canonical_unigram(json.loads(tok.to_str())["model"], len(specials))
    # ids of the specials are fixed by their order in special_tokens
    configure_pipeline(tok, "<s>", "</s>", tok.token_to_id("<s>"), tok.token_to_id("</s>"))
    return wrap_tokenizer(tok, max_length=max_length)


def canonical_unigram(model: dict, n_specials: int, decimals: int = 8) -> models.Unigram:
    """The trained unigram model with scores rounded and pieces in (score, piece) order.

    The trainer's EM sums over hash maps whose order changes from process to process, so the scores
    differ in their last bits and equal-scored pieces swap ids between runs; rounding and a total
    order make the same texts give the same tokenizer (and so the same model) every time.
    """
    vocab = [(piece, float(score)) for piece, score in model["vocab"]]
    specials, pieces = vocab[:n_specials], [(p, round(s, decimals)) for p, s in vocab[n_specials:]]
    # the trainer adds the characters it must keep after the learnt pieces, with scores base - 1e-4 * k
    # and then a floor, in hash-map order: hand that tail's scores out in character order instead
    start = next((i for i in range(len(pieces) - 1) if len(pieces[i][0]) == len(pieces[i + 1][0]) == 1
                  and abs(pieces[i][1] - pieces[i + 1][1] - 1e-4) < 1e-7), len(pieces))
    tail = [k for k in range(start, len(pieces)) if len(pieces[k][0]) == 1]
    chars = sorted(pieces[k][0] for k in tail)
    scores = sorted((pieces[k][1] for k in tail), reverse=True)
    for k, c, sc in zip(tail, chars, scores):
        pieces[k] = (c, sc)
    pieces = sorted(pieces, key=lambda x: (-x[1], x[0]))
    ordered = specials + pieces
    unk = model.get("unk_id")
    unk_id = None if unk is None else [p for p, _ in ordered].index(vocab[unk][0])
    return models.Unigram(ordered, unk_id=unk_id, byte_fallback=bool(model.get("byte_fallback", False)))
