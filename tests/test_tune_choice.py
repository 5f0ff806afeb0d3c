"""benchmarks/tune_choice.py on a small pipeline workspace (a few articles of the shared dev archive, tiny
encoder, warm generator and translator): it scores both on the tune split, the same every time, and reads
nothing of the evaluation split (its questions replaced, the scores stay)."""
import json
import subprocess
import sys

import yaml

from conftest import REPO, run_script
from xaug.data import MlqaArchive
from xaug.io import read_jsonl, write_jsonl
from xaug.preparation import prepare, save_prepared

TINY_BERT = {"vocab_size": 4000, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 128}
WARM = {"decoder_layers": 1, "epochs": 1, "batch_size": 8, "max_steps": 4, "lr": 1e-3, "check_every": 0,
        "max_target_length": 16, "bf16": False}


def _workspace(tmp_path, shared_zip):
    data = prepare(MlqaArchive(shared_zip), ["dev"], 0.3, seed=11, max_articles=10, tune_fraction=0.3)
    save_prepared(data, tmp_path / "data" / "mlqa")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["xdr"].update(model="tiny", tiny=TINY_BERT, query_prefix="", passage_prefix="", threads=1)
    params["encode"].update(bf16=False, threads=1)
    params["xqg"].update(model="warm", context_languages=["en"], threads=1,
                         warm={**WARM, "max_source_length": 64})
    params["translate"].update(model="warm", max_new_tokens=6, batch_size=4, quality_pairs=2, threads=1,
                               warm={**WARM, "max_source_length": 32})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run_script("train_xdr", "--params", "params.yaml", "--metrics", "xdr.json", cwd=tmp_path)
    run_script("encode", "--params", "params.yaml", cwd=tmp_path)
    run_script("train_xqg", "--params", "params.yaml", "--metrics", "xqg.json", cwd=tmp_path)
    run_script("train_translator", "--params", "params.yaml", "--metrics", "translator.json", cwd=tmp_path)


def _score(tmp_path, out, *args):
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "tune_choice.py"), "--workspace", str(tmp_path),
                           "--threads", "1", "--queries", "2", "--pairs", "3", "--out", str(out), *args],
                          capture_output=True, text=True, cwd=tmp_path)


def test_tune_choice_scores_on_the_tune_split_alone(tmp_path, shared_zip):
    _workspace(tmp_path, shared_zip)
    models = ["--xqg", "models/xqg", "--translator", "warm=models/translator"]  # FOLDER, NAME=FOLDER
    first = _score(tmp_path, tmp_path / "a.json", *models)
    assert first.returncode == 0, first.stderr[-3000:]
    scores = json.loads((tmp_path / "a.json").read_text())
    languages = yaml.safe_load((tmp_path / "params.yaml").read_text())["languages"]
    xqg = scores["xqg"]["models/xqg"]
    assert all(0 <= xqg[l]["R@10"] <= 1 and 0 <= xqg[l]["in_script"] <= 1 for l in languages)
    assert xqg["in_script_lowest"] == min(xqg[l]["in_script"] for l in languages)
    trained = json.loads((tmp_path / "models" / "xqg" / "training.json").read_text())
    keys = ("steps", "max_steps", "best_step", "tune_loss", "stopped")  # best_step, tune_loss: with tune checks
    assert xqg["training"]["steps"] == 4 and xqg["training"] == {k: trained[k] for k in keys if k in trained}
    translator = scores["translator"]["warm"]
    assert all(translator[l]["n_question"] <= 3 for l in translator if l in languages)
    queries = read_jsonl(tmp_path / "data" / "mlqa" / "queries.jsonl")
    assert {q["split"] for q in queries} == {"train", "tune", "eval"}
    write_jsonl(tmp_path / "data" / "mlqa" / "queries.jsonl",
                [{**q, "text": f"Zqx vorbleck {i}?"} if q["split"] == "eval" else q for i, q in enumerate(queries)])
    again = _score(tmp_path, tmp_path / "b.json", *models)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "b.json").read_text()) == scores  # seeded, and blind to the eval questions
    nothing = _score(tmp_path / "data", tmp_path / "c.json", *models)
    assert nothing.returncode == 2 and nothing.stderr.strip().splitlines()[-1].startswith("error: ")
