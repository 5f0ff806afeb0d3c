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


def per_query_by_k(evaluator: Evaluator, passages: np.ndarray, passage_ids: list[str], method: MethodInputs,
                   k_max: int, factory: str = "Flat") -> list[dict[str, dict[str, float]]]:
    """Per-query measures of the corpus augmented with the first k languages, for k = 0..k_max."""
    per_k = []
    for k in range(k_max + 1):
        fused = augment(passages, method.generated[:k], method.fusion)
        searcher = FaissSearcher.build(fused, passage_ids, factory)
        per_k.append(evaluator.per_query(*evaluator.search(searcher)))
    return per_k


def _members(evaluator: Evaluator, group: str, augmented: set[str]) -> list[str]:
    return [q for q in evaluator.query_ids if evaluator.query_lang[q] != PIVOT
            and (group == "all" or query_group(evaluator.query_lang[q], augmented) == group)]


def sweep(evaluator: Evaluator, passages: np.ndarray, passage_ids: list[str], languages: list[str],
          method: MethodInputs, k_max: int, factory: str = "Flat",
          per_k: list[dict] | None = None) -> pd.DataFrame:
    """One row per (k, query group) with every measure, the tested differences and Holm-adjusted p-values."""
    per_k = per_k or per_query_by_k(evaluator, passages, passage_ids, method, k_max, factory)
    rows = []
    for k, per_query in enumerate(per_k):
        augmented = set(languages[:k])
        for group in GROUPS:
            members = _members(evaluator, group, augmented)
            row = {"method": method.name, "setting": evaluator.setting, "k": k, "group": group,
                   "queries": len(members), "languages": ",".join(languages[:k]),
                   "generation_seconds": round(sum(method.seconds[:k]), 2),
                   "generated_tokens": int(sum(method.tokens[:k]))}
            for m in ALL_MEASURES:
                row[m] = float(np.mean([per_query[q][m] for q in members])) if members else np.nan
            for m in TESTED:
                diff, p = paired_ttest([per_query[q][m] for q in members], [per_k[0][q][m] for q in members]) \
                    if len(members) > 1 else (np.nan, np.nan)
                row[f"delta_{m}"], row[f"p_{m}"] = diff, p
            rows.append(row)
    frame = pd.DataFrame(rows)
    _holm_over_k(frame)
    return frame


def _holm_over_k(frame: pd.DataFrame) -> None:
    for group in GROUPS:
        for m in TESTED:
            sel = (frame["group"] == group) & (frame["k"] > 0) & frame[f"p_{m}"].notna()
            frame.loc[sel, f"p_holm_{m}"] = holm(frame.loc[sel, f"p_{m}"].to_numpy()) if sel.any() else []


def compare(evaluator: Evaluator, languages: list[str], a: str, per_k_a: list[dict], b: str,
            per_k_b: list[dict]) -> pd.DataFrame:
    """Method ``a`` minus method ``b`` on the same queries at every k >= 1 (paired t-test, Holm over k)."""
    rows = []
    for k in range(1, min(len(per_k_a), len(per_k_b))):
        for group in GROUPS:
            members = _members(evaluator, group, set(languages[:k]))
            row = {"a": a, "b": b, "setting": evaluator.setting, "k": k, "group": group, "queries": len(members)}
            for m in TESTED:
                diff, p = paired_ttest([per_k_a[k][q][m] for q in members], [per_k_b[k][q][m] for q in members]) \
                    if len(members) > 1 else (np.nan, np.nan)
                row[f"delta_{m}"], row[f"p_{m}"] = diff, p
            rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        _holm_over_k(frame)
    return frame


def write_plot_tables(frame: pd.DataFrame, folder) -> None:
    """One CSV per method, one row per k, columns ``<group> <measure>`` and ``<group> gain <measure>``:
    the wide layout DVC plots draw several lines from."""
    from pathlib import Path

    from .io import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for (method, setting), part in frame.groupby(["method", "setting"]):
        wide = part[part["group"] == "all"][["k", "generation_seconds", "generated_tokens"]].set_index("k")
        for group in GROUPS:
            rows = part[part["group"] == group].set_index("k")
            for m in TESTED:
                wide[f"{group} {m}"] = rows[m]
                wide[f"{group} gain {m}"] = rows[f"delta_{m}"]
        name = method if setting == "global" else f"{method}.{setting}"
        with atomic_path(folder / f"{name}.csv") as tmp:
            wide.reset_index().to_csv(tmp, index=False, float_format="%.6g")


def plot_scaling(frame: pd.DataFrame, path, alpha: float = 0.05, title: str = "") -> None:
    """Gain over the baseline on the same queries vs number of target languages: one panel per measure
    and query group (in-set / out-of-set: the groups hold different queries at each k, so absolute
    values are not comparable across k), one line per method; filled markers = significant after Holm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = ("in-set", "out-of-set")
    fig, axes = plt.subplots(len(TESTED), len(groups), figsize=(11, 7.5), squeeze=False, sharex=True)
    colors = {}
    for row, m in enumerate(TESTED):
        for col, group in enumerate(groups):
            ax = axes[row][col]
            for method, part in frame[frame["group"] == group].groupby("method", sort=False):
                part = part[part["queries"] > 0].sort_values("k")
                style = "--" if method.endswith("-shuffled") else "-"
                line, = ax.plot(part["k"], part[f"delta_{m}"], marker="o", mfc="none", linestyle=style,
                                color=colors.get(method), label=method)
                colors[method] = line.get_color()
                sig = part[part[f"p_holm_{m}"] < alpha] if f"p_holm_{m}" in part else part.iloc[:0]
                ax.plot(sig["k"], sig[f"delta_{m}"], "o", color=line.get_color())
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xticks(sorted(frame["k"].unique()))
            ax.set_title(f"{group} queries", fontsize=10)
            ax.set_ylabel(f"{m} gain over baseline")
            ax.grid(alpha=0.3)
            if row == len(TESTED) - 1:
                ax.set_xlabel("number of target languages (k)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{title}filled markers: different from the baseline on the same queries "
                 f"(paired t-test, Holm over k, p < {alpha})", fontsize=9)
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
