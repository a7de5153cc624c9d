"""`python -m limo.train recipe=<name> [overrides]`: fine-tune with TRL (+ DeepSpeed) on the curated data.

``train.trainer`` picks an entry of `limo.training.trainers.TRAINERS` (``sft``, ``weighted_sft``, ``dpo``,
``grpo``; null: the one the recipe's curation method writes for), `limo.setup.train` turns the ``train:`` section into
plain values, and the entry trains and writes ``train/{plan.json,config.yaml,log_history.json,model/}``; a
missing data file fails before anything loads, naming ``train.data``, and so does a model without a chat template
(its own or the model group's ``model.chat_template``), naming that key.
Launch several processes with torchrun (docs/training.md, "Launching"); every rank computes the same plan.
A data or config error ends with one line (`limo.cli.entry`).
"""

from __future__ import annotations

import atexit
import dataclasses
import faulthandler
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from eval.options import OptionsError, did_you_mean
from eval.records import DataError
from limo.cli.entry import hydra_entry, reported_errors
from limo.config.files import check_files
from limo.config.sweeps import job_config
from limo.models.chat import require_chat_template
from limo.models.tiny import ensure_model
from limo.setup.train import build_train_run
from limo.training.trainers import TRAINERS


def train(cfg: DictConfig, callbacks: Sequence[Any] = (), trainer_class: type | None = None) -> Any:
    """Run training for a composed config; returns the trainer (tests read its ``state.log_history``).

    ``trainer_class`` replaces the entry's TRL trainer (a `DPOTrainer` subclass with a custom loss, say).
    """
    run = build_train_run(cfg, callbacks, trainer_class)
    check_training_data(run, curates=cfg.get("curate") is not None)  # before TRL loads: a missing file says so at once
    check_trl_args(run)
    tiny = ensure_model(run.model) if run.model.get("build_tiny") else None  # any other model is read, not loaded
    run = dataclasses.replace(run, chat=require_chat_template(run.model, tiny))
    return TRAINERS[run.trainer].train(run)


def check_trl_args(run: Any) -> None:
    """Every ``train.args`` key must be a field of the trainer's TRL config (its entry's ``config``): a typo fails
    before anything loads, with the closest fields, as a typo in our own keys does.

    Raises:
        OptionsError: The key that is no such field (``key`` set, so the error names the recipe file setting it).
    """
    config = TRAINERS[run.trainer].config
    known = [f.name for f in dataclasses.fields(config)]
    for key in run.options.args:
        if key not in known:
            hint = did_you_mean(key, known, "train.args.").rstrip()
            raise OptionsError(
                f"train.args.{key}: not a field of TRL's {config.__name__} ({hint or 'see its docs'})",
                key=f"train.args.{key}",
            )


def check_training_data(run: Any, curates: bool) -> None:
    """The data file must be there before anything loads; a missing one names ``train.data`` and the way out
    (``curates``: the recipe has a ``curate:`` section that writes it).

    Raises:
        DataError: ``train.data`` names no file (with the folders a relative one was looked up in), or this
            run's curated file is not there yet.
    """
    if Path(run.paths.data).is_file():
        return
    if run.options.data:
        check_files(run.options, "train")
        raise DataError(f"train.data: no such file {run.options.data}, train.data")
    recipe = run.recipe if curates else "<a recipe with a curate: section>"
    raise DataError(
        f"no training data at {run.paths.data} (curate it first: `python -m limo.curate recipe={recipe} "
        f"output_dir={run.paths.output_dir}`; or set train.data=<file>), train.data"
    )


@hydra_entry("train")
def main(cfg: DictConfig) -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        faulthandler.enable()  # a rank that aborts in native code prints where its Python threads were
    with reported_errors("train", cfg):
        train(job_config(cfg))
    shut_down_process_group()


def shut_down_process_group() -> None:
    """Leave the process group, every rank together, and end a distributed run's rank without the interpreter's
    teardown.

    Left to interpreter exit, gloo's and DeepSpeed's communication threads are torn down in no fixed order: a
    two-process CPU run of the test suite aborted after saving its model ("terminate called without an active
    exception", exit -6), failing a finished run — and did again, rarely, after the process group was destroyed
    first. So a rank of a finished distributed run runs the exit handlers (logging's flush among them) while the
    interpreter is whole, flushes its streams and leaves with ``os._exit(0)``: the training is written by then
    (atomically), and nothing native is left to tear down in an order of its own. A run that set up no process
    group exits as usual.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
