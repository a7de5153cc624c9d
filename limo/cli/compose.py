"""Composing a recipe outside Hydra's decorator, exactly as an entry point does.

Entry points use ``@hydra.main`` on the same config root (`limo.cli.entry.hydra_entry`); `compose` gives the
identical composition as a function (the command line checked by the same `limo.cli.overrides.hydra_argv`) so that
every shipped recipe can be composed in a test, and a study (`limo.ablate`) can compose each of its runs.

A composition costs about 0.3 s of CPU (Hydra parses some thirty YAML files and merges them), and `limo.ablate`
composes each step's config whenever it judges the step (three times for a step it runs). So a process keeps what
it composed: the same command line, the same recipe files (their paths, sizes and modification times), the same
values of the environment variables they read (``${oc.env:NAME}`` in a recipe file or on the command line; the whole
environment when a name is itself an interpolation) and the same working folder (Hydra's ``runtime.cwd``) give a copy
of the config composed before, and Hydra's run-time config (`HydraConfig`) as that composition left it. A
composition that is not kept still parses no recipe file a second time (`limo.config.parsed`). Keyed by the
whole environment before, a process whose other variables changed between compositions (a test runner names the
running test in one) composed every recipe again.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from limo.cli.overrides import hydra_argv
from limo.config import parsed
from limo.config.search_path import search_dirs, searchpath_overrides
from limo.config.sections import CONFIG_DIR

KEPT = 128  # compositions a process keeps (about 1.1 MB each; an ablation's steps compose a few each)
ENV_READ = re.compile(r"oc\.env:\s*([^,}\s]*)")  # the variable an ``${oc.env:NAME,default}`` reads
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_kept: dict[tuple[Any, ...], tuple[DictConfig, Any]] = {}


def compose(recipe: str, overrides: Sequence[str] = (), config_dirs: Sequence[Path] = ()) -> DictConfig:
    """Compose ``recipe`` with ``overrides`` exactly as ``python -m limo.<entry> recipe=...`` would.

    The overrides go through the same check as an entry point's command line (`limo.cli.overrides.hydra_argv`).
    ``config_dirs`` are the user's config folders (``--config-dir``): recipes there compose like shipped ones.
    The caller owns the config it gets (a copy of the one kept).
    """
    parsed.remember()
    lines = hydra_argv([f"recipe={recipe}", *overrides, *searchpath_overrides(config_dirs)])
    files = recipe_files(lines)
    key = (tuple(lines), files, environment(lines, files), os.getcwd())
    if key not in _kept:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            cfg = hydra_compose("config", overrides=lines, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)  # `${hydra:...}` interpolations resolve as under @hydra.main
        with open_dict(cfg):
            del cfg["hydra"]
        OmegaConf.resolve(cfg)
        if len(_kept) >= KEPT:
            del _kept[next(iter(_kept))]
        _kept[key] = (cfg, HydraConfig.instance().cfg)
    cfg, hydra_cfg = _kept[key]
    HydraConfig.instance().cfg = hydra_cfg
    return copy.deepcopy(cfg)


def recipe_files(lines: Sequence[str]) -> tuple[tuple[str, int, int], ...]:
    """Path, size and modification time of every file in the config folders the command line composes from (the
    shipped one and the user's, `limo.config.search_path.search_dirs`): what a composition reads."""
    found: list[tuple[str, int, int]] = []
    for folder in search_dirs(lines):
        for parent, _, names in os.walk(folder):
            for name in names:
                with contextlib.suppress(OSError):
                    stat = os.stat(os.path.join(parent, name))
                    found.append((os.path.join(parent, name), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


def environment(lines: Sequence[str], files: Sequence[tuple[str, int, int]]) -> tuple[tuple[str, str | None], ...]:
    """The environment variables the composition can read, with their values (None: unset): every name an
    ``${oc.env:NAME}`` gives in the recipe files or on the command line; the whole environment when a name is itself
    an interpolation (``${oc.env:${...}}``), which only resolving could tell."""
    names: set[str] = set()
    for text in (*lines, *(recipe_text(*entry) for entry in files)):
        for name in ENV_READ.findall(text):
            if not VARIABLE.fullmatch(name):
                return tuple(sorted(os.environ.items()))
            names.add(name)
    return tuple((name, os.environ.get(name)) for name in sorted(names))


@functools.lru_cache(maxsize=4096)
def recipe_text(path: str, size: int, mtime_ns: int) -> str:
    """A recipe file's text, read once per version of the file (its size and modification time are the key); ""
    for what Hydra does not read (not YAML)."""
    if not path.endswith((".yaml", ".yml")):
        return ""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
