"""The training_states stage: the frozen encoder's states of the warm models' sources, computed once, give the
model that training gives when it encodes them itself (byte for byte, tune checks included); states computed
for other settings are refused in one line naming their file."""
import json
import shutil

import pytest
import yaml

from conftest import REPO, SHARED_ZIP, run_script
from xaug.data import MlqaArchive
from xaug.preparation import prepare, save_prepared

TINY_BERT = {"vocab_size": 4000, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 128}
WARM = {"decoder_layers": 1, "epochs": 1, "batch_size": 8, "max_steps": 4, "lr": 1e-3, "check_every": 2,
        "tune_examples": 6, "max_target_length": 16, "bf16": False}
STAGE = {"xqg": ("train_xqg", "xqg"), "translator": ("train_translator", "translate")}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A few articles of the shared dev archive (train, tune and eval splits), a tiny encoder, both warm models."""
    if not SHARED_ZIP.is_file():
        pytest.skip(f"{SHARED_ZIP} not present (the shared dev archive sits beside the repo)")
    tmp_path = tmp_path_factory.mktemp("states")
    data = prepare(MlqaArchive(SHARED_ZIP), ["dev"], 0.3, seed=11, max_articles=10, tune_fraction=0.3)
    save_prepared(data, tmp_path / "data" / "mlqa")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["xdr"].update(model="tiny", tiny=TINY_BERT, query_prefix="", passage_prefix="", threads=1)
    params["xqg"].update(model="warm", context_languages=["en"], threads=1, warm={**WARM, "max_source_length": 64})
    params["translate"].update(model="warm", quality_pairs=2, threads=1, warm={**WARM, "max_source_length": 32})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _weights(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.safetensors"))}


@pytest.mark.parametrize("model", ["xqg", "translator"])
def test_training_reads_the_states_it_would_compute(workspace, model):
    stage, group = STAGE[model]
    states = f"states/{model}"
    run_script("training_states", "--params", "params.yaml", "--model", model, "--out", states, cwd=workspace)
    identity = json.loads((workspace / states / "identity.json").read_text())
    assert len(identity["sources"]) > 4 and identity["tune"] == 6  # the tune checks' examples are there too
    for out, extra in ((f"{model}-read", ["--states", states]), (f"{model}-encoded", [])):
        run_script(stage, "--params", "params.yaml", "--out", out, "--metrics", f"m/{out}.json",
                   "--curve", f"curves/{out}.csv", *extra, cwd=workspace)
    read, encoded = _weights(workspace / f"{model}-read"), _weights(workspace / f"{model}-encoded")
    assert read and read == encoded
    curves = [json.loads((workspace / "m" / f"{model}-{how}.json").read_text())["curve"] for how in ("read", "encoded")]
    assert len(curves[0]) == 2 and curves[0] == curves[1]  # the tune checks saw the same states

    # states of other settings: one line naming their identity file, exit 2, no model written
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    length = params[group]["warm"]["max_source_length"]
    params[group]["warm"]["max_source_length"] = 16
    (workspace / "other.yaml").write_text(yaml.safe_dump(params))
    proc = run_script(stage, "--params", "other.yaml", "--out", f"{model}-other", "--metrics", "m/other.json",
                      "--curve", "curves/other.csv", "--states", states, cwd=workspace, ok=False)
    assert proc.returncode == 2 and not (workspace / f"{model}-other").exists()
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{states}/identity.json" in line and f"max_source_length = {length}" in line and "16" in line

    # as many sources with other texts (every context and question starts with one more word): refused the same way
    other = workspace / "data" / f"other-{model}"
    shutil.copytree(workspace / "data" / "mlqa", other)
    for name in ("contexts.jsonl", "queries.jsonl"):
        rows = [json.loads(x) for x in (other / name).read_text().splitlines()]
        (other / name).write_text("".join(json.dumps({**r, "text": "Also " + r["text"]}) + "\n" for r in rows))
    proc = run_script(stage, "--params", "params.yaml", "--data", str(other), "--out", f"{model}-texts",
                      "--metrics", "m/texts.json", "--curve", "curves/texts.csv", "--states", states,
                      cwd=workspace, ok=False)
    assert proc.returncode == 2 and not (workspace / f"{model}-texts").exists()
    line = proc.stderr.strip().splitlines()[-1]
    assert f"{states}/identity.json: states computed for other tune sources" in line  # checked first


def test_the_states_of_other_texts_or_missing_sources_are_refused(tmp_path):
    from xaug.errors import ConfigError
    from xaug.formats import load_states, save_states
    from xaug.training_states import TrainingStates, _text_digest

    import torch
    save_states(tmp_path / "train", ["a", "b"], [torch.ones(2, 3), torch.zeros(1, 3)])
    states = TrainingStates(tmp_path / "identity.json", load_states(tmp_path / "train"), [],
                            {"a": _text_digest("alpha"), "b": _text_digest("beta")})
    got = states.for_sources({"b": "beta"})
    assert list(got) == ["b"] and torch.equal(got["b"].float(), torch.zeros(1, 3))
    with pytest.raises(ConfigError, match=r"identity\.json: states computed for other texts of 1 training sources \(e\.g\. 'a'"):
        states.for_sources({"a": "alpha!", "b": "beta"})
    with pytest.raises(ConfigError, match=r"identity\.json: no states for 1 of the 2 training sources"):
        states.for_sources({"a": "alpha", "c": "gamma"})


@pytest.mark.parametrize("model", ["xqg", "translator"])
def test_only_the_sources_that_the_draws_read_are_encoded(workspace, model):
    """A run capped at one batch of two examples reads at most two sources: the states hold those of the draws
    (`seed` and `scaling.seeds`) and no others; a training seed outside them is refused in one line."""
    stage, group = STAGE[model]
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params[group]["warm"].update(max_steps=1, batch_size=2, check_every=0)
    params["seed"], params["scaling"]["seeds"] = 3, [4]
    (workspace / "capped.yaml").write_text(yaml.safe_dump(params))
    states = f"capped/{model}"
    run_script("training_states", "--params", "capped.yaml", "--model", model, "--out", states, cwd=workspace)
    full = json.loads((workspace / "states" / model / "identity.json").read_text())["sources"]
    capped = json.loads((workspace / states / "identity.json").read_text())["sources"]
    assert 1 <= len(capped) <= 4 < len(full)  # two draws, one batch of two examples each
    for seed in (3, 4):  # the draws' own seeds: read from the states
        run_script(stage, "--params", "capped.yaml", "--seed", str(seed), "--out", f"{model}-capped-{seed}",
                   "--metrics", f"m/capped-{seed}.json", "--curve", f"curves/capped-{seed}.csv", "--states", states,
                   cwd=workspace)
    # another seed's batch reads sources no draw read (seed 5 does, on these articles; the schedule is seeded)
    proc = run_script(stage, "--params", "capped.yaml", "--seed", "5", "--out", f"{model}-capped-5",
                      "--metrics", "m/capped-5.json", "--curve", "curves/capped-5.csv", "--states", states,
                      cwd=workspace, ok=False)
    line = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and not (workspace / f"{model}-capped-5").exists()
    assert f"{states}/identity.json: no states for" in line
