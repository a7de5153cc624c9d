"""A recipe's ``ablate:`` section as typed options: the arms, seeds, draws, compute and benchmarks of a comparison.

``ablate:`` is a structured section (`limo.config.sections.to_options`: an unknown key or a wrong type fails at
start-up, naming the key), then `check_ablate` refuses what would make the tables wrong: two arms of one name, a random
baseline without a size, an arm with no step count, a part or pair naming nothing. Example::

    ablate:
      arms:
        - {name: curated}                                       # the recipe's own curation
        - {name: random_correct, baseline: random_correct, n: curated}   # as many chains as curated selected
      seeds: [0, 1, 2]
      draws: 3                  # random baselines: three selection seeds, each trained at every seed
      draw_seeds: cross         # or paired: seed s trains draw s mod draws (three draws in three runs)
      compute: {epochs_of: all_correct}   # or {steps: 250}
      # RL after SFT: each curated run of a seed goes on with GRPO (its own prompts, from that run's model)
      #   - {name: curated_grpo, after: curated, recipe: smol_rlvr_student, steps: 16}
      benchmarks:
        - {name: arith_unseen, part_field: part, by: [level]}
      # the comparison the ablation is run to decide: first in results.md, its p unadjusted; every other p-value is
      # exploratory and Holm-adjusted
      primary: {pair: [curated, random_correct], benchmark: arith_unseen, part: untouched}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from omegaconf import DictConfig

from eval.benchmarks.loader import load_benchmark
from eval.options import OptionsError
from eval.run.multiturn import MAX_TURNS
from limo.config.sections import build_benchmark_specs, section, to_options

BASELINES = ("random", "random_correct", "random_problems", "all", "all_correct")
RANDOM = ("random", "random_correct", "random_problems")  # the baselines that draw (once per draw)
BASE = "base"  # the untrained model's row
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # an arm's name is a folder name


@dataclass(frozen=True)
class MultiturnOptions:
    """A run's multi-turn evaluation beside its single-turn one (``limo.evaluate mode=[generate,multiturn]``, RISE's):
    each problem answered again after feedback, up to ``turns`` answers, once per variant; the tables show turn 1
    and turn ``turns`` of each (`limo.ablation.turns`).

    Attributes:
        turns: Answers per problem at most (1-5).
        variants: ``oracle``: after a wrong answer the model is told it is incorrect and tries again, and it stops
            when right (its verdict at turn t: right at some turn up to t); ``no_oracle``: after every answer it is
            asked to check its work (its verdict at turn t: its latest answer by then; a reply with no answer keeps
            the one before).
    """

    turns: int = 3
    variants: tuple[Literal["oracle", "no_oracle"], ...] = ("oracle", "no_oracle")


@dataclass(frozen=True)
class ArmOptions:
    """One arm of the comparison: a curation (the recipe's ``curate:`` with overrides) or a chance baseline.

    Attributes:
        name: The arm's name in the tables and its folder under ``<output_dir>/ablate/``.
        baseline: A chance baseline instead of a curation: ``random``, ``random_correct``, ``random_problems``,
            ``all`` or ``all_correct`` (``curate.method: baseline`` on the recipe's pool, docs/curation.md).
        n: A random baseline's size: a count, or another arm's name (as many chains as that arm's curation
            selected; ``random_problems``: as many problems, one chain each).
        curate: Overrides of the recipe's ``curate:`` section for this arm, as key paths below ``curate.``
            (``{stages.select.n: 400}``) or nested mappings.
        train: Overrides of the recipe's ``train:`` section for this arm (key paths below ``train.``).
        data_of: Train on another arm's curated rows instead of curating (that arm's curation runs once): the
            curated chains once against the same chains repeated; the arm named must not draw at random. On an
            ``after`` arm: another arm after the same arm, whose run at each seed this arm's run trains on (that
            run's curation runs once, first; this arm's own ``recipe`` trains): the same rollouts, another trainer.
        data_file: With ``data_of`` on an ``after`` arm: the file of that run's ``curate/`` folder this arm trains on
            (default ``messages.jsonl``; ``pairs.jsonl``, or ``correct.jsonl``: the correct answers the rollouts
            held, one SFT row each).
        steps: This arm's optimizer steps, instead of ``compute``'s.
        epochs: This arm's steps as epochs over its own rows (ceil(epochs x rows / train.global_batch_size)).
        seeds: The seeds this arm trains at, of ``ablate.seeds`` (default: all of them). A run of some seeds
            (``ablate.seeds=[0]``, a screen) keeps those of this list it names.
        after: Go on from another arm's trained runs, seed for seed (RL after SFT): for each of that arm's runs,
            ``recipe``'s curation (``rl_prompts``: with that run's model as the student) and training (``steps``
            of it, from that run's model) in a run folder of this arm's, evaluated as every run is. The named arm
            trains first (its runs are reused, or trained here when ``only`` leaves it out).
        recipe: The recipe of an ``after`` arm's curation and training (default: the ablation's); its evaluation is
            always the ablation's recipe's, so every row is measured alike.
        multiturn: Evaluate this arm's runs multi-turn too (`MultiturnOptions`; default ``ablate.multiturn``).
    """

    name: str
    baseline: Literal["random", "random_correct", "random_problems", "all", "all_correct"] | None = None
    n: int | str | None = None
    curate: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    data_of: str | None = None
    steps: int | None = None
    epochs: float | None = None
    seeds: tuple[int, ...] | None = None
    after: str | None = None
    recipe: str | None = None
    data_file: str | None = None
    multiturn: MultiturnOptions | None = None

    @property
    def random(self) -> bool:
        """Whether the arm draws at random (and so runs once per draw)."""
        return self.baseline in RANDOM


@dataclass(frozen=True)
class ComputeOptions:
    """The compute every arm gets (an arm's own ``steps`` or ``epochs`` win); tokens are reported per run.

    Attributes:
        steps: Optimizer steps of every arm.
        epochs_of: Instead of ``steps``: one epoch of this arm's rows (ceil(rows / train.global_batch_size)) for
            every arm (all distinct correct chains once, say).
        match_tokens: An arm whose training tokens the others match: each other arm's steps are that arm's, scaled
            by the ratio of the two arms' mean characters per row (one tokenizer reads both, so characters stand in
            for tokens; every run's real token count is reported beside it).
    """

    steps: int | None = None
    epochs_of: str | None = None
    match_tokens: str | None = None


@dataclass(frozen=True)
class BenchmarkOptions:
    """A benchmark every run is evaluated on, and how its problems split for the tables.

    Attributes:
        name: A benchmark of the recipe's ``benchmark_specs`` (or one declared on the command line).
        part_field: A column of the benchmark's file naming each problem's part (``arith_unseen``'s ``part``:
            ``dev`` / ``untouched``): a row per part in the tables.
        part_ranges: Parts by position in the benchmark's order instead, ``{name: [start, stop]}`` (stop null: to
            the end; ``{tuned: [0, 100], untouched: [100, null]}``).
        by: Sample fields to break accuracy down by (``level``, ``subject``).
    """

    name: str
    part_field: str | None = None
    part_ranges: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    by: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrimaryOptions:
    """The one comparison an ablation is run to decide, declared before its runs: results.md shows it first with its
    own p-value; every other p-value there is exploratory and Holm-adjusted (docs/ablation.md, "How the tables test
    a difference").

    Attributes:
        pair: The two arms, ``[A, B]`` (A's accuracy minus B's); ``base`` names the untrained model.
        benchmark: The benchmark it is decided on, one of ``ablate.benchmarks``.
        part: One of that benchmark's parts (a ``part_field`` value or a ``part_ranges`` name); null: the whole
            benchmark.
        turns: A multi-turn variant (``oracle`` or ``no_oracle``, `MultiturnOptions`): the comparison is then A's
            turn gain minus B's (the last turn's verdict minus turn 1's, per problem) in that variant, not their
            single-turn accuracy; null: the single-turn accuracy.
    """

    pair: tuple[str, str]
    benchmark: str
    part: str | None = None
    turns: Literal["oracle", "no_oracle"] | None = None


@dataclass(frozen=True)
class AblateOptions:
    """``ablate:``: the arms compared at equal compute, and how.

    Attributes:
        arms: The arms, each a curation or a baseline (`ArmOptions`).
        seeds: Training seeds (data order, LoRA init); every arm trains once per seed.
        draws: Selection seeds of the random baselines (0 to draws - 1).
        draw_seeds: ``cross``: each draw trains at every seed (draws x seeds runs); ``paired``: seed s trains draw
            s mod draws (one run a seed, a fresh draw each: several draws at the curated arms' cost; a run of some
            seeds alone trains the same draws).
        base: Evaluate the untrained model too: a row, and pairs against it.
        compute: The optimizer steps every arm gets (`ComputeOptions`).
        benchmarks: What every run is evaluated on (`BenchmarkOptions`, or just a name); empty: the recipe's
            ``evaluate.benchmarks``.
        limit: Only the first N problems of each benchmark.
        pairs: The arms compared pairwise, ``[[a, b], ...]``; empty: every pair of arms, and each arm against
            ``base`` when it is evaluated.
        only: Run and tabulate only these arms (a screen: ``ablate.only=[curated,random_correct]
            ablate.seeds=[0]``); an arm they take their size, rows or steps from is curated too. Empty: every arm.
        primary: The comparison the ablation decides (`PrimaryOptions`); null: every comparison is exploratory.
        multiturn: Evaluate every run multi-turn too (`MultiturnOptions`); an arm's own ``multiturn`` wins.
    """

    arms: tuple[ArmOptions, ...] = ()
    seeds: tuple[int, ...] = (0,)
    draws: int = 1
    draw_seeds: Literal["cross", "paired"] = "cross"
    base: bool = False
    compute: ComputeOptions = field(default_factory=ComputeOptions)
    benchmarks: tuple[BenchmarkOptions, ...] = ()
    limit: int | None = None
    pairs: tuple[tuple[str, str], ...] = ()
    only: tuple[str, ...] = ()
    primary: PrimaryOptions | None = None
    multiturn: MultiturnOptions | None = None

    def arm(self, name: str) -> ArmOptions:
        return next(a for a in self.arms if a.name == name)

    @property
    def active(self) -> tuple[ArmOptions, ...]:
        """The arms that train and appear in the tables (`only`, in the section's order)."""
        return tuple(a for a in self.arms if not self.only or a.name in self.only)

    @property
    def curated(self) -> tuple[ArmOptions, ...]:
        """The arms whose rows are needed: the active ones, and those they are sized by, train on, take their
        steps from or go on from (an ``after`` arm curates per run, not here)."""
        names = {a.name for a in self.active}
        for arm in self.active:
            names |= {x for x in (arm.data_of, arm.after, arm.n if isinstance(arm.n, str) else None) if x}
        common = any(a.steps is None and a.epochs is None for a in self.active)  # some arm trains compute's steps
        names |= {x for x in (self.compute.epochs_of if common else None, self.compute.match_tokens) if x}
        names |= {self.arm(n).data_of for n in list(names) if self.arm(n).data_of}  # type: ignore[misc]
        return tuple(a for a in self.arms if a.name in names and a.after is None)

    def seeds_of(self, arm: ArmOptions) -> tuple[int, ...]:
        """The arm's own ``seeds`` that ``ablate.seeds`` names, in the arm's order; all of ``ablate.seeds`` when it
        has none."""
        return self.seeds if arm.seeds is None else tuple(s for s in arm.seeds if s in self.seeds)

    def draws_of(self, arm: ArmOptions) -> tuple[int | None, ...]:
        """The arm's draws that train: 0 to draws - 1 for a random baseline (``paired``: only those its seeds
        reach), a single None otherwise."""
        return tuple(dict.fromkeys(d for _, d in self.runs_of(arm)))

    def runs_of(self, arm: ArmOptions) -> tuple[tuple[int, int | None], ...]:
        """The arm's (seed, draw) runs, seed by seed: every draw at every seed (``cross``), or seed s with draw
        s mod draws (``paired``); a single None draw for an arm that does not draw at random."""
        seeds = self.seeds_of(arm)
        if not arm.random:
            return tuple((s, None) for s in seeds)
        if self.draw_seeds == "paired":
            return tuple((s, s % self.draws) for s in seeds)
        return tuple((s, d) for s in seeds for d in range(self.draws))


def check_ablate(options: AblateOptions) -> None:
    """What the types cannot say.

    Raises:
        OptionsError: The first problem found, naming its key.
    """
    if not options.arms:
        raise OptionsError("ablate.arms: no arms; give at least one (a curation or a baseline)", key="ablate.arms")
    names = [a.name for a in options.arms]
    for index, arm in enumerate(options.arms):
        where = f"ablate.arms[{index}]"
        why = (
            "is reserved for the untrained model"
            if arm.name == BASE
            else "names an arm before it (names must be unique)"
            if arm.name in names[:index]
            else "is not a folder name (letters, digits, _ . -)"
            if not NAME.match(arm.name)
            else None
        )
        if why is not None:
            raise OptionsError(f"{where}.name: {arm.name!r} {why}", key="ablate.arms")
        check_arm_size(options, arm, where)
        check_arm_data(options, arm, where)
        check_arm_after(options, arm, where)
        check_arm_steps(options, arm, where)
        check_multiturn(arm.multiturn, f"{where}.multiturn")
    if not options.seeds or options.draws < 1:
        raise OptionsError("ablate.seeds / ablate.draws: need at least one seed and one draw", key="ablate.seeds")
    check_multiturn(options.multiturn, "ablate.multiturn")
    check_compute(options)
    unknown = [n for n in options.only if n not in names]
    if unknown:
        raise OptionsError(f"ablate.only: no arm {unknown[0]!r} (arms: {', '.join(names)})", key="ablate.only")
    idle = next((a for a in options.active if not options.seeds_of(a)), None)
    if idle is not None:
        raise OptionsError(
            f"ablate.arms[{names.index(idle.name)}].seeds: none of {list(idle.seeds or ())} is in ablate.seeds "
            f"{list(options.seeds)}, so arm {idle.name!r} would train at no seed (leave it out: ablate.only)",
            key="ablate.seeds",
        )
    check_pairs(options)
    check_benchmarks(options)
    check_primary(options)


def check_arm_size(options: AblateOptions, arm: ArmOptions, where: str) -> None:
    """A random baseline needs ``n`` (a count, or an arm that is not itself random); nothing else takes one."""
    if not arm.random:
        if arm.n is not None:
            raise OptionsError(f"{where}.n: only a random baseline takes n (arm {arm.name!r})", key="ablate.arms")
        return
    if arm.n is None or (isinstance(arm.n, int) and arm.n < 1):
        raise OptionsError(
            f"{where}.n: the {arm.baseline} baseline {arm.name!r} needs n: a count, or an arm's name",
            key="ablate.arms",
        )
    if isinstance(arm.n, str):
        named = next((a for a in options.arms if a.name == arm.n), None)
        if named is None or named.random or named.after is not None:
            known = [a.name for a in options.arms if not a.random and a.after is None]
            raise OptionsError(
                f"{where}.n: {arm.n!r} is not an arm whose size can be taken (arms that are not random: "
                f"{', '.join(known) or 'none'})",
                key="ablate.arms",
            )


def check_arm_data(options: AblateOptions, arm: ArmOptions, where: str) -> None:
    """``data_of`` names an arm with one set of rows of its own (an ``after`` arm's: an arm after the same arm that
    curates its own runs at this arm's seeds), and then the arm curates nothing itself."""
    if arm.data_file is not None and (arm.data_of is None or arm.after is None or "/" in arm.data_file):
        raise OptionsError(
            f"{where}.data_file: a file name of the curation an after arm's data_of names (arm {arm.name!r})",
            key="ablate.arms",
        )
    if arm.data_of is None:
        return
    named = next((a for a in options.arms if a.name == arm.data_of), None)
    if arm.after is not None:
        check_after_data(options, arm, named, where)
    elif named is None or named.random or named.data_of is not None or named.after is not None or named is arm:
        raise OptionsError(
            f"{where}.data_of: {arm.data_of!r} is not an arm with one set of rows of its own", key="ablate.arms"
        )
    if arm.baseline is not None or arm.curate:
        raise OptionsError(
            f"{where}: an arm that trains on {arm.data_of!r}'s rows curates nothing (no baseline, no curate)",
            key="ablate.arms",
        )


def check_after_data(options: AblateOptions, arm: ArmOptions, named: ArmOptions | None, where: str) -> None:
    """An ``after`` arm's ``data_of``: another arm after the same arm, curating its own runs, at every seed of this
    one."""
    if named is None or named is arm or named.after != arm.after or named.data_of is not None:
        raise OptionsError(
            f"{where}.data_of: {arm.data_of!r} is not an arm after {arm.after!r} that curates its own runs",
            key="ablate.arms",
        )
    missing = sorted(set(options.seeds_of(arm)) - set(options.seeds_of(named)))
    if missing:
        raise OptionsError(
            f"{where}.seeds: {arm.data_of!r} has no run at seeds {missing} for arm {arm.name!r} to train on",
            key="ablate.arms",
        )


def check_arm_after(options: AblateOptions, arm: ArmOptions, where: str) -> None:
    """``after`` names an earlier arm with one run a seed (not random, not itself after one) that trains at every
    seed of this arm; the arm then curates per run (or trains on another after arm's: ``data_of``), so it has no
    baseline or epochs, and needs steps."""
    if arm.after is None:
        if arm.recipe is not None:
            raise OptionsError(
                f"{where}.recipe: only an arm with after takes a recipe (arm {arm.name!r})", key="ablate.arms"
            )
        return
    named = next((a for a in options.arms if a.name == arm.after), None)
    if named is None or named is arm or named.random or named.after is not None:
        raise OptionsError(
            f"{where}.after: {arm.after!r} is not an arm with one trained run a seed (an arm that is not random "
            "and not itself after another)",
            key="ablate.arms",
        )
    if arm.baseline is not None or arm.epochs is not None or arm.steps is None:
        raise OptionsError(
            f"{where}: an arm after {arm.after!r} curates per run and needs its own steps (no baseline or epochs; arm "
            f"{arm.name!r})",
            key="ablate.arms",
        )
    missing = sorted(set(options.seeds_of(arm)) - set(options.seeds_of(named)))
    if missing:
        raise OptionsError(
            f"{where}.seeds: {arm.after!r} has no run at seeds {missing} for arm {arm.name!r} to go on from",
            key="ablate.arms",
        )


def check_arm_steps(options: AblateOptions, arm: ArmOptions, where: str) -> None:
    compute = options.compute
    if arm.steps is not None and arm.epochs is not None:
        raise OptionsError(f"{where}: give steps or epochs, not both (arm {arm.name!r})", key="ablate.arms")
    if arm.steps is None and arm.epochs is None and compute.steps is None and compute.epochs_of is None:
        raise OptionsError(
            f"ablate.compute: arm {arm.name!r} has no step count; set compute.steps or compute.epochs_of "
            "(or the arm's own steps / epochs)",
            key="ablate.compute",
        )


def check_multiturn(multiturn: MultiturnOptions | None, where: str) -> None:
    """Turns in 1-5 (`eval.run.multiturn.MAX_TURNS`), at least one variant, each once."""
    if multiturn is None:
        return
    if not 1 <= multiturn.turns <= MAX_TURNS:
        raise OptionsError(f"{where}.turns: {multiturn.turns}; expected 1 to {MAX_TURNS}", key=where)
    if not multiturn.variants or len(set(multiturn.variants)) != len(multiturn.variants):
        raise OptionsError(
            f"{where}.variants: {list(multiturn.variants)}; name oracle and/or no_oracle, each once", key=where
        )


def check_compute(options: AblateOptions) -> None:
    compute, names = options.compute, [a.name for a in options.arms]
    if compute.steps is not None and compute.epochs_of is not None:
        raise OptionsError("ablate.compute: give steps or epochs_of, not both", key="ablate.compute")
    for key in ("epochs_of", "match_tokens"):
        value = getattr(compute, key)
        if value is not None and value not in names:
            raise OptionsError(
                f"ablate.compute.{key}: no arm {value!r} (arms: {', '.join(names)})", key=f"ablate.compute.{key}"
            )
        if value is not None and options.arm(value).after is not None:
            raise OptionsError(
                f"ablate.compute.{key}: {value!r} goes on from another arm's runs (after); its rows are curated per "
                "run: name an arm with one set of rows",
                key=f"ablate.compute.{key}",
            )
    if compute.epochs_of is not None and options.arm(compute.epochs_of).random:
        raise OptionsError(
            f"ablate.compute.epochs_of: {compute.epochs_of!r} draws at random; name an arm with one set of rows",
            key="ablate.compute.epochs_of",
        )


def check_pairs(options: AblateOptions) -> None:
    names = [a.name for a in options.arms] + ([BASE] if options.base else [])
    for a, b in options.pairs:
        unknown = next((x for x in (a, b) if x not in names), None)
        if unknown is not None or a == b:
            why = f"no arm {unknown!r}" if unknown is not None else "an arm against itself"
            raise OptionsError(f"ablate.pairs: [{a}, {b}]: {why} (arms: {', '.join(names)})", key="ablate.pairs")


def check_benchmarks(options: AblateOptions) -> None:
    for bench in options.benchmarks:
        if bench.part_field is not None and bench.part_ranges:
            raise OptionsError(
                f"ablate.benchmarks: {bench.name}: give part_field or part_ranges, not both", key="ablate.benchmarks"
            )


def check_primary(options: AblateOptions) -> None:
    """``primary`` names two different arms (or ``base``, when evaluated), a benchmark of the section and, when given,
    one of its parts (`part_ranges` here; a ``part_field`` value is checked against the file by `build_ablate`)."""
    primary = options.primary
    if primary is None:
        return
    names = [a.name for a in options.arms] + ([BASE] if options.base else [])
    unknown = next((x for x in primary.pair if x not in names), None)
    if unknown is not None or primary.pair[0] == primary.pair[1]:
        why = f"no arm {unknown!r}" if unknown is not None else "an arm against itself"
        raise OptionsError(f"ablate.primary.pair: {why} (arms: {', '.join(names)})", key="ablate.primary")
    bench = next((b for b in options.benchmarks if b.name == primary.benchmark), None)
    if bench is None:
        known = ", ".join(b.name for b in options.benchmarks) or "none"
        raise OptionsError(
            f"ablate.primary.benchmark: {primary.benchmark!r} is not one of ablate.benchmarks ({known})",
            key="ablate.primary",
        )
    if primary.part is not None and bench.part_field is None:
        if not bench.part_ranges:
            raise OptionsError(
                f"ablate.primary.part: {bench.name} has no parts (no part_field or part_ranges); drop part",
                key="ablate.primary",
            )
        check_primary_part(primary, bench.part_ranges)
    check_primary_turns(options, primary)


def check_primary_turns(options: AblateOptions, primary: PrimaryOptions) -> None:
    """A turn-gain primary needs both its arms evaluated multi-turn in that variant."""
    if primary.turns is None:
        return
    for name in primary.pair:
        multiturn = (options.arm(name).multiturn if name != BASE else None) or options.multiturn
        if multiturn is None or primary.turns not in multiturn.variants:
            raise OptionsError(
                f"ablate.primary.turns: {primary.turns!r}, but arm {name!r} is not evaluated multi-turn in that "
                "variant (ablate.multiturn, or the arm's multiturn)",
                key="ablate.primary",
            )


def check_primary_part(primary: PrimaryOptions, parts: Any) -> None:
    if primary.part not in parts:
        raise OptionsError(
            f"ablate.primary.part: {primary.benchmark} has no part {primary.part!r} (parts: "
            f"{', '.join(sorted(str(p) for p in parts))})",
            key="ablate.primary",
        )


def primary_field_parts(cfg: DictConfig, options: AblateOptions) -> None:
    """A primary part of a ``part_field`` benchmark is one of the values its file holds in that column."""
    primary = options.primary
    if primary is None or primary.part is None:
        return
    bench = next(b for b in options.benchmarks if b.name == primary.benchmark)
    if bench.part_field is None:
        return
    specs = build_benchmark_specs(cfg)
    if bench.name not in specs:
        return  # an unknown benchmark is refused with its own line (limo.ablation.study.build_study)
    problems = load_benchmark(specs[bench.name], data_dir=cfg.get("data_dir")).problems
    values = {str(p.extra.get(bench.part_field, getattr(p, bench.part_field, None))) for p in problems}
    check_primary_part(primary, values)


def pairs_of(options: AblateOptions) -> tuple[tuple[str, str], ...]:
    """The pairs tested: the recipe's (those whose arms both run), else every pair of arms in order, then each arm
    against ``base``; the primary comparison's pair first, as ``primary.pair`` orders it (added when not listed)."""
    names = [a.name for a in options.active]
    if options.pairs:
        found = [(a, b) for a, b in options.pairs if {a, b} <= {*names, BASE}]
    else:
        every = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
        found = every + ([(a, BASE) for a in names] if options.base else [])
    primary = options.primary.pair if options.primary is not None else None
    if primary is None or not set(primary) <= {*names, *([BASE] if options.base else [])}:
        return tuple(found)
    return (primary, *(p for p in found if set(p) != set(primary)))


def build_ablate(cfg: DictConfig) -> AblateOptions:
    """The recipe's ``ablate:`` section as `AblateOptions`, checked; no benchmarks: the recipe's
    ``evaluate.benchmarks``.

    Raises:
        OptionsError: No ``ablate:`` section (naming the recipes with one), an unknown key, a wrong type, or what
            `check_ablate` refuses.
    """
    data = dict(section(cfg, "ablate"))
    listed = data.get("benchmarks") or list((cfg.get("evaluate") or {}).get("benchmarks") or [])
    data["benchmarks"] = [b if isinstance(b, dict) else {"name": b} for b in listed]
    options = to_options(AblateOptions, data, "ablate")
    check_ablate(options)
    primary_field_parts(cfg, options)
    return options
