"""A user's mapping mistakes at ingest: an error naming the column (or file) before any stage runs, and a warning,
on the console and in the report, for a declared signal that no row fills. Small pools built in each test."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from curation.options import IngestOptions
from curation.pool import load_pool
from eval.records import DataError
from tests.test_pool_ingest import SOLUTION, run_limo, trust_stages, write_jsonl


def pool_rows(**extra) -> list[dict]:
    return [
        {"question": f"How many pairings of {n} bowls?", "final": "16", "solution": SOLUTION, **extra}
        for n in ("four", "two")
    ]


FIELDS = {"problem": "question", "answer": "final", "chain": "solution"}


@pytest.mark.parametrize("field", ["answer", "difficulty", "subject", "generator"])
def test_a_misspelt_column_for_any_field_names_it_and_the_columns_present(tmp_path, field):
    path = write_jsonl(tmp_path / "pool.jsonl", pool_rows())
    with pytest.raises(DataError) as err:
        load_pool(IngestOptions(source=str(path), field_map={**FIELDS, field: "finall"}))
    assert str(err.value) == (
        f"{path}: curate.stages.ingest.field_map.{field} names column 'finall', which none of its 2 rows has; "
        "columns present: final, question, solution"
    )


def test_the_streaming_ingest_stops_on_a_misspelt_column_before_any_stage(tmp_path):
    path = write_jsonl(tmp_path / "pool.jsonl", pool_rows())
    stages = trust_stages(path, field_map={**FIELDS, "difficulty": "pass_rat"})
    with pytest.raises(DataError, match="field_map.difficulty names column 'pass_rat'"):
        run_limo(stages, tmp_path / "run")
    assert not (tmp_path / "run" / "curate" / "curated.jsonl").exists()


@pytest.mark.parametrize("kind", ["empty jsonl", "blank lines", "header-only parquet"])
def test_an_empty_pool_file_is_an_error_naming_it(tmp_path, kind):
    if kind == "header-only parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = tmp_path / "pool.parquet"
        pq.write_table(pa.table({"problem": pa.array([], pa.string()), "chain": pa.array([], pa.string())}), path)
    else:
        path = tmp_path / "pool.jsonl"
        path.write_text("" if kind == "empty jsonl" else "\n\n")
    with pytest.raises(DataError, match=rf"^{path}: the pool has no rows \(an empty or header-only file\)"):
        load_pool(IngestOptions(source=str(path)))
    with pytest.raises(DataError, match=rf"^{path}: the pool has no rows"):
        run_limo(trust_stages(path), tmp_path / "run")


def test_a_declared_signal_that_no_row_fills_is_warned_on_the_console_and_in_the_report(tmp_path, caplog):
    path = write_jsonl(tmp_path / "pool.jsonl", pool_rows(pass_rate=None, topic=""))
    stages = trust_stages(path, field_map={**FIELDS, "difficulty": "pass_rate", "subject": "topic"})
    with caplog.at_level(logging.WARNING, logger="curation.pool"):
        run_limo(stages, tmp_path / "run")
    warned = [r.getMessage() for r in caplog.records if r.name == "curation.pool"]
    assert any("field_map.difficulty: column 'pass_rate' is empty in all 2 rows" in m for m in warned), warned
    assert any("field_map.subject: column 'topic' is empty in all 2 rows" in m for m in warned), warned
    curate = tmp_path / "run" / "curate"
    manifest = json.loads((curate / "manifest.json").read_text())
    assert set(manifest["pool"]["provenance"]["ingest"]["unused_signals"]) == {"difficulty", "subject"}
    report = (curate / "report.md").read_text()
    assert "**declared but unused**: `field_map.difficulty`: column 'pass_rate' is empty in all 2 rows" in report


def test_a_filled_declared_signal_is_quiet(tmp_path, caplog):
    path = write_jsonl(tmp_path / "pool.jsonl", pool_rows(topic="counting"))
    with caplog.at_level(logging.WARNING, logger="curation.pool"):
        pool = load_pool(IngestOptions(source=str(path), field_map={**FIELDS, "subject": "topic"}))
    assert not caplog.records and pool.provenance["ingest"]["unused_signals"] == {}
    assert {p.subject for p in pool.problems} == {"counting"}
