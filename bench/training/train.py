"""Benchmark: padding-free packing against padded batches, non-padding tokens per second, tiny model on CPU.

Data: a CHAMP-curated-like length distribution — CHAMP human solutions plus unaided model solutions
whose final summary our grader marks correct (`curation.champ.load_champ_pool`, `eval.grading.grader.grade`),
a seeded sample of them, chat-templated with the LIMO system prompt and tokenized with the tiny tokenizer.
Every variant runs one epoch over the same examples through the real TRL `SFTTrainer` (assistant-only
loss, fp32, one process): padded batches of ``BATCH`` examples in random order, the same with
transformers' length-grouped sampler, and BFD packing into padding-free rows of each of ``PACK_LENGTHS``
tokens (TRL's ``packing=True, packing_strategy="bfd"``: position ids restart per example, so examples do
not attend to each other; the smallest pack holds the longest example). Throughput = non-padding tokens
(the prepared dataset's token count, the same for every variant) / wall time of ``trainer.train()``;
each variant runs ``REPEATS`` times, interleaved, and the best run counts, since the machine is shared.
The GPU half (a Qwen2.5-1.5B-shaped model at 16k, MFU, Liger kernels) needs a GPU and is recorded as
pending in docs/performance.md.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE, BATCH, PACK_LENGTHS, REPEATS, SEED = 64, 8, (3072, 6144), 3, 0
VARIANTS = {
    "padded (random order)": {},
    "padded, length-grouped sampler": {"train_sampling_strategy": "group_by_length"},
    **{
        f"packed into {n} (padding-free, BFD)": {"packing": True, "packing_strategy": "bfd", "max_length": n}
        for n in PACK_LENGTHS
    },
}
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


def champ_like_examples() -> list[dict]:
    """Human chains + unaided model chains graded correct, as chat rows (seeded sample of ``SAMPLE``)."""
    from curation.pool.champ import UNAIDED_SETTINGS, load_champ_pool
    from eval.grading.grader import grade

    pool = load_champ_pool()
    problems = {p.id: p for p in pool.problems}
    chains = list(pool.human_chains)
    for chain in pool.model_chains:
        if chain.prompt_setting in UNAIDED_SETTINGS and chain.final_answer and not chain.truncated:
            if grade(problems[chain.problem_id].answer, chain.final_answer).correct:
                chains.append(chain)
    random.Random(SEED).shuffle(chains)
    rows = []
    for chain in chains[:SAMPLE]:
        problem = problems[chain.problem_id]
        answer = chain.text.strip() + "\n\nThe final answer is $\\boxed{" + problem.answer + "}$."
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": problem.problem}]
        rows.append({"messages": [*messages, {"role": "assistant", "content": answer}]})
    return rows, len(chains)


def run_variant(model_dir: Path, rows: list[dict], variant: dict, out: Path) -> dict:
    from transformers import AutoTokenizer

    from limo.training import build

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    packed = bool(variant.get("packing"))
    args = {
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "learning_rate": 1e-4,
        "num_train_epochs": 1,
        "logging_strategy": "no",
        "save_strategy": "no",
        "max_length": max(PACK_LENGTHS),
        "per_device_train_batch_size": 1 if packed else BATCH,
        "disable_tqdm": True,
        **variant,
    }
    sft = build.build_sft_config(
        build.build_sft_args(
            args,
            (args["per_device_train_batch_size"], 1),
            train_dir=str(out),
            seed=SEED,
            model_cfg={"dtype": "float32"},
            deepspeed=None,
            accelerator_config=None,
            on_cpu=True,
        )
    )
    trainer = build.build_trainer(
        "sft",
        model_path=str(model_dir),
        tokenizer=tokenizer,
        sft_config=sft,
        dataset=build.build_dataset(rows),
        peft_config=None,
    )
    started = time.perf_counter()
    result = trainer.train()
    elapsed = time.perf_counter() - started
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])  # packed rows hold no padding
    return {"steps": result.global_step, "tokens": tokens, "seconds": elapsed, "tokens_per_s": tokens / elapsed}


def main() -> None:
    from limo.models.tiny import build_tiny_model, build_tokenizer
    from limo.training.data import percentile, token_lengths

    rows, pool_size = champ_like_examples()
    lengths = sorted(token_lengths(build_tokenizer(), rows))
    in_order = token_lengths(build_tokenizer(), rows)
    padded = sum(max(in_order[i : i + BATCH]) * len(in_order[i : i + BATCH]) for i in range(0, len(rows), BATCH))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, {time.strftime('%Y-%m-%d')}"
    )
    print(
        f"data: {len(rows)} of {pool_size} CHAMP chains (human + unaided graded correct); tokens/example "
        f"mean {statistics.mean(lengths):.0f}, p50 {percentile(lengths, 0.5)}, p90 {percentile(lengths, 0.9)}, "
        f"max {lengths[-1]}"
    )
    print(f"padded batches of {BATCH} in file order: {1 - sum(lengths) / padded:.0%} of the positions are padding")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny")
        best: dict[str, dict] = {}
        for repeat in range(REPEATS):
            for index, (name, variant) in enumerate(VARIANTS.items()):
                result = run_variant(model_dir, rows, variant, Path(tmp) / f"v{index}r{repeat}")
                if name not in best or result["tokens_per_s"] > best[name]["tokens_per_s"]:
                    best[name] = result
    print("\n| variant | optimizer steps | non-padding tokens | seconds | non-padding tokens/s |")
    print("|---|---|---|---|---|")
    for name, r in best.items():
        print(f"| {name} | {r['steps']} | {r['tokens']:,} | {r['seconds']:.2f} | {r['tokens_per_s']:,.0f} |")
    print()
    for name, r in best.items():
        baseline = best["padded (random order)"]["tokens_per_s"]
        if r["tokens_per_s"] != baseline:
            print(f"{name} / padded (random order) throughput: {r['tokens_per_s'] / baseline:.2f}x")


if __name__ == "__main__":
    main()
