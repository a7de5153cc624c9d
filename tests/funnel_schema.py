"""The one ``funnel.json`` / ``rejects.jsonl`` schema every curation method writes (checked on each recipe's run)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from curation.funnel import Drop, StageCount

FUNNEL_KEYS = {"method", "stages", "totals", "summary"}
STAGE_KEYS = {f.name for f in dataclasses.fields(StageCount)}
REJECT_KEYS = {f.name for f in dataclasses.fields(Drop)}


def check_one_schema(curate_dir: Path, method: str) -> dict:
    """Assert the run's funnel and rejects follow the shared schema; returns the funnel."""
    funnel = json.loads((curate_dir / "funnel.json").read_text())
    assert set(funnel) == FUNNEL_KEYS and funnel["method"] == method
    assert funnel["stages"] and all(set(stage) == STAGE_KEYS for stage in funnel["stages"])
    rejects = [json.loads(line) for line in (curate_dir / "rejects.jsonl").read_text().splitlines()]
    assert rejects and all(set(row) == REJECT_KEYS and row["reason"] and row["stage"] for row in rejects)
    return funnel
