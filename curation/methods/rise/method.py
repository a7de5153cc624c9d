"""``curate.method: rise``: RISE rollouts over turns into weighted multi-turn SFT data
(`curation.methods.rise.episodes`).

A straight line: the graded pool (`curation.methods.graded_pool`), the policy, the improver (the policy
itself for best-of-N, else the teacher), resumable episodes, weighted examples, outputs.

The policy is ``curate.rise.policy``, a generator like every other; iterations read::

    python -m limo.curate recipe=rise curate.rise.round=2 curate.rise.policy.model=<round-1 model>

``policy.backend: auto`` means ``hf`` when ``policy.model`` is set, else ``replay`` of the pool's recorded
chains (each problem's unaided CHAMP answers, cycled by sample index; a chain without ``\\boxed{}`` gets
the answer the grader extracted from it boxed at the end): a stand-in policy that lets the whole recipe run
offline. A ``replay`` teacher with no arguments answers with the problem's human solution. Each episode
goes to ``curate/rise/episodes-round<k>-<settings hash>.jsonl`` as soon as it finishes
(`eval.run.multiturn.resume_episodes`, shared with the multi-turn evaluation), so a killed run resumes where
it stopped, and changed settings never reuse stale rollouts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from curation.methods.base import CurationSummary, Method, RunContext
from curation.methods.graded_pool import STAGES as POOL_STAGES
from curation.methods.graded_pool import GradedPool, load_graded_pool, method_manifest, pool_totals
from curation.methods.rise.episodes import (
    ImproveOptions,
    correct_answers,
    episode_stats,
    run_rise_batch,
    weighted_examples,
)
from curation.options import StageOptions
from curation.outputs.report import pool_counts, render_report
from curation.outputs.writer import RunOutputs, assistant_text, write_outputs
from eval.backends.base import Backend
from eval.backends.generation import GenerationOptions, build_generator
from eval.backends.replay import ReplayBackend
from eval.grading.grader import grade_many
from eval.problem import Problem
from eval.records import Reject, under_cwd_relative
from eval.run.multiturn import Episode, MultiTurnOptions, resume_episodes

log = logging.getLogger(__name__)
RECORDED = {"backend": "replay", "model": "recorded pool chains"}


@dataclass(frozen=True)
class FeedbackOptions:
    """The user turn after an answer: with an oracle (only after a wrong answer), or without one."""

    oracle: str = ""
    no_oracle: str = ""


@dataclass(frozen=True)
class RiseOptions:
    """``curate.rise``: RISE's own options.

    Attributes:
        policy: The model that rolls out (``backend: auto``: ``hf`` when ``model`` is set, else the replay
            stand-in); its ``batch_size`` is the episodes per batch and per append to the episodes file.
        round: The iteration (round k rolls out with round k-1's model).
        system_prompt: The system turn the policy is prompted with (as it is trained).
        turns: Answers per problem at most (1..5).
        oracle: Feedback only after a wrong answer; the episode stops when correct.
        feedback: The feedback texts.
        improve: Where improved answers come from (`curation.rise.ImproveOptions`); its ``sampling``
            applies to best-of-N samples, a teacher samples with its own settings.
        teacher: The teacher for ``improve.method: teacher`` (``replay`` with no arguments: human solutions).
        tau: Weight temperature: ``exp(r / tau)``.
        grader_timeout_s: Grading timeout per answer.
    """

    policy: GenerationOptions = field(
        default_factory=lambda: GenerationOptions(backend="auto", temperature=0.7, max_new_tokens=1024)
    )
    round: int = 1
    system_prompt: str | None = None
    turns: int = 5
    oracle: bool = True
    feedback: FeedbackOptions = field(default_factory=FeedbackOptions)
    improve: ImproveOptions = field(default_factory=ImproveOptions)
    teacher: GenerationOptions | None = None
    tau: float = 0.4
    grader_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if self.improve.method == "teacher" and self.teacher is None:
            raise ValueError("curate.rise.improve.method=teacher needs curate.rise.teacher")


def run_rise(stages: StageOptions, options: RiseOptions, context: RunContext) -> CurationSummary:
    """Roll out, improve, build weighted examples and write ``curate/``."""
    started = time.perf_counter()
    check_model_exists(options.policy, "curate.rise.policy.model")  # before the pool stages' work
    pool, facts = load_graded_pool(stages, context)
    policy, identity = build_policy(options.policy, pool)
    problems, rejects = rollout_problems(pool, identity)
    counts = (len(pool.problems), len(problems))
    pool.state.record(
        "problems", unit="problem", items_in=counts[0], items_out=counts[1], rejects=rejects, problems=counts
    )
    improver = policy if options.improve.method == "best_of_n" else build_teacher(options, pool)
    rows = roll_out(problems, policy, improver, options, context.seed, episodes_file(stages, options, context))
    stats = episode_stats(rows, options.turns)
    pool.state.record("rollouts", unit="episode", items_in=len(problems), items_out=len(rows), **stats)
    rise = {"round": options.round, "policy": identity, "improve": options.improve.method, "oracle": options.oracle}
    examples, rejects = weighted_examples(rows, options.tau, rise)
    pool.state.record(
        "examples", unit="improvement", items_in=stats["improvements"], items_out=len(examples), rejects=rejects
    )
    facts.update(rise=rise, episodes=stats)
    write_rise(pool, rows, examples, facts, options, context)
    seconds = round(time.perf_counter() - started, 2)
    return CurationSummary(
        "rise",
        str(context.out),
        pool.state.read,
        len(examples),
        "examples",
        pool.state.rejected,
        seconds,
        pool_counts(pool.state.funnel),
    )


def check_model_exists(generator: GenerationOptions, key: str) -> None:
    """A generator's model that names a local folder (an absolute path, or one of several parts: a hub id has two)
    must be there: an SFT run's model that was never trained fails here in one line, not after the pool stages.

    Raises:
        ValueError: The folder is missing, naming it and ``key``.
    """
    model = generator.model
    if generator.backend in ("replay", "openai") or not model or model.startswith("pkg:"):
        return
    path = Path(model).expanduser()
    if (path.is_absolute() or model.startswith(".") or model.count("/") > 1) and not path.exists():
        raise ValueError(
            f"no model at {model} (a trained run's model: train that run first, or point model.path at a run folder "
            f"that holds train/model), {key}"
        )


def build_policy(policy: GenerationOptions, pool: GradedPool) -> tuple[Backend, dict[str, Any]]:
    """The policy backend and how to name it in provenance."""
    backend = policy.backend if policy.backend != "auto" else ("hf" if policy.model else "replay")
    resolved = replace(policy, backend=backend)
    if backend == "replay" and not policy.backend_args:
        return ReplayBackend(pool=recorded_answers(pool)), dict(RECORDED)
    return build_generator(resolved), {"backend": backend, "model": policy.model}


def build_teacher(options: RiseOptions, pool: GradedPool) -> Backend:
    """The teacher backend; ``replay`` with no arguments answers with the problem's human solution."""
    assert options.teacher is not None  # RiseOptions checks it for improve.method: teacher

    def human_solutions() -> Backend:
        answers = {pid: [assistant_text(c, pool.problems[pid].answer)] for pid, c in pool.human.items() if c.text}
        return ReplayBackend(pool=answers)

    return build_generator(options.teacher, replay_default=human_solutions)


def recorded_answers(pool: GradedPool) -> dict[str, list[str]]:
    """Each problem's recorded unaided answers (pool order), ending with a boxed answer the grader can read."""
    answers: dict[str, list[str]] = {}
    for chain in pool.chains:
        verdict = pool.verdicts.get(chain.id)
        text = assistant_text(chain, verdict.extracted) if verdict is not None and verdict.extracted else chain.text
        answers.setdefault(chain.problem_id, []).append(text)
    return answers


def rollout_problems(pool: GradedPool, identity: dict[str, Any]) -> tuple[list[Problem], list[Reject]]:
    """Problems to roll out; with the replay stand-in, those with recorded answers (the rest are rejected)."""
    problems = list(pool.problems.values())
    if identity != RECORDED:
        return problems, []
    have = {c.problem_id for c in pool.chains}
    rejects = [
        Reject("rise", n, "problem", "no_recorded_answers", "problems", p.id)
        for n, p in enumerate(problems, start=1)
        if p.id not in have
    ]
    return [p for p in problems if p.id in have], rejects


def roll_out(
    problems: list[Problem], policy: Backend, improver: Backend, options: RiseOptions, seed: int, path: Path
) -> list[dict[str, Any]]:
    """Every problem's episode, resumed from ``path`` and appended to it batch by batch."""
    multiturn, improve = multiturn_options(options, seed), improve_options(options)
    system = ({"role": "system", "content": options.system_prompt},) if options.system_prompt else ()

    def grade(pairs: Any) -> list[Any]:
        return grade_many(pairs, workers=1, timeout_s=options.grader_timeout_s, progress=False)

    def first_turn(problem: Problem) -> Episode:
        return Episode(problem, (*system, {"role": "user", "content": problem.problem}))

    def run_batch(batch: Any, on_done: Any) -> Any:
        return run_rise_batch(batch, policy, improver, multiturn, improve, grade, on_done)

    return resume_episodes(problems, path, first_turn, run_batch, options.policy.batch_size)


def multiturn_options(options: RiseOptions, seed: int) -> MultiTurnOptions:
    feedback = options.feedback.oracle if options.oracle else options.feedback.no_oracle
    samples = options.improve.samples if options.improve.method == "best_of_n" else 1
    sampling = options.policy.sampling()
    return MultiTurnOptions(options.turns, options.oracle, feedback, sampling, seed, samples_per_turn=samples)


def improve_options(options: RiseOptions) -> ImproveOptions:
    """Best-of-N samples with ``improve.sampling``; a teacher with its own sampling."""
    if options.improve.method == "teacher" and options.teacher is not None:
        return replace(options.improve, sampling=options.teacher.sampling())
    return options.improve


def episodes_file(stages: StageOptions, options: RiseOptions, context: RunContext) -> Path:
    """``rise/episodes-round<k>-<hash>.jsonl``; the hash covers what decides the rollouts (the pool stages, the
    policy, turns, feedback, improvements, seed) and leaves out what does not: ``tau`` (re-weighting reuses the
    rollouts), the policy's ``batch_size`` (rows are seeded one by one) and ``problem_limit`` (episodes are
    per problem, so a larger limit extends the same file); paths under the working directory count as relative
    ones (`under_cwd_relative`)."""
    pool = asdict(replace(stages, ingest=replace(stages.ingest, problem_limit=None)))
    settings = {k: v for k, v in asdict(options).items() if k != "tau"}
    settings["policy"] = {k: v for k, v in settings["policy"].items() if k != "batch_size"}
    key = json.dumps(
        under_cwd_relative({"stages": pool, "rise": settings, "seed": context.seed}), sort_keys=True, default=str
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return context.out / "rise" / f"episodes-round{options.round}-{digest}.jsonl"


def write_rise(
    pool: GradedPool,
    rows: list[dict[str, Any]],
    examples: list[Any],
    facts: dict[str, Any],
    options: RiseOptions,
    context: RunContext,
) -> dict[str, Any]:
    """``messages.jsonl`` (weight, loss_turns), ``correct.jsonl`` (the rollouts' correct answers, one single-turn
    row each: `curation.methods.rise.episodes.correct_answers`), ``curated.jsonl`` (episodes), and the shared
    accounting."""
    weights = [e.weight for e in examples]
    correct = correct_answers(rows, facts["rise"])
    summary = {
        "examples": len(examples),
        "correct_examples": sum(1 for e in examples if e.provenance["reward"] == 1.0),
        "by_turn": _count_by_turn(examples),
        "correct_answers": len(correct),
        "weight": {
            "tau": options.tau,
            "normalised_mean": statistics.fmean(weights) if weights else None,
            "correct": _first(e.weight for e in examples if e.provenance["reward"] == 1.0),
            "incorrect": _first(e.weight for e in examples if e.provenance["reward"] == 0.0),
        },
        "rejected": len(pool.state.method_rejects),
    }
    manifest = method_manifest(context, facts, summary)
    report = rise_report(context.name, pool, summary, facts)
    data = {
        "messages.jsonl": [e.to_dict() for e in examples],
        "correct.jsonl": [e.to_dict() for e in correct],
        "curated.jsonl": rows,
    }
    write_outputs(
        context.out,
        RunOutputs(
            "rise", data, pool.state, pool_totals(pool), summary, manifest, report, problems=pool.problem_lookup
        ),
    )
    return summary


def _first(values: Any) -> float | None:
    return next(iter(values), None)


def _count_by_turn(examples: list[Any]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for e in examples:
        row = table.setdefault(str(e.provenance["turn"]), {"examples": 0, "correct": 0})
        row["examples"] += 1
        row["correct"] += int(e.provenance["reward"] == 1.0)
    return table


def rise_report(name: str, pool: GradedPool, summary: dict[str, Any], facts: dict[str, Any]) -> str:
    """Markdown: what was rolled out, policy accuracy per turn, examples per turn and their weights."""
    rise, stats, weight = facts["rise"], facts["episodes"], summary["weight"]
    answered, correct = stats["policy_answers_per_turn"], stats["policy_correct_per_turn"]
    by_turn = [summary["by_turn"].get(str(t), {}) for t in range(1, len(answered) + 1)]
    turns = "\n".join(
        f"| {t} | {a} | {c} | {b.get('examples', 0)} | {b.get('correct', 0)} |"
        for t, (a, c, b) in enumerate(zip(answered, correct, by_turn, strict=True), start=1)
    )
    intro = (
        f"Policy: {rise['policy']['model']} ({rise['policy']['backend']}); improvements: {rise['improve']}; "
        f"oracle feedback: {rise['oracle']}.\n\n"
        f"{summary['examples']} examples ({summary['correct_examples']} with a correct improved answer) from "
        f"{stats['episodes']} episodes; {summary['rejected']} items rejected (rejects.jsonl). "
        f"correct.jsonl: {summary['correct_answers']} distinct correct answers of the rollouts, one single-turn row "
        "each (plain SFT on the same rollouts)."
    )
    sections = [
        "## Turns",
        "| turn | policy answers | policy correct | examples | correct improvements |\n|---|---|---|---|---|\n"
        + turns,
        f"Weights exp(r / tau), tau = {weight['tau']}, normalised to mean {_fmt(weight['normalised_mean'])}: "
        f"correct improvement {_fmt(weight['correct'])}, incorrect {_fmt(weight['incorrect'])}.",
    ]
    return render_report(f"RISE curation: {name} (round {rise['round']})", intro, pool.state.funnel, sections)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


METHOD = Method(
    name="rise",
    run=run_rise,
    options=RiseOptions,
    stages=POOL_STAGES,
    trainer="weighted_sft",
    summary="RISE: multi-turn rollouts with improved answers, weighted exp(r / tau) (messages.jsonl)",
)
