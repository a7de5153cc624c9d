"""``curate.method: rl_prompts``: the reward history and its two scores (LIMR's LIM, 1-shot RLVR's variance), and the
method on a small pool: the shared stages (grading, dedup, decontamination, the pass-rate window) then the ranking,
with the shared funnel and rejects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from curation.methods import METHODS
from curation.methods.rl_prompts.history import (
    filled,
    lim_scores,
    read_history,
    trajectories,
    variance_scores,
)
from curation.reward_history import history_row
from eval.records import DataError, write_jsonl
from limo.cli.compose import compose
from limo.setup.curate import build_curation

# ------------------------------------------------------------------------------------------------ history


def _history(folder: Path, rows_by_rank: dict[int, list[dict]], steps_per_epoch: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"steps_per_epoch": steps_per_epoch, "num_generations": 2}))
    for rank, rows in rows_by_rank.items():
        write_jsonl(folder / f"rank-{rank}.jsonl", rows)
    return folder


def test_history_groups_rewards_by_prompt_and_epoch_and_a_resumed_step_wins(tmp_path):
    rows0 = [
        history_row(1, ["a", "a", "b", "b"], [1, 0, 0, 0], 0, 0),
        history_row(2, ["c", "c"], [1, 1], 1, 0),
        history_row(2, ["c", "c"], [0, 1], 0, 0),  # a resumed run recomputed step 2: this row wins
    ]
    rows1 = [history_row(3, ["a", "a", "b", "b"], [1, 1, 1, 0], 0, 0)]
    folder = _history(tmp_path / "train" / "prompt_rewards", {0: rows0, 1: rows1}, steps_per_epoch=2)
    with (folder / "rank-1.jsonl").open("a") as torn:
        torn.write('{"step": 4, "ids": ["a"')  # a kill mid-append
    history = read_history(tmp_path)  # the run directory works as well as the folder
    assert (history.epochs, history.rows) == (2, 3)
    assert history.accuracy == {"a": [0.5, 1.0], "b": [0.0, 0.5], "c": [0.5, None]}
    complete, incomplete = trajectories(history, epochs=None)
    assert complete == {"a": [0.5, 1.0], "b": [0.0, 0.5]} and incomplete == ["c"]
    assert filled([None, 0.25, None, 1.0], 4) == [0.25, 0.25, 1.0, 1.0]  # a gap takes the next epoch's value
    assert filled([0.5, None], 2) is None and filled([0.5], 2) is None  # nothing after the gap: no trajectory


def test_lim_follows_limr_and_variance_follows_one_shot_rlvr():
    trajectories_ = {"follows": [0.2, 0.5, 0.8], "flat": [0.0, 0.0, 0.0], "solved": [1.0, 1.0, 1.0]}
    baseline = np.mean(list(trajectories_.values()), axis=0)  # LIMR's mean curve over prompts, per epoch
    worst = ((1 - baseline) ** 2).sum()
    expected = {k: 1 - ((np.array(v) - baseline) ** 2).sum() / worst for k, v in trajectories_.items()}
    assert lim_scores(trajectories_) == pytest.approx(expected, abs=1e-6)
    assert lim_scores(trajectories_)["follows"] > lim_scores(trajectories_)["flat"]
    assert variance_scores(trajectories_) == pytest.approx({k: float(np.std(v)) for k, v in trajectories_.items()})


def test_history_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="no per-prompt reward history"):
        read_history(tmp_path)
    folder = _history(tmp_path / "h", {0: [{"step": 1, "ids": ["a"], "rewards": []}]}, steps_per_epoch=1)
    with pytest.raises(DataError, match=r"rank-0.jsonl: row 1"):
        read_history(folder)


# ------------------------------------------------------------------------------------------------ the method

STRONG = ["S1", "S2"]


def _pool(path: Path, math500_problem: dict) -> Path:
    """Six problems with two strong attempts each (pass rates 0, 1/2, 1), one exact duplicate, one MATH500 copy."""
    rows = []
    plan = {"half1": (True, False), "half2": (False, True), "never": (False, False), "always": (True, True)}
    for pid, outcomes in plan.items():
        for model, correct in zip(STRONG, outcomes, strict=True):
            answer = "12" if correct else "13"
            rows.append(
                {
                    "id": pid,
                    "problem": f"Problem {pid}: count the ways to tile a board of size {len(pid)}.",
                    "answer": "12",
                    "chain": f"Working. The answer is \\boxed{{{answer}}}.",
                    "model": model,
                }
            )
    rows.append({**rows[0], "id": "copy", "model": "S1"})  # the same text as half1: dedup drops it
    leaked = math500_problem
    for model in STRONG:
        rows.append(
            {
                "id": "leaked",
                "problem": leaked["problem"],
                "answer": leaked["answer"],
                "chain": f"So \\boxed{{{leaked['answer']}}}.",
                "model": model,
            }
        )
    write_jsonl(path, rows)
    return path


def _curate(tmp_path: Path, shared_data: Path, *extra: str) -> Path:
    math500 = json.loads((shared_data / "math500.jsonl").read_text().splitlines()[0])
    pool = _pool(tmp_path / "pool.jsonl", math500)
    out = tmp_path / "run"
    overrides = [
        f"output_dir={out}",
        f"data_dir={shared_data}",
        f"curate.stages.ingest.source={pool}",
        "curate.stages.ingest.field_map={problem: problem, chain: chain, generator: model}",
        "curate.stages.ingest.problem_limit=null",
        "curate.stages.ingest.gold_overrides=null",
        "curate.stages.validate.allowed_settings=[]",
        "curate.stages.decontam.benchmarks=[math500]",
        f"curate.stages.difficulty.strong_models=[{','.join(STRONG)}]",
        "curate.stages.suspect_gold.models=[]",
        *extra,
    ]
    build_curation(compose("rl_demo", overrides)).run()
    return out / "curate"


@pytest.mark.shared_data
def test_rl_prompts_ranks_the_window_by_pass_rate_after_dedup_and_decontamination(tmp_path, shared_data):
    assert METHODS["rl_prompts"].trainer == "grpo"
    curate = _curate(
        tmp_path, shared_data, "curate.stages.difficulty.strong_pass_rate=[0.1,0.6]", "curate.rl_prompts.n=1"
    )
    prompts = [json.loads(line) for line in (curate / "prompts.jsonl").open()]
    assert [p["id"] for p in prompts] == ["half1"]  # half2 ties at p(1-p) = 0.25; pool order keeps half1 first
    assert prompts[0]["gold"] == "12" and prompts[0]["score"] == {"pass_rate": 0.25} and prompts[0]["pass_rate"] == 0.5
    rejects = [json.loads(line) for line in (curate / "rejects.jsonl").open()]
    reasons = {(r["problem_id"], r["reason"].split(":")[0]) for r in rejects if r["kind"] == "problem"}
    assert ("copy", "duplicate_problem") in reasons and ("leaked", "contaminated") in reasons
    assert ("never", "strong_pass_rate_below_window") in reasons and (
        "always",
        "strong_pass_rate_above_window",
    ) in reasons
    assert ("half2", "below_top_n") in reasons
    funnel = json.loads((curate / "funnel.json").read_text())
    assert funnel["method"] == "rl_prompts" and funnel["stages"][-1]["stage"] == "rank"
    pool = funnel["totals"]["pool"]
    assert pool["read"] == pool["selected"] + pool["dropped"]
    assert funnel["totals"]["prompts"] == {"ranked": 2, "selected": 1, "dropped": 1}
    assert (curate / "manifest.json").is_file() and "## Ranking" in (curate / "report.md").read_text()


@pytest.mark.shared_data
def test_rl_prompts_ranks_by_a_first_runs_learning_impact(tmp_path, shared_data):
    history = _history(
        tmp_path / "first" / "train" / "prompt_rewards",
        {
            0: [
                history_row(1, ["half1", "half2", "never"], [0, 0, 0], 0, 0),
                history_row(2, ["half1", "half2", "never"], [1, 0, 1], 0, 0),
            ]
        },
        steps_per_epoch=1,
    )
    curate = _curate(
        tmp_path,
        shared_data,
        "curate.rl_prompts.rank=lim",
        f"++curate.rl_prompts.history={history}",
        "++curate.rl_prompts.min_score=0.7",
        "++curate.stages.difficulty.enabled=false",
    )
    prompts = [json.loads(line) for line in (curate / "prompts.jsonl").open()]
    # mean curve (0, 2/3): half1 and never follow it (1 - (1/9) / (10/9) = 0.9), half2 stays flat (0.6); always has
    # no history
    assert [p["id"] for p in prompts] == ["half1", "never"] and prompts[0]["score"] == {"lim": 0.9}
    rejects = [json.loads(line) for line in (curate / "rejects.jsonl").open() if '"rank"' in line]
    assert {(r["id"], r["reason"]) for r in rejects} == {("half2", "below_min_score"), ("always", "no_reward_history")}
