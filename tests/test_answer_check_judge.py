"""Curation's answer check under a grading policy (`curate.stages.answer_check.policy` + `judge`, the keys of
``evaluate.grader``), on the one runner, with a replayed judge keyed by chain id."""

from __future__ import annotations

import json
from pathlib import Path

from curation.options import AnswerCheckOptions, StageOptions
from curation.schema import Chain
from curation.stages import curate_items
from eval.grading.judge import JudgeOptions
from eval.problem import Problem
from eval.records import write_jsonl

PROBLEMS = [
    Problem("p1", "What is 2 + 2?", "4", "test"),
    Problem("p2", "Name the shape with six equal sides.", "a regular hexagon", "test"),
]
CHAINS = [
    Chain("p1/m/0", "p1", "2 + 2 = 4, so the answer is \\boxed{4}.", generator="m"),
    Chain("p1/m/1", "p1", "So the answer is \\boxed{5}.", generator="m"),
    Chain("p2/m/0", "p2", "Six equal sides and six equal angles: it is regular, with six sides.", generator="m"),
]


def _judge(tmp_path: Path, verdicts: dict[str, str]) -> JudgeOptions:
    replies = tmp_path / "judge.jsonl"
    rows = [
        {"problem_id": cid, "sample_index": 0, "text": f"REASON: read\nVERDICT: {v}"} for cid, v in verdicts.items()
    ]
    write_jsonl(replies, rows)
    return JudgeOptions(backend="replay", backend_options={"path": str(replies)})


def _run(tmp_path: Path, policy: str, verdicts: dict[str, str]):
    check = AnswerCheckOptions(policy=policy, judge=_judge(tmp_path, verdicts), timeout_s=60.0)
    work = tmp_path / "curate" / "work"
    work.mkdir(parents=True)
    state, _ = curate_items(PROBLEMS, CHAINS, StageOptions(answer_check=check), ["answer_check"], work)
    count = next(c for c in state.funnel if c.stage == "answer_check")
    return state, count, work


def test_symbolic_then_judge_lets_the_judge_decide_only_what_the_grader_cannot(tmp_path):
    state, count, work = _run(tmp_path, "symbolic_then_judge", {"p2/m/0": "correct"})
    kept = {c for c, alive in zip((c.id for c in CHAINS), state.chain_alive, strict=True) if alive}
    assert kept == {"p1/m/0", "p2/m/0"}  # p2's worded answer: the judge confirmed it; p1/m/1 stays wrong
    assert count.notes["grading"]["decided_by"] == {"judge": 1, "symbolic": 2}
    assert list(work.glob("answer-check-judge-*.jsonl"))  # cached: a resumed run asks nothing twice


def test_both_records_the_judge_and_writes_the_agreement(tmp_path):
    verdicts = {"p1/m/0": "correct", "p1/m/1": "correct", "p2/m/0": "incorrect"}
    state, count, work = _run(tmp_path, "both", verdicts)
    kept = {c for c, alive in zip((c.id for c in CHAINS), state.chain_alive, strict=True) if alive}
    assert kept == {"p1/m/0"}  # the symbolic grader decides under both
    table = json.loads((work.parent / "answer_check" / "agreement.json").read_text())
    assert (table["compared"], table["agree"], table["disagree"]) == (3, 2, 1)
    disagreements = [json.loads(line) for line in (work.parent / "answer_check" / "disagreements.jsonl").open()]
    assert [r["chain_id"] for r in disagreements] == ["p1/m/1"]
    assert count.notes["grading"]["agreement"]["agreement"] == table["agreement"]


# -- a trained verifier's preset, asked in both orders ----------------------------------------------------------
def _verifier(tmp_path: Path, replies: dict[str, tuple[str, str]], order: str) -> JudgeOptions:
    """An xVerify-format replay: (same-order reply, swapped reply) per chain id; the swapped ask is keyed
    ``<chain id>:swap``."""
    path = tmp_path / "verifier.jsonl"
    rows = [{"problem_id": cid, "sample_index": 0, "text": same} for cid, (same, _) in replies.items()]
    rows += [{"problem_id": f"{cid}:swap", "sample_index": 0, "text": swap} for cid, (_, swap) in replies.items()]
    write_jsonl(path, rows)
    return JudgeOptions(backend="replay", backend_options={"path": str(path)}, preset="xverify", order=order)


def _kept(tmp_path: Path, policy: str, judge: JudgeOptions):
    check = AnswerCheckOptions(policy=policy, judge=judge, timeout_s=60.0)
    work = tmp_path / "curate" / "work"
    work.mkdir(parents=True)
    state, _ = curate_items(PROBLEMS, CHAINS, StageOptions(answer_check=check), ["answer_check"], work)
    kept = {c.id for c, alive in zip(CHAINS, state.chain_alive, strict=True) if alive}
    return kept, next(c for c in state.funnel if c.stage == "answer_check"), work


def test_symbolic_then_judge_with_swap_keeps_only_what_both_orders_accept(tmp_path):
    replies = {"p2/m/0": ("Correct", "Incorrect")}  # the verifier accepts the worded answer in one order only
    kept, _, _ = _kept(tmp_path / "same", "symbolic_then_judge", _verifier(tmp_path, replies, "same"))
    assert kept == {"p1/m/0", "p2/m/0"}
    kept, count, work = _kept(tmp_path / "swap", "symbolic_then_judge", _verifier(tmp_path, replies, "swap"))
    assert kept == {"p1/m/0"}
    assert count.notes["grading"]["judge"]["order"] == "swap"
    orders = json.loads((work.parent / "answer_check" / "agreement.json").read_text())["orders"]
    assert (orders["rows_with_both_orders"], orders["disagree"]) == (1, 1)


def test_both_with_swap_records_the_order_disagreements_beside_the_curated_files(tmp_path):
    replies = {"p1/m/0": ("Correct", "Correct"), "p1/m/1": ("Correct", "Incorrect"), "p2/m/0": ("Incorrect", "[x]")}
    kept, count, work = _kept(tmp_path, "both", _verifier(tmp_path, replies, "swap"))
    assert kept == {"p1/m/0"}  # the symbolic grader decides under both
    folder = work.parent / "answer_check"
    table = json.loads((folder / "agreement.json").read_text())
    # p2's swapped reply cannot be read, but its readable "Incorrect" refuses it: a verdict, not unparseable.
    assert (table["compared"], table["agree"], table["judge_unparseable"]) == (3, 3, 0)
    assert table["orders"]["table"] == {"correct": {"correct": 1, "incorrect": 1}, "incorrect": {"unparseable": 1}}
    rows = [json.loads(line) for line in (folder / "order_disagreements.jsonl").open()]
    assert [r["chain_id"] for r in rows] == ["p1/m/1"]
    assert rows[0]["judge_verdict"]["orders"]["swap"]["status"] == "incorrect"
    assert count.notes["grading"]["agreement"]["orders"]["disagree"] == 1
