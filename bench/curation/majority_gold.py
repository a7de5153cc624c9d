"""Majority-vote golds: how often the voted gold is the dataset's, what the threshold drops, and what voting costs.

Usage: ``python bench/curation/majority_gold.py [--data-dir ../shared/data] [--problems 1000] [--k 5] [--p-right
0.6]``. A gold-less pool is written from MATH-train rows with an integer answer (no row is stored in the repository):
each problem gets ``k`` chains, each independently right (the solution, with one of a few openings) with
probability ``p-right``, else wrong (the solution's last ``\\boxed{}`` moved by one of three offsets, so wrong
answers can agree with each other as real models' do). The pool is curated (LIMO's funnel, decontam and
difficulty off) with voted golds at each ``min_agreement``, and each run reports the problems kept, the share of
kept voted golds equal to MATH's answer (`eval.grading.grader.verify`), the drops by reason, and the vote's time
against the answer check's in the same run (the stage every pool pays for already; both grade or cluster every chain).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from curation.methods import METHODS, RunContext  # noqa: E402
from curation.options import StageOptions  # noqa: E402
from eval.grading.grader import verify  # noqa: E402
from eval.options import to_options  # noqa: E402

OPENINGS = ("", "Let us work through it.\n\n", "First, read the problem carefully.\n\n", "Step by step.\n\n")
OFFSETS = (1, 2, -1)


def write_pool(data_dir: Path, problems: int, k: int, p_right: float, path: Path) -> dict[str, str]:
    """The gold-less pool at ``path``; returns each problem's MATH answer."""
    rng = random.Random(0)
    rows, truth = [], {}
    for line in (data_dir / "math_train.jsonl").read_text(encoding="utf-8").splitlines():
        source = json.loads(line)
        boxes = list(re.finditer(r"\\boxed\{(\d{1,6})\}", source.get("solution") or ""))
        if len(truth) >= problems or not boxes or boxes[-1].group(1) != str(source.get("answer")).strip():
            continue
        pid, box = f"p{len(truth)}", boxes[-1]
        truth[pid] = box.group(1)
        for index in range(k):
            if rng.random() < p_right:
                text = OPENINGS[index % len(OPENINGS)] + source["solution"] + " " * (index // len(OPENINGS))
            else:
                wrong = str(int(box.group(1)) + rng.choice(OFFSETS))
                text = f"{source['solution'][: box.start(1)]}{wrong}{source['solution'][box.end(1) :]}" + " " * index
            rows.append({"id": pid, "problem": source["problem"], "chain": text})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return truth


def run(pool: Path, out: Path, min_agreement: float, truth: dict[str, str]) -> dict[str, object]:
    stages = {
        "ingest": {"source": str(pool)},
        "majority_gold": {"enabled": True, "min_agreement": min_agreement},
        "dedup": {"enabled": False},
        "decontam": {"enabled": False},
        "difficulty": {"enabled": False},
        "select": {"n": 1_000_000},
        "report": {"enabled": False},
    }
    METHODS["limo"].run(to_options(StageOptions, stages), None, RunContext(out, 0, "bench"))
    funnel = {s["stage"]: s for s in json.loads((out / "curate" / "funnel.json").read_text())["stages"]}
    golds = {}
    for line in (out / "curate" / "curated.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        golds[row["id"]] = row["gold_answer"]
    right = sum(verify(truth[pid], gold) for pid, gold in golds.items())
    vote, check = funnel["majority_gold"], funnel["answer_check"]
    return {
        "min_agreement": min_agreement,
        "kept": len(golds),
        "voted_gold_right": round(right / max(len(golds), 1), 4),
        "dropped": vote["problems_dropped"],
        "vote_s": vote["seconds"],
        "answer_check_s": check["seconds"],
        "vote_over_answer_check": round(vote["seconds"] / max(check["seconds"], 1e-9), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--problems", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--p-right", type=float, default=0.6)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.0, 0.4, 0.5, 0.6, 0.8])
    args = parser.parse_args()
    print(f"# {platform.node()} ({os.cpu_count()} CPUs), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    with tempfile.TemporaryDirectory() as tmp:
        pool = Path(tmp) / "pool.jsonl"
        truth = write_pool(args.data_dir, args.problems, args.k, args.p_right, pool)
        print(f"# {len(truth)} problems x {args.k} chains, each right with probability {args.p_right}")
        for threshold in args.thresholds:
            print(json.dumps(run(pool, Path(tmp) / f"run-{threshold}", threshold, truth)))


if __name__ == "__main__":
    main()
