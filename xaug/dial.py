"""The quality dial: how good must generated items be for each side to gain what at k languages?

Each side runs from its human-made ceiling (fraction r = 0) to the embedded generator's output (r = 1):

- query side: in every passage and language, a fraction r of the real-question items (``real_questions``,
  scored leave-question-out) is replaced by the passage's generated queries (``xqg``), so the number of
  items stays the passage's number of real questions and only their quality changes; its quality is the
  round-trip R@10 of the mixed items (an item retrieving its own passage with the baseline xDR);
- passage side: a fraction r of the passages' human translations (``parallel_contexts``, XQuAD's
  translated paragraphs) is replaced by the translator's output (``translate``); its quality is the chrF
  of the mixed texts against the human translation (100 for a human one).

Which items are replaced is drawn once per language (``default_rng([seed, side, language])``), so a larger
r replaces a superset of a smaller r's. Every mix is fused with its own alpha at each k, chosen on the tune
split's questions as the tune stage chooses (``tuned_fusion``: the ceiling's weight mode and renormalize
state, the ``tune.alphas`` grid), and evaluated over every planned subset of k languages, like the sweep.
``crossings`` reads off, per k, the query-side quality at which its gain reaches the passage side's at
r = 0 (human translations) and at r = 1 (the embedded translator), by linear interpolation along the
query-side curve, with a cluster-bootstrap CI.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .errors import ConfigError
from .methods import MethodItems
from .queryset import QuerySet
from .stats import cluster_means
from .sweep import SubsetScorer
from .tuning import choose_alphas

SIDES = {"query": ("real_questions", "xqg"), "passage": ("parallel_contexts", "translate")}  # (r = 0, r = 1)


@dataclass
class DialSettings:
    """The ``dial`` params group: the fractions r, from 0 (the human ceiling) to 1 (the embedded generator)."""

    fractions: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])

    def __post_init__(self):
        f = self.fractions
        if not isinstance(f, list) or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in f) \
                or sorted(set(f)) != f or not f or f[0] != 0 or f[-1] != 1:
            raise ConfigError(f"fractions: expected ascending distinct numbers from 0 to 1, both included, got {f!r}")


def mixed_questions(real: MethodItems, generated: MethodItems, r: float, seed: int) -> MethodItems:
    """``real`` with round(r n) of each passage's n real items (per language) replaced by its generated
    queries (in turn); a replaced item has no question id, so the leave-out keeps to the real ones left."""
    raw, sources = [], []
    for i, ((items, counts), src, (gen, gen_counts)) in enumerate(zip(real.raw, real.sources, generated.raw)):
        n, m, _ = items.shape
        keys = np.random.default_rng([seed, 0, i]).random((n, m)) + 2.0 * (np.arange(m)[None, :] >= counts[:, None])
        rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")  # random order of slots
        replace = (rank < np.floor(r * counts + 0.5)[:, None]) & (np.asarray(gen_counts)[:, None] > 0)
        pick = rank % np.maximum(np.asarray(gen_counts), 1)[:, None]
        rows = np.arange(n)[:, None]
        out = np.where(replace[:, :, None], gen[rows, np.minimum(pick, gen.shape[1] - 1)], items)
        raw.append((out.astype(items.dtype), counts))
        sources.append(np.where(replace, "", src))
    return MethodItems(f"real_questions@{r:g}", real.languages, raw, real.seconds, real.tokens, sources)


def mixed_passages(human: MethodItems, translated: MethodItems, r: float, seed: int) -> tuple[MethodItems, list]:
    """``human`` with a fraction r of its passages (per language) taking the translator's items instead, and
    which passages did (per language, a boolean mask)."""
    raw, masks = [], []
    for i, ((items, counts), (mt, mt_counts)) in enumerate(zip(human.raw, translated.raw)):
        width = max(items.shape[1], mt.shape[1])
        pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)))  # noqa: E731
        use = (np.random.default_rng([seed, 1, i]).random(len(counts)) < r) & (np.asarray(mt_counts) > 0)
        raw.append((np.where(use[:, None, None], pad(mt), pad(items)), np.where(use, mt_counts, counts)))
        masks.append(use)
    return MethodItems(f"parallel_contexts@{r:g}", human.languages, raw, human.seconds, human.tokens), masks


def round_trip(items: MethodItems, passages: np.ndarray, depth: int = 10) -> float:
    """Share of the valid items (every language) whose own passage ranks in the top ``depth`` of the
    baseline passages (``passages``), by inner product (the xDR's unit vectors)."""
    p = np.asarray(passages, dtype=np.float32)
    hits, total = 0, 0
    for vectors, counts in items.raw:
        valid = np.arange(vectors.shape[1])[None, :] < np.asarray(counts)[:, None]
        owner, slot = np.nonzero(valid)
        scores = vectors[owner, slot].astype(np.float32) @ p.T
        own = scores[np.arange(len(owner)), owner]
        hits += int(((scores > own[:, None]).sum(1) < depth).sum())
        total += len(owner)
    return hits / max(total, 1)


def passage_chrf(human_texts: list[dict], translated_texts: list[dict], masks: list[np.ndarray],
                 passage_ids: list[str]) -> float:
    """Mean chrF against the human translation over the passages that have one (every language): 100 where
    the human text stays, the translator's text's chrF where it took over."""
    from sacrebleu.metrics import CHRF

    chrf, scores = CHRF(), []
    for human, translated, use in zip(human_texts, translated_texts, masks):
        for j, pid in enumerate(passage_ids):
            reference = " ".join(human.get(pid, []))
            if reference:
                scores.append(chrf.sentence_score(" ".join(translated.get(pid, [])), [reference]).score
                              if use[j] else 100.0)
    return float(np.mean(scores)) if scores else float("nan")


def dial_values(queries: QuerySet, passages: np.ndarray, mix: MethodItems, fusion: dict, plan: dict,
                measure: str) -> dict[int, np.ndarray]:
    """k -> per-query ``measure`` of the mix, averaged over k's subsets (all queries; as the sweep averages)."""
    scorer = SubsetScorer(queries, passages, mix.reduced(None), mix.own(queries.questions))
    out = {}
    for k, subsets in plan.items():
        total = np.zeros(len(queries.lang))
        for subset in subsets:
            total += scorer(subset, fusion[k], [measure])[0]
        out[k] = total / len(subsets)
    return out


def tuned_fusion(queries: QuerySet, passages: np.ndarray, mix: MethodItems, fusion: dict, plan: dict,
                 alphas: list[float], measure: str) -> dict:
    """k -> ``fusion[k]`` with the alpha that serves ``mix`` best on ``queries`` (the tune split's), for that k."""
    scorer = SubsetScorer(queries, passages, mix.reduced(None), mix.own(queries.questions))
    some = next(iter(fusion.values()))
    chosen = choose_alphas(scorer, plan, alphas, some.weight, some.renormalize, mix.name.split("@")[0], measure)
    return {k: replace(fusion[k], alpha=chosen[k]) for k in plan}


def crossing(quality: np.ndarray, gain: np.ndarray, target: float) -> float:
    """The quality at which the piecewise-linear curve (quality, gain), in the dial's order, first reaches
    ``target``; NaN when it never does."""
    for j in range(len(gain) - 1):
        a, b = gain[j] - target, gain[j + 1] - target
        if a == 0:
            return float(quality[j])
        if a * b < 0:
            return float(quality[j] + (quality[j + 1] - quality[j]) * a / (a - b))
    return float(quality[-1]) if gain[-1] == target else float("nan")


def crossings(quality: np.ndarray, query_gain: np.ndarray, passage_gain: np.ndarray, clusters: np.ndarray,
              resamples: int, seed: int) -> dict:
    """Per k, the query-side quality whose gain equals the passage side's at r = 0 and at r = 1.

    ``query_gain`` / ``passage_gain``: (fractions, queries) per-query gains over the baseline (NaN: not
    counted); ``quality``: the query side's quality per fraction. CIs: percentile bootstrap over clusters
    (queries of one relevant passage), among the resamples where a crossing exists (``found``: their share)."""
    q = cluster_means(query_gain, clusters)
    p = cluster_means(passage_gain, clusters)
    kept = ~np.isnan(q).any(axis=0) & ~np.isnan(p).any(axis=0)  # clusters with cross-lingual queries
    q, p = q[:, kept], p[:, kept]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(q.shape[1], np.full(q.shape[1], 1 / q.shape[1]), size=resamples) / q.shape[1]
    qb, pb = weights @ q.T, weights @ p.T  # (resamples, fractions)
    out = {}
    for name, j in (("human_translation", 0), ("embedded_translator", -1)):
        point = crossing(quality, q.mean(axis=1), float(p[j].mean()))
        draws = np.array([crossing(quality, qb[b], pb[b, j]) for b in range(resamples)])
        found = ~np.isnan(draws)
        low, high = (np.percentile(draws[found], [2.5, 97.5]) if found.any() else (np.nan, np.nan))
        out[name] = {"quality": None if np.isnan(point) else round(point, 4),
                     "ci_low": None if np.isnan(low) else round(float(low), 4),
                     "ci_high": None if np.isnan(high) else round(float(high), 4),
                     "found": round(float(found.mean()), 4)}
    return out
