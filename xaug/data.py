"""MLQA: read the official archive layout and normalise it into BEIR-style files.

The retrieval setting is XOR-style: the corpus is every paragraph in the corpus language
(``data.corpus_language``, English by default) of the splits in use; queries are questions in the
target languages; a question's relevant passage is the corpus-language paragraph holding its answer.
MLQA shares question ids across translations, so one id links a question in every language to its
context in every language (``links.jsonl``). Any language of ``xaug.languages`` may appear in an
archive of this layout; prepare records the corpus language in ``dataset.json``, which
``corpus_language(data_dir)`` reads back for every later stage.
"""
from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .languages import DEFAULT_CORPUS_LANGUAGE, check_language, is_supported, name as language_name

DATASET_FILE = "dataset.json"   # {"corpus_language", "languages"}: written by save_prepared, read by read_dataset
SPLITS = ("train", "tune", "eval")  # the split labels of prepared queries, links and contexts
_FILE = re.compile(r"(?:^|/)MLQA_V1/(dev|test)/(dev|test)-context-([a-z]{2})-question-([a-z]{2})\.json$")


def corpus_language_of(corpus: list[dict], default: str = DEFAULT_CORPUS_LANGUAGE) -> str:
    """The language of corpus rows (corpus.jsonl: every row carries it); ``default`` for an empty corpus."""
    langs = {c["lang"] for c in corpus}
    if len(langs) > 1:
        raise ConfigError(f"corpus.jsonl: expected passages in one corpus language, found {sorted(langs)}")
    return langs.pop() if langs else default


def read_dataset(data_dir) -> dict:
    """``dataset.json`` of a prepared folder: ``{"corpus_language", "languages"}`` (prepare writes it)."""
    path = Path(data_dir) / DATASET_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: not found; re-run the prepare stage (it records the corpus language there)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: malformed JSON ({exc})") from None
    if not isinstance(info, dict) or not is_supported(info.get("corpus_language")) \
            or not isinstance(info.get("languages"), list):
        raise ConfigError(f"{path}: expected {{'corpus_language': <supported code>, 'languages': [...]}}, got {info!r}")
    return info


def corpus_language(data_dir) -> str:
    """The corpus (pivot) language the prepare stage used for ``data_dir``."""
    return read_dataset(data_dir)["corpus_language"]


class MlqaArchive:
    """Read access to ``MLQA_V1/{split}/{split}-context-{C}-question-{Q}.json`` in a zip or a directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise ConfigError(f"{self.path}: MLQA archive not found")
        self._files: dict[tuple[str, str, str], str] = {}
        if self.path.is_dir():
            base = self.path if self.path.name == "MLQA_V1" else self.path / "MLQA_V1"
            names = [str(p.relative_to(base.parent)) for p in base.rglob("*.json")] if base.is_dir() else []
            self._zip = None
            self._base = base.parent
        else:
            try:
                self._zip = zipfile.ZipFile(self.path)
                names = self._zip.namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise ConfigError(f"{self.path}: corrupt zip archive ({exc})") from None
        for name in names:
            m = _FILE.search(name.replace("\\", "/"))
            if m and m.group(1) == m.group(2):
                self._files[(m.group(1), m.group(3), m.group(4))] = name

    def validate(self, corpus_language: str | None = None) -> None:
        """Files found, and each split has the corpus language's own file (context and question in it):
        ``{split}-context-C-question-C.json`` for ``corpus_language`` C (prepare), or for some C when it is
        not known here (None: the download stage, which does not read data.corpus_language)."""
        if not self._files:
            raise ConfigError(
                f"{self.path}: no MLQA files found; expected MLQA_V1/{{dev,test}}/{{split}}-context-{{C}}-question-{{Q}}.json"
            )
        c = corpus_language
        for split in self.splits():
            if c is None and not any(s == split and x == y for s, x, y in self._files):
                raise ConfigError(f"{self.path}: {split} split lacks a {split}-context-C-question-C.json "
                                  "(the corpus language C's own file)")
            if c is not None and (split, c, c) not in self._files:
                raise ConfigError(f"{self.path}: {split} split lacks {split}-context-{c}-question-{c}.json "
                                  f"(data.corpus_language is {c!r})")

    def splits(self) -> list[str]:
        return sorted({s for s, _, _ in self._files})

    def languages(self, split: str) -> list[str]:
        return sorted({c for s, c, _ in self._files if s == split} | {q for s, _, q in self._files if s == split})

    def pairs(self, split: str) -> list[tuple[str, str]]:
        return sorted((c, q) for s, c, q in self._files if s == split)

    def read(self, split: str, context_lang: str, question_lang: str) -> dict:
        name = self._files[(split, context_lang, question_lang)]
        where = f"{self.path}:{name}" if self._zip else str(self._base / name)
        try:
            raw = self._zip.read(name) if self._zip else (self._base / name).read_bytes()
        except (zipfile.BadZipFile, OSError, KeyError) as exc:
            raise ConfigError(f"{where}: cannot read ({exc}); corrupt archive?") from None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: malformed JSON ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            raise ConfigError(f"{where}: expected a SQuAD-format object with a 'data' list")
        return doc


def stable_id(prefix: str, text: str, n: int = 16) -> str:
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:n]}"


def _rank(key: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}\0{key}".encode("utf-8")).hexdigest()


def select_heldout(articles: list[str], fraction: float, seed: int) -> set[str]:
    """A deterministic, order-independent choice of ``round(fraction * n)`` articles."""
    if not 0 < fraction < 1:
        raise ConfigError(f"data.holdout_fraction: expected a number in (0, 1), got {fraction!r}")
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


@dataclass
class Prepared:
    contexts: list[dict] = field(default_factory=list)
    queries: list[dict] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    corpus_language: str = DEFAULT_CORPUS_LANGUAGE

    @property
    def corpus(self) -> list[dict]:
        return [{k: c[k] for k in ("id", "lang", "title", "text")} for c in self.contexts
                if c["lang"] == self.corpus_language]

    def eval_queries(self) -> list[dict]:
        return [q for q in self.queries if q["split"] == "eval"]

    def qrels(self, split: str = "eval") -> list[tuple[str, str, int]]:
        """(query id, corpus-language passage id, 1) for every question of ``split``."""
        pivot = {link["qid"]: link["contexts"][self.corpus_language] for link in self.links}
        return [(q["id"], pivot[q["qid"]], 1) for q in self.queries if q["split"] == split]

    def answers(self) -> list[dict]:
        """Shared question id -> answer strings in the corpus language."""
        return [{"qid": l["qid"], "answers": l["answers"][self.corpus_language]} for l in self.links]

    def train_pairs(self) -> list[dict]:
        """(question in any language, its corpus-language passage) for the training split."""
        pivot = {link["qid"]: link["contexts"][self.corpus_language] for link in self.links}
        return [
            {"query_id": q["id"], "lang": q["lang"], "query": q["text"], "passage_id": pivot[q["qid"]]}
            for q in self.queries if q["split"] == "train"
        ]


def prepare(archive: MlqaArchive, splits: list[str], holdout_fraction: float = 0.3, seed: int = 0,
            max_articles: int = 0, tune_fraction: float = 0.0,
            corpus_language: str = DEFAULT_CORPUS_LANGUAGE) -> Prepared:
    """Normalise ``archive`` into contexts (all languages), queries, links and a train/tune/eval split.

    ``splits == [s]``: split ``s`` only, a deterministic ``holdout_fraction`` of its articles held
    out for evaluation. ``splits == [a, b]``: train on ``a``, evaluate on ``b``. ``tune_fraction``
    (0 = none) of the training articles then become the ``tune`` split (for choosing settings off the
    evaluation set; never trained on). ``max_articles`` (0 = all) keeps a deterministic subset of
    articles per split, for tests and quick runs. ``corpus_language`` (``data.corpus_language``): the
    language of the corpus paragraphs every question is linked to (each split needs its
    ``{split}-context-C-question-C.json``); languages outside ``xaug.languages`` are skipped.
    """
    check_tune_fraction(tune_fraction)
    pivot = check_language(corpus_language, "data.corpus_language")
    archive.validate(pivot)
    if not isinstance(splits, (list, tuple)) or len(splits) not in (1, 2) or len(set(splits)) != len(splits):
        raise ConfigError(f"data.splits: expected [dev] or [dev, test], got {splits!r}")
    for split in splits:
        if split not in archive.splits():
            raise ConfigError(f"data.splits: split {split!r} is not in {archive.path} (it has {archive.splits()})")
    if not isinstance(max_articles, int) or max_articles < 0:
        raise ConfigError(f"data.max_articles: expected an integer >= 0 (0 = all), got {max_articles!r}")

    contexts: dict[tuple[str, str], dict] = {}
    questions: dict[tuple[str, str], str] = {}
    links: dict[str, dict] = {}
    for split in splits:
        for c_lang, q_lang in archive.pairs(split):
            if not is_supported(c_lang) or not is_supported(q_lang):
                continue
            doc = archive.read(split, c_lang, q_lang)
            for article in doc["data"]:
                title = article.get("title", "")
                for para in article.get("paragraphs", []):
                    text = para.get("context")
                    if not isinstance(text, str):
                        raise ConfigError(f"{archive.path}: {split}-context-{c_lang}-question-{q_lang}.json: paragraph without a 'context' string")
                    key = (c_lang, text)
                    if key not in contexts:
                        contexts[key] = {"id": stable_id(c_lang, text), "lang": c_lang, "title": title, "text": text}
                    cid = contexts[key]["id"]
                    for n, qa in enumerate(para.get("qas", [])):
                        missing = [k for k in ("id", "question", "answers") if k not in qa] if isinstance(qa, dict) else ["id"]
                        if missing:
                            raise ConfigError(f"{archive.path}: {split}-context-{c_lang}-question-{q_lang}.json: question "
                                              f"{n} of a paragraph of {title!r} lacks {missing} (SQuAD format: id, "
                                              "question, answers)")
                        qid = qa["id"]
                        link = links.setdefault(qid, {"qid": qid, "source_split": split, "contexts": {}, "answers": {}})
                        link["contexts"][c_lang] = cid
                        link["answers"][c_lang] = sorted({a["text"] for a in qa.get("answers", []) if a.get("text")})
                        questions[(qid, q_lang)] = qa["question"]

    by_id = {c["id"]: c for c in contexts.values()}
    links = {qid: l for qid, l in links.items() if pivot in l["contexts"]}
    for link in links.values():
        link["article"] = by_id[link["contexts"][pivot]]["title"]

    # Articles per source split; optional subset; split assignment.
    article_split: dict[str, str] = {}
    for split in splits:
        arts = sorted({l["article"] for l in links.values() if l["source_split"] == split})
        if max_articles:
            arts = sorted(arts, key=lambda a: _rank(a, f"subset:{seed}"))[:max_articles]
        if len(splits) == 1:
            held = select_heldout(arts, holdout_fraction, seed)
            article_split.update({a: ("eval" if a in held else "train") for a in arts})
        else:
            article_split.update({a: ("train" if split == splits[0] else "eval") for a in arts})
    tune = select_tune(sorted(a for a, s in article_split.items() if s == "train"), tune_fraction, seed)
    article_split.update({a: "tune" for a in tune})
    links = {qid: l for qid, l in links.items() if l["article"] in article_split}
    for link in links.values():
        link["split"] = article_split[link["article"]]

    used = {cid: link for link in links.values() for cid in link["contexts"].values()}
    out_contexts = []
    for c in sorted(by_id.values(), key=lambda c: (c["lang"] != pivot, c["lang"], c["id"])):
        if c["id"] in used:
            link = used[c["id"]]
            out_contexts.append({**c, "article": link["article"], "split": link["split"]})
    out_queries = []
    for (qid, lang), text in sorted(questions.items()):
        if qid in links:
            out_queries.append({"id": f"{qid}-{lang}", "qid": qid, "lang": lang, "text": text, "split": links[qid]["split"]})
    out_links = [
        {k: links[qid][k] for k in ("qid", "split", "article", "contexts", "answers")} for qid in sorted(links)
    ]
    stats = {
        "splits": list(splits),
        "corpus_language": pivot,
        "languages": sorted({c["lang"] for c in out_contexts} | {q["lang"] for q in out_queries}),
        "articles": {s: sum(1 for v in article_split.values() if v == s) for s in SPLITS},
        "corpus_passages": sum(1 for c in out_contexts if c["lang"] == pivot),
        "contexts": _count(out_contexts, "lang"),
        "queries": {s: _count([q for q in out_queries if q["split"] == s], "lang") for s in SPLITS},
    }
    return Prepared(out_contexts, out_queries, out_links, stats, pivot)


def _count(rows, key):
    counts = defaultdict(int)
    for r in rows:
        counts[r[key]] += 1
    return dict(sorted(counts.items()))


def parallel_passages(links: list[dict], corpus_language: str = DEFAULT_CORPUS_LANGUAGE) -> dict[str, set[str]]:
    """For each language L, the corpus-language paragraphs that have an L parallel (the `parallel` corpus setting)."""
    pivot = corpus_language
    out: dict[str, set[str]] = {}
    for link in links:
        ctx = link["contexts"]
        if pivot in ctx:
            for lang in ctx:
                if lang != pivot:
                    out.setdefault(lang, set()).add(ctx[pivot])
    return out


def parallel_contexts(corpus: list[dict], contexts: list[dict], links: list[dict], lang: str) -> tuple[list[dict], dict]:
    """For every corpus passage, MLQA's context in ``lang`` that shares a question id with it, if any
    (comparable text around the aligned answer sentence, not a translation); with coverage statistics.
    The corpus language is the one of the ``corpus`` rows."""
    pivot = corpus_language_of(corpus)
    text_of = {c["id"]: c["text"] for c in contexts}
    parallel: dict[str, str] = {}
    for link in sorted(links, key=lambda l: l["qid"]):
        ctx = link["contexts"]
        if pivot in ctx and lang in ctx:
            parallel.setdefault(ctx[pivot], ctx[lang])
    if not parallel:
        raise ConfigError(f"parallel_contexts: the archive has no {lang!r} contexts parallel to "
                          f"{language_name(pivot)} ones "
                          "(links.jsonl lists none); the parallel_contexts method needs them")
    rows = [{"id": p["id"], "texts": [text_of[parallel[p["id"]]]] if p["id"] in parallel else []} for p in corpus]
    covered = sum(1 for r in rows if r["texts"])
    return rows, {"lang": lang, "passages": len(corpus), "covered": covered,
                  "coverage": round(covered / max(len(corpus), 1), 4), "seconds": 0.0, "generated_tokens": 0}


def write_trec_qrels(path, qrels) -> None:
    from .io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for qid, docid, rel in qrels:
            fh.write(f"{qid} 0 {docid} {rel}\n")


def read_trec_qrels(path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise ConfigError(f"{path}:{lineno}: expected 'qid 0 docid relevance'")
            qrels[parts[0]][parts[2]] = int(parts[3])
    return dict(qrels)


def save_prepared(prepared: Prepared, out_dir) -> None:
    """Write the normalised dataset: BEIR-style JSONL, TREC qrels (eval, tune), answers, training pairs, stats,
    and ``dataset.json`` (the corpus language and the languages present: ``read_dataset`` reads it)."""
    from .io import atomic_dir, write_json, write_jsonl

    with atomic_dir(out_dir) as out:  # the folder is replaced as a whole
        write_jsonl(out / "corpus.jsonl", prepared.corpus)
        write_jsonl(out / "contexts.jsonl", prepared.contexts)
        write_jsonl(out / "queries.jsonl", prepared.queries)
        write_jsonl(out / "links.jsonl", prepared.links)
        write_jsonl(out / "answers.jsonl", prepared.answers())
        write_jsonl(out / "train_pairs.jsonl", prepared.train_pairs())
        write_trec_qrels(out / "qrels.eval.trec", prepared.qrels("eval"))
        write_trec_qrels(out / "qrels.tune.trec", prepared.qrels("tune"))
        write_json(out / "stats.json", prepared.stats)
        write_json(out / DATASET_FILE, {"corpus_language": prepared.corpus_language,
                                        "languages": prepared.stats.get("languages", [])})
