"""The stage harness and the settings path: params read through one recording object, settings built by
one from_params that names the full param path, outputs replaced as a whole, one-line errors."""
import ast
import errno
import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from conftest import REPO, run_script
from xaug import formats
from xaug import params as params_module
from xaug.cli import run_stage
from xaug.device import use_bf16
from xaug.encoding import EncodeSettings
from xaug.errors import ConfigError
from xaug.formats import (flat_items, items_writer, read_embeddings, read_item_sources, read_items, write_embeddings,
                          write_items, write_texts)
from xaug.io import atomic_dir, atomic_path, gc_paused, remove_stale
from xaug.methods import fusion_settings
from xaug.params import Params, field_names, from_params


@dataclass
class Demo:
    size: int = 1
    name: str = "x"

    def __post_init__(self):
        if self.size <= 0:
            raise ConfigError(f"size: expected a positive integer, got {self.size!r}")


def test_params_record_leaf_reads_and_whole_groups():
    params_module.READS.clear()
    p = Params({"xqg": {"n_queries": 3, "warm": {"lr": 1.0}}, "seed": 1, "encode": {"batch_size": 2}})
    assert p.get_path("xqg.warm.lr") == 1.0 and p["seed"] == 1 and p["xqg"].get("absent", 7) == 7
    dict(p["encode"])  # reading a whole group
    assert params_module.READS == {"xqg.warm.lr", "seed", "xqg.absent", "encode", "encode.batch_size"}


def test_from_params_rejects_unknown_keys_naming_the_full_path():
    group = Params({"xqg": {"size": 2, "other": 1, "sise": 3}})["xqg"]
    with pytest.raises(ConfigError, match=r"^xqg\.sise: unknown setting"):
        from_params(Demo, group, others=("other",))
    assert from_params(Demo, Params({"g": {"size": 2, "threads": 2}})["g"]).size == 2  # threads: the harness's


def test_from_params_prefixes_the_group_to_field_errors():
    with pytest.raises(ConfigError, match=r"^encode\.batch_size: expected a positive integer"):
        from_params(EncodeSettings, Params({"encode": {"batch_size": 0}})["encode"])
    with pytest.raises(ConfigError, match=r"^xqg\.warm\.size: expected a positive"):
        from_params(Demo, Params({"xqg": {"warm": {"size": 0}}})["xqg"]["warm"])


def test_from_params_only_reads_the_named_fields():
    params_module.READS.clear()
    settings = from_params(Demo, Params({"g": {"size": 2, "name": "y"}})["g"], only=("size",))
    assert (settings.size, settings.name) == (2, "x") and params_module.READS == {"g.size"}
    assert field_names(Demo) == {"size", "name"}


def test_n_queries_used_must_be_a_number_or_auto():
    p = Params({"xqg": {"n_queries": 3}, "augment": {"xqg": {"alpha": 0.5, "weight": "fixed", "renormalize": True,
                                                             "n_queries_used": "five"}}})
    with pytest.raises(ConfigError, match=r"^augment\.xqg\.n_queries_used: expected a positive integer, got 'five'"):
        fusion_settings(p, "xqg")


def test_bf16_auto_is_resolved_per_device_and_bad_values_named():
    assert use_bf16(True, torch.device("cpu")) is True and use_bf16(False, torch.device("cpu")) is False
    assert use_bf16("auto", torch.device("cpu")) in (True, False)
    with pytest.raises(ConfigError, match=r"^encode\.bf16: expected true, false or auto"):
        use_bf16("yes", torch.device("cpu"), "encode.bf16")


def test_atomic_dir_replaces_a_folder_as_a_whole(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "a.txt").write_text("old a")
    (out / "b.txt").write_text("old b")
    with pytest.raises(OSError):
        with atomic_dir(out) as tmp:
            (tmp / "a.txt").write_text("new a")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "b.txt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left
    assert (out / "a.txt").read_text() == "old a" and (out / "b.txt").read_text() == "old b"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("new a")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"] and (out / "a.txt").read_text() == "new a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def _writer(out, hold: str, signame: str) -> str:
    """A process that writes ``out`` atomically under the stage harness and is stopped mid-write."""
    return (f"import os, signal, time; from pathlib import Path; from xaug.cli import run_stage; "
            f"from xaug.io import atomic_dir, atomic_path\n"
            f"def main():\n"
            f"    with atomic_dir({str(out)!r}) as tmp, atomic_path({str(out) + '.json'!r}) as f:\n"
            f"        (tmp / 'a.txt').write_text('new'); f.write_text('new'); Path({hold!r}).write_text('x')\n"
            f"        os.kill(os.getpid(), signal.{signame}); time.sleep(30)\n"
            f"run_stage(main)\n")


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGKILL"])
def test_a_stopped_stage_leaves_its_previous_outputs_and_no_temporary_files(tmp_path, signame):
    out = tmp_path / "model"
    out.mkdir()
    (out / "a.txt").write_text("old")
    (tmp_path / "model.json").write_text("old")
    hold = tmp_path / "held"
    done = subprocess.run([sys.executable, "-c", _writer(out, str(hold), signame)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert hold.exists() and done.returncode == (143 if signame == "SIGTERM" else -9), done.stderr
    if signame == "SIGTERM":  # unwound like Ctrl-C: the temporary outputs are gone, one line says so
        assert done.stderr.strip().splitlines()[-1] == "error: stopped by SIGTERM (no output was replaced)"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert bool(left) == (signame == "SIGKILL")  # killed outright, nothing could run: the next writer sweeps
    with atomic_path(tmp_path / "other.json") as f:
        f.write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held", "model", "model.json", "other.json"]
    assert (out / "a.txt").read_text() == "old" and (tmp_path / "model.json").read_text() == "old"


def test_an_output_moved_aside_by_a_killed_writer_is_put_back(tmp_path):
    out = tmp_path / "model"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    aside = tmp_path / f".model.old-{socket.gethostname()}-{int(dead.stdout)}"
    aside.mkdir()
    (aside / "a.txt").write_text("old")
    assert remove_stale(tmp_path) == [aside] and (out / "a.txt").read_text() == "old"


def test_files_that_belong_together_are_replaced_together(tmp_path, monkeypatch):
    write_embeddings(tmp_path / "e", np.ones((2, 3), dtype=np.float32), ["a", "b"])

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:  # the vectors are written, then the disk is full for the ids
        patch.setattr(formats, "_write_ids", full_disk)
        with pytest.raises(OSError):
            write_embeddings(tmp_path / "e", np.zeros((3, 3), dtype=np.float32), ["a", "b", "c"])
    vectors, ids = read_embeddings(tmp_path / "e")
    assert ids == ["a", "b"] and vectors.sum() == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.ids.txt", "e.npy"]
    write_embeddings(tmp_path / "g", np.zeros((3, 3), dtype=np.float32), ["a", "b", "c"])
    (tmp_path / "g.ids.txt").write_text("a\n")
    with pytest.raises(ConfigError, match="1 ids for 3 vectors"):
        read_embeddings(tmp_path / "g")


def test_items_round_trip(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    write_items(tmp_path / "x", vectors, [1, 0, 3], sources=["q1", "q2", "q3", "q4"])
    items, counts = read_items(tmp_path / "x")
    assert items.shape == (3, 3, 3) and counts.tolist() == [1, 0, 3] and not items[1].any()
    flat, owner = flat_items(items, counts)
    assert np.array_equal(flat, vectors.astype(np.float16)) and owner.tolist() == [0, 2, 2, 2]
    assert read_item_sources(tmp_path / "x").tolist() == [["q1", "", ""], ["", "", ""], ["q2", "q3", "q4"]]
    # written as they come, in any order (the chunks of a length-sorted encoder), into a memory-mapped file
    with items_writer(tmp_path / "y", [1, 0, 3], 3) as writer:
        writer.put([3, 0], vectors[[3, 0]])
        writer.put([2, 1], vectors[[2, 1]])
    assert np.array_equal(read_items(tmp_path / "y")[0], items) and read_item_sources(tmp_path / "y") is None
    assert isinstance(read_items(tmp_path / "y")[0], np.memmap)
    write_items(tmp_path / "empty", np.zeros((0, 3), dtype=np.float32), [0, 0])
    assert read_items(tmp_path / "empty")[0].shape == (2, 0, 3)
    with pytest.raises(ConfigError, match="nothing: generated items not found"):
        read_items(tmp_path / "nothing")
    # embeddings written memory-mapped are the bytes np.save writes
    write_embeddings(tmp_path / "e", vectors, ["a", "b", "c", "d"])
    with open(tmp_path / "saved.npy", "wb") as fh:
        np.save(fh, vectors)
    assert (tmp_path / "e.npy").read_bytes() == (tmp_path / "saved.npy").read_bytes()
    write_texts(tmp_path, "de", [{"id": "p1", "queries": ["q"]}], {"generated_tokens": 1})
    assert json.loads((tmp_path / "de.stats.json").read_text()) == {"generated_tokens": 1}


def test_encoder_states_are_sharded_and_read_lazily(tmp_path):
    import pickle

    rng = torch.Generator().manual_seed(0)
    states = {f"p{i}": torch.randn(3 + i, 4, generator=rng).to(torch.float16) for i in range(7)}
    # a shard closes once it holds 48 bytes: p0 + p1 (24 + 32), p2 + p3 (40 + 48), p4, p5, p6 (56 and more)
    formats.save_states(tmp_path / "s", list(states), list(states.values()), shard_bytes=48)
    shards = sorted(p.name for p in (tmp_path / "s").glob("shard-*.safetensors"))
    assert len(shards) == 5 and (tmp_path / "s" / "index.json").is_file()
    read = formats.load_states(tmp_path / "s")
    assert list(read) == list(states) and len(read) == 7
    for key in ("p6", "p0", "p3", "p6", "p1"):
        assert torch.equal(read[key], states[key])
    assert len(read._open) <= read.OPEN_SHARDS
    again = pickle.loads(pickle.dumps(read))  # a job's states travel as their folder
    assert torch.equal(again["p5"], states["p5"]) and list(again._open) == [3]  # only p5's shard opened
    # one shard when they fit; a failed write leaves the previous folder whole
    formats.save_states(tmp_path / "one", list(states), list(states.values()))
    assert [p.name for p in (tmp_path / "one").glob("shard-*")] == ["shard-00000.safetensors"]
    with pytest.raises(RuntimeError):
        with formats.states_writer(tmp_path / "one") as writer:
            writer.put("x", states["p0"])
            raise RuntimeError("killed")
    assert list(formats.load_states(tmp_path / "one")) == list(states)
    formats.save_states(tmp_path / "none", [], [])
    assert len(formats.load_states(tmp_path / "none")) == 0
    with pytest.raises(ConfigError, match="no encoder states index"):
        formats.load_states(tmp_path / "missing")


def test_a_full_disk_is_a_one_line_error(capsys):
    def main():
        raise OSError(errno.ENOSPC, "No space left on device", "data/embeddings/passages.npy")

    with pytest.raises(SystemExit) as exit_info:
        run_stage(main)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: data/embeddings/passages.npy: No space left on device (no output was replaced)"]


def test_every_stage_script_has_help():
    scripts = sorted((REPO / "stages").glob("*.py"))
    assert len(scripts) > 10
    with ThreadPoolExecutor(os.cpu_count()) as pool:  # up to 2.5 s each (the torch and transformers imports)
        procs = pool.map(lambda script: subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                                                       text=True, timeout=120), scripts)
    for script, proc in zip(scripts, procs):
        first_line = ast.get_docstring(ast.parse(script.read_text())).splitlines()[0]
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: {script.name}"), (script.name, proc.stderr)
        assert first_line in proc.stdout.splitlines(), (script.name, first_line)


def test_a_missing_input_stops_a_stage_with_one_line(tmp_path):
    proc = run_script("index", "--params", str(REPO / "params.yaml"), "--embeddings", str(tmp_path / "none"),
                      "--out", str(tmp_path / "index.faiss"), cwd=tmp_path, ok=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {tmp_path / 'none'}.npy: embeddings not found"]
    assert sorted(tmp_path.iterdir()) == []


def test_an_unknown_setting_stops_a_stage_with_its_full_path(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("device: cpu\nencode: {batch_size: 8, max_tokens: 0, bf16: false, batchsize: 4}\n")
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "encode.py"), "--params", str(params),
                           "--model", str(tmp_path / "none"), "--data", str(tmp_path), "--out", str(tmp_path / "e")],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: encode.batchsize: unknown setting")
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("text,message", [
    ("scaling: {resample: 5}\n", "error: scaling.resample: unknown setting"),
    ("n_language: 2\n", "error: n_language: unknown parameter in"),
    ("languages: [de, es, de]\n", "error: languages: duplicate language codes in ['de', 'es', 'de']"),
])
def test_a_misspelt_parameter_stops_any_stage(tmp_path, text, message):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "index.py"), "--params", str(params)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(message), proc.stderr


def test_gc_paused_turns_the_collector_off_for_its_block_and_restores_it():
    """On within, off inside, back on after, also when the block raises; a collector already off stays off."""
    import gc

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with gc_paused():
            raise RuntimeError("stage failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
