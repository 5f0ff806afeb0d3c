"""Shared fixtures: a hand-made MLQA archive in the official layout, tiny model configurations, the prepared
mini dataset and a tiny warm generator, stage-script helpers, and paths to the shared data."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

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

# The same articles in more languages (languages beyond MLQA's seven among them, in other scripts):
# article -> (context, {question id: (question, answer)}); each answer is a substring of its context.
MORE_LANGUAGES = {
    "es": {"Paris": ("París es la capital de Francia. Tiene 2 millones de habitantes.",
                     {"q1": ("¿Cuál es la capital de Francia?", "París")}),
           "Rhine": ("El Rin fluye por Basilea y Colonia hasta el mar del Norte.",
                     {"q2": ("¿Dónde termina el Rin?", "mar del Norte"),
                      "q3": ("¿Qué ciudad del Rin está en Suiza?", "Basilea")}),
           "Tea": ("El té se bebió por primera vez en China durante la dinastía Shang.",
                   {"q4": ("¿Dónde se bebió té por primera vez?", "China")}),
           "Moon": ("La Luna orbita la Tierra cada 27 días.",
                    {"q5": ("¿Cada cuánto orbita la Luna la Tierra?", "cada 27 días")})},
    "ru": {"Paris": ("Париж — столица Франции. В нём живут 2 миллиона человек.",
                     {"q1": ("Какой город является столицей Франции?", "Париж")}),
           "Rhine": ("Рейн протекает через Базель и Кёльн и впадает в Северное море.",
                     {"q2": ("Где заканчивается Рейн?", "Северное море"),
                      "q3": ("Какой город на Рейне находится в Швейцарии?", "Базель")}),
           "Tea": ("Чай впервые стали пить в Китае во времена династии Шан.",
                   {"q4": ("Где впервые стали пить чай?", "Китае")}),
           "Moon": ("Луна обращается вокруг Земли каждые 27 дней.",
                    {"q5": ("Как часто Луна обращается вокруг Земли?", "каждые 27 дней")})},
    "th": {"Paris": ("ปารีสเป็นเมืองหลวงของฝรั่งเศส มีประชากร 2 ล้านคน",
                     {"q1": ("เมืองหลวงของฝรั่งเศสคืออะไร", "ปารีส")}),
           "Rhine": ("แม่น้ำไรน์ไหลผ่านบาเซิลและโคโลญลงสู่ทะเลเหนือ",
                     {"q2": ("แม่น้ำไรน์สิ้นสุดที่ไหน", "ทะเลเหนือ"),
                      "q3": ("เมืองใดบนแม่น้ำไรน์อยู่ในสวิตเซอร์แลนด์", "บาเซิล")}),
           "Tea": ("ชาถูกดื่มครั้งแรกในประเทศจีนในสมัยราชวงศ์ซาง",
                   {"q4": ("ชาถูกดื่มครั้งแรกที่ไหน", "ประเทศจีน")}),
           "Moon": ("ดวงจันทร์โคจรรอบโลกทุก 27 วัน",
                    {"q5": ("ดวงจันทร์โคจรรอบโลกบ่อยแค่ไหน", "ทุก 27 วัน")})},
    "tr": {"Paris": ("Paris, Fransa'nın başkentidir. 2 milyon nüfusu vardır.",
                     {"q1": ("Fransa'nın başkenti neresidir?", "Paris")}),
           "Rhine": ("Ren Nehri Basel ve Köln'den geçerek Kuzey Denizi'ne dökülür.",
                     {"q2": ("Ren Nehri nerede son bulur?", "Kuzey Denizi"),
                      "q3": ("Ren üzerindeki hangi şehir İsviçre'dedir?", "Basel")}),
           "Tea": ("Çay ilk kez Şang hanedanlığı döneminde Çin'de içildi.",
                   {"q4": ("Çay ilk kez nerede içildi?", "Çin")}),
           "Moon": ("Ay, Dünya'nın etrafında her 27 günde bir döner.",
                    {"q5": ("Ay, Dünya'nın etrafında ne sıklıkla döner?", "her 27 günde bir")})},
    "el": {"Paris": ("Το Παρίσι είναι η πρωτεύουσα της Γαλλίας. Έχει 2 εκατομμύρια κατοίκους.",
                     {"q1": ("Ποια είναι η πρωτεύουσα της Γαλλίας;", "Παρίσι")}),
           "Rhine": ("Ο Ρήνος ρέει μέσα από τη Βασιλεία και την Κολωνία προς τη Βόρεια Θάλασσα.",
                     {"q2": ("Πού καταλήγει ο Ρήνος;", "Βόρεια Θάλασσα"),
                      "q3": ("Ποια πόλη στον Ρήνο βρίσκεται στην Ελβετία;", "Βασιλεία")}),
           "Tea": ("Το τσάι πρωτοπόθηκε στην Κίνα κατά τη δυναστεία Σανγκ.",
                   {"q4": ("Πού πρωτοπόθηκε το τσάι;", "Κίνα")}),
           "Moon": ("Η Σελήνη περιφέρεται γύρω από τη Γη κάθε 27 ημέρες.",
                    {"q5": ("Πόσο συχνά περιφέρεται η Σελήνη γύρω από τη Γη;", "κάθε 27 ημέρες")})},
}


def articles_in(langs) -> list:
    """ARTICLES with the texts of every language of ``langs`` (those beyond en/de/zh from MORE_LANGUAGES)."""
    out = []
    for title, contexts, qas in ARTICLES:
        contexts, qas = dict(contexts), [(qid, dict(qs), dict(ans)) for qid, qs, ans in qas]
        for lang in langs:
            if lang in MORE_LANGUAGES:
                contexts[lang], by_qid = MORE_LANGUAGES[lang][title]
                for qid, qs, ans in qas:
                    qs[lang], ans[lang] = by_qid[qid]
        out.append((title, contexts, qas))
    return out


def archive_files(split: str = "dev", langs=LANGS) -> dict[str, dict]:
    files = {}
    for c in langs:
        for q in langs:
            data = []
            for title, contexts, qas in articles_in(langs):
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


TINY_BERT = {"vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 128}
TINY_T5 = {"vocab_size": 300, "d_model": 32, "d_ff": 64, "d_kv": 8, "num_layers": 1, "num_decoder_layers": 1,
           "num_heads": 2}


@pytest.fixture
def mini(tmp_path, mini_zip):
    from xaug.data import MlqaArchive
    from xaug.preparation import prepare, save_prepared

    data = prepare(MlqaArchive(mini_zip), ["dev"], 0.25, seed=2)
    save_prepared(data, tmp_path / "mlqa")
    return data


@pytest.fixture
def tiny_warm(mini):
    from xaug.models import load_backbone
    from xaug.warm import WarmGenerator, WarmSettings, build_decoder, pruned_vocabulary

    texts = [c["text"] for c in mini.contexts] + [q["text"] for q in mini.queries]
    encoder, tokenizer, _ = load_backbone("tiny", tiny_config=TINY_BERT, texts=texts * 3)
    kept = pruned_vocabulary(tokenizer, texts)
    torch.manual_seed(0)
    gen = WarmGenerator(encoder, tokenizer, build_decoder(encoder, kept, ["de", "en"], n_layers=2), kept, ["de", "en"],
                        "", WarmSettings(decoder_layers=2, label_smoothing=0.0, bf16=False))
    return gen, [c["text"] for c in mini.contexts if c["lang"] == "en"], [q["text"] for q in mini.queries]


def xqg_params(tmp_path, model, **xqg):
    """params.yaml for the xQG stage scripts on the hand-made archive with tiny models (``model``: warm | tiny)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["xdr"].update(model="tiny", tiny=TINY_BERT, query_prefix="", passage_prefix="")
    params.update(languages=["de", "zh"], n_languages=2, methods=["xqg"],
                  augment={"xqg": {"alpha": 0.1, "weight": "fixed", "renormalize": True, "n_queries_used": 2}})
    params["scaling"].update(weights=["fixed"], permutations=2, resamples=199, workers=1)
    params["xqg"] = {"model": model, "context_languages": ["en"], "n_queries": 2, "top_k": 5, "max_new_tokens": 8,
                     "batch_size": 4, "chunk_size": 2, "threads": 1,
                     "warm": {"decoder_layers": 1, "epochs": 2, "batch_size": 4, "lr": 1e-3},
                     "tiny": TINY_T5, "train": {"epochs": 2, "batch_size": 4, "lr": 1e-3}, **xqg}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def translate_params(tmp_path, model):
    """params.yaml for the translation stage scripts on the hand-made archive with tiny models (``model``: warm or
    an HF folder)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["xdr"].update(model="tiny", tiny=TINY_BERT, query_prefix="", passage_prefix="")
    params.update(languages=["de", "zh"], n_languages=2)
    params["translate"].update(model=model, max_sentences=1, max_new_tokens=6, batch_size=4, chunk_size=2,
                               quality_pairs=2, threads=1,
                               warm={"decoder_layers": 1, "epochs": 1, "batch_size": 4, "lr": 1e-3,
                                     "max_source_length": 32, "max_target_length": 16})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_script(name, *args, cwd, ok=True, env=None):
    """Run ``stages/<name>.py`` in ``cwd``; assert it succeeded (or, ``ok=False``, failed)."""
    proc = subprocess.run([sys.executable, str(REPO / "stages" / f"{name}.py"), *args], cwd=cwd,
                          capture_output=True, text=True, env=env)
    assert (proc.returncode == 0) == ok, proc.stderr[-3000:]
    return proc
