"""Split selection: which articles are trained on, tuned on and held out for evaluation.

Every choice is deterministic and independent of input order: articles are ranked by a salted hash
of their title (``_rank``), the salt naming the choice and the seed.
"""
from __future__ import annotations

import hashlib

from .errors import ConfigError

SPLITS = ("train", "tune", "eval")  # the split labels of prepared queries, links and contexts


def stable_id(prefix: str, text: str, n: int = 16) -> str:
    """A content id, ``<prefix>-<first n hex digits of sha1(text)>`` (a prepared context's id)."""
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:n]}"


def _rank(key: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}\0{key}".encode("utf-8")).hexdigest()


def select_subset(articles: list[str], max_articles: int, seed: int) -> list[str]:
    """A deterministic subset of ``max_articles`` articles (``data.max_articles``: tests, quick runs)."""
    return sorted(articles, key=lambda a: _rank(a, f"subset:{seed}"))[:max_articles]


def check_splits(splits) -> list[str]:
    """``data.splits``: one archive split (its articles are split into train and eval) or two distinct
    ones (train on the first, evaluate on the second)."""
    if not isinstance(splits, (list, tuple)) or len(splits) not in (1, 2) or len(set(splits)) != len(splits) \
            or not all(isinstance(s, str) for s in splits):
        raise ConfigError(f"data.splits: expected [dev] or [dev, test], got {splits!r}")
    return list(splits)


def check_holdout_fraction(fraction) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"data.holdout_fraction: expected a number in (0, 1), got {fraction!r}")
    return float(fraction)


def select_heldout(articles: list[str], fraction: float, seed: int) -> set[str]:
    """A deterministic, order-independent choice of ``round(fraction * n)`` articles."""
    check_holdout_fraction(fraction)
    ranked = sorted(set(articles), key=lambda a: _rank(a, f"holdout:{seed}"))
    n = max(1, round(fraction * len(ranked)))
    return set(ranked[:n])


def check_tune_fraction(fraction) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (fraction == 0 or 0 < fraction < 1):
        raise ConfigError(f"data.tune_fraction: expected 0 (no tune split) or a number in (0, 1), got {fraction!r}")
    return float(fraction)


def select_tune(train_articles: list[str], fraction: float, seed: int) -> set[str]:
    """The tuning articles: a deterministic, order-independent ``round(fraction * n)`` (at least one) of the
    ``n`` training articles, ranked with their own salt (0 = none). At least one article stays for training."""
    fraction = check_tune_fraction(fraction)
    if not fraction or not train_articles:
        return set()
    ranked = sorted(set(train_articles), key=lambda a: _rank(a, f"tune:{seed}"))
    n = max(1, round(fraction * len(ranked)))
    if n >= len(ranked):
        raise ConfigError(f"data.tune_fraction: {fraction} of {len(ranked)} training article(s) leaves none to "
                          "train on; expected a smaller fraction, more articles, or 0 (no tune split)")
    return set(ranked[:n])
