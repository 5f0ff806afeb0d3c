"""Passage translation: sentences, language codes, parallel contexts, translator training data, the HF and warm paths."""
import gc
import json
import os

import numpy as np
import pytest

from conftest import archive_files, run_script, translate_params, write_zip
from xaug.data import MlqaArchive
from xaug.parallel import parallel_contexts, parallel_passages
from xaug.preparation import Prepared, prepare, save_prepared
from xaug.errors import ConfigError
from xaug.evaluation import Evaluator, evaluate_systems
from xaug.formats import write_embeddings
from xaug.io import read_jsonl
from xaug.parallel_text import (answer_sentence, join_sentences, non_pivot_pairs, parallel_pairs, source_sentences,
                                split_sentences, training_examples)
from xaug.ranking import RankScorer
from xaug.search import FaissSearcher
from xaug.decoding import TranslateSettings
from xaug.translation import CorpusTranslator, translate_corpus
from xaug.translators import HFTranslator, language_code


def test_sentences_split_and_join():
    text = "Paris is big. It has 2 million people! Is it old? Yes"
    assert split_sentences(text) == ["Paris is big.", "It has 2 million people!", "Is it old?", "Yes"]
    assert join_sentences(split_sentences(text), "de") == text
    zh = "巴黎是法国的首都。它有200万人口。"
    assert split_sentences(zh) == ["巴黎是法国的首都。", "它有200万人口。"]
    assert join_sentences(split_sentences(zh), "zh") == zh
    assert split_sentences("यह एक है। वह दो है।") == ["यह एक है।", "वह दो है।"]
    assert split_sentences("  ") == []
    corpus = [{"id": "a", "text": "One. Two. Three."}, {"id": "b", "text": ""}]
    assert source_sentences(corpus, 2) == [("a#0", "One."), ("a#1", "Two.")]
    assert len(source_sentences(corpus, 0)) == 3


def test_language_codes():
    assert language_code("nllb", "ar") == "arb_Arab" and language_code("nllb", "zh") == "zho_Hans"
    assert language_code("m2m100", "hi") == "hi"
    with pytest.raises(ConfigError, match="no code for 'xx'"):
        language_code("nllb", "xx")
    with pytest.raises(ConfigError, match="unsupported model family"):
        language_code("marian", "de")


def test_parallel_contexts_align_with_the_corpus(mini):
    corpus = mini.corpus
    rows, stats = parallel_contexts(corpus, mini.contexts, mini.links, "de")
    by_id = {c["id"]: c for c in mini.contexts}
    for row, passage in zip(rows, corpus):
        assert row["id"] == passage["id"]
        english = passage["text"]
        german = row["texts"][0]
        # the hand-made archive: the German context of the same article
        title = by_id[passage["id"]]["title"].replace("(en)", "(de)")
        assert [c for c in mini.contexts if c["text"] == german][0]["title"] == title, (english, german)
    assert stats["coverage"] == 1.0 and stats["generated_tokens"] == 0


def test_parallel_contexts_without_any_is_an_error(tmp_path):
    zip_path = write_zip(tmp_path / "en.zip", archive_files(langs=["en"]))
    data = prepare(MlqaArchive(zip_path), ["dev"], 0.25, seed=2)
    with pytest.raises(ConfigError, match="no 'de' contexts parallel to English"):
        parallel_contexts(data.corpus, data.contexts, data.links, "de")


def test_parallel_pairs_hold_questions_and_answer_sentences(mini):
    pairs = parallel_pairs(mini.contexts, mini.links, mini.queries, "train")
    train_qids = {l["qid"] for l in mini.links if l["split"] == "train"}
    assert {p["qid"] for p in pairs} == train_qids
    assert {p["lang"] for p in pairs} == {"de", "zh"}
    rhine = [p for p in pairs if p["kind"] == "sentence" and p["lang"] == "de" and "Rhine" in p["en"]]
    for p in rhine:
        assert p["text"] == "Der Rhein fließt durch Basel und Köln in die Nordsee."
    examples = training_examples(pairs)
    assert len(examples) == 2 * len(pairs) and {e["lang"] for e in examples} == {"de", "zh", "en"}
    assert answer_sentence("A b. The answer is here. C d.", ["answer"]) == "The answer is here."
    assert answer_sentence("No match.", ["zzz"]) is None


def test_non_pivot_pairs_join_two_other_languages_of_a_training_question(mini):
    pairs = non_pivot_pairs(mini.contexts, mini.links, mini.queries, "train")
    pivot = parallel_pairs(mini.contexts, mini.links, mini.queries, "train")
    assert pairs and {(p["source_lang"], p["lang"]) for p in pairs} == {("de", "zh")}
    assert {p["qid"] for p in pairs} <= {l["qid"] for l in mini.links if l["split"] == "train"}
    assert {p["kind"] for p in pairs} == {"question", "sentence"}
    text = {(p["qid"], p["kind"], p["lang"]): p["text"] for p in pivot}  # each side is that language's version
    for p in pairs:
        assert text[(p["qid"], p["kind"], "de")] == p["source"] and text[(p["qid"], p["kind"], "zh")] == p["text"]
    examples = training_examples(pairs)
    assert len(examples) == 2 * len(pairs)
    assert examples[0] == {**examples[0], "source": pairs[0]["source"], "target": pairs[0]["text"], "lang": "zh"}
    assert examples[1] == {**examples[1], "source": pairs[0]["text"], "target": pairs[0]["source"], "lang": "de"}
    assert non_pivot_pairs(mini.contexts, mini.links, mini.queries, "eval") != pairs  # the split decides


def test_parallel_setting_searches_only_paragraphs_with_a_parallel(tmp_path):
    # five English paragraphs; e1 has a German and a Chinese parallel, e2 and e5 a German one, e3 a Chinese one,
    # e4 none: German queries may rank e1, e2, e5; Chinese ones e1, e3; English ones everything
    parallels = {"e1": ["de", "zh"], "e2": ["de"], "e3": ["zh"], "e4": [], "e5": ["de"]}
    allowed = {"de": ["e1", "e2", "e5"], "zh": ["e1", "e3"], "en": list(parallels)}
    contexts = [{"id": f"{lang[0]}{p[1]}", "lang": lang, "title": p, "text": f"{lang} {p}", "article": p, "split": "eval"}
                for p, langs in parallels.items() for lang in ["en", *langs]]
    links = [{"qid": f"q{p[1]}", "split": "eval", "article": p, "answers": {"en": [p]},
              "contexts": {lang: f"{lang[0]}{p[1]}" for lang in ["en", *langs]}} for p, langs in parallels.items()]
    queries = [{"id": f"q{p[1]}-{lang}", "qid": f"q{p[1]}", "lang": lang, "text": f"{lang} {p}?", "split": "eval"}
               for p in parallels for lang in ("de", "en", "zh")]
    save_prepared(Prepared(contexts, queries, links, {"languages": ["de", "en", "zh"]}), tmp_path / "mlqa")
    assert parallel_passages(links) == {lang: set(ids) for lang, ids in allowed.items() if lang != "en"}
    rng = np.random.default_rng(0)
    passages, vectors = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((15, 4)).astype(np.float32)
    write_embeddings(tmp_path / "queries", vectors, [q["id"] for q in queries])
    searcher = FaissSearcher.build(passages, list(parallels))
    scores = {q["id"]: dict(zip(parallels, row)) for q, row in zip(queries, vectors @ passages.T)}

    def brute_force(setting):  # every query's top 3 among the passages it may rank, by score
        out = {}
        for q in queries:
            ids = allowed[q["lang"]] if setting == "parallel" else list(parallels)
            out[q["id"]] = sorted(ids, key=lambda p: -scores[q["id"]][p])[:3]
        return out

    for setting in ("global", "parallel"):
        evaluator = Evaluator(tmp_path / "mlqa", tmp_path / "queries", ["de", "zh"], depth=3, setting=setting)
        ranking, score_lists = evaluator.search(searcher)
        assert ranking == brute_force(setting), setting
        for q, ranked in ranking.items():
            np.testing.assert_allclose(score_lists[q], [scores[q][p] for p in ranked], rtol=1e-5, atol=1e-6)
        top = RankScorer.from_evaluator(evaluator, searcher.ids).top(vectors @ passages.T)  # the scaling stage's way
        assert {q: [searcher.ids[i] for i in row if i >= 0] for q, row in zip(evaluator.query_ids, top)} == ranking
    assert ranking["q1-zh"] in (["e1", "e3"], ["e3", "e1"])  # fewer allowed passages than the depth
    assert brute_force("global") != brute_force("parallel")
    # one evaluator's loaded data serves every setting (the evaluate stage's way), scored as a fresh one scores
    first = Evaluator(tmp_path / "mlqa", tmp_path / "queries", ["de", "zh"], depth=3)
    for setting in ("parallel", "global"):
        fresh, shared = Evaluator(tmp_path / "mlqa", tmp_path / "queries", ["de", "zh"], depth=3,
                                  setting=setting), first.in_setting(setting)
        assert shared.setting == setting and shared.doc_tokens is first.doc_tokens
        assert shared.search(searcher) == fresh.search(searcher)
        assert shared.per_query(*shared.search(searcher)) == fresh.per_query(*fresh.search(searcher))
        assert (shared.allowed == fresh.allowed) and bool(shared.allowed) == (setting == "parallel")

    class Recording:  # the collector's state while evaluate_systems searches (its runs are millions of objects)
        collecting = []

        def search(self, vectors, k):
            self.collecting.append(gc.isenabled())
            return searcher.search(vectors, k)

    assert gc.isenabled()
    evaluate_systems(first, {"recorded": Recording()}, tmp_path / "runs")
    assert Recording.collecting == [False] and gc.isenabled()


class _Echo:
    """A translator that upper-cases: the corpus runner's sentence bookkeeping, without a model."""

    def __init__(self):
        self.calls = []

    def translate(self, sentences, lang, settings, states=None):
        self.calls.append(list(sentences))
        return [s.upper() for s in sentences], sum(len(s.split()) for s in sentences)

    def lengths(self, sentences):
        return [len(s) for s in sentences]


def test_translate_corpus_rejoins_sentences_and_resumes(tmp_path):
    corpus = [{"id": "a", "text": "One two. Three four. Five."}, {"id": "b", "text": "Short."}, {"id": "c", "text": ""}]
    echo = _Echo()
    rows, stats = translate_corpus(echo, corpus, "de", TranslateSettings(max_sentences=2, batch_size=2, chunk_size=2),
                                   tmp_path / "w", progress=False)
    assert rows == [{"id": "a", "texts": ["ONE TWO. THREE FOUR."]}, {"id": "b", "texts": ["SHORT."]},
                    {"id": "c", "texts": []}]
    assert stats["sentences"] == 3 and stats["sentences_in_corpus"] == 4 and stats["generated_tokens"] == 5
    assert all(len(c) <= 2 for c in echo.calls)
    again = _Echo()
    rows2, stats2 = translate_corpus(again, corpus, "de", TranslateSettings(max_sentences=2, batch_size=2, chunk_size=2),
                                     tmp_path / "w", progress=False)
    assert rows2 == rows and again.calls == [] and stats2["chunks_reused"] == stats["chunks"]


@pytest.fixture
def tiny_m2m100(tmp_path, mini):
    """A randomly initialised tiny M2M100 with a tokenizer, saved like a hub checkpoint."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, PreTrainedTokenizerFast

    texts = [c["text"] for c in mini.contexts] * 5
    codes = [f"__{c}__" for c in ("ar", "de", "en", "es", "hi", "vi", "zh")]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=200, special_tokens=["<s>", "<pad>", "</s>", "<unk>",
                                                                                         *codes], unk_token="<unk>"))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", additional_special_tokens=codes)
    cfg = M2M100Config(vocab_size=len(fast), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
                       pad_token_id=fast.pad_token_id, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                       decoder_start_token_id=fast.eos_token_id)
    path = tmp_path / "tiny-m2m100"
    torch.manual_seed(0)  # the same random model whatever ran before (an unseeded one sometimes decoded nothing)
    M2M100ForConditionalGeneration(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.mark.parametrize("model", ["warm", "hf"])
def test_translation_stages_end_to_end(tmp_path, mini, tiny_m2m100, model):
    spec = str(tiny_m2m100) if model == "hf" else model
    params = ["--params", str(translate_params(tmp_path, spec))]
    run_script("train_translator", *params, "--data", "mlqa", "--out", "tr", "--metrics", "m/translation.json", cwd=tmp_path)
    report = json.loads((tmp_path / "m" / "translation.json").read_text())
    assert set(report["heldout"]) <= {"de", "zh"} and report["heldout"] and all("chrF_question" in r for r in report["heldout"].values())
    examples = [e for r in report["heldout"].values() for e in r["examples"]]  # ids, not MLQA's text
    assert examples and all(set(e) == {"qid", "kind", "translation"} for e in examples)
    run_script("encode_sources", *params, "--kind", "sentences", "--model", "tr", "--data", "mlqa", "--out", "st",
           cwd=tmp_path)
    for out in ("gen", "gen2"):
        run_script("translate_passages", *params, "--lang", "de", "--model", "tr", "--data", "mlqa", "--out", out,
               "--work", "work", "--states", "st", cwd=tmp_path)
    rows = read_jsonl(tmp_path / "gen" / "de.jsonl")
    assert rows == read_jsonl(tmp_path / "gen2" / "de.jsonl")  # greedy: same text every run
    assert len(rows) == 4 and all(len(r["texts"]) == 1 for r in rows)
    stats = json.loads((tmp_path / "gen" / "de.stats.json").read_text())
    assert stats["passages"] == 4
    assert stats["generated_tokens"] > 0 and stats["sentences"] == 4


def test_translator_errors_are_one_line(tmp_path, mini):
    for spec, message in [("oracle", "translate.model: 'oracle' is gone; MLQA's parallel contexts are the "
                                     "parallel_contexts method"),
                          (str(tmp_path / "missing"), f"translate.model: model path {tmp_path / 'missing'} does not exist"),
                          ("not-a-model", "translate.model: cannot load 'not-a-model'")]:
        params = ["--params", str(translate_params(tmp_path, spec))]
        proc = run_script("train_translator", *params, "--data", "mlqa", "--out", "tr", cwd=tmp_path, ok=False,
                      env={**os.environ, "HF_HUB_OFFLINE": "1"})  # no hub here: fail fast instead of retrying
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
        assert proc.stderr.startswith(f"error: {message}"), proc.stderr


def test_hf_translator_rejects_a_language_without_code(tiny_m2m100):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tr = HFTranslator(AutoModelForSeq2SeqLM.from_pretrained(tiny_m2m100), AutoTokenizer.from_pretrained(tiny_m2m100))
    assert tr.family == "m2m100"
    with pytest.raises(ConfigError, match="no code for 'te'"):  # M2M100 has no Telugu (xaug.languages)
        tr.translate(["Hello."], "te", TranslateSettings())
    out, tokens = tr.translate(["Paris is big.", "Tea."], "de", TranslateSettings(max_new_tokens=4))
    assert len(out) == 2 and tokens > 0


def test_translation_batches_follow_a_token_budget():
    class Recording:
        def __init__(self):
            self.batches = []

        def lengths(self, sentences):
            return [len(s.split()) for s in sentences]

        def translate(self, sentences, lang, settings):
            self.batches.append(list(sentences))
            return [s.upper() for s in sentences], len(sentences)

    chunk = [{"id": "a", "text": "one two three four. five six."}, {"id": "b", "text": "seven eight nine ten eleven."}]
    for max_tokens, expected in [(0, [["seven eight nine ten eleven.", "one two three four.", "five six."]]),
                                 (8, [["seven eight nine ten eleven."], ["one two three four.", "five six."]])]:
        translator = Recording()
        rows = CorpusTranslator(translator, "de", TranslateSettings(max_sentences=0, batch_size=8,
                                                                     max_tokens=max_tokens))(chunk, 0)
        assert translator.batches == expected
        assert rows[0]["texts"] == ["ONE TWO THREE FOUR. FIVE SIX."] and rows[1]["texts"] == ["SEVEN EIGHT NINE TEN ELEVEN."]
