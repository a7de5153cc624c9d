"""A user's mapping mistakes at ingest: an error naming the column (or file) before any stage runs, and a warning,
on the console and in the report, for a declared signal that no row fills. Small pools built in each test."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from curation.options import IngestOptions
from curation.pool.store import load_pool
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
    with caplog.at_level(logging.WARNING, logger="curation.pool.ingest"):
        run_limo(stages, tmp_path / "run")
    warned = [r.getMessage() for r in caplog.records if r.name == "curation.pool.ingest"]
    assert any("field_map.difficulty: column 'pass_rate' is empty in all 2 rows" in m for m in warned), warned
    assert any("field_map.subject: column 'topic' is empty in all 2 rows" in m for m in warned), warned
    curate = tmp_path / "run" / "curate"
    manifest = json.loads((curate / "manifest.json").read_text())
    assert set(manifest["pool"]["provenance"]["ingest"]["unused_signals"]) == {"difficulty", "subject"}
    report = (curate / "report.md").read_text()
    assert "**declared but unused**: `field_map.difficulty`: column 'pass_rate' is empty in all 2 rows" in report


def test_a_filled_declared_signal_is_quiet(tmp_path, caplog):
    path = write_jsonl(tmp_path / "pool.jsonl", pool_rows(topic="counting"))
    with caplog.at_level(logging.WARNING, logger="curation.pool.ingest"):
        pool = load_pool(IngestOptions(source=str(path), field_map={**FIELDS, "subject": "topic"}))
    assert not caplog.records and pool.provenance["ingest"]["unused_signals"] == {}
    assert {p.subject for p in pool.problems} == {"counting"}


# ------------------------------------------------------------------------------------------------ pass rates
# OpenMathReasoning-style: a pass-rate column (1 = always solved = easiest), with the values real pools hold.

PASS_RATES = {"p1": 0.9, "p2": "n/a", "p3": "high", "p4": "0.5/1", "p5": None, "p6": "0.25"}
PASS_RATE_DIFFICULTY = {"source": "metadata", "scale": [1, 0]}  # docs/curation.md: pass rate 1 -> difficulty 0


def pass_rate_pool(tmp_path: Path) -> Path:
    rows = [
        {
            "id": pid,
            "question": f"How many pairings of {pid} bowls?",
            "final": "16",
            "solution": SOLUTION,
            "rate": rate,
        }
        for pid, rate in PASS_RATES.items()
    ]
    return write_jsonl(tmp_path / "pool.jsonl", rows)


def pass_rate_stages(tmp_path: Path, **difficulty) -> dict:
    stages = trust_stages(pass_rate_pool(tmp_path), field_map={**FIELDS, "id": "id", "difficulty": "rate"})
    return {**stages, "difficulty": {**PASS_RATE_DIFFICULTY, **difficulty}, "select": {"quality_weight": 0.0}}


def curated_ranks(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (out / "curate" / "curated.jsonl").read_text().splitlines()]


def difficulty_notes(out: Path) -> dict:
    funnel = json.loads((out / "curate" / "funnel.json").read_text())
    stages = funnel["stages"] if isinstance(funnel, dict) else funnel
    return next(s for s in stages if s["stage"] == "difficulty")["notes"]


def test_unparseable_pass_rates_are_counted_printed_and_rank_neutral_not_easiest(tmp_path, caplog):
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="curation.stages.difficulty"):
        run_limo(pass_rate_stages(tmp_path), out)
    assert "difficulty: 4 of 6 problems have no usable difficulty (1 empty, 3 unparseable: 'n/a' x1" in caplog.text
    notes = difficulty_notes(out)
    assert notes["problems_with_difficulty"] == 2 and notes["unknown"] == 4 and notes["missing"] == "unknown"
    assert set(notes["unparseable"]) == {"n/a", "high", "0.5/1"}
    ranks = curated_ranks(out)  # p6 (pass rate 0.25: difficulty 0.75) > the unknown (0.5) > p1 (0.9: 0.1)
    assert ranks[0] == "p6" and ranks[-1] == "p1" and set(ranks[1:-1]) == {"p2", "p3", "p4", "p5"}


def test_missing_drop_drops_the_unknown_and_keep_is_read_as_unknown(tmp_path):
    run_limo(pass_rate_stages(tmp_path, missing="drop"), tmp_path / "drop")
    assert sorted(curated_ranks(tmp_path / "drop")) == ["p1", "p6"]
    run_limo(pass_rate_stages(tmp_path, missing="keep"), tmp_path / "keep")
    assert difficulty_notes(tmp_path / "keep")["missing"] == "unknown"


def test_missing_error_stops_naming_the_problem_and_value(tmp_path):
    with pytest.raises(DataError, match=r"problem p2: difficulty value 'n/a' is neither a level .*field difficulty"):
        run_limo(pass_rate_stages(tmp_path, missing="error"), tmp_path / "run")


def test_a_difficulty_column_with_no_usable_value_says_selection_falls_back(tmp_path, caplog):
    rows = [dict(r, rate="n/a") for r in pool_rows()]
    path = write_jsonl(tmp_path / "pool.jsonl", rows)
    stages = trust_stages(path, field_map={**FIELDS, "difficulty": "rate"})
    stages = {**stages, "difficulty": PASS_RATE_DIFFICULTY}
    with caplog.at_level(logging.WARNING, logger="curation.stages.difficulty"):
        run_limo(stages, tmp_path / "run")
    assert "2 of 2 problems have no usable difficulty" in caplog.text
    assert "selection ranks by curate.stages.select.fallback_difficulty" in caplog.text


def test_an_unknown_missing_policy_fails_at_start_up():
    from curation.options import StageOptions
    from eval.options import OptionsError, to_options

    with pytest.raises(OptionsError, match=r"curate.stages.difficulty.missing: expected one of \['unknown', 'keep'"):
        to_options(StageOptions, {"difficulty": {"missing": "eror"}}, where="curate.stages")
