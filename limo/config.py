"""Composing recipes outside Hydra's decorator (tests, the demo driver, notebooks).

Entry points use ``@hydra.main`` on the same config root; this module gives the identical composition
as a function so that every shipped recipe can be composed in a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from eval.benchmarks import BenchmarkSpec

CONFIG_DIR = Path(__file__).resolve().parent.parent / "recipes"


def recipe_names() -> list[str]:
    """Every recipe shipped under ``recipes/recipe/``."""
    return sorted(p.stem for p in (CONFIG_DIR / "recipe").glob("*.yaml"))


def compose(recipe: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``recipe`` with ``overrides`` exactly as ``python -m limo.<entry> recipe=...`` would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = hydra_compose("config", overrides=[f"recipe={recipe}", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # `${hydra:...}` interpolations resolve as under @hydra.main
    with open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.resolve(cfg)
    return cfg


def resolve_path(path: str | None) -> str | None:
    """A relative path is taken from the working directory, else from the repository root (recipes/..)."""
    if path is None or Path(path).is_absolute() or Path(path).exists():
        return path
    return str(CONFIG_DIR.parent / path)


def build_benchmark_specs(cfg: DictConfig) -> dict[str, BenchmarkSpec]:
    """Every benchmark spec the config composes (``cfg.benchmark_specs``), typed."""
    specs = OmegaConf.to_container(cfg.get("benchmark_specs") or {}, resolve=True)
    return {name: BenchmarkSpec.from_dict(spec) for name, spec in specs.items()}  # type: ignore[union-attr, arg-type]
