"""Offline is detected once, up front: what needs the hub fails (or falls back) at once, in one line, instead
of the hub client's retry loop (about 25 s and a dozen retry lines per file)."""

from __future__ import annotations

import pytest

from eval.records import HubOfflineError, iter_rows
from limo.cli.compose import compose
from limo.setup.curate import build_curation, spend_plan
from limo.training.memory import model_shape


def test_a_hub_pool_offline_fails_at_once_naming_it(unreachable_hub):
    with pytest.raises(HubOfflineError, match=r"owner/pool: the hub cannot be reached \(127\.0\.0\.1"):
        next(iter_rows("owner/pool"))


def test_the_planner_offline_takes_the_model_groups_shape_with_one_line(unreachable_hub, caplog):
    with caplog.at_level("WARNING"):
        _, source = model_shape(compose("limo").model)
    assert source == "model group `shape:`"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "the hub cannot be reached" in lines[0] and "Qwen/Qwen2.5-32B-Instruct" in lines[0]


def test_a_dry_run_of_a_hub_pool_offline_says_how_to_plan_anyway(unreachable_hub, tmp_path):
    curation = build_curation(compose("limo", [f"output_dir={tmp_path}"]))
    with pytest.raises(HubOfflineError, match=r"AI-MO/NuminaMath-CoT: .*dry_run_problems=<N>"):
        spend_plan(curation, "H100-80GB")


def test_a_dry_run_plans_from_a_problem_count_without_the_pool(unreachable_hub, tmp_path):
    curation = build_curation(compose("limo", [f"output_dir={tmp_path}"]))
    text = spend_plan(curation, "H100-80GB", 1000)
    assert text.startswith("Rollout plan on H100-80GB: 1,000 problems") and "mean pool chain unknown" in text
    assert "stage weak (Qwen2.5-Math-7B-Instruct): 1,000 problems, 4,000 generations" in text
    assert "(4,096 per sample)" in text and "(8,192 per sample)" in text  # max_new_tokens / expected_new_tokens
    assert not (tmp_path / "curate").exists()


def test_a_hub_model_offline_fails_at_once_naming_what_needed_it(unreachable_hub):
    from eval.backends.hf import load_model

    with pytest.raises(
        HubOfflineError, match=r"^Qwen/Qwen2.5-7B: the hub cannot be reached .* the model to generate with"
    ):
        load_model("Qwen/Qwen2.5-7B", dtype="float32", device="cpu")
