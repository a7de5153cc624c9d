"""RISE: multi-turn episodes and their metrics, weighted last-turn examples, resume, and the weighted trainer.

Model text comes from the `replay` backend keyed by request id (``<problem>#t<turn>`` for the policy,
``<problem>#t<turn>.s<j>`` for best-of-N samples), so every answer, verdict and weight is known by hand.
The trainer tests build `WeightedSFTTrainer` on the tiny model and check the collated labels and the loss
against per-example losses computed separately.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from curation.methods.rise.episodes import ImproveOptions, context_before, run_rise_batch, weighted_examples
from eval.backends.base import SamplingParams
from eval.backends.replay import ReplayBackend
from eval.grading.grader import grade_many, verify
from eval.problem import Problem
from eval.run.multiturn import (
    Episode,
    KnownAnswers,
    MultiTurnOptions,
    resume_episodes,
    run_episodes,
    turn_accuracy,
)

FEEDBACK = "That is not right. Try again."
PROBLEMS = (Problem("A", "What is 2 + 3?", "5", "t"), Problem("B", "What is 2 + 2?", "4", "t"))


def boxed(value: str) -> dict[str, str]:
    return {"text": f"So the answer is \\boxed{{{value}}}."}


def grade(pairs):
    return grade_many(pairs, workers=1, progress=False)


def start(problem: Problem) -> Episode:
    return Episode(problem, ({"role": "user", "content": problem.problem},))


def options(oracle: bool, turns: int = 3, samples: int = 0) -> MultiTurnOptions:
    return MultiTurnOptions(turns, oracle, FEEDBACK, SamplingParams(), seed=7, samples_per_turn=samples)


def test_oracle_episodes_stop_at_the_first_correct_answer_and_get_feedback_only_after_wrong_ones():
    replay = ReplayBackend(
        {"A#t1": boxed("6"), "A#t2": boxed("5"), "B#t1": boxed("3"), "B#t2": boxed("3"), "B#t3": boxed("1")}
    )
    episodes = run_episodes([start(p) for p in PROBLEMS], replay, options(oracle=True), grade)
    a, b = episodes
    assert [t.correct for t in a.turns] == [False, True] and a.stopped
    assert [m["role"] for m in a.messages] == ["user", "assistant", "user", "assistant"]
    assert a.messages[2]["content"] == FEEDBACK
    assert len(b.turns) == 3 and b.messages[-1]["role"] == "assistant", "no feedback after the last turn"
    rows = [e.to_dict() for e in episodes]
    summary = turn_accuracy(rows, 3, oracle=True, equivalent=verify)
    assert summary["accuracy_after_turn"] == [0.0, 0.5, 0.5]
    assert summary["gain_turn1_to_last"] == 0.5


def test_without_oracle_every_turn_runs_and_accuracy_is_the_majority_over_turns():
    # A (gold 5): 5, 6, 5 -> majority 5, 5 (tie: the earlier answer), 5; B (gold 4): 4, 3, 3 -> 4, 4 (tie), 3.
    replay = ReplayBackend(
        {
            "A#t1": boxed("5"),
            "A#t2": boxed("6"),
            "A#t3": boxed("5"),
            "B#t1": boxed("4"),
            "B#t2": boxed("3"),
            "B#t3": boxed("3"),
        }
    )
    episodes = run_episodes([start(p) for p in PROBLEMS], replay, options(oracle=False), grade)
    assert [len(e.turns) for e in episodes] == [3, 3], "without an oracle a correct answer does not stop the episode"
    assert sum(m["content"] == FEEDBACK for m in episodes[0].messages) == 2
    summary = turn_accuracy([e.to_dict() for e in episodes], 3, oracle=False, equivalent=verify)
    assert summary["accuracy_after_turn"] == [1.0, 1.0, 0.5]
    assert summary["last_turn_accuracy"] == [1.0, 0.0, 0.5]


def rise_rows(oracle: bool = True):
    # Policy: A wrong then right; B wrong twice. Best-of-2 improvements per turn.
    rows = {
        "A#t1": boxed("6"),
        "A#t1.s0": boxed("7"),
        "A#t1.s1": boxed("5"),
        "A#t2": boxed("5"),
        "A#t2.s0": boxed("5"),
        "A#t2.s1": boxed("9"),
        "B#t1": boxed("3"),
        "B#t1.s0": boxed("1"),
        "B#t1.s1": boxed("2"),
        "B#t2": boxed("3"),
        "B#t2.s0": {"text": "4 + ... (cut)", "finish_reason": "length"},
        "B#t2.s1": {"text": "   "},
    }
    replay = ReplayBackend(rows)
    opts, improve = options(oracle, turns=2, samples=2), ImproveOptions("best_of_n", 2, SamplingParams(0.7))
    episodes = run_rise_batch([start(p) for p in PROBLEMS], replay, replay, opts, improve, grade)
    return [e.to_dict() for e in episodes], replay


def test_rise_examples_end_with_the_improved_answer_weighted_by_reward():
    rows, replay = rise_rows()
    assert replay.calls == 4 + 8, "two turns of two problems, each with two improvement samples"
    examples, rejects = weighted_examples(rows, tau=0.4, provenance={"round": 1})
    assert [e.id for e in examples] == ["A#t1", "A#t2", "B#t1"]
    assert [(r.id, r.reason) for r in rejects] == [("B#t2", "no_usable_sample")], "cut and empty samples are unusable"
    a1, a2, b1 = examples
    assert a1.messages[-1].content == boxed("5")["text"], "the first correct sample is the improvement"
    assert [m.role for m in a2.messages] == ["user", "assistant", "user", "assistant"]
    assert a2.messages[1].content == boxed("6")["text"] and a2.messages[2].content == FEEDBACK
    assert b1.messages[-1].content == boxed("1")["text"], "no correct sample: the first usable one, reward 0"
    assert all(e.loss_turns == "last" for e in examples)
    raw = [math.exp(1 / 0.4), math.exp(1 / 0.4), 1.0]
    assert [e.weight for e in examples] == pytest.approx([w / (sum(raw) / 3) for w in raw])
    assert sum(e.weight for e in examples) / 3 == pytest.approx(1.0)
    assert b1.provenance["reward"] == 0.0 and a1.provenance["correct_candidates"] == 1
    assert a2.provenance["policy_answers"] == ["A#t1"] and a2.provenance["round"] == 1
    row = a2.to_dict()
    assert row["loss_turns"] == "last" and row["weight"] == pytest.approx(a2.weight)


def test_context_before_drops_the_system_turn():
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "f"},
        {"role": "assistant", "content": "a2"},
    ]
    assert context_before(messages, 2) == messages[1:4]
    with pytest.raises(ValueError, match="fewer than 3"):
        context_before(messages, 3)


class Flaky:
    """A replay backend that fails once after ``fail_after`` calls (a killed run)."""

    name = "flaky"

    def __init__(self, inner: ReplayBackend, fail_after: int) -> None:
        self.inner, self.fail_after, self.requested = inner, fail_after, []

    def generate(self, requests):
        if self.fail_after == 0:
            self.fail_after = -1
            raise RuntimeError("killed")
        self.fail_after -= 1
        self.requested += [r.id for r in requests]
        return self.inner.generate(requests)


def test_rollouts_resume_after_a_kill_without_redoing_finished_problems(tmp_path):
    pool = {"A": [boxed("5")["text"]], "B": [boxed("3")["text"]], "C": [boxed("1")["text"]]}
    problems = [*PROBLEMS, Problem("C", "What is 0 + 1?", "1", "t")]
    path = tmp_path / "episodes.jsonl"
    flaky = Flaky(ReplayBackend(pool=pool), fail_after=1)  # turn 1 of the batch runs; the kill comes at turn 2

    def run(backend):
        def batch(episodes, on_done):
            return run_episodes(episodes, backend, options(True, turns=2), grade, on_done=on_done)

        return resume_episodes(problems, path, start, batch, batch_size=3)

    with pytest.raises(RuntimeError, match="killed"):
        run(flaky)
    saved = [json.loads(line)["problem_id"] for line in path.read_text().splitlines()]
    assert saved == ["A", "C"], "A and C were right at turn 1 (oracle: done) and were written before the kill"
    flaky.requested.clear()
    rows = run(flaky)
    assert flaky.requested == ["B#t1", "B#t2"], "only the unfinished problem runs again"
    assert [r["problem_id"] for r in rows] == ["A", "B", "C"]
    assert [len(r["turns"]) for r in rows] == [1, 2, 1]
    again = run(Flaky(ReplayBackend(pool={}), fail_after=0))
    assert again == rows, "a finished run reads everything back"


def test_a_request_asked_again_is_answered_from_known_answers_and_its_turn_says_so():
    """Turn 1 is the same request in both variants: with `KnownAnswers` the second variant's turn 1 is not asked
    again, its records say so, and its episodes are what asking again gives; an error reply is never kept."""
    rows = {
        "A#t1": boxed("6"),
        "A#t2": boxed("5"),
        "A#t3": boxed("5"),
        "B#t1": {"text": "", "finish_reason": "error"},
        "B#t2": boxed("4"),
        "B#t3": boxed("4"),
    }
    starts = [start(p) for p in PROBLEMS]
    known, replay = KnownAnswers(), ReplayBackend(rows)
    with_oracle = run_episodes(starts, replay, options(oracle=True), grade, known=known)
    assert replay.calls == 4 and len(known) == 3  # A#t1, A#t2, B#t2: B#t1 (an error) is not kept
    no_oracle = replace(options(oracle=False), feedback="Check your work.")  # each variant has its own feedback
    without = run_episodes(starts, replay, no_oracle, grade, known=known)
    assert replay.calls == 4 + 5, "A's turn 1 is answered from what the oracle variant was told"
    assert [[t.reused for t in e.turns] for e in without] == [[True, False, False], [False, False, False]]
    assert without[0].turns[0].text == with_oracle[0].turns[0].text
    asked = run_episodes(starts, ReplayBackend(rows), no_oracle, grade)
    reused_row = without[0].to_dict()
    assert reused_row["turns"][0].pop("reused") is True and reused_row == asked[0].to_dict()
    assert "reused" not in asked[0].to_dict()["turns"][0], "a record asked of the engine is written as before"
    assert [e.to_dict() for e in without[1:]] == [e.to_dict() for e in asked[1:]]


# --- Weighted trainer ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weighted_trainer(tiny_model_dir, tmp_path_factory):
    from trl import SFTConfig

    from limo.training.weighted import WeightedSFTTrainer, weighted_rows

    rows = [
        {
            "messages": [
                {"role": "user", "content": "q one"},
                {"role": "assistant", "content": "first try"},
                {"role": "user", "content": FEEDBACK},
                {"role": "assistant", "content": "better answer"},
            ]
        },
        {"messages": [{"role": "user", "content": "q two"}, {"role": "assistant", "content": "only answer here"}]},
        {
            "messages": [
                {"role": "user", "content": "q three"},
                {"role": "assistant", "content": "kept turn"},
                {"role": "user", "content": FEEDBACK},
                {"role": "assistant", "content": "also kept"},
            ]
        },
    ]
    from datasets import Dataset

    dataset = Dataset.from_list(weighted_rows(rows, [2.5, 0.5, 1.0], ["last", "last", "all"]))
    config = SFTConfig(
        output_dir=str(tmp_path_factory.mktemp("weighted")),
        use_cpu=True,
        bf16=False,
        assistant_only_loss=True,
        per_device_train_batch_size=3,
        report_to="none",
        activation_checkpointing=False,
        max_steps=1,
        shuffle_dataset=False,
    )
    return WeightedSFTTrainer(model=str(tiny_model_dir), args=config, train_dataset=dataset)


def fixed_batch(trainer):
    """The three prepared rows, in order, through the trainer's own collator (as its dataloader would)."""
    seen = trainer._remove_unused_columns(trainer.train_dataset, description="training")
    return trainer.data_collator([dict(row) for row in seen])


def test_collated_labels_cover_only_the_last_assistant_turn(weighted_trainer):
    tokenizer = weighted_trainer.processing_class
    batch = fixed_batch(weighted_trainer)
    assert batch["weight"].tolist() == [2.5, 0.5, 1.0]
    texts = [tokenizer.decode([t for t in row.tolist() if t != -100]) for row in batch["labels"]]
    # TRL's marked Qwen2.5 template puts the newlines around an assistant turn inside the marked span.
    assert texts[0].strip() == "better answer<|im_end|>", "the first assistant turn carries no loss"
    assert texts[1].strip() == "only answer here<|im_end|>"
    assert texts[2].split() == ["kept", "turn<|im_end|>", "also", "kept<|im_end|>"], "loss_turns: all keeps both"


def test_weighted_loss_weights_each_examples_tokens(weighted_trainer):
    """Loss = sum_i w_i * (summed token loss of example i) / (label tokens in the batch), TRL's SFT normalisation."""
    import torch

    trainer = weighted_trainer
    model = trainer.model.eval()
    batch = fixed_batch(trainer)
    summed, counts = [], []
    with torch.no_grad():
        for i in range(3):  # each example alone, unpadded: its summed next-token loss over its label tokens
            n = int(batch["attention_mask"][i].sum())
            ids, labels = batch["input_ids"][i : i + 1, :n], batch["labels"][i : i + 1, :n]
            tokens = int((labels[:, 1:] != -100).sum())
            summed.append(float(model(input_ids=ids, labels=labels).loss) * tokens)
            counts.append(tokens)

        def loss_with(weights):
            inputs = {k: v.clone() for k, v in batch.items()}
            inputs["weight"] = torch.tensor(weights)
            return float(trainer.compute_loss(model, inputs))

        total = sum(counts)
        expected = (2.5 * summed[0] + 0.5 * summed[1] + 1.0 * summed[2]) / total
        assert loss_with([2.5, 0.5, 1.0]) == pytest.approx(expected, rel=1e-4)
        plain = loss_with([1.0, 1.0, 1.0])
        assert plain == pytest.approx(sum(summed) / total, rel=1e-4)
        assert loss_with([2.0, 1.0, 1.0]) - plain == pytest.approx(summed[0] / total, rel=1e-3)


def test_plain_sft_refuses_last_turn_rows_and_bad_loss_turns_are_named(tmp_path):
    from eval.records import DataError, write_jsonl
    from limo.training.build import check_loss_turns_support, check_weight_support
    from limo.training.data import load_train_data
    from limo.training.trainers import TRAINERS

    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    write_jsonl(tmp_path / "m.jsonl", [{"id": "a", **row}, {"id": "b", "weight": 2.0, "loss_turns": "last", **row}])
    data = load_train_data(tmp_path / "m.jsonl")
    turns, weights = [e.loss_turns for e in data.examples], [e.weight for e in data.examples]
    assert turns == ["all", "last"]
    with pytest.raises(ValueError, match="1 of 2 rows ask for loss on the last assistant turn only"):
        check_loss_turns_support(TRAINERS["sft"], turns, data.path)
    check_loss_turns_support(TRAINERS["weighted_sft"], turns, data.path)
    check_weight_support(TRAINERS["weighted_sft"], weights, data.path)
    write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "loss_turns": "first", **row}])
    with pytest.raises(DataError, match="row 1 field loss_turns"):
        load_train_data(tmp_path / "bad.jsonl")


def test_teacher_improvements_come_from_the_teacher_backend_once_per_turn():
    policy = ReplayBackend({"A#t1": boxed("6"), "A#t2": boxed("7"), "B#t1": boxed("4")})
    teacher = ReplayBackend({"A#t1.teacher": boxed("5"), "A#t2.teacher": boxed("5"), "B#t1.teacher": boxed("2")})
    opts, improve = options(True, turns=2, samples=1), ImproveOptions("teacher", 1, SamplingParams())
    episodes = run_rise_batch([start(p) for p in PROBLEMS], policy, teacher, opts, improve, grade)
    assert (policy.calls, teacher.calls) == (3, 3), "B stops after its correct first answer (oracle)"
    examples, rejects = weighted_examples([e.to_dict() for e in episodes], tau=0.4)
    assert not rejects
    assert [(e.id, e.provenance["source"], e.provenance["reward"]) for e in examples] == [
        ("A#t1", "teacher:replay", 1.0),
        ("A#t2", "teacher:replay", 1.0),
        ("B#t1", "teacher:replay", 0.0),
    ]
    assert examples[1].messages[1].content == boxed("6")["text"], "the context holds the policy's answer"


def test_last_turn_loss_without_assistant_masks_is_refused(tiny_model_dir, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig

    from limo.training.weighted import WeightedSFTTrainer, weighted_rows

    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    dataset = Dataset.from_list(weighted_rows([row], [1.0], ["last"]))
    config = SFTConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        assistant_only_loss=False,
        report_to="none",
        activation_checkpointing=False,
        max_steps=1,
    )
    with pytest.raises(ValueError, match="loss_turns: last needs train.args.assistant_only_loss=true"):
        WeightedSFTTrainer(model=str(tiny_model_dir), args=config, train_dataset=dataset)
