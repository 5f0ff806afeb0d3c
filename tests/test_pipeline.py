"""End to end: the real `dvc repro` in a temporary copy, on a subset of the shared dev archive, tiny models."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow
COPY = ["dvc.yaml", "params.yaml", "pyproject.toml", "stages", "xaug"]


def dvc(cwd, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def set_params(path, **overrides):
    params = yaml.safe_load(path.read_text())
    for dotted, value in overrides.items():
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    shared = REPO.parent / "shared" / "data" / "MLQA_V1_dev.zip"
    if not shared.is_file():
        pytest.skip("shared dev archive not present")
    root = tmp_path_factory.mktemp("pipeline")
    for name in COPY:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    dvc(root, "init", "--no-scm", "-q")
    set_params(root / "params.yaml", **{
        "data.source": str(shared), "data.max_articles": 150,
        "xdr.model": "tiny", "xdr.epochs": 4, "xdr.lr": 5.0e-4, "xdr.batch_size": 32, "xdr.warmup": 0.05,
        "xdr.max_passage_length": 128, "xdr.query_prefix": "", "xdr.passage_prefix": "",
        "xdr.tiny.vocab_size": 4000, "xdr.tiny.hidden_size": 64, "xdr.tiny.intermediate_size": 128,
    })
    first = dvc(root, "repro")
    return root, first


def test_repro_writes_metrics_that_beat_random(pipeline):
    root, log = pipeline
    metrics = json.loads((root / "metrics" / "retrieval.json").read_text())["baseline"]
    stats = json.loads((root / "data" / "mlqa" / "stats.json").read_text())
    random_r100 = min(1.0, 100 / stats["corpus_passages"])
    assert set(metrics["by_lang"]) == {"ar", "de", "es", "hi", "vi", "zh"}
    assert metrics["avg"]["R@100"] > random_r100, (metrics["avg"], random_r100)
    assert (root / "data" / "runs" / "baseline.trec").is_file()
    assert (root / "models" / "xdr" / "tokenizer.json").is_file()


def test_second_repro_does_nothing(pipeline):
    root, _ = pipeline
    again = dvc(root, "repro")
    assert "Running stage" not in again, again
    assert "up to date" in again


def test_changing_languages_reruns_only_evaluate(pipeline):
    root, _ = pipeline
    set_params(root / "params.yaml", languages=["de", "zh"])
    out = dvc(root, "repro")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"evaluate"}, out
    metrics = json.loads((root / "metrics" / "retrieval.json").read_text())["baseline"]
    assert set(metrics["by_lang"]) == {"de", "zh"}


def test_stage_error_is_one_line(pipeline, tmp_path):
    root, _ = pipeline
    params = tmp_path / "params.yaml"
    shutil.copy(root / "params.yaml", params)
    set_params(params, **{"data.source": str(tmp_path / "missing.zip")})
    proc = subprocess.run([sys.executable, str(root / "stages" / "download.py"), "--params", str(params),
                           "--out", str(tmp_path / "raw")], capture_output=True, text=True, cwd=root)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: data.source: {tmp_path / 'missing.zip'} does not exist "
                                                "(expected a .zip or directory in the MLQA_V1 layout)"]
