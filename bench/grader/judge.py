"""Benchmark: the model judge's path end to end, and the symbolic grader's agreement with a replayed judge.

1. **Agreement on CHAMP's recorded responses.** The hand-labelled CHAMP summaries (`bench.grader.grader_sets`:
``champ``
   and ``champ_r3``, both parts) are re-graded through `eval.run.regrade.regrade_responses` under policy ``both``,
   with a *replayed* judge whose replies state the hand label (``REASON: hand label\\nVERDICT: ...``): the
   agreement table is then the symbolic grader's agreement with a human reader, and the disagreement rows are
   its misreadings. ``--math-verify-judge`` adds a second run over all of CHAMP's 19,179 summaries whose
   replayed judge is math-verify 0.9.0 (its verdict written as a reply): two checkers compared at scale.
2. **The judge path on the tiny model.** An overfit tiny model (`limo.models.tiny.build_overfit_judge`) trained
   to write a verdict line for two prompts judges ``--items`` items through `eval.grading.judge.build_judge` (hf
   backend, cached): replies per second cold, then per second again from the cache; every reply must parse.
3. **Replay overhead.** ``judge_many`` over the labelled set with a replay judge: prompts rendered, replies
   parsed and cached, per second.

Prints the tables; the numbers go to docs/performance.md and docs/grader.md with the machine and date.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.grader.grader_sets import build  # noqa: E402
from eval.grading.judge import JudgeItem, JudgeOptions, build_judge  # noqa: E402
from eval.grading.policy import GraderOptions, render_agreement  # noqa: E402
from eval.records import write_jsonl  # noqa: E402
from eval.run.regrade import regrade_responses, sample_keys  # noqa: E402


def labelled_rows() -> list[dict]:
    """CHAMP summaries with hand labels, as response rows for a re-grade (id, problem, model, setting, label)."""
    sets = build(["champ", "champ_r3"])
    rows = []
    for row in sets["champ"] + sets["champ_r3"]:
        _, problem_id, conversation = row["id"].split("/", 2)
        model, setting = conversation.split("|", 1)
        rows.append(
            {
                "id": row["id"],
                "problem_id": problem_id,
                "problem": row["problem"],
                "gold": row["gold"],
                "response": row["candidate"],
                "model": model,
                "prompt_setting": setting,
                "label": row["label"],
                "part": row["part"],
            }
        )
    return rows


def replay_judge_file(path: Path, rows: list[dict], verdicts: list[bool], why: str) -> Path:
    """Judge replies keyed as a re-grade asks for them: (problem id, index among that problem's rows)."""
    replies = [
        {
            "problem_id": pid,
            "sample_index": index,
            "text": f"REASON: {why}\nVERDICT: {'correct' if ok else 'incorrect'}",
        }
        for (pid, index), ok in zip(sample_keys(rows), verdicts, strict=True)
    ]
    write_jsonl(path, replies)
    return path


def agreement_run(rows: list[dict], verdicts: list[bool], why: str, folder: Path) -> dict:
    judge = JudgeOptions(backend="replay", backend_options={"path": str(folder / "judge_replies.jsonl")})
    replay_judge_file(folder / "judge_replies.jsonl", rows, verdicts, why)
    golds = {r["problem_id"]: r["gold"] for r in rows}
    start = time.perf_counter()
    summary = regrade_responses(
        rows,
        golds,
        ["model"],
        folder / "regrade",
        source=why,
        workers=2,
        timeout_s=2.0,
        grader=GraderOptions(policy="both", judge=judge),
    )
    summary["seconds"] = time.perf_counter() - start
    return summary


def print_agreement(title: str, summary: dict) -> None:
    table = summary["grader_agreement"]
    print(f"\n### {title} ({summary['counts']['graded']} responses, {summary['seconds']:.1f} s)")
    print("\n".join(render_agreement(table)[2:]))


def math_verify_verdicts(rows: list[dict]) -> list[bool]:
    from math_verify import parse, verify

    out = []
    for row in rows:
        try:
            out.append(bool(verify(parse(f"${row['gold']}$") or parse(row["gold"]), parse(row["response"] or ""))))
        except Exception:  # math-verify raises on some inputs; a failure is "not equal", as it documents
            out.append(False)
    return out


def all_champ_rows() -> list[dict]:
    from limo.setup.evaluate import champ_response_rows

    rows = [r for r in champ_response_rows() if r["response"]]
    from eval.benchmarks.champ import load_champ_problems

    golds = {p.id: p.answer for p in load_champ_problems()}
    return [{**r, "gold": golds[r["problem_id"]]} for r in rows]


def tiny_model_run(items_n: int, folder: Path) -> None:
    from limo.models.tiny import build_overfit_judge

    t0 = time.perf_counter()
    hf, base = build_overfit_judge(folder / "judge_model", batch_size=16)
    train_s = time.perf_counter() - t0
    # Distinct problem ids make distinct requests (nothing shared), the same two prompts underneath.
    items = [
        JudgeItem(b.problem, b.gold, b.response, f"p{n}", b.sample_index) for n in range(items_n // 2) for b in base
    ]
    for label in ("cold", "cached"):
        judge = build_judge(hf, folder / "cache")
        t0 = time.perf_counter()
        verdicts = judge.judge_many(items)
        seconds = time.perf_counter() - t0
        statuses = {s: sum(v.status == s for v in verdicts) for s in ("correct", "incorrect", "unparseable")}
        print(
            f"tiny-model judge ({label}): {len(items)} items in {seconds:.2f} s = "
            f"{len(items) / seconds:.1f} items/s; {statuses}"
        )
    print(f"(overfit judge model trained in {train_s:.1f} s)")


def replay_overhead(rows: list[dict], folder: Path) -> None:
    path = replay_judge_file(folder / "overhead.jsonl", rows, [r["label"] for r in rows], "hand label")
    judge = build_judge(JudgeOptions(backend="replay", backend_options={"path": str(path)}), folder / "overhead")
    keys = sample_keys(rows)
    items = [JudgeItem(r["problem"], r["gold"], r["response"], k[0], k[1]) for r, k in zip(rows, keys, strict=True)]
    for label in ("cold", "cached"):
        t0 = time.perf_counter()
        verdicts = judge.judge_many(items)
        seconds = time.perf_counter() - t0
        right = sum(v.correct == r["label"] for v, r in zip(verdicts, rows, strict=True))
        print(
            f"replay judge ({label}): {len(items)} items in {seconds:.2f} s = {len(items) / seconds:.0f} items/s; "
            f"verdicts equal to the replayed labels: {right}/{len(items)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=64, help="items for the tiny-model judge")
    parser.add_argument("--math-verify-judge", action="store_true", help="also all 19,179 CHAMP summaries")
    parser.add_argument("--no-model", action="store_true", help="skip the tiny-model judge")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = labelled_rows()
        for part in ("heldout", "tune"):
            chosen = [r for r in rows if r["part"] == part]
            (folder / part).mkdir()
            summary = agreement_run(chosen, [r["label"] for r in chosen], "hand label", folder / part)
            print_agreement(f"symbolic grader vs hand labels, CHAMP {part} part", summary)
        replay_overhead(rows, folder)
        if args.math_verify_judge:
            everything = all_champ_rows()
            (folder / "all").mkdir()
            t0 = time.perf_counter()
            verdicts = math_verify_verdicts(everything)
            print(f"\nmath-verify on {len(everything)} summaries: {time.perf_counter() - t0:.1f} s")
            summary = agreement_run(everything, verdicts, "math-verify 0.9.0", folder / "all")
            print_agreement("symbolic grader vs a replayed math-verify judge, all CHAMP summaries", summary)
        if not args.no_model:
            print()
            tiny_model_run(args.items, folder / "tiny")


if __name__ == "__main__":
    main()
