"""The problem record shared by benchmarks and curation pools.

A benchmark item and a pool problem are the same thing — text, a gold answer and where it came from — so
the record lives here, in the lowest layer, and `curation` builds on it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One math problem with its gold answer.

    Attributes:
        id: Unique within its source (e.g. ``test/algebra/1.json``, ``P_Sequence_30``).
        problem: The problem statement.
        answer: The gold final answer as text (LaTeX or plain).
        source: Dataset the problem comes from (``math500``, ``champ``, a file path, ...).
        subject: Domain or subject (``algebra``, ``Sequence``, ...), if known.
        level: Difficulty level as the source states it, if any.
        year: Competition year, if any.
        solution: A reference solution, if the source has one.
        extra: Source-specific fields kept for provenance.
    """

    id: str
    problem: str
    answer: str
    source: str
    subject: str | None = None
    level: int | str | None = None
    year: int | None = None
    solution: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Problem:
        return cls(**row)


PROBLEM_REQUIRED = ("id", "problem", "answer")
