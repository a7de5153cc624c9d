"""Extraction: a generation backend with a few-shot prompt pulls question-answer pairs out of each document.

The model answers with a JSON list of ``{"question", "answer"}`` objects (a single object is accepted too).
Model output is untrusted text: it is only ever read with ``json`` (never eval'd), its size is capped before
parsing, and anything that is not the expected shape is a `MalformedOutput` with a reason. A malformed
answer is asked again, with a new per-row seed, up to ``max_attempts`` times; after that the document is
rejected with the last reason. A well-formed empty list means "no pair on this page": rejected at once,
not retried. Nothing raises out of a batch, so one bad page never stops a run.

`generate_with_retries` is shared with `refine`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from eval.backends.base import Backend, Generation, GenerationRequest, row_seed
from eval.backends.generation import GenerationOptions

MAX_OUTPUT_CHARS = 100_000
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)

EXTRACT_INSTRUCTION = (
    "Below is a web page. Find every self-contained question on it whose answer is also on the page, and copy "
    "each question with its answer. Keep the mathematics exactly; leave out navigation, ads, user names and "
    'comments. Reply with only a JSON list of objects with the keys "question" and "answer". If the page has '
    "no question with an answer, reply [].\n\nPage:\n"
)
# (page, reply) demonstrations shown before the real page; the recipe picks how many.
FEW_SHOT: tuple[tuple[str, str], ...] = (
    (
        "algebra-help.net > Questions\nSolving a linear equation\nasked 2 days ago\n\nHow do I solve 3x + 5 = 20?\n\n"
        "1 Answer\nSubtract 5 from both sides: 3x = 15. Divide by 3: x = 5.\n\nShare Follow",
        '[{"question": "Solve 3x + 5 = 20.", "answer": "Subtract 5 from both sides: 3x = 15. Divide by 3: x = 5."}]',
    ),
    (
        "Release notes 2.4.1\n\n- Fixed a crash when the cache held more than 65536 entries.\n"
        "- Dropped Python 3.8.\n\n(c) 2023 example.org",
        "[]",
    ),
)


class MalformedOutput(ValueError):
    """Model output that is not the JSON shape a stage asked for; the message is the reject reason."""


@dataclass(frozen=True)
class QAPair:
    """A question-answer pair pulled out of (or rewritten from) a document."""

    id: str
    doc_id: str
    question: str
    answer: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> QAPair:
        return cls(row["id"], row["doc_id"], row["question"], row["answer"], row.get("provenance", {}))


@dataclass(frozen=True)
class Attempted:
    """What `generate_with_retries` made of one item: a parsed value, or a reason it has none."""

    key: str
    value: Any = None
    reason: str | None = None
    attempts: int = 0
    texts: tuple[str, ...] = ()


def extract_request_id(doc_id: str, attempt: int) -> str:
    """Request id of extraction attempt ``attempt`` for a document (the key a replay transcript uses)."""
    return f"extract:{doc_id}#{attempt}"


def pair_id(doc_id: str, index: int) -> str:
    return f"{doc_id}/q{index}"


# ------------------------------------------------------------------------------------------------- parsing


def parse_json_value(text: str) -> Any:
    """The first JSON value in ``text`` (inside a code fence if there is one).

    Raises:
        MalformedOutput: No JSON value, output too long, or truncated JSON.
    """
    if len(text) > MAX_OUTPUT_CHARS:
        raise MalformedOutput(f"output longer than {MAX_OUTPUT_CHARS} characters")
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    starts = [i for i in (body.find("["), body.find("{")) if i >= 0]
    if not starts:
        raise MalformedOutput("no JSON object or list in output")
    try:
        value, _ = json.JSONDecoder().raw_decode(body, min(starts))
    except json.JSONDecodeError as err:
        raise MalformedOutput(f"invalid JSON ({err.msg} at char {err.pos})") from None
    return value


def check_pair(item: Any, where: str) -> tuple[str, str]:
    """``(question, answer)`` from one parsed object, or `MalformedOutput` naming the bad field."""
    if not isinstance(item, dict):
        raise MalformedOutput(f"{where}: expected an object, got {type(item).__name__}")
    values = []
    for key in ("question", "answer"):
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            raise MalformedOutput(f"{where}: field '{key}' missing or not a non-empty string")
        values.append(value.strip())
    return values[0], values[1]


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """Question-answer pairs from an extraction reply (a JSON list of objects, or one object)."""
    value = parse_json_value(text)
    items = value if isinstance(value, list) else [value]
    return [check_pair(item, f"item {k}") for k, item in enumerate(items)]


# ------------------------------------------------------------------------------------------------- generation

T = TypeVar("T")


def generate_with_retries(
    items: Sequence[T],
    *,
    key: Callable[[T], str],
    request: Callable[[T, int], GenerationRequest],
    parse: Callable[[str], Any],
    backend: Backend,
    max_attempts: int,
) -> list[Attempted]:
    """Generate for every item, re-asking (new seed) those whose output ``parse`` rejects.

    Args:
        items: Work items.
        key: Item -> unique key.
        request: ``(item, attempt)`` -> the request (its seed should depend on the attempt).
        parse: Output text -> value; raises `MalformedOutput` with the reason.
        backend: Any generation backend.
        max_attempts: Attempts per item (at least 1).

    Returns:
        One `Attempted` per item, in input order.
    """
    results: dict[str, Attempted] = {}
    pending = list(items)
    for attempt in range(max(1, max_attempts)):
        if not pending:
            break
        generations = backend.generate([request(item, attempt) for item in pending])
        failed = []
        for item, generation in zip(pending, generations, strict=True):
            previous = results.get(key(item), Attempted(key(item)))
            results[key(item)] = outcome = _attempt(previous, generation, parse, attempt)
            if outcome.reason is not None:
                failed.append(item)
        pending = failed
    return [results[key(item)] for item in items]


def _attempt(previous: Attempted, generation: Generation, parse: Callable[[str], Any], attempt: int) -> Attempted:
    texts = (*previous.texts, generation.text)
    if generation.finish_reason == "error":
        return Attempted(previous.key, None, f"backend error: {generation.text[:200]}", attempt + 1, texts)
    try:
        value = parse(generation.text)
    except MalformedOutput as err:
        cut = " (output hit the length limit)" if generation.finish_reason == "length" else ""
        return Attempted(previous.key, None, f"{err}{cut}", attempt + 1, texts)
    return Attempted(previous.key, value, None, attempt + 1, texts)


def extract_messages(text: str, *, num_few_shot: int, max_doc_chars: int) -> tuple[dict[str, str], ...]:
    """Chat messages asking for the pairs in one document, after ``num_few_shot`` demonstrations."""
    turns: list[dict[str, str]] = []
    for page, reply in FEW_SHOT[:num_few_shot]:
        turns += [{"role": "user", "content": EXTRACT_INSTRUCTION + page}, {"role": "assistant", "content": reply}]
    return (*turns, {"role": "user", "content": EXTRACT_INSTRUCTION + text[:max_doc_chars]})


@dataclass(frozen=True)
class ExtractOptions:
    """Extraction (``curate.mammoth2.extract``).

    Attributes:
        generator: The extractor (``replay`` with no ``path``: the embedded corpus's teacher transcript).
        max_attempts: Attempts per document before a malformed output becomes a reject.
        num_few_shot: Demonstrations before the page.
        max_doc_chars: Page characters shown to the model.
    """

    generator: GenerationOptions = field(default_factory=lambda: GenerationOptions(max_new_tokens=2048, batch_size=64))
    max_attempts: int = 3
    num_few_shot: int = 2
    max_doc_chars: int = 12_000


def extract_documents(
    docs: Sequence[dict[str, Any]], backend: Backend, settings: ExtractOptions, seed: int
) -> tuple[list[QAPair], list[dict[str, Any]]]:
    """Question-answer pairs from documents ``{"id", "text", ...}``.

    Returns:
        ``(pairs, rejects)``: rejects are ``{"id", "stage", "reason", "attempts"}`` rows, one per document
        that yielded no pair. Every document ends up in exactly one of the two (possibly with many pairs).
    """

    def request(doc: dict[str, Any], attempt: int) -> GenerationRequest:
        return GenerationRequest(
            id=extract_request_id(doc["id"], attempt),
            messages=extract_messages(
                doc["text"], num_few_shot=settings.num_few_shot, max_doc_chars=settings.max_doc_chars
            ),
            sampling=settings.generator.sampling(),
            seed=row_seed(seed, doc["id"], attempt),
            meta={"doc_id": doc["id"], "attempt": attempt, "stage": "extract"},
        )

    outcomes = generate_with_retries(
        docs,
        key=lambda d: d["id"],
        request=request,
        parse=parse_pairs,
        backend=backend,
        max_attempts=settings.max_attempts,
    )
    pairs, rejects = [], []
    for doc, outcome in zip(docs, outcomes, strict=True):
        if outcome.reason is not None:
            reason = f"malformed extraction after {outcome.attempts} attempts: {outcome.reason}"
            rejects.append(reject_row(doc["id"], "extract", failure_code(outcome), reason, outcome))
        elif not outcome.value:
            rejects.append(reject_row(doc["id"], "extract", "no_pair", "no question-answer pair in document", outcome))
        else:
            pairs.extend(_pairs(doc, outcome))
    return pairs, rejects


def _pairs(doc: dict[str, Any], outcome: Attempted) -> list[QAPair]:
    source: dict[str, Any] = {k: doc[k] for k in ("url", "recall_score", "file_path") if k in doc}
    return [
        QAPair(pair_id(doc["id"], k), doc["id"], q, a, {**source, "extract_attempts": outcome.attempts})
        for k, (q, a) in enumerate(outcome.value)
    ]


def failure_code(outcome: Attempted) -> str:
    """Short reject code for a failed item: the backend failed, or the model's output was malformed."""
    return "backend_error" if (outcome.reason or "").startswith("backend error") else "malformed_output"


def reject_row(identifier: str, stage: str, code: str, reason: str, outcome: Attempted) -> dict[str, Any]:
    """A reject: ``code`` for counting, ``reason`` for people, the raw outputs for debugging."""
    outputs = [text[:2000] for text in outcome.texts]
    return {
        "id": identifier,
        "stage": stage,
        "code": code,
        "reason": reason,
        "attempts": outcome.attempts,
        "outputs": outputs,
    }
