"""The rollout spend plan: its data file is sourced and checked, and its arithmetic follows the stated rules."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from curation.rollouts.adaptive import expected_draws, keep_probability, pass_rate_window, weak_filter
from curation.rollouts.spend import (
    PassRateDistribution,
    PoolLengths,
    RolloutStage,
    load_spend_data,
    lookup_throughput,
    plan_rollouts,
    pool_lengths,
    render_plan,
)
from eval.records import DataError
from tests.launch import entry
from tests.shared_data import REPO_ROOT

WEAK = RolloutStage("weak", "Qwen2.5-Math-7B-Instruct", 7, 4, 4096, weak_filter(4, 1))
STRONG = RolloutStage(
    "strong", "DeepSeek-R1-Distill-Qwen-32B", 32, 32, 32768, pass_rate_window(32, 0.03125, 0.09375), 2, 6000
)
LENGTHS = PoolLengths(problems=1000, prompt_tokens_mean=100.0, chain_tokens_mean=500.0, counted_by="test")


@pytest.fixture(scope="module")
def data():
    return load_spend_data()


def test_every_throughput_value_has_a_source(data):
    assert len(data.throughput) >= 8
    for row in data.throughput:
        assert row.output_tokens_per_s > 0 and len(row.source) > 40
        assert row.source.startswith("Estimate") == row.estimate  # estimates say so in their own words
    assert {"A100-80GB", "H100-80GB"} <= {row.gpu for row in data.throughput}
    assert data.chars_per_token == 4.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("throughput: []\n", "no 'throughput' entries"),
        (
            "throughput:\n  - {gpu: H100, estimate: false, source: x, params_b: 7, tensor_parallel: 1}\n",
            "throughput row 1: output_tokens_per_s: expected a positive number, got None",
        ),
        ("throughput:\n  - {gpu: H100, estimate: maybe, source: x}\n", "throughput row 1: field 'estimate'"),
        ("throughput:\n  - {gpu: '', estimate: true}\n", "throughput row 1: field 'gpu' is missing or empty"),
    ],
)
def test_bad_spend_data_names_file_row_and_field(tmp_path, text, message):
    path = tmp_path / "spend.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as caught:
        load_spend_data(path)
    assert str(path) in str(caught.value)


def test_lookup_takes_the_next_larger_size_and_explains_misses(data):
    assert lookup_throughput(data.throughput, 7, "H100-80GB", 1).params_b == 7
    assert lookup_throughput(data.throughput, 7.6, "H100-80GB", 1).params_b == 14  # errs towards more GPU-hours
    with pytest.raises(ValueError, match=r"no throughput for a 405B model on H100-80GB.*\(32.0, 2\)"):
        lookup_throughput(data.throughput, 405, "H100-80GB", 8)
    with pytest.raises(ValueError, match="GPUs listed"):
        lookup_throughput(data.throughput, 7, "TPU-v5", 1)


def test_pool_lengths_with_and_without_a_tokenizer():
    problems, chains = ["abcd" * 10, "ab" * 10], ["x" * 400]
    by_chars = pool_lengths(iter(problems), iter(chains), count_tokens=None, chars_per_token=4.0)
    assert (by_chars.problems, by_chars.prompt_tokens_mean, by_chars.chain_tokens_mean) == (2, 7.5, 100.0)
    assert "estimate" in by_chars.counted_by
    by_words = pool_lengths(["a b c", "d"], ["e f"], count_tokens=lambda t: len(t.split()), chars_per_token=4.0)
    assert (by_words.prompt_tokens_mean, by_words.chain_tokens_mean, by_words.counted_by) == (2.0, 2.0, "tokenizer")


def test_plan_arithmetic_for_a_two_kind_pool(data):
    """Half the problems never solved, half always solved by both models: every figure by hand."""
    rates = PassRateDistribution(rows=(((0.0, 0.0), 1.0), ((1.0, 1.0), 1.0)), source="by hand")
    weak, strong = plan_rollouts([WEAK, STRONG], LENGTHS, gpu="H100-80GB", data=data, pass_rates=rates)
    assert weak.problems == 1000 and weak.generations == 4000
    assert weak.adaptive_generations == 500 * 4 + 500 * 1  # unsolved: all 4; solved: stops at the first success
    assert weak.tokens_per_sample == 500 and weak.new_tokens == 4000 * 500 and weak.new_tokens_max == 4000 * 4096
    assert weak.gpu_hours == pytest.approx(4000 * 500 / 3281.19 / 3600)
    assert strong.problems == 500 and strong.generations == 500 * 32  # only the never-solved half enters
    assert strong.adaptive_generations == 500 * 32  # zero successes: all 32 are needed to drop a problem
    assert strong.tokens_per_sample == 6000  # the stage's own expectation wins over the pool's chain length
    assert strong.gpu_hours == pytest.approx(500 * 32 * 6000 / 2263.1 / 3600 * 2)
    assert strong.throughput.estimate and "Estimate" in strong.throughput.source


def test_plan_matches_exact_expectations_over_the_reference_rates(data):
    plans = plan_rollouts([WEAK, STRONG], LENGTHS, gpu="A100-80GB", data=data)
    rows = data.reference_pass_rates.rows
    total = sum(w for _, w in rows)
    weak_expected = sum(w * expected_draws(WEAK.rule, r[0]) for r, w in rows) / total
    strong_entering = sum(w * keep_probability(WEAK.rule, r[0]) for r, w in rows) / total
    assert plans[0].adaptive_generations == pytest.approx(1000 * weak_expected)
    assert plans[1].problems == pytest.approx(1000 * strong_entering)
    assert plans[1].adaptive_saving > 1.3  # CHAMP's strong pass rates: many problems are decided early
    text = render_plan(plans, LENGTHS, "A100-80GB", data.reference_pass_rates.source)
    for plan in plans:
        assert f"{plan.generations:,.0f} generations" in text and plan.throughput.source in text
    assert "CHAMP" in text and "upper bound" in text


def test_plan_refuses_rates_that_do_not_fit_the_stages(data):
    with pytest.raises(ValueError, match="one rate per stage"):
        plan_rollouts(
            [WEAK, STRONG],
            LENGTHS,
            gpu="H100-80GB",
            data=data,
            pass_rates=PassRateDistribution.from_problems([[0.5]], "pilot"),
        )


@pytest.mark.slow
def test_reference_pass_rates_are_what_the_bench_measures_on_champ(data, monkeypatch):
    """The file's CHAMP distribution is re-measured (grading 3,240 recorded attempts) and must still match."""
    spec = importlib.util.spec_from_file_location("bench_adaptive", REPO_ROOT / "bench" / "curation" / "adaptive.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    measured = bench.champ_pass_rates()
    counts: dict[tuple[float, ...], float] = {}
    for rates in measured.values():
        key = tuple(round(r, 6) for r in rates)
        counts[key] = counts.get(key, 0) + 1
    recorded = {tuple(round(r, 6) for r in rates): weight for rates, weight in data.reference_pass_rates.rows}
    assert recorded == counts


def _curate(repo_root, *overrides: str) -> subprocess.CompletedProcess:
    command = entry("limo.curate", "recipe=limo", "dry_run=true", *overrides)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300, env=env)


def test_dry_run_prints_the_limo_plan_and_generates_nothing(tmp_path, repo_root, data):
    """`limo.curate recipe=limo dry_run=true` offline: the recipe's pool swapped for CHAMP (no hub here)."""
    done = _curate(repo_root, f"output_dir={tmp_path}", "curate.stages.ingest.source=champ")
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    assert "Rollout plan on H100-80GB: 270 problems" in text
    assert "stage weak (Qwen2.5-Math-7B-Instruct): 270 problems, 1,080 generations (adaptive:" in text
    assert "stage strong (DeepSeek-R1-Distill-Qwen-32B)" in text and "(8,192 per sample)" in text
    assert "GPU-hours" in text and "adaptive (" in text and "x less)" in text
    assert "CHAMP" in text  # the pass rates behind the adaptive figures are named
    assert (
        not (tmp_path / "curate" / "work" / "rollouts").exists()
        and not (tmp_path / "curate" / "curated.jsonl").exists()
    )


def test_dry_run_needs_each_model_size(tmp_path, repo_root):
    done = _curate(
        repo_root,
        f"output_dir={tmp_path}",
        "curate.stages.ingest.source=champ",
        "curate.stages.difficulty.strong_rollouts.params_b=null",
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "limo.curate: error: curate.stages.difficulty.strong_rollouts.params_b: the spend plan needs the model's size "
        "in billions of parameters"
    )
