from types import SimpleNamespace

import numpy as np
import pytest

from xaug.errors import ConfigError
from xaug.evaluation import Evaluator
from xaug.search import FaissSearcher


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 32)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("factory,params", [("Flat", ""), ("HNSW16", "efSearch=64"), ("IVF8,Flat", "nprobe=8"),
                                            ("IVF4,PQ8", "nprobe=4")])
def test_factories_find_the_query_itself(vectors, factory, params, tmp_path):
    ids = [f"d{i}" for i in range(len(vectors))]
    searcher = FaissSearcher.build(vectors, ids, factory, params)
    scores, ranked = searcher.search(vectors[:20], 5)
    hits = sum(r[0] == f"d{i}" for i, r in enumerate(ranked))
    assert hits >= (20 if factory in ("Flat", "HNSW16", "IVF8,Flat") else 15)
    searcher.save(tmp_path / "x.faiss")
    again = FaissSearcher.load(tmp_path / "x.faiss", params)
    assert again.search(vectors[:20], 5)[1] == ranked


def test_flat_is_exact_inner_product(vectors):
    searcher = FaissSearcher.build(vectors, [str(i) for i in range(len(vectors))])
    scores, ranked = searcher.search(vectors[:3], 10)
    exact = np.sort(vectors[:3] @ vectors.T, axis=1)[:, ::-1][:, :10]
    np.testing.assert_allclose(scores, exact, rtol=1e-5)


def test_rejected_factory_string(vectors):
    with pytest.raises(ConfigError, match="index.factory: faiss rejects 'NotAnIndex"):
        FaissSearcher.build(vectors, [str(i) for i in range(len(vectors))], "NotAnIndex42")


def test_untrainable_index_is_reported(vectors):
    with pytest.raises(ConfigError, match="index.factory"):
        FaissSearcher.build(vectors[:10], [str(i) for i in range(10)], "IVF4096,Flat")


def test_ids_must_match(vectors):
    with pytest.raises(ConfigError, match="expected a \\(n, dim\\) matrix"):
        FaissSearcher.build(vectors, ["only-one"])


def test_systems_load_one_index_at_a_time(vectors, tmp_path):
    """evaluate holds one index in memory at once: ``load_systems`` loads the next only when asked, and a
    missing index file is a one-line error before any is loaded."""
    from xaug.evaluation import load_systems, system_indexes

    ids = [f"p{i}" for i in range(len(vectors))]
    for name in ("baseline", "xqg"):
        FaissSearcher.build(vectors, ids).save(tmp_path / f"{name}.faiss")
    specs = [f"baseline={tmp_path / 'baseline.faiss'}", f"xqg={tmp_path / 'xqg.faiss'}"]
    systems = load_systems(specs)
    (tmp_path / "xqg.faiss").rename(tmp_path / "later.faiss")  # checked up front, loaded when its turn comes
    with pytest.raises(ConfigError, match=r"xqg\.faiss: index file not found \(system 'xqg'\)$"):
        next(systems)
    (tmp_path / "later.faiss").rename(tmp_path / "xqg.faiss")
    systems = load_systems(specs)
    name, first = next(systems)
    assert name == "baseline" and first.ids == ids
    (tmp_path / "xqg.faiss").unlink()  # still the second one's turn to load: it fails only now
    with pytest.raises(ConfigError, match=r"xqg\.faiss: index file not found$"):
        next(systems)
    assert list(system_indexes(specs[:1])) == ["baseline"]


def test_parallel_search_goes_as_deep_as_the_allowed_passages_need():
    """A language whose allowed passages are rare (5%): its queries search deeper (doubling) until depth allowed
    passages are found; a language without a mask ranks everything; the result is the brute-force order."""
    rng = np.random.default_rng(7)
    passages = rng.standard_normal((400, 8)).astype(np.float32)
    ids = [f"p{i}" for i in range(400)]
    allowed = {"de": {f"p{i}" for i in rng.choice(400, 20, replace=False)}, "zh": set(ids[:300])}
    queries = rng.standard_normal((30, 8)).astype(np.float32)
    langs = ["de", "zh", "en"] * 10
    ev = SimpleNamespace(depth=10, allowed=allowed, query_ids=[f"q{i}" for i in range(30)],
                         query_lang={f"q{i}": lang for i, lang in enumerate(langs)}, query_vectors=queries)
    ranking, scores = Evaluator.search(ev, FaissSearcher.build(passages, ids))
    for i, lang in enumerate(langs):
        order = [ids[j] for j in np.argsort(-(queries[i] @ passages.T), kind="stable")
                 if lang not in allowed or ids[j] in allowed[lang]][:10]
        assert ranking[f"q{i}"] == order
        assert scores[f"q{i}"] == pytest.approx([float(queries[i] @ passages[int(p[1:])]) for p in order], rel=1e-5)
    assert list(ranking) == ev.query_ids
