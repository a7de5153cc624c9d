"""The judge accuracy bench (`bench/grader/judge_accuracy.py`): a replayed verifier against labelled pairs gives the
precision, recall and false positives its replies imply, per answer kind and per order; a replay judge without
replies runs on a stand-in checker, and the table says it is one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.grader.judge_accuracy import answer_kind, main
from eval.records import read_jsonl, write_jsonl


@pytest.mark.parametrize(
    ("gold", "kind"),
    [
        ("No", "yes/no"),
        ("There is no such n", "none"),
        ("B", "choice"),
        ("(C)", "choice"),
        ("1{,}024", "integer"),
        ("-7", "integer"),
        ("\\frac{\\sqrt{3}}{2}", "number"),
        ("y = 2x + 1", "relation"),
        ("x \\le 3", "relation"),
        ("(1, 2)", "set/tuple"),
        ("\\left[ 0, 1 \\right]", "set/tuple"),
        ("x^2 + 1", "expression"),
        ("Monotonically increasing on the whole line", "worded"),
    ],
)
def test_answer_kind_of_a_gold(gold, kind):
    assert answer_kind(gold) == kind


def test_a_replayed_verifier_is_scored_against_the_labels(tmp_path, repo_root):
    """Six olympiad rows (five labelled correct): the xVerify-format replies accept rows 0-3 in the same order
    (row 3 is labelled wrong: a false positive), and the swapped ask refuses row 2: so the same order alone has
    precision 3/4 and recall 3/5, both orders together 2/3 and 2/5, and one order disagreement."""
    labels = [json.loads(line)["label"] for line in (repo_root / "tests/assets/grader_cases_olympiad.jsonl").open()][
        :6
    ]
    assert labels == [True, True, True, False, True, True]
    same = ["Correct"] * 4 + ["Incorrect"] * 2
    swap = ["Correct", "Correct", "Incorrect", "Correct", "Incorrect", "[Incorrect]"]  # the last cannot be read
    replies = tmp_path / "verifier.jsonl"
    write_jsonl(
        replies,
        [{"problem_id": f"olympiad/{i}", "sample_index": 0, "text": t} for i, t in enumerate(same)]
        + [{"problem_id": f"olympiad/{i}:swap", "sample_index": 0, "text": t} for i, t in enumerate(swap)],
    )
    judge = tmp_path / "verifier.yaml"
    judge.write_text(
        f"judge:\n  backend: replay\n  preset: xverify\n  order: swap\n  backend_options: {{path: '{replies}'}}\n"
    )
    result = main(["--judge", str(judge), "--sets", "olympiad", "--limit", "6", "--out", str(tmp_path / "out")])
    by_order = result["by_order"]
    same_alone, both = by_order["same"]["judge"], by_order["both (accepted when both say correct)"]["judge"]
    assert (same_alone["precision"], same_alone["recall"], same_alone["false_positives"]) == (0.75, 0.6, 1)
    assert (both["precision"], both["recall"], both["false_positives"]) == (pytest.approx(2 / 3), 0.4, 1)
    assert by_order["swap"]["judge"]["unparseable"] == 1
    assert result["order_agreement"] == {"asked_twice": 6, "both_readable": 5, "disagree": 1}
    kinds = result["by_kind"]
    assert kinds["yes/no"]["judge"] == kinds["all"]["judge"] and kinds["all"]["judge"]["n"] == 6
    rows = read_jsonl(tmp_path / "out" / "verdicts.jsonl")
    assert [r["judge"]["status"] for r in rows] == [
        "correct",
        "correct",
        "incorrect",
        "correct",
        "incorrect",
        "incorrect",
    ]
    assert json.loads((tmp_path / "out" / "judge_accuracy.json").read_text())["stand_in"] is None


@pytest.mark.slow
def test_make_target_command_runs_a_stand_in_and_says_it_is_not_a_judge(tmp_path, repo_root):
    """What ``make judge-accuracy`` runs, on a small slice: the default judge config (a replay judge with no
    replies) is answered by the math-verify stand-in in both orders, through the shipped compassverifier preset."""
    command = [sys.executable, "bench/grader/judge_accuracy.py", "--judge", "compassverifier", "backend=replay"]
    command += ["--sets", "olympiad,champ", "--limit", "8", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "STAND-IN, NOT A MODEL JUDGE: math-verify" in done.stdout
    assert "### By answer kind (all sets)" in done.stdout and "### Each order alone, and both" in done.stdout
    assert "rows: 16 (olympiad 8, champ 8)" in done.stdout
    stand_in = read_jsonl(next(tmp_path.glob("stand-in-math-verify-compassverifier.jsonl")))
    assert len(stand_in) == 32 and {r["text"] for r in stand_in} <= {"A", "B"}
    bad = subprocess.run(command[:3] + ["nonesuch"], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "judge_accuracy: error: no grader config 'nonesuch'" in bad.stderr
