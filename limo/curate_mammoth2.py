"""The ``pipeline: mammoth2`` branch of `limo.curate`: build MAmmoTH2 options from the recipe and mine.

`limo.curate` hands over here when the recipe's ``curate:`` section says ``pipeline: mammoth2``. The section
is validated against `curation.mammoth2.options.Mammoth2CurateOptions` (unknown keys and wrong types fail
at start-up, the same way `limo.curate` validates its own pipeline), then `curation.mammoth2.pipeline.mine`
runs with plain values.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from curation.mammoth2.options import EMBEDDED, Mammoth2CurateOptions
from curation.mammoth2.pipeline import MiningSummary, mine
from curation.options import from_mapping, mutable_schema
from limo.config import build_benchmark_specs, resolve_path


def is_mammoth2(cfg: DictConfig) -> bool:
    """Whether the recipe's ``curate:`` section selects this pipeline."""
    return OmegaConf.select(cfg, "curate.pipeline", default=None) == "mammoth2"


def build_mammoth2_options(cfg: DictConfig) -> Mammoth2CurateOptions:
    """The ``curate:`` section as typed values (relative corpus paths resolve like `limo.curate`'s)."""
    section = OmegaConf.merge(OmegaConf.structured(mutable_schema(Mammoth2CurateOptions)), cfg.get("curate") or {})
    data: dict[str, Any] = OmegaConf.to_container(section, resolve=True)  # type: ignore[assignment]
    corpus = data["mammoth2"]["corpus"]
    for key in ("seed_positive", "seed_negative"):
        corpus[key] = resolve_path(corpus[key])
    if corpus["source"] != EMBEDDED:
        corpus["source"] = resolve_path(corpus["source"])
    if data["decontam"]["data_dir"] is None:
        data["decontam"]["data_dir"] = cfg.get("data_dir")
    return from_mapping(Mammoth2CurateOptions, data)


def run_mammoth2(cfg: DictConfig) -> MiningSummary:
    """Mine the configured corpus into ``<output_dir>/curate/``."""
    return mine(
        build_mammoth2_options(cfg),
        output_dir=cfg.output_dir,
        seed=int(cfg.seed),
        benchmark_specs=build_benchmark_specs(cfg),
        config=OmegaConf.to_container(cfg.curate, resolve=True),  # type: ignore[arg-type]
        name=str(cfg.name),
    )


def summary_line(summary: MiningSummary) -> str:
    return (
        f"[curate] mammoth2: {summary.documents_read} documents -> {summary.pairs_extracted} pairs extracted -> "
        f"{summary.selected} selected ({summary.seconds:.1f}s); outputs in {summary.output_dir}/"
    )
