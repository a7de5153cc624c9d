"""Decontamination quality: recall on planted benchmark problems, false positives on a clean pool.

Usage: ``python bench/curation/decontam.py [--data-dir ../shared/data] [--out outputs/bench_decontam]``. Built at
run time from the shared data folder (no rows are stored in the repository):

- the pool is every MATH-train problem (clean against AIME 2024/2025 and AMC 2023, which it predates)
  plus each MATH500 / AIME / AMC problem planted in six forms (`tests.planted`): verbatim, reworded,
  affixed, reworded+affixed, and the two reworded forms again with the held-out rewording table;
- recall = planted rows dropped as their own benchmark item; reported for the tuning and the held-out
  half of the items (`tests.planted.split`);
- false positives = MATH-train rows dropped as AIME/AMC (should be 0); MATH-train rows dropped as
  MATH500 are written to ``math500_overlaps.jsonl`` for review (real overlaps exist);
- CHAMP: the pool's 270 problems against ``champ_heldout`` (54 of them).

The baseline, measured in the same run, is the previous rule (`baseline_contamination`): the item sharing
the most word 8-grams if at least two, else a short text's best character 8-gram match at containment
0.6; no boilerplate weighting, no whole-problem confirmation. ``--set KEY=VALUE`` tries other
`DecontamOptions` for the current rule.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from curation.options import DecontamOptions  # noqa: E402
from curation.stages.decontam import (  # noqa: E402
    Contamination,
    ContaminationIndex,
    DecontamResult,
    build_index,
    find_contamination,
    load_benchmark_items,
)
from eval.benchmarks.loader import BenchmarkSpec  # noqa: E402
from tests.planted import HELD_OUT_SWAPS, PLANT_KINDS, SWAPS, plant, split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = ("math500", "aime24", "aime25", "amc23")
CLEAN_AGAINST = ("aime24", "aime25", "amc23")
FORMS = [(kind, "tuned", SWAPS) for kind in PLANT_KINDS] + [
    (kind, "held-out table", HELD_OUT_SWAPS) for kind in ("reworded", "reworded+affixed")
]
BASELINE = {"ngram": 8, "char_ngram": 8, "short_containment": 0.6}


def specs() -> dict[str, BenchmarkSpec]:
    from limo.cli.compose import compose

    return {n: BenchmarkSpec.from_dict(dict(s)) for n, s in compose("champ").benchmark_specs.items()}


def build_pool(data_dir: Path, items: list, seed: int = 0) -> tuple[dict[str, str], dict[str, tuple]]:
    """MATH-train problems plus every planted form of every benchmark item; returns texts and plant keys."""
    texts = {}
    for line in (data_dir / "math_train.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts[row["id"]] = row["problem"]
    planted = {}
    rng = random.Random(seed)
    for item in items:
        for kind, table, swaps in FORMS:
            pid = f"plant/{table}/{kind}/{item.benchmark}/{item.id}"
            texts[pid] = plant(item.text, kind, rng, swaps)
            planted[pid] = (item.benchmark, item.id, kind, table, split(item.id))
    return texts, planted


def recall(result: DecontamResult, planted: dict[str, tuple]) -> dict[str, dict[str, list[int]]]:
    """``{form: {split: [caught, planted]}}``; caught means dropped as its own benchmark item."""
    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for pid, (benchmark, item_id, kind, swaps, half) in planted.items():
        hit = result.matches.get(pid)
        cell = table[f"{kind} ({swaps})"][half]
        cell[0] += int(hit is not None and (hit.benchmark, hit.item_id) == (benchmark, item_id))
        cell[1] += 1
    return table


def clean_hits(result: DecontamResult, texts: dict[str, str]) -> dict[str, dict[str, int]]:
    """MATH-train rows dropped, by benchmark and by half of the clean pool."""
    table: dict[str, dict[str, int]] = defaultdict(Counter)
    for pid, hit in result.matches.items():
        if pid.startswith("math_train/"):
            table[hit.benchmark][split(pid)] += 1
    return table


def run(options: DecontamOptions, items: list, texts: dict[str, str]) -> tuple[DecontamResult, float]:
    started = time.perf_counter()
    finder = baseline_contamination if options.max_candidates == 0 else find_contamination
    result = finder(texts, build_index(items, options))
    return result, time.perf_counter() - started


def baseline_contamination(texts: dict[str, str], index: ContaminationIndex) -> DecontamResult:
    """The previous rule: the item sharing the most word 8-grams, if at least two; else the best character
    match of a short text (containment 0.6); no boilerplate weighting, no confirmation."""
    matches = {}
    for pid, text in texts.items():
        scan = index.scan(text)
        shared = Counter(item for gram in scan.grams for item in index.gram_items[gram])
        best = min(shared.items(), key=lambda kv: (-kv[1], kv[0]), default=None)
        if best and best[1] >= 2:
            matches[pid] = _hit(index, best[0], "word_ngram", best[1])
        elif scan.chars:
            item, coverage = max(scan.chars, key=lambda c: (c[1], -c[0]))
            matches[pid] = _hit(index, item, "char_ngram", coverage)
    return DecontamResult(matches, [], len(matches), [])


def _hit(index: ContaminationIndex, item: int, method: str, evidence: float) -> Contamination:
    return Contamination(index.items[item].benchmark, index.items[item].id, method, evidence, (), 0.0, 0.0)


def champ_case(options: DecontamOptions, all_specs: dict[str, BenchmarkSpec]) -> dict[str, int]:
    from eval.benchmarks.champ import load_champ_problems

    champ_options = replace(options, benchmarks=("champ_heldout",), data_dir=None)
    held, _ = load_benchmark_items(("champ_heldout",), all_specs, champ_options)
    result, _ = run(champ_options, held, {p.id: p.problem for p in load_champ_problems()})
    own = sum(1 for pid, hit in result.matches.items() if pid == hit.item_id)
    return {"held_out": len(held), "dropped": len(result.matches), "dropped_as_themselves": own}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("LIMO_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=default_data)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_decontam")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="DecontamOptions to try")
    args = parser.parse_args()
    if not (args.data_dir / "math_train.jsonl").is_file():
        sys.exit(f"bench/curation/decontam.py: error: no math_train.jsonl in {args.data_dir} (pass --data-dir)")
    all_specs = specs()
    overrides = dict(pair.split("=", 1) for pair in args.set)
    defaults = DecontamOptions()
    options = DecontamOptions(
        benchmarks=BENCHMARKS,
        data_dir=str(args.data_dir),
        **{key: type(getattr(defaults, key))(value) for key, value in overrides.items()},
    )
    items, _ = load_benchmark_items(BENCHMARKS, all_specs, options)
    texts, planted = build_pool(args.data_dir, items)
    print(f"# decontam bench, {platform.machine()} {platform.python_version()}, pool {len(texts)} problems "
          f"({len(planted)} planted), {len(items)} benchmark items", flush=True)  # fmt: skip
    summary = {}
    baseline = replace(options, **BASELINE, max_candidates=0)  # max_candidates=0 selects the previous rule
    for name, opts in (("baseline", baseline), ("current", options)):
        result, seconds = run(opts, items, texts)
        summary[name] = report(name, result, seconds, texts, planted, champ_case(opts, all_specs))
    print(f"time current / baseline: x{summary['current']['seconds'] / summary['baseline']['seconds']:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    write_overlaps(args.out / "math500_overlaps.jsonl", result, texts, items)


def report(name: str, result: DecontamResult, seconds: float, texts, planted, champ) -> dict:
    table, clean = recall(result, planted), clean_hits(result, texts)
    print(f"\n## {name}: {seconds:.1f}s; {result.notes()}")
    print("| planted form | recall (tuning half) | recall (held-out half) |\n|---|---|---|")
    for form, halves in table.items():
        cells = [f"{c}/{n} ({c / n:.1%})" for c, n in (halves["tune"], halves["held_out"])]
        print(f"| {form} | {cells[0]} | {cells[1]} |")
    math_rows = sum(1 for p in texts if p.startswith("math_train/"))
    for benchmark, halves in sorted(clean.items()):
        print(f"MATH-train rows dropped as {benchmark}: {sum(halves.values())} of {math_rows} {dict(halves)}")
    false_positives = sum(sum(clean.get(b, {}).values()) for b in CLEAN_AGAINST)
    print(f"false positives against AIME/AMC: {false_positives} of {math_rows}; CHAMP: {champ}")
    return {"seconds": round(seconds, 2), "notes": result.notes(), "recall": table, "clean": clean,
            "false_positives_aime_amc": false_positives, "champ": champ}  # fmt: skip


def write_overlaps(path: Path, result: DecontamResult, texts: dict[str, str], items: list) -> None:
    by_key = {(i.benchmark, i.id): i.text for i in items}
    rows = [
        {"problem_id": pid, **hit.to_dict(), "problem": texts[pid], "item": by_key[(hit.benchmark, hit.item_id)]}
        for pid, hit in sorted(result.matches.items())
        if pid.startswith("math_train/")
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} MATH-train rows dropped by the current rule written to {path} for review")


if __name__ == "__main__":
    main()
