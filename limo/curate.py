"""`python -m limo.curate recipe=<name> [output_dir=...]`: curate a pool into a few hundred training chains.

Reads the recipe's ``curate:`` section (validated against `curation.options.CurateOptions`: unknown keys
fail at start-up) and writes ``<output_dir>/curate/`` (see docs/curation.md).
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from curation.options import CurateOptions, RolloutOptions, from_mapping, mutable_schema
from curation.pipeline import curate
from limo.config import build_benchmark_specs, resolve_path
from limo.curate_mammoth2 import is_mammoth2, run_mammoth2, summary_line
from limo.learning_from_errors import curate_errors, is_error_method
from limo.rise import curate_rise, is_rise

log = logging.getLogger("limo.curate")


def build_options(cfg: DictConfig) -> CurateOptions:
    """The recipe's ``curate:`` section as typed options (unknown keys and wrong types raise)."""
    section = OmegaConf.merge(OmegaConf.structured(mutable_schema(CurateOptions)), cfg.get("curate") or {})
    data: dict[str, Any] = OmegaConf.to_container(section, resolve=True)  # type: ignore[assignment]
    data["ingest"]["gold_overrides"] = resolve_path(data["ingest"]["gold_overrides"])
    if data["decontam"]["data_dir"] is None:
        data["decontam"]["data_dir"] = cfg.get("data_dir")
    return from_mapping(CurateOptions, data)


def build_backend(options: RolloutOptions) -> Any:
    """A generation backend for fresh rollouts (imported lazily: only the rollout stage needs one)."""
    from eval.backends.registry import build_backend as build

    return build(options.backend, **options.backend_args)


@hydra.main(config_path="../recipes", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    if is_error_method(cfg):  # LEMMA examples or preference pairs (limo.learning_from_errors)
        print(f"[curate] {cfg.curate.method}: {curate_errors(cfg)}; outputs in {cfg.output_dir}/curate/")
        return
    if is_mammoth2(cfg):  # `curate.pipeline: mammoth2` mines web pages instead (limo/curate_mammoth2.py)
        print(summary_line(run_mammoth2(cfg)))
        return
    if is_rise(cfg):  # RISE multi-turn rollouts -> weighted examples (limo.rise)
        print(f"[curate] rise: {curate_rise(cfg)}; outputs in {cfg.output_dir}/curate/")
        return
    options = build_options(cfg)
    summary = curate(
        options,
        output_dir=cfg.output_dir,
        seed=int(cfg.seed),
        benchmark_specs=build_benchmark_specs(cfg),
        backend_factory=build_backend,
        config=OmegaConf.to_container(cfg.curate, resolve=True),  # type: ignore[arg-type]
        name=str(cfg.name),
    )
    print(
        f"[curate] {summary.read} pool items -> {summary.selected} selected, {summary.dropped} dropped with reasons "
        f"({summary.seconds:.1f}s); outputs in {summary.output_dir}/"
    )


if __name__ == "__main__":
    main()
