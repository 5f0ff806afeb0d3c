"""Pooling draws of the trained models (seeds): the crossed bootstrap of draws and passages, and the pooled table."""
import numpy as np
import pytest

from xaug.errors import ConfigError
from xaug.params import check_cross_parameters
from xaug.seeds import pooled_table, seeds_report
from xaug.stats import cluster_test, crossed_test


def test_crossed_test_with_one_draw_is_the_clusters_bootstrap():
    rng = np.random.default_rng(0)
    diffs = rng.normal(0.02, 0.1, (1, 3, 400))
    pooled = crossed_test(diffs, 1999, seed=1)
    alone = cluster_test(diffs[0], 1999, seed=1)
    np.testing.assert_allclose(pooled.delta, alone.delta)
    np.testing.assert_allclose(pooled.high - pooled.low, alone.high - alone.low, rtol=0.15)
    assert np.all(pooled.between == 0) and pooled.draws == 1 and pooled.clusters == 400


def test_crossed_test_widens_with_the_spread_between_draws():
    rng = np.random.default_rng(1)
    base = rng.normal(0.0, 0.05, (1, 1, 300))
    same = np.repeat(base, 3, axis=0)
    shifted = same + np.array([-0.02, 0.0, 0.02])[:, None, None]  # each draw moves every passage alike
    narrow, wide = crossed_test(same, 999, seed=2), crossed_test(shifted, 999, seed=2)
    np.testing.assert_allclose(narrow.delta, wide.delta)
    assert (wide.high - wide.low)[0] > 2 * (narrow.high - narrow.low)[0]
    np.testing.assert_allclose(wide.between, [0.02])


def test_crossed_intervals_cover_the_mean_when_draws_vary():
    """Draw effects of sd 0.02 on passages of sd 0.05: intervals that resample the passages alone cover the true
    mean (0) far less often than 95%; resampling draws and passages together covers it at least as often as
    the nominal level says (five draws resampled: their spread is somewhat underestimated), within the Monte
    Carlo error of 120 replications."""
    rng = np.random.default_rng(3)
    crossed, passages_only = 0, 0
    for i in range(120):
        diffs = rng.normal(0, 0.02, (5, 1, 1)) + rng.normal(0, 0.05, (1, 1, 200)) + rng.normal(0, 0.01, (5, 1, 200))
        t = crossed_test(diffs, 499, seed=i)
        crossed += t.low[0] <= 0 <= t.high[0]
        c = cluster_test(diffs.mean(axis=0), 499, seed=i)
        passages_only += c.low[0] <= 0 <= c.high[0]
    assert crossed / 120 >= 0.8 and passages_only / 120 <= 0.7, (crossed, passages_only)


def test_crossed_test_p_values_and_equivalence():
    rng = np.random.default_rng(4)
    effect = rng.normal(0.05, 0.02, (3, 1, 200))
    null = rng.normal(0.0, 0.02, (3, 1, 200))
    t = crossed_test(np.concatenate([effect, null, np.zeros((3, 1, 200))], axis=1), 999, seed=0, margin=0.01)
    assert t.p[0] <= 2 / 1000 and t.p[1] > 0.05 and t.p[2] == 1.0
    assert t.p_tost[0] > 0.5 and t.p_tost[1] < 0.05  # 0.05 is not within +-0.01; a mean of 0 is
    nan = crossed_test(np.full((2, 1, 5), np.nan), 99, seed=0, margin=0.01)
    assert np.isnan(nan.low[0]) and np.isnan(nan.p[0]) and np.isnan(nan.p_tost[0])
    with pytest.raises(ValueError, match="draws, rows, clusters"):
        crossed_test(np.zeros((3, 4)), 99)


def _draw(rng, shift, labels=np.arange(50)):
    rows = {}
    for kind, a, b in (("gain", "xqg", "baseline"), ("gain", "translate", "baseline"),
                       ("between-methods", "xqg", "translate")):
        for k in (1, 2):
            for measure in ("nDCG@10", "R@2kt"):
                rows["global", kind, a, b, k, "all", measure] = (labels, rng.normal(shift, 0.05, len(labels)))
    return rows


def test_pooled_table_rows_draws_and_families():
    rng = np.random.default_rng(5)
    draws = {13: _draw(rng, 0.01), 14: _draw(rng, 0.02), 15: _draw(rng, 0.03)}
    table = pooled_table(draws, 99, seed=13, margin=0.01)
    assert len(table) == 12 and list(table["kind"][:4]) == ["gain"] * 4
    row = table.iloc[0]
    means = [draws[s]["global", "gain", "xqg", "baseline", 1, "all", "nDCG@10"][1].mean() for s in (13, 14, 15)]
    assert row["delta_13"] == pytest.approx(means[0]) and row["delta"] == pytest.approx(np.mean(means))
    assert row["sd_draws"] == pytest.approx(np.std(means, ddof=1))
    assert set(table["family"]) == {"global|gain|all|nDCG@10", "global|gain|all|R@2kt",
                                    "global|between-methods|all|nDCG@10", "global|between-methods|all|R@2kt"}
    assert table.groupby("family").size().max() == 4 and (table["p_holm"] >= table["p"]).all()
    assert table[table["kind"] == "gain"]["p_tost"].isna().all() and table[table["kind"] != "gain"]["p_tost"].notna().all()
    report = seeds_report(table, [13, 14, 15], {s: {} for s in (13, 14, 15)}, 0.01)
    figures = report["rows"]["global"]["between-methods"]["xqg - translate"]["2"]["R@2kt"]
    assert set(figures["by_seed"]) == {"13", "14", "15"} and "p_tost" in figures
    draws[15] = _draw(rng, 0.03, labels=np.arange(1, 51))
    with pytest.raises(ValueError, match="seed 15"):
        pooled_table(draws, 99, seed=13, margin=0.01)


@pytest.mark.parametrize("seeds,match", [([14, 14], "distinct"), ([13], "other than seed"), ("14", "a list"),
                                         ([-1], "scaling.seeds: expected an integer >= 0")])
def test_bad_seeds_are_refused_on_load(seeds, match):
    with pytest.raises(ConfigError, match=match):
        check_cross_parameters({"seed": 13, "scaling": {"seeds": seeds}})
