"""benchmarks/training.py on the hand-made archive with a tiny backbone: it trains, reports per-step losses and
times (with the training stages' malloc settings or glibc's defaults, the same losses), and refuses a schedule
shorter than the steps asked for."""
import json
import subprocess
import sys

import yaml

from conftest import REPO, xqg_params


def _run(tmp_path, *args):
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "training.py"), "--which", "xqg", "--data",
                           str(tmp_path / "mlqa"), "--params", str(tmp_path / "params.yaml"), "--threads", "1", *args],
                          capture_output=True, text=True, cwd=tmp_path)


def test_training_benchmark_times_steps_and_reports_the_losses(tmp_path, mini):
    xqg_params(tmp_path, "warm")
    proc = _run(tmp_path, "--steps", "2", "--warmup", "1", "--out", str(tmp_path / "training.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [report] = json.loads((tmp_path / "training.json").read_text())["xqg"]
    assert report["steps"] == 2 and len(report["losses"]) == 3 and all(x > 0 for x in report["losses"])
    assert report["seconds_per_step_median"] > 0 and report["trainable_parameters"] > 0
    assert report["softmax"] == report["vocabulary"] and report["batch_by"] == "examples"
    _run(tmp_path, "--steps", "2", "--warmup", "1", "--out", str(tmp_path / "again.json"))
    assert json.loads((tmp_path / "again.json").read_text())["xqg"][0]["losses"] == report["losses"]  # seeded
    # the training stages' malloc settings by default; glibc's own with --system-malloc, the same arithmetic
    _run(tmp_path, "--steps", "2", "--warmup", "1", "--system-malloc", "--out", str(tmp_path / "system.json"))
    [system] = json.loads((tmp_path / "system.json").read_text())["xqg"]
    assert (report["malloc"], system["malloc"]) == ("heap", "system") and system["losses"] == report["losses"]
    too_long = _run(tmp_path, "--steps", "1000")
    assert too_long.returncode == 2 and "--steps: the committed schedule has" in too_long.stderr


def test_training_benchmark_interleaves_variants_each_with_its_own_random_stream(tmp_path, mini):
    """Two params files: both timed in one process; each variant's losses are those it has alone."""
    params = yaml.safe_load(xqg_params(tmp_path, "warm").read_text())
    params["xqg"]["warm"].update(output_vocabulary="targets", batch_by="sources")
    (tmp_path / "variant.yaml").write_text(yaml.safe_dump(params))
    both = _run(tmp_path, "--steps", "2", "--warmup", "1", "--params", str(tmp_path / "params.yaml"),
                str(tmp_path / "variant.yaml"), "--out", str(tmp_path / "both.json"))
    assert both.returncode == 0, both.stderr[-3000:]
    plain, variant = json.loads((tmp_path / "both.json").read_text())["xqg"]
    assert variant["softmax"] < variant["vocabulary"] == plain["vocabulary"] == plain["softmax"]
    assert variant["batch_by"] == "sources" and variant["sources_per_batch"] < plain["sources_per_batch"]
    alone = _run(tmp_path, "--steps", "2", "--warmup", "1", "--params", str(tmp_path / "variant.yaml"), "--out",
                 str(tmp_path / "alone.json"))
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert json.loads((tmp_path / "alone.json").read_text())["xqg"][0]["losses"] == variant["losses"]
