"""The warm decoder's teacher-forced pass over the real tokens alone (xaug.packed_decoder) computes what
transformers' padded pass computes, dropout included; the trained rows of the tied embedding are its rows."""
import pytest
import torch

from xaug.packed_decoder import Packing, teacher_forced_states
from xaug.warm import WarmGenerator, WarmSettings, build_decoder, outputs_first


def test_packing_lays_out_rows_and_sources_and_back():
    lengths, source = [3, 1, 4, 2], [0, 1, 0, 1]
    packing = Packing(lengths, source)
    x = torch.arange(10.0)[:, None] * torch.ones(1, 2)
    padded = packing.pad(x)
    assert padded.shape == (4, 4, 2) and padded[1, 1:].abs().sum() == 0 and padded[2, 3, 0] == 7
    torch.testing.assert_close(packing.pack(padded), x)
    by_source = packing.pad_by_source(x)  # source 0: rows 0 and 2 side by side (7 slots); source 1: rows 1, 3
    assert by_source.shape == (2, 7, 2)
    assert by_source[0, :, 0].tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert by_source[1, :3, 0].tolist() == [3, 8, 9] and by_source[1, 3:].abs().sum() == 0
    torch.testing.assert_close(packing.pack_by_source(by_source), x)
    assert packing.index(torch.tensor([2, 3]), torch.tensor([1, 0])).tolist() == [5, 8]


@pytest.mark.parametrize("training", [False, True])
def test_the_packed_pass_equals_the_padded_pass(tiny_warm, training):
    """States and every gradient of the packed pass equal transformers' padded pass over the same rows (two
    rows share a source), in training mode with the same hidden-state dropout masks."""
    gen, passages, questions = tiny_warm
    states = gen.encode_passages(passages[:2])
    source = [0, 1, 0]
    targets = gen.encode_targets(questions[:3], ["de", "en", "de"])
    lengths = [len(t) - 1 for t in targets]
    assert len(set(lengths)) > 1  # padding to compare against
    ids = torch.full((3, max(lengths)), gen.pad)
    for i, t in enumerate(targets):
        ids[i, : len(t) - 1] = torch.tensor(t[:-1])
    hidden, mask, _ = gen.pad_states(states)
    bert = gen.decoder.bert
    gen.train(training)
    probe = torch.randn(sum(lengths), hidden.shape[-1])
    results = []
    for packed in (True, False):
        gen.decoder.zero_grad(set_to_none=True)
        torch.manual_seed(7)
        packing = Packing(lengths, source)
        if packed:
            out = teacher_forced_states(bert, ids, packing, hidden, mask)
        else:
            rows = torch.tensor(source)
            out = packing.pack(bert(input_ids=ids, attention_mask=(ids != gen.pad).long(),
                                    encoder_hidden_states=hidden[rows], encoder_attention_mask=mask[rows],
                                    use_cache=False).last_hidden_state)
        (out * probe).sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in gen.decoder.named_parameters()
                                       if p.grad is not None}))
    gen.train(False)
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    assert results[0][1].keys() == results[1][1].keys() and len(results[0][1]) > 20
    for name, grad in results[0][1].items():
        # a key bias shifts every score of a query alike: its true gradient is 0, what is computed is rounding
        atol = 1e-5 if "key.bias" in name else 1e-6
        torch.testing.assert_close(grad, results[1][1][name], rtol=1e-4, atol=atol, msg=name)


def test_training_reads_and_updates_only_the_softmax_and_language_rows(tiny_warm, tmp_path):
    """With a softmax over the targets' pieces, the trained rows are views of the tied table: the lookup reads
    every piece as the table holds it, a step moves those rows and leaves the passage-only rows as they were,
    and the saved model holds the trained rows."""
    gen0, passages, questions = tiny_warm
    kept, outputs = outputs_first(gen0.tokenizer, questions[:5], passages)
    torch.manual_seed(0)
    gen = WarmGenerator(gen0.encoder, gen0.tokenizer, build_decoder(gen0.encoder, kept, ["de", "en"], n_layers=2),
                        kept, ["de", "en"], "", WarmSettings(decoder_layers=2, bf16=False,
                                                             output_vocabulary="targets"), outputs=outputs)
    table = gen.decoder.bert.embeddings.word_embeddings.weight
    assert table is gen.decoder.cls.predictions.decoder.weight and not table.requires_grad
    assert all(p is not table for p in gen.trainable())
    ids = torch.tensor([0, outputs - 1, outputs, len(kept) - 1, gen.lang_id("de"), gen.lang_id("en")])
    torch.testing.assert_close(gen.embed(ids), table[ids])
    before = table.detach().clone()
    optimizer = torch.optim.AdamW(gen.trainable(), lr=1e-2, weight_decay=0.01)
    gen.train(True)
    states, sources = gen.encode_passages(passages[:2]), gen.copy_sources(passages[:2])
    targets = gen.encode_targets(questions[:2], ["de", "en"])
    gen.loss(states, targets, sources).backward()
    optimizer.step()
    gen.train(False)
    moved = (table.detach() != before).any(1)
    assert moved[:outputs].any() and moved[len(kept):].all()
    assert not moved[outputs : len(kept)].any()  # pieces the pointer alone emits: read, never trained
    gen.save(tmp_path / "g")
    again = WarmGenerator.load(tmp_path / "g", gen.encoder, gen.tokenizer)
    torch.testing.assert_close(again.decoder.bert.embeddings.word_embeddings.weight, table.detach())
