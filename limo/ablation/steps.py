"""One step of an ablation — ``python -m limo.<curate|train|evaluate> ...`` in its own process — done once.

A step is done when its entry finished: ablate's marker ``<folder>/.ablate/<stage>.json`` (written atomically after
the process exits 0, with the arguments ablate chose and the checksums of its inputs), or, for a folder that has
no marker (made by hand or by an older script), the entry's own last output: ``curate/manifest.json``;
``train/log_history.json`` beside ``train/model/config.json``. An evaluation is done when every benchmark has its
``eval/<benchmark>/summary.json``, and runs only the benchmarks without one (a benchmark added later is evaluated
alone). A done step is reused, never run again; a marker whose
arguments or inputs differ from the step's is an error that names the folder (its results would belong to other
settings), not a silent rerun. A step killed half-way has no marker and runs again: ``limo.evaluate`` resumes from
its samples, the others start over.

The entry process dies with the process that started it (Linux: ``PR_SET_PDEATHSIG``), and a pool worker
(``--jobs N``) ends itself when the ablation is gone (`watch_driver`), so a killed ablation leaves no orphan writing
into a folder its resume will use; a lock file per folder and stage keeps two ablations on one output_dir
from running the same step at once. Every step appends ``ran`` or ``reused`` to the study's
``events.jsonl`` (one line, one write).

`run_item` is the shard function the executor runs (`curation.executors.ShardJob`): one item per run (or
curation), its steps in order, one output row per step.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curation.executors import ExecutorError
from eval.records import sha256_file, write_json

PR_SET_PDEATHSIG = 1
DRIVER = "LIMO_ABLATE_DRIVER"  # the ablation's process id, in the environment of its pool's workers
log = logging.getLogger("limo.ablate")


class StepError(ExecutorError):
    """An entry point that failed, or a finished folder made by other settings."""


@dataclass(frozen=True)
class Step:
    """``python -m limo.<stage> <own> <extra> output_dir=<folder>``.

    Attributes:
        stage: ``curate``, ``train`` or ``evaluate``.
        folder: The entry's ``output_dir``.
        own: The arguments ablate sets (compared with the marker's on a resume).
        extra: The user's overrides and config-folder flags (not compared).
        inputs: Files whose checksums the marker keeps (a training run's data).
        benchmarks: An evaluation's benchmarks (it runs those without a summary).
    """

    stage: str
    folder: str
    own: tuple[str, ...]
    extra: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    benchmarks: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Step:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in row.items()})

    @property
    def marker(self) -> Path:
        return Path(self.folder) / ".ablate" / f"{self.stage}.json"

    def command(self, benchmarks: Sequence[str] | None = None) -> list[str]:
        names = self.benchmarks if benchmarks is None else benchmarks
        chosen = [f"benchmarks=[{','.join(names)}]"] if self.stage == "evaluate" else []
        return [
            sys.executable,
            "-m",
            f"limo.{self.stage}",
            *self.own,
            *chosen,
            *self.extra,
            f"output_dir={self.folder}",
        ]

    def record(self) -> dict[str, Any]:
        """What the marker keeps: the arguments ablate chose and the checksums of the inputs."""
        return {"own": list(self.own), "inputs": {p: sha256_file(p) for p in self.inputs}}


def missing_benchmarks(step: Step) -> list[str]:
    return [b for b in step.benchmarks if not (Path(step.folder) / "eval" / b / "summary.json").exists()]


def outputs_complete(step: Step) -> bool:
    """Whether the entry's own last outputs are there (a folder ablate did not make, or did not mark)."""
    folder = Path(step.folder)
    if step.stage == "curate":
        return (folder / "curate" / "manifest.json").exists()
    if step.stage == "train":
        return (folder / "train" / "log_history.json").exists() and (
            folder / "train" / "model" / "config.json"
        ).exists()
    return not missing_benchmarks(step)


def is_done(step: Step) -> bool:
    """Whether ``step`` finished before (see the module's docstring).

    Raises:
        StepError: Its marker records other arguments or inputs.
    """
    if step.marker.exists():
        check_marker(step)
        return step.stage != "evaluate" or not missing_benchmarks(step)
    return outputs_complete(step)


def check_marker(step: Step) -> None:
    then = json.loads(step.marker.read_text(encoding="utf-8"))
    now = step.record()
    if then == now:
        return
    if then.get("own") != now["own"]:
        old, new = set(then.get("own", [])), set(now["own"])
        change = f"then {sorted(old - new)}, now {sorted(new - old)}"
    else:
        change = f"its input changed since ({', '.join(step.inputs)})"
    raise StepError(
        f"{step.folder} was made by other settings ({step.stage}: {change}); delete that folder to redo it, or "
        "give the ablation another output_dir"
    )


def die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies (Linux), so no entry outlives a killed ablation."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def watch_driver(every: float = 1.0) -> None:
    """In a pool worker (``--jobs N``): end this process when the ablation that started the pool is gone.

    The worker's parent is the pool's server process, which outlives a killed ablation, so the kernel's
    parent-death signal cannot tell; a thread polls the driver's process id (`DRIVER`) instead. The worker's
    running entry dies with it (`die_with_parent`). Started once per process; a no-op in the driver itself.
    """
    driver = os.environ.get(DRIVER)
    if not driver or int(driver) == os.getpid() or getattr(watch_driver, "started", False):
        return
    watch_driver.started = True  # type: ignore[attr-defined]

    def watch() -> None:
        while True:
            try:
                os.kill(int(driver), 0)
            except ProcessLookupError:
                os._exit(1)
            time.sleep(every)

    threading.Thread(target=watch, name="ablate-driver-watch", daemon=True).start()


@contextmanager
def folder_lock(step: Step) -> Iterator[None]:
    """An exclusive lock on the step's folder and stage (released by the kernel when the holder dies)."""
    lock = step.marker.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def run_step(step: Step, output: str | None, events: str, cwd: str) -> dict[str, Any]:
    """Run ``step`` unless it is done; returns its event row (``ran`` or ``reused``, seconds).

    Raises:
        StepError: The entry exited non-zero (its command and log named), or a finished folder is stale.
    """
    with folder_lock(step):
        if is_done(step):
            return event(events, step, "reused", 0.0)
        names = missing_benchmarks(step) if step.stage == "evaluate" else None
        command = step.command(names)
        log.info("[ablate] $ %s", " ".join(command))
        started = time.monotonic()
        code = launch(command, output, cwd)
        if code != 0:
            where = f"its output: {output}" if output else "its output is above"
            raise StepError(f"limo.{step.stage} exited {code} in {step.folder} ({where})")
        write_json(step.marker, step.record())
        return event(events, step, "ran", time.monotonic() - started)


def launch(command: list[str], log: str | None, cwd: str) -> int:
    """The entry's exit status; its output appended to ``log`` (None: this process's own output)."""
    preexec = die_with_parent if sys.platform.startswith("linux") else None
    if log is None:
        return subprocess.run(command, cwd=cwd, check=False, preexec_fn=preexec).returncode
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        done = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, preexec_fn=preexec)
    return done.returncode


def event(events: str, step: Step, what: str, seconds: float) -> dict[str, Any]:
    """Append one line to ``events.jsonl`` (a single write: lines from processes side by side do not mix)."""
    row = {"event": what, "stage": step.stage, "folder": step.folder, "seconds": round(seconds, 1), "pid": os.getpid()}
    Path(events).parent.mkdir(parents=True, exist_ok=True)
    with open(events, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    return row


def run_item(index: int, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The shard function: an item's steps in order (a run's training, then its evaluation)."""
    del index
    watch_driver()
    if not logging.getLogger().handlers:  # a worker process: its progress lines go where the driver's do
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    output = None if item.get("console") else item["log"]
    for row in item["steps"]:
        done = run_step(Step.from_dict(row), output, item["events"], item["cwd"])
        log.info("[ablate] %s: %s %s (%.0f s)", item["label"], done["stage"], done["event"], done["seconds"])
        yield done
