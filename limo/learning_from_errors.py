"""Curation for the learning-from-errors recipes: LEMMA examples (``curate.method: lemma``) and preference
pairs for DPO / DiscoPOP (``curate.method: pairs``).

Both start from a graded pool (`load_graded_pool`): CHAMP's problems, human solutions and model chains,
restricted to the recipe's prompt settings, minus excluded benchmark problems (``champ_heldout``), each
chain graded on its final answer. LEMMA then harvests wrong chains, optionally asks a teacher judge for
unannotated first wrong steps and a teacher injector for new errors (`curation.error_injection`),
connects, verifies and mixes (`curation.lemma`); pairs come from `curation.preference`.

Teacher replies are cached per request id (``curate/teacher/<task>-<settings hash>.jsonl``, appended batch
by batch), so a killed run resumes without asking again, and changed teacher settings never reuse stale
replies. Outputs follow CONTRACTS.md: ``messages.jsonl`` or ``pairs.jsonl``, ``curated.jsonl``,
``rejects.jsonl``, ``funnel.json``, ``manifest.json``, ``report.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from curation.lemma import ConnectionOptions, CorrectChain, WrongChain, grade_chains
from curation.schema import HUMAN, Chain
from eval.backends.base import Backend, Generation, GenerationRequest, SamplingParams, row_seed
from eval.grader import Verdict
from eval.problem import Problem
from eval.records import Reject, append_jsonl, read_jsonl

log = logging.getLogger(__name__)
METHODS = ("lemma", "pairs")


# --- Sections (mutable mirrors for OmegaConf; unknown keys fail at start-up) ----------------------------


@dataclass
class TeacherSection:
    backend: str = "replay"
    model: str | None = None
    temperature: float = 0.0
    max_new_tokens: int = 2048
    batch_size: int = 16
    backend_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class RolloutSection(TeacherSection):
    """Fresh student rollouts to harvest wrong chains from (``k`` samples per problem)."""

    k: int = 4
    system_prompt: str | None = None


@dataclass
class HarvestSection:
    enabled: bool = True
    max_per_problem: int | None = None
    rollouts: RolloutSection | None = None


@dataclass
class InjectionSection:
    enabled: bool = False
    teacher: TeacherSection | None = None
    per_chain: int = 1
    max_sources: int | None = None
    sources: list[str] = field(default_factory=lambda: [HUMAN])


@dataclass
class ConnectionSection:
    mixture: dict[str, float] = field(default_factory=lambda: {"fix_and_continue": 0.5, "fresh_restart": 0.5})
    reflections: list[str] = field(default_factory=list)
    restart_sources: list[str] = field(default_factory=lambda: ["model", "human"])
    min_prefix_chars: int = 1


@dataclass
class PairSection:
    pairs_per_problem: int = 2
    max_length_gap: float | None = 0.3
    balance_longer: bool = True
    min_quality: float = 0.0
    boxed_answer: bool = True
    include_human: bool = True


@dataclass
class ErrorCurateSection:
    """``curate:`` for the learning-from-errors recipes.

    ``stages`` holds curation's own stage options (``ingest``, ``validate``, ``answer_check``, ``dedup``,
    ``decontam``, ``quality``; same keys as the ``champ`` recipe, validated by `curation.options`);
    ``problem_limit`` keeps the first N problems of the pool (tests, quick looks).
    """

    method: str = "lemma"
    problem_limit: int | None = None
    stages: dict[str, Any] = field(default_factory=dict)
    error_types: dict[str, str] = field(default_factory=dict)
    harvest: HarvestSection = field(default_factory=HarvestSection)
    judge: TeacherSection | None = None
    injection: InjectionSection = field(default_factory=InjectionSection)
    connections: ConnectionSection = field(default_factory=ConnectionSection)
    plain_ratio: float = 0.0
    pairs: PairSection = field(default_factory=PairSection)


def is_error_method(cfg: DictConfig) -> bool:
    """Whether the recipe's ``curate:`` section asks for LEMMA or pairs (the entry point dispatches on it)."""
    section = cfg.get("curate")
    return section is not None and section.get("method") in METHODS


def parse_section(cfg: DictConfig) -> ErrorCurateSection:
    """Validate ``cfg.curate``; unknown keys and bad values raise naming the key."""
    merged = OmegaConf.merge(OmegaConf.structured(ErrorCurateSection), cfg.curate)
    section: ErrorCurateSection = OmegaConf.to_object(merged)  # type: ignore[assignment]
    if section.method not in METHODS:
        raise ValueError(f"curate.method={section.method!r}: expected one of {', '.join(METHODS)}")
    if section.method == "lemma" and not section.connections.reflections:
        raise ValueError("curate.connections.reflections: list at least one reflection phrase")
    if section.method == "lemma" and (section.injection.enabled or section.judge) and not section.error_types:
        raise ValueError("curate.error_types: a teacher judge or injector needs the error taxonomy")
    return section


def build_connection_options(section: ConnectionSection) -> ConnectionOptions:
    return ConnectionOptions(
        mixture=dict(section.mixture),
        reflections=tuple(section.reflections),
        restart_sources=tuple(section.restart_sources),
        min_prefix_chars=section.min_prefix_chars,
    )


def build_teacher(section: TeacherSection) -> tuple[Backend, SamplingParams]:
    """The backend and sampling parameters a teacher / student section names."""
    from eval.backends.registry import build_backend

    options = dict(section.backend_args)
    if section.model is not None:  # hf loads a path; openai / vllm name a served model
        options.setdefault("model_path" if section.backend == "hf" else "model", section.model)
    sampling = SamplingParams(temperature=section.temperature, max_new_tokens=section.max_new_tokens)
    return build_backend(section.backend, **options), sampling


# --- Accounting ----------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Funnel stages, rejects and manifest facts of one run."""

    stages: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    state: Any = None  # curation's CurationState for the pool stages (funnel and drops)
    _clock: float = field(default_factory=time.perf_counter)

    def stage(self, name: str, rejects: Sequence[Reject] = (), **counts: Any) -> None:
        now = time.perf_counter()
        self.rejects.extend(rejects)
        reasons = Counter(r.reason.split(":")[0] for r in rejects)
        self.stages.append({"stage": name, **counts, "rejected": len(rejects), "rejected_by_reason": dict(reasons),
                            "seconds": round(now - self._clock, 3)})  # fmt: skip
        self._clock = now


# --- Graded pool (curation's own stages) ----------------------------------------------------------------

PIPELINE_STAGES = ("validate", "answer_check", "dedup", "decontam", "quality")


@dataclass
class GradedPool:
    problems: dict[str, Problem]
    chains: list[Chain]
    human: dict[str, Chain]
    verdicts: dict[str, Verdict]
    quality: dict[str, float]
    state: Any = None


def build_pipeline_options(section: ErrorCurateSection, cfg: DictConfig) -> Any:
    """curation's `CurateOptions` from ``curate.stages``; the answer check keeps incorrect chains."""
    from limo.curate import build_options

    pipeline = OmegaConf.create({"curate": section.stages, "data_dir": cfg.get("data_dir")})
    unused = set(section.stages) - {"ingest", *PIPELINE_STAGES}
    if unused:
        raise ValueError(f"curate.stages: {sorted(unused)} do not run for curate.method={section.method}")
    with_incorrect = OmegaConf.merge(pipeline, {"curate": {"answer_check": {"keep_incorrect": True}}})
    return build_options(with_incorrect)  # type: ignore[arg-type]


def load_graded_pool(section: ErrorCurateSection, cfg: DictConfig, ledger: Ledger) -> GradedPool:
    """Ingest, validate, grade, dedup, decontaminate and score the pool with curation's stages."""
    from curation.pipeline import _timed, ingest, initial_state
    from limo.config import build_benchmark_specs

    options = build_pipeline_options(section, cfg)
    pool, applied, checksums = ingest(options)
    state = initial_state(pool)
    _timed(state, lambda: limit_problems(state, section.problem_limit))
    ledger.facts["annotations_shared"] = share_annotations(state)
    for name in PIPELINE_STAGES:
        _timed(state, lambda name=name: _run_stage(name, state, options, build_benchmark_specs(cfg)))
    ledger.facts.update(pool={"source": pool.source, "read": pool.read, "provenance": pool.provenance},
                        input_checksums=checksums, gold_overrides=applied,
                        benchmarks=state.manifest.get("benchmarks", {}))  # fmt: skip
    ledger.state = state
    graded = graded_pool(state)
    statuses = dict(Counter(v.status for v in graded.verdicts.values()))
    ledger.stage("pool", problems=len(graded.problems), model_chains=len(graded.chains),
                 human_chains=len(graded.human), verdicts=statuses)  # fmt: skip
    return graded


def _run_stage(name: str, state: Any, options: Any, specs: Any) -> None:
    from curation.answer_check import run_answer_check
    from curation.decontam import run_decontam
    from curation.dedup import run_dedup
    from curation.quality import run_quality
    from curation.validate import run_validate

    workers = options.quality.workers
    runs = {
        "validate": lambda: run_validate(state, options.validate),
        "answer_check": lambda: run_answer_check(state, options.answer_check),
        "dedup": lambda: run_dedup(state, options.dedup, workers),
        "decontam": lambda: run_decontam(state, options.decontam, specs, workers),
        "quality": lambda: run_quality(state, options.quality),
    }
    runs[name]()


def limit_problems(state: Any, limit: int | None) -> None:
    """Drop every problem after the first ``limit`` (reason ``problem_limit``), keeping the funnel whole."""
    count = state.begin("problem_limit", limit is not None)
    over = list(state.problems)[limit:] if limit is not None else []
    state.apply(count, problems={pid: ("problem_limit", {"limit": limit}) for pid in over})


def share_annotations(state: Any) -> int:
    """Copy first-wrong-step annotations onto text-identical chains of the same problem.

    CHAMP's ``No C w/o H`` conversations (the annotated ones) repeat the ``0-Shot`` text, and dedup keeps
    the first copy; without this the annotation would leave with the dropped duplicate. Returns how many
    chains received one (provenance names the source chain).
    """
    annotated = {(c.problem_id, c.text): c for c in state.chains.values() if c.first_wrong_step is not None}
    shared = 0
    for chain_id, chain in list(state.chains.items()):
        source = annotated.get((chain.problem_id, chain.text))
        if chain.first_wrong_step is None and source is not None:
            provenance = {**chain.provenance, "first_wrong_step_from": source.id}
            state.chains[chain_id] = replace(chain, first_wrong_step=source.first_wrong_step, provenance=provenance)
            shared += 1
    return shared


def graded_pool(state: Any) -> GradedPool:
    """Model chains, human solutions, verdicts and quality scores of the chains still alive."""
    notes = state.chain_notes
    chains = [c for c in state.chains.values() if c.generator != HUMAN]
    human = {c.problem_id: c for c in state.chains.values() if c.generator == HUMAN}
    verdicts = {cid: notes[cid]["verdict"] for cid in state.chains if "verdict" in notes[cid]}
    quality = {cid: float(notes[cid]["quality"].score) for cid in state.chains if "quality" in notes[cid]}
    return GradedPool(dict(state.problems), chains, human, verdicts, quality, state)


def correct_chains(pool: GradedPool) -> dict[str, list[CorrectChain]]:
    """Correct model chains per problem, with the answer they reach and their quality."""
    out: dict[str, list[CorrectChain]] = defaultdict(list)
    for chain in pool.chains:
        verdict = pool.verdicts[chain.id]
        if verdict.correct and not chain.truncated and verdict.extracted:
            out[chain.problem_id].append(CorrectChain(chain, verdict.extracted, pool.quality.get(chain.id, 0.0)))
    return out


def human_references(pool: GradedPool) -> dict[str, CorrectChain]:
    return {
        pid: CorrectChain(c, c.final_answer or pool.problems[pid].answer, pool.quality.get(c.id, 0.0))
        for pid, c in pool.human.items()
        if c.text.strip()
    }


# --- Teacher calls, cached -----------------------------------------------------------------------------


def cached_generate(
    backend: Backend, requests: Sequence[GenerationRequest], path: Path, batch_size: int
) -> list[Generation]:
    """Generate what ``path`` does not hold yet (appended batch by batch); return replies in request order."""
    done = {r["request_id"]: r for r in read_jsonl(path, tolerate_torn_tail=True)} if path.exists() else {}
    missing = [r for r in requests if r.id not in done]
    for start in range(0, len(missing), max(1, batch_size)):
        batch = missing[start : start + batch_size]
        rows = [g.to_dict() for g in backend.generate(batch)]
        append_jsonl(path, rows)
        done.update((row["request_id"], row) for row in rows)
    log.info(
        "teacher %s: %d cached, %d generated -> %s", backend.name, len(requests) - len(missing), len(missing), path
    )
    return [Generation(**done[r.id]) for r in requests]


class CachedBackend:
    """A backend whose replies are cached in a JSONL file keyed by request id (resume after a kill)."""

    def __init__(self, backend: Backend, path: Path, batch_size: int) -> None:
        self.backend, self.path, self.batch_size = backend, path, batch_size
        self.name = backend.name

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        return cached_generate(self.backend, requests, self.path, self.batch_size)


def cache_file(folder: Path, task: str, section: TeacherSection, context: Any = None) -> Path:
    """``<folder>/<task>-<hash>.jsonl``: the hash covers what decides the replies (backend, model, sampling)
    and what shapes the prompts (taxonomy, seed), so changing any of them starts a new cache instead of
    reusing stale replies. ``backend_args`` (server address, replay file) say where the teacher is served,
    not what it is, and stay out of the key."""
    settings = {k: v for k, v in asdict(section).items() if k not in ("backend_args", "batch_size")}
    key = json.dumps({"teacher": settings, "context": context}, sort_keys=True, default=str)
    return folder / f"{task}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl"


def teacher(section: TeacherSection, cache: Path) -> tuple[CachedBackend, SamplingParams]:
    backend, sampling = build_teacher(section)
    return CachedBackend(backend, cache, section.batch_size), sampling


def rollout_chains(section: RolloutSection, problems: Sequence[Problem], seed: int, cache: Path) -> list[Chain]:
    """``k`` fresh student samples per problem as chains (generator ``rollout:<model>``)."""
    backend, sampling = teacher(section, cache)
    system = [{"role": "system", "content": section.system_prompt}] if section.system_prompt else []
    requests = [
        GenerationRequest(id=f"{p.id}#{i}", messages=(*system, {"role": "user", "content": p.problem}),
                          sampling=sampling, seed=row_seed(seed, p.id, i),
                          meta={"problem_id": p.id, "sample_index": i})
        for p in problems for i in range(section.k)
    ]  # fmt: skip
    generator = f"rollout:{section.model or section.backend}"
    return [
        Chain(id=f"{r.meta['problem_id']}/{generator}/{r.meta['sample_index']}", problem_id=r.meta["problem_id"],
              text=g.text, generator=generator, prompt_setting="rollout", truncated=g.finish_reason == "length",
              provenance={"kind": "rollout", "request_id": r.id, "backend": section.backend, "model": section.model,
                          "seed": r.seed, "finish_reason": g.finish_reason})
        for r, g in zip(requests, backend.generate(requests), strict=True)
    ]  # fmt: skip


def wrong_chain_summary(wrong: Sequence[WrongChain]) -> dict[str, Any]:
    return {
        "wrong_chains": len(wrong),
        "by_origin": dict(Counter(w.origin for w in wrong)),
        "located_by": dict(Counter(w.located_by or "not_located" for w in wrong)),
    }


# --- LEMMA ---------------------------------------------------------------------------------------------


def curate_lemma(cfg: DictConfig) -> dict[str, Any]:
    """``curate.method: lemma``: build, verify and write LEMMA examples; returns the funnel summary."""
    from curation.lemma import build_examples, plain_examples, verify_examples

    section, out, ledger, seed = parse_section(cfg), Path(str(cfg.output_dir)) / "curate", Ledger(), int(cfg.seed)
    pool = load_graded_pool(section, cfg, ledger)
    wrong = harvest(section, pool, seed, out, ledger)
    wrong = locate(section, pool, wrong, seed, out, ledger) + inject(section, pool, seed, out, ledger)
    correct, human = correct_chains(pool), human_references(pool)
    examples, rejects = build_examples(
        wrong, pool.problems, correct, human, build_connection_options(section.connections), seed=seed
    )
    ledger.stage("connect", wrong_chains_in=len(wrong), examples_out=len(examples), rejects=rejects)
    kept, rejects = verify_examples(examples, pool.problems)
    ledger.stage("verify", examples_in=len(examples), examples_out=len(kept), rejects=rejects)
    plain = plain_examples(correct, pool.problems, round(section.plain_ratio * len(kept)))
    ledger.stage("mix", error_correction=len(kept), plain=len(plain), plain_ratio=section.plain_ratio)
    from limo.learning_from_errors_report import write_lemma_outputs

    return write_lemma_outputs(out, cfg, section, kept, plain, ledger)


def harvest(section: ErrorCurateSection, pool: GradedPool, seed: int, out: Path, ledger: Ledger) -> list[WrongChain]:
    """Wrong chains from the pool (and fresh student rollouts, when configured)."""
    from curation.lemma import harvest_wrong_chains

    if not section.harvest.enabled:
        ledger.stage("harvest", enabled=False)
        return []
    chains = list(pool.chains)
    if section.harvest.rollouts is not None:
        fresh = rollout_chains(
            section.harvest.rollouts,
            list(pool.problems.values()),
            seed,
            cache_file(out / "teacher", "rollouts", section.harvest.rollouts, seed),
        )
        pool.verdicts.update(grade_chains(pool.problems, fresh, workers=1))
        chains += fresh
        ledger.facts["rollouts"] = {"chains": len(fresh), "model": section.harvest.rollouts.model}
    wrong, rejects, skipped = harvest_wrong_chains(
        chains, pool.verdicts, max_per_problem=section.harvest.max_per_problem,
    )  # fmt: skip
    ledger.stage("harvest", chains_in=len(chains), wrong_chains=len(wrong), not_wrong=dict(skipped), rejects=rejects,
                 annotated=sum(w.located_by == "annotation" for w in wrong))  # fmt: skip
    return wrong


def locate(
    section: ErrorCurateSection, pool: GradedPool, wrong: list[WrongChain], seed: int, out: Path, ledger: Ledger
) -> list[WrongChain]:
    """First wrong steps for unannotated chains from the teacher judge (when one is configured)."""
    from curation.lemma import locate_with_judge

    if section.judge is None:
        ledger.stage("judge", enabled=False, unlocated=sum(w.first_wrong_step is None for w in wrong))
        return wrong
    cache = cache_file(out / "teacher", "judge", section.judge, [section.error_types, seed])
    backend, sampling = teacher(section.judge, cache)
    located, rejects = locate_with_judge(
        backend, wrong, pool.problems, section.error_types, sampling=sampling, seed=seed
    )
    ledger.stage("judge", wrong_chains_in=len(wrong), out=len(located), rejects=rejects,
                 located_by_judge=sum(w.located_by == "judge" for w in located))  # fmt: skip
    return located


def inject(section: ErrorCurateSection, pool: GradedPool, seed: int, out: Path, ledger: Ledger) -> list[WrongChain]:
    """Teacher-injected errors into correct chains (human solutions and / or correct model chains)."""
    from curation.error_injection import assign_error_types, inject_errors

    options = section.injection
    if not options.enabled:
        ledger.stage("inject", enabled=False)
        return []
    if options.teacher is None:
        raise ValueError("curate.injection.enabled=true needs curate.injection.teacher")
    sources = injection_sources(options, pool)
    tasks = assign_error_types(sources, section.error_types, per_chain=options.per_chain, seed=seed)
    cache = cache_file(out / "teacher", "inject", options.teacher, [section.error_types, options.per_chain, seed])
    backend, sampling = teacher(options.teacher, cache)
    wrong, rejects = inject_errors(backend, tasks, section.error_types, sampling=sampling, seed=seed)
    ledger.stage("inject", tasks=len(tasks), accepted=len(wrong), rejects=rejects,
                 requested_types=dict(Counter(t.error_type for t in tasks)))  # fmt: skip
    return wrong


def injection_sources(options: InjectionSection, pool: GradedPool) -> list[tuple[Problem, CorrectChain]]:
    """Correct chains to corrupt, problems in pool order: the human solution and / or the best model chain."""
    human, correct = human_references(pool), correct_chains(pool)
    sources = []
    for problem_id, problem in pool.problems.items():
        for kind in options.sources:
            if kind == HUMAN and problem_id in human:
                sources.append((problem, human[problem_id]))
            elif kind == "model" and correct.get(problem_id):
                sources.append((problem, max(correct[problem_id], key=lambda c: (c.quality, c.chain.id))))
            elif kind not in (HUMAN, "model"):
                raise ValueError(f"curate.injection.sources: {kind!r} is not 'human' or 'model'")
    return sources[: options.max_sources]


# --- Preference pairs ----------------------------------------------------------------------------------


def curate_pairs(cfg: DictConfig) -> dict[str, Any]:
    """``curate.method: pairs``: chosen (correct, best quality) vs rejected (incorrect) chains, length-matched."""
    from curation.preference import PairOptions, ScoredChain, build_pairs

    section, out, ledger = parse_section(cfg), Path(str(cfg.output_dir)) / "curate", Ledger()
    pool = load_graded_pool(section, cfg, ledger)
    scored = [ScoredChain(c, pool.verdicts[c.id], pool.quality.get(c.id, 0.0)) for c in pool.chains if not c.truncated]
    if section.pairs.include_human:
        scored += [ScoredChain(c.chain, _human_verdict(c), c.quality) for c in human_references(pool).values()]
    p = section.pairs
    options = PairOptions(p.pairs_per_problem, p.max_length_gap, p.balance_longer, p.min_quality, p.boxed_answer)
    pairs, rejects, report = build_pairs(pool.problems, scored, options, seed=int(cfg.seed))
    ledger.stage("pairs", chains_in=len(scored), problems_in=len(pool.problems), pairs=len(pairs), rejects=rejects)
    ledger.facts["length_bias"] = report
    from limo.learning_from_errors_report import write_pair_outputs

    return write_pair_outputs(out, cfg, section, pairs, ledger)


def _human_verdict(reference: CorrectChain) -> Verdict:
    # The human solution derives the gold; it is correct by construction (gold overrides aside).
    return Verdict("correct", True, reference.answer, "human reference solution")


def curate_errors(cfg: DictConfig) -> dict[str, Any]:
    """Run the method the recipe's ``curate.method`` names; returns its summary."""
    method = cfg.curate.method
    return curate_lemma(cfg) if method == "lemma" else curate_pairs(cfg)
