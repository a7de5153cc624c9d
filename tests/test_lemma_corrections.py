"""What LEMMA is meant to change, beside accuracy, in every evaluation's summary.json (`eval.reports.corrections`): how
often a response writes a correction, how often one ends right, and the error types of the wrong answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eval.reports.corrections import correction_report, writes_correction

HELDOUT = [json.loads(line) for line in Path("recipes/data/arithmetic/heldout.jsonl").open()][:4]
# Four answers to arith_heldout's first four problems, written by hand: right; right after a correction; wrong
# after a correction that changed nothing (a slip in 19 x 2); wrong with a loss added (76 + 7).
RESPONSES = {
    "arith-test-0000": '"Chloe has 21 books": start with 21.\n"Then she doubles the number of books": 21 × 2 = 42.\n'
    '"Then she quadruples the number of books": 42 × 4 = 168.\nThe answer is \\boxed{168}.',
    "arith-test-0001": '"Ivan buys 8 trays of cookies at the bakery, with 9 cookies in each": 8 × 9 = 63.\n\n'
    "Wait, 8 × 9 is 72, not 63. Let me redo this step.\n\n"
    '"Ivan buys 8 trays of cookies at the bakery, with 9 cookies in each": 8 × 9 = 72.\nThe answer is \\boxed{72}.',
    "arith-test-0002": '"Diego has 19 beads": start with 19.\n"Then he doubles the number of beads": 19 × 2 = 36.\n\n'
    "Wait, let me recheck this step: 19 × 2 = 36.\n\nThe answer is \\boxed{36}.",
    "arith-test-0003": '"Kofi has 19 apples": start with 19.\n"Then he quadruples the number of apples": 19 × 4 = 76.'
    '\n"He gives away 7 apples": 76 + 7 = 83.\n"He gets 5 more apples": 83 + 5 = 88.\nThe answer is \\boxed{88}.',
}
EXPECTED = {
    "samples": 4,
    "with_correction": 2,
    "correction_rate": 0.5,
    "corrected_right": 1,
    "corrected_right_rate": 0.5,
    "wrong": 2,
    "error_types": {"calculation_error": 1, "question_misinterpretation": 1},
    "wrong_located": 2,
    "wrong_unlocated": {},
}


def shipped_reflections() -> list[str]:
    phrases = []
    for recipe in ("lemma", "smol_lemma"):
        connections = yaml.safe_load(Path(f"recipes/recipe/{recipe}.yaml").read_text())["curate"]["lemma"][
            "connections"
        ]
        phrases += connections["reflections"] + connections.get("restart_reflections", [])
    return [p.replace("{finding}", "53 + 9 is 62, not 63") for p in phrases]


@pytest.mark.parametrize("phrase", shipped_reflections())
def test_every_shipped_reflection_counts_as_a_correction(phrase):
    assert writes_correction(f'"A friend gives her 9 seeds": 53 + 9 = 63.\n\n{phrase}\n\n53 + 9 = 62.')


@pytest.mark.parametrize(
    "text",
    [
        "Let us wait for the bus. 5 + 3 = 8.",  # the verb, not a step back
        # the authored pool's rambler
        "Hmm. So Omar has some envelopes and things happen to them, let me think about it again.",
        '"He gets 3 more books": 21 + 3 = 24.\nThe answer is \\boxed{24}.',
    ],
)
def test_text_without_a_step_back_is_no_correction(text):
    assert not writes_correction(text)


def test_the_report_counts_corrections_their_outcome_and_the_wrong_answers_error_types():
    rows = [
        {
            "problem": p["problem"],
            "response": RESPONSES[p["id"]],
            "correct": p["id"] in ("arith-test-0000", "arith-test-0001"),
        }
        for p in HELDOUT
    ]
    assert correction_report(rows) == EXPECTED
    odd = [
        {"problem": "A train leaves at 3 pm. When does it arrive?", "response": "At 5 pm.", "correct": False},
        {"response": "Wait, no. \\boxed{3}", "correct": False},
    ]
    report = correction_report(odd)
    assert report["wrong_unlocated"] == {"no_reference": 1, "no_problem_text": 1} and report["wrong_located"] == 0
    assert report["with_correction"] == 1 and report["corrected_right_rate"] == 0.0
    assert correction_report([])["corrected_right_rate"] is None


def test_limo_evaluate_writes_the_report_into_every_benchmarks_summary(repo_root, tmp_path):
    """Through the command a user runs (the replay backend answers with the four responses above)."""
    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps({"id": f"{pid}#0", "text": text}) + "\n" for pid, text in RESPONSES.items()))
    command = [
        sys.executable,
        "-m",
        "limo.evaluate",
        "recipe=smol_lemma",
        f"output_dir={tmp_path / 'run'}",
        "benchmarks=[arith_heldout]",
        "limit=4",
        "evaluate.backend=replay",
        f"evaluate.backend_options={{path: '{replay}'}}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "eval" / "arith_heldout" / "summary.json").read_text())
    assert summary["metrics"]["corrections"] == EXPECTED
