"""Backend registry: name -> factory. Factories import their heavy dependencies lazily.

``build_backend(name, **options)`` is the one way entry points create a backend; a plug-in adds itself
with ``BACKENDS["name"] = factory``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eval.backends.base import Backend
from eval.backends.openai import OpenAIBackend
from eval.backends.replay import ReplayBackend


def _hf(**options: Any) -> Backend:
    from eval.backends.hf import HFBackend  # deferred: imports torch and transformers

    return HFBackend(**options)


def _vllm(**options: Any) -> Backend:
    from eval.backends.vllm import VLLMBackend  # deferred: vllm is an optional, CUDA-only extra

    return VLLMBackend(**options)


def _openai(**options: Any) -> Backend:
    return OpenAIBackend(**options)


def _llamacpp(**options: Any) -> Backend:
    from eval.backends.llamacpp import LlamaCppBackend  # deferred: finds llama.cpp's programs, starts a server

    return LlamaCppBackend(**options)


def _replay(**options: Any) -> Backend:
    path = options.pop("path", None)
    if path:
        return ReplayBackend.from_file(path)
    return ReplayBackend(**options)


BACKENDS: dict[str, Callable[..., Backend]] = {
    "hf": _hf,
    "vllm": _vllm,
    "openai": _openai,
    "llamacpp": _llamacpp,
    "replay": _replay,
}


def build_backend(name: str, **options: Any) -> Backend:
    """Create the backend registered as ``name`` with ``options``.

    Raises:
        ValueError: Unknown backend name.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r} (known: {', '.join(sorted(BACKENDS))})")
    return BACKENDS[name](**options)
