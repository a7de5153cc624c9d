"""The recipe's ``curate:`` section as a method and plain options (`limo.curate` runs what this builds).

One shape for every method (docs/architecture.md, "The curate: section")::

    curate:
      method: <name>      # the only key that dispatches (default: limo); see curation.methods.METHODS
      stages: {...}       # the shared stages' options (curation.options.StageOptions)
      student: {...}      # the model you will train, which every student-relative signal reads
                          # (curation.options.StudentOptions)
      <name>: {...}       # the method's own options (its Method.options), when it has any

Every part maps onto the library's frozen options through `limo.config.sections.to_options`: an unknown key, a
stage the method does not run, or options for a method the recipe does not select fail at start-up,
naming the key (a key the student section replaced, ``curate.stages.difficulty.likelihood`` or ``.student``, names
what to write instead: `curation.options.moved_student_keys`); so does a file option naming no file
(`limo.config.files.check_files`), and `check_benchmarks_load` loads decontamination's benchmarks before the run.
``data_dir`` (shared benchmark files) fills ``stages.decontam.data_dir`` when that is null.
A command-line override of ``curate.stages.ingest.field_map`` (or ``lists``) replaces the recipe's map
instead of merging into it: Hydra does it in its one composition (`limo.cli.overrides`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from curation.executors import EXECUTORS, ExecutorOptions
from curation.methods import DEFAULT_METHOD, METHODS, CurationSummary, Method, RunContext
from curation.options import StageOptions, StudentOptions, moved_student_keys
from curation.pool.store import open_or_ingest
from curation.rollouts.spend import counted_lengths, spend_text
from curation.stages.decontam import benchmark_error
from eval.benchmarks.loader import BenchmarkSpec, load_benchmark, resolve_source
from eval.options import OptionsError, did_you_mean
from eval.records import DataError, HubOfflineError
from limo.config.files import check_files
from limo.config.sections import build_benchmark_specs, section, to_options
from limo.models.chat import require_chat_template


class EmptyResultError(ValueError):
    """A run that produced nothing to train on (``0 selected`` is an error, not a success)."""


@dataclass(frozen=True)
class Curation:
    """A method and everything it runs with, as plain values."""

    method: Method
    stages: StageOptions
    options: Any
    context: RunContext

    def run(self) -> CurationSummary:
        return self.method.run(self.stages, self.options, self.context)


def build_curation(cfg: DictConfig) -> Curation:
    """The recipe's ``curate:`` section as a `Curation` (nothing runs yet).

    Raises:
        OptionsError: No ``curate:`` section, an unknown method or key, a stage the method does not run.
    """
    data = section(cfg, "curate")
    method = find_method(data)
    stages = build_stages(data.get("stages"), method, cfg.get("data_dir"))
    student = build_student(data)
    options = build_method_options(data, method)
    check_files(stages.ingest, "curate.stages.ingest")  # a missing pool fails here, naming its key and folders
    if options is not None:
        check_files(options, f"curate.{method.name}")
    specs = build_benchmark_specs(cfg)
    check_benchmarks(stages, specs)
    check_student_template(stages, student, method)
    echo = {"method": method.name, "stages": asdict(stages), "student": asdict(student)}
    echo |= {method.name: asdict(options)} if options else {}
    executor = build_executor(cfg.get("executor"))
    output_dir = Path(str(cfg.output_dir))
    context = RunContext(output_dir, int(cfg.seed), str(cfg.name), specs, echo, executor, student)
    return Curation(method, stages, options, context)


def build_student(data: dict[str, Any]) -> StudentOptions:
    """``curate.student`` as `StudentOptions` (its defaults when the recipe has none: no student).

    Raises:
        OptionsError: Unknown key or wrong type, naming the key path.
    """
    return to_options(StudentOptions, data.get("student"), "curate.student")


def check_student_template(stages: StageOptions, student: StudentOptions, method: Method) -> None:
    """The student that scores chains (difficulty's ``source: likelihood`` or the pass rate's ``fallback:
    likelihood``, selection's ``student_fit``) must have a chat template, its own or ``curate.student.chat_template``:
    checked on its files before the pool is read and the model converted.

    Raises:
        OptionsError: It has none (naming ``curate.student.chat_template``).
    """
    difficulty = stages.difficulty
    fallback = difficulty.pass_rate_of == "student" and student.pass_rate.fallback == "likelihood"
    scores = "difficulty" in method.stages and difficulty.enabled and (difficulty.source == "likelihood" or fallback)
    scores = scores or ("select" in method.stages and stages.select.student_fit != "none")
    if scores and student.model:
        model = {"path": student.model, "chat_template": student.chat_template}
        require_chat_template(model, key="curate.student.chat_template")


def build_executor(node: Any) -> ExecutorOptions:
    """The ``executor`` group (``local`` by default, ``ray``, ``slurm``) as `ExecutorOptions`.

    Raises:
        OptionsError: Unknown key, wrong type or unknown kind.
    """
    executor = to_options(ExecutorOptions, node, "executor")
    if executor.kind not in EXECUTORS:
        raise OptionsError(f"executor.kind: unknown executor {executor.kind!r} (known: {', '.join(EXECUTORS)})")
    return executor


def spend_plan(curation: Curation, gpu: str, problems: int | None = None) -> str:
    """``dry_run=true``: the rollout stages' spend plan over the pool's length statistics; nothing is generated.

    The pool is ingested into the run's work folder (the real run reuses it) to measure its lengths, unless
    ``problems`` (``dry_run_problems=N``) gives a count to plan for without reading it (a hub pool offline).

    Raises:
        HubOfflineError: The pool is on a hub that cannot be reached; the message says how to plan anyway.
    """
    stages, context = curation.stages, curation.context
    difficulty = stages.difficulty
    if not (curation.method.pool and difficulty.enabled and difficulty.source == "rollouts"):
        return spend_text(difficulty, (), (), gpu)
    if problems is not None:
        return spend_text(difficulty, (), (), gpu, lengths=counted_lengths(int(problems)))
    try:
        store = open_or_ingest(stages, context.out / "work", (context.executor or ExecutorOptions()).shard_rows)
    except HubOfflineError as err:
        raise HubOfflineError(f"{err}; or plan from a problem count: dry_run_problems=<N>", err.reason) from err
    return spend_text(difficulty, store.problems.values("problem"), store.chains.values("text"), gpu)


def find_method(data: dict[str, Any]) -> Method:
    """``curate.method`` looked up in the registry; other top-level keys must be ``stages`` or its options."""
    name = data.get("method") or DEFAULT_METHOD
    if name not in METHODS:
        raise OptionsError(f"curate.method: unknown method {name!r} (registered: {', '.join(METHODS)})")
    for key in data:
        if key in ("method", "stages", "student", name):
            continue
        shape = f"a curate: section holds method, stages, student and {name}"
        hint = f" (options of method {key!r}, but curate.method is {name!r})" if key in METHODS else ""
        close = did_you_mean(key, ("method", "stages", "student", name), "curate.").rstrip()
        raise OptionsError(
            f"curate.{key}: unknown key{hint}; {close + ' ' if close else ''}{shape}", key=f"curate.{key}"
        )
    return METHODS[name]


def build_stages(data: Any, method: Method, data_dir: str | None) -> StageOptions:
    """``curate.stages`` as `StageOptions`; a stage the method does not run is an error, not ignored, and so is a key
    the student section replaced (`curation.options.moved_student_keys`: the line names what to write instead)."""
    moved = moved_student_keys((data or {}).get("difficulty"))
    if moved is not None:
        raise OptionsError(moved, key="curate.stages.difficulty")
    allowed = method.configurable_stages()
    for key in data or {}:
        if key not in allowed and key in StageOptions.__dataclass_fields__:
            raise OptionsError(
                f"curate.stages.{key}: method {method.name!r} does not run this stage (it runs: {', '.join(allowed)})"
            )
    stages = to_options(StageOptions, data, "curate.stages")
    if stages.decontam.data_dir is None and data_dir is not None:
        stages = replace(stages, decontam=replace(stages.decontam, data_dir=str(data_dir)))
    return stages


def build_method_options(data: dict[str, Any], method: Method) -> Any:
    """``curate.<method>`` as the method's own options type (None for a method without one)."""
    if method.options is None:
        if data.get(method.name):
            raise OptionsError(f"curate.{method.name}: method {method.name!r} takes no options of its own")
        return None
    return to_options(method.options, data.get(method.name), f"curate.{method.name}")


def check_benchmarks(stages: StageOptions, specs: dict[str, BenchmarkSpec]) -> None:
    """Every benchmark decontamination names must be composed (``benchmark_specs``)."""
    unknown = [b for b in stages.decontam.benchmarks if b not in specs]
    if stages.decontam.enabled and unknown:
        raise OptionsError(
            f"curate.stages.decontam.benchmarks: unknown benchmark {unknown[0]!r} (known: {', '.join(sorted(specs))})"
        )


def check_benchmarks_load(curation: Curation) -> None:
    """Load every benchmark decontamination needs before any work starts, when a missing one is an error
    (``missing: error``): a forgotten ``data_dir`` fails at once, not after the stages before decontamination.

    Raises:
        DataError: A benchmark that cannot be loaded, with what to do and the key (`decontam.benchmark_error`).
    """
    decontam = curation.stages.decontam
    runs = "decontam" in curation.method.configurable_stages()
    if not (runs and decontam.enabled and decontam.missing == "error"):
        return
    for name in decontam.benchmarks:
        spec = curation.context.benchmark_specs[name]
        if spec.loader == "champ_heldout":  # embedded: always there
            continue
        try:  # a local file that exists is read by the stage itself; a hub id is loaded now (cached for the stage)
            if not Path(resolve_source(spec, data_dir=decontam.data_dir)).exists():
                load_benchmark(spec, data_dir=decontam.data_dir)
        except DataError as err:
            raise benchmark_error(err) from err


def check_selected(summary: CurationSummary) -> None:
    """``0 selected`` is an error: there is nothing to train on (the files stay, with every reason).

    Raises:
        EmptyResultError: Nothing was selected.
    """
    if summary.selected == 0:
        why = "".join(f"; {notice}" for notice in summary.notices[:1])  # the shortfall: where the problems went
        raise EmptyResultError(
            f"0 {summary.unit} selected from {summary.read} items read ({summary.rejected} rows in rejects.jsonl, "
            f"each with its reason){why}, {summary.output_dir}/funnel.json"
        )
