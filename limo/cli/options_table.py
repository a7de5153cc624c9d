"""docs/options.md: every option a recipe can set, with its default, generated from the options dataclasses.

`python -m limo.cli.options_table` prints the page; ``--write`` writes ``docs/options.md``; ``--check`` exits non-zero
when the file differs from what the code says (``tests/test_options_table.py`` checks the same). The dataclasses
are the only declaration of a setting (`eval.options.to_options`), so the page is generated from them, never
written by hand: a default changed in code and not in the table fails the test.

Sections follow a recipe's shape: ``curate.stages`` (`curation.options.StageOptions`), each registered method's own
``curate.<method>``, ``executor``, ``train``, ``evaluate``, ``discover`` and ``ablate`` (with ``ablate.arms[]`` and
``ablate.benchmarks[]``: the keys of each item of those lists). A nested options value is walked from its default
*instance* (a field's default may differ from its class's: the semantic judge's ``max_new_tokens``),
and an optional nested section (``difficulty.weak_rollouts``: null by default) lists what setting it gives. Each
row's description is the first sentence of the ``Attributes:`` entry of the owning class's docstring, when it has
one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from limo.cli.overrides import option_roots
from limo.setup.ablate import ArmOptions, BenchmarkOptions

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "options.md"
HEADER = """# Options and their defaults

Generated from the options dataclasses by `python -m limo.cli.options_table --write` (do not edit by hand;
`tests/test_options_table.py` fails when this page and the code disagree). A recipe sets any of these keys; an
unknown key or a value of the wrong type fails at start-up, naming the key (`eval.options.to_options`). A row
under an optional section (default `null`) is what that section gets when a recipe gives it.
"""
ENTRY = re.compile(r"^\s+(\w+): (.*)$")


def sections() -> list[tuple[str, type]]:
    """``(key prefix, options type)`` in a recipe's order: the schema's sections (`option_roots`), then the types of
    the ablation's list items."""
    return [
        *option_roots().items(),
        ("ablate.arms[]", ArmOptions),  # each item of the list
        ("ablate.benchmarks[]", BenchmarkOptions),
    ]


UNBUILT = object()  # a default whose factory refuses to build without the recipe's values (LEMMA's phrases)
REQUIRED = object()


def rows(prefix: str, cls: type, options: Any = UNBUILT) -> Iterator[tuple[str, str, str, str]]:
    """``(key, type, default, description)`` for every leaf option of ``cls`` (its default instance ``options``
    when it can be built: a field's default there may differ from its class's)."""
    hints = typing.get_type_hints(cls)
    notes = descriptions(cls)
    for spec in dataclasses.fields(cls):
        key, hint = f"{prefix}.{spec.name}", hints[spec.name]
        value = getattr(options, spec.name) if options is not UNBUILT else field_default(spec)
        nested = _options_type(hint)
        if nested is not None and value is not None and value is not REQUIRED:
            yield from rows(key, nested if value is UNBUILT else type(value), value)
            continue
        default = "(required)" if value is REQUIRED else "(the recipe's)" if value is UNBUILT else shown(value)
        yield key, type_name(hint), default, notes.get(spec.name, "")
        if value is None and nested is not None:
            yield from rows(key, nested, _built(nested))


def field_default(spec: dataclasses.Field) -> Any:
    """A field's default, `UNBUILT` when its factory needs the recipe's values, `REQUIRED` when it has none."""
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is dataclasses.MISSING:
        return REQUIRED
    try:
        return spec.default_factory()
    except (ValueError, TypeError):
        return UNBUILT


def _built(cls: type) -> Any:
    try:
        return cls()
    except (ValueError, TypeError):
        return UNBUILT


def _options_type(hint: Any) -> type | None:
    """The dataclass in an optional hint (``RolloutOptions | None``), if any."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)  # not a list's items: those are rows apart
    args = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
    found = [a for a in args if dataclasses.is_dataclass(a) and isinstance(a, type)]
    return found[0] if found else None


def descriptions(cls: type) -> dict[str, str]:
    """Field -> the first sentence of its ``Attributes:`` entry, from ``cls`` and its bases."""
    found: dict[str, str] = {}
    for owner in reversed(cls.__mro__):
        found.update(_attributes(owner.__doc__ or ""))
    return found


def _attributes(doc: str) -> dict[str, str]:
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Attributes:"), None)
    if start is None:
        return {}
    entries: dict[str, list[str]] = {}
    indent = None
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        width = len(line) - len(line.lstrip())
        match = ENTRY.match(line)
        if match and (indent is None or width == indent):
            indent = width
            entries[match.group(1)] = [match.group(2)]
        elif entries and indent is not None and width > indent:
            entries[list(entries)[-1]].append(line.strip())
    return {name: first_sentence(" ".join(parts)) for name, parts in entries.items()}


def first_sentence(text: str) -> str:
    found = re.search(r"\.\s+(?=[A-Z`])", text)  # "i.e. fewer" goes on; ". A new sentence" stops
    return text[: found.start() + 1] if found else text


def type_name(hint: Any) -> str:
    text = str(hint).replace("typing.", "").replace("NoneType", "None")
    text = re.sub(r"<class '([\w.]+)'>", lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return re.sub(r"\b[\w.]+\.(\w+)", r"\1", text)


def shown(value: Any) -> str:
    """A default as a recipe writes it (JSON: null, true, lists)."""
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def cell(text: str) -> str:
    """Text for a table cell: a pipe would end the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")


def render() -> str:
    """The whole page."""
    parts = [HEADER]
    for prefix, cls in sections():
        parts.append(f"## `{prefix}`\n\n| key | type | default | what it is |\n|---|---|---|---|")
        for key, kind, default, note in rows(prefix, cls, _built(cls)):
            parts.append(f"| `{key}` | `{cell(kind)}` | `{cell(default)}` | {cell(note)} |")
        parts.append("")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {PAGE.relative_to(REPO)}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is stale")
    args = parser.parse_args(argv)
    page = render()
    if args.write:
        PAGE.write_text(page, encoding="utf-8")
    elif args.check:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != page:
            print(f"{PAGE}: stale; run python -m limo.cli.options_table --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
