"""Near-duplicate recall of dedup on planted pairs built from MATH train, against the previous settings.

Usage: ``python bench/near_duplicates.py [--data-dir ../shared/data] [--plants 600]``. The pool is every
MATH-train problem followed by one variant of each of ``--plants`` seeded problems of 25+ words, with one
or two words changed (`curation.planted.change_words`; half each). A pair is caught when at most one of
its two problems survives dedup (MATH train has near-duplicates of its own: a source may go first).
Recall is reported for pairs whose exact word-shingle Jaccard is at or above the threshold (the
documented standard: should be 100%) and below it, for the tuning and held-out halves
(`curation.planted.split`), with the MATH-train problems merged that were not planted, for the current
rule (LSH bands from `curation.dedup.lsh_bands`, exact Jaccard on candidates) and the baseline measured
in the same run (datasketch's default bands, MinHash-estimated Jaccard), then for thresholds
0.8 / 0.7 / 0.6 with the current rule.
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
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.dedup import (  # noqa: E402
    _SCHEME,
    _set_shingling,
    find_duplicates,
    jaccard,
    minhash_signature,
    normalize_text,
    word_shingles,
)
from curation.options import DedupOptions  # noqa: E402
from curation.planted import change_words, split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build_pool(data_dir: Path, plants: int, seed: int = 0) -> tuple[dict[str, str], dict[str, tuple[str, int]]]:
    """MATH-train problems, then the planted variants: ``{variant_id: (source_id, words_changed)}``."""
    rows = [json.loads(line) for line in (data_dir / "math_train.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = {row["id"]: row["problem"] for row in rows}
    rng = random.Random(seed)
    long_enough = [pid for pid, text in texts.items() if len(text.split()) >= 25]
    planted = {}
    for number, source in enumerate(rng.sample(long_enough, plants)):
        changes = 1 + number % 2
        planted[f"{source}~{changes}"] = (source, changes)
    texts.update({pid: change_words(texts[source], changes, rng) for pid, (source, changes) in planted.items()})
    return texts, planted


def baseline_near_duplicates(texts: dict[str, str], options: DedupOptions) -> dict[str, tuple[str, str]]:
    """The previous rule: datasketch's default bands, candidates confirmed on the MinHash estimate."""
    from datasketch import MinHash, MinHashLSH

    _set_shingling(options.shingle_words, options.num_perm)
    lsh = MinHashLSH(threshold=options.threshold, num_perm=options.num_perm)
    kept: dict[str, object] = {}
    found = {}
    for pid, text in texts.items():
        values = minhash_signature(normalize_text(text))
        signature = MinHash(num_perm=options.num_perm, seed=1, hashvalues=values, scheme=_SCHEME)
        matches = [m for m in lsh.query(signature) if float((values == kept[m]).mean()) >= options.threshold]
        if matches:
            found[pid] = ("near_duplicate_problem", matches[0])
            continue
        lsh.insert(pid, signature)
        kept[pid] = values
    return found


def measure(found: dict[str, tuple[str, str]], texts, planted, options: DedupOptions) -> dict:
    cells: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pid, (source, changes) in planted.items():
        exact = jaccard(*(word_shingles(normalize_text(texts[p]), options.shingle_words) for p in (pid, source)))
        side = "at/above" if exact >= options.threshold else "below"
        caught = pid in found or source in found  # at most one of the pair survives
        for key in (f"{side} threshold, {split(source)}", f"{changes} word(s) changed, all"):
            cells[key][0] += int(caught)
            cells[key][1] += 1
    clean = sorted(pid for pid in found if pid not in planted)
    return {"recall": dict(cells), "clean_merged": len(clean), "clean_examples": clean[:20]}


def run(name: str, function, texts, planted, options: DedupOptions) -> dict:
    started = time.perf_counter()
    found = function(texts, options)
    seconds = time.perf_counter() - started
    result = {"seconds": round(seconds, 2), **measure(found, texts, planted, options)}
    cells = ", ".join(f"{k} {c}/{n} ({c / n:.1%})" for k, (c, n) in sorted(result["recall"].items()))
    print(f"{name} (threshold {options.threshold}): {seconds:.1f}s; {cells}; "
          f"MATH-train problems merged, not planted: {result['clean_merged']}", flush=True)  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("LIMO_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=default_data)
    parser.add_argument("--plants", type=int, default=600)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_near_duplicates")
    args = parser.parse_args()
    if not (args.data_dir / "math_train.jsonl").is_file():
        sys.exit(f"bench/near_duplicates.py: error: no math_train.jsonl in {args.data_dir} (pass --data-dir)")
    texts, planted = build_pool(args.data_dir, args.plants)
    print(f"# near-duplicate bench, {platform.machine()} {platform.python_version()}: {len(texts)} problems, "
          f"{len(planted)} planted variants", flush=True)  # fmt: skip
    options = DedupOptions()
    current = lambda t, o: find_duplicates(t, o)  # noqa: E731
    results = {
        "baseline": run("baseline", baseline_near_duplicates, texts, planted, options),
        "current": run("current ", current, texts, planted, options),
    }
    print(f"time current / baseline: x{results['current']['seconds'] / results['baseline']['seconds']:.2f}")
    for threshold in (0.7, 0.6):
        results[f"current@{threshold}"] = run(
            "current ", current, texts, planted, replace(options, threshold=threshold)
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
