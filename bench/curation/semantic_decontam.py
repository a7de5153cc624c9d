"""Decontamination by meaning: recall on hand-written paraphrases, false drops on clean problems, and scale.

Usage: ``python bench/curation/semantic_decontam.py [--data-dir ../shared/data] [--out outputs/bench_semantic]
[--scale 100000 1000000] [--dedup]``.

- The pool: MATH-train (clean against AIME 2024/2025 and AMC 2023, which it predates), a verbatim copy of
  every benchmark item the paraphrase files rewrite, and those paraphrases (written by hand for this bench:
  ``light`` other words; ``medium`` renamed variables, reordered sentences; ``heavy`` a formula restated in
  words, unit changes, the story retold). ``bench/data/paraphrases.jsonl``'s rows are in the tuning or the
  held-out part by `tests.planted.split` of their item id (the rule was calibrated on the tuning part only);
  ``paraphrases_heldout2.jsonl`` (written before the second round of tuning), ``paraphrases_heldout3.jsonl``
  (written after it), ``paraphrases_heldout4.jsonl`` (written blind, before ``model: minilm`` was measured) and
  ``paraphrases_heldout5.jsonl`` (written blind, before the same-answer path was measured) and
  ``paraphrases_heldout6.jsonl`` (written blind after the fifth was measured and then tuned on) and
  ``paraphrases_heldout7.jsonl`` (written blind; kept out of ``bench/curation/fit_answer_score.py``'s fit) are held out
  whole (their rows' ``split``). Every pool problem has its gold (a paraphrase its item's), as a real pool's rows do.
- Recall: a planted row dropped as its own item, by n-gram decontamination alone (`curation.stages.decontam`, as
  ``bench/curation/decontam.py`` drives it) and by n-grams + each semantic rule (`curation.meaning`, on the rows the
  n-grams kept, as the stage runs it): the opt-in path as it was before it became the default (every problem to
  MiniLM, no gold veto), the gold veto alone, and the default (screened by `curation.meaning.screen`, gold
  veto). The rows the default decides differently from the opt-in path go to ``screen_differences.jsonl``.
- False drops: MATH-train rows dropped as AIME/AMC. MATH-train rows the semantic check flags against
  MATH500 (real overlaps exist: NeMo-Skills report 13.9% of MATH/AMC/AIME test problems with a
  near-duplicate in MATH train) are counted and written to ``math500_flags.jsonl`` to judge by hand.
- ``--dedup``: semantic near-duplicates inside the pool (`dedup_quality`).
- Scale (``--scale``): embedding throughput on synthetic problems (MATH-train texts, each with its row
  number appended) and retrieval against the benchmark index, with peak RSS. Sizes above 100k reuse the
  100k embeddings tiled (retrieval measured at full size; embedding is linear in the pool and streamed in
  batches, so it is timed once); and in-pool retrieval (semantic dedup: all against all, exact) on the first
  ``--in-pool`` (50k) of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.curation.decontam import BENCHMARKS, CLEAN_AGAINST, specs  # noqa: E402
from curation.meaning.confirm import item_key  # noqa: E402
from curation.meaning.contamination import (
    find_semantic_contamination,  # noqa: E402
    find_semantic_duplicates,  # noqa: E402
)
from curation.meaning.embedding import embed_texts  # noqa: E402
from curation.meaning.index import SemanticIndex  # noqa: E402
from curation.options import DecontamOptions, SemanticDecontamOptions, SemanticDedupOptions  # noqa: E402
from curation.stages.decontam import BenchmarkItem, build_index, find_contamination, load_benchmark_items  # noqa: E402
from tests.planted import split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PARAPHRASES = REPO / "bench" / "data" / "paraphrases.jsonl"
# Written after the rule was first tuned, never looked at row by row while tuning: every row is held out.
HELD_OUT_NEW = REPO / "bench" / "data" / "paraphrases_heldout2.jsonl"
# Written after the rule was final (one row of the second file had been seen): measured once, never tuned on.
HELD_OUT_3 = REPO / "bench" / "data" / "paraphrases_heldout3.jsonl"
# Written blind (its author never read the detection code) when ``model: minilm`` was added, measured once.
HELD_OUT_4 = REPO / "bench" / "data" / "paraphrases_heldout4.jsonl"
# Written blind after the fourth was measured, before the same-answer path was measured on it; measured once.
HELD_OUT_5 = REPO / "bench" / "data" / "paraphrases_heldout5.jsonl"
# Written blind (120 rows, 40 of each kind; 24 rewrite AIME/AMC items earlier sets used, marked item_reused) after
# the fifth was tuned on; measured once, with the rule final.
HELD_OUT_6 = REPO / "bench" / "data" / "paraphrases_heldout6.jsonl"
# Written blind (120 rows, rows carry their own gold: a unit change changes it) while the answer score was fitted on
# the six sets before it; measured once, with the rule and the score final.
HELD_OUT_7 = REPO / "bench" / "data" / "paraphrases_heldout7.jsonl"
OPT_IN = "opt-in path (screen: none, gold_must_agree: false)"
DEFAULT = "default (screened, gold veto)"
HALVES = ("tune", "held_out", "held_out_new", "held_out_3", "held_out_4", "held_out_5", "held_out_6", "held_out_7")


def build_pool(data_dir: Path, items: list[BenchmarkItem]) -> tuple[dict[str, str], dict[str, tuple[str, str, str]]]:
    """MATH-train texts, copies and paraphrases; returns texts and ``{planted id: (item key, kind, split)}``."""
    texts = {r["id"]: r["problem"] for r in map(json.loads, (data_dir / "math_train.jsonl").open(encoding="utf-8"))}
    by_key = {item_key(i): i for i in items}
    planted = {}
    for row in paraphrases():
        key = f"{row['benchmark']}/{row['item_id']}"
        half = row.get("split") or split(row["item_id"])
        texts[row["id"]] = row["text"]
        planted[row["id"]] = (key, row["kind"], half)
        copy = f"copy/{key}"
        texts[copy] = by_key[key].text
        planted[copy] = (key, "copy", half)
    return texts, planted


def paraphrases() -> list[dict]:
    """The paraphrase files' rows; a row's ``split`` (``held_out_new``, ``held_out_3`` ... ``held_out_7``)
    overrides the hash."""
    files = (PARAPHRASES, HELD_OUT_NEW, HELD_OUT_3, HELD_OUT_4, HELD_OUT_5, HELD_OUT_6, HELD_OUT_7)
    return [json.loads(line) for path in files for line in path.open(encoding="utf-8")]


def recall_table(dropped: dict[str, str], planted: dict[str, tuple[str, str, str]]) -> dict[str, dict[str, list[int]]]:
    """``{kind: {split: [caught, planted]}}`` where ``dropped`` maps a row to the item key it was dropped as."""
    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: {half: [0, 0] for half in HALVES})
    for pid, (key, kind, half) in planted.items():
        for name in [kind] + (["all paraphrases"] if kind != "copy" else []):
            cell = table[name][half]
            cell[0] += int(dropped.get(pid) == key)
            cell[1] += 1
    return dict(table)


def quality(args: argparse.Namespace) -> dict:
    """Recall and clean rows for n-grams alone and n-grams + each semantic rule: today's opt-in path (every problem
    to the model, no gold veto), the gold veto alone, and the default (screened, gold veto), measured in the same
    run; the decisions that differ between the first and the last are written to ``screen_differences.jsonl``."""
    options = DecontamOptions(benchmarks=BENCHMARKS, data_dir=str(args.data_dir))
    screened = replace(SemanticDecontamOptions(), **_overrides(args.set))
    rules = {  # today's opt-in path (every problem to the model, no gold veto), then the default's two changes
        OPT_IN: replace(screened, screen="none", gold_must_agree=False),
        "unscreened, gold veto": replace(screened, screen="none"),
        DEFAULT: screened,
    }
    items, _ = load_benchmark_items(BENCHMARKS, specs(), options)
    texts, planted = build_pool(args.data_dir, items)
    answers = golds(args.data_dir, planted)
    started = time.process_time()
    ngram = find_contamination(texts, build_index(items, options))
    seconds = {"ngram": round(time.process_time() - started, 1)}
    ngram_drops = {pid: f"{hit.benchmark}/{hit.item_id}" for pid, hit in ngram.matches.items()}
    rest = {pid: text for pid, text in texts.items() if pid not in ngram_drops}  # what the stage checks by meaning
    print(f"# semantic decontam bench, {platform.machine()} {platform.python_version()}, pool {len(texts)} "
          f"({len(planted)} planted), {len(items)} items; {screened}")  # fmt: skip
    summary: dict = {"ngram": recall_table(ngram_drops, planted)}
    found = {}
    for name, semantic in rules.items():
        started = time.process_time()
        found[name] = find_semantic_contamination(rest, items, semantic, answers=answers)
        seconds[name] = round(time.process_time() - started, 1)
        drops = {pid: m.key for pid, m in found[name].matches.items()}
        summary[f"ngram + {name}"] = recall_table({**drops, **ngram_drops}, planted)
    print("CPU seconds: " + ", ".join(f"{name} {s}" for name, s in seconds.items()))
    for rule, table in summary.items():
        print(f"\n{rule}\n| kind | " + " | ".join(HALVES) + " |\n" + "|---" * (len(HALVES) + 1) + "|")
        for kind in ("copy", "light", "medium", "heavy", "all paraphrases"):
            print(f"| {kind} | " + " | ".join(_cell(table[kind][half]) for half in HALVES) + " |")
    default = found[DEFAULT]
    print(f"screen: {len(default.screened or {})} of {len(rest)} problems sent to the model, by path "
          f"{dict(Counter((default.screened or {}).values()))}")  # fmt: skip
    summary["misses"] = misses({**{p: m.key for p, m in default.matches.items()}, **ngram_drops}, planted,
                               found[OPT_IN].closest, args.out)  # fmt: skip
    summary["clean"] = {
        name: clean_rows(texts, {**{p: m.key for p, m in found[name].matches.items()}, **ngram_drops}, name)
        for name in rules
    } | {"ngram": clean_rows(texts, ngram_drops, "ngram")}
    summary["differences"] = differences(found, planted, texts, args.out)
    write_flags(texts, ngram_drops, {p: m.key for p, m in default.matches.items()}, args.out, items)
    summary["seconds"] = seconds
    return summary


def differences(found: dict, planted: dict[str, tuple[str, str, str]], texts: dict[str, str], out: Path) -> dict:
    """Problems today's opt-in path and the default decide differently (the default should only ever drop fewer),
    written to ``screen_differences.jsonl``; returns the counts by change, kind and split."""
    before, after = found[OPT_IN], found[DEFAULT]
    counts: dict[str, int] = defaultdict(int)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "screen_differences.jsonl").open("w", encoding="utf-8") as handle:
        for pid in texts:
            old, new = before.matches.get(pid), after.matches.get(pid)
            if (old and old.key) == (new and new.key):
                continue
            key, kind, half = planted.get(pid, ("", "clean", "clean"))
            change = "lost" if old and not new else "added" if new and not old else "changed"
            counts[f"{change} {kind} {half}"] += 1
            row = {"id": pid, "kind": kind, "split": half, "change": change, "item": key,
                   "opt_in": old and old.to_dict(), "default": new and new.to_dict(),
                   "screened": (after.screened or {}).get(pid)}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    print("decisions that differ (opt-in -> default): " + (", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or
                                                         "none"))  # fmt: skip
    return dict(counts)


def _cell(counts: list[int]) -> str:
    return f"{counts[0]}/{counts[1]} ({counts[0] / max(1, counts[1]):.0%})"


def _overrides(pairs: list[str], defaults: object = SemanticDecontamOptions()) -> dict:
    """``KEY=VALUE`` pairs as the options' types (``same_answer=false`` is False, not ``bool("false")``)."""

    def value(key: str, text: str) -> object:
        kind = type(getattr(defaults, key))
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise SystemExit(f"--set {key}={text}: expected true or false")
            return text.lower() == "true"
        return kind(text)

    return {k: value(k, v) for k, v in (p.split("=", 1) for p in pairs)}


def clean_rows(texts: dict[str, str], drops: dict[str, str], name: str) -> dict:
    """False drops (MATH-train as AIME/AMC) and MATH-train rows flagged against MATH500 by a rule's drops."""
    math = [p for p in texts if p.startswith("math_train/")]
    false = sum(1 for p in math if drops.get(p, "").split("/")[0] in CLEAN_AGAINST)
    flagged = sum(1 for p in math if drops.get(p, "").startswith("math500/"))
    print(f"{name}: MATH-train dropped as AIME/AMC {false} of {len(math)} ({false / len(math):.2%}); "
          f"flagged against MATH500 {flagged} ({flagged / len(math):.1%})")  # fmt: skip
    return {"false_drops": false, "math500_flags": flagged, "rows": len(math)}


def write_flags(texts: dict[str, str], ngram_drops: dict[str, str], semantic_drops: dict[str, str], out: Path,
                items: list[BenchmarkItem]) -> None:  # fmt: skip
    """MATH-train rows flagged against MATH500 by meaning only, to ``math500_flags.jsonl`` to judge by hand."""
    by_key = {item_key(i): i.text for i in items}
    new = [p for p in texts if p.startswith("math_train/") and semantic_drops.get(p, "").startswith("math500/")
           and p not in ngram_drops]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    with (out / "math500_flags.jsonl").open("w", encoding="utf-8") as handle:
        for pid in new:
            handle.write(json.dumps({"problem_id": pid, "item": semantic_drops[pid], "problem": texts[pid],
                                     "item_text": by_key[semantic_drops[pid]]}) + "\n")  # fmt: skip
    print(f"{len(new)} MATH-train rows flagged against MATH500 by meaning only -> {out / 'math500_flags.jsonl'}")


def dedup_quality(args: argparse.Namespace) -> dict:
    """Semantic near-duplicates inside the pool: MATH-train, then each paraphrased item and its paraphrases.

    Recall: a paraphrase dropped as a duplicate of its item; merges: MATH-train problems dropped (written to
    ``semantic_dedup_merges.jsonl`` with the kept problem, to judge by hand).
    """
    options = replace(SemanticDedupOptions(enabled=True), **_overrides(args.set, SemanticDedupOptions()))
    decontam = DecontamOptions(benchmarks=BENCHMARKS, data_dir=str(args.data_dir))
    items, _ = load_benchmark_items(BENCHMARKS, specs(), decontam)
    texts, planted = build_pool(args.data_dir, items)
    texts = {pid: text for pid, text in texts.items() if not pid.startswith("copy/")}
    ids = [p for p in texts if p.startswith("math_train/")]
    for key in dict.fromkeys(key for key, kind, _ in planted.values() if kind != "copy"):
        texts[key] = next(i.text for i in items if item_key(i) == key)
        ids += [key, *(p for p, (k, kind, _) in planted.items() if k == key and kind != "copy")]
    answers = golds(args.data_dir, planted)
    started = time.perf_counter()
    dropped = find_semantic_duplicates(ids, texts, options, answers=answers)
    seconds = time.perf_counter() - started
    table = recall_table({p: m.key for p, m in dropped.items()}, {p: v for p, v in planted.items() if v[1] != "copy"})
    merges = [p for p in dropped if p.startswith("math_train/")]
    print(f"semantic dedup ({options}): {seconds:.1f}s; MATH-train problems merged {len(merges)} of 7,500")
    for kind, halves in table.items():
        print(f"  {kind}: " + ", ".join(f"{half} {_cell(halves[half])}" for half in HALVES))
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "semantic_dedup_merges.jsonl").open("w", encoding="utf-8") as handle:
        for pid in merges:
            row = {"problem_id": pid, **dropped[pid].to_dict(), "problem": texts[pid], "kept": texts[dropped[pid].key]}
            handle.write(json.dumps(row) + "\n")
    return {"seconds": round(seconds, 1), "recall": table, "math_train_merged": len(merges)}


def misses(dropped: dict[str, str], planted: dict[str, tuple[str, str, str]], closest: dict, out: Path) -> dict:
    """Planted paraphrases not dropped as their own item, written to ``misses.jsonl`` with the closest candidate's
    evidence; returns ``{split: {kind: count}}``. Rows from AIME/AMC items an earlier set rewrote too
    (``item_reused``) are counted apart as ``<split> reused``."""
    reused = {row["id"] for row in paraphrases() if row.get("item_reused")}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    out.mkdir(parents=True, exist_ok=True)
    with (out / "misses.jsonl").open("w", encoding="utf-8") as handle:
        for pid, (key, kind, half) in planted.items():
            if kind == "copy" or dropped.get(pid) == key:
                continue
            counts[half + (" reused" if pid in reused else "")][kind] += 1
            near = closest.get(pid)
            row = {"id": pid, "item": key, "kind": kind, "split": half, "dropped_as": dropped.get(pid)}
            handle.write(json.dumps(row | ({"closest": near.to_dict()} if near else {})) + "\n")
    for half, kinds in sorted(counts.items()):
        print(f"missed, {half}: " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))
    return {half: dict(kinds) for half, kinds in counts.items()}


def golds(data_dir: Path, planted: dict[str, tuple[str, str, str]]) -> dict[str, str]:
    """Gold answers: MATH-train's, each benchmark item's, and each paraphrase's (its own ``answer`` where the row
    gives one, as the seventh set's rows do: a unit change changes it; else its item's)."""
    files = {"math500": "math500", "aime24": "aime2024", "aime25": "aime2025", "amc23": "amc2023"}
    answers = {r["id"]: r["answer"] for r in map(json.loads, (data_dir / "math_train.jsonl").open(encoding="utf-8"))}
    for name, file in files.items():
        for row in map(json.loads, (data_dir / f"{file}.jsonl").open(encoding="utf-8")):
            answers[f"{name}/{row['id']}"] = str(row["answer"])
    own = {row["id"]: row["answer"] for row in paraphrases() if row.get("answer")}  # a unit change changes it
    return answers | {pid: own.get(pid, answers[key]) for pid, (key, _, _) in planted.items()}


def scale(args: argparse.Namespace, sizes: list[int]) -> dict:
    """Embedding throughput and retrieval against the benchmark index, with peak RSS."""
    options = SemanticDecontamOptions(enabled=True)
    train = [r["problem"] for r in map(json.loads, (args.data_dir / "math_train.jsonl").open(encoding="utf-8"))]
    items = [i for b in ("math500.jsonl", "aime2024.jsonl", "aime2025.jsonl", "amc2023.jsonl")
             for i in map(json.loads, (args.data_dir / b).open(encoding="utf-8"))]  # fmt: skip
    index = SemanticIndex.build(range(len(items)), embed_texts([i["problem"] for i in items], options))
    embedded = min(sizes[0], 100_000)
    started = time.perf_counter()
    vectors = embed_texts([f"{train[n % len(train)]} ({n})" for n in range(embedded)], options)
    embed_rate = embedded / (time.perf_counter() - started)
    results = {"embed_per_s": round(embed_rate)}
    print(f"embedding: {embed_rate:,.0f} problems/s ({embedded:,} problems)")
    results["in_pool"] = in_pool(vectors[: args.in_pool], options.k)
    for size in sizes:
        queries = np.tile(vectors, (-(-size // embedded), 1))[:size] if size > embedded else vectors
        started = time.perf_counter()
        for start in range(0, size, options.batch_size):  # streamed as the stage does: batch by batch
            index.nearest(queries[start : start + options.batch_size], options.k)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results[str(size)] = {"retrieval_s": round(seconds, 1), "embed_s_est": round(size / embed_rate, 1),
                              "peak_rss_mb": round(peak)}  # fmt: skip
        print(f"{size:,} problems: retrieval {seconds:.1f}s, embedding {size / embed_rate:.0f}s "
              f"(at the measured rate), peak RSS {peak:.0f} MB")  # fmt: skip
        del queries
    return results


def in_pool(vectors: np.ndarray, k: int) -> dict:
    """Semantic dedup's retrieval: every problem's nearest neighbours among all of them (exact, quadratic)."""
    started = time.perf_counter()
    index = SemanticIndex.build(range(len(vectors)), vectors)
    for start in range(0, len(vectors), 1024):
        index.nearest(vectors[start : start + 1024], k + 1)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    million = seconds * (1e6 / len(vectors)) ** 2 / 3600
    print(f"in-pool retrieval of {len(vectors):,} problems: {seconds:.1f}s (1M, quadratic: {million:.1f} h), "
          f"peak RSS {peak:.0f} MB")  # fmt: skip
    return {"problems": len(vectors), "seconds": round(seconds, 1), "peak_rss_mb": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("LIMO_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=default_data)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_semantic")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="SemanticDecontamOptions to try")
    parser.add_argument("--scale", nargs="*", type=int, default=[], help="pool sizes for throughput and memory")
    parser.add_argument("--dedup", action="store_true", help="semantic near-duplicates inside the pool instead")
    parser.add_argument("--in-pool", type=int, default=50_000, help="with --scale: problems for in-pool retrieval")
    args = parser.parse_args()
    if not (args.data_dir / "math_train.jsonl").is_file():
        sys.exit(
            f"bench/curation/semantic_decontam.py: error: no math_train.jsonl in {args.data_dir} (pass --data-dir)"
        )
    summary = scale(args, args.scale) if args.scale else dedup_quality(args) if args.dedup else quality(args)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "scale.json" if args.scale else "dedup.json" if args.dedup else "summary.json"
    (args.out / name).write_text(json.dumps(summary, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
