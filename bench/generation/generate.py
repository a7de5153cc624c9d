"""Benchmark: hf backend throughput, batched (8 rows per ``generate``) against one row at a time.

Both passes run in this one process on the same tiny model (built in a temporary folder), the same 32
requests (temperature 0.7, per-row seeds) and the same lengths, warm (one throw-away call first). The
report is a ratio measured in the same run, plus a check that both passes returned identical text (the
per-row sampler makes batching irrelevant to the output). A third pass times plain ``model.generate``
with transformers' own sampler at batch 8, to show what the per-row seeded sampler costs.
vLLM against hf needs a GPU and is not measured here.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from eval.backends.base import GenerationRequest, SamplingParams, row_seed  # noqa: E402

ROWS, NEW_TOKENS, BATCH = 32, 64, 8


def requests() -> list[GenerationRequest]:
    sampling = SamplingParams(temperature=0.7, top_p=0.95, max_new_tokens=NEW_TOKENS)
    return [
        GenerationRequest(
            f"p{i}#0",
            ({"role": "user", "content": f"Problem {i}: what is {i} + {i}?"},),
            sampling,
            row_seed(0, f"p{i}", 0),
        )
        for i in range(ROWS)
    ]


def timed(backend, batch_size: int, rows: list[GenerationRequest]) -> tuple[float, list]:
    backend.batch_size = batch_size
    started = time.perf_counter()
    out = backend.generate(rows)
    return time.perf_counter() - started, out


def plain_generate(backend, rows: list[GenerationRequest]) -> float:
    """transformers' own sampling at batch 8 (no per-row generators), same prompts and lengths."""
    import torch

    prompts = [backend.render(r) for r in rows]
    started = time.perf_counter()
    for start in range(0, len(prompts), BATCH):
        enc = backend.tokenizer(prompts[start : start + BATCH], return_tensors="pt", padding=True)
        with torch.inference_mode():
            backend.model.generate(
                **enc,
                do_sample=True,
                temperature=0.7,
                top_p=0.95,
                max_new_tokens=NEW_TOKENS,
                min_new_tokens=NEW_TOKENS,
            )
    return time.perf_counter() - started


def main() -> None:
    import torch

    from eval.backends.hf import HFBackend
    from limo.models.tiny import build_tiny_model

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        backend = HFBackend(str(build_tiny_model(Path(folder) / "tiny")), device="cpu")
        rows = requests()
        timed(backend, BATCH, rows[:BATCH])  # warm-up
        batched_s, batched = timed(backend, BATCH, rows)
        single_s, single = timed(backend, 1, rows)
        plain_s = plain_generate(backend, rows)
    tokens = sum(g.num_tokens for g in batched)
    identical = [g.text for g in batched] == [g.text for g in single]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch threads 1"
    )
    print(f"{ROWS} rows x {NEW_TOKENS} new tokens (tiny Qwen2, hidden 64), {tokens} tokens per pass")
    print("| pass | seconds | tokens/s |\n|---|---|---|")
    print(f"| hf backend, batch {BATCH} | {batched_s:.2f} | {tokens / batched_s:.0f} |")
    print(f"| hf backend, batch 1 | {single_s:.2f} | {tokens / single_s:.0f} |")
    print(f"| plain model.generate sampling, batch {BATCH} | {plain_s:.2f} | {ROWS * NEW_TOKENS / plain_s:.0f} |")
    print(f"batched / one-at-a-time speed-up: {single_s / batched_s:.2f}x")
    print(f"per-row sampler cost vs transformers sampling at batch {BATCH}: {batched_s / plain_s:.2f}x the time")
    print(f"identical responses at batch {BATCH} and batch 1: {identical}")
    if not identical:
        sys.exit("bench/generation/generate.py: batched and one-at-a-time responses differ")


if __name__ == "__main__":
    main()
