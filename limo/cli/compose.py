"""Composing a recipe outside Hydra's decorator, exactly as an entry point does.

Entry points use ``@hydra.main`` on the same config root (`limo.cli.entry.hydra_entry`); `compose` gives the
identical composition as a function (the command line checked by the same `limo.cli.overrides.hydra_argv`) so that
every shipped recipe can be composed in a test, and a study (`limo.ablate`) can compose each of its runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from limo.cli.overrides import hydra_argv
from limo.config.search_path import searchpath_overrides
from limo.config.sections import CONFIG_DIR


def compose(recipe: str, overrides: Sequence[str] = (), config_dirs: Sequence[Path] = ()) -> DictConfig:
    """Compose ``recipe`` with ``overrides`` exactly as ``python -m limo.<entry> recipe=...`` would.

    The overrides go through the same check as an entry point's command line (`limo.cli.overrides.hydra_argv`).
    ``config_dirs`` are the user's config folders (``--config-dir``): recipes there compose like shipped ones.
    """
    lines = hydra_argv([f"recipe={recipe}", *overrides, *searchpath_overrides(config_dirs)])
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = hydra_compose("config", overrides=lines, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # `${hydra:...}` interpolations resolve as under @hydra.main
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.resolve(cfg)
    return cfg
