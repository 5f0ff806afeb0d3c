"""The shared archives' text stays out of the repository: no question and no context sentence of MLQA or
XQuAD appears in a committed document, metric, table or benchmark result (the archives are for tests, CI and
offline runs; a report names a question by its id)."""
import csv
import json
import re
from pathlib import Path

import pytest

from conftest import REPO, SHARED_ZIP
from xaug.data import MlqaArchive
from xaug.parallel_text import split_sentences

ARCHIVES = [SHARED_ZIP, SHARED_ZIP.parent / "XQUAD_MLQA_languages_dev.zip"]
SHORTEST = 20  # characters: shorter texts ("Who?", "Paris") may be anyone's
_CELL = re.compile(r"[|\n\t\"`“”]|\*\*")


def archive_texts(path: Path) -> set[str]:
    """Every question and context sentence (at least SHORTEST characters) of an archive, in every language."""
    archive, texts = MlqaArchive(path), set()
    for split in archive.splits():
        for c, q in archive.pairs(split):
            for article in archive.read(split, c, q)["data"]:
                for paragraph in article["paragraphs"]:
                    texts.update(split_sentences(paragraph["context"]))
                    texts.update(qa["question"].strip() for qa in paragraph["qas"])
    return {t for t in texts if len(t) >= SHORTEST}


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def cells(path: Path) -> set[str]:
    """The texts a file holds: JSON strings, CSV fields, Markdown table cells, quoted or emphasised text, lines;
    each also split into sentences (a quoted paragraph holds them)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        parts = list(_strings(json.loads(text)))
    elif path.suffix == ".csv":
        parts = [field for row in csv.reader(text.splitlines()) for field in row]
    else:
        parts = _CELL.split(text)
    parts = [p.strip() for p in parts]
    return set(parts) | {s for p in parts for s in split_sentences(p)}


def shared_text_in(files: list[Path], texts: set[str]) -> dict[str, list[str]]:
    found = {str(f): sorted(cells(f) & texts) for f in files}
    return {f: t for f, t in found.items() if t}


def committed_outputs() -> list[Path]:
    patterns = ["README.md", "docs/*.md", "metrics/**/*.json", "plots/**/*.csv", "benchmarks/results/*.json"]
    return sorted({p for pattern in patterns for p in REPO.glob(pattern)})


@pytest.fixture(scope="module")
def shared_texts() -> set[str]:
    present = [a for a in ARCHIVES if a.is_file()]
    if not present:
        pytest.skip(f"{SHARED_ZIP.parent}: the shared archives are not present")
    return set().union(*(archive_texts(a) for a in present))


def test_the_check_finds_a_quoted_question_or_sentence(tmp_path, shared_texts):
    question, sentence = sorted(t for t in shared_texts if t.endswith("?"))[0], sorted(shared_texts)[-1]
    (tmp_path / "a.md").write_text(f"| de | {question} | x |\n\nIt wrote \"{sentence}\" there.\n", encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({"examples": [{"en": question}]}), encoding="utf-8")
    (tmp_path / "c.md").write_text("Only numbers: 0.387, and ids q7.\n", encoding="utf-8")
    found = shared_text_in(sorted(tmp_path.iterdir()), shared_texts)
    assert found == {str(tmp_path / "a.md"): sorted({question, sentence}), str(tmp_path / "b.json"): [question]}


def test_no_committed_file_holds_the_shared_archives_text(shared_texts):
    files = committed_outputs()
    assert any(f.parent.name == "metrics" for f in files) and REPO / "docs" / "results.md" in files
    assert shared_text_in(files, shared_texts) == {}
