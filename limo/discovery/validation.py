"""Validation of a checked loss program, as in the DiscoPOP paper, plus a preference check.

The paper runs a proposal on random inputs and rejects NaN losses or gradients and wrong shapes. Here:
``trials`` seeded random batches (sizes vary, log-probabilities of realistic magnitude, reference log-ratios
spread both ways); the loss must be a floating tensor of shape ``(batch,)`` (per pair, as TRL's losses are)
or a scalar, finite, and its gradient with respect to the policy log-probabilities must exist and be finite.
Then the loss must *prefer the chosen answer*: lower when the chosen answer's log-ratio is clearly above the
rejected one's (``beta * margin = +2``) than in the mirrored case. Runs inside the confined worker.
"""

from __future__ import annotations

from typing import Any

from limo.training.loss_language import InvalidProgram, LossProgram

BATCH_SIZES = (8, 1, 5, 16, 3, 12, 2, 7, 10, 4)
CLEAR_MARGIN = 2.0  # beta * (chosen log-ratio - rejected log-ratio) for "clearly better"


def validate(program: LossProgram, *, beta: float, seed: int, trials: int = 10) -> dict[str, Any]:
    """Run the paper's checks; returns a summary (mean loss per trial, preference losses).

    Raises:
        InvalidProgram: Wrong type or shape, a non-finite loss or gradient, no dependence on the policy, or a
            loss that does not prefer the clearly better answer (the reason says which).
        UnsafeProgram: A resource limit of the interpreter was hit.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    losses = [_trial(program, beta, BATCH_SIZES[t % len(BATCH_SIZES)], generator, t) for t in range(trials)]
    better, worse = _preference_losses(program, beta)
    if not better < worse:
        raise InvalidProgram(
            f"the loss does not prefer the chosen answer: {better:.4g} when the chosen answer is clearly better "
            f"vs {worse:.4g} when it is clearly worse (it must be lower when chosen is better)"
        )
    return {"trial_losses": losses, "loss_when_chosen_better": better, "loss_when_chosen_worse": worse}


def random_batch(size: int, generator: Any) -> tuple[Any, Any, Any, Any]:
    """Sequence log-probabilities like a real batch's: policy in [-300, -1], reference within ~10 nats."""
    import torch

    policy = [-(torch.rand(size, generator=generator) * 299 + 1) for _ in range(2)]
    reference = [p + torch.randn(size, generator=generator) * 10 for p in policy]
    return policy[0].requires_grad_(), policy[1].requires_grad_(), reference[0], reference[1]


def _trial(program: LossProgram, beta: float, size: int, generator: Any, index: int) -> float:
    import torch

    chosen, rejected, ref_chosen, ref_rejected = random_batch(size, generator)
    loss = program(chosen, rejected, ref_chosen, ref_rejected, beta=beta)
    where = f"random input {index + 1} (batch of {size})"
    _check_loss(loss, size, where)
    loss.mean().backward()
    grads = [g for g in (chosen.grad, rejected.grad) if g is not None]
    if not grads:
        raise InvalidProgram(f"{where}: the loss does not depend on the policy log-probabilities")
    if not all(bool(torch.isfinite(g).all()) for g in grads):
        raise InvalidProgram(f"{where}: the gradient is not finite (NaN or inf)")
    return float(loss.detach().mean())


def _check_loss(loss: Any, size: int, where: str) -> None:
    import torch

    if not isinstance(loss, torch.Tensor):
        raise InvalidProgram(f"{where}: the function must return a tensor, got {type(loss).__name__}")
    if not loss.is_floating_point():
        raise InvalidProgram(f"{where}: the loss must be a floating-point tensor, got {loss.dtype}")
    if tuple(loss.shape) not in ((size,), ()):
        raise InvalidProgram(f"{where}: the loss has shape {tuple(loss.shape)}; expected ({size},) or a scalar")
    if not bool(torch.isfinite(loss).all()):
        raise InvalidProgram(f"{where}: the loss is not finite (NaN or inf)")
    if not loss.requires_grad:
        raise InvalidProgram(f"{where}: the loss does not depend on the policy log-probabilities")


def _preference_losses(program: LossProgram, beta: float) -> tuple[float, float]:
    """Mean loss when the chosen log-ratio is clearly above the rejected one, and in the mirrored case."""
    import torch

    half = CLEAR_MARGIN / beta / 2
    reference = torch.tensor([-40.0, -80.0, -120.0, -160.0])
    values = []
    for sign in (1.0, -1.0):
        chosen, rejected = reference + sign * half, reference - sign * half
        loss = program(chosen.requires_grad_(), rejected.requires_grad_(), reference, reference, beta=beta)
        _check_loss(loss, len(reference), "preference check")
        values.append(float(loss.detach().mean()))
    return values[0], values[1]
