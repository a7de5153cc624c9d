"""What an ablation runs: every arm's curation, every run's training and evaluation, as entry-point command lines.

The folders, under ``<output_dir>/ablate/``::

    arms/<arm>/                  an arm's curation (limo.curate's output_dir); a random baseline's draws in
    arms/<arm>/draw<d>/          draw<d>/ (selection seed d)
    runs/<arm>/seed<s>/          one training run and its evaluation (limo.train / limo.evaluate's output_dir);
    runs/<arm>/seed<s>-draw<d>/  a random baseline's run of draw d
    runs/<arm>/seed<s>/          an ``after`` arm's run: its own curation, training and evaluation, from the named
                                 arm's run of seed s (RL after SFT)
    base/                        the untrained model's evaluation (``ablate.base: true``)

Every command is ``python -m limo.<entry> recipe=<r> output_dir=<folder> ...``, as a user would type it. What ablate
sets itself (the recipe, the seed, the steps, the data, an arm's overrides) is a step's ``own`` arguments; what the
user typed after ``limo.ablate`` (``model.path=``, ``evaluate.backend=``, a ``benchmark_specs.<name>=`` declaration)
goes to every entry that reads it: ``benchmark_specs`` to the evaluations only, and ``model.path`` (the base model) to
the curations, the trainings and the base model's evaluation but never to a trained run's (``limo.evaluate`` would
evaluate it instead of the run). Both compose the step's config, whose hash its marker keeps (`limo.ablation.markers`),
so a resume with other settings runs again the steps they change.

Step counts need the curated row counts, so runs are planned after the curations (`plan_runs`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.records import read_jsonl
from limo.ablation.steps import Step
from limo.ablation.store import count_rows
from limo.cli.overrides import option_field, schema_root
from limo.setup.ablate import BASE, AblateOptions, ArmOptions

SAFE = re.compile(r"^[A-Za-z0-9_./@+\-]+$")
LITERAL = re.compile(r"^([+-]?[0-9][0-9_.eE+-]*|true|false|null|True|False|None|nan|inf)$")


@dataclass(frozen=True)
class Study:
    """An ablation's plain settings.

    Attributes:
        recipe: The recipe every entry runs with.
        root: ``<output_dir>/ablate``.
        options: The ``ablate:`` section.
        benchmarks: The benchmarks every run is evaluated on (the section's, then those declared on the command line).
        overrides: What the user typed after ``limo.ablate`` besides ``recipe=``, ``output_dir=``, ``executor`` and
            ``ablate.*``: given to the entries (`entry_overrides`).
        flags: ``--config-dir DIR`` and the like, given to every entry.
        global_batch: ``train.global_batch_size`` (rows per optimizer step), for steps from epochs.
        accept_old_markers: Take output an older limo marked, or left unmarked, as made by the settings of now
            (``--accept-old-markers``, `limo.ablation.steps`).
        results: Where the finished runs are kept (`limo.ablation.store`, ``results/<name>``); None: nowhere.
        deadline: When the ablation must stop (seconds since the epoch, ``--deadline``); None: no deadline.
    """

    recipe: str
    root: Path
    options: AblateOptions
    benchmarks: tuple[str, ...]
    overrides: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    global_batch: int = 1
    accept_old_markers: bool = False
    results: Path | None = None
    deadline: float | None = None

    def arm_folder(self, arm: ArmOptions, draw: int | None) -> Path:
        folder = self.root / "arms" / arm.name
        return folder / f"draw{draw}" if draw is not None else folder

    def run_folder(self, arm: str, seed: int, draw: int | None) -> Path:
        return self.root / "runs" / arm / (f"seed{seed}" + (f"-draw{draw}" if draw is not None else ""))

    def data_file(self, arm: ArmOptions, draw: int | None) -> Path:
        """The rows an arm trains on: its curation's, or (``data_of``) the named arm's."""
        if arm.data_of is not None:
            return self.data_file(self.options.arm(arm.data_of), None)
        return self.arm_folder(arm, draw) / "curate" / "messages.jsonl"


def entry_overrides(overrides: Sequence[str], entry: str) -> list[str]:
    """The user's overrides that ``entry`` gets: ``curate``, ``train``, ``evaluate`` (a trained run's), ``base``
    (the untrained model's evaluation) or ``after`` (an after arm's curation and training)."""

    def key(line: str) -> str:
        return line.lstrip("+~").split("=", 1)[0]

    kept = list(overrides)
    if entry in ("curate", "train", "after"):
        kept = [o for o in kept if not key(o).startswith("benchmark_specs")]
    if entry in ("evaluate", "after"):  # a trained run's model is its own, or (after) the run it goes on from
        kept = [o for o in kept if key(o) != "model.path"]
    return kept


def hydra_value(value: Any) -> str:
    """``value`` as a Hydra override's right-hand side (strings quoted where the grammar would read them otherwise)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if SAFE.match(text) and not LITERAL.match(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def flat_overrides(prefix: str, values: Mapping[str, Any]) -> list[str]:
    """``{stages: {select: {n: 5}}}`` under ``curate`` -> ``["curate.stages.select.n=5"]``; a mapping a recipe
    replaces whole (``field_map``) stays one override, so it replaces the recipe's as on a command line."""
    lines = []
    for name, value in values.items():
        key = f"{prefix}.{name}"
        if isinstance(value, Mapping) and value and not replaced_whole(key):
            lines += flat_overrides(key, value)
        else:
            lines.append(f"{key}={hydra_value(value)}")
    return lines


def replaced_whole(key: str) -> bool:
    """Whether ``key`` is a mapping option a recipe gives whole (its schema field is marked ``whole``)."""
    root = schema_root(key)
    try:
        found = option_field(root, key) if root is not None else None
    except ValueError:
        return False
    return bool(found is not None and found.metadata.get("whole"))


def curate_step(study: Study, arm: ArmOptions, draw: int | None, size: int | None) -> Step:
    """An arm's curation (a baseline: ``curate.method=baseline``; a random one with its size and draw seed)."""
    folder = study.arm_folder(arm, draw)
    own = [f"recipe={study.recipe}", *flat_overrides("curate", arm.curate)]
    if arm.baseline is not None:
        own += ["curate.method=baseline", f"curate.baseline.kind={arm.baseline}"]
    if arm.random:
        own += [f"curate.baseline.n={size}", f"seed={draw}"]
    extra = [*study.flags, *entry_overrides(study.overrides, "curate")]
    return Step("curate", str(folder), tuple(own), tuple(extra))


def curation_waves(study: Study) -> list[list[tuple[ArmOptions, int | None]]]:
    """The curations in order: first every arm whose size is known, then the random baselines sized by another
    arm's selection (they need its count)."""
    first, second = [], []
    for arm in (a for a in study.options.curated if a.data_of is None):
        for draw in study.options.draws_of(arm):
            (second if isinstance(arm.n, str) else first).append((arm, draw))
    return [wave for wave in (first, second) if wave]


def arm_size(study: Study, arm: ArmOptions) -> int | None:
    """A random baseline's size: its ``n``, or the named arm's selection (curated by then): its rows, or for
    ``random_problems`` its distinct problems (its rows when it keeps one chain a problem)."""
    if not arm.random:
        return None
    if isinstance(arm.n, str):
        data = study.data_file(study.options.arm(arm.n), None)
        return count_problems(data.parent) if arm.baseline == "random_problems" else count_rows(data)
    return int(arm.n) if arm.n is not None else None


def count_problems(curated: Path) -> int:
    """The distinct problems a curation selected, as its funnel counts them (``funnel.json``: the last chain stage's
    problems out, which `curation.outputs.report.pool_counts` reads too).

    Raises:
        ValueError: The funnel counts no problems (a method that reads no pool).
    """
    funnel = json.loads((curated / "funnel.json").read_text(encoding="utf-8"))
    counts = [s.get("problems_out") for s in funnel.get("stages", []) if s.get("unit") == "chain"]
    counted = [c for c in counts if c is not None]
    if not counted:
        raise ValueError(f"{curated / 'funnel.json'} counts no problems: a random_problems arm cannot take its size")
    return int(counted[-1])


def arm_steps(study: Study) -> dict[str, int]:
    """Every arm's optimizer steps: its own ``steps`` or ``epochs``, else ``compute``'s, matched in tokens to
    ``compute.match_tokens`` when set. Reads the curated rows (draw 0's for a random baseline)."""
    options, compute = study.options, study.options.compute
    arms = options.curated
    rows = {a.name: count_rows(study.data_file(a, options.draws_of(a)[0])) for a in arms}
    batch = {a.name: int(a.train.get("global_batch_size") or study.global_batch) for a in arms}
    epoch = {a.name: max(1, math.ceil(rows[a.name] / batch[a.name])) for a in arms}
    common = compute.steps if compute.steps is not None else epoch.get(compute.epochs_of or "", 0)
    steps = {}
    for arm in arms:
        if arm.steps is not None:
            steps[arm.name] = arm.steps
        elif arm.epochs is not None:
            steps[arm.name] = max(1, math.ceil(arm.epochs * rows[arm.name] / batch[arm.name]))
        else:
            steps[arm.name] = common
    if compute.match_tokens is not None:
        steps = matched_steps(study, steps, compute.match_tokens)
    for arm in options.active:  # an after arm's own steps (its rows are known per run, after its curation)
        if arm.after is not None and arm.steps is not None:
            steps[arm.name] = arm.steps
    return steps


def matched_steps(study: Study, steps: dict[str, int], reference: str) -> dict[str, int]:
    """Each arm's steps scaled so that steps x characters per row equals the reference arm's (the arms' own
    ``steps`` / ``epochs`` included: matching is what was asked)."""
    chars = {a.name: mean_chars(study.data_file(a, study.options.draws_of(a)[0])) for a in study.options.curated}
    budget = steps[reference] * chars[reference]
    return {name: max(1, round(budget / chars[name])) if chars[name] else count for name, count in steps.items()}


def mean_chars(path: Path) -> float:
    """Mean characters of a messages file's rows (every turn's content)."""
    rows = read_jsonl(path)
    total = sum(len(str(m.get("content", ""))) for r in rows for m in r.get("messages", []))
    return total / len(rows) if rows else 0.0


def train_step(study: Study, arm: ArmOptions, seed: int, draw: int | None, steps: int) -> Step:
    folder = study.run_folder(arm.name, seed, draw)
    data = study.data_file(arm, draw)
    own = [
        f"recipe={study.recipe}",
        f"seed={seed}",
        f"train.args.max_steps={steps}",
        f"train.data={data}",
        *flat_overrides("train", arm.train),
    ]
    extra = [*study.flags, *entry_overrides(study.overrides, "train")]
    return Step("train", str(folder), tuple(own), tuple(extra), inputs=(str(data),))


def after_steps(study: Study, arm: ArmOptions, seed: int, steps: Mapping[str, int]) -> list[Step]:
    """An ``after`` arm's run at ``seed``: the named arm's training (reused when done), then in this arm's run folder
    its recipe's curation and training with that run as ``model.path``, then the evaluation every run gets. With
    ``data_of`` the curation is that arm's run's at ``seed`` (the same step: run once, whichever job gets there
    first), and this arm trains on its ``data_file``."""
    prior = study.options.arm(str(arm.after))
    start = study.run_folder(prior.name, seed, None)
    folder = study.run_folder(arm.name, seed, None)
    extra = (*study.flags, *entry_overrides(study.overrides, "after"))
    common = (f"recipe={arm.recipe or study.recipe}", f"seed={seed}", f"model.path={start}")
    curate = after_curate_step(study, study.options.arm(arm.data_of) if arm.data_of else arm, seed)
    own = (*common, f"train.args.max_steps={steps[arm.name]}")
    inputs = (str(folder / "curate" / "manifest.json"),)
    if arm.data_of is not None:
        data = Path(curate.folder) / "curate" / (arm.data_file or "messages.jsonl")
        own, inputs = (*own, f"train.data={data}"), (str(data),)
    train = Step("train", str(folder), (*own, *flat_overrides("train", arm.train)), extra, inputs=inputs)
    first = train_step(study, prior, seed, None, steps[prior.name])
    return [first, curate, train, evaluate_step(study, folder, arm=arm)]


def after_curate_step(study: Study, arm: ArmOptions, seed: int) -> Step:
    """An ``after`` arm's curation at ``seed``, in its run folder, with the named arm's run as ``model.path``."""
    start = study.run_folder(str(arm.after), seed, None)
    common = (f"recipe={arm.recipe or study.recipe}", f"seed={seed}", f"model.path={start}")
    extra = (*study.flags, *entry_overrides(study.overrides, "after"))
    folder = study.run_folder(arm.name, seed, None)
    return Step("curate", str(folder), (*common, *flat_overrides("curate", arm.curate)), extra)


def evaluate_step(study: Study, folder: Path, base: bool = False, arm: ArmOptions | None = None) -> Step:
    """The evaluation of a run folder's model (``base``: the recipe's untrained model) on every benchmark; multi-turn
    too when the arm's ``multiturn`` (else ``ablate.multiturn``) asks: one process, its answers then each variant."""
    own = [f"recipe={study.recipe}"]
    own += [f"limit={study.options.limit}"] if study.options.limit is not None else []
    own += ["evaluate.model_path=null"] if base else []
    multiturn = (arm.multiturn if arm is not None else None) or study.options.multiturn
    results: tuple[str, ...] = ()
    if multiturn is not None:
        oracles = [v == "oracle" for v in multiturn.variants]
        own += ["mode=[generate,multiturn]", f"turns={multiturn.turns}", f"oracle={hydra_value(oracles)}"]
        results = tuple(f"multiturn_{v}/summary.json" for v in multiturn.variants)
    overrides = entry_overrides(study.overrides, "base" if base else "evaluate")
    return Step(
        "evaluate", str(folder), tuple(own), (*study.flags, *overrides), benchmarks=study.benchmarks, results=results
    )


@dataclass(frozen=True)
class RunSpec:
    """One trained model of the comparison: its arm, seed and draw, and its folder."""

    arm: str
    seed: int | None
    draw: int | None
    folder: str

    @property
    def label(self) -> str:
        if self.seed is None:
            return self.arm
        return f"{self.arm} seed {self.seed}" + (f" draw {self.draw}" if self.draw is not None else "")


def run_specs(study: Study) -> list[RunSpec]:
    """Every run in table order: the base model first (when evaluated), then arm by arm, seed by seed, draw by
    draw (``draw_seeds: paired``: one draw a seed)."""
    options = study.options
    runs = [RunSpec(BASE, None, None, str(study.root / BASE))] if options.base else []
    for arm in options.active:
        for seed, draw in options.runs_of(arm):
            runs.append(RunSpec(arm.name, seed, draw, str(study.run_folder(arm.name, seed, draw))))
    return runs


def run_items(study: Study, steps: Mapping[str, int]) -> list[dict[str, Any]]:
    """One executor item per run (train, then evaluate; the base model: evaluate only), JSON for the shard job: the
    base model first, then seed by seed (every arm's runs at a seed, an ``after`` arm's with its upstream), so that
    an ablation cut short (``--deadline``, a kill) leaves whole seeds done."""
    items = []
    specs = run_specs(study)
    for spec in sorted(specs, key=lambda s: (s.seed is not None, s.seed or 0)):  # stable: arm order within a seed
        if spec.arm == BASE:
            work = [evaluate_step(study, Path(spec.folder), base=True)]
        elif study.options.arm(spec.arm).after is not None:
            assert spec.seed is not None
            work = after_steps(study, study.options.arm(spec.arm), spec.seed, steps)
        else:
            arm = study.options.arm(spec.arm)
            assert spec.seed is not None
            work = [
                train_step(study, arm, spec.seed, spec.draw, steps[spec.arm]),
                evaluate_step(study, Path(spec.folder), arm=arm),
            ]
        items.append(item(spec.label, work, study))
    return items


def curation_items(study: Study, wave: Sequence[tuple[ArmOptions, int | None]]) -> list[dict[str, Any]]:
    out = []
    for arm, draw in wave:
        label = f"curate {arm.name}" + (f" draw {draw}" if draw is not None else "")
        out.append(item(label, [curate_step(study, arm, draw, arm_size(study, arm))], study))
    return out


def item(label: str, work: Sequence[Step], study: Study) -> dict[str, Any]:
    """A shard's input: its steps, the events file, and (side by side) the log file of its entries' output."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)
    return {
        "label": label,
        "steps": [s.to_dict() for s in work],
        "events": str(study.root / "events.jsonl"),
        "log": str(study.root / "logs" / f"{name}.log"),
        "cwd": str(Path.cwd()),
        "results": str(study.results) if study.results is not None else None,
    }


def write_plan(study: Study, steps: Mapping[str, int], items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``plan.json``'s content: the recipe, the arms' steps and every command in order."""
    return {
        "recipe": study.recipe,
        "steps": dict(steps),
        "benchmarks": list(study.benchmarks),
        "commands": [" ".join(Step.from_dict(s).command()) for i in items for s in i["steps"]],
    }


def dumps(payload: Any) -> str:
    return json.dumps(payload, indent=1, ensure_ascii=False) + "\n"
