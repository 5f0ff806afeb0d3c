"""The ``data`` group of params.yaml, read in two parts so that each stage depends only on its own keys:
where the MLQA archive comes from (``SourceSettings``: the download stage) and how prepare turns it
into splits (``PrepareSettings``: the prepare stage). A second archive (``xquad``: XQuAD in the MLQA
layout) has a group with the same keys; ``named_group`` names its keys in errors."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from .errors import ConfigError
from .languages import DEFAULT_CORPUS_LANGUAGE, check_language
from .params import check_int, field_names, from_params
from .splits import check_holdout_fraction, check_splits, check_tune_fraction


def is_url(source: str) -> bool:
    """Whether ``data.source`` names a download (http, https, ftp, file URL) rather than a local copy."""
    return source.split("://", 1)[0] in ("http", "https", "ftp", "file") and "://" in source


@dataclass(frozen=True)
class SourceSettings:
    """``data.source``: the official URL or a local .zip / directory in the MLQA_V1 layout; a download is
    checked against ``expected_size`` and ``expected_sha256``."""
    source: str
    expected_size: int | None = None
    expected_sha256: str | None = None


@dataclass(frozen=True)
class PrepareSettings:
    """The arguments of ``xaug.preparation.prepare``, checked before the archive is read."""
    splits: list
    holdout_fraction: float
    tune_fraction: float
    max_articles: int
    corpus_language: str = DEFAULT_CORPUS_LANGUAGE

    def __post_init__(self):
        check_splits(self.splits)
        if len(self.splits) == 1:  # two splits: the second is held out whole
            check_holdout_fraction(self.holdout_fraction)
        check_tune_fraction(self.tune_fraction)
        check_int(self.max_articles, "data.max_articles", minimum=0, note="0 = all")
        check_language(self.corpus_language, "data.corpus_language")


def source_settings(group: dict) -> SourceSettings:
    """``data.source``, and the expected size and sha256 only for a URL (a local copy is not checked
    against them, so the stage does not depend on them)."""
    others = field_names(PrepareSettings)
    settings = from_params(SourceSettings, group, others=others, only=("source",))
    return from_params(SourceSettings, group, others=others) if is_url(str(settings.source)) else settings


def prepare_settings(group: dict) -> PrepareSettings:
    return from_params(PrepareSettings, group, others=field_names(SourceSettings))


@contextlib.contextmanager
def named_group(group: str):
    """Errors about a ``data.<key>`` raised inside, named ``<group>.<key>`` (the group the stage reads)."""
    try:
        yield
    except ConfigError as exc:
        text = str(exc)
        if group != "data" and text.startswith("data."):
            raise ConfigError(group + text[len("data"):]) from None
        raise
