"""What the tune and scaling stages share: the languages, methods, weight modes, passages and each
method's items, read from params.yaml and the pipeline's files; and the query sets they score."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .candidates import CandidateSearch
from .evaluation import EvaluateSettings, Evaluator
from .formats import read_embeddings
from .methods import MethodItems, check_methods, load_method
from .params import from_params
from .queryset import QuerySet
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
    search: CandidateSearch = CandidateSearch()  # scaling.candidate_index, candidate_search, candidate_train
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
                                    "query_block"))
        depth = from_params(EvaluateSettings, p.get_path("evaluate"), only=("depth",)).depth
        index = from_params(IndexSettings, p.get_path("index"))
        passages, passage_ids = read_embeddings(passages_prefix)  # the files once the parameters are known good
        items_root = Path(generated_root if items_root is None else items_root)
        methods = {m: load_method(Path(generated_root) / m, m, languages, items_root / m) for m in names}
        search = CandidateSearch(scaling.candidate_index, scaling.candidate_search, scaling.candidate_train)
        return cls(languages, scaling.weights, passages, passage_ids, methods, depth, index, scaling.candidates,
                   search, scaling.query_block)

    def queries(self, data_dir, queries_prefix, setting: str = "global", split: str = "eval") -> QuerySet:
        evaluator = Evaluator(data_dir, queries_prefix, self.languages, self.depth, setting, split=split)
        return QuerySet.from_evaluator(evaluator, self.languages, self.passage_ids, self.index.factory,
                                       self.index.search_params, self.candidates, self.search, self.block)
