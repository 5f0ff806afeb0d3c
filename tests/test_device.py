"""Device selection, and (on a machine with a GPU) CPU/GPU agreement of encoding, training and decoding."""
import os

import numpy as np
import pytest
import torch

from xaug.device import resolve_device
from xaug.encoding import DenseEncoder, EncoderSettings
from xaug.errors import ConfigError
from xaug.decoding import SamplingSettings
from xaug.models import load_backbone
from xaug.params import Params

GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def torch_determinism(monkeypatch):
    """Starts the test with torch's default kernels and no cuBLAS workspace variable; restores both after."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")  # recorded, so the variable's own state comes back afterwards
    mode = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(mode[0], warn_only=mode[1])
    torch.backends.cudnn.benchmark = mode[2]


def deterministic_mode():
    """(deterministic algorithms on, warn only, the cuBLAS workspace variable)."""
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            os.environ.get("CUBLAS_WORKSPACE_CONFIG"))


def test_auto_picks_the_cpu_when_torch_sees_no_gpu(monkeypatch, torch_determinism):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("auto", None, "", "cpu"):
        assert resolve_device(name) == torch.device("cpu")
    assert Params({}).device() == Params({"device": "auto"}).device() == torch.device("cpu")
    assert deterministic_mode() == (False, False, None)  # the CPU's kernels are left as they are


@pytest.mark.parametrize("name,expected", [("auto", "cuda"), ("cuda", "cuda"), ("cuda:1", "cuda:1")])
def test_a_gpu_is_resolved_with_deterministic_kernels(monkeypatch, torch_determinism, name, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device(name) == torch.device(expected) == Params({"device": name}).device()
    # seeded runs reproduce on a GPU too: deterministic kernels (a warning where torch has none)
    assert deterministic_mode() == (True, True, ":4096:8") and torch.backends.cudnn.benchmark is False
    assert resolve_device("cpu") == torch.device("cpu")


def test_unusable_devices_are_one_line_errors(monkeypatch):
    def message(name):
        with pytest.raises(ConfigError) as error:
            resolve_device(name)
        assert "\n" not in str(error.value)
        return str(error.value)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert message("cuda") == (f"device: 'cuda' requested but torch {torch.__version__} sees no CUDA GPU here; "
                               "use auto or cpu")
    for bad in ("gpu", "mps", "cuda:x", "cpu cuda"):
        assert message(bad) == f"device: expected auto, cpu, cuda or cuda:N, got {bad!r}"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert message("cuda:3") == "device: 'cuda:3' requested but only 1 GPU(s) are visible"


def test_models_report_and_follow_their_device(tiny_warm):  # noqa: F811
    gen, passages, _ = tiny_warm
    encoder = DenseEncoder(gen.encoder, gen.tokenizer, EncoderSettings())
    assert gen.to("cpu") is gen and encoder.to(torch.device("cpu")) is encoder
    assert gen.device == encoder.device == torch.device("cpu")
    assert gen.decoder.config._attn_implementation == "eager"  # the faster kernel for CPU decoding
    vectors = encoder.embed(passages[:2], "passage")  # batches move to the model's device
    assert vectors.device == encoder.device and vectors.shape == (2, encoder.dim)
    assert all(s.device.type == "cpu" for s in gen.encode_passages(passages[:2]))
    modules = (gen.encoder, gen.decoder, gen.copy_head)
    gen.to("meta")  # a device without data: every module follows, and the generator and encoder report it
    assert gen.device == encoder.device == torch.device("meta")
    assert {p.device for m in modules if m is not None for p in m.parameters()} == {torch.device("meta")}


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
