"""Reasoning chains and the training-example types every recipe produces.

One chain type covers model attempts, human solutions and injected errors. Training examples come in
three shapes, chosen so that each method recipe fits without a new type:

- `SFTExample`: chat messages with an optional per-example loss ``weight`` (RISE weights turns by
  reward; plain SFT leaves it at 1.0) and ``loss_turns`` naming which assistant turns carry loss.
- `PreferencePair`: prompt / chosen / rejected (DPO, DiscoPOP).
- `ErrorCorrectionExample`: a wrong chain cut at its first wrong step plus reflection and fix (LEMMA);
  it renders to an `SFTExample`.

All are frozen dataclasses with ``to_dict`` / ``from_dict`` so they round-trip through JSONL.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]
HUMAN = "human"  # the only generator whose chains are verified references (declared, never assumed)
MODEL = "model"  # a chain's author when the pool does not name one: model-written, to be graded


@dataclass(frozen=True, slots=True)  # slots: pools hold millions of chains
class Chain:
    """One candidate reasoning chain for a problem.

    Attributes:
        id: Unique chain id (``<problem_id>/<generator>/<prompt_setting>/<n>`` for CHAMP).
        problem_id: Id of the `eval.problem.Problem` it solves.
        text: The full reasoning text.
        final_answer: The final-answer text as written (a summary sentence, a boxed value, ...), if any.
        generator: Who wrote it: a model name, ``model`` when unnamed, or ``human`` (a verified reference).
        prompt_setting: How it was prompted (``0-Shot``, ``5-Shot``, ...); None for human chains.
        truncated: The generation stopped at its length limit.
        first_wrong_step: Character offset in ``text`` where the first wrong step starts, when annotated;
            -1 means annotated as having no mistake; None means not annotated.
        provenance: Where the chain came from (source file, row, dataset version, ...).
    """

    id: str
    problem_id: str
    text: str
    final_answer: str | None = None
    generator: str = MODEL
    prompt_setting: str | None = None
    truncated: bool = False
    first_wrong_step: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # Field by field rather than `asdict`, whose deep copy was most of the pool store's ingest time (a row is
        # serialised at once; provenance is copied one level deep, as callers only add keys to it).
        return {
            "id": self.id,
            "problem_id": self.problem_id,
            "text": self.text,
            "final_answer": self.final_answer,
            "generator": self.generator,
            "prompt_setting": self.prompt_setting,
            "truncated": self.truncated,
            "first_wrong_step": self.first_wrong_step,
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Chain:
        return cls(**row)


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class SFTExample:
    """A chat conversation to train on.

    Attributes:
        id: Example id (usually the problem id, or ``<problem>/<turn>``).
        messages: user / assistant turns, no system turn (training adds the recipe's).
        weight: Per-example loss weight (1.0 for plain SFT).
        loss_turns: ``"all"`` — every assistant turn carries loss; ``"last"`` — only the final one (RISE).
        provenance: Scores, source and decisions that produced the example.
    """

    id: str
    messages: tuple[Message, ...]
    weight: float = 1.0
    loss_turns: Literal["all", "last"] = "all"
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.messages or self.messages[-1].role != "assistant":
            raise ValueError(f"example {self.id}: the last message must be an assistant turn")
        if any(m.role == "system" for m in self.messages):
            raise ValueError(f"example {self.id}: no system turn (training adds the recipe's)")

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.id, "messages": [m.to_dict() for m in self.messages]}
        if self.weight != 1.0:
            row["weight"] = self.weight
        if self.loss_turns != "all":
            row["loss_turns"] = self.loss_turns
        if self.provenance:
            row["provenance"] = self.provenance
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> SFTExample:
        messages = tuple(Message(m["role"], m["content"]) for m in row["messages"])
        return cls(
            id=str(row["id"]),
            messages=messages,
            weight=float(row.get("weight", 1.0)),
            loss_turns=row.get("loss_turns", "all"),
            provenance=row.get("provenance", {}),
        )

    @classmethod
    def single_turn(cls, id: str, prompt: str, response: str, **kwargs: Any) -> SFTExample:  # noqa: A002
        return cls(id=id, messages=(Message("user", prompt), Message("assistant", response)), **kwargs)


@dataclass(frozen=True)
class PreferencePair:
    """A preference pair for DPO-style training: same prompt, a better and a worse response."""

    id: str
    prompt: str
    chosen: str
    rejected: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
            "id": self.id,
            **({"provenance": self.provenance} if self.provenance else {}),
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> PreferencePair:
        return cls(str(row["id"]), row["prompt"], row["chosen"], row["rejected"], row.get("provenance", {}))


@dataclass(frozen=True)
class ErrorCorrectionExample:
    """LEMMA: a wrong solution up to its first wrong step, a reflection, then the way out.

    Attributes:
        id: Example id.
        problem_id: The problem solved.
        prompt: The problem statement as the user turn.
        wrong_chain: The wrong solution's full text.
        first_wrong_step: Character offset in ``wrong_chain`` where the error starts (0 <= x <= len).
        reflection: The reflection phrase inserted after the cut.
        continuation: The fix and continuation (``fix_and_continue``) or a fresh solution (``fresh_restart``).
        connection: Which of the two LEMMA connections this is.
        error_type: The error type from the taxonomy, when known (injected errors record it).
        provenance: Where the wrong chain and the continuation came from.
        prefix_end: Where the shown part of the wrong chain ends: None, at the first wrong step (the error is not
            shown); the wrong step's end to show the error before the reflection (LEMMA's own examples).
    """

    id: str
    problem_id: str
    prompt: str
    wrong_chain: str
    first_wrong_step: int
    reflection: str
    continuation: str
    connection: Literal["fix_and_continue", "fresh_restart"]
    error_type: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    prefix_end: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.first_wrong_step <= len(self.wrong_chain):
            raise ValueError(
                f"example {self.id}: first_wrong_step {self.first_wrong_step} is outside the chain "
                f"(0..{len(self.wrong_chain)})"
            )
        if self.prefix_end is not None and not self.first_wrong_step <= self.prefix_end <= len(self.wrong_chain):
            raise ValueError(
                f"example {self.id}: prefix_end {self.prefix_end} is outside {self.first_wrong_step}.."
                f"{len(self.wrong_chain)}"
            )

    def response(self) -> str:
        prefix = self.wrong_chain[: self.first_wrong_step if self.prefix_end is None else self.prefix_end].rstrip()
        return f"{prefix}\n\n{self.reflection}\n\n{self.continuation}".lstrip()

    def to_sft(self) -> SFTExample:
        provenance = {
            **self.provenance,
            "connection": self.connection,
            "error_type": self.error_type,
            "first_wrong_step": self.first_wrong_step,
        }
        return SFTExample.single_turn(self.id, self.prompt, self.response(), provenance=provenance)

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        if self.prefix_end is None:  # the default cut: rows read as they did before the field existed
            del row["prefix_end"]
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> ErrorCorrectionExample:
        return cls(**row)
