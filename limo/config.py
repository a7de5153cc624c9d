"""Recipes glue: composing recipes outside Hydra's decorator, and a recipe's sections as typed options.

Entry points use ``@hydra.main`` on the same config root; `compose` gives the identical composition as a
function so that every shipped recipe can be composed in a test.

`to_options(cls, node, where)` is the one path from a recipe section to the library's frozen options
(`eval.options.to_options` on the resolved section: unknown keys and wrong types fail at start-up, naming
the key). `section` refuses a run whose recipe lacks the section an entry point needs, naming the recipes
that have one. File paths in options (fields marked ``path``) are resolved here, the only place that knows
where the repository is, and `check_files` says which key names a missing one and where it was looked for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from eval.benchmarks import BenchmarkSpec
from eval.options import OptionsError
from eval.options import to_options as options_from_mapping
from eval.records import DataError
from limo.search_path import find_config, group_options, search_dirs, searchpath_overrides, shipped_config_dir

# The shipped recipes: the source tree's recipes/ or the copy installed with the package (limo.search_path).
CONFIG_DIR = shipped_config_dir()
T = TypeVar("T")
# What a path option's value ends with when it names a file (a hub id or ``champ`` does not).
FILE_SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet", ".gz", ".yaml", ".yml", ".txt")


def recipe_names(dirs: Sequence[Path] | None = None) -> list[str]:
    """Every recipe under ``recipes/recipe/`` (shipped), or in any of ``dirs``."""
    return group_options("recipe", dirs or [CONFIG_DIR])


def recipe_file(name: str, dirs: Sequence[Path] | None = None) -> Path:
    """The recipe's file: the first ``<dir>/recipe/<name>.yaml`` (shipped first), else where a shipped one would be."""
    return find_config("recipe", name, dirs or [CONFIG_DIR]) or CONFIG_DIR / "recipe" / f"{name}.yaml"


def compose(recipe: str, overrides: Sequence[str] = (), config_dirs: Sequence[Path] = ()) -> DictConfig:
    """Compose ``recipe`` with ``overrides`` exactly as ``python -m limo.<entry> recipe=...`` would.

    The overrides go through the same check as an entry point's command line (`limo.overrides.hydra_argv`).
    ``config_dirs`` are the user's config folders (``--config-dir``): recipes there compose like shipped ones.
    """
    from limo.overrides import hydra_argv  # limo.overrides reads the options types, whose modules import this one

    lines = hydra_argv([f"recipe={recipe}", *overrides, *searchpath_overrides(config_dirs)])
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = hydra_compose("config", overrides=lines, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # `${hydra:...}` interpolations resolve as under @hydra.main
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.resolve(cfg)
    return cfg


def section(cfg: DictConfig, name: str) -> dict[str, Any]:
    """The recipe's ``name:`` section, resolved to plain values.

    Raises:
        OptionsError: The recipe has no such section; the message names the recipes that have one.
    """
    node = cfg.get(name)
    if node is None:
        dirs = search_dirs()
        having = [r for r in recipe_names(dirs) if recipe_has(r, name, dirs)]
        raise OptionsError(
            f"recipe {cfg.get('name')!r} has no `{name}:` section (recipes with one: {', '.join(having)}), "
            f"{recipe_file(str(cfg.get('name')), dirs)}"
        )
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node  # type: ignore[return-value]


def recipe_has(recipe: str, key: str, dirs: Sequence[Path] | None = None) -> bool:
    """Whether a recipe (shipped, or in ``dirs``) sets ``key`` itself or through a recipe in its defaults list."""
    text = yaml.safe_load(recipe_file(recipe, dirs).read_text()) or {}
    inherited = [d for d in text.get("defaults", []) if isinstance(d, str) and recipe_file(d, dirs).exists()]
    return key in text or any(recipe_has(d, key, dirs) for d in inherited)


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


def to_options(cls: type[T], node: Any, where: str) -> T:
    """The frozen options ``cls`` from a recipe node (or plain mapping) at key path ``where``, paths resolved.

    Raises:
        OptionsError: Unknown key or wrong type, naming the key path.
    """
    data = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    return resolve_paths(options_from_mapping(cls, data, where=where))  # type: ignore[arg-type]


def resolve_path(path: str | None) -> str | None:
    """A relative path is taken from the working directory, else from the folder holding the shipped ``recipes/``
    (the repository root, or the installed ``limo`` package), so ``recipes/data/...`` resolves either way."""
    if path is None or Path(path).is_absolute() or Path(path).exists():
        return path
    candidate = CONFIG_DIR.parent / path
    return str(candidate) if candidate.exists() else path


def resolve_paths(options: T) -> T:
    """``options`` with every field marked ``path`` (and every nested option's) resolved by `resolve_path`."""
    if not dataclasses.is_dataclass(options) or isinstance(options, type):
        return options
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if f.metadata.get("path") and isinstance(value, str):
            changes[f.name] = resolve_path(value)
        elif dataclasses.is_dataclass(value):
            changes[f.name] = resolve_paths(value)
    return dataclasses.replace(options, **changes)  # type: ignore[type-var]


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


def build_benchmark_specs(cfg: DictConfig) -> dict[str, BenchmarkSpec]:
    """Every benchmark spec the config composes (``cfg.benchmark_specs``), typed."""
    specs = OmegaConf.to_container(cfg.get("benchmark_specs") or {}, resolve=True)
    return {
        name: BenchmarkSpec.from_dict({"name": name, **spec, "source": resolve_path(spec.get("source"))})
        for name, spec in specs.items()
    }  # type: ignore[union-attr, dict-item]
