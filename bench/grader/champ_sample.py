"""Draw CHAMP summary turns for hand labelling (round 4 of the grader, issue 33), reproducibly.

The pool is every conversation whose last turn is the model's answer to CHAMP's "summarize the answer above in
one sentence" request, on a problem whose gold is right, and not labelled before (``grader_cases_champ*.jsonl``).
Held-out rows come only from held-out problems (``bench.grader.grader_sets.part_of`` of the problem id, the split
every CHAMP set uses) and tuning rows only from tuning problems, so labelling one part never shows the other.
Prints one JSON line per drawn summary (key, problem, gold, summary, hash) for the labeller; the grader's
verdict is deliberately not printed.

    python bench/grader/champ_sample.py --part heldout --n 160 --seed 20261124
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.grader.grader_sets import ASSETS, CHAMP_WRONG_GOLDS, part_of  # noqa: E402


def labelled_keys() -> set[tuple[str, str]]:
    """(problem id, conversation) of every CHAMP summary labelled in an earlier file."""
    keys = set()
    for path in sorted(ASSETS.glob("grader_cases_champ*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                keys.add((row["problem_id"], row["conversation"]))
    return keys


def summaries(part: str) -> list[dict]:
    """Every unlabelled summary turn of the problems on ``part``'s side, in a fixed order."""
    import champ_dataset

    seen, out = labelled_keys(), []
    for pid, problem in sorted(champ_dataset.load("v0").problems.items()):
        if pid in CHAMP_WRONG_GOLDS or part_of(pid) != part:
            continue
        for conv, chat in sorted(problem.conversations.items()):
            turns = chat.messages
            if len(turns) < 2 or not turns[-1].role.startswith("Model.") or "summarize" not in turns[-2].text:
                continue
            if (pid, conv) not in seen and turns[-1].text:
                text = turns[-1].text
                out.append(
                    {
                        "problem_id": pid,
                        "conversation": conv,
                        "problem": problem.text,
                        "gold": problem.answer,
                        "summary": text,
                        "summary_sha1": hashlib.sha1(text.encode()).hexdigest()[:12],
                    }
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("heldout", "tune"), required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    pool = summaries(args.part)
    for row in random.Random(args.seed).sample(pool, args.n):
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
