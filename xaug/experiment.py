"""What the tune and scaling stages share: the languages, methods, weight modes, passages and each
method's items, read from params.yaml and the pipeline's files; and the query sets they score."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .languages import check_languages
from .evaluation import Evaluator
from .formats import read_embeddings
from .fusion import check_weights
from .methods import MethodItems, check_methods, load_method
from .params import positive_int
from .scaling import QuerySet


@dataclass
class Experiment:
    languages: list[str]
    weights: list[str]
    passages: np.ndarray
    passage_ids: list[str]
    methods: dict[str, MethodItems]
    depth: int
    factory: str
    search_params: str

    @classmethod
    def from_params(cls, p, passages_prefix, generated_root) -> "Experiment":
        languages = check_languages(p.get_path("languages"))
        names = check_methods(p.get_path("methods"))
        return cls(languages, check_weights(p.get_path("scaling.weights")),
                   *read_embeddings(passages_prefix),
                   {m: load_method(Path(generated_root) / m, m, languages) for m in names},
                   positive_int(p.get_path("evaluate.depth"), "evaluate.depth"), p.get_path("index.factory"),
                   p.get_path("index.search_params"))

    def queries(self, data_dir, queries_prefix, setting: str = "global", split: str = "eval") -> QuerySet:
        evaluator = Evaluator(data_dir, queries_prefix, self.languages, self.depth, setting, split=split)
        return QuerySet.from_evaluator(evaluator, self.languages, self.passage_ids, self.factory, self.search_params)
