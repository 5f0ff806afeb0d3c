import numpy as np
import pytest

from xaug.errors import ConfigError
from xaug.fusion import FusionSettings, LanguageItems, augment, check_weights, combine
from xaug.stats import cluster_means, cluster_test, equivalence_test, family_resamples, holm

P = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
# language A: 2 items per passage; passage 1 has only 1 valid item
A = (np.array([[[0.0, 1.0], [0.0, 3.0]], [[2.0, 0.0], [9.0, 9.0]]], dtype=np.float16), np.array([2, 1]))
# language B: 1 item; passage 0 has none
B = (np.array([[[5.0, 5.0]], [[0.0, 4.0]]], dtype=np.float16), np.array([0, 1]))


def test_sum_fusion_hand_computed():
    out = augment(P, [A, B], FusionSettings(alpha=0.5, weight="per_item"))
    # passage 0: 0.5*[1,0] + 0.5*([0,1]+[0,3]) = [0.5, 2.0]; passage 1: 0.5*[0,1] + 0.5*([2,0]+[0,4]) = [1, 2.5]
    np.testing.assert_allclose(out, [[0.5, 2.0], [1.0, 2.5]])


def test_fixed_fusion_and_items_used():
    out = augment(P, [A, B], FusionSettings(alpha=0.5, weight="fixed", n_items_used=1))
    # passage 0: items [0,1] -> mean [0,1]; passage 1: items [2,0], [0,4] -> mean [1,2]
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.5, 1.5]])


def test_no_items_leaves_passage_unchanged_and_renormalisation():
    out = augment(P, [B], FusionSettings(alpha=0.3, weight="per_item", renormalize=True))
    np.testing.assert_allclose(out[0], [1.0, 0.0])
    expected = 0.7 * np.array([0.0, 1.0]) + 0.3 * np.array([0.0, 4.0])
    np.testing.assert_allclose(out[1], expected / np.linalg.norm(expected), rtol=1e-6)
    np.testing.assert_allclose(augment(P, [], FusionSettings(alpha=0.3)), P)  # k = 0 is the baseline


def test_alpha_zero_is_identity():
    np.testing.assert_allclose(augment(P, [A, B], FusionSettings(alpha=0.0)), P)


@pytest.mark.parametrize("kwargs,match", [({"alpha": 1.5}, "alpha"), ({"alpha": -0.1}, "alpha"),
                                          ({"weight": "max"}, "augment.<method>.weight"), ({"n_items_used": 0}, "n_queries_used")])
def test_bad_fusion_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FusionSettings(**kwargs)


def test_more_items_used_than_generated():
    with pytest.raises(ConfigError, match="n_queries_used: 3 > the 2 items"):
        augment(P, [A], FusionSettings(n_items_used=3))


def test_fixed_weight_is_the_same_total_weight_at_every_k():
    """fixed: the generated part weighs alpha whatever k; per_item: alpha per item, growing with k."""
    rng = np.random.default_rng(0)
    n, dim, langs = 4, 3, 5
    passages = np.zeros((n, dim), dtype=np.float32)  # p = 0, so p' is the generated part alone
    same = np.ones((n, 2, dim), dtype=np.float32)    # every item the same unit-ish vector: the pool is the item
    generated = [(same, np.full(n, 2)) for _ in range(langs)]
    for weight, expected in (("fixed", lambda k: 0.2), ("per_item", lambda k: 0.2 * 2 * k)):
        settings = FusionSettings(alpha=0.2, weight=weight)
        for k in (1, langs):
            out = augment(passages, generated[:k], settings)
            np.testing.assert_allclose(out, expected(k) * np.ones((n, dim)), rtol=1e-6)
    # with different items: fixed = alpha * mean over all items of the k languages
    items = [(rng.standard_normal((n, 2, dim)).astype(np.float32), np.full(n, 2)) for _ in range(langs)]
    out = augment(passages, items, FusionSettings(alpha=0.2, weight="fixed"))
    np.testing.assert_allclose(out, 0.2 * np.concatenate([i for i, _ in items], axis=1).mean(axis=1), rtol=1e-5)
    summed = combine(passages, [LanguageItems.from_items(i, c) for i, c in items], FusionSettings(0.2, "fixed"))
    np.testing.assert_allclose(summed, out, rtol=1e-6)


def test_check_weights():
    assert check_weights(["fixed", "per_item"]) == ["fixed", "per_item"]
    for bad in ([], ["fixed", "fixed"], ["sum"], "fixed"):
        with pytest.raises(ConfigError, match="scaling.weights"):
            check_weights(bad)


def test_cluster_means_average_within_a_question():
    values = np.array([[1.0, 3.0, 10.0, 0.0]])
    np.testing.assert_allclose(cluster_means(values, np.array(["q2", "q2", "q1", "q3"])), [[10.0, 2.0, 0.0]])


def test_cluster_randomization_test_hand_computed():
    # Three questions; q1 has three translations with differences 1, 1, 1 (one cluster, mean 1), q2 mean 2, q3 mean 3.
    diffs = np.array([1.0, 1.0, 1.0, 2.0, 3.0])
    clusters = np.array(["q1", "q1", "q1", "q2", "q3"])
    per_cluster = cluster_means(diffs, clusters)
    t = cluster_test(per_cluster[None, :], resamples=1000, seed=0)
    # exact: 2^3 sign patterns of (1, 2, 3); |mean| >= 2 only for (+,+,+) and (-,-,-): p = 2/8
    assert t.clusters == 3 and t.delta[0] == pytest.approx(2.0) and t.p[0] == pytest.approx(0.25)
    assert t.low[0] >= 1.0 and t.high[0] <= 3.0 and t.low[0] < 2.0 < t.high[0]
    # (1, -1, 2): sums +-1 +-1 +-2 -> |sum| >= 2 in 6 of 8 patterns
    assert cluster_test(np.array([[1.0, -1.0, 2.0]]), 1000).p[0] == pytest.approx(0.75)
    # treating the five queries as independent would give a smaller p: the cluster is the unit
    assert cluster_test(diffs[None, :], 1000).p[0] < t.p[0]
    zero = cluster_test(np.zeros((1, 4)), 100)
    assert zero.p[0] == 1.0 and zero.low[0] == zero.high[0] == 0.0
    # Monte Carlo is reproducible with a seed, and a clear effect is significant
    rng = np.random.default_rng(1)
    big = rng.normal(0.3, 1.0, (2, 200))
    a, b = cluster_test(big, 999, seed=5), cluster_test(big, 999, seed=5)
    np.testing.assert_array_equal(a.p, b.p)
    assert (a.p < 0.05).all() and (a.low > 0).all()


def test_cluster_means_leave_out_undefined_values():
    values = np.array([[1.0, np.nan, 4.0], [np.nan, np.nan, 2.0]])
    np.testing.assert_allclose(cluster_means(values, np.array([7, 7, 3])), [[4.0, 1.0], [2.0, np.nan]])
    assert cluster_means(np.zeros((2, 3, 4)), np.array([0, 1, 0, 1])).shape == (2, 3, 2)


def test_cluster_tests_are_scipys_tests_with_the_same_draws():
    # the sign-flip null as one matrix product per batch and the bootstrap's means from each resample's counts
    # reproduce scipy.stats.permutation_test and bootstrap with the same generator: identical p, CIs to rounding
    rng = np.random.default_rng(7)
    discrete = rng.choice([0.0, 0.0, 0.0, 0.1, -0.1, 0.5, -1 / 3], (6, 300))  # ties with the observed mean
    diffs = np.vstack([rng.normal(0.01, 0.1, (6, 300)), discrete, np.zeros((1, 300))])
    for resamples in (700, 100):  # not a multiple of the batch (scipy draws a whole last batch); fewer than a batch
        _check_against_scipy(diffs, resamples)
    # an odd number of 32-bit draws (99 x 299) leaves half of the generator's 64-bit word for the bootstrap
    _check_against_scipy(diffs[:, :299], 99)


def _check_against_scipy(diffs, resamples):
    from scipy import stats

    ours = cluster_test(diffs, resamples, seed=3)
    g = np.random.default_rng(3)
    flips = stats.permutation_test((diffs,), np.mean, permutation_type="samples", vectorized=True, axis=1,
                                   n_resamples=resamples, random_state=g, batch=256)
    boot = stats.bootstrap((diffs,), np.mean, n_resamples=resamples, method="percentile", vectorized=True, axis=1,
                           random_state=g, batch=256)
    np.testing.assert_array_equal(ours.p[:-1], flips.pvalue[:-1])
    assert ours.p[-1] == 1.0  # all zero
    np.testing.assert_allclose(ours.low[:-1], boot.confidence_interval.low[:-1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ours.high[:-1], boot.confidence_interval.high[:-1], rtol=0, atol=1e-15)
    g = np.random.default_rng(3)
    greater = stats.permutation_test((diffs + 0.02,), np.mean, permutation_type="samples", vectorized=True, axis=1,
                                     n_resamples=resamples, alternative="greater", random_state=g, batch=256)
    less = stats.permutation_test((diffs - 0.02,), np.mean, permutation_type="samples", vectorized=True, axis=1,
                                  n_resamples=resamples, alternative="less", random_state=g, batch=256)
    np.testing.assert_array_equal(equivalence_test(diffs, 0.02, resamples, seed=3),
                                  np.maximum(greater.pvalue, less.pvalue))


def test_cluster_tests_do_not_depend_on_the_row_chunks_and_bound_their_memory(monkeypatch):
    import tracemalloc

    import xaug.stats as stats

    rng = np.random.default_rng(3)
    diffs = rng.normal(0.01, 0.1, (40, 2000))
    tracemalloc.start()
    whole, _ = cluster_test(diffs, 999, seed=4), equivalence_test(diffs, 0.01, 999, seed=4)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # one resample batch's draws and null means, and the rows' bootstrap distributions (40 x 999): not
    # resamples x rows x clusters (0.64 GB) nor a batch's resampled data (rows x batch x clusters, 164 MB)
    assert peak < 32 << 20
    monkeypatch.setattr(stats, "ROWS_BYTES", 999 * 8 * 3)  # bootstrap distributions of 3 rows at a time
    assert len(stats._row_chunks(40, 999)) == 14
    chunked = cluster_test(diffs, 999, seed=4)
    for a, b in ((whole.low, chunked.low), (whole.high, chunked.high)):  # only the bootstrap is chunked
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)  # the same draws; products of other shapes round apart
    nan_row = cluster_test(np.vstack([diffs[:1], np.r_[np.nan, diffs[1, 1:]][None, :]]), 999, seed=4)
    assert np.isnan([nan_row.low[1], nan_row.high[1], nan_row.p[1]]).all() and nan_row.p[0] == whole.p[0]


def test_holm_hand_computed():
    # sorted p: 0.01 (x3) -> 0.03, 0.02 (x2) -> 0.04, 0.04 (x1) -> 0.04 (monotone)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    np.testing.assert_allclose(holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])  # NaN: not in the family


def test_equivalence_test_hand_computed():
    # ten clusters within +-0.01 of zero, margin 0.5: every shifted difference is positive (resp. negative), so
    # of the 2^10 sign patterns (exact) only the identity reaches the observed mean: each one-sided p is 1/1024
    near = np.array([[0.01, -0.01] * 5])
    assert equivalence_test(near, 0.5, resamples=2000)[0] == pytest.approx(1 / 1024)
    # a difference of 1 is not within a margin of 0.5: the lower one-sided test cannot reject (p 1)
    far = np.array([[1.0, 1.02] * 5])
    assert equivalence_test(far, 0.5, resamples=2000)[0] == pytest.approx(1.0)
    # rows are tested apart, and one cluster is too few
    both = equivalence_test(np.vstack([near, far]), 0.5, resamples=2000)
    np.testing.assert_allclose(both, [1 / 1024, 1.0])
    assert np.isnan(equivalence_test(np.array([[0.0]]), 0.5)).all()


def test_family_resamples_let_the_smallest_adjusted_p_reach_alpha():
    assert family_resamples(999, 5) == 999  # small families: the configured resamples suffice
    r = family_resamples(999, 36)
    assert r == 2879 and 36 * 2 / (r + 1) <= 0.05 / 2  # Holm factor x the smallest two-sided p
