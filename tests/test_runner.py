"""The one runner: decisions that do not depend on how the pool is cut into shards, resumes, saved buckets.

Every method's pool stages run on `curation.stages.run_pool`; golden outputs (`tests/test_golden_outputs.py`) pin
each recipe's decisions. Here the same pools are curated with parts of a few rows (every stage then merges many
shards) and with one part, and must give the same files byte for byte: ``curated.jsonl``, ``messages.jsonl``,
``rejects.jsonl`` and ``curated.parquet``, the same funnel (seconds aside) and the same manifest (its
``execution`` entry aside). The edge-case pool is built here so that each rule has a case: bad rows, a
contradicting gold, a repeated chain row, a gold override, exact and near-duplicate problems (a near-duplicate of
a dropped near-duplicate is kept), duplicate chains, a benchmark copy, hinted settings, a suspect gold dropped,
weak / strong filters, structural quality drops, both diversity methods.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from curation.executors import ExecutorOptions
from curation.methods import METHODS, RunContext
from curation.options import StageOptions
from curation.runner import StageContext
from curation.stages.dedup import save_buckets
from eval.backends.replay import ReplayBackend
from eval.benchmarks.loader import BenchmarkSpec
from eval.options import to_options
from tests.curation_outputs import assert_same_outputs as same_outputs
from tests.funnel_schema import check_one_schema

WORDS = (
    "integer triangle circle sequence prime square digit angle chord radius polygon vertex function root "
    "series sum product ratio area volume probability coin dice grid path tiling graph edge color"
).split()


def run_both(stages: StageOptions, root: Path, specs: dict | None = None, shard_rows: int = 5) -> tuple[Path, Path]:
    """Curate once in one part and once in parts of ``shard_rows`` rows (local executor)."""
    method = METHODS["limo"]
    whole, parts = root / "whole", root / "parts"
    context = RunContext(whole, 7, "test", specs or {}, executor=ExecutorOptions(kind="local"))
    method.run(stages, None, context)
    executor = ExecutorOptions(kind="local", shard_rows=shard_rows)
    method.run(stages, None, replace(context, output_dir=parts, executor=executor))
    return whole / "curate", parts / "curate"


def assert_same_outputs(whole: Path, parts: Path) -> None:
    same_outputs(whole, parts, ("local", "local"))
    check_one_schema(parts, "limo")


@pytest.mark.shared_data
def test_champ_in_parts_matches_its_golden_outputs(tmp_path: Path, shared_data: Path):
    from tests.golden_outputs import differences, run_case

    data_dir = shared_data.resolve()
    out = run_case("champ", tmp_path / "run", data_dir, "executor.shard_rows=4000")
    changed = differences("champ", out, {str(tmp_path / "run"): "<output_dir>", str(data_dir): "<data_dir>"})
    assert not changed, "\n".join(changed)
    assert json.loads((out / "manifest.json").read_text())["execution"]["chain_parts"] == 5  # 19,710 in 4,000s


def _text(rng: random.Random, words: int = 30) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _chain(rng: random.Random, answer: str, correct: bool, boxed: bool = True) -> str:
    body = f"Let us verify each case. Perhaps {_text(rng, 40)}, therefore we check again."
    value = answer if correct else str(int(answer) + 1000)
    return f"{body} The answer is \\boxed{{{value}}}." if boxed else body


def edge_case_pool(folder: Path) -> tuple[Path, Path, Path]:
    """A JSONL pool, a gold-overrides file and a one-item benchmark folder exercising every stage's rules."""
    rng = random.Random(3)
    rows: list[dict | str] = []
    subjects = ("algebra", "geometry", "number theory", "combinatorics")
    texts = {}
    for i in range(16):
        pid, answer = f"p{i}", str(i + 2)
        texts[pid] = f"Problem {i}: {_text(rng)} Find the value."
        base = {"id": pid, "problem": texts[pid], "answer": answer, "subject": subjects[i % 4]}
        rows.append({**base, "chain": _chain(rng, answer, True), "generator": "human", "final_answer": answer})
        for j in range(3):
            rows.append(
                {**base, "chain": _chain(rng, answer, j < i % 3), "generator": "W", "prompt_setting": "0-Shot"}
            )
        for j in range(4):
            correct = (j + i) % 4 != 0
            rows.append({**base, "chain": _chain(rng, answer, correct), "generator": "S", "prompt_setting": "5-Shot"})
    p1 = next(r for r in rows if isinstance(r, dict) and r["id"] == "p1" and r["generator"] == "S")
    rows.append(dict(p1))  # the same chain text again: rejected at ingest
    rows.append({**p1, "answer": "12345", "chain": "another chain \\boxed{3}"})  # contradicts p1's gold
    rows.append('{"id": "broken", "problem": ')  # not JSON
    rows.append({"id": "nochain", "problem": "What is one plus one?", "answer": "2"})  # no chain
    rows.append({**p1, "chain": _chain(rng, "3", True), "prompt_setting": "1/3 Soln"})  # hinted: validate drops it
    rows.append({**p1, "chain": "so we add one more " * 40 + "\\boxed{3}", "prompt_setting": "0-Shot"})  # a loop
    rows.append({**p1, "chain": "Musings with no conclusion at all", "prompt_setting": "0-Shot"})  # no answer
    rows.append({**p1, "chain": p1["chain"] + "  ", "prompt_setting": "0-Shot"})  # duplicate chain after normalising
    for _ in range(4):  # p5's strong attempts agree on 99: a suspect gold
        rows.append({**rows[1 + 8 * 5], "chain": f"Check: {_text(rng, 20)} \\boxed{{99}}", "generator": "S"})
    dup = {"id": "p0copy", "problem": texts["p0"].upper() + "!!", "answer": "2", "subject": "algebra"}
    rows.append({**dup, "chain": _chain(rng, "2", True), "generator": "human", "final_answer": "2"})
    trio = [f"w{i}" for i in range(40)]  # shingle Jaccard: n1~n2 0.85, n2~n3 0.85, n1~n3 0.73
    variants = (trio, trio[:10] + ["x"] + trio[11:], trio[:10] + ["x"] + trio[11:30] + ["y"] + trio[31:])
    golds = ("9", "9", "10")  # n3's gold differs, so its 0.73 to n1 stays below the same-gold threshold's reach
    for pid, words, gold in zip(("n1", "n2", "n3"), variants, golds, strict=True):  # n2 goes; n3 resembles n2 only
        base = {"id": pid, "problem": " ".join(words), "answer": gold, "subject": "geometry"}
        rows.append({**base, "chain": _chain(rng, gold, True), "generator": "human", "final_answer": gold})
        rows.append({**base, "chain": _chain(rng, gold, False), "generator": "W", "prompt_setting": "0-Shot"})
    pool = folder / "pool.jsonl"
    pool.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    overrides = folder / "overrides.yaml"
    overrides.write_text("p2:\n  was: '4'\n  answer: '5'\n  justification: test correction\n")
    benchmark = folder / "bench"
    benchmark.mkdir()
    item = {"id": "b1", "problem": texts["p7"], "answer": "9"}
    (benchmark / "bench.jsonl").write_text(json.dumps(item) + "\n")
    return pool, overrides, benchmark


@pytest.mark.parametrize("diversity", ["quota", "s1"])
def test_edge_case_pool_in_parts_equals_one_part(tmp_path: Path, diversity: str):
    pool, overrides, benchmark = edge_case_pool(tmp_path)
    stages = to_options(
        StageOptions,
        {
            "ingest": {"source": str(pool), "gold_overrides": str(overrides), "field_map": {"generator": "generator"}},
            "validate": {"allowed_settings": ["0-Shot", "5-Shot"]},
            "answer_check": {"keep_incorrect": diversity == "s1", "timeout_s": 60.0},
            "dedup": {"threshold": 0.8},
            "decontam": {"benchmarks": ["bench"], "data_dir": str(benchmark)},
            "suspect_gold": {"models": ["S"], "min_agreeing": 3, "action": "drop"},
            "difficulty": {
                "weak_models": ["W"],
                "weak_max_solved": 2,
                "strong_models": ["S"],
                "strong_pass_rate": [0.0, 0.9],
            },
            "diversity": {"method": diversity, "max_per_domain": 2},
            "select": {"n": 5},
        },
    )
    specs = {"bench": BenchmarkSpec(name="bench", local_file="bench.jsonl")}
    whole, sharded = run_both(stages, tmp_path, specs, shard_rows=7)
    assert_same_outputs(whole, sharded)
    rejects = [json.loads(line) for line in (sharded / "rejects.jsonl").read_text().splitlines()]
    reasons = {(r["kind"], r["reason"]) for r in rejects}
    expected = {
        ("row", "invalid_row"),
        ("chain", "setting_not_allowed"),
        ("problem", "duplicate_problem"),
        ("problem", "near_duplicate_problem"),
        ("chain", "duplicate_chain"),
        ("problem", "contaminated:bench"),
        ("problem", "suspect_gold"),
        ("chain", "repetition_loop"),
        ("chain", "no_final_answer" if diversity == "s1" else "answer_no_answer"),  # s1: incorrect chains kept
        ("chain", "not_best_chain"),
    }
    assert expected <= reasons, expected - reasons
    near = {
        r["id"]: r["detail"] for r in rejects if r["reason"] == "near_duplicate_problem" and r["kind"] == "problem"
    }
    assert list(near) == ["n2"] and near["n2"]["duplicate_of"] == "n1"  # n3 resembles only the dropped n2
    assert near["n2"]["match"].startswith("shingles") and 0.5 <= near["n2"]["similarity"] <= 1
    manifest = json.loads((sharded / "manifest.json").read_text())
    assert manifest["gold_overrides"][0]["problem_id"] == "p2"
    rows = " | ".join(r["detail"]["reason"] for r in rejects if r["kind"] == "row")
    for reason in ("invalid JSON", "missing required field 'chain'", "contradicts", "appears in an earlier row"):
        assert reason in rows


def test_a_rerun_reuses_every_finished_job(tmp_path: Path):
    pool, overrides, _ = edge_case_pool(tmp_path)
    stages = to_options(StageOptions, {"ingest": {"source": str(pool)}, "decontam": {"enabled": False}})
    executor = ExecutorOptions(kind="local", shard_rows=7)
    context = RunContext(tmp_path / "run", 0, "test", executor=executor)
    METHODS["limo"].run(stages, None, context)
    markers = sorted((tmp_path / "run" / "curate" / "work" / "jobs").glob("*/datatrove/completions/*"))
    stamps = {m: m.stat().st_mtime_ns for m in markers}
    first = (tmp_path / "run" / "curate" / "curated.jsonl").read_bytes()
    METHODS["limo"].run(replace(stages, select=replace(stages.select, n=3)), None, context)
    assert {m: m.stat().st_mtime_ns for m in markers} == stamps  # no shard of any stage ran again
    again = (tmp_path / "run" / "curate" / "curated.jsonl").read_bytes()
    assert again.splitlines() == first.splitlines()[:3]


class StoppingReplay(ReplayBackend):
    """Recorded replies; the first instance stops (as Ctrl-C would) when asked for its third batch."""

    built = 0

    def __init__(self, pool):
        super().__init__(pool=pool)
        StoppingReplay.built += 1
        self.stop_at = 2 if StoppingReplay.built == 1 else None
        self.batches = 0

    def generate(self, requests):
        if self.batches == self.stop_at:
            raise KeyboardInterrupt("stopped")
        self.batches += 1
        return super().generate(requests)


def test_a_rollout_chunk_stopped_halfway_resumes_from_its_generations(tmp_path: Path, monkeypatch):
    from curation.rollouts.run import run_rollout_stages
    from eval.backends.registry import BACKENDS

    problems = [{"id": f"q{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(3)]
    replies = {p["id"]: [f"\\boxed{{{2 * i + (i % 2)}}}"] for i, p in enumerate(problems)}
    monkeypatch.setattr(StoppingReplay, "built", 0)
    monkeypatch.setitem(BACKENDS, "stopping", lambda **_: StoppingReplay(replies))
    generator = {"backend": "stopping", "model": "m", "batch_size": 2}
    stages = to_options(
        StageOptions,
        {
            "difficulty": {
                "source": "rollouts",
                "strong_models": ["m"],
                "strong_pass_rate": [0.5, 1.0],
                "strong_rollouts": {"k": 4, "generator": generator},
            }
        },
    )
    with pytest.raises(KeyboardInterrupt):
        run_rollout_stages(iter(problems), stages, tmp_path, 0, ExecutorOptions(kind="local"))
    records = sorted((tmp_path / "cache").glob("*.attempts.jsonl"))
    caches = [p for p in (tmp_path / "cache").glob("*.jsonl") if not p.name.endswith(".attempts.jsonl")]
    assert len(records) == 1 and sum(len(p.read_text().splitlines()) for p in caches) == 4  # two batches of two
    outcome = run_rollout_stages(iter(problems), stages, tmp_path, 0, ExecutorOptions(kind="local"))
    # round 1 asks each problem for 2 samples (the window 2..4 of 4 can be decided after 2)
    assert [json.loads(line) for line in records[0].read_text().splitlines()] == [
        {"requests": 6, "cached": 0},
        {"requests": 6, "cached": 4},  # the rerun found the stopped attempt's generations and asked for the rest
    ]
    solved, drawn = outcome.counts()["m"]
    # q1 fails twice, then once more decides its drop; q0 and q2 are kept and completed to k = 4
    assert solved.tolist() == [4, 0, 4] and drawn.tolist() == [4, 3, 4]
    assert outcome.manifest()["generations"] == 11 and outcome.manifest()["fixed_k_staged"] == 12


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("layout", "fallback"),
    [(layout, "recipe") for layout in ("gair_limo", "numina_cot", "s1k", "s1k_1_1", "openr1_math", "math")]
    + [("openr1_math", "length")],
)
def test_pool_layouts_in_parts_equal_one_part(layout: str, fallback: str, shared_data: Path, tmp_path: Path):
    """Each example layout's recipe (typed rows, list rules, chat turns, golds read from chains, the pool's own
    correctness labels, metadata difficulty, the trust rules) gives the same outputs in parts as in one; with
    difficulty off, so is selection's chain-length fallback. Small planted pools, parts of 40 rows."""
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation
    from tests.pool_builder import Sizes, build_pool

    sizes = Sizes(clean=40, wrong=8, contaminated_per_benchmark=2, near_duplicate_groups=4)
    pool, _ = build_pool(layout, shared_data, tmp_path / "pool", 5, sizes)
    overrides = [f"curate.stages.ingest.source={pool}", f"data_dir={shared_data}", "++curate.stages.select.n=20"]
    if fallback == "length":
        overrides.append("++curate.stages.difficulty.enabled=false")
    curation = build_curation(compose(f"pool_{layout}", overrides))
    whole, sharded = run_both(curation.stages, tmp_path, curation.context.benchmark_specs, shard_rows=40)
    assert_same_outputs(whole, sharded)
    manifest = json.loads((sharded / "manifest.json").read_text())
    assert manifest["pool"]["provenance"]["ingest"]["generators"]  # the trust facts came through the store
    if fallback == "length":
        assert manifest["difficulty"]["selection"] == "chain_length"


def test_lsh_buckets_are_saved_for_the_candidate_tasks_to_memory_map(tmp_path):
    """The driver saves the buckets once (a partial folder from a killed run is replaced, a finished one is
    reused) and the candidate tasks read them memory-mapped; no bucket with two members saves nothing."""
    context = StageContext(0, {}, tmp_path, ExecutorOptions())
    problems = np.array([10, 11, 12, 13], dtype=np.int64)
    assert save_buckets(context, problems, np.arange(8, dtype=np.uint32).reshape(4, 2)) is None
    bands = np.array([[1, 7], [1, 8], [2, 8], [3, 9]], dtype=np.uint32)  # 10 and 11 share band 0, 11 and 12 band 1
    name = save_buckets(context, problems, bands)
    assert name is not None
    shutil.rmtree(name)
    partial = name.with_name(f".{name.name}.partial")
    partial.mkdir()
    (partial / "problems.npy").write_bytes(b"cut off by a kill")
    folder = save_buckets(context, problems, bands)
    assert folder == name and not partial.exists()
    members, starts, band = (np.load(folder / f"{k}.npy", mmap_mode="r") for k in ("members", "starts", "band"))
    assert isinstance(members, np.memmap)
    assert [members[a:b].tolist() for a, b in zip(starts[:-1], starts[1:], strict=True)] == [[0, 1], [1, 2]]
    assert band.tolist() == [0, 1]
    assert np.array_equal(np.load(folder / "problems.npy", mmap_mode="r"), problems)
    stamp = (folder / "bands.npy").stat().st_mtime_ns
    assert save_buckets(context, problems, bands) == folder and (folder / "bands.npy").stat().st_mtime_ns == stamp


def test_a_context_is_read_as_written_in_its_process_and_unpickled_in_another(tmp_path):
    """A local run's tasks read the driver's own object (`curation.runner.load_context`); a task in another process
    (a worker, Ray, Slurm) unpickles an equal copy; the process keeps the last four it wrote."""
    import subprocess
    import sys

    from curation.runner import load_context, write_context

    value = {"grams": {"a b c": [0, 2]}, "weights": [0.5, 1.25]}
    path = write_context(tmp_path, {"index": "k"}, value)
    assert load_context(path) is value
    code = f"from curation.runner import load_context; print(load_context({path!r}) == {value!r})"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "True"
    later = [write_context(tmp_path, {"index": i}, [i]) for i in range(4)]  # four more: the first one falls out
    load_context.cache_clear()
    assert load_context(later[0]) == [0] and load_context(path) == value and load_context(path) is not value
