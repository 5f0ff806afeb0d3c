"""The tensorised decoding loop of ``WarmGenerator.decode_ids`` against the per-row Python reference loop.

``xaug.warm_reference.reference_decode_ids`` is the oracle: greedy outputs must be byte-identical, and
sampled outputs with the same seed too (finished rows leave the batch in both, so ``torch.multinomial``
sees the same tensors and draws the same random numbers).
"""
import pytest
import torch

from conftest import TINY_BERT, archive_files, write_zip
from xaug.data import MlqaArchive
from xaug.preparation import prepare
from xaug.decoding import SamplingSettings
from xaug.models import load_backbone
from xaug.warm import WarmGenerator, WarmSettings, block_repeated_bigrams, build_decoder, pruned_vocabulary
from xaug.warm_reference import reference_decode_ids


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """A tiny randomly initialised warm generator (pointer head on), some texts to decode from (the corpus'
    passages and the questions: 27), their states and copy ids."""
    data = prepare(MlqaArchive(write_zip(tmp_path_factory.mktemp("mlqa") / "MLQA_V1.zip", archive_files())),
                   ["dev"], 0.25, seed=2)
    texts = [c["text"] for c in data.contexts] + [q["text"] for q in data.queries]
    torch.manual_seed(0)
    encoder, tokenizer, _ = load_backbone("tiny", tiny_config=TINY_BERT, texts=texts * 3)
    kept = pruned_vocabulary(tokenizer, texts)
    gen = WarmGenerator(encoder, tokenizer, build_decoder(encoder, kept, ["de", "en"], n_layers=2), kept,
                        ["de", "en"], "", WarmSettings(decoder_layers=2, label_smoothing=0.0, bf16=False))
    passages = texts
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is faster, and steadier on a shared machine
    yield gen, passages, gen.encode_passages(passages), gen.copy_sources(passages)
    torch.set_num_threads(threads)


def _decode(gen, fn, passages, states, sources, settings, seed, copy, bf16, eos=2.0):
    """``fn`` (old or new loop) with the pointer head on or off, bf16 autocast on or off and ``eos`` added to
    the end token's output bias (so that some rows end early and leave the batch while others run to
    ``max_new_tokens``: a random model rarely ends otherwise); the ids and the next random number (equal
    when both loops drew the same amount of randomness)."""
    head, old_bf16 = gen.copy_head, gen.settings.bf16
    gen.copy_head, gen.settings.bf16 = (head if copy else None), bf16
    bias = gen.decoder.cls.predictions.bias
    original = bias[gen.eos].item()
    with torch.no_grad():
        bias[gen.eos] = original + eos
    try:
        bias_pieces = gen.source_pieces(passages) if settings.copy_bias else None
        torch.manual_seed(seed)
        ids = fn(gen, states, "de", settings, settings.n_queries, sources if copy else None, bias_pieces)
        return ids, torch.rand(1).item()
    finally:
        gen.copy_head, gen.settings.bf16 = head, old_bf16
        with torch.no_grad():
            bias[gen.eos] = original


CASES = [dict(copy=c, copy_bias=cb, no_repeat_bigrams=nrb) for c in (True, False) for cb in (0.0, 2.0)
         for nrb in (False, True)]


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_greedy_ids_are_identical_to_the_reference_loop(warm, case, bf16):
    gen, passages, states, sources = warm
    case = dict(case)
    copy = case.pop("copy")
    for max_new, eos in ((1, 2.0), (2, 2.0), (16, 0.0), (16, 1.0), (16, 2.0), (16, 3.0)):
        s = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=max_new, **case)
        new = _decode(gen, WarmGenerator.decode_ids, passages, states, sources, s, 0, copy, bf16, eos)
        assert new == _decode(gen, reference_decode_ids, passages, states, sources, s, 0, copy, bf16, eos)


def test_greedy_comparison_covers_rows_leaving_the_batch(warm):
    """Greedy rows of the random model end at different steps for some settings (the eos sweep above)."""
    gen, passages, states, sources = warm
    s = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=16, no_repeat_bigrams=True)
    lengths = {len(x) for x in _decode(gen, WarmGenerator.decode_ids, passages, states, sources, s, 0, True, False)[0]}
    assert len(lengths) >= 3 and max(lengths) == 16


@pytest.mark.parametrize("top_k", [10, 0])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_sampled_ids_with_a_seed_are_identical_to_the_reference_loop(warm, case, top_k):
    gen, passages, states, sources = warm
    case = dict(case)
    copy = case.pop("copy")
    for seed, max_new, n in ((0, 16, 3), (1, 20, 2), (2, 2, 1)):
        s = SamplingSettings(n_queries=n, top_k=top_k, max_new_tokens=max_new, seed=seed, **case)
        new = _decode(gen, WarmGenerator.decode_ids, passages, states, sources, s, seed, copy, False)
        old = _decode(gen, reference_decode_ids, passages, states, sources, s, seed, copy, False)
        assert new == old  # the same ids, and the same amount of randomness drawn
        assert len(new[0]) == n * len(passages)
        lengths = [len(x) for x in new[0]]
        assert max_new == 2 or len(set(lengths)) > 2  # rows leave the batch at different steps


def test_sampled_ids_under_bf16_match_the_reference_loop(warm):
    gen, passages, states, sources = warm
    s = SamplingSettings(n_queries=3, top_k=10, max_new_tokens=16, no_repeat_bigrams=True, copy_bias=1.0)
    new = _decode(gen, WarmGenerator.decode_ids, passages, states, sources, s, 5, True, True)
    assert new == _decode(gen, reference_decode_ids, passages, states, sources, s, 5, True, True)
    lengths = [len(x) for x in new[0]]
    assert len(set(lengths)) > 2 and max(lengths) == 16  # rows leave at different steps, some run to the end


def test_block_repeated_bigrams_bans_exactly_the_pieces_that_followed_the_last_one():
    g = torch.Generator().manual_seed(0)
    history = torch.randint(0, 4, (64, 9), generator=g)  # 4 pieces: many repeated bigrams
    probs = torch.rand(64, 6, generator=g)
    blocked = probs.clone()
    block_repeated_bigrams(blocked, history)
    for r, row in enumerate(history.tolist()):
        banned = {b for a, b in zip(row, row[1:]) if a == row[-1]}
        for t in range(6):
            assert blocked[r, t].item() == (0.0 if t in banned else probs[r, t].item())
