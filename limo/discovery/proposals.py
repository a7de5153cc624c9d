"""The proposer's side: the conversation it is shown, and its raw reply turned into a `Proposal`.

As in the DiscoPOP paper, the proposer answers in JSON with ``thought``, ``name`` and ``code``. Replies are
read leniently — the whole text, a fenced block, or the first JSON object found in prose; control
characters inside strings (real newlines in ``code``) are accepted, a fence or common indentation around the
code is removed — but a reply with no JSON object, or
JSON without a string ``code``, is a `MalformedReply` with a reason that goes back to the proposer. Nothing
here executes the code.

The conversation is rebuilt from the archive every generation (so a resumed loop asks the same question):
the system prompt, a first user turn listing the archive seed and the best objectives so far with their
fitness, then the last ``history`` proposals verbatim, each followed by its feedback ("Fitness: X. Please
generate the next one." or "Code not valid. Error: ..."). Prompt texts live in the recipe; their placeholders
(``{archive}``, ``{fitness}``, ``{standard_error}``, ``{reason}``) are replaced literally, so other braces in
them are safe. The fitness's standard error is said beside it (in the listing too): with a few dozen
held-out pairs, differences the proposer might chase are often noise.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_REPLY_CHARS = 200_000
MAX_NAME_CHARS = 100
MAX_THOUGHT_CHARS = 4_000
MAX_JSON_STARTS = 50  # '{' positions tried when the reply is prose with JSON inside
FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)
CODE_FENCE = re.compile(r"```[A-Za-z]*\s*\n(.*?)\n?```", re.DOTALL)


class MalformedReply(ValueError):
    """The reply holds no usable proposal (archive status ``invalid``)."""


@dataclass(frozen=True)
class Proposal:
    name: str
    thought: str
    code: str


def parse_reply(text: str) -> Proposal:
    """The proposal in a raw reply.

    Raises:
        MalformedReply: No JSON object, JSON without a string ``code``, or a reply over `MAX_REPLY_CHARS`.
    """
    if not isinstance(text, str) or not text.strip():
        raise MalformedReply("the reply is empty")
    if len(text) > MAX_REPLY_CHARS:
        raise MalformedReply(f"the reply is {len(text)} characters long; at most {MAX_REPLY_CHARS} are read")
    objects = list(_json_objects(text))
    if not objects:
        raise MalformedReply('the reply contains no JSON object; answer with {"thought", "name", "code"}')
    with_code = [o for o in objects if "code" in o]
    if not with_code:
        fields = ", ".join(sorted(objects[0])) or "none"
        raise MalformedReply(f"the reply's JSON has no 'code' field (fields: {fields})")
    chosen = with_code[0]
    if not isinstance(chosen["code"], str) or not chosen["code"].strip():
        raise MalformedReply("the reply's 'code' field must be a non-empty string of Python code")
    return Proposal(
        _text_field(chosen, "name", MAX_NAME_CHARS),
        _text_field(chosen, "thought", MAX_THOUGHT_CHARS),
        unwrap_code(chosen["code"]),
    )


def unwrap_code(code: str) -> str:
    """The code without a markdown fence around it or a common indentation (both frequent in LLM replies)."""
    fenced = CODE_FENCE.fullmatch(code.strip())
    return textwrap.dedent(fenced.group(1) if fenced else code)


def _text_field(obj: Mapping[str, Any], key: str, limit: int) -> str:
    value = obj.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _json_objects(text: str):
    """JSON objects in ``text``: the whole text, then fenced blocks, then objects starting at a '{'."""
    decoder = json.JSONDecoder(strict=False)
    candidates = [text.strip(), *(m.group(1).strip() for m in FENCE.finditer(text))]
    for candidate in candidates:
        value = _decode(decoder, candidate)
        if isinstance(value, dict):
            yield value
    starts = [m.start() for m in re.finditer(r"\{", text)][:MAX_JSON_STARTS]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            yield value


def _decode(decoder: json.JSONDecoder, candidate: str) -> Any:
    try:
        return decoder.decode(candidate)
    except (ValueError, RecursionError):
        return None


def slug(name: str, fallback: str) -> str:
    """A file-name-safe form of a proposer-chosen name (never a path: no separators, no dots)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")[:40]
    return cleaned or fallback


# --- the conversation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptTexts:
    """The recipe's prompt texts (``discover.prompt``)."""

    system: str
    first_user: str  # contains {archive}
    feedback_valid: str  # contains {fitness} (and may contain {standard_error})
    feedback_invalid: str  # contains {reason}
    history: int = 20
    shown_best: int = 8


def feedback(texts: PromptTexts, row: Mapping[str, Any]) -> str:
    """What the proposer hears about one archive row."""
    if row["status"] == "valid":
        text = texts.feedback_valid.replace("{fitness}", _fitness_text(row.get("fitness")))
        return text.replace("{standard_error}", _fitness_text(row.get("fitness_se")))
    return texts.feedback_invalid.replace("{reason}", str(row.get("reason") or row["status"]))


def _fitness_text(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def archive_listing(rows: Sequence[Mapping[str, Any]], shown_best: int) -> str:
    """The seed objectives and the best valid proposals so far, as JSON lines with their fitness."""
    seeds = [r for r in rows if r["generation"] == 0 and r["status"] == "valid"]
    valid = [r for r in rows if r["generation"] > 0 and r["status"] == "valid" and r.get("fitness") is not None]
    best = sorted(valid, key=lambda r: (-float(r["fitness"]), r["generation"]))[:shown_best]
    shown = [_listed(r) for r in seeds + best]
    return "\n".join(json.dumps(item) for item in shown)


def _listed(row: Mapping[str, Any]) -> dict[str, Any]:
    item = {"name": row["name"], "code": row["code"], "fitness": round(float(row["fitness"]), 4)}
    if row.get("fitness_se") is not None:
        item["standard_error"] = round(float(row["fitness_se"]), 4)
    return item


def build_messages(texts: PromptTexts, rows: Sequence[Mapping[str, Any]], replies: Mapping[int, str]) -> list[dict]:
    """The chat the proposer answers next: system, archive listing, then recent proposals with feedback."""
    messages = [
        {"role": "system", "content": texts.system},
        {"role": "user", "content": texts.first_user.replace("{archive}", archive_listing(rows, texts.shown_best))},
    ]
    recent = [r for r in rows if r["generation"] > 0][-texts.history :] if texts.history > 0 else []
    for row in recent:
        messages.append({"role": "assistant", "content": replies.get(row["generation"], "")})
        messages.append({"role": "user", "content": feedback(texts, row)})
    return messages
