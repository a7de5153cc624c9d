"""The spend plan of rollout stages, before any sample is drawn: generations, tokens, GPU-hours, adaptive savings.

A pure function of the stages (model size, ``k``, ``max_new_tokens``, filter), the pool's length statistics
and a throughput table (`spend_data.yaml`: vLLM output tokens/s per model size, GPU type and tensor-parallel
degree, each value with its source and whether it is our estimate). Conventions:

- Stages run in order, each on the problems every earlier stage kept (LIMO's weak filter, then the strong
  window on what is left); with per-problem pass rates the number of problems entering a stage is an
  expectation (`curation.adaptive.keep_probability`).
- Fixed k draws ``k`` samples per entering problem; adaptive sampling draws `expected_draws` of them, exact
  under independent samples at the problem's pass rate, counting the samples that complete a kept problem
  to ``k`` (as `curation.rollouts.run` draws them); a stage without a filter draws ``k``. Pass rates come from
  the caller (a pilot run, or a pool's own graded attempts) or else from the file's reference distribution
  (CHAMP, measured by ``bench/curation/adaptive.py``), which the plan then names.
- Expected generated tokens per sample: the stage's ``expected_new_tokens`` when set, else the pool's mean
  chain length in tokens, capped at ``max_new_tokens``; the upper bound takes every sample to
  ``max_new_tokens``. Tokens come from a tokenizer when one is given, else characters / 4 (an estimate).
- GPU-hours = generated tokens / replica throughput / 3600 x GPUs per replica. Prompt (prefill) tokens
  (the problem text; a template adds a few dozen) are reported but not priced separately: the table's
  figures come from serving benchmarks whose requests carry prompts of a similar few hundred tokens. Those
  benchmarks generate ~200 tokens per request, so for long reasoning rollouts the GPU-hours are optimistic.

The model size is the recipe's to state (no model-name sniffing); a size between table rows uses the
next larger size listed, so the estimate errs towards more GPU-hours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.options import DifficultyOptions
from curation.rollouts.adaptive import SolveCountFilter, expected_draws, keep_probability
from curation.rollouts.run import rollout_stages
from eval.options import OptionsError
from eval.records import DataError

SPEND_DATA = Path(__file__).with_name("spend_data.yaml")


@dataclass(frozen=True)
class Throughput:
    """One row of the throughput table."""

    params_b: float
    gpu: str
    tensor_parallel: int
    output_tokens_per_s: float
    estimate: bool
    source: str


@dataclass(frozen=True)
class PassRateDistribution:
    """Per-problem pass rates, one tuple per problem kind (a rate per stage), with weights."""

    rows: tuple[tuple[tuple[float, ...], float], ...]
    source: str

    @classmethod
    def from_problems(cls, rates: Sequence[Sequence[float]], source: str) -> PassRateDistribution:
        return cls(tuple((tuple(r), 1.0) for r in rates), source)


@dataclass(frozen=True)
class SpendData:
    throughput: tuple[Throughput, ...]
    chars_per_token: float
    reference_pass_rates: PassRateDistribution


@dataclass(frozen=True)
class PoolLengths:
    """Length statistics of the pool, in tokens."""

    problems: int
    prompt_tokens_mean: float
    chain_tokens_mean: float
    counted_by: str


@dataclass(frozen=True)
class RolloutStage:
    """One rollout stage to plan: ``k`` samples per problem from a model of ``params_b`` billion parameters.

    ``rule`` is the filter that stops sampling early and passes problems on (None: every problem draws ``k``
    and goes on).
    """

    name: str
    model: str
    params_b: float
    k: int
    max_new_tokens: int
    rule: SolveCountFilter | None
    tensor_parallel: int = 1
    expected_new_tokens: int | None = None


@dataclass(frozen=True)
class StagePlan:
    """The plan of one stage; token and GPU-hour figures are for fixed k unless named adaptive."""

    stage: str
    model: str
    problems: float
    generations: float
    adaptive_generations: float
    tokens_per_sample: float
    new_tokens: float
    new_tokens_max: float
    prompt_tokens: float
    gpu_hours: float
    gpu_hours_max: float
    adaptive_gpu_hours: float
    throughput: Throughput

    @property
    def adaptive_saving(self) -> float:
        return self.generations / self.adaptive_generations if self.adaptive_generations else float("inf")


def load_spend_data(path: str | Path = SPEND_DATA) -> SpendData:
    """Read and check the throughput table, the characters-per-token rule and the reference pass rates.

    Raises:
        DataError: Unreadable file, or an entry with a missing or invalid field (named with its row).
    """
    import yaml

    target = Path(path)
    if not target.is_file():
        raise DataError(f"{target}: spend data file not found")
    data = yaml.safe_load(target.read_text(encoding="utf-8")) or {}
    rows = data.get("throughput") or []
    if not rows:
        raise DataError(f"{target}: no 'throughput' entries")
    throughput = tuple(_throughput_row(target, i, row) for i, row in enumerate(rows, start=1))
    chars = _number(target, "chars_per_token", (data.get("chars_per_token") or {}).get("value"))
    return SpendData(throughput, chars, _reference_rates(target, data.get("reference_pass_rates") or {}))


def _throughput_row(path: Path, number: int, row: Any) -> Throughput:
    where = f"throughput row {number}"
    if not isinstance(row, dict):
        raise DataError(f"{path}: {where}: expected a mapping")
    for key in ("gpu", "source"):
        if not str(row.get(key) or "").strip():
            raise DataError(f"{path}: {where}: field {key!r} is missing or empty")
    if not isinstance(row.get("estimate"), bool):
        raise DataError(f"{path}: {where}: field 'estimate' must be true or false")
    return Throughput(
        params_b=_number(path, f"{where}: params_b", row.get("params_b")),
        gpu=str(row["gpu"]),
        tensor_parallel=int(_number(path, f"{where}: tensor_parallel", row.get("tensor_parallel"))),
        output_tokens_per_s=_number(path, f"{where}: output_tokens_per_s", row.get("output_tokens_per_s")),
        estimate=row["estimate"],
        source=" ".join(str(row["source"]).split()),
    )


def _number(path: Path, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise DataError(f"{path}: {where}: expected a positive number, got {value!r}")
    return float(value)


def _reference_rates(path: Path, block: dict[str, Any]) -> PassRateDistribution:
    attempts = block.get("attempts") or []
    cells = block.get("cells") or []
    if not cells or not attempts:
        raise DataError(f"{path}: reference_pass_rates: 'attempts' and 'cells' are required")
    rows = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, list) or len(cell) != len(attempts) + 1:
            raise DataError(f"{path}: reference_pass_rates cell {number}: expected {len(attempts) + 1} numbers")
        rates = tuple(solved / tries for solved, tries in zip(cell[:-1], attempts, strict=True))
        if not all(0.0 <= r <= 1.0 for r in rates) or cell[-1] < 0:
            raise DataError(f"{path}: reference_pass_rates cell {number}: {cell} is out of range")
        rows.append((rates, float(cell[-1])))
    return PassRateDistribution(tuple(rows), str(block.get("source") or path))


def pool_lengths(
    problems: Iterable[str],
    chains: Iterable[str],
    *,
    count_tokens: Callable[[str], int] | None,
    chars_per_token: float,
) -> PoolLengths:
    """Mean prompt and chain lengths in tokens, in one pass over each stream of texts."""

    def by_chars(text: str) -> float:
        return len(text) / chars_per_token

    count: Callable[[str], float] = count_tokens or by_chars
    problem_count, prompt_tokens = _count_mean(problems, count)
    _, chain_tokens = _count_mean(chains, count)
    counted_by = "tokenizer" if count_tokens else f"characters / {chars_per_token:g} (estimate)"
    return PoolLengths(problem_count, prompt_tokens, chain_tokens, counted_by)


def counted_lengths(problems: int) -> PoolLengths:
    """Lengths for a plan from a problem count alone (the pool is not read, e.g. a hub pool offline).

    Prompt tokens are not counted, and each sample is priced at its stage's ``expected_new_tokens``, else at
    ``max_new_tokens`` (the upper bound): the mean chain length is unknown.
    """
    note = (
        "no one: the pool was not read (dry_run_problems); samples priced at expected_new_tokens, else max_new_tokens"
    )
    return PoolLengths(problems, 0.0, math.inf, note)


def _count_mean(texts: Iterable[str], count: Callable[[str], float]) -> tuple[int, float]:
    items, total = 0, 0.0
    for text in texts:
        items += 1
        total += count(text)
    return items, (total / items if items else 0.0)


def lookup_throughput(table: Sequence[Throughput], params_b: float, gpu: str, tensor_parallel: int) -> Throughput:
    """The row for the smallest listed model size >= ``params_b`` on ``gpu`` at ``tensor_parallel``.

    Raises:
        ValueError: No such row (the message lists what the table has for that GPU).
    """
    rows = [r for r in table if r.gpu == gpu and r.tensor_parallel == tensor_parallel and r.params_b >= params_b]
    if rows:
        return min(rows, key=lambda r: r.params_b)
    have = sorted({(r.params_b, r.tensor_parallel) for r in table if r.gpu == gpu})
    raise ValueError(
        f"no throughput for a {params_b:g}B model on {gpu} with tensor_parallel={tensor_parallel}; "
        f"the table has (size B, tensor_parallel) {have or 'nothing'} for {gpu} (GPUs listed: "
        f"{sorted({r.gpu for r in table})})"
    )


def plan_rollouts(
    stages: Sequence[RolloutStage],
    lengths: PoolLengths,
    *,
    gpu: str,
    data: SpendData,
    pass_rates: PassRateDistribution | None = None,
) -> list[StagePlan]:
    """Plan every stage over ``lengths.problems`` problems (see the module docstring for the conventions).

    Raises:
        ValueError: A pass-rate row without one rate per stage, or a stage with no throughput row.
    """
    rates = pass_rates or data.reference_pass_rates
    if any(len(r) != len(stages) for r, _ in rates.rows):
        raise ValueError(f"pass rates ({rates.source}) must give one rate per stage ({len(stages)} stages)")
    total_weight = sum(w for _, w in rates.rows)
    entering = [(r, w / total_weight) for r, w in rates.rows]  # (rates, probability mass still in the funnel)
    plans = []
    for index, stage in enumerate(stages):
        share = sum(mass for _, mass in entering)
        adaptive_per_problem = sum(mass * _draws(stage, r[index]) for r, mass in entering)
        plans.append(_stage_plan(stage, lengths, gpu, data, share, adaptive_per_problem))
        if stage.rule is not None:
            entering = [(r, mass * keep_probability(stage.rule, r[index])) for r, mass in entering]
    return plans


def _draws(stage: RolloutStage, pass_rate: float) -> float:
    return stage.k if stage.rule is None else expected_draws(stage.rule, pass_rate, complete_kept=True)


def _stage_plan(
    stage: RolloutStage, lengths: PoolLengths, gpu: str, data: SpendData, share: float, adaptive_per_problem: float
) -> StagePlan:
    throughput = lookup_throughput(data.throughput, stage.params_b, gpu, stage.tensor_parallel)
    problems = lengths.problems * share
    generations = problems * stage.k
    adaptive = lengths.problems * adaptive_per_problem
    per_sample = float(min(stage.expected_new_tokens or lengths.chain_tokens_mean, stage.max_new_tokens))

    def hours(tokens: float) -> float:
        return tokens / throughput.output_tokens_per_s / 3600 * stage.tensor_parallel

    return StagePlan(
        stage=stage.name,
        model=stage.model,
        problems=problems,
        generations=generations,
        adaptive_generations=adaptive,
        tokens_per_sample=per_sample,
        new_tokens=generations * per_sample,
        new_tokens_max=generations * stage.max_new_tokens,
        prompt_tokens=generations * lengths.prompt_tokens_mean,
        gpu_hours=hours(generations * per_sample),
        gpu_hours_max=hours(generations * stage.max_new_tokens),
        adaptive_gpu_hours=hours(adaptive * per_sample),
        throughput=throughput,
    )


def render_plan(plans: Sequence[StagePlan], lengths: PoolLengths, gpu: str, pass_rates_source: str) -> str:
    """The plan as text for ``dry_run=true``: one block per stage, then totals and sources."""
    lines = [
        f"Rollout plan on {gpu}: {lengths.problems:,} problems, mean prompt {lengths.prompt_tokens_mean:,.0f} tokens, "
        f"mean pool chain {_tokens(lengths.chain_tokens_mean)} (counted by {lengths.counted_by})"
    ]
    for plan in plans:
        lines += _render_stage(plan)
    fixed = sum(p.gpu_hours for p in plans)
    adaptive = sum(p.adaptive_gpu_hours for p in plans)
    lines.append(
        f"total: {fixed:,.1f} GPU-hours fixed k (upper bound {sum(p.gpu_hours_max for p in plans):,.1f}), "
        f"{adaptive:,.1f} adaptive ({fixed / adaptive if adaptive else float('inf'):.2f}x less)"
    )
    lines.append(f"pass rates behind the adaptive figures: {pass_rates_source}")
    return "\n".join(lines)


def _tokens(mean: float) -> str:
    return f"{mean:,.0f} tokens" if math.isfinite(mean) else "unknown"


def _render_stage(plan: StagePlan) -> list[str]:
    source = plan.throughput
    tag = "estimate" if source.estimate else "measured"
    return [
        f"stage {plan.stage} ({plan.model}): {plan.problems:,.0f} problems, {plan.generations:,.0f} generations "
        f"(adaptive: {plan.adaptive_generations:,.0f}, {plan.adaptive_saving:.2f}x fewer)",
        f"  new tokens: {plan.new_tokens:,.0f} expected ({plan.tokens_per_sample:,.0f} per sample), "
        f"{plan.new_tokens_max:,.0f} at max_new_tokens; prompt tokens {plan.prompt_tokens:,.0f}",
        f"  GPU-hours: {plan.gpu_hours:,.1f} expected, {plan.gpu_hours_max:,.1f} upper bound, "
        f"{plan.adaptive_gpu_hours:,.1f} adaptive",
        f"  throughput: {source.output_tokens_per_s:,.0f} tokens/s per {source.tensor_parallel}x{source.gpu} replica "
        f"({source.params_b:g}B row, {tag}): {source.source}",
    ]


def plan_stages(difficulty: DifficultyOptions) -> list[RolloutStage]:
    """The recipe's rollout stages (`curation.rollouts.rollout_stages`) as stages to plan.

    Raises:
        OptionsError: A rollout stage without ``params_b`` (the plan cannot price a model of unknown size).
    """
    planned = []
    for stage in rollout_stages(difficulty):
        settings = stage.options
        if settings.params_b is None:
            raise OptionsError(
                f"curate.stages.difficulty.{stage.name}_rollouts.params_b: the spend plan needs the model's size "
                "in billions of parameters"
            )
        tensor_parallel = int(settings.generator.backend_args.get("tensor_parallel_size", 1))
        planned.append(
            RolloutStage(
                stage.name,
                settings.generator_name,
                settings.params_b,
                settings.k,
                settings.generator.max_new_tokens,
                stage.rule,
                tensor_parallel,
                settings.expected_new_tokens,
            )
        )
    return planned


def spend_text(
    difficulty: DifficultyOptions,
    problems: Iterable[str],
    chains: Iterable[str],
    gpu: str,
    *,
    lengths: PoolLengths | None = None,
) -> str:
    """What ``limo.curate ... dry_run=true`` prints: the plan of every rollout stage, or why there is none.

    ``lengths`` (`counted_lengths`) plans without the pool's texts; ``problems`` and ``chains`` are then unused.
    """
    stages = plan_stages(difficulty) if difficulty.enabled and difficulty.source == "rollouts" else []
    if not stages:
        return "Rollout plan: no rollout stage (curate.stages.difficulty.source is not 'rollouts'), nothing to run"
    data = load_spend_data()
    lengths = lengths or pool_lengths(problems, chains, count_tokens=None, chars_per_token=data.chars_per_token)
    plans = plan_rollouts(stages, lengths, gpu=gpu, data=data)
    return render_plan(plans, lengths, gpu, data.reference_pass_rates.source)
