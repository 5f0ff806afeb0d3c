import numpy as np
import pytest

from xaug.data import MlqaArchive, prepare, save_prepared
from xaug.errors import ConfigError
from xaug.evaluation import Evaluator
from xaug.fusion import FusionSettings
from xaug.io import save_matrix
from xaug.methods import fusion_settings, load_method
from xaug.scaling import MethodInputs, plot_cost, plot_scaling, query_group, shuffled_control, sweep
from xaug.search import FaissSearcher, write_ids


@pytest.fixture
def world(tmp_path, mini_zip):
    """Mini data, random passage vectors, and query vectors that are noisy copies of their passage."""
    data = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=3)
    save_prepared(data, tmp_path / "mlqa")
    rng = np.random.default_rng(0)
    pids = [c["id"] for c in data.corpus]
    passages = rng.standard_normal((len(pids), 16)).astype(np.float32)
    pivot = {l["qid"]: l["contexts"]["en"] for l in data.links}
    queries = [q for q in data.queries if q["split"] == "eval"]
    qvec = np.stack([passages[pids.index(pivot[q["qid"]])] + 3.0 * rng.standard_normal(16) for q in queries])
    save_matrix(tmp_path / "q.npy", qvec.astype(np.float32))
    write_ids(tmp_path / "q.ids.txt", [q["id"] for q in queries])
    # "generated" de items: the de eval questions themselves, so augmenting with de helps de queries
    items = np.zeros((len(pids), 1, 16), dtype=np.float16)
    counts = np.zeros(len(pids), dtype=int)
    for q, v in zip(queries, qvec):
        if q["lang"] == "de":
            i = pids.index(pivot[q["qid"]])
            items[i, 0], counts[i] = v, 1
    zh = (rng.standard_normal((len(pids), 1, 16)).astype(np.float16), np.ones(len(pids), dtype=int))
    return tmp_path, passages, pids, [(items, counts), zh], queries


def test_sweep_splits_in_set_and_out_of_set(world):
    tmp, passages, pids, generated, queries = world
    ev = Evaluator(tmp / "mlqa", tmp / "q", ["de", "zh"], depth=4)
    method = MethodInputs("xqg", generated, [1.5, 2.5], [10, 20], FusionSettings(alpha=0.9, pool="sum"))
    frame = sweep(ev, passages, pids, ["de", "zh"], method, k_max=2)
    assert len(frame) == 3 * 3
    n = {lang: sum(q["lang"] == lang for q in queries) for lang in ("de", "zh")}
    row = lambda k, g: frame[(frame.k == k) & (frame.group == g)].iloc[0]  # noqa: E731
    assert row(0, "all")["delta_nDCG@10"] == 0 and row(0, "all")["p_nDCG@10"] == 1.0
    assert row(1, "in-set")["queries"] == n["de"] and row(1, "out-of-set")["queries"] == n["zh"]
    assert row(2, "in-set")["queries"] == n["de"] + n["zh"] and row(2, "out-of-set")["queries"] == 0
    assert row(1, "in-set")["delta_nDCG@10"] >= 0  # de items pull passages towards the de queries
    assert np.isnan(row(0, "in-set")["nDCG@10"])  # nothing is in-set before any language is added
    assert (row(1, "all")["generation_seconds"], row(2, "all")["generated_tokens"]) == (1.5, 30)
    assert {"p_holm_nDCG@10", "p_holm_R@2kt"} <= set(frame.columns)
    assert frame.loc[frame.k > 0, "p_holm_nDCG@10"].dropna().between(0, 1).all()
    plot_scaling(frame, tmp / "s.png")
    plot_cost(frame, tmp / "c.png")
    assert (tmp / "s.png").stat().st_size > 1000 and (tmp / "c.png").stat().st_size > 1000


def test_query_group():
    assert query_group("de", {"de", "zh"}) == "in-set"
    assert query_group("ar", {"de"}) == "out-of-set"


def test_method_inputs_are_checked(tmp_path):
    settings = FusionSettings(alpha=0.1)
    with pytest.raises(ConfigError, match="n_languages: expected an integer from 0 to 2"):
        load_method(tmp_path, "xqg", ["de", "zh"], 3, settings)
    with pytest.raises(ConfigError, match="n_languages"):
        load_method(tmp_path, "xqg", ["de", "zh"], -1, settings)
    with pytest.raises(ConfigError, match="de.npz: generated embeddings for 'de' not found"):
        load_method(tmp_path, "xqg", ["de", "zh"], 1, settings)
    with pytest.raises(ConfigError, match=r"augment.xqg.n_queries_used: 6 > xqg.n_queries \(5\)"):
        fusion_settings({"augment": {"xqg": {"alpha": 0.1, "n_queries_used": 6}}, "xqg": {"n_queries": 5}}, "xqg")
    with pytest.raises(ConfigError, match="alpha"):
        fusion_settings({"augment": {"xqg": {"alpha": 2}}}, "xqg")
    with pytest.raises(ConfigError, match="augment.translate: missing"):
        fusion_settings({"augment": {}}, "translate")


def test_shuffled_control_keeps_items_but_breaks_the_pairing():
    items = np.arange(20, dtype=np.float16).reshape(10, 1, 2)
    counts = np.arange(10)
    method = MethodInputs("xqg", [(items, counts)], [1.0], [5], FusionSettings(alpha=0.1))
    control = shuffled_control(method, seed=0)
    c_items, c_counts = control.generated[0]
    assert control.name == "xqg-shuffled" and control.seconds == [1.0]
    assert sorted(c_counts.tolist()) == counts.tolist() and not np.array_equal(c_counts, counts)
    for i in range(10):  # each passage's items travel with their count
        assert c_items[i, 0, 0] == 2 * c_counts[i]
    assert shuffled_control(method, seed=0).generated[0][1].tolist() == c_counts.tolist()  # deterministic


def test_parallel_setting_ranks_only_the_languages_paragraphs(world):
    tmp, passages, pids, _, queries = world
    ev = Evaluator(tmp / "mlqa", tmp / "q", ["de", "zh"], depth=3, setting="parallel")
    assert ev.allowed["de"] and ev.allowed["zh"]
    ev.allowed = {"de": set(pids[::2]), "zh": set(pids[1::3])}  # the mini archive is fully parallel
    searcher = FaissSearcher.build(passages, pids)
    ranking, scores = ev.search(searcher)
    full = passages @ ev.query_vectors.T
    for j, q in enumerate(ev.query_ids):
        allowed = ev.allowed.get(ev.query_lang[q], set(pids))
        expect = sorted((i for i, pid in enumerate(pids) if pid in allowed), key=lambda i: -full[i, j])[:3]
        assert ranking[q] == [pids[i] for i in expect]
        np.testing.assert_allclose(scores[q], full[expect, j], rtol=1e-5)
