"""The command line, read once before Hydra composes it, against the options schema; nothing here composes.

Hydra composes each run's config once (``@hydra.main``; its ``hydra.mode`` probe: `limo.cli.entry.known_mode`) and
the options dataclasses validate it once (`limo.config.sections.to_options`). Before that, `hydra_argv` makes the one
pass over an entry point's arguments, with the dataclasses as the schema (`option_roots`: ``curate.stages`` is
`StageOptions`, ``train`` `TrainOptions`, ...):

- config-folder flags are made absolute and moved to the front (`limo.config.search_path.split_folder_flags`);
- a group choice must name a file of that group: ``recipe=limoo`` fails with the closest names and the folders
  searched, instead of Hydra's listing;
- a key under a schema root must be a field there, or a key of a free mapping (``field_map.subject=topic``);
  an unknown one fails in one line with the closest fields (`eval.options.did_you_mean`) and the syntax. A known
  one is forced (``++``): Hydra's struct mode would refuse a field the recipe leaves at its default, and the
  dataclass checks its value once Hydra has composed;
- a whole-map override of a field the schema marks ``whole`` (`curation.options.WHOLE`: ``field_map={problem: q}``)
  is sent as ``++key=null ++key={...}``, so that Hydra replaces the recipe's map instead of merging into it;
- a top-level key must be one the root config, a config group, a schema root, the recipe or the entry point
  declares; an entry's run-time arguments (``limit=`` for `limo.evaluate`) are forced;
- a key of a group's node (``model.path=``) must be a key of some file of that group or of the recipe's node;
  Hydra's struct mode then checks the chosen file.

A line the user prefixes (``+key=``, ``++key=``, ``~key``) and a sweep (``seed=1,2``) pass as written: Hydra
and the dataclasses check them (a sweep's key is still checked against the schema).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from eval.options import OptionsError, did_you_mean
from limo.config.search_path import config_groups, group_options, misplaced_hint, search_dirs, split_folder_flags
from limo.config.sections import CONFIG_DIR, recipe_file

SECTIONS = ("curate", "train", "evaluate", "discover", "ablate")  # a recipe's sections (one per entry point)
# `limo.evaluate`'s run-time arguments, which no recipe declares, and custom benchmarks (``benchmark_specs.<name>=``):
# here, not beside the evaluation's setup, so that `limo.evaluate --help` and the ablation's markers read them without
# importing the grader.
EVALUATE_RUNTIME = (
    "mode",
    "benchmarks",
    "limit",
    "run_dir",
    "responses",
    "problems",
    "group_by",
    "runs",
    "allow_mismatch",
    "turns",
    "oracle",
    "benchmark_specs",
)


def hydra_argv(argv: Sequence[str], runtime_keys: Sequence[str] = ()) -> list[str]:
    """``argv`` checked against the schema and ready for Hydra's one composition.

    Args:
        argv: The entry point's arguments.
        runtime_keys: The entry's run-time arguments (``limit``, ``benchmarks``, ...), which no recipe declares:
            forced (``++``), with every key under them (``benchmark_specs.<name>=...``).

    Raises:
        OptionsError: An unknown recipe, group option or key: the closest names and the syntax that works.
    """
    flags, rest = split_folder_flags(argv)
    overrides = parsed(rest)
    if overrides is None:
        return flags + rest  # Hydra reports its own syntax errors
    schema = Schema(search_dirs([*flags, *rest]), chosen_recipe(overrides), tuple(runtime_keys))
    by_line = {o.input_line: o for o in overrides}
    return flags + [line for arg in rest for line in (schema.lines(by_line[arg]) if arg in by_line else [arg])]


def runtime_key(key: str, runtime_keys: Sequence[str]) -> bool:
    """Whether ``key`` is one of an entry's run-time arguments or lies under one."""
    return any(key == k or key.startswith(f"{k}.") for k in runtime_keys)


def forced_runtime(argv: Sequence[str], runtime_keys: Sequence[str]) -> list[str]:
    """``argv`` with each run-time argument forced (``++``), as `hydra_argv` sends it: for `limo.cli.compose.compose`,
    which knows no entry point."""
    return [
        f"++{a}" if "=" in a and a[0] not in "+~-" and runtime_key(a.split("=", 1)[0], runtime_keys) else a
        for a in argv
    ]


def parsed(argv: Sequence[str]) -> list[Override] | None:
    lines = [a for a in argv if "=" in a and not a.startswith("-") or a.startswith(("~", "+"))]
    try:
        return OverridesParser.create().parse_overrides(lines)
    except HydraException:
        return None


def chosen_recipe(overrides: Sequence[Override]) -> str:
    """The ``recipe=`` the command line picks, else the root config's default."""
    given = [str(o.value()) for o in overrides if o.key_or_group == "recipe" and not o.is_sweep_override()]
    return given[-1] if given else str(root_defaults().get("recipe", ""))


# The schema's roots and where each options type lives, imported when a key under it is read: a command line imports
# only the schema it sets (``limo.curate --help`` imports no grader, no torch). ``curate.<method>`` roots come from
# the methods' registry (`method_options`), read only for a key under ``curate.`` that is neither of these.
ROOTS = {
    "curate.stages": "curation.options:StageOptions",
    "curate.student": "curation.options:StudentOptions",
    "executor": "curation.executors:ExecutorOptions",
    "train": "limo.training.options:TrainOptions",
    "evaluate": "limo.setup.evaluate:EvaluateOptions",
    "discover": "limo.discovery.options:DiscoverOptions",
    "ablate": "limo.setup.ablate:AblateOptions",
}
CURATE_KEYS = ("method", "stages", "student")  # ``curate.`` keys besides the methods' own sections


@dataclasses.dataclass(frozen=True)
class Schema:
    """What a command line may set: the options dataclasses, the root config, the group files, the recipe."""

    dirs: list[Path]
    recipe: str
    runtime_keys: tuple[str, ...]

    def lines(self, override: Override) -> list[str]:
        """The lines Hydra gets for ``override``: itself, forced (``++``), or a whole map's two lines.

        Raises:
            OptionsError: An unknown group option or key (`check_group_choice`, `check_keys`).
        """
        key, line = override.key_or_group, str(override.input_line)
        if key in config_groups(self.dirs):
            check_group_choice(override, self.dirs)
            return [line]
        if override.is_hydra_override() or override.is_delete():
            return [line]
        plain, sweep = not line.startswith("+"), override.is_sweep_override()
        if runtime_key(key, self.runtime_keys):
            return [f"++{line}" if plain else line]
        root = schema_root(key)
        if root == "curate.stages":
            from curation.options import moved_student_override  # deferred: imports the grader (its options)

            moved = moved_student_override(key, override.value())
            if moved is not None:
                raise OptionsError(moved, key=key)
        field = self.checked_field(key, root) if plain else user_field(root, key)
        if field is not None and field.metadata.get("whole") and not sweep and isinstance(override.value(), dict):
            return [f"++{key}=null", f"++{line.lstrip('+')}"]  # null first: Hydra would merge into the recipe's
        return [f"++{line}" if plain and root is not None and not sweep else line]

    def checked_field(self, key: str, root: str | None) -> dataclasses.Field | None:
        """The schema field ``key`` names, if any; a key outside the schema is checked against the root config,
        the group files and the recipe.

        Raises:
            OptionsError: ``key`` is not in the schema, with the closest keys.
        """
        if root is not None:
            return option_field(root, key)
        head, _, tail = key.partition(".")
        self.check_top_level(head)
        packages = group_packages()
        if head == "curate" and tail:
            check_keys(f"curate.{tail.split('.')[0]}", [*CURATE_KEYS, *method_names()])
        elif head in packages and tail:
            group, below = packages[head]
            parts = tail.split(".")
            if len(parts) > below:
                node = [head, *parts[:below]]
                keys = {k for f in group_files(group, self.dirs) for k in yaml_keys(f)}
                keys |= set(recipe_keys(recipe_file(self.recipe, self.dirs), self.dirs, set(), node))
                check_keys(".".join([*node, parts[below]]), sorted(keys))
        return None

    def check_top_level(self, key: str) -> None:
        declared = [k for k in root_config() if k not in ("defaults", "hydra")]
        known = [*declared, *group_packages(), *SECTIONS, *self.runtime_keys]
        if key not in known and key not in recipe_keys(recipe_file(self.recipe, self.dirs), self.dirs, set()):
            check_keys(key, known)


def user_field(root: str | None, key: str) -> dataclasses.Field | None:
    """The schema field a ``+key`` line names, if any: the line is the user's own, and not refused here."""
    try:
        return option_field(root, key) if root is not None else None
    except OptionsError:
        return None


def check_keys(key: str, known: Sequence[str]) -> None:
    """``key``'s last part must be one of ``known`` (the keys at its parent).

    Raises:
        OptionsError: One line with the closest keys, the keys there and the syntax.
    """
    parent, _, leaf = key.rpartition(".")
    if leaf in known:
        return
    hint = did_you_mean(leaf, known, f"{parent}." if parent else "")
    where = f"{parent}.<key>" if parent else "<key>"
    raise OptionsError(
        f"{key}: unknown key ({hint}keys there: {', '.join(sorted(set(known))) or 'none'}); set one as {where}=<value>"
    )


def option_field(root: str, key: str) -> dataclasses.Field | None:
    """The field ``key`` names under the schema root ``root``; None where the schema takes any key there (a free
    mapping, an ``Any``) or ``key`` is the root itself.

    Raises:
        OptionsError: A part of ``key`` that its dataclass does not declare.
    """
    hint: Any = option_type(root)
    found: dataclasses.Field | None = None
    path = root
    for part in [p for p in key[len(root) :].split(".") if p]:
        if not (dataclasses.is_dataclass(hint) and isinstance(hint, type)):
            return None  # a mapping or a value: the dataclass holding it checks its contents
        fields = {f.name: f for f in dataclasses.fields(hint)}
        check_keys(f"{path}.{part}", list(fields))
        found, path = fields[part], f"{path}.{part}"
        hint = _strip_optional(typing.get_type_hints(hint)[part])
    return found


def _strip_optional(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 else hint


def schema_root(key: str) -> str | None:
    """The longest schema root ``key`` lies under (``curate.stages.select.n`` -> ``curate.stages``)."""
    head, _, rest = key.partition(".")
    method = head == "curate" and rest and rest.split(".")[0] not in CURATE_KEYS
    roots = [*ROOTS, *(method_options() if method else ())]
    return next((r for r in sorted(roots, key=len, reverse=True) if f"{key}.".startswith(f"{r}.")), None)


def option_type(root: str) -> type:
    """The options type of the schema root ``root`` (its module imported now)."""
    if root not in ROOTS:
        return method_options()[root]
    module, _, name = ROOTS[root].partition(":")
    return getattr(importlib.import_module(module), name)


@functools.cache
def method_names() -> tuple[str, ...]:
    from curation.methods import METHODS  # deferred: every method and the grader, only for a ``curate.`` key

    return tuple(METHODS)


@functools.cache
def method_options() -> dict[str, type]:
    """``{curate.<method>: its options type}`` for the methods that have one."""
    from curation.methods import METHODS  # deferred: every method and the grader, only for a ``curate.`` key

    return {f"curate.{name}": m.options for name, m in sorted(METHODS.items()) if m.options is not None}


def option_roots() -> dict[str, type]:
    """The recipe sections that map onto an options type, in a recipe's order: the schema (`limo.cli.options_table`
    documents the same map). Imports every options type."""
    first = ("curate.stages", "curate.student")
    roots = [*first, *method_options(), *(r for r in ROOTS if r not in first)]
    return {root: option_type(root) for root in roots}


@functools.cache
def root_config() -> dict[str, Any]:
    """The shipped root config (``config.yaml``) as written: its keys and its defaults list."""
    return yaml.safe_load((CONFIG_DIR / "config.yaml").read_text()) or {}


def root_defaults() -> dict[str, str]:
    """The root config's defaults list as ``{group (or group@package): choice}``."""
    entries = [d for d in root_config().get("defaults", []) if isinstance(d, dict)]
    return {str(k): str(v) for d in entries for k, v in d.items() if not str(k).startswith("override ")}


def group_packages() -> dict[str, tuple[str, int]]:
    """Top-level nodes the root config's groups fill: ``{node: (group, parts of the package below the node)}``.

    ``model: tiny`` fills ``model`` (0); ``benchmark@benchmark_specs.math500`` fills ``benchmark_specs.<name>`` (1).
    """
    nodes: dict[str, tuple[str, int]] = {}
    for entry in root_defaults():
        group, _, package = entry.partition("@")
        head, *below = (package or group).split(".")
        if group != "recipe":
            nodes[head] = (group, len(below))
    return nodes


def group_files(group: str, dirs: Sequence[Path]) -> list[Path]:
    return [p for d in dirs for p in sorted((d / group).glob("*.yaml"))]


def yaml_keys(path: Path) -> list[str]:
    text = yaml.safe_load(path.read_text()) or {}
    return [str(k) for k in text if k != "defaults"] if isinstance(text, dict) else []


def recipe_keys(path: Path, dirs: Sequence[Path], seen: set[Path], node: Sequence[str] = ()) -> list[str]:
    """The keys a recipe file sets at ``node`` (a key path; the top level when empty), itself or through the
    recipes in its defaults list."""
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    text = yaml.safe_load(path.read_text()) or {}
    here = text
    for part in node:
        here = here.get(part) if isinstance(here, dict) else None
    inherited = [recipe_file(d, dirs) for d in text.get("defaults", []) if isinstance(d, str)]
    return [
        *(here if isinstance(here, dict) else []),
        *(k for p in inherited for k in recipe_keys(p, dirs, seen, node)),
    ]


def check_group_choice(override: Override, dirs: Sequence[Path]) -> None:
    """``recipe=limoo``, ``executor=rayy``: the closest names instead of Hydra's listing, and where we looked."""
    group = override.key_or_group
    if override.is_delete() or override.value_type is None:
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
