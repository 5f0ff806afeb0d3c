"""The paper profile's real Hugging Face tokenizers (mT5/T5's spiece.model, NLLB's and M2M100's
sentencepiece.bpe.model) behind the project's loaders: a tiny sentencepiece model trained here, the real tokenizer
classes built from it, saved with tiny randomly initialised models of the real architectures in hub-like folders.
Broken tokenizer files are one-line ConfigErrors naming the parameter; HF translators may repeat a bigram
and write up to translate.length_ratio times their batch's longest source plus 8 tokens; mT5 reads
xqg.max_source_length (512) tokens, the prompt first."""
import json
import math
import shutil
import sys

import pytest
import sentencepiece as spm  # requirements.txt: without it these tests fail, not skip
import torch
import yaml

from conftest import ARTICLES, MORE_LANGUAGES, REPO, run_script, translate_params, xqg_params
from xaug.decoding import SamplingSettings, TranslateSettings
from xaug.errors import ConfigError
from xaug.generators import load_generator
from xaug.io import read_jsonl
from xaug.languages import LANGUAGES
from xaug.models import load_backbone
from xaug.parallel_text import first_sentences
from xaug.prompts import make_prompt
from xaug.seq2seq import Seq2SeqGenerator, load_seq2seq
from xaug.translators import language_code, load_hf_translator, load_translator


SENTENCES = ["Paris is the capital of France.", "Tea was first drunk in China during the Shang dynasty."]
PASSAGES = [{"title": "Paris", "text": SENTENCES[0]}, {"title": "Tea", "text": SENTENCES[1]}]


def _lines() -> list[str]:
    """A few hundred lines of Latin-script text: the hand-made articles and questions, and the generation prompt."""
    lines = []
    for title, contexts, qas in ARTICLES:
        lines += [contexts["en"], contexts["de"], make_prompt("de", title, contexts["en"])]
        lines += [qs[lang] for _, qs, _ in qas for lang in ("en", "de")]
    for lang in ("es", "tr"):
        for context, questions in MORE_LANGUAGES[lang].values():
            lines += [context, *(q for q, _ in questions.values())]
    return lines * 8


def train_spm(folder, model_type: str, **ids) -> str:
    """A sentencepiece model (200 pieces) trained on ``_lines()``: its path."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(_lines()), encoding="utf-8")
    prefix = folder / model_type
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), vocab_size=200, model_type=model_type,
                                   character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, num_threads=1,
                                   **ids)
    return f"{prefix}.model"


def tiny_m2m100_model(vocab_size: int, tok):
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    torch.manual_seed(0)
    cfg = M2M100Config(vocab_size=vocab_size, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       decoder_start_token_id=tok.eos_token_id)
    return M2M100ForConditionalGeneration(cfg)


def t5_folder(tmp_path, arch: str):
    """A hub-like mT5 (``mt5``: no extra ids) or T5 (``t5``: 8 sentinel ids) folder, as google/mt5-small holds
    it: the model, spiece.model and a tokenizer_config.json, no tokenizer.json (so loading converts spiece.model)."""
    from transformers import MT5Config, MT5ForConditionalGeneration, T5Config, T5ForConditionalGeneration, T5Tokenizer

    model_file = train_spm(tmp_path / "spm", "unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
    source = tmp_path / "spm-only"
    source.mkdir()
    shutil.copy(model_file, source / "spiece.model")
    extra_ids = 0 if arch == "mt5" else 8
    tok = T5Tokenizer.from_pretrained(source, extra_ids=extra_ids)
    config, model = (MT5Config, MT5ForConditionalGeneration) if arch == "mt5" else (T5Config, T5ForConditionalGeneration)
    torch.manual_seed(0)
    cfg = config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=8, num_layers=1, num_decoder_layers=1, num_heads=2,
                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    folder = tmp_path / arch
    model(cfg).save_pretrained(folder)
    shutil.copy(model_file, folder / "spiece.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>", "unk_token": "<unk>",
                                                              "pad_token": "<pad>", "extra_ids": extra_ids}))
    return folder, model_file


def nllb_folder(tmp_path):
    """An NLLB-200 folder: an M2M100 model and NllbTokenizer (sentencepiece BPE converted, the registry's codes)
    saved with save_pretrained (tokenizer.json), plus sentencepiece.bpe.model, as facebook/nllb-200-* hold them."""
    from transformers import NllbTokenizer

    model_file = train_spm(tmp_path / "spm", "bpe", bos_id=0, pad_id=1, eos_id=2, unk_id=3)
    source = tmp_path / "spm-only"
    source.mkdir()
    shutil.copy(model_file, source / "sentencepiece.bpe.model")
    codes = sorted({row.nllb for row in LANGUAGES.values()})
    tok = NllbTokenizer.from_pretrained(source, extra_special_tokens=codes)
    folder = tmp_path / "nllb"
    tiny_m2m100_model(len(tok), tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    shutil.copy(model_file, folder / "sentencepiece.bpe.model")
    return folder, model_file


def m2m100_folder(tmp_path, hub_like: bool = True):
    """An M2M100 folder: the model and M2M100Tokenizer (vocab.json + sentencepiece.bpe.model, fairseq's ids);
    ``hub_like``: its tokenizer_config.json and special_tokens_map.json as facebook/m2m100_418M has them (the
    language tokens special), else as transformers 5's save_pretrained writes them (the language tokens not)."""
    from transformers import M2M100Tokenizer

    model_file = train_spm(tmp_path / "spm", "bpe", bos_id=0, pad_id=1, eos_id=2, unk_id=3)
    sp = spm.SentencePieceProcessor(model_file=model_file)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(sp.get_piece_size()):
        if not (sp.is_control(i) or sp.is_unknown(i)):
            vocab.setdefault(sp.id_to_piece(i), len(vocab))
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tok = M2M100Tokenizer(str(tmp_path / "vocab.json"), model_file)
    # the language tokens follow the vocabulary, then the made-up words (as in facebook/m2m100_418M)
    vocab_size = max(tok.lang_token_to_id.values()) + 1 + tok.num_madeup_words
    folder = tmp_path / "m2m100"
    tiny_m2m100_model(vocab_size, tok).save_pretrained(folder)
    tok.save_pretrained(folder)
    if hub_like:
        special = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "unk_token": "<unk>",
                   "pad_token": "<pad>"}
        (folder / "tokenizer_config.json").write_text(json.dumps({
            **special, "src_lang": None, "tgt_lang": None, "language_codes": "m2m100", "num_madeup_words": 8,
            "model_max_length": 1024, "tokenizer_class": "M2M100Tokenizer"}))
        (folder / "special_tokens_map.json").write_text(json.dumps({
            **special, "additional_special_tokens": list(tok.lang_token_to_id)}))
    return folder, model_file


def emit_only(model, piece: int) -> None:
    """Make an M2M100 (or NLLB) ``model`` write ``piece`` at every step and never stop: its decoder's last layer
    norm gives one constant vector, which a new output layer, untied from the input embeddings (and so saved as
    its own weights), scores for that piece alone."""
    d = model.config.d_model
    head = torch.nn.Linear(d, model.config.vocab_size, bias=False)
    with torch.no_grad():
        model.model.decoder.layer_norm.weight.zero_()
        model.model.decoder.layer_norm.bias.fill_(1.0)
        head.weight.zero_()
        head.weight[piece] = 10.0 / d
    model.config.tie_word_embeddings = False
    model.lm_head = head


FOLDERS = {"mt5": lambda p: t5_folder(p, "mt5"), "t5": lambda p: t5_folder(p, "t5"), "nllb": nllb_folder,
           "m2m100": m2m100_folder, "m2m100-saved": lambda p: m2m100_folder(p, hub_like=False)}


@pytest.mark.parametrize("arch", ["mt5", "t5"])
def test_t5_spiece_model_loads_as_the_query_generator(tmp_path, arch):
    from transformers import T5Tokenizer

    folder, model_file = FOLDERS[arch](tmp_path)
    model, tokenizer = load_seq2seq(str(folder))
    assert isinstance(tokenizer, T5Tokenizer) and len(tokenizer) == model.config.vocab_size
    pieces = spm.SentencePieceProcessor(model_file=model_file).encode(SENTENCES[0], out_type=str)
    assert tokenizer.tokenize(SENTENCES[0]) == pieces  # the conversion keeps sentencepiece's segmentation
    gen = Seq2SeqGenerator(model, tokenizer, max_source_length=64)
    # budgets count what the model reads: the prompt in the target language, the title and the passage
    prompts = [make_prompt("de", p.get("title", ""), p["text"]) for p in PASSAGES]
    assert gen.source_lengths(PASSAGES, "de") == [min(64, len(tokenizer(t)["input_ids"])) for t in prompts]
    assert all(a > b for a, b in zip(gen.source_lengths(PASSAGES, "de"),
                                     [len(tokenizer(p["text"])["input_ids"]) for p in PASSAGES]))
    torch.manual_seed(0)
    sampled, tokens = gen.generate(PASSAGES, "de", SamplingSettings(n_queries=2, top_k=5, max_new_tokens=6))
    assert len(sampled) == 2 and all(len(q) == 2 and all(isinstance(s, str) for s in q) for q in sampled)
    assert tokens > 0 and any(s for q in sampled for s in q)
    greedy = SamplingSettings(n_queries=1, do_sample=False, max_new_tokens=6)
    queries = gen.generate(PASSAGES, "zh", greedy)
    gen.save(tmp_path / "trained")  # what train_xqg writes and generate_queries loads (tokenizer.json from now on)
    assert Seq2SeqGenerator.load(tmp_path / "trained", 64).generate(PASSAGES, "zh", greedy) == queries


@pytest.mark.parametrize("layout", ["nllb", "m2m100", "m2m100-saved"])
def test_hf_translator_loads_real_tokenizers(tmp_path, layout):
    folder, model_file = FOLDERS[layout](tmp_path)
    family = layout.split("-")[0]
    tr = load_hf_translator(str(folder))
    assert tr.family == family
    pieces = spm.SentencePieceProcessor(model_file=model_file).encode(SENTENCES[0], out_type=str)
    assert tr.tokenizer.tokenize(SENTENCES[0]) == pieces
    ids = tr.tokenizer(SENTENCES[0])["input_ids"]  # [source language] pieces </s>
    source = language_code(family, "en")
    assert ids[0] == tr.tokenizer.convert_tokens_to_ids(source if family == "nllb" else f"__{source}__")
    assert ids[-1] == tr.tokenizer.eos_token_id and len(ids) == len(pieces) + 2
    targets = {lang: tr.target_id(lang) for lang in ("de", "zh", "en")}
    assert len(set(targets.values())) == 3 and max(targets.values()) < tr.model.config.vocab_size
    out, tokens = tr.translate(SENTENCES, "de", TranslateSettings(max_new_tokens=6))
    assert len(out) == 2 and all(isinstance(t, str) and not t.startswith("__de__") for t in out) and tokens > 0


@pytest.mark.parametrize("family, spm_file, load, param", [
    ("mt5", "spiece.model", load_seq2seq, "xqg.model"),
    ("mt5", "spiece.model", load_backbone, "xdr.model"),
    ("nllb", "sentencepiece.bpe.model", load_hf_translator, "translate.model"),
    ("m2m100", "sentencepiece.bpe.model", load_hf_translator, "translate.model"),
])
def test_a_corrupt_sentencepiece_model_is_a_one_line_error(tmp_path, family, spm_file, load, param):
    folder, _ = FOLDERS[family](tmp_path)
    (folder / spm_file).write_bytes(b"not a sentencepiece model\n")
    (folder / "tokenizer.json").unlink(missing_ok=True)  # NLLB: the sentencepiece model is then what is read
    with pytest.raises(ConfigError) as info:
        load(str(folder))
    message = str(info.value)
    assert message.startswith(f"{param}: cannot load the tokenizer of {str(folder)!r}: "), message
    assert len(message.splitlines()) == 1


def test_a_corrupt_tokenizer_json_is_a_one_line_error(tmp_path):
    folder, _ = nllb_folder(tmp_path)
    (folder / "tokenizer.json").write_text('{"model": ')
    with pytest.raises(ConfigError, match=r"^translate\.model: cannot load the tokenizer of '.*': Expecting value"):
        load_hf_translator(str(folder))


def test_converting_spiece_without_sentencepiece_names_the_packages(tmp_path, monkeypatch):
    folder, _ = t5_folder(tmp_path, "mt5")
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # an environment without the package
    with pytest.raises(ConfigError, match=r"^xqg\.model: cannot load the tokenizer of '.*': reading its sentencepiece "
                                          r"model needs the sentencepiece and protobuf packages"):
        load_seq2seq(str(folder))


def test_a_broken_model_is_a_one_line_error(tmp_path):
    folder, _ = m2m100_folder(tmp_path)
    (folder / "model.safetensors").write_bytes(b"garbage" * 10)
    with pytest.raises(ConfigError, match=r"^translate\.model: cannot load the model of '.*': "):
        load_hf_translator(str(folder))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "no-such-model"}))
    with pytest.raises(ConfigError, match=r"^translate\.model: cannot load the model of '.*': The checkpoint"):
        load_hf_translator(str(folder))
    (folder / "config.json").write_text("{")
    with pytest.raises(ConfigError, match=r"^translate\.model: cannot load the model of '.*': It looks like the "
                                          r"config file"):
        load_hf_translator(str(folder))


@pytest.mark.parametrize("layout", ["nllb", "m2m100", "m2m100-saved"])
def test_hf_translation_may_repeat_a_bigram(tmp_path, layout):
    """A model that always prefers one piece repeats it: HF translators do not block repeated bigrams (a real
    translation repeats some, "of the ... of the"), and a translation may run to ``translate.length_ratio`` times
    the batch's longest source (plus 8), not to a fixed cap; the forced language token is never part of the text."""
    folder, _ = FOLDERS[layout](tmp_path)
    tr = load_hf_translator(str(folder))
    piece = tr.tokenizer.convert_tokens_to_ids("▁Paris")
    assert piece != tr.tokenizer.unk_token_id
    emit_only(tr.model, piece)
    settings = TranslateSettings(max_new_tokens=6, length_ratio=1.5)  # max_new_tokens: the warm translator's
    longest = max(len(tr.tokenizer(s)["input_ids"]) for s in SENTENCES)
    n = settings.generation_length(longest) - 1  # the forced language token, then the one piece n times
    assert n == math.ceil(1.5 * longest) + 7 > 6
    out, tokens = tr.translate(SENTENCES, "de", settings)
    assert out == [" ".join(["Paris"] * n)] * 2
    assert tokens == 2 * n
    tr.model.generation_config.no_repeat_ngram_size = 2  # a checkpoint's own setting does not block them either
    assert tr.translate(SENTENCES, "de", settings)[0] == out
    with pytest.raises(ConfigError, match=r"^translate\.length_ratio: expected a positive number"):
        TranslateSettings(length_ratio=0)


def _segments_like(folder, model_file) -> bool:
    """Whether the tokenizer a stage saved in ``folder`` segments as the trained sentencepiece model does."""
    from transformers import AutoTokenizer

    pieces = spm.SentencePieceProcessor(model_file=model_file).encode(SENTENCES[0], out_type=str)
    return AutoTokenizer.from_pretrained(folder).tokenize(SENTENCES[0]) == pieces


def test_stage_scripts_with_a_real_mt5_tokenizer(tmp_path, mini):
    """train_xqg fine-tunes a hub-like mT5 folder (spiece.model only: its T5Tokenizer converted) and
    generate_queries generates with what it saved, through the stage scripts. The saved generator reads
    xqg.max_source_length tokens of a long passage (params.yaml's 512, mT5's length, and another), the prompt and
    title first and EOS last: the tokens that xqg.max_tokens budgets count."""
    folder, model_file = t5_folder(tmp_path / "hub", "mt5")
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())["xqg"]["max_source_length"]
    assert shipped == 512
    long = {"title": "Tea", "text": " ".join(SENTENCES * 100)}
    for length, out in ((300, "xqg300"), (shipped, "xqg")):  # the last one's params.yaml stays for generate_queries
        common = ["--params", str(xqg_params(tmp_path, str(folder), max_source_length=length))]
        run_script("train_xqg", *common, "--data", "mlqa", "--out", out, "--metrics", f"m/{out}.json", cwd=tmp_path)
        gen = load_generator(tmp_path / out)
        head = gen.tokenizer(make_prompt("de", "Tea", SENTENCES[0]), add_special_tokens=False)["input_ids"]
        ids = gen.tokenizer(gen.prompts([long], "de"), truncation=True, max_length=length)["input_ids"][0]
        assert gen.source_lengths([long], "de") == [length] == [len(ids)]
        assert ids[:len(head)] == head and ids[-1] == gen.tokenizer.eos_token_id
    assert json.loads((tmp_path / "m" / "xqg.json").read_text())["model"] == str(folder)
    assert _segments_like(tmp_path / "xqg" / "model", model_file)
    run_script("generate_queries", *common, "--lang", "de", "--model", "xqg", "--data", "mlqa", "--out", "gen",
               "--work", "work", cwd=tmp_path)
    rows = read_jsonl(tmp_path / "gen" / "de.jsonl")
    assert len(rows) == 4 and all(len(r["queries"]) == 2 and all(isinstance(q, str) for q in r["queries"])
                                  for r in rows)
    assert json.loads((tmp_path / "gen" / "de.stats.json").read_text())["generated_tokens"] > 0


@pytest.mark.parametrize("layout", ["nllb", "m2m100"])
def test_stage_scripts_with_real_translator_tokenizers(tmp_path, mini, layout):
    """train_translator takes a hub-like NLLB or M2M100 folder (NllbTokenizer, M2M100Tokenizer) and
    translate_passages translates with it, through the stage scripts: every passage translated, in the target
    language's code, never showing the forced language token."""
    folder, model_file = FOLDERS[layout](tmp_path / "hub")
    common = ["--params", str(translate_params(tmp_path, str(folder)))]
    run_script("train_translator", *common, "--data", "mlqa", "--out", "tr", "--metrics", "m/translation.json",
               cwd=tmp_path)
    run_script("encode_sources", *common, "--kind", "sentences", "--model", "tr", "--data", "mlqa", "--out", "st",
               cwd=tmp_path)
    run_script("translate_passages", *common, "--lang", "de", "--model", "tr", "--data", "mlqa", "--out", "gen",
               "--work", "work", "--states", "st", cwd=tmp_path)
    rows = read_jsonl(tmp_path / "gen" / "de.jsonl")
    assert len(rows) == 4 and all(len(r["texts"]) == 1 for r in rows)
    assert not any("__de__" in t or "deu_Latn" in t for r in rows for t in r["texts"])
    stats = json.loads((tmp_path / "gen" / "de.stats.json").read_text())
    assert stats["passages"] == 4 and stats["generated_tokens"] > 0


def _emit_only_saved(folder, piece_text: str = "▁Paris") -> None:
    """Save again the M2M100 model in ``folder`` as one that writes ``piece_text`` at every step (``emit_only``)."""
    from transformers import AutoTokenizer, M2M100ForConditionalGeneration

    model = M2M100ForConditionalGeneration.from_pretrained(folder)
    emit_only(model, AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids(piece_text))
    model.save_pretrained(folder)


def test_translate_passages_reads_length_ratio(tmp_path, mini):
    """translate.length_ratio reaches translate_passages: a translator that never stops writes, per sentence,
    ``ceil(length_ratio x its batch's longest source) + 7`` pieces after the forced language token, not
    translate.max_new_tokens (6 in these params: the warm translator's cap)."""
    folder, _ = m2m100_folder(tmp_path / "hub")
    _emit_only_saved(folder)
    path = translate_params(tmp_path, str(folder))  # translate.max_sentences: 1, so one sentence per passage
    run_script("train_translator", "--params", str(path), "--data", "mlqa", "--out", "tr", "--metrics", "m/tr.json",
               cwd=tmp_path)
    tr = load_translator(tmp_path / "tr")  # as translate_passages loads it: translate.max_source_length
    sources = {pid: tr.lengths(s)[0] for pid, s in first_sentences(read_jsonl(tmp_path / "mlqa" / "corpus.jsonl"),
                                                                     1).items() if s}
    params = yaml.safe_load(path.read_text())
    assert params["translate"]["max_new_tokens"] == 6
    for ratio in (1e-6, 2.0):
        params["translate"]["length_ratio"] = ratio
        path.write_text(yaml.safe_dump(params))
        run_script("translate_passages", "--params", str(path), "--lang", "de", "--model", "tr", "--data", "mlqa",
                   "--out", f"gen{ratio}", "--work", f"work{ratio}", cwd=tmp_path)
        words = {r["id"]: r["texts"][0].split() for r in read_jsonl(tmp_path / f"gen{ratio}" / "de.jsonl")}
        assert words.keys() == sources.keys() and all(set(w) == {"Paris"} for w in words.values())
        for pid, w in words.items():
            assert math.ceil(ratio * sources[pid]) + 7 <= len(w) <= math.ceil(ratio * max(sources.values())) + 7
        if ratio < 1:
            assert {len(w) for w in words.values()} == {8}
