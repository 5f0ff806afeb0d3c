"""benchmarks/paper_models.py: the paper's architectures (config values, sizes on the meta device) and its
timing path on tiny models of the same classes, down to a rates JSON that xaug.cost reads."""
import json
import math
import sys

import pytest
import torch

from conftest import REPO
from xaug.cost import CostSettings, estimate, pipeline_statistics, read_rates

sys.path.insert(0, str(REPO / "benchmarks"))
import paper_models as pm  # noqa: E402

TINY_MT5 = {"vocab_size": 500, "d_model": 32, "d_ff": 64, "d_kv": 8, "num_layers": 1, "num_decoder_layers": 1,
            "num_heads": 2}
TINY_NLLB = {"vocab_size": 500, "d_model": 32, "encoder_layers": 1, "decoder_layers": 1, "encoder_attention_heads": 2,
             "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64}


def test_the_paper_architectures():
    mt5, nllb = pm.mt5_config(), pm.nllb_config()
    assert (mt5.d_model, mt5.d_ff, mt5.num_layers, mt5.num_decoder_layers, mt5.num_heads, mt5.vocab_size) == \
        (768, 2048, 12, 12, 12, 250112)
    assert (mt5.decoder_start_token_id, mt5.pad_token_id, mt5.eos_token_id, mt5.is_gated_act) == (0, 0, 1, True)
    assert (nllb.d_model, nllb.encoder_layers, nllb.decoder_layers, nllb.encoder_ffn_dim, nllb.vocab_size) == \
        (1024, 12, 12, 4096, 256206)
    assert (nllb.decoder_start_token_id, nllb.pad_token_id, nllb.eos_token_id, nllb.scale_embedding) == (2, 1, 2, True)
    meta = torch.device("meta")  # shapes only: no memory, no time
    assert round(pm.parameters(pm.build_model(mt5, meta)) / 1e6) == 582  # mT5-base, its LM head untied
    assert round(pm.parameters(pm.build_model(nllb, meta)) / 1e6) == 615  # NLLB-200-distilled-600M


def test_lengths_and_batches():
    assert pm.passage_words("words:100", 3) == [100, 100, 100]
    assert pm.source_lengths([100, 1000, 0], cap=512) == [130, 512, 1]
    assert pm.length_sorted_batches([3, 9, 5, 9], 2) == [[1, 3], [2, 0]]
    src = pm.random_sources([4, 2], vocab_size=50, reserved=3, eos=1)
    assert [len(s) for s in src] == [4, 2] and all(s[-1] == 1 and (s[:-1] >= 3).all() for s in src)


def test_tiny_models_give_rates_that_the_cost_model_reads(tmp_path, mini_zip):
    out = tmp_path / "rates.json"
    args = pm.parse_args(["--data", str(mini_zip), "--passages", "2", "--naive-passages", "2", "--batch-size", "2",
                          "--n-queries", "2", "--max-new-tokens", "4", "--device", "cpu", "--out", str(out)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: no thread hand-offs (and no contention on a shared machine)
    try:
        result = pm.run(args, {"xqg": pm.mt5_config(**TINY_MT5), "translate": pm.nllb_config(**TINY_NLLB)})
    finally:
        torch.set_num_threads(threads)
    data = json.loads(out.read_text())
    assert data["device"] and data["passages"] == 2 and data["tokens_per_word"] == 1.3
    xqg, tr = data["xqg"], data["translate"]
    # fixed lengths: 2 passages x 2 queries x 4 tokens, batched and naive alike
    assert (xqg["queries"], xqg["generated_tokens"], xqg["tokens_per_query"]) == (4, 16, 4)
    assert (xqg["naive"]["queries"], xqg["naive"]["generated_tokens"]) == (4, 16)
    targets = [math.ceil(1.2 * n) for n in pm.source_lengths(pm.passage_words(str(mini_zip), 2), 512)]
    assert tr["translated_tokens"] == tr["naive"]["translated_tokens"] == sum(targets)
    assert tr["decoded_tokens"] == 2 * max(targets) and tr["translated_tokens_per_source_word"] == pytest.approx(1.56)
    assert xqg["speed_up"] > 0 and tr["speed_up"] > 0 and xqg["parameters"] > 0
    assert result["xqg"]["queries_per_s"] == xqg["queries_per_s"]

    rates = read_rates(out)
    assert rates["xqg"]["generated_tokens_per_s"] > 0 and rates["translate"]["translated_tokens_per_s"] > 0
    assert rates["xqg"]["device"] == rates["translate"]["device"] == data["device"]
    stats = pipeline_statistics([{"id": "a", "text": "w " * 100}],
                                [{"seconds": 1.0, "generated_tokens": 10, "queries": 1}],
                                [{"seconds": 1.0, "generated_tokens": 10, "source_words": 10}])
    report = estimate(CostSettings(passages=3600, languages=1, n_queries=5), stats, rates)
    row = report["by_k"][0]  # the benchmark's own lengths: the token rate and the query rate agree
    assert row["xqg_hours"] == pytest.approx(row["xqg_hours_from_queries_per_s"])
    assert report["inputs"]["tokens_per_query"] == 4
    assert row["translate_hours"] == pytest.approx(3600 * 100 * 1.56 / tr["translated_tokens_per_s"] / 3600)
