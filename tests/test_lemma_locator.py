"""The arithmetic step verifier LEMMA locates first wrong steps with (`eval.benchmarks.arithmetic_steps`): its
precision on 50 real SmolLM2 wrong chains labelled by hand, the reference it reads from every generated story, the
forms of arithmetic it reads, and where it declines to decide."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from eval.answers.steps import step_spans
from eval.benchmarks import arithmetic, arithmetic_unseen
from eval.benchmarks.arithmetic_steps import (
    ERROR_TYPES,
    NO_REFERENCE,
    NO_WRONG_STEP,
    UNREADABLE_STEP,
    UnreadableStory,
    first_wrong_step,
    read_step,
    read_story,
)

ASSETS = Path(__file__).parent / "assets"
SAMPLES = {json.loads(line)["request_id"]: json.loads(line) for line in (ASSETS / "smol_samples.jsonl").open()}
LABELS = [json.loads(line) for line in (ASSETS / "lemma_first_wrong_labels.jsonl").open()]
# Measured on the 50 labels (docs/methods.md, "Locating the first wrong step without a teacher"): the verifier names a
# step for every chain and it is the labelled step every time; its error type agrees with the label every time.
MEASURED_PRECISION = 50 / 50
MEASURED_COVERAGE = 50 / 50
MEASURED_TYPE_AGREEMENT = 50 / 50
STORY = "Hana counts 80 seeds. Next, she uses 27 seeds. A friend gives her 9 seeds. How many seeds does she have left?"


def test_the_labels_are_fifty_distinct_real_wrong_chains_with_a_step_inside_each():
    texts = [SAMPLES[label["request_id"]]["response"] for label in LABELS]
    assert len(LABELS) == 50 and len(set(texts)) == 50
    for label in LABELS:
        row = SAMPLES[label["request_id"]]
        assert not row["correct"] and row["problem_id"] == label["problem_id"]
        assert 1 <= label["step"] <= len(step_spans(row["response"])) and label["error_type"] in ERROR_TYPES
        assert label["note"]


def test_the_locator_names_the_hand_labelled_first_wrong_step():
    """Precision: of the chains where the verifier names a step, the share where it names the labelled one;
    coverage (recall): the share of all labelled chains where it names the labelled step."""
    named = right = typed = 0
    misses = []
    for label in LABELS:
        row = SAMPLES[label["request_id"]]
        check = first_wrong_step(row["problem"], row["response"])
        named += check.located
        if check.located and check.step == label["step"]:
            right += 1
            typed += check.error_type == label["error_type"]
        else:
            misses.append((label["request_id"], label["step"], check.step, check.reason))
    assert named and right / named >= MEASURED_PRECISION, misses
    assert right / len(LABELS) >= MEASURED_COVERAGE, misses
    assert typed / len(LABELS) >= MEASURED_TYPE_AGREEMENT


def generated_problems() -> list[arithmetic.WordProblem]:
    heldout = arithmetic.problems(arithmetic.HELDOUT_PROBLEMS, arithmetic.HELDOUT_SEED, "arith-test")
    pool = arithmetic.problems(
        arithmetic.POOL_PROBLEMS, arithmetic.POOL_SEED, "arith", frozenset(p.text for p in heldout), wide=True
    )
    taken = frozenset(p.text for p in (*heldout, *pool))
    train = arithmetic.problems(arithmetic.TRAIN_PROBLEMS, arithmetic.TRAIN_SEED, "arith-train", taken, wide=True)
    return [*heldout, *pool, *train]


def test_every_generated_story_reads_back_as_its_own_operations_and_careful_chain():
    problems = generated_problems()
    assert len(problems) == 769
    for problem in problems:
        reference = read_story(problem.text)
        told = [(o.symbol, o.operand, o.before, o.after) for o in reference.operations]
        assert told == [(s.symbol, s.operand, s.before, s.after) for s in problem.steps], problem.text
        assert reference.solution() == arithmetic.tutor_chain(problem)


def test_every_unseen_story_reads_back_to_its_answer():
    """arith_unseen is written apart from the training generator, with its own templates: read too."""
    for problem in arithmetic_unseen.problems():
        reference = read_story(problem.text)
        assert (reference.answer, len(reference.operations)) == (problem.answer, problem.level), problem.text


def test_careful_chains_hold_and_each_careless_slip_is_found_on_its_line():
    """The authored pool: the careful chain of each problem has no wrong step; the careless chain (the careful one
    with one slip carried on) goes wrong exactly on the first line where it leaves the careful one."""
    rows = [json.loads(line) for line in gzip.open("recipes/data/arithmetic/pool.jsonl.gz", "rt")]
    careful = {r["problem_id"]: r["chain"] for r in rows if r["generator"] == "tutor"}
    for row in rows:
        check = first_wrong_step(row["problem"], row["chain"])
        if row["generator"] == "tutor":
            assert check.reason_code == NO_WRONG_STEP, check.reason
        elif row["generator"] == "careless":
            lines, right_lines = row["chain"].split("\n"), careful[row["problem_id"]].split("\n")
            first_diff = next(i for i, (a, b) in enumerate(zip(lines, right_lines, strict=True)) if a != b) + 1
            assert check.step == first_diff and check.error_type in ERROR_TYPES, (row["chain"], check.reason)


@pytest.mark.parametrize(
    ("chain", "step", "error_type", "finding"),
    [
        (  # a slip inside the worked subtraction
            'start with 80.\n"Next, she uses 27 seeds": 80 - 27 = 80 - 20 - 7 = 40 - 7 = 33.',
            2,
            "calculation_error",
            "80 - 20 - 7 is 53, not 40 - 7",
        ),
        (  # a gift subtracted
            'start with 80.\n80 - 27 = 53.\n"A friend gives her 9 seeds": 53 - 9 = 44.',
            3,
            "question_misinterpretation",
            '"A friend gives her 9 seeds" adds 9: 53 + 9, not 53 - 9',
        ),
        (  # the worked form misapplied: 9 has no tens
            "start with 80.\n80 - 27 = 53.\n53 + 9 = 53 + 10 + 9 = 72.",
            3,
            "formula_confusion",
            "53 + 9 is not 53 + 10 + 9 (62 against 72)",
        ),
        (  # a sentence skipped, the question answered early
            "start with 80.\n80 - 27 = 53.\nThe answer is \\boxed{53}.",
            3,
            "missing_step",
            'the answer comes before "A friend gives her 9 seeds" is applied',
        ),
        (  # one more operation than the story gives
            "start with 80.\n80 - 27 = 53.\n53 + 9 = 62.\n62 + 9 = 71.",
            4,
            "invalid_assumption",
            "the story has no further operation, yet this step computes 62 + 9",
        ),
        (  # the terse form: several operations on one line
            "80 - 27 = 53. 53 + 9 = 61. \\boxed{61}",
            1,
            "calculation_error",
            "53 + 9 is 62, not 61",
        ),
    ],
)
def test_each_kind_of_first_wrong_step_is_named_and_typed(chain, step, error_type, finding):
    check = first_wrong_step(STORY, chain)
    assert (check.step, check.error_type, check.finding) == (step, error_type, finding)
    assert check.span == step_spans(chain)[step - 1]


def test_a_right_chain_in_other_forms_has_no_wrong_step():
    """An equivalent route with parentheses, a division checked by multiplying back (a times sign written x), the
    value restated for the question."""
    story = "Ava has 12 beads. She triples the number of beads. She splits the beads equally into 4 groups. How many?"
    chain = 'start with 12.\n(12 + 12) + 12 = 36.\n36 ÷ 4 = 9, since 9 x 4 = 36.\n"How many": 9.\n\\boxed{9}.'
    check = first_wrong_step(story, chain)
    assert check.step is None and check.reason_code == NO_WRONG_STEP


def test_a_right_answer_reached_by_wrong_work_is_still_caught():
    """A real sample graded correct whose doubling is written wrong (arith-train-0016#5)."""
    row = SAMPLES["arith-train-0016#5"]
    check = first_wrong_step(row["problem"], row["response"])
    assert row["correct"] and (check.step, check.error_type) == (3, "formula_confusion")


def test_it_declines_to_decide_and_says_why():
    unknown = first_wrong_step("A train leaves at 3 pm going 60 miles per hour. When does it arrive?", "60 x 2 = 120.")
    assert unknown.step is None and unknown.reason_code == NO_REFERENCE and "no known phrasing" in unknown.reason
    unreadable = first_wrong_step(STORY, "start with 80.\n80 - = 53.")
    assert unreadable.step is None and unreadable.reason_code == UNREADABLE_STEP
    unfinished = first_wrong_step(STORY, "start with 80.\n80 - 27 = 53.")
    assert unfinished.reason_code == NO_WRONG_STEP and "stops before" in unfinished.reason


@pytest.mark.parametrize("text", ['"x": 2 ** 10 = 1024.', '"x": __import__("os").system("ls") = 1.'])
def test_text_is_only_read_never_run(text):
    """Powers, names and calls are no arithmetic the reader knows: the step is unreadable, never evaluated."""
    assert read_step(text).kind == "unreadable"


def test_a_story_in_two_operations_phrasings_is_not_guessed():
    with pytest.raises(UnreadableStory, match="no known phrasing"):
        read_story("Ava has 12 beads. She juggles 3 beads. How many beads does Ava have?")
