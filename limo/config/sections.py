"""A recipe's sections as typed options, and where the recipes are.

`to_options(cls, node, where)` is the one path from a recipe section to the library's frozen options
(`eval.options.to_options` on the resolved section: unknown keys and wrong types fail at start-up, naming
the key). `section` refuses a run whose recipe lacks the section an entry point needs, naming the recipes
that have one. File paths in options (fields marked ``path``) are resolved here, the only place that knows
where the repository is. Composing a recipe, and checking the files its options name, is `limo.config.files`'s:
the options modules import this one, and the command-line check (`limo.cli.overrides`) reads them, below it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf

from eval.benchmarks.loader import BenchmarkSpec
from eval.options import OptionsError
from eval.options import to_options as options_from_mapping
from limo.config.search_path import find_config, group_options, search_dirs, shipped_config_dir

# The shipped recipes: the source tree's recipes/ or the copy installed with the package (limo.config.search_path).
CONFIG_DIR = shipped_config_dir()
T = TypeVar("T")


def recipe_names(dirs: Sequence[Path] | None = None) -> list[str]:
    """Every recipe under ``recipes/recipe/`` (shipped), or in any of ``dirs``."""
    return group_options("recipe", dirs or [CONFIG_DIR])


def recipe_file(name: str, dirs: Sequence[Path] | None = None) -> Path:
    """The recipe's file: the first ``<dir>/recipe/<name>.yaml`` (shipped first), else where a shipped one would be."""
    return find_config("recipe", name, dirs or [CONFIG_DIR]) or CONFIG_DIR / "recipe" / f"{name}.yaml"


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


def build_benchmark_specs(cfg: DictConfig) -> dict[str, BenchmarkSpec]:
    """Every benchmark spec the config composes (``cfg.benchmark_specs``), typed."""
    specs = OmegaConf.to_container(cfg.get("benchmark_specs") or {}, resolve=True)
    return {
        name: BenchmarkSpec.from_dict({"name": name, **spec, "source": resolve_path(spec.get("source"))})
        for name, spec in specs.items()
    }  # type: ignore[union-attr, dict-item]
