"""Which recipe file or command line sets a key, and the check that every file a recipe's options name exists.

`check_files` says which key names a missing file and where it was looked for, and `key_source` which recipe file
sets a key (an options error ends with it: `limo.cli.entry`). A recipe's sections become typed options in
`limo.config.sections`; composing a recipe as an entry point does is `limo.cli.compose`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig

from eval.records import DataError
from limo.config.search_path import search_dirs
from limo.config.sections import CONFIG_DIR, recipe_file

# What a path option's value ends with when it names a file (a hub id or ``champ`` does not).
FILE_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet", ".gz", ".yaml", ".yml", ".txt")


def key_source(key: str) -> Path | None:
    """The recipe file that sets ``key`` (a dotted path): the run's recipe, else a recipe in its defaults list.

    None outside a Hydra run, or when no recipe file sets it (a command-line override).
    """
    if not HydraConfig.initialized() or set_on_command_line(key):
        return None
    recipe = HydraConfig.get().runtime.choices.get("recipe")
    return _file_setting(str(recipe), key.split("."), search_dirs(), set()) if recipe else None


def set_on_command_line(key: str) -> bool:
    """Whether an override of the running job sets ``key`` or a mapping holding it."""
    overrides = [o.lstrip("+~").split("=", 1)[0] for o in HydraConfig.get().overrides.task]
    return any(f"{key}.".startswith(f"{o}.") for o in overrides)


def _file_setting(recipe: str, parts: list[str], dirs: Sequence[Path], seen: set[str]) -> Path | None:
    path = recipe_file(recipe, dirs)
    if recipe in seen or not path.is_file():
        return None
    seen.add(recipe)
    text = yaml.safe_load(path.read_text()) or {}
    node: Any = text
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and parts[-1] in node:
        return path
    inherited = [d for d in text.get("defaults", []) if isinstance(d, str)]
    return next((found for d in inherited if (found := _file_setting(d, parts, dirs, seen))), None)


def check_files(options: Any, where: str) -> None:
    """Every field marked ``path`` in ``options`` (nested ones too) that names a file must name one that exists.

    Only a value that looks like a file (`FILE_SUFFIXES`) is checked: a hub id or ``champ`` is not a path.

    Raises:
        DataError: The key, the file, and the folders a relative path was looked up in (`resolve_path`); the
            recipe file that sets it when one does.
    """
    found = missing_file(options, where)
    if found is None:
        return
    key, value = found
    folders = ", then in ".join(str(d) for d in dict.fromkeys([Path.cwd(), CONFIG_DIR.parent]))
    looked = "" if Path(value).is_absolute() else f" (looked up in the working directory, {folders})"
    where = key_source(key) or ("the command line" if HydraConfig.initialized() and set_on_command_line(key) else key)
    raise DataError(f"{key}: no such file {value}{looked}, {where}")


def missing_file(options: Any, where: str) -> tuple[str, str] | None:
    """The first ``(key path, value)`` of a field marked ``path`` that names a file that is not there, if any."""
    for f in dataclasses.fields(options):
        value, key = getattr(options, f.name), f"{where}.{f.name}"
        if dataclasses.is_dataclass(value) and (found := missing_file(value, key)):
            return found
        names_file = isinstance(value, str) and value.lower().endswith(FILE_SUFFIXES)
        if f.metadata.get("path") and names_file and not Path(value).expanduser().exists():
            return key, value
    return None
