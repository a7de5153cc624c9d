"""datatrove is pinned, because the executors make one private call into it.

`curation.executors.run_shard_task` runs one chosen shard through ``LocalPipelineExecutor._run_for_rank`` (the task
log, stats and completion marker every executor reads). datatrove's public way to run one rank,
``LocalPipelineExecutor(local_tasks=1, local_rank_offset=rank).run()``, starts a ``multiprocess`` manager process
per shard, has every shard rewrite the job's one ``stats.json`` and ``executor.json`` at once, and logs each task to
the console, so the private call stays, behind these tests: they fail when datatrove changes and say what to
re-check.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import tomllib

from curation.executors import ShardJob, completed_shards, read_shards, run_shard_task

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
RECHECK = (
    "before moving the pin in pyproject.toml, re-check what curation/executors.py takes from datatrove: "
    "run_shard_task calls the private LocalPipelineExecutor._run_for_rank(rank, local_rank=1), which must run that "
    "one rank, log to <logging_dir>/logs/task_<rank>.log and write <logging_dir>/completions/<rank:05d>; "
    "_run_slurm passes SlurmPipelineExecutor's arguments; curation/methods/mammoth2/steps.py subclasses JsonlReader "
    "and BaseFilter. Then update the version here and in pyproject.toml"
)


def pinned_version() -> str:
    """The ``datatrove==X`` of pyproject.toml's dependencies."""
    dependencies = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = [d.split("==", 1)[1] for d in dependencies if d.replace(" ", "").startswith("datatrove==")]
    assert len(pins) == 1, f"pyproject.toml must pin datatrove exactly once (datatrove==X), found {pins}"
    return pins[0]


def echo(index: int, item: Any) -> Iterator[dict[str, Any]]:
    """A shard function: one row naming its shard."""
    yield {"index": index, "item": item}


def test_the_installed_datatrove_is_the_pinned_one():
    installed, pinned = version("datatrove"), pinned_version()
    assert pinned == "0.10.1", f"pyproject.toml pins datatrove {pinned}, this test checked 0.10.1: {RECHECK}"
    assert installed == pinned, f"datatrove {installed} is installed, pyproject.toml pins {pinned}: {RECHECK}"


def test_run_for_rank_keeps_the_signature_run_shard_task_calls():
    from datatrove.executor import LocalPipelineExecutor

    signature = inspect.signature(LocalPipelineExecutor._run_for_rank)
    found = [(p.name, p.kind, p.default) for p in signature.parameters.values()]
    positional, empty = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty
    expected = [("self", positional, empty), ("rank", positional, empty), ("local_rank", positional, 0)]
    assert found == [*expected, ("node_rank", positional, -1)], (
        f"LocalPipelineExecutor._run_for_rank{signature} is not the signature 0.10.1 had: {RECHECK}"
    )


def test_run_for_rank_runs_one_shard_and_leaves_the_marker_the_executors_read(tmp_path):
    job = ShardJob("pin", echo, ("a", "b", "c"), str(tmp_path))
    run_shard_task(job, 1)
    assert completed_shards(job) == {1}, f"no completions/00001 marker after _run_for_rank: {RECHECK}"
    assert (job.logging_dir / "logs" / "task_00001.log").is_file(), f"no task log from _run_for_rank: {RECHECK}"
    assert json.loads(job.shard_path(1).read_text(encoding="utf-8")) == {"index": 1, "item": "b"}
    assert not job.shard_path(0).exists() and not job.shard_path(2).exists(), f"other ranks ran: {RECHECK}"
    run_shard_task(job, 0)
    run_shard_task(job, 2)
    assert [row["item"] for row in read_shards(job)] == ["a", "b", "c"]
