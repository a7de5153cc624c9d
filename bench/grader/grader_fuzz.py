"""The grader's long fuzz run: hostile (gold, response) pairs; none may time out, each call is timed.

Usage: ``python bench/grader/grader_fuzz.py [--pairs 20000] [--seed 45] [--slow-s 1.0] [--only I ...]`` (``make fuzz``
runs the defaults: one process, about 65 CPU seconds on a 2-core x86-64 machine, 2-3 minutes at load 5).

Every pair is generated from ``(seed, index)`` alone, so ``--only 1234`` grades pair 1234 again, with its text
printed. The shapes are what a model's output or a benchmark's gold can throw at `eval.grading.grader.grade`, in
families: nested environments (``pmatrix``, ``bmatrix``, ``array``, ``cases``, ``aligned``, closed or left open),
fractions in fractions, roots in roots, ``\\left``/``\\right`` pairs, exponent towers and huge powers
(``2^{2^{2^{99}}}``, ``10^{10^{10}}``), factorials of large numbers, sums and products with huge bounds, long runs of
one token or a few, with or without blanks between (up to the 50,000 characters a response is read from), long digit
strings, unbalanced braces, many ``\\boxed``, unicode (math symbols, full-width digits, Chinese numerals, combining
marks, emoji), prose with hedges and yes/no words; a pair combines a gold shape with a response shape (another shape,
the gold itself, the gold boxed inside prose or after "The answer is", or the gold with a shape glued on), with a
problem text for 40% of the pairs. The symbolic worker is started before the timed run, as a process that grades
in earnest has it (`eval.grading.grader.PRESTART_AFTER_CALLS`).

Each call is graded with ``timeout_s=2.0`` and timed: wall-clock, and this thread's CPU time (which misses the
symbolic worker's). The report: pairs, verdicts by status, the ``timeout`` verdicts, internal errors (an exception
the grader turned into its verdict), the calls over ``--slow-s`` seconds (by CPU time; by wall-clock, each re-timed
as the best of three more calls, so that the machine's load is told apart from the pair's own cost), and the
longest call by each clock with its pair. Exit status 1 on any timeout, internal error, call over ``--slow-s`` of
CPU time, or call over it again in its best of three.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eval.grading.grader import grade  # noqa: E402

LIMIT_S = 2.0
SIZES = (40, 400, 4_000, 20_000, 50_000)
ENVS = ("pmatrix", "bmatrix", "array", "cases", "aligned", "matrix", "vmatrix", "smallmatrix")
TOKENS = [
    "0", "1", "7", "12", "2.5", "x", "y", "n", "e", "i", "\\pi", "+", "-", "*", "/", "^", "!", "(", ")", "[", "]",
    "{", "}", "\\{", "\\}", ",", ";", "=", "<", "\\le", "\\frac", "\\dfrac", "\\sqrt", "\\sqrt[3]", "\\binom",
    "\\text{cm}", "\\%", "\\$", "^\\circ", "\\left(", "\\right)", "\\left.", "\\right|", "\\cup", "\\infty", "\\pm",
    "_", "\\boxed{", "\\fbox{", "$", "$$", " ", "sqrt(", "C(", "**", "&", "\\\\", "{,}", "\\!", "\\,", "\\(", "\\)",
    "\\[", "\\]", "The answer is ", "Answer: ", "**Final Answer**", ". ", "\n", "\n\n", "\t", "is ", "\\sum_{k=1}^{n}",
    "\\prod_{j=1}^{10^{9}}", "\\int_0^1", " dx", "\\lim_{n\\to\\infty}", "\\bmod", "\\pmod{7}", "\\equiv", "mod ",
    "\\lfloor", "\\rfloor", "{n \\choose 2}", "a_k", "F_{n-k}", "\\overline{3}", "0.", "\\ldots", "\\cdots", "...",
    "\\text{ for all } ", "\\text{ or }", "\\text{and}", "\\approx", "\\to", "\\in", "\\mathbb{R}", "\\emptyset",
    "\\begin{pmatrix}", "\\end{pmatrix}", "\\begin{cases}", "\\end{cases}", "\\begin{array}{cc}", "\\end{array}",
    "<|im_end|>", "<think>", "</think>", "#", "Yes", "No", "yes, ", "no ", "There are no ", "is not ", "maybe ",
    "approximately ", "or ", "and ", "at least ", "either ", "if ", "\\neq", "\\ge", "\\cdot", "\\times", "'", '"',
]  # fmt: skip
UNICODE = (
    "−×÷√π∞≤≥≠²³°·⋅∈∪∩∅ℝℕ½¼¾₁₂⁰¹⁴⁵⁶⁷⁸⁹αβγθλμσφωΔΣΠ０１２３４５６７８９一二三四五六七八九十百千万亿零两个"
    "\u0301\u0308\u200b\u200d\u202e\ufeff\u00a0🙂🎉ﬁÅé"
)
WORDS = (
    "the answer is", "so", "therefore", "we get", "hence", "final answer", "Yes", "No", "no solution", "none",
    "there is no such", "it can be done", "impossible", "possibly", "I think", "but if", "except", "or", "unless",
    "Sunday", "A", "B", "(C)", "all real numbers", "infinitely many", "every integer", "at most", "exactly",
)  # fmt: skip
PROBLEMS = (
    "Is there a positive integer $n$ such that $n^2 + 1$ is divisible by $3$?",
    "Find all real $x$ with $3x - 6 > 0$.",
    "Compute $2^{2^{2^{99}}} \\bmod 7$.",
    "Which of the following is true? (A) 1 (B) 2 (C) 3 (D) 4",
    "Find all polynomials $f$ with real coefficients such that $f(x)f(2x^2) = f(2x^3 + x)$ for all real $x$.",
    "Factor $x^4 - 1$ completely.",
    "How many integers $n$ satisfy $n \\equiv 3 \\pmod{7}$ and $0 < n < 100$?",
)


def _size(rng: random.Random) -> int:
    return rng.choice(SIZES) if rng.random() < 0.5 else rng.randint(1, 600)


def _cut(text: str, n: int) -> str:
    return (text * (n // max(1, len(text)) + 1))[:n]


def _atom(rng: random.Random) -> str:
    return rng.choice(["1", "2", "x", "n", "\\pi", "10^{400}", "9" * rng.randint(1, 60), "a_k", "-1", "\\infty"])


def nested_env(rng: random.Random) -> str:
    depth, env = rng.choice([2, 8, 41, 120, 300, 1_000, 4_000]), rng.choice(ENVS)
    opener = f"\\begin{{{env}}}" + ("{cc}" if env == "array" else "")
    cell = rng.choice(["", _atom(rng) + " & " + _atom(rng) + " \\\\ ", "&", "\\\\", "1 & 2"])
    closed = rng.random() < 0.5
    inner = cell.join([opener] * depth) + _atom(rng)
    return inner + (f"\\end{{{env}}}" * depth if closed else "")


def nested_frac(rng: random.Random) -> str:
    depth = rng.choice([3, 39, 41, 120, 500, 2_000])
    kind = rng.randrange(4)
    if kind == 0:
        return "\\frac{" * depth + "1" + "}{2}" * depth
    if kind == 1:
        return "\\dfrac{1}{" * depth + _atom(rng) + "}" * depth
    if kind == 2:
        return "\\frac" * depth + "12"  # arguments without braces
    return "\\frac{" * depth + "1"  # never closed


def nested_sqrt(rng: random.Random) -> str:
    depth = rng.choice([3, 39, 41, 120, 500, 2_000])
    kind = rng.randrange(5)
    if kind == 0:
        return "\\sqrt{" * depth + _atom(rng) + "}" * depth
    if kind == 1:
        return "\\sqrt" * depth + "2"
    if kind == 2:
        return "\\sqrt[" * depth + "3" + "]" * depth + "{2}"
    if kind == 3:
        return "sqrt(" * depth + _atom(rng) + ")" * depth
    return "\\sqrt[3]{" * depth + "-8"


def left_right(rng: random.Random) -> str:
    depth = rng.choice([3, 41, 120, 1_000, 5_000])
    kind = rng.randrange(4)
    if kind == 0:
        return "\\left(" * depth + _atom(rng) + "\\right)" * depth
    if kind == 1:
        return "\\left(" * depth + _atom(rng)
    if kind == 2:
        return "\\left." * depth + _atom(rng) + "\\right|" * depth
    return "\\left[\\left(" * depth + "1,2" + "\\right]" * depth


def huge_power(rng: random.Random) -> str:
    towers = [
        "2^{2^{2^{99}}}", "10^{10^{10}}", "9^{9^{9^9}}", "2^{-10^{9}}", "0.1^{10^{9}}", "x^{10^{9}}",
        "(x+1)^{99999}", "e^{10^{10}}", "(-1)^{10^{100}}", "10^{400}", "1e999999", "10^{10^{10}}!", "(10^{10})!",
        "1000000!", "99999!", "2500!", "2501!", "\\binom{10^{9}}{500000000}", "\\binom{4000}{2000}", "3!!!!!!!!",
        "\\sin(10^{5000})", "\\log(10^{10^{10}})", "\\sqrt{10^{10^{10}}}", "2^{3^{4^{5^{6}}}}",
        "\\left(\\frac{99999999999}{99999999997}\\right)^{\\frac{12345}{6789}}", "i^{10^{10}}", "\\pi^{10^{6}}",
        "\\sum_{k=1}^{10^{9}} k^{k}", "\\prod_{j=1}^{10^{9}} j", "\\int_0^{10^{9}} \\sin(x^2) dx",
        "10^{10^{10}} \\bmod 7", "2^{2^{99}} \\pmod{11}", "\\lfloor 10^{10^{10}} \\pi \\rfloor",
        "x^{999999}-x^{999998}",
    ]  # fmt: skip
    head = rng.choice(towers)
    if rng.random() < 0.3:
        head = "^".join(["{" + rng.choice(["2", "9", "10", "x"]) for _ in range(rng.choice([5, 30, 41, 200]))])
        head += "}" * head.count("{")
    if rng.random() < 0.3:
        head += rng.choice(["+", "-", "\\cdot ", "/", "="]) + rng.choice(towers)
    return head


def repeated(rng: random.Random) -> str:
    return _cut("".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 3))), _size(rng))


def letters(rng: random.Random) -> str:
    unit = rng.choice(["x", "k", "ab", "e", "i", "a a", "xy ", "The ", "no ", "Answer"])
    return _cut(unit, rng.choice([40, 400, 401, 3_999, 4_000, 4_001, 20_000, 50_000]))


def digits(rng: random.Random) -> str:
    n = rng.choice([39, 61, 399, 400, 401, 999, 1_000, 1_001, 4_000, 6_001, 20_000, 50_000])
    kind = rng.randrange(7)
    if kind == 0:
        return "".join(rng.choice("0123456789") for _ in range(n))
    if kind == 1:
        return "1." + "0" * n + "1"
    if kind == 2:
        return ",".join(["1"] + ["000"] * (n // 4))
    if kind == 3:
        return "0." + "3" * n + ("\\overline{3}" if rng.random() < 0.5 else "")
    if kind == 4:
        return " ".join("9" * rng.randint(1, 9) for _ in range(n // 5))
    if kind == 5:
        return "9" * n + "/" + "7" * n
    return "-" * rng.choice([1, 2, 200, 3_000]) + "9" * rng.choice([1, 400, 3_000])


def unbalanced(rng: random.Random) -> str:
    n = _size(rng)
    kind = rng.randrange(6)
    if kind == 0:
        return "{" * n + "1"
    if kind == 1:
        return "1" + "}" * n
    if kind == 2:
        return "".join(rng.choice("{}()[]") for _ in range(n))
    if kind == 3:
        return _cut("\\{(", n) + "1"
    if kind == 4:
        return "(" * 41 + "1" + ")" * 40
    return _cut("{)(]", n)


def boxes(rng: random.Random) -> str:
    n = rng.choice([2, 41, 300, 2_000, 6_000])
    kind = rng.randrange(5)
    if kind == 0:
        return "".join(f"\\boxed{{{_atom(rng) if i % 97 == 0 else i % 10}}} " for i in range(n))
    if kind == 1:
        return "\\boxed{" * n + _atom(rng) + "}" * n
    if kind == 2:
        return "\\boxed{" * n + _atom(rng)
    if kind == 3:
        return "\\boxed" * n + "7"
    return "\\fbox{\\boxed{" * (n // 2) + "1" + "}}" * (n // 4)


def unicode_text(rng: random.Random) -> str:
    n = rng.choice([1, 5, 40, 400, 4_000, 20_000])
    return "".join(rng.choice(UNICODE) if rng.random() < 0.7 else rng.choice(TOKENS) for _ in range(n))


def prose(rng: random.Random) -> str:
    n = rng.choice([3, 12, 60, 600, 5_000])
    parts = [rng.choice(WORDS) if rng.random() < 0.6 else rng.choice(TOKENS + [_atom(rng)]) for _ in range(n)]
    return " ".join(parts)


def big_operator(rng: random.Random) -> str:
    bound = rng.choice(["10", "999", "1000", "2000", "10^{9}", "n", "\\infty", "10^{10^{10}}"])
    body = rng.choice(["k", "k^{k}", "\\frac{1}{k^2}", "k!", "\\binom{n}{k}", "(-1)^k", "2^{k}"])
    op = rng.choice(["\\sum", "\\prod", "\\sum", "sum_(k=1)^"])
    term = f"{op}_{{k=1}}^{{{bound}}} {body}" if op != "sum_(k=1)^" else f"sum_(k=1)^{bound} {body}"
    return " + ".join([term] * rng.choice([1, 2, 8, 60]))


def spaced(rng: random.Random) -> str:
    """A run of a few tokens or words with blanks between, often after an answer marker: what a rule that reads a
    sentence (split points, lazy groups) scans once per split."""
    unit = " ".join(rng.choice(TOKENS + list(WORDS)) for _ in range(rng.randint(1, 3))) + rng.choice([" ", "\n", ""])
    marker = rng.choice(["", "", "The answer is ", "Answer: ", "So ", "Yes, ", "There are ", "\boxed{"])
    return marker + _cut(unit, _size(rng)) + rng.choice(["", ".", ")", "}", "$"])


def short_math(rng: random.Random) -> str:
    return "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 25)))


FAMILIES: dict[str, Callable[[random.Random], str]] = {
    "nested_env": nested_env,
    "nested_frac": nested_frac,
    "nested_sqrt": nested_sqrt,
    "left_right": left_right,
    "huge_power": huge_power,
    "repeated": repeated,
    "letters": letters,
    "digits": digits,
    "unbalanced": unbalanced,
    "boxes": boxes,
    "unicode": unicode_text,
    "prose": prose,
    "big_operator": big_operator,
    "spaced": spaced,
    "short_math": short_math,
}


def _shape(rng: random.Random) -> tuple[str, str]:
    """(family, text): one family, or two or three glued together."""
    names = [rng.choice(list(FAMILIES)) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    return "+".join(names), "".join(FAMILIES[name](rng) for name in names)


def _response(rng: random.Random, gold: str) -> tuple[str, str]:
    """(how, response): another shape, or the gold itself, boxed in prose, or with a shape glued on."""
    how = rng.choice(["shape", "shape", "same", "boxed", "glued", "sentence"])
    if how == "same":
        return how, gold
    if how == "boxed":
        return how, prose(rng) + " \\boxed{" + gold + "}" + rng.choice(["", ".", " $", "\n<|im_end|>"])
    if how == "glued":
        family, text = _shape(rng)
        return f"glued:{family}", gold + text if rng.random() < 0.5 else text + gold
    if how == "sentence":
        return how, rng.choice(["The answer is ", "So there are ", "Yes, ", "No, ", "Answer: "]) + gold + "."
    family, text = _shape(rng)
    return f"shape:{family}", text


def pair(seed: int, index: int) -> tuple[str, str, str, str | None]:
    """(label, gold, response, problem) of pair `index`: from ``(seed, index)`` alone."""
    rng = random.Random(f"{seed}:{index}")
    family, gold = _shape(rng)
    how, response = _response(rng, gold)
    roll = rng.random()
    problem = None if roll < 0.6 else rng.choice(PROBLEMS) if roll < 0.85 else response
    return f"{family} | {how}", gold, response, problem


def timed(gold: str, response: str, problem: str | None) -> tuple[str, float, float]:
    """(status, wall seconds, this thread's CPU seconds) of one `grade` call; the status is ``error`` when an
    exception inside the grader became its verdict (``internal error: ...``): a path no size limit bounds."""
    wall, cpu = time.perf_counter(), time.thread_time()
    verdict = grade(gold, response, timeout_s=LIMIT_S, problem=problem)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    error = verdict.reason.startswith(("internal error", "extraction error"))
    return ("error" if error else verdict.status), wall, cpu


def _show(index: int, label: str, gold: str, response: str, problem: str | None) -> None:
    print(f"  pair {index} [{label}]: gold {len(gold):,} chars {gold[:80]!r}")
    chars = None if problem is None else len(problem)
    print(f"    response {len(response):,} chars {response[:80]!r}; problem {chars} chars")


def run(seed: int, indices: range | list[int], slow_s: float, show: int) -> int:
    # warm, untimed: the symbolic worker's start (about a second, more on a loaded machine) on a pair it judges;
    # `grade` counts it against the first pair that needs the worker, which would time out on a busy machine
    warm = grade("1", "\\lim_{n \\to \\infty} \\frac{n}{n+1}", timeout_s=30.0)
    assert warm.reason.startswith("math-verify"), warm
    statuses: collections.Counter[str] = collections.Counter()
    flagged, longest = [], {"wall": (0.0, -1, ""), "cpu": (0.0, -1, "")}
    start = time.perf_counter()
    for done, index in enumerate(indices, 1):
        label, gold, response, problem = pair(seed, index)
        status, wall, cpu = timed(gold, response, problem)
        statuses[status] += 1
        longest["wall"] = max(longest["wall"], (wall, index, label))
        longest["cpu"] = max(longest["cpu"], (cpu, index, label))
        if status in ("timeout", "error") or max(wall, cpu) > slow_s or len(indices) <= show:
            flagged.append((index, status, wall, cpu))
            print(f"pair {index}: {status}, wall {wall:.3f} s, cpu {cpu:.3f} s [{label}]", flush=True)
            _show(index, label, gold, response, problem)
        if done % 2_000 == 0:
            print(f"  {done:,} pairs, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    retimed = {f[0]: _best_of_three(seed, f[0]) for f in flagged if f[2] > slow_s and f[1] != "timeout"}
    return _report(statuses, flagged, longest, slow_s, time.perf_counter() - start, retimed)


def _best_of_three(seed: int, index: int) -> float:
    """The least wall-clock time of three more calls on pair `index`: what is left when the machine's load is not."""
    _, gold, response, problem = pair(seed, index)
    return min(timed(gold, response, problem)[1] for _ in range(3))


def _report(statuses, flagged, longest, slow_s: float, seconds: float, retimed: dict[int, float]) -> int:
    timeouts, errors = statuses["timeout"], statuses["error"]
    over_cpu = sum(1 for f in flagged if f[3] > slow_s)
    over_again = {i: s for i, s in retimed.items() if s > slow_s}
    print(f"pairs: {sum(statuses.values()):,} in {seconds:.0f} s; verdicts: {dict(sorted(statuses.items()))}")
    print(f"timeout verdicts: {timeouts}; internal errors: {errors}; calls over {slow_s:g} s: {over_cpu} by ", end="")
    print(f"this thread's CPU time, {len(retimed)} by wall-clock, {len(over_again)} of them again in a best of three")
    for index, best in sorted(retimed.items(), key=lambda item: -item[1])[:10]:
        print(f"  re-timed pair {index}: best of three {best:.3f} s")
    for clock, (seconds_, index, label) in longest.items():
        print(f"longest call ({clock}): {seconds_:.3f} s, pair {index} [{label}]")
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}")
    return 1 if timeouts or errors or over_cpu or over_again else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20_000, help="pairs to generate and grade (default 20,000)")
    parser.add_argument("--seed", type=int, default=45, help="the run's seed; a pair is (seed, index)")
    parser.add_argument("--start", type=int, default=0, help="first pair index")
    parser.add_argument("--slow-s", type=float, default=1.0, help="report calls over this many seconds (1.0)")
    parser.add_argument("--show", type=int, default=20, help="print every pair of a run this short (20)")
    parser.add_argument("--only", type=int, nargs="+", help="grade only these pair indices, text shown")
    args = parser.parse_args()
    indices = args.only or range(args.start, args.start + args.pairs)
    return run(args.seed, indices, args.slow_s, args.show)


if __name__ == "__main__":
    sys.exit(main())
