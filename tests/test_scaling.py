import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from xaug.data import MlqaArchive
from xaug.preparation import prepare, save_prepared
from xaug.errors import ConfigError
from xaug.evaluation import Evaluator
from xaug.fusion import FusionSettings, LanguageItems, combine
from xaug.methods import MethodItems, fusion_settings, load_method
from xaug.metrics import ALL_MEASURES
from xaug.controls import centroid_items, shuffled_items
from xaug.equal_items import equal_items
from xaug.hubness import centred, centring_grid
from xaug.queryset import QuerySet
from xaug.scaling import run_setting, write_scaling_outputs
from xaug.sweep import KResult, Projection, ScalingSettings, Sweep, average, subset_plan, sweep
from xaug.tables import comparison_report, contrast_table
from xaug.formats import write_embeddings
from xaug.io import read_jsonl
from xaug.search import FaissSearcher

LANGS = ["de", "zh"]


@pytest.fixture
def world(tmp_path, mini_zip):
    """Mini data, random passage vectors, and query vectors that are noisy copies of their passage."""
    data = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=3, tune_fraction=0)
    save_prepared(data, tmp_path / "mlqa")
    rng = np.random.default_rng(0)
    pids = [c["id"] for c in data.corpus]
    passages = rng.standard_normal((len(pids), 16)).astype(np.float32)
    pivot = {l["qid"]: l["contexts"]["en"] for l in data.links}
    queries = [q for q in data.queries if q["split"] == "eval"]
    qvec = np.stack([passages[pids.index(pivot[q["qid"]])] + 3.0 * rng.standard_normal(16) for q in queries])
    write_embeddings(tmp_path / "q", qvec.astype(np.float32), [q["id"] for q in queries])
    # "generated" de items: the de eval questions themselves, so augmenting with de helps de queries
    items = np.zeros((len(pids), 1, 16), dtype=np.float16)
    counts = np.zeros(len(pids), dtype=int)
    for q, v in zip(queries, qvec):
        if q["lang"] == "de":
            i = pids.index(pivot[q["qid"]])
            items[i, 0], counts[i] = v, 1
    zh = (rng.standard_normal((len(pids), 2, 16)).astype(np.float16), np.full(len(pids), 2))
    method = MethodItems("xqg", LANGS, [(items, counts), zh], [1.5, 2.5], [10, 20])
    return tmp_path, passages, pids, method, queries


def test_subset_plan():
    plan = subset_plan(6, "all")
    assert [len(plan[k]) for k in range(1, 7)] == [math.comb(6, k) for k in range(1, 7)]
    assert sum(len(v) for v in plan.values()) == 63
    assert subset_plan(3, "first") == {1: [(0,)], 2: [(0, 1)], 3: [(0, 1, 2)]}
    rand = subset_plan(6, "random:4", seed=1)
    assert [len(rand[k]) for k in range(1, 7)] == [4, 4, 4, 4, 4, 1]
    assert all(len(set(v)) == len(v) and all(len(s) == k and list(s) == sorted(s) for s in v) for k, v in rand.items())
    assert rand == subset_plan(6, "random:4", seed=1)
    for bad in ("some", "random:0", "random:x", 3):
        with pytest.raises(ConfigError, match="scaling.subsets"):
            subset_plan(3, bad)


@pytest.mark.parametrize("kwargs,message", [
    ({"subsets": "some"}, "scaling.subsets: expected all, first or random:R"),
    ({"weights": ["fixed", "fixed"]}, "scaling.weights: expected a list of distinct weight modes"),
    ({"permutations": -1}, r"scaling.permutations: expected an integer >= 0, got -1"),
    ({"resamples": 0}, r"scaling.resamples: expected a positive integer, got 0"),
    ({"workers": True}, r"scaling.workers: expected a positive integer, got True"),
    ({"equivalence_margin": 0}, r"scaling.equivalence_margin: expected a number in \(0, 1\), got 0"),
])
def test_scaling_settings_name_the_parameter(kwargs, message):
    with pytest.raises(ConfigError, match="^" + message):
        ScalingSettings(**kwargs)
    assert ScalingSettings(permutations=0).weights == ["fixed", "per_item"]


def test_a_cluster_is_every_query_of_one_relevant_passage(world):
    tmp, passages, pids, method, queries = world
    ev = Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4)
    relevant = {q: [d for d, rel in ev.qrels[q].items() if rel > 0] for q in ev.query_ids}
    assert all(len(r) == 1 for r in relevant.values())
    assert ev.query_cluster == {q: r[0] for q, r in relevant.items()}
    # translations of one question share the cluster, as do different questions about one passage
    question = {q["id"]: q["qid"] for q in read_jsonl(tmp / "mlqa" / "queries.jsonl")}
    for q1 in ev.query_ids:
        for q2 in ev.query_ids:
            if question[q1] == question[q2]:
                assert ev.query_cluster[q1] == ev.query_cluster[q2]


def test_one_subset_derives_in_set_and_out_of_set_as_the_average_would(world):
    """With one subset at a k (scaling.subsets: first, random:1), a KResult keeps the values once and derives
    in-set and out-of-set from which queries' languages the subset holds: the same figures as averaging, also
    for query blocks side by side (QuerySet.blocks) and for an average of permutations (the shuffled control)."""
    tmp, passages, pids, method, queries = world
    ev = Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4)
    qs = QuerySet.from_evaluator(ev, LANGS, pids)
    settings = FusionSettings(alpha=0.5, weight="fixed")
    items = method.reduced(None)
    plan = {1: [(1,)], 2: [(0, 1)]}
    by_k, singles = sweep(qs, passages, items, {1: settings, 2: settings}, plan, method.seconds, method.tokens)
    values = qs.score(combine(passages, [items[1]], settings))
    zh = qs.lang == 1
    assert by_k[1].held is not None and by_k[1]._inset is None and by_k[1].all is singles[1]
    np.testing.assert_array_equal(by_k[1].all, values)
    np.testing.assert_array_equal(by_k[1].inset[:, zh], values[:, zh])
    assert np.isnan(by_k[1].inset[:, ~zh]).all() and np.isnan(by_k[1].outset[:, zh]).all()
    np.testing.assert_array_equal(by_k[1].outset[:, ~zh], values[:, ~zh])
    # stored, as the average over subsets gives it: the same figures
    stored = KResult(by_k[1].all, by_k[1].inset, by_k[1].outset, 1, 0.0, 0.0)
    for group in ("all", "in-set", "out-of-set"):
        np.testing.assert_array_equal(stored.group(group), by_k[1].group(group))
    half = len(qs.lang) // 2
    blocks = [KResult(by_k[1].all[:, rows], None, None, 1, 0.0, 0.0, held=by_k[1].held[rows])
              for rows in (slice(0, half), slice(half, None))]
    joined = KResult.side_by_side(blocks)
    assert joined._inset is None
    np.testing.assert_array_equal(joined.inset, by_k[1].inset)
    mixed = KResult.side_by_side([blocks[0], KResult(by_k[1].all[:, half:], by_k[1].inset[:, half:],
                                                     by_k[1].outset[:, half:], 1, 0.0, 0.0)])
    assert mixed.held is None
    np.testing.assert_array_equal(mixed.outset, by_k[1].outset)
    averaged = average([by_k, by_k])
    np.testing.assert_array_equal(averaged[1].inset, by_k[1].inset)


def test_sweep_averages_each_query_over_the_subsets_that_hold_its_language(world):
    tmp, passages, pids, method, queries = world
    ev = Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4)
    qs = QuerySet.from_evaluator(ev, LANGS, pids)
    settings = FusionSettings(alpha=0.5, weight="fixed")
    items = method.reduced(None)
    by_k, singles = sweep(qs, passages, items, {1: settings, 2: settings}, subset_plan(2, "all"), method.seconds,
                          method.tokens)
    alone = {i: qs.score(combine(passages, [items[i]], settings)) for i in range(2)}
    np.testing.assert_array_equal(singles[0], alone[0])
    de = qs.lang == 0
    # k = 1: a de query is in-set only under {de}, out-of-set only under {zh}; all = the mean of both
    np.testing.assert_allclose(by_k[1].inset[:, de], alone[0][:, de])
    np.testing.assert_allclose(by_k[1].outset[:, de], alone[1][:, de])
    np.testing.assert_allclose(by_k[1].all, (alone[0] + alone[1]) / 2)
    assert np.isnan(by_k[2].outset[:, qs.lang >= 0]).all() and by_k[2].subsets == 1
    assert by_k[1].seconds == pytest.approx(2.0) and by_k[2].tokens == 30
    # the corpus language's queries are never in-set
    assert np.isnan(by_k[1].inset[:, qs.lang < 0]).all()
    # the scorer agrees with the faiss searcher path
    searcher = FaissSearcher.build(passages, pids)
    per_query = ev.per_query(*ev.search(searcher))
    base = qs.score(passages)
    for j, q in enumerate(ev.query_ids):
        for i, m in enumerate(ALL_MEASURES):
            assert base[i, j] == pytest.approx(per_query[q][m]), (q, m)
    hnsw = QuerySet.from_evaluator(ev, LANGS, pids, factory="HNSW8", search_params="efSearch=64")
    np.testing.assert_allclose(hnsw.score(passages), base)  # exact enough on 4 passages


def test_projection_equals_scoring_the_fused_passages(world):
    tmp, passages, pids, method, queries = world
    qs = QuerySet.from_evaluator(Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4), LANGS, pids)
    items = method.reduced(None)
    projection = Projection(qs, passages, items)
    for weight, renormalize, subset in itertools.product(("fixed", "per_item"), (True, False), ((0,), (1,), (0, 1))):
        settings = FusionSettings(0.4, weight, renormalize)
        direct = qs.vectors @ combine(passages, [items[i] for i in subset], settings).T
        np.testing.assert_allclose(projection.scores(subset, settings), direct, rtol=1e-4, atol=1e-4)


def test_sweeps_of_one_scorer_take_the_results_of_the_fusions_they_meet(world, monkeypatch):
    """``sweep(..., done=...)``: a k whose subsets and fusion keys (``SubsetScorer.fusion_key``) an earlier sweep of
    the scorer scored takes that result (the same ``KResult``, the same single languages) and scores nothing; any
    other alpha, weight mode or renormalize state is scored, as a sweep of its own scores it. The weight modes are
    one where no passage has more than one of the subset's items (de's here: one or none) and the scores are
    projected without a leave-out, not for a leave-out method, whose correction fuses the passages (the fixed
    mode's pool in float64, the per-item mode's in float32)."""
    import dataclasses

    from xaug.leave_out import OwnItems
    from xaug.sweep import SubsetScorer

    tmp, passages, pids, method, queries = world
    qs = QuerySet.from_evaluator(Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4), LANGS, pids)
    items = method.reduced(None)
    assert int(items[0].counts.max()) == 1 and int(items[1].counts.max()) == 2
    scorer, scored, done = SubsetScorer(qs, passages, items), [], {}
    score = SubsetScorer.__call__  # the calls on ``scorer`` counted
    monkeypatch.setattr(SubsetScorer, "__call__",
                        lambda self, *args: (self is scorer and scored.append(args)) or score(self, *args))
    plan = subset_plan(2, "all")  # k = 1: (0,), (1,); k = 2: (0, 1)
    base = FusionSettings(0.3, "fixed", True)

    def run(fusion):
        return sweep(qs, passages, items, {1: fusion, 2: fusion}, plan, method.seconds, method.tokens,
                     scorer=scorer, done=done)

    first, singles = run(base)
    assert len(scored) == 3
    again, singles_again = run(FusionSettings(0.3, "fixed", True))
    assert all(again[k] is first[k] for k in plan) and len(scored) == 3
    assert singles_again.keys() == singles.keys() and all(singles_again[i] is singles[i] for i in singles)
    per_item, _ = run(dataclasses.replace(base, weight="per_item"))  # k = 1: (1,) has two items per passage
    assert len(scored) == 6 and per_item[1] is not first[1] and per_item[2] is not first[2]
    for fusion in (dataclasses.replace(base, alpha=0.6), dataclasses.replace(base, renormalize=False)):
        before = len(scored)
        got, _ = run(fusion)
        assert len(scored) == before + 3 and all(got[k] is not first[k] for k in plan)
        alone, _ = sweep(qs, passages, items, {1: fusion, 2: fusion}, plan, method.seconds, method.tokens)
        for k in plan:
            np.testing.assert_array_equal(got[k].all, alone[k].all)
    got, _ = run(dataclasses.replace(base, weight="per_item"))  # the per-item run's results, taken
    assert all(got[k] is per_item[k] for k in plan) and len(scored) == 12
    alone, _ = sweep(qs, passages, items, {k: dataclasses.replace(base, weight="per_item") for k in plan}, plan,
                     method.seconds, method.tokens)
    for k in plan:
        np.testing.assert_array_equal(got[k].all, alone[k].all)
    # de alone: the weight modes are one, and each as a sweep of its own scores it
    de_plan = {1: [(0,)]}
    de, _ = sweep(qs, passages, items, {1: base}, de_plan, method.seconds, method.tokens, scorer=scorer, done=done)
    before = len(scored)
    de_item, _ = sweep(qs, passages, items, {1: dataclasses.replace(base, weight="per_item")}, de_plan,
                       method.seconds, method.tokens, scorer=scorer, done=done)
    assert de_item[1] is de[1] and len(scored) == before
    alone, _ = sweep(qs, passages, items, {1: dataclasses.replace(base, weight="per_item")}, de_plan,
                     method.seconds, method.tokens)
    np.testing.assert_array_equal(de[1].all, alone[1].all)
    # a leave-out scorer keeps the weight modes apart
    own = [OwnItems(np.full(len(qs.lang), -1), np.full(len(qs.lang), -1), np.zeros((len(qs.lang), 16), np.float32))
           for _ in items]
    leave_out = SubsetScorer(qs, passages, items, own)
    assert leave_out.fusion_key((0,), base) != leave_out.fusion_key((0,), dataclasses.replace(base, weight="per_item"))
    assert scorer.fusion_key((0,), base) == scorer.fusion_key((0,), dataclasses.replace(base, weight="per_item"))


def test_one_similarity_with_an_unnormalised_encoder():
    """With passages of unequal norms (``xdr.normalize: false``), renormalised systems keep each passage's norm,
    so they rank by the baseline's inner product (at alpha 0 exactly the baseline, not its cosine); the projection
    equals scoring the fused passages, and centring keeps the norms too."""
    rng = np.random.default_rng(3)
    passages = (rng.standard_normal((7, 4)) * rng.uniform(0.3, 3.0, (7, 1))).astype(np.float32)
    queries = rng.standard_normal((5, 4)).astype(np.float32)
    qs = QuerySet(queries, np.zeros(5, np.int64), np.arange(5), None, "global")
    counts = np.array([2, 1, 0, 3, 1, 2, 1])
    items = [LanguageItems((rng.standard_normal((7, 4)) * counts[:, None]).astype(np.float32), counts),
             LanguageItems(rng.standard_normal((7, 4)).astype(np.float32), np.ones(7, np.int64))]
    norms = np.linalg.norm(passages, axis=1)
    for weight in ("fixed", "per_item"):
        zero = combine(passages, items, FusionSettings(0.0, weight, renormalize=True))
        np.testing.assert_allclose(zero, passages, rtol=1e-5, atol=1e-6)  # the baseline, not unit vectors
        fused = combine(passages, items, FusionSettings(0.3, weight, renormalize=True))
        np.testing.assert_allclose(np.linalg.norm(fused, axis=1), norms, rtol=1e-5)
        projection = Projection(qs, passages, items)
        for subset in ((0,), (1,), (0, 1)):
            settings = FusionSettings(0.3, weight, renormalize=True)
            direct = queries @ combine(passages, [items[i] for i in subset], settings).T
            np.testing.assert_allclose(projection.scores(subset, settings), direct, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(centred(passages, 0.0), passages, rtol=1e-5, atol=1e-6)  # beta 0: the baseline
    np.testing.assert_allclose(np.linalg.norm(centred(passages, 1.0), axis=1), norms, rtol=1e-5)
    unit = passages / norms[:, None]  # a normalising encoder: renormalised systems stay unit vectors
    np.testing.assert_allclose(np.linalg.norm(combine(unit, items, FusionSettings(0.3, "fixed", renormalize=True)),
                                              axis=1), 1.0, rtol=1e-5)


def test_controls_keep_coverage_and_counts():
    rng = np.random.default_rng(0)
    counts = np.array([0, 2, 1, 0, 2, 2])
    sums = rng.standard_normal((6, 3)).astype(np.float32) * counts[:, None]
    lang = LanguageItems(sums, counts)
    shuffled = shuffled_items([lang], np.random.default_rng(4))[0]
    assert (shuffled.counts > 0).tolist() == (counts > 0).tolist()  # the same passages stay covered
    assert sorted(map(tuple, shuffled.sums.round(5))) == sorted(map(tuple, sums.round(5)))
    assert not np.array_equal(shuffled.sums, sums)
    for i in np.flatnonzero(counts):  # each item set travels with its own count
        j = [r for r in range(6) if np.allclose(sums[r], shuffled.sums[i])][0]
        assert shuffled.counts[i] == counts[j]
    centroid = centroid_items([lang])[0]
    centre = sums.sum(0) / counts.sum()
    np.testing.assert_allclose(centroid.sums, counts[:, None] * centre[None, :], rtol=1e-5)
    fused = combine(np.zeros((6, 3), np.float32), [centroid], FusionSettings(1.0, "fixed"))
    np.testing.assert_allclose(fused[counts > 0], np.broadcast_to(centre, (4, 3)), rtol=1e-5)


def test_run_setting_tables_transfer_and_plots(world):
    tmp, passages, pids, method, queries = world
    ev = Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4)
    qs = QuerySet.from_evaluator(ev, LANGS, pids)
    other = MethodItems("translate", LANGS, method.raw[::-1], [3.0, 4.0], [30, 40])
    settings = {m: {(w, r): {1: FusionSettings(0.3, w, r), 2: FusionSettings(0.2 if r else 0.1, w, r)}
                    for w in ("fixed", "per_item") for r in (True, False)} for m in ("xqg", "translate")}
    args = (qs, passages, {"xqg": method, "translate": other}, settings, subset_plan(2, "all"), ["fixed", "per_item"],
            3, 0, 200, LANGS)
    gains, contrasts, transfer = run_setting(*args)
    forked = run_setting(*args, workers=2)  # the same numbers from worker processes (and the tests from threads)
    pd.testing.assert_frame_equal(forked[0], gains)
    pd.testing.assert_frame_equal(forked[1], contrasts)
    assert forked[2] == transfer
    names = set(gains["method"])
    assert names == {"baseline", "normalisation"} | {f"{m}{v}" for m in ("xqg", "translate") for v in (
        "", "-shuffled", "-centroid", "-one_alpha", "-equal_items")}
    assert set(gains.loc[gains["variant"] != "method", "weight"]) == {"fixed"}  # controls: primary mode
    assert set(gains.loc[gains["method"] == "xqg", "weight"]) == {"fixed", "per_item"}
    # each k uses its own alpha; one_alpha the largest k's at every k; equal_items k = 1's at every k
    xqg = gains[(gains["method"] == "xqg") & gains["primary"] & (gains["group"] == "all")].set_index("k")["alpha"]
    assert xqg.to_dict() == {1: 0.3, 2: 0.2}
    for variant, alpha in (("one_alpha", 0.2), ("equal_items", 0.3)):
        assert set(gains.loc[gains["method"] == f"xqg-{variant}", "alpha"]) == {alpha}
    # every method and control runs renormalized and raw (each with its own alpha); only the first weight
    # mode's configured state is primary
    for name in ("xqg", "xqg-shuffled", "xqg-centroid"):
        part = gains[(gains["method"] == name) & (gains["weight"] == "fixed")]
        assert set(part["renormalize"]) == {True, False} and set(part.loc[part["primary"], "renormalize"]) == {True}
    assert not gains.loc[gains["weight"] == "per_item", "primary"].any()
    tested = gains[gains["k"] > 0]
    assert tested[["p_nDCG@10", "p_holm_nDCG@10"]].stack().between(0, 1).all()
    assert (tested["ci_low_nDCG@10"] <= tested["delta_nDCG@10"] + 1e-12).all()
    assert (tested["clusters"] <= tested["queries"]).all() and (tested["clusters"] > 0).all()
    assert set(tested["group"]) == {"all", "in-set", "out-of-set", "same-language"}
    k2 = tested[(tested["k"] == 2)]
    assert "out-of-set" not in set(k2["group"])
    assert set(contrasts["b"]) == {"xqg-shuffled", "xqg-centroid", "translate-shuffled", "translate-centroid",
                                   "translate", "normalisation", "xqg-equal_items", "translate-equal_items",
                                   "xqg-equal_items-k1", "translate-equal_items-k1"}
    # more languages (or items) at equal items: at k = 1 a system against itself, not tested
    equal = contrasts[contrasts["kind"].isin(["languages-at-equal-items", "items-at-equal-languages"])]
    assert set(equal["k"]) == {2}
    assert contrasts["p_tost_nDCG@10"].between(0, 1).all() and (contrasts["margin"] == 0.01).all()
    # the largest Holm family (one setting, kind and group: methods x k) gets resamples for its size
    largest = max(gains[gains["k"] > 0].groupby("family").size().max(), 1)
    assert (tested["resamples"] >= 4 * largest / 0.05 - 1).all()
    t = transfer["xqg"]
    assert t["languages"] == LANGS and len(t["gain"]) == 2 and len(t["gain"][0]) == 2
    assert {"diagonal", "off_diagonal", "diagonal_minus_off_diagonal"} <= set(t)
    # every cell carries its passage-level CI (around the passage-level mean, not the per-query one) and Holm p
    assert np.array(t["p_holm"], dtype=float).shape == (2, 2) and t["cell_resamples"] >= 199
    assert all(0 <= p <= 1 for row in t["p_holm"] for p in row)
    assert all(lo <= hi for lows, highs in zip(t["ci_low"], t["ci_high"]) for lo, hi in zip(lows, highs))
    json.dumps(transfer)  # serialisable as metrics/transfer.json
    report = comparison_report(contrasts)
    entry = report["global"]["xqg - xqg-shuffled"]["1"]["all"]
    assert {"delta_nDCG@10", "p_holm_nDCG@10", "p_tost_nDCG@10", "queries", "clusters"} <= set(entry)
    write_scaling_outputs(gains, contrasts, {"global": transfer}, ["fixed", "per_item"], tmp / "plots",
                          tmp / "comparison.json", tmp / "transfer.json")
    assert json.loads((tmp / "comparison.json").read_text()) == json.loads(json.dumps(report))
    for name in ("scaling.png", "weight_modes.png", "variants.png", "cost.png", "transfer.png", "scaling/xqg.csv",
                 "scaling/xqg-shuffled.csv", "scaling/xqg.raw.csv", "scaling.csv", "contrasts.csv"):
        assert (tmp / "plots" / name).stat().st_size > 500, name


@pytest.mark.parametrize("candidates", [0, 4])
def test_the_runs_of_one_set_of_items_share_a_scorer_and_equal_separate_sweeps(world, candidates):
    # one task per set of items (the method's own, a shuffled permutation): its runs (weight mode x renormalize,
    # one alpha) reuse one scorer per items count; each run's values equal a sweep of its own
    import xaug.scaling as scaling
    from xaug.controls import permutation_plan, shuffle

    tmp, passages, pids, method, queries = world
    qs = QuerySet.from_evaluator(Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4), LANGS, pids,
                                 candidates=candidates)
    # k = 1 uses one item per passage and language, k = 2 all of them: two scorers per task
    settings = {"xqg": {(w, r): {1: FusionSettings(0.3, w, r, 1), 2: FusionSettings(0.6 if r else 0.1, w, r)}
                        for w in ("fixed", "per_item") for r in (True, False)}}
    plan = subset_plan(2, "all")
    own = tuple(("method", w, r) for w in ("fixed", "per_item") for r in (True, False)) + (("one_alpha", "fixed", True),)
    shuffled = (("shuffled", "fixed", True), ("shuffled", "fixed", False))
    scaling._TASK_CONTEXT.update(queries=qs, passages=passages, methods={"xqg": method}, settings=settings, plan=plan,
                                 seed=0)
    try:
        grouped = {**scaling._run_items(("xqg", "method", 0, own)), **scaling._run_items(("xqg", "shuffled", 1, shuffled))}
    finally:
        scaling._TASK_CONTEXT.clear()
    assert list(grouped) == list(own + shuffled)
    for (variant, w, r), (by_k, singles) in grouped.items():
        fusion = {k: settings["xqg"]["fixed", True][2] for k in plan} if variant == "one_alpha" else settings["xqg"][w, r]
        for k in plan:
            items = method.reduced(fusion[k].n_items_used)
            subsets = {k: plan[k]}
            if variant == "shuffled":
                items, subsets = shuffle(items, np.random.default_rng([0, 1]))[0], {k: permutation_plan(plan, 1)[k]}
            alone, _ = sweep(qs, passages, items, fusion, subsets, method.seconds, method.tokens)
            for group in ("all", "inset", "outset"):
                np.testing.assert_array_equal(getattr(by_k[k], group), getattr(alone[k], group))
            assert by_k[k].alpha == fusion[k].alpha and by_k[k].items == fusion[k].n_items_used
        if variant != "shuffled":  # the transfer matrix's single languages (k = 1)
            assert set(singles) == {0, 1}


def test_query_blocks_side_by_side_keep_a_single_language_that_is_a_ks_values_as_that_array():
    # a plan with one subset at k = 1: a single language's values are that k's (sweep); joined over the query
    # blocks they stay one array (a copy would be sent and held beside it), and the other single is joined on its own
    from xaug.sweep import blocks_side_by_side

    rng = np.random.default_rng(0)
    parts = []
    for width in (3, 2):
        values = {k: rng.random((len(ALL_MEASURES), width)) for k in (1, 2)}
        by_k = {k: KResult(v, None, None, 1, 0.0, 0.0, held=np.arange(width) % 2 == 0) for k, v in values.items()}
        parts.append((by_k, {0: values[1], 1: rng.random((len(ALL_MEASURES), width))}))
    by_k, singles = blocks_side_by_side(parts)
    assert singles[0] is by_k[1].all
    np.testing.assert_array_equal(singles[0], np.concatenate([p[1][0] for p in parts], axis=1))
    np.testing.assert_array_equal(singles[1], np.concatenate([p[1][1] for p in parts], axis=1))
    np.testing.assert_array_equal(by_k[2].all, np.concatenate([p[0][2].all for p in parts], axis=1))
    assert singles[1] is not by_k[1].all and singles[1] is not by_k[2].all


def test_method_inputs_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="de: xqg embeddings for 'de' not found"):
        load_method(tmp_path, "xqg", ["de", "zh"])
    with pytest.raises(ConfigError, match=r"augment.xqg.n_queries_used: 6 > xqg.n_queries \(5\)"):
        fusion_settings({"augment": {"xqg": {"alpha": 0.1, "n_queries_used": 6}}, "xqg": {"n_queries": 5}}, "xqg")
    with pytest.raises(ConfigError, match="augment.xqg.alpha"):
        fusion_settings({"augment": {"xqg": {"alpha": 2}}}, "xqg")
    with pytest.raises(ConfigError, match="augment.translate: missing"):
        fusion_settings({"augment": {}}, "translate")
    with pytest.raises(ConfigError, match=r"augment.xqg.alpha: auto needs the tune stage"):
        fusion_settings({"augment": {"xqg": {"alpha": "auto", "n_queries_used": 2}}}, "xqg")
    with pytest.raises(ConfigError, match=r"^augment.xqg.pool: unknown setting"):
        fusion_settings({"augment": {"xqg": {"alpha": 0.1, "pool": "sum"}}}, "xqg")
    with pytest.raises(ConfigError, match=r"^augment.translate.n_queries_used: unknown setting"):
        fusion_settings({"augment": {"translate": {"alpha": 0.1, "n_queries_used": 2}}}, "translate")
    def choices(*by_k):
        return {"renormalized": {"by_k": {str(k): {"alpha": a, "n_queries_used": n} for k, (a, n) in enumerate(by_k, 1)}}}

    tuning = {"choices": {"xqg": {"fixed": choices((0.03, 2), (0.05, 3)), "per_item": choices((0.02, 1), (0.01, 1))}}}
    auto = fusion_settings({"augment": {"xqg": {"alpha": "auto", "n_queries_used": "auto", "renormalize": True}},
                            "n_languages": 2}, "xqg", tuning)
    assert (auto.alpha, auto.n_items_used, auto.weight) == (0.05, 3, "fixed")  # the choice for n_languages
    first = fusion_settings({"augment": {"xqg": {"alpha": "auto", "n_queries_used": "auto", "renormalize": True}}},
                            "xqg", tuning, k=1)
    assert (first.alpha, first.n_items_used) == (0.03, 2)  # each k its own choice
    with pytest.raises(ConfigError, match=r"augment.xqg.alpha: auto needs the tune stage's choice for xqg "
                                          r"\(fixed weight, raw\)"):
        fusion_settings({"augment": {"xqg": {"alpha": "auto", "renormalize": False}}}, "xqg", tuning)
    tuning = {"choices": {"xqg": {"fixed": choices((0.05, 3)), "per_item": choices((0.01, 1))}}}
    fixed = fusion_settings({"augment": {"xqg": {"alpha": 0.2, "n_queries_used": 2, "renormalize": True}}}, "xqg",
                            tuning)
    assert (fixed.alpha, fixed.n_items_used) == (0.2, 2)  # a number overrides the tuned choice
    other = fusion_settings({"augment": {"xqg": {"alpha": 0.2, "n_queries_used": 2, "renormalize": True}}}, "xqg",
                            tuning, "per_item")
    assert (other.alpha, other.n_items_used) == (0.01, 1)  # the non-configured mode always uses its tuned choice


def test_contrast_pairs_the_same_queries_and_averages_per_cluster():
    """Six queries: de q0, q1 and zh q3 share the relevant passage a; q2 (de) is about passage b, q4 (zh) about
    c, q5 (en) about d."""
    queries = QuerySet(np.zeros((6, 2), np.float32), np.array([0, 0, 0, 1, 1, -1]),
                       np.array(["a", "a", "b", "a", "c", "d"]), judgements=None, setting="global")
    m = len(ALL_MEASURES)

    def result(values):
        v = np.tile(np.array(values, dtype=float), (m, 1))
        return {1: KResult(v, v, v, 1, 0.0, 0.0)}

    a = Sweep("xqg", "method", "fixed", result([0.5, 0.6, 0.7, 0.1, 0.2, 1.0]))
    b = Sweep("translate", "method", "fixed", result([0.4, 0.5, 0.5, 0.1, 0.3, 0.0]))
    frame = contrast_table(queries, [(a, b, "between-methods")], 200, 0, margin=0.5)
    allq = frame[frame["group"] == "all"].iloc[0]
    # per passage cluster: a = mean(0.1, 0.1, 0.0) = 0.0667, b = 0.2, c = -0.1; English (d) is not cross-lingual
    assert allq["queries"] == 5 and allq["clusters"] == 3
    assert allq["delta_nDCG@10"] == pytest.approx((0.2 / 3 + 0.2 - 0.1) / 3)
    same = frame[frame["group"] == "same-language"].iloc[0]
    assert same["queries"] == 1 and same["delta_nDCG@10"] == pytest.approx(1.0)


def test_tables_average_a_groups_rows_in_chunks_and_in_threads_with_the_same_results(monkeypatch):
    """A table's rows sharing members are averaged within clusters ``MEANS_BYTES`` at a time and tested in
    ``workers`` threads: the same deltas, CIs and p-values as all rows at once in one thread."""
    import xaug.tables as tables

    rng = np.random.default_rng(11)
    n = 400
    queries = QuerySet(np.zeros((n, 2), np.float32), rng.integers(-1, 3, n), rng.integers(0, 90, n),
                       judgements=None, setting="global")
    m = len(ALL_MEASURES)

    def sweep(name, shift):
        v = rng.normal(shift, 0.2, (m, n))
        return Sweep(name, "method", "fixed", {k: KResult(v + k / 100, v, v, 1, 0.0, 0.0) for k in (1, 2, 3)})

    pairs = [(sweep(f"a{i}", 0.05), sweep(f"b{i}", 0.0), "between-methods") for i in range(4)]
    whole = contrast_table(queries, pairs, 200, 0, margin=0.05)
    sizes = []
    means = tables.cluster_means
    monkeypatch.setattr(tables, "cluster_means", lambda v, c: sizes.append(len(v)) or means(v, c))
    monkeypatch.setattr(tables, "MEANS_BYTES", 8)  # one row of a group at a time
    chunked = contrast_table(queries, pairs, 200, 0, margin=0.05, workers=2)
    assert set(sizes) == {1} and len(sizes) == 2 * len(chunked)  # every row, each tested measure
    pd.testing.assert_frame_equal(chunked, whole)


def test_settings_groups_name_the_parameter():
    from xaug.evaluation import EvaluateSettings, default_systems, metrics_path
    from xaug.params import Params, from_params
    from xaug.search import IndexSettings
    from xaug.tuning import TuneSettings

    p = Params({"tune": {"alphas": [0.1], "n_queries_used": [1, 4], "measure": "nDCG@10"},
                "evaluate": {"depth": 0, "settings": ["global"]}, "index": {"factory": "Flat", "nprobe": 2},
                "augment": {"xqg": {"alpha": "auto", "n_queries_used": 0}}})
    with pytest.raises(ConfigError, match=r"^tune.n_queries_used: expected an integer in \[1, 3\]"):
        from_params(TuneSettings, p.get_path("tune")).check_generated(3)
    for kwargs, message in (({"alphas": [0]}, "tune.alphas"), ({"measure": "MAP"}, "tune.measure"),
                            ({"n_queries_used": 2}, "tune.n_queries_used")):
        with pytest.raises(ConfigError, match="^" + message):
            TuneSettings(**kwargs)
    with pytest.raises(ConfigError, match=r"^evaluate.depth: expected a positive integer, got 0"):
        from_params(EvaluateSettings, p.get_path("evaluate"))
    with pytest.raises(ConfigError, match=r"^evaluate.settings: unknown corpus setting 'local'"):
        EvaluateSettings(settings=["local"])
    with pytest.raises(ConfigError, match=r"^index.nprobe: unknown setting"):
        from_params(IndexSettings, p.get_path("index"))
    with pytest.raises(ConfigError, match=r"^augment.xqg.n_queries_used: expected a positive integer, got 0"):
        fusion_settings(p, "xqg")
    assert default_systems("idx", ["xqg"]) == ["baseline=idx/baseline.faiss", "xqg=idx/xqg.faiss"]
    assert str(metrics_path("m/retrieval.json", "parallel")) == "m/retrieval_parallel.json"
    assert str(metrics_path("m/retrieval.json", "global")) == "m/retrieval.json"


def test_equal_items_hold_the_pool_constant_and_spread_it_over_the_languages():
    rng = np.random.default_rng(0)
    n, m, dim = 50, 3, 4
    raw = [(rng.standard_normal((n, m, dim)).astype(np.float32), np.full(n, m)) for _ in range(4)]
    one = equal_items(raw, (2,), 3, np.random.default_rng(1))
    np.testing.assert_allclose(one.sums, raw[2][0].sum(axis=1), atol=1e-5)  # k = 1: that language's items
    assert (one.counts == 3).all()
    spread = equal_items(raw, (0, 1, 2, 3), 3, np.random.default_rng(1))
    assert (spread.counts == 3).all()  # as many items as at k = 1
    firsts = np.stack([raw[lang][0][:, 0] for lang in range(4)], axis=1)  # (n, 4, dim): each language's first item
    for p in range(n):  # k >= 3: the first item of three different languages
        chosen = [lang for lang in range(4) if any(np.allclose(firsts[p, lang] + firsts[p, b] + firsts[p, c],
                                                               spread.sums[p], atol=1e-5)
                                                   for b in range(4) for c in range(4) if len({lang, b, c}) == 3)]
        assert chosen, p
    two = equal_items(raw, (0, 1), 3, np.random.default_rng(1))  # two items of one language, one of the other
    for p in range(n):
        a, b = raw[0][0][p], raw[1][0][p]
        assert np.allclose(two.sums[p], a[0] + a[1] + b[0], atol=1e-5) or np.allclose(two.sums[p], b[0] + b[1] + a[0],
                                                                                      atol=1e-5)
    # a passage without items in a language draws from those that have them
    holes = [(raw[0][0], np.where(np.arange(n) % 2 == 0, 0, m)), raw[1]]
    pooled = equal_items(holes, (0, 1), 1, np.random.default_rng(2))
    even = np.arange(n) % 2 == 0
    np.testing.assert_allclose(pooled.sums[even], raw[1][0][even, 0], atol=1e-6)
    assert (pooled.counts == 1).all()


def test_the_normalisation_baseline_is_centring():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((20, 5)).astype(np.float32) + 2.0
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    np.testing.assert_allclose(centred(p, 0.0), p, rtol=1e-6)  # unit passages: beta 0 is the baseline
    full = centred(p, 1.0)
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, rtol=1e-6)
    expected = p - p.mean(axis=0)
    np.testing.assert_allclose(full, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    # adding the mean with weight alpha and re-normalising is beta = -alpha / (1 - alpha)
    added = 0.7 * p + 0.3 * p.mean(axis=0)
    np.testing.assert_allclose(centred(p, -0.3 / 0.7), added / np.linalg.norm(added, axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    grid = centring_grid([0.1, 0.5, 1.0])
    assert grid == sorted(grid) and 1.0 in grid and 0.1 in grid and -1.0 in grid and round(-0.1 / 0.9, 6) in grid


def test_a_constant_shift_changes_no_ranking_without_renormalization(world):
    """With every passage covered, the centroid control adds one vector to every passage: raw, its gain is exactly
    zero; renormalized, whatever it gains is the renormalization."""
    tmp, passages, pids, method, queries = world
    qs = QuerySet.from_evaluator(Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4), LANGS, pids)
    full = MethodItems("translate", ["zh"], [method.raw[1]], [1.0], [10])
    settings = {"translate": {("fixed", r): {1: FusionSettings(0.5, "fixed", r)} for r in (True, False)}}
    gains, contrasts, _ = run_setting(qs, passages, {"translate": full}, settings, {1: [(0,)]}, ["fixed"], 2, 0, 200,
                                      ["zh"])
    raw = gains[(gains["method"] == "translate-centroid") & ~gains["renormalize"]]
    assert len(raw) and (raw["delta_nDCG@10"] == 0).all() and (raw["delta_R@2kt"] == 0).all()


def test_a_methods_list_indexes_are_trained_once_and_serve_its_sets_of_items(world, monkeypatch):
    # with an index per candidate list, the stage trains each method's lists once (list_templates_of, in worker
    # processes) for every items count it uses; its own set of items then scores as it does training them itself,
    # and its controls train no list of their own
    import types

    import xaug.candidates as candidates
    import xaug.scaling as scaling
    from xaug.candidates import CandidateSearch
    from xaug.controls import centroid_items
    from xaug.search import IndexSettings
    from xaug.variants import fused_templates

    tmp, passages, pids, method, queries = world
    search = CandidateSearch("IVF2,Flat", "nprobe=1")
    qs = QuerySet.from_evaluator(Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4), LANGS, pids, candidates=4,
                                 search=search)
    settings = {"xqg": {(w, r): {1: FusionSettings(0.3, w, r, 1), 2: FusionSettings(0.6 if r else 0.1, w, r)}
                        for w in ("fixed", "per_item") for r in (True, False)}}
    exp = types.SimpleNamespace(methods={"xqg": method}, passages=passages, candidates=4, depth=4, search=search,
                                index=IndexSettings())
    templates = scaling.list_templates_of(exp, settings, workers=2)
    assert set(templates) == {"xqg"} and set(templates["xqg"]) == {1, None} and all(templates["xqg"].values())
    assert scaling.list_templates_of(types.SimpleNamespace(**{**vars(exp), "search": CandidateSearch()}),
                                     settings, 1) == {}
    # with the plan, the fused corpora of the sets of items that score from them (xaug.variants.corpus_keys, where
    # they cost less to search than the lists: here every set, so that no list is trained): the method's own under
    # every weight mode and renormalize state (and one alpha, the largest k's, at every k), the shuffled
    # permutations' subsets and the centroids' plan under the first weight mode, both renormalize states
    weighted = types.SimpleNamespace(**vars(exp), weights=["fixed", "per_item"])
    fused = scaling.list_templates_of(weighted, settings, 2, subset_plan(2, "all"), 2, {"xqg": True})
    assert all(isinstance(key, tuple) for n in (1, None) for key in fused["xqg"][n])  # no list's position
    assert set(fused_templates(fused["xqg"][1], "method")) == \
        {((i,), 0.3, w, r) for i in (0, 1) for w in ("fixed", "per_item") for r in (True, False)}
    assert set(fused_templates(fused["xqg"][None], "method")) == \
        {((0, 1), 0.6, w, True) for w in ("fixed", "per_item")} \
        | {((0, 1), 0.1, w, False) for w in ("fixed", "per_item")} | {((i,), 0.6, "fixed", True) for i in (0, 1)}
    for kind in ("shuffled", "centroid"):
        assert set(fused_templates(fused["xqg"][1], kind)) == \
            {((i,), 0.3, "fixed", r) for i in (0, 1) for r in (True, False)}
        assert set(fused_templates(fused["xqg"][None], kind)) == \
            {((0, 1), 0.6, "fixed", True), ((0, 1), 0.1, "fixed", False)}
    # each trained on vectors like its own, once where keys meet: the method's and a shuffled permutation's on the
    # method's items fused (the same vectors, rearranged), the centroids' on the centroids fused (the method's
    # cells would hold them in a few cells)
    seen = []
    real_trained_fused = scaling.trained_fused
    monkeypatch.setattr(scaling, "trained_fused",
                        lambda passages, items, keys, search, kind: seen.append((kind, items)) or
                        real_trained_fused(passages, items, keys, search, kind))
    scaling.list_templates_of(weighted, settings, 1, subset_plan(2, "all"), 2, {"xqg": True})
    assert sorted(kind for kind, _ in seen) == ["centroid", "centroid", "method", "method"]
    for (kind, items), n in zip(seen, [1, 1, None, None]):
        expected = method.reduced(n) if kind == "method" else centroid_items(method.reduced(n))
        for got, want in zip(items, expected):
            np.testing.assert_allclose(got.sums, want.sums, rtol=1e-6)
    # a set whose fused corpora cost more to search than its lists (twice as many corpora as lists, each to
    # K = the depth) has its lists trained, beside the fused corpora of a set that scores from them
    from xaug.sweep import searched_lists

    lists = searched_lists(method.reduced(1))
    many = [((i,), float(a), "fixed", True) for i in (0, 1) for a in np.linspace(0.1, 0.9, lists)]
    few = [((0,), 0.3, "fixed", True)]
    scaling._TASK_CONTEXT.update(passages=np.asarray(passages, dtype=np.float32), methods={"xqg": method},
                                 search=search, candidates=4, depth=4)
    try:
        mixed = candidates.unpack_templates(scaling._train_lists(("xqg", 1, [("method", many), ("shuffled", few)])))
    finally:
        scaling._TASK_CONTEXT.clear()
    assert any(not isinstance(key, tuple) for key in mixed)  # the lists, by position
    assert {key for key in mixed if isinstance(key, tuple)} == {("shuffled", few[0])}
    own = tuple(("method", w, r) for w in ("fixed", "per_item") for r in (True, False))
    controls = (("shuffled", "fixed", True),)
    scaling._TASK_CONTEXT.update(queries=qs, passages=passages, methods={"xqg": method}, settings=settings,
                                 plan=subset_plan(2, "all"), seed=0)
    try:
        alone = scaling._run_items(("xqg", "method", 0, own))
        trained = []
        monkeypatch.setattr(candidates, "_template", lambda *a: trained.append(a) or pytest.fail("a list trained"))
        scaling._TASK_CONTEXT["templates"] = fused
        shared = scaling._run_items(("xqg", "method", 0, own))
        scaling._run_items(("xqg", "shuffled", 1, controls))
    finally:
        scaling._TASK_CONTEXT.clear()
    assert not trained
    for run in own:
        for k in (1, 2):
            np.testing.assert_array_equal(shared[run][0][k].all, alone[run][0][k].all)


def test_tune_chooses_the_same_in_worker_processes(world):
    # the methods' grids and the normalisation baseline's strengths run in one pool of workers: the choices,
    # grids and the baseline's strength do not depend on how many
    import types

    from xaug.methods import AugmentSettings
    from xaug.tuning import TuneSettings, tune

    tmp, passages, pids, method, queries = world
    qs = QuerySet.from_evaluator(Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=4), LANGS, pids)
    exp = types.SimpleNamespace(passages=passages, methods={"xqg": method}, weights=["fixed", "per_item"])
    args = (exp, {"global": qs}, TuneSettings(alphas=[0.1, 0.5], n_queries_used=[1]),
            {"xqg": AugmentSettings(renormalize=True)}, 2, subset_plan(2, "all"))
    one, two = tune(*args, workers=1), tune(*args, workers=2)
    assert one == two
    assert [g["beta"] for g in one["normalisation"]["global"]["grid"]] == centring_grid([0.1, 0.5])
    assert set(one["choices"]["xqg"]["fixed"]) == {"renormalized", "raw"}


def test_the_sets_of_items_run_longest_kind_first_and_each_sweep_once():
    """``item_tasks`` hands the pool the sets of items kind by kind in ``TASK_ORDER`` (centroids and each method's
    own items first, equal items last), so that no worker idles long behind the other's last set; every sweep of
    the tables' order is run by exactly one task, and one alpha rides with the method's own items."""
    from xaug.scaling import TASK_ORDER, item_tasks

    order, tasks = item_tasks(["xqg", "translate"], ["fixed", "per_item"], {"xqg": True, "translate": False}, 2)
    kinds = [kind for _, kind, _, _ in tasks]
    assert kinds == sorted(kinds, key=TASK_ORDER.index) and kinds[0] == "centroid" and kinds[-1] == "equal_items"
    ran = [(n, variant, w, r, j) for n, _, j, runs in tasks for variant, w, r in runs]
    assert sorted(ran) == sorted(order) and len(ran) == len(set(ran))
    assert all(kind == "method" for n, kind, j, runs in tasks for variant, _, _ in runs if variant == "one_alpha")
