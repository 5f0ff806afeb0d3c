"""Device selection, and (on a machine with a GPU) CPU/GPU agreement of encoding, training and decoding."""
import os

import numpy as np
import pytest
import torch

from xaug.device import resolve_device
from xaug.encoding import DenseEncoder, EncoderSettings
from xaug.errors import ConfigError
from xaug.generation import SamplingSettings
from xaug.models import load_backbone
from xaug.params import Params

GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_picks_the_gpu_only_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") == Params({}).device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    set_up = []
    monkeypatch.setattr("xaug.device.deterministic_cuda", lambda: set_up.append(True))
    assert resolve_device("auto") == torch.device("cuda") == Params({"device": "auto"}).device()
    assert set_up == [True, True]  # a GPU gets deterministic kernels (seeded runs reproduce there too)
    assert resolve_device("cpu") == torch.device("cpu")


def test_deterministic_cuda_settings(monkeypatch):
    from xaug.device import deterministic_cuda

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    calls = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda mode, warn_only: calls.append((mode, warn_only)))
    deterministic_cuda()
    assert calls == [(True, True)] and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_unusable_devices_are_one_line_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="device: 'cuda' requested but torch .* sees no CUDA GPU"):
        resolve_device("cuda")
    for bad in ("gpu", "mps", "cuda:x"):
        with pytest.raises(ConfigError, match="device: expected auto, cpu, cuda or cuda:N"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="only 1 GPU"):
        resolve_device("cuda:3")


def test_models_report_and_follow_their_device(tiny_warm):  # noqa: F811
    gen, passages, _ = tiny_warm
    assert gen.to("cpu") is gen and gen.device == torch.device("cpu")
    assert gen.decoder.config._attn_implementation == "eager"  # the faster kernel for CPU decoding
    encoder = DenseEncoder(gen.encoder, gen.tokenizer, EncoderSettings())
    assert encoder.to("cpu") is encoder and encoder.device == torch.device("cpu")


@GPU
def test_gpu_encoding_and_decoding_match_the_cpu(tiny_warm):  # noqa: F811
    gen, passages, _ = tiny_warm
    encoder = DenseEncoder(gen.encoder, gen.tokenizer, EncoderSettings())
    cpu_vectors, _ = encoder.encode(passages, "passage", progress=False)
    cpu_states = gen.encode_passages(passages[:4])
    greedy = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=8)
    sources = gen.copy_sources(passages[:4])
    cpu_ids = gen.decode_ids(cpu_states, "de", greedy, 1, sources=sources)
    gen.to("cuda")
    assert gen.device.type == "cuda" and encoder.device.type == "cuda"
    assert gen.decoder.config._attn_implementation == "sdpa"
    gpu_vectors, _ = encoder.encode(passages, "passage", progress=False)
    np.testing.assert_allclose(gpu_vectors, cpu_vectors, atol=1e-3)
    gpu_states = gen.encode_passages(passages[:4])
    assert all(s.device.type == "cpu" for s in gpu_states)  # states stay on the CPU, batches move
    assert gen.decode_ids(gpu_states, "de", greedy, 1, sources=sources) == cpu_ids
    sampled, tokens = gen.generate([{"text": t} for t in passages[:3]], "de", SamplingSettings(n_queries=2, seed=1))
    assert tokens > 0 and all(len(q) == 2 for q in sampled)
    target = gen.encode_targets(["a question"], ["de"])
    loss = gen.loss(gpu_states[:1], target, sources[:1])
    loss.backward()
    assert loss.device.type == "cuda" and torch.isfinite(loss)


@GPU
def test_gpu_backbone_training_step(tmp_path):
    model, tokenizer, _ = load_backbone("tiny", tiny_config={"vocab_size": 200, "hidden_size": 32,
                                                             "num_hidden_layers": 1, "num_attention_heads": 2,
                                                             "intermediate_size": 64,
                                                             "max_position_embeddings": 64},
                                        texts=["some text to learn pieces from"] * 20)
    encoder = DenseEncoder(model, tokenizer, EncoderSettings()).to("cuda")
    q = encoder.embed(["a query"], "query")
    assert q.device.type == "cuda" and q.requires_grad
