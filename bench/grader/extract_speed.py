"""Benchmark: the two scans answer extraction runs on every chain, against the scans they replaced, in this process.

- Brace pairing (`eval.answers.extract._matching_braces`, run for every text with a box): the braces found by a regex,
  a run of backslashes counted once, against the earlier loop over every character (kept here as the baseline).
- The marker scan (`eval.answers.extract._from_marker`): a text without the word "answer" has no marker and skips
  the regex's scan, against the scan alone (the earlier code ran it on every text).

Texts: MATH train's solutions (``$LIMO_SHARED_DATA`` or ``<repo>/../shared/data``), every one checked to give the
baseline's result. Prints the best of ``--repeats`` passes of each, in seconds, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from eval.answers import extract  # noqa: E402


def braces_char_by_char(text: str) -> dict[int, int]:
    """The brace pairing as it was: every character in turn, a backslash escaping the next."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    escaped = False
    for j, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "{":
            stack.append(j)
        elif ch == "}" and stack:
            pairs[stack.pop()] = j
    return pairs


def marker_scan_always(text: str) -> object:
    """The marker scan as it was: the regex over every text."""
    last = None
    for m in extract._MARKER.finditer(text):
        last = m
    return last


def best_of(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = Path(os.environ.get("LIMO_SHARED_DATA", REPO.parent / "shared" / "data"))
    rows = (json.loads(line) for line in (data / "math_train.jsonl").read_text().splitlines())
    texts = [row["solution"] for row in rows if row["solution"]]
    assert [extract._matching_braces(t) for t in texts] == [braces_char_by_char(t) for t in texts]
    no_marker = [t for t in texts if "answer" not in t.casefold()]
    assert not any(marker_scan_always(t) for t in no_marker)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, {time.strftime('%F')}")
    print(f"{len(texts)} MATH train solutions, {sum(map(len, texts)):,} characters; {len(no_marker)} without 'answer'")
    pairs = [
        (
            "brace pairing",
            lambda: [braces_char_by_char(t) for t in texts],
            lambda: [extract._matching_braces(t) for t in texts],
        ),
        (
            "marker scan",
            lambda: [marker_scan_always(t) for t in texts],
            lambda: [extract._from_marker(t) for t in texts],
        ),
    ]
    print(f"{'scan':<14} {'before s':>9} {'now s':>9} {'before / now':>13}")
    for name, before, now in pairs:
        old, new = best_of(args.repeats, before), best_of(args.repeats, now)
        print(f"{name:<14} {old:9.3f} {new:9.3f} {old / new:12.2f}x")


if __name__ == "__main__":
    main()
