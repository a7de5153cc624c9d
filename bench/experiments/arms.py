"""What bench/experiments/limo_small.py and bench/experiments/limo_selfpool.py share: running limo's entry points,
training an arm's rows, and the tables — accuracy with 95% Wilson intervals per seed, each held-out set's tuned-on and
untouched parts, accuracy by number of operations, each arm's compute, and paired comparisons between arms.

Both held-out sets are reported in every table: ``arith_heldout`` (the pool generator's phrasings; its first 64
problems are the demo's, on which the chain format was chosen) and ``arith_unseen`` (phrasings no training generator
uses, `eval.benchmarks.arithmetic_unseen`; its ``dev`` part may be looked at while the training data is designed, its
``untouched`` part never).

Compute is what the optimizer saw: steps, and the tokens of every batch (TRL's ``num_tokens`` in
``train/log_history.json``). A paired comparison pools the arms' seeds: seed s of arm A against seed s of arm B on
each problem, the problems one got right and the other wrong summed over the seeds they share, and the exact
McNemar p-value of those counts (`eval.reports.metrics.mcnemar_p`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from eval.reports.metrics import mcnemar_p, wilson_interval  # noqa: E402

DATA = REPO / "recipes" / "data" / "arithmetic"
BENCHMARKS = ("arith_heldout", "arith_unseen")
TUNED = 100  # arith_heldout: its first 100 were looked at when the chain format was chosen (64 before 2026-11-26)


def run(module: str, *args: str, log: Path | None = None) -> None:
    """One limo entry point in its own process, as a user types it; its output appended to ``log`` when given
    (runs side by side), the log's path in the error when it fails."""
    command = [sys.executable, "-m", module, *args]
    print("$", " ".join(command), *([">>", str(log)] if log else []), flush=True)
    if log is None:
        subprocess.run(command, check=True, cwd=REPO)
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        done = subprocess.run(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"{module} exited {done.returncode}; its output: {log}")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def as_messages(rows: Sequence[dict[str, Any]], problem: str = "problem", chain: str = "chain") -> list[dict]:
    """Training rows in limo's messages layout (user problem, assistant chain)."""
    return [
        {
            "id": r["id"],
            "messages": [{"role": "user", "content": r[problem]}, {"role": "assistant", "content": r[chain]}],
        }
        for r in rows
    ]


def train(
    recipe: str,
    run_dir: Path,
    rows: Sequence[dict[str, Any]],
    seed: int,
    steps: int,
    *extra: str,
    log: Path | None = None,
) -> Path:
    """Train ``rows`` (messages layout) with ``recipe``'s settings for ``steps`` optimizer steps, unless the run
    folder holds a trained model already."""
    if (run_dir / "train" / "model" / "config.json").exists():
        return run_dir
    data = run_dir / "data.jsonl"
    write_jsonl(data, rows)
    common = [f"seed={seed}", f"train.args.max_steps={steps}", f"train.data={data}"]
    run("limo.train", f"recipe={recipe}", f"output_dir={run_dir}", *common, *extra, log=log)
    return run_dir


def evaluate(recipe: str, run_dir: Path, limit: int | None, *extra: str, log: Path | None = None) -> None:
    """Evaluate on every benchmark of `BENCHMARKS` not yet finished in ``run_dir``."""
    missing = [b for b in BENCHMARKS if not (run_dir / "eval" / b / "summary.json").exists()]
    if missing:
        bounded = [f"limit={limit}"] if limit else []
        names = f"benchmarks=[{','.join(missing)}]"
        run("limo.evaluate", f"recipe={recipe}", f"output_dir={run_dir}", names, *bounded, *extra, log=log)


def samples(run_dir: Path, benchmark: str) -> dict[str, bool]:
    """Problem id -> correct (greedy: one sample a problem)."""
    rows = read_jsonl(run_dir / "eval" / benchmark / "samples.jsonl")
    return {r["problem_id"]: bool(r["correct"]) for r in rows}


def _file_rows(benchmark: str) -> list[dict[str, Any]]:
    return read_jsonl(DATA / {"arith_heldout": "heldout.jsonl", "arith_unseen": "unseen.jsonl"}[benchmark])


def part_of(benchmark: str) -> dict[str, str]:
    """Problem id -> ``tuned`` / ``dev`` (looked at while designing the training data) or ``untouched``."""
    rows = _file_rows(benchmark)
    if benchmark == "arith_heldout":
        return {r["id"]: "tuned" if i < TUNED else "untouched" for i, r in enumerate(rows)}
    return {r["id"]: r["part"] for r in rows}


def level_of(benchmark: str) -> dict[str, int]:
    return {r["id"]: int(r["level"]) for r in _file_rows(benchmark)}


@dataclass(frozen=True)
class Run:
    """One trained (or base) model's evaluation: its arm, seed, compute and per-problem verdicts."""

    arm: str
    seed: int | None
    steps: int
    tokens: int
    correct: dict[str, dict[str, bool]]  # benchmark -> problem id -> correct


def load_run(arm: str, seed: int | None, run_dir: Path) -> Run:
    steps, tokens = compute(run_dir)
    return Run(arm, seed, steps, tokens, {b: samples(run_dir, b) for b in BENCHMARKS})


def compute(run_dir: Path) -> tuple[int, int]:
    """Optimizer steps and training tokens of a run (0, 0 for an untrained model)."""
    log = run_dir / "train" / "log_history.json"
    if not log.exists():
        return 0, 0
    entries = json.loads(log.read_text(encoding="utf-8"))
    steps = max((int(e.get("step", 0)) for e in entries), default=0)
    tokens = max((int(float(e["num_tokens"])) for e in entries if "num_tokens" in e), default=0)
    return steps, tokens


def cell(correct: int, total: int) -> str:
    if not total:
        return "-"
    low, high = wilson_interval(correct / total, total)
    return f"{correct}/{total} [{low:.1%}, {high:.1%}]"


def _count(verdicts: dict[str, bool], keep: set[str] | None = None) -> tuple[int, int]:
    chosen = [v for k, v in verdicts.items() if keep is None or k in keep]
    return sum(chosen), len(chosen)


def _pooled(runs: Sequence[Run], benchmark: str, keep: set[str] | None = None) -> str:
    counts = [_count(r.correct[benchmark], keep) for r in runs]
    return cell(sum(c for c, _ in counts), sum(n for _, n in counts))


def _label(arm: str, runs: Sequence[Run]) -> str:
    return (
        f"{arm} ({len(runs)} seeds pooled)"
        if len(runs) > 1
        else f"{arm} (1 seed)"
        if runs[0].seed is not None
        else arm
    )


def accuracy_table(arms: dict[str, list[Run]]) -> str:
    """Per arm: seeds, compute, mean accuracy on each set, and every seed's count with its interval."""
    head = "| arm | seeds | compute (steps, tokens) | " + " | ".join(
        f"{b}: mean; each seed [95% Wilson]" for b in BENCHMARKS
    )
    lines = [head + " |", "|---|---|---|" + "---|" * len(BENCHMARKS)]
    for arm, runs in arms.items():
        cells = []
        for b in BENCHMARKS:
            mean = sum(_count(r.correct[b])[0] / max(1, _count(r.correct[b])[1]) for r in runs) / len(runs)
            each = "; ".join(
                (f"s{r.seed}: " if r.seed is not None else "") + cell(*_count(r.correct[b])) for r in runs
            )
            cells.append(f"{mean:.1%}; {each}")
        steps = sorted({r.steps for r in runs})
        tokens = sum(r.tokens for r in runs) // len(runs)
        work = f"{'/'.join(map(str, steps))} steps, {tokens / 1000:.0f}k tokens" if steps != [0] else "-"
        seeds = len(runs) if runs[0].seed is not None else "-"
        lines.append(f"| {arm} | {seeds} | {work} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parts_table(arms: dict[str, list[Run]]) -> str:
    """Each set's tuned-on (or dev) part and its untouched part, seeds pooled."""
    names = [(b, p) for b in BENCHMARKS for p in sorted(set(part_of(b).values()))]
    lines = ["| arm | " + " | ".join(f"{b} {p}" for b, p in names) + " |", "|---|" + "---|" * len(names)]
    for arm, runs in arms.items():
        cells = []
        for b, p in names:
            keep = {k for k, v in part_of(b).items() if v == p}
            cells.append(_pooled(runs, b, keep))
        lines.append(f"| {_label(arm, runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def levels_table(arms: dict[str, list[Run]], benchmark: str) -> str:
    """Correct / problems by number of operations on one set, seeds pooled."""
    levels = level_of(benchmark)
    names = sorted(set(levels.values()))
    head = "| arm | " + " | ".join(f"{n} operation{'s' * (n > 1)}" for n in names) + " |"
    lines = [head, "|---|" + "---|" * len(names)]
    for arm, runs in arms.items():
        cells = [_pooled(runs, benchmark, {k for k, v in levels.items() if v == n}) for n in names]
        lines.append(f"| {_label(arm, runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _partner(run_a: Run, b: Sequence[Run]) -> Run | None:
    """B's run to pair with ``run_a``: the same seed, or B's only run when it has none (the base model)."""
    if len(b) == 1 and b[0].seed is None:
        return b[0]
    return next((r for r in b if r.seed == run_a.seed), None)


def paired(a: Sequence[Run], b: Sequence[Run], benchmark: str) -> tuple[int, int, int, float]:
    """Over the seeds both arms ran: (A right where B is wrong, the reverse, pairs, exact McNemar p)."""
    gained = lost = pairs = 0
    for run_a in a:
        run_b = _partner(run_a, b)
        if run_b is None:
            continue
        for problem, right in run_a.correct[benchmark].items():
            other = run_b.correct[benchmark].get(problem)
            if other is None:
                continue
            pairs += 1
            gained += right and not other
            lost += other and not right
    return gained, lost, pairs, mcnemar_p(gained, lost)


def paired_table(arms: dict[str, list[Run]], pairs: Sequence[tuple[str, str]]) -> str:
    """Arm A against arm B on the same problems and seeds, on each set."""
    lines = [
        "| A vs B | " + " | ".join(f"{b}: A only / B only (pairs), p" for b in BENCHMARKS) + " |",
        "|---|" + "---|" * len(BENCHMARKS),
    ]
    for name_a, name_b in pairs:
        if name_a not in arms or name_b not in arms:
            continue
        cells = []
        for bench in BENCHMARKS:
            gained, lost, count, p = paired(arms[name_a], arms[name_b], bench)
            cells.append(f"{gained} / {lost} ({count}), p = {p:.2g}")
        lines.append(f"| {name_a} vs {name_b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(arms: dict[str, list[Run]], pairs: Sequence[tuple[str, str]]) -> str:
    """Every table of a report, in order."""
    parts = [
        accuracy_table(arms),
        parts_table(arms),
        paired_table(arms, pairs),
        "By number of operations, arith_heldout:\n\n" + levels_table(arms, "arith_heldout"),
        "By number of operations, arith_unseen:\n\n" + levels_table(arms, "arith_unseen"),
    ]
    return "\n\n".join(parts)


def publish(text: str, arms: dict[str, list[Run]], out: Path | None) -> None:
    """Print the tables; with ``out``, write them there and every run's verdicts beside them (``.json``)."""
    print(text)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
        payload = {arm: [run.__dict__ for run in runs] for arm, runs in arms.items()}
        out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
