"""How fast this machine trains: its fp32 matrix-multiply peak, measured in a fraction of a second, and the wall time
a training run should take from its token count. The peak is measured briefly first (`QUICK_S`: a few products);
only a run that this predicts to take `LONG_RUN_S` or more, whose estimate a user plans by, gets the longer
measurement (`FULL_S`) — a tiny run's estimate is not worth a third of a second of its CPU.

A causal LM's training step costs about 6 FLOPs per parameter per token (2 forward, 4 backward) whether the
weights are frozen or not, since the backward pass through a frozen layer still needs its input gradients; LoRA
saves the optimizer and the weight gradients (a third of the backward), so it costs about 4. What a CPU achieves is
a share of its matmul peak: bench/training/sft_speed.py measures that share for SmolLM2-135M-Instruct (the efficiency
below; docs/performance.md, "Training and generation on a CPU"), and the plan line uses it to predict the run.
"""

from __future__ import annotations

import time

# Achieved share of the measured fp32 matmul peak in SFT on a CPU, by kind of run: SmolLM2-135M, 8 chains of ~235
# tokens a step, padding-free (each example attended apart, the LM head on the answer's tokens: limo.training.kernels),
# 2 threads — LoRA 128 of 222 GFLOP/s, a full fine-tune 160 (bench/training/sft_speed.py; docs/performance.md,
# "Training", 2026-11-27, AMD EPYC with AVX-512; the demo's own 50 steps ran at 64%).
CPU_EFFICIENCY = {"full": 0.72, "lora": 0.58}
FLOPS_PER_TOKEN = {"full": 6.0, "lora": 4.0}
QUICK_S, FULL_S = 0.05, 0.3  # how long the peak is measured: first, and again for a long run
LONG_RUN_S = 60.0  # a run predicted to take this long gets the longer measurement


def matmul_peak_gflops(size: int = 1024, seconds: float = FULL_S) -> float:
    """fp32 GFLOP/s of ``size`` x ``size`` matrix products on this machine with torch's threads, best of a loop of
    ``seconds`` (at least one product after the first, which warms up)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best, deadline = 0.0, time.perf_counter() + seconds
    while best == 0.0 or time.perf_counter() < deadline:
        started = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best


def training_flops(tokens: int, params: int, lora: bool) -> float:
    """FLOPs of training ``params`` parameters on ``tokens`` tokens (see the module docstring)."""
    return FLOPS_PER_TOKEN[_kind(lora)] * params * tokens


def predicted_seconds(tokens: int, params: int, lora: bool, peak_gflops: float) -> float:
    """Wall time of the run at its kind's `CPU_EFFICIENCY` of the measured peak."""
    return training_flops(tokens, params, lora) / (CPU_EFFICIENCY[_kind(lora)] * peak_gflops * 1e9)


def _kind(lora: bool) -> str:
    return "lora" if lora else "full"


def parameter_count(model_dir: str) -> int | None:
    """Parameters stored in a model folder's safetensors files, read from their headers (no weights loaded); None
    for a hub id or a folder without safetensors."""
    import json
    import struct
    from pathlib import Path

    files = sorted(Path(model_dir).glob("*.safetensors")) if Path(model_dir).is_dir() else []
    total = 0
    for path in files:
        with path.open("rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for dim in entry["shape"]:
                    count *= dim
                total += count
    return total or None


def cpu_estimate(model_dir: str, tokens: float, lora: bool) -> str | None:
    """The plan's wall-time line for a CPU run: tokens, FLOPs, the peak measured now, the predicted time."""
    params = parameter_count(model_dir)
    if params is None or tokens <= 0:
        return None
    import torch

    peak = matmul_peak_gflops(seconds=QUICK_S)
    seconds = predicted_seconds(int(tokens), params, lora, peak)
    if seconds >= LONG_RUN_S:  # an estimate a user plans by: the longer measurement (the best of both)
        peak = max(peak, matmul_peak_gflops(seconds=FULL_S))
        seconds = predicted_seconds(int(tokens), params, lora, peak)
    kind = _kind(lora)
    return (
        f"estimate on this CPU: ~{tokens:,.0f} tokens x {FLOPS_PER_TOKEN[kind]:.0f} x "
        f"{params / 1e6:,.1f}M parameters = {training_flops(int(tokens), params, lora):.2e} FLOP; fp32 matmul peak "
        f"measured now {peak:,.0f} GFLOP/s on {torch.get_num_threads()} threads; at {CPU_EFFICIENCY[kind]:.0%} of it "
        f"({'LoRA' if lora else 'a full fine-tune'}, as measured) about {seconds / 60:.1f} min"
    )
