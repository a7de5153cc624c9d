"""RISE (Recursive IntroSpEction, Qu et al., 2024): multi-turn rollouts with improved answers, as weighted SFT data.

For each problem the policy answers turn by turn (`eval.run.multiturn`): the grader judges each answer, and a
feedback message follows — with an *oracle* only after a wrong answer (the episode stops at the first
correct one), without one after every answer. At every turn an *improved* answer is asked for from the
same context the policy saw:

- ``best_of_n`` (self-distillation): ``N`` more samples from the policy itself; the first correct one is
  the improvement, else the first usable one (reward 0);
- ``teacher`` (distillation): one answer from a teacher backend.

A sample is usable when it is non-empty and was not cut at the length limit (a cut answer has no final
answer to learn). Each (problem, turn) with a usable improvement becomes one training example: the
conversation up to that turn (problem, earlier on-policy answers, feedback) and the improved answer as
the last assistant turn, which alone carries loss (``loss_turns: "last"``). Its weight follows RISE's
reward-weighted regression, ``exp(r / tau)`` with ``r = 1`` when the grader says correct and 0 otherwise
(``tau = 0.4``: a correct improvement weighs ``e^2.5 ~ 12.2`` times an incorrect one), normalised so that
the weights average 1 over the dataset (the loss scale and learning rate stay those of plain SFT).

Improvement requests are ``<problem_id>#t<turn>.s<j>`` (best-of-N) or ``<problem_id>#t<turn>.teacher``;
every sample has its own seed from (seed, problem id, sample index), so resumed runs regenerate the same
rows. Pure functions over values: backends and the grader come in as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from curation.schema import Message, SFTExample
from eval.backends.base import Backend, GenerationRequest, SamplingParams, row_seed
from eval.records import Reject
from eval.run.multiturn import Episode, Grade, MultiTurnOptions, TurnRecord, graded_records, run_episodes, sample_index

STAGE = "rise"
METHODS = ("best_of_n", "teacher")


@dataclass(frozen=True)
class ImproveOptions:
    """Where improved answers come from.

    Attributes:
        method: ``best_of_n`` (self-distillation from the policy) or ``teacher``.
        samples: N for best-of-N (ignored for a teacher: one answer per turn).
        sampling: Sampling of the improvement samples.
    """

    method: Literal["best_of_n", "teacher"] = "best_of_n"
    samples: int = 4
    sampling: SamplingParams = SamplingParams(temperature=0.7)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"improve.method={self.method!r}: expected one of {', '.join(METHODS)}")
        if self.samples < 1:
            raise ValueError(f"improve.samples={self.samples}: need at least 1")


@dataclass(frozen=True)
class Improvement:
    """The improved answer chosen for one turn (or why there is none)."""

    turn: int
    source: str
    candidates: int
    correct_candidates: int
    chosen: TurnRecord | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        chosen = self.chosen.to_dict() if self.chosen is not None else None
        return {
            "turn": self.turn,
            "source": self.source,
            "candidates": self.candidates,
            "correct_candidates": self.correct_candidates,
            "chosen": chosen,
            "reason": self.reason,
        }


def improvement_requests(
    episodes: Sequence[Episode], options: MultiTurnOptions, improve: ImproveOptions
) -> list[GenerationRequest]:
    """Requests for improved answers, from each episode's current context (before this turn's answer)."""
    count = improve.samples if improve.method == "best_of_n" else 1
    requests = []
    for episode in episodes:
        for j in range(count):
            index = sample_index(episode.turn, options, j)
            suffix = f"s{j}" if improve.method == "best_of_n" else "teacher"
            requests.append(
                GenerationRequest(
                    id=f"{episode.problem.id}#t{episode.turn}.{suffix}",
                    messages=episode.messages,
                    sampling=improve.sampling,
                    seed=row_seed(options.seed, episode.problem.id, index),
                    meta={"problem_id": episode.problem.id, "sample_index": index, "turn": episode.turn},
                )
            )
    return requests


def usable(record: TurnRecord) -> bool:
    return bool(record.text.strip()) and record.finish_reason != "length"


def choose(turn: int, source: str, candidates: Sequence[TurnRecord]) -> Improvement:
    """The first correct usable candidate, else the first usable one; none usable: a reason instead."""
    fit = [c for c in candidates if usable(c)]
    correct = [c for c in fit if c.correct]
    chosen = (correct or fit)[0] if fit else None
    reason = None if chosen is not None else "no_usable_sample"
    return Improvement(turn, source, len(candidates), sum(c.correct for c in candidates), chosen, reason)


def improve_step(
    backend: Backend, options: MultiTurnOptions, improve: ImproveOptions, grade: Grade
) -> Callable[[list[Episode], list[TurnRecord]], list[Episode]]:
    """The `run_episodes` hook that asks for, grades and records each active episode's improvement."""
    per_episode = improve.samples if improve.method == "best_of_n" else 1
    source = "best_of_n" if improve.method == "best_of_n" else f"teacher:{getattr(backend, 'name', 'backend')}"

    def step(episodes: list[Episode], records: list[TurnRecord]) -> list[Episode]:
        requests = improvement_requests(episodes, options, improve)
        golds = [r for e in episodes for r in [e.problem.answer] * per_episode]
        graded = graded_records(requests, backend.generate(requests), golds, grade)
        out: list[Episode] = []
        for i, episode in enumerate(episodes):
            found = choose(episode.turn, source, graded[i * per_episode : (i + 1) * per_episode])
            improvements = [*episode.extra.get("improvements", []), found.to_dict()]
            out.append(replace(episode, extra={**episode.extra, "improvements": improvements}))
        return out

    return step


def run_rise_batch(
    episodes: list[Episode],
    policy: Backend,
    improver: Backend,
    options: MultiTurnOptions,
    improve: ImproveOptions,
    grade: Grade,
    on_done: Callable[[list[Episode]], None] | None = None,
) -> list[Episode]:
    """Roll a batch of episodes out to the end, with an improvement at every turn (``on_done``: see
    `eval.run.multiturn.run_episodes`)."""
    step = improve_step(improver, options, improve, grade)
    return run_episodes(episodes, policy, options, grade, between=step, on_done=on_done)


# --- Examples ------------------------------------------------------------------------------------------


def context_before(messages: Sequence[dict[str, str]], turn: int) -> list[dict[str, str]]:
    """The user / assistant messages before the ``turn``-th assistant answer (system turns left out)."""
    seen, out = 0, list[dict[str, str]]()
    for message in messages:
        if message["role"] == "assistant":
            seen += 1
            if seen == turn:
                return out
        if message["role"] != "system":
            out.append({"role": message["role"], "content": message["content"]})
    raise ValueError(f"conversation has fewer than {turn} assistant turns")


def raw_weight(reward: float, tau: float) -> float:
    """RISE's reward-weighted regression weight ``exp(r / tau)``."""
    return math.exp(reward / tau)


def weighted_examples(
    rows: Sequence[dict[str, Any]], tau: float, provenance: dict[str, Any] | None = None
) -> tuple[list[SFTExample], list[Reject]]:
    """One example per (episode, turn) with a usable improvement; weights ``exp(r / tau)`` normalised to mean 1.

    Args:
        rows: Episode rows (`eval.run.multiturn.Episode.to_dict` plus ``improvements``), in problem order.
        tau: Temperature of the reward weighting (RISE: 0.4).
        provenance: Facts every example records (policy, round, improve method).

    Returns:
        Examples in problem then turn order, and a reject per turn without a usable improvement.
    """
    if tau <= 0:
        raise ValueError(f"tau={tau}: must be > 0")
    drafts: list[tuple[str, list[dict[str, str]], str, dict[str, Any]]] = []
    rejects: list[Reject] = []
    for number, row in enumerate(rows, start=1):
        for found in row.get("improvements", []):
            example_id = f"{row['problem_id']}#t{found['turn']}"
            if found["chosen"] is None:
                rejects.append(Reject(STAGE, number, "improvement", found["reason"], STAGE, example_id))
                continue
            chosen, reward = found["chosen"], float(bool(found["chosen"]["correct"]))
            detail = {
                **(provenance or {}),
                "problem_id": row["problem_id"],
                "turn": found["turn"],
                "reward": reward,
                "raw_weight": raw_weight(reward, tau),
                "source": found["source"],
                "request_id": chosen["request_id"],
                "seed": chosen["seed"],
                "status": chosen["status"],
                "candidates": found["candidates"],
                "correct_candidates": found["correct_candidates"],
                "policy_answers": [t["request_id"] for t in row["turns"][: found["turn"] - 1]],
            }
            drafts.append((example_id, context_before(row["messages"], found["turn"]), chosen["text"], detail))
    if not drafts:
        return [], rejects
    mean = sum(d[3]["raw_weight"] for d in drafts) / len(drafts)
    examples = [
        SFTExample(
            id=example_id,
            messages=tuple(
                Message(m["role"], m["content"])  # type: ignore[arg-type]  # roles checked by context_before
                for m in (*context, {"role": "assistant", "content": text})
            ),
            weight=detail["raw_weight"] / mean,
            loss_turns="last",
            provenance=detail,
        )
        for example_id, context, text, detail in drafts
    ]
    return examples, rejects


def correct_answers(rows: Sequence[dict[str, Any]], provenance: dict[str, Any] | None = None) -> list[SFTExample]:
    """Every distinct correct answer the rollouts hold — the policy's own turns and the chosen improvements the grader
    confirms — each after its problem alone: one single-turn SFT row per (problem, answer text), in problem then turn
    order. Rejection-sampling fine-tuning on the same rollouts, without their turns: what plain SFT continued on
    them learns, beside RISE's weighted multi-turn examples.
    """
    examples: list[SFTExample] = []
    for row in rows:
        problem = context_before(row["messages"], 1)
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        answers = [(t, "policy") for t in row["turns"]]
        answers += [(i["chosen"], i["source"]) for i in row.get("improvements", []) if i["chosen"] is not None]
        for record, source in sorted(answers, key=lambda a: a[0]["turn"]):
            if record["correct"] and record["finish_reason"] != "length" and record["text"] not in found:
                found[record["text"]] = (record["request_id"], {"turn": record["turn"], "source": source})
        for text, (request_id, where) in found.items():
            detail = {**(provenance or {}), "problem_id": row["problem_id"], "request_id": request_id, **where}
            messages = (*(Message(m["role"], m["content"]) for m in problem), Message("assistant", text))  # type: ignore[arg-type]
            examples.append(SFTExample(id=request_id, messages=messages, provenance=detail))
    return examples


def episode_stats(rows: Sequence[dict[str, Any]], turns: int) -> dict[str, Any]:
    """Counts for the funnel and report: policy accuracy per turn, improvements by outcome."""
    answered = [sum(1 for r in rows if len(r["turns"]) >= t) for t in range(1, turns + 1)]
    correct = [
        sum(1 for r in rows if len(r["turns"]) >= t and r["turns"][t - 1]["correct"]) for t in range(1, turns + 1)
    ]
    improvements = [i for r in rows for i in r.get("improvements", [])]
    return {
        "episodes": len(rows),
        "policy_answers_per_turn": answered,
        "policy_correct_per_turn": correct,
        "solved_by_policy": sum(1 for r in rows if any(t["correct"] for t in r["turns"])),
        "improvements": len(improvements),
        "improvements_correct": sum(1 for i in improvements if i["chosen"] and i["chosen"]["correct"]),
        "improvements_incorrect": sum(1 for i in improvements if i["chosen"] and not i["chosen"]["correct"]),
        "improvements_unusable": sum(1 for i in improvements if i["chosen"] is None),
    }
