"""An Ollama ``Modelfile`` beside each exported GGUF, so ``ollama create <name> -f <file>`` works without edits.

A Modelfile holds ``FROM ./<file>.gguf``, a ``TEMPLATE`` in Ollama's Go template language, a ``SYSTEM`` line where
the chat template inserts a default system turn (Ollama adds it when a request has none, as the template would),
and a ``PARAMETER stop`` for each end-of-turn token. Ollama does not run the Jinja template a GGUF carries, so the
template is translated for the families limo ships (`FAMILIES`): ChatML (SmolLM2, the Qwen2.5-style tiny models) and
Gemma (system text folded into the first user turn, ``model`` as the assistant's role, BOS added by the tokenizer
rather than written in the text). The family is recognised by rendering a probe conversation through the model's
own template, never by its name.

The translation is checked before it is written: `render` mirrors, in Python, what the Go template produces (each
branch of `CHATML_TEMPLATE` / `GEMMA_TEMPLATE` has its counterpart there), and every probe conversation
(`limo.gguf.served.probe_conversations`) must render exactly as ``tokenizer.apply_chat_template`` does. A template
of another family, or one that renders differently, gets a Modelfile without ``TEMPLATE`` — Ollama then falls back
to its own guess from the file — and says so in a comment and in export.json. No Ollama runs here:
tests/test_export_llamacpp.py checks the Go templates through the mirror and, where ``go`` is installed, runs them
with Go's own ``text/template`` (the engine Ollama's templates run on) and compares its output with the mirror's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from limo.training.template import template_default_system

Messages = Sequence[dict[str, str]]

CHATML_TEMPLATE = """{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "assistant" }}<|im_start|>assistant
{{ .Content }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}
{{- if and $last (ne .Role "assistant") }}<|im_start|>assistant
{{ end }}
{{- end }}"""

GEMMA_TEMPLATE = """{{- $first := index .Messages 0 }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<start_of_turn>user
{{ if and (eq $i 1) (eq $first.Role "system") }}{{ $first.Content }}

{{ end }}{{ .Content }}<end_of_turn>
{{ if $last }}<start_of_turn>model
{{ end }}
{{- else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}{{ if not $last }}<end_of_turn>
{{ end }}
{{- end }}
{{- end }}"""


@dataclass(frozen=True)
class Family:
    """A chat-template family Ollama can be given: how to recognise it, its Go template and end-of-turn marker."""

    name: str
    probe_suffix: str  # what the model's template renders for one user turn "U1" with the generation prompt
    template: str
    end_of_turn: str


FAMILIES = (
    Family("chatml", "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n", CHATML_TEMPLATE, "<|im_end|>"),
    Family("gemma", "<start_of_turn>user\nU1<end_of_turn>\n<start_of_turn>model\n", GEMMA_TEMPLATE, "<end_of_turn>"),
)


def family_of(tokenizer: Any) -> Family | None:
    """The family whose one-turn rendering the model's template produces, or None."""
    if not tokenizer.chat_template:
        return None
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "U1"}], tokenize=False, add_generation_prompt=True
    )
    return next((f for f in FAMILIES if rendered.endswith(f.probe_suffix)), None)


def render(family: Family, messages: Messages, system: str | None) -> str:
    """What Ollama sends the model for ``messages`` with this family's template and Modelfile ``SYSTEM``.

    Ollama puts the Modelfile's ``SYSTEM`` first when a request has no system message; the rest mirrors the Go
    template branch by branch.
    """
    if system and (not messages or messages[0]["role"] != "system"):
        messages = [{"role": "system", "content": system}, *messages]
    if family.name == "chatml":
        return "".join(_chatml_turn(m, i == len(messages) - 1) for i, m in enumerate(messages))
    first = messages[0] if messages else {"role": "", "content": ""}
    return "".join(_gemma_turn(m, i, i == len(messages) - 1, first) for i, m in enumerate(messages))


def _chatml_turn(message: dict[str, str], last: bool) -> str:
    if message["role"] == "assistant":
        return f"<|im_start|>assistant\n{message['content']}" + ("" if last else "<|im_end|>\n")
    turn = f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n"
    return turn + ("<|im_start|>assistant\n" if last else "")


def _gemma_turn(message: dict[str, str], index: int, last: bool, first: dict[str, str]) -> str:
    if message["role"] == "user":
        system = f"{first['content']}\n\n" if index == 1 and first["role"] == "system" else ""
        turn = f"<start_of_turn>user\n{system}{message['content']}<end_of_turn>\n"
        return turn + ("<start_of_turn>model\n" if last else "")
    if message["role"] == "assistant":
        return f"<start_of_turn>model\n{message['content']}" + ("" if last else "<end_of_turn>\n")
    return ""


def expected_rendering(tokenizer: Any, messages: Messages, adds_bos: bool) -> str:
    """transformers' rendering, less the BOS text a tokenizer that adds BOS itself would add again."""
    text = str(tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True))
    bos = tokenizer.bos_token
    return text.removeprefix(bos) if adds_bos and bos and text.startswith(bos) else text


@dataclass(frozen=True)
class Modelfile:
    """A Modelfile's content and what export.json records about it."""

    text: str
    family: str | None  # None: TEMPLATE not translated
    system: str | None
    stops: tuple[str, ...]


def build_modelfile(gguf_name: str, tokenizer: Any, stop_tokens: Sequence[str], adds_bos: bool) -> Modelfile:
    """The Modelfile for ``gguf_name`` (a file beside it) and the model's tokenizer.

    Args:
        gguf_name: The GGUF file's name (``FROM ./<name>``).
        tokenizer: The source tokenizer (its chat template is translated).
        stop_tokens: The end-of-turn tokens' texts (the ones transformers stops at).
        adds_bos: Whether the tokenizer adds BOS itself (the file's ``add_bos_token``).
    """
    from limo.gguf.served import probe_conversations  # deferred: the served checks import the llama.cpp server

    family = family_of(tokenizer)
    system = template_default_system(tokenizer) if family else None
    conversations = probe_conversations()
    if family and any(render(family, c, system) != expected_rendering(tokenizer, c, adds_bos) for c in conversations):
        family = None
    stops = tuple(dict.fromkeys([*([family.end_of_turn] if family else []), *stop_tokens]))
    lines = [f"FROM ./{gguf_name}"]
    if family is None:
        lines.append("# TEMPLATE: limo could not translate this chat template (not ChatML or Gemma); Ollama guesses")
    else:
        lines.append(f'TEMPLATE """{family.template}"""')
        if system:
            lines.append(f'SYSTEM """{system}"""')
    lines += [f'PARAMETER stop "{_quoted(stop)}"' for stop in stops]
    return Modelfile("\n".join(lines) + "\n", family.name if family else None, system, stops)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def write_modelfile(gguf: Path, modelfile: Modelfile) -> Path:
    """Write ``<gguf without .gguf>.Modelfile`` beside the file (atomically); returns its path."""
    path = gguf.with_suffix(".Modelfile")
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(modelfile.text, encoding="utf-8")
    temp.replace(path)
    return path
