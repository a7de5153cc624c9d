"""``discover/archive.jsonl`` (written by objective discovery, read by ``train.discovered_loss``): one row per proposed
(or seed) objective, appended atomically, never rewritten.

Row fields (docs/architecture.md, "Run directory"): ``generation`` (0 for the archive seed), ``name``, ``thought``,
``code``, ``status`` (``valid``, ``invalid``, ``rejected_unsafe``), ``reason`` (why it was not valid; None when valid),
``fitness`` (the recipe's metric on the selection split; None unless valid), ``training_log`` (the candidate's
``log_history.json``, relative to ``discover/``; None when it never trained). Beside them: ``fitness_se`` (the
fitness's standard error: with a few dozen held-out pairs it is large, and the report shows it beside every score),
``origin`` (``seed`` / ``proposal``), ``metrics`` (both metrics with their standard errors on the selection and test
splits), ``confinement`` (how its worker was confined; None when the parent rejected it before any process ran) and
``code_sha256``. Rows are appended with fsync after the candidate finished; a kill can only tear the last line, which
the next append cuts off, so the file always holds whole rows of finished candidates. No timings go in rows: a resumed
run writes the same archive as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.records import append_jsonl, read_jsonl, sha256_text

STATUSES = ("valid", "invalid", "rejected_unsafe")
FIELDS = (
    "generation",
    "origin",
    "name",
    "thought",
    "code",
    "status",
    "reason",
    "fitness",
    "fitness_se",
    "training_log",
    "metrics",
    "confinement",
    "code_sha256",
)


def make_row(
    *,
    generation: int,
    origin: str,
    name: str,
    thought: str,
    code: str,
    status: str,
    reason: str | None,
    fitness: float | None = None,
    fitness_se: float | None = None,
    training_log: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    confinement: str | None = None,
) -> dict[str, Any]:
    """One archive row with every field present, in `FIELDS` order."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return {
        "generation": generation,
        "origin": origin,
        "name": name,
        "thought": thought,
        "code": code,
        "status": status,
        "reason": reason,
        "fitness": fitness,
        "fitness_se": fitness_se,
        "training_log": training_log,
        "metrics": dict(metrics or {}),
        "confinement": confinement,
        "code_sha256": sha256_text(code),
    }


def read_archive(path: Path) -> list[dict[str, Any]]:
    """The finished rows (a torn last line from a kill is ignored)."""
    return read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []


def append_row(path: Path, row: Mapping[str, Any]) -> None:
    append_jsonl(path, [dict(row)])


def status_counts(rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {status: sum(1 for r in rows if r["status"] == status) for status in STATUSES}


def best_rows(rows: Sequence[Mapping[str, Any]], count: int, *, proposals_only: bool = True) -> list[dict]:
    """The highest-fitness valid rows (earlier generation first on ties)."""
    valid = [dict(r) for r in rows if r["status"] == "valid" and r.get("fitness") is not None]
    if proposals_only:
        valid = [r for r in valid if r["generation"] > 0]
    return sorted(valid, key=lambda r: (-float(r["fitness"]), r["generation"]))[:count]
