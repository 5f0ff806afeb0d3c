"""Shared fixtures: a hand-made MLQA archive in the official layout, and paths to the shared data."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_ZIP = REPO.parent / "shared" / "data" / "MLQA_V1_dev.zip"

# Four articles; each question id is asked in en/de/zh and answered in each context language.
ARTICLES = [
    ("Paris", {"en": "Paris is the capital of France. It has 2 million people.",
               "de": "Paris ist die Hauptstadt Frankreichs. Es hat 2 Millionen Einwohner.",
               "zh": "巴黎是法国的首都。它有200万人口。"},
     [("q1", {"en": "What is the capital of France?", "de": "Was ist die Hauptstadt Frankreichs?", "zh": "法国的首都是什么？"},
       {"en": "Paris", "de": "Paris", "zh": "巴黎"})]),
    ("Rhine", {"en": "The Rhine flows through Basel and Cologne into the North Sea.",
               "de": "Der Rhein fließt durch Basel und Köln in die Nordsee.",
               "zh": "莱茵河流经巴塞尔和科隆注入北海。"},
     [("q2", {"en": "Where does the Rhine end?", "de": "Wo endet der Rhein?", "zh": "莱茵河在哪里结束？"},
       {"en": "the North Sea", "de": "Nordsee", "zh": "北海"}),
      ("q3", {"en": "Which city on the Rhine is in Switzerland?", "de": "Welche Stadt am Rhein liegt in der Schweiz?",
              "zh": "莱茵河上的哪个城市在瑞士？"}, {"en": "Basel", "de": "Basel", "zh": "巴塞尔"})]),
    ("Tea", {"en": "Tea was first drunk in China during the Shang dynasty.",
             "de": "Tee wurde zuerst in China während der Shang-Dynastie getrunken.",
             "zh": "茶最早在商朝的中国被饮用。"},
     [("q4", {"en": "Where was tea first drunk?", "de": "Wo wurde Tee zuerst getrunken?", "zh": "茶最早在哪里被饮用？"},
       {"en": "China", "de": "China", "zh": "中国"})]),
    ("Moon", {"en": "The Moon orbits the Earth every 27 days.",
              "de": "Der Mond umkreist die Erde alle 27 Tage.",
              "zh": "月球每27天绕地球一周。"},
     [("q5", {"en": "How often does the Moon orbit the Earth?", "de": "Wie oft umkreist der Mond die Erde?",
              "zh": "月球多久绕地球一周？"}, {"en": "every 27 days", "de": "alle 27 Tage", "zh": "每27天"})]),
]
LANGS = ["en", "de", "zh"]


def archive_files(split: str = "dev", langs=LANGS) -> dict[str, dict]:
    files = {}
    for c in langs:
        for q in langs:
            data = []
            for title, contexts, qas in ARTICLES:
                text = contexts[c]
                data.append({"title": f"{title} ({c})", "paragraphs": [{"context": text, "qas": [
                    {"id": qid, "question": questions[q],
                     "answers": [{"text": answers[c], "answer_start": text.find(answers[c])}]}
                    for qid, questions, answers in qas]}]})
            files[f"MLQA_V1/{split}/{split}-context-{c}-question-{q}.json"] = {"data": data, "version": "1.0"}
    return files


def write_zip(path: Path, files: dict[str, dict | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content if isinstance(content, bytes) else json.dumps(content, ensure_ascii=False))
    return path


@pytest.fixture
def mini_zip(tmp_path) -> Path:
    return write_zip(tmp_path / "MLQA_V1.zip", archive_files())


@pytest.fixture
def mini_dir(tmp_path) -> Path:
    for name, content in archive_files().items():
        path = tmp_path / "copy" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return tmp_path / "copy"


@pytest.fixture
def shared_zip() -> Path:
    if not SHARED_ZIP.is_file():
        pytest.skip(f"{SHARED_ZIP} not present (the shared dev archive sits beside the repo)")
    return SHARED_ZIP
