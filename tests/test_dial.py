"""The quality dial: mixes between a human ceiling and a generator's output, their quality, and crossings."""
import numpy as np
import pytest

from xaug.dial import DialSettings, crossing, crossings, mixed_passages, mixed_questions, round_trip
from xaug.errors import ConfigError
from xaug.methods import MethodItems
from xaug.params import from_params


def _methods(seed=0, n=40):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, n)
    real = rng.standard_normal((n, 5, 4)).astype(np.float16)
    sources = np.where(np.arange(5)[None, :] < counts[:, None],
                       np.array([[f"q{p}-{j}" for j in range(5)] for p in range(n)]), "")
    gen_counts = np.where(np.arange(n) % 7 == 0, 0, 3)  # some passages without generated queries
    gen = (rng.standard_normal((n, 3, 4)) + 100).astype(np.float16)  # far from the real ones: easy to tell apart
    real_m = MethodItems("real_questions", ["de"], [(real, counts)], [0.0], [0], [sources])
    gen_m = MethodItems("xqg", ["de"], [(gen, gen_counts)], [1.0], [10])
    return real_m, gen_m, counts, gen_counts


def test_mixed_questions_run_from_the_real_ones_to_the_generated_ones():
    real, gen, counts, gen_counts = _methods()
    same = mixed_questions(real, gen, 0.0, 1)
    np.testing.assert_array_equal(same.raw[0][0], real.raw[0][0])
    np.testing.assert_array_equal(same.sources[0], real.sources[0])
    replaced = {}
    for r in (0.25, 0.5, 0.75, 1.0):
        mix = mixed_questions(real, gen, r, 1)
        items, mixed_counts = mix.raw[0]
        np.testing.assert_array_equal(mixed_counts, counts)  # as many items as real questions
        is_gen = items[..., 0] > 50
        valid = np.arange(5)[None, :] < counts[:, None]
        assert not (is_gen & ~valid).any() and np.array_equal(is_gen, (mix.sources[0] == "") & valid)
        want = np.where(gen_counts > 0, np.floor(r * counts + 0.5), 0)
        np.testing.assert_array_equal(is_gen.sum(1), want)
        for p, j in zip(*np.nonzero(is_gen)):  # a passage's own generated queries
            assert any(np.array_equal(items[p, j], g) for g in gen.raw[0][0][p, :gen_counts[p]])
        replaced[r] = is_gen
    for a, b in ((0.25, 0.5), (0.5, 0.75), (0.75, 1.0)):  # a larger r replaces a superset
        assert not (replaced[a] & ~replaced[b]).any()


def test_mixed_passages_swap_whole_passages():
    rng = np.random.default_rng(3)
    human = MethodItems("parallel_contexts", ["de", "zh"],
                        [(rng.standard_normal((30, 1, 4)).astype(np.float16), np.ones(30, int))] * 2, [0, 0], [0, 0])
    mt_counts = np.where(np.arange(30) % 5 == 0, 0, 1)
    mt = MethodItems("translate", ["de", "zh"], [(rng.standard_normal((30, 1, 4)).astype(np.float16), mt_counts)] * 2,
                     [1, 1], [5, 5])
    masks = {r: mixed_passages(human, mt, r, 2)[1] for r in (0.0, 0.5, 1.0)}
    assert not any(m.any() for m in masks[0.0])
    assert all(np.array_equal(m, mt_counts > 0) for m in masks[1.0])
    assert all(not (a & ~b).any() for a, b in zip(masks[0.5], masks[1.0]))
    mix, used = mixed_passages(human, mt, 0.5, 2)
    for (items, _), (h, _), (t, _), u in zip(mix.raw, human.raw, mt.raw, used):
        np.testing.assert_array_equal(items[u], t[u])
        np.testing.assert_array_equal(items[~u], h[~u])


def test_round_trip_counts_own_passages_in_the_top_ten():
    rng = np.random.default_rng(0)
    passages = rng.standard_normal((30, 8)).astype(np.float32)
    own = MethodItems("m", ["de"], [(passages[:, None, :].astype(np.float16), np.ones(30, int))], [0], [0])
    assert round_trip(own, passages) == 1.0
    far = MethodItems("m", ["de"], [(-passages[:, None, :].astype(np.float16), np.ones(30, int))], [0], [0])
    assert round_trip(far, passages) == 0.0


def test_crossing_interpolates_along_the_curve():
    quality = np.array([0.9, 0.6, 0.3])
    assert crossing(quality, np.array([0.05, 0.02, 0.0]), 0.03) == pytest.approx(0.7)
    assert crossing(quality, np.array([0.05, 0.02, 0.0]), 0.06) != crossing(quality, np.array([0.05, 0.02, 0.0]),
                                                                             0.06)  # NaN: never reached
    rng = np.random.default_rng(1)
    clusters = np.repeat(np.arange(50), 2)
    query = np.stack([np.full(100, g) for g in (0.05, 0.02, 0.0)]) + rng.normal(0, 0.01, (3, 100))
    passage = np.stack([np.full(100, g) for g in (0.03, 0.025, 0.01)]) + rng.normal(0, 0.01, (3, 100))
    out = crossings(quality, query, passage, clusters, 200, 0)
    human = out["human_translation"]
    assert human["ci_low"] <= human["quality"] <= human["ci_high"] and human["found"] > 0.9
    assert 0.6 < human["quality"] < 0.9


def test_dial_fractions_must_run_from_zero_to_one():
    assert from_params(DialSettings, {"fractions": [0, 0.5, 1]}, "dial").fractions == [0, 0.5, 1]
    for bad in ([0.5, 1], [0, 0.5], [0, 1, 0.5], "all"):
        with pytest.raises(ConfigError, match="^dial.fractions: expected ascending"):
            from_params(DialSettings, {"fractions": bad}, "dial")
