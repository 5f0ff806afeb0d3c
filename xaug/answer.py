"""The answer in one table: each method's gain at k target languages beside what producing its items costs.

A method's gain (``delta_nDCG@10`` and its 95% CI, Holm-adjusted p, over the baseline; the configured fusion,
all queries of the corpus setting named) comes from a scaling table (``plots/scaling.csv``,
``plots/xquad/scaling.csv``). Its cost is the cost stage's device-hours to produce that side's items for the
paper's corpus at k languages (``metrics/cost.json``, ``by_k``): queries (``xqg_hours``) for the query side,
translated passages (``translate_hours``) for the passage side. A human-made ceiling (``real_questions``,
``parallel_contexts``) is priced as the generator whose perfect output it stands for: what a generator of the
paper's architecture would spend to write items of that kind.
"""
from __future__ import annotations

import pandas as pd

from .errors import ConfigError

SIDE = {"xqg": "query", "real_questions": "query", "translate": "passage", "parallel_contexts": "passage"}
HOURS = {"query": "xqg_hours", "passage": "translate_hours"}
TOKENS = {"query": "xqg_generated_tokens", "passage": "translate_generated_tokens"}


def gain_and_cost(scaling: pd.DataFrame, cost: dict, dataset: str, setting: str, measure: str = "nDCG@10",
                  group: str = "all") -> pd.DataFrame:
    """One row per method of ``SIDE`` present in ``scaling`` and k: dataset, side, method, k, alpha, gain with
    CI and Holm p, and the device-hours and generated tokens of producing its items for ``cost``'s corpus."""
    by_k = {row["k"]: row for row in cost["by_k"]}
    rows = scaling[(scaling["setting"] == setting) & (scaling["group"] == group) & (scaling["variant"] == "method")
                   & scaling["primary"].astype(bool) & scaling["method"].isin(list(SIDE)) & (scaling["k"] > 0)]
    if rows.empty:
        raise ConfigError(f"scaling table: no rows of {sorted(SIDE)} in the {setting} setting, group {group}")
    out = []
    for _, r in rows.sort_values(["method", "k"]).iterrows():
        k, side = int(r["k"]), SIDE[r["method"]]
        if k not in by_k:
            raise ConfigError(f"cost.languages: {max(by_k)} prices k up to {max(by_k)}, the sweep reaches k = {k}")
        out.append({"dataset": dataset, "setting": setting, "side": side, "method": r["method"], "k": k,
                    "alpha": r["alpha"], "gain": r[f"delta_{measure}"], "ci_low": r[f"ci_low_{measure}"],
                    "ci_high": r[f"ci_high_{measure}"], "p_holm": r[f"p_holm_{measure}"],
                    "device_hours": by_k[k][HOURS[side]], "generated_tokens": by_k[k][TOKENS[side]]})
    return pd.DataFrame(out)
