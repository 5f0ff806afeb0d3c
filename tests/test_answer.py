"""The answer table: each method's gain at k beside the device-hours of producing its side's items."""
import pandas as pd
import pytest

from xaug.answer import gain_and_cost
from xaug.errors import ConfigError

COST = {"by_k": [{"k": k, "xqg_hours": 10.0 * k, "translate_hours": 30.0 * k, "xqg_generated_tokens": 5 * k,
                  "translate_generated_tokens": 7 * k} for k in (1, 2, 3)]}


def _scaling():
    base = {"variant": "method", "primary": True, "group": "all", "setting": "parallel", "alpha": 0.5,
            "ci_low_nDCG@10": -1.0, "ci_high_nDCG@10": 1.0, "p_holm_nDCG@10": 0.5}
    rows = [{**base, "method": "baseline", "k": 0, "delta_nDCG@10": float("nan")}]
    for method, gain in (("xqg", 0.01), ("translate", 0.02), ("real_questions", 0.03), ("parallel_contexts", 0.04)):
        for k in (1, 2):
            rows.append({**base, "method": method, "k": k, "delta_nDCG@10": gain * k})
            # rows the table must skip: another setting, group, variant, fusion
            rows.append({**base, "method": method, "k": k, "delta_nDCG@10": 9.0, "setting": "global"})
            rows.append({**base, "method": method, "k": k, "delta_nDCG@10": 9.0, "group": "in-set"})
            rows.append({**base, "method": method, "k": k, "delta_nDCG@10": 9.0, "variant": "shuffled"})
            rows.append({**base, "method": method, "k": k, "delta_nDCG@10": 9.0, "primary": False})
    return pd.DataFrame(rows)


def test_each_side_is_priced_by_its_generator_at_its_k():
    table = gain_and_cost(_scaling(), COST, "XQuAD", "parallel").set_index(["method", "k"])
    assert len(table) == 8 and (table["gain"] < 1).all()
    assert table.loc[("xqg", 2), "gain"] == pytest.approx(0.02)
    assert table.loc[("parallel_contexts", 1), "gain"] == pytest.approx(0.04)
    for method, side, hours in (("xqg", "query", 10.0), ("real_questions", "query", 10.0),
                                ("translate", "passage", 30.0), ("parallel_contexts", "passage", 30.0)):
        for k in (1, 2):
            assert table.loc[(method, k), "side"] == side
            assert table.loc[(method, k), "device_hours"] == hours * k


def test_a_sweep_past_the_priced_languages_is_an_error():
    with pytest.raises(ConfigError, match="cost.languages"):
        gain_and_cost(_scaling(), {"by_k": COST["by_k"][:1]}, "MLQA", "parallel")
    with pytest.raises(ConfigError, match="no rows"):
        gain_and_cost(_scaling(), COST, "MLQA", "nowhere")
