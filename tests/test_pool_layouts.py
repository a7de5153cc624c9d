"""Curating real pool layouts built from MATH-train rows with planted faults (issue: trust nothing in a pool).

Each layout's example recipe (``recipes/recipe/pool_<layout>.yaml``) curates a pool that `tests.pool_builder`
writes in the layout's own file format, with planted wrong chains, benchmark contaminations, near-duplicate
groups and malformed rows. Done when, for every layout: no wrong chain selected; every planted contamination
dropped and explained; at most 1% of clean problems dropped as contaminated; every bad row in
``rejects.jsonl`` with its reason; counts reconcile. Seed 1 was used while the builder and the stages were
written (seeds 2 and 3 too, by hand); `HELD_OUT_SEED` was run for the first time by this test and is never
to be tuned on.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from limo.cli.compose import compose
from limo.setup.curate import build_curation
from tests.launch import entry
from tests.pool_builder import LAYOUTS, build_pool, check_run

TUNED_SEED = 1
HELD_OUT_SEED = 97
SELECT_ALL = ["++curate.stages.select.n=100000", "++curate.stages.diversity.enabled=false"]


def curate(layout: str, pool: Path, out: Path, shared_data: Path, *overrides: str) -> Path:
    """Run the layout's recipe on ``pool`` in process (as ``python -m limo.curate`` composes it)."""
    cfg = compose(
        f"pool_{layout}",
        [
            f"curate.stages.ingest.source={pool}",
            f"output_dir={out}",
            f"data_dir={shared_data}",
            "++curate.stages.report.plots=false",
            *SELECT_ALL,
            *overrides,
        ],
    )
    build_curation(cfg).run()
    return out / "curate"


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("seed", [TUNED_SEED, HELD_OUT_SEED], ids=["tuned", "held_out"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_keeps_no_wrong_chain_and_explains_every_drop(layout, seed, shared_data, tmp_path):
    pool, truth = build_pool(layout, shared_data, tmp_path / "pool", seed)
    run = curate(layout, pool, tmp_path / "run", shared_data)
    outcome = check_run(run, truth)
    assert not outcome.failures, "\n".join(outcome.failures)
    groups = outcome.measured["near_duplicate_groups"]
    assert groups["at_or_above_threshold"] >= 0.8 * groups["groups"], groups  # the plants mostly reach the standard
    lost = outcome.measured["clean_lost"]  # besides the recipes' own filters (pool_math: Level 3 and harder)
    graded_away = sum(n for reason, n in lost.items() if reason.startswith(("ingest", "validate", "answer_check")))
    assert graded_away <= 0.02 * len(truth.clean), lost  # right chains refused or not confirmed by the grader


@pytest.mark.slow
@pytest.mark.shared_data
def test_numina_layout_says_its_golds_are_the_chains_own(shared_data, tmp_path):
    """NuminaMath-CoT's assistant turn repeats its solution: every such chain is flagged, counted and warned."""
    pool, truth = build_pool("numina_cot", shared_data, tmp_path / "pool", TUNED_SEED)
    run = curate("numina_cot", pool, tmp_path / "run", shared_data)
    manifest = json.loads((run / "manifest.json").read_text())
    gold = manifest["pool"]["provenance"]["ingest"]["gold"]
    curated = [json.loads(line) for line in (run / "curated.jsonl").read_text().splitlines()]
    messages = [json.loads(line) for line in (run / "messages.jsonl").read_text().splitlines()]
    circular = [row for row in curated if row["flags"].get("gold_circular")]
    assert gold["gold_from"] == "solution" and gold["circular_chains"] >= len(circular) > 0.8 * len(curated)
    flagged = {m["id"] for m in messages if m.get("provenance", {}).get("flags", {}).get("gold_circular")}
    assert flagged == {row["id"] for row in circular}
    assert manifest["flagged"]["gold_circular"] == len(circular)
    assert manifest["difficulty"]["signal"] == "metadata" and curated[0]["pass_rates"]["value"] == "math"


@pytest.mark.slow
@pytest.mark.shared_data
def test_field_map_override_from_the_command_line_replaces_the_recipes_map(repo_root, shared_data, tmp_path):
    """Hydra would merge the override into the recipe's map and keep its ``subject: source``."""
    pool, _ = build_pool("numina_cot", shared_data, tmp_path / "pool", TUNED_SEED)
    command = [
        *entry("limo.curate"), "recipe=pool_numina_cot", f"output_dir={tmp_path / 'run'}",
        f"curate.stages.ingest.source={pool}", f"data_dir={shared_data}", "++curate.stages.report.plots=false",
        "curate.stages.ingest.field_map={problem: problem, chain: messages}",
        "++curate.stages.difficulty.enabled=false",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "run" / "curate" / "manifest.json").read_text())
    assert manifest["config"]["stages"]["ingest"]["field_map"] == {"problem": "problem", "chain": "messages"}
    curated = [json.loads(line) for line in (tmp_path / "run" / "curate" / "curated.jsonl").read_text().splitlines()]
    assert curated and all(row["subject"] is None for row in curated), "the recipe's subject: source is gone"
