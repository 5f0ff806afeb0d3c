"""benchmarks/scale.py: the synthetic archives it builds (replicated paragraphs that stay distinct passages,
questions linked across languages, answers in their paragraphs), the params it sets and the stage order."""
import importlib.util
import sys

import pytest

from conftest import REPO
from xaug.data import MlqaArchive
from xaug.errors import ConfigError
from xaug.preparation import prepare

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # DVC's own, when it reads the DAG


def _benchmark(name: str):
    """benchmarks/<name>.py as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _scale():
    scale = _benchmark("scale")
    scale.CALIBRATION_ROUNDS = 1  # the machine-speed check in a few milliseconds
    return scale


def test_synthetic_archive_replicates_passages_and_questions(tmp_path, mini_zip):
    scale = _scale()
    one = prepare(MlqaArchive(mini_zip), ["dev"], 0.25, seed=2)
    counts = scale.synthetic_archive(mini_zip, 3, tmp_path / "x3.zip")
    three = prepare(MlqaArchive(tmp_path / "x3.zip"), ["dev"], 0.25, seed=2)
    assert counts["paragraphs"]["en"] == 3 * one.stats["corpus_passages"] == three.stats["corpus_passages"]
    for lang in ("en", "de", "zh"):
        assert sum(1 for c in three.contexts if c["lang"] == lang) == 3 * sum(1 for c in one.contexts if c["lang"] == lang)
        assert sum(1 for q in three.queries if q["lang"] == lang) == 3 * sum(1 for q in one.queries if q["lang"] == lang)
    text = {c["id"]: c["text"] for c in three.contexts}
    for link in three.links:  # every question keeps its paragraph in each language, and its answer is in it
        assert set(link["contexts"]) == {"en", "de", "zh"}
        for lang, cid in link["contexts"].items():
            assert all(a in text[cid] for a in link["answers"][lang])
    assert len({c["text"] for c in three.contexts}) == len(three.contexts)  # copies are new passages


def test_a_sizes_queries_are_counted_per_split_in_the_languages_it_evaluates(tmp_path, mini_zip):
    import shutil

    from xaug.preparation import save_prepared

    scale = _scale()
    assert scale.split_queries(tmp_path) == {}  # before prepare
    prepared = prepare(MlqaArchive(mini_zip), ["dev"], 0.5, seed=2, tune_fraction=0.5)
    save_prepared(prepared, tmp_path / "data" / "mlqa")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    scale.set_params(tmp_path / "params.yaml", {"languages": "[de]", "n_languages": 1})
    counts = scale.split_queries(tmp_path)
    for split in ("train", "tune", "eval"):
        expected = sum(1 for q in prepared.queries if q["lang"] in ("en", "de") and q["split"] == split)
        assert counts[split] == expected
    assert counts["eval"] > 0 and counts["eval"] < sum(1 for q in prepared.queries if q["split"] == "eval")


def test_params_are_set_as_dvc_sets_them(tmp_path):
    import shutil

    import yaml

    scale = _scale()
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    scale.set_params(tmp_path / "params.yaml", {**scale.PRESET, "xqg.warm.max_steps": "7", "data.source": "s.zip"})
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["languages"] == ["ar", "de", "zh"] and params["xdr"]["model"] == "tiny"
    assert params["xqg"]["warm"]["max_steps"] == 7 and params["tune"]["n_queries_used"] == [1]
    assert params["data"]["source"] == "s.zip" and params["scaling"]["candidates"] == 200
    with pytest.raises(ConfigError, match=r"^--set: .*steps"):
        scale.set_params(tmp_path / "params.yaml", {"xqg.warm.steps": 1})


def test_stages_run_in_the_dags_order_without_xquad():
    names = [name for name, _ in _scale().pipeline_stages(REPO)]
    assert not any(n.startswith("xquad_") or n in ("answer", "report", "cost") for n in names)
    for before, after in (("download", "prepare"), ("prepare", "train_xdr"), ("train_xdr", "encode"),
                          ("train_xqg", "generate_queries"), ("generate_queries", "encode_items@xqg"),
                          ("encode_items@xqg", "tune"), ("tune", "scaling"), ("index_augmented@xqg", "evaluate")):
        assert names.index(before) < names.index(after), (before, after)


def test_the_candidates_benchmark_compares_gains_tables_row_by_row():
    import pandas as pd

    bench = _benchmark("candidates")
    keys = {"setting": ["global"] * 3, "method": ["xqg"] * 3, "variant": ["method"] * 3, "weight": ["fixed"] * 3,
            "renormalize": [True] * 3, "k": [1, 2, 3], "group": ["all"] * 3}
    dense = pd.DataFrame({**keys, "nDCG@10": [0.60, 0.61, 0.62], "R@100": [0.9, 0.9, 0.9],
                          "delta_nDCG@10": [0.01, 0.02, 0.03], "p_holm_nDCG@10": [0.01, 0.2, 0.04]})
    same = bench.compare(dense, dense.sample(frac=1, random_state=0))  # row order does not matter
    assert same["rows_equal"] == 1 and same["max_abs_mean"] == 0 and same["holm_decisions_agree"] == 1
    other = dense.assign(**{"R@100": [0.9, 0.88, 0.9], "delta_nDCG@10": [0.01, 0.02, 0.0295],
                            "p_holm_nDCG@10": [0.01, 0.2, 0.06]})
    moved = bench.compare(dense, other)
    assert moved["rows_equal"] == pytest.approx(1 / 3, abs=1e-4) and moved["max_abs_mean"] == pytest.approx(0.02)
    assert moved["max_abs_gain_nDCG@10"] == pytest.approx(0.0005) and moved["holm_decisions_agree"] == pytest.approx(2 / 3, abs=1e-4)
    cmd = bench.stage_command(REPO)
    assert f"{REPO}/stages/scaling.py" in cmd and "--plots plots" in cmd


def test_a_resumed_size_skips_finished_stages_and_adds_up_an_interrupted_ones_attempts(tmp_path, mini_zip,
                                                                                       monkeypatch):
    import argparse
    import json
    import logging

    scale = _scale()
    work = tmp_path / "P5"
    work.mkdir()
    done = {"seconds": 1.0, "cpu_seconds": 0.5, "peak_rss_mb": 10, "exit": 0}
    stopped = {"exit": None, "attempts": 1, "interrupted_seconds": 2.0}
    (work / "progress.json").write_text(json.dumps({"target": 5, "passages": 3, "set": [], "commit": "0000abc",
                                                    "stages": {"a": done, "b": stopped}}))
    monkeypatch.setattr(scale, "pipeline_stages", lambda root: [
        ("a", "exit 3"), ("b", "echo b > b.txt"), ("c", "echo broken; exit 1"), ("d", "touch d.txt")])
    args = argparse.Namespace(source=str(mini_zip), work=str(tmp_path), resume=True, sync=False, set=[],
                              timeout=60, keep=False, redo=None)
    result = scale.run_size(5, args, logging.getLogger("test"))
    stages = result["stages"]
    assert stages["a"] == done  # finished: not run again (its command would fail)
    assert stages["b"]["exit"] == 0 and stages["b"]["attempts"] == 2 and stages["b"]["interrupted_seconds"] == 2.0
    assert stages["b"]["seconds"] < 2.0 and stages["b"]["peak_rss_mb"] < 99999 and (work / "b.txt").is_file()
    assert stages["c"]["exit"] == 1 and stages["c"]["error"] == "broken"
    assert stages["b"]["commit"] == stages["c"]["commit"] == "0000abc"  # the work folder's code, not the checkout's
    assert "d" not in stages and not (work / "d.txt").exists()  # nothing runs after a failed stage
    assert json.loads((work / "progress.json").read_text())["stages"] == stages
    before, after = result["machine_speed"]  # this sitting's, before its first stage and after its last
    assert before["before"] == "b" and after["after"] == "c"
    assert all(speed["matmul_s"] > 0 and speed["python_s"] > 0 for speed in (before, after))
    with pytest.raises(ConfigError, match="--resume: .* was run with --set"):
        scale.run_size(5, argparse.Namespace(**{**vars(args), "set": ["seed=3"]}), logging.getLogger("test"))


def test_a_redo_runs_a_stage_and_those_after_it_again_from_their_start_with_the_new_settings(tmp_path, mini_zip,
                                                                                              monkeypatch):
    import argparse
    import json
    import logging

    scale = _scale()
    work = tmp_path / "P5"
    work.mkdir()
    (work / "params.yaml").write_text("seed: 13\nscaling:\n  subsets: all\n")
    done = {"seconds": 1.0, "cpu_seconds": 0.5, "peak_rss_mb": 10, "exit": 0}
    (work / "progress.json").write_text(json.dumps({"target": 5, "passages": 3, "set": ["seed=13"], "commit": "0000abc",
                                                    "stages": {"a": done, "b": done, "c": done}}))
    (work / "data" / "work" / "xqg").mkdir(parents=True)  # the chunks of a text stage's last run
    (work / "data" / "work" / "xqg" / "chunk-0.npz").write_text("x")
    # b runs from its start: the chunks its last run left are gone
    monkeypatch.setattr(scale, "pipeline_stages", lambda root: [("a", "exit 3"),
                                                                ("b", "test ! -e data/work && touch b.txt"),
                                                                ("c", "touch c.txt")])
    args = argparse.Namespace(source=str(mini_zip), work=str(tmp_path), resume=True, sync=False, timeout=60,
                              keep=False, set=["seed=13", "scaling.subsets=random:1"], redo="b")
    result = scale.run_size(5, args, logging.getLogger("test"))
    assert result["stages"]["a"] == done and (work / "b.txt").is_file() and (work / "c.txt").is_file()
    assert result["stages"]["b"]["exit"] == 0 and result["stages"]["b"] != done
    assert result["set"] == ["seed=13", "scaling.subsets=random:1"]
    assert result["redone"] == [{"set": ["seed=13"], "stages": {"b": done, "c": done}}]
    assert "subsets: random:1" in (work / "params.yaml").read_text()
    with pytest.raises(ConfigError, match="--redo: 'x' is not a benchmarked stage"):
        scale.run_size(5, argparse.Namespace(**{**vars(args), "redo": "x"}), logging.getLogger("test"))


def test_an_interrupted_stage_is_stopped_with_the_benchmark(tmp_path):
    import os
    import signal
    import time

    scale = _scale()
    old = signal.signal(signal.SIGALRM, scale._interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    started = time.perf_counter()
    try:
        with pytest.raises(scale.Interrupted) as caught:
            scale.run_stage_command("echo $$ > pid; sleep 30", tmp_path, dict(os.environ), timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.perf_counter() - started < 10
    assert caught.value.row["exit"] is None and 0.3 < caught.value.row["seconds"] < 10
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the stage's shell is gone


def test_a_stopped_stage_gets_sigterm_first_and_cleans_up(tmp_path):
    """Stopped (an interruption or its time limit), a stage under the harness gets SIGTERM first, so it removes
    its temporary outputs; one that ignores SIGTERM is killed after the grace period."""
    import os
    import sys

    scale = _scale()
    stage = (f"{sys.executable} -c \"from xaug.cli import run_stage; from xaug.io import atomic_path; import time\n"
             f"def main():\n    with atomic_path('{tmp_path}/out.json') as t:\n        t.write_text('x'); time.sleep(30)\n"
             f"run_stage(main)\"")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    row = scale.run_stage_command(stage, tmp_path, env, timeout=8)
    assert row["exit"] != 0 and row["error"] == "time limit"
    assert "error: stopped by SIGTERM" in (tmp_path / "stage.log").read_text()  # the stage unwound ...
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage.log"]  # ... and left no temporary file
    row = scale.run_stage_command("trap '' TERM; sleep 60", tmp_path, dict(os.environ), timeout=1)
    assert row["exit"] == -9 and row["seconds"] < 30


def test_an_interruption_is_kept_in_the_progress_for_resume(tmp_path, mini_zip, monkeypatch):
    import argparse
    import json
    import logging

    scale = _scale()
    work = tmp_path / "P5"
    work.mkdir()
    (work / "progress.json").write_text(json.dumps({"target": 5, "passages": 3, "set": [], "stages": {
        "a": {"exit": None, "attempts": 1, "interrupted_seconds": 4.0}}}))
    monkeypatch.setattr(scale, "pipeline_stages", lambda root: [("a", "true")])

    def stopped(cmd, cwd, env, timeout):
        exc = scale.Interrupted("SIGTERM")
        exc.row = {"seconds": 3.0, "exit": None}
        raise exc

    monkeypatch.setattr(scale, "run_stage_command", stopped)
    args = argparse.Namespace(source=str(mini_zip), work=str(tmp_path), resume=True, sync=False, set=[],
                              timeout=60, keep=False, redo=None)
    with pytest.raises(scale.Interrupted):
        scale.run_size(5, args, logging.getLogger("test"))
    row = json.loads((work / "progress.json").read_text())["stages"]["a"]
    assert row == {"exit": None, "attempts": 2, "interrupted_seconds": 7.0}


def test_a_sync_copies_the_code_but_keeps_the_sizes_own_params_and_outputs(tmp_path):
    """--sync (with --resume) brings the checkout's code into a work folder; the size's params.yaml, dvc.lock and
    the outputs git tracks in the checkout (metrics/, plots/: the committed run's) stay the size's own."""
    scale = _scale()
    own = {"params.yaml": "seed: 3\n", "dvc.lock": "own\n", "metrics/tuning.json": "{\"own\": 1}\n",
           "plots/scaling.csv": "own\n"}
    for name, text in own.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    scale._copy_tracked(tmp_path, skip=scale.SYNC_SKIP)
    assert {name: (tmp_path / name).read_text() for name in own} == own
    assert (tmp_path / "xaug" / "ranking.py").read_text() == (REPO / "xaug" / "ranking.py").read_text()
    assert (tmp_path / "stages" / "scaling.py").is_file() and (tmp_path / "docs" / "testing.md").is_file()


def test_the_table_shows_failed_interrupted_and_missing_stages():
    """A size stopped during a stage (SIGTERM, its row only the interrupted attempt) is reported, not a KeyError
    that would lose the run's figures; growth leaves that stage out."""
    scale = _scale()
    done = {"seconds": 4.0, "cpu_seconds": 4.0, "peak_rss_mb": 100, "exit": 0}
    results = [{"passages": 100, "stages": {"a": done, "b": {**done, "exit": 1}}},
               {"passages": 1000, "stages": {"a": done, "c": {"exit": None, "attempts": 1, "interrupted_seconds": 3.0}}}]
    lines = scale.table(results)
    assert lines[2] == "| a | 4.0 / 100 | 4.0 / 100 |"
    assert lines[3] == "| b | 4.0 / 100 (failed) | - |"
    assert lines[4] == "| c | - | interrupted after 3.0 s |"
    assert set(scale.growth(results)) == {"a"}


def test_growth_gives_each_stages_exponent_of_wall_and_cpu_seconds_and_memory_between_sizes():
    """b of time ~ P^b between consecutive sizes: wall seconds, CPU seconds where both sizes have them (an older
    row without them gets none), peak memory; a stage that failed at either size or took under 0.5 s is left out."""
    scale = _scale()
    row = (lambda s, cpu, mb, exit=0: {"seconds": s, "cpu_seconds": cpu, "peak_rss_mb": mb, "exit": exit})
    small = {"passages": 100, "stages": {"a": row(2.0, 3.0, 100), "b": {**row(4.0, None, 100)},
                                         "c": row(0.1, 0.1, 100), "d": row(5.0, 5.0, 100, exit=1)}}
    large = {"passages": 1000, "stages": {"a": row(200.0, 30.0, 1000), "b": row(40.0, 40.0, 100),
                                          "c": row(9.0, 9.0, 100), "d": row(50.0, 50.0, 100)}}
    out = scale.growth([small, large])
    assert out == {"a": [{"from": 100, "to": 1000, "time": 2.0, "memory": 1.0, "cpu": 1.0}],
                   "b": [{"from": 100, "to": 1000, "time": 1.0, "memory": 0.0}]}


def test_a_variant_runs_only_the_named_stages_with_its_settings_and_keeps_the_sizes_rows(tmp_path, mini_zip,
                                                                                        monkeypatch):
    """--variant LABEL --only STAGE: the stage runs again with the --set values in params.yaml for that run alone;
    its row goes under variants[LABEL], the size's own rows and params.yaml stay as they were."""
    import argparse
    import json
    import logging

    scale = _scale()
    work = tmp_path / "P5"
    work.mkdir()
    own = "seed: 13\nindex:\n  factory: Flat\n"
    (work / "params.yaml").write_text(own)
    done = {"seconds": 1.0, "cpu_seconds": 0.5, "peak_rss_mb": 10, "exit": 0}
    stages = {"a": done, "b": done, "c": done}
    (work / "progress.json").write_text(json.dumps({"target": 5, "passages": 3, "set": ["seed=13"], "commit": "0000abc",
                                                    "stages": stages}))
    monkeypatch.setattr(scale, "pipeline_stages", lambda root: [
        ("a", "exit 3"), ("b", "grep -q 'factory: IVF10,Flat' params.yaml && touch b.txt"), ("c", "touch c.txt")])
    args = argparse.Namespace(source=str(mini_zip), work=str(tmp_path), resume=True, sync=False, timeout=60,
                              keep=False, set=["index.factory='IVF10,Flat'"], redo=None, variant="ivf", only=["b"])
    result = scale.run_size(5, args, logging.getLogger("test"))
    assert result["stages"] == stages and (work / "b.txt").is_file() and not (work / "c.txt").exists()
    assert result["variants"]["ivf"]["set"] == ["index.factory='IVF10,Flat'"]
    assert list(result["variants"]["ivf"]["stages"]) == ["b"] and result["variants"]["ivf"]["stages"]["b"]["exit"] == 0
    assert result["variants"]["ivf"]["machine_speed"]["matmul_s"] > 0
    assert (work / "params.yaml").read_text() == own
    assert json.loads((work / "progress.json").read_text())["variants"] == result["variants"]
    with pytest.raises(ConfigError, match="--only: 'x' not a benchmarked stage"):
        scale.run_size(5, argparse.Namespace(**{**vars(args), "only": ["x"]}), logging.getLogger("test"))
    with pytest.raises(ConfigError, match="--variant: .*P7/progress.json: no size to run it on"):
        scale.run_size(7, args, logging.getLogger("test"))


def test_a_stage_s_summed_memory_counts_every_process_of_it(tmp_path):
    """Two processes that each hold about 200 MB: the summed PSS of the stage's process group counts both; a
    process of another group is not counted. (The largest process's peak RSS is not checked: a shell forked from
    a large test process counts that process's pages until it execs.)"""
    import os
    import sys

    scale = _scale()
    hold = f"{sys.executable} -c \"import time; b = bytearray(200 << 20); time.sleep(4)\""
    row = scale.run_stage_command(f"{hold} & {hold}; wait", tmp_path, dict(os.environ), timeout=60)
    assert row["exit"] == 0
    assert 380 <= row["peak_pss_mb"] < 600
    assert scale.group_pss_mb(os.getpgrp()) > 0 and scale.group_pss_mb(2 ** 22 + 7) == 0
    row = scale.run_stage_command("true", tmp_path, dict(os.environ), timeout=60)
    assert row["exit"] == 0 and "peak_pss_mb" not in row  # ended before the first sample: no figure, not 0 MB
