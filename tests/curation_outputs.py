"""One check for "the same curation outputs": what the sharded runner and every executor must reproduce.

Byte for byte: ``curated.jsonl``, ``messages.jsonl``, ``rejects.jsonl`` and ``curated.parquet``; the funnel
equal but for each stage's seconds; the manifest equal but for its ``execution`` entry, which must name the
executor each run used (None for an in-memory run, which has none).
"""

from __future__ import annotations

import json
from pathlib import Path

COMPARED = ("curated.jsonl", "messages.jsonl", "rejects.jsonl", "curated.parquet")


def assert_same_outputs(reference: Path, other: Path, executors: tuple[str | None, str | None]) -> None:
    for name in COMPARED:
        if (reference / name).exists() or (other / name).exists():
            assert (other / name).read_bytes() == (reference / name).read_bytes(), name
    funnels = [json.loads((folder / "funnel.json").read_text()) for folder in (reference, other)]
    for funnel in funnels:
        for stage in funnel["stages"]:
            stage.pop("seconds")
    assert funnels[0] == funnels[1]
    manifests = [json.loads((folder / "manifest.json").read_text()) for folder in (reference, other)]
    ran_on = tuple((m.pop("execution", None) or {}).get("executor") for m in manifests)
    assert ran_on == executors
    assert manifests[0] == manifests[1]
