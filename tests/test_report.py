"""docs/results.md, the rendered results: it equals what the committed metrics render, README's headline
quotes it, and the renderer prints what it is given (and names a missing file)."""
import json
import re
import shutil

import pandas as pd
import pytest

from conftest import REPO, run_script
from xaug.errors import ConfigError
from xaug.report import METRIC_FILES, MEASURES, TABLE_FILES, render, render_sweep

# a decimal number as rendered (0.123, +0.032, -0.005, 1,220.0): integers such as k = 1..7, counts and
# years are left out, so only measured values are compared
NUMBER = re.compile(r"[+-]?\d[\d,]*\.\d+")


def _copy_inputs(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "plots").mkdir()
    for name in METRIC_FILES:
        shutil.copy(REPO / "metrics" / name, tmp_path / "metrics" / name)
    for name in TABLE_FILES + ("answer.csv", "seeds.csv"):
        shutil.copy(REPO / "plots" / name, tmp_path / "plots" / name)


def test_committed_document_is_what_the_committed_metrics_render(tmp_path):
    _copy_inputs(tmp_path)
    run_script("report", "--metrics", "metrics", "--plots", "plots", "--out", "docs/results.md", cwd=tmp_path)
    rendered = (tmp_path / "docs" / "results.md").read_bytes()
    assert rendered == (REPO / "docs" / "results.md").read_bytes(), \
        "docs/results.md is stale: run `python stages/report.py` (or `dvc repro report`)"
    assert "../plots/scaling.png" in rendered.decode("utf-8")


def test_readme_headline_quotes_the_document():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Headline result\n(.*?)(?=^## |\Z)", readme, flags=re.M | re.S)
    if section is None:
        pytest.skip("README.md has no `## Headline result` section")
    documents = [REPO / "docs" / name for name in ("results.md", "results_xquad.md")]
    quoted = set().union(*(NUMBER.findall(d.read_text(encoding="utf-8")) for d in documents if d.is_file()))
    missing = sorted(set(NUMBER.findall(section.group(1))) - quoted)
    assert not missing, f"README.md's headline has numbers that docs/results*.md do not: {missing}"


# ---------------------------------------------------------------------------------------------- hand-made
def _measures(value):
    return {m: value for m in MEASURES}


def _tiny(tmp_path):
    """A metrics folder and plots CSVs for one language (de), one setting, xqg only, k = 1."""
    metrics, plots = tmp_path / "metrics", tmp_path / "plots"
    metrics.mkdir(parents=True)
    plots.mkdir()
    tested = {"delta_nDCG@10": 0.0123456, "ci_low_nDCG@10": 0.00149, "ci_high_nDCG@10": 0.0234,
              "p_holm_nDCG@10": 0.04567}
    row = {"setting": "global", "weight": "fixed", "queries": 10, "generation_seconds": 2.25, "generated_tokens": 40,
           "renormalize": True, "primary": True}
    pd.DataFrame([
        {**row, "method": "baseline", "base_method": "baseline", "variant": "method", "k": 0, "group": "all",
         **_measures(0.5)},
        {**row, "method": "normalisation", "base_method": "normalisation", "variant": "method", "k": 0,
         "group": "all", **_measures(0.5), **tested, "delta_nDCG@10": 0.0031},
        *({**row, "method": "xqg", "base_method": "xqg", "variant": "method", "k": 1, "group": g, **_measures(0.51),
           **tested} for g in ("all", "in-set", "same-language")),
        {**row, "method": "xqg", "base_method": "xqg", "variant": "method", "k": 1, "group": "all",
         "renormalize": False, "primary": False, **_measures(0.5), **tested, "delta_nDCG@10": 0.0004},
    ]).to_csv(plots / "scaling.csv", index=False)
    pd.DataFrame([{"setting": "global", "a": "xqg", "b": "xqg-shuffled", "weight": "fixed", "renormalize": True,
                   "primary": True, "kind": "method-shuffled", "k": 1, "group": "all",
                   "delta_nDCG@10": -0.0049, "ci_low_nDCG@10": -0.01, "ci_high_nDCG@10": 0.0004,
                   "p_holm_nDCG@10": 0.5, "p_tost_nDCG@10": 0.047619, "margin": 0.01}]).to_csv(
        plots / "contrasts.csv", index=False)
    pd.DataFrame([{"side": side, "fraction": r, "quality": q, "k": 1, "alpha": 0.1, "delta_nDCG@10": g,
                   "ci_low_nDCG@10": g - 0.01, "ci_high_nDCG@10": g + 0.01, "p_holm_nDCG@10": 0.02, "clusters": 9}
                  for side, r, q, g in (("query", 0.0, 0.9, 0.05), ("query", 1.0, 0.3, 0.0),
                                        ("passage", 0.0, 100.0, 0.03), ("passage", 1.0, 12.5, 0.01))]).to_csv(
        plots / "dial.csv", index=False)
    pd.DataFrame([{"dataset": "XQuAD", "setting": "parallel", "side": "query", "method": "real_questions", "k": 1,
                   "alpha": 0.005, "gain": 0.0004, "ci_low": -0.001, "ci_high": 0.0012, "p_holm": 1.0,
                   "device_hours": 207.44, "generated_tokens": 2.9e9}]).to_csv(plots / "answer.csv", index=False)
    seed_row = {"setting": "global", "k": 1, "group": "all", "measure": "nDCG@10", "draws": 2, "clusters": 9,
                "delta_13": 0.0048, "delta_14": 0.0084, "sd_draws": 0.0025}
    pd.DataFrame([
        {**seed_row, "kind": "gain", "a": "xqg", "b": "baseline", "delta": 0.0066, "ci_low": 0.0011, "ci_high": 0.0131,
         "p": 0.02, "p_holm": 0.024, "p_tost": None},
        {**seed_row, "kind": "between-methods", "a": "xqg", "b": "translate", "delta": -0.0048, "ci_low": -0.0094,
         "ci_high": 0.0002, "p": 0.3, "p_holm": 0.396, "p_tost": 0.011, "delta_13": -0.0083, "delta_14": -0.0031},
    ]).to_csv(plots / "seeds.csv", index=False)
    test = {"delta": 0.2, "ci_low": 0.1, "ci_high": 0.3, "p": 0.002}
    files = {
        "seeds.json": {"seeds": [13, 14], "equivalence_margin": 0.01,
                       "quality": {"13": {"xqg_tune_loss": 6.1222, "xqg_round_trip_R@10": 0.3805,
                                          "translator_tune_loss": 6.0874, "translator_chrF_question": 13.29,
                                          "translator_chrF_sentence": 11.49},
                                   "14": {"xqg_tune_loss": 6.1373, "xqg_round_trip_R@10": 0.2474,
                                          "translator_tune_loss": 6.1407, "translator_chrF_question": 11.34,
                                          "translator_chrF_sentence": 9.53}},
                       "tuning": {"13": {"xqg": {"1": {"alpha": 0.1, "n_queries_used": 1}}},
                                  "14": {"xqg": {"1": {"alpha": 0.2, "n_queries_used": 2}}}}},
        "transfer.json": {"global": {"xqg": {"languages": ["de"], "gain": [[0.0071]], "diagonal": test,
                                             "off_diagonal": test, "diagonal_minus_off_diagonal": test}}},
        "coverage.json": {"global": {"xqg": {"de": {"passages": 1.0, "relevant": 1.0, "queries": 10}}},
                          "parallel": {"real_questions": {"de": {"passages": 0.9874, "relevant": 0.1226,
                                                                 "queries": 10}}}},
        "dial.json": {"measure": "nDCG@10", "quality_measures": {"query": "round-trip R@10", "passage": "chrF"},
                      "crossings": {"1": {"human_translation": {"quality": 0.66, "ci_low": 0.5, "ci_high": 0.8,
                                                                "found": 0.97},
                                          "embedded_translator": {"quality": None, "ci_low": None, "ci_high": None,
                                                                  "found": 0.01}}}},
        "tuning.json": {"measure": "nDCG@10", "split": "tune", "queries": 12, "clusters": 4,
                        "languages_augmented": "de", "baseline": {"global": 0.4},
                        "normalisation": {"global": {"beta": -0.25, "nDCG@10": 0.41, "gain": 0.01}},
                        "choices": {"xqg": {"fixed": {"renormalized": {"setting": "global", "by_k": {"1": {
                            "alpha": 0.25, "n_queries_used": 2, "nDCG@10": 0.45, "gain": 0.05}}}}}}},
        "generation.json": {"xqg": {"de": {"R@1": 0.1, "R@10": 0.2, "real_R@1": 0.3, "real_R@10": 0.4,
                                           "in_script": 0.98, "chrF": 9.691, "duplicates": 0.0, "queries": 30}}},
        "translation.json": {"model": "warm", "steps": 5, "loss_first": 8.0, "loss_last": 7.0, "pairs": 20,
                             "heldout": {"de": {"chrF_question": 7.29, "n_question": 5, "chrF_sentence": 10.41,
                                                "n_sentence": 5, "examples": [{"qid": "q7", "kind": "question",
                                                                               "translation": "Wer | was?"}]}}},
        "train_xqg.json": {"model": "warm", "steps": 3, "max_steps": 4, "best_step": 2, "tune_loss": 5.43219,
                           "examples": 20, "loss_first": 8.1607, "loss_last": 5.9912},
        "train_xdr.json": {"model": "me5-small", "steps": 0, "train_pairs": 20, "loss_first": None, "loss_last": None},
        "cost.json": {"formula": {"xqg": "a", "translate": "b", "unit": "device-hours"}, "device": "CPU",
                      "inputs": {"passages": 1000, "languages": 2, "n_queries": 5, "passage_words": 100},
                      "rates": {"xqg": {"generated_tokens_per_s": 12.34, "device": "CPU", "source": "test"}},
                      "ratio_translate_to_xqg": 1.5, "by_k": [{"k": 1, "xqg_hours": 1.25, "translate_hours": 1.875}]},
    }
    block = {"avg": _measures(0.6), "by_lang": {"de": {**_measures(0.6), "queries": 10}},
             "en": {**_measures(0.7), "queries": 5}}
    files["retrieval.json"] = files["retrieval_parallel.json"] = {"baseline": block}
    for name, content in files.items():
        (metrics / name).write_text(json.dumps(content), encoding="utf-8")
    return metrics, plots


def test_renders_the_values_it_is_given(tmp_path):
    text = render(*_tiny(tmp_path))
    assert "| xqg, all | +0.012 [+0.001, +0.023] (p 0.0457) |" in text
    assert "| xqg − xqg-shuffled | -0.005 [-0.010, +0.000] (p 0.5; TOST 0.0476) |" in text
    assert "±0.010" in text
    assert "| xqg | fixed | renormalized | global | 1 | 0.250 | 2 | 0.400 | 0.450 | +0.050 |" in text
    assert "| xqg | global | 0.250 (2 q) |" in text  # alpha per k
    assert "| 14 | 6.137 | 0.247 | 6.141 | 11.34 | 9.53 | 0.200/2q |" in text  # each draw's models
    assert "| xqg | +0.007 [+0.001, +0.013] (p 0.024) |" in text  # pooled over draws (Holm p)
    assert "| xqg − translate | -0.005 [-0.009, +0.000] (p 0.396; TOST 0.011) |" in text
    assert "| xqg − translate | -0.008 -0.003 (sd 0.003) |" in text  # each draw's delta, sd between draws
    assert "| xqg, raw | +0.000 [+0.001, +0.023] (p 0.0457) |" in text  # the other renormalize state
    assert "no augmentation), all cross-lingual queries: +0.003" in text
    assert "| global | -0.250 | 0.400 | 0.410 | +0.010 |" in text
    assert "| de | +0.007 |" in text
    assert "| de | 7.29 | 5 | 10.41 | 5 |" in text
    assert "| de | question | q7 | Wer \\| was? |" in text  # a pipe in a text cell does not split the table
    assert "| 1 | 1.2 | 1.9 |" in text  # hours with 1 decimal (round half to even)
    assert "| query generator | warm | 3 | 4 | 2 | 5.432 | 20 | 8.161 | 5.991 | — |" in text
    assert "| translator | warm | 5 | — | — | — | 20 | 8.000 | 7.000 |" in text  # trained without tune checks
    assert "(../plots/training/xqg.png)" in text
    assert "1,000 passages" in text
    assert "| XQuAD | parallel | real_questions | query | 1 | 0.005 | +0.000 [-0.001, +0.001] (p 1) | 207.4 |" in text
    assert "(../plots/answer.png)" in text
    assert "(../plots/transfer.png)" in text
    assert "| parallel | real_questions | 0.987 / 0.123 |" in text and "| global | xqg | 1.000 / 1.000 |" in text
    assert render(*_tiny(tmp_path / "again")) == text


def test_renders_a_second_archive_from_its_sweep_alone(tmp_path):
    metrics, plots = _tiny(tmp_path)
    for name in ("retrieval.json", "retrieval_parallel.json", "translation.json", "cost.json", "train_xqg.json",
                 "train_xdr.json"):
        (metrics / name).unlink()
    text = render_sweep(metrics, plots, "../plots/xquad", "xquad")
    assert text.startswith("# Results on XQuAD\n") and "`dvc repro xquad_report`" in text
    assert "| xqg, all | +0.012 [+0.001, +0.023] (p 0.0457) |" in text
    assert "| parallel | real_questions | 0.987 / 0.123 |" in text and "(../plots/xquad/scaling.png)" in text
    assert "| de | 0.100 | 0.200 |" in text  # the query generator's quality on these passages
    assert "Translator quality" not in text and "learning curve" not in text  # MLQA's models generate for it
    assert "| query | 0 | 0.900 | +0.050 [+0.040, +0.060] (p 0.02) |" in text and "| passage | 1 | 12.50 |" in text
    assert "| 1 | 0.660 [0.500, 0.800] (found 0.970) | — (found 0.010) |" in text
    assert "| passage | 0 | 0.100 |" in text  # each mix's own alpha


@pytest.mark.parametrize("missing", ["metrics/cost.json", "plots/contrasts.csv", "plots/seeds.csv"])
def test_a_missing_file_is_a_one_line_error_naming_it(tmp_path, missing):
    metrics, plots = _tiny(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(ConfigError) as err:
        render(metrics, plots)
    message = str(err.value)
    assert str(tmp_path / missing) in message and "\n" not in message


def test_the_stage_reports_a_missing_file_in_one_line(tmp_path):
    _tiny(tmp_path)
    (tmp_path / "metrics" / "tuning.json").unlink()
    proc = run_script("report", cwd=tmp_path, ok=False)
    assert proc.stderr.strip().splitlines()[-1] == "error: metrics/tuning.json: file not found"
    assert not (tmp_path / "docs" / "results.md").exists()
