import json
import subprocess
import sys

import pytest
import yaml

from conftest import ARTICLES, REPO, archive_files, write_zip
from xaug.download import fetch_archive
from xaug.data import MlqaArchive
from xaug.formats import read_trec_qrels
from xaug.preparation import prepare, save_prepared
from xaug.splits import select_heldout, select_tune
from xaug.languages import check_languages
from xaug.errors import ConfigError
from xaug.io import read_jsonl


@pytest.mark.parametrize("kind", ["zip", "dir"])
def test_loader_reads_official_layout(kind, mini_zip, mini_dir):
    archive = MlqaArchive(mini_zip if kind == "zip" else mini_dir)
    assert archive.splits() == ["dev"]
    assert archive.languages("dev") == ["de", "en", "zh"]
    doc = archive.read("dev", "de", "en")
    assert doc["data"][0]["paragraphs"][0]["context"].startswith("Paris ist")


def test_zip_and_directory_give_identical_data(mini_zip, mini_dir):
    a = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=1)
    b = prepare(MlqaArchive(mini_dir), ["dev"], 0.5, seed=1)
    assert a.contexts == b.contexts and a.queries == b.queries and a.links == b.links


def test_corpus_is_english_paragraphs_and_links_cover_languages(mini_zip):
    data = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=1)
    assert [c["text"] for c in data.corpus] == sorted(
        [a[1]["en"] for a in ARTICLES], key=lambda t: [c["id"] for c in data.corpus if c["text"] == t][0])
    assert len(data.corpus) == 4 and all(c["lang"] == "en" for c in data.corpus)
    assert len(data.queries) == 5 * 3
    link = next(l for l in data.links if l["qid"] == "q2")
    assert set(link["contexts"]) == {"en", "de", "zh"}
    assert link["answers"]["en"] == ["the North Sea"]
    assert link["article"] == "Rhine (en)"  # the article is named by its English title in every language


def test_split_is_by_article_deterministic_and_sized():
    articles = [f"article {i}" for i in range(100)]
    held = select_heldout(articles, 0.3, seed=7)
    assert len(held) == 30
    assert held == select_heldout(list(reversed(articles)), 0.3, seed=7)  # order does not matter
    assert held != select_heldout(articles, 0.3, seed=8)
    with pytest.raises(ConfigError, match="holdout_fraction"):
        select_heldout(articles, 1.5, seed=7)


def test_questions_of_one_article_stay_in_one_split(mini_zip):
    data = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=3)
    splits = {(l["article"], l["split"]) for l in data.links}
    assert len({a for a, _ in splits}) == len(splits)
    assert {s for _, s in splits} == {"train", "eval"}
    q2, q3 = (next(q["split"] for q in data.queries if q["qid"] == x) for x in ("q2", "q3"))
    assert q2 == q3  # same article (Rhine)


def test_qrels_answers_and_pairs_written(tmp_path, mini_zip):
    data = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=3)
    save_prepared(data, tmp_path / "out")
    qrels = read_trec_qrels(tmp_path / "out" / "qrels.eval.trec")
    en = {c["text"]: c["id"] for c in data.corpus}
    eval_qids = {l["qid"] for l in data.links if l["split"] == "eval"}
    assert set(qrels) == {f"{q}-{lang}" for q in eval_qids for lang in ("en", "de", "zh")}
    if "q1" in eval_qids:
        assert qrels["q1-zh"] == {en[ARTICLES[0][1]["en"]]: 1}
    answers = {a["qid"]: a["answers"] for a in read_jsonl(tmp_path / "out" / "answers.jsonl")}
    assert answers["q5"] == ["every 27 days"]
    pairs = read_jsonl(tmp_path / "out" / "train_pairs.jsonl")
    assert pairs and all(p["passage_id"].startswith("en-") for p in pairs)
    assert {p["query_id"].rsplit("-", 1)[0] for p in pairs}.isdisjoint(eval_qids)
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["corpus_passages"] == 4


def _two_split_archive(tmp_path) -> MlqaArchive:
    """The mini archive as dev, and as test with other questions on other paragraphs."""
    files = archive_files("dev")
    for name, content in archive_files("test").items():
        for art in content["data"]:
            art["title"] = "T " + art["title"]
            for para in art["paragraphs"]:
                para["context"] = "Test: " + para["context"]
                for qa in para["qas"]:
                    qa["id"] = "t" + qa["id"]
        files[name] = content
    return MlqaArchive(write_zip(tmp_path / "a.zip", files))


def test_two_splits_train_on_first_evaluate_on_second(tmp_path):
    data = prepare(_two_split_archive(tmp_path), ["dev", "test"])
    assert {l["split"] for l in data.links if l["qid"].startswith("t")} == {"eval"}
    assert {l["split"] for l in data.links if not l["qid"].startswith("t")} == {"train"}
    assert len(data.corpus) == 8  # every English paragraph of both splits


def test_max_articles_keeps_a_subset(mini_zip):
    data = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=3, max_articles=2)
    assert len({l["article"] for l in data.links}) == 2
    assert len(data.corpus) == 2


def test_malformed_json_names_the_file(tmp_path):
    files = archive_files()
    files["MLQA_V1/dev/dev-context-de-question-zh.json"] = b'{"data": [ broken'
    archive = MlqaArchive(write_zip(tmp_path / "bad.zip", files))
    with pytest.raises(ConfigError, match=r"dev-context-de-question-zh\.json: malformed JSON"):
        prepare(archive, ["dev"])


@pytest.mark.parametrize("field", ["id", "question", "answers"])
def test_a_question_record_missing_a_field_is_one_line(tmp_path, field):
    files = archive_files()
    doc = files["MLQA_V1/dev/dev-context-de-question-zh.json"]
    del doc["data"][1]["paragraphs"][0]["qas"][0][field]
    archive = MlqaArchive(write_zip(tmp_path / "bad.zip", files))
    with pytest.raises(ConfigError, match=rf"dev-context-de-question-zh\.json: question 0 .* lacks \['{field}'\]"):
        prepare(archive, ["dev"])


def test_corrupt_zip_is_reported(tmp_path):
    bad = tmp_path / "MLQA_V1.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ConfigError, match="corrupt zip"):
        MlqaArchive(bad)


def test_archive_without_mlqa_files_is_rejected(tmp_path):
    archive = MlqaArchive(write_zip(tmp_path / "other.zip", {"README.txt": b"hello"}))
    with pytest.raises(ConfigError, match="no MLQA files"):
        archive.validate()


def test_missing_split_is_reported(mini_zip):
    with pytest.raises(ConfigError, match="split 'test' is not in"):
        prepare(MlqaArchive(mini_zip), ["dev", "test"])


def test_language_checks():
    assert check_languages(["de", "zh"], ["de", "en", "zh"]) == ["de", "zh"]
    with pytest.raises(ConfigError, match="unknown language code 'xx'"):
        check_languages(["de", "xx"])
    with pytest.raises(ConfigError, match="language 'hi' is not in the archive"):
        check_languages(["de", "hi"], ["de", "en", "zh"])
    with pytest.raises(ConfigError, match="non-empty list"):
        check_languages([])
    with pytest.raises(ConfigError, match="languages: 'en' is the corpus language"):
        check_languages(["de", "en"], corpus_language="en")
    # the corpus language comes from the prepared data (xaug.data.corpus_language); unknown here, not checked
    assert check_languages(["de", "en"]) == ["de", "en"]
    assert check_languages(["en", "de"], param="xqg.context_languages") == ["en", "de"]  # contexts may be English
    with pytest.raises(ConfigError, match=r"languages: duplicate language codes in \['de', 'de'\]"):
        check_languages(["de", "de"])


def _shared_prepared(shared_zip, **kw):
    args = {"holdout_fraction": 0.3, "seed": 4, "max_articles": 40, "tune_fraction": 0.25, **kw}
    return prepare(MlqaArchive(shared_zip), ["dev"], **args)


def test_tune_split_is_carved_from_training_articles(tmp_path, shared_zip):
    base = _shared_prepared(shared_zip, tune_fraction=0)
    data = _shared_prepared(shared_zip)
    split_of = {l["article"]: l["split"] for l in data.links}
    arts = {s: {a for a, v in split_of.items() if v == s} for s in ("train", "tune", "eval")}
    assert all(arts.values()) and len({a for v in arts.values() for a in v}) == len(split_of)  # disjoint, non-empty
    # the eval hold-out is untouched; tune takes round(0.25 * n) of the n training articles
    base_split = {l["article"]: l["split"] for l in base.links}
    assert arts["eval"] == {a for a, v in base_split.items() if v == "eval"}
    n_train = len({a for a, v in base_split.items() if v == "train"})
    assert len(arts["tune"]) == round(0.25 * n_train) and arts["tune"] | arts["train"] == set(base_split) - arts["eval"]
    article_of = {l["qid"]: l["article"] for l in data.links}
    assert all(q["split"] == split_of[article_of[q["qid"]]] for q in data.queries)
    assert all(c["split"] == split_of[c["article"]] for c in data.contexts)
    assert data.stats["articles"] == {s: len(arts[s]) for s in ("train", "tune", "eval")}
    assert sum(data.stats["queries"]["tune"].values()) == sum(q["split"] == "tune" for q in data.queries)
    # deterministic; a different seed picks other articles
    again = _shared_prepared(shared_zip)
    assert again.links == data.links and again.queries == data.queries
    other = {l["article"] for l in _shared_prepared(shared_zip, seed=5).links if l["split"] == "tune"}
    assert other != arts["tune"]
    # qrels.tune.trec: exactly the tune queries, each to its English passage; train pairs: train only
    save_prepared(data, tmp_path / "out")
    qrels = read_trec_qrels(tmp_path / "out" / "qrels.tune.trec")
    pivot = {l["qid"]: l["contexts"]["en"] for l in data.links}
    tune_queries = [q for q in data.queries if q["split"] == "tune"]
    assert qrels == {q["id"]: {pivot[q["qid"]]: 1} for q in tune_queries}
    assert set(read_trec_qrels(tmp_path / "out" / "qrels.eval.trec")) == {q["id"] for q in data.queries
                                                                          if q["split"] == "eval"}
    train_ids = {q["id"] for q in data.queries if q["split"] == "train"}
    assert {p["query_id"] for p in read_jsonl(tmp_path / "out" / "train_pairs.jsonl")} == train_ids
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["articles"]["tune"] == len(arts["tune"]) and stats["queries"]["tune"]


def test_tune_split_selection_is_order_independent():

    articles = [f"article {i}" for i in range(50)]
    tune = select_tune(articles, 0.2, seed=7)
    assert len(tune) == 10 and tune == select_tune(list(reversed(articles)), 0.2, seed=7)
    assert tune != select_heldout(articles, 0.2, seed=7)  # its own salt, not the hold-out's ranking
    assert select_tune(articles, 0, seed=7) == set()


def test_tune_split_from_the_first_of_two_splits(tmp_path):
    data = prepare(_two_split_archive(tmp_path), ["dev", "test"], tune_fraction=0.5)
    assert {l["split"] for l in data.links if l["qid"].startswith("t")} == {"eval"}
    dev = {l["article"]: l["split"] for l in data.links if not l["qid"].startswith("t")}
    assert sorted(dev.values()) == ["train", "train", "tune", "tune"]


def test_no_tune_split_by_default_and_when_zero(mini_zip):
    for kw in ({}, {"tune_fraction": 0}):
        data = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=3, **kw)
        assert {l["split"] for l in data.links} == {"train", "eval"}
        assert data.stats["articles"]["tune"] == 0 and data.qrels("tune") == []


@pytest.mark.parametrize("bad", [-0.1, 1, 1.0, 1.5, "0.2", None, True])
def test_bad_tune_fraction_is_a_config_error(mini_zip, bad):
    with pytest.raises(ConfigError, match=r"^data\.tune_fraction: expected 0 \(no tune split\) or a number in \(0, 1\)"):
        prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=3, tune_fraction=bad)


def test_tune_fraction_that_leaves_no_training_article_is_an_error(mini_zip):
    # 4 articles, 2 held out: a tune share rounding to 2 would take every training article
    with pytest.raises(ConfigError, match=r"^data\.tune_fraction: 0\.9 of 2 training article\(s\) leaves none"):
        prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=3, tune_fraction=0.9)


@pytest.mark.parametrize("bad", ["abc", -1, 1.5, True])
def test_prepare_stage_rejects_a_bad_seed(tmp_path, mini_zip, bad):
    fetch_archive(str(mini_zip), tmp_path / "raw")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["seed"] = bad
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py"), "--params", str(tmp_path / "params.yaml"),
                           "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"error: seed: expected an integer >= 0, got {bad!r}"]
    assert not (tmp_path / "out").exists()
