"""The executor layer on real engines: local (in process or a process pool), a local Ray instance, Slurm.

One job everywhere: CHAMP's 3,240 unaided model chains cut into 4 shards, each scored with curation's
quality function (`tests.executor_tasks.quality_shard`). Every executor must write byte-identical shard
files; a task killed halfway through writing (SIGKILL: no clean-up) must leave no partial shard, and the
rerun must run that shard (and on local, the shards the dead driver never reached) and nothing else.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from curation.executors import (
    ExecutorError,
    ExecutorOptions,
    ShardJob,
    completed_shards,
    read_shards,
    run_job,
    shard_ranges,
    write_rows_atomic,
)
from tests.executor_tasks import quality_shard, unaided_chains, write_chains
from tests.shared_data import REPO_ROOT

SHARDS = 4


def make_job(root: Path, kill: str = "self") -> ShardJob:
    log_dir = root / "attempts"
    log_dir.mkdir(parents=True, exist_ok=True)
    total = len(unaided_chains())
    chains = str(write_chains(root / "chains.jsonl"))
    items = tuple(
        {"start": start, "stop": stop, "log_dir": str(log_dir), "kill": kill, "chains": chains}
        for start, stop in shard_ranges(total, SHARDS)
    )
    return ShardJob("quality", quality_shard, items, str(root / "out"))


def attempts(job: ShardJob) -> dict[int, int]:
    log_dir = Path(job.items[0]["log_dir"])
    counts = dict.fromkeys(range(len(job.items)), 0)
    for path in log_dir.glob("attempt-*"):
        counts[int(path.name.split("-")[1])] += 1
    return counts


def shard_bytes(job: ShardJob) -> list[bytes]:
    return [path.read_bytes() for path in (job.shard_path(i) for i in range(len(job.items)))]


def arm_kill(job: ShardJob, index: int) -> None:
    (Path(job.items[index]["log_dir"]) / f"kill-{index}").touch()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[bytes]:
    """Shard files from a clean local run: what every executor must reproduce byte for byte."""
    job = make_job(tmp_path_factory.mktemp("reference"))
    run_job(job, ExecutorOptions(kind="local"))
    return shard_bytes(job)


# ---------------------------------------------------------------------------------------------- unit tier


def test_shard_ranges_cover_every_index_once():
    for total, shards in [(0, 3), (1, 4), (10, 3), (3240, 4), (7, 7), (5, 9)]:
        ranges = shard_ranges(total, shards)
        assert [i for start, stop in ranges for i in range(start, stop)] == list(range(total))
        assert len(ranges) == min(total, shards)
    with pytest.raises(ValueError, match="shards must be >= 1"):
        shard_ranges(5, 0)


def test_job_rejects_inputs_engines_cannot_carry(tmp_path):
    with pytest.raises(ExecutorError, match="shard 1 input is not JSON-serialisable"):
        ShardJob("bad", quality_shard, ({"a": 1}, {"b": object()}), str(tmp_path))
    with pytest.raises(ExecutorError, match="not importable by name"):
        ShardJob("bad", lambda index, item: [], ({"a": 1},), str(tmp_path))
    with pytest.raises(ExecutorError, match="unknown executor 'dask'"):
        run_job(make_job(tmp_path), ExecutorOptions(kind="dask"))


def test_job_folder_changes_with_inputs(tmp_path):
    job = make_job(tmp_path)
    moved = ShardJob(job.name, job.function, job.items[:-1] + ({**job.items[-1], "stop": 1},), job.output_dir)
    assert job.folder != moved.folder  # stale completion markers can never be reused for other inputs
    assert job.folder == make_job(tmp_path).folder
    upgraded = ShardJob(job.name, job.function, job.items, job.output_dir, code="another version")
    assert upgraded.folder != job.folder  # shards an older version of the code wrote are not reused
    assert pickle.loads(pickle.dumps(job)).folder == job.folder  # a task uses the driver's digest


def test_atomic_write_leaves_nothing_when_rows_fail(tmp_path):
    def rows():
        yield {"a": 1}
        raise RuntimeError("model server went away")

    target = tmp_path / "shard-00000.jsonl"
    with pytest.raises(RuntimeError, match="went away"):
        write_rows_atomic(target, rows())
    assert list(tmp_path.iterdir()) == []
    assert write_rows_atomic(target, iter([{"é": 1}, {"b": [2]}])) == 2
    assert target.read_text(encoding="utf-8") == '{"é": 1}\n{"b": [2]}\n'


def test_local_run_writes_every_shard_and_rerun_skips_them(tmp_path, reference):
    job = make_job(tmp_path)
    first = run_job(job, ExecutorOptions(kind="local", workers=2))
    assert first.ran == (0, 1, 2, 3) and first.skipped == ()
    assert shard_bytes(job) == reference
    rows = list(read_shards(job))
    assert [r["chain_id"] for r in rows] == [c.id for c in unaided_chains()]
    assert all(0.0 <= r["quality"] <= 1.0 for r in rows)
    second = run_job(job, ExecutorOptions(kind="local"))
    assert second.ran == () and second.skipped == (0, 1, 2, 3)
    assert attempts(job) == {0: 1, 1: 1, 2: 1, 3: 1}


def test_local_shard_error_names_the_shard_and_rerun_runs_only_missing(tmp_path, reference):
    job = make_job(tmp_path)
    run_job(job, ExecutorOptions(kind="local"))
    (job.logging_dir / "completions" / "00002").unlink()
    broken = ShardJob(job.name, job.function, job.items, job.output_dir)
    shutil.rmtree(Path(job.items[0]["log_dir"]))  # the shard function cannot record its attempt: it raises
    with pytest.raises(ExecutorError, match=r"shards \[2\] did not finish on local.*FileNotFoundError") as failed:
        run_job(broken, ExecutorOptions(kind="local"))
    logs = re.search(r"logs under (\S+)\)", str(failed.value))  # a folder named is one that exists
    assert Path(logs[1]).is_dir() if logs else "run in this process, so no log files" in str(failed.value)
    Path(job.items[0]["log_dir"]).mkdir()
    result = run_job(job, ExecutorOptions(kind="local"))
    assert result.ran == (2,) and attempts(job) == {0: 0, 1: 0, 2: 1, 3: 0}
    assert shard_bytes(job) == reference


def test_local_driver_killed_mid_shard_resumes_without_redoing_finished_shards(tmp_path, reference):
    job = make_job(tmp_path, kill="group")
    arm_kill(job, 2)
    spec = json.dumps({"items": list(job.items), "output_dir": job.output_dir, "code": job.code})
    driver = subprocess.run(
        [sys.executable, "-m", "tests.executor_tasks", spec],
        cwd=REPO_ROOT,
        start_new_session=True,  # its own process group: the task kills the driver, not pytest
        capture_output=True,
        timeout=300,
    )
    assert driver.returncode == -signal.SIGKILL, driver.stderr[-2000:]
    assert completed_shards(job) == {0, 1}
    assert not job.shard_path(2).exists() and list(job.folder.glob(".shard-00002.jsonl.*.tmp"))
    result = run_job(job, ExecutorOptions(kind="local"))
    assert result.ran == (2, 3) and result.skipped == (0, 1)
    assert attempts(job) == {0: 1, 1: 1, 2: 2, 3: 1}
    assert shard_bytes(job) == reference
    assert not list(job.folder.glob(".*.tmp"))


# ---------------------------------------------------------------------------------------------- Ray


@pytest.mark.slow
def test_ray_gives_local_bytes_and_reruns_a_killed_worker_alone(tmp_path, reference, ray_instance):
    job = make_job(tmp_path, kill="self")
    arm_kill(job, 2)
    options = ExecutorOptions(kind="ray", workers=2, mem_per_cpu_gb=0.5)
    result = run_job(job, options)
    assert result.ran == (0, 1, 2, 3)
    assert attempts(job) == {0: 1, 1: 1, 2: 2, 3: 1}  # Ray resubmitted the dead worker's shard only
    assert shard_bytes(job) == reference
    assert run_job(job, options).ran == ()
    assert ray_instance.is_initialized()  # run_job leaves an instance it did not start alone


# ---------------------------------------------------------------------------------------------- Slurm


@pytest.mark.slow
def test_slurm_gives_local_bytes_and_reruns_a_killed_task_alone(tmp_path, reference, slurm_cluster, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))  # sbatch --export=ALL: the task imports tests.executor_tasks
    job = make_job(tmp_path, kill="self")
    arm_kill(job, 2)
    options = ExecutorOptions(kind="slurm", workers=2, partition=slurm_cluster.partition, poll_seconds=1)
    with pytest.raises(ExecutorError, match=r"shards \[2\] did not finish on slurm"):
        run_job(job, options)
    assert completed_shards(job) == {0, 1, 3} and not job.shard_path(2).exists()
    rerun = run_job(job, options)
    assert rerun.ran == (2,) and rerun.skipped == (0, 1, 3)
    assert attempts(job) == {0: 1, 1: 1, 2: 2, 3: 1}
    assert shard_bytes(job) == reference


def test_slurm_needs_a_partition(tmp_path):
    with pytest.raises(ExecutorError, match="needs a partition"):
        run_job(make_job(tmp_path), ExecutorOptions(kind="slurm"))


# ---------------------------------------------------------------------------------------------- killed workers
# A shard whose process the kernel kills (SIGKILL: the OOM killer) is retried a bounded number of times, then
# the run stops naming it; it never waits forever (datatrove's own multiprocess pool and its Ray executor did).


def arm_kill_always(job: ShardJob, index: int) -> None:
    (Path(job.items[index]["log_dir"]) / f"kill-always-{index}").touch()


@pytest.mark.slow
def test_local_pool_reruns_a_killed_shard_and_gives_the_same_bytes(tmp_path, reference):
    job = make_job(tmp_path, kill="self")
    arm_kill(job, 2)
    result = run_job(job, ExecutorOptions(kind="local", workers=2))
    assert result.ran == (0, 1, 2, 3) and completed_shards(job) == {0, 1, 2, 3}
    counts = attempts(job)  # the pool also ends the shard running beside the killed one: it runs again
    assert counts[2] == 2 and sum(counts.values()) <= 6 and all(counts.values())
    assert shard_bytes(job) == reference and not list(job.folder.glob(".*.tmp"))


@pytest.mark.slow
def test_local_pool_stops_naming_a_shard_killed_on_every_try(tmp_path):
    job = make_job(tmp_path, kill="self")
    arm_kill_always(job, 1)
    with pytest.raises(ExecutorError, match=r"quality: shard 1 was killed 3 times .*executor.retries=2"):
        run_job(job, ExecutorOptions(kind="local", workers=2, retries=2))
    assert attempts(job)[1] == 3 and not job.shard_path(1).exists()


@pytest.mark.slow
def test_ray_reruns_a_killed_shard_and_stops_on_one_killed_every_time(tmp_path, reference, ray_instance):
    job = make_job(tmp_path / "once", kill="self")
    arm_kill(job, 2)
    options = ExecutorOptions(kind="ray", workers=2, mem_per_cpu_gb=0.5, retries=1)
    assert run_job(job, options).ran == (0, 1, 2, 3)
    assert attempts(job) == {0: 1, 1: 1, 2: 2, 3: 1} and shard_bytes(job) == reference
    always = make_job(tmp_path / "always", kill="self")
    arm_kill_always(always, 3)
    with pytest.raises(ExecutorError, match=r"quality: shard 3 was killed 2 times"):
        run_job(always, options)
    assert attempts(always)[3] == 2 and completed_shards(always) == {0, 1, 2}


@pytest.mark.slow
def test_a_controller_that_fails_to_answer_is_asked_again_before_the_wait_gives_up(tmp_path, monkeypatch, capsys):
    """`_wait_for_slurm` over an ``squeue`` that fails twice with nothing on stderr (as a loaded controller did), then
    lists nothing: the job is done; one that always fails ends the wait after `SQUEUE_TRIES` failures in a row."""
    from curation import executors

    counter = tmp_path / "calls"
    script = tmp_path / "squeue"
    script.write_text(
        f"#!/bin/sh\nn=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}\n"
        f'[ "$n" -le "${{FAIL_UNTIL:-2}}" ] && exit 1\nexit 0\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    executors._wait_for_slurm("7", 0.01)
    assert counter.read_text().strip() == "3"
    assert capsys.readouterr().err.count("squeue failed for job 7 (exit status 1, nothing on stderr)") == 2

    counter.unlink()
    monkeypatch.setenv("FAIL_UNTIL", "99")
    with pytest.raises(executors.ExecutorError, match=r"failed for job 7 5 times in a row: exit status 1"):
        executors._wait_for_slurm("7", 0.01)
    assert counter.read_text().strip() == str(executors.SQUEUE_TRIES)
