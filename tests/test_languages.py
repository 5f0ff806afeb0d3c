"""The language registry (xaug.languages) and the pipeline beyond MLQA's seven languages and English corpora."""
import json
import os
import re
import runpy
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, archive_files, run_script, write_zip, xqg_params
from xaug import languages as L
from xaug.data import MlqaArchive, corpus_language
from xaug.formats import read_dataset
from xaug.preparation import prepare, save_prepared
from xaug.languages import check_languages
from xaug.errors import ConfigError
from xaug.prompts import language_name, make_prompt
from xaug.genquality import in_script
from xaug.io import read_jsonl
from xaug.translators import language_code

MLQA = ["ar", "de", "en", "es", "hi", "vi", "zh"]
XOR_TYDI = ["ar", "bn", "fi", "ja", "ko", "ru", "te"]
XQUAD = ["ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
MKQA = ["ar", "da", "de", "en", "es", "fi", "fr", "he", "hu", "it", "ja", "km", "ko", "ms", "nl", "no", "pl", "pt",
        "ru", "sv", "th", "tr", "vi", "zh"]
# FLORES-200 script suffix -> the registry's script names
FLORES_SCRIPT = {"Latn": ("Latin",), "Arab": ("Arabic",), "Cyrl": ("Cyrillic",), "Deva": ("Devanagari",),
                 "Hans": ("Han",), "Jpan": ("Han", "Hiragana", "Katakana"), "Hang": ("Hangul",),
                 "Grek": ("Greek",), "Thai": ("Thai",), "Hebr": ("Hebrew",), "Beng": ("Bengali",),
                 "Telu": ("Telugu",), "Khmr": ("Khmer",), "Taml": ("Tamil",), "Geor": ("Georgian",),
                 "Armn": ("Armenian",), "Ethi": ("Ethiopic",), "Gujr": ("Gujarati",), "Knda": ("Kannada",),
                 "Laoo": ("Lao",), "Mlym": ("Malayalam",), "Mymr": ("Myanmar",), "Guru": ("Gurmukhi",),
                 "Sinh": ("Sinhala",)}


def test_registry_covers_the_benchmarks_languages():
    assert set(MLQA + XOR_TYDI + XQUAD + MKQA) <= set(L.supported())
    assert len(L.supported()) >= 40 and L.supported() == sorted(L.LANGUAGES)
    assert set(L.MLQA) == set(MLQA)


def test_registry_lookups():
    assert L.name("th") == "Thai" and L.name("el") == "Greek" and L.name("no") == "Norwegian"
    expected = {"ar": "arb_Arab", "zh": "zho_Hans", "el": "ell_Grek", "th": "tha_Thai", "tr": "tur_Latn",
                "ru": "rus_Cyrl", "ja": "jpn_Jpan", "ko": "kor_Hang", "bn": "ben_Beng", "te": "tel_Telu",
                "he": "heb_Hebr", "no": "nob_Latn", "ms": "zsm_Latn", "km": "khm_Khmr", "en": "eng_Latn"}
    assert {code: L.nllb_code(code) for code in expected} == expected
    assert L.m2m100_code("he") == "he" and L.m2m100_code("te") is None  # M2M100 has no Telugu
    assert L.scripts("ja") == ("Han", "Hiragana", "Katakana") and L.scripts("tr") == ("Latin",)
    lang = L.language("ru")
    assert (lang.code, lang.name, lang.nllb, lang.m2m100, lang.scripts) == ("ru", "Russian", "rus_Cyrl", "ru",
                                                                             ("Cyrillic",))
    assert L.check_language("ko", "data.corpus_language") == "ko"


def test_registry_is_consistent():
    for lang in L.LANGUAGES.values():
        assert re.fullmatch(r"[a-z]{2}", lang.code) and lang.name[0].isupper()
        assert re.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", lang.nllb), lang
        assert FLORES_SCRIPT[lang.nllb.split("_")[1]] == lang.scripts, lang  # the script NLLB names is ours
        assert all(s in L.SCRIPT_RANGES for s in lang.scripts)
        re.compile(L.script_class(lang.code))


def test_translator_codes_exist_in_the_tokenizers_lists():
    nllb = pytest.importorskip("transformers.models.nllb.tokenization_nllb")
    assert {lang.nllb for lang in L.LANGUAGES.values()} <= set(nllb.FAIRSEQ_LANGUAGE_CODES)
    import transformers.models.m2m_100 as m2m

    source = (m2m.__path__[0] + "/tokenization_m2m_100.py")
    codes = set(re.findall(r'"(\w+)"', re.search(r'"m2m100": \[(.*?)\]', open(source).read()).group(1)))
    assert {lang.m2m100 for lang in L.LANGUAGES.values() if lang.m2m100} <= codes
    assert {c for c in L.LANGUAGES if L.m2m100_code(c) is None} == {c for c in L.LANGUAGES if c not in codes}


def test_unknown_code_is_a_one_line_error_naming_the_parameter():
    with pytest.raises(ConfigError) as err:
        L.language("xx", "data.corpus_language")
    message = str(err.value)
    assert message == f"data.corpus_language: unknown language code 'xx'; supported: {L.supported()}"
    assert "\n" not in message
    for bad in (None, 3, "EN", "eng"):
        with pytest.raises(ConfigError, match=r"^languages: unknown language code"):
            L.name(bad)
    with pytest.raises(ConfigError, match=r"^languages: unknown language code 'xx'; supported: \['am', "):
        check_languages(["de", "xx"])
    with pytest.raises(ConfigError, match=r"^xqg\.context_languages: unknown language code 'qq'"):
        check_languages(["qq"], param="xqg.context_languages")


def test_callers_read_the_registry():
    assert language_name("tr") == "Turkish"
    assert make_prompt("th", "T", "x") == "Generate a Thai question for this passage: T x"
    assert language_code("nllb", "el") == "ell_Grek" and language_code("m2m100", "ru") == "ru"
    with pytest.raises(ConfigError, match="the m2m100 translator has no code for 'te'"):
        language_code("m2m100", "te")
    assert check_languages(["ru", "th"], ["en", "ru", "th"], corpus_language="en") == ["ru", "th"]
    with pytest.raises(ConfigError, match="^languages: 'de' is the corpus language"):
        check_languages(["en", "de"], corpus_language="de")


@pytest.mark.parametrize("lang,text", [("ru", "Где заканчивается Рейн?"), ("th", "แม่น้ำไรน์สิ้นสุดที่ไหน"),
                                       ("el", "Πού καταλήγει ο Ρήνος;"), ("tr", "Ren Nehri nerede son bulur?"),
                                       ("ja", "ライン川はどこで終わりますか？"), ("ko", "라인강은 어디에서 끝나나요?"),
                                       ("he", "איפה נגמר הריין?"), ("bn", "রাইন নদী কোথায় শেষ হয়?")])
def test_in_script_follows_the_registry(lang, text):
    assert in_script(text, lang)
    others = [o for o in ("en", "ru", "th", "el", "he", "ko") if set(L.scripts(o)).isdisjoint(L.scripts(lang))]
    assert not any(in_script(text, o) for o in others)


def _archive(tmp_path, langs):
    return MlqaArchive(write_zip(tmp_path / "MLQA_V1.zip", archive_files(langs=langs)))


def test_prepare_with_a_non_english_corpus_language(tmp_path):
    archive = _archive(tmp_path, ["de", "en", "es"])
    data = prepare(archive, ["dev"], 0.5, seed=1, corpus_language="de")
    assert data.corpus_language == "de" and data.stats["corpus_language"] == "de"
    assert len(data.corpus) == 4 and all(c["lang"] == "de" for c in data.corpus)
    assert all(pid.startswith("de-") for _, pid, _ in data.qrels("eval"))
    assert {l["article"] for l in data.links} == {f"{t} (de)" for t in ("Paris", "Rhine", "Tea", "Moon")}
    assert next(a for a in data.answers() if a["qid"] == "q2")["answers"] == ["Nordsee"]
    save_prepared(data, tmp_path / "out")
    assert read_dataset(tmp_path / "out") == {"corpus_language": "de", "languages": ["de", "en", "es"]}
    assert corpus_language(tmp_path / "out") == "de"


def test_corpus_language_must_be_known_and_in_the_archive(tmp_path):
    archive = _archive(tmp_path, ["en", "ru"])
    with pytest.raises(ConfigError, match=r"^data\.corpus_language: unknown language code 'xx'"):
        prepare(archive, ["dev"], corpus_language="xx")
    with pytest.raises(ConfigError, match=r"dev split lacks dev-context-de-question-de\.json"):
        prepare(archive, ["dev"], corpus_language="de")
    ru = prepare(archive, ["dev"], 0.5, seed=1, corpus_language="ru")
    assert {c["lang"] for c in ru.corpus} == {"ru"}
    with pytest.raises(ConfigError, match="dataset.json: not found; re-run the prepare stage"):
        corpus_language(tmp_path)


def _write_params(tmp_path, zip_path, model, **overrides):
    """test_xqg's tiny settings (xqg.model ``model``), the archive as data.source, ``overrides`` (dotted keys)."""
    path = xqg_params(tmp_path, model)
    params = yaml.safe_load(path.read_text())
    params["data"].update(source=str(zip_path), holdout_fraction=0.5)
    params["scaling"].update(subsets="first")
    for dotted, value in overrides.items():
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(params))
    return ["--params", str(path)]


def _stage_here(name, *args, cwd):
    """A stage script run in this process (as ``python stages/<name>.py ARGS`` in ``cwd``): the per-language
    stages, without paying for a fresh interpreter and torch import each time."""
    script = str(REPO / "stages" / f"{name}.py")
    argv, here = sys.argv, os.getcwd()
    sys.argv = [script, *args]
    os.chdir(cwd)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        assert exc.code in (None, 0), f"{name} exited with {exc.code}"
    finally:
        sys.argv = argv
        os.chdir(here)


def _run_chain(tmp_path, common, langs, scaling=True):
    """download -> prepare -> train_xdr -> encode -> index -> train_xqg -> xqg_sources -> generate -> encode the
    generated queries -> augment -> index it -> evaluate -> generation_quality (-> scaling)."""
    run = lambda name, *args: run_script(name, *common, *args, cwd=tmp_path)  # noqa: E731
    here = lambda name, *args: _stage_here(name, *common, *args, cwd=tmp_path)  # noqa: E731
    run_script("download", *common, "--out", "raw", cwd=tmp_path)
    run("prepare", "--raw", "raw", "--out", "mlqa")
    run("train_xdr", "--data", "mlqa", "--out", "xdr", "--metrics", "m/xdr.json")
    run("encode", "--model", "xdr", "--data", "mlqa", "--out", "emb")
    run("index", "--embeddings", "emb/passages", "--out", "idx/baseline.faiss")
    run("train_xqg", "--data", "mlqa", "--out", "xqg", "--metrics", "m/xqg.json")
    run("encode_sources", "--kind", "passages", "--model", "xqg", "--data", "mlqa", "--out", "states/xqg")
    for lang in langs:
        here("generate_queries", "--lang", lang, "--model", "xqg", "--data", "mlqa", "--states",
             "states/xqg", "--out", "gen/xqg", "--work", "work")
        here("encode_generated", "--method", "xqg", "--lang", lang, "--model", "xdr", "--data", "mlqa",
             "--dir", "gen/xqg")
    run("augment", "--method", "xqg", "--passages", "emb/passages", "--generated", "gen/xqg", "--tuning",
        "m/none.json", "--out", "aug/xqg")
    run("index", "--embeddings", "aug/xqg", "--out", "idx/xqg.faiss")
    run("evaluate", "--index-dir", "idx", "--queries", "emb/queries", "--data", "mlqa", "--runs", "runs",
        "--metrics", "m/retrieval.json")
    run("generation_quality", "--data", "mlqa", "--passages", "emb/passages", "--queries", "emb/queries",
        "--generated", "gen/xqg", "--metrics", "m/generation.json")
    if scaling:
        run("scaling", "--passages", "emb/passages", "--queries", "emb/queries", "--data", "mlqa",
            "--generated-root", "gen", "--plots", "plots", "--comparison", "m/comparison.json",
            "--transfer", "m/transfer.json", "--tuning", "m/none.json")
    return json.loads((tmp_path / "m" / "retrieval.json").read_text())


def test_stage_scripts_beyond_mlqa_languages(tmp_path):
    """Questions in ru, th, tr, el (Cyrillic, Thai, Latin, Greek) on an English corpus, through every stage
    (the warm generator: language tokens, passage states shared by the languages)."""
    langs = ["ru", "th", "tr", "el"]
    zip_path = write_zip(tmp_path / "archive.zip", archive_files(langs=["en", *langs]))
    common = _write_params(tmp_path, zip_path, "warm", languages=langs, n_languages=len(langs))
    metrics = _run_chain(tmp_path, common, langs)
    assert read_dataset(tmp_path / "mlqa") == {"corpus_language": "en", "languages": ["el", "en", "ru", "th", "tr"]}
    for system in ("baseline", "xqg"):
        assert set(metrics[system]["by_lang"]) == set(langs) and "en" in metrics[system]
        assert 0 <= metrics[system]["avg"]["R@100"] <= 1
    generated = {lang: read_jsonl(tmp_path / "gen" / "xqg" / f"{lang}.jsonl") for lang in langs}
    assert all(len(rows) == 4 and all(len(r["queries"]) == 2 for r in rows) for rows in generated.values())
    quality = json.loads((tmp_path / "m" / "generation.json").read_text())["xqg"]
    assert set(quality) == {*langs, "avg"} and all(0 <= quality[lang]["in_script"] <= 1 for lang in langs)
    transfer = json.loads((tmp_path / "m" / "transfer.json").read_text())
    assert transfer["global"]["xqg"]["languages"] == langs
    frame = pd.read_csv(tmp_path / "plots" / "scaling.csv")
    assert sorted(frame["k"].unique()) == [0, 1, 2, 3, 4] and set(frame["setting"]) == {"global", "parallel"}


def test_stage_scripts_with_a_german_corpus(tmp_path):
    """data.corpus_language: de, English and Spanish questions (the tiny T5 generator and its prompt): the
    corpus, the qrels, the report of the corpus language's own queries and generation quality follow it."""
    zip_path = write_zip(tmp_path / "archive.zip", archive_files(langs=["de", "en", "es"]))
    common = _write_params(tmp_path, zip_path, "tiny", languages=["en", "es"], n_languages=2,
                           **{"data.corpus_language": "de", "xqg.context_languages": ["de"]})
    metrics = _run_chain(tmp_path, common, ["en", "es"], scaling=False)
    assert corpus_language(tmp_path / "mlqa") == "de"
    corpus = read_jsonl(tmp_path / "mlqa" / "corpus.jsonl")
    assert len(corpus) == 4 and {c["lang"] for c in corpus} == {"de"}
    qrels = (tmp_path / "mlqa" / "qrels.eval.trec").read_text().split("\n")
    assert {line.split()[2] for line in qrels if line} <= {c["id"] for c in corpus}
    for system in ("baseline", "xqg"):
        assert set(metrics[system]["by_lang"]) == {"en", "es"} and "de" in metrics[system]
    assert np.load(tmp_path / "gen" / "xqg" / "es" / "counts.npy").tolist() == [2, 2, 2, 2]
    quality = json.loads((tmp_path / "m" / "generation.json").read_text())["xqg"]
    assert set(quality) == {"en", "es", "avg"} and quality["es"]["queries"] == 8
    assert 0 <= quality["es"]["real_R@10"] <= 1  # the real questions' passages: German ones
    # the corpus language cannot be a target language; later stages take it from the prepared data, not
    # from data.corpus_language (which only prepare reads)
    common = _write_params(tmp_path, zip_path, "tiny", languages=["de", "es"], n_languages=2)
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "evaluate.py"), *common, "--index-dir", "idx",
                           "--queries", "emb/queries", "--data", "mlqa", "--runs", "runs2", "--metrics", "m/r2.json"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2 and "languages: 'de' is the corpus language" in proc.stderr
