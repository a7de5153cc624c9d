"""How one row of a user's pool becomes a problem and its chains, trusting nothing about its columns.

`RowSpec` compiles the ingest options once (`curation.options.IngestOptions`): which column fills each of
our fields (``field_map``; a column with our name needs no entry, except ``generator``), how a list-valued
column becomes text (``lists``), where the gold comes from (``answer``, else ``gold_from``) and who wrote the
chains (``generator``). `read_row` applies it to one raw row and raises `RowError` naming the field and the
column for anything it cannot use: a missing field, a dict, a list without a declared rule, a bool where
text is expected. Nothing is ever ``str()``-ed: a Python repr in the training text is worse than a rejected
row.

Decisions:
- A chat (a list of turns, whatever its keys: OpenAI's ``role`` / ``content``, ShareGPT's ``from`` / ``value``, or
  keys the recipe names) needs no rule: ``problem`` takes its user turn, ``chain`` the last assistant turn that
  answers it, and the system turns are the chain's prompt setting when the row has none (`curation.pool.chat`);
  a chat with several user turns is rejected rather than cut, unless ``chat.user_turn`` says which one.
- A pool in a known layout needs no ``field_map`` for ``problem`` and ``chain`` when it has no columns of
  those names (`LAYOUTS`: ShareGPT's ``conversations``, OpenAI's ``messages``, Alpaca's ``instruction`` +
  ``input`` / ``output``); `RowSpec.for_row` picks it from the first row.
- The problem id is the ``id`` column, else (no id, or ``field_map.id: null``: ``group_by_text``) a digest of the
  problem text. When ingest finds an id column unique per row while problem texts repeat (ShareGPT's per-chat
  ids), it reads the pool again grouping by text and keeps each row's id as its chain's id (``row_ids``;
  `curation.pool.identity`).
- ``explode`` (OpenR1's ``generations``) makes one chain per element; the per-chain fields (`PER_CHAIN`)
  with a list value are split alongside and must have as many elements.
- The gold from ``gold_from`` is the column's last ``\\boxed{}``, or the column itself when it is one short
  line (s1K's ``solution`` is often just ``128``); anything else has no gold and is rejected. When that
  column is one of the chain's own columns, or holds the chain's text, the gold is the chain's own answer
  (circular: grading it confirms nothing) and the chain says so in its provenance (``gold: circular``).
- A row with no gold is rejected, unless the recipe votes golds (``curate.stages.majority_gold.enabled``):
  its problem then has an empty gold and origin ``majority`` until `curation.stages.majority_gold` votes one.
- ``correct`` is the pool's own verdict on a chain (OpenR1's ``correctness_math_verify``); it is recorded,
  and the answer check drops a chain the pool marks incorrect, but a ``true`` never replaces our grading.
  ``finish_reason`` ``length`` marks a chain truncated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from curation.options import LIST_RULES, POOL_FIELDS, ChatOptions, IngestOptions
from curation.pool.chat import as_chat, not_a_chat
from curation.schema import MODEL, Chain
from eval.answers.extract import extract_answer, is_prose
from eval.options import OptionsError
from eval.problem import Problem
from eval.records import RowError

PER_CHAIN = ("chain", "correct", "generator", "final_answer", "prompt_setting", "finish_reason")
NUMBER_FIELDS = ("id", "answer", "difficulty")  # a number is a valid value here (AIME answers, MATH levels)
BOOL_FIELDS = ("correct",)
MAX_BARE_GOLD = 200  # characters: a longer text without \boxed{} is a solution, not an answer
CIRCULAR = "circular"
JOINED_FIELDS = ("problem", "chain")  # the fields that may name several columns, joined in order
NULLABLE_FIELDS = ("id", "generator")  # null: id -> chains grouped by problem text; generator -> the constant
# Known layouts, for a pool whose recipe maps neither problem nor chain and that has no such columns:
# name -> (problem columns, chain columns); the first column of each must be in the first row.
ALPACA_PROBLEM = ("instruction", "input")
OPTIONAL_COLUMNS = frozenset({"input"})  # a column some rows (or pools) of a layout lack: never required
LAYOUTS = {
    "sharegpt": (("conversations",), ("conversations",)),
    "openai_chat": (("messages",), ("messages",)),
    "alpaca": (ALPACA_PROBLEM, ("output",)),
}


@dataclass(frozen=True)
class RowSpec:
    """The ingest options, checked and compiled once for every row.

    Attributes:
        source: The pool's name (for provenance).
        columns: Our field -> the columns that fill it (``chain`` may have several).
        lists: Our field -> the rule for a list-valued column.
        join_with: Separator of joined texts.
        generator: Who wrote the chains when no declared column says so.
        generator_column: The declared ``field_map.generator`` column, if any.
        gold_from: The column whose last ``\\boxed{}`` is the gold for rows without an answer.
        declared: The fields ``field_map`` names (their columns must exist in the pool).
        voted_golds: A row without a gold is kept (its gold is voted later) instead of rejected.
        chat: How chat columns are read.
        group_by_text: A problem's id is its text's digest, never the ``id`` column.
        row_ids: Each chain's id is its row's ``id`` (``<id>/<element>`` when exploded): the id column is read
            as a chain id, not a problem id.
        layout: The known layout the first row was read as (`LAYOUTS`), if any.
    """

    source: str
    columns: dict[str, tuple[str, ...]]
    lists: dict[str, str] = field(default_factory=dict)
    join_with: str = "\n\n"
    generator: str = MODEL
    generator_column: str | None = None
    gold_from: str | None = None
    declared: tuple[str, ...] = ()
    voted_golds: bool = False
    chat: ChatOptions = field(default_factory=ChatOptions)
    group_by_text: bool = False
    row_ids: bool = False
    layout: str | None = None

    @classmethod
    def from_options(cls, options: IngestOptions, *, voted_golds: bool = False) -> RowSpec:
        """``voted_golds``: keep gold-less rows for `curation.stages.majority_gold`.

        Raises:
            OptionsError: an unknown field or list rule, several columns for a field other than chain.
        """
        where = "curate.stages.ingest"
        columns: dict[str, tuple[str, ...]] = {name: (name,) for name in POOL_FIELDS if name != "generator"}
        for ours, theirs in options.field_map.items():
            if ours not in POOL_FIELDS:
                raise OptionsError(f"{where}.field_map.{ours}: unknown field (known: {', '.join(POOL_FIELDS)})")
            if theirs is None and ours not in NULLABLE_FIELDS:
                raise OptionsError(
                    f"{where}.field_map.{ours}: null is for id (chains grouped by problem text) and generator (no "
                    "column: the generator constant names every chain's writer) only"
                )
            names = () if theirs is None else (theirs,) if isinstance(theirs, str) else tuple(theirs)
            if (not names and ours not in NULLABLE_FIELDS) or (len(names) > 1 and ours not in JOINED_FIELDS):
                raise OptionsError(f"{where}.field_map.{ours}: one column expected (problem and chain join several)")
            columns[ours] = names
        for ours, rule in options.lists.items():
            if ours not in POOL_FIELDS or rule not in LIST_RULES:
                raise OptionsError(f"{where}.lists.{ours}: expected a field of {POOL_FIELDS}, a rule of {LIST_RULES}")
            if rule == "explode" and ours != "chain":
                raise OptionsError(f"{where}.lists.{ours}: only chain can explode into one chain per element")
            if rule == "explode" and len(columns["chain"]) != 1:
                raise OptionsError(f"{where}.lists.chain: explode reads one column, field_map.chain names several")
        generator_column = next(iter(columns.get("generator", ())), None) if "generator" in options.field_map else None
        columns.pop("generator", None)
        if columns["problem"] == ("instruction",) and "input" not in {c for cs in columns.values() for c in cs}:
            columns["problem"] = ALPACA_PROBLEM  # Alpaca's input is part of the task (a row may have none)
        return cls(
            options.source,
            columns,
            dict(options.lists),
            options.join_with,
            options.generator or MODEL,
            generator_column,
            options.gold_from,
            tuple(options.field_map),
            voted_golds,
            options.chat,
            group_by_text=not columns["id"],
        )

    def for_row(self, raw: Mapping[str, Any]) -> RowSpec:
        """This spec, reading ``problem`` and ``chain`` as a known layout (`LAYOUTS`) when the recipe maps neither
        field and the row (the pool's first) has no column of their names but has the layout's columns."""
        undeclared = [f for f in JOINED_FIELDS if f not in self.declared and f not in raw]
        if len(undeclared) < 2:
            return self
        for name, (problem, chain) in LAYOUTS.items():
            if problem[0] in raw and chain[0] in raw:
                return replace(self, columns={**self.columns, "problem": problem, "chain": chain}, layout=name)
        return self

    def grouped_by_text(self) -> RowSpec:
        """This spec with problems grouped by text and the ``id`` column read as each chain's id."""
        return replace(self, group_by_text=True, row_ids=bool(self.columns["id"]))

    def ignores(self, raw: Mapping[str, Any]) -> bool:
        """Whether ``raw`` has a ``generator`` column that this spec does not read (undeclared)."""
        return self.generator_column is None and raw.get("generator") not in (None, "")


@dataclass(frozen=True)
class RowRecord:
    """One row read: its problem, its chains, where its gold came from, and the row's own id.

    Attributes:
        row_id: The ``id`` column's value (None: the row has none, or ``field_map.id`` is null).
        keys: Per chain, the key of "the same chain text for the same problem" (``<problem>/<generator>/<text
            digest>``: the chain's id, unless ``row_ids`` names chains by their row).
    """

    problem: Problem
    chains: list[Chain]
    gold_origin: str
    row_id: str | None = None
    keys: tuple[str, ...] = ()


def read_row(raw: Mapping[str, Any], spec: RowSpec, number: int) -> RowRecord:
    """The problem and chains of row ``number``.

    Raises:
        RowError: A field is missing, of an unexpected type, or a list without a rule; the message names the
            field and its column.
    """
    for column in spec.columns["problem"]:  # ``conversations`` as text would be both problem and chain
        if column in spec.columns["chain"] and isinstance(raw.get(column), str):
            raise RowError(
                f"field 'problem' (column {column!r}) is text; a column read as both problem and chain must be a "
                "chat (a list of turns)",
                "problem",
            )
    text = _required(_text(raw, spec, "problem"), spec, "problem")
    row_id = _scalar_text(raw, spec, "id") if spec.columns["id"] else None
    pid = row_id if row_id is not None and not spec.group_by_text else problem_id(text)
    gold, origin = _gold(raw, spec)
    extra: dict[str, Any] = {"gold_from": origin}
    difficulty = _metadata(raw, spec, "difficulty")
    if difficulty is not None:
        extra["difficulty"] = difficulty
    problem = Problem(pid, text, gold, spec.source, subject=_text(raw, spec, "subject"), extra=extra)
    chains, keys = [], []
    named = spec.row_ids and row_id is not None
    for index, fields in enumerate(_chain_fields(raw, spec)):
        chain_id = (row_id if spec.lists.get("chain") != "explode" else f"{row_id}/{index}") if named else None
        circular = _circular(raw, spec, origin, fields["chain"])
        chain, key = _chain(pid, fields, spec, number, index, circular=circular, chain_id=chain_id)
        chains.append(chain)
        keys.append(key)
    return RowRecord(problem, chains, origin, row_id, tuple(keys))


def problem_id(text: str) -> str:
    """The id of a problem whose row has none: ``p_`` and 12 hex digits of the text's SHA-1 (rows of the same
    text are one problem)."""
    return "p_" + hashlib.sha1(text.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------------ values


def _column_label(spec: RowSpec, ours: str) -> str:
    names = spec.columns.get(ours, (ours,))
    return " + ".join(repr(n) for n in names)


def _type_error(ours: str, column: str, value: Any, expected: str) -> RowError:
    shown = f"a list of {len(value)}" if isinstance(value, list) else f"a {type(value).__name__}"
    return RowError(f"field {ours!r} (column {column!r}) is {shown}; expected {expected}", ours)


def _required(value: str | None, spec: RowSpec, ours: str) -> str:
    if value is None or not value.strip():
        raise RowError(f"missing required field {ours!r} (column {_column_label(spec, ours)})", ours)
    return value


def _from_list(value: list[Any], ours: str, column: str, spec: RowSpec) -> Any:
    chat = as_chat(value, spec.chat, ours, column) if ours in JOINED_FIELDS else None
    if chat is not None:
        return chat.problem(spec.chat, ours, column) if ours == "problem" else chat.chain(spec.chat, ours, column)
    rule = spec.lists.get(ours)
    if rule is None and ours in JOINED_FIELDS:
        error = not_a_chat(value, ours, column)
        if error is not None:
            raise error
    if rule is None or rule == "explode":
        rules = "join | explode | first | last" if ours == "chain" else "join | first | last"
        raise RowError(
            f"field {ours!r} (column {column!r}) is a list of {len(value)}; declare how to read it: "
            f"curate.stages.ingest.lists.{ours}: {rules}",
            ours,
        )
    if not value:
        return None
    if rule == "join":
        return spec.join_with.join(_plain(item, ours, column) or "" for item in value)
    return _plain(value[0] if rule == "first" else value[-1], ours, column)


def _plain(value: Any, ours: str, column: str) -> Any:
    """A scalar of the type ``ours`` takes (text; numbers where allowed; bools for ``correct``), else RowError."""
    if value is None:
        return None
    if ours in BOOL_FIELDS:
        if isinstance(value, bool):
            return value
        raise _type_error(ours, column, value, "true or false")
    if isinstance(value, str):
        return value
    if ours in NUMBER_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise _type_error(ours, column, value, "text" + (" or a number" if ours in NUMBER_FIELDS else ""))


def _value(raw: Mapping[str, Any], column: str, ours: str, spec: RowSpec) -> Any:
    value = raw.get(column)
    if value is None or type(value) is str:  # the common cases first: ingest reads every field of every row
        return value
    if isinstance(value, tuple):  # some readers give tuples for list columns
        value = list(value)
    if isinstance(value, list):
        return _from_list(value, ours, column, spec)
    return _plain(value, ours, column)


def _text(raw: Mapping[str, Any], spec: RowSpec, ours: str) -> str | None:
    """Our text field from its column(s): several columns (``chain``) are joined, empty parts skipped."""
    columns = spec.columns.get(ours, (ours,))
    if len(columns) == 1:
        value = _value(raw, columns[0], ours, spec)
        text = None if value is None else _as_text(value)
        return text if text is not None and text.strip() else None
    parts = [_value(raw, column, ours, spec) for column in columns]
    texts = [_as_text(p) for p in parts if p is not None and _as_text(p).strip()]
    return spec.join_with.join(texts) if texts else None


def _as_text(value: Any) -> str:
    """A text or number as text; an integral float (AMC's ``27.0``) as an integer."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _scalar_text(raw: Mapping[str, Any], spec: RowSpec, ours: str) -> str | None:
    value = _text(raw, spec, ours)
    return value.strip() if value is not None and value.strip() else None


def _metadata(raw: Mapping[str, Any], spec: RowSpec, ours: str) -> Any:
    (column,) = spec.columns.get(ours, (ours,))
    value = _value(raw, column, ours, spec)
    return None if value is None or (isinstance(value, str) and not value.strip()) else value


# -------------------------------------------------------------------------------------------------- gold


def gold_from_text(text: str) -> str | None:
    """The gold in a reference text: its last ``\\boxed{}``, or the text itself when it is one short line."""
    if "\\boxed" in text or "\\fbox" in text:
        return extract_answer(text, fallback=False)
    line = text.strip()
    if line and "\n" not in line and len(line) <= MAX_BARE_GOLD and not is_prose(line):
        return _unwrap_math(extract_answer(line, fallback=False))
    return None


def _unwrap_math(answer: str | None) -> str | None:
    """``$x$`` -> ``x`` (a bare gold written as inline math); anything else unchanged."""
    if answer and len(answer) > 2 and answer.count("$") == 2 and answer[0] == answer[-1] == "$":
        return answer[1:-1].strip() or None
    return answer


VOTE_HINT = "; to vote golds from the chains instead, set curate.stages.majority_gold.enabled: true"
VOTED = "majority"  # the gold origin of a row whose gold is voted later (`curation.stages.majority_gold`)


def _gold(raw: Mapping[str, Any], spec: RowSpec) -> tuple[str, str]:
    """The row's gold and where it came from; ``("", VOTED)`` for a gold-less row when golds are voted."""
    answer = _scalar_text(raw, spec, "answer")
    if answer is not None:
        return answer, "answer"
    try:
        return _gold_from(raw, spec)
    except RowError as err:
        if spec.voted_golds:
            return "", VOTED
        raise RowError(f"{err}{VOTE_HINT}", "answer") from err


def _gold_from(raw: Mapping[str, Any], spec: RowSpec) -> tuple[str, str]:
    if spec.gold_from is None:
        raise RowError(
            f"no gold answer: column {_column_label(spec, 'answer')} is empty and curate.stages.ingest.gold_from "
            "is not set",
            "answer",
        )
    value = raw.get(spec.gold_from)
    chat = as_chat(value, spec.chat, "answer", spec.gold_from) if isinstance(value, (list, tuple)) else None
    if chat is not None:  # a chat's answer: the turn that is its chain
        value = chat.chain(spec.chat, "answer", spec.gold_from)
    if not isinstance(value, str) or not value.strip():
        shown = "empty" if value in (None, "") else f"a {type(value).__name__}, not text"
        raise RowError(f"no gold answer: column 'answer' is empty and gold_from column {spec.gold_from!r} is {shown}")
    gold = gold_from_text(value)
    if gold is None:
        raise RowError(f"no gold answer: gold_from column {spec.gold_from!r} has no \\boxed{{}} answer", "answer")
    return gold, spec.gold_from


def _circular(raw: Mapping[str, Any], spec: RowSpec, origin: str, chain_text: str | None) -> bool:
    """Whether the gold was read from the chain itself (its column, or a column holding the same text)."""
    if origin in ("answer", VOTED):
        return False
    if origin in spec.columns["chain"]:
        return True
    value = raw.get(origin)
    return isinstance(value, str) and chain_text is not None and value.strip() == chain_text.strip()


# ------------------------------------------------------------------------------------------------ chains


def _chain_fields(raw: Mapping[str, Any], spec: RowSpec) -> list[dict[str, Any]]:
    """One dict of per-chain values per chain of the row (several when ``chain`` explodes)."""
    if spec.lists.get("chain") != "explode":
        fields = {name: _per_chain_value(raw, spec, name) for name in PER_CHAIN}
        if fields["prompt_setting"] in (None, ""):
            fields["prompt_setting"] = _chat_system(raw, spec)
        return [fields]
    (column,) = spec.columns["chain"]
    elements = raw.get(column)
    if isinstance(elements, tuple):
        elements = list(elements)
    if not isinstance(elements, list) or not elements:
        if elements is None or elements == []:
            raise RowError(f"missing required field 'chain' (column {column!r} has no element)", "chain")
        raise _type_error("chain", column, elements, "a list of texts (lists.chain: explode)")
    rows = [{"chain": _plain(item, "chain", f"{column}[{i}]")} for i, item in enumerate(elements)]
    for name in PER_CHAIN[1:]:
        _split_alongside(raw, spec, name, rows)
    return rows


def _chat_system(raw: Mapping[str, Any], spec: RowSpec) -> str | None:
    """The system turns of the chain's chat column, joined (None: the chain is not read from a chat)."""
    if len(spec.columns["chain"]) != 1:
        return None
    (column,) = spec.columns["chain"]
    value = raw.get(column)
    chat = as_chat(value, spec.chat, "prompt_setting", column) if isinstance(value, (list, tuple)) else None
    return chat.system(spec.join_with) if chat is not None else None


def _split_alongside(raw: Mapping[str, Any], spec: RowSpec, name: str, rows: list[dict[str, Any]]) -> None:
    column = _per_chain_column(spec, name)
    value = raw.get(column) if column else None
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        if len(value) != len(rows):
            raise RowError(
                f"field {name!r} (column {column!r}) has {len(value)} elements for {len(rows)} chains", name
            )
        for row, item in zip(rows, value, strict=True):
            row[name] = _plain(item, name, str(column))
        return
    scalar = _plain(value, name, str(column)) if column else None
    for row in rows:
        row[name] = scalar


def _per_chain_column(spec: RowSpec, name: str) -> str | None:
    if name == "generator":
        return spec.generator_column
    return spec.columns[name][0]


def _per_chain_value(raw: Mapping[str, Any], spec: RowSpec, name: str) -> Any:
    if name == "chain":
        return _text(raw, spec, "chain")
    column = _per_chain_column(spec, name)
    return _value(raw, column, name, spec) if column else None


def _chain(
    pid: str, fields: dict[str, Any], spec: RowSpec, number: int, index: int, *, circular: bool, chain_id: str | None
) -> tuple[Chain, str]:
    """The chain and its content key (``<problem>/<generator>/<text digest>``: its id unless ``chain_id`` names it)."""
    text = _required(fields["chain"], spec, "chain")
    named = fields["generator"]
    generator = named.strip() if isinstance(named, str) and named.strip() else spec.generator
    provenance: dict[str, Any] = {"source": spec.source, "row": number}
    if spec.lists.get("chain") == "explode":
        provenance["element"] = index
    if fields["correct"] is not None:
        provenance["pool_correct"] = fields["correct"]
    if circular:
        provenance["gold"] = CIRCULAR
    key = f"{pid}/{generator}/{hashlib.sha1(text.encode()).hexdigest()[:10]}"
    final, setting = fields["final_answer"], fields["prompt_setting"]
    chain = Chain(
        id=chain_id or key,
        problem_id=pid,
        text=text,
        final_answer=str(final) if final not in (None, "") else None,
        generator=generator,
        prompt_setting=setting if setting not in (None, "") else None,
        truncated=fields["finish_reason"] == "length",
        provenance=provenance,
    )
    return chain, key


def columns_in(spec: RowSpec, present: Collection[str] | None = None) -> dict[str, Sequence[str]]:
    """Our field -> its columns as the manifest records them (``generator`` only when declared); with ``present``
    (the columns some row of the file has), only those: a default name the file lacks was not read."""
    shown: dict[str, Sequence[str]] = {}
    for ours, names in spec.columns.items():
        read = [n for n in names if present is None or n in present]
        if read:
            shown[ours] = read
    if spec.generator_column:
        shown["generator"] = [spec.generator_column]
    return shown
