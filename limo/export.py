"""`python -m limo.export [recipe=<r>] [model.path=<folder>] [export.types=[f16,q8_0,q4_k_m]] [export.name=<name>]
[export.dir=<dir>] [export.converter=auto|llamacpp|limo] [output_dir=<dir>]`: a trained model as GGUF, for llama.cpp
and Ollama.

Which model: ``model.path=`` given on the command line (a model folder; a PEFT adapter folder is merged onto its
base first; a ``.gguf`` file or ``pkg:<package>`` model as at every entry point), otherwise the run's trained
model, ``<output_dir>/train/model`` (limo.train saves it merged). Writes ``<name>.<type>.gguf`` for each of
``export.types`` (``f32``, ``f16``, ``q8_0``, ``q4_k_m``; default ``[f16,q8_0]``), an Ollama
``<name>.<type>.Modelfile`` beside each, and ``export.json`` (source, converter, sizes, verification figures) into
``export.dir`` (default ``<output_dir>/export``). ``export.name`` defaults to the run's name for a run's model, else
the model folder's name.

Who writes the files: llama.cpp's converter and quantizer where ``make llamacpp`` installed them, limo's own writer
(llama and qwen2; no ``q4_k_m``) where not — the first console line says which (`limo.gguf.files`). Each file is
read back with transformers and, with llama.cpp installed, served by llama-server and compared with the source
model on fixed prompts before it is renamed into place (`limo.gguf.writer` and `limo.gguf.served` state the
tolerances). An unsupported architecture, a missing model or a file outside its tolerance ends with one line
(`limo.cli.entry`); files already verified stay.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig

from limo.cli.entry import hydra_entry, reported_errors
from limo.config.sections import to_options
from limo.gguf.files import export_model
from limo.models.tiny import ensure_model
from limo.setup.evaluate import command_line_overrides


@dataclass(frozen=True)
class ExportOptions:
    """``export.*`` on the command line (no recipe needs an ``export:`` section)."""

    types: tuple[Literal["f32", "f16", "q8_0", "q4_k_m"], ...] = ("f16", "q8_0")  # limo.gguf.files.TYPES
    name: str | None = None  # null: the run's name, or the model folder's
    dir: str | None = None  # null: <output_dir>/export
    converter: Literal["auto", "llamacpp", "limo"] = "auto"  # auto: llama.cpp's tools where installed


def source_model(cfg: DictConfig) -> Path:
    """``model.path=`` from the command line (resolved as every entry point does), else ``<output_dir>/train/model``.

    Raises:
        FileNotFoundError: No model folder there.
    """
    given = any(o.lstrip("+").startswith("model.path=") for o in command_line_overrides())
    trained = Path(cfg.output_dir) / "train" / "model"
    path = Path(ensure_model({**cfg.model, "build_tiny": False})) if given else trained
    if not ((path / "config.json").is_file() or (path / "adapter_config.json").is_file()):
        hint = "pass model.path=<folder>" if given else f"train it first with `python -m limo.train recipe={cfg.name}`"
        raise FileNotFoundError(f"no model folder at {path} ({hint}), model.path")
    return path.expanduser()


def default_name(model: Path, given: str) -> str:
    """``<run>`` for a run's ``<run>/train/model``; for a ``.gguf`` file or ``pkg:`` model (``given``, as typed) the
    file's or package's name without a quantisation suffix (``SmolLM2-135M-Instruct.Q4_1.gguf``: not the cache
    folder it was converted to); else the folder's own name."""
    if model.name == "model" and model.parent.name == "train":
        return model.parent.parent.name
    if given.startswith("pkg:") or given.lower().endswith(".gguf"):
        stem = Path(given.removeprefix("pkg:").rstrip("/")).name.removesuffix(".gguf").removesuffix(".GGUF")
        return re.sub(r"\.(i?q\d\w*|f16|f32|bf16)$", "", stem, flags=re.IGNORECASE)
    return model.name


def print_converter(converter: dict[str, Any]) -> None:
    if converter["converter"] == "llama.cpp":
        line = f"llama.cpp's convert_hf_to_gguf.py and llama-quantize ({converter['version']}, {converter['root']})"
    else:
        line = f"limo's own GGUF writer ({converter['why']})"
    print(f"[export] converter: {line}", flush=True)


def print_file(qtype: str, entry: dict[str, Any]) -> None:
    check = entry["verification"]
    ties = f" ({check['top1_ties']} within ties)" if check["top1_ties"] else ""
    print(
        f"[export] {qtype}: {entry['path']} ({entry['bytes'] / 2**20:.1f} MiB); read back: max |Δlogit| "
        f"{check['max_abs_logit_diff']:.3g} ({check['relative_logit_diff']:.3%} of the logit range, tolerance "
        f"{check['tolerance']:.2%}), top-1 {check['top1_agree']}/{check['prompts']}{ties}, token ids and chat "
        "template identical",
        flush=True,
    )
    served = entry["served"]
    if served is None:
        print(f"[export] {qtype}: not served by llama.cpp (not installed: make llamacpp)", flush=True)
    else:
        print(
            f"[export] {qtype}: llama-server: chat template and token ids as transformers'; greedy "
            f"{served['greedy_identical']}/{served['prompts']} identical, {served['greedy_near_ties']} near-ties "
            f"(largest gap {served['largest_tie_gap']:.3g}, margin {served['greedy_margin']}); stops at "
            f"{', '.join(served['end_of_turn_tokens'])}",
            flush=True,
        )
    template = entry["modelfile"]["template"] or "not translated"
    ollama = Path(entry["path"]).stem.replace(".", "-").lower()
    modelfile = entry["modelfile"]["path"]
    print(f"[export] {qtype}: ollama create {ollama} -f {modelfile} (template: {template})", flush=True)


def export(cfg: DictConfig) -> None:
    """Export the model `source_model` names as `ExportOptions` say."""
    options = to_options(ExportOptions, cfg.get("export"), "export")
    logging.getLogger("gguf").setLevel(logging.WARNING)  # its writer logs endianness and a file plan per file
    model = source_model(cfg)
    out = Path(options.dir) if options.dir else Path(cfg.output_dir) / "export"
    name = options.name or default_name(model, str(cfg.model.path))
    print(f"[export] {model} -> {out}/{name}.<{','.join(options.types)}>.gguf", flush=True)
    export_model(
        str(model), out, name, options.types, on_file=print_file, converter=options.converter, on_start=print_converter
    )
    print(f"[export] figures in {out / 'export.json'}", flush=True)


@hydra_entry("export", runtime_keys=("export",))  # no recipe declares an export: section
def main(cfg: DictConfig) -> None:
    with reported_errors("export", cfg):
        export(cfg)


if __name__ == "__main__":
    main()
