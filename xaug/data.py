"""MLQA data as read from disk: the official archive (``MlqaArchive``) and the corpus language of a
prepared folder.

The archive layout is ``MLQA_V1/{split}/{split}-context-{C}-question-{Q}.json`` (SQuAD format), in a
zip or a directory. Any language of ``xaug.languages`` may appear in an archive of this layout;
prepare (``xaug.preparation``) records the corpus language in ``dataset.json``, which
``corpus_language(data_dir)`` reads back for every later stage.
"""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from .errors import ConfigError
from .formats import read_dataset
from .languages import DEFAULT_CORPUS_LANGUAGE

_FILE = re.compile(r"(?:^|/)MLQA_V1/(dev|test)/(dev|test)-context-([a-z]{2})-question-([a-z]{2})\.json$")


def corpus_language_of(corpus: list[dict], default: str = DEFAULT_CORPUS_LANGUAGE) -> str:
    """The language of corpus rows (corpus.jsonl: every row carries it); ``default`` for an empty corpus."""
    langs = {c["lang"] for c in corpus}
    if len(langs) > 1:
        raise ConfigError(f"corpus.jsonl: expected passages in one corpus language, found {sorted(langs)}")
    return langs.pop() if langs else default


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
