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
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from curation.executors import ExecutorError, ExecutorOptions, ShardJob, run_job
from eval.benchmarks.loader import load_benchmark
from eval.records import write_text_atomic
from limo.ablation import plan
from limo.ablation.results import RunResult, Tables, facts, load_run, write_results
from limo.ablation.steps import DRIVER, StepError, run_item
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
    """

    recipe: str
    jobs: int | None
    flags: tuple[str, ...]
    overrides: tuple[str, ...]
    accept_old_markers: bool = False

    def passed_on(self) -> tuple[str, ...]:
        """The overrides the entries get (`limo.ablation.plan.entry_overrides`)."""
        return tuple(o for o in self.overrides if key_of(o).split(".")[0] not in OWN_KEYS)


def key_of(line: str) -> str:
    return line.lstrip("+~").split("=", 1)[0]


def parse_command(argv: Sequence[str]) -> Command:
    """Raises: ValueError: no recipe, ``--jobs`` without a positive count, an unknown flag, a refused key."""
    flags, rest = split_folder_flags(argv)
    jobs: int | None = None
    overrides, accept_old = [], False
    args = list(rest)
    while args:
        arg = args.pop(0)
        if arg == "--accept-old-markers":
            accept_old = True
        elif arg == "--jobs" or arg.startswith("--jobs="):
            value = arg.split("=", 1)[1] if "=" in arg else (args.pop(0) if args else "")
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"--jobs takes a count of at least 1, got {value!r}, the command line")
            jobs = int(value)
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
    return Command(recipe, jobs, tuple(flags), tuple(overrides), accept_old)


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
    study = replace(study, accept_old_markers=command.accept_old_markers)
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


def run_shards(name: str, items: list[dict[str, Any]], study: plan.Study, executor: ExecutorOptions) -> None:
    """Run ``items`` as one shard job; an entry's failure ends it with that entry's one line."""
    if not items:
        return
    console = executor.kind == "local" and executor.workers == 1
    items = [{**i, "console": console, "accept_old_markers": study.accept_old_markers} for i in items]
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


def run_study(study: plan.Study, executor: ExecutorOptions) -> dict[str, int]:
    """Curate every arm (in waves: sizes first), then train and evaluate every run; returns each arm's steps."""
    study.root.mkdir(parents=True, exist_ok=True)
    for index, wave in enumerate(plan.curation_waves(study)):
        run_shards(f"curate-{index}", plan.curation_items(study, wave), study, executor)
    steps = plan.arm_steps(study)
    items = plan.run_items(study, steps)
    write_text_atomic(study.root / "plan.json", plan.dumps(plan.write_plan(study, steps, items)))
    run_shards("runs", items, study, executor)
    return steps


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


def tabulate(
    cfg: DictConfig, study: plan.Study, steps: dict[str, int], argv: Sequence[str], folder: Path
) -> dict[str, Any]:
    """Read every run's evaluation and write ``results.json``, ``results.md`` and ``report.html`` into ``folder``."""
    options = study.options
    arms: dict[str, list[RunResult]] = {}
    for spec in plan.run_specs(study):
        arms.setdefault(spec.arm, []).append(load_run(spec, study.benchmarks))
    parts = benchmark_parts(cfg, options)
    all_parts = {name: parts.get(name, {}) for name in study.benchmarks}
    by = {b.name: b.by for b in options.benchmarks if b.by}
    described = [arm_facts(study, a.name, steps) for a in options.active]
    described = ([{"name": BASE, "kind": "untrained", "rows": None, "steps": 0}] if options.base else []) + described
    part_sizes = {b: {p: len(ids) for p, ids in ps.items()} for b, ps in all_parts.items()}
    line = "python -m limo.ablate " + " ".join(shlex.quote(a) for a in argv)
    header = facts(study.recipe, line, described, part_sizes, options.seeds, options.draws)
    tables = Tables(arms, all_parts, by, pairs_of(options), header, options.primary)
    folder.mkdir(parents=True, exist_ok=True)
    return write_results(folder, tables, (TurnTables(),))


def arm_facts(study: plan.Study, name: str, steps: dict[str, int]) -> dict[str, Any]:
    arm = study.options.arm(name)
    first = study.options.draws_of(arm)[0]
    if arm.after is not None:  # its rows (prompts, for RL) are curated per run: the first seed's count
        curated = study.run_folder(arm.data_of or name, study.options.seeds_of(arm)[0], None) / "curate"
        names = (
            [arm.data_file or "messages.jsonl"] if arm.data_of else ["prompts.jsonl", "messages.jsonl", "pairs.jsonl"]
        )
        rows = next((plan.count_rows(curated / f) for f in names if (curated / f).exists()), None)
        kind = f"after {arm.after} ({arm.recipe or study.recipe})"
        kind += f", {arm.data_of}'s {arm.data_file or 'messages.jsonl'}" if arm.data_of else ""
        return {"name": name, "kind": kind, "rows": rows, "steps": steps[name], "curate": dict(arm.curate), "n": None}
    rows = plan.count_rows(study.data_file(arm, first))
    kind = arm.baseline or (f"{arm.data_of}'s rows" if arm.data_of else "curation")
    return {"name": name, "kind": kind, "rows": rows, "steps": steps[name], "curate": dict(arm.curate), "n": arm.n}


def main(argv: Sequence[str]) -> tuple[Path, dict[str, Any]]:
    """The whole ablation; returns its folder and ``results.json``'s content."""
    command = parse_command(argv)
    cfg = compose_command(command)
    study, executor = build_study(cfg, command)
    log.info(
        "[ablate] %s: %d arms, seeds %s, draws %d, on %s (%d at once) -> %s",
        study.recipe,
        len(study.options.active),
        list(study.options.seeds),
        study.options.draws,
        executor.kind,
        executor.workers,
        study.root,
    )
    steps = run_study(study, executor)
    folder = results_folder(study, command)
    if folder != study.root:
        log.info(
            "[ablate] a subset (ablate.only / ablate.seeds on the command line): its tables go to %s; "
            "%s/results.md keeps the whole comparison's",
            folder,
            study.root,
        )
    return folder, tabulate(cfg, study, steps, argv, folder)
