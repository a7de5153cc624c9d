"""LIMO's whole evaluation suite through `limo.evaluate`, replayed from each file's own golds.

Usage: ``python bench/generation/limo_suite.py [--data-dir ../shared/data] [--out outputs/bench_limo_suite]
[--tiny-limit 10]``.

Three runs of ``benchmarks=[limo_suite]`` with the ``demo`` recipe, one sample per problem:

1. **gold replay**: every response is ``\\boxed{<the problem's gold>}`` — for a multiple-choice problem the
   text of the right option as it was presented (shuffled), so the option-text path is exercised; every
   verdict must be ``correct``;
2. **shifted replay**: every response is the gold of the next problem in the file whose gold is a
   different string (and neither contains the other) — for a multiple-choice problem the letter after the
   right one; every verdict must be ``incorrect`` or ungradable: a ``correct`` is a false positive;
3. **tiny model**: the hf backend with the tiny random model on CPU (``max_new_tokens`` 64, the first
   ``--tiny-limit`` problems of each benchmark): the wall time of generation plus grading.

Printed: per benchmark the problems, the grader's accuracy on the gold replay, the false positives on the
shifted one, the ungradable counts, and each run's wall time; exit status 1 if a gold is not graded
correct or a shifted gold is graded correct. Replay files are built from the requests the runner itself
makes (`eval.run.runner.build_requests`), so the presented option order is the run's.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, not bench/, first

from eval.records import write_jsonl  # noqa: E402
from eval.run.runner import build_requests  # noqa: E402
from limo.cli.compose import compose  # noqa: E402
from limo.evaluate import evaluate, runtime_argv  # noqa: E402
from limo.setup.evaluate import build_benchmarks, build_evaluate_options, build_prompt, build_protocols  # noqa: E402

LETTERS = "ABCDEFGH"


def _squash(text: str) -> str:
    return re.sub(r"\s|\$|\\[,;!]|\\left|\\right", "", text).rstrip(".．。")


def _shifted(golds: list[str], i: int) -> str:
    """The next gold (cyclically) that is a different string and neither contains the other."""
    mine = _squash(golds[i])
    for step in range(1, len(golds)):
        other = _squash(golds[(i + step) % len(golds)])
        if other and other != mine and other not in mine and mine not in other:
            return golds[(i + step) % len(golds)]
    raise ValueError(f"no different gold for row {i}")


def replay_rows(common: list[str], shifted: bool) -> dict[str, list[dict[str, Any]]]:
    """Per suite benchmark, one replay row per request (samples=1), made from the golds."""
    cfg = compose("demo", runtime_argv(common))
    section = build_evaluate_options(cfg)
    benchmarks = build_benchmarks(cfg, section)
    files = {}
    for benchmark, protocol in zip(benchmarks, build_protocols(cfg, section, benchmarks), strict=True):
        golds = [p.answer for p in benchmark.problems]
        requests = build_requests(
            benchmark.problems, protocol, build_prompt(section), answer_kind=benchmark.answer_kind
        )
        index = {p.id: i for i, p in enumerate(benchmark.problems)}
        rows = []
        for request in requests:
            meta, i = request.meta, index[request.meta["problem_id"]]
            if "gold" in meta:  # multiple choice as presented
                gold, options = meta["gold"], meta.get("options") or []
                if shifted:
                    answer = LETTERS[(LETTERS.index(gold[0]) + 1) % max(len(options), 4)]
                else:
                    answer = options[LETTERS.index(gold)] if options and len(gold) == 1 else gold
            else:
                answer = _shifted(golds, i) if shifted else golds[i]
            rows.append({"request_id": request.id, "text": f"The final answer is \\boxed{{{answer}}}."})
        files[benchmark.name] = rows
    return files


def run(common: list[str], out: Path, extra: list[str]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    evaluate(compose("demo", runtime_argv([*common, f"output_dir={out}", *extra])))
    seconds = time.perf_counter() - start
    return seconds, json.loads((out / "eval" / "suite.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", default="outputs/bench_limo_suite")
    parser.add_argument("--tiny-limit", type=int, default=10, help="problems per benchmark for the tiny model; 0: all")
    args = parser.parse_args()
    out = Path(args.out)
    common = ["benchmarks=[limo_suite]", f"data_dir={args.data_dir}", "evaluate.protocol.samples=1"]
    results: dict[str, Any] = {"machine": f"{platform.machine()} {platform.processor()}", "python": sys.version}
    tables = {}
    for name, shifted in (("gold", False), ("shifted", True)):
        for bench, rows in replay_rows(common, shifted).items():
            write_jsonl(out / f"replay_{name}" / f"{bench}.jsonl", rows)
        path = out / f"replay_{name}" / "{benchmark}.jsonl"  # one file per benchmark: ids repeat across them
        backend = ["evaluate.backend=replay", f"evaluate.backend_options={{path: '{path}'}}"]
        seconds, suite = run(common, out / name, backend)
        results[f"{name}_seconds"] = round(seconds, 1)
        tables[name] = {row["benchmark"]: row for row in suite["benchmarks"]}
    tiny = ["evaluate.model_path=null", "evaluate.protocol.max_new_tokens=64"]
    tiny += [f"limit={args.tiny_limit}"] if args.tiny_limit > 0 else []  # 0: every problem
    seconds, suite = run(common, out / "tiny", tiny)
    results["tiny_seconds"], results["tiny_limit"] = round(seconds, 1), args.tiny_limit
    results["tiny_rows"] = sum(r["problems"] for r in suite["benchmarks"])
    print(
        "| benchmark | problems | gold replay graded correct | shifted graded correct (false positives) "
        "| ungradable (gold / shifted) |"
    )
    print("|---|---|---|---|---|")
    failed = False
    for bench, row in tables["gold"].items():
        shifted = tables["shifted"][bench]
        false_positives = round(shifted["pass@1"] * shifted["problems"] / 100)
        failed |= row["pass@1"] < 100.0 or false_positives > 0
        print(
            f"| {bench} | {row['problems']} | {row['pass@1']:.1f}% | {false_positives} "
            f"| {row['ungradable']} / {shifted['ungradable']} |"
        )
        results[bench] = {
            "problems": row["problems"],
            "gold_pass@1": row["pass@1"],
            "false_positives": false_positives,
            "ungradable_shifted": shifted["ungradable"],
        }
    print(
        f"\nwall time: gold replay {results['gold_seconds']} s, shifted replay {results['shifted_seconds']} s, "
        f"tiny model ({results['tiny_rows']} problems, 64 new tokens) {results['tiny_seconds']} s"
    )
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
