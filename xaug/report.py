"""The results document (docs/results.md), rendered from the committed metrics/ and plots/*.csv so that
no number in it can go stale: ``render(metrics, plots)`` returns the markdown, ``write(path, text)``
writes it. Every number comes from those files; the template holds only words and layout.

Formats: measures, gains, alphas and losses with 3 decimals (gains signed, ``+0.032``; CIs
``[+0.020, +0.045]``), p-values with 3 significant digits, counts as integers, other quantities
(seconds, hours, rates, chrF) with the decimals said beside each table.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from .errors import ConfigError
from .formats import read_table
from .io import atomic_path, read_json
from .methods import METHODS

METRIC_FILES = ("retrieval.json", "retrieval_parallel.json", "transfer.json", "coverage.json", "tuning.json",
                "generation.json", "translation.json", "train_xqg.json", "train_xdr.json", "cost.json", "seeds.json")
TABLE_FILES = ("scaling.csv", "contrasts.csv")
SWEEP_FILES = ("transfer.json", "coverage.json", "tuning.json", "generation.json", "dial.json")  # a second archive's
DATASET_NAMES = {"xquad": "XQuAD"}
MEASURE = "nDCG@10"  # the measure of the gain tables (the one the tune stage chooses by)
MEASURES = ("nDCG@10", "RR@10", "R@1", "R@5", "R@20", "R@100", "R@2kt", "R@5kt")
GROUPS = ("all", "in-set", "out-of-set")  # cross-lingual query groups of the headline
NONE = "—"


# ---------------------------------------------------------------------------------------------- formats
def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def num(x) -> str:
    """A measure, alpha or loss: 3 decimals."""
    return NONE if _missing(x) else f"{float(x):.3f}"


def gain(x) -> str:
    """A difference: 3 decimals, signed."""
    return NONE if _missing(x) else f"{float(x):+.3f}"


def ci(low, high) -> str:
    return NONE if _missing(low) or _missing(high) else f"[{gain(low)}, {gain(high)}]"


def pval(p) -> str:
    """A p-value: 3 significant digits."""
    return NONE if _missing(p) else f"{float(p):.3g}"


def count(n) -> str:
    return NONE if _missing(n) else f"{int(round(float(n))):,}"


def quantity(x, decimals: int) -> str:
    """Seconds, hours, rates, chrF: the decimals the table says."""
    return NONE if _missing(x) else f"{float(x):,.{decimals}f}"


def _cell(text) -> str:
    return str(text).strip().replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _tested(delta, low, high, p, tost=None) -> str:
    """A difference with its CI and (Holm) p, and the equivalence (TOST) p where there is one."""
    if _missing(delta):
        return NONE
    return f"{gain(delta)} {ci(low, high)} (p {pval(p)}" + ("" if _missing(tost) else f"; TOST {pval(tost)}") + ")"


# ---------------------------------------------------------------------------------------------- inputs
def load(metrics: str | os.PathLike, plots: str | os.PathLike, files=METRIC_FILES) -> dict:
    """The metric ``files`` (by name) and the plots' CSVs (as data frames); a missing file is a ConfigError."""
    found = {name: read_json(Path(metrics) / name) for name in files}
    found.update({name: read_table(Path(plots) / name) for name in TABLE_FILES})
    return found


def _column(frame: pd.DataFrame, name: str, source: str):
    if name not in frame.columns:
        raise ConfigError(f"{source}: no column {name!r}")
    return frame[name]


def _primary_weight(contrasts: pd.DataFrame) -> str:
    weights = list(dict.fromkeys(_column(contrasts, "weight", "contrasts.csv")))
    if len(weights) != 1:
        raise ConfigError(f"contrasts.csv: expected the controls in one (the primary) weight mode, got {weights}")
    return weights[0]


def _primary(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the configured fusion (first weight mode, each method's configured renormalize state)."""
    return frame[_column(frame, "primary", "scaling.csv / contrasts.csv").astype(bool)]


def _norm_label(renormalize) -> str:
    return "renormalized" if bool(renormalize) else "raw"


def _in_order(values) -> list:
    return list(dict.fromkeys(values))


def _shown(method: str, setting: str) -> bool:
    """A method is reported in its own corpus setting and, for a global one, in every setting."""
    spec = METHODS.get(method)
    return spec is None or spec.setting in ("global", setting)


def _figure(figures: str, name: str, caption: str) -> list[str]:
    return [f"![{caption}]({figures}/{name})", ""]


# ---------------------------------------------------------------------------------------------- sections
def _header(title: str = "Results: xQG vs translation", metric_files=METRIC_FILES, folder: str = "",
            stage: str = "report", tables=TABLE_FILES) -> list[str]:
    files = ", ".join(f"`metrics/{folder}{n}`" for n in metric_files) + ", " + ", ".join(
        f"`plots/{folder}{n}`" for n in tables)
    return [
        f"# {title}",
        "",
        f"Generated by `stages/report.py` (the `{stage}` stage of dvc.yaml) from {files}. Do not edit it by "
        f"hand: change the pipeline, then `dvc repro {stage}`.",
        "",
        "Gains are passage-level means of per-query differences on the same queries (per-query differences "
        "averaged within the cluster of their relevant passage, then over clusters), each k averaged over "
        "every subset of k target languages; brackets hold the 95% cluster-bootstrap CI; in the gain and "
        "contrast tables p is the Holm-adjusted sign-flip p within the table's family (the `family` column of "
        "the CSV), with at least the resamples that family needs (the `resamples` column). Measures, gains and alphas have 3 "
        f"decimals, p-values 3 significant digits; {NONE} marks a cell with nothing to report (no out-of-set "
        "queries when every language augments).",
        "",
    ]


def _baseline(scaling: pd.DataFrame) -> list[str]:
    rows = [[r["setting"], r["group"], count(r["queries"])] + [num(r[m]) for m in MEASURES]
            for _, r in scaling[scaling["method"] == "baseline"].iterrows()]
    return ["## The baseline", "",
            "The unaugmented xDR per corpus setting (`global`: every query searches all corpus passages; "
            "`parallel`: a query in L searches the passages with an L parallel context), averaged per query "
            "(`plots/scaling.csv`, k = 0):", ""] + table(["setting", "queries", "n"] + list(MEASURES), rows)


def _gain_rows(frame: pd.DataFrame, label, ks) -> list[str]:
    by_k = {int(r["k"]): r for _, r in frame.iterrows()}
    cells = []
    for k in ks:
        r = by_k.get(k)
        cells.append(NONE if r is None else _tested(r[f"delta_{MEASURE}"], r[f"ci_low_{MEASURE}"],
                                                     r[f"ci_high_{MEASURE}"], r[f"p_holm_{MEASURE}"]))
    return [label] + cells


def _headline(scaling: pd.DataFrame, weight: str, figures: str) -> list[str]:
    out = ["## Headline: gain over the baseline by number of target languages k", "",
           f"{MEASURE} gain of each method over the baseline, {weight} weight (the primary mode), for all "
           "cross-lingual queries, the in-set ones (query language among the k augmenting languages) and the "
           "out-of-set ones; a method that needs the parallel setting is reported there only.", ""]
    methods = _primary(scaling)
    methods = methods[(methods["variant"] == "method") & ~methods["method"].isin(["baseline", "normalisation"])]
    for setting in _in_order(methods["setting"]):
        part = methods[(methods["setting"] == setting) & (methods["weight"] == weight)]
        ks = sorted(int(k) for k in _in_order(part["k"]))
        rows = []
        for method in _in_order(part["method"]):
            if not _shown(method, setting):
                continue
            for group in GROUPS:
                sel = part[(part["method"] == method) & (part["group"] == group)]
                rows.append(_gain_rows(sel, f"{method}, {group}", ks))
        out += [f"### {setting} corpus", ""] + table(["method, queries"] + [f"k = {k}" for k in ks], rows)
        out += _normalisation_line(scaling, setting)
        out += _figure(figures, "scaling.png" if setting == "global" else f"scaling_{setting}.png",
                       f"{MEASURE} gain vs k, {setting} corpus")
    return out


def _normalisation_line(scaling: pd.DataFrame, setting: str) -> list[str]:
    rows = scaling[(scaling["method"] == "normalisation") & (scaling["setting"] == setting)
                   & (scaling["group"] == "all")]
    if not len(rows):
        return []
    r = rows.iloc[0]
    return ["The normalisation baseline (centring, `xaug/hubness.py`; no augmentation), all cross-lingual queries: "
            + _tested(r[f"delta_{MEASURE}"], r[f"ci_low_{MEASURE}"], r[f"ci_high_{MEASURE}"], r[f"p_holm_{MEASURE}"])
            + ".", ""]


def _weight_modes(scaling: pd.DataFrame, figures: str) -> list[str]:
    out = ["## Weight modes", "",
           f"{MEASURE} gain over the baseline for all cross-lingual queries under each weight mode (`fixed`: "
           "the generated part weighs alpha at every k; `per_item`: it grows with the number of items), alpha "
           "and queries tuned per mode.", ""]
    state = _primary(scaling).groupby("base_method")["renormalize"].first()
    methods = scaling[(scaling["variant"] == "method") & scaling["base_method"].isin(state.index)
                      & (scaling["group"] == "all") & (scaling["k"] > 0)]
    methods = methods[methods["renormalize"].astype(bool) == methods["base_method"].map(state).astype(bool)]
    for setting in _in_order(methods["setting"]):
        part = methods[methods["setting"] == setting]
        ks = sorted(int(k) for k in _in_order(part["k"]))
        rows = [_gain_rows(part[(part["method"] == m) & (part["weight"] == w)], f"{m}, {w}", ks)
                for m in _in_order(part["method"]) if _shown(m, setting) for w in _in_order(part["weight"])]
        out += [f"### {setting} corpus", ""] + table(["method, weight"] + [f"k = {k}" for k in ks], rows)
    return out + _figure(figures, "weight_modes.png", "fixed vs per-item weight")


def _same_language(scaling: pd.DataFrame, weight: str) -> list[str]:
    out = ["## Same-language queries", "",
           f"{MEASURE} gain over the baseline for the corpus-language queries (the passages' own language), "
           f"{weight} weight.", ""]
    methods = _primary(scaling)
    methods = methods[(methods["variant"] == "method") & (methods["method"] != "baseline")
                      & (methods["group"] == "same-language") & (methods["weight"] == weight)]
    for setting in _in_order(methods["setting"]):
        part = methods[methods["setting"] == setting]
        ks = sorted(int(k) for k in _in_order(part["k"]))
        rows = [_gain_rows(part[part["method"] == m], m, ks) for m in _in_order(part["method"]) if _shown(m, setting)]
        out += [f"### {setting} corpus", ""] + table(["method"] + [f"k = {k}" for k in ks], rows)
    return out


def _contrasts(contrasts: pd.DataFrame) -> list[str]:
    margin_text = ", ".join(f"±{num(m)}" for m in sorted(set(_column(contrasts, "margin", "contrasts.csv"))))
    out = ["## Content and between-method contrasts", "",
           f"{MEASURE} difference on the same queries (all cross-lingual queries), configured fusion: each method "
           "minus its shuffled control (its items reassigned among the covered passages: same coverage, no "
           "passage-specific content), minus its centroid control (each language's mean item added to every "
           "passage: a constant shift), minus the normalisation baseline (no augmentation), and between methods; "
           "the controls use the method's own alpha at each k, so the difference is content at the same weight. "
           "p is Holm-adjusted within the contrast kind; TOST is the p of the two "
           "one-sided tests that the difference lies within the equivalence margin (`scaling.equivalence_margin`, "
           f"{margin_text}), unadjusted: a small TOST p supports \"no difference\", a large one does not.", ""]
    part = _primary(contrasts)
    part = part[(part["group"] == "all") & part["kind"].isin(CONTENT_KINDS)]
    return out + _contrast_tables(part)


CONTENT_KINDS = ("method-shuffled", "method-centroid", "method-normalisation", "between-methods")


def _contrast_tables(part: pd.DataFrame, label=None) -> list[str]:
    """One table per corpus setting: a row per contrast (``label(row)`` or "a − b"), a column per k."""
    out = []
    for setting in _in_order(part["setting"]):
        here = part[part["setting"] == setting]
        ks = sorted(int(k) for k in _in_order(here["k"]))
        rows = []
        for (a, b, kind, renorm), sel in here.groupby(["a", "b", "kind", "renormalize"], sort=False):
            if not (_shown(a.split("-")[0], setting) and _shown(b.split("-")[0], setting)):
                continue
            by_k = {int(r["k"]): r for _, r in sel.iterrows()}
            cells = []
            for k in ks:
                r = by_k.get(k)
                if r is None:
                    cells.append(NONE)
                    continue
                cells.append(_tested(r[f"delta_{MEASURE}"], r[f"ci_low_{MEASURE}"], r[f"ci_high_{MEASURE}"],
                                     r[f"p_holm_{MEASURE}"], r.get(f"p_tost_{MEASURE}")))
            rows.append([label(a, b, kind, renorm) if label else f"{a} − {b}"] + cells)
        out += [f"### {setting} corpus", ""] + table(["contrast"] + [f"k = {k}" for k in ks], rows)
    return out


SEED_ROWS = {"gain": "{a}", "between-methods": "{a} − {b}", "method-centroid": "{a} − centroid control",
             "method-normalisation": "{a} − normalisation baseline"}


def _seeds(report: dict, frame: pd.DataFrame, figures: str) -> list[str]:
    seeds = [int(s) for s in report["seeds"]]
    out = ["## Draws of the trained models (seeds)", "",
           f"The query generator and the translator are trained, the queries sampled, alpha (and xqg's number of "
           f"queries) tuned per k and the sweep run once per seed ({', '.join(map(str, seeds))}: `seed` and "
           "`scaling.seeds`; `plots/seeds.csv`, `metrics/seeds.json`), for the configured fusion and the centroid "
           "controls. Each draw's models:", ""]
    rows = []
    for s in seeds:
        q = report["quality"].get(str(s)) or {}
        tuned = report["tuning"].get(str(s), {})
        rows.append([str(s), num(q.get("xqg_tune_loss")), num(q.get("xqg_round_trip_R@10")),
                     num(q.get("translator_tune_loss")), quantity(q.get("translator_chrF_question"), 2),
                     quantity(q.get("translator_chrF_sentence"), 2)]
                    + [" ".join(num(c["alpha"]) + ("" if c.get("n_queries_used") is None else
                                                   f"/{count(c['n_queries_used'])}q") for c in by_k.values())
                       for by_k in tuned.values()])
    methods = list(next(iter(report["tuning"].values()), {}))
    out += table(["seed", "xqg tune loss", "round-trip R@10", "translator tune loss", "chrF questions",
                  "chrF sentences"] + [f"{m}: alpha by k" for m in methods], rows)
    out += [f"Pooled over the {len(seeds)} draws, {MEASURE}, all cross-lingual queries: the mean over draws and "
            "relevant passages, its 95% CI and p from resampling draws and passages together (the interval "
            "holds the spread between draws as well as between passages; p Holm-adjusted over methods and k "
            "within each kind; TOST within the equivalence margin, "
            f"±{num(report['equivalence_margin'])}); then each draw's own delta and the standard deviation "
            "between draws.", ""]
    part = frame[(frame["group"] == "all") & (frame["measure"] == MEASURE)] if len(frame) else frame
    for setting in _in_order(part["setting"]) if len(part) else []:
        here = part[part["setting"] == setting]
        ks = sorted(int(k) for k in _in_order(here["k"]))
        pooled, draws = [], []
        for (kind, a, b), sel in here.groupby(["kind", "a", "b"], sort=False):
            by_k = {int(r["k"]): r for _, r in sel.iterrows()}
            label = SEED_ROWS.get(kind, "{a} − {b}").format(a=a, b=b)
            pooled.append([label] + [_tested(r["delta"], r["ci_low"], r["ci_high"], r["p_holm"],
                                             r["p_tost"] if kind != "gain" else None)
                                     if (r := by_k.get(k)) is not None else NONE for k in ks])
            if kind in ("gain", "between-methods"):
                draws.append([label] + [" ".join(gain(r[f"delta_{s}"]) for s in seeds) + f" (sd {num(r['sd_draws'])})"
                                        if (r := by_k.get(k)) is not None else NONE for k in ks])
        out += [f"### {setting} corpus, pooled", ""] + table(["row"] + [f"k = {k}" for k in ks], pooled)
        out += [f"### {setting} corpus, each draw (seeds {', '.join(map(str, seeds))})", ""] + table(
            ["row"] + [f"k = {k}" for k in ks], draws)
    return out + _figure(figures, "seeds.png", "each draw's gain and the pooled gain against k")


def _normalisation(scaling: pd.DataFrame, contrasts: pd.DataFrame, figures: str) -> list[str]:
    out = ["## Normalisation apart from augmentation", "",
           f"{MEASURE} gain over the baseline, all cross-lingual queries, of every method and control with the "
           "fused vectors renormalized to unit length and without (`raw`), each state with its own alpha per k "
           "(`metrics/tuning.json`); and each method against the normalisation baseline (centring, "
           "`xaug/hubness.py`, its strength tuned on the tune split). With every passage covered, the centroid "
           "control adds one vector to every passage: without renormalization it cannot change a ranking, so "
           "what it gains renormalized is the renormalization.", ""]
    state = _primary(scaling).groupby("base_method")["renormalize"].first()
    first = _in_order(_primary(scaling)["weight"])[0]
    rows_of = scaling[(scaling["group"] == "all") & (scaling["k"] > 0) & (scaling["weight"] == first)
                      & scaling["variant"].isin(["method", "shuffled", "centroid"])
                      & scaling["base_method"].isin(state.index)]
    for setting in _in_order(rows_of["setting"]):
        part = rows_of[rows_of["setting"] == setting]
        ks = sorted(int(k) for k in _in_order(part["k"]))
        rows = [_gain_rows(sel, f"{name}, {_norm_label(renorm)}", ks)
                for (name, renorm), sel in part.groupby(["method", "renormalize"], sort=False)
                if _shown(name.split("-")[0], setting)]
        out += [f"### {setting} corpus: gains", ""] + table(["system"] + [f"k = {k}" for k in ks], rows)
        out += _normalisation_line(scaling, setting)
    vs = contrasts[(contrasts["group"] == "all") & (contrasts["kind"] == "method-normalisation")]
    out += ["Each method minus the normalisation baseline (p Holm-adjusted over the methods and k of each "
            "renormalize state; TOST within the equivalence margin):", ""]
    out += _contrast_tables(vs, lambda a, b, kind, renorm: f"{a} ({_norm_label(renorm)}) − normalisation")
    return out + _figure(figures, "variants.png", "alpha per k, one alpha, equal items, renormalize on and off")


def _alpha_per_k(scaling: pd.DataFrame, tuning: dict) -> list[str]:
    measure = tuning["measure"]
    out = ["## Alpha per k", "",
           f"The tune stage chooses alpha (and, for xqg, the number of queries used) for each k on the "
           f"`{tuning['split']}` split, {measure} averaged over that k's subsets (`metrics/tuning.json`, "
           "configured fusion); the sweep uses each k's own choice. Below the choices, the gain with one alpha "
           "(the largest k's) at every k, the design before alpha was tuned per k.", ""]
    state = _primary(scaling).groupby("base_method")["renormalize"].first()
    first = _in_order(_primary(scaling)["weight"])[0]
    rows = []
    for method, weights in tuning["choices"].items():
        if method not in state.index:
            continue
        c = weights[first][_norm_label(state[method])]
        ks = sorted(int(k) for k in c["by_k"])
        rows.append([method, c["setting"]] + [
            num(c["by_k"][str(k)]["alpha"]) + ("" if c["by_k"][str(k)]["n_queries_used"] is None
                                               else f" ({count(c['by_k'][str(k)]['n_queries_used'])} q)")
            for k in ks])
    ks = sorted({int(k) for w in tuning["choices"].values() for n in w.values() for c in n.values() for k in c["by_k"]})
    out += table(["method", "tuned in", *[f"k = {k}" for k in ks]], rows)
    part = _primary(scaling)
    part = part[(part["group"] == "all") & part["variant"].isin(["method", "one_alpha"]) & (part["k"] > 0)]
    for setting in _in_order(part["setting"]):
        here = part[part["setting"] == setting]
        rows = [_gain_rows(sel, name, ks) for name, sel in here.groupby("method", sort=False)
                if _shown(name.split("-")[0], setting)]
        out += [f"### {setting} corpus: gain, alpha per k vs one alpha", ""] + table(
            ["system"] + [f"k = {k}" for k in ks], rows)
    return out


def _items(scaling: pd.DataFrame, contrasts: pd.DataFrame) -> list[str]:
    out = ["## Items apart from languages", "",
           "In the sweep a passage's pool grows with k (the items of k languages). The `equal_items` variant holds "
           "it at the items one language gives at k = 1 (xqg: the queries used at k = 1; translate: one "
           "translation), drawn round-robin from the k languages in a random order per passage, with k = 1's "
           "alpha at every k (`xaug/equal_items.py`). Gains over the baseline, all cross-lingual queries, then "
           "the two contrasts: more languages at equal items (`equal_items` at k minus at k = 1) and more items "
           "at equal languages (the method minus `equal_items` at the same k).", ""]
    part = _primary(scaling)
    part = part[(part["group"] == "all") & part["variant"].isin(["method", "equal_items"]) & (part["k"] > 0)]
    for setting in _in_order(part["setting"]):
        here = part[part["setting"] == setting]
        ks = sorted(int(k) for k in _in_order(here["k"]))
        rows = [_gain_rows(sel, name, ks) for name, sel in here.groupby("method", sort=False)
                if _shown(name.split("-")[0], setting)]
        out += [f"### {setting} corpus: gains", ""] + table(["system"] + [f"k = {k}" for k in ks], rows)
    vs = _primary(contrasts)
    vs = vs[(vs["group"] == "all") & vs["kind"].isin(["languages-at-equal-items", "items-at-equal-languages"])]
    return out + _contrast_tables(vs, lambda a, b, kind, renorm: f"{a} − {b}" if kind != "languages-at-equal-items"
                                  else f"{a}: k − (k = 1)")


def _transfer(transfer: dict, figures: str) -> list[str]:
    out = ["## Transfer", "",
           "Augmenting with one language X alone, queries in each language Y: the diagonal (Y = X) against "
           f"the off-diagonal cells, {MEASURE} gain over the baseline with 95% CI and p (`metrics/transfer.json`); "
           "a method is shown in the corpus setting it is reported in.", ""]
    rows = []
    for setting, methods in transfer.items():
        for method, t in methods.items():
            if not _shown(method, setting):
                continue
            rows.append([setting, method] + [_tested(t[key]["delta"], t[key]["ci_low"], t[key]["ci_high"], t[key]["p"])
                                             for key in ("diagonal", "off_diagonal", "diagonal_minus_off_diagonal")])
    out += table(["setting", "method", "diagonal", "off-diagonal", "diagonal − off-diagonal"], rows)
    out += ["The full matrices: gain for queries in Y (columns) with the passages augmented by X alone (rows); "
            "* marks a cell whose passage-level p is below 0.05 after Holm over the matrix.", ""]
    for setting, methods in transfer.items():
        for method, t in methods.items():
            if not _shown(method, setting):
                continue
            langs, p = t["languages"], t.get("p_holm")
            star = [[p is not None and p[i][j] is not None and p[i][j] < 0.05 for j in range(len(langs))]
                    for i in range(len(langs))]
            out += [f"**{method}, {setting} corpus**", ""]
            out += table(["X \\ Y"] + langs, [[x] + [gain(g) + ("*" if star[i][j] else "") for j, g in enumerate(t["gain"][i])]
                                               for i, x in enumerate(langs)])
    return out + _figure(figures, "transfer.png", "transfer: gain for queries in Y with passages augmented by X alone")


def _coverage(covered: dict) -> list[str]:
    out = ["## Coverage", "",
           "Per language L, the share of the passages a cross-lingual query may rank that the method augments "
           "with L items, then the share of cross-lingual queries whose relevant passage it augments (for "
           "real_questions, once the query's own question is left out), 3 decimals (`metrics/coverage.json`). "
           "Where the second share is the higher, coverage alone favours relevant passages (a leak); where it "
           "is the lower, it handicaps them; a method is shown in the corpus setting it is reported in.", ""]
    rows, langs = [], []
    for setting, methods in covered.items():
        for method, by_lang in methods.items():
            if not _shown(method, setting):
                continue
            langs = langs or list(by_lang)
            rows.append([setting, method] + [f"{num(by_lang[l]['passages'])} / {num(by_lang[l]['relevant'])}"
                                             if l in by_lang else NONE for l in langs])
    return out + table(["setting", "method"] + [f"{l}: passages / relevant" for l in langs], rows)


def _generation_cost(scaling: pd.DataFrame, weight: str, figures: str) -> list[str]:
    part = _primary(scaling)
    part = part[(part["variant"] == "method") & ~part["method"].isin(["baseline", "normalisation"])
                & (part["group"] == "all") & (part["weight"] == weight)]
    setting = _in_order(part["setting"])[0] if len(part) else NONE
    part = part[part["setting"] == setting]
    ks = sorted(int(k) for k in _in_order(part["k"]))
    rows = []
    for method in _in_order(part["method"]):
        by_k = {int(r["k"]): r for _, r in part[part["method"] == method].iterrows()}
        rows.append([method] + [NONE if by_k.get(k) is None else
                                f"{quantity(by_k[k]['generation_seconds'], 1)} s, {count(by_k[k]['generated_tokens'])}"
                                for k in ks])
    return (["## Generation cost in this run", "",
             "Seconds (1 decimal) and generated tokens to produce the augmentation of k languages, means over "
             f"the subsets of k languages ({setting} corpus rows of `plots/scaling.csv`); a method that generates "
             "nothing costs 0.", ""]
            + table(["method"] + [f"k = {k}" for k in ks], rows)
            + _figure(figures, "cost.png", "gain vs generation cost"))


def _tuning(tuning: dict) -> list[str]:
    measure = tuning["measure"]
    rows = []
    for method, modes in tuning["choices"].items():
        for weight, norms in modes.items():
            for norm, c in norms.items():
                base = tuning["baseline"][c["setting"]]
                for k, choice in c["by_k"].items():
                    used = choice["n_queries_used"]
                    rows.append([method, weight, norm, c["setting"], k, num(choice["alpha"]),
                                 NONE if used is None else count(used), num(base), num(choice[measure]),
                                 gain(choice["gain"])])
    norm_rows = [[setting, num(n["beta"]), num(tuning["baseline"][setting]), num(n[measure]), gain(n["gain"])]
                 for setting, n in tuning["normalisation"].items()]
    return (["## Tuning choices", "",
             f"The fusion weight alpha (and, for xqg, the number of generated queries used) chosen by {measure} "
             f"on the `{tuning['split']}` split ({count(tuning['queries'])} cross-lingual queries, "
             f"{count(tuning['clusters'])} passage clusters; augmenting languages: {tuning['languages_augmented']}), "
             "per method, weight mode, renormalize state and k (`metrics/tuning.json`).", ""]
            + table(["method", "weight", "renormalize", "setting", "k", "alpha", "queries used",
                     f"baseline {measure}", f"tuned {measure}", "gain"], rows)
            + ["The normalisation baseline's strength beta (`p' = (p - beta mu) / |p - beta mu|`, mu the mean "
               "passage; beta 1 is centring, a negative beta adds the mean):", ""]
            + table(["setting", "beta", f"baseline {measure}", f"tuned {measure}", "gain"], norm_rows))


def _retrieval_table(block: dict) -> list[str]:
    rows = [[lang, count(m["queries"])] + [num(m[x]) for x in MEASURES] for lang, m in block["by_lang"].items()]
    total = sum(m["queries"] for m in block["by_lang"].values())
    rows.append(["avg (macro, cross-lingual)", count(total)] + [num(block["avg"][x]) for x in MEASURES])
    en = block["en"]
    rows.append(["en (corpus language, apart)", count(en["queries"])] + [num(en[x]) for x in MEASURES])
    return table(["language", "queries"] + list(MEASURES), rows)


def _retrieval(retrieval: dict, parallel: dict) -> list[str]:
    out = ["## The baseline xDR per language", "",
           "The evaluate stage's measures per query language for the unaugmented xDR (`metrics/retrieval.json`: "
           "global corpus; `metrics/retrieval_parallel.json`: parallel setting); avg is the macro average over "
           "the cross-lingual languages, the corpus language apart.", "",
           "### global corpus", ""] + _retrieval_table(retrieval["baseline"])
    out += ["### parallel corpus", ""] + _retrieval_table(parallel["baseline"])
    out += ["### Every system, every language augmenting", "",
            "The evaluate stage's macro averages (cross-lingual) and corpus-language figures per system, with the "
            "configured fusion settings and every language augmenting.", ""]
    rows = []
    for setting, block in (("global", retrieval), ("parallel", parallel)):
        for system, m in block.items():
            rows.append([setting, system] + [num(m["avg"][x]) for x in MEASURES] + [num(m["en"][MEASURE])])
    return out + table(["setting", "system"] + list(MEASURES) + [f"en {MEASURE}"], rows)


def _query_quality(generation: dict, metrics: str = "metrics/generation.json") -> list[str]:
    out = [f"Query generator quality (`{metrics}`): round-trip R@1 / R@10 is a generated query "
           "retrieving its own passage with the baseline xDR, beside the real held-out questions of the same "
           "passages; held-out passages: the same for passages of the evaluation split only; in script: share "
           "of generated queries in the target language's script; duplicates: share of repeated queries; chrF "
           "(2 decimals) against the real questions." + _note(generation), ""]
    rows = []
    for lang, g in generation["xqg"].items():
        rows.append([lang, num(g["R@1"]), num(g["R@10"]), num(g.get("heldout_passages_R@1")),
                     num(g.get("heldout_passages_R@10")), num(g["real_R@1"]), num(g["real_R@10"]),
                     num(g["in_script"]), quantity(g["chrF"], 2), num(g["duplicates"]), count(g.get("queries")),
                     count(g.get("generated_tokens"))])
    return out + table(["language", "round-trip R@1", "round-trip R@10", "held-out passages R@1",
                        "held-out passages R@10", "real R@1", "real R@10", "in script", "chrF", "duplicates", "queries",
                        "generated tokens"], rows)


def _generators(generation: dict, translation: dict, train_xqg: dict, train_xdr: dict,
                figures: str) -> list[str]:
    out = ["## The generators and the translator", ""] + _query_quality(generation)
    out += ["Translator quality (`metrics/translation.json`): chrF (2 decimals) of English -> L translations "
            "of held-out questions and answer sentences." + _note(translation), ""]
    held = translation["heldout"]
    out += table(["language", "chrF questions", "questions", "chrF sentences", "sentences"],
                 [[lang, quantity(h["chrF_question"], 2), count(h["n_question"]), quantity(h["chrF_sentence"], 2),
                   count(h["n_sentence"])] for lang, h in held.items()])
    out += ["Translation examples (held-out questions and answer sentences): the translation of the first "
            "pair of each language and kind. MLQA's text stays out of the repository: the question id finds "
            "the English question and its reference in `data/mlqa/queries.jsonl` (the answer sentence lies in "
            "that question's contexts), and train_translator's log prints all three.", ""]
    out += table(["language", "kind", "question id", "translation"],
                 [[lang, e["kind"], e["qid"], e["translation"]] for lang, h in held.items() for e in h["examples"]])
    out += ["Training (`metrics/train_xqg.json`, `metrics/train_xdr.json`, `metrics/translation.json`): "
            "optimisation steps run (of the schedule's cap), the step whose weights were kept (the lowest tune-split "
            "loss of the checks, the stopping rule of `xqg.warm` / `translate.warm`) and that loss (negative "
            "log-likelihood per piece), training examples, and the mean label-smoothed training loss over the "
            "first and last 20 steps (xDR: 0 steps is zero-shot).", ""]
    rows = [["query generator", train_xqg, count(train_xqg["examples"])],
            ["translator", translation, count(translation.get("pairs"))],
            ["xDR", train_xdr, count(train_xdr["train_pairs"])]]
    out += table(["model", "kind", "steps", "cap", "kept step", "tune loss", "examples", "first loss", "last loss",
                  "bf16"],
                 [[name, m["model"], count(m.get("steps")), count(m.get("max_steps")), count(m.get("best_step")),
                   num(m.get("tune_loss")), examples, num(m.get("loss_first")), num(m.get("loss_last")),
                   _flag(m.get("bf16"))]
                  for name, m, examples in rows])
    for name, label in (("xqg", "query generator"), ("translator", "translator")):
        out += _figure(figures, f"training/{name}.png", f"learning curve of the warm {label}")
    return out


def _note(metrics: dict) -> str:
    """The file's own note on what held-out data it reads, as a sentence."""
    note = metrics.get("reads_heldout")
    return f" Reads {note}." if note else ""


def _flag(value) -> str:
    return NONE if value is None else ("yes" if value else "no")


def _cost(cost: dict, figures: str) -> list[str]:
    out = ["## Cost at the paper's scale", "",
           f"Device-hours (1 decimal) to augment {count(cost['inputs']['passages'])} passages with k = 1.."
           f"{count(cost['inputs']['languages'])} languages (`metrics/cost.json`), by the formulas "
           f"xQG: `{cost['formula']['xqg']}` and translation: `{cost['formula']['translate']}`; "
           f"{cost['formula']['unit']}. Rates measured on {cost['device']}.", ""]
    out += table(["input", "value"], [[k, _value(v)] for k, v in cost["inputs"].items()])
    out += ["Rates (per second, 1 decimal) and what they were measured on:", ""]
    out += table(["method", "rate", "value", "device", "source"],
                 [[m, k, quantity(v, 1), r["device"], r["source"]] for m, r in cost["rates"].items()
                  for k, v in r.items() if k.endswith("_per_s")])
    out += ["Device-hours per k; translation over xQG device-hours (`ratio_translate_to_xqg`): "
            f"{num(cost['ratio_translate_to_xqg'])}.", ""]
    out += table(["k", "xQG hours", "translation hours"],
                 [[count(r["k"]), quantity(r["xqg_hours"], 1), quantity(r["translate_hours"], 1)]
                  for r in cost["by_k"]])
    return out + _figure(figures, "cost_scale.png", "device-hours vs k at the paper's scale")


def _answer(frame: pd.DataFrame, cost: dict, figures: str) -> list[str]:
    """Each method's gain at k beside the device-hours of producing its items at the paper's scale
    (``plots/answer.csv``, ``xaug/answer.py``)."""
    inputs = cost["inputs"]
    out = ["## The answer: gain against cost, both archives", "",
           f"{MEASURE} gain over the baseline (all cross-lingual queries of the setting named, the configured "
           "fusion with alpha tuned per k; 95% CI over relevant passages, Holm p within the sweep's family) beside "
           f"the device-hours to produce that side's items for {count(inputs['passages'])} passages at k languages "
           f"(`metrics/cost.json`: {count(inputs['n_queries'])} queries, or one translated passage of "
           f"{num(inputs['passage_words'])} words, per passage and language; rates measured on {cost['device']}). "
           "The human-made ceilings (real questions, parallel contexts / human translations) are priced as the "
           "generator whose perfect output they stand for (`plots/answer.csv`).", ""]
    rows = []
    for (dataset, method), part in frame.groupby(["dataset", "method"], sort=False):
        for _, r in part.iterrows():
            rows.append([dataset, r["setting"], method, r["side"], count(int(r["k"])), num(r["alpha"]),
                         _tested(r["gain"], r["ci_low"], r["ci_high"], r["p_holm"]), quantity(r["device_hours"], 1)])
    out += table(["archive", "setting", "method", "side", "k", "alpha", f"{MEASURE} gain", "device-hours"], rows)
    return out + _figure(figures, "answer.png", "gain against device-hours, both sides, k = 1..6, both archives")


def _value(v) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return count(v) if isinstance(v, int) else num(v)


def render(metrics: str | os.PathLike = "metrics", plots: str | os.PathLike = "plots",
           figures: str = "../plots") -> str:
    """docs/results.md from the files in ``metrics`` and ``plots`` (``figures``: the link to the plots
    folder from the document's folder)."""
    f = load(metrics, plots)
    scaling, contrasts = f["scaling.csv"], f["contrasts.csv"]
    for column in ("setting", "method", "variant", "weight", "renormalize", "primary", "k", "group",
                   f"delta_{MEASURE}"):
        _column(scaling, column, "scaling.csv")
    weight = _primary_weight(contrasts)
    lines = (_header(tables=TABLE_FILES + ("answer.csv", "seeds.csv")) + _answer(read_table(Path(plots) / "answer.csv"), f["cost.json"], figures) + _baseline(scaling)
             + _headline(scaling, weight, figures) + _contrasts(contrasts)
             + _seeds(f["seeds.json"], read_table(Path(plots) / "seeds.csv"), figures)
             + _normalisation(scaling, contrasts, figures) + _alpha_per_k(scaling, f["tuning.json"])
             + _items(scaling, contrasts)
             + _transfer(f["transfer.json"], figures) + _coverage(f["coverage.json"]) + _weight_modes(scaling, figures)
             + _same_language(scaling, weight) + _tuning(f["tuning.json"])
             + _retrieval(f["retrieval.json"], f["retrieval_parallel.json"])
             + _generators(f["generation.json"], f["translation.json"], f["train_xqg.json"], f["train_xdr.json"],
                           figures)
             + _generation_cost(scaling, weight, figures) + _cost(f["cost.json"], figures))
    return "\n".join(lines).rstrip("\n") + "\n"


def _dial(dial: dict, frame: pd.DataFrame, dataset: str, figures: str) -> list[str]:
    ks = sorted(int(k) for k in _in_order(frame["k"]))
    names = dial["quality_measures"]
    out = ["## Quality dial: how good must the generated items be?", "",
           "Each side runs from its human ceiling (r = 0: the real questions; the human translations) to the "
           "embedded generator's output (r = 1: generated queries in place of each passage's real questions, "
           "as many; the translator's first sentence in place of the human translation); r is the fraction "
           f"replaced (`xaug/dial.py`). Quality: {names['query']} of the query items (3 decimals), {names['passage']} "
           f"(2 decimals; 100 for a human text). {MEASURE} gain over the baseline for all cross-lingual queries, each "
           "mix with its own alpha per k, chosen on the tune split's questions (the next table), 95% CI over relevant "
           f"passages, p Holm-adjusted over the dial (`plots/{dataset}/dial.csv`).", ""]
    rows = []
    for (side, fraction), part in frame.groupby(["side", "fraction"], sort=False):
        by_k = {int(r["k"]): r for _, r in part.iterrows()}
        q = part["quality"].iloc[0]
        rows.append([side, f"{fraction:g}", num(q) if side == "query" else quantity(q, 2)]
                    + [_tested(by_k[k][f"delta_{MEASURE}"], by_k[k][f"ci_low_{MEASURE}"], by_k[k][f"ci_high_{MEASURE}"],
                               by_k[k][f"p_holm_{MEASURE}"]) if k in by_k else NONE for k in ks])
    out += table(["side", "r", "quality"] + [f"k = {k}" for k in ks], rows)
    out += ["Each mix's alpha per k (tuned on the tune split over `tune.alphas`):", ""]
    out += table(["side", "r"] + [f"k = {k}" for k in ks],
                 [[side, f"{fraction:g}"] + [num(a) for a in part.sort_values("k")["alpha"]]
                  for (side, fraction), part in frame.groupby(["side", "fraction"], sort=False)])
    out += ["The query-side quality (round-trip R@10) at which its gain reaches the passage side's with human "
            "translations (r = 0) and with the embedded translator (r = 1), by linear interpolation along the "
            "query side's curve; 95% cluster-bootstrap CI among the resamples with a crossing (found: their share; "
            f"{NONE}: the curves do not cross within the dial) (`metrics/{dataset}/dial.json`).", ""]

    def cell(c):
        if c["quality"] is None:
            return f"{NONE} (found {num(c['found'])})"
        return f"{num(c['quality'])} [{num(c['ci_low'])}, {num(c['ci_high'])}] (found {num(c['found'])})"

    out += table(["k", "matches human translations", "matches the embedded translator"],
                 [[k, cell(c["human_translation"]), cell(c["embedded_translator"])]
                  for k, c in dial["crossings"].items()])
    return out + _figure(figures, "dial.png", "gain against quality, query and passage side")


def render_sweep(metrics: str | os.PathLike, plots: str | os.PathLike, figures: str, dataset: str) -> str:
    """The results of a second archive on which only generation, tuning and the sweep run (``xquad_tune``,
    ``xquad_scaling``, ``xquad_generation_quality``): the sections that come from ``SWEEP_FILES`` and the
    scaling CSVs."""
    f = load(metrics, plots, SWEEP_FILES)
    scaling, contrasts = f["scaling.csv"], f["contrasts.csv"]
    for column in ("setting", "method", "variant", "weight", "renormalize", "primary", "k", "group",
                   f"delta_{MEASURE}"):
        _column(scaling, column, "scaling.csv")
    weight = _primary_weight(contrasts)
    lines = (_header(f"Results on {DATASET_NAMES.get(dataset, dataset)}", SWEEP_FILES,
                     f"{dataset}/", f"{dataset}_report")
             + _baseline(scaling) + _headline(scaling, weight, figures) + _contrasts(contrasts)
             + _normalisation(scaling, contrasts, figures) + _alpha_per_k(scaling, f["tuning.json"])
             + _items(scaling, contrasts) + _transfer(f["transfer.json"], figures) + _coverage(f["coverage.json"])
             + _weight_modes(scaling, figures) + _same_language(scaling, weight) + _tuning(f["tuning.json"])
             + _dial(f["dial.json"], read_table(Path(plots) / "dial.csv"), dataset, figures)
             + ["## The query generator on these passages", ""]
             + _query_quality(f["generation.json"], f"metrics/{dataset}/generation.json"))
    return "\n".join(lines).rstrip("\n") + "\n"


def write(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
