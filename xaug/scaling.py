"""The scaling sweep: accuracy and cost of a method for k = 0..n target languages.

For each k the passages are augmented with the first k languages' generated items and searched;
queries split into *in-set* (their language is among the k augmented ones) and *out-of-set* (the
rest); each group's per-query nDCG@10 and R@2kt are tested against the baseline (k = 0) with a
paired two-sided t-test, Holm-corrected over k.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import PIVOT
from .evaluation import Evaluator
from .fusion import FusionSettings, augment
from .metrics import ALL_MEASURES
from .search import FaissSearcher
from .stats import holm, paired_ttest

TESTED = ("nDCG@10", "R@2kt")
GROUPS = ("all", "in-set", "out-of-set")


def query_group(lang: str, augmented: set[str]) -> str:
    return "in-set" if lang in augmented else "out-of-set"


@dataclass
class MethodInputs:
    """What a method contributes: per-language (items, counts) in `languages` order, and per-language cost."""

    name: str
    generated: list[tuple[np.ndarray, np.ndarray]]
    seconds: list[float]
    tokens: list[int]
    fusion: FusionSettings


def shuffled_control(method: MethodInputs, seed: int) -> MethodInputs:
    """The same generated items, each language's assigned to random other passages.

    Same languages, counts and pooling, but no relation between a passage and its items: what this
    control gains comes from where the items sit in the embedding space, not from their content.
    """
    rng = np.random.default_rng(seed)
    shuffled = []
    for items, counts in method.generated:
        perm = rng.permutation(len(counts))
        shuffled.append((items[perm], np.asarray(counts)[perm]))
    return MethodInputs(f"{method.name}-shuffled", shuffled, method.seconds, method.tokens, method.fusion)


def sweep(evaluator: Evaluator, passages: np.ndarray, passage_ids: list[str], languages: list[str],
          method: MethodInputs, k_max: int, factory: str = "Flat") -> pd.DataFrame:
    """One row per (k, query group) with every measure, the tested differences and Holm-adjusted p-values."""
    cross = [q for q in evaluator.query_ids if evaluator.query_lang[q] != PIVOT]
    per_k: list[dict[str, dict[str, float]]] = []
    for k in range(k_max + 1):
        fused = augment(passages, method.generated[:k], method.fusion)
        searcher = FaissSearcher.build(fused, passage_ids, factory)
        per_k.append(evaluator.per_query(*evaluator.search(searcher)))
    rows = []
    for k, per_query in enumerate(per_k):
        augmented = set(languages[:k])
        for group in GROUPS:
            members = [q for q in cross if group == "all" or query_group(evaluator.query_lang[q], augmented) == group]
            row = {"method": method.name, "k": k, "group": group, "queries": len(members),
                   "languages": ",".join(languages[:k]), "generation_seconds": round(sum(method.seconds[:k]), 2),
                   "generated_tokens": int(sum(method.tokens[:k]))}
            for m in ALL_MEASURES:
                row[m] = float(np.mean([per_query[q][m] for q in members])) if members else np.nan
            for m in TESTED:
                diff, p = paired_ttest([per_query[q][m] for q in members], [per_k[0][q][m] for q in members]) \
                    if len(members) > 1 else (np.nan, np.nan)
                row[f"delta_{m}"], row[f"p_{m}"] = diff, p
            rows.append(row)
    frame = pd.DataFrame(rows)
    for group in GROUPS:
        for m in TESTED:
            sel = (frame["group"] == group) & (frame["k"] > 0) & frame[f"p_{m}"].notna()
            frame.loc[sel, f"p_holm_{m}"] = holm(frame.loc[sel, f"p_{m}"].to_numpy()) if sel.any() else []
    return frame


def plot_scaling(frame: pd.DataFrame, path, alpha: float = 0.05) -> None:
    """Gain over the baseline on the same queries vs number of target languages, in-set and out-of-set
    apart (the groups hold different queries at each k, so absolute values are not comparable);
    filled markers = significant after Holm correction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TESTED), figsize=(5.5 * len(TESTED), 4), squeeze=False)
    for ax, m in zip(axes[0], TESTED):
        for (method, group), part in frame.groupby(["method", "group"]):
            part = part[part["queries"] > 0].sort_values("k")
            style = {"all": ":", "in-set": "-", "out-of-set": "--"}[group]
            line, = ax.plot(part["k"], part[f"delta_{m}"], marker="o", mfc="none", linestyle=style,
                            label=f"{method} {group}")
            if f"p_holm_{m}" in part:
                sig = part[part[f"p_holm_{m}"] < alpha]
                ax.plot(sig["k"], sig[f"delta_{m}"], "o", color=line.get_color())
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(sorted(frame["k"].unique()))
        ax.set_xlabel("number of target languages (k)")
        ax.set_ylabel(f"{m} gain over baseline (same queries)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("filled markers: different from the baseline (paired t-test, Holm over k, p < 0.05)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_cost(frame: pd.DataFrame, path) -> None:
    """Gain over the baseline vs generation cost (seconds and tokens), all cross-lingual queries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    allq = frame[frame["group"] == "all"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, cost in zip(axes, ("generation_seconds", "generated_tokens")):
        for method, part in allq.groupby("method"):
            part = part.sort_values("k")
            ax.plot(part[cost], part["delta_nDCG@10"], marker="o", label=method)
            for _, r in part.iterrows():
                ax.annotate(f"k={int(r['k'])}", (r[cost], r["delta_nDCG@10"]), fontsize=7)
        ax.set_xlabel(cost.replace("_", " "))
        ax.set_ylabel("nDCG@10 gain over baseline")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
