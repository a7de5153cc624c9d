"""limo.export through llama.cpp's own tools: convert -> quantize -> llama-server -> verification, and the Modelfile.

The round trip runs on the tiny qwen2 model in seconds: f16, q8_0 and q4_k_m written by llama.cpp's converter and
quantizer (the tiny tokenizer's pre-tokenizer named by its structure, which llama.cpp's hash table cannot know), read
back by transformers and served by llama-server. The served check is shown to catch a template that llama.cpp renders
differently, replies that part from the source's beyond a near-tie, and a token that does not end a reply. Where
llama.cpp is not installed the export falls back to limo's writer and says so, and ``q4_k_m`` is one error line;
those tests run everywhere. The Modelfile's Go template is checked through its Python mirror against
transformers' rendering, and run by Go's own text/template where ``go`` is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from limo.gguf.files import export_model
from limo.gguf.modelfile import CHATML_TEMPLATE, FAMILIES, GEMMA_TEMPLATE, build_modelfile, family_of, render
from limo.gguf.served import probe_conversations, served_check, stops_at
from limo.gguf.writer import TOLERANCES, load_source, reference_logits

GEMMA_STYLE_TEMPLATE = (  # Gemma 3's instruct template, as its tokenizer_config ships it (system text folded in)
    "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + "
    "'\n\n' -%}{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = \"\" -%}{%- set "
    "loop_messages = messages -%}{%- endif -%}{%- for message in loop_messages -%}{%- if (message['role'] == "
    "'assistant') -%}{%- set role = \"model\" -%}{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}{{ message['content'] | trim "
    "}}{{ '<end_of_turn>\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{'<start_of_turn>model\n'}}{%- endif -%}"
)


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory) -> Path:
    from limo.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def round_trip(llama_tools, tiny_qwen2, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("export")
    return out, export_model(str(tiny_qwen2), out, "tiny", ("f16", "q8_0", "q4_k_m"))


def test_tiny_round_trip_through_llamacpps_converter_quantizer_and_server(round_trip, llama_tools):
    out, report = round_trip
    assert report["converter"] == {
        "converter": "llama.cpp",
        "version": llama_tools.version,
        "root": str(llama_tools.root),
    }
    for qtype, entry in report["files"].items():
        assert entry["verification"]["passed"] and entry["served"]["passed"], (qtype, entry)
        served = entry["served"]
        assert served["template_identical"] and served["token_ids_identical"] and served["stops_at_end_of_turn"]
        assert served["greedy_identical"] + served["greedy_near_ties"] == served["prompts"] == 3
        assert served["greedy_margin"] == TOLERANCES[qtype].greedy_margin
        assert served["end_of_turn_tokens"] == ["<|im_end|>"]
        assert (out / f"tiny.{qtype}.gguf").stat().st_size == entry["bytes"]
    assert report["files"]["f16"]["written_by"]["pre_tokenizer"] == "limo (by structure): qwen2"
    assert report["files"]["q4_k_m"]["written_by"]["quantizer"] == "llama-quantize Q4_K_M"
    assert json.loads((out / "export.json").read_text()) == report
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file or work folder left


def test_q4_k_m_is_written_by_llama_quantize(round_trip):
    from transformers.integrations.gguf.reader import read_gguf_metadata

    out, report = round_trip
    fields, tensors = read_gguf_metadata(str(out / "tiny.q4_k_m.gguf"))
    assert fields["general.file_type"] == 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    assert report["files"]["q4_k_m"]["bytes"] < report["files"]["q8_0"]["bytes"] < report["files"]["f16"]["bytes"]
    assert fields["tokenizer.ggml.pre"] == "qwen2" and "tokenizer.chat_template" in fields


def test_each_file_has_a_modelfile_ollama_can_create_from(round_trip, tiny_qwen2):
    out, report = round_trip
    for qtype, entry in report["files"].items():
        text = Path(entry["modelfile"]["path"]).read_text()
        assert Path(entry["modelfile"]["path"]) == out / f"tiny.{qtype}.Modelfile"
        assert text.splitlines()[0] == f"FROM ./tiny.{qtype}.gguf"
        assert f'TEMPLATE """{CHATML_TEMPLATE}"""' in text and entry["modelfile"]["template"] == "chatml"
        assert 'SYSTEM """You are Qwen, created by Alibaba Cloud. You are a helpful assistant."""' in text
        assert text.rstrip().splitlines()[-1] == 'PARAMETER stop "<|im_end|>"'


def _conversations() -> list[list[dict[str, str]]]:
    return [
        *probe_conversations(),
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Add 2 and 2."},
        ],
    ]


def test_the_chatml_template_renders_as_transformers_does(tiny_qwen2):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2)
    family = family_of(tokenizer)
    assert family is not None and family.name == "chatml"
    system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    for messages in _conversations():
        expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert render(family, messages, system) == expected


def test_a_gemma_template_is_translated_with_its_system_text_in_the_first_user_turn(tiny_qwen2):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2)
    tokenizer.chat_template = GEMMA_STYLE_TEMPLATE
    tokenizer.bos_token = "<|endoftext|>"  # stands in for Gemma's <bos>, which the tokenizer adds itself
    modelfile = build_modelfile("g.q4_k_m.gguf", tokenizer, ["<end_of_turn>", "<eos>"], adds_bos=True)
    assert modelfile.family == "gemma" and modelfile.system is None and "SYSTEM" not in modelfile.text
    assert f'TEMPLATE """{GEMMA_TEMPLATE}"""' in modelfile.text
    assert modelfile.stops == ("<end_of_turn>", "<eos>")
    gemma = next(f for f in FAMILIES if f.name == "gemma")
    rendered = render(gemma, _conversations()[1], None)
    assert (
        rendered
        == f"<start_of_turn>user\n{_conversations()[1][0]['content']}\n\nCompute 12 * 7.<end_of_turn>\n"
        + ("<start_of_turn>model\n")
    )


def test_a_template_of_no_known_family_gets_no_translation(tiny_qwen2):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2)
    tokenizer.chat_template = (
        "{% for m in messages %}### {{ m['role'] }}: {{ m['content'] }}\n{% endfor %}### assistant:"
    )
    modelfile = build_modelfile("x.f16.gguf", tokenizer, ["<|im_end|>"], adds_bos=False)
    assert modelfile.family is None and "TEMPLATE" not in modelfile.text.replace("# TEMPLATE", "")
    assert modelfile.text.splitlines()[0] == "FROM ./x.f16.gguf" and 'PARAMETER stop "<|im_end|>"' in modelfile.text


GO_RENDER = """package main

import (
\t"encoding/json"
\t"os"
\t"text/template"
)

type Message struct{ Role, Content string }

func main() {
\tvar input struct {
\t\tTemplate string
\t\tMessages []Message
\t}
\tjson.NewDecoder(os.Stdin).Decode(&input)
\tt := template.Must(template.New("t").Parse(input.Template))
\tif err := t.Execute(os.Stdout, map[string]any{"Messages": input.Messages}); err != nil {
\t\tpanic(err)
\t}
}
"""


@pytest.mark.skipif(
    shutil.which("go") is None, reason="go is not installed: the Go templates are checked via render()"
)
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_gos_text_template_renders_the_modelfile_template_as_the_mirror_does(family, tmp_path):
    program = tmp_path / "render.go"
    program.write_text(GO_RENDER)
    for messages in _conversations():
        turns = [{"Role": m["role"], "Content": m["content"]} for m in messages]
        payload = json.dumps({"Template": family.template, "Messages": turns})
        done = subprocess.run(["go", "run", str(program)], input=payload, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout == render(family, messages, None)


def test_the_served_check_catches_replies_that_part_beyond_a_near_tie(llama_tools, round_trip, overfit_model_dir):
    """The tiny random model's file served against the overfit model (same tokenizer and template): the overfit
    model is confident where the files' greedy replies leave it, so the difference is no near-tie."""
    out, _ = round_trip
    model, tokenizer = load_source(str(overfit_model_dir))
    reference = reference_logits(model, tokenizer)
    check = served_check(llama_tools, out / "tiny.f16.gguf", model, tokenizer, (reference.texts, reference.ids), 0.25)
    assert check.template_identical and check.token_ids_identical and check.stops_at_end_of_turn
    assert check.greedy_diverged > 0 and not check.passed
    assert "greedy replies differ beyond a near-tie" in check.failure()


def test_the_served_check_catches_a_template_llamacpp_renders_differently(llama_tools, round_trip, tiny_qwen2):
    out, _ = round_trip
    model, tokenizer = load_source(str(tiny_qwen2))
    reference = reference_logits(model, tokenizer)
    tokenizer.chat_template = tokenizer.chat_template.replace("You are", "You were")  # what the file should hold
    check = served_check(llama_tools, out / "tiny.q8_0.gguf", model, tokenizer, (reference.texts, reference.ids), 1.0)
    assert not check.template_identical and not check.passed
    assert check.failure() == "llama.cpp renders the chat template differently from transformers"


def test_a_token_that_does_not_end_a_turn_is_seen_as_such(llama_tools, round_trip, tiny_qwen2):
    from transformers import AutoTokenizer

    from eval.backends.llamacpp_server import LlamaServer, ServerSettings

    out, _ = round_trip
    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2)
    ids = tokenizer("What is", add_special_tokens=False)["input_ids"]
    server = LlamaServer.start(llama_tools, out / "tiny.f16.gguf", ServerSettings(parallel=1, context_per_slot=256))
    try:
        assert stops_at(server, ids, tokenizer.convert_tokens_to_ids("<|im_end|>"))
        assert not stops_at(server, ids, tokenizer.convert_tokens_to_ids("<|im_start|>"))
    finally:
        server.stop()
    assert not server.alive()


def run_export(repo_root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env}
    environ.pop("HYDRA_FULL_ERROR", None)
    command = [sys.executable, "-m", "limo.export", *args]
    return subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600, env=environ)


@pytest.mark.slow
def test_without_llamacpp_limos_writer_runs_and_says_so(repo_root, tiny_qwen2, tmp_path):
    (tmp_path / "empty").mkdir()
    env = {"LIMO_LLAMACPP_DIR": str(tmp_path / "empty")}
    done = run_export(
        repo_root, f"model.path={tiny_qwen2}", f"export.dir={tmp_path / 'out'}", "export.types=[f16]", env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[export] converter: limo's own GGUF writer (llama.cpp is not installed (make llamacpp))" in done.stdout
    assert "[export] f16: not served by llama.cpp (not installed: make llamacpp)" in done.stdout
    report = json.loads((tmp_path / "out" / "export.json").read_text())
    assert report["converter"]["converter"] == "limo" and report["files"]["f16"]["served"] is None
    assert (tmp_path / "out" / "model.f16.Modelfile").is_file()


def test_q4_k_m_without_llamacpp_is_one_line_before_any_work(repo_root, tiny_qwen2, tmp_path):
    (tmp_path / "empty").mkdir()
    env = {"LIMO_LLAMACPP_DIR": str(tmp_path / "empty")}
    done = run_export(
        repo_root, f"model.path={tiny_qwen2}", f"export.dir={tmp_path / 'out'}", "export.types=[q4_k_m]", env=env
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "limo.export: error: export type q4_k_m needs llama.cpp's tools, which are not installed (make llamacpp), "
        "export.types"
    )
    assert not (tmp_path / "out").exists()


def test_a_failed_tool_is_reported_by_its_exception_not_the_progress_bar_it_printed_last():
    """The converter out of disk (2026-11-27): its traceback, then tqdm closing its bar on stderr; the error names
    the exception. A tool that raised nothing is reported by its last line."""
    from limo.gguf.llamacpp import last_line

    stderr = (
        "INFO:hf-to-gguf:Model successfully exported\n"
        "Traceback (most recent call last):\n"
        '  File "convert_hf_to_gguf.py", line 9, in <module>\n'
        "    f.write(data)\n"
        "OSError: [Errno 28] No space left on device\n"
        "Writing:   0%|          | 0.00/536M [00:00<?, ?byte/s]\r"
        "Writing:   0%|          | 0.00/536M [00:01<?, ?byte/s]\n"
    )
    assert last_line(stderr) == "OSError: [Errno 28] No space left on device"
    assert last_line("main: invalid ftype 'Q9'\n\n") == "main: invalid ftype 'Q9'"
    assert last_line("") == "no output"
