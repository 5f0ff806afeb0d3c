"""End to end: the real `dvc repro` in a temporary copy, on a subset of the shared dev archive, tiny models
(marked slow), and value checks on its outputs (tested fast on hand-made and committed outputs)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ir_measures
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO
from xaug.formats import write_run, write_trec_qrels
from xaug.metrics import ALL_MEASURES, RANK_MEASURES

COPY = ["dvc.yaml", "params.yaml", "pyproject.toml", "stages", "xaug", "benchmarks/results"]


# Value checks on the pipeline's outputs (each tested on hand-made or committed outputs below).

def check_summary(summary: dict, per_query: pd.DataFrame) -> None:
    """One system's entry of metrics/retrieval*.json against its per-query CSV: each language's figures
    are the mean of its queries' rows (rounded to 4 decimals there), ``avg`` the mean of the languages."""
    languages = {**summary["by_lang"], **{k: v for k, v in summary.items() if k not in ("avg", "by_lang")}}
    for lang, figures in languages.items():
        rows = per_query[per_query["lang"] == lang]
        assert figures["queries"] == len(rows) > 0, lang
        for m in ALL_MEASURES:
            assert abs(figures[m] - rows[m].mean()) <= 6e-5, (lang, m, figures[m], rows[m].mean())
    for m in ALL_MEASURES:
        mean = sum(summary["by_lang"][lang][m] for lang in summary["by_lang"]) / len(summary["by_lang"])
        assert abs(summary["avg"][m] - mean) <= 1e-4, (m, summary["avg"][m], mean)


def check_rank_measures(run_file: Path, qrels_file: Path, per_query: pd.DataFrame) -> None:
    """The per-query CSV's rank measures equal ir-measures on the TREC run file, in its rank order (the
    scores there are rounded), against the qrels; a query absent from the run scores 0."""
    run = {}
    for line in run_file.read_text().splitlines():
        query, _, doc, rank, _, _ = line.split()
        run.setdefault(query, {})[doc] = -float(rank)
    qrels = {}
    for qrel in ir_measures.read_trec_qrels(str(qrels_file)):
        if qrel.query_id in per_query.index:
            qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    assert set(qrels) == set(per_query.index) and set(run) <= set(qrels)
    want = pd.DataFrame(0.0, index=per_query.index, columns=RANK_MEASURES)
    for value in ir_measures.iter_calc([ir_measures.parse_measure(m) for m in RANK_MEASURES], qrels, run):
        want.loc[value.query_id, str(value.measure)] = value.value
    np.testing.assert_allclose(per_query[RANK_MEASURES].to_numpy(float), want.to_numpy(), rtol=1e-5, atol=1e-6)


def check_tuning(tuning: dict) -> None:
    """Each choice of metrics/tuning.json (per method, weight mode, renormalize state and k) is the best point of
    its own grid (ties: the smaller alpha, then fewer queries), and its gain is over the baseline of the setting
    it was tuned in; the normalisation baseline's strength is the best of its grid."""
    measure = tuning["measure"]
    for method, weights in tuning["choices"].items():
        for weight, norms in weights.items():
            for norm, entry in norms.items():
                assert set(entry["by_k"]) == set(entry["grid"]) == set(tuning["subsets"]), (method, weight, norm)
                for k, choice in entry["by_k"].items():
                    best = max(entry["grid"][k], key=lambda g: (g[measure], -g["alpha"], -(g["n_queries_used"] or 0)))
                    assert {key: choice[key] for key in best} == best, (method, weight, norm, k)
                    assert abs(choice["gain"] - (best[measure] - tuning["baseline"][entry["setting"]])) <= 2e-6
    for setting, n in tuning["normalisation"].items():
        assert n[measure] == max(g[measure] for g in n["grid"]), setting


def test_check_tuning_on_the_committed_choices():
    tuning = json.loads((REPO / "metrics" / "tuning.json").read_text())
    check_tuning(tuning)
    entry = tuning["choices"]["xqg"]["fixed"]["renormalized"]
    choice = entry["by_k"]["1"]
    for wrong in (sorted(entry["grid"]["1"], key=lambda g: g["nDCG@10"])[-2], {**entry["grid"]["1"][0], "nDCG@10": 0.0}):
        choice.update(wrong)  # the runner-up, then a point that is not on the grid
        with pytest.raises(AssertionError):
            check_tuning(tuning)


def test_check_summary_and_rank_measures_on_a_hand_made_run(tmp_path):
    # q1-de ranks its passage p1 second, q2-de first; q3-zh retrieves nothing; q4-en ranks p2 first
    write_run(tmp_path / "run.trec", {"q1-de": ["p2", "p1"], "q2-de": ["p3"], "q4-en": ["p2", "p1"]},
              {"q1-de": [0.5, 0.5], "q2-de": [0.2], "q4-en": [0.9, 0.1]}, "test")
    write_trec_qrels(tmp_path / "qrels.trec", [("q1-de", "p1", 1), ("q2-de", "p3", 1), ("q3-zh", "p1", 1),
                                               ("q4-en", "p2", 1), ("q5-es", "p1", 1)])  # es: not scored
    second = {"nDCG@10": 1 / np.log2(3), "RR@10": 0.5, "R@1": 0.0, "R@5": 1.0, "R@20": 1.0, "R@100": 1.0}
    rows = {"q1-de": second, "q2-de": dict.fromkeys(RANK_MEASURES, 1.0), "q3-zh": dict.fromkeys(RANK_MEASURES, 0.0),
            "q4-en": dict.fromkeys(RANK_MEASURES, 1.0)}
    per_query = pd.DataFrame.from_dict(rows, orient="index").round(6)
    per_query.insert(0, "lang", [q[-2:] for q in per_query.index])
    per_query["R@2kt"], per_query["R@5kt"] = [1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0]
    check_rank_measures(tmp_path / "run.trec", tmp_path / "qrels.trec", per_query)
    summary = {"avg": {}, "by_lang": {"de": {"nDCG@10": 0.8155, "RR@10": 0.75, "R@1": 0.5, "R@5": 1.0, "R@20": 1.0,
                                             "R@100": 1.0, "R@2kt": 0.5, "R@5kt": 1.0, "queries": 2},
                                      "zh": {**dict.fromkeys(ALL_MEASURES, 0.0), "queries": 1}},
               "en": {**dict.fromkeys(ALL_MEASURES, 1.0), "queries": 1}}
    summary["avg"] = {"nDCG@10": 0.4077, "RR@10": 0.375, "R@1": 0.25, "R@5": 0.5, "R@20": 0.5, "R@100": 0.5,
                      "R@2kt": 0.25, "R@5kt": 0.5}
    check_summary(summary, per_query)
    for wrong in ({**second, "R@1": 1.0}, dict.fromkeys(RANK_MEASURES, 1.0)):  # the latter: p1 first, a tie's other order
        bad = per_query.copy()
        bad.loc["q1-de", RANK_MEASURES] = [wrong[m] for m in RANK_MEASURES]
        with pytest.raises(AssertionError):
            check_rank_measures(tmp_path / "run.trec", tmp_path / "qrels.trec", bad)
    for where, m, value in (("by_lang", "R@1", 0.25), ("avg", "R@5kt", 0.75), ("en", "queries", 2)):
        bad = json.loads(json.dumps(summary))
        (bad[where]["de"] if where == "by_lang" else bad[where])[m] = value
        with pytest.raises(AssertionError):
            check_summary(bad, per_query)


def dvc(cwd, *args):
    # every stage records the params it reads (xaug.params) into <cwd>/.params_reads/<stage>.json
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "XAUG_PARAMS_LOG": str(Path(cwd) / ".params_reads")}
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def set_params(path, **overrides):
    params = yaml.safe_load(path.read_text())
    for dotted, value in overrides.items():
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    shared = REPO.parent / "shared" / "data" / "MLQA_V1_dev.zip"
    xquad = REPO.parent / "shared" / "data" / "XQUAD_MLQA_languages_dev.zip"
    if not shared.is_file() or not xquad.is_file():
        pytest.skip("shared dev archives not present")
    root = tmp_path_factory.mktemp("pipeline")
    for name in COPY:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    set_params(root / "params.yaml", **{
        "data.source": str(shared), "data.max_articles": 150, "languages": ["de", "zh"], "n_languages": 2,
        "xquad.source": str(xquad), "xquad.max_articles": 16,
        "xdr.model": "tiny", "xdr.epochs": 4, "xdr.lr": 5.0e-4, "xdr.batch_size": 32, "xdr.warmup": 0.05,
        "xdr.max_passage_length": 128, "xdr.query_prefix": "", "xdr.passage_prefix": "",
        "xdr.tiny.vocab_size": 4000, "xdr.tiny.hidden_size": 64, "xdr.tiny.intermediate_size": 128,
        "xqg.n_queries": 2, "xqg.max_new_tokens": 8, "xqg.batch_size": 32, "xqg.chunk_size": 128,
        "xqg.warm.decoder_layers": 1, "xqg.warm.epochs": 1, "xqg.warm.max_source_length": 64,
        "augment.xqg.n_queries_used": 2, "translate.warm.decoder_layers": 1, "translate.warm.max_steps": 10,
        "translate.max_new_tokens": 8, "translate.quality_pairs": 5, "tune.n_queries_used": [1, 2],
        "scaling.permutations": 4, "scaling.resamples": 999, "scaling.seeds": [14],
    })
    (root / "data" / "seeds").mkdir(parents=True)  # the seeds stage's dependency, kept in git by its README
    shutil.copy(REPO / "data" / "seeds" / "README.md", root / "data" / "seeds" / "README.md")
    (root / ".gitignore").write_text("/data/\n/models/\n/plots/*.png\n/.params_reads/\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc(root, "init", "-q")
    first = dvc(root, "repro")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first run")
    return root, first


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


def stages_run(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_repro_writes_metrics_that_beat_random(pipeline):
    root, log = pipeline
    metrics = json.loads((root / "metrics" / "retrieval.json").read_text())["baseline"]
    stats = json.loads((root / "data" / "mlqa" / "stats.json").read_text())
    random_r100 = min(1.0, 100 / stats["corpus_passages"])
    assert set(metrics["by_lang"]) == {"de", "zh"}
    assert metrics["avg"]["R@100"] > random_r100, (metrics["avg"], random_r100)
    assert (root / "data" / "runs" / "baseline.trec").is_file()
    assert (root / "models" / "xdr" / "tokenizer.json").is_file()
    xqg = json.loads((root / "metrics" / "retrieval.json").read_text())["xqg"]
    assert set(xqg["by_lang"]) == {"de", "zh"} and xqg["avg"]["R@100"] > random_r100
    quality = json.loads((root / "metrics" / "generation.json").read_text())["xqg"]
    assert set(quality) == {"de", "zh", "avg"} and quality["de"]["queries"] == 2 * stats["corpus_passages"]
    frame = pd.read_csv(root / "plots" / "scaling.csv")
    assert sorted(frame[frame["method"] == "xqg"]["k"].unique()) == [1, 2]
    methods = ("xqg", "translate", "parallel_contexts", "real_questions")
    assert set(frame["method"]) == {"baseline", "normalisation"} | {
        f"{m}{v}" for m in methods for v in ("", "-shuffled", "-centroid", "-one_alpha", "-equal_items")}
    assert set(frame["renormalize"]) == {True, False} and frame["primary"].any()
    assert set(frame["weight"]) == {"fixed", "per_item"} and set(frame["setting"]) == {"global", "parallel"}
    assert {"ci_low_nDCG@10", "ci_high_nDCG@10", "p_holm_R@2kt", "clusters"} <= set(frame.columns)
    comparison = json.loads((root / "metrics" / "comparison.json").read_text())
    assert {"xqg - translate", "xqg - xqg-shuffled", "parallel_contexts - parallel_contexts-centroid",
            "xqg - xqg-centroid (raw)", "xqg - normalisation", "real_questions - real_questions-shuffled",
            "parallel_contexts - real_questions", "xqg - real_questions"} <= set(comparison["parallel"])
    covered = json.loads((root / "metrics" / "coverage.json").read_text())
    assert set(covered) == {"global", "parallel"} and set(covered["parallel"]) == set(methods)
    assert set(covered["parallel"]["real_questions"]) == {"de", "zh"}
    assert set(comparison["global"]["xqg - translate"]) == {"1", "2"}
    tuning = json.loads((root / "metrics" / "tuning.json").read_text())
    assert set(tuning["choices"]) == set(methods) and tuning["split"] == "tune"
    transfer = json.loads((root / "metrics" / "transfer.json").read_text())
    assert transfer["global"]["xqg"]["languages"] == ["de", "zh"]
    parallel = json.loads((root / "metrics" / "retrieval_parallel.json").read_text())
    assert set(parallel) == {"baseline", *methods}
    for name in ("scaling/xqg.csv", "scaling/xqg.raw.csv", "scaling.png", "transfer.png", "weight_modes.png",
                 "variants.png", "cost.png"):
        assert (root / "plots" / name).is_file(), name


@pytest.mark.slow
def test_seeds_pool_the_draws_and_the_first_draw_is_the_sweep(pipeline):
    """The *_seed stages train and sample again with seed 14; the seeds stage pools both draws, and the first
    draw's rows are the scaling stage's configured-fusion rows (the same alphas, the same sweep)."""
    root, _ = pipeline
    seed14 = root / "data" / "seeds" / "14"
    assert (seed14 / "models" / "xqg").is_dir() and (seed14 / "metrics" / "generation.json").is_file()
    table = pd.read_csv(root / "plots" / "seeds.csv")
    assert set(table["draws"]) == {2} and set(table["kind"]) == {"gain", "method-centroid", "method-normalisation",
                                                                  "between-methods"}
    scaling = pd.read_csv(root / "plots" / "scaling.csv")
    for method in ("xqg", "translate"):
        ours = table[(table["kind"] == "gain") & (table["a"] == method) & (table["measure"] == "nDCG@10")]
        theirs = scaling[(scaling["method"] == method) & scaling["primary"] & (scaling["group"].isin(["all", "in-set",
                                                                                                       "out-of-set"]))]
        merged = ours.merge(theirs, on=["setting", "k", "group"])
        assert len(merged) == len(ours) == 2 * (3 + 2), method  # settings x groups (k = 2: no out-of-set)
        np.testing.assert_allclose(merged["delta_13"], merged["delta_nDCG@10"], atol=2e-6)
        assert (merged["delta_14"] != merged["delta_13"]).any(), method  # another draw, other items
    report = json.loads((root / "metrics" / "seeds.json").read_text())
    assert report["seeds"] == [13, 14] and set(report["tuning"]) == {"13", "14"}
    tuning = json.loads((root / "metrics" / "tuning.json").read_text())["choices"]["xqg"]["fixed"]["renormalized"]
    assert {k: c["alpha"] for k, c in report["tuning"]["13"]["xqg"].items()} == \
        {k: c["alpha"] for k, c in tuning["by_k"].items()}
    assert (root / "plots" / "seeds.png").is_file()


@pytest.mark.slow
def test_xquad_runs_both_ceilings_over_every_passage(pipeline):
    root, _ = pipeline
    covered = json.loads((root / "metrics" / "xquad" / "coverage.json").read_text())["parallel"]
    for method in ("parallel_contexts", "real_questions", "xqg", "translate"):
        assert all(c["passages"] == 1.0 for c in covered[method].values()), method
    # about five questions per paragraph: the relevant passage keeps real questions once its own is left out
    assert all(c["relevant"] > 0.9 for c in covered["real_questions"].values())
    frame = pd.read_csv(root / "plots" / "xquad" / "scaling.csv")
    assert {"xqg", "translate", "parallel_contexts", "real_questions"} <= set(frame["method"])
    assert sorted(frame[frame["method"] == "real_questions"]["k"].unique()) == [1, 2]
    comparison = json.loads((root / "metrics" / "xquad" / "comparison.json").read_text())["parallel"]
    assert {"parallel_contexts - real_questions", "real_questions - real_questions-shuffled"} <= set(comparison)
    tuning = json.loads((root / "metrics" / "xquad" / "tuning.json").read_text())
    assert set(tuning["choices"]) == {"xqg", "translate", "parallel_contexts", "real_questions"}
    quality = json.loads((root / "metrics" / "xquad" / "generation.json").read_text())["xqg"]
    assert set(quality) == {"de", "zh", "avg"} and quality["de"]["real_R@10"] > 0
    dial = json.loads((root / "metrics" / "xquad" / "dial.json").read_text())
    assert set(dial["crossings"]) == {"1", "2"} and dial["quality"]["passage"]["0"] == 100.0
    assert set(dial["quality"]["query"]) == {"0", "0.25", "0.5", "0.75", "1"}
    table = pd.read_csv(root / "plots" / "xquad" / "dial.csv")
    assert len(table) == 2 * 5 * 2 and table["p_holm_nDCG@10"].between(0, 1).all()
    text = (root / "docs" / "results_xquad.md").read_text()
    assert text.startswith("# Results on XQuAD") and "| parallel | real_questions |" in text
    assert "## Quality dial" in text


@pytest.mark.slow
def test_reported_figures_recompute_from_the_runs(pipeline):
    root, _ = pipeline
    runs = root / "data" / "runs"
    for metrics_file, suffix in (("retrieval.json", ""), ("retrieval_parallel.json", ".parallel")):
        metrics = json.loads((root / "metrics" / metrics_file).read_text())
        assert set(metrics) == {"baseline", "xqg", "translate", "parallel_contexts", "real_questions"}
        for system, summary in metrics.items():
            per_query = pd.read_csv(runs / f"{system}{suffix}.per_query.csv", index_col="query_id")
            check_summary(summary, per_query)
            check_rank_measures(runs / f"{system}{suffix}.trec", root / "data" / "mlqa" / "qrels.eval.trec", per_query)
    check_tuning(json.loads((root / "metrics" / "tuning.json").read_text()))


def _covers(declared: str, read: str) -> bool:
    return read == declared or read.startswith(declared + ".")


# declared params that a stage reads only in another configuration than the test's (so unread here)
READ_ELSEWHERE = {
    "download": {"data.expected_size", "data.expected_sha256"},  # checked for a URL source (here a local zip)
    "train_xqg": {"xqg.max_source_length", "xqg.tiny", "xqg.train"},  # the tiny / HF seq2seq generators
    "train_xqg_seed": {"xqg.max_source_length", "xqg.tiny", "xqg.train"},
}


@pytest.mark.slow
def test_each_stage_reads_exactly_the_params_dvc_yaml_declares(pipeline):
    """The DVC contract for params: what a stage reads (recorded by xaug.params while `dvc repro` ran it)
    is declared under its `params:` (foreach stages: with ${item} resolved), and every declared param is
    read by it (bar READ_ELSEWHERE)."""
    root, _ = pipeline
    spec = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    declared = {name: body.get("do", body).get("params", []) for name, body in spec.items()}
    recorded = {path.stem: set(json.loads(path.read_text())) for path in (root / ".params_reads").glob("*.json")}
    assert {name for name, params in declared.items() if params} <= {s.split("@")[0] for s in recorded}, \
        "stages that recorded no reads"
    problems, used = [], set()
    for stage, read in sorted(recorded.items()):
        name, _, item = stage.partition("@")
        for d in declared[name]:
            if any(_covers(d.replace("${item}", item), r) or _covers(r, d.replace("${item}", item)) for r in read):
                used.add((name, d))
        undeclared = sorted(r for r in read if not any(_covers(d.replace("${item}", item), r) for d in declared[name]))
        if undeclared:
            problems.append(f"{stage} reads undeclared {undeclared}")
    for name in sorted({s.split("@")[0] for s in recorded}):
        unused = sorted(d for d in declared[name] if (name, d) not in used and d not in READ_ELSEWHERE.get(name, ()))
        if unused:
            problems.append(f"{name} declares unread {unused}")
    assert not problems, "; ".join(problems)


@pytest.mark.slow
def test_second_repro_does_nothing(pipeline):
    root, _ = pipeline
    again = dvc(root, "repro")  # in any order with the tests that change the workspace (they restore it)
    assert "Running stage" not in again, again
    assert "up to date" in again


@pytest.fixture
def workspace(pipeline):
    """The pipeline's workspace for a test that changes it: restored to the first run afterwards (params,
    lock and outputs from git and the DVC cache), so the tests do not depend on their order."""
    root, _ = pipeline
    yield root
    git(root, "checkout", "--", ".")
    dvc(root, "checkout", "--force")


@pytest.mark.slow
def test_n_languages_experiment_reruns_only_augmentation_and_evaluation(workspace):
    root = workspace
    out = dvc(root, "exp", "run", "-S", "n_languages=1")
    ran = stages_run(out)
    methods = ("xqg", "translate", "parallel_contexts", "real_questions")
    # and the report, which renders the changed metrics/retrieval.json into docs/results.md
    allowed = {f"{stage}@{m}" for m in methods for stage in ("augment", "index_augmented")} | {"evaluate", "report"}
    assert {"augment@xqg", "evaluate", "report"} <= ran <= allowed, out  # scaling sweeps every k: not its input
    assert "Stage 'generate_queries' didn't change, skipping" in out
    diff = dvc(root, "metrics", "diff")
    assert "xqg.avg.nDCG@10" in diff and "baseline.avg" not in diff, diff  # only the augmented system changed
    shown = dvc(root, "exp", "show", "--no-pager", "--csv")
    assert "n_languages" in shown.splitlines()[0]


@pytest.mark.slow
def test_adding_a_language_generates_only_for_it(workspace):
    """The text stages run for every language in one process; a new language re-runs them, and the finished
    chunks of the others (data/work/) are reused, not generated again."""
    root = workspace
    set_params(root / "params.yaml", languages=["de", "zh", "es"], n_languages=2)
    ran = stages_run(dvc(root, "repro"))
    assert {"generate_queries", "translate_passages", "parallel_contexts", "real_questions", "encode_items@xqg",
            "encode_items@real_questions"} <= ran
    assert not ran & {"train_xqg", "train_translator", "train_xdr", "encode", "prepare"}, ran
    for method in ("xqg", "translate"):
        stats = {lang: json.loads((root / "data" / "generated" / method / f"{lang}.stats.json").read_text())
                 for lang in ("de", "zh", "es")}
        assert stats["es"]["chunks_reused"] == 0, method
        assert all(stats[lang]["chunks_reused"] == stats[lang]["chunks"] > 0 for lang in ("de", "zh")), (method, stats)


@pytest.mark.slow
def test_stage_error_is_one_line(pipeline, tmp_path):
    root, _ = pipeline
    params = tmp_path / "params.yaml"
    shutil.copy(root / "params.yaml", params)
    set_params(params, **{"data.source": str(tmp_path / "missing.zip")})
    proc = subprocess.run([sys.executable, str(root / "stages" / "download.py"), "--params", str(params),
                           "--out", str(tmp_path / "raw")], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: data.source: {tmp_path / 'missing.zip'} does not exist "
                                                "(expected a .zip or directory in the MLQA_V1 layout)"]
