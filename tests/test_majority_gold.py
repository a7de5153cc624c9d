"""Majority-vote golds in curation (`curation.stages.majority_gold`): a pool without golds curates with golds voted
from its chains, says so in its report, manifest and rows, and drops what the vote cannot decide, with the reason.

Pools are real MATH-train problems (``../shared/data``) with their solutions as chains and the answer column left
out: right chains (the solution, and the solution after an opening line) and wrong ones (the last ``\\boxed{}``
moved to another value), so that the voted gold can be checked against the answer MATH gives.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from curation.executors import ExecutorOptions
from curation.methods import METHODS, CurationSummary, RunContext
from curation.options import IngestOptions, MajorityGoldOptions, StageOptions
from curation.pool.rows import RowSpec, read_row
from curation.schema import Chain
from curation.stages import curate_items
from curation.stages.majority_gold import generator_family
from eval.options import OptionsError, to_options
from eval.problem import Problem
from eval.records import RowError
from tests.curation_outputs import assert_same_outputs
from tests.pool_builder import math_sources, replace_last_box

pytestmark = pytest.mark.shared_data

# per problem: how many right and wrong chains (wrong ones each with another wrong value)
SHAPES = {"agreed": (3, 0), "most": (2, 1), "split": (1, 2), "few": (2, 0)}
PER_SHAPE = 3


def write_pool(data_dir: Path, folder: Path, *, with_gold: int = 0) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A gold-less pool of MATH-train problems (the first ``with_gold`` keep their answer); returns its path and
    each problem's (shape, MATH answer)."""
    integers = [s for s in math_sources(data_dir) if re.fullmatch(r"\d{1,6}", s.answer.strip())]
    sources = integers[: PER_SHAPE * len(SHAPES) + with_gold]
    rng = random.Random(0)
    rows, truth = [], {}
    shapes = [shape for shape in SHAPES for _ in range(PER_SHAPE)] + ["most"] * with_gold
    for number, (source, shape) in enumerate(zip(sources, shapes, strict=True)):
        right, wrong = SHAPES[shape]
        chains = [source.solution, "Let us work through it.\n\n" + source.solution, "In short:\n" + source.solution]
        chains = chains[:right] + [
            replace_last_box(source.solution, str(int(source.answer) + k + 1)) for k in range(wrong)
        ]
        pid = f"math/{number}"
        gold = {"answer": source.answer} if number >= len(shapes) - with_gold else {}
        rows += [{"id": pid, "problem": source.problem, "chain": chain, **gold} for chain in chains]
        truth[pid] = (shape, source.answer)
    rows.append({"id": "broken", "chain": "A chain without its problem: \\boxed{1}."})  # rejected either way
    rng.shuffle(rows)
    path = folder / "pool.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path, truth


def stages(pool: Path, **majority) -> dict:
    return {
        "ingest": {"source": str(pool)},
        "majority_gold": {"enabled": True, **majority},
        "decontam": {"enabled": False},
        "difficulty": {"enabled": False},
        "report": {"plots": False},
    }


def curate(options: dict, out: Path) -> CurationSummary:
    return METHODS["limo"].run(to_options(StageOptions, options), None, RunContext(out, 0, "goldless"))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def goldless_run(shared_data, tmp_path_factory) -> tuple[Path, dict[str, tuple[str, str]], Path]:
    """The curated folder of a gold-less pool (two problems keep their gold), the truth, and the pool."""
    folder = tmp_path_factory.mktemp("goldless")
    pool, truth = write_pool(shared_data, folder, with_gold=2)
    curate(stages(pool), folder / "run")
    return folder / "run" / "curate", truth, pool


# ------------------------------------------------------------------------------------------------ ingest


def test_a_row_without_a_gold_is_rejected_saying_how_to_vote_one_or_kept_when_golds_are_voted():
    raw = {"problem": "What is 2 + 3?", "chain": "So it is $\\boxed{5}$."}
    with pytest.raises(RowError, match=r"no gold answer.*curate\.stages\.majority_gold\.enabled: true"):
        read_row(raw, RowSpec.from_options(IngestOptions(source="pool.jsonl")), 1)
    record = read_row(raw, RowSpec.from_options(IngestOptions(source="pool.jsonl"), voted_golds=True), 1)
    assert (record.problem.answer, record.gold_origin, len(record.chains)) == ("", "majority", 1)


def test_majority_options_that_cannot_work_fail_naming_the_key():
    with pytest.raises(OptionsError, match="majority_gold.min_agreement"):
        MajorityGoldOptions(min_agreement=1.5)
    with pytest.raises(OptionsError, match="majority_gold.min_votes"):
        MajorityGoldOptions(min_votes=0)


def test_without_voting_every_goldless_row_is_rejected_and_the_accounting_reconciles(shared_data, tmp_path):
    pool, truth = write_pool(shared_data, tmp_path, with_gold=2)
    options = stages(pool)
    options["majority_gold"] = {"enabled": False}
    out = tmp_path / "run" / "curate"
    curate(options, tmp_path / "run")
    rows = len(pool.read_text().splitlines())
    rejects = jsonl(out / "rejects.jsonl")
    ingest = [r for r in rejects if r["stage"] == "ingest"]
    reasons = {r["id"]: r["detail"]["reason"] for r in ingest}
    assert len(ingest) == rows - 2 * 3 and "missing required field 'problem'" in reasons.pop("broken")
    assert all("set curate.stages.majority_gold.enabled: true" in reason for reason in reasons.values())
    funnel = json.loads((out / "funnel.json").read_text())
    assert funnel["totals"]["read"] == rows == funnel["totals"]["selected"] + funnel["totals"]["dropped"]
    given = {f"math/{n}" for n in range(len(truth) - 2, len(truth))}
    assert {r["id"] for r in jsonl(out / "curated.jsonl")} == given and set(truth) - given == set(reasons)


# ------------------------------------------------------------------------------------------------ a whole run


def test_a_goldless_pool_curates_with_voted_golds_that_match_the_datasets(goldless_run):
    out, truth, _ = goldless_run
    curated = jsonl(out / "curated.jsonl")
    kept = {p for p, (shape, _) in truth.items() if shape in ("agreed", "most")}
    assert {r["id"] for r in curated} == kept
    for row in curated:
        assert row["gold_answer"] == truth[row["id"]][1]  # the majority is the right answer here
        assert row["gold_source"] in ("majority", "given")
    voted = {r["id"]: r for r in curated if r["gold_source"] == "majority"}
    assert {r["gold_agreement"] for r in voted.values()} == {1.0, 0.6667}
    given = [r for r in curated if r["gold_source"] == "given"]
    assert len(given) == 2 and all(r["gold_vote_agrees"] is True and r["gold_agreement"] == 0.6667 for r in given)


def test_problems_the_vote_cannot_decide_are_dropped_with_reason_and_agreement(goldless_run):
    out, truth, _ = goldless_run
    dropped = {r["id"]: r for r in jsonl(out / "rejects.jsonl") if r["kind"] == "problem"}
    for pid, (shape, _) in truth.items():
        if shape == "split":
            detail = dropped[pid]["detail"]
            assert dropped[pid]["reason"] == "majority_below_threshold"
            assert detail["agreement"] == 0.3333 and detail["cluster_sizes"] == [1, 1, 1] and detail["votes"] == 3
        elif shape == "few":
            assert dropped[pid]["reason"] == "majority_too_few_votes" and dropped[pid]["detail"]["votes"] == 2
    wrong = [r for r in jsonl(out / "rejects.jsonl") if r["stage"] == "answer_check"]
    assert len(wrong) == PER_SHAPE + 2 and {r["reason"] for r in wrong} == {"answer_incorrect"}


def test_the_report_manifest_and_funnel_say_the_golds_were_voted(goldless_run):
    out, _, _ = goldless_run
    funnel = json.loads((out / "funnel.json").read_text())
    stage = next(s for s in funnel["stages"] if s["stage"] == "majority_gold")
    assert [s["stage"] for s in funnel["stages"]][:3] == ["ingest", "majority_gold", "validate"]
    notes = stage["notes"]
    assert (notes["voted"], notes["kept"]) == (4 * PER_SHAPE, 2 * PER_SHAPE)
    assert notes["dropped"] == {"majority_below_threshold": PER_SHAPE, "majority_too_few_votes": PER_SHAPE}
    assert notes["agreement"] == {"0.3": PER_SHAPE, "0.6": PER_SHAPE, "1.0": 2 * PER_SHAPE}
    assert notes["given"] == {"problems": 2, "vote_agrees": 2, "vote_disagrees": 0, "no_vote": 0}
    totals, ingest = funnel["totals"], funnel["stages"][0]
    assert totals["read"] == totals["selected"] + totals["dropped"] == ingest["items_in"]
    assert ingest["items_in"] == ingest["items_out"] + 1 and ingest["dropped"] == {"invalid_row": 1}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["golds"]["source"] == "majority" and manifest["golds"]["kept"] == 2 * PER_SHAPE
    assert manifest["pool"]["provenance"]["ingest"]["gold"]["from_rows"]["majority"] > 0
    report = (out / "report.md").read_text()
    assert "## Golds by majority vote" in report and f"{4 * PER_SHAPE} problems without a gold" in report


def test_golds_voted_over_many_parts_are_the_golds_voted_over_one(goldless_run, tmp_path):
    pool = goldless_run[2]  # the same file: rows name their source
    context = RunContext(tmp_path / "run", 0, "goldless", executor=ExecutorOptions(shard_rows=4))
    METHODS["limo"].run(to_options(StageOptions, stages(pool)), None, context)
    assert_same_outputs(goldless_run[0], tmp_path / "run" / "curate", ("local", "local"))


def test_a_rerun_with_another_threshold_in_the_same_folder_gives_a_fresh_runs_outputs(goldless_run, tmp_path):
    pool = goldless_run[2]
    curate(stages(pool), tmp_path / "rerun")
    curate(stages(pool, min_agreement=0.8), tmp_path / "rerun")  # reuses the first run's votes and shards
    curate(stages(pool, min_agreement=0.8), tmp_path / "fresh")
    assert_same_outputs(tmp_path / "fresh" / "curate", tmp_path / "rerun" / "curate", ("local", "local"))
    dropped = json.loads((tmp_path / "rerun" / "curate" / "manifest.json").read_text())["golds"]["dropped"]
    assert dropped["majority_below_threshold"] == 2 * PER_SHAPE  # the 2-of-3 problems go too at 0.8


# ------------------------------------------------------------------------------------------------ in memory


def chain(index: int, answer: str, generator: str = "model") -> Chain:
    return Chain(
        f"p/{generator}/{index}", "p", f"Counting gives $\\boxed{{{answer}}}$ ({index}).", generator=generator
    )


def test_a_given_gold_is_kept_when_the_vote_disagrees_and_the_disagreement_is_recorded(tmp_path):
    problem = Problem("p", "How many pairings of four bowls and four glasses?", "16", "test")
    chains = [chain(i, answer) for i, answer in enumerate(["12", "12", "16"])]
    options = to_options(StageOptions, {"majority_gold": {"enabled": True}})
    state, kept = curate_items([problem], chains, options, ["majority_gold", "answer_check"], tmp_path)
    assert kept.problems["p"].answer == "16" and kept.problems["p"].extra["gold"]["agrees"] is False
    notes = next(c.notes for c in state.funnel if c.stage == "majority_gold")
    assert notes["given"] == {"problems": 1, "vote_agrees": 0, "vote_disagrees": 1, "no_vote": 0}
    assert notes["given_disagreements"] == [{"problem_id": "p", "gold": "16", "majority": "12", "agreement": 0.6667}]
    assert list(kept.chains) == ["p/model/2"]  # graded against the pool's gold, not the majority


def test_chains_validation_would_drop_do_not_vote(tmp_path):
    problem = Problem("p", "What is the product of three and four?", "", "test")
    hinted = [replace(chain(i, "7"), id=f"p/hint/{i}", prompt_setting="hint") for i in range(3)]
    chains = hinted + [replace(chain(i, "12"), prompt_setting="0-Shot") for i in range(2)]
    stages = {"majority_gold": {"enabled": True, "min_votes": 2}, "validate": {"allowed_settings": ["0-Shot"]}}
    state, kept = curate_items([problem], chains, to_options(StageOptions, stages), ["majority_gold"], tmp_path)
    assert kept.problems["p"].answer == "12" and state.funnel[-1].notes["agreement"] == {"1.0": 1}


def test_only_the_named_models_vote(tmp_path):
    problem = Problem("p", "What is the product of three and four?", "", "test")
    chains = [chain(i, "7", "weak") for i in range(3)] + [chain(i, "12", "strong") for i in range(2)]
    options = to_options(StageOptions, {"majority_gold": {"enabled": True, "models": ["strong"], "min_votes": 2}})
    _, kept = curate_items([problem], chains, options, ["majority_gold", "answer_check"], tmp_path)
    assert kept.problems["p"].answer == "12" and kept.problems["p"].extra["gold"]["votes"] == 2
    assert sorted(kept.chains) == ["p/strong/0", "p/strong/1"]  # the weak chains are graded against 12


@pytest.mark.parametrize(
    "name, family",
    [("gpt-4o-mini", "gpt"), ("gpt-4", "gpt"), ("Qwen/Qwen2.5-Math-7B-Instruct", "qwen"), ("claude-3-opus", "claude"),
     ("o1-mini", "o"), ("DeepSeek-R1", "deepseek"), ("4o", "4o"), ("model", "model")],
)  # fmt: skip
def test_a_generator_s_family_is_the_leading_letters_of_its_name(name, family):
    assert generator_family(name) == family


def test_versions_of_one_model_count_as_one_generator_when_counted_by_family(tmp_path):
    problem = Problem("p", "What is the product of three and four?", "", "test")
    chains = [chain(0, "13", "gpt-4"), chain(1, "13", "gpt-4o"), chain(2, "12", "claude-3-opus")]
    by_name = {"enabled": True, "min_generators": 2}
    by_family = {**by_name, "count_generators": "family"}
    _, kept = curate_items([problem], chains, to_options(StageOptions, {"majority_gold": by_name}), ["majority_gold"],
                           tmp_path / "name")  # fmt: skip
    assert kept.problems["p"].answer == "13" and kept.problems["p"].extra["gold"]["generators"] == 2
    state, kept = curate_items([problem], chains, to_options(StageOptions, {"majority_gold": by_family}),
                               ["majority_gold"], tmp_path / "family")  # fmt: skip
    assert "p" not in kept.problems
    notes = state.funnel[-1].notes
    assert notes["dropped"] == {"majority_too_few_generators": 1}
    assert notes["generator_families"] == {"claude": ["claude-3-opus"], "gpt": ["gpt-4", "gpt-4o"]}
    with pytest.raises(OptionsError, match="count_generators: 'model'; expected name or family"):
        to_options(StageOptions, {"majority_gold": {"count_generators": "model"}})


# ------------------------------------------------------------------------------------------------ the entry point


@pytest.mark.slow
def test_the_pool_majority_recipe_curates_a_goldless_pool_through_the_entry_point(shared_data, repo_root, tmp_path):
    pool, truth = write_pool(shared_data, tmp_path)
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "limo.curate",
        "recipe=pool_majority",
        f"output_dir={out}",
        f"curate.stages.ingest.source={pool}",
        "curate.stages.majority_gold.min_votes=3",
        "curate.stages.decontam.enabled=false",
        "++curate.stages.report.plots=false",
    ]
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    curated = jsonl(out / "curate" / "curated.jsonl")
    assert curated and all(r["gold_source"] == "majority" and r["gold_answer"] == truth[r["id"]][1] for r in curated)
    assert "## Golds by majority vote" in (out / "curate" / "report.md").read_text()
