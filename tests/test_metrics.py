import random

import pytest

from xaug.metrics import (answer_in_top_tokens, contains_sequence, evaluate_run, join_tokens, rank_measures,
                          recall_tokens, summarise)


def test_recall_tokens_split_words_and_punctuation():
    assert recall_tokens("The North-Sea, 27 days!") == ["the", "north", "-", "sea", ",", "27", "days", "!"]
    assert recall_tokens("Köln liegt am Rhein") == ["köln", "liegt", "am", "rhein"]


def test_contains_sequence():
    assert contains_sequence(list("abcde"), list("cd"))
    assert not contains_sequence(list("abcde"), list("ce"))
    assert not contains_sequence(list("abc"), [])


def test_answer_within_token_budget_hand_computed():
    docs = {"d1": ["a"] * 3, "d2": ["b", "c", "north", "sea"], "d3": ["x", "answer"]}
    north_sea = [["north", "sea"]]
    # d1 (3 tokens) + d2 (4 tokens): "north sea" ends at token 7
    assert answer_in_top_tokens(["d1", "d2"], docs, north_sea, budget=7) == 1.0
    assert answer_in_top_tokens(["d1", "d2"], docs, north_sea, budget=6) == 0.0  # cut inside the answer
    assert answer_in_top_tokens(["d3", "d1", "d2"], docs, north_sea, budget=5) == 0.0
    assert answer_in_top_tokens(["d3"], docs, [["answer"], ["nothing"]], budget=2) == 1.0
    assert answer_in_top_tokens([], docs, north_sea, budget=2000) == 0.0


def test_rank_measures_hand_computed():
    qrels = {"q1": {"d2": 1}, "q2": {"d9": 1}, "q3": {"d1": 1}}
    run = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q2": {"d1": 1.0}}  # q3 not retrieved at all
    pq = rank_measures(run, qrels)
    assert pq["q1"]["RR@10"] == pytest.approx(0.5)
    assert pq["q1"]["R@1"] == 0.0 and pq["q1"]["R@5"] == 1.0
    assert pq["q1"]["nDCG@10"] == pytest.approx(1 / 1.5849625, rel=1e-4)  # 1/log2(3)
    assert pq["q2"]["R@100"] == 0.0 and pq["q2"]["RR@10"] == 0.0
    assert pq["q3"]["R@100"] == 0.0  # missing from the run counts as a miss, not as absent


def test_evaluate_and_summarise_by_language():
    ranking = {"a-de": ["d1", "d2"], "b-de": ["d2", "d1"], "c-zh": ["d1", "d2"], "a-en": ["d1", "d2"]}
    scores = {q: [2.0, 1.0] for q in ranking}
    qrels = {"a-de": {"d1": 1}, "b-de": {"d1": 1}, "c-zh": {"d2": 1}, "a-en": {"d1": 1}}
    tokens = {"d1": ["paris"], "d2": ["basel"]}
    answers = {"a-de": [["paris"]], "b-de": [["paris"]], "c-zh": [["basel"]], "a-en": [["paris"]]}
    pq = evaluate_run(ranking, scores, qrels, tokens, answers)
    assert pq["b-de"]["R@1"] == 0.0 and pq["b-de"]["R@5"] == 1.0 and pq["b-de"]["R@2kt"] == 1.0
    lang = {q: q.split("-")[1] for q in ranking}
    s = summarise(pq, lang, ["de", "zh"])
    assert s["by_lang"]["de"]["R@1"] == 0.5 and s["by_lang"]["de"]["queries"] == 2
    assert s["by_lang"]["zh"]["R@1"] == 0.0
    assert s["avg"]["R@1"] == 0.25  # macro average over languages, English excluded
    assert s["en"]["R@1"] == 1.0


def test_contains_sequence_matches_a_token_by_token_scan():
    rng = random.Random(0)
    for _ in range(2000):
        hay = [rng.choice("ab") * rng.randint(1, 2) for _ in range(rng.randint(0, 8))]
        needle = [rng.choice("ab") * rng.randint(1, 2) for _ in range(rng.randint(1, 3))]
        scan = any(hay[i : i + len(needle)] == needle for i in range(len(hay) - len(needle) + 1))
        assert contains_sequence(hay, needle) == scan, (hay, needle)


def test_answer_recall_skips_empty_passages_and_uses_precomputed_strings():
    docs = {"d1": ["the", "north"], "empty": [], "d2": ["north", "sea", "coast"]}
    answer = [["north", "sea"]]
    assert answer_in_top_tokens(["d1", "empty", "d2"], docs, answer, budget=4) == 1.0
    assert answer_in_top_tokens(["d1", "empty", "d2"], docs, answer, budget=4, doc_strings=join_tokens(docs)) == 1.0
    assert answer_in_top_tokens(["d1", "empty", "d2"], docs, answer, budget=3) == 0.0


def test_answer_spanning_two_passages_does_not_count():
    docs = {"d1": ["the", "north"], "d2": ["sea", "coast"]}
    answer = [["north", "sea"]]
    for strings in (None, join_tokens(docs)):
        assert answer_in_top_tokens(["d1", "d2"], docs, answer, budget=2000, doc_strings=strings) == 0.0
        assert answer_in_top_tokens(["d2", "d1"], docs, answer, budget=2000, doc_strings=strings) == 0.0
    assert answer_in_top_tokens(["d1", "d2"], docs, [["sea"]], budget=3) == 1.0  # inside the cut d2
