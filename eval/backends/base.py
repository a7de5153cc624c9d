"""The generation interface every backend implements, and reproducible per-row seeds.

A request carries its own seed, derived from (run seed, problem id, sample index), so a response does
not depend on which other requests share its batch: a resumed or re-batched run regenerates identical
rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length", "error"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one response. ``temperature == 0`` means greedy decoding."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerationRequest:
    """One response to generate.

    Attributes:
        id: Unique key of this row (``<problem_id>#<sample_index>``), used for resume and replay.
        messages: Chat messages (``{"role", "content"}``), system turn included when the recipe has one.
        sampling: Sampling parameters.
        seed: This row's seed (see `row_seed`).
        meta: Free-form context a backend may use (``problem_id``, ``sample_index``, ...).
    """

    id: str
    messages: tuple[dict[str, str], ...]
    sampling: SamplingParams = SamplingParams()
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Generation:
    """A generated response."""

    request_id: str
    text: str
    finish_reason: FinishReason
    num_tokens: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Backend(Protocol):
    """Anything that turns requests into generations, in order."""

    name: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]: ...


def row_seed(seed: int, problem_id: str, sample_index: int) -> int:
    """A 31-bit seed for one (problem, sample) row, stable across processes and Python versions."""
    digest = hashlib.sha256(f"{seed}\x1f{problem_id}\x1f{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
