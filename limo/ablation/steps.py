"""One step of an ablation — ``python -m limo.<curate|train|evaluate> ...`` in its own process — done once.

A step is done when its entry finished with the settings and inputs the step has now: ablate's marker
``<folder>/.ablate/<stage>.json`` holds the step's content key (`limo.ablation.markers`: its composed config and
its inputs' checksums), written ``started`` before the entry runs and ``done`` (atomically) after it exits 0. An
evaluation is done when every benchmark has its ``eval/<benchmark>/summary.json`` made with the benchmark's spec of
now, and runs only the others (a benchmark added later is evaluated alone).

A done step whose key is the step's is reused, never run again. One whose key differs — ``model.path``, the
backend, any override the entry reads, its training data, the model it starts from or evaluates — runs again: one
line says which keys or inputs changed, and its earlier output (``curate/``, ``train/`` or ``eval/``) is removed
first, so a table never mixes runs made two ways; the steps that read its output see their inputs change and run
again in turn. A step killed half-way (``started``, same key) runs again on what it left: ``limo.evaluate`` resumes
from its samples, the others start over; one whose entry had finished is found done.

Output without a marker of this kind — made by hand, by a limo whose markers kept only the arguments ablate chose
(not ``model.path`` nor the backend), or with no marker at all — is refused, naming the folder, unless the command
says ``--accept-old-markers``: then an old marker whose arguments and data checksums match, and finished output
with no marker, are taken as made by the settings of now (and marked so); an old marker that does not match runs
again.

The entry process dies with the process that started it (Linux: ``PR_SET_PDEATHSIG``), and a pool worker
(``--jobs N``) ends itself when the ablation is gone (`watch_driver`), so a killed ablation leaves no orphan writing
into a folder its resume will use; a lock file per folder and stage keeps two ablations on one output_dir
from running the same step at once. Every step appends ``ran`` or ``reused`` to the study's
``events.jsonl`` (one line, one write).

`run_item` is the shard function the executor runs (`curation.executors.ShardJob`): one item per run (or
curation), its steps in order, one output row per step.

Kept runs (`limo.ablation.store`, ``results/<name>/``): every run step done here, ran or reused, is copied there; a
step kept there with the key it has now counts as done on a machine without its output (``reused``, ``"from":
"results"``), unless a later step of the same item still has to run and needs its output (a trained model): then it
runs again here, and one line says so (an ``after`` arm whose upstream weights are elsewhere retrains the upstream
only when the arm itself is still to run). Trained again here for another run, it is a stand-in (`STAND_IN`): it is
not copied over the kept run (whose evaluation read the kept model), and the kept steps that read the kept model (its
run's evaluation, an ``after`` arm kept before) stand against it, said in one line; only when a later step of its own
run has to run here does it become that run's, and is kept.

A deadline (``--deadline`` / ``--until``, the item's ``deadline``): before an item starts, its steps still to run are
predicted from this machine's measured steps (``events.jsonl``: the median of the same stage of the same arm, else of
any arm; a stage never measured counts as nothing, so the first one starts); an item predicted to end after the
deadline does not start (a ``deferred`` row), unless the step that would run past the deadline is a curation or an
evaluation with ten minutes or more before it (`judged`): cut there, it keeps what it finished. Reaching the deadline,
or SIGTERM, raises `Stopped` in the ablation's process (`limo.ablation.study`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from curation.executors import ExecutorError
from eval.records import write_json
from limo.ablation.markers import (
    CHECKSUMS,
    FORMAT,
    ROOT,
    Checksums,
    Content,
    checkable,
    input_sums,
    legacy_matches,
    read_marker,
    remove,
    step_config,
    step_content,
    what_changed,
)
from limo.ablation.store import TRAINED, Store
from limo.ablation.warm import DRIVER  # the ablation's process id, in the environment of its pool's workers

OUTPUT = {"curate": "curate", "train": "train", "evaluate": "eval"}  # what each stage's entry writes in its folder
# A marker's flag: the step ran here only as another run's input while its own run is kept in the results with the
# same key (an after arm's upstream training on a clone); its output is not kept over the kept run's.
STAND_IN = "stand_in"
log = logging.getLogger("limo.ablate")


class StepError(ExecutorError):
    """An entry point that failed, or a finished folder made by other settings."""


class Stopped(BaseException):  # noqa: N818 - a stop, like KeyboardInterrupt: no handler of Exception may take it
    """The ablation's deadline was reached, or it got SIGTERM: it stops, keeping every finished run."""


@dataclass(frozen=True)
class Step:
    """``python -m limo.<stage> <own> <extra> output_dir=<folder>``.

    Attributes:
        stage: ``curate``, ``train`` or ``evaluate``.
        folder: The entry's ``output_dir``.
        own: The arguments ablate sets.
        extra: The user's overrides and config-folder flags (with ``own``, they compose the step's config, whose
            hash the marker keeps).
        inputs: Files whose checksums the marker keeps besides those its config names (a training run's data).
        benchmarks: An evaluation's benchmarks (it runs those without a summary).
        results: What else an evaluation writes per benchmark under ``eval/<benchmark>/`` beside its
            ``summary.json`` (a multi-turn variant's ``multiturn_oracle/summary.json``): a benchmark lacking one
            is evaluated again.
    """

    stage: str
    folder: str
    own: tuple[str, ...]
    extra: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    benchmarks: tuple[str, ...] = ()
    results: tuple[str, ...] = ()

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

    @property
    def output(self) -> Path:
        return Path(self.folder) / OUTPUT[self.stage]


def missing_benchmarks(step: Step) -> list[str]:
    files = ("summary.json", *step.results)
    return [b for b in step.benchmarks if not all((Path(step.folder) / "eval" / b / f).exists() for f in files)]


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


@dataclass(frozen=True)
class Todo:
    """What a step needs now.

    Attributes:
        done: Nothing: its output is reused.
        why: Why earlier output is replaced (one line), when it is.
        stale: Earlier output made another way, removed before the entry runs.
        benchmarks: An evaluation's benchmarks to run (None: those without their results).
        kept: An evaluation's benchmarks whose output stands, with their specs' hashes (the marker keeps them).
        mark: Write the ``done`` marker for output found finished (a ``started`` step whose entry had finished,
            or output taken with ``--accept-old-markers``).
    """

    done: bool
    why: str | None = None
    stale: tuple[Path, ...] = ()
    benchmarks: tuple[str, ...] | None = None
    kept: dict[str, str] = field(default_factory=dict)
    mark: bool = False


def to_do(step: Step, now: Content, accept_old: bool = False) -> Todo:
    """What ``step`` needs, given its `Content` now and its marker (see the module's docstring).

    Raises:
        StepError: Output without a marker of this kind, and ``accept_old`` is off.
    """
    then = read_marker(step.marker)
    if then is None:
        return unmarked(step, now, accept_old)
    if then.get("format") != FORMAT:
        return legacy(step, now, then, accept_old)
    if then.get("key") != now.key:
        return Todo(False, why=what_changed(then, now), stale=(step.output,))
    if step.stage == "evaluate":
        return evaluation(step, now, then)
    if then.get("status") == "done":
        return Todo(True)
    return Todo(True, mark=True) if outputs_complete(step) else Todo(False)


def unmarked(step: Step, now: Content, accept_old: bool) -> Todo:
    """No marker: a fresh step, or output ablate did not mark (taken only with ``accept_old``)."""
    if not step.output.is_dir() or not any(step.output.iterdir()):
        return Todo(False)
    if not accept_old:
        raise StepError(
            f"{step.output} holds output without ablate's marker (made by hand or by an older limo), so nothing says "
            "which settings made it; run again with --accept-old-markers to take it as made by these settings, or "
            "delete it to redo the step"
        )
    return taken(step, now)


def legacy(step: Step, now: Content, then: dict[str, Any], accept_old: bool) -> Todo:
    """A marker from before content keys: it recorded the arguments ablate chose and the training data's checksum,
    not ``model.path``, the backend or an after arm's starting model."""
    if not accept_old:
        raise StepError(
            f"{step.marker} is an older limo's marker: it recorded only the arguments ablate chose (not model.path, "
            "the backend or the model an after arm starts from); run again with --accept-old-markers to keep what it "
            "marks when those arguments and its data match, or delete the folder to redo the step"
        )
    if not legacy_matches(step, then):
        return Todo(False, why="its marker (an older limo's) records other arguments or data", stale=(step.output,))
    return taken(step, now, finished=True)  # an older limo wrote its marker once the entry exited 0


def taken(step: Step, now: Content, finished: bool = False) -> Todo:
    """Finished output taken as made by the settings of now (``--accept-old-markers``); the rest runs. ``finished``:
    a marker says the entry exited 0 (its output may since have lost its weights: a report-only copy)."""
    if step.stage != "evaluate":
        return Todo(True, mark=True) if finished or outputs_complete(step) else Todo(False)
    missing = missing_benchmarks(step)
    kept = {b: now.benchmarks[b] for b in step.benchmarks if b not in missing}
    return Todo(not missing, benchmarks=tuple(missing), kept=kept, mark=True)


def evaluation(step: Step, now: Content, then: dict[str, Any]) -> Todo:
    """Same key: each benchmark stands when its spec is the one marked and its results are there."""
    marked = dict(then.get("benchmarks") or {})
    missing = set(missing_benchmarks(step))
    kept = {b: spec for b, spec in marked.items() if b not in step.benchmarks}  # benchmarks not asked for now
    run, stale, why = [], [], []
    for name in step.benchmarks:
        folder = Path(step.folder) / "eval" / name
        if marked.get(name) == now.benchmarks[name] and name not in missing:
            kept[name] = now.benchmarks[name]
            continue
        run.append(name)
        if name in marked and marked[name] != now.benchmarks[name]:
            stale.append(folder)
            why.append(f"benchmark_specs.{name} changed")
        elif name not in marked and folder.exists():
            stale.append(folder)
            why.append(f"eval/{name} was not made by this step")
    if not run:
        return Todo(True, kept=kept, mark=then.get("status") != "done")
    return Todo(False, why="; ".join(why) or None, stale=tuple(stale), benchmarks=tuple(run), kept=kept)


def is_done(step: Step, root: str, cwd: str = ".", accept_old: bool = False) -> bool:
    """Whether ``step`` is finished with its settings and inputs of now (``root``: the ablation's folder).

    Raises:
        StepError: Output without a marker of this kind (see `to_do`), or a config that does not compose.
    """
    now = checkable(composed(step, root, cwd, Checksums(Path(root) / CHECKSUMS))[1], read_marker(step.marker))
    return to_do(step, now, accept_old).done


def composed(step: Step, root: str, cwd: str, sums: Checksums) -> tuple[Any, Content]:
    """The step's config and `Content`; a config that does not compose is the step's error, naming its folder."""
    try:
        cfg = step_config(step)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise StepError(f"{step.folder}: the {step.stage} step's config does not compose: {err}") from err
    return cfg, step_content(step, root, cwd, sums, cfg)


def watch_driver(every: float = 1.0) -> None:
    """In a pool worker (``--jobs N``): end this process when the ablation that started the pool is gone.

    The worker's parent is the pool's server process, which outlives a killed ablation, so the kernel's
    parent-death signal cannot tell; a thread polls the driver's process id (`DRIVER`) instead. The worker's
    running entry dies with it (`limo.ablation.warm.die_with_parent`). Started once per process; a no-op in the
    driver itself.
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


def run_step(
    step: Step,
    output: str | None,
    events: str,
    cwd: str,
    accept_old: bool = False,
    store: Store | None = None,
    torch_ahead: bool = False,
    stand_in: bool = False,
) -> dict[str, Any]:
    """Run ``step`` unless it is done (`to_do`); returns its event row (``ran`` or ``reused``, seconds, and why
    earlier output was replaced). A run's step done here is kept in ``store`` (`limo.ablation.store`).
    ``torch_ahead``: a training or an evaluation follows in the step's run (`limo.ablation.warm.run`).
    ``stand_in``: it runs only as another run's input, its own kept in ``store`` (`STAND_IN`); without it, a stand-in
    found here becomes its run's own (a later step of that run reads it) and is kept.

    Raises:
        StepError: The entry exited non-zero (its command and log named), or output it may not take (`to_do`).
    """
    root = str(Path(events).parent)
    with folder_lock(step):
        sums = Checksums(Path(root) / CHECKSUMS)
        cfg, now = composed(step, root, cwd, sums)
        now = checkable(now, read_marker(step.marker))
        todo = to_do(step, now, accept_old)

        def marker(content: Content, status: str, benchmarks: Mapping[str, str]) -> dict[str, Any]:
            return {**content.marker(step, status, benchmarks), **({STAND_IN: True} if stand_in else {})}

        if todo.done:
            promoted = not stand_in and bool((read_marker(step.marker) or {}).get(STAND_IN))
            if promoted:
                log.info(
                    "[ablate] %s: the %s made here as another run's input becomes this run's (a later step of it "
                    "runs here) and is kept",
                    place(step, root),
                    step.stage,
                )
            if todo.mark or promoted:
                write_json(step.marker, marker(now, "done", todo.kept))
            keep(store, step)
            return event(events, step, "reused", 0.0)
        if todo.why:
            log.info("[ablate] %s: %s runs again, its output replaced: %s", place(step, root), step.stage, todo.why)
        remove(todo.stale)
        if step.stage == "curate":
            restore_samples(store, step, now, root)
        names = (todo.benchmarks if todo.benchmarks is not None else tuple(missing_benchmarks(step))) or None
        running = {**todo.kept, **{b: now.benchmarks[b] for b in names or ()}}
        write_json(step.marker, marker(now, "started", running))
        command = step.command(list(names) if step.stage == "evaluate" and names else None)
        log.info("[ablate] $ %s", " ".join(command))
        started = running_clock()
        code = launch(command, output, cwd, torch_ahead)
        if code != 0:
            where = f"its output: {output}" if output else "its output is above"
            raise StepError(f"limo.{step.stage} exited {code} in {step.folder} ({where})")
        after = Content(now.config, input_sums(step, cfg, root, cwd, sums), now.benchmarks)  # a model built by it
        write_json(step.marker, marker(after, "done", running))
        keep(store, step)
        return event(events, step, "ran", running_clock() - started, todo.why)


STOPPED_GAP = 5.0  # seconds between two ticks of `running_clock`'s thread that mean the process was stopped
_stopped: dict[str, float] = {"seconds": 0.0, "pid": 0}  # the pid whose thread counts (a fork starts its own)


def running_clock() -> float:
    """``time.monotonic()`` less the time this process spent stopped (SIGSTOP, Ctrl-Z), so that a step's measured
    seconds, which the deadline's prediction reads (`measurements`), are the step's own: a thread ticks every second,
    and a tick that comes `STOPPED_GAP` seconds or more after the one before counts the gap, less the second it
    waited, as stopped."""
    if _stopped["pid"] != os.getpid():
        _stopped.update(seconds=0.0, pid=os.getpid())

        def tick() -> None:
            last = time.monotonic()
            while True:
                time.sleep(1.0)
                now = time.monotonic()
                if now - last >= STOPPED_GAP:
                    _stopped["seconds"] += now - last - 1.0
                last = now

        threading.Thread(target=tick, name="ablate-stopped-clock", daemon=True).start()
    return time.monotonic() - _stopped["seconds"]


def place(step: Step, root: str) -> str:
    folder = Path(step.folder)
    return str(folder.relative_to(root)) if folder.is_relative_to(root) else str(folder)


def launch(command: list[str], log: str | None, cwd: str, torch_ahead: bool = False) -> int:
    """The entry's exit status; its output appended to ``log`` (None: this process's own output). The entry runs in
    a fork of this process's warm worker, or cold with ``LIMO_WARM_WORKER=0`` (`limo.ablation.warm`)."""
    from limo.ablation.warm import entry_status  # deferred: the worker's module serves only ablate's driver

    if log is None:
        return entry_status(command, cwd, (0, 1, 2), torch_ahead)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(command)}\n")
        handle.flush()
        return entry_status(command, cwd, (0, handle.fileno(), handle.fileno()), torch_ahead)


def event(
    events: str, step: Step, what: str, seconds: float, why: str | None = None, source: str | None = None
) -> dict[str, Any]:
    """Append one line to ``events.jsonl`` (a single write: lines from processes side by side do not mix)."""
    row = {"event": what, "stage": step.stage, "folder": step.folder, "seconds": round(seconds, 1), "pid": os.getpid()}
    row |= ({"why": why} if why else {}) | ({"from": source} if source else {})
    Path(events).parent.mkdir(parents=True, exist_ok=True)
    with open(events, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    return row


def keep(store: Store | None, step: Step) -> None:
    """Copy a run's finished step into the kept runs (an arm's curation, under ``arms/``, is not a run), unless it
    is a stand-in (`STAND_IN`): the kept run stands."""
    if store is not None and is_run_step(step, store) and not (read_marker(step.marker) or {}).get(STAND_IN):
        store.keep(step.stage, step.folder, store.parts())


def stands_in(stage: str, folder: str | Path, store: Store) -> bool:
    """Whether a step's output here is a stand-in for a run kept in ``store`` with the same key (`STAND_IN`)."""
    here = read_marker(Path(folder) / ".ablate" / f"{stage}.json") or {}
    return bool(here.get(STAND_IN)) and (store.marker(stage, folder) or {}).get("key") == here.get("key")


def kept_models(step: Step, now: Content, recorded: Mapping[str, Any] | None, store: Store) -> tuple[Content, str]:
    """``now``, with each trained model of the ablation's runs that is a stand-in here (`stands_in`) taken as
    ``recorded`` (the step's kept marker) has it: the kept step read the kept run's model, and the one here was
    trained the same way (the same key), for another run; its bits differ (another CPU, a model card's timings), not
    what made it. Returns the content and the models so taken (to be said; empty: none)."""
    was = (recorded or {}).get("inputs") or {}
    taken = [
        name
        for name, checksum in now.inputs.items()
        if name.startswith(f"{ROOT}/")
        and name.endswith(TRAINED)
        and was.get(name, checksum) != checksum
        and stands_in("train", store.ablation / name[len(ROOT) + 1 : -len(TRAINED)], store)
    ]
    return Content(now.config, {**now.inputs, **{n: was[n] for n in taken}}, now.benchmarks), ", ".join(taken)


def restore_samples(store: Store | None, step: Step, now: Content, root: str) -> None:
    """A curation's samples kept in ``store`` put back before it runs (`Store.restore_samples`), saying so, and
    saying what differs when they were kept under another key."""
    if store is None or not Path(step.folder).is_relative_to(store.ablation):
        return
    rows, differs = store.restore_samples(step.folder, now)
    where = place(step, root)
    if rows:
        log.info(
            "[ablate] %s: %s samples restored from %s; the curation generates only what they lack",
            where,
            f"{rows:,}",
            store.root,
        )
    if differs:
        log.warning("[ablate] %s: the samples kept in %s: %s", where, store.root, differs)


def is_run_step(step: Step, store: Store) -> bool:
    folder = Path(step.folder)
    return folder.is_relative_to(store.ablation) and folder.relative_to(store.ablation).parts[0] in ("runs", "base")


def kept_state(step: Step, cwd: str, accept_old: bool, store: Store, said: dict[str, str] | None = None) -> str:
    """``here`` (done in this folder), ``kept`` (done only in the kept runs, with the key it has now; or done here
    as a stand-in for them, `STAND_IN`) or ``todo``. A kept step that read a run's trained model which is a stand-in
    here is judged with the kept model's checksum (`kept_models`); ``said`` gets a line for it, by folder and stage."""
    root = str(store.ablation)
    now = composed(step, root, cwd, Checksums(Path(root) / CHECKSUMS))[1]
    if to_do(step, checkable(now, read_marker(step.marker)), accept_old).done:
        return "kept" if stands_in(step.stage, step.folder, store) else "here"
    recorded = store.marker(step.stage, step.folder)
    judged_as, taken = kept_models(step, now, recorded, store)
    if not store.done(step.stage, step.folder, checkable(judged_as, recorded), step.benchmarks):
        return "todo"
    if taken and said is not None:
        said[f"{step.folder}:{step.stage}"] = (
            f"its kept {step.stage} stands: it read the kept run's {taken}; the one here was trained the same way "
            "(the same key) for another run, and its bits differ"
        )
    return "kept"


def needed_here(states: Sequence[str]) -> list[bool]:
    """For each step kept elsewhere: whether a later step of the item still runs (and reads its output)."""
    return [s == "kept" and "todo" in states[i + 1 :] for i, s in enumerate(states)]


def predicted(step: Step, measured: Mapping[tuple[str, str | None], list[float]], root: str) -> float:
    """Seconds ``step`` should take here: the median of this machine's runs of its stage for its arm, else for any
    arm; 0 when its stage was never measured (so the first one starts). The median, so that one run slowed by other
    work on the cores does not defer a run that fits (docs/ablation.md, "Prediction")."""
    seconds = measured.get((step.stage, arm_of(step.folder, root))) or measured.get((step.stage, None)) or [0.0]
    return statistics.median(seconds)


def arm_of(folder: str, root: str) -> str | None:
    parts = Path(folder).relative_to(root).parts if Path(folder).is_relative_to(root) else ()
    return parts[1] if len(parts) > 1 and parts[0] in ("runs", "arms") else (parts[0] if parts else None)


def measurements(events: str) -> dict[tuple[str, str | None], list[float]]:
    """``ran`` events' seconds by (stage, arm) and by (stage, None) (a torn line is skipped)."""
    out: dict[tuple[str, str | None], list[float]] = {}
    root = str(Path(events).parent)
    lines = Path(events).read_text(encoding="utf-8").splitlines() if Path(events).exists() else []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("event") == "ran":
            for key in ((row["stage"], arm_of(row["folder"], root)), (row["stage"], None)):
                out.setdefault(key, []).append(float(row["seconds"]))
    return out


RESUMABLE = ("curate", "evaluate")  # cut, they keep what they finished: a curation's samples, an evaluation's answers
WORTH_CUTTING = 600.0  # seconds of work before the deadline for which a resumable step starts although it will be cut


@dataclass(frozen=True)
class Verdict:
    """How an item stands against its deadline: ``start`` (False: deferred); ``cut``: the resumable step the
    deadline will stop, with its predicted seconds and the seconds it gets before the deadline."""

    start: bool
    cut: Step | None = None
    predicted: float = 0.0
    before: float = 0.0


def judged(steps: Sequence[Step], states: Sequence[str], item: Mapping[str, Any]) -> Verdict:
    """Whether the item starts before its deadline (none: it does). Its steps still to run are predicted from this
    machine's measurements (`predicted`), in order: it starts when they all end before the deadline, and also when
    the step that would run past it is resumable (`RESUMABLE`) and gets `WORTH_CUTTING` seconds or more before it.
    Such a step (a curation sampling the student for hours, an evaluation) may never fit a call of the time a
    machine gives; cut at the deadline, it keeps what it finished, and the next call goes on from there. A step
    kept in the results runs only when a later one needs its output here (`needed_here`); else it costs nothing."""
    deadline = item.get("deadline")
    if deadline is None:
        return Verdict(True)
    measured, root = measurements(item["events"]), str(Path(item["events"]).parent)
    clock = time.time()
    for step, state, needed in zip(steps, states, needed_here(states), strict=True):
        if state == "here" or (state == "kept" and not needed) or marked_done(step):
            continue
        seconds = predicted(step, measured, root)
        if clock + seconds > float(deadline):
            before = float(deadline) - clock
            return Verdict(step.stage in RESUMABLE and before >= WORTH_CUTTING, step, seconds, before)
        clock += seconds
    return Verdict(True)


def duration(seconds: float) -> str:
    """``2 h 18 min``, ``12 min``, ``45 s``."""
    if seconds < 60:
        return f"{max(seconds, 0):.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def marked_done(step: Step) -> bool:
    return (read_marker(step.marker) or {}).get("status") == "done"


def item_states(
    steps: Sequence[Step], item: Mapping[str, Any], store: Store | None, said: dict[str, str] | None = None
) -> list[str]:
    """Each step's `kept_state`, judged only when the kept runs hold one of them (else: ``todo``, judged by
    `run_step` as it comes)."""
    if store is None or not any(is_run_step(s, store) and store.holds(s.stage, s.folder) for s in steps):
        return ["todo"] * len(steps)
    accept_old = bool(item.get("accept_old_markers"))
    return [kept_state(s, item["cwd"], accept_old, store, said) if is_run_step(s, store) else "todo" for s in steps]


def run_item(index: int, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The shard function: an item's steps in order (a run's training, then its evaluation)."""
    del index
    watch_driver()
    if not logging.getLogger().handlers:  # a worker process: its progress lines go where the driver's do
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    output = None if item.get("console") else item["log"]
    store = Store(Path(item["results"]), Path(item["events"]).parent) if item.get("results") else None
    steps = [Step.from_dict(row) for row in item["steps"]]
    said: dict[str, str] = {}  # kept steps that stand against a stand-in model here (`kept_state`)
    states = item_states(steps, item, store, said)
    verdict = judged(steps, states, item)
    if not verdict.start:
        log.info("[ablate] %s: not started: it would end after the deadline", item["label"])
        yield {"event": "deferred", "label": item["label"]}
        return
    if verdict.cut is not None:
        log.info(
            "[ablate] %s: started though it would end after the deadline: its %s (%s as measured here) gets %s "
            "before it, is cut there and keeps what it finished; the same command goes on from there",
            item["label"],
            verdict.cut.stage,
            duration(verdict.predicted),
            duration(verdict.before),
        )
    # a training or evaluation here will use the warm worker, so a curation may start it (its imports paid once)
    torch_ahead = bool(item.get("warm_curations")) or any(step.stage != "curate" for step in steps)
    for position, step in enumerate(steps):
        state, needed = states[position], needed_here(states)[position]
        where = place(step, str(Path(item["events"]).parent))
        an_input = step.folder != steps[-1].folder  # another run's step (kept), an input of this one
        if state == "kept" and not needed:
            done = event(item["events"], step, "reused", 0.0, source="results")
            if f"{step.folder}:{step.stage}" in said:
                log.info("[ablate] %s: %s", where, said[f"{step.folder}:{step.stage}"])
        else:
            if needed and not marked_done(step):
                log.info(
                    "[ablate] %s: %s runs again here: its output is kept in %s but not on this machine, and %s still "
                    "has to run",
                    where,
                    step.stage,
                    item["results"],
                    item["label"],
                )
            accept_old = bool(item.get("accept_old_markers"))
            stand_in = needed and an_input
            done = run_step(step, output, item["events"], item["cwd"], accept_old, store, torch_ahead, stand_in)
        whose = f"{step.stage} of {where} (its input)" if an_input else step.stage
        log.info("[ablate] %s: %s %s (%.0f s)", item["label"], whose, done["event"], done["seconds"])
        if done["event"] == "ran" and position + 1 < len(steps):
            # what ran changed the later steps' inputs (a new model): a kept evaluation of the old one is not theirs
            states = [*states[: position + 1], *item_states(steps, item, store, said)[position + 1 :]]
        yield done
