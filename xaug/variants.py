"""The sweeps of one set of a method's items, the variants the scaling stage and the seeds stage run: the method's
own items, a shuffled permutation of them, their centroids (``xaug.controls``), or equal items per passage at
every k (``xaug.equal_items``), each under one or more fusions sharing a scorer (``xaug.sweep``)."""
from __future__ import annotations

import numpy as np

from .cli import release_memory
from .controls import centroid_items, permutation_plan, shuffle
from .equal_items import drawn_items
from .fusion import combine
from .leave_out import correction
from .queryset import QuerySet, own_depth
from .sweep import (KResult, PassageTerms, SubsetScorer, block_candidates, blocks_side_by_side, found_tops, fused_keys,
                    fused_tops, group_means, searched_lists, sweep)

FUSED = ("method", "shuffled", "centroid")  # sets of items whose candidates may come from their fused corpora


def items_sweeps(queries: QuerySet, passages: np.ndarray, method, fusions: dict, plan: dict, kind: str = "method",
                 perm: int = 0, seed: int = 0, templates: dict | None = None) -> dict:
    """The sweeps of one set of items of ``method``: its own (``kind`` method), its shuffled permutation ``perm``,
    its centroids, or equal items; under each fusion of ``fusions`` (run -> k -> FusionSettings) -> run ->
    (by_k, singles). The runs share one scorer per items count and query block (and, where their fusions meet,
    their results: ``xaug.sweep.sweep``'s ``done``), so the candidates of each query
    (most of a sweep's time with ``scaling.candidates``: the top K of every list over the corpus) are found once
    per set of items, not once per fusion; the query blocks (``QuerySet.blocks``) bound its memory. ``templates``:
    items count -> the method's own items' trained list indexes (``xaug.candidates.list_templates``), which every
    set of its items searches instead of training its own, and (keyed (kind, ``corpus_keys``' key),
    ``fused_templates``) the trained indexes of its fused corpora.

    A set of items scored under few fusions on a small plan (``scaling.subsets: random:R``; a control: the method's
    alpha per k, both renormalize states, one subset per k for a shuffled permutation) takes its candidates from
    the tops of its fused corpora where they cost less to search than its per-language lists (``uses_fused``):
    ``xaug.sweep.fused_tops``, each run's own top, exact up to the index's recall, each as deep as a run's
    measures read (the passages its leave-out corrects counted). The per-language lists' union only approximates
    each run's top, and misses much of it where items cover a share of the passages (docs/design.md).

    Memory: the lists' tops and the blocks' unions are memory maps (``xaug.candidates.ListTops``, ``mapped``), and
    the heap's free pages go back to the system once the lists are searched and after each block
    (``xaug.cli.release_memory``; the stages' malloc settings keep them otherwise). Each block's arrays went to
    other free chunks than the block's before, so that a worker's resident heap grew block by block towards all
    the free space of its heap (docs/testing.md, ``mapped_release``)."""
    blocks = queries.blocks()
    if kind == "equal_items":
        return {run: (_equal_items_sweep(method, fusion, plan, seed, queries, passages, blocks), {})
                for run, fusion in fusions.items()}
    if kind == "shuffled":
        plan = permutation_plan(plan, perm)
    parts = [{run: ({}, {}) for run in fusions} for _ in blocks]  # per query block
    own = method.own(queries.questions)  # a leave-out method: each query's own question's items
    for n_used in dict.fromkeys(f.n_items_used for fusion in fusions.values() for f in fusion.values()):
        items, held = method.reduced(n_used), own  # one scorer per items count and query block
        if kind == "shuffled":
            items, moves = shuffle(items, np.random.default_rng([seed, perm]))
            held = None if own is None else [o.moved(d) for o, d in zip(own, moves)]
        elif kind == "centroid":
            items, held = centroid_items(items), None
        # each candidate list searched once for every block
        shared = (templates or {}).get(n_used)
        keys = corpus_keys(kind, plan, fusions, n_used) if queries.searches_lists else []
        tops = fused_tops(queries, passages, items, keys, fused_templates(shared, kind),
                          0 if held is None else len(held)) \
            if uses_fused(kind, keys, items, queries.candidates, queries.judgements.depth,
                          queries.search.prefixes(queries.vectors.shape[1])) \
            else found_tops(queries, passages, items, shared)
        columns = block_candidates(queries, tops, blocks)  # each block's union; it gives tops back as it goes
        del tops
        release_memory()  # the searches' freed arrays (``xaug.cli.MALLOC_ENV`` keeps them), before the blocks
        terms = PassageTerms.of(passages, items) if queries.factory == "Flat" else None  # once for every block
        for at, (rows, results) in enumerate(zip(blocks, parts)):
            some_columns, columns[at] = columns[at], None  # its union goes with its scorer (a map of its own)
            some = queries.take(rows)
            some_held = None if held is None else [o.take(rows) for o in held]
            scorer = SubsetScorer(some, passages, items, some_held, columns=some_columns, terms=terms)
            done: dict = {}  # the runs' results by fusion key: a run meeting another's fusion at a k takes its result
            for run, fusion in fusions.items():
                ks = [k for k in plan if fusion[k].n_items_used == n_used]
                if ks:
                    b, s = sweep(some, passages, items, fusion, {k: plan[k] for k in ks}, method.seconds,
                                 method.tokens, some_held, scorer=scorer, done=done)
                    results[run][0].update(b)
                    results[run][1].update(s)
            del scorer, some, some_held, some_columns, done
            release_memory()  # its freed arrays: the next block's would take other free chunks, and others again
    return {run: blocks_side_by_side([(dict(sorted(r[run][0].items())), r[run][1]) for r in parts])
            for run in fusions}


def corpus_keys(kind: str, plan: dict, fusions: dict, n_used: int | None, perm: int | None = None) -> list[tuple]:
    """The fused corpora (``xaug.sweep.fused_keys``) a set of items of ``kind`` with ``n_used`` items per passage is
    scored as: its plan (``perm``: a shuffled permutation's, from the full ``plan``; None: ``plan`` as it is) under
    its runs' fusions (run -> k -> FusionSettings); none for a kind that never scores from them (equal items)."""
    if kind not in FUSED:
        return []
    if kind == "shuffled" and perm is not None:
        plan = permutation_plan(plan, perm)
    return fused_keys(plan, {run: {k: f for k, f in fusion.items() if f.n_items_used == n_used}
                             for run, fusion in fusions.items()})


def fused_templates(templates: dict | None, kind: str) -> dict:
    """key -> the trained index of each of ``kind``'s fused corpora among a method's templates (those of
    ``xaug.sweep.trained_fused``, keyed (kind, key); the others, keyed by list position, are its lists')."""
    return {key[1]: index for key, index in (templates or {}).items()
            if isinstance(key, tuple) and len(key) == 2 and key[0] == kind}


def uses_fused(kind: str, keys: list[tuple], items, candidates: int, depth: int, prefixes: bool = True) -> bool:
    """Whether a set of items takes its candidates from its fused corpora ``keys``: where searching each to its
    runs' own depth (``QuerySet.own_depth`` with at most one corrected passage per language) costs less than
    searching its per-language lists (``xaug.sweep.searched_lists``) to K = ``candidates``. A faiss search's cost
    grows about in proportion to its depth (``benchmarks/results/search_depth_p100k.json``); an index whose
    shallower search is not the start of its deeper one (``prefixes`` False: ``CandidateSearch.prefixes``) searches
    them to K (``QuerySet.own_search_depth``), so that they must be fewer than the lists."""
    own = own_depth(candidates, depth, len(items)) if prefixes else candidates
    return kind in FUSED and bool(keys) and \
        len(keys) * own < searched_lists(items, centroids=kind == "centroid") * candidates


def _equal_items_sweep(method, fusion: dict, plan: dict, seed: int, queries: QuerySet, passages: np.ndarray,
                       blocks: list[np.ndarray]) -> dict[int, KResult]:
    """The method with as many items per passage at every k as one language gives at k = 1, and k = 1's fusion
    (alpha) at every k: only the number of languages the items come from changes (``xaug.equal_items``). Each
    subset's items are drawn and fused once, its candidates found once (``QuerySet.found_tops``) and scored block
    by block (``QuerySet.blocks``)."""
    fusion = {k: fusion[1] for k in fusion}
    total = fusion[1].n_items_used or max(items.shape[1] for items, _ in method.raw)
    generated = [items.shape[1] for items, _ in method.raw]  # items generated per passage, per language
    own = method.own(queries.questions)
    parts = [(rows, queries.take(rows), None if own is None else [o.take(rows) for o in own]) for rows in blocks]
    by_k = {}
    for k, subsets in plan.items():
        def values_of(position, subset):
            pooled, taken = drawn_items(method.raw, subset, total, np.random.default_rng([seed, k, position]))
            fused = combine(passages, [pooled], fusion[k])
            # its index built and searched once for every block, to the depth its measures read
            tops = queries.found_tops(fused, 0 if own is None else len(subset))
            values = []
            for rows, some, some_own in parts:
                fix = None if own is None else correction(some.vectors, passages, [pooled],
                                                          [(some_own[s], taken[:, j]) for j, s in enumerate(subset)],
                                                          fusion[k])
                values.append(some.score(fused, fix, tops=None if tops is None else tops[rows]))
            return values[0] if len(values) == 1 else np.concatenate(values, axis=1)

        means, inset, outset, held = group_means(queries, subsets, values_of)
        by_k[k] = KResult(means, inset, outset, len(subsets),
                          # the cost of `total` items: that share of a language's generation, mean over s
                          float(np.mean([np.mean([method.seconds[i] * total / generated[i] for i in s])
                                         for s in subsets])),
                          float(np.mean([np.mean([method.tokens[i] * total / generated[i] for i in s])
                                         for s in subsets])),
                          fusion[k].alpha, total, held)
    return by_k
