import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from xaug.metrics import ALL_MEASURES, RANK_MEASURES, TOKEN_BUDGETS, answer_in_top_tokens, join_tokens, rank_measures
from xaug.ranking import NO_ANSWER, RankScorer, answer_ends

BUDGETS = TOKEN_BUDGETS | {"R@1t": 1, "R@40t": 40, "R@300t": 300}
FILLER = [f"w{i}" for i in range(40)]
ANSWER_WORDS = [f"a{i}" for i in range(10)]


def _plant(tokens, answer, start):
    """Overwrite ``tokens`` from ``start`` with as much of ``answer`` as fits."""
    n = min(len(answer), len(tokens) - start)
    tokens[start : start + n] = answer[:n]


def make_case(seed, n_queries=50, n_passages=300, depth=100):
    """Random passages (some empty), distinct scores, relevant passages and answers planted in ranked
    passages, across two ranked passages, straddling and at the 2000-token cut, and below ``depth``."""
    rng = np.random.default_rng(seed)
    words = FILLER + ANSWER_WORDS
    p = np.r_[np.full(len(FILLER), 0.98 / len(FILLER)), np.full(len(ANSWER_WORDS), 0.02 / len(ANSWER_WORDS))]
    tokens = [list(rng.choice(words, size=rng.integers(0, 150) * (rng.random() > 0.05), p=p))
              for _ in range(n_passages)]
    scores = rng.permutation(n_queries * n_passages).reshape(n_queries, n_passages).astype(np.float32)
    order = np.argsort(-scores, axis=1)
    rank = np.where(rng.random(n_queries) < 0.5, rng.integers(0, 12, n_queries), rng.integers(0, n_passages, n_queries))
    relevant = np.where(rng.random(n_queries) < 0.1, -1, order[np.arange(n_queries), rank])  # -1: not in the corpus
    answers = [[list(rng.choice(ANSWER_WORDS, rng.integers(1, 4))) for _ in range(rng.integers(0, 3))]
               for _ in range(n_queries)]
    answers[0] = answers[1]  # queries sharing answers
    for q in range(n_queries):
        ranked = [i for i in order[q][:depth] if tokens[i]]
        for ans in answers[q]:
            kind = rng.integers(5)
            if kind == 0:  # inside a ranked passage
                i = ranked[rng.integers(len(ranked))]
                _plant(tokens[i], ans, rng.integers(len(tokens[i])))
            elif kind == 1:  # across two passages adjacent in the ranking: does not count
                r = rng.integers(len(ranked) - 1)
                i, j = ranked[r], ranked[r + 1]
                _plant(tokens[i], ans[:1], len(tokens[i]) - 1)
                _plant(tokens[j], ans[1:], 0)
            elif kind in (2, 3):  # straddling (2) or ending at (3) the 2000-token cut
                offsets = np.cumsum([len(tokens[i]) for i in order[q]])
                r = int(np.searchsorted(offsets, 2000, side="right"))
                i, before = order[q][r], (offsets[r - 1] if r else 0)
                end = 2000 - before + (kind == 2)
                if 0 <= end - len(ans) and end <= len(tokens[i]):
                    _plant(tokens[i], ans, end - len(ans))
            else:  # below depth
                i = order[q][depth + rng.integers(n_passages - depth)]
                if tokens[i]:
                    _plant(tokens[i], ans, rng.integers(len(tokens[i])))
    return tokens, scores, relevant, answers


def reference(ranking, scores, relevant, tokens, answers, budgets=BUDGETS):
    """``metrics``' per-query values for a ranking of positions (ir-measures and ``answer_in_top_tokens``)."""
    ids = [f"p{i}" for i in range(len(tokens))]
    run = {f"q{q}": {ids[i]: float(scores[q, i]) for i in row if i >= 0} for q, row in enumerate(ranking)}
    qrels = {f"q{q}": {ids[r] if r >= 0 else "missing": 1} for q, r in enumerate(relevant)}
    per_query = rank_measures(run, qrels)
    doc_tokens = dict(zip(ids, tokens))
    strings = join_tokens(doc_tokens)
    out = {m: np.array([per_query[f"q{q}"][m] for q in range(len(ranking))]) for m in RANK_MEASURES}
    for name, budget in budgets.items():
        out[name] = np.array([answer_in_top_tokens([ids[i] for i in row if i >= 0], doc_tokens, answers[q], budget,
                                                   strings) for q, row in enumerate(ranking)])
    return out


def brute_top(scores, depth, allowed=None):
    rows = []
    for q, s in enumerate(scores):
        keep = [i for i in np.argsort(-s, kind="stable") if allowed is None or allowed[q, i]][:depth]
        rows.append(keep + [-1] * (depth - len(keep)))
    return np.array(rows)


def assert_measures_equal(got, want):
    assert list(got) == list(want)
    for m in want:
        np.testing.assert_allclose(got[m], want[m], rtol=1e-9, atol=1e-12, err_msg=m)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_measures_equal_ir_measures_and_answer_recall(seed):
    tokens, scores, relevant, answers = make_case(seed)
    scorer = RankScorer(relevant, [len(t) for t in tokens], answer_ends(tokens, answers), 100, budgets=BUDGETS)
    ranking = scorer.top(scores)
    np.testing.assert_array_equal(ranking, brute_top(scores, 100))
    want = reference(ranking, scores, relevant, tokens, answers)
    assert_measures_equal(scorer.score(scores), want)
    assert 0 < want["R@2kt"].mean() < want["R@5kt"].mean() < 1  # the cut matters
    assert 0 < want["R@1"].mean() and want["R@100"].mean() < 1


def test_default_measures_are_all_measures():
    tokens, scores, relevant, answers = make_case(3, n_queries=20)
    scorer = RankScorer(relevant, [len(t) for t in tokens], answer_ends(tokens, answers), 100)
    got = scorer.score(scores)
    assert list(got) == ALL_MEASURES
    assert_measures_equal(got, reference(brute_top(scores, 100), scores, relevant, tokens, answers, TOKEN_BUDGETS))


def test_parallel_mask_filters_the_ranking():
    tokens, scores, relevant, answers = make_case(4)
    rng = np.random.default_rng(4)
    allowed = rng.random(scores.shape) < 0.4
    allowed[:5] = True  # e.g. English queries: everything
    allowed[5] = rng.random(scores.shape[1]) < 0.1  # fewer allowed passages than depth
    relevant[6:20] = np.flatnonzero(allowed[6])[:14]  # some relevant passages are disallowed, some allowed
    scorer = RankScorer(relevant, [len(t) for t in tokens], answer_ends(tokens, answers), 100, allowed, BUDGETS)
    ranking = scorer.top(scores)
    assert not np.any((ranking >= 0) & ~np.take_along_axis(allowed, np.maximum(ranking, 0), 1))
    assert (ranking[5] == -1).sum() == 100 - allowed[5].sum() > 0
    np.testing.assert_array_equal(ranking, brute_top(scores, 100, allowed))
    want = reference(ranking, scores, relevant, tokens, answers)
    assert_measures_equal(scorer.measures(ranking), want)
    assert_measures_equal(scorer.score(scores, RANK_MEASURES), {m: want[m] for m in RANK_MEASURES})


def test_rank_measures_alone_need_no_ranking():
    """score(names) of rank measures counts what outscores the relevant passage instead of ranking: equal to
    the full ranking's, also with many equal scores (both rank the lower position first) and unfound (-inf)
    passages."""
    tokens, scores, relevant, answers = make_case(6)
    ends = answer_ends(tokens, answers)
    allowed = np.random.default_rng(6).random(scores.shape) < 0.5
    tied = np.floor(scores / 400)  # about 8 passages of a query share each score
    unfound = np.where(np.arange(scores.shape[1]) % 4 == 0, scores, -np.inf)  # 75 found, fewer than the depth
    for s, mask in [(scores, None), (tied, None), (tied, allowed), (unfound, None), (unfound, allowed)]:
        scorer = RankScorer(relevant, [len(t) for t in tokens], ends, 100, mask, BUDGETS)
        ranking = brute_top(s, 100, mask)
        ranked = np.take_along_axis(s, np.maximum(ranking, 0), 1)
        ranking = np.where(np.isfinite(ranked), ranking, -1)
        above_cut = (ranking >= 0) & (ranked > ranked[:, -1:])  # ties at the depth cut fall either way
        np.testing.assert_array_equal(scorer.top(s)[above_cut], ranking[above_cut])
        want = scorer.measures(ranking)
        got = scorer.score(s, ["nDCG@10", "R@100"])
        assert list(got) == ["nDCG@10", "R@100"]
        assert_measures_equal(got, {m: want[m] for m in got})
        assert 0 < want["nDCG@10"].mean() < 1
    assert list(scorer.score(scores, ["R@2kt", "R@1"])) == ["R@2kt", "R@1"]


def test_answer_ends_match_a_token_scan():
    rng = np.random.default_rng(5)
    words = ["a", "aa", "b", "ab", "a-b"]
    tokens = [list(rng.choice(words, rng.integers(0, 12))) for _ in range(60)]
    pool = [list(rng.choice(words, rng.integers(0, 4))) for _ in range(15)]  # includes empty answers
    answers = [[pool[i] for i in rng.integers(0, len(pool), rng.integers(0, 3))] for _ in range(80)]
    got = answer_ends(tokens, answers)
    assert got.shape == (80, 60) and got.dtype == np.int32
    for q, query_answers in enumerate(answers):
        for p, toks in enumerate(tokens):
            ends = [s + len(a) for a in query_answers if a for s in range(len(toks) - len(a) + 1)
                    if toks[s : s + len(a)] == a]
            assert got[q, p] == min(ends, default=NO_ANSWER), (toks, query_answers)
    assert (got < NO_ANSWER).any() and (got == NO_ANSWER).any()


def test_unranked_relevant_passage_scores_zero():
    tokens = [["x", "y"], ["the", "answer", "here"], ["z"]]
    answers = [[["answer"]], [["answer"]]]
    scores = np.array([[3, 1, 2], [1, 3, 2]], dtype=np.float32)  # passage 1 below depth 2 for query 0 only
    scorer = RankScorer(np.array([1, 1]), [2, 3, 1], answer_ends(tokens, answers), 2)
    got = scorer.score(scores)
    assert all(got[m][0] == 0.0 for m in ALL_MEASURES)
    assert all(got[m][1] == 1.0 for m in ALL_MEASURES)


def test_from_evaluator_uses_its_fields():
    evaluator = SimpleNamespace(
        query_ids=["q-de", "q-en"], query_lang={"q-de": "de", "q-en": "en"}, depth=2,
        qrels={"q-de": {"p2": 1, "p0": 0}, "q-en": {"gone": 1}},
        doc_tokens={"p0": ["a", "b"], "p1": [], "p2": ["c", "b", "a"]},
        answers={"q-de": [["b", "a"]], "q-en": [["b"]]}, allowed={"de": {"p0", "p2"}})
    scorer = RankScorer.from_evaluator(evaluator, ["p2", "p0", "p1"])
    np.testing.assert_array_equal(scorer.relevant, [0, -1])
    np.testing.assert_array_equal(scorer.lengths, [3, 2, 0])
    np.testing.assert_array_equal(scorer.ends, [[3, NO_ANSWER, NO_ANSWER], [2, 2, NO_ANSWER]])
    np.testing.assert_array_equal(scorer.allowed, [[True, True, False], [True, True, True]])
    assert scorer.depth == 2
    scores = np.array([[1, 2, 3], [1, 2, 3]], dtype=np.float32)
    np.testing.assert_array_equal(scorer.top(scores), [[1, 0], [2, 1]])  # q-de may not rank p1
    # q-de: p2 (relevant) at rank 2, its answer "b a" ends at token 2 + 3; q-en: "b" ends at token 0 + 2 of p0
    want = {"nDCG@10": [1 / np.log2(3), 0], "RR@10": [0.5, 0], "R@1": [0, 0], "R@5": [1, 0], "R@20": [1, 0],
            "R@100": [1, 0], "R@2kt": [1, 1], "R@5kt": [1, 1]}
    assert_measures_equal(scorer.score(scores), {m: np.array(v, dtype=float) for m, v in want.items()})
    assert_measures_equal(RankScorer(scorer.relevant, scorer.lengths, scorer.ends, 2, scorer.allowed,
                                     {"R@4t": 4, "R@5t": 5}).score(scores),
                          {**{m: want[m] for m in RANK_MEASURES}, "R@4t": [0, 1], "R@5t": [1, 1]})


def test_best_positions_are_the_k_highest_equal_scores_by_lower_position():
    """``RankScorer._best`` (a value partition where exactly k scores reach the k-th highest) returns, in every
    row, the first k positions in the order of ``top`` (higher score, then lower position), ascending: with ties
    at the cut or -inf, the lower positions of those equal to the cut."""
    rng = np.random.default_rng(11)
    scores = rng.standard_normal((40, 90)).astype(np.float32)
    scores[:8, :30] = 0.25                   # ties across the cut
    scores[8, 6:] = -np.inf                  # fewer found than k
    scores[9] = np.floor(scores[9] * 2)      # few distinct values
    for k in (1, 10, 89):
        order = np.lexsort((np.broadcast_to(np.arange(90), scores.shape), -scores), axis=1)
        expected = np.sort(order[:, :k], axis=1)
        np.testing.assert_array_equal(RankScorer._best(scores, k), expected)
        top = -np.sort(-scores, axis=1)[:, k - 1:k]
        clean = ((scores >= top).sum(1) == k)
        assert clean[10:].all() and (k == 1 or not clean[:10].all())  # both paths taken


def test_a_querys_ranking_is_its_own_whatever_its_block():
    """A query's top passages and measures do not depend on the rows scored beside it or on the padding of its
    block (``scaling.query_block``): with more equal scores than the depth at the top (copies of a passage), the
    ranking keeps the lower positions, as ``rank`` counts them."""
    rng = np.random.default_rng(3)
    n, depth = 160, 100
    row = rng.standard_normal(n).astype(np.float32)
    row[20:122] = 5.0                        # 102 equal scores at the top, over the depth
    relevant = 118
    ends = np.full((1, n), NO_ANSWER, np.int32)
    alone = RankScorer(np.array([relevant]), np.full(n, 10), ends, depth)
    want_top, want = alone.top(row[None]), alone.score(row[None])
    for others, pad in ((1, 0), (7, 40), (30, 400)):
        block = np.concatenate([rng.standard_normal((others, n + pad)).astype(np.float32),
                                np.concatenate([row, np.full(pad, -np.inf, np.float32)])[None]])
        allowed = np.ones(block.shape, bool)
        allowed[-1, n:] = False
        scorer = RankScorer(np.r_[rng.integers(0, n, others), relevant], np.full(n + pad, 10),
                            np.full(block.shape, NO_ANSWER, np.int32), depth, allowed)
        np.testing.assert_array_equal(scorer.top(block)[-1:], want_top)
        got = scorer.score(block)
        assert all(got[m][-1] == want[m][0] for m in ALL_MEASURES)
    assert want["R@100"][0] == 1 and want["R@20"][0] == 0  # rank 99: below 20 tied copies, above the depth
    assert alone.rank(row[None])[0] == 99


def test_answer_pairs_by_answer_set_take_gather_and_hash_as_their_sorted_keys():
    """The answer pairs are held once per answer set (``AnswerEnds``: int32 passages and ends, 8 bytes a pair; the
    queries that ask for the same answers share a row): per query their keys ``query * passages + passage``
    ascend; a block of queries (``take``, which shares the rows rather than copying them) and its candidates' ends
    (``gather``) read as the dense matrix's; and a judgements digest hashes the int64 keys and the ends as whole
    arrays would, however many chunks they are read in."""
    import hashlib

    from xaug.ranking import AnswerEnds, Judgements, answer_end_pairs

    rng = np.random.default_rng(6)
    words = ["a", "b", "c"]
    tokens = [list(rng.choice(words, rng.integers(0, 10))) for _ in range(40)]
    answers = [[list(rng.choice(words, rng.integers(1, 3)))] if q % 4 else [] for q in range(50)]
    answers[9] = [list(a) for a in answers[5]]  # an equal answer set, built apart
    pairs = answer_end_pairs(tokens, answers)
    dense = answer_ends(tokens, answers)
    distinct = {tuple(tuple(a) for a in q) for q in answers}
    assert pairs.passages.dtype == pairs.ends.dtype == np.int32 and len(pairs.row_of) == 50
    assert len(pairs.starts) == len(distinct) + 1 and pairs.row_of[9] == pairs.row_of[5]
    assert len(pairs.passages) == sum((dense[answers.index([list(a) for a in s])] < NO_ANSWER).sum() for s in distinct)
    keys = pairs.keys
    ends = np.concatenate(list(pairs.end_chunks(queries=7)))
    assert (np.diff(keys) > 0).all() and np.array_equal(np.flatnonzero(dense.reshape(-1) < NO_ANSWER), keys)
    assert ends.dtype == np.int32 and np.array_equal(ends, dense.reshape(-1)[keys])
    rebuilt = AnswerEnds.from_pairs(keys // 40, keys % 40, ends, 50, 40)
    assert len(rebuilt.starts) == 51 and rebuilt.equals(pairs) and pairs.equals(rebuilt)
    assert np.array_equal(rebuilt.dense(), dense)
    other = dense.copy()
    other[keys[3] // 40, keys[3] % 40] += 1
    changed = AnswerEnds.from_pairs(keys // 40, keys % 40, other.reshape(-1)[keys], 50, 40)
    assert not changed.equals(pairs)
    rows = np.array([7, 2, 30, 3, 9, 5])
    block = pairs.take(rows)
    assert block.passages is pairs.passages and block.ends is pairs.ends
    np.testing.assert_array_equal(block.dense(), dense[rows])
    columns = np.sort(rng.choice(40, (6, 6)), axis=1)
    columns[1, 4:] = -1
    for taken in (block, rebuilt.take(rows)):
        gathered = taken.gather(columns, rows_at_once=4)
        np.testing.assert_array_equal(gathered, np.where(columns >= 0, np.take_along_axis(dense[rows], columns, 1),
                                                         NO_ANSWER))
    assert np.array_equal(np.concatenate(list(pairs.key_chunks(queries=7))), keys)
    judgements = Judgements(rng.integers(-1, 40, 50), np.array([len(t) for t in tokens]), pairs, 10)
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((10, sorted(judgements.budgets.items()), (50, 40), 50)).encode())
    for a in (judgements.relevant, judgements.lengths, keys):
        h.update(np.ascontiguousarray(a, dtype=np.int64).data)
    h.update(ends.data)
    h.update(b"all" * 50)
    assert judgements.digest() == h.hexdigest()
    assert dataclasses.replace(judgements, ends=rebuilt).digest() == judgements.digest()


def test_best_first_orders_as_a_stable_argsort_of_the_negated_scores():
    """``best_first`` (one sort of 64-bit keys) gives each row's positions as a stable argsort of -scores does:
    descending score, equal scores (ties, 0.0 and -0.0, -inf padding) in ascending position."""
    from xaug.ranking import best_first

    rng = np.random.default_rng(3)
    positions = np.sort(rng.choice(5000, size=(40, 30), replace=True), axis=1)
    scores = rng.standard_normal((40, 30)).astype(np.float32)
    scores[:, ::4] = scores[:, :1]  # ties
    scores[::3, 5:9] = np.float32(-0.0)
    scores[::3, 9:11] = np.float32(0.0)
    scores[1::5, -6:] = -np.inf
    scores[2, :] = np.float32(np.finfo(np.float32).max)
    scores[3, :] = -np.float32(np.finfo(np.float32).tiny)
    expected = np.take_along_axis(positions, np.argsort(-scores, axis=1, kind="stable"), 1)
    np.testing.assert_array_equal(best_first(positions, scores), expected)
