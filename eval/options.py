"""Frozen option values from plain mappings: the one way a recipe section becomes typed options.

`to_options(cls, data, where=...)` builds the frozen dataclass ``cls`` from a plain mapping (a recipe
section after Hydra has resolved it), recursing into nested option types. The dataclass is the only
declaration of a setting: there is no mutable mirror to keep in step. Three rules make it strict:

- a key the dataclass does not declare raises, naming the full key path, the closest and the known keys;
- a value of the wrong type raises, naming the key path (``curate.stages.select.n: expected int, got
  'ten'``); an int is accepted where a float is declared, a bool never where an int is;
- a nested mapping is merged onto the field's default value, so a method can give a nested field its own
  defaults (a default instance) and a recipe that sets one key keeps the others.

Every error is an `OptionsError` (a `ValueError`), which entry points report in one line.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar

T = TypeVar("T")


class OptionsError(ValueError):
    """A recipe value that does not fit its options type; the message names the key path (``key``, when known)."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def did_you_mean(name: str, known: Iterable[str], prefix: str = "", cutoff: float = 0.6) -> str:
    """``"did you mean <prefix><closest>? "`` for the names in ``known`` closest to ``name`` (difflib), or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=cutoff)
    return f"did you mean {' or '.join(prefix + c for c in close)}? " if close else ""


def to_options(cls: type[T], data: Mapping[str, Any] | None, *, where: str = "", base: T | None = None) -> T:
    """The frozen dataclass ``cls`` from ``data``, merged onto ``base`` (default: ``cls()``).

    Args:
        cls: A dataclass type.
        data: Plain values (mappings, lists, scalars); None gives ``base`` or the defaults.
        where: The key path of ``data`` in the recipe, for error messages (``curate.stages``).
        base: Values for keys ``data`` leaves out.

    Raises:
        OptionsError: Unknown key or wrong type; the message names the key path.
    """
    if data is None:
        return base if base is not None else cls()
    if not isinstance(data, Mapping):
        raise OptionsError(f"{where or cls.__name__}: expected a mapping, got {_shown(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key, hint = _key(where, unknown[0]), did_you_mean(unknown[0], fields, f"{where}." if where else "")
        raise OptionsError(f"{key}: unknown key ({hint}known: {', '.join(sorted(fields))})", key=key)
    hints = typing.get_type_hints(cls)
    values = {
        name: _convert(hints[name], value, _key(where, name), _current(fields[name], base))
        for name, value in data.items()
    }
    try:
        return dataclasses.replace(base, **values) if base is not None else cls(**values)  # type: ignore[type-var]
    except TypeError as err:  # a required field left out: the message names it
        raise OptionsError(f"{where or cls.__name__}: {err}") from err


def _current(spec: dataclasses.Field, base: Any) -> Any:
    """The value a nested mapping is merged onto: the base's, else the field's default."""
    if base is not None:
        return getattr(base, spec.name)
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _convert(hint: Any, value: Any, where: str, current: Any) -> Any:
    """``value`` checked against ``hint`` (and converted: lists to tuples, mappings to dataclasses)."""
    if hint is Any:
        return value
    if value is None:
        if _optional(hint):
            return None
        raise OptionsError(f"{where}: may not be null")
    inner = _strip_optional(hint)
    origin = typing.get_origin(inner)
    if dataclasses.is_dataclass(inner) and isinstance(inner, type):
        base = current if isinstance(current, inner) else None
        return to_options(inner, value, where=where, base=base)
    if origin in (typing.Union, types.UnionType):
        return _first_fit(typing.get_args(inner), value, where)
    if origin is Literal:
        if value not in typing.get_args(inner):
            raise OptionsError(f"{where}: expected one of {list(typing.get_args(inner))}, got {value!r}")
        return value
    if origin in (tuple, list):
        return _sequence(inner, value, where)
    if origin is dict or inner is dict:
        return _mapping(inner, value, where)
    return _scalar(inner, value, where)


def _optional(hint: Any) -> bool:
    return hint is type(None) or (
        typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)
    )


def _strip_optional(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


def _first_fit(hints: tuple[Any, ...], value: Any, where: str) -> Any:
    for hint in hints:
        try:
            return _convert(hint, value, where, None)
        except OptionsError:
            continue
    names = " or ".join(getattr(h, "__name__", str(h)) for h in hints)
    raise OptionsError(f"{where}: expected {names}, got {_shown(value)}")


def _sequence(hint: Any, value: Any, where: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise OptionsError(f"{where}: expected a list, got {_shown(value)}")
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(value):
            raise OptionsError(f"{where}: expected {len(args)} values, got {len(value)}")
        items = [_convert(a, v, f"{where}[{i}]", None) for i, (a, v) in enumerate(zip(args, value, strict=True))]
    else:
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]", None) for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


def _mapping(hint: Any, value: Any, where: str) -> dict[Any, Any]:
    if not isinstance(value, Mapping):
        raise OptionsError(f"{where}: expected a mapping, got {_shown(value)}")
    args = typing.get_args(hint)
    item = args[1] if len(args) == 2 else Any
    return {k: _convert(item, v, f"{where}.{k}", None) for k, v in value.items()}


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise OptionsError(f"{where}: expected int, got {_shown(value)}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise OptionsError(f"{where}: expected {hint.__name__}, got {_shown(value)}")
    return value
