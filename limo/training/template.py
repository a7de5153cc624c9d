"""What a model's chat template means for training: where the loss goes, and which system prompt the model sees.

**Loss on the assistant's tokens only.** TRL's ``assistant_only_loss`` masks by the template's ``{% generation %}``
markers; for templates it knows (Qwen2.5, Llama 3, ...) it swaps in a marked copy. A template it does not know,
SmolLM2's ChatML for one, has no markers, and pad and EOS are often the same token there (``<|im_end|>``), so a
mask built from "not padding" would also drop the end-of-turn token and the model would never learn to stop.
For such a template each single-answer row becomes a prompt -> completion row (the conversation before the last
assistant turn, then that turn): TRL's ``completion_only_loss`` then trains exactly the tokens the template renders
for the assistant turn, which are its content, its end-of-turn token and the template's newline after it,
whatever the pad token is. A multi-turn row whose loss is on its last answer alone (``last_turn_only``: RISE's
examples) becomes prompt -> completion the same way, its earlier turns in the prompt; other multi-turn rows need a
marked template (``model.chat_template``), and say so.

**System prompt.** Many templates insert a default system turn when the conversation has none (SmolLM2: "You are
a helpful AI assistant named SmolLM..."). The recipe's ``train.system_prompt`` replaces it; null keeps the
template's default. Either way the plan line says which, quoting it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROBE = "\u2063PROBE\u2063"


@dataclass(frozen=True)
class LossLayout:
    """How the rows reach TRL: the rows, the `SFTConfig` keys that go with them, and the sentence the plan prints."""

    rows: list[dict[str, Any]]
    args: dict[str, Any]
    note: str


def has_training_template(tokenizer: Any) -> bool:
    """Whether TRL can mask assistant turns with this tokenizer's template (its own markers, or a marked copy
    TRL ships for it)."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tokenizer.chat_template
    if template and has_generation_markers(template):
        return True
    try:
        return get_training_chat_template(tokenizer) is not None
    except (ValueError, NotImplementedError):
        return False


def loss_layout(tokenizer: Any, rows: Sequence[Mapping[str, Any]], assistant_only: bool) -> LossLayout:
    """The rows as TRL should get them for ``assistant_only`` loss with this tokenizer (see the module docstring).

    Raises:
        ValueError: The template has no ``{% generation %}`` markers TRL can use and some row has more than one
            assistant turn, or does not end with one.
    """
    if not assistant_only:
        return LossLayout([dict(r) for r in rows], {}, "loss on every token (train.args.assistant_only_loss=false)")
    if has_training_template(tokenizer):
        return LossLayout([dict(r) for r in rows], {}, "loss on assistant turns ({% generation %} markers)")
    converted = [
        prompt_completion(row["messages"], index, bool(row.get("last_turn_only"))) for index, row in enumerate(rows)
    ]
    extra = [{k: v for k, v in row.items() if k != "messages"} for row in rows]
    note = (
        "loss on the assistant turn and its end-of-turn token (the chat template has no {% generation %} "
        "markers: rows trained as prompt -> completion)"
    )
    return LossLayout(
        [{**c, **e} for c, e in zip(converted, extra, strict=True)],
        {"assistant_only_loss": False, "completion_only_loss": True},
        note,
    )


def prompt_completion(messages: Sequence[Mapping[str, Any]], index: int, last_only: bool = False) -> dict[str, Any]:
    """``{"prompt": turns before the answer, "completion": [the answer]}`` for a row ending in its only answer, or
    (``last_only``: loss on the last answer alone) in its last one.

    Raises:
        ValueError: The row does not end with an assistant turn, or has several and not ``last_only``.
    """
    roles = [m["role"] for m in messages]
    if roles[-1:] != ["assistant"] or (roles.count("assistant") != 1 and not last_only):
        raise ValueError(
            f"row {index}: {roles.count('assistant')} assistant turns ({' -> '.join(roles)}); the model's chat "
            "template has no {% generation %} markers, so only rows ending in their one answer can be trained: "
            "set model.chat_template to a template with markers"
        )
    return {"prompt": [dict(m) for m in messages[:-1]], "completion": [dict(messages[-1])]}


def template_default_system(tokenizer: Any) -> str | None:
    """The system text the template inserts when a conversation has none (None: it inserts nothing).

    Rendered with a system turn, a conversation reads ``opening + system + between + user``; rendered without
    one, a template with a default reads ``opening + default + between + user``.
    """
    system, user = PROBE + "S", PROBE
    bare = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False)
    full = tokenizer.apply_chat_template(
        [{"role": "system", "content": system}, {"role": "user", "content": user}], tokenize=False
    )
    opening, rest = full.split(system, 1)
    between = rest[: rest.index(user)]
    before_user = bare[: bare.index(user)]
    if not before_user.startswith(opening) or not before_user.endswith(between):
        return None
    default = before_user[len(opening) : len(before_user) - len(between)]
    return default or None


def system_prompt_note(tokenizer: Any, system_prompt: str | None) -> str:
    """One sentence for the plan: which system prompt the model trains with, and what it replaces."""
    default = template_default_system(tokenizer)
    if system_prompt:
        replaced = f", replacing the template's default {default!r}" if default else ""
        return f"system prompt {system_prompt!r} (the recipe's{replaced})"
    if default:
        return f"system prompt {default!r} (the template's default, kept: train.system_prompt is null)"
    return "no system prompt (train.system_prompt is null and the template adds none)"
