"""The cost model (xaug.cost, stages/cost.py): device-hours of xQG vs translation, on hand-made stats."""
import json
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from xaug.cost import CostSettings, estimate, pipeline_statistics, read_rates
from xaug.errors import ConfigError
from xaug.params import from_params

# 20 words per passage on average (the empty passage does not count)
CORPUS = [{"id": "a", "text": " ".join(["w"] * 10)}, {"id": "b", "text": " ".join(["w"] * 30)},
          {"id": "e", "text": "  "}]
# two languages of xQG: 2000 tokens, 200 queries, 20 s -> 100 tokens/s, 10 queries/s, 10 tokens per query
XQG = [{"seconds": 10.0, "generated_tokens": 1000, "queries": 100, "device": "Dev A", "file": "de.stats.json"},
       {"seconds": 10.0, "generated_tokens": 1000, "queries": 100, "device": "Dev A", "file": "zh.stats.json"}]
# translation: 600 tokens for 400 source words in 5 s -> 120 tokens/s, 1.5 tokens per source word
TRANSLATE = [{"seconds": 5.0, "generated_tokens": 600, "source_words": 400, "device": "Dev A", "file": "de.stats.json"}]


def test_the_formula_on_hand_made_stats():
    stats = pipeline_statistics(CORPUS, XQG, TRANSLATE)
    assert stats["words_per_passage"] == 20 and stats["tokens_per_query"] == 10
    assert stats["translated_tokens_per_source_word"] == 1.5
    assert stats["xqg"]["generated_tokens_per_s"] == 100 and stats["xqg"]["queries_per_s"] == 10
    assert stats["translate"]["translated_tokens_per_s"] == 120
    report = estimate(CostSettings(passages=3600, languages=3, n_queries=5, passage_words=100), stats)
    # xQG: 3600 * k * 5 * 10 / 100 / 3600 = 0.5 k; translation: 3600 * k * (100 * 1.5) / 120 / 3600 = 1.25 k
    assert [r["xqg_hours"] for r in report["by_k"]] == pytest.approx([0.5, 1.0, 1.5])
    assert [r["translate_hours"] for r in report["by_k"]] == pytest.approx([1.25, 2.5, 3.75])
    assert [r["xqg_hours_from_queries_per_s"] for r in report["by_k"]] == pytest.approx([0.5, 1.0, 1.5])
    assert report["by_k"][1]["xqg_generated_tokens"] == 3600 * 2 * 5 * 10
    assert report["by_k"][1]["translate_generated_tokens"] == 3600 * 2 * 150
    assert report["ratio_translate_to_xqg"] == pytest.approx(2.5)
    assert report["device"] == "Dev A" and report["inputs"]["tokens_per_passage"] == 150
    assert "n_queries * tokens_per_query / generated_tokens_per_s" in report["formula"]["xqg"]
    # passage_words 0: the corpus's own 20 words -> 30 tokens per passage -> 0.25 h per language
    own = estimate(CostSettings(passages=3600, languages=1, n_queries=5, passage_words=0), stats)
    assert own["by_k"][0]["translate_hours"] == pytest.approx(0.25)


def test_stats_without_source_words_use_the_sentence_share():
    old = [{"seconds": 5.0, "generated_tokens": 600, "sentences": 2, "sentences_in_corpus": 8, "passages": 3}]
    stats = pipeline_statistics(CORPUS, XQG, old)  # 2 of 8 sentences of the corpus's 40 words: 10 words
    assert stats["translated_tokens_per_source_word"] == 60
    assert stats["translate"]["device"] == "unknown device"


def test_measured_rates_replace_the_pipelines_per_method(tmp_path):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"device": "GPU X", "xqg": {"generated_tokens_per_s": 1000, "queries_per_s": 50,
                                                          "tokens_per_query": 20}}))
    rates = read_rates(path)
    report = estimate(CostSettings(passages=3600, languages=2, n_queries=5), pipeline_statistics(CORPUS, XQG, TRANSLATE),
                      rates)
    assert [r["xqg_hours"] for r in report["by_k"]] == pytest.approx([0.1, 0.2])  # 3600*5*20/1000/3600
    assert report["by_k"][0]["translate_hours"] == pytest.approx(1.25)  # still the pipeline's translator
    assert report["device"] == "xQG: GPU X; translation: Dev A"
    assert report["rates"]["xqg"]["source"] == str(path)
    with pytest.raises(ConfigError, match="cost.rates: .* not found"):
        read_rates(tmp_path / "missing.json")
    path.write_text(json.dumps({"xqg": {"generated_tokens_per_s": 0}}))
    with pytest.raises(ConfigError, match="xqg.generated_tokens_per_s must be a positive number"):
        read_rates(path)


def test_settings_errors_name_the_parameter():
    with pytest.raises(ConfigError, match=r"^cost\.passages: expected a positive integer"):
        CostSettings(passages=0)
    with pytest.raises(ConfigError, match=r"^cost\.passage_words: expected a number >= 0"):
        CostSettings(passage_words=-1)
    with pytest.raises(ConfigError, match=r"^cost\.passage: unknown setting"):
        from_params(CostSettings, {"passage": 1}, "cost")
    with pytest.raises(ConfigError, match="translate stats: no translated tokens"):
        pipeline_statistics(CORPUS, XQG, [{"seconds": 0, "generated_tokens": 0, "source_words": 1}])


def test_cost_stage_on_a_folder(tmp_path):
    (tmp_path / "mlqa").mkdir()
    (tmp_path / "mlqa" / "corpus.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CORPUS))
    for method, rows in (("xqg", XQG), ("translate", TRANSLATE)):
        for row in rows:
            path = tmp_path / "gen" / method / row["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({k: v for k, v in row.items() if k != "file"}))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["cost"] = {"passages": 3600, "languages": 3, "n_queries": 5, "passage_words": 100, "rates": ""}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "cost.py"), "--data", "mlqa", "--generated-root", "gen",
                           "--out", "m/cost.json", "--plot", "p/cost_scale.png"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "m" / "cost.json").read_text())
    assert [r["k"] for r in report["by_k"]] == [1, 2, 3]
    assert [r["xqg_hours"] for r in report["by_k"]] == [0.5, 1.0, 1.5]
    assert [r["translate_hours"] for r in report["by_k"]] == [1.25, 2.5, 3.75]
    assert report["device"] == "Dev A" and "translated_tokens_per_s" in report["formula"]["translate"]
    assert (tmp_path / "p" / "cost_scale.png").stat().st_size > 1000
    params["cost"]["rates"] = "nowhere.json"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "cost.py"), "--data", "mlqa", "--generated-root", "gen",
                           "--out", "m/cost.json", "--plot", "p/cost_scale.png"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: cost.rates: nowhere.json")
