"""Runs kept in the repository (``results/<name>/``, `limo.ablation.store`) and work cut to the time at hand
(``--deadline``): an ablation cut by its deadline and finished from a fresh folder holding only its kept runs gives
the tables of one uninterrupted run; ``--report-only`` remakes them from the kept runs alone; docs/results.md's
ablation blocks are what the kept runs give; the primary the plan recorded before the first run is the one the
tables call declared.

The fast tests judge the pieces on folders laid out as the entries leave them; the slow one runs ``python -m
limo.ablate`` on the tiny model three times (cut, finished elsewhere, uninterrupted)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from limo.ablation import docs
from limo.ablation.results import primary_sentence
from limo.ablation.steps import WORTH_CUTTING, Step, duration, judged, needed_here
from limo.ablation.store import Store, read_rows
from limo.ablation.study import (
    build_study,
    compose_command,
    deadline_of,
    parse_command,
    record_plan,
    results_root,
    table_header,
)
from tests.launch import cold_environment, entry, run_group

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------- the command line


def test_a_deadline_is_a_duration_or_a_local_time_and_anything_else_ends_in_one_line(tmp_path):
    now = time.mktime((2026, 11, 28, 10, 0, 0, 0, 0, -1))
    assert deadline_of("--deadline", "2h", now) == now + 7200
    assert deadline_of("--deadline", "1h30m", now) == now + 5400
    assert deadline_of("--deadline", "600", now) == now + 600
    assert deadline_of("--until", "14:30", now) == now + 4.5 * 3600
    assert deadline_of("--until", "09:00", now) == now + 23 * 3600  # passed today: tomorrow's
    command = parse_command(["recipe=ablate_demo", "--deadline", "45m", "--results-dir", str(tmp_path)], now=now)
    assert command.deadline == now + 2700 and command.results_dir == str(tmp_path) and not command.report_only
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    bad = [sys.executable, "-m", "limo.ablate", "recipe=ablate_demo", "--deadline", "soon", f"output_dir={tmp_path}"]
    done = run_group(bad, cwd=REPO, timeout=120, env=env)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "limo.ablate: error: --deadline takes a duration such as 2h, 90m, 1h30m or 600s, got 'soon', the command line"
    ]


def test_runs_are_kept_beside_outputs_or_in_the_output_dir_or_where_the_command_says(tmp_path):
    assert results_root(tmp_path / "outputs" / "x", None, cwd=tmp_path) == tmp_path / "results" / "x"
    assert results_root(tmp_path / "scratch" / "x", None, cwd=tmp_path) == tmp_path / "scratch" / "x" / "results"
    assert results_root(tmp_path / "outputs" / "x", str(tmp_path / "kept"), cwd=tmp_path) == tmp_path / "kept"


# ------------------------------------------------------------------------------------------- the deadline


def steps_of(root: Path) -> list[Step]:
    run = root / "runs" / "b" / "seed0"
    return [Step("train", str(run), ("recipe=x",)), Step("evaluate", str(run), ("recipe=x",))]


def measured(root: Path, *rows: tuple[str, str, float]) -> dict:
    events = root / "events.jsonl"
    root.mkdir(parents=True, exist_ok=True)
    lines = [{"event": "ran", "stage": s, "folder": str(root / f), "seconds": t} for s, f, t in rows]
    events.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return {"events": str(events)}


def fits(steps: list[Step], states: list[str], item: dict) -> bool:
    """Whether the item's steps still to run are predicted to end before its deadline (none: always)."""
    verdict = judged(steps, states, item)
    return verdict.start and verdict.cut is None


def test_an_item_starts_only_when_its_steps_as_measured_here_end_before_the_deadline(tmp_path):
    root = tmp_path / "ablate"
    steps, todo = steps_of(root), ["todo", "todo"]
    item = measured(root)
    assert fits(steps, todo, {**item, "deadline": time.time() + 1})  # nothing measured: the first one starts
    assert fits(steps, todo, {**item, "deadline": None})
    item = measured(root, ("train", "runs/a/seed0", 100.0), ("evaluate", "runs/a/seed0", 20.0))
    assert fits(steps, todo, {**item, "deadline": time.time() + 200})  # another arm's: 120 s
    assert not fits(steps, todo, {**item, "deadline": time.time() + 100})
    assert fits(steps, ["here", "todo"], {**item, "deadline": time.time() + 100})  # its training is done
    item = measured(root, ("train", "runs/a/seed0", 100.0), ("train", "runs/b/seed1", 500.0))
    assert not fits(steps, todo, {**item, "deadline": time.time() + 300})  # its own arm's training: 500 s
    # the median of the arm's runs: one slowed by other work beside it (1000 s) does not defer a run that fits
    other = tmp_path / "other"
    slowed = measured(other, *[("train", f"runs/b/seed{i}", t) for i, t in enumerate((100.0, 1000.0, 120.0))])
    assert fits(steps_of(other), todo, {**slowed, "deadline": time.time() + 200})  # 120 s; the mean, 407 s, did not
    # a run kept in the results (another machine's) is reused, not run: it fits any deadline; a kept training that a
    # step still to run needs here runs again and counts (a kept campaign once called its finished runs deferred)
    assert fits(steps, ["kept", "kept"], {**item, "deadline": time.time() + 1})
    assert not fits(steps, ["kept", "todo"], {**item, "deadline": time.time() + 300})


def test_a_sampling_curation_or_an_evaluation_longer_than_the_time_left_starts_and_is_cut_a_training_waits(tmp_path):
    """A curation that samples the student for hours may never fit a call of the time a machine gives: deferred, the
    campaign never moved (a 2.3 h sampling against 2.6 h calls, in which the runs before it took their share). Cut at
    the deadline it keeps what it finished, so it starts when it gets ten minutes; a training, which starts over,
    still waits."""
    root = tmp_path / "ablate"
    run = root / "runs" / "rft" / "seed1"
    steps = [Step("curate", str(root / "runs" / "dpo" / "seed1"), ("recipe=x",)), Step("train", str(run), ("r=x",)),
             Step("evaluate", str(run), ("recipe=x",))]  # fmt: skip
    todo = ["todo"] * 3
    item = measured(root, ("curate", "runs/dpo/seed0", 8000.0), ("train", "runs/rft/seed0", 300.0),
                    ("evaluate", "runs/rft/seed0", 2000.0))  # fmt: skip
    verdict = judged(steps, todo, {**item, "deadline": time.time() + 3600})
    assert verdict.start and verdict.cut is steps[0] and verdict.predicted == 8000.0
    assert WORTH_CUTTING <= verdict.before <= 3600  # the deadline less the moments the test took
    assert not fits(steps, todo, {**item, "deadline": time.time() + 3600})  # it does not end before the deadline
    too_little = judged(steps, todo, {**item, "deadline": time.time() + WORTH_CUTTING - 10})
    assert not too_little.start and too_little.cut is steps[0]
    # its curation done, the evaluation is the one cut (700 s left after 300 s of training)
    verdict = judged(steps, ["here", "todo", "todo"], {**item, "deadline": time.time() + 1000})
    assert verdict.start and verdict.cut is steps[2]
    # a training that would be cut does not start: it would start over
    verdict = judged(steps, ["here", "todo", "todo"], {**item, "deadline": time.time() + 200})
    assert not verdict.start and verdict.cut is steps[1]
    assert judged(steps, todo, {**item, "deadline": time.time() + 11000}) == judged(steps, todo, {**item})
    assert [duration(s) for s in (8000.0, 700.0, 45.0)] == ["2 h 13 min", "12 min", "45 s"]


def test_a_step_kept_elsewhere_runs_here_only_when_a_later_step_of_its_run_still_has_to():
    assert needed_here(["kept", "kept", "kept", "todo"]) == [True, True, True, False]
    assert needed_here(["kept", "kept", "kept", "kept"]) == [False] * 4  # the after arm is done: no retraining
    assert needed_here(["here", "kept", "todo"]) == [False, True, False]
    assert needed_here(["kept", "todo", "kept"]) == [True, False, False]


# ------------------------------------------------------------------------------------------- the store


def test_a_kept_evaluation_holds_one_compact_row_a_problem_and_the_same_bytes_when_kept_again(tmp_path):
    ablation, store = tmp_path / "out" / "ablate", Store(tmp_path / "results", tmp_path / "out" / "ablate")
    run = ablation / "runs" / "a" / "seed0"
    (run / "eval" / "b").mkdir(parents=True)
    rows = [
        {"problem_id": f"p{i}", "sample_index": k, "correct": i == 0, "status": "correct" if i == 0 else "incorrect",
         "extracted": str(i), "response": f"so \\boxed{{{i}}}", "problem": "long text " * 50, "gold": "0",
         "level": 2, "model": "/somewhere"}
        for i in range(3) for k in range(2)
    ]  # fmt: skip
    (run / "eval" / "b" / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "eval" / "b" / "summary.json").write_text("{}")
    (run / ".ablate").mkdir()
    (run / ".ablate" / "evaluate.json").write_text(json.dumps({"status": "done", "key": "k", "benchmarks": {"b": 1}}))
    store.part_of = {"b": {"p0": "dev"}}
    store.keep("evaluate", run, store.parts())
    kept = store.root / "runs" / "a" / "seed0" / "eval" / "b"
    first = (kept / "samples.jsonl.gz").read_bytes()
    assert read_rows(kept / "samples.jsonl") == [
        {"problem_id": f"p{i}", "sample_index": 0, "part": "dev" if i == 0 else None, "correct": i == 0,
         "status": "correct" if i == 0 else "incorrect", "extracted": str(i), "response": f"so \\boxed{{{i}}}",
         "level": 2}
        for i in range(3)
    ]  # fmt: skip
    time.sleep(1.1)  # gzip's header would carry the time
    store.keep("evaluate", run, store.parts())
    assert (kept / "samples.jsonl.gz").read_bytes() == first and gzip.decompress(first)
    assert store.holds("evaluate", run, ["b"]) and not store.holds("train", run)


def test_the_plan_keeps_the_primary_declared_before_the_first_run_and_the_tables_say_when_it_changed(tmp_path):
    def study(*extra: str):
        command = parse_command(["recipe=ablate_demo", f"output_dir={tmp_path / 'out'}", *extra])
        return build_study(compose_command(command), command)[0]

    first = study("ablate.primary={pair: [curated, random_correct], benchmark: arith_heldout}")
    record_plan(first, {"curated": 2}, {}, ["recipe=ablate_demo"])
    store = Store(first.results, first.root)
    assert store.read_plan()["primary"]["pair"] == ["curated", "random_correct"]
    moved = study("ablate.primary={pair: [curated_rl, curated], benchmark: arith_heldout}")
    record_plan(moved, {"curated": 2}, {}, ["recipe=ablate_demo"])  # no run kept yet: the plan follows the recipe
    assert store.read_plan()["primary"]["pair"] == ["curated_rl", "curated"]
    marker = store.root / "runs" / "curated" / "seed0" / ".ablate" / "train.json"
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"status": "done", "key": "k"}))
    record_plan(first, {"curated": 2}, {}, ["recipe=ablate_demo"])  # a run is kept: the recorded primary stays
    assert store.read_plan()["primary"]["pair"] == ["curated_rl", "curated"]
    arms = [{"name": a, "kind": "curation", "rows": 1, "steps": 2} for a in ("curated", "random_correct")]
    store.write_plan({**store.read_plan(), "arms": arms})
    steps = {"curated": 2, "random_correct": 2, "curated_rl": 1}

    payload = {
        "statistics": {"holm_family": 3},
        "primary": {"pair": ["curated", "random_correct"], "benchmark": "arith_heldout", "part": None,
                    "turns": None, "in_table": True},
    }  # fmt: skip
    payload["primary_plan"] = table_header(first, steps, {}, ["recipe=ablate_demo"])["primary_plan"]
    sentence = primary_sentence(payload)
    assert "before the runs" in sentence and "declared in the recipe (ablate.primary) before the runs" not in sentence
    assert "the plan recorded curated_rl vs curated on arith_heldout before its first run" in sentence
    payload["primary_plan"] = table_header(moved, steps, {}, ["recipe=ablate_demo"])["primary_plan"]
    assert payload["primary_plan"]["unchanged"]
    assert "declared in the recipe (ablate.primary) before the runs" in primary_sentence(payload)


# ------------------------------------------------------------------------------------------- docs/results.md


@pytest.mark.slow
def test_every_ablation_block_in_docs_results_is_what_the_kept_runs_give():
    """A committed table that differs from what ``results/`` makes again fails here: run
    ``python -m limo.ablate --write-docs`` and commit both."""
    page = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    names = [m["name"] for m in docs.BLOCK.finditer(page)]
    assert {"smol_ablate_lemma", "smol_ablate_pref", "smol_ablate_rise", "smol_ablate_policies"} <= set(names)
    assert docs.render(page, REPO / "results") == page


def test_a_block_without_kept_runs_says_so_and_the_text_around_blocks_is_left_as_it_is(tmp_path):
    page = "# Results\n\nkept as written\n<!-- ablation: nothing_here -->\nold table\n<!-- /ablation -->\nafter\n"
    assert docs.render(page, tmp_path) == (
        "# Results\n\nkept as written\n<!-- ablation: nothing_here -->\n"
        "Not yet run: `python -m limo.ablate recipe=nothing_here`.\n<!-- /ablation -->\nafter\n"
    )
    given = ["recipe=x", "--deadline", "2h", "--results-dir=/a", "--jobs", "2", "--until", "1:00"]
    assert docs.run_command(given) == ["recipe=x", "--jobs", "2"]


# ------------------------------------------------------------------------------------------- cut, finished elsewhere

RECIPE = """# @package _global_
# The deadline's test at its cheapest: two arms, one seed, one step each, two problems of one benchmark.
defaults:
  - ablate_demo
  - _self_
curate:
  stages:
    ingest: {problem_limit: 20}
    select: {n: 8}
    report: {plots: false}
ablate:
  arms:
    - name: curated
    - name: random_correct
      baseline: random_correct
      n: curated
  seeds: [0]
  compute: {steps: 1}
  limit: 2
  benchmarks: [{name: arith_heldout, part_ranges: {first: [0, 1], rest: [1, null]}}]
  pairs: []
  primary: {pair: [curated, random_correct], benchmark: arith_heldout}
"""


def ablate(base: Path, *args: str) -> tuple[int, str, list[dict]]:
    """``limo.ablate`` on the recipe above with ``output_dir=<base>/out`` and its runs kept in ``<base>/results``;
    returns its exit status, its output and the steps it ran (stage, folder under the ablation)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = entry("limo.ablate", "--config-dir", str(base.parent / "conf"), "recipe=cut_demo")
    command += [f"output_dir={base / 'out'}", "--results-dir", str(base / "results"), *args]
    done = run_group(command, cwd=REPO, timeout=600, env=env)
    events = base / "out" / "ablate" / "events.jsonl"
    rows = [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []
    ran = [(e["stage"], e["folder"].rsplit("/ablate/", 1)[1]) for e in rows if e["event"] == "ran"]
    ran = sorted(r for r in ran if not r[1].endswith("/measured"))
    return done.returncode, done.stdout + done.stderr, ran


def tables(base: Path) -> tuple[str, dict]:
    """results.md without its header line, and results.json without what says where and when it was made."""
    folder = base / "out" / "ablate"
    text = (folder / "results.md").read_text().splitlines()
    payload = json.loads((folder / "results.json").read_text())
    for key in ("command", "machine", "written"):
        payload.pop(key)
    for run in payload["runs"]:
        run.pop("folder")
    return "\n".join(line for line in text if not line.startswith("Command: ")), payload


@pytest.mark.slow
def test_an_ablation_cut_by_its_deadline_and_finished_from_its_kept_runs_alone_equals_one_uninterrupted_run(
    tmp_path, tiny_model_dir
):
    (tmp_path / "conf" / "recipe").mkdir(parents=True)
    (tmp_path / "conf" / "recipe" / "cut_demo.yaml").write_text(RECIPE)
    model = f"model.path={tiny_model_dir}"
    cut = tmp_path / "cut"
    # What this machine measured before: curated's training at a second, random_correct's at a day. Within the hour
    # curated's run fits and random_correct's does not.
    measured = [("curated", 1), ("random_correct", 86400)]
    rows = [{"event": "ran", "stage": "train", "folder": f"{cut}/out/ablate/runs/{a}/measured", "seconds": t}
            for a, t in measured]  # fmt: skip
    (cut / "out" / "ablate").mkdir(parents=True)
    (cut / "out" / "ablate" / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, output, ran = ablate(cut, model, "--deadline", "1h")
    assert code == 75, output[-3000:]
    assert ran == [("curate", "arms/curated"), ("curate", "arms/random_correct/draw0"),
                   ("evaluate", "runs/curated/seed0"), ("train", "runs/curated/seed0")]  # fmt: skip
    line = next(x for x in output.splitlines() if x.startswith("[ablate] stopped"))
    assert "1 of 2 runs done" in line and line.endswith(f"--results-dir {cut / 'results'} {model} --deadline 1h")
    assert not (cut / "out" / "ablate" / "results.md").exists()
    plan = json.loads((cut / "results" / "plan.json").read_text())
    assert plan["primary"] == {"pair": ["curated", "random_correct"], "benchmark": "arith_heldout", "part": None,
                               "turns": None}  # fmt: skip

    screen = tmp_path / "screen"  # another machine, before the recipe's tables were ever made: the runs kept so far
    shutil.copytree(cut / "results", screen / "results")
    code, output, ran = ablate(screen, model, "--report-only", "ablate.only=[curated]")
    assert code == 0 and ran == [], output[-3000:]
    screened = (screen / "out/ablate/subsets/curated_seeds0/results.md").read_text()
    assert "| curated | curation | 8 | 1 | 1 |" in screened, screened  # its rows: as the kept plan recorded them
    assert "--report-only 'ablate.only=[curated]'`" in screened and "curated vs random_correct" in screened

    clone = tmp_path / "clone"  # another machine: a checkout holding only the kept runs
    shutil.copytree(cut / "results", clone / "results")
    code, output, ran = ablate(clone, model, "--deadline", "1h")
    assert code == 0, output[-3000:]
    run = "runs/random_correct/seed0-draw0"
    assert ran == [
        ("curate", "arms/curated"),
        ("curate", "arms/random_correct/draw0"),
        ("evaluate", run),
        ("train", run),
    ]
    kept_files = [p for p in (clone / "results").rglob("*") if p.is_file()]
    assert not [p for p in kept_files if p.suffix in (".safetensors", ".bin", ".gguf", ".pt")]
    assert sum(p.stat().st_size for p in kept_files) < 200_000  # two runs of two problems

    whole = tmp_path / "whole"
    code, output, _ = ablate(whole, model)
    assert code == 0, output[-3000:]
    assert tables(clone) == tables(whole)
    assert "declared in the recipe (ablate.primary) before the runs" in (clone / "out/ablate/results.md").read_text()

    fresh = tmp_path / "fresh"  # the tables again from the kept runs alone: nothing curated, trained or evaluated
    shutil.copytree(clone / "results", fresh / "results")
    code, output, ran = ablate(fresh, model, "--report-only")
    assert code == 0 and ran == [], output[-3000:]
    assert (fresh / "out/ablate/results.md").read_text() == (clone / "out/ablate/results.md").read_text()
    assert (fresh / "out/ablate/report.html").exists()

    page = "intro\n<!-- ablation: cut_demo -->\n<!-- /ablation -->\n"
    shutil.copytree(clone / "results", tmp_path / "kept" / "cut_demo")
    written = docs.render(page, tmp_path / "kept")
    assert "### Primary comparison: curated vs random_correct on arith_heldout" in written
    assert "| curated |" in written and docs.render(written, tmp_path / "kept") == written
    assert docs.render(written.replace("| curated |", "| cured |"), tmp_path / "kept") == written


def test_a_step_s_measured_seconds_leave_out_the_time_its_process_was_stopped(tmp_path):
    """The deadline predicts from measured steps; a campaign stopped with SIGSTOP (or Ctrl-Z) for minutes must not
    record them as the step's time (it once made the predictor decline runs that fit)."""
    script = tmp_path / "clock.py"
    script.write_text(
        "import sys, time\n"
        "from limo.ablation.steps import running_clock\n"
        "start = running_clock(); wall = time.monotonic()\n"
        "print('ready', flush=True)\n"
        "time.sleep(9)\n"
        "print(round(running_clock() - start, 1), round(time.monotonic() - wall, 1), flush=True)\n"
    )
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    process.send_signal(signal.SIGSTOP)
    time.sleep(6)
    process.send_signal(signal.SIGCONT)
    measured, wall = map(float, process.stdout.readline().split())
    process.wait(timeout=30)
    # 9 s of wall time, 6 of them stopped (the sleep ends by the wall clock): about 3 s its own. Bounds with seconds of
    # slack, so that a loaded machine's late ticks do not decide it: most of the stop left out, the run kept
    assert wall >= 8.5 and 1.0 <= measured <= wall - 4.0, (measured, wall)


def test_a_stop_kills_the_running_entries_and_spares_the_resource_tracker(tmp_path):
    """At the deadline (or SIGTERM) the ablation kills its children. multiprocessing's resource tracker is one of them
    once a pool has made a lock; killed, a new one was started as the pool let go of its locks, and printed a KeyError
    traceback for each into the user's log."""
    script = tmp_path / "stop.py"
    script.write_text(
        "import gc, multiprocessing, os, subprocess, sys\n"
        "from multiprocessing import resource_tracker\n"
        "from limo.ablation.study import end_children\n"
        "locks = [multiprocessing.get_context('spawn').Lock() for _ in range(3)]\n"
        "tracker = resource_tracker._resource_tracker._pid\n"
        "entry = subprocess.Popen(['sleep', '60'])\n"
        "end_children()\n"
        "print(entry.wait(timeout=30), os.waitpid(tracker, os.WNOHANG) == (0, 0), flush=True)\n"
        "del locks\n"
        "gc.collect()\n"
    )
    cold = cold_environment()  # a warm fork has its server's tracker
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=120, env=cold
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(-signal.SIGKILL), "True"], done.stdout  # the entry killed, the tracker alive
    assert "KeyError" not in done.stderr and "resource_tracker" not in done.stderr, done.stderr
