"""An ablation from command line to tables: parse, compose, curate every arm, train and evaluate every run, tabulate.

The work goes through the executor curation already has (`curation.executors`, the recipe's ``executor`` group):
one shard per curation (an arm, or a random baseline's draw), then one shard per run (train, then evaluate; the base
model's evaluation is a shard of its own). ``executor=local`` (the default) runs the shards in this process one after
another, or ``--jobs N`` at a time in a pool of processes (side by side on one machine, or one GPU);
``executor=ray`` / ``executor=slurm`` put each on a cluster (``output_dir`` on a filesystem every node sees; how many
at once is the executor's ``workers``, so ``--jobs`` beside them is refused rather than quietly run on this machine).
A shard starts the entry points as processes and nothing else; what finished with the same settings and inputs is
reused on a rerun and what changed runs again (`limo.ablation.steps`), so the same command resumes a killed ablation.
``--accept-old-markers`` takes output an older limo marked (or left unmarked) as made by the settings of now.

Every finished run is kept in ``results/<name>/`` (`limo.ablation.store`; ``--results-dir DIR`` elsewhere) and the
tables are always made from there, so a run kept there is done on any machine and ``--report-only`` remakes the tables
from that folder alone. ``--deadline 2h`` / ``--until 14:30`` cut the work to the time at hand: runs go seed by seed,
an item that would end after the deadline does not start unless the step cut there keeps its work (a curation, an
evaluation: `limo.ablation.steps.judged`), and at the deadline or on
SIGTERM the running entries are stopped; either way `Unfinished` says how many runs are done and the command that
goes on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from curation.executors import ExecutorError, ExecutorOptions, ShardJob, run_job
from eval.benchmarks.loader import load_benchmark
from eval.records import write_text_atomic
from limo.ablation import plan
from limo.ablation.markers import digest, read_marker
from limo.ablation.results import RunResult, Tables, facts, load_run, write_results
from limo.ablation.steps import DRIVER, StepError, Stopped, run_item
from limo.ablation.store import Store, count_rows
from limo.ablation.turns import TurnTables
from limo.cli.compose import compose
from limo.cli.entry import one_line
from limo.cli.overrides import forced_runtime
from limo.config.search_path import split_folder_flags, user_config_dirs
from limo.config.sections import build_benchmark_specs
from limo.setup.ablate import BASE, AblateOptions, build_ablate, pairs_of
from limo.setup.curate import build_executor

log = logging.getLogger("limo.ablate")
OWN_KEYS = ("recipe", "output_dir", "executor", "ablate")  # what ablate reads itself; never passed to an entry
REFUSED = ("seed", "limit", "benchmarks")  # set per run by ablate: ablate.seeds, ablate.limit, ablate.benchmarks
SUBSET_KEYS = ("ablate.only", "ablate.seeds")  # a screen: its tables go beside the recipe's, not over them


@dataclass(frozen=True)
class Command:
    """``limo.ablate``'s command line, split.

    Attributes:
        recipe: ``recipe=<name>``.
        jobs: ``--jobs N``: shards at once on the local executor (None: not given, one at a time).
        flags: Config-folder flags (``--config-dir DIR``), for every entry and the composition.
        overrides: Every ``key=value``, in order (``recipe=`` included).
        accept_old_markers: ``--accept-old-markers``: take finished output an older limo marked, or left unmarked,
            as made by the settings of now (`limo.ablation.steps`).
        deadline: ``--deadline 2h`` / ``--until 14:30``, as a time (seconds since the epoch); None: no deadline.
        report_only: ``--report-only``: make the tables from the kept runs alone, running nothing.
        results_dir: ``--results-dir DIR``: where the runs are kept (None: `results_root`'s default).
    """

    recipe: str
    jobs: int | None
    flags: tuple[str, ...]
    overrides: tuple[str, ...]
    accept_old_markers: bool = False
    deadline: float | None = None
    report_only: bool = False
    results_dir: str | None = None

    def passed_on(self) -> tuple[str, ...]:
        """The overrides the entries get (`limo.ablation.plan.entry_overrides`)."""
        return tuple(o for o in self.overrides if key_of(o).split(".")[0] not in OWN_KEYS)


def key_of(line: str) -> str:
    return line.lstrip("+~").split("=", 1)[0]


def parse_command(argv: Sequence[str], now: float | None = None) -> Command:
    """Raises: ValueError: no recipe, ``--jobs`` without a positive count, an unknown flag, a refused key, a
    deadline that does not parse."""
    flags, rest = split_folder_flags(argv)
    jobs: int | None = None
    overrides, accept_old, report_only = [], False, False
    deadline: float | None = None
    results_dir: str | None = None
    args = list(rest)
    while args:
        arg = args.pop(0)
        name, given, inline = arg.partition("=")
        if arg in ("--accept-old-markers", "--report-only"):
            accept_old, report_only = (
                accept_old or arg == "--accept-old-markers",
                report_only or arg == "--report-only",
            )
        elif name in VALUED:
            value = inline if given else (args.pop(0) if args else "")
            if name == "--jobs":
                if not value.isdigit() or int(value) < 1:
                    raise ValueError(f"--jobs takes a count of at least 1, got {value!r}, the command line")
                jobs = int(value)
            elif name == "--results-dir":
                results_dir = value or None
            else:
                deadline = deadline_of(name, value, time.time() if now is None else now)
        elif arg.startswith("-") or "=" not in arg:
            raise ValueError(f"unknown argument {arg!r} (see python -m limo.ablate --help), the command line")
        elif key_of(arg) in REFUSED:
            raise ValueError(
                f"{key_of(arg)}= is set per run by ablate: use ablate.{key_of(arg)}s / ablate.limit / "
                "ablate.benchmarks in the recipe, the command line"
            )
        else:
            overrides.append(arg)
    recipe = next((key_of_value(o)[1] for o in reversed(overrides) if key_of(o) == "recipe"), None)
    if not recipe:
        raise ValueError(
            "no recipe: python -m limo.ablate recipe=<name> (a recipe with an ablate: section), the command line"
        )
    return Command(recipe, jobs, tuple(flags), tuple(overrides), accept_old, deadline, report_only, results_dir)


VALUED = ("--jobs", "--deadline", "--until", "--results-dir")
DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def deadline_of(flag: str, value: str, now: float) -> float:
    """``--deadline 2h`` (``90m``, ``1h30m``, ``45s``, seconds) or ``--until HH:MM`` (local time; tomorrow's when
    today's has passed) as seconds since the epoch.

    Raises:
        ValueError: A value that is neither.
    """
    if flag == "--until":
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise ValueError(f"--until takes a local time HH:MM, got {value!r}, the command line")
        today = time.localtime(now)
        at = time.mktime((*today[:3], int(match[1]), int(match[2]), 0, 0, 0, -1))
        return at if at > now else at + 24 * 3600
    match = DURATION.match(value)
    if not value or not match or not any(match.groups()):
        raise ValueError(
            f"--deadline takes a duration such as 2h, 90m, 1h30m or 600s, got {value!r}, the command line"
        )
    hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return now + hours * 3600 + minutes * 60 + seconds


def key_of_value(line: str) -> tuple[str, str]:
    key, _, value = line.partition("=")
    return key.lstrip("+~"), value


def compose_command(command: Command) -> DictConfig:
    """The recipe composed with the command line, as every entry composes it (declared benchmarks forced)."""
    overrides = [o for o in command.overrides if key_of(o) != "recipe"]
    dirs = user_config_dirs([*command.flags, *command.overrides])
    try:
        return compose(command.recipe, forced_runtime(overrides, ("benchmark_specs",)), dirs)
    except HydraException as err:  # an entry's @hydra.main reports these itself; here they end in one line too
        raise ValueError(f"{one_line(err)}, the command line") from err


def build_study(cfg: DictConfig, command: Command) -> tuple[plan.Study, ExecutorOptions]:
    """The study and the executor its shards run on (``--jobs N``: the local executor with N workers).

    Raises:
        ValueError: ``--jobs`` beside a cluster executor (whose ``workers`` say how many run at once).
    """
    options = build_ablate(cfg)
    declared = [key_of(o).split(".")[1] for o in command.overrides if key_of(o).startswith("benchmark_specs.")]
    names = tuple(dict.fromkeys([*(b.name for b in options.benchmarks), *declared]))
    known = set(OmegaConf.to_container(cfg.get("benchmark_specs") or {}))  # type: ignore[arg-type]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"ablate.benchmarks: unknown benchmark {unknown[0]!r} (known: {', '.join(sorted(known))})")
    batch = int(cfg.train.get("global_batch_size") or 1) if cfg.get("train") else 1
    root = Path(str(cfg.output_dir)).resolve() / "ablate"
    study = plan.Study(command.recipe, root, options, names, command.passed_on(), command.flags, batch)
    study = replace(
        study,
        accept_old_markers=command.accept_old_markers,
        results=results_root(Path(str(cfg.output_dir)), command.results_dir),
        deadline=command.deadline,
    )
    executor = build_executor(cfg.get("executor"))
    if command.jobs is not None and executor.kind != "local":
        raise ValueError(
            f"--jobs runs the ablation's jobs side by side on this machine, but executor={executor.kind} runs each "
            f"on the cluster (executor.workers={executor.workers} says how many at once): drop --jobs, or drop "
            f"executor={executor.kind} to run them here, the command line"
        )
    if executor.kind == "local":
        executor = replace(executor, workers=command.jobs or 1)
    return study, executor


def results_root(output_dir: Path, given: str | None, cwd: Path | None = None) -> Path:
    """Where the runs are kept: ``--results-dir``; else ``results/<name>`` beside ``outputs/`` for an output_dir
    ``outputs/<name>`` (the default ``outputs/<recipe>``), and ``<output_dir>/results`` for any other output_dir."""
    if given:
        return Path(given).resolve()
    output, cwd = output_dir.resolve(), (cwd or Path.cwd()).resolve()
    if output.parent == cwd / "outputs":
        return cwd / "results" / output.name
    return output / "results"


def run_shards(name: str, items: list[dict[str, Any]], study: plan.Study, executor: ExecutorOptions) -> None:
    """Run ``items`` as one shard job; an entry's failure ends it with that entry's one line."""
    if not items:
        return
    console = executor.kind == "local" and executor.workers == 1
    # A new job each time (its folder is named by its items' digest): what a step needs depends on more than its
    # item (an item deferred by a deadline, a step no longer kept in results/), and its markers say what is done.
    shared = {"console": console, "accept_old_markers": study.accept_old_markers, "invocation": STARTED}
    # In this process, a curation's warm worker goes on to serve the runs after it (`limo.ablation.warm`); a pool's
    # worker process ends with its job, so there a curation starts none.
    shared["warm_curations"] = console
    items = [{**i, **shared, "deadline": study.deadline} for i in items]
    job = ShardJob(name, run_item, tuple(items), str(study.root / "jobs"))
    if executor.kind == "local":  # a local pool's workers end themselves when this process is gone
        os.environ[DRIVER] = str(os.getpid())
    else:  # a cluster's task may run where this process id means nothing
        os.environ.pop(DRIVER, None)
    try:
        run_job(job, executor)
    except ExecutorError as err:
        cause = err.__cause__
        raise (StepError(str(cause)) if isinstance(cause, StepError) else err) from None


def run_study(study: plan.Study, executor: ExecutorOptions, parts: Parts, argv: Sequence[str]) -> dict[str, int]:
    """Curate every arm (in waves: sizes first), then train and evaluate every run, seed by seed; returns each arm's
    steps. The kept runs' plan (`record_plan`) is written before the first run.

    Raises:
        Unfinished: A curation or run did not start before the deadline.
    """
    study.root.mkdir(parents=True, exist_ok=True)
    for index, wave in enumerate(plan.curation_waves(study)):
        items = plan.curation_items(study, wave)
        run_shards(f"curate-{index}", items, study, executor)
        if any(not curated(item) for item in items):
            raise unfinished(study, argv)
    steps = plan.arm_steps(study)
    items = plan.run_items(study, steps)
    write_text_atomic(study.root / "plan.json", plan.dumps(plan.write_plan(study, steps, items)))
    record_plan(study, steps, parts, argv)
    run_shards("runs", items, study, executor)
    return steps


Parts = dict[str, dict[str, set[str]]]
STARTED = time.time()


def curated(item: Mapping[str, Any]) -> bool:
    """Whether a curation item's step is done (a deferred one is not)."""
    marker = read_marker(Path(item["steps"][0]["folder"]) / ".ablate" / "curate.json")
    return (marker or {}).get("status") == "done"


class Unfinished(Exception):  # noqa: N818 - not an error: the ablation stopped with runs left to do
    """The ablation stopped before every run was done (a deadline, SIGTERM); the message is the line to print."""


def unfinished(study: plan.Study, argv: Sequence[str], why: str = "at the deadline") -> Unfinished:
    specs = plan.run_specs(study)
    store = store_of(study)
    done = sum(store.holds("evaluate", s.folder, study.benchmarks) for s in specs)
    return Unfinished(
        f"[ablate] stopped {why}: {done} of {len(specs)} runs done (kept in {store.root}); go on with: "
        f"{command_line(argv)}"
    )


def keep_samples(study: plan.Study) -> None:
    """Every curation's sampling caches into the kept runs (`Store.keep_samples`), a cut one's too, so that the
    next machine goes on from them; a curation not done says how many it kept."""
    store = store_of(study)
    for marker in sorted(study.root.glob("**/.ablate/curate.json")):
        folder = marker.parent.parent
        rows = store.keep_samples(folder)
        if rows and (read_marker(marker) or {}).get("status") != "done":
            log.info(
                "[ablate] %s: its curation was cut; its %s samples so far are kept in %s, and a rerun on any machine "
                "goes on from them",
                folder.relative_to(study.root),
                f"{rows:,}",
                store.root,
            )


def command_line(argv: Sequence[str]) -> str:
    return "python -m limo.ablate " + " ".join(shlex.quote(a) for a in argv)


def store_of(study: plan.Study) -> Store:
    assert study.results is not None
    return Store(study.results, study.root)


def current_primary(study: plan.Study) -> dict[str, Any] | None:
    primary = study.options.primary
    return None if primary is None else {**asdict(primary), "pair": list(primary.pair)}


def record_plan(study: plan.Study, steps: Mapping[str, int], parts: Parts, argv: Sequence[str]) -> None:
    """The kept runs' ``plan.json`` (`limo.ablation.store`): written before the first run; the primary recorded
    there stays as it was once any run is kept. A screen (``ablate.only``, ``ablate.seeds``) writes it only when
    there is none yet."""
    store = store_of(study)
    old = store.read_plan() or {}
    if old and is_subset(argv):
        return
    kept = bool(old) and "primary" in old and store.any_run_kept()
    runs = [{"arm": s.arm, "seed": s.seed, "draw": s.draw} for s in plan.run_specs(study)]
    arms = {a["name"]: a for a in old.get("arms") or []}
    arms.update({a["name"]: a for a in curated_here(study, steps) if a["name"] not in arms})
    record = {
        "recipe": study.recipe,
        "argv": list(argv),
        "steps": dict(steps),
        "benchmarks": list(study.benchmarks),
        "runs": runs,
        "primary": old.get("primary") if kept else current_primary(study),
        "parts": {b: {p: sorted(ids) for p, ids in ps.items()} for b, ps in parts.items()},
        **{k: old[k] for k in ("tables",) if k in old},
        **({"arms": list(arms.values())} if arms else {}),
    }
    store.write_plan(record)
    store.part_of = None


def curated_here(study: plan.Study, steps: Mapping[str, int]) -> list[dict[str, Any]]:
    """What `arms_described` says of each arm curated on this machine before its runs (an ``after`` arm's rows come
    later, from its runs), for the kept plan: a clone without the curations then tabulates a screen of the runs
    kept so far (``--report-only ablate.seeds=[0,1]``) before the whole recipe's tables were ever made."""
    described = []
    for arm in study.options.active:
        if arm.after is None and arm.name in steps:
            try:
                described.append(arm_facts(study, arm.name, steps))
            except FileNotFoundError:  # not curated here
                continue
    return described


def is_subset(argv: Sequence[str]) -> bool:
    return any(key_of(a) in SUBSET_KEYS for a in argv if "=" in a and not a.startswith("-"))


@contextmanager
def stops(deadline: float | None) -> Iterator[None]:
    """SIGTERM, and the deadline when there is one, stop the ablation: its entries (this process's children) are
    killed and `Stopped` raised here."""

    def stop(signum: int, frame: Any) -> None:
        del frame
        end_children()
        raise Stopped("the deadline" if signum == signal.SIGALRM else "SIGTERM")

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGALRM)}
    if deadline is not None:
        signal.setitimer(signal.ITIMER_REAL, max(deadline - time.time(), 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def end_children() -> None:
    """SIGKILL this process's children (the running entry, or the pool's workers, whose entries die with them), all
    but multiprocessing's resource tracker: killed, it is started again as this process lets go of the pool's locks,
    and the new one prints a KeyError traceback for each lock it never registered."""
    me = str(os.getpid())
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and entry.parent.name != str(tracker):
            try:
                os.kill(int(entry.parent.name), signal.SIGKILL)
            except ProcessLookupError:
                continue


def benchmark_parts(cfg: DictConfig, options: AblateOptions) -> dict[str, dict[str, set[str]]]:
    """Each benchmark's parts as problem ids (`BenchmarkOptions.part_field` / ``part_ranges``); none: {}."""
    specs = build_benchmark_specs(cfg)
    out: dict[str, dict[str, set[str]]] = {}
    for bench in options.benchmarks:
        if bench.part_field is None and not bench.part_ranges:
            continue
        problems = load_benchmark(specs[bench.name], data_dir=cfg.get("data_dir")).problems
        if bench.part_field is not None:
            parts: dict[str, set[str]] = {}
            for problem in problems:
                value = problem.extra.get(bench.part_field, getattr(problem, bench.part_field, None))
                parts.setdefault(str(value), set()).add(problem.id)
            out[bench.name] = parts
        else:
            out[bench.name] = {
                name: {p.id for p in problems[start:stop]} for name, (start, stop) in bench.part_ranges.items()
            }
    return out


def results_folder(study: plan.Study, command: Command) -> Path:
    """Where the tables go: ``<output_dir>/ablate/``, or, for a subset the command line asks for (``ablate.only`` or
    ``ablate.seeds``: a screen), ``<output_dir>/ablate/subsets/<arms>_seeds<s>/``, so a screen run beside (or after)
    the recipe's whole comparison never overwrites its tables."""
    if not any(key_of(o) in SUBSET_KEYS for o in command.overrides):
        return study.root
    arms = "+".join(a.name for a in study.options.active)
    return study.root / "subsets" / f"{arms}_seeds{'-'.join(str(s) for s in study.options.seeds)}"


def tabulate(study: plan.Study, steps: Mapping[str, int], parts: Parts, argv: Sequence[str], folder: Path) -> dict:
    """Read every run's kept evaluation (`limo.ablation.store`) and write ``results.json``, ``results.md`` and
    ``report.html`` into ``folder``."""
    options, store = study.options, store_of(study)
    arms: dict[str, list[RunResult]] = {}
    for spec in plan.run_specs(study):
        kept = replace(spec, folder=str(store.folder(spec.folder)))
        arms.setdefault(spec.arm, []).append(load_run(kept, study.benchmarks))
    all_parts = {name: parts.get(name, {}) for name in study.benchmarks}
    by = {b.name: b.by for b in options.benchmarks if b.by}
    header = table_header(study, steps, all_parts, argv)
    tables = Tables(arms, all_parts, by, pairs_of(options), header, options.primary)
    folder.mkdir(parents=True, exist_ok=True)
    return write_results(folder, tables, (TurnTables(),))


def table_header(study: plan.Study, steps: Mapping[str, int], parts: Parts, argv: Sequence[str]) -> dict[str, Any]:
    """``results.json``'s header. Its command, machine and time are those of the tables first made from these kept
    runs (``plan.json``'s ``tables``; new ones when the runs changed), so that tables remade from the same runs are
    the same bytes; whether the primary is the one the plan recorded before its first run (``primary_plan``)."""
    store = store_of(study)
    record = store.read_plan() or {}
    described = arms_described(study, steps, record)
    part_sizes = {b: {p: len(ids) for p, ids in ps.items()} for b, ps in parts.items()}
    header = facts(study.recipe, command_line(argv), described, part_sizes, study.options.seeds, study.options.draws)
    runs = digest(sorted((str(p.relative_to(store.root)), read_key(p)) for p in store.root.glob("**/.ablate/*.json")))
    made = record.get("tables") or {}
    if made.get("runs") != runs:
        made = {"runs": runs, **{k: header[k] for k in ("command", "machine", "written")}}
        store.write_plan({**record, "tables": made, "arms": merged_arms(record.get("arms") or [], described)})
    header.update({k: made[k] for k in ("command", "machine", "written")})
    recorded = record.get("primary")
    header["primary_plan"] = {"recorded": recorded, "unchanged": recorded == current_primary(study)}
    return header


def read_key(path: Path) -> Any:
    return (json.loads(path.read_text(encoding="utf-8")) or {}).get("key")


def merged_arms(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    by_name = {a["name"]: dict(a) for a in old} | {a["name"]: dict(a) for a in new}
    return list(by_name.values())


def arms_described(study: plan.Study, steps: Mapping[str, int], record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each arm's kind, rows and steps: from its curation here, else as the kept plan recorded it."""
    recorded = {a["name"]: a for a in record.get("arms") or []}
    described = []
    for arm in study.options.active:
        try:
            described.append(arm_facts(study, arm.name, steps))
        except FileNotFoundError:  # not curated on this machine (--report-only)
            if arm.name not in recorded:
                raise ValueError(f"{store_of(study).root / 'plan.json'} does not describe arm {arm.name!r}") from None
            described.append(dict(recorded[arm.name]))
    base = [{"name": BASE, "kind": "untrained", "rows": None, "steps": 0}] if study.options.base else []
    return base + described


def arm_facts(study: plan.Study, name: str, steps: Mapping[str, int]) -> dict[str, Any]:
    arm = study.options.arm(name)
    first = study.options.draws_of(arm)[0]
    if arm.after is not None:  # its rows (prompts, for RL) are curated per run: the first seed's count
        run = study.run_folder(arm.data_of or name, study.options.seeds_of(arm)[0], None)
        names = (
            [arm.data_file or "messages.jsonl"] if arm.data_of else ["prompts.jsonl", "messages.jsonl", "pairs.jsonl"]
        )
        counts = {n: count_rows(run / "curate" / n) for n in names if (run / "curate" / n).exists()}
        counts = counts or store_of(study).rows(run)  # curated on another machine: as kept
        rows = next((counts[n] for n in names if n in counts), None)
        kind = f"after {arm.after} ({arm.recipe or study.recipe})"
        kind += f", {arm.data_of}'s {arm.data_file or 'messages.jsonl'}" if arm.data_of else ""
        return {"name": name, "kind": kind, "rows": rows, "steps": steps[name], "curate": dict(arm.curate), "n": None}
    rows = count_rows(study.data_file(arm, first))
    kind = arm.baseline or (f"{arm.data_of}'s rows" if arm.data_of else "curation")
    return {"name": name, "kind": kind, "rows": rows, "steps": steps[name], "curate": dict(arm.curate), "n": arm.n}


def report_only(study: plan.Study, folder: Path, argv: Sequence[str]) -> dict[str, Any]:
    """The tables from the kept runs alone (``--report-only``): no curation, training or evaluation.

    Raises:
        ValueError: No kept plan, or a run of the plan not kept (the command that runs it named).
    """
    store = store_of(study)
    record = store.read_plan()
    if record is None:
        raise ValueError(f"no kept runs in {store.root} (its plan.json is missing): run {go_on(argv)} first")
    specs = plan.run_specs(study)
    missing = [s for s in specs if not store.holds("evaluate", s.folder, study.benchmarks)]
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(specs)} runs are not kept in {store.root} (first: {missing[0].label}): "
            f"{go_on(argv)} runs them"
        )
    parts = {b: {p: set(ids) for p, ids in ps.items()} for b, ps in (record.get("parts") or {}).items()}
    return tabulate(study, record["steps"], parts, argv, folder)


def go_on(argv: Sequence[str]) -> str:
    return command_line([a for a in argv if a != "--report-only"])


def main(argv: Sequence[str]) -> tuple[Path, dict[str, Any]]:
    """The whole ablation; returns its folder and ``results.json``'s content.

    Raises:
        Unfinished: It stopped (the deadline, SIGTERM) with runs left to do.
    """
    command = parse_command(argv)
    cfg = compose_command(command)
    study, executor = build_study(cfg, command)
    folder = results_folder(study, command)
    if command.report_only:
        return folder, report_only(study, folder, argv)
    log.info(
        "[ablate] %s: %d arms, seeds %s, draws %d, on %s (%d at once) -> %s; runs kept in %s",
        study.recipe,
        len(study.options.active),
        list(study.options.seeds),
        study.options.draws,
        executor.kind,
        executor.workers,
        study.root,
        study.results,
    )
    parts = benchmark_parts(cfg, study.options)
    try:
        with stops(study.deadline):
            steps = run_study(study, executor, parts, argv)
    except Stopped as stop:
        raise unfinished(study, argv, f"by {stop}") from None
    finally:
        keep_samples(study)
    if any(not store_of(study).holds("evaluate", s.folder, study.benchmarks) for s in plan.run_specs(study)):
        raise unfinished(study, argv, "before the deadline: the runs left would end after it")
    if folder != study.root:
        log.info(
            "[ablate] a subset (ablate.only / ablate.seeds on the command line): its tables go to %s; "
            "%s/results.md keeps the whole comparison's",
            folder,
            study.root,
        )
    return folder, tabulate(study, steps, parts, argv, folder)
