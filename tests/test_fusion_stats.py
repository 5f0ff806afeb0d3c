import numpy as np
import pytest
from scipy import stats as sps

from xaug.errors import ConfigError
from xaug.fusion import FusionSettings, augment, check_n_languages
from xaug.stats import holm, paired_ttest

P = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
# language A: 2 items per passage; passage 1 has only 1 valid item
A = (np.array([[[0.0, 1.0], [0.0, 3.0]], [[2.0, 0.0], [9.0, 9.0]]], dtype=np.float16), np.array([2, 1]))
# language B: 1 item; passage 0 has none
B = (np.array([[[5.0, 5.0]], [[0.0, 4.0]]], dtype=np.float16), np.array([0, 1]))


def test_sum_fusion_hand_computed():
    out = augment(P, [A, B], FusionSettings(alpha=0.5, pool="sum"))
    # passage 0: 0.5*[1,0] + 0.5*([0,1]+[0,3]) = [0.5, 2.0]; passage 1: 0.5*[0,1] + 0.5*([2,0]+[0,4]) = [1, 2.5]
    np.testing.assert_allclose(out, [[0.5, 2.0], [1.0, 2.5]])


def test_mean_fusion_and_items_used():
    out = augment(P, [A, B], FusionSettings(alpha=0.5, pool="mean", n_items_used=1))
    # passage 0: items [0,1] -> mean [0,1]; passage 1: items [2,0], [0,4] -> mean [1,2]
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.5, 1.5]])


def test_no_items_leaves_passage_unchanged_and_renormalisation():
    out = augment(P, [B], FusionSettings(alpha=0.3, pool="sum", renormalize=True))
    np.testing.assert_allclose(out[0], [1.0, 0.0])
    expected = 0.7 * np.array([0.0, 1.0]) + 0.3 * np.array([0.0, 4.0])
    np.testing.assert_allclose(out[1], expected / np.linalg.norm(expected), rtol=1e-6)
    np.testing.assert_allclose(augment(P, [], FusionSettings(alpha=0.3)), P)  # k = 0 is the baseline


def test_alpha_zero_is_identity():
    np.testing.assert_allclose(augment(P, [A, B], FusionSettings(alpha=0.0)), P)


@pytest.mark.parametrize("kwargs,match", [({"alpha": 1.5}, "alpha"), ({"alpha": -0.1}, "alpha"),
                                          ({"pool": "max"}, "pool"), ({"n_items_used": 0}, "n_queries_used")])
def test_bad_fusion_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FusionSettings(**kwargs)


def test_more_items_used_than_generated():
    with pytest.raises(ConfigError, match="n_queries_used: 3 > the 2 items"):
        augment(P, [A], FusionSettings(n_items_used=3))


def test_n_languages_bounds():
    assert check_n_languages(2, ["de", "zh"]) == 2
    for bad in (3, -1, "2"):
        with pytest.raises(ConfigError, match="n_languages: expected an integer from 0 to 2"):
            check_n_languages(bad, ["de", "zh"])


def test_paired_ttest_matches_scipy():
    rng = np.random.default_rng(0)
    base = rng.random(50)
    treat = base + rng.normal(0.05, 0.1, 50)
    diff, p = paired_ttest(treat, base)
    assert diff == pytest.approx(np.mean(treat - base))
    assert p == pytest.approx(sps.ttest_rel(treat, base).pvalue)
    assert paired_ttest(base, base) == (0.0, 1.0)


def test_holm_hand_computed():
    # sorted p: 0.01 (x3) -> 0.03, 0.02 (x2) -> 0.04, 0.04 (x1) -> 0.04 (monotone)
    np.testing.assert_allclose(holm([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
