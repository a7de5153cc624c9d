"""Command-line overrides checked before Hydra composes: a mistake is one line, not Hydra's listing.

Hydra answers an unknown recipe with a 29-line listing and an unknown key with advice (``+key``) that is
wrong for our structured sections: a key the options type does not declare fails at start-up anyway, and
one it declares should simply work. `checked_argv` composes the command line once more, before Hydra does:
an option the recipe leaves at its default, or a new key of a free mapping (``field_map``), is forced
(``++``) so that it works as written; an unknown recipe, group option or key becomes one `OptionsError`
naming the override, the closest names (`eval.options.did_you_mean`, which a key in a recipe file gets too)
and the syntax. Anything else it cannot explain is left to Hydra's own report.

`limo.config.prepared_argv` makes a whole-map override of `REPLACED_MAPS` (``field_map={problem: q, subject: topic}``)
compose even when it adds keys the recipe's map lacks (Hydra merges into a struct node and refuses new
keys); `limo.curate_setup.replace_overridden_maps` then makes it replace the recipe's map.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError

from curation.executors import ExecutorOptions
from curation.methods import METHODS
from curation.options import StageOptions
from eval.options import OptionsError, did_you_mean
from limo.config import CONFIG_DIR
from limo.discovery.options import DiscoverOptions
from limo.eval_setup import RUNTIME_KEYS, EvaluateOptions
from limo.search_path import config_groups, group_options, misplaced_hint, search_dirs, searchpath_overrides
from limo.training.options import TrainOptions


def checked_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` checked and ready for Hydra; an unknown recipe, group option or key fails in one line.

    A key the recipe does not set but an options type declares (``curate.stages.ingest.problem_limit=3``),
    or a new key of a free mapping (``curate.stages.ingest.field_map.subject=topic``), is forced (``++``)
    instead of failing with Hydra's advice to add ``+``: the options type still checks it at start-up.

    Raises:
        OptionsError: The override, the closest known names and the syntax that works.
    """
    argv = list(argv)
    overrides = parsed(argv)
    if overrides is None:
        return argv  # Hydra reports its own syntax errors
    dirs = search_dirs(argv)
    for override in overrides:
        check_group_choice(override, dirs)
    plain = [o for o in overrides if not o.is_sweep_override() and not o.key_or_group.startswith("hydra")]
    lines = [o.input_line for o in plain if o.input_line]
    for _ in range(len(lines)):
        failed = composition_failure([*lines, *searchpath_overrides(dirs[1:])])
        if failed is None:
            break
        override = next((o for o in plain if f"{o.key_or_group}.".startswith(f"{failed}.")), None)
        if override is None or not override.input_line or not declared_option(failed):
            raise OptionsError(unknown_key_message(failed, plain, dirs))
        forced = "++" + override.input_line.lstrip("+")
        lines[lines.index(override.input_line)] = forced
        argv[argv.index(override.input_line)] = forced
    return argv


def declared_option(full_key: str) -> bool:
    """Whether an options type declares ``full_key``, or it is a new key of a free mapping (``field_map``)."""
    parent, _, leaf = full_key.rpartition(".")
    declared = option_fields(parent)
    return declared is dict or (isinstance(declared, list) and leaf in declared)


def parsed(argv: Sequence[str]) -> list[Override] | None:
    lines = [a for a in argv if "=" in a and not a.startswith("-") or a.startswith(("~", "+"))]
    try:
        return OverridesParser.create().parse_overrides(lines)
    except HydraException:
        return None


def check_group_choice(override: Override, dirs: Sequence[Path]) -> None:
    """``recipe=limoo``, ``executor=rayy``: the closest names instead of Hydra's listing, and where we looked."""
    group = override.key_or_group
    if group not in config_groups(dirs) or override.is_delete() or override.value_type is None:
        return
    values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.value()]
    known = group_options(group, dirs)
    for value in values:
        if value is None or str(value) in known or str(value) == "null":
            continue
        hint = did_you_mean(str(value), known, cutoff=0.5)
        searched = ", ".join(f"{d / group}/" for d in dirs)
        raise OptionsError(
            f"{group}={value}: no such {group} ({hint}known: {', '.join(known)}), searched {searched}"
            f"{misplaced_hint(group, str(value), dirs)}; add a folder of your own with --config-dir DIR "
            f"(DIR/{group}/{value}.yaml)"
        )


def composition_failure(lines: list[str]) -> str | None:
    """The key path (``curate.stages.foo``) that made composing ``lines`` fail, or None when it composes."""
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            hydra_compose("config", overrides=lines)
    except HydraException as err:
        cause = err.__cause__
        if isinstance(cause, (ConfigKeyError, AttributeError)) and getattr(cause, "full_key", None):
            return str(cause.full_key)  # type: ignore[attr-defined]
    return None


def unknown_key_message(full_key: str, overrides: list[Override], dirs: Sequence[Path]) -> str:
    """One line for a key neither the recipe nor an options type has: the closest keys and the syntax."""
    parent, _, leaf = full_key.rpartition(".")
    declared = option_fields(parent)
    runtime = RUNTIME_KEYS if not parent else ()  # limo.evaluate's run-time arguments (benchmarks=, limit=, ...)
    declared_keys = declared if isinstance(declared, list) else []
    known = sorted({*recipe_keys(parent, overrides, dirs), *declared_keys, *runtime})
    hint = did_you_mean(leaf, known, f"{parent}." if parent else "")
    where = f"{parent}.<key>" if parent else "<key>"
    return f"{full_key}: unknown key ({hint}keys there: {', '.join(known) or 'none'}); set one as {where}=<value>"


def recipe_keys(parent: str, overrides: list[Override], dirs: Sequence[Path]) -> list[str]:
    """The keys the composed recipe has at ``parent`` (group choices applied, key overrides not)."""
    groups = set(config_groups(dirs))
    lines = [o.input_line for o in overrides if o.key_or_group in groups and o.input_line]
    lines += searchpath_overrides(dirs[1:])
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = hydra_compose("config", overrides=lines)
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return [str(k) for k in node] if isinstance(node, DictConfig) else []


def option_fields(path: str) -> list[str] | type | None:
    """What the options types declare at ``path``: field names, ``dict`` for a free mapping, None unknown."""
    roots = option_roots()
    root = next((r for r in sorted(roots, key=len, reverse=True) if f"{path}.".startswith(f"{r}.")), None)
    if root is None:
        return None
    hint: Any = roots[root]
    for part in [p for p in path[len(root) :].split(".") if p]:
        fields = typing.get_type_hints(hint) if dataclasses.is_dataclass(hint) else {}
        if part not in fields:
            return None
        hint = _strip_optional(fields[part])
    if hint is dict or typing.get_origin(hint) is dict:
        return dict
    return [f.name for f in dataclasses.fields(hint)] if dataclasses.is_dataclass(hint) else None


def _strip_optional(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 else hint


def option_roots() -> dict[str, type]:
    """The recipe sections that map onto an options type."""
    roots: dict[str, type] = {f"curate.{m.name}": m.options for m in METHODS.values() if m.options is not None}
    roots.update(
        {
            "curate.stages": StageOptions,
            "executor": ExecutorOptions,
            "train": TrainOptions,
            "evaluate": EvaluateOptions,
            "discover": DiscoverOptions,
        }
    )
    return roots
