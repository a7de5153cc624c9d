"""A discovered preference loss inside TRL's `DPOTrainer`, and loading one from a discovery archive by name.

TRL 1.16 computes every DPO-family loss inline in ``DPOTrainer._compute_loss`` (one ``if loss_type == ...``
branch each) and exposes no per-loss method, so the narrowest hook is around that method: forward hooks
record the per-token log-probabilities of the policy forward (and of the reference forward, when the
reference is not precomputed), TRL's own ``_compute_loss`` runs unchanged — its metrics (rewards,
accuracies, margins, entropy) are logged as usual — and the loss it returns is replaced by the program's,
computed from the same sequence log-probabilities TRL sums (``log_probs[:, -seq_len:].sum(1)``, chosen half
first). Options that change what TRL feeds its losses (``ld_alpha``, WPO weighting, f-divergences, MoE
auxiliary losses) are refused rather than silently ignored.

The program is a checked `limo.training.loss_language.LossProgram`: its text is interpreted, never executed, in
this process too.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eval.records import DataError, read_jsonl
from limo.training.loss_archive import best_rows
from limo.training.loss_language import ProgramError, check_program
from limo.training.options import DiscoveredLossOptions

log = logging.getLogger(__name__)


def program_trainer_class(program: Any, description: str = "a loss program") -> type:
    """A `DPOTrainer` subclass whose loss is ``program`` (a checked `limo.training.loss_language.LossProgram`).

    The program is bound to the class, so the class goes through the ``dpo`` trainer's one custom-trainer hook
    (`limo.training.options.TrainRun.trainer_class`, `limo.training.preference.build_dpo_trainer`) and is built
    with the same arguments as TRL's own. ``description`` names the loss on the model card. Defined on call,
    so importing this module does not import TRL.
    """
    from trl import DPOTrainer

    class ProgramLossDPOTrainer(DPOTrainer):
        """`DPOTrainer` whose loss is a loss program of the four sequence log-probabilities and ``beta``."""

        loss_program = staticmethod(program)
        loss_description = description

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            _refuse_unsupported(self)

        def _compute_loss(self, model, inputs, return_outputs):
            with _recorded_log_probs(self, model) as recorded:
                result = super()._compute_loss(model, inputs, return_outputs)
            logps = _sequence_logps(self, inputs, recorded)
            loss = self.loss_program(*logps, beta=float(self.beta)).mean()
            return (loss, result[1]) if return_outputs else loss

    return ProgramLossDPOTrainer


def _refuse_unsupported(trainer: Any) -> None:
    problems = []
    if trainer.ld_alpha is not None:
        problems.append("ld_alpha")
    if trainer.use_weighting:
        problems.append("use_weighting")
    if trainer.f_divergence_type != "reverse_kl":
        problems.append(f"f_divergence_type={trainer.f_divergence_type}")
    if trainer.aux_loss_enabled:
        problems.append("router auxiliary loss (MoE)")
    if problems:
        raise ValueError(f"a discovered loss replaces TRL's loss and cannot honour {', '.join(problems)}")


@contextlib.contextmanager
def _recorded_log_probs(trainer: Any, model: Any) -> Iterator[dict[str, list[Any]]]:
    """Record ``outputs.log_probs`` of every policy / reference forward while the block runs."""
    recorded: dict[str, list[Any]] = {"policy": [], "reference": []}
    modules = {"policy": trainer.accelerator.unwrap_model(model)}
    if trainer.ref_model is not None:
        modules["reference"] = trainer.accelerator.unwrap_model(trainer.ref_model)
    handles = [
        module.register_forward_hook(lambda _m, _a, out, key=key: recorded[key].append(out.log_probs))
        for key, module in modules.items()
    ]
    try:
        yield recorded
    finally:
        for handle in handles:
            handle.remove()


def _sequence_logps(trainer: Any, inputs: dict[str, Any], recorded: dict[str, list[Any]]) -> tuple[Any, ...]:
    """(policy chosen, policy rejected, reference chosen, reference rejected), as TRL sums them."""
    seq_len = inputs["completion_mask"].size(1) - 1
    policy = recorded["policy"][0][:, -seq_len:].sum(dim=1)
    if trainer.precompute_ref_logps:
        reference = (inputs["ref_chosen_logps"], inputs["ref_rejected_logps"])
    else:  # a separate reference model, or the same PEFT model with its adapter off (its second forward)
        ref_per_token = (recorded["reference"] or recorded["policy"][1:])[0]
        reference = ref_per_token[:, -seq_len:].sum(dim=1).detach().chunk(2, dim=0)
    return (*policy.chunk(2, dim=0), *reference)


# --- by name from an archive -----------------------------------------------------------------------------


def discovered_trainer_class(options: DiscoveredLossOptions, output_dir: str) -> type:
    """The trainer class for ``train.discovered_loss``: the named program from its archive, checked again.

    Raises:
        DataError: No such archive, or no valid row matches (the valid names are listed).
    """
    archive = options.archive or f"{output_dir}/discover/archive.jsonl"
    program, row = load_discovered_loss(archive, options.name)
    description = (
        f"discovered loss {row['name']!r} (generation {row['generation']}, code sha256 "
        f"{str(row.get('code_sha256') or '')[:12]}, {archive})"
    )
    return program_trainer_class(program, description)


def load_discovered_loss(archive: str | Path, name: str) -> tuple[Any, dict[str, Any]]:
    """The loss program ``name`` from a discovery archive, checked again; returns (program, archive row).

    ``name`` is a proposal's name (the highest-fitness valid row of that name wins), ``name@<generation>``
    for one row, or ``best`` for the highest-fitness valid proposal of any name (seeds excluded).

    Raises:
        DataError: No such archive, or no valid row matches (the valid names are listed).
    """
    rows = [r for r in read_jsonl(archive, tolerate_torn_tail=True) if r.get("status") == "valid"]
    row = _pick(rows, name, str(archive))
    try:
        program = check_program(str(row["code"]))
    except ProgramError as err:  # an edited archive: the row no longer passes the checker
        raise DataError(f"{archive}: {name!r} (generation {row['generation']}) fails the checker: {err}") from None
    log.info("discovered loss %r: generation %s, fitness %s", row["name"], row["generation"], row.get("fitness"))
    return program, row


def _pick(rows: list[dict[str, Any]], name: str, source: str) -> dict[str, Any]:
    base, _, generation = name.partition("@")
    matches = [r for r in rows if (int(r["generation"]) > 0 if base == "best" else r.get("name") == base)]
    if generation:
        matches = [r for r in matches if str(r["generation"]) == generation]
    best = best_rows(matches, 1, proposals_only=False)
    if not best:
        names = sorted({str(r.get("name")) for r in rows})
        raise DataError(f"{source}: no valid objective named {name!r} (valid: {', '.join(names) or 'none'})")
    return best[0]
