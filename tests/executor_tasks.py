"""Shard functions the executor tests hand to local, Ray and Slurm (importable by name on every engine).

`quality_shard` scores a slice of CHAMP's unaided model chains with curation's rule-based quality score: a
real map step over real text, read from the chains file the test wrote once (`write_chains`: each task process
loaded the whole CHAMP pool for its slice before, about 1 s of CPU a process and 24 s over the suite). It records
every attempt in ``log_dir`` (one empty file per attempt, named with the shard and the process id and made unique,
so that a process id the system reuses cannot merge two attempts) so a test can count which shards ran, and when
``log_dir/kill-<index>`` exists it deletes that flag and dies by SIGKILL halfway through writing its rows
(``kill-always-<index>``: on every attempt), the way a pre-empted or OOM-killed task dies: ``self`` kills the task's
own process (a local pool worker, a Ray worker), ``worker`` also kills its parent, ``group`` kills the whole process
group (a local run killed with its driver).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def unaided_chains() -> tuple[Any, ...]:
    from curation.pool.champ import UNAIDED_SETTINGS, load_champ_pool

    return tuple(c for c in load_champ_pool().model_chains if c.prompt_setting in UNAIDED_SETTINGS)


def write_chains(path: Path) -> Path:
    """`unaided_chains` as JSON lines of ``{"id", "text"}`` at ``path`` (written once), for the shards to slice."""
    from eval.records import write_jsonl

    if not path.is_file():
        write_jsonl(path, ({"id": c.id, "text": c.text} for c in unaided_chains()))
    return path


def read_chains(path: str, start: int, stop: int) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in itertools.islice(handle, start, stop)]


def quality_shard(index: int, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from curation.options import QualityOptions
    from curation.stages.quality import keyword_pattern, score_text

    log_dir = Path(item["log_dir"])
    os.close(tempfile.mkstemp(prefix=f"attempt-{index}-{os.getpid()}-", dir=log_dir)[0])  # one file per attempt
    options = QualityOptions()
    patterns = {family: keyword_pattern(words) for family, words in options.keywords.items()}
    chains = read_chains(item["chains"], item["start"], item["stop"])
    kill_after = len(chains) // 2 if _take_kill_flag(log_dir, index) else None
    for position, chain in enumerate(chains):
        if position == kill_after:
            _die(item["kill"])
        result = score_text(chain["text"], options, patterns)
        yield {"chain_id": chain["id"], "quality": round(result["score"], 6), "words": result["words"]}


def _take_kill_flag(log_dir: Path, index: int) -> bool:
    if (log_dir / f"kill-always-{index}").exists():
        return True
    flag = log_dir / f"kill-{index}"
    if not flag.exists():
        return False
    flag.unlink()
    return True


def _die(mode: str) -> None:
    if mode == "group":
        os.killpg(os.getpgrp(), signal.SIGKILL)
    if mode == "worker":
        os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    """Run one job locally from a JSON spec on argv (the driver a test kills): ``{"items", "output_dir", "code"}``."""
    from curation.executors import ExecutorOptions, ShardJob, run_job
    from tests.executor_tasks import quality_shard as by_name  # not __main__.quality_shard: another job

    spec = json.loads(sys.argv[1])
    # The test's job carries its code digest, as a driver's does to its tasks: the driver's own would be read from the
    # files now, and a source file changed since the test built its job (another checkout's edit, a branch switch)
    # would send the shards to another folder than the one the test reads.
    job = ShardJob("quality", by_name, tuple(spec["items"]), spec["output_dir"], code=spec["code"])
    run_job(job, ExecutorOptions(kind="local", workers=spec.get("workers", 1)))


if __name__ == "__main__":
    main()
