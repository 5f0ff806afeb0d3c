"""The real_questions method and its leave-question-out scoring: no query is ever helped by its own question."""
from dataclasses import replace

import numpy as np
import pytest

from xaug.controls import shuffle
from xaug.data import MlqaArchive
from xaug.dial import tuned_fusion
from xaug.equal_items import drawn_items, equal_items
from xaug.errors import ConfigError
from xaug.evaluation import Evaluator
from xaug.formats import read_item_sources, read_items, write_embeddings, write_items
from xaug.fusion import FusionSettings, LanguageItems, combine
from xaug.leave_out import correction, own_items, question_left_out, rerank
from xaug.methods import MethodItems
from xaug.metrics import ALL_MEASURES
from xaug.preparation import prepare, save_prepared
from xaug.queryset import QuerySet
from xaug.real_questions import real_questions
from xaug.search import FaissSearcher
from xaug.stats import cluster_means
from xaug.sweep import SubsetScorer, sweep

LANGS = ["de", "zh"]


@pytest.fixture
def world(tmp_path, mini_zip):
    """The mini archive's questions as real_questions items: every item is exactly the query vector of its
    question in that language (the strongest possible leak), other splits' questions close to their passage.
    Seed 8 evaluates q2 and q3 (two questions about the Rhine passage) and q5."""
    data = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=8, tune_fraction=0)
    save_prepared(data, tmp_path / "mlqa")
    rng = np.random.default_rng(0)
    pids = [c["id"] for c in data.corpus]
    passages = rng.standard_normal((len(pids), 16)).astype(np.float32)
    passages /= np.linalg.norm(passages, axis=1, keepdims=True)
    pivot = {l["qid"]: l["contexts"]["en"] for l in data.links}
    vector = {q["id"]: (passages[pids.index(pivot[q["qid"]])] + 0.8 * rng.standard_normal(16)).astype(np.float32)
              for q in data.queries}
    evaluated = [q for q in data.queries if q["split"] == "eval"]
    write_embeddings(tmp_path / "q", np.stack([vector[q["id"]] for q in evaluated]), [q["id"] for q in evaluated])
    raw, sources = [], []
    for lang in LANGS:
        rows, stats = real_questions(data.corpus, data.queries, data.links, lang)
        texts = [(row["id"], s) for row in rows for s in row["sources"]]
        path = tmp_path / f"{lang}.npz"
        write_items(path, np.stack([vector[f"{s}-{lang}"] for _, s in texts]), [len(r["sources"]) for r in rows],
                    [s for _, s in texts])
        raw.append(read_items(path))
        sources.append(read_item_sources(path))
    method = MethodItems("real_questions", LANGS, raw, [0.0, 0.0], [0, 0], sources)
    ev = Evaluator(tmp_path / "mlqa", tmp_path / "q", LANGS, depth=3)
    return tmp_path, data, passages, pids, method, ev


def without(method: MethodItems, question: str) -> list[LanguageItems]:
    """Each language's items with ``question``'s removed (the brute-force leave-out of one question)."""
    out = []
    for (items, counts), sources in zip(method.raw, method.sources):
        keep = (sources != question) & (sources != "")
        vectors = items.astype(np.float32) * keep[:, :, None]
        out.append(LanguageItems(vectors.sum(1), keep.sum(1)))
    return out


def test_real_questions_list_every_question_of_a_passage_with_its_id(mini):
    rows, stats = real_questions(mini.corpus, mini.queries, mini.links, "de")
    pivot = {l["qid"]: l["contexts"]["en"] for l in mini.links}
    rhine = next(r for r in rows if r["sources"] == ["q2", "q3"])  # two questions about one passage
    assert rhine["queries"] == ["Wo endet der Rhein?", "Welche Stadt am Rhein liegt in der Schweiz?"]
    assert {pivot["q2"], pivot["q3"]} == {rhine["id"]}
    assert [r["id"] for r in rows] == [c["id"] for c in mini.corpus]
    assert stats["covered"] == 4 and stats["covered_after_leave_out"] == 1 and stats["generated_tokens"] == 0
    with pytest.raises(ConfigError, match="^real_questions: the archive has no 'ar' questions"):
        real_questions(mini.corpus, mini.queries, mini.links, "ar")


@pytest.mark.parametrize("factory", ["Flat", "HNSW8"])
@pytest.mark.parametrize("weight,renormalize", [("fixed", True), ("per_item", False)])
def test_leave_out_equals_removing_the_question_from_the_corpus(world, factory, weight, renormalize):
    tmp, data, passages, pids, method, ev = world
    qs = QuerySet.from_evaluator(ev, LANGS, pids, factory=factory, search_params="efSearch=64")
    settings = FusionSettings(0.5, weight, renormalize)
    items = method.reduced(None)
    by_k, _ = sweep(qs, passages, items, {1: settings, 2: settings}, {1: [(0,), (1,)], 2: [(0, 1)]}, [0, 0], [0, 0],
                    method.own(qs.questions))
    leaky, _ = sweep(qs, passages, items, {2: settings}, {2: [(0, 1)]}, [0, 0], [0, 0])
    for question in sorted(set(qs.questions)):
        rows = qs.questions == question
        alone = qs.score(combine(passages, without(method, question), settings))
        np.testing.assert_allclose(by_k[2].all[:, rows], alone[:, rows], atol=1e-6)
        alone_de = qs.score(combine(passages, without(method, question)[:1], settings))
        np.testing.assert_allclose(by_k[1].inset[:, rows & (qs.lang == 0)], alone_de[:, rows & (qs.lang == 0)],
                                   atol=1e-6)
    assert not np.allclose(leaky[2].all, by_k[2].all)  # the leak is real: left in, the own question helps


def test_one_scorer_leaves_the_question_out_under_every_fusion_of_a_subset(world):
    """The scorer keeps one subset's pools without each query's own items and reuses them for every fusion of
    that subset (the tune grid's alphas): a second fusion, and a subset revisited after another, score as a
    fresh scorer and as the brute-force removal of the question do."""
    tmp, data, passages, pids, method, ev = world
    qs = QuerySet.from_evaluator(ev, LANGS, pids)
    items, own = method.reduced(None), method.own(qs.questions)
    shared = SubsetScorer(qs, passages, items, own)
    fusions = [FusionSettings(0.3, "fixed", True), FusionSettings(0.7, "per_item", False)]
    for subset, fusion in [((0, 1), fusions[0]), ((0, 1), fusions[1]), ((0,), fusions[1]), ((0, 1), fusions[0])]:
        values = shared(subset, fusion)
        np.testing.assert_array_equal(values, SubsetScorer(qs, passages, items, own)(subset, fusion))
        for question in sorted(set(qs.questions)):
            rows = qs.questions == question
            alone = qs.score(combine(passages, [without(method, question)[i] for i in subset], fusion))
            np.testing.assert_allclose(values[:, rows], alone[:, rows], atol=1e-6)


def test_a_query_is_blind_to_its_own_question_in_every_variant(world):
    """Replacing a question's items by noise changes nothing for that question's queries: in the method, its
    shuffled control (where the shuffle moved them) and the equal-items variant."""
    tmp, data, passages, pids, method, ev = world
    qs = QuerySet.from_evaluator(ev, LANGS, pids)
    settings = FusionSettings(0.6, "fixed", True)
    rng = np.random.default_rng(5)

    def variants(m: MethodItems) -> list[np.ndarray]:
        items, own = m.reduced(None), m.own(qs.questions)
        out = [sweep(qs, passages, items, {2: settings}, {2: [(0, 1)]}, [0, 0], [0, 0], own)[0][2].all]
        moved, moves = shuffle(items, np.random.default_rng(3))
        out.append(sweep(qs, passages, moved, {2: settings}, {2: [(0, 1)]}, [0, 0], [0, 0],
                         [o.moved(d) for o, d in zip(own, moves)])[0][2].all)
        pooled, taken = drawn_items(m.raw, (0, 1), 1, np.random.default_rng(9))
        fix = correction(qs.vectors, passages, [pooled], [(own[s], taken[:, s]) for s in (0, 1)], settings)
        out.append(qs.score(combine(passages, [pooled], settings), fix))
        return out

    before = variants(method)
    for question in sorted(set(qs.questions)):
        noisy = []
        for (items, counts), sources in zip(method.raw, method.sources):
            items = items.copy()
            items[sources == question] = rng.standard_normal((int((sources == question).sum()), 16)) * 3
            noisy.append((items, counts))
        after = variants(MethodItems(method.name, LANGS, noisy, method.seconds, method.tokens, method.sources))
        rows = qs.questions == question
        for b, a in zip(before, after):
            np.testing.assert_allclose(b[:, rows], a[:, rows], atol=1e-6)


def test_equal_items_report_what_they_took():
    rng = np.random.default_rng(0)
    raw = [(rng.standard_normal((4, 3, 2)).astype(np.float16), np.array([3, 1, 0, 2])) for _ in range(2)]
    pooled, taken = drawn_items(raw, (0, 1), 3, np.random.default_rng(1))
    assert np.array_equal(pooled.counts, taken.sum(1)) and (taken <= np.stack([r[1] for r in raw], 1)).all()
    want = sum((raw[s][0][:, :, :].astype(np.float32) * (np.arange(3)[None, :] < taken[:, [j]])[:, :, None]).sum(1)
               for j, s in enumerate((0, 1)))
    np.testing.assert_allclose(pooled.sums, want, rtol=1e-5)
    assert np.array_equal(equal_items(raw, (0, 1), 3, np.random.default_rng(1)).sums, pooled.sums)


def test_rerank_equals_sorting_the_whole_corpus():
    rng = np.random.default_rng(2)
    for trial in range(200):
        scores = rng.integers(0, 6, 12).astype(float)  # ties on purpose
        order = sorted(range(12), key=lambda i: -scores[i])  # stable: ties keep index order
        depth = 5
        top = order[: depth + 1]
        passage, new = int(rng.integers(12)), float(rng.integers(0, 6))
        ranking, values = rerank([str(i) for i in top], [scores[i] for i in top], str(passage), new, depth)
        changed = scores.copy()
        changed[passage] = new
        assert sorted(values, reverse=True) == values and len(ranking) == depth
        assert values == sorted(changed, reverse=True)[:depth], trial
        assert len(set(ranking)) == depth


def test_evaluate_stage_scores_equal_the_sweep(world):
    """The evaluate stage's path (the augment stage's left-out passages, reranked runs) gives the sweep's
    leave-out measures for every query."""
    tmp, data, passages, pids, method, ev = world
    settings = FusionSettings(0.5, "fixed", True)
    qs = QuerySet.from_evaluator(ev, LANGS, pids)
    want = sweep(qs, passages, method.reduced(None), {2: settings}, {2: [(0, 1)]}, [0, 0], [0, 0],
                 method.own(qs.questions))[0][2].all
    questions, cols, vectors = question_left_out(passages, method.raw, method.sources, settings)
    assert len(questions) == len(set(questions)) == len({s for src in method.sources for s in src.ravel() if s})
    searcher = FaissSearcher.build(combine(passages, method.reduced(None), settings), pids)
    ranking, scores = ev.leave_out(*ev.search(searcher, ev.depth + 1), list(questions), [pids[c] for c in cols],
                                   vectors)
    per_query = ev.per_query(ranking, scores)
    from xaug.metrics import ALL_MEASURES
    got = np.array([[per_query[q][m] for q in ev.query_ids] for m in ALL_MEASURES])
    np.testing.assert_allclose(got, want, atol=1e-9)
    leaky = ev.per_query(*ev.search(searcher))
    assert any(leaky[q]["RR@10"] != per_query[q]["RR@10"] for q in ev.query_ids)  # the rerank changed something


def test_own_items_refuse_a_question_twice_in_one_language():
    items = np.zeros((2, 1, 3), np.float16)
    with pytest.raises(ConfigError, match="question q1: more than one item in one language"):
        own_items(np.array(["q1"]), items, np.array([["q1"], ["q1"]]))


def test_own_items_find_each_owners_question_where_it_sits():
    """Each owner (several may share a question, as a question's translations do) gets its question's passage,
    slot and item; an owner whose question has no item here gets none (-1, 0, zeros)."""
    rng = np.random.default_rng(4)
    items = rng.standard_normal((30, 4, 5)).astype(np.float16)
    sources = np.full((30, 4), "", dtype="<U6")
    names = [f"q{i}" for i in range(60)]
    slots = rng.permutation(120)[:45]
    for name, slot in zip(names, slots):
        sources[slot // 4, slot % 4] = name
    owners = np.array(rng.choice(names + ["zz", "q999"], size=200))
    own = own_items(owners, items, sources)
    where = {str(sources[p, j]): (p, j) for p in range(30) for j in range(4) if sources[p, j]}
    for row, owner in enumerate(owners.tolist()):
        p, j = where.get(owner, (-1, 0))
        assert (own.passage[row], own.position[row]) == (p, j)
        np.testing.assert_array_equal(own.vectors[row], items[p, j].astype(np.float32) if p >= 0 else 0)
    empty = own_items(owners[:3], items, np.full((30, 4), "", dtype="<U1"))
    assert empty.passage.tolist() == [-1] * 3 and not empty.vectors.any()


def test_coverage_says_what_the_relevant_passage_keeps(world):
    """Every passage of the mini archive has real de and zh questions, but once a query's own question is left
    out, only the Rhine passage (two questions) keeps one: coverage alone handicaps the other relevant passages."""
    from xaug.coverage import coverage

    tmp, data, passages, pids, method, ev = world
    qs = QuerySet.from_evaluator(ev, LANGS, pids)
    covered = coverage(qs, method)
    cross = qs.lang >= 0
    rhine = np.isin(qs.questions, ["q2", "q3"])
    for lang in LANGS:
        assert covered[lang]["passages"] == 1.0 and covered[lang]["queries"] == int(cross.sum())
        assert covered[lang]["relevant"] == round(float(rhine[cross].mean()), 4)
    assert 0 < rhine[cross].mean() < 1  # the case is not trivial
    plain = coverage(qs, MethodItems("xqg", LANGS, method.raw, [0, 0], [0, 0]))  # no leave-out: all covered
    assert all(c["relevant"] == 1.0 for c in plain.values())


def test_only_items_in_the_pool_are_left_out():
    """With the first item per passage in use (n_queries_used 1, or equal items), a question whose item sits in
    a later slot has nothing to leave out; the others are rescored from the pool without their item."""
    from xaug.leave_out import left_out

    rng = np.random.default_rng(1)
    items = rng.standard_normal((2, 2, 3)).astype(np.float16)
    sources = np.array([["a", "b"], ["c", ""]])
    own = own_items(np.array(["a", "b", "c"]), items, sources)
    pool = [LanguageItems.from_items(items, np.array([2, 1]), 1)]
    passages = rng.standard_normal((2, 3)).astype(np.float32)
    rows, cols, fused = left_out(passages, pool, [(own, pool[0].counts)], FusionSettings(0.5, "fixed", True))
    assert rows.tolist() == [0, 2] and cols.tolist() == [0, 1]
    # nothing left to fuse: the passages themselves, renormalised to their own norm (these are not unit vectors)
    np.testing.assert_allclose(fused, passages, rtol=1e-6)


def test_the_dial_tunes_each_mix_with_the_question_left_out(world):
    """tuned_fusion picks, per k, the alpha of the grid whose leave-out scores are best on the queries given
    (the question-level mean over the cross-lingual queries, averaged over k's subsets), keeping the ceiling's
    weight mode and renormalize state."""
    _, _, passages, pids, method, ev = world
    queries = QuerySet.from_evaluator(ev, LANGS, pids)
    plan = {1: [(0,), (1,)], 2: [(0, 1)]}
    base = {k: FusionSettings(0.5, "fixed", True, None, "augment.real_questions") for k in plan}
    alphas = [0.05, 0.3, 0.6, 0.9]
    fusion = tuned_fusion(queries, passages, method, base, plan, alphas, "nDCG@10")
    i, cross = ALL_MEASURES.index("nDCG@10"), queries.lang >= 0
    own = method.own(queries.questions)
    for k, subsets in plan.items():
        means = []
        for alpha in alphas:
            by_k, _ = sweep(queries, passages, method.reduced(None), {k: replace(base[k], alpha=alpha)}, {k: subsets},
                            [0.0, 0.0], [0, 0], own)
            means.append(cluster_means(by_k[k].all[i][cross], queries.clusters[cross]).mean())
        assert means[alphas.index(fusion[k].alpha)] == pytest.approx(max(means), abs=1e-9)
        assert (fusion[k].weight, fusion[k].renormalize) == ("fixed", True)


@pytest.mark.parametrize("setting", ["global", "parallel"])
def test_query_blocks_give_the_measures_of_one_block(world, setting):
    """With candidates, the sweeps (the method, its controls, equal items) and the tune grid score the queries
    in blocks of scaling.query_block: the measures side by side are those of all queries at once, bit for bit,
    and a leave-out method still leaves each query's own question out."""
    import xaug.scaling as scaling
    import xaug.tuning as tuning
    from xaug.methods import METHODS
    from xaug.sweep import subset_plan

    tmp, data, passages, pids, method, _ = world
    ev = Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=3, setting=setting)
    whole = QuerySet.from_evaluator(ev, LANGS, pids, candidates=3)
    blocked = replace(whole, block=2)
    assert len(blocked.blocks()) == -(-len(whole.vectors) // 2) > 2 and len(whole.blocks()) == 1
    assert len(replace(whole, candidates=0, block=2).blocks()) == 1  # blocks only with candidates
    if setting == "parallel":
        assert whole.judgements.masks is not None
    plan = subset_plan(2, "all")
    fusion = {(w, r): {1: FusionSettings(0.4, w, r), 2: FusionSettings(0.6, w, r)} for w in ("fixed",) for r in (True, False)}
    runs = (("method", "fixed", True), ("method", "fixed", False), ("one_alpha", "fixed", True))
    tasks = [("real_questions", "method", 0, runs), ("real_questions", "shuffled", 1, runs[:1]),
             ("real_questions", "centroid", 0, runs[:1]), ("real_questions", "equal_items", 0, runs[:1])]

    def swept(qs):
        scaling._TASK_CONTEXT.update(queries=qs, passages=passages, methods={"real_questions": method},
                                     settings={"real_questions": fusion}, plan=plan, seed=0)
        try:
            return [scaling._run_items(task) for task in tasks]
        finally:
            scaling._TASK_CONTEXT.clear()

    for one, many in zip(swept(whole), swept(blocked)):
        assert list(one) == list(many)
        for run in one:
            (by_k, singles), (by_k_blocked, singles_blocked) = one[run], many[run]
            assert list(by_k) == list(by_k_blocked) == [1, 2] and list(singles) == list(singles_blocked)
            for k in by_k:
                for group in ("all", "inset", "outset"):
                    np.testing.assert_array_equal(getattr(by_k[k], group), getattr(by_k_blocked[k], group))
            for lang in singles:
                np.testing.assert_array_equal(singles[lang], singles_blocked[lang])

    def grid(qs):
        tuning._CONTEXT.update(query_sets={METHODS["real_questions"].setting: qs}, passages=passages,
                               methods={"real_questions": method}, plan=plan, alphas=[0.0, 0.3, 0.9],
                               measure="nDCG@10")
        try:
            return tuning._grid_task(("real_questions", None, (("fixed", True), ("per_item", False))))
        finally:
            tuning._CONTEXT.clear()

    assert grid(whole) == grid(blocked)


def test_equal_items_search_each_pool_to_its_depth_and_the_passages_their_own_questions_sit_in(world, monkeypatch):
    """Equal items of a leave-out method search each subset's pooled corpus to its own depth counting one corrected
    passage per language of the subset (``QuerySet.found_tops(fused, corrected)``); a method without a leave-out
    counts none."""
    from xaug.candidates import CandidateSearch
    from xaug.sweep import subset_plan
    from xaug.variants import _equal_items_sweep

    tmp, data, passages, pids, method, ev = world
    qs = QuerySet.from_evaluator(ev, LANGS, pids, candidates=3, search=CandidateSearch("IVF2,Flat", "nprobe=1"))
    asked, original = [], QuerySet.found_tops
    monkeypatch.setattr(QuerySet, "found_tops", lambda self, p, corrected=None: asked.append(corrected) or
                        original(self, p, corrected))
    fusion = {k: FusionSettings(0.4, "fixed", True) for k in (1, 2)}
    plan = subset_plan(2, "all")
    _equal_items_sweep(method, fusion, plan, 0, qs, passages, qs.blocks())
    assert asked == [len(s) for k in plan for s in plan[k]] == [1, 1, 2]
    asked.clear()
    plain = MethodItems("xqg", LANGS, method.raw, method.seconds, method.tokens)  # no question ids: no leave-out
    _equal_items_sweep(plain, fusion, plan, 0, qs, passages, qs.blocks())
    assert asked == [0, 0, 0]


@pytest.mark.parametrize("kind, corrected", [("method", 2), ("shuffled", 2), ("centroid", 0)])
def test_a_sets_fused_corpora_count_the_passages_its_leave_out_corrects(world, monkeypatch, kind, corrected):
    """A leave-out method's own items, and its shuffled items (each query's own items moved with them), hold one own
    item per language: their fused corpora are searched to the depth counting one corrected passage per language
    (``fused_tops(..., corrected)``); its centroids hold no question's own items and count none."""
    import xaug.variants as variants
    from xaug.candidates import CandidateSearch
    from xaug.sweep import subset_plan

    tmp, data, passages, pids, method, ev = world
    qs = QuerySet.from_evaluator(ev, LANGS, pids, candidates=3, search=CandidateSearch("IVF2,Flat", "nprobe=1"))
    asked, original = [], variants.fused_tops
    monkeypatch.setattr(variants, "fused_tops", lambda *a, **kw: asked.append(a[5:] or kw.get("corrected")) or
                        original(*a, **kw))
    fusions = {("shuffled", "fixed", True): {k: FusionSettings(0.4, "fixed", True) for k in (1, 2)}}
    variants.items_sweeps(qs, passages, method, fusions, subset_plan(2, "all"), kind, 0, 0)
    assert asked == [(corrected,)]


def test_a_set_of_items_per_passage_terms_are_computed_once_for_all_its_query_blocks(world, monkeypatch):
    """The projection's per-passage terms (``PassageTerms``: p.p, p.sums, the Gram terms; O(passages) each) depend
    on the passages and items alone: a set of items computes them once and every query block's scorer reads them."""
    import xaug.scaling as scaling
    import xaug.sweep as sweep_module
    import xaug.tuning as tuning
    from xaug.methods import METHODS
    from xaug.sweep import subset_plan

    tmp, data, passages, pids, method, _ = world
    ev = Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=3)
    blocked = replace(QuerySet.from_evaluator(ev, LANGS, pids, candidates=3), block=2)
    assert len(blocked.blocks()) > 2
    computed = []
    of = sweep_module.PassageTerms.of
    monkeypatch.setattr(sweep_module.PassageTerms, "of", classmethod(lambda cls, *a: computed.append(1) or of(*a)))
    fusion = {("fixed", True): {1: FusionSettings(0.4, "fixed", True), 2: FusionSettings(0.6, "fixed", True)}}
    plan = subset_plan(2, "all")
    scaling._TASK_CONTEXT.update(queries=blocked, passages=passages, methods={"real_questions": method},
                                 settings={"real_questions": fusion}, plan=plan, seed=0)
    try:
        scaling._run_items(("real_questions", "method", 0, (("method", "fixed", True),)))
    finally:
        scaling._TASK_CONTEXT.clear()
    assert len(computed) == 1
    tuning._CONTEXT.update(query_sets={METHODS["real_questions"].setting: blocked}, passages=passages,
                           methods={"real_questions": method}, plan=plan, alphas=[0.0, 0.3], measure="nDCG@10")
    try:
        tuning._grid_task(("real_questions", None, (("fixed", True),)))
    finally:
        tuning._CONTEXT.clear()
    assert len(computed) == 2


def test_a_set_of_items_gives_its_freed_heap_back_after_the_search_and_each_block(world, monkeypatch):
    """A worker's sweeps of a set of items return the heap's free pages (``release_memory``) once its candidates are
    found and after each query block, so that the blocks' arrays do not spread over every free chunk of the heap."""
    import xaug.scaling as scaling
    import xaug.variants as variants
    from xaug.sweep import subset_plan

    tmp, data, passages, pids, method, _ = world
    ev = Evaluator(tmp / "mlqa", tmp / "q", LANGS, depth=3)
    blocked = replace(QuerySet.from_evaluator(ev, LANGS, pids, candidates=3), block=2)
    released = []
    monkeypatch.setattr(variants, "release_memory", lambda: released.append(len(released)))
    fusion = {("fixed", True): {1: FusionSettings(0.4, "fixed", True), 2: FusionSettings(0.6, "fixed", True)}}
    scaling._TASK_CONTEXT.update(queries=blocked, passages=passages, methods={"real_questions": method},
                                 settings={"real_questions": fusion}, plan=subset_plan(2, "all"), seed=0)
    try:
        scaling._run_items(("real_questions", "method", 0, (("method", "fixed", True),)))
    finally:
        scaling._TASK_CONTEXT.clear()
    assert len(released) == 1 + len(blocked.blocks()) > 3


def test_a_stages_query_sets_are_read_once_and_rank_as_each_settings_own_load(world):
    """``Experiment.query_sets`` reads the queries, judgements and answers once: each corpus setting's query set
    ranks as one loaded for that setting alone (``ranks_like``: the same queries, answers and masks), and the
    settings share the answer ends rather than holding a copy each."""
    from xaug.experiment import Experiment
    from xaug.search import IndexSettings

    tmp, data, passages, pids, method, _ = world
    exp = Experiment(LANGS, ["fixed"], passages, pids, {}, 3, IndexSettings(), candidates=3)
    sets = list(exp.query_sets(tmp / "mlqa", tmp / "q", ["global", "parallel", "global"]))
    assert [s for s, _ in sets] == ["global", "parallel", "global"]
    for setting, queries in sets:
        alone = exp.queries(tmp / "mlqa", tmp / "q", setting)
        assert queries.setting == alone.setting and queries.ranks_like(alone)
        for name in ("masks", "mask_of"):
            a, b = getattr(queries.judgements, name), getattr(alone.judgements, name)
            assert (a is None) == (b is None) and (a is None or np.array_equal(a, b))
    (_, first), (_, parallel), _ = sets
    assert parallel.judgements.masks is not None and first.judgements.masks is None
    assert parallel.judgements.ends.passages is first.judgements.ends.passages
