"""The recipe's ``train:`` section as a `TrainRun` of plain values (`limo.train` runs what this builds).

``train.trainer`` names an entry of `limo.training.trainers.TRAINERS`; null means the trainer of the
recipe's curation method (a recipe without ``curate:`` trains like ``limo``: ``sft``). The data file is
``train.data``, else the file that trainer reads from this run's ``curate/`` (in a sweep, from the job's
folder or, failing that, the sweep's run root: `limo.config.sweeps.input_path`). ``model.path`` may name an earlier
run's directory (an SFT run before an RL run): its ``train/model`` is the model; a run may not train into the
``train/model`` it starts from.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from eval.options import OptionsError
from limo.config.sweeps import input_path
from limo.training.build import trained_model_path
from limo.training.options import TrainPaths, TrainRun, build_train_options
from limo.training.trainers import TRAINERS, misplaced_options


def build_train_run(cfg: DictConfig, callbacks: Sequence[Any] = (), trainer_class: type | None = None) -> TrainRun:
    """The run ``cfg`` describes (nothing is loaded yet).

    Raises:
        OptionsError: No ``train:`` section, an unknown key or trainer, or another trainer's own section
            (``train.rl`` for ``sft``: `limo.training.trainers.OwnOptions`).
    """
    options = build_train_options(cfg)
    trainer = options.trainer or default_trainer(cfg)
    if trainer not in TRAINERS:
        raise OptionsError(f"train.trainer: unknown trainer {trainer!r} (known: {', '.join(TRAINERS)})")
    misplaced = misplaced_options(options, TRAINERS[trainer])
    if misplaced:
        raise OptionsError(misplaced)
    data = options.data or input_path(cfg, f"curate/{TRAINERS[trainer].data_file}")
    model = OmegaConf.to_container(cfg.model, resolve=True)
    model["path"] = trained_model_path(str(model["path"]))  # type: ignore[index]
    if Path(str(model["path"])).resolve() == Path(str(cfg.output_dir), "train", "model").resolve():  # type: ignore[index]
        raise OptionsError(
            f"model.path is this run's own train/model ({model['path']}): training would overwrite its starting "
            "point; give this run its own output_dir (an SFT run's directory is a valid model.path)"
        )
    deepspeed = OmegaConf.to_container(cfg.deepspeed, resolve=True) if cfg.get("deepspeed") else None
    return TrainRun(
        trainer=trainer,
        options=options,
        paths=TrainPaths(str(cfg.output_dir), data),
        model=model,  # type: ignore[arg-type]
        deepspeed=deepspeed,  # type: ignore[arg-type]
        seed=int(cfg.seed),
        recipe=str(cfg.name),
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        callbacks=tuple(callbacks),
        trainer_class=trainer_class,
    )


def default_trainer(cfg: DictConfig) -> str:
    """The trainer of the recipe's curation method (``sft`` when it has no ``curate:`` section)."""
    from curation.methods import DEFAULT_METHOD, METHODS  # deferred: `limo.train --help` needs no method or grader

    method = OmegaConf.select(cfg, "curate.method", default=None) or DEFAULT_METHOD
    return METHODS[method].trainer if method in METHODS else METHODS[DEFAULT_METHOD].trainer
