"""The chunk backends (xaug.backend): Ray actors give the same chunk files and outputs as the local loop.

The Ray tests need `ray` (requirements.txt; without it they fail) and start a 2-CPU Ray instance on this
machine once for the module (about 5 s).
"""
import json
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import REPO, TINY_BERT
from xaug.backend import BackendSettings, open_pool
from xaug.chunks import run_chunked
from xaug.errors import ConfigError

WORDS = ("river city tea moon capital France Basel Cologne North Sea China dynasty Earth orbits days people "
         "million flows first drunk").split()


def test_unknown_backend_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"^xqg\.backend: expected one of local, ray, got 'spark'$"):
        BackendSettings.from_params({"backend": "spark"}, "xqg")
    with pytest.raises(ConfigError, match=r"^translate\.ray_workers: expected a positive integer"):
        BackendSettings.from_params({"backend": "ray", "ray_workers": 0}, "translate")
    assert BackendSettings.from_params({}, "xqg") == BackendSettings()  # local when absent


class Draw:
    """A job for the tests: ``load()`` gives a per-chunk function seeded by the chunk index."""

    def load(self):
        return self

    def lengths(self, items):
        return [len(it["text"]) for it in items]

    def __call__(self, chunk, index):
        g = torch.Generator().manual_seed(index)
        return [{"id": it["id"], "v": torch.rand(1, generator=g).item()} for it in chunk]


def _chunk_rows(folder):
    # the work folder's chunk log: chunk index -> its rows (the seconds differ between runs)
    return {e["chunk"]: e["rows"] for e in map(json.loads, (folder / "chunks.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def ray_cluster():
    import ray  # requirements.txt: a missing ray fails these tests rather than skipping them

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=30,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}})
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Draw travels with the job
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_ray_backend_resumes_and_equals_the_local_loop(tmp_path, ray_cluster):
    items = [{"id": str(i), "text": "x" * (i % 5)} for i in range(11)]
    local, stats = run_chunked(items, None, tmp_path / "local", 3, Draw(), "t", progress=False)
    assert stats["backend"] == "local" and stats["workers"] == 1 and stats["chunks"] == 4
    ray = BackendSettings(backend="ray", ray_workers=2)
    # half done locally, then resumed on Ray: the chunks already there are reused, the rest computed
    (tmp_path / "mixed").mkdir()
    lines = (tmp_path / "local" / "chunks.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "mixed" / "chunks.jsonl").write_text(lines[0] + lines[2])
    resumed, stats = run_chunked(items, None, tmp_path / "mixed", 3, Draw(), "t", progress=False, backend=ray)
    assert resumed == local and stats["chunks_reused"] == 2 and stats["backend"] == "ray" and stats["workers"] == 2
    assert _chunk_rows(tmp_path / "mixed") == _chunk_rows(tmp_path / "local")
    with pytest.raises(ConfigError, match="ray needs a job with load"):
        with open_pool(lambda chunk, index: chunk, ray):
            pass


def test_the_local_length_pass_runs_in_blocks_in_order(monkeypatch):
    import xaug.backend as backend

    class Sized(Draw):
        def __init__(self):
            self.calls = []

        def lengths(self, items):
            self.calls.append(len(items))
            return super().lengths(items)

    monkeypatch.setattr(backend, "LENGTH_BLOCK", 3)
    items = [{"id": str(i), "text": "x" * ((7 * i) % 11)} for i in range(14)]
    job = Sized()
    with open_pool(job, BackendSettings()) as pool:
        assert pool.lengths(items) == Draw().lengths(items) and pool.lengths([]) == []
    assert job.calls == [3, 3, 3, 3, 2]  # never the whole list at once


def test_the_ray_length_pass_runs_in_blocks_over_the_actors_in_order(monkeypatch, ray_cluster):
    import xaug.backend as backend

    monkeypatch.setattr(backend, "LENGTH_BLOCK", 3)
    items = [{"id": str(i), "text": "x" * ((7 * i) % 11)} for i in range(14)]
    with open_pool(Draw(), BackendSettings(backend="ray", ray_workers=2)) as pool:
        assert pool.workers == 2 and pool.lengths(items) == Draw().lengths(items)
        assert pool.lengths([]) == []


class DieOnce(Draw):
    """``Draw``, but the worker process computing chunk 1 dies the first time (as a lost node would); every
    chunk a worker starts is appended to ``<marker>.started``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __call__(self, chunk, index):
        import os
        from pathlib import Path

        with open(f"{self.marker}.started", "a") as fh:
            fh.write(f"{index}\n")
        if index == 1 and not Path(self.marker).exists():
            Path(self.marker).touch()
            os._exit(1)
        return super().__call__(chunk, index)


def test_a_killed_ray_worker_costs_its_chunk_only(tmp_path, ray_cluster):
    """A worker killed mid-run is restarted and its chunk run again, and no other chunk: the outputs equal the
    local backend's."""
    items = [{"id": str(i), "text": "x" * (i % 5)} for i in range(11)]
    local, _ = run_chunked(items, None, tmp_path / "local", 3, Draw(), "t", progress=False)
    ray = BackendSettings(backend="ray", ray_workers=2)
    rows, stats = run_chunked(items, None, tmp_path / "ray", 3, DieOnce(tmp_path / "died"), "t", progress=False,
                              backend=ray)
    assert (tmp_path / "died").exists()  # a worker did die
    started = sorted(int(i) for i in (tmp_path / "died.started").read_text().split())
    assert started == [0, 1, 1, 2, 3]  # the lost chunk ran again, no other
    assert rows == local and stats["chunks"] == 4 and stats["chunks_reused"] == 0
    assert _chunk_rows(tmp_path / "ray") == _chunk_rows(tmp_path / "local")


@pytest.fixture
def xqg_setup(tmp_path):
    """A randomly initialised tiny warm generator saved as train_xqg would, a 13-passage corpus, params."""
    from xaug.models import load_backbone
    from xaug.warm import WarmGenerator, WarmSettings, build_decoder, pruned_vocabulary

    rng = torch.Generator().manual_seed(1)
    corpus = [{"id": f"p{i}", "title": f"T{i}",
               "text": " ".join(WORDS[j] for j in torch.randint(len(WORDS), (3 + 4 * (i % 4),), generator=rng))}
              for i in range(12)] + [{"id": "empty", "title": "E", "text": " "}]
    texts = [c["text"] for c in corpus] + ["Where is the river?", "Wo ist der Fluss?"]
    encoder, tokenizer, _ = load_backbone("tiny", tiny_config=TINY_BERT, texts=texts * 3)
    kept = pruned_vocabulary(tokenizer, texts)
    torch.manual_seed(0)
    gen = WarmGenerator(encoder, tokenizer, build_decoder(encoder, kept, ["de", "en"], n_layers=1), kept,
                        ["de", "en"], "", WarmSettings(decoder_layers=1, label_smoothing=0.0, bf16=False))
    model = tmp_path / "xqg"
    gen.save(model)
    encoder.save_pretrained(model / "encoder")
    tokenizer.save_pretrained(model / "encoder")
    (model / "xqg.json").write_text(json.dumps({"kind": "warm", "encoder": "xqg/encoder", "languages": ["de", "en"]}))
    data = tmp_path / "mlqa"
    data.mkdir()
    (data / "corpus.jsonl").write_text("".join(json.dumps(c) + "\n" for c in corpus))
    (data / "stats.json").write_text("{}\n")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["device"] = "cpu"
    params["xqg"].update(n_queries=2, top_k=5, max_new_tokens=8, batch_size=2, chunk_size=2, threads=1,
                         copy_bias=1.0, copy_max_df=0.3)
    return tmp_path, params


def _generate(tmp_path, params, out, **xqg):
    params = {**params, "xqg": {**params["xqg"], **xqg}}
    path = tmp_path / f"params-{out}.yaml"
    path.write_text(yaml.safe_dump(params))
    return subprocess.run([sys.executable, str(REPO / "stages" / "generate_queries.py"), "--params", str(path),
                           "--lang", "de", "--model", "xqg", "--data", "mlqa", "--out", out, "--work", f"work-{out}"],
                          cwd=tmp_path, capture_output=True, text=True)


def test_generate_queries_on_ray_actors_equals_the_local_backend(xqg_setup, ray_cluster):
    """The stage on 2 Ray actors of an existing cluster (xqg.ray_address) writes the local run's bytes."""
    tmp_path, params = xqg_setup
    for out, backend in (("local", {"backend": "local"}),
                         ("ray", {"backend": "ray", "ray_address": ray_cluster, "ray_workers": 2})):
        proc = _generate(tmp_path, params, out, **backend)
        assert proc.returncode == 0, proc.stderr[-3000:]
    local, ray = (tmp_path / "local" / "de.jsonl").read_bytes(), (tmp_path / "ray" / "de.jsonl").read_bytes()
    assert local == ray
    rows = [json.loads(l) for l in local.decode().splitlines()]
    assert len(rows) == 13 and rows[-1]["queries"] == [] and all(len(r["queries"]) == 2 for r in rows[:-1])
    stats = {out: json.loads((tmp_path / out / "de.stats.json").read_text()) for out in ("local", "ray")}
    assert (stats["local"]["backend"], stats["ray"]["backend"], stats["ray"]["workers"]) == ("local", "ray", 2)
    for key in ("chunks", "queries", "generated_tokens", "settings", "device"):
        assert stats["local"][key] == stats["ray"][key], key
    proc = _generate(tmp_path, params, "bad", backend="spark")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == \
        "error: xqg.backend: expected one of local, ray, got 'spark'"


class DyingEncodeJob:
    """An ``EncodeJob`` whose worker process dies the first time it is given chunk 1 (as a lost node would); every
    chunk a worker starts is appended to ``<marker>.started``."""

    def __init__(self, job, marker):
        self.job, self.marker, self.device = job, str(marker), job.device

    def load(self):
        fn = self.job.load()
        marker = self.marker

        class Dies:
            device = fn.device
            lengths = staticmethod(fn.lengths)

            def __call__(self, chunk, index):
                import os
                from pathlib import Path

                with open(f"{marker}.started", "a") as fh:
                    fh.write(f"{index}\n")
                if index == 1 and not Path(marker).exists():
                    Path(marker).touch()
                    os._exit(1)
                return fn(chunk, index)
        return Dies()


@pytest.fixture
def xdr_setup(tmp_path, mini):
    """A tiny xDR saved by train_xdr, the mini prepared archive, generated texts of its passages, params."""
    from conftest import run_script

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["device"] = "cpu"
    params["xdr"].update(model="tiny", tiny=TINY_BERT, query_prefix="", passage_prefix="", epochs=0)
    params["encode"].update(batch_size=2, chunk_size=2, threads=1)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    run_script("train_xdr", "--params", str(path), "--data", "mlqa", "--out", "xdr", "--metrics", "m.json",
               cwd=tmp_path)
    corpus = [json.loads(l) for l in (tmp_path / "mlqa" / "corpus.jsonl").read_text().splitlines()]
    (tmp_path / "gen").mkdir()
    with open(tmp_path / "gen" / "de.jsonl", "w") as fh:
        for n, c in enumerate(corpus):
            fh.write(json.dumps({"id": c["id"], "queries": [f"{w} {c['text'][:20]}" for w in WORDS[: n % 3]]}) + "\n")
    (tmp_path / "gen" / "de.stats.json").write_text('{"seconds": 1.0, "generated_tokens": 5}\n')
    return tmp_path, params


def _encode_stages(tmp_path, params, out, **encode):
    from conftest import run_script

    path = tmp_path / f"params-{out}.yaml"
    path.write_text(yaml.safe_dump({**params, "encode": {**params["encode"], **encode}}))
    run_script("encode", "--params", str(path), "--model", "xdr", "--data", "mlqa", "--out", f"{out}/emb", cwd=tmp_path)
    run_script("encode_generated", "--params", str(path), "--method", "xqg", "--lang", "de", "--model", "xdr",
               "--data", "mlqa", "--dir", "gen", "--out", f"{out}/items", cwd=tmp_path)
    return {p.relative_to(tmp_path / out).as_posix(): p.read_bytes() for p in sorted((tmp_path / out).rglob("*"))
            if p.is_file() and p.name != "stats.json"}


def test_encode_stages_on_ray_actors_write_the_local_bytes(xdr_setup, ray_cluster):
    """encode and encode_items on 2 Ray actors (encode.backend: ray) write the local backend's files."""
    tmp_path, params = xdr_setup
    local = _encode_stages(tmp_path, params, "local")
    ray = _encode_stages(tmp_path, params, "ray", backend="ray", ray_address=ray_cluster, ray_workers=2)
    assert sorted(local) == ["emb/passages.ids.txt", "emb/passages.npy", "emb/queries.ids.txt", "emb/queries.npy",
                             "emb/tune_queries.ids.txt", "emb/tune_queries.npy", "items/de/counts.npy",
                             "items/de/items.npy"]
    assert local == ray
    stats = json.loads((tmp_path / "ray" / "emb" / "stats.json").read_text())
    assert (stats["backend"], stats["workers"]) == ("ray", 2) and stats["passages"]["count"] > 2  # several chunks


def test_a_killed_encode_worker_costs_its_chunk_only(xdr_setup, ray_cluster):
    """An encode worker killed mid-run is restarted and its chunk encoded again, and no other chunk: the vectors
    equal the local ones."""
    import numpy as np

    from xaug.encode_jobs import EncodeJob
    from xaug.encoding import EncodeSettings, encode_with

    tmp_path, _ = xdr_setup
    texts = [json.loads(l)["text"] for l in (tmp_path / "mlqa" / "corpus.jsonl").read_text().splitlines()] * 2
    settings = EncodeSettings(batch_size=2, chunk_size=2)
    job = EncodeJob(model=str(tmp_path / "xdr"), bf16=False, device="cpu", threads=1)
    outputs = {}
    for name, runner_job, backend in (("local", job, BackendSettings()),
                                      ("ray", DyingEncodeJob(job, tmp_path / "died"),
                                       BackendSettings(backend="ray", ray_workers=2, group="encode"))):
        out = np.zeros((len(texts), 32), dtype=np.float32)

        def put(index, vectors, out=out):
            out[index] = vectors
        with open_pool(runner_job, backend) as runner:
            done = encode_with(runner, texts, "passage", settings, put, "t", progress=False)
        outputs[name] = out
    assert (tmp_path / "died").exists()  # a worker did die
    started = sorted(int(i) for i in (tmp_path / "died.started").read_text().split())
    assert started == sorted([1, *range(done["chunks"])])  # the lost chunk ran again, no other
    assert done["chunks"] == (len(texts) + 1) // 2 and np.array_equal(outputs["ray"], outputs["local"])
    assert np.abs(outputs["local"]).sum(1).min() > 0  # every text was encoded
