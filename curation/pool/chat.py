"""A pool column holding a chat (a list of turns) as a problem, a chain and a prompt setting.

Public reasoning sets store their samples as chats in a few spellings: OpenAI's ``[{role, content}, ...]``
(NuminaMath's and OpenR1's ``messages``), ShareGPT's ``[{from, value}, ...]`` with roles ``human``, ``gpt``,
``system`` (OpenThoughts' ``conversations``), and others with their own keys, which a recipe names
(`curation.options.ChatOptions`). Any list whose elements are all mappings with a role key and a content key is
a chat; `read_chat` turns it into its turns once, and the row reader takes what it needs:

- the problem is the user turn: the only one by default (a multi-turn dialogue is rejected rather than cut,
  the reason naming ``chat.user_turn``), or the first or last one when the recipe says so;
- the chain is the last assistant turn that answers that user turn (after it, before the next user turn): a
  tool-using trace ends with the assistant's final turn; a chat without one is rejected;
- the system turns, joined, are the chain's prompt setting when the row declares none (the training view
  never carries them: training adds the recipe's system turn);
- tool turns, and turns without content (an assistant's bare tool call), are skipped; a role that is none of
  these rejects the row, naming the role and the key that would declare it;
- a content given as parts (OpenAI's ``[{"type": "text", "text": ...}, ...]``, Gemini's ``parts: [{"text": ...}]``)
  is its text parts joined; a part of another kind (an image) rejects the row, naming it;
- an assistant turn's reasoning kept apart from its content (``reasoning_content``, ``reasoning``:
  `ChatOptions.reasoning_keys`) goes before it in ``<think>`` tags, so the chain keeps its reasoning.

A list of mappings that are not turns (other keys) is reported with its keys, so the recipe can name them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from curation.options import ChatOptions
from eval.records import RowError

ROLE_KEYS = ("role", "from")
CONTENT_KEYS = ("content", "value", "parts")  # Gemini's turns: {"role": "user" | "model", "parts": [{"text"}]}
WHERE = "curate.stages.ingest.chat"


@dataclass(frozen=True)
class Chat:
    """A chat's turns as ``(kind, text)``: ``kind`` is ``user``, ``assistant`` or ``system`` (tool turns left out)."""

    turns: tuple[tuple[str, str], ...]

    def problem(self, options: ChatOptions, ours: str, column: str) -> str:
        """The user turn that is the problem (`ChatOptions.user_turn`)."""
        return self.turns[self._user_index(options, ours, column)][1]

    def chain(self, options: ChatOptions, ours: str, column: str) -> str:
        """The last assistant turn answering the problem's user turn.

        Raises:
            RowError: No assistant turn answers it.
        """
        start = self._user_index(options, ours, column)
        answers: list[str] = []
        for kind, text in self.turns[start + 1 :]:
            if kind == "user":
                break
            if kind == "assistant":
                answers.append(text)
        if not answers:
            raise RowError(
                f"field {ours!r} (column {column!r}) is a chat with 0 assistant turns after its user turn", ours
            )
        return answers[-1]

    def system(self, join_with: str) -> str | None:
        """The system turns' text, joined (None: there is none)."""
        texts = [text for kind, text in self.turns if kind == "system" and text.strip()]
        return join_with.join(texts) if texts else None

    def _user_index(self, options: ChatOptions, ours: str, column: str) -> int:
        users = [index for index, (kind, _) in enumerate(self.turns) if kind == "user"]
        if not users:
            raise RowError(f"field {ours!r} (column {column!r}) is a chat with 0 user turns", ours)
        if len(users) > 1 and options.user_turn == "only":
            raise RowError(
                f"field {ours!r} (column {column!r}) is a chat with {len(users)} user turns; say which is the "
                f"problem: {WHERE}.user_turn: first | last",
                ours,
            )
        return users[-1] if options.user_turn == "last" else users[0]


def turn_keys(turn: Mapping[str, Any], options: ChatOptions) -> tuple[str, str] | None:
    """The role key and content key of one turn, or None when it is not a turn."""
    role = options.role_key or ("role" if "role" in turn else "from")
    content = options.content_key or next((key for key in CONTENT_KEYS if key in turn), "content")
    return (role, content) if role in turn and content in turn else None


def is_chat(value: Sequence[Any], options: ChatOptions) -> bool:
    """Whether a list is a chat: non-empty, every element a mapping with a role key and a content key."""
    return bool(value) and all(isinstance(t, Mapping) and turn_keys(t, options) is not None for t in value)


_last = threading.local()  # per thread: the last list read, its options and its Chat (a row's fields share one list)


def as_chat(value: Sequence[Any], options: ChatOptions, ours: str, column: str) -> Chat | None:
    """``value`` as a `Chat`, or None when it is not a chat (`is_chat`). Ingest reads a row's chat column for its
    problem, its chain and its system turns: the list is read once (the last one read is remembered, by
    identity, with the options it was read with).

    Raises:
        RowError: A role that is none of the declared ones, or a turn whose content is not text.
    """
    seen = getattr(_last, "seen", None)
    if seen is not None and seen[0] is value and seen[1] is options:
        return seen[2]
    chat = read_chat(value, options, ours, column) if is_chat(value, options) else None
    _last.seen = (value, options, chat)  # holding the list keeps its id from being reused
    return chat


def read_chat(value: Sequence[Mapping[str, Any]], options: ChatOptions, ours: str, column: str) -> Chat:
    """A chat list (`is_chat`) as a `Chat`.

    Raises:
        RowError: A role that is none of the declared ones, or a turn whose content is not text.
    """
    kinds = role_kinds(options)
    turns = []
    for number, turn in enumerate(value):
        role_key, content_key = turn_keys(turn, options) or ("role", "content")
        role = turn[role_key]
        kind = kinds.get(role.lower()) if isinstance(role, str) else None
        if kind is None:
            raise RowError(
                f"field {ours!r} (column {column!r}): turn {number} has role {role!r}, which is no user, assistant, "
                f"system or tool role; declare it under {WHERE}.user_roles / assistant_roles / system_roles / "
                "tool_roles",
                ours,
            )
        content = turn[content_key]
        if kind == "tool" or content is None:  # a tool turn, or an assistant's bare tool call: no text to read
            continue
        if isinstance(content, list) and content and all(isinstance(p, Mapping) and _is_part(p) for p in content):
            content = _text_parts(content, f"field {ours!r} (column {column!r}): turn {number} ({role})", ours)
        if not isinstance(content, str):
            shown = f"a list of {len(content)}" if isinstance(content, list) else f"a {type(content).__name__}"
            raise RowError(
                f"field {ours!r} (column {column!r}): turn {number} ({role}) is {shown}; expected text", ours
            )
        if kind == "assistant":
            content = _with_reasoning(turn, content, options)
        turns.append((kind, content))
    return Chat(tuple(turns))


def _is_part(part: Mapping[str, Any]) -> bool:
    """A content part: OpenAI's typed ``{"type": ..., ...}`` or Gemini's ``{"text": ...}`` (or another kind)."""
    return "type" in part or "text" in part or "inline_data" in part or "file_data" in part


def _text_parts(parts: Sequence[Mapping[str, Any]], where: str, ours: str) -> str:
    """A content given as parts: its text parts' text, joined by a blank line.

    Raises:
        RowError: A part that is not text (an image, audio), named.
    """
    texts = []
    for part in parts:
        kind = part.get("type", "text" if "text" in part else next(iter(part), "?"))
        if kind != "text" or not isinstance(part.get("text"), str):
            raise RowError(f"{where} has a part of type {kind!r}; only text parts are read", ours)
        texts.append(part["text"])
    return "\n\n".join(texts)


def _with_reasoning(turn: Mapping[str, Any], content: str, options: ChatOptions) -> str:
    """An assistant turn's content after its reasoning in ``<think>`` tags, when the turn keeps its reasoning apart
    (`ChatOptions.reasoning_keys`) and the content holds no ``<think>`` block of its own."""
    for key in options.reasoning_keys:
        reasoning = turn.get(key)
        if isinstance(reasoning, str) and reasoning.strip() and "<think>" not in content:
            return f"<think>\n{reasoning.strip()}\n</think>\n\n{content}"
    return content


@lru_cache(maxsize=8)
def role_kinds(options: ChatOptions) -> dict[str, str]:
    """Role name (lower case) -> ``user``, ``assistant``, ``system`` or ``tool`` (cached: read for every row)."""
    kinds = {}
    for kind, roles in (
        ("tool", options.tool_roles),
        ("system", options.system_roles),
        ("assistant", options.assistant_roles),
        ("user", options.user_roles),
    ):
        kinds.update({role.lower(): kind for role in roles})
    return kinds


def not_a_chat(value: Sequence[Any], ours: str, column: str) -> RowError | None:
    """The error for a list of mappings that are not turns (their keys shown), else None."""
    if not value or not all(isinstance(t, Mapping) for t in value):
        return None
    keys = sorted({str(k) for t in value for k in t})[:8]
    return RowError(
        f"field {ours!r} (column {column!r}) is a list of {len(value)} dicts with keys {keys}, not a chat with "
        f"role/content or from/value turns; name its keys: {WHERE}.role_key / content_key",
        ours,
    )
