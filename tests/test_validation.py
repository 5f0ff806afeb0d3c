"""Bad parameter values are refused by the first stage that `dvc repro` would run for them, before it reads
any input: exit 2 and one `error:` line naming the parameter by its full path.

"The first stage that would run" is read off dvc.yaml, which lists stages in the order DVC runs them: the
first stage that declares the changed parameter (or loops over it with ``foreach``). After a finished run
that is the stage DVC re-runs first; on a fresh clone every earlier stage also runs, and the download
stage (which reads no such parameter) is checked too. No stage here has any input: a stage that read
its inputs before checking its parameters would fail on a missing file instead, and the test with it.
"""
import copy
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from xaug.data_settings import PrepareSettings, SourceSettings
from xaug.evaluation import EvaluateSettings
from xaug.params import GROUP_KEYS, field_names
from xaug.search import IndexSettings
from xaug.sweep import ScalingSettings
from xaug.tuning import TuneSettings

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def first_stage(param: str, default: str | None = None) -> tuple[str, str]:
    """(stage, command) of the first stage in dvc.yaml that declares ``param`` (or a group holding it) or
    loops over it; foreach items are replaced by the first value of the loop. ``default``: the stage to
    name when none declares it (a misspelt key)."""
    for name, stage in DVC.items():
        body = stage.get("do", stage)
        loop = stage.get("foreach")
        declared = [str(p) for p in body.get("params", [])]
        item = None
        if isinstance(loop, str):
            loop_param = loop.strip("${} ")
            values = PARAMS
            for part in loop_param.split("."):
                values = values[part]
            item = values[0] if values else None
            declared.append(loop_param)
        declared = [d.replace("${item}", str(item)) for d in declared]
        if any(param == d or param.startswith(d + ".") for d in declared):
            return name, body["cmd"].replace("${item}", str(item))
    if default is not None:
        return default, DVC[default]["cmd"]
    raise AssertionError(f"no stage declares {param}")


def with_value(dotted: str, value) -> dict:
    params = copy.deepcopy(PARAMS)
    node = params
    *groups, key = dotted.split(".")
    for group in groups:
        node = node[group]
    node.setdefault(key, None)
    node[key] = value
    return params


def run_stage(cmd: str, params: dict, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    words = cmd.split()
    assert words[0] == "python" and words[1].startswith("stages/")
    return subprocess.run([sys.executable, *words[1:], "--params", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})


# (changed parameter, bad value, the parameter the error must name, what it says); the first block is
# checked when params.yaml is loaded (so the download stage refuses it too), the second where it is read
AT_LOAD = [
    ("languages", ["en", "de"], "languages", "corpus language"),
    ("languages", ["de", "de"], "languages", "duplicate"),
    ("languages", ["de", "xx"], "languages", "unknown language code"),
    ("languages", "de", "languages", "list"),
    ("n_languages", 9, "n_languages", "integer in [0, 6]"),
    ("n_languages", True, "n_languages", "integer"),
    ("data.corpus_language", "de", "languages", "corpus language"),
    ("data.corpus_language", "xx", "data.corpus_language", "unknown language code"),
    ("seed", -1, "seed", "integer >= 0"),
    ("scaling.resample", 9, "scaling.resample", "unknown setting"),
    ("scaling.candidates", 50, "scaling.candidates", "below evaluate.depth (100)"),
    ("scaling.candidates", -1, "scaling.candidates", "integer >= 0"),
    ("scaling.candidate_index", "IVF", "scaling.candidate_index", "faiss rejects"),
    ("scaling.candidate_search", "nprobe=x", "scaling.candidate_search", "faiss rejects"),
    ("scaling.candidate_train", 10, "scaling.candidate_train", "at least 39"),
    ("scaling.candidate_train", -1, "scaling.candidate_train", "integer >= 0"),
    ("scaling.candidate_iterations", -1, "scaling.candidate_iterations", "integer >= 0"),
    ("scaling.candidate_iterations", 2.5, "scaling.candidate_iterations", "integer"),
    ("index.factory", "IVF", "index.factory", "faiss rejects"),
    ("index.search_params", "nprobe=x", "index.search_params", "faiss rejects"),
    ("scaling.seeds", [13, 14], "scaling.seeds", "other than seed (13)"),
    ("scaling.seeds", [14, 14], "scaling.seeds", "distinct"),
    ("scaling.seeds", ["a"], "scaling.seeds", "integer >= 0"),
]
WHERE_READ = [
    ("data.holdout_fraction", 2, "data.holdout_fraction", "expected"),
    ("data.max_articles", -1, "data.max_articles", "integer >= 0"),
    ("data.splits", "dev", "data.splits", "expected"),
    ("xquad.source", "missing.zip", "xquad.source", "does not exist"),  # the second archive's group, by its name
    ("xquad.holdout_fraction", 2, "xquad.holdout_fraction", "expected"),
    ("xquad.max_articles", -1, "xquad.max_articles", "integer >= 0"),
    ("xdr.batch_size", 1, "xdr.batch_size", "expected"),
    ("encode.batch_size", 0, "encode.batch_size", "positive integer"),
    ("xqg.n_queries", 0, "xqg.n_queries", "positive integer"),
    ("xqg.warm.max_steps", -2, "xqg.warm.max_steps", "integer >= 0"),
    ("translate.max_sentences", -1, "translate.max_sentences", "integer >= 0"),
    ("translate.pairs", "every", "translate.pairs", "expected one of"),
    ("tune.measure", "P@3", "tune.measure", "expected one of"),
    ("augment.xqg.alpha", 2, "augment.xqg.alpha", "[0, 1]"),
    ("scaling.resamples", 0, "scaling.resamples", "positive integer"),
    ("evaluate.depth", 0, "evaluate.depth", "positive integer"),
    ("cost.passages", 0, "cost.passages", "positive integer"),
]
BAD = [(*b, True) for b in AT_LOAD] + [(*b, False) for b in WHERE_READ]


@pytest.mark.parametrize("changed,value,named,says,at_load", BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_the_first_stage_refuses_a_bad_value(changed, value, named, says, at_load, tmp_path):
    name, cmd = first_stage(changed, default="download" if at_load else None)
    (tmp_path / "stages").symlink_to(REPO / "stages")  # the stage's own command, in an empty workspace
    for stage_cmd in ([cmd, DVC["download"]["cmd"]] if at_load and name != "download" else [cmd]):
        proc = run_stage(stage_cmd, with_value(changed, value), tmp_path)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2, (name, proc.returncode, proc.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith(f"error: {named}:") and says in lines[0], (name, lines)
        assert not any(tmp_path.glob("data*")) and not any(tmp_path.glob("models*")), "a refused stage wrote output"


def test_first_stage_follows_the_dag_order():
    assert first_stage("seed")[0] == "prepare"
    assert first_stage("data.corpus_language")[0] == "prepare"
    assert first_stage("languages")[0] == "generate_queries"  # a new language: its generation runs first
    assert first_stage("n_languages")[0] == "augment"
    # a further seed: the states of the sources its batches read are encoded first, then it trains
    assert first_stage("scaling.seeds")[0] == "xqg_training_states"
    assert [name for name, stage in DVC.items() if "scaling.seeds" in str(stage.get("foreach", ""))][0] == "train_xqg_seed"


def test_load_time_key_lists_are_the_settings_fields():
    classes = {"data": (SourceSettings, PrepareSettings), "xquad": (SourceSettings, PrepareSettings),
               "index": (IndexSettings,), "evaluate": (EvaluateSettings,), "tune": (TuneSettings,),
               "scaling": (ScalingSettings,)}
    assert set(GROUP_KEYS) == set(classes)
    for group, owners in classes.items():
        assert set(GROUP_KEYS[group]) == field_names(*owners), group
        # a local archive (xquad's) is not checked against a size and sha256: those keys may be absent
        local = {"expected_size", "expected_sha256"} if group == "xquad" else set()
        assert set(GROUP_KEYS[group]) - local <= set(PARAMS[group]) <= set(GROUP_KEYS[group]), \
            f"params.yaml's {group} group"
