"""Query-generator training and the xQG stage scripts, on the hand-made archive with tiny models."""
import json

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY_BERT, run_script, xqg_params
from xaug.errors import ConfigError
from xaug.formats import read_embeddings, read_items
from xaug.decoding import SamplingSettings
from xaug.io import read_jsonl
from xaug.models import load_backbone
from xaug.warm import WarmGenerator, WarmSettings, build_decoder, outputs_first, pruned_vocabulary
from xaug.warm_training import EarlyStopping, example_lengths, train_warm, training_schedule, tune_batch, tune_loss
from xaug.generators import load_generator
from xaug.xqg_training import training_examples

def test_training_examples_cover_every_context_language(mini):
    all_x = training_examples(mini.contexts, mini.queries, mini.links, "all")
    en_only = training_examples(mini.contexts, mini.queries, mini.links, ["en"])
    n_train_q = sum(q["split"] == "train" for q in mini.queries)
    assert len(en_only) == n_train_q and len(all_x) == 3 * n_train_q  # 3 context languages
    assert {(e["source_lang"], e["lang"]) for e in all_x} == {(x, y) for x in ("en", "de", "zh") for y in ("en", "de", "zh")}


def test_warm_decoder_copies_the_top_encoder_layers_and_learns(mini):
    texts = [c["text"] for c in mini.contexts] + [q["text"] for q in mini.queries]
    encoder, tokenizer, _ = load_backbone("tiny", tiny_config=TINY_BERT, texts=texts * 3)
    kept = pruned_vocabulary(tokenizer, [q["text"] for q in mini.queries])
    assert len(kept) < len(tokenizer)
    decoder = build_decoder(encoder, kept, ["de", "en", "zh"], n_layers=1)
    top, first = encoder.encoder.layer[-1], decoder.bert.encoder.layer[0]
    torch.testing.assert_close(first.intermediate.dense.weight, top.intermediate.dense.weight)
    torch.testing.assert_close(first.crossattention.self.query.weight, top.attention.self.query.weight)
    torch.testing.assert_close(decoder.bert.embeddings.word_embeddings.weight[: len(kept)],
                               encoder.embeddings.word_embeddings.weight[torch.tensor(kept)])
    gen = WarmGenerator(encoder, tokenizer, decoder, kept, ["de", "en", "zh"], "",
                        WarmSettings(decoder_layers=1, epochs=30, batch_size=8, lr=3e-3, label_smoothing=0.0,
                                     bf16=False))
    corpus = {c["id"]: c["text"] for c in mini.contexts if c["lang"] == "en"}
    examples = training_examples(mini.contexts, mini.queries, mini.links, ["en"])
    states = dict(zip(corpus, gen.encode_passages(list(corpus.values()))))
    sources = dict(zip(corpus, gen.copy_sources(list(corpus.values()))))
    frozen = {k: v.clone() for k, v in encoder.state_dict().items()}
    log = train_warm(gen, examples, states, sources, training_schedule(example_lengths(gen, examples), gen.settings),
                     progress=False)
    assert log["loss_last"] < log["loss_first"] - 1.0
    for k, v in encoder.state_dict().items():
        torch.testing.assert_close(v, frozen[k])  # the encoder stays frozen
    queries, tokens = gen.generate([{"id": i, "text": t} for i, t in list(corpus.items())[:2]], "de",
                                   SamplingSettings(n_queries=2, max_new_tokens=12, seed=1))
    assert len(queries) == 2 and all(len(q) == 2 for q in queries) and tokens > 0
    with pytest.raises(ConfigError, match="trained without 'hi'"):
        gen.lang_id("hi")


def loss_and_decoding_nll(gen, states, sources, target):
    """The training loss of ``target`` for one passage, the decoding loop's -log p of each of its pieces
    (teacher-forced through ``_step``; p floored at 1e-9 as the loss floors it) and the last step's
    probabilities."""
    gen.train(False)
    with torch.no_grad():
        loss = gen.loss(states, [target], sources).item()
        hidden, mask, src = gen.pad_states(states, sources)
        keys = gen.copy_head.key(hidden)
        probs, cache = gen._step(torch.tensor([target[:2]]), None, hidden, mask, keys, src, None)
        nll = []
        for t, nxt in zip(target[1:-1], target[2:]):
            if t != target[1]:
                probs, cache = gen._step(torch.tensor([[t]]), cache, hidden, mask, keys, src, None)
            nll.append(-torch.log(probs[0, nxt].clamp(min=1e-9)).item())
    return loss, nll, probs


def test_pointer_decoding_step_matches_the_training_distribution(tiny_warm):
    """The probabilities the decoding loop samples from are the ones the training loss scores."""
    gen, passages, questions = tiny_warm
    states, sources = gen.encode_passages(passages[:2]), gen.copy_sources(passages[:2])
    target = gen.encode_targets(questions[:1], ["de"])[0]
    loss, nll, probs = loss_and_decoding_nll(gen, states[:1], sources[:1], target)
    assert abs(loss - sum(nll) / len(nll)) < 1e-4
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-4)  # vocabulary and copy mass together


def test_pointer_copies_source_pieces(tiny_warm):
    """With the gate forced to copying, every generated piece comes from the passage."""
    gen, passages, _ = tiny_warm
    with torch.no_grad():
        gen.copy_head.gate.weight.zero_()
        gen.copy_head.gate.bias.fill_(-30.0)
    src = gen.copy_sources(passages[:3])
    greedy = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=6)
    out = gen.decode_ids(gen.encode_passages(passages[:3]), "de", greedy, 1, sources=src)
    assert all(out)
    for row, ids in zip(src, out):
        assert set(ids) <= set(row)


def test_targets_of_one_source_share_its_cross_attention_and_score_as_apart(tiny_warm):
    """Rows with the same states get the keys and values computed once for the source: the loss and every
    gradient equal those of projecting each row's states (a cache routed to the wrong rows fails)."""
    gen, passages, questions = tiny_warm
    states, sources = gen.encode_passages(passages[:3]), gen.copy_sources(passages[:3])
    rows = [0, 1, 0, 2, 1, 0]  # three sources, six targets
    targets = gen.encode_targets(questions[:6], ["de", "en", "de", "en", "de", "en"])
    gen.train(False)  # no dropout: the two paths see the same arithmetic
    losses, grads = [], []
    for share in (True, False):
        gen.decoder.zero_grad(set_to_none=True)
        gen.copy_head.zero_grad(set_to_none=True)
        loss = gen.loss([states[r] for r in rows], targets, [sources[r] for r in rows], share_sources=share)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in gen.trainable() if p.grad is not None])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    assert len(grads[0]) == len(grads[1]) > 10
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # the same loss as each row scored alone
    alone = [gen.loss([states[r]], [t], [sources[r]]).item() * (len(t) - 2) for r, t in zip(rows, targets)]
    assert losses[0].item() == pytest.approx(sum(alone) / sum(len(t) - 2 for t in targets), rel=1e-5)


def test_a_softmax_over_the_training_targets_pieces_leaves_the_rest_to_the_pointer(tiny_warm, tmp_path):
    """``output_vocabulary: targets``: the pieces of the targets come first in the vocabulary and only they
    get vocabulary probability; other pieces of a passage are copied; decoding samples the distribution the
    loss scores; saving keeps the split."""
    gen0, passages, questions = tiny_warm
    kept, outputs = outputs_first(gen0.tokenizer, questions[:5], passages)
    assert outputs < len(kept) and len(set(kept)) == len(kept) and set(kept) == set(pruned_vocabulary(
        gen0.tokenizer, questions[:5] + passages))
    assert set(kept[:outputs]) == set(pruned_vocabulary(gen0.tokenizer, questions[:5]))
    torch.manual_seed(0)
    settings = WarmSettings(decoder_layers=2, label_smoothing=0.0, bf16=False, output_vocabulary="targets")
    gen = WarmGenerator(gen0.encoder, gen0.tokenizer, build_decoder(gen0.encoder, kept, ["de", "en"], n_layers=2),
                        kept, ["de", "en"], "", settings, outputs=outputs)
    states, sources = gen.encode_passages(passages[:1]), gen.copy_sources(passages[:1])
    target = gen.encode_targets(questions[7:8], ["de"])[0]
    loss, nll, probs = loss_and_decoding_nll(gen, states, sources, target)
    assert abs(loss - sum(nll) / len(nll)) < 1e-4
    assert probs.shape[-1] == gen.vocab_size and probs.sum().item() == pytest.approx(1.0, abs=1e-4)
    outside = torch.ones(gen.vocab_size, dtype=torch.bool)
    outside[:outputs] = False
    outside[[i for i in sources[0] if i >= 0]] = False
    assert probs[0, outside].sum().item() == 0.0  # neither in the softmax nor in the passage: unreachable
    copied = [i for i in sources[0] if i >= outputs]
    assert copied and probs[0, copied].sum().item() > 0  # passage pieces outside the softmax: copied
    gen.save(tmp_path / "g")
    again = WarmGenerator.load(tmp_path / "g", gen.encoder, gen.tokenizer)
    assert again.outputs == outputs and again.kept == kept
    greedy = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=8)
    assert again.generate([{"id": "p", "text": passages[0]}], "de", greedy) == \
        gen.generate([{"id": "p", "text": passages[0]}], "de", greedy)


def test_batched_decoding_equals_one_passage_at_a_time(tiny_warm):
    """Cache sharing, row expansion and dropping finished rows do not change greedy outputs."""
    gen, passages, _ = tiny_warm
    greedy = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=10)
    batch = [{"id": str(i), "text": t} for i, t in enumerate(passages[:6])]
    together, tokens = gen.generate(batch, "en", greedy)
    alone = [gen.generate([p], "en", greedy) for p in batch]
    assert together == [a[0][0] for a in alone] and tokens == sum(a[1] for a in alone)
    torch.manual_seed(3)
    sampled, _ = gen.generate(batch[:2], "de", SamplingSettings(n_queries=3, top_k=5, max_new_tokens=10))
    torch.manual_seed(3)
    assert gen.generate(batch[:2], "de", SamplingSettings(n_queries=3, top_k=5, max_new_tokens=10))[0] == sampled


def _weights(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.safetensors"))}


# Two CUDA training runs of one seed may differ by the rounding of kernels that torch runs without a
# deterministic implementation (device.deterministic_cuda is warn-only): measured on an H200, the tiny
# Hugging Face generator's weights were not byte-identical while the warm generator's were. On a GPU the
# weights must agree within this share of each tensor's largest magnitude; on the CPU byte for byte.
CUDA_WEIGHT_TOLERANCE = 1e-3


def assert_same_weights(a, b, procs):
    """The weights of two training runs of one seed: identical bytes on the CPU, within
    CUDA_WEIGHT_TOLERANCE where the stages ran on a GPU (the stages' determinism warnings in the message)."""
    if _weights(a) == _weights(b):
        return
    assert torch.cuda.is_available(), "same seed, different weights on the CPU"
    from safetensors.torch import load_file
    warned = sorted({line.strip() for proc in procs for line in proc.stderr.splitlines()
                     if "deterministic" in line})
    for path in _weights(a):
        first, second = load_file(a / path), load_file(b / path)
        assert first.keys() == second.keys()
        for key, x in first.items():
            scale = max(float(x.abs().max()), 1e-12)
            gap = float((x.float() - second[key].float()).abs().max())
            assert gap <= CUDA_WEIGHT_TOLERANCE * scale, f"{path}:{key}: {gap:.3g} of {scale:.3g}; {warned}"


@pytest.mark.parametrize("model", ["warm", "tiny"])
def test_xqg_stage_scripts_end_to_end(tmp_path, mini, model):
    params = xqg_params(tmp_path, model)
    common = ["--params", str(params)]
    run_script("train_xdr", *common, "--data", "mlqa", "--out", "xdr", "--metrics", "m/xdr.json", cwd=tmp_path)
    trained = [run_script("train_xqg", *common, "--data", "mlqa", "--out", out, "--metrics", "m/xqg.json",
                          cwd=tmp_path) for out in ("xqg", "xqg2")]
    assert json.loads((tmp_path / "m" / "xqg.json").read_text())["model"] == model
    curve = tmp_path / "plots" / "training" / "xqg.csv"  # the learning curve: header only (no tune split here)
    assert curve.read_text().splitlines()[0] == "step,train_loss,tune_loss"
    assert curve.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert_same_weights(tmp_path / "xqg", tmp_path / "xqg2", trained)  # same seed, same model in every process
    for run, work in (("gen/xqg", "work"), ("gen2/xqg", "work2")):
        run_script("generate_queries", *common, "--lang", "de", "--model", "xqg", "--data", "mlqa", "--out", run,
               "--work", work, cwd=tmp_path)
    rows = read_jsonl(tmp_path / "gen" / "xqg" / "de.jsonl")
    assert rows == read_jsonl(tmp_path / "gen2" / "xqg" / "de.jsonl")  # same seed, same text
    assert len(rows) == 4 and all(len(r["queries"]) == 2 for r in rows)
    stats = json.loads((tmp_path / "gen" / "xqg" / "de.stats.json").read_text())
    assert stats["passages"] == 4 and stats["queries"] == 8 and stats["generated_tokens"] > 0
    assert stats["chunks_reused"] == 0
    kept = list((tmp_path / "work").iterdir())  # the finished chunks stay, one folder per language
    assert [k.name.split("-")[0] for k in kept] == ["de"] and any(kept[0].iterdir())
    # the stage run again for more languages generates only the new one; the other's chunks are reused
    run_script("generate_queries", *common, "--lang", "de", "zh", "--model", "xqg", "--data", "mlqa", "--out",
               "gen3/xqg", "--work", "work", cwd=tmp_path)
    assert read_jsonl(tmp_path / "gen3" / "xqg" / "de.jsonl") == rows
    again = {lang: json.loads((tmp_path / "gen3" / "xqg" / f"{lang}.stats.json").read_text()) for lang in ("de", "zh")}
    assert again["de"]["chunks_reused"] == again["de"]["chunks"] > 0 and again["zh"]["chunks_reused"] == 0
    assert sorted(k.name.split("-")[0] for k in (tmp_path / "work").iterdir()) == ["de", "zh"]
    run_script("encode_generated", *common, "--method", "xqg", "--lang", "de", "--model", "xdr", "--data", "mlqa",
           "--dir", "gen/xqg", cwd=tmp_path)
    items, counts = read_items(tmp_path / "gen" / "xqg" / "de")
    assert items.shape == (4, 2, 32) and items.dtype == np.float16 and isinstance(items, np.memmap)
    assert counts.tolist() == [2, 2, 2, 2]
    if model != "tiny":
        return
    # the rest of the chain: zh too, baseline embeddings, quality, augmentation, the scaling sweep
    run_script("generate_queries", *common, "--lang", "zh", "--model", "xqg", "--data", "mlqa", "--out", "gen/xqg",
           "--work", "work", cwd=tmp_path)
    run_script("encode_generated", *common, "--method", "xqg", "--lang", "zh", "--model", "xdr", "--data", "mlqa",
           "--dir", "gen/xqg", cwd=tmp_path)
    run_script("encode", *common, "--model", "xdr", "--data", "mlqa", "--out", "emb", cwd=tmp_path)
    run_script("generation_quality", *common, "--data", "mlqa", "--passages", "emb/passages", "--queries", "emb/queries",
           "--generated", "gen/xqg", "--metrics", "m/generation.json", cwd=tmp_path)
    quality = json.loads((tmp_path / "m" / "generation.json").read_text())["xqg"]
    assert set(quality) == {"de", "zh", "avg"} and 0 <= quality["de"]["R@10"] <= 1
    assert quality["de"]["queries"] == 8 and 0 <= quality["zh"]["in_script"] <= 1
    assert "passages_sampled" not in quality["de"]  # 4 passages: all of them measured
    # a sample of 2 of the 4 passages (seeded): their queries only, each still retrieving among all 4
    sampled = yaml.safe_load(params.read_text())
    sampled["xqg"]["quality_passages"] = 2
    (tmp_path / "sampled.yaml").write_text(yaml.safe_dump(sampled))
    run_script("generation_quality", "--params", str(tmp_path / "sampled.yaml"), "--data", "mlqa", "--passages",
               "emb/passages", "--queries", "emb/queries", "--generated", "gen/xqg", "--metrics", "m/sampled.json",
               cwd=tmp_path)
    part = json.loads((tmp_path / "m" / "sampled.json").read_text())["xqg"]
    assert part["de"]["passages_sampled"] == 2 and part["de"]["queries"] == 4 and 0 <= part["de"]["R@10"] <= 1
    run_script("augment", *common, "--method", "xqg", "--passages", "emb/passages", "--generated", "gen/xqg",
           "--out", "aug/xqg", cwd=tmp_path)
    fused = np.load(tmp_path / "aug" / "xqg.npy")
    assert fused.shape == (4, 32) and np.allclose(np.linalg.norm(fused, axis=1), 1, atol=1e-5)
    run_script("scaling", *common, "--passages", "emb/passages", "--queries", "emb/queries", "--data", "mlqa",
           "--generated-root", "gen", "--plots", "plots", "--comparison", "m/comparison.json",
           "--transfer", "m/transfer.json", "--tuning", "m/none.json", cwd=tmp_path)
    import pandas as pd

    frame = pd.read_csv(tmp_path / "plots" / "scaling.csv")
    assert sorted(frame["k"].unique()) == [0, 1, 2]
    assert set(frame["group"]) == {"all", "in-set", "out-of-set", "same-language"}
    assert set(frame["setting"]) == {"global", "parallel"}
    # without a tune stage report: no normalisation baseline; the fixed alpha in both renormalize states
    assert set(frame["method"]) == {"baseline", "xqg", "xqg-shuffled", "xqg-centroid", "xqg-one_alpha",
                                    "xqg-equal_items"}
    assert set(frame.loc[frame["method"] == "xqg", "renormalize"]) == {True, False}
    assert (tmp_path / "plots" / "scaling.png").is_file() and (tmp_path / "plots" / "cost.png").is_file()


def test_generator_folder_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="not a query generator folder"):
        load_generator(tmp_path)


def test_no_repeat_bigrams_blocks_loops(tiny_warm):
    gen, passages, _ = tiny_warm
    states, src = gen.encode_passages(passages[:4]), gen.copy_sources(passages[:4])
    greedy = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=30, no_repeat_bigrams=True)
    for ids in gen.decode_ids(states, "de", greedy, 1, sources=src):
        bigrams = list(zip(ids, ids[1:]))
        assert len(bigrams) == len(set(bigrams)), ids


def test_warm_settings_errors_name_their_params_group():
    assert WarmSettings.from_params({"decoder_layers": 2}, seed=3, group="translate.warm").seed == 3
    with pytest.raises(ConfigError, match=r"^translate\.warm\.batch_size: expected a positive integer"):
        WarmSettings.from_params({"batch_size": 0}, seed=0, group="translate.warm")
    with pytest.raises(ConfigError, match=r"^xqg\.warm\.max_step: unknown setting"):
        WarmSettings.from_params({"max_step": 10}, seed=0, group="xqg.warm")
    with pytest.raises(ConfigError, match=r"^xqg\.warm\.batch_by: expected examples or sources"):
        WarmSettings.from_params({"batch_by": "passages"}, seed=0, group="xqg.warm")
    with pytest.raises(ConfigError, match=r"^translate\.warm\.output_vocabulary: expected all or targets"):
        WarmSettings.from_params({"output_vocabulary": "questions"}, seed=0, group="translate.warm")
    with pytest.raises(ConfigError, match=r"^xqg\.warm\.output_vocabulary: targets needs the pointer head"):
        WarmSettings.from_params({"output_vocabulary": "targets", "copy": False}, seed=0, group="xqg.warm")


def test_training_schedule_is_shuffled_epochs_of_length_sorted_batches_capped_at_max_steps():
    lengths = [37 * i % 101 for i in range(200)]  # distinct lengths in a scrambled order
    settings = WarmSettings(epochs=3, batch_size=4, max_steps=0, seed=1)
    batches = training_schedule(lengths, settings)
    assert len(batches) == 150 and all(len(b) == 4 for b in batches)
    assert sorted(i for b in batches[:50] for i in b) == list(range(200))  # the first epoch sees each once
    # a batch holds neighbours in length within its window of 16 batches: far less spread than at random
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 25
    assert batches[0] != sorted(batches[0], key=lambda i: lengths[i]) or batches[1] != batches[0]
    capped = training_schedule(lengths, WarmSettings(epochs=3, batch_size=4, max_steps=2, seed=1))
    assert capped == batches[:2]  # the cap only cuts the same sequence short
    assert training_schedule(lengths, WarmSettings(epochs=3, batch_size=4, seed=2)) != batches
    assert len(training_schedule([1] * 10, WarmSettings(epochs=3, batch_size=4, seed=1))) == 9  # ragged last batch


def test_a_schedule_by_sources_keeps_each_sources_examples_in_one_batch():
    lengths = [37 * i % 101 for i in range(240)]
    sources = [f"s{i // 4}" for i in range(240)]  # 60 sources of four examples each
    settings = WarmSettings(epochs=2, batch_size=8, seed=1, batch_by="sources")
    batches = training_schedule(lengths, settings, sources)
    assert len(batches) == 60 and sorted(i for b in batches[:30] for i in b) == list(range(240))
    assert all(len({sources[i] for i in b}) == 2 for b in batches)  # whole sources, two per batch
    by_examples = training_schedule(lengths, WarmSettings(epochs=2, batch_size=8, seed=1), sources)
    assert sum(len({sources[i] for i in b}) for b in by_examples) > 4 * 60  # shuffled one by one: mixed
    assert training_schedule(lengths, WarmSettings(epochs=2, batch_size=8, seed=2, batch_by="sources"),
                             sources) != batches
    with pytest.raises(ValueError, match="needs each example's source"):
        training_schedule(lengths, settings)
    uneven = [f"s{i // 3}" for i in range(240)]  # sources of three: windows end in part-filled batches
    full = training_schedule(lengths, WarmSettings(epochs=2, batch_size=8, seed=1, batch_by="sources"), uneven)
    assert sorted(i for b in full for i in b) == sorted(list(range(240)) * 2)  # every example in every epoch
    assert training_schedule([], settings, []) == []


def test_early_stopping_keeps_the_best_check_and_stops_after_patience(tiny_warm, mini):
    gen, passages, questions = tiny_warm
    examples = [{"source": p, "target": q, "lang": "de"} for p, q in zip(passages, questions)]
    tune = tune_batch(gen, examples, 4)
    assert len(tune["targets"]) == 4 and tune_batch(gen, [], 4) is None
    before = tune_loss(gen, tune)
    assert before == pytest.approx(tune_loss(gen, tune))  # no dropout, no randomness
    stopping = EarlyStopping(gen, tune, check_every=2, patience=2)
    assert not stopping(1, [5.0])  # not a check step
    assert not stopping(2, [5.0, 4.0]) and stopping.best == pytest.approx(before) and stopping.best_step == 2
    best = [p.detach().clone() for p in gen.trainable()]
    with torch.no_grad():  # worse weights: the tune loss rises
        for p in gen.trainable():
            p.add_(torch.randn_like(p))
    assert not stopping(4, [5.0] * 4)  # one check without improvement: go on
    assert stopping(6, [5.0] * 6)  # the second: stop
    assert [c["step"] for c in stopping.curve] == [2, 4, 6] and stopping.curve[0]["train_loss"] == 4.5
    stopping.restore()
    for p, b in zip(gen.trainable(), best):
        torch.testing.assert_close(p, b)
    assert EarlyStopping(gen, tune, check_every=2, patience=0)(2, [1.0, 1.0]) is False  # patience 0: never early


def test_encoder_states_stream_into_shards_under_bf16_autocast(tiny_warm, tmp_path, monkeypatch):
    """encode_sources' loop: states written (shards flushed) between batches, with the encoder in bf16
    autocast; the caller's code runs outside inference mode and autocast."""
    from xaug.formats import load_states, states_writer

    gen, passages, _ = tiny_warm
    monkeypatch.setattr(gen.settings, "bf16", True)
    n = len(passages)
    assert n >= 4
    expected = gen.encode_passages(passages, batch_size=2)
    with states_writer(tmp_path / "s", shard_bytes=1) as writer:  # a shard per source: a flush after each
        for i, states in gen.iter_states(passages, batch_size=2):
            assert not torch.is_autocast_enabled("cpu") and not torch.is_inference_mode_enabled()
            writer.put(str(i), states)
    read = load_states(tmp_path / "s")
    assert len(list((tmp_path / "s").glob("shard-*"))) == n
    assert all(torch.equal(read[str(i)], expected[i]) for i in range(n))
    # blocks of 3 sources tokenized and sorted at a time: every source once, the same states up to bf16 padding
    blocked = dict(gen.iter_states(passages, batch_size=2, block=3))
    assert sorted(blocked) == list(range(n))
    for i in range(n):
        torch.testing.assert_close(blocked[i].float(), expected[i].float(), atol=0.05, rtol=0.05)


def test_training_states_are_written_as_their_batch_finishes(tiny_warm, tmp_path, monkeypatch):
    """The training_states stage's writer: each source's states, as encode_passages computes them (the same
    batches), under its key, put to the shards as soon as its batch yields them (nothing held back to restore
    the sources' order: a block of long passages in order is gigabytes of states)."""
    from xaug import formats
    from xaug.training_states import _write_streamed

    gen, passages, _ = tiny_warm
    texts = passages * 3
    keys = [f"s{i}" for i in range(len(texts))]
    put, yielded = [], []
    original_put, original_iter = formats.StatesWriter.put, gen.iter_states

    def counting_put(self, key, states):
        put.append(key)
        return original_put(self, key, states)

    def watched(texts, *args, **kwargs):
        for i, state in original_iter(texts, *args, **kwargs):
            assert len(put) == len(yielded)  # every earlier source is already with the writer
            yielded.append(i)
            yield i, state

    monkeypatch.setattr(formats.StatesWriter, "put", counting_put)
    monkeypatch.setattr(gen, "iter_states", watched)
    _write_streamed(tmp_path / "s", keys, texts, gen)
    assert put == [keys[i] for i in yielded] and sorted(yielded) == list(range(len(texts)))
    assert yielded != sorted(yielded)  # length-sorted batches: not the sources' order
    monkeypatch.setattr(gen, "iter_states", original_iter)
    read, expected = formats.load_states(tmp_path / "s"), gen.encode_passages(texts)
    assert len(read) == len(texts)
    assert all(torch.equal(read[k], e) for k, e in zip(keys, expected))


def test_tokenizing_in_blocks_gives_the_pieces_of_one_call(tiny_warm, monkeypatch):
    """Sources and targets are tokenized TOKENIZE_BLOCK texts at a time (a whole training split's tokenizer
    output is gigabytes at P = 100k): the same pieces as one call, and the same schedule lengths."""
    from xaug import warm
    from xaug.warm_training import example_lengths

    gen, passages, _ = tiny_warm
    texts = passages * 3
    langs = [gen.languages[i % len(gen.languages)] for i in range(len(texts))]
    examples = [{"passage_id": f"p{i % 4}", "source": texts[i % 4], "target": t[:60], "lang": l}
                for i, (t, l) in enumerate(zip(texts, langs))]
    whole = gen._source_ids(texts), gen.encode_targets(texts, langs), example_lengths(gen, examples)
    monkeypatch.setattr(warm, "TOKENIZE_BLOCK", 2)
    import xaug.warm_training as warm_training
    monkeypatch.setattr(warm_training, "TOKENIZE_BLOCK", 2)
    assert (gen._source_ids(texts), gen.encode_targets(texts, langs), example_lengths(gen, examples)) == whole
    direct = gen.tokenizer([gen.prefix + t for t in texts], truncation=True,
                           max_length=gen.settings.max_source_length)["input_ids"]
    assert whole[0] == direct


def test_one_similarity_through_the_stages_with_an_unnormalised_encoder(tmp_path, mini):
    """An encoder that does not normalise (``xdr.normalize: false``) through train_xdr, encode, parallel_contexts,
    encode_generated, augment, index and evaluate: a renormalised fusion at alpha 0 is the baseline itself (each
    passage keeps its norm; unit vectors would rank by cosine), so its runs are the baseline's; at alpha 0.3 each
    fused passage has the baseline passage's norm."""
    params = yaml.safe_load(xqg_params(tmp_path, "warm").read_text())
    params["xdr"]["normalize"] = False
    params.update(methods=["parallel_contexts"], evaluate={**params["evaluate"], "settings": ["global"]})
    for name, alpha in (("zero", 0.0), ("some", 0.3)):
        params["augment"] = {"parallel_contexts": {"alpha": alpha, "weight": "fixed", "renormalize": True}}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(params))
    common = ["--params", str(tmp_path / "zero.yaml")]
    run_script("train_xdr", *common, "--data", "mlqa", "--out", "xdr", "--metrics", "m/xdr.json", cwd=tmp_path)
    run_script("encode", *common, "--model", "xdr", "--data", "mlqa", "--out", "emb", cwd=tmp_path)
    run_script("parallel_contexts", *common, "--data", "mlqa", "--out", "gen/pc", cwd=tmp_path)
    run_script("encode_generated", *common, "--method", "parallel_contexts", "--model", "xdr", "--data", "mlqa",
               "--dir", "gen/pc", "--out", "items/pc", cwd=tmp_path)
    passages, _ = read_embeddings(tmp_path / "emb" / "passages")
    norms = np.linalg.norm(passages, axis=1)
    assert norms.std() > 0.01 * norms.mean() and not np.allclose(norms, 1.0, atol=1e-3)  # not unit vectors
    for name in ("zero", "some"):
        run_script("augment", "--params", str(tmp_path / f"{name}.yaml"), "--method", "parallel_contexts",
                   "--passages", "emb/passages", "--generated", "gen/pc", "--items", "items/pc", "--out", f"aug/{name}",
                   cwd=tmp_path)
        fused, _ = read_embeddings(tmp_path / "aug" / name)
        np.testing.assert_allclose(np.linalg.norm(fused, axis=1), norms, rtol=1e-4)
    assert not np.allclose(read_embeddings(tmp_path / "aug" / "some")[0], passages, atol=1e-4)  # augmented
    for name, emb in (("baseline", "emb/passages"), ("zero", "aug/zero")):
        run_script("index", *common, "--embeddings", emb, "--out", f"idx/{name}.faiss", cwd=tmp_path)
    run_script("evaluate", *common, "--system", "baseline=idx/baseline.faiss", "--system",
               "parallel_contexts=idx/zero.faiss", "--augmented", "aug", "--queries", "emb/queries", "--data", "mlqa",
               "--runs", "runs", "--metrics", "m/retrieval.json", cwd=tmp_path)
    run = [line.split() for line in (tmp_path / "runs" / "baseline.trec").read_text().splitlines()]
    zero = [line.split() for line in (tmp_path / "runs" / "parallel_contexts.trec").read_text().splitlines()]
    assert len(run) > 0 and [r[:4] for r in zero] == [r[:4] for r in run]  # the same passages in the same ranks
    np.testing.assert_allclose([float(r[4]) for r in zero], [float(r[4]) for r in run], rtol=1e-5, atol=1e-6)
