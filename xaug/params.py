"""Reading params.yaml: one object for every stage, errors that name the parameter by its full path,
settings dataclasses built one way (``from_params``), and a record of every key a stage reads.

The record keeps the DVC contract honest: with ``XAUG_PARAMS_LOG=<folder>`` in the environment, each
stage writes the dotted paths it read to ``<folder>/<stage>.json`` (the stage named by DVC's
``DVC_STAGE``), and tests/test_pipeline.py compares them with the stage's ``params:`` in dvc.yaml.
"""
from __future__ import annotations

import atexit
import dataclasses
import json
import os
import sys
from pathlib import Path

import yaml

from .errors import ConfigError
from .languages import DEFAULT_CORPUS_LANGUAGE, check_language, check_languages

READS: set[str] = set()  # dotted paths read in this process (a group path: the whole group was read)
LOG_ENV = "XAUG_PARAMS_LOG"


class Params(dict):
    """params.yaml as a dict that records what is read; ``get_path('xdr.epochs')`` fails naming the
    parameter. Nested groups come back as ``Params`` too (``p['xqg']['warm']`` is ``xqg.warm``), so a
    settings object built from a group reports its errors with the full path."""

    def __init__(self, data=(), path: str = ""):
        super().__init__(data)
        self.path = path

    def _child(self, key) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if isinstance(value, dict):
            return Params(value, self._child(key))
        READS.add(self._child(key))
        return value

    def get(self, key, default=None):
        if dict.__contains__(self, key):
            return self[key]
        READS.add(self._child(key))  # its absence decides the default: adding it later changes the stage
        return default

    # reading a group as a whole (iterating, dict(g), **g) depends on all of it
    def _whole(self):
        READS.add(self.path or "*")

    def __iter__(self):
        self._whole()
        return super().__iter__()

    def keys(self):
        self._whole()
        return super().keys()

    def items(self):
        self._whole()
        return [(k, self[k]) for k in super().keys()]

    def values(self):
        return [v for _, v in self.items()]

    def __reduce__(self):  # pickles (worker processes) as a plain view of the same data
        return (Params, (dict(super().items()), self.path))

    def get_path(self, dotted: str, default=...):
        node = self
        for part in dotted.split("."):
            if not isinstance(node, dict) or not dict.__contains__(node, part):
                READS.add(dotted)
                if default is not ...:
                    return default
                raise ConfigError(f"{dotted}: missing from params.yaml")
            node = node[part]
        return node

    def seed(self) -> int:
        """The ``seed`` parameter: an integer >= 0 (checked by every stage that reads it, prepare first)."""
        return check_int(self.get_path("seed"), "seed", minimum=0)

    def device(self):
        """The torch device of the ``device`` parameter (auto: the GPU when there is one)."""
        from .device import resolve_device  # imports torch: stages that place no model start without it

        return resolve_device(self.get("device", "auto"))


HARNESS_KEYS = {"threads"}  # read by the stage harness (xaug.cli.run), allowed in every group


def from_params(cls, group: dict, path: str | None = None, /, *, others=(), only=None, **given):
    """Build the settings dataclass ``cls`` from a params group: keys that are fields of ``cls`` are
    passed on, keys named in ``others`` belong to other readers of the same group (skipped), anything
    else is an error naming its full path (``xqg.n_querys``). ``given`` sets fields that do not come
    from the group (the seed); ``only`` limits the fields read from the group to those named (the
    rest keep their defaults), so a stage depends on no more keys than it uses. A ``ConfigError`` that ``cls`` raises about one of its fields
    (``"batch_size: ..."``) is re-raised with the full path (``"xqg.batch_size: ..."``)."""
    path = path or getattr(group, "path", "") or cls.__name__
    if not isinstance(group, dict):
        raise ConfigError(f"{path}: expected a group of settings, got {group!r}")
    fields = {f.name for f in dataclasses.fields(cls)}
    keys = list(dict.keys(group))
    unknown = sorted(set(keys) - fields - set(others) - set(given) - HARNESS_KEYS)
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}: unknown setting (expected some of {sorted((fields | set(others)) - set(given))})")
    wanted = fields if only is None else set(only)
    values = {k: group[k] for k in keys if k in wanted and k in fields and k not in given}
    try:
        return cls(**values, **given)
    except ConfigError as exc:
        name, _, rest = str(exc).partition(":")
        if name in fields and not name.startswith(path + "."):
            raise ConfigError(f"{path}.{name}:{rest}") from None
        raise
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def field_names(*classes) -> set[str]:
    """The field names of settings dataclasses (the ``others`` of a group several of them share)."""
    return {f.name for cls in classes for f in dataclasses.fields(cls)}


GROUPS = ("seed", "device", "languages", "n_languages", "methods", "data", "xquad", "xdr", "encode", "index",
          "evaluate", "xqg", "translate", "tune", "scaling", "augment", "dial", "cost")  # the top-level names of params.yaml
# The keys of the groups whose settings classes live in modules
# above this one (read where they are used, through ``from_params``): ``check_keys`` refuses a misspelt key
# of these groups when params.yaml is loaded, so whichever stage runs first stops on it, including stages
# that do not read the group. tests/test_validation.py keeps these lists equal to the classes' fields
# (data and xquad: xaug.data_settings; index: xaug.search; evaluate: xaug.evaluation; tune: xaug.tuning; scaling:
# xaug.sweep).
DATA_KEYS = ("source", "expected_size", "expected_sha256", "splits", "holdout_fraction", "tune_fraction",
             "max_articles", "corpus_language")
GROUP_KEYS = {
    "data": DATA_KEYS,
    "xquad": DATA_KEYS,  # a second archive, read like `data` (stages/download.py, prepare.py --group xquad)
    "index": ("factory", "search_params"),
    "evaluate": ("depth", "settings"),
    "tune": ("alphas", "n_queries_used", "measure"),
    "scaling": ("subsets", "weights", "permutations", "resamples", "workers", "equivalence_margin", "candidates",
                "candidate_index", "candidate_search", "candidate_train", "candidate_iterations", "query_block",
                "seeds"),
}


def check_keys(data: dict, where: str = "params.yaml") -> None:
    """Unknown top-level names, unknown keys of the ``GROUP_KEYS`` groups (naming their full path) and the
    rules of ``check_cross_parameters`` stop every stage, the first included."""
    unknown = sorted(set(data) - set(GROUPS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown parameter in {where} (expected some of {list(GROUPS)})")
    check_cross_parameters(data)
    for group, keys in GROUP_KEYS.items():
        if isinstance(data.get(group), dict):
            unknown = sorted(set(data[group]) - set(keys))
            if unknown:
                raise ConfigError(f"{group}.{unknown[0]}: unknown setting (expected some of {list(keys)})")


def check_cross_parameters(data: dict) -> None:
    """The top-level parameters and the rules that tie parameters together, checked when params.yaml is loaded, so that
    the first stage that runs refuses them within seconds (whatever that stage reads): ``seed`` an integer >= 0,
    ``languages`` a list of distinct known codes without the corpus language (``data.corpus_language``),
    ``n_languages`` within 0..len(languages), ``scaling.candidates`` 0 or at least ``evaluate.depth`` (fewer would
    cut every ranking short), ``scaling.candidate_index`` and ``candidate_search``, ``index.factory`` and
    ``search_params`` accepted by faiss, ``scaling.candidate_train`` 0 or at least 39 (faiss warns below),
    ``scaling.candidate_iterations`` an integer >= 0, ``scaling.seeds`` distinct integers >= 0 other than ``seed``
    (the *_seed stages' names and outputs are keyed by them). The raw values are read here (not recorded as the
    stage's reads)."""
    if "seed" in data:
        check_int(data["seed"], "seed", minimum=0)
    data_group = data.get("data") if isinstance(data.get("data"), dict) else {}
    corpus = data_group.get("corpus_language", DEFAULT_CORPUS_LANGUAGE)
    if "corpus_language" in data_group:
        check_language(corpus, "data.corpus_language")
    if "languages" in data:
        languages = check_languages(data["languages"], corpus_language=corpus)
        if "n_languages" in data:
            check_int(data["n_languages"], "n_languages", minimum=0, maximum=len(languages),
                      note="0 = the baseline; at most len(languages)")
    scaling = data.get("scaling") if isinstance(data.get("scaling"), dict) else {}
    if "candidates" in scaling:
        candidates = check_int(scaling["candidates"], "scaling.candidates", minimum=0, note="0 = every passage")
        depth = (data.get("evaluate") if isinstance(data.get("evaluate"), dict) else {}).get("depth", 100)
        if isinstance(depth, int) and 0 < candidates < depth:
            raise ConfigError(f"scaling.candidates: {candidates} is below evaluate.depth ({depth}); "
                              f"use 0 (every passage) or at least {depth}")
    if "candidate_index" in scaling or "candidate_search" in scaling:
        check_faiss_index(scaling.get("candidate_index", "Flat"), scaling.get("candidate_search", ""))
    if "candidate_train" in scaling:
        check_candidate_train(scaling["candidate_train"])
    if "candidate_iterations" in scaling:
        check_candidate_iterations(scaling["candidate_iterations"])
    index = data.get("index") if isinstance(data.get("index"), dict) else {}
    if index:
        check_faiss_index(index.get("factory", "Flat"), index.get("search_params") or "",
                          "index.factory", "index.search_params")
    if "seeds" in scaling:
        seeds = scaling["seeds"]
        if not isinstance(seeds, list):
            raise ConfigError(f"scaling.seeds: expected a list of integers >= 0 (other than seed), got {seeds!r}")
        for s in seeds:
            check_int(s, "scaling.seeds", minimum=0, note="each a training-and-sampling seed")
        if len(set(seeds)) != len(seeds) or data.get("seed") in seeds:
            raise ConfigError(f"scaling.seeds: expected distinct seeds other than seed ({data.get('seed')!r}), "
                              f"got {seeds!r}")


def load_params(path="params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of parameter groups")
    check_keys(data, str(path))
    if os.environ.get(LOG_ENV):
        atexit.register(_write_reads, Path(os.environ[LOG_ENV]))
    return Params(data)


def _write_reads(folder: Path) -> None:
    """Add this process's reads to ``<folder>/<stage>.json`` (foreach stages: one file per item)."""
    stage = os.environ.get("DVC_STAGE") or Path(sys.argv[0]).stem
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stage.replace('/', '_')}.json"
    before = set(json.loads(target.read_text())) if target.is_file() else set()
    target.write_text(json.dumps(sorted(before | READS), indent=1))


FAISS_TRAIN_MINIMUM = 39  # faiss's min_points_per_centroid: fewer training vectors per cell draw its warning


def check_candidate_train(value) -> int:
    """``scaling.candidate_train``: 0 (faiss's default sample) or at least ``FAISS_TRAIN_MINIMUM`` vectors per cell."""
    if check_int(value, "scaling.candidate_train", minimum=0) and value < FAISS_TRAIN_MINIMUM:
        raise ConfigError(f"scaling.candidate_train: expected 0 (faiss's default) or at least {FAISS_TRAIN_MINIMUM} "
                          f"(faiss's fewest training vectors per cell), got {value}")
    return value


def check_candidate_iterations(value) -> int:
    """``scaling.candidate_iterations``: 0 (faiss's default) or the k-means iterations that train an index's cells."""
    return check_int(value, "scaling.candidate_iterations", minimum=0, note="0 = faiss's default (10)")


def check_int(value, name: str, minimum: int = 1, maximum: int | None = None, note: str = "") -> int:
    """The one integer check of the package: ``value`` must be an int (not a bool) within
    [``minimum``, ``maximum``]; otherwise a ``ConfigError`` naming ``name`` (the full parameter path).
    ``note`` explains a special value, e.g. ``"0 = no cap"``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or \
            (maximum is not None and value > maximum):
        if maximum is not None:
            expected = f"an integer in [{minimum}, {maximum}]"
        elif minimum == 1:
            expected = "a positive integer"
        else:
            expected = f"an integer >= {minimum}"
        raise ConfigError(f"{name}: expected {expected}{f' ({note})' if note else ''}, got {value!r}")
    return value


# the dimensions an index factory is tried with when params.yaml is loaded (the embeddings' own is known
# only once they are read; faiss rejects some factories for some dimensions, e.g. PQ16 for 100)
CHECK_DIMENSIONS = (128, 256, 384, 768, 1024)


def check_faiss_index(factory, search="", factory_key="scaling.candidate_index",
                      search_key="scaling.candidate_search") -> None:
    """A one-line ``ConfigError`` naming ``factory_key`` / ``search_key`` unless faiss accepts the index-factory
    string ``factory`` (for one of ``CHECK_DIMENSIONS``) and its ParameterSpace string ``search``."""
    if not isinstance(factory, str) or not factory.strip():
        raise ConfigError(f"{factory_key}: expected Flat or a faiss index-factory string, got {factory!r}")
    if not isinstance(search, str):
        raise ConfigError(f"{search_key}: expected a faiss ParameterSpace string, got {search!r}")
    if factory == "Flat" and not search:
        return
    import faiss  # only when an index is asked for (every stage loads params.yaml)

    built = None
    for dim in CHECK_DIMENSIONS:
        try:
            built = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
            break
        except RuntimeError:
            continue
    if built is None:
        raise ConfigError(f"{factory_key}: faiss rejects {factory!r} (tried dimensions {list(CHECK_DIMENSIONS)})")
    if search:
        try:
            faiss.ParameterSpace().set_index_parameters(built, search)
        except RuntimeError:
            raise ConfigError(f"{search_key}: faiss rejects {search!r} for {factory!r}") from None
