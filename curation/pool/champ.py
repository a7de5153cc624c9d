"""CHAMP as a curation pool: problems, human solutions and 19,440 model conversations as chains.

Each model conversation becomes one `Chain`: its text is the model's solution turn (the turn before
the "summarize the answer" request) and its final answer is the last model turn, the one-sentence
summary that CHAMP's responses are graded on. 261 conversations stop at the length limit: they are kept
with ``truncated=True`` and no final answer, so later stages can count them instead of losing them.
First-wrong-step annotations become character offsets on the annotated chain (-1: "no mistake").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.schema import HUMAN, Chain
from eval.benchmarks.champ import CHAMP_VERSION, champ_package_version, load_champ_problems, load_champ_raw
from eval.problem import Problem

# Facts about the dataset (docs/architecture.md, "CHAMP facts"); recipes choose which of them to use.
UNAIDED_SETTINGS = ("0-Shot", "5-Shot", "No C w/o H")
PARTIAL_SOLUTION_SETTINGS = ("1/3 Soln", "2/3 Soln")
WEAK_MODELS = ("GPT-3.5", "PaLM 2 Medium")
STRONG_MODELS = ("GPT-4", "GPT-4 Turbo")
NO_MISTAKE = -1


@dataclass(frozen=True)
class FirstWrongStep:
    """One CHAMP first-wrong-step annotation of a model solution."""

    problem_id: str
    chain_id: str
    start: int | None
    end: int | None
    author: str

    @property
    def no_mistake(self) -> bool:
        return self.start is None


@dataclass
class ChampPool:
    """Everything CHAMP offers to curation."""

    problems: list[Problem]
    human_chains: list[Chain]
    model_chains: list[Chain]
    annotations: list[FirstWrongStep]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def chains(self) -> list[Chain]:
        return self.human_chains + self.model_chains


def chain_id(problem_id: str, generator: str, setting: str | None = None) -> str:
    return f"{problem_id}/{generator}" + (f"/{setting}" if setting else "")


def load_champ_pool(version: str = CHAMP_VERSION) -> ChampPool:
    """Load CHAMP's problems, human chains, model chains and first-wrong-step annotations."""
    raw = load_champ_raw(version)
    provenance = {"dataset": "champ-dataset", "package_version": champ_package_version(), "version": version}
    problems = load_champ_problems(version)
    human = [_human_chain(p, provenance) for p in problems]
    model_chains: list[Chain] = []
    annotations: list[FirstWrongStep] = []
    for raw_problem in raw.problems.values():
        notes = raw_problem.fws_annotations or {}
        for key, conversation in raw_problem.conversations.items():
            model_chains.append(_model_chain(raw_problem.identifier, key, conversation, notes.get(key), provenance))
        annotations.extend(_annotation(raw_problem.identifier, k, a) for k, a in notes.items())
    return ChampPool(problems, human, model_chains, annotations, provenance)


def _human_chain(problem: Problem, provenance: dict[str, str]) -> Chain:
    return Chain(
        id=chain_id(problem.id, HUMAN),
        problem_id=problem.id,
        text=problem.solution or "",
        final_answer=problem.answer,
        generator=HUMAN,
        provenance={**provenance, "kind": "human_solution"},
    )


def _model_chain(problem_id: str, key: str, conversation: Any, note: Any, provenance: dict[str, str]) -> Chain:
    model, setting = key.split("|", 1)
    turns = [m for m in conversation.messages if m.role.startswith("Model.")]
    solution, summary = turns[-2], turns[-1]
    truncated = solution.error == "LENGTH_CURRENT" or summary.text is None
    users = [m.text for m in conversation.messages if m.role == "User"]
    first_wrong = None
    if note is not None and note.text == solution.text:
        first_wrong = NO_MISTAKE if note.start_idx is None else int(note.start_idx)
    return Chain(
        id=chain_id(problem_id, model, setting),
        problem_id=problem_id,
        text=solution.text or "",
        final_answer=summary.text,
        generator=model,
        prompt_setting=setting,
        truncated=truncated,
        first_wrong_step=first_wrong,
        provenance={
            **provenance,
            "kind": "model_conversation",
            "conversation": key,
            "prompt": users[0] if users else None,
            "model_turns": len(turns),
        },
    )


def _annotation(problem_id: str, key: str, note: Any) -> FirstWrongStep:
    model, setting = key.split("|", 1)
    return FirstWrongStep(problem_id, chain_id(problem_id, model, setting), note.start_idx, note.end_idx, note.author)
