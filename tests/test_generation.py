import json
import math

import numpy as np
import pytest
import torch

from xaug.chunks import run_chunked
from xaug.decoding import SamplingSettings, SourceBias, rare_pieces
from xaug.errors import ConfigError
from xaug.genquality import chrf_against_real, duplicate_rate, in_script, round_trip
from xaug.prompts import make_prompt
from xaug.seq2seq import Seq2SeqGenerator, load_seq2seq
from xaug.tokenization import train_unigram_tokenizer
from xaug.xqg import CorpusGenerator, generate_for_corpus

CORPUS = [
    {"id": "p1", "title": "Rhine", "text": "The Rhine flows through Basel and Cologne into the North Sea."},
    {"id": "p2", "title": "Tea", "text": "Tea was first drunk in China."},
    {"id": "p3", "title": "Empty", "text": "   "},
    {"id": "p4", "title": "Moon", "text": "The Moon orbits the Earth every 27 days, and it has no air at all."},
    {"id": "p5", "title": "Paris", "text": "Paris is the capital of France."},
]


def test_prompt_is_the_papers_input():
    assert make_prompt("de", "Rhine", "The Rhine flows.") == \
        "Generate a German question for this passage: Rhine The Rhine flows."
    assert make_prompt("zh", "T", "x").startswith("Generate a Chinese question")
    with pytest.raises(ConfigError, match="no known name for language code 'xx'"):
        make_prompt("xx", "T", "x")


def test_sampling_settings_are_checked():
    with pytest.raises(ConfigError, match="xqg.n_queries"):
        SamplingSettings(n_queries=0)
    with pytest.raises(ConfigError, match="xqg.top_k"):
        SamplingSettings(top_k=-1)
    with pytest.raises(ConfigError, match="greedy decoding gives one query"):
        SamplingSettings(n_queries=3, do_sample=False)


def test_chunked_runner_resumes_without_redoing_work(tmp_path):
    items = [{"id": str(i), "text": "x" * (i % 7)} for i in range(23)]
    lengths = [len(i["text"]) for i in items]
    calls = []

    def fn(chunk, index):
        calls.append(index)
        rng = np.random.default_rng(index)  # per-chunk seed: resumed == uninterrupted
        return [{"id": it["id"], "v": float(rng.random())} for it in chunk]

    whole, stats = run_chunked(items, lengths, tmp_path / "a", 5, fn, "t", progress=False)
    assert stats["chunks"] == 5 and stats["chunks_reused"] == 0 and [r["id"] for r in whole] == [i["id"] for i in items]

    calls.clear()

    def dies_after_two(chunk, index):
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed halfway
        return fn(chunk, index)

    with pytest.raises(KeyboardInterrupt):
        run_chunked(items, lengths, tmp_path / "b", 5, dies_after_two, "t", progress=False)
    log = tmp_path / "b" / "chunks.jsonl"
    assert calls == [0, 1] and len(log.read_text().splitlines()) == 2 and list((tmp_path / "b").iterdir()) == [log]
    with open(log, "a") as fh:
        fh.write('{"chunk": 2, "seconds": 0.1, "rows": [{"id"')  # a line cut short by a kill
    calls.clear()
    resumed, stats = run_chunked(items, lengths, tmp_path / "b", 5, fn, "t", progress=False)
    assert calls == [2, 3, 4] and stats["chunks_reused"] == 2
    assert resumed == whole
    assert sorted(json.loads(l)["chunk"] for l in log.read_text().splitlines()) == [0, 1, 2, 3, 4]
    calls.clear()
    again, stats = run_chunked(items, lengths, tmp_path / "b", 5, fn, "t", progress=False)
    assert again == whole and calls == [] and stats["chunks_reused"] == 5


@pytest.fixture(scope="module")
def tiny_mt5(tmp_path_factory):
    """A randomly initialised tiny MT5ForConditionalGeneration + tokenizer saved like a hub checkpoint."""
    from transformers import MT5Config, MT5ForConditionalGeneration

    texts = [make_prompt(l, c["title"], c["text"]) for c in CORPUS for l in ("de", "zh")] * 3
    tokenizer = train_unigram_tokenizer(texts + ["Wo fließt der Rhein?", "茶在哪里？"], vocab_size=150)
    torch.manual_seed(0)
    model = MT5ForConditionalGeneration(MT5Config(
        vocab_size=len(tokenizer), d_model=32, d_ff=64, d_kv=8, num_layers=1, num_decoder_layers=1, num_heads=2,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id))
    path = tmp_path_factory.mktemp("hub") / "tiny-mt5"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_the_work_folder_key_follows_the_encoder_states(tmp_path):
    from xaug.chunks import work_folder
    from xaug.formats import save_states

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "w.bin").write_bytes(b"weights")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "stats.json").write_text("{}")
    states = [torch.ones(2, 3)]

    def key(value):
        save_states(tmp_path / "states", ["p1"], [value * s for s in states])
        return work_folder(tmp_path / "work", "de", tmp_path / "model", tmp_path / "data", {"n": 1},
                           states=tmp_path / "states").name

    assert key(1.0) == key(1.0) != key(2.0)  # other states, other chunks
    assert work_folder(tmp_path / "work", "de", tmp_path / "model", tmp_path / "data", {"n": 1}).name != key(1.0)


def test_pretrained_seq2seq_generates_deterministically(tiny_mt5, tmp_path):
    model, tokenizer = load_seq2seq(str(tiny_mt5))
    gen = Seq2SeqGenerator(model, tokenizer, max_source_length=64)
    settings = SamplingSettings(n_queries=3, top_k=10, max_new_tokens=8, batch_size=2, seed=5)
    rows, stats = generate_for_corpus(gen, CORPUS, "de", settings, tmp_path / "w1", chunk_size=2, progress=False)
    again, _ = generate_for_corpus(gen, CORPUS, "de", settings, tmp_path / "w2", chunk_size=2, progress=False)
    assert rows == again
    assert [r["id"] for r in rows] == [c["id"] for c in CORPUS]
    assert rows[2]["queries"] == []  # the empty passage is handled, not crashed on
    assert all(len(r["queries"]) == 3 for r in rows if r["id"] != "p3")
    assert stats["empty_passages"] == 1 and stats["queries"] == 12 and stats["generated_tokens"] > 0
    with pytest.raises(ConfigError, match="xqg.model: model path .* does not exist"):
        load_seq2seq(str(tmp_path / "missing-model"))


def test_quality_measures_hand_computed():
    assert in_script("Wo fließt der Rhein?", "de") and not in_script("Wo fließt der Rhein?", "zh")
    assert in_script("茶最早在哪里？", "zh") and in_script("ما هي عاصمة فرنسا؟", "ar")
    assert not in_script("1234 ?", "de")
    assert duplicate_rate([["a", "A ", "b"], ["c", "d"]]) == pytest.approx((1 / 3 + 0) / 2)
    assert chrf_against_real({"p": ["where is the rhine"]}, {"p": ["where is the rhine"]}) == pytest.approx(100)
    assert math.isnan(chrf_against_real({"p": ["x"]}, {}))  # nothing to compare with
    passages = np.eye(3, dtype=np.float32)
    queries = np.array([[1, 0, 0], [0.1, 0.5, 0.6], [0.2, 0.9, 0.0]], dtype=np.float32)
    # query 0 -> own passage 0 first; query 1 (own 1) ranks it second; query 2 (own 2) ranks it third
    expected = {"R@1": pytest.approx(1 / 3, abs=1e-4), "R@2": pytest.approx(2 / 3, abs=1e-4)}
    assert round_trip(queries, [0, 1, 2], passages, ks=(1, 2)) == expected
    assert round_trip(queries, [0, 1, 2], passages, ks=(1, 2), rows=2) == expected  # in chunks of 2 queries


def test_copy_bias_favours_rare_source_pieces():
    assert rare_pieces([[1, 2, 3], [1, 2], [1, 4], [1, 5, 5]], max_df=0.25) == {3, 4, 5}
    bias = SourceBias([[3, 4], [0]], vocab_size=6, n=2, bias=2.0)  # 2 passages, 2 sequences each
    scores = bias(None, torch.zeros(4, 6))
    np.testing.assert_allclose(scores[:2], [[0, 0, 0, 2, 2, 0]] * 2)  # rows of passage 0
    np.testing.assert_allclose(scores[2:], [[2, 0, 0, 0, 0, 0]] * 2)


def test_copy_bias_runs_through_a_pretrained_generator(tiny_mt5, tmp_path):
    gen = Seq2SeqGenerator(*load_seq2seq(str(tiny_mt5)), max_source_length=64)
    settings = SamplingSettings(n_queries=2, max_new_tokens=6, seed=1, copy_bias=50.0, copy_max_df=0.5)
    rows, _ = generate_for_corpus(gen, CORPUS, "de", settings, tmp_path / "w", progress=False)
    assert gen.copy_vocabulary  # rare pieces of the corpus
    first = gen.tokenizer(CORPUS[0]["text"], add_special_tokens=False)["input_ids"]
    generated = gen.tokenizer(rows[0]["queries"][0], add_special_tokens=False)["input_ids"]
    # with a huge bias every generated piece comes from the passage's rare pieces
    assert generated and set(generated) <= set(first) | set(gen.tokenizer.all_special_ids)


class _RecordingGenerator:
    """Stands in for a generator: passages' lengths from their text, records each decode batch."""

    def __init__(self):
        self.batches = []

    def source_lengths(self, passages, lang):
        return [len(p["text"].split()) for p in passages]

    def generate(self, batch, lang, settings, n=None):
        self.batches.append([p["id"] for p in batch])
        return [[f"q {p['id']}"] * settings.n_queries for p in batch], len(batch)


def test_decode_batches_follow_a_token_budget_independent_of_the_chunk():
    chunk = [{"id": f"p{i}", "text": " ".join(["w"] * n)} for i, n in enumerate([40, 30, 10, 10, 5, 5, 5, 5])]
    plain = _RecordingGenerator()
    CorpusGenerator(plain, "de", SamplingSettings(n_queries=1, batch_size=3))(chunk, 0)
    assert plain.batches == [["p0", "p1", "p2"], ["p3", "p4", "p5"], ["p6", "p7"]]  # batch_size passages
    budget = _RecordingGenerator()
    rows = CorpusGenerator(budget, "de", SamplingSettings(n_queries=1, batch_size=8, max_tokens=40))(chunk, 0)
    assert budget.batches == [["p0"], ["p1"], ["p2", "p3", "p4", "p5"], ["p6", "p7"]]
    lengths = {p["id"]: len(p["text"].split()) for p in chunk}
    assert all(len(b) * max(lengths[i] for i in b) <= 40 for b in budget.batches)  # padded tokens within budget
    assert [r["id"] for r in rows] == [p["id"] for p in chunk]
    with pytest.raises(ConfigError, match=r"^xqg\.max_tokens: expected an integer >= 0"):
        SamplingSettings(max_tokens=-1)


def test_the_quality_report_samples_passages_by_seed():
    from xaug.genquality import sampled_passages

    assert sampled_passages(10, 0, 1) is None and sampled_passages(10, 10, 1) is None  # all of them
    rows = sampled_passages(1000, 30, 7)
    assert len(set(rows.tolist())) == 30 and rows.tolist() == sorted(rows.tolist()) and rows.max() < 1000
    assert np.array_equal(rows, sampled_passages(1000, 30, 7)) and not np.array_equal(rows, sampled_passages(1000, 30, 8))
