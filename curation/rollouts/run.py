"""Fresh rollouts: samples per problem from a generator, cached and resumable (pass rates, LEMMA's wrong chains).

Each (problem, sample index) is one `GenerationRequest` with id ``<problem_id>#<i>`` and its own seed
(`row_seed(seed, problem_id, i)`), so a response does not depend on batch composition. Replies go through
the one generation cache (`eval.backends.generation.CachedGenerator`), whose file name carries a hash of everything
that determines them: backend, model, sampling, prompt, system turn, k and seed. A rerun skips every
finished row and generates only the rest; changing any of those settings starts a new file instead of
mixing samples.

The difficulty filters' rollouts run as sharded work (`run_rollout_stages`): the requests of a round are cut
into chunks, each chunk one task with a completion marker on the run's executor (`curation.executors`:
local, Ray or Slurm) and its own cache file, so a killed or pre-empted run reruns only the missing chunks,
and a chunk killed halfway resumes from the batches it had finished; a stop (SIGTERM, Ctrl-C) therefore
keeps every finished generation. Sampling is adaptive (`curation.rollouts.adaptive`): each round asks every open
problem for `samples_before_decidable` more samples, the strong stage runs only on problems the weak filter
keeps, and problems a filter keeps are completed to ``k`` so that their pass rates — the selection's
difficulty score — equal fixed k's. The student's own samples (``curate.student.pass_rate.rollouts``) are a third
stage, ``student``, on what the weak and strong filters keep (`student_stage`). GPU generation is the ``vllm`` backend
inside each task: a chunk reserves ``executor.gpus_per_task`` GPUs, or vLLM's tensor x data parallel size when that
is 0 (a Ray task's placement group; on Slurm one array task on ``executor.gpu_partition``). That path is the same
backend interface as ``hf`` and ``replay`` and is not tested here (no GPU).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from curation.executors import ExecutorOptions, ShardJob, read_shards, run_job
from curation.funnel import Attempt
from curation.options import DifficultyOptions, RolloutOptions, StageOptions, StudentOptions
from curation.pool.store import Table, TableWriter
from curation.rollouts.adaptive import (
    SolveCountFilter,
    decision,
    pass_rate_window,
    samples_before_decidable,
    weak_filter,
)
from curation.schema import Chain
from eval.backends.base import Backend, GenerationRequest, row_seed
from eval.backends.generation import CachedGenerator, cached_generator
from eval.grading.grader import grade_many
from eval.options import to_options
from eval.problem import Problem
from eval.records import append_jsonl, json_line

log = logging.getLogger(__name__)


def rollout_generator(
    options: RolloutOptions, cache_dir: str | Path, seed: int, task: str | None = None
) -> CachedGenerator:
    """The rollout generator behind its cache file (keyed by the prompts, k and the seed too).

    ``task`` names the file (default: the generator's name); sharded chunks give each chunk its own file.
    """
    context = {
        "prompt_template": options.prompt_template,
        "system_prompt": options.system_prompt,
        "k": options.k,
        "seed": seed,
    }
    name = task or options.generator_name
    return cached_generator(options.generator, cache_dir, name, context, progress=f"rollouts {name}")


def rollouts_as_chains(
    options: RolloutOptions, problems: Sequence[Problem], cache_dir: Path, seed: int
) -> list[Chain]:
    """``k`` samples per problem as chains (generator ``rollout:<model>``), through the rollout cache in ``cache_dir``
    (a rerun generates only what it lacks): a method's own samples of a policy, as pairs and LEMMA take them."""
    generator = rollout_generator(options, cache_dir, seed)
    name = f"rollout:{options.generator_name}"
    return [
        Chain(
            id=f"{row['problem_id']}/{name}/{row['sample_index']}",
            problem_id=row["problem_id"],
            text=row["text"],
            generator=name,
            prompt_setting="rollout",
            truncated=row["finish_reason"] == "length",
            provenance={
                "kind": "rollout",
                "request_id": row["id"],
                "backend": options.generator.backend,
                "model": options.generator.model,
                "seed": row["seed"],
                "finish_reason": row["finish_reason"],
            },
        )
        for row in run_rollouts(problems, generator, options, seed=seed)
    ]


def build_requests(problems: Sequence[Problem], options: RolloutOptions, seed: int) -> list[GenerationRequest]:
    """One request per (problem, sample index), in problem order then index order."""
    return [
        rollout_request(problem.id, problem.problem, options, seed, index)
        for problem in problems
        for index in range(options.k)
    ]


def rollout_request(
    problem_id: str, text: str, options: RolloutOptions, seed: int, index: int, **meta: Any
) -> GenerationRequest:
    """Sample ``index`` of one problem: the recipe's prompt, its own seed, ``meta`` added."""
    messages: list[dict[str, str]] = []
    if options.system_prompt:
        messages.append({"role": "system", "content": options.system_prompt})
    messages.append({"role": "user", "content": options.prompt_template.format(problem=text)})
    return GenerationRequest(
        id=f"{problem_id}#{index}",
        messages=tuple(messages),
        sampling=options.generator.sampling(),
        seed=row_seed(seed, problem_id, index),
        meta={"problem_id": problem_id, "sample_index": index, **meta},
    )


def run_rollouts(
    problems: Sequence[Problem], generator: Backend, options: RolloutOptions, *, seed: int
) -> list[dict[str, Any]]:
    """Every rollout row for ``problems`` (a `CachedGenerator` generates only what its cache lacks).

    Returns:
        Rows ``{id, problem_id, sample_index, seed, text, finish_reason, num_tokens}``, in request order.
    """
    requests = build_requests(problems, options, seed)
    return [_row(r, g) for r, g in zip(requests, generator.generate(requests), strict=True)]


def _row(request: GenerationRequest, generation: Any) -> dict[str, Any]:
    return {
        "id": request.id,
        "problem_id": request.meta["problem_id"],
        "sample_index": request.meta["sample_index"],
        "seed": request.seed,
        "text": generation.text,
        "finish_reason": generation.finish_reason,
        "num_tokens": generation.num_tokens,
    }


# ------------------------------------------------------------------------------------------------ sharded


@dataclass(frozen=True)
class RolloutStage:
    """One rollout stage of the difficulty filters: its settings, and the rule that decides a problem (None: no
    filter applies to this generator, so it always draws ``k``)."""

    name: str
    options: RolloutOptions
    rule: SolveCountFilter | None


def rollout_stages(difficulty: DifficultyOptions) -> list[RolloutStage]:
    """The weak then the strong stage, each with the filter `curation.stages.difficulty` will apply to its attempts
    (the student's own stage, when its pass rate scores, goes after them: `student_stage`)."""
    stages = []
    weak, strong = difficulty.weak_rollouts, difficulty.strong_rollouts
    if weak is not None:
        applies = difficulty.weak_max_solved is not None and weak.generator_name in difficulty.weak_models
        stages.append(RolloutStage("weak", weak, weak_filter(weak.k, difficulty.weak_max_solved) if applies else None))  # type: ignore[arg-type]
    if strong is not None:
        window = difficulty.strong_pass_rate
        applies = window is not None and strong.generator_name in difficulty.strong_models
        stages.append(RolloutStage("strong", strong, pass_rate_window(strong.k, *window) if applies else None))  # type: ignore[misc]
    return stages


def student_stage(student: StudentOptions) -> RolloutStage | None:
    """The student's samples (``curate.student.pass_rate.rollouts`` with the student's model and system prompt: None
    when it is not sampled). Its window is adaptive as the strong one is, except under ``pass_rate.fallback``: whether
    the student's pass rates count is decided on every problem's ``k`` samples, so each problem draws all of them."""
    rollouts, settings = student.rollouts(), student.pass_rate
    if rollouts is None:
        return None
    window = settings.window if settings.fallback == "none" else None
    k = rollouts.k
    return RolloutStage("student", rollouts, pass_rate_window(k, *window) if window is not None else None)


@dataclass
class StageOutcome:
    """What one stage drew: per problem position, samples drawn and solved, and the jobs that hold its rows."""

    stage: RolloutStage
    entering: np.ndarray
    drawn: np.ndarray
    solved: np.ndarray
    jobs: list[ShardJob] = field(default_factory=list)
    chunks_run: int = 0
    chunks_reused: int = 0

    def kept(self) -> np.ndarray:
        """Positions whose filter keeps them (all entering ones without a rule)."""
        if self.stage.rule is None:
            return self.entering
        rule = self.stage.rule
        return self.entering[[decision(rule, int(self.drawn[p]), int(self.solved[p])) is True for p in self.entering]]

    def summary(self, problems: int) -> dict[str, Any]:
        k = self.stage.options.k
        return {
            "stage": self.stage.name,
            "generator": self.stage.options.generator_name,
            "k": k,
            "rule": self.stage.rule.name if self.stage.rule else None,
            "problems": len(self.entering),
            "generations": int(self.drawn.sum()),
            "fixed_k": k * len(self.entering),
            "fixed_k_every_problem": k * problems,
            "rounds": len(self.jobs),
            "chunks_run": self.chunks_run,
            "chunks_reused": self.chunks_reused,
        }


@dataclass
class RolloutOutcome:
    """Every stage's draws over the problems given (positions in that order)."""

    problems: Table
    stages: list[StageOutcome]
    adaptive: bool

    def counts(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{generator: (solved, drawn)}`` per problem position (stages of one generator add up)."""
        counts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for outcome in self.stages:
            name = outcome.stage.options.generator_name
            solved, drawn = counts.get(name, (np.zeros_like(outcome.solved), np.zeros_like(outcome.drawn)))
            counts[name] = (solved + outcome.solved, drawn + outcome.drawn)
        return counts

    def attempts(self) -> Iterator[Attempt]:
        """Every graded rollout as an `Attempt` (problem id, request id, generator, correct, answer)."""
        for outcome in self.stages:
            for job in outcome.jobs:
                for row in read_shards(job):
                    generator = outcome.stage.options.generator_name
                    yield Attempt(row["problem_id"], row["id"], generator, row["correct"], row["extracted"])

    def manifest(self) -> dict[str, Any]:
        """Generations made against what fixed k would have made (staged, and on every problem as before)."""
        stages = [o.summary(len(self.problems)) for o in self.stages]
        return {
            "adaptive": self.adaptive,
            "generations": sum(s["generations"] for s in stages),
            "fixed_k_staged": sum(s["fixed_k"] for s in stages),
            "fixed_k_every_problem": sum(s["fixed_k_every_problem"] for s in stages),
            "stages": stages,
        }


def run_rollout_stages(
    problems: Iterable[dict[str, Any]],
    options: StageOptions,
    work_dir: Path,
    seed: int,
    executor: ExecutorOptions,
    stages: Sequence[RolloutStage] | None = None,
) -> RolloutOutcome:
    """Sample the difficulty stages' rollouts for ``problems`` (rows with ``id``, ``problem``, ``answer``): ``stages``,
    default the weak and strong stages the options set (`rollout_stages`; the difficulty stage adds the student's).

    The (problem, sample) requests of each round are cut into chunks of ``chunk_size``; each chunk is one task
    of a `curation.executors.ShardJob` on ``executor`` (completion markers: a rerun after a kill runs only the
    chunks without one) and generates through its own `CachedGenerator` file (a chunk killed halfway keeps
    every batch it finished). Adaptive rounds ask each open problem for `samples_before_decidable` more.
    """
    table = problems_table(problems, work_dir)
    difficulty = options.difficulty
    outcomes: list[StageOutcome] = []
    entering = np.arange(len(table))
    for stage in rollout_stages(difficulty) if stages is None else stages:
        outcome = _run_stage(stage, table, entering, seed, work_dir, executor, difficulty.adaptive)
        outcomes.append(outcome)
        if difficulty.adaptive:
            entering = outcome.kept()
    return RolloutOutcome(table, outcomes, difficulty.adaptive)


def problems_table(problems: Iterable[dict[str, Any]], work_dir: Path) -> Table:
    """The problems to roll out as a table (chunks read theirs by offset), named from its content."""
    staging = work_dir / f".problems-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    writer = TableWriter(staging, "problems", 1 << 30)
    digest = hashlib.sha256()
    for row in problems:
        record = {"id": row["id"], "problem": row["problem"], "answer": row["answer"]}
        writer.add(record)
        digest.update(json_line(record).encode())
    writer.close()
    folder = work_dir / f"problems-{digest.hexdigest()[:12]}"
    if folder.is_dir():
        shutil.rmtree(staging)
    else:
        staging.rename(folder)
    return Table.open(folder, "problems")


def _run_stage(
    stage: RolloutStage,
    table: Table,
    entering: np.ndarray,
    seed: int,
    work: Path,
    executor: ExecutorOptions,
    adaptive: bool,
) -> StageOutcome:
    outcome = StageOutcome(stage, entering, np.zeros(len(table), np.int64), np.zeros(len(table), np.int64))
    rule = stage.rule if adaptive else None
    while plan := _round_plan(outcome, rule):
        _run_round(outcome, plan, table, seed, work, executor)
    if rule is not None:  # kept problems get all k samples: their pass rates, hence the selection, equal fixed k's
        completion = [(int(p), int(outcome.drawn[p]), stage.options.k - int(outcome.drawn[p])) for p in outcome.kept()]
        if plan := [entry for entry in completion if entry[2] > 0]:
            _run_round(outcome, plan, table, seed, work, executor)
    return outcome


def _round_plan(outcome: StageOutcome, rule: SolveCountFilter | None) -> list[tuple[int, int, int]]:
    """``(position, first sample, samples)`` for every problem that needs more samples now."""
    k = outcome.stage.options.k
    if rule is None:
        return [
            (int(p), int(outcome.drawn[p]), k - int(outcome.drawn[p]))
            for p in outcome.entering
            if outcome.drawn[p] < k
        ]
    plan = []
    for position in outcome.entering.tolist():
        drawn = int(outcome.drawn[position])
        more = samples_before_decidable(rule, drawn, int(outcome.solved[position]))
        if more:  # more than needed is never wrong: the outcome is decided on the prefix either way
            plan.append((position, drawn, min(k - drawn, max(more, outcome.stage.options.round_samples))))
    return plan


def _run_round(
    outcome: StageOutcome,
    plan: list[tuple[int, int, int]],
    table: Table,
    seed: int,
    work: Path,
    executor: ExecutorOptions,
) -> None:
    stage = outcome.stage
    round_number = len(outcome.jobs) + 1
    plan_path = _save_plan(work, plan)
    items = tuple(
        {
            "problems": str(table.folder),
            "plan": plan_path,
            "start": start,
            "stop": stop,
            "options": asdict(stage.options),
            "seed": seed,
            "cache": str(work / "cache" / f"{stage.name}-r{round_number}-{start}"),
        }
        for start, stop in _chunks(plan, stage.options.chunk_size)
    )
    job = ShardJob(f"rollouts-{stage.name}-r{round_number}", rollout_chunk, items, str(work / "jobs"))
    gpus = executor.gpus_per_task or backend_gpus(stage.options)
    result = run_job(
        job, replace(executor, partition=executor.gpu_partition or executor.partition, gpus_per_task=gpus)
    )
    outcome.jobs.append(job)
    outcome.chunks_run += len(result.ran)
    outcome.chunks_reused += len(result.skipped)
    log.info(
        "rollouts %s round %d: %d chunks run, %d finished before",
        stage.name,
        round_number,
        len(result.ran),
        len(result.skipped),
    )
    for row in read_shards(job):
        outcome.drawn[row["position"]] += 1
        outcome.solved[row["position"]] += bool(row["correct"])


def backend_gpus(options: RolloutOptions) -> int:
    """GPUs one chunk's backend uses: vLLM's tensor x data parallel size (0 for CPU backends)."""
    if options.generator.backend != "vllm":
        return 0
    args = options.generator.backend_args
    return int(args.get("tensor_parallel_size", 1)) * int(args.get("data_parallel_size", 1))


def _save_plan(work: Path, plan: list[tuple[int, int, int]]) -> str:
    array = np.asarray(plan, dtype=np.int64).reshape(-1, 3)
    path = work / "plans" / f"{hashlib.sha256(array.tobytes()).hexdigest()[:16]}.npy"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, array)
        tmp.replace(path)
    return str(path)


def _chunks(plan: list[tuple[int, int, int]], size: int) -> Iterator[tuple[int, int]]:
    """Plan entry ranges holding about ``size`` requests each (a problem's samples of a round stay together)."""
    start = requests = 0
    for index, (_, _, samples) in enumerate(plan):
        requests += samples
        if requests >= size:
            yield start, index + 1
            start, requests = index + 1, 0
    if start < len(plan):
        yield start, len(plan)


def rollout_chunk(index: int, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One chunk: generate its (problem, sample) requests through a cache, grade them, yield one row each.

    Before generating it appends ``{"requests", "cached"}`` to ``<cache>.attempts.jsonl``, so the record of a
    rerun shows what a killed attempt had already generated (and that a finished chunk never ran twice).
    """
    options = to_options(RolloutOptions, item["options"])
    plan = np.load(item["plan"], mmap_mode="r")[item["start"] : item["stop"]].tolist()
    table = Table.open(Path(item["problems"]), "problems")
    problems = dict(zip((p for p, _, _ in plan), table.read_many(p for p, _, _ in plan), strict=True))
    requests = [
        rollout_request(problems[p]["id"], problems[p]["problem"], options, item["seed"], i, position=p)
        for p, first, count in plan
        for i in range(first, first + count)
    ]
    generator = rollout_generator(options, Path(item["cache"]).parent, item["seed"], Path(item["cache"]).name)
    cached = generator.cached()
    append_jsonl(
        f"{item['cache']}.attempts.jsonl",
        [{"requests": len(requests), "cached": sum(r.id in cached for r in requests)}],
    )
    generations = generator.generate(requests)
    verdicts = grade_many(  # the problem text lets the grader judge yes/no statements
        [
            (problems[r.meta["position"]]["answer"], g.text, problems[r.meta["position"]]["problem"])
            for r, g in zip(requests, generations, strict=True)
        ],
        workers=1,
        progress=False,
    )
    for request, generation, verdict in zip(requests, generations, verdicts, strict=True):
        row = _row(request, generation)
        del row["text"]  # it stays in the chunk's cache
        yield {"position": request.meta["position"], **row, **verdict.to_dict()}
