"""Ingest throughput: the typed row reader against the previous one on the same pool files, in one run.

Usage: ``python bench/curation/ingest.py [--data-dir ../shared/data] [--rows 100000]``, or ``--chats`` for chat
layouts.

``--chats``: one pool written twice, as ShareGPT rows (``{"id", "conversations": [{"from", "value"}, ...],
"reference_answer", "origin"}``, the layout of issue #32) and as the same rows in OpenAI ``messages`` form
(``role`` / ``content``), three attempts per problem with an id per row, in shuffled order; each is ingested into
a pool store (`curation.pool.store.open_or_ingest`, what every run does) and timed in rows per second. The
per-row ids make ingest regroup the chains by problem text (`curation.pool.identity`); a third run reads the
ShareGPT file with ``field_map.id: null`` (grouped by text from the start, no watch) to show what that costs.

Without ``--chats``, two pools are written from
MATH-train rows cycled with a variant tag (no row is stored in the repository): GAIR/LIMO's layout as JSONL
(``question, solution, answer``: one chain per row) and OpenR1-Math's as parquet (``generations`` and
``correctness_math_verify`` lists: two chains per row, exploded). The baseline is the previous reader
(`baseline_load`: ``load_records`` with ``map_fields`` and every value ``str()``-ed, one chain per row), timed
on the JSONL pool in the same run; it cannot read the OpenR1 pool at all, which is the point of the new one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from curation.options import IngestOptions  # noqa: E402
from curation.pool.store import load_pool  # noqa: E402
from curation.schema import Chain  # noqa: E402
from eval.problem import Problem  # noqa: E402
from eval.records import load_records  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def write_pools(data_dir: Path, rows: int, folder: Path) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = [json.loads(line) for line in (data_dir / "math_train.jsonl").read_text(encoding="utf-8").splitlines()]
    source = [r for r in source if r.get("solution")]
    limo, openr1 = [], []
    for n in range(rows):
        row = source[n % len(source)]
        problem = f"[variant {n}] {row['problem']}"
        limo.append({"question": problem, "solution": row["solution"], "answer": row["answer"]})
        openr1.append({"uuid": f"u{n}", "problem": problem, "answer": row["answer"],
                       "generations": [row["solution"], "Let me think.\n" + row["solution"]],
                       "correctness_math_verify": [True, True]})  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    jsonl = folder / "limo.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in limo), encoding="utf-8")
    parquet = folder / "openr1.parquet"
    pq.write_table(pa.Table.from_pylist(openr1), parquet)
    return jsonl, parquet


def baseline_load(path: Path, field_map: dict[str, str]) -> int:
    """The previous reader: rename with map_fields, ``str()`` every value, one chain per row."""

    def build(row: dict) -> tuple[Problem, Chain]:
        text = str(row["problem"])
        pid = str(row.get("id") or "p_" + hashlib.sha1(text.encode()).hexdigest()[:12])
        chain_text = str(row["chain"])
        problem = Problem(pid, text, str(row["answer"]).strip(), str(path))
        digest = hashlib.sha1(chain_text.encode()).hexdigest()[:10]
        return problem, Chain(f"{pid}/human/{digest}", pid, chain_text, provenance={"source": str(path)})

    result = load_records(path, build, field_map=field_map, required=("problem", "chain"))
    return len(result.kept)


def write_chat_pools(data_dir: Path, rows: int, folder: Path) -> tuple[Path, Path]:
    """The same pool as ShareGPT and as OpenAI messages (JSONL): three attempts per problem, an id per row."""
    import random

    source = [json.loads(line) for line in (data_dir / "math_train.jsonl").read_text(encoding="utf-8").splitlines()]
    source = [r for r in source if r.get("solution") and r.get("answer")]
    order = list(range(rows))
    random.Random(0).shuffle(order)  # attempts of one problem far apart, as a sampled set is rarely sorted
    folder.mkdir(parents=True, exist_ok=True)
    sharegpt, messages = folder / "sharegpt.jsonl", folder / "messages.jsonl"
    with open(sharegpt, "w", encoding="utf-8") as one, open(messages, "w", encoding="utf-8") as other:
        for n in order:
            problem_number, attempt = divmod(n, 3)
            row = source[problem_number % len(source)]
            problem = f"[variant {problem_number}] {row['problem']}"
            chain = f"Attempt {attempt + 1}.\n\n{row['solution']}"
            turns = [("system", "Reason step by step."), ("user", problem), ("assistant", chain)]
            common = {"id": f"chat-{n}", "reference_answer": row["answer"], "origin": ("gpt-4", "o1")[attempt % 2]}
            names = {"system": "system", "user": "human", "assistant": "gpt"}
            one.write(json.dumps({**common, "conversations": [{"from": names[r], "value": t} for r, t in turns]}))
            other.write(json.dumps({**common, "messages": [{"role": r, "content": t} for r, t in turns]}))
            one.write("\n")
            other.write("\n")
    return sharegpt, messages


def store_ingest(path: Path, column: str, work: Path, **field_map: Any) -> tuple[float, float, int, int]:
    """Wall and CPU seconds to ingest ``path`` into a fresh pool store (CPU time is this process's: on a shared
    machine it does not count the time other processes held the cores), its rows read and its problems."""
    import shutil

    from curation.options import StageOptions
    from curation.pool.store import open_or_ingest

    shutil.rmtree(work, ignore_errors=True)
    fields = {"problem": column, "chain": column, "answer": "reference_answer", "generator": "origin", **field_map}
    options = StageOptions(ingest=IngestOptions(source=str(path), field_map=fields))
    started, cpu = time.perf_counter(), time.process_time()
    store = open_or_ingest(options, work)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return seconds, cpu, int(store.facts["read"]), len(store.columns.problem_subject)


def chat_bench(args: argparse.Namespace) -> None:
    sharegpt, messages = write_chat_pools(args.data_dir, args.rows, args.out)
    print(f"# chat ingest bench, {platform.machine()} {platform.python_version()}: {args.rows} rows", flush=True)
    work = args.out / "work"
    runs = {
        "messages (role/content)": store_ingest(messages, "messages", work),
        "ShareGPT (from/value)": store_ingest(sharegpt, "conversations", work),
        "ShareGPT, field_map.id: null": store_ingest(sharegpt, "conversations", work, id=None),
    }
    base = runs["messages (role/content)"][1]
    for name, (seconds, cpu, read, problems) in runs.items():
        print(f"{name:30s} wall {seconds:7.1f}s  CPU {cpu:7.1f}s  {read / cpu:9,.0f} rows per CPU-second  "
              f"x{cpu / base:.2f} the CPU time  ({read} rows, {problems} problems)")  # fmt: skip


def timed(function) -> tuple[float, int]:
    started = time.perf_counter()
    count = function()
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("LIMO_SHARED_DATA", REPO.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=default_data)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "bench_ingest")
    parser.add_argument("--chats", action="store_true", help="ShareGPT against OpenAI messages, into a pool store")
    args = parser.parse_args()
    if not (args.data_dir / "math_train.jsonl").is_file():
        sys.exit(f"bench/curation/ingest.py: error: no math_train.jsonl in {args.data_dir} (pass --data-dir)")
    if args.chats:
        chat_bench(args)
        return
    jsonl, parquet = write_pools(args.data_dir, args.rows, args.out)
    field_map = {"problem": "question", "chain": "solution"}
    print(f"# ingest bench, {platform.machine()} {platform.python_version()}: {args.rows} rows", flush=True)
    base, base_chains = timed(lambda: baseline_load(jsonl, field_map))
    new, new_chains = timed(lambda: len(load_pool(IngestOptions(source=str(jsonl), field_map=field_map)).chains))
    options = IngestOptions(source=str(parquet), field_map={"id": "uuid", "chain": "generations",
                            "correct": "correctness_math_verify"}, lists={"chain": "explode"})  # fmt: skip
    exploded, exploded_chains = timed(lambda: len(load_pool(options).chains))
    print(f"JSONL, previous reader: {base:.1f}s, {base_chains / base:,.0f} chains/s")
    print(f"JSONL, typed reader:    {new:.1f}s, {new_chains / new:,.0f} chains/s (x{new / base:.2f} the time)")
    print(f"parquet, exploded:      {exploded:.1f}s, {exploded_chains / exploded:,.0f} chains/s")


if __name__ == "__main__":
    main()
