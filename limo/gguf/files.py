"""One export: each requested type written, verified, renamed into place, with its Modelfile and export.json.

`export_model` writes ``<out_dir>/<name>.<type>.gguf`` for each type and ``export.json`` beside them. Who writes
(`choose_tools`, ``export.converter``): ``auto`` takes llama.cpp's converter and quantizer where they are installed
(`limo.gguf.llamacpp`) and limo's own writer (`limo.gguf.writer`) where they are not; ``llamacpp`` and ``limo``
insist. ``q4_k_m`` exists only through llama.cpp's quantizer: without it the request is one error before any work.
What ran is the console's first line and export.json's ``converter``, and each file's ``written_by``.

Every file is written under a temporary name, then checked twice before it is renamed into place: read back by
transformers (`limo.gguf.writer.verify_gguf`: tokenizer ids, chat template, next-token logits against the source)
and, where llama.cpp is installed, served by llama-server (`limo.gguf.served.served_check`: llama.cpp's chat
template rendering, token ids, greedy replies and end-of-turn stops against the source). A file that fails either is
removed and `ExportVerificationError` names the figures. Beside each published file goes its Ollama Modelfile
(`limo.gguf.modelfile`). ``export.json`` is rewritten after each file, so it always describes what is on disk.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval.backends.llamacpp_tools import LlamaCppMissingError, LlamaCppTools, find_tools
from eval.records import write_json
from limo.gguf.llamacpp import QUANTIZER_TYPES, Conversion, convert, describe
from limo.gguf.modelfile import build_modelfile, write_modelfile
from limo.gguf.served import ServedCheck, end_of_turn_ids, served_check
from limo.gguf.writer import (
    PROMPTS,
    TOLERANCES,
    ExportVerificationError,
    Reference,
    UnsupportedModelError,
    added_specials,
    load_source,
    pre_tokenizer_name,
    reference_logits,
    supported_architecture,
    verify_gguf,
    write_gguf,
)
from limo.gguf.writer import TYPES as WRITER_TYPES

TYPES = (*WRITER_TYPES, *QUANTIZER_TYPES)
CONVERTERS = ("auto", "llamacpp", "limo")


@dataclass(frozen=True)
class ExportPlan:
    """Everything one export's files share: the source, who writes, and a work folder for intermediates."""

    model: Any
    tokenizer: Any
    reference: Reference
    tools: LlamaCppTools | None  # the converter: None for limo's own writer
    server: LlamaCppTools | None  # llama.cpp for the served check: None where it is not installed
    folder: Path  # the model folder the converter reads (a merged copy of an adapter's model)
    work: Path
    name: str
    pre_fallback: str | None


def choose_tools(converter: str, types: Sequence[str]) -> tuple[LlamaCppTools | None, str]:
    """llama.cpp's tools, or None for limo's writer, and why (see the module docstring).

    Raises:
        ValueError: An unknown converter or type, or ``q4_k_m`` / ``llamacpp`` without llama.cpp installed.
    """
    unknown = [t for t in types if t not in TYPES]
    if unknown or not types:
        raise ValueError(f"export type {unknown[0] if unknown else '(none)'}: known types are {', '.join(TYPES)}")
    if converter not in CONVERTERS:
        raise ValueError(f"export.converter {converter!r}: known converters are {', '.join(CONVERTERS)}")
    if converter == "limo":
        quantized = [t for t in types if t in QUANTIZER_TYPES]
        if quantized:
            raise ValueError(
                f"export type {quantized[0]} needs llama.cpp's quantizer, not limo's writer, export.types"
            )
        return None, "export.converter=limo"
    try:
        return find_tools(), ""
    except LlamaCppMissingError as missing:
        quantized = [t for t in types if t in QUANTIZER_TYPES]
        if converter == "llamacpp" or quantized:
            what = f"export type {quantized[0]}" if quantized else "export.converter=llamacpp"
            raise ValueError(
                f"{what} needs llama.cpp's tools, which are not installed (make llamacpp), "
                f"{'export.types' if quantized else 'export.converter'}"
            ) from missing
        return None, "llama.cpp is not installed (make llamacpp)"


def export_model(
    source: str,
    out_dir: str | Path,
    name: str,
    types: Sequence[str] = ("f16", "q8_0"),
    on_file: Callable[[str, dict[str, Any]], None] | None = None,
    converter: str = "auto",
    on_start: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Write, verify and publish ``<out_dir>/<name>.<type>.gguf`` (and its Modelfile) for each type, and
    ``export.json``.

    Args:
        source: A model folder or a PEFT adapter folder.
        out_dir: Where the files go.
        name: The files' stem and the model's name inside them.
        types: GGUF types (`TYPES`).
        on_file: Called with the type and its export.json entry as each file is published.
        converter: ``auto``, ``llamacpp`` or ``limo`` (see the module docstring).
        on_start: Called with export.json's ``converter`` entry before the model loads.

    Returns:
        The ``export.json`` document: source, architecture, converter, prompts, and per type its file, Modelfile,
        size, who wrote it and both verifications' figures.

    Raises:
        UnsupportedModelError: limo's writer cannot write this model.
        ExportVerificationError: A file outside its tolerance (it is removed; earlier types stay).
        ValueError: An unknown type or converter, or a type the installed tools cannot write.
    """
    tools, why = choose_tools(converter, types)
    written_by = describe(tools, why)
    if on_start is not None:
        on_start(written_by)
    model, tokenizer = load_source(source, check_architecture=tools is None)  # refuses before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as work:
        plan = build_plan(source, model, tokenizer, tools, Path(work), name)
        architecture = plan.model.config.model_type
        if tools is None:
            architecture = supported_architecture(plan.model.config, source).gguf_name
        report: dict[str, Any] = {"source": str(source), "architecture": architecture, "converter": written_by}
        report |= {"prompts": list(PROMPTS), "files": {}}
        for qtype in types:
            report["files"][qtype] = export_one(plan, out / f"{name}.{qtype}.gguf", qtype)
            write_json(out / "export.json", report)
            if on_file is not None:
                on_file(qtype, report["files"][qtype])
    return report


def build_plan(
    source: str, model: Any, tokenizer: Any, tools: LlamaCppTools | None, work: Path, name: str
) -> ExportPlan:
    """The reference logits, a folder for the converter to read (an adapter's merged model saved in ``work``), and
    llama.cpp for the served check (also when limo's writer writes)."""
    folder = Path(source).expanduser()
    if tools is not None and (folder / "adapter_config.json").is_file():
        folder = work / "merged"
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    server = tools or installed_tools()
    reference = reference_logits(model, tokenizer)
    return ExportPlan(model, tokenizer, reference, tools, server, folder, work, name, _pre(tokenizer))


def installed_tools() -> LlamaCppTools | None:
    try:
        return find_tools()
    except LlamaCppMissingError:
        return None


def _pre(tokenizer: Any) -> str | None:
    """The tokenizer's pre-tokenizer name by structure (for the converter's fallback), where limo knows one."""
    try:
        spec = json.loads(tokenizer.backend_tokenizer.to_str())
        return pre_tokenizer_name(spec.get("pre_tokenizer"))
    except (AttributeError, UnsupportedModelError, ValueError):
        return None


def export_one(plan: ExportPlan, target: Path, qtype: str) -> dict[str, Any]:
    """Write one type to a temporary file beside ``target``, verify it, rename it onto ``target``, write its
    Modelfile; returns its export.json entry."""
    temp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.gguf")
    try:
        written = write_file(plan, temp, target, qtype)
        check = verify_gguf(temp, plan.reference, plan.tokenizer, TOLERANCES[qtype])
        served = serve_file(plan, temp, qtype)
        failures = [f for f in (check.failure(), served.failure() if served else "") if f]
        if failures:
            raise ExportVerificationError(f"{qtype} file did not check out: {'; '.join(failures)}, {target}")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    eos = end_of_turn_ids(plan.model, plan.tokenizer)
    stops = plan.tokenizer.convert_ids_to_tokens(sorted(eos))
    modelfile = build_modelfile(target.name, plan.tokenizer, stops, added_specials(plan.tokenizer)[0])
    return {
        "path": str(target),
        "bytes": target.stat().st_size,
        "written_by": written,
        "write_seconds": written["seconds"],
        "verification": asdict(check) | {"passed": check.passed},
        "served": served.to_dict() if served else None,
        "modelfile": {"path": str(write_modelfile(target, modelfile)), "template": modelfile.family},
    }


def write_file(plan: ExportPlan, temp: Path, target: Path, qtype: str) -> dict[str, Any]:
    """Write ``temp`` with llama.cpp's tools, or limo's writer; returns what ran."""
    if plan.tools is None:
        started = time.perf_counter()
        write_gguf(plan.model, plan.tokenizer, temp, qtype, plan.name)
        return {"tool": "limo.gguf.writer", "seconds": round(time.perf_counter() - started, 2)}
    published_f16 = target.with_name(f"{plan.name}.f16.gguf")
    f16 = published_f16 if published_f16.is_file() else plan.work / f"{plan.name}.f16.gguf"
    done: Conversion = convert(plan.tools, plan.folder, temp, qtype, plan.name, plan.pre_fallback, f16)
    return done.to_dict()


def serve_file(plan: ExportPlan, gguf: Path, qtype: str) -> ServedCheck | None:
    """llama-server's check of one file (None where llama.cpp is not installed)."""
    if plan.server is None:
        return None
    prompts = (plan.reference.texts, plan.reference.ids)
    return served_check(plan.server, gguf, plan.model, plan.tokenizer, prompts, TOLERANCES[qtype].greedy_margin)
