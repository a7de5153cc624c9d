"""``curate.method: rise``: RISE rollouts over turns into weighted multi-turn SFT data (`curation.rise`).

Config -> plain arguments, then a straight line: graded pool (curation's stages, as for LEMMA: CHAMP with
gold overrides, unaided settings, dedup, decontamination against ``champ_heldout``), the policy backend,
the improver (the policy itself for best-of-N, else the teacher), resumable rollouts, examples, outputs.

The policy is the recipe's top-level ``policy:`` group, so that iterations read naturally::

    python -m limo.curate recipe=rise round=2 policy.path=<round-1 model>

``policy.backend: auto`` means ``hf`` when ``policy.path`` is set, else ``replay`` of the pool's recorded
chains (each problem's unaided CHAMP answers, cycled by sample index; a chain without ``\\boxed{}`` gets
the answer the grader extracted from it boxed at the end): a stand-in policy that lets the whole recipe run
offline. Each episode goes to ``curate/rise/episodes-round<k>-<settings hash>.jsonl`` as soon as it
finishes, so a killed run resumes where it stopped, and changed settings never reuse stale rollouts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from curation.rise import ImproveOptions, build_examples, episode_stats, run_rise_batch
from eval.backends.base import Backend, SamplingParams
from eval.multiturn import Episode, MultiTurnOptions, resume_episodes
from eval.records import Reject, write_jsonl, write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class PolicySection:
    """Top-level ``policy:``: the model that rolls out (round 1: the base model; round k: round k-1's)."""

    backend: str = "auto"
    path: str | None = None
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 1024
    backend_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class TeacherSection:
    backend: str = "replay"
    model: str | None = None
    backend_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class ImproveSection:
    method: str = "best_of_n"
    samples: int = 4
    temperature: float = 0.7
    max_new_tokens: int = 1024
    teacher: TeacherSection | None = None


@dataclass
class FeedbackSection:
    oracle: str = ""
    no_oracle: str = ""


@dataclass
class RiseSection:
    """``curate:`` of the rise recipe (unknown keys fail). ``pipeline`` holds curation's stage options."""

    method: str = "rise"
    problem_limit: int | None = None
    pipeline: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    turns: int = 5
    oracle: bool = True
    feedback: FeedbackSection = field(default_factory=FeedbackSection)
    improve: ImproveSection = field(default_factory=ImproveSection)
    tau: float = 0.4
    batch_size: int = 16
    grader_timeout_s: float = 2.0


def is_rise(cfg: DictConfig) -> bool:
    section = cfg.get("curate")
    return section is not None and section.get("method") == "rise"


def parse_sections(cfg: DictConfig) -> tuple[RiseSection, PolicySection]:
    """Validate ``curate:`` and ``policy:`` (unknown keys and wrong types raise naming the key)."""
    curate = OmegaConf.to_container(cfg.curate, resolve=True)
    policy_cfg = OmegaConf.to_container(cfg.policy, resolve=True) if cfg.get("policy") is not None else {}
    section = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RiseSection), curate))
    policy = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(PolicySection), policy_cfg))
    return section, policy  # type: ignore[return-value]


def build_multiturn_options(section: RiseSection, policy: PolicySection, seed: int) -> MultiTurnOptions:
    feedback = section.feedback.oracle if section.oracle else section.feedback.no_oracle
    samples = section.improve.samples if section.improve.method == "best_of_n" else 1
    sampling = SamplingParams(policy.temperature, policy.top_p, policy.max_new_tokens)
    return MultiTurnOptions(section.turns, section.oracle, feedback, sampling, seed, samples_per_turn=samples)


def build_improve_options(section: RiseSection) -> ImproveOptions:
    improve = section.improve
    sampling = SamplingParams(temperature=improve.temperature, max_new_tokens=improve.max_new_tokens)
    return ImproveOptions(improve.method, improve.samples, sampling)  # type: ignore[arg-type]


def build_policy(policy: PolicySection, pool: Any) -> tuple[Backend, dict[str, Any]]:
    """The policy backend and how to name it in provenance."""
    from eval.backends.registry import build_backend

    backend = policy.backend if policy.backend != "auto" else ("hf" if policy.path else "replay")
    if backend == "replay" and not policy.backend_args:
        from eval.backends.replay import ReplayBackend

        return ReplayBackend(pool=recorded_answers(pool)), {"backend": "replay", "model": "recorded pool chains"}
    options = dict(policy.backend_args)
    if policy.path:
        options.setdefault("model_path" if backend in ("hf", "vllm") else "model", policy.path)
    return build_backend(backend, **options), {"backend": backend, "model": policy.path}


def build_teacher(teacher: TeacherSection | None, pool: Any) -> Backend:
    """The teacher backend; ``replay`` with no arguments answers with the problem's human solution."""
    from eval.backends.registry import build_backend

    if teacher is None:
        raise ValueError("curate.improve.method=teacher needs curate.improve.teacher")
    if teacher.backend == "replay" and not teacher.backend_args:
        from curation.outputs import assistant_text
        from eval.backends.replay import ReplayBackend

        human = {pid: [assistant_text(c, pool.problems[pid].answer)] for pid, c in pool.human.items() if c.text}
        return ReplayBackend(pool=human)
    options = dict(teacher.backend_args)
    if teacher.model:
        options.setdefault("model_path" if teacher.backend == "hf" else "model", teacher.model)
    return build_backend(teacher.backend, **options)


def recorded_answers(pool: Any) -> dict[str, list[str]]:
    """Each problem's recorded unaided answers (pool order), ending with a boxed answer the grader can read."""
    from curation.outputs import assistant_text

    answers: dict[str, list[str]] = {}
    for chain in pool.chains:
        verdict = pool.verdicts.get(chain.id)
        text = assistant_text(chain, verdict.extracted) if verdict is not None and verdict.extracted else chain.text
        answers.setdefault(chain.problem_id, []).append(text)
    return answers


def episodes_file(out: Path, section: RiseSection, policy: PolicySection, round_: int, seed: int) -> Path:
    """``rise/episodes-round<k>-<hash>.jsonl``; the hash covers what decides the rollouts, and leaves out what
    does not: ``tau`` (re-weighting reuses the rollouts), ``batch_size`` (rows are seeded one by one) and
    ``problem_limit`` (episodes are per problem, so a larger limit extends the same file)."""
    settings = {k: v for k, v in asdict(section).items() if k not in ("tau", "batch_size", "problem_limit")}
    key = json.dumps({"curate": settings, "policy": asdict(policy), "round": round_, "seed": seed},
                     sort_keys=True, default=str)  # fmt: skip
    return out / "rise" / f"episodes-round{round_}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl"


def curate_rise(cfg: DictConfig) -> dict[str, Any]:
    """Roll out, improve, build weighted examples and write ``curate/``; returns the summary."""
    from eval.grader import grade_many
    from limo.learning_from_errors import Ledger, load_graded_pool

    section, policy = parse_sections(cfg)
    seed, round_, out = int(cfg.seed), int(cfg.get("round") or 1), Path(str(cfg.output_dir)) / "curate"
    options, improve, ledger = build_multiturn_options(section, policy, seed), build_improve_options(section), Ledger()
    pool = load_graded_pool(section, cfg, ledger)  # type: ignore[arg-type]  # reads pipeline / problem_limit / method
    policy_backend, identity = build_policy(policy, pool)
    problems, rejects = rollout_problems(pool, identity)
    ledger.stage("problems", problems_in=len(pool.problems), problems_out=len(problems), rejects=rejects)
    improver = policy_backend if improve.method == "best_of_n" else build_teacher(section.improve.teacher, pool)
    grade = lambda pairs: grade_many(pairs, workers=1, timeout_s=section.grader_timeout_s, progress=False)  # noqa: E731
    system = ({"role": "system", "content": section.system_prompt},) if section.system_prompt else ()
    rows = resume_episodes(
        problems, episodes_file(out, section, policy, round_, seed),
        lambda p: Episode(p, (*system, {"role": "user", "content": p.problem})),
        lambda batch, on_done: run_rise_batch(batch, policy_backend, improver, options, improve, grade, on_done),
        section.batch_size,
    )  # fmt: skip
    stats = episode_stats(rows, section.turns)
    ledger.stage("rollouts", **stats)
    facts = {"round": round_, "policy": identity, "improve": section.improve.method, "oracle": section.oracle}
    examples, rejects = build_examples(rows, section.tau, facts)
    ledger.stage("examples", improvements_in=stats["improvements"], examples_out=len(examples), rejects=rejects)
    if not examples:
        log.warning("rise: no usable improved answer in %d episodes: messages.jsonl is empty", len(rows))
    ledger.facts.update(rise=facts, episodes=stats)
    return write_rise_outputs(out, cfg, section, rows, examples, ledger)


def rollout_problems(pool: Any, identity: dict[str, Any]) -> tuple[list[Any], list[Reject]]:
    """Problems to roll out; with the replay stand-in, those with recorded answers (the rest are rejected)."""
    problems = list(pool.problems.values())
    if identity["backend"] != "replay" or identity["model"] != "recorded pool chains":
        return problems, []
    have = {c.problem_id for c in pool.chains}
    rejects = [Reject("rise", n, "problem", "no_recorded_answers", "problems", p.id)
               for n, p in enumerate(problems, start=1) if p.id not in have]  # fmt: skip
    return [p for p in problems if p.id in have], rejects


def write_rise_outputs(
    out: Path, cfg: DictConfig, section: RiseSection, rows: list[dict[str, Any]], examples: list[Any], ledger: Any
) -> dict[str, Any]:
    """``messages.jsonl`` (weight, loss_turns), ``curated.jsonl`` (episodes), rejects, funnel, manifest, report."""
    from limo.learning_from_errors_report import _common, _funnel, _pipeline

    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "messages.jsonl", [e.to_dict() for e in examples])
    write_jsonl(out / "curated.jsonl", rows)
    weights = [e.weight for e in examples]
    summary = {
        "examples": len(examples),
        "correct_examples": sum(1 for e in examples if e.provenance["reward"] == 1.0),
        "by_turn": _count_by_turn(examples),
        "weight": {
            "tau": section.tau,
            "normalised_mean": statistics.fmean(weights) if weights else None,
            "correct": _first(e.weight for e in examples if e.provenance["reward"] == 1.0),
            "incorrect": _first(e.weight for e in examples if e.provenance["reward"] == 0.0),
        },  # fmt: skip
        "rejected": len(ledger.rejects),
    }
    manifest = _common(out, cfg, section, ledger, summary)
    write_text_atomic(
        out / "report.md", render_report(manifest, ledger, _funnel(ledger.stages), _pipeline(ledger.state))
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


def render_report(manifest: dict[str, Any], ledger: Any, funnel: str, pipeline: str) -> str:
    """Markdown: what was rolled out, policy accuracy per turn, examples per turn and their weights."""
    s, facts, stats = manifest["summary"], ledger.facts["rise"], ledger.facts["episodes"]
    answered, correct = stats["policy_answers_per_turn"], stats["policy_correct_per_turn"]
    by_turn = [s["by_turn"].get(str(t), {}) for t in range(1, len(answered) + 1)]
    turns = "\n".join(
        f"| {t} | {a} | {c} | {b.get('examples', 0)} | {b.get('correct', 0)} |"
        for t, (a, c, b) in enumerate(zip(answered, correct, by_turn, strict=True), start=1)
    )
    weight = s["weight"]
    return "\n".join([
        f"# RISE curation: {manifest['name']} (round {facts['round']})\n",
        f"Policy: {facts['policy']['model']} ({facts['policy']['backend']}); improvements: {facts['improve']}; "
        f"oracle feedback: {facts['oracle']}.\n",
        f"{s['examples']} examples ({s['correct_examples']} with a correct improved answer) from "
        f"{stats['episodes']} episodes; {s['rejected']} items rejected (rejects.jsonl).\n",
        "## Funnel\n", pipeline, funnel,
        "## Turns\n", "| turn | policy answers | policy correct | examples | correct improvements |",
        "|---|---|---|---|---|", turns, "",
        f"Weights exp(r / tau), tau = {weight['tau']}, normalised to mean {_fmt(weight['normalised_mean'])}: "
        f"correct improvement {_fmt(weight['correct'])}, incorrect {_fmt(weight['incorrect'])}.\n",
    ])  # fmt: skip


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
