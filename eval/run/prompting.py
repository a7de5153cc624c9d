"""Turning a problem into chat messages, exactly as the recipe says.

The recipe names the system prompt (LIMO's is "Please reason step by step, and put your final answer
within \\boxed{}."), optional few-shot examples and a user template; the chat template itself is applied
by the backend (the model's own unless the recipe names one), because only the backend knows the
tokenizer. No prompt text is hard-coded here: a default belongs in a recipe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FewShotExample:
    """One worked example shown before the problem (a user turn and an assistant turn)."""

    problem: str
    response: str


@dataclass(frozen=True)
class PromptStyle:
    """How a problem is presented to the model.

    Attributes:
        system_prompt: System turn text, or None for no system turn.
        user_template: Format string for the user turn; ``{problem}`` is replaced by the problem text.
        few_shot: Examples inserted as earlier user/assistant turns.
    """

    system_prompt: str | None = None
    user_template: str = "{problem}"
    few_shot: tuple[FewShotExample, ...] = ()

    def __post_init__(self) -> None:
        if "{problem}" not in self.user_template:
            raise ValueError(f"user_template {self.user_template!r} has no {{problem}} placeholder")

    def to_dict(self) -> dict[str, Any]:
        return {
            "system_prompt": self.system_prompt,
            "user_template": self.user_template,
            "few_shot": [{"problem": e.problem, "response": e.response} for e in self.few_shot],
        }


def build_prompt_style(
    system_prompt: str | None, user_template: str = "{problem}", few_shot: Sequence[Mapping[str, str]] = ()
) -> PromptStyle:
    """A `PromptStyle` from plain config values (few-shot rows need ``problem`` and ``response``)."""
    examples = []
    for number, row in enumerate(few_shot, start=1):
        missing = [k for k in ("problem", "response") if not row.get(k)]
        if missing:
            raise ValueError(f"few_shot example {number}: missing field {missing[0]!r}")
        examples.append(FewShotExample(str(row["problem"]), str(row["response"])))
    return PromptStyle(system_prompt or None, user_template, tuple(examples))


def build_messages(problem: str, style: PromptStyle) -> tuple[dict[str, str], ...]:
    """The chat messages for one problem: system turn, few-shot turns, then the problem."""
    messages: list[dict[str, str]] = []
    if style.system_prompt:
        messages.append({"role": "system", "content": style.system_prompt})
    for example in style.few_shot:
        messages.append({"role": "user", "content": style.user_template.replace("{problem}", example.problem)})
        messages.append({"role": "assistant", "content": example.response})
    messages.append({"role": "user", "content": style.user_template.replace("{problem}", problem)})
    return tuple(messages)
