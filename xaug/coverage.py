"""Which passages a method augments, and whether that favours the relevant ones.

A method that covers only some passages (parallel contexts, real questions) changes the ranking through
coverage alone when the relevant passages are covered more (a leak) or less (a handicap) often than the
passages they compete with. Per corpus setting, method and language: the share of the passages a
cross-lingual query may rank that have items (``passages``), and the share of cross-lingual queries whose
relevant passage has items (``relevant``; for a leave-out method, after its own question's items are left
out). Equal shares: coverage tells the ranking nothing.
"""
from __future__ import annotations

import numpy as np

from .methods import MethodItems
from .queryset import QuerySet


def coverage(queries: QuerySet, method: MethodItems) -> dict[str, dict[str, float]]:
    """Language -> {"passages", "relevant", "queries"} for the cross-lingual queries of ``queries``."""
    cross = queries.lang >= 0
    judged = queries.judgements
    relevant = judged.relevant
    scored = cross & (relevant >= 0)
    own = method.own(queries.questions)
    out = {}
    for i, lang in enumerate(method.languages):
        has = np.asarray(method.raw[i][1]) > 0
        if judged.masks is None:
            candidates = float(has.mean())
        else:  # per query, the share of the passages it may rank: one share per mask
            share = (judged.masks & has).sum(1) / np.maximum(judged.masks.sum(1), 1)
            candidates = float(np.mean(share[judged.mask_of[scored]]))
        items = np.asarray(method.raw[i][1])[np.where(scored, relevant, 0)]
        if own is not None:
            items = items - (own[i].passage == relevant)
        out[lang] = {"passages": round(candidates, 4), "relevant": round(float((items[scored] > 0).mean()), 4),
                     "queries": int(scored.sum())}
    return out
