"""Composing a recipe outside Hydra's decorator, exactly as an entry point does.

Entry points use ``@hydra.main`` on the same config root (`limo.cli.entry.hydra_entry`); `compose` gives the
identical composition as a function (the command line checked by the same `limo.cli.overrides.hydra_argv`) so that
every shipped recipe can be composed in a test, and a study (`limo.ablate`) can compose each of its runs.

A composition costs about 0.3 s of CPU (Hydra parses some thirty YAML files and merges them), and `limo.ablate`
composes each step's config whenever it judges the step (three times for a step it runs). So a process keeps what
it composed: the same command line, the same recipe files (their paths, sizes and modification times) and the same
environment (``${oc.env:...}``) give a copy of the config composed before, and Hydra's run-time config
(`HydraConfig`) as that composition left it.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from limo.cli.overrides import hydra_argv
from limo.config.search_path import search_dirs, searchpath_overrides
from limo.config.sections import CONFIG_DIR

KEPT = 64  # compositions a process keeps (an ablation's steps compose a few each)
_kept: dict[tuple[Any, ...], tuple[DictConfig, Any]] = {}


def compose(recipe: str, overrides: Sequence[str] = (), config_dirs: Sequence[Path] = ()) -> DictConfig:
    """Compose ``recipe`` with ``overrides`` exactly as ``python -m limo.<entry> recipe=...`` would.

    The overrides go through the same check as an entry point's command line (`limo.cli.overrides.hydra_argv`).
    ``config_dirs`` are the user's config folders (``--config-dir``): recipes there compose like shipped ones.
    The caller owns the config it gets (a copy of the one kept).
    """
    lines = hydra_argv([f"recipe={recipe}", *overrides, *searchpath_overrides(config_dirs)])
    key = (tuple(lines), recipe_files(lines), tuple(sorted(os.environ.items())))
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
