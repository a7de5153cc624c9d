"""GGUF files written by llama.cpp's own tools: ``convert_hf_to_gguf.py`` (with its gguf-py) and ``llama-quantize``.

Why llama.cpp's tools where they are installed: its converter knows about a hundred architectures (limo's own writer,
`limo.gguf.writer`, two) and their tokenizers, and ``llama-quantize`` writes the k-quants (``q4_k_m``) people ask for
first. `convert` runs them on a model folder and says what ran (`Conversion`, recorded in export.json); the
verification around them stays limo's (`limo.gguf.writer.verify_gguf`, `limo.gguf.served`).

One step is limo's: the converter names a BPE tokenizer's pre-tokenizer (``tokenizer.ggml.pre``, which llama.cpp's
runtime implements by name) by hashing how the tokenizer splits a test string, so it refuses any tokenizer whose
*vocabulary* it has not seen — every freshly trained one, such as limo's tiny test models. The converter runs under a
small driver (`DRIVER`) that keeps its own answer where it has one and, only where it raises, uses the name limo
reads from the tokenizer's structure (`limo.gguf.writer.pre_tokenizer_name`: the regex matched against transformers'
table of llama.cpp's names). The served check then compares llama.cpp's token ids with transformers' on the fixed
prompts, so a wrong name cannot pass unseen.

``q4_k_m`` is quantized from an ``f16`` conversion (llama.cpp's usual path); matrices whose rows are not a multiple of
256 values fall back to the types ``llama-quantize`` picks (q5_0, q8_0), as they do in every q4_k_m file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval.backends.llamacpp_tools import LlamaCppTools
from limo.gguf.spm import with_spm_model

CONVERTER_TYPES = ("f32", "f16", "q8_0")  # convert_hf_to_gguf.py --outtype
QUANTIZER_TYPES = {"q4_k_m": "Q4_K_M"}  # llama-quantize's names
TYPES = (*CONVERTER_TYPES, *QUANTIZER_TYPES)
FALLBACK_MARK = "[limo] pre-tokenizer by structure:"
SPM_REBUILT = "limo: SentencePiece model rebuilt from tokenizer.json (scores from merge ranks)"
# Runs the converter as its own __main__, with get_vocab_base_pre falling back to limo's name where it raises.
DRIVER = f"""
import os, runpy, sys
root = os.environ['LIMO_CONVERTER_ROOT']
sys.path.insert(0, root)
import conversion.base as base
original = base.TextModel.get_vocab_base_pre
fallback = os.environ.get('LIMO_GGUF_PRE')
def get_vocab_base_pre(self, tokenizer):
    try:
        return original(self, tokenizer)
    except NotImplementedError:
        if not fallback:
            raise
        print('{FALLBACK_MARK}', fallback, file=sys.stderr, flush=True)
        return fallback
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
script = os.path.join(root, 'convert_hf_to_gguf.py')
sys.argv = [script, *sys.argv[1:]]
runpy.run_path(script, run_name='__main__')
"""


class ConversionError(ValueError):
    """llama.cpp's converter or quantizer failed on this model (its last line is quoted)."""


@dataclass(frozen=True)
class Conversion:
    """What wrote one file: the tool, its version, how the pre-tokenizer was named, the quantizer, seconds."""

    tool: str
    version: str
    pre_tokenizer: str  # "llama.cpp" (its own, by hash, or not a BPE tokenizer) or "limo (by structure): <name>"
    quantizer: str | None
    seconds: float
    # "the folder's" where the converter read the folder as it is; else what limo added (`limo.gguf.spm`)
    tokenizer_model: str = "the folder's"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def convert(
    tools: LlamaCppTools, folder: Path, target: Path, qtype: str, name: str, pre_fallback: str | None, f16: Path
) -> Conversion:
    """Write ``folder`` (an HF model folder) as a GGUF file of type ``qtype`` at ``target``.

    Args:
        tools: The llama.cpp install.
        folder: The model folder (merged weights, tokenizer, chat template).
        target: The file to write.
        qtype: One of `TYPES`.
        name: ``general.name`` in the file.
        pre_fallback: The pre-tokenizer name to use where the converter does not know the tokenizer.
        f16: Where the ``f16`` conversion a quantized type starts from lies (written there when absent).

    Raises:
        ConversionError: The converter or the quantizer failed.
    """
    started = time.perf_counter()
    if qtype in CONVERTER_TYPES:
        pre, vocab = run_converter(tools, folder, target, qtype, name, pre_fallback)
        return Conversion("llama.cpp convert_hf_to_gguf.py", tools.version, pre, None, _since(started), vocab)
    if qtype not in QUANTIZER_TYPES:
        raise ValueError(f"export type {qtype}: llama.cpp's tools write {', '.join(TYPES)}")
    pre = vocab = "as in the f16 file"
    if not f16.is_file():
        pre, vocab = run_converter(tools, folder, f16, "f16", name, pre_fallback)
    run_quantizer(tools, f16, target, QUANTIZER_TYPES[qtype])
    tool = "llama.cpp convert_hf_to_gguf.py (f16)"
    quantizer = f"llama-quantize {QUANTIZER_TYPES[qtype]}"
    return Conversion(tool, tools.version, pre, quantizer, _since(started), vocab)


def run_converter(
    tools: LlamaCppTools, folder: Path, target: Path, qtype: str, name: str, pre_fallback: str | None
) -> tuple[str, str]:
    """Run ``convert_hf_to_gguf.py`` through `DRIVER` (on a view of ``folder`` with a rebuilt SentencePiece model
    where it lacks one, `limo.gguf.spm`); returns how the pre-tokenizer was named and whose tokenizer model was
    read (`Conversion.tokenizer_model`)."""
    env = {**tools.converter_env(), "LIMO_CONVERTER_ROOT": str(tools.root)}
    if pre_fallback:
        env["LIMO_GGUF_PRE"] = pre_fallback
    env.pop("NO_LOCAL_GGUF", None)
    with with_spm_model(folder) as (source, rebuilt):
        command = [sys.executable, "-c", DRIVER, str(source), "--outfile", str(target), "--outtype", qtype]
        done = subprocess.run([*command, "--model-name", name], capture_output=True, text=True, env=env)
    if done.returncode != 0 or not target.is_file():
        raise ConversionError(f"llama.cpp's converter failed ({last_line(done.stderr)}), {folder}")
    vocab = SPM_REBUILT if rebuilt else "the folder's"
    marked = [line for line in done.stderr.splitlines() if line.startswith(FALLBACK_MARK)]
    if marked:
        return f"limo (by structure): {marked[-1].removeprefix(FALLBACK_MARK).strip()}", vocab
    return "llama.cpp", vocab


def run_quantizer(tools: LlamaCppTools, source: Path, target: Path, kind: str) -> None:
    """``llama-quantize <source> <target> <kind> <threads>``."""
    command = [str(tools.quantize), str(source), str(target), kind, str(os.cpu_count() or 1)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not target.is_file():
        raise ConversionError(f"llama-quantize {kind} failed ({last_line(done.stdout + done.stderr)}), {source}")


ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception)\b")  # a Python exception's last line: "OSError: [Errno 28] ..."


def last_line(text: str) -> str:
    """What a failed tool said: its last exception line (``OSError: [Errno 28] No space left on device``), else its
    last line; a progress bar the tool closes after the traceback (``Writing: 0%|...``) is not the reason."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    return (errors or lines or ["no output"])[-1][-300:]


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def describe(tools: LlamaCppTools | None, reason: str = "") -> dict[str, Any]:
    """Which converter an export uses, for its console line and export.json."""
    if tools is None:
        return {"converter": "limo", "why": reason or "llama.cpp is not installed (make llamacpp)"}
    return {"converter": "llama.cpp", "version": tools.version, "root": str(tools.root)}
