"""Replay: answers from a file or a pool instead of a model, so stages that need sensible model text run
deterministically offline (tests, the demo, teacher / extractor stand-ins).

Lookup order for a request: its id (``<problem_id>#<sample_index>``), then (problem id, sample index),
then the problem's pool of responses, cycled by sample index. A request nothing answers raises
`ReplayMissError` naming the id, instead of producing an empty response. Token counts are whitespace
word counts (replay has no tokenizer), unless the file records ``num_tokens``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.backends.base import Generation, GenerationRequest
from eval.problem import Problem
from eval.records import DataError, read_jsonl


class ReplayMissError(KeyError):
    """No recorded response for a request."""

    def __str__(self) -> str:
        return str(self.args[0])


class ReplayBackend:
    """Serve recorded responses.

    Args:
        rows: ``{key: response row}`` where key is a request id or ``(problem_id, sample_index)`` and the row
            has ``text`` (or ``response``) and optionally ``finish_reason`` and ``num_tokens``.
        pool: ``{problem_id: [response text, ...]}`` used when no row matches; sample ``i`` gets
            ``pool[i % len(pool)]``.
    """

    name = "replay"

    def __init__(
        self, rows: Mapping[Any, Mapping[str, Any]] | None = None, pool: Mapping[str, Sequence[str]] | None = None
    ):
        self.rows = dict(rows or {})
        self.pool = {k: list(v) for k, v in dict(pool or {}).items() if v}
        self.calls = 0

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayBackend:
        """Rows from JSONL keyed by ``request_id`` (or ``id``), or by ``problem_id`` + ``sample_index``.

        Raises:
            DataError: A row with no key or no text; the message names file and row.
        """
        rows: dict[Any, Mapping[str, Any]] = {}
        for number, row in enumerate(read_jsonl(path), start=1):
            if _text(row) is None:
                raise DataError(f"{path}: row {number}: field 'text' (or 'response') is missing")
            key = _row_key(row)
            if key is None:
                raise DataError(f"{path}: row {number}: needs 'request_id' or 'problem_id' + 'sample_index'")
            rows[key] = row
        return cls(rows)

    @classmethod
    def from_solutions(cls, problems: Iterable[Problem]) -> ReplayBackend:
        """A pool of each problem's reference solution (gold chains), for stages that need correct text."""
        return cls(pool={p.id: [p.solution] for p in problems if p.solution})

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        self.calls += len(requests)
        return [self._one(r) for r in requests]

    def _one(self, request: GenerationRequest) -> Generation:
        problem_id = request.meta.get("problem_id")
        index = int(request.meta.get("sample_index", 0))
        row = self.rows.get(request.id) or self.rows.get((problem_id, index))
        if row is not None:
            text = _text(row) or ""
            tokens = int(row.get("num_tokens") or len(text.split()))
            return Generation(request.id, text, row.get("finish_reason") or "stop", tokens, {"replay": "row"})
        responses = self.pool.get(str(problem_id))
        if responses:
            text = responses[index % len(responses)]
            return Generation(request.id, text, "stop", len(text.split()), {"replay": "pool"})
        raise ReplayMissError(f"replay: no recorded response for request {request.id!r} (problem {problem_id!r})")


def _text(row: Mapping[str, Any]) -> str | None:
    value = row.get("text", row.get("response"))
    return None if value is None else str(value)


def _row_key(row: Mapping[str, Any]) -> Any:
    if row.get("request_id") or row.get("id"):
        return str(row.get("request_id") or row.get("id"))
    if row.get("problem_id") is not None and row.get("sample_index") is not None:
        return (str(row["problem_id"]), int(row["sample_index"]))
    return None
