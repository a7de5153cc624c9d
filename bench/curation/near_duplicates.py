"""Near-duplicate recall of dedup on planted groups built from MATH train, and the clean problems it merges.

Usage: ``python bench/curation/near_duplicates.py [--data-dir ../shared/data] [--groups 600]``. The pool is every
MATH-train problem (with its gold) followed by planted groups: each of ``--groups`` seeded problems of 25+
words gets one or two variants (a group of 2 or 3), each with one or two words changed
(`tests.planted.change_words`) and the source's gold. A group is caught when at most one of its
members survives dedup; a pair (variant, source) when at most one of the two does. Recall is reported for
the tuning and the held-out halves of the groups (`tests.planted.split` of the source id) and by words
changed; the false merges are MATH-train problems dropped that were not planted (MATH has true duplicates
and template siblings: ``--show`` prints them with their golds to judge by hand).

Rules, measured in the same run: the baseline is the shingle-Jaccard threshold 0.8 alone (the rule before
this change); then 0.8 plus a lower threshold for pairs whose golds agree (`DedupOptions.same_answer_threshold`:
0.7, 0.6, 0.5, 0.4), and with their content tokens equal too (`same_content`: 0.6, 0.5); then thresholds
0.7 / 0.6 alone (what lowering the one threshold costs). Every rule keeps two problems whose numbers and golds
both differ apart (dedup precision) except the one with ``template: true``, the rule before that change.
``--rules NAME...`` runs only those rules (the baseline always runs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from curation.options import DedupOptions  # noqa: E402
from curation.stages.dedup import find_duplicates  # noqa: E402
from tests.planted import change_words, split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RULES = {
    "baseline: threshold 0.8": DedupOptions(same_answer_threshold=None),
    "0.8, same gold 0.5, template: true (before dedup precision)": DedupOptions(template=True),
    **{f"0.8, same gold {t}": DedupOptions(same_answer_threshold=t) for t in (0.7, 0.6, 0.5, 0.4)},
    **{
        f"0.8, same gold and content {t}": DedupOptions(same_answer_threshold=t, same_content=True) for t in (0.6, 0.5)
    },
    "threshold 0.7 alone": DedupOptions(threshold=0.7, same_answer_threshold=None),
    "threshold 0.6 alone": DedupOptions(threshold=0.6, same_answer_threshold=None),
}


def build_pool(data_dir: Path, groups: int, seed: int = 0):
    """MATH-train texts and golds, then the planted variants: ``{variant_id: (source_id, words_changed)}``."""
    rows = [json.loads(line) for line in (data_dir / "math_train.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = {row["id"]: row["problem"] for row in rows}
    answers = {row["id"]: row["answer"] for row in rows}
    rng = random.Random(seed)
    long_enough = [pid for pid, text in texts.items() if len(text.split()) >= 25]
    planted: dict[str, tuple[str, int]] = {}
    for number, source in enumerate(rng.sample(long_enough, groups)):
        for variant in range(1 + number % 2):
            changes = 1 + (number + variant) % 2
            planted[f"{source}~{variant}"] = (source, changes)
    for pid, (source, changes) in planted.items():
        texts[pid] = change_words(texts[source], changes, rng)
        answers[pid] = answers[source]
    return texts, answers, planted


def measure(found: dict[str, tuple[str, str]], planted: dict[str, tuple[str, int]]) -> dict:
    members: dict[str, list[str]] = defaultdict(list)
    cells: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pid, (source, changes) in planted.items():
        members[source].append(pid)
        cells[f"pairs, {changes} word(s) changed"][0] += int(pid in found or source in found)
        cells[f"pairs, {changes} word(s) changed"][1] += 1
    for source, variants in members.items():
        survivors = sum(1 for p in [source, *variants] if p not in found)
        cells[f"groups, {split(source)}"][0] += int(survivors <= 1)
        cells[f"groups, {split(source)}"][1] += 1
    clean = sorted(pid for pid in found if pid not in planted)
    return {"recall": dict(cells), "clean_merged": len(clean), "clean": clean}


def run(name: str, texts, answers, planted, options: DedupOptions) -> dict:
    started = time.perf_counter()
    found = find_duplicates(texts, options, answers=answers)
    seconds = time.perf_counter() - started
    result = {"seconds": round(seconds, 2), **measure(found, planted), "found": found}
    cells = ", ".join(f"{k} {c}/{n} ({c / n:.1%})" for k, (c, n) in sorted(result["recall"].items()))
    print(f"{name}: {seconds:.1f}s; {cells}; clean MATH-train problems merged: {result['clean_merged']}", flush=True)
    return result


def show(result: dict, baseline: dict, texts, answers) -> None:
    """The clean merges a rule adds over the baseline, with both texts and golds, to judge by hand."""
    for pid in sorted(set(result["clean"]) - set(baseline["clean"])):
        kept = result["found"][pid][1]
        print(f"- {pid} ({answers[pid]!r}) ~ {kept} ({answers[kept]!r})")
        print(f"    {texts[pid][:200]!r}\n    {texts[kept][:200]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("LIMO_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=default_data)
    parser.add_argument("--groups", type=int, default=600)
    parser.add_argument("--show", default=None, help="print the clean merges this rule adds over the baseline")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_near_duplicates")
    parser.add_argument("--rules", nargs="*", default=list(RULES), help="rule names to run (default: all)")
    args = parser.parse_args()
    if not (args.data_dir / "math_train.jsonl").is_file():
        sys.exit(f"bench/curation/near_duplicates.py: error: no math_train.jsonl in {args.data_dir} (pass --data-dir)")
    texts, answers, planted = build_pool(args.data_dir, args.groups)
    print(f"# near-duplicate bench, {platform.machine()} {platform.python_version()}: {len(texts)} problems, "
          f"{len(planted)} planted variants in {args.groups} groups", flush=True)  # fmt: skip
    chosen = {name: RULES[name] for name in ["baseline: threshold 0.8", *args.rules]}
    results = {name: run(name, texts, answers, planted, options) for name, options in chosen.items()}
    baseline = results["baseline: threshold 0.8"]
    for name, result in results.items():
        print(f"time {name} / baseline: x{result['seconds'] / baseline['seconds']:.2f}")
    if args.show:
        show(results[args.show], baseline, texts, answers)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {k: {key: v for key, v in r.items() if key != "found"} for k, r in results.items()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
