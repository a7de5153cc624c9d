"""Benchmark: our grader against math-verify 0.9.0 — accuracy on labelled sets, then speed.

Accuracy: for each labelled set of `bench/grader/grader_sets.py` (held-out parts and the dev set by default;
``--all`` adds the tuning parts), both graders grade every row and the table prints right/n, accuracy,
false positives (a wrong answer accepted) and false negatives, and, per set, pairs/s, the p99 of this thread's
CPU time per pair and the longest single call (wall clock), which the contract bounds by the call's limit
(`LIMIT_S`) plus 1 s; the speed-up over math-verify per set and over all rows follows. Our grader gets the
problem text where the row has one (``grade(gold, response, problem=...)``); math-verify has no such input.
Bare answers are wrapped in ``$...$`` for math-verify as its docs advise; responses go to its default
extraction. A peer suite's case (set ``peer``) is graded as its test runs it: math-verify with the test's match types
and comparison options, limo with the same comparison options (`bench.grader.grader_sets.grade_options`); when ``peer``
is measured, a table by suite follows (right and false positives per suite, all parts together).

Speed: both graders in this one process, warm (imports done, one throw-away pair each; parse caches cleared
before each timed pass), one pair at a time, on the dev set, on dev + the round-1 grader cases, and on the
issue-12 forms + CHAMP summaries (graded with their problem text, all parts). Prints
pairs/s, p50/p99/max wall-clock latency, the p99 of this thread's CPU time per pair, and timeouts. On a
shared machine the wall clock also counts time the scheduler gave to other processes and CPU time does
not; CPU time misses what the symbolic worker subprocess spends, so the pairs sent there are counted.
Data: ``$LIMO_SHARED_DATA`` or ``<repo>/../shared/data``. ``--misses SET`` lists our wrong verdicts on a
set's tuning part (never the held-out part: that one stays out of tuning).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.grader.grader_sets import SETS, Row, build, data_dir, grade_options, peer_dir, peer_options  # noqa: E402
from eval.answers.extract import is_prose  # noqa: E402
from eval.grading.grader import grade  # noqa: E402

LIMIT_S = 2.0  # grade's default time limit: no call may take longer than this plus 1 s
ACCURACY_SETS = (
    "forms",
    "champ",
    "champ_r3",
    "champ_r4",
    "olympiad",
    "numeric",
    "r4",
    "peer_style",
    "peer_fixes",
    "peer",
    "math_own",
    "math_styles",
    "cases",
)
WORKER_PAIRS: list[str] = []  # pairs our grader sent to the symbolic worker subprocess


def _ours(row: Row) -> tuple[bool, bool]:
    verdict = grade(
        row["gold"], row["candidate"], problem=row.get("problem"), timeout_s=LIMIT_S, options=grade_options(row)
    )
    if verdict.status == "timeout" or verdict.reason.startswith(("latex parse", "math-verify")):
        WORKER_PAIRS.append(row.get("id", row["gold"][:40]))
    return verdict.correct, verdict.status == "timeout"


def _is_response(text: str) -> bool:
    return is_prose(text) or any(mark in text for mark in ("\\boxed", "$", "\\(", "\\[", "<|"))


def _math_verify() -> Callable[[Row], tuple[bool, bool]]:
    from math_verify import parse, verify

    def run(row: Row) -> tuple[bool, bool]:
        if row.get("set") == "peer":  # a peer suite's own case: math-verify as that test calls it
            return _math_verify_as_tested(row), False
        gold = parse(f"${row['gold']}$") or parse(row["gold"])
        cand = row["candidate"] if _is_response(row["candidate"]) else f"${row['candidate']}$"
        try:
            return bool(verify(gold, parse(cand))), False
        except TimeoutError:
            return False, True

    return run


def _math_verify_as_tested(row: Row) -> bool:
    """math-verify with the options its own test passes (``compare_strings``: match types, precision, strict, set
    against relation); a case from another suite gets ``compare_strings``'s defaults."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    options = peer_options(row)
    configs = {"latex": LatexExtractionConfig(boxed_match_priority=0), "expr": ExprExtractionConfig()}
    targets = [configs[m] for m in row["provenance"].get("options", {}).get("match_types", ["latex", "expr"])]
    try:
        return bool(
            verify(
                parse(row["gold"], targets),
                parse(row["candidate"], targets),
                float_rounding=options["precision"],
                strict=options["strict"],
                allow_set_relation_comp=options["allow_set_relation_comp"],
            )
        )
    except TimeoutError:
        return False


def _clear_caches() -> None:
    import eval.grading.grader as grader
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
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(rows) > 1 else [latencies[0]] * 99
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
        "cpu_p99_ms": (
            statistics.quantiles(cpu_times, n=100, method="inclusive")[98] if len(rows) > 1 else cpu_times[0]
        )
        * 1e3,
        "timeouts": timeouts,
    }


def accuracy_table(sets: dict[str, list[Row]], parts: tuple[str, ...], graders: dict) -> None:
    """One line per (set, part, grader): right/n, accuracy, false positives, false negatives, timeouts; then
    the held-out parts together, per grader (the audit: how often each grader accepts a wrong answer)."""
    columns = "| set | part | grader | right/n | acc | FP | FN | timeouts | pairs/s | p99 CPU ms | max ms |"
    print(columns + "\n|" + "---|" * 11)
    held: dict[str, list[int]] = {name: [0, 0, 0, 0] for name in graders}
    totals: dict[str, list[float]] = {name: [0, 0.0, 0.0] for name in graders}  # rows, seconds, longest call
    for set_name, rows in sets.items():
        for part in parts if set_name != "dev" else ("dev",):
            chosen = [r for r in rows if r["part"] == part]
            if not chosen:
                continue
            results = [measure(name, run, chosen) for name, run in graders.items()]
            for name, r in zip(graders, results, strict=True):
                print(
                    f"| {set_name} | {part} | {name} | {r['right']}/{r['n']} | {r['acc']:.4f} | {r['fp']} | "
                    f"{r['fn']} | {r['timeouts']} | {r['pairs_s']:.0f} | {r['cpu_p99_ms']:.2f} | {r['max_ms']:.0f} |",
                    flush=True,
                )
                totals[name][0] += r["n"]
                totals[name][1] += r["n"] / r["pairs_s"]
                totals[name][2] = max(totals[name][2], r["max_ms"] / 1e3)
                if part == "heldout" and set_name != "cases":  # the round-1 table was tuned on whole
                    for i, key in enumerate(("right", "n", "fp", "fn")):
                        held[name][i] += r[key]
            if len(results) == 2:
                print(
                    f"speed-up on {set_name} {part}: {results[0]['pairs_s'] / results[1]['pairs_s']:.1f}x", flush=True
                )
    for name, (right, n, fp, fn) in held.items():
        if n:
            print(
                f"held-out parts together, {name}: {right}/{n} = {right / n:.4f}, "
                f"false positives {fp}, false negatives {fn}"
            )
    for name, (n, seconds, longest) in totals.items():
        print(
            f"all rows, {name}: {n:.0f} pairs in {seconds:.1f} s = {n / seconds:.0f} pairs/s; "
            f"longest call {longest:.2f} s (limit {LIMIT_S:g} s + 1 s)"
        )
    if len(totals) == 2:
        (n0, s0, _), (n1, s1, _) = totals.values()
        print(f"speed-up over all rows: {(n0 / s0) / (n1 / s1):.1f}x")


def suite_table(rows: list[Row], graders: dict) -> None:
    """The peer suites by suite, all parts together: cases, then right and false positives per grader (each case
    graded as its test runs it)."""
    names = list(graders)
    counts: dict[str, list[int]] = {}
    for row in rows:
        results = [run(row)[0] for run in graders.values()]
        for suite in (row["provenance"]["suite"], "all"):
            c = counts.setdefault(suite, [0] * (1 + 2 * len(names)))
            c[0] += 1
            for i, ok in enumerate(results):
                c[1 + 2 * i] += ok == row["label"]
                c[2 + 2 * i] += ok and not row["label"]
    header = "| suite | cases | " + " | ".join(f"{n} right | {n} FP" for n in names) + " |"
    print(header + "\n|" + "---|" * (2 + 2 * len(names)))
    for suite in [*sorted(k for k in counts if k != "all"), "all"]:
        print(f"| {suite} | " + " | ".join(str(v) for v in counts[suite]) + " |", flush=True)


def speed_table(timed: dict[str, list[Row]], graders: dict) -> None:
    header = "| set | grader | right/n | acc | FP | FN | pairs/s | p50 ms | p99 ms | max ms | p99 CPU ms | timeouts |"
    print(header + "\n|" + "---|" * 12)
    for set_name, rows in timed.items():
        WORKER_PAIRS.clear()
        results = [measure(name, run, rows) for name, run in graders.items()]
        for r in results:
            print(
                f"| {set_name} | {r['grader']} | {r['right']}/{r['n']} | {r['acc']:.4f} | {r['fp']} | "
                f"{r['fn']} | {r['pairs_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | "
                f"{r['cpu_p99_ms']:.2f} | {r['timeouts']} |",
                flush=True,
            )
        print(
            f"speed-up on {set_name}: {results[0]['pairs_s'] / results[1]['pairs_s']:.1f}x; "
            f"limo pairs through the symbolic worker: {len(WORKER_PAIRS)}"
        )


def print_misses(rows: list[Row]) -> None:
    for row in (r for r in rows if r["part"] == "tune"):
        verdict = grade(row["gold"], row["candidate"], problem=row.get("problem"), options=grade_options(row))
        if verdict.correct != row["label"]:
            kind = "FP" if verdict.correct else "FN"
            print(f"{kind} {row['id']} gold={row['gold']!r} cand={row['candidate'][-300:]!r}")
            print(f"   -> {verdict.status} {verdict.extracted!r} {verdict.reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="also report the tuning parts")
    parser.add_argument("--sets", nargs="*", default=list(ACCURACY_SETS), choices=sorted(SETS))
    parser.add_argument("--misses", choices=sorted(SETS), help="list our misses on a set's tuning part and exit")
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()
    if not (data_dir() / "grading_pairs_dev.jsonl").is_file():
        sys.exit(
            f"bench/grader/grader.py: {data_dir()} has no grading_pairs_dev.jsonl; set LIMO_SHARED_DATA to the folder"
        )
    if args.misses:
        print_misses(build([args.misses])[args.misses])
        return
    graders = {"limo": _ours, "math-verify 0.9.0": _math_verify()}
    for run in graders.values():  # warm: imports and the symbolic worker's start, on pairs not in the sets
        run({"gold": "\\frac12", "candidate": "0.5", "label": True})
        run({"gold": "\\int_0^1 x\\,dx", "candidate": "\\lim_{n\\to\\infty} 1/n", "label": False})
    sets = build(["dev", *args.sets])
    if "peer" in sets and not sets["peer"]:
        print(f"peer: no peer-suite checkout under {peer_dir()} (see bench/grader/grader_sets.py); set left out")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    accuracy_table(sets, ("heldout", "tune") if args.all else ("heldout",), graders)
    if sets.get("peer"):
        suite_table(sets["peer"], graders)
    if not args.no_speed:
        more = build(["cases", "forms", "champ"])
        timed = {
            "dev": sets["dev"],
            "dev+cases": sets["dev"] + more["cases"],
            "forms+champ": more["forms"] + more["champ"],
        }
        speed_table(timed, graders)


if __name__ == "__main__":
    main()
