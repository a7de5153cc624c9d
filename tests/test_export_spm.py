"""A model folder with a SentencePiece-style ``tokenizer.json`` and no ``tokenizer.model`` (every model transformers
saved from a GGUF file: Gemma 3 270M's after limo's SFT) exported through llama.cpp.

Without the rebuilt ``tokenizer.model`` llama.cpp's converter wrote Gemma 3's vocabulary as a byte-level one, which
transformers refused ("Token `\\n` out of vocabulary") and llama.cpp would have read as other text. The rebuilt model
must tokenize as the folder's tokenizer does (checked here on a small SentencePiece-style BPE, everywhere), and a tiny
Gemma 3 model with such a tokenizer must pass limo's whole check (converter, transformers' read-back, llama-server's
template, token ids, greedy tokens and end of turn) where llama.cpp is installed. Gemma's template writes ``<bos>``
first; llama.cpp renders it without, adding BOS when it tokenizes: the served check compares the two as one stream.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limo.gguf.spm import is_spm_style, merge_ranks, spm_model_bytes, spm_spec, with_spm_model
from tests.test_export_llamacpp import GEMMA_STYLE_TEMPLATE

CORPUS = [
    "Tom has 12 apples and gives away 5. How many are left?",
    "A train leaves at 3 pm and travels 60 miles per hour for 2 hours.",
    "The answer is \\boxed{42}.\n\nLet me check: 40 + 2 = 42.",
    "Sara buys three pens for $1.25 each; what does she pay in all?",
    "Double  spaces,\ttabs and\nnew lines stay as they are.",
] * 8
TEXTS = [
    "Tom gives away 12 apples.",
    "  leading spaces and trailing ones  ",
    "Unseen words: zygote, quixotic, 98765.",
    "Bytes for what the vocabulary lacks: 😀 ünï",
    "line one\n\nline two\tand a tab",
]
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]


def build_spm_style_tokenizer(vocab_size: int = 400):
    """A SentencePiece-style BPE (spaces as ``▁``, byte fallback, Gemma's special tokens) as transformers holds it."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False)
    trained.train_from_iterator([text.replace(" ", "▁") for text in CORPUS], trainer=trainer)
    learned = json.loads(trained.to_str())["model"]
    # SentencePiece's layout: the special pieces, the 256 byte pieces, then the learned ones, all in the BPE's vocab
    pieces = SPECIALS + [f"<0x{i:02X}>" for i in range(256)]
    pieces += [p for p, _ in sorted(learned["vocab"].items(), key=lambda kv: kv[1]) if p not in SPECIALS]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    tok = Tokenizer(models.BPE(vocab, merges, byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(SPECIALS)
    tok.post_processor = processors.TemplateProcessing(  # Gemma's tokenizer adds BOS, as llama.cpp does
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", SPECIALS.index("<bos>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<end_of_turn>", unk_token="<unk>", pad_token="<pad>"
    )


def test_the_rebuilt_model_tokenizes_as_the_folder_s_tokenizer(tmp_path):
    sentencepiece = pytest.importorskip("sentencepiece", reason="installed with llama.cpp's tools (make llamacpp)")

    tokenizer = build_spm_style_tokenizer()
    tokenizer.save_pretrained(tmp_path)
    spec = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    assert is_spm_style(spec) and spm_spec(tmp_path) is not None
    processor = sentencepiece.SentencePieceProcessor(model_proto=spm_model_bytes(spec))
    assert processor.get_piece_size() == len(tokenizer)
    for text in TEXTS:
        assert processor.encode(text) == tokenizer(text, add_special_tokens=False)["input_ids"], text
    assert processor.is_control(tokenizer.convert_tokens_to_ids("<end_of_turn>"))
    assert processor.is_byte(tokenizer.convert_tokens_to_ids("<0x41>"))
    assert processor.is_unknown(tokenizer.convert_tokens_to_ids("<unk>"))
    with with_spm_model(tmp_path) as (view, rebuilt):
        assert rebuilt and (view / "tokenizer.model").is_file() and (view / "tokenizer.json").is_file()
    assert not view.exists() and not (tmp_path / "tokenizer.model").exists()  # the folder itself is untouched


def test_a_byte_level_tokenizer_or_a_folder_with_its_model_is_left_alone(tmp_path):
    from limo.models.tiny import build_tokenizer

    build_tokenizer().save_pretrained(tmp_path / "qwen")  # byte-level BPE (Qwen's): llama.cpp's gpt2 path is right
    assert spm_spec(tmp_path / "qwen") is None
    build_spm_style_tokenizer().save_pretrained(tmp_path / "spm")
    (tmp_path / "spm" / "tokenizer.model").write_bytes(b"the folder's own")
    assert spm_spec(tmp_path / "spm") is None


def test_merge_ranks_keep_the_first_merge_of_each_piece():
    assert merge_ranks(["a b", "ab c", "a bc", ["x", "y"]]) == {"ab": 0, "abc": 1, "xy": 3}


@pytest.fixture(scope="module")
def tiny_gemma3(tmp_path_factory) -> Path:
    """A tiny Gemma 3 text model whose folder has the SentencePiece-style tokenizer and Gemma's template only."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, GenerationConfig

    out = tmp_path_factory.mktemp("gemma") / "model"
    tokenizer = build_spm_style_tokenizer()
    tokenizer.chat_template = GEMMA_STYLE_TEMPLATE
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (("bos", "<bos>"), ("pad", "<pad>"))}
    eos = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        sliding_window=512,  # longer than every prompt, as Gemma 3 270M's 512 is
        max_position_embeddings=2048,
        initializer_range=0.5,  # decided greedy choices: at the default 0.02 every next token is a near-tie
        bos_token_id=ids["bos"],
        eos_token_id=eos,
        pad_token_id=ids["pad"],
    )
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config)
    model.generation_config = GenerationConfig(bos_token_id=ids["bos"], eos_token_id=eos, pad_token_id=ids["pad"])
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    assert not (out / "tokenizer.model").exists()
    return out


def test_a_tiny_gemma3_exports_through_llamacpp_and_passes_every_check(llama_tools, tiny_gemma3, tmp_path):
    from limo.gguf.files import export_model
    from limo.gguf.llamacpp import SPM_REBUILT

    report = export_model(str(tiny_gemma3), tmp_path, "gemma", ("f16",))
    entry = report["files"]["f16"]
    assert entry["written_by"]["tokenizer_model"] == SPM_REBUILT
    assert entry["verification"]["passed"] and entry["served"]["passed"], entry
    assert entry["served"]["template_identical"] and entry["served"]["token_ids_identical"]
    assert entry["served"]["end_of_turn_tokens"] == ["<end_of_turn>"]
    assert entry["served"]["greedy_identical"] == 3  # 32 tokens on each prompt, token for token
