"""Figures and DVC plot tables of the scaling experiment (gains with 95% CIs, transfer heatmaps, cost)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from .formats import write_table
from .figure import pyplot as _pyplot, save as _save
from .methods import METHODS
from .sweep import SAME
from .tables import TESTED

# one meaning per line style in every figure: the method (solid), its controls (dashed, dotted), the
# growing per-item weight (dash-dot, weight_modes.png), and in variants.png one alpha for every k, equal
# items at every k, and the method with the other renormalize state; in seeds.png one draw of the
# trained models (thin), beside the draws pooled (solid)
STYLE = {"method": ("-", "o"), "shuffled": ("--", "s"), "centroid": (":", "^"), "per_item": ("-.", "D"),
         "one_alpha": ((0, (3, 1, 1, 1, 1, 1)), "v"), "equal_items": ((0, (8, 3)), "P"),
         "flipped": ((0, (1, 1)), "x"), "draw": ((0, (2, 2)), ".")}


def primary(gains: pd.DataFrame) -> pd.DataFrame:
    """The rows of the configured fusion (first weight mode, each method's configured renormalize state)."""
    return gains[gains["primary"].astype(bool)]


def configured_norm(gains: pd.DataFrame) -> pd.DataFrame:
    """The rows under each method's configured renormalize state (any weight mode)."""
    state = primary(gains).groupby("base_method")["renormalize"].first()
    return gains[gains["renormalize"].astype(bool) == gains["base_method"].map(state).astype(bool)]


def _leaky(method: str, setting: str) -> bool:
    """A method reported in the parallel setting, shown in the global corpus: its coverage leaks the answer."""
    return method in METHODS and METHODS[method].setting not in ("global", setting)


def _band(ax, gains: pd.DataFrame, setting: str, group: str, measure: str) -> None:
    """The normalisation baseline's gain (``xaug.hubness``) and its CI as a grey band."""
    row = gains[(gains["method"] == "normalisation") & (gains["setting"] == setting)
                & (gains["group"] == ("all" if group != SAME else SAME))]
    if len(row):
        r = row.iloc[0]
        ax.axhspan(r[f"ci_low_{measure}"], r[f"ci_high_{measure}"], color="grey", alpha=0.15, lw=0)
        ax.axhline(r[f"delta_{measure}"], color="grey", lw=1, ls=(0, (4, 2)), label="normalisation baseline")


def _line(ax, part: pd.DataFrame, measure: str, color, variant: str, label: str, shift: float = 0.0,
          alpha: float = 0.05) -> None:
    """Gain vs k with its CI as error bars, shifted by ``shift`` on the x axis so that bars do not overlap."""
    part = part.sort_values("k")
    style, marker = STYLE[variant]
    k = part["k"].to_numpy(dtype=float) + shift
    delta = part[f"delta_{measure}"].to_numpy(dtype=float)
    err = np.abs(np.stack([delta - part[f"ci_low_{measure}"].to_numpy(dtype=float),
                           part[f"ci_high_{measure}"].to_numpy(dtype=float) - delta]))
    ax.errorbar(k, delta, yerr=err, linestyle=style, marker=marker, mfc="none", color=color, capsize=2,
                lw=1.2, ms=5, label=label)
    sig = part[f"p_holm_{measure}"].to_numpy(dtype=float) < alpha
    ax.plot(k[sig], delta[sig], marker, color=color, ms=5, linestyle="none")


def _shifts(n: int, width: float = 0.5) -> list[float]:
    return [0.0] * n if n < 2 else list(np.linspace(-width / 2, width / 2, n))


def plot_scaling(gains: pd.DataFrame, path, weight: str, title: str = "") -> None:
    """Gain over the baseline vs k under one weight mode: columns = query groups (all cross-lingual queries
    first), rows = tested measures x method families (the generators, xqg and translate, share a row; the
    methods of human text, parallel_contexts and real_questions, share another, so that their scale does
    not squeeze the generators'); one colour
    per method, solid = the method, dashed = shuffled control, dotted = centroid control; bars = 95%
    cluster-bootstrap CIs, filled markers = significant after Holm."""
    plt = _pyplot()
    data = primary(gains)
    data = data[(data["weight"] == weight) & (data["k"] > 0) & data["variant"].isin(["method", "shuffled", "centroid"])]
    setting = str(data["setting"].iloc[0]) if len(data) else ""
    groups = ["all", "in-set", "out-of-set", SAME]
    methods = list(dict.fromkeys(data["base_method"]))
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    generators = [m for m in methods if m in METHODS and METHODS[m].setting == "global"]
    human = [m for m in methods if m not in generators]  # human text (parallel contexts, real questions)
    families = [f for f in (generators, human) if f]
    rows = [(measure, family) for measure in TESTED for family in families]
    fig, axes = plt.subplots(len(rows), len(groups), figsize=(16, 3.4 * len(rows)), squeeze=False, sharex=True)
    for r, (m, family) in enumerate(rows):
        for c, group in enumerate(groups):
            ax = axes[r][c]
            here = data[(data["group"] == group) & data["base_method"].isin(family)]
            lines = list(here.groupby(["base_method", "variant"], sort=False))
            for ((method, variant), part), shift in zip(lines, _shifts(len(lines))):
                _line(ax, part, m, colors[method], variant, method if variant == "method" else f"{method} ({variant})",
                      shift)
            ax.axhline(0, color="grey", lw=0.8)
            _band(ax, gains, setting, group, m)
            ax.set_xticks(sorted(data["k"].unique()))
            leak = [f for f in family if _leaky(f, setting)]
            ax.set_title(f"{', '.join(family)}: {group} queries" + (" (leaky)" if leak else ""), fontsize=9)
            ax.set_ylabel(f"{m} gain")
            ax.grid(alpha=0.3)
            if c == 0 and lines:
                ax.legend(fontsize=7)
            if r == len(rows) - 1:
                ax.set_xlabel("k target languages (mean over subsets)")
    fig.suptitle(f"{title}{weight} fusion weight; bars: 95% CI over relevant passages; filled: Holm p < 0.05; "
                 "solid: method, dashed: shuffled control, dotted: centroid control; grey band: normalisation "
                 "baseline", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_weight_modes(gains: pd.DataFrame, path, measure: str = "nDCG@10") -> None:
    """What the growing weight does: each method's gain (all cross-lingual queries) vs k, fixed vs per-item
    weight, one panel per corpus setting."""
    plt = _pyplot()
    data = configured_norm(gains)
    data = data[(data["variant"] == "method") & (data["group"] == "all") & (data["k"] > 0)]
    settings = list(dict.fromkeys(data["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 4.2), squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(data["base_method"]))}
    for ax, setting in zip(axes[0], settings):
        lines = list(data[data["setting"] == setting].groupby(["base_method", "weight"], sort=False))
        for ((method, weight), part), shift in zip(lines, _shifts(len(lines))):
            _line(ax, part, measure, colors[method], "per_item" if weight == "per_item" else "method",
                  f"{method}, {weight} weight", shift)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(sorted(data["k"].unique()))
        ax.set_title(f"{setting} corpus", fontsize=10)
        ax.set_xlabel("number of target languages k")
        ax.set_ylabel(f"{measure} gain (all cross-lingual queries)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("fixed: the generated part weighs alpha at every k; per_item: alpha per item, growing with k", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_cost(gains: pd.DataFrame, path, weight: str, measure: str = "nDCG@10") -> None:
    """Gain (all cross-lingual queries, first corpus setting) vs generation seconds and generated tokens, for the
    methods reported in that setting; k labels offset per method so that they do not collide."""
    plt = _pyplot()
    setting = gains["setting"].iloc[0]
    data = primary(gains[gains["setting"] == setting])
    data = data[(data["weight"] == weight) & (data["variant"] == "method")
                & (data["group"] == "all") & (data["k"] > 0)
                & data["base_method"].map(lambda m: m in METHODS and METHODS[m].setting == setting)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, cost in zip(axes, ("generation_seconds", "generated_tokens")):
        for j, (method, part) in enumerate(data.groupby("method", sort=False)):
            part = part.sort_values("k")
            delta = part[f"delta_{measure}"].to_numpy(dtype=float)
            err = np.abs(np.stack([delta - part[f"ci_low_{measure}"], part[f"ci_high_{measure}"] - delta]))
            ax.errorbar(part[cost], delta, yerr=err, marker="o", capsize=2, label=method, color=f"C{j}")
            for x, y, k in zip(part[cost], delta, part["k"]):
                ax.annotate(f"k={int(k)}", (x, y), xytext=(5, 8 if j % 2 == 0 else -12), textcoords="offset points",
                            fontsize=7, color=f"C{j}")
        ax.set_xlabel(cost.replace("_", " ") + " (mean over the subsets of k languages)")
        ax.set_ylabel(f"{measure} gain over baseline")
        ax.axhline(0, color="grey", lw=0.8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{setting} corpus, {weight} weight; bars: 95% CI over relevant passages", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_variants(gains: pd.DataFrame, path, weight: str, measure: str = "nDCG@10") -> None:
    """What the fusion design does to each method's gain (all cross-lingual queries) vs k: rows = corpus
    settings, columns = methods; the method with alpha tuned per k (solid), with one alpha (the largest k's)
    at every k, with equal items at every k (as many as one language gives at k = 1, k = 1's alpha), with
    the other renormalize state (its own alpha per k), and the normalisation baseline (grey band)."""
    plt = _pyplot()
    data = gains[(gains["weight"] == weight) & (gains["group"] == "all") & (gains["k"] > 0)]
    state = primary(gains).groupby("base_method")["renormalize"].first()
    settings = list(dict.fromkeys(data["setting"]))
    methods = [m for m in dict.fromkeys(data["base_method"]) if m in state.index]
    fig, axes = plt.subplots(len(settings), len(methods), figsize=(5.2 * len(methods), 3.6 * len(settings)),
                             squeeze=False, sharex=True)
    for r, setting in enumerate(settings):
        for c, method in enumerate(methods):
            ax = axes[r][c]
            here = data[(data["setting"] == setting) & (data["base_method"] == method)]
            norm = here["renormalize"].astype(bool) == bool(state[method])
            lines = [("method", here[norm & (here["variant"] == "method")], f"{method}, alpha per k"),
                     ("one_alpha", here[here["variant"] == "one_alpha"], "one alpha (k = max) at every k"),
                     ("equal_items", here[here["variant"] == "equal_items"], "equal items at every k"),
                     ("flipped", here[~norm & (here["variant"] == "method")],
                      "renormalize " + ("off" if state[method] else "on") + ", alpha per k")]
            lines = [line for line in lines if len(line[1])]
            for (variant, part, label), shift in zip(lines, _shifts(len(lines))):
                _line(ax, part, measure, f"C{c}", variant, label, shift)
            ax.axhline(0, color="grey", lw=0.8)
            _band(ax, gains, setting, "all", measure)
            ax.set_xticks(sorted(data["k"].unique()))
            leak = " (leaky)" if _leaky(method, setting) else ""
            ax.set_title(f"{method}, {setting} corpus{leak}", fontsize=9)
            ax.set_ylabel(f"{measure} gain (all cross-lingual)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
            if r == len(settings) - 1:
                ax.set_xlabel("k target languages (mean over subsets)")
    fig.suptitle(f"{weight} weight; bars: 95% CI over relevant passages; filled: Holm p < 0.05; grey band: "
                 "normalisation baseline (centring, tuned)", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _grid(rows) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=float)


def plot_transfer(transfers: dict[str, dict[str, dict]], path) -> None:
    """Heatmaps of the gain for queries in Y (columns) when passages are augmented with X alone (rows)."""
    plt = _pyplot()
    settings = list(transfers)
    methods = list(dict.fromkeys(m for s in settings for m in transfers[s]))
    fig, axes = plt.subplots(len(settings), len(methods), figsize=(4.2 * len(methods), 3.8 * len(settings)),
                             squeeze=False)
    cells = [_grid(t["gain"]) for s in settings for t in transfers[s].values()]
    bound = max([float(np.nanmax(np.abs(g))) for g in cells if np.isfinite(g).any()] + [1e-6])  # one colour scale
    image = None
    for r, setting in enumerate(settings):
        for c, method in enumerate(methods):
            ax = axes[r][c]
            t = transfers[setting].get(method)
            if t is None:
                ax.axis("off")
                continue
            grid = _grid(t["gain"])
            image = ax.imshow(grid, cmap="RdBu", vmin=-bound, vmax=bound)
            p = _grid(t["p_holm"]) if "p_holm" in t else np.full_like(grid, np.nan)
            for (i, j), v in np.ndenumerate(grid):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:+.3f}" + ("*" if p[i, j] < 0.05 else ""), ha="center", va="center", fontsize=7)
            ax.set_xticks(range(len(t["languages"])), t["languages"])
            ax.set_yticks(range(len(t["languages"])), t["languages"])
            ax.set_xlabel("query language Y")
            ax.set_ylabel("augmented with X")
            note = ""
            if "diagonal_minus_off_diagonal" in t:
                d = t["diagonal_minus_off_diagonal"]
                note = f"\ndiag - off {d['delta']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
            leak = " (coverage leak)" if _leaky(method, setting) else ""
            ax.set_title(f"{method}, {setting}{leak}: {t['measure']} gain{note}", fontsize=8)
    fig.suptitle("gain for queries in Y with passages augmented by X alone; one colour scale; *: the cell's "
                 "passage-level p < 0.05 after Holm over the matrix", fontsize=9)
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6)
    _save(fig, path)
    plt.close(fig)


def write_plot_tables(gains: pd.DataFrame, folder, weight: str) -> None:
    """One CSV per method (and control) and corpus setting, one row per k, columns ``<group> gain <measure>``
    (with CI bounds) and the costs: the wide layout DVC plots draw several lines from."""
    folder = Path(folder)
    data = gains[(gains["weight"] == weight) & (gains["k"] > 0)]
    state = primary(gains).groupby("base_method")["renormalize"].first()
    flipped = data["renormalize"].astype(bool) != data["base_method"].map(state).astype(bool)
    data = data.assign(method=data["method"].where(~flipped, data["method"] + np.where(
        data["renormalize"].astype(bool), ".renormalized", ".raw")))
    for (method, setting), part in data.groupby(["method", "setting"]):
        first = part[part["group"] == "all"]
        wide = first[["k", "generation_seconds", "generated_tokens"]].set_index("k")
        for group in part["group"].unique():
            rows = part[part["group"] == group].set_index("k")
            for m in TESTED:
                wide[f"{group} gain {m}"] = rows[f"delta_{m}"]
                wide[f"{group} gain {m} ci_low"] = rows[f"ci_low_{m}"]
                wide[f"{group} gain {m} ci_high"] = rows[f"ci_high_{m}"]
        name = method if setting == "global" else f"{method}.{setting}"
        write_table(folder / f"{name}.csv", wide.reset_index())


def plot_dial(table: pd.DataFrame, path, measure: str = "nDCG@10") -> None:
    """The quality dial (``xaug.dial``): gain against quality, one panel per side, one colour per k, 95% CI bars;
    a star marks r = 1, the embedded generator's own output."""
    plt = _pyplot()
    sides = list(dict.fromkeys(table["side"]))
    labels = {"query": "round-trip R@10 of the query items (real questions -> generated queries)",
              "passage": "chrF against the human translation (human -> translator's output)"}
    fig, axes = plt.subplots(1, len(sides), figsize=(6.5 * len(sides), 4.4), squeeze=False, sharey=True)
    for ax, side in zip(axes[0], sides):
        part = table[table["side"] == side]
        for n, (k, line) in enumerate(part.groupby("k")):
            line = line.sort_values("fraction")
            x, y = line["quality"].to_numpy(float), line[f"delta_{measure}"].to_numpy(float)
            err = np.abs(np.stack([y - line[f"ci_low_{measure}"].to_numpy(float),
                                   line[f"ci_high_{measure}"].to_numpy(float) - y]))
            ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=2, lw=1.1, color=f"C{n}", label=f"k = {k}")
            ax.plot(x[-1:], y[-1:], "*", color=f"C{n}", ms=11, mec="black", mew=0.6)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel(labels.get(side, side), fontsize=9)
        ax.set_title(f"{side} side", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{measure} gain over the baseline")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Quality dial: a fraction r of each ceiling's items replaced by the embedded generator's; bars: 95% "
                 "CI over relevant passages; star: r = 1 (the embedded generator)", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_answer(table: pd.DataFrame, path, title: str) -> None:
    """Gain against the device-hours of producing the items (``xaug.answer``), one panel per dataset: one colour
    per method, circles for the query side and squares for the passage side, one point per k (labelled),
    bars = 95% CIs over relevant passages, filled markers = significant after Holm; log x axis."""
    plt = _pyplot()
    datasets = list(dict.fromkeys(table["dataset"]))
    methods = list(dict.fromkeys(table["method"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.6 * len(datasets), 4.6), squeeze=False, sharey=True)
    for ax, dataset in zip(axes[0], datasets):
        part = table[table["dataset"] == dataset]
        for n, method in enumerate(methods):
            line = part[part["method"] == method].sort_values("k")
            if line.empty:
                continue
            x, y = line["device_hours"].to_numpy(float), line["gain"].to_numpy(float)
            err = np.abs(np.stack([y - line["ci_low"].to_numpy(float), line["ci_high"].to_numpy(float) - y]))
            marker = "o" if line["side"].iloc[0] == "query" else "s"
            color = f"C{methods.index(method)}"
            ax.errorbar(x, y, yerr=err, color=color, lw=1.1, capsize=2, marker="none",
                        label=f"{method} ({line['side'].iloc[0]} side)")
            significant = line["p_holm"].to_numpy(float) < 0.05
            ax.scatter(x[significant], y[significant], marker=marker, color=color, s=28, zorder=3)
            ax.scatter(x[~significant], y[~significant], marker=marker, facecolors="white", edgecolors=color, s=28,
                       zorder=3)
            for k, xi, yi in zip(line["k"], x, y):
                ax.annotate(str(k), (xi, yi), textcoords="offset points", xytext=(3, 4), fontsize=7, color=color)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("device-hours to produce the items for k languages (log)", fontsize=9)
        ax.set_title(f"{dataset} ({part['setting'].iloc[0]} setting)", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("nDCG@10 gain over the baseline")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(textwrap.fill(title, 150), fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_seeds(table: pd.DataFrame, seeds: list[int], path) -> None:
    """The seeds stage's rows (``xaug.seeds.pooled_table``) of the first corpus setting, all cross-lingual
    queries: columns = each seeded method's gain over the baseline and the contrast between them, rows = tested
    measures; thin dashed lines = each draw (seed), solid = the draws pooled with its 95% CI (draws and passages
    resampled together), filled markers = Holm p < 0.05."""
    plt = _pyplot()
    setting = str(table["setting"].iloc[0]) if len(table) else ""
    data = table[(table["setting"] == setting) & (table["group"] == "all")] if len(table) else table
    panels = [(f"{a} gain", data[(data["kind"] == "gain") & (data["a"] == a)]) for a in
              dict.fromkeys(data[data["kind"] == "gain"]["a"])] if len(data) else []
    panels += [(f"{a} - {b}", part) for (a, b), part in data[data["kind"] == "between-methods"].groupby(
        ["a", "b"], sort=False)] if len(data) else []
    fig, axes = plt.subplots(len(TESTED), max(len(panels), 1), figsize=(5 * max(len(panels), 1), 3.4 * len(TESTED)),
                             squeeze=False, sharex=True)
    for r, measure in enumerate(TESTED):
        for c, (title, part) in enumerate(panels):
            ax = axes[r][c]
            part = part[part["measure"] == measure].sort_values("k")
            k = part["k"].to_numpy(dtype=float)
            for i, seed in enumerate(seeds):
                style, marker = STYLE["draw"]
                ax.plot(k, part[f"delta_{seed}"].to_numpy(dtype=float), linestyle=style, marker=marker,
                        color=f"C{i + 2}", lw=0.9, label=f"seed {seed}")
            delta = part["delta"].to_numpy(dtype=float)
            err = np.abs(np.stack([delta - part["ci_low"].to_numpy(dtype=float),
                                   part["ci_high"].to_numpy(dtype=float) - delta]))
            style, marker = STYLE["method"]
            ax.errorbar(k, delta, yerr=err, linestyle=style, marker=marker, mfc="none", color="C0", capsize=2,
                        lw=1.4, ms=5, label=f"pooled ({len(seeds)} draws)")
            sig = part["p_holm"].to_numpy(dtype=float) < 0.05
            ax.plot(k[sig], delta[sig], marker, color="C0", ms=5, linestyle="none")
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_title(f"{title}: {setting} corpus, all queries", fontsize=9)
            ax.set_ylabel(f"{measure} difference")
            ax.grid(alpha=0.3)
            if r == len(TESTED) - 1:
                ax.set_xlabel("k target languages (mean over subsets)")
            if r == 0 and c == 0:
                ax.legend(fontsize=7)
    if not panels:
        axes[0][0].text(0.5, 0.5, "no seeded method in `methods`", ha="center", va="center")
    fig.suptitle("Draws of the trained generator and translator (seeds): thin dashed = one draw; solid = pooled, "
                 "bars = 95% CI resampling draws and relevant passages together; filled: Holm p < 0.05", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
