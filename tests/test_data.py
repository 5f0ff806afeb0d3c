import json

import pytest

from conftest import ARTICLES, archive_files, write_zip
from xaug.data import MlqaArchive, check_languages, prepare, read_trec_qrels, save_prepared, select_heldout
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


def test_two_splits_train_on_first_evaluate_on_second(tmp_path):
    files = archive_files("dev")
    for name, content in archive_files("test").items():
        # the test split holds other questions on other paragraphs
        for art in content["data"]:
            art["title"] = "T " + art["title"]
            for para in art["paragraphs"]:
                para["context"] = "Test: " + para["context"]
                for qa in para["qas"]:
                    qa["id"] = "t" + qa["id"]
        files[name] = content
    data = prepare(MlqaArchive(write_zip(tmp_path / "a.zip", files)), ["dev", "test"])
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
