"""What the tune and scaling stages share: the languages, methods, weight modes, passages and each
method's items, read from params.yaml and the pipeline's files; and the query sets they score."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .candidates import CandidateSearch
from .evaluation import EvaluateSettings, Evaluator, allowed_passages
from .formats import read_embeddings
from .methods import MethodItems, check_methods, load_method
from .params import from_params
from .queryset import QuerySet
from .ranking import setting_masks
from .search import IndexSettings
from .sweep import ScalingSettings


@dataclass
class Experiment:
    languages: list[str]
    weights: list[str]
    passages: np.ndarray
    passage_ids: list[str]
    methods: dict[str, MethodItems]
    depth: int
    index: IndexSettings
    candidates: int = 0  # scaling.candidates
    search: CandidateSearch = CandidateSearch()  # scaling.candidate_* (ScalingSettings.search)
    block: int = 0       # scaling.query_block

    @classmethod
    def from_params(cls, p, passages_prefix, generated_root, items_root=None) -> "Experiment":
        """``languages`` (checked when params.yaml is loaded), ``methods``, ``scaling.weights``, ``evaluate.depth``
        and the ``index`` group; the passages and every method's items from the pipeline's files (texts' stats
        in ``generated_root/<method>``, items in ``items_root/<method>``, by default the same folder)."""
        languages = list(p.get_path("languages"))
        names = check_methods(p.get_path("methods"))
        scaling = from_params(ScalingSettings, p.get_path("scaling"),
                              only=("weights", "candidates", "candidate_index", "candidate_search", "candidate_train",
                                    "candidate_iterations", "query_block"))
        depth = from_params(EvaluateSettings, p.get_path("evaluate"), only=("depth",)).depth
        index = from_params(IndexSettings, p.get_path("index"))
        passages, passage_ids = read_embeddings(passages_prefix)  # the files once the parameters are known good
        items_root = Path(generated_root if items_root is None else items_root)
        methods = {m: load_method(Path(generated_root) / m, m, languages, items_root / m) for m in names}
        search = scaling.search
        return cls(languages, scaling.weights, passages, passage_ids, methods, depth, index, scaling.candidates,
                   search, scaling.query_block)

    def queries(self, data_dir, queries_prefix, setting: str = "global", split: str = "eval") -> QuerySet:
        return next(self.query_sets(data_dir, queries_prefix, [setting], split))[1]

    def query_sets(self, data_dir, queries_prefix, settings: list[str], split: str = "eval"
                   ) -> Iterator[tuple[str, QuerySet]]:
        """(setting, its query set) for each corpus setting of ``settings``, in turn: the queries, judgements and
        answers are read once (the first setting's), and each further setting's query set differs only in the
        passages its queries may rank (``xaug.ranking.setting_masks``), sharing the rest (the answer ends among
        them). Nothing of the evaluator (the passages' and answers' tokens) is kept past the first load."""
        shared = None  # (the first query set without its cached scorer, each query's language, where links are)
        for setting in settings:
            if shared is None:
                evaluator = Evaluator(data_dir, queries_prefix, self.languages, self.depth, setting, split=split)
                queries = QuerySet.from_evaluator(evaluator, self.languages, self.passage_ids, self.index.factory,
                                                  self.index.search_params, self.candidates, self.search, self.block)
                # each query's language as one array, not the load's string objects: a few of those kept alive
                # in each of the load's small-object arenas would keep the arenas (0.4 GB at P = 100k)
                shared = (dataclasses.replace(queries, judgements=queries.judgements.in_setting(
                    queries.judgements.masks, queries.judgements.mask_of)),
                    np.array([evaluator.query_lang[q] for q in evaluator.query_ids]), str(evaluator.corpus_language))
                del evaluator
            else:
                first, langs, corpus_language = shared
                masks, mask_of = setting_masks(allowed_passages(data_dir, setting, corpus_language),
                                               self.passage_ids, langs)
                queries = dataclasses.replace(first, setting=setting,
                                              judgements=first.judgements.in_setting(masks, mask_of))
            yield setting, queries
            del queries  # the caller's to keep or drop (its scorer with it) before the next setting
