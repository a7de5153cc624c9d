"""Benchmark: our grader against math-verify 0.9.0 on the dev set, and on dev set + grader cases together.

Both run in this one process, warm (imports done, one throw-away pair each; parse caches cleared before
each timed pass), one pair at a time. Bare answers are wrapped in ``$...$`` for math-verify as its docs
advise; full outputs go to its default extraction. Prints accuracy, false positives/negatives, pairs/s,
p50/p99/max wall-clock latency, the p99 of this thread's CPU time per pair, and timeouts. On a shared
machine the wall clock also counts time the scheduler gave to other processes and CPU time does not; CPU
time misses what the symbolic worker subprocess spends, so the number of pairs sent there is printed.
Data: ``$LIMO_SHARED_DATA`` or ``<repo>/../shared/data``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eval.grader import grade  # noqa: E402

Row = dict


def _data_dir() -> Path:
    return Path(os.environ.get("LIMO_SHARED_DATA", REPO.parent / "shared" / "data"))


def _load() -> tuple[list[Row], list[Row]]:
    dev_path = _data_dir() / "grading_pairs_dev.jsonl"
    if not dev_path.is_file():
        sys.exit(f"bench/grader.py: {dev_path} not found; set LIMO_SHARED_DATA to the folder holding it")
    dev = [json.loads(line) for line in dev_path.read_text().splitlines() if line.strip()]
    cases_path = REPO / "tests" / "assets" / "grader_cases.jsonl"
    cases = [dict(json.loads(line), candidate_kind="answer") for line in cases_path.read_text().splitlines()]
    return dev, cases


WORKER_PAIRS: list[str] = []  # pairs our grader sent to the symbolic worker subprocess


def _ours(row: Row) -> tuple[bool, bool]:
    verdict = grade(row["gold"], row["candidate"])
    if verdict.status == "timeout" or verdict.reason.startswith("latex parse"):
        WORKER_PAIRS.append(row.get("id", row["gold"][:40]))
    return verdict.correct, verdict.status == "timeout"


def _math_verify() -> Callable[[Row], tuple[bool, bool]]:
    from math_verify import parse, verify

    def run(row: Row) -> tuple[bool, bool]:
        gold = parse(f"${row['gold']}$") or parse(row["gold"])
        cand = row["candidate"] if row.get("candidate_kind") == "full_output" else f"${row['candidate']}$"
        try:
            return bool(verify(gold, parse(cand))), False
        except TimeoutError:
            return False, True

    return run


def _clear_caches() -> None:
    import eval.grader as grader
    from eval.grading import compare, plain_parse

    for cached in (plain_parse.parse_plain, grader._gold_answers, grader._squash, compare.scalar_outcome):
        cached.cache_clear()


def measure(name: str, run: Callable[[Row], tuple[bool, bool]], rows: list[Row]) -> dict:
    """Grade `rows` one by one with `run`; return the table row."""
    _clear_caches()
    latencies, cpu_times, right, fp, fn, timeouts = [], [], 0, 0, 0, 0
    start = time.perf_counter()
    for row in rows:
        t0, c0 = time.perf_counter(), time.thread_time()
        ok, timed_out = run(row)
        latencies.append(time.perf_counter() - t0)
        cpu_times.append(time.thread_time() - c0)
        right += ok == row["label"]
        fp += ok and not row["label"]
        fn += row["label"] and not ok
        timeouts += timed_out
    total = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {
        "grader": name,
        "n": len(rows),
        "right": right,
        "acc": right / len(rows),
        "fp": fp,
        "fn": fn,
        "pairs_s": len(rows) / total,
        "p50_ms": q[49] * 1e3,
        "p99_ms": q[98] * 1e3,
        "max_ms": max(latencies) * 1e3,
        "cpu_p99_ms": statistics.quantiles(cpu_times, n=100)[98] * 1e3,
        "timeouts": timeouts,
    }


def main() -> None:
    dev, cases = _load()
    graders = {"limo": _ours, "math-verify 0.9.0": _math_verify()}
    for run in graders.values():  # warm: imports and the symbolic worker's start, on pairs not in the sets
        run({"gold": "\\frac12", "candidate": "0.5", "label": True})
        run({"gold": "\\int_0^1 x\\,dx", "candidate": "\\lim_{n\\to\\infty} 1/n", "label": False})
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    header = "| set | grader | right/n | acc | FP | FN | pairs/s | p50 ms | p99 ms | max ms | p99 CPU ms | timeouts |"
    print(header + "\n|" + "---|" * 12)
    for set_name, rows in (("dev", dev), ("dev+cases", dev + cases)):
        WORKER_PAIRS.clear()
        results = [measure(name, run, rows) for name, run in graders.items()]
        for r in results:
            print(
                f"| {set_name} | {r['grader']} | {r['right']}/{r['n']} | {r['acc']:.4f} | {r['fp']} | "
                f"{r['fn']} | {r['pairs_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | "
                f"{r['cpu_p99_ms']:.2f} | {r['timeouts']} |"
            )
        print(
            f"speed-up on {set_name}: {results[0]['pairs_s'] / results[1]['pairs_s']:.1f}x; "
            f"limo pairs through the symbolic worker: {len(WORKER_PAIRS)}"
        )


if __name__ == "__main__":
    main()
