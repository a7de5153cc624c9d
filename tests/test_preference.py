"""Preference pairs: length-bias controls, accounting, pairs.jsonl validation, and the `discopop` recipe's
curation end to end on CHAMP."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from curation.methods.pairs.pairs import PairOptions, ScoredChain, build_pairs, relative_gap
from curation.schema import Chain
from eval.grading.grader import Verdict
from eval.problem import Problem
from eval.records import DataError
from limo.training.preference import check_beta, conversational_rows, load_pairs
from tests.funnel_schema import check_one_schema

PROBLEMS = {pid: Problem(id=pid, problem=f"Problem {pid}?", answer="4", source="test") for pid in ("a", "b", "c")}
RIGHT = Verdict("correct", True, "4", "equal")
WRONG = Verdict("incorrect", False, "5", "not equal")
UNREADABLE = Verdict("unparseable", False, None, "outside the grammar")


def _chain(pid: str, name: str, length: int, verdict: Verdict, quality: float = 0.5) -> ScoredChain:
    return ScoredChain(Chain(f"{pid}/{name}", pid, "x" * length, None, name), verdict, quality)


def test_pairs_respect_the_length_gap_and_prefer_quality():
    chains = [
        _chain("a", "good", 100, RIGHT, 0.9),
        _chain("a", "ok", 100, RIGHT, 0.1),
        _chain("a", "near", 90, WRONG),
        _chain("a", "far", 400, WRONG),
        _chain("a", "garbled", 100, UNREADABLE),  # unreadable is not evidence of a wrong answer
    ]
    options = PairOptions(pairs_per_problem=2, max_length_gap=0.3, balance_longer=False)
    pairs, rejects, report = build_pairs(PROBLEMS, chains, options, seed=0)
    assert [p.id for p in pairs] == ["a/good>a/near"]
    assert relative_gap(pairs[0].chosen, pairs[0].rejected) <= 0.3
    assert pairs[0].chosen.endswith("$\\boxed{4}$.") and pairs[0].rejected.endswith("$\\boxed{5}$.")
    assert (
        pairs[0].provenance["chosen_quality"] == 0.9
        and pairs[0].provenance["rejected_verdict"]["status"] == "incorrect"
    )
    assert report["refused_by_length_gap"] >= 1 and not rejects


def test_problems_without_a_pair_are_rejected_with_the_reason():
    chains = [
        _chain("a", "only-right", 100, RIGHT),
        _chain("b", "only-wrong", 100, WRONG),
        _chain("c", "right", 100, RIGHT),
        _chain("c", "long-wrong", 1000, WRONG),
    ]
    pairs, rejects, _ = build_pairs(PROBLEMS, chains, PairOptions(max_length_gap=0.3), seed=0)
    assert not pairs
    assert {r.id: r.reason for r in rejects} == {
        "a": "no incorrect chain",
        "b": "no correct chain above min_quality",
        "c": "no length-matched pair (1 candidates over max_length_gap)",
    }


def test_balance_evens_out_chosen_longer_pairs():
    chains = []
    for pid in ("a", "b", "c"):
        chains += [_chain(pid, "right", 120, RIGHT), _chain(pid, "wrong", 100, WRONG)]
    chains += [_chain("c", "right2", 80, RIGHT), _chain("c", "wrong2", 100, WRONG)]
    raw, _, _ = build_pairs(PROBLEMS, chains, PairOptions(balance_longer=False), seed=0)
    assert len(raw) == 4  # three chosen-longer pairs, one rejected-longer
    pairs, rejects, report = build_pairs(PROBLEMS, chains, PairOptions(balance_longer=True), seed=0)
    assert report["before_controls"]["chosen_longer_share"] == 0.75
    assert len(pairs) == 3 and report["dropped_by_balance"] == 1 and len(rejects) == 1
    assert rejects[0].reason == "dropped to balance chosen-longer against rejected-longer"


def test_load_pairs_names_row_and_field(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"id": "1", "prompt": "p", "chosen": "a", "rejected": "b"},
        {"id": "2", "prompt": "p", "chosen": "", "rejected": "b"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError, match="row 2 field chosen"):
        load_pairs(path)
    path.write_text(json.dumps(rows[0]) + "\n")
    rows = conversational_rows(load_pairs(path).pairs, "Reason step by step.")
    assert rows[0]["prompt"][0] == {"role": "system", "content": "Reason step by step."}
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "a"}]


@pytest.mark.parametrize("beta, warns", [(0.05, False), (0.01, True), (2.5, True), (0.005, True)])
def test_discopop_beta_outside_the_stable_range_warns(caplog, beta, warns):
    with caplog.at_level(logging.WARNING, logger="limo.training.preference"):
        check_beta({"loss_type": "discopop", "beta": beta})
        check_beta({"loss_type": "sigmoid", "beta": beta})  # the range is DiscoPOP's finding, not DPO's
    assert (len(caplog.records) == 1) is warns


@pytest.fixture(scope="module")
def discopop_run(repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("discopop")
    command = [
        sys.executable,
        "-m",
        "limo.curate",
        "recipe=discopop",
        f"output_dir={out}",
        "curate.stages.ingest.problem_limit=30",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_discopop_recipe_writes_length_matched_pairs_with_provenance(discopop_run):
    curate = discopop_run / "curate"
    pairs = [json.loads(line) for line in (curate / "pairs.jsonl").read_text().splitlines()]
    assert pairs
    for pair in pairs:
        assert set(pair) == {"prompt", "chosen", "rejected", "id", "provenance"}
        provenance = pair["provenance"]
        assert provenance["chosen_verdict"]["correct"] and provenance["rejected_verdict"]["status"] == "incorrect"
        assert provenance["length_gap"] <= 0.3 and provenance["chosen_chain_id"] != provenance["rejected_chain_id"]
    manifest = json.loads((curate / "manifest.json").read_text())
    bias = manifest["summary"]["length_bias"]["after_controls"]
    assert (
        bias["pairs"] == len(pairs) and abs(bias["chosen_longer_share"] - 0.5) <= 0.5 / len(pairs) + 1e-3
    )  # rounded to 3 decimals
    funnel = check_one_schema(curate, "pairs")
    pool = funnel["totals"]["pool"]
    assert pool["read"] == pool["selected"] + pool["dropped"]
    assert funnel["method"] == "pairs" and funnel["summary"]["pairs"] == len(pairs)
    assert "Length bias" in (curate / "report.md").read_text()
