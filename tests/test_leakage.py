"""No held-out question or answer reaches a training step.

A few articles of the shared dev archive are prepared with all three splits (train, tune, eval), then
copied with every `tune` and `eval` question and every answer of their links replaced by other text.
The training stages (train_xdr, train_xqg, train_translator; tiny encoder, warm generators) run on both
folders and must save byte-identical models: what they learn is a function of the `train` split alone.
(Training logs' wall-clock fields and the translator's held-out chrF report are allowed to differ.)
"""
import copy
import json
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from xaug.data import MlqaArchive
from xaug.preparation import prepare, save_prepared
from xaug.formats import write_items
from xaug.io import read_jsonl

TINY_BERT = {"vocab_size": 4000, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 128}
HELDOUT = ("tune", "eval")
# files that log wall-clock time beside what was learnt: compared without these keys
TIMED = {"provenance.json": ("training",)}


def _altered(data):
    """``data`` with every held-out question text and every answer of a held-out link replaced."""
    other = copy.deepcopy(data)
    for i, q in enumerate(other.queries):
        if q["split"] in HELDOUT:
            q["text"] = f"Zqx vorbleck {i} wumpf quorridge?"
    for i, link in enumerate(other.links):
        if link["split"] in HELDOUT:
            link["answers"] = {lang: [f"plimbo {i} {lang} yarrk"] for lang in link["answers"]}
    return other


def _params(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["xdr"].update(model="tiny", tiny=TINY_BERT, query_prefix="", passage_prefix="", epochs=1, batch_size=8,
                         max_steps=3, threads=1)
    params["xqg"].update(model="warm", context_languages=["en"], threads=1,
                         warm={"decoder_layers": 1, "epochs": 1, "batch_size": 8, "max_steps": 6, "lr": 1e-3,
                               "max_source_length": 64, "max_target_length": 24, "bf16": False})
    params["translate"].update(model="warm", max_new_tokens=6, batch_size=4, quality_pairs=2, threads=1,
                               warm={"decoder_layers": 1, "epochs": 1, "batch_size": 8, "max_steps": 6, "lr": 1e-3,
                                     "max_source_length": 32, "max_target_length": 16, "bf16": False})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _train_all(params, data_dir, cwd):
    """Start the three training stages on ``data_dir`` (in parallel), writing to ``cwd`` under the same
    relative names for every dataset (model folders record their own path); returns the processes."""
    cwd.mkdir()
    runs = [("train_xdr", "xdr"), ("train_xqg", "xqg"), ("train_translator", "translator")]
    return [subprocess.Popen([sys.executable, str(REPO / "stages" / f"{stage}.py"), "--params", str(params),
                              "--data", str(data_dir), "--out", name, "--metrics", f"{name}.json"],
                             cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for stage, name in runs]


def _model_files(folder):
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name in TIMED:
            doc = json.loads(path.read_text())
            files[str(path.relative_to(folder))] = {k: v for k, v in doc.items() if k not in TIMED[path.name]}
        else:
            files[str(path.relative_to(folder))] = path.read_bytes()
    return files


@pytest.fixture
def prepared(shared_zip):
    data = prepare(MlqaArchive(shared_zip), ["dev"], 0.3, seed=11, max_articles=10, tune_fraction=0.3)
    assert {l["split"] for l in data.links} == {"train", "tune", "eval"}
    return data


def test_train_pairs_hold_only_training_questions(tmp_path, prepared):
    save_prepared(prepared, tmp_path / "mlqa")
    split = {q["id"]: q["split"] for q in prepared.queries}
    pairs = read_jsonl(tmp_path / "mlqa" / "train_pairs.jsonl")
    assert {split[p["query_id"]] for p in pairs} == {"train"}
    assert len(pairs) == sum(s == "train" for s in split.values())


def test_no_heldout_question_or_answer_reaches_training(tmp_path, prepared):
    save_prepared(prepared, tmp_path / "mlqa")
    altered = _altered(prepared)
    save_prepared(altered, tmp_path / "mlqa_altered")
    for name in ("queries.jsonl", "links.jsonl"):  # the copy really differs, in the held-out rows only
        assert (tmp_path / "mlqa" / name).read_bytes() != (tmp_path / "mlqa_altered" / name).read_bytes()
    assert [q for q in prepared.queries if q["split"] == "train"] == \
           [q for q in altered.queries if q["split"] == "train"]
    params = _params(tmp_path)
    for data_dir, out in (("mlqa", "a"), ("mlqa_altered", "b")):
        for proc in _train_all(params, tmp_path / data_dir, tmp_path / out):
            _, err = proc.communicate()
            assert proc.returncode == 0, err[-3000:]
    for name in ("xdr", "xqg", "translator"):
        a, b = _model_files(tmp_path / "a" / name), _model_files(tmp_path / "b" / name)
        assert a.keys() == b.keys() and any(k.endswith(".safetensors") for k in a), name
        differ = sorted(k for k in a if a[k] != b[k])
        assert not differ, f"{name}: held-out text changed {differ}"
    # the translator's report does read held-out pairs (for chrF), and says so
    report = json.loads((tmp_path / "a" / "translator.json").read_text())
    assert report["heldout"] and "for this report only" in report["reads_heldout"]


def test_encode_and_evaluator_keep_the_splits_apart(tmp_path, prepared):
    """encode writes the tune questions beside (not into) the eval ones; an Evaluator scores one split's
    queries only, even from a query file that holds others."""
    import numpy as np

    from xaug.errors import ConfigError
    from xaug.evaluation import Evaluator
    from xaug.search import read_ids, write_ids

    save_prepared(prepared, tmp_path / "mlqa")
    params = str(_params(tmp_path))
    for stage, args in (("train_xdr", ["--out", "xdr", "--metrics", "xdr.json"]),
                        ("encode", ["--model", "xdr", "--out", "emb"])):
        proc = subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py"), "--params", params,
                               "--data", "mlqa", *args], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
    ids = {s: [q["id"] for q in prepared.queries if q["split"] == s] for s in ("train", "tune", "eval")}
    emb = tmp_path / "emb"
    assert read_ids(emb / "queries.ids.txt") == ids["eval"] and read_ids(emb / "tune_queries.ids.txt") == ids["tune"]
    assert np.load(emb / "tune_queries.npy").shape == (len(ids["tune"]), TINY_BERT["hidden_size"])
    stats = json.loads((emb / "stats.json").read_text())
    assert stats["queries"]["count"] == len(ids["eval"]) and stats["tune_queries"]["count"] == len(ids["tune"])
    languages = ["ar", "de", "es", "hi", "vi", "zh"]
    for split, prefix in (("eval", emb / "queries"), ("tune", emb / "tune_queries")):
        ev = Evaluator(tmp_path / "mlqa", prefix, languages, split=split)
        assert ev.query_ids == ids[split] and set(ev.qrels) == set(ids[split])
    # one file holding every split's queries: each Evaluator keeps its own
    everything = ids["train"] + ids["tune"] + ids["eval"]
    np.save(tmp_path / "all.npy", np.zeros((len(everything), 4), dtype=np.float32))
    write_ids(tmp_path / "all.ids.txt", everything)
    for split in ("eval", "tune"):
        ev = Evaluator(tmp_path / "mlqa", tmp_path / "all", languages, split=split)
        assert sorted(ev.query_ids) == sorted(ids[split]) and len(ev.query_vectors) == len(ids[split])
    with pytest.raises(ConfigError, match="none of its .* queries is in the 'tune' split"):
        Evaluator(tmp_path / "mlqa", emb / "queries", languages, split="tune")
    with pytest.raises(ConfigError, match=r"^split: expected one of \['eval', 'tune'\], got 'train'"):
        Evaluator(tmp_path / "mlqa", emb / "queries", languages, split="train")


def test_tune_stage_reads_no_evaluation_question(tmp_path, prepared):
    """The tune stage chooses alpha from the tune split alone: evaluation questions, answers and query
    vectors replaced, the same choices byte for byte."""
    import numpy as np

    from xaug.search import write_ids

    only_eval = copy.deepcopy(prepared)
    for i, q in enumerate(only_eval.queries):
        if q["split"] == "eval":
            q["text"] = f"Zqx vorbleck {i}?"
    for i, link in enumerate(only_eval.links):
        if link["split"] == "eval":
            link["answers"] = {lang: [f"plimbo {i}"] for lang in link["answers"]}
    params = yaml.safe_load(_params(tmp_path).read_text())
    params.update(languages=["de", "zh"], n_languages=2, methods=["xqg"])
    params["xqg"]["n_queries"] = 2
    params["tune"]["n_queries_used"] = [1, 2]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    rng = np.random.default_rng(0)
    corpus = [c["id"] for c in prepared.corpus]
    ids = {s: [q["id"] for q in prepared.queries if q["split"] == s] for s in ("tune", "eval")}
    passages = rng.standard_normal((len(corpus), 8)).astype(np.float32)
    tune_vectors = rng.standard_normal((len(ids["tune"]), 8)).astype(np.float32)
    items = {lang: rng.standard_normal((len(corpus), 2, 8)).astype(np.float16) for lang in ("de", "zh")}
    reports = []
    for name, data in (("a", prepared), ("b", only_eval)):
        root = tmp_path / name
        save_prepared(data, root / "mlqa")
        emb = root / "emb"
        emb.mkdir()
        np.save(emb / "passages.npy", passages)
        write_ids(emb / "passages.ids.txt", corpus)
        np.save(emb / "tune_queries.npy", tune_vectors)
        write_ids(emb / "tune_queries.ids.txt", ids["tune"])
        np.save(emb / "queries.npy", rng.standard_normal((len(ids["eval"]), 8)).astype(np.float32))  # differs
        write_ids(emb / "queries.ids.txt", ids["eval"])
        (root / "gen" / "xqg").mkdir(parents=True)
        for lang, arr in items.items():
            write_items(root / "gen" / "xqg" / lang, arr.reshape(-1, arr.shape[-1]), np.full(len(corpus), 2))
            (root / "gen" / "xqg" / f"{lang}.stats.json").write_text('{"seconds": 1.0, "generated_tokens": 5}')
        proc = subprocess.run([sys.executable, str(REPO / "stages" / "tune.py"), "--params", str(tmp_path / "params.yaml"),
                               "--passages", "emb/passages", "--queries", "emb/tune_queries", "--data", "mlqa",
                               "--generated-root", "gen", "--out", "tuning.json"], cwd=root, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        reports.append((root / "tuning.json").read_bytes())
    assert reports[0] == reports[1]
    report = json.loads(reports[0])
    tune_langs = [q["lang"] for q in prepared.queries if q["split"] == "tune"]
    assert report["queries"] == sum(lang in ("de", "zh") for lang in tune_langs) > 0
    assert set(report["choices"]["xqg"]) == {"fixed", "per_item"}
    assert set(report["choices"]["xqg"]["fixed"]) == {"renormalized", "raw"}  # both states, each its own alpha
    grids = report["choices"]["xqg"]["fixed"]["renormalized"]["grid"]
    assert set(grids) == {"1", "2"} and all(len(g) == 2 * len(params["tune"]["alphas"]) for g in grids.values())
    assert set(report["normalisation"]) == {"global", "parallel"} and report["subsets"] == {"1": 2, "2": 1}
