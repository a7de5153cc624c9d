"""Config -> plain arguments for `limo.evaluate`: the typed ``evaluate:`` section and small builders.

The section is a structured config (unknown keys fail at start-up). Library code in `eval` never sees a
config object: these builders hand it plain values (a `BenchmarkSpec`, an `EvalProtocol`, a
`PromptStyle`, backend keyword arguments).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional  # noqa: UP035 - OmegaConf structured configs need typing generics

from omegaconf import DictConfig, OmegaConf

from eval.backends.openai import BackendUnavailableError
from eval.backends.replay import ReplayMissError
from eval.benchmarks import Benchmark, BenchmarkSpec, load_benchmark
from eval.budget import BudgetForcing
from eval.prompting import PromptStyle, build_prompt_style
from eval.records import DataError, read_jsonl
from eval.runner import EvalProtocol, GradingOptions, resolve_protocol

log = logging.getLogger("limo.evaluate")
RUNTIME_KEYS = (
    "mode",
    "benchmarks",
    "limit",
    "run_dir",
    "responses",
    "problems",
    "group_by",
    "runs",
    "turns",
    "oracle",
)
EXPECTED_ERRORS = (
    DataError,
    ValueError,
    FileNotFoundError,
    BackendUnavailableError,
    ReplayMissError,
    ImportError,
    OSError,
)


@dataclass
class ProtocolSection:
    """Recipe-wide protocol overrides; null keeps each benchmark's own default (recipes/benchmark/*.yaml)."""

    samples: Optional[int] = None  # noqa: UP045
    temperature: Optional[float] = None  # noqa: UP045
    top_p: Optional[float] = None  # noqa: UP045
    max_new_tokens: Optional[int] = None  # noqa: UP045
    seed: Optional[int] = None  # noqa: UP045 - null: the recipe's top-level seed


@dataclass
class BudgetSection:
    """Budget forcing (s1); see `eval.budget.BudgetForcing`. All zero / null: off."""

    min_thinking_tokens: int = 0
    max_waits: int = 1
    max_thinking_tokens: Optional[int] = None  # noqa: UP045
    answer_tokens: int = 64
    end_think: Optional[str] = None  # noqa: UP045
    wait_text: str = "Wait"
    final_answer_text: str = "\n\nFinal Answer:"


@dataclass
class MultiTurnSection:
    """``mode=multiturn`` (RISE): answers per problem (1..5), oracle feedback or none, the feedback texts."""

    turns: int = 5
    oracle: bool = True
    feedback_oracle: str = (
        "Your answer is incorrect. Review your solution, find the mistake and solve the problem again."
    )
    feedback_no_oracle: str = (
        "There might be an error in the solution above. Review it, correct the error if there is one, "
        "and rewrite the solution."
    )


@dataclass
class EvaluateSection:
    """The recipe's ``evaluate:`` section."""

    benchmarks: List[str] = field(default_factory=list)  # noqa: UP006
    model_path: Optional[str] = None  # noqa: UP045 - null: model.path
    backend: str = "hf"
    backend_options: Optional[Dict[str, Any]] = None  # noqa: UP006, UP045 - null: none
    batch_size: int = 8
    device: Optional[str] = None  # noqa: UP045
    system_prompt: Optional[str] = None  # noqa: UP045
    user_template: str = "{problem}"
    few_shot: List[Dict[str, str]] = field(default_factory=list)  # noqa: UP006
    protocol: ProtocolSection = field(default_factory=ProtocolSection)
    budget: BudgetSection = field(default_factory=BudgetSection)
    multiturn: MultiTurnSection = field(default_factory=MultiTurnSection)
    grader_workers: int = 2
    grader_timeout_s: float = 2.0


def parse_evaluate_section(cfg: DictConfig) -> EvaluateSection:
    """Validate ``cfg.evaluate`` against `EvaluateSection` (unknown keys raise)."""
    if cfg.get("evaluate") is None:
        raise ValueError(f"recipe {cfg.get('name')!r} has no evaluate: section")
    section = OmegaConf.to_container(cfg.evaluate, resolve=True)
    merged = OmegaConf.merge(OmegaConf.structured(EvaluateSection), section)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def build_benchmarks(cfg: DictConfig, section: EvaluateSection) -> list[Benchmark]:
    """Load the requested benchmarks (``benchmarks=`` or the section's), each cut to ``limit`` problems."""
    requested = cfg.get("benchmarks") or section.benchmarks
    names = [requested] if isinstance(requested, str) else list(requested)
    if not names:
        raise ValueError("no benchmarks: pass benchmarks=[math500,...] or set evaluate.benchmarks")
    specs = cfg.get("benchmark_specs") or {}
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r} (known: {', '.join(sorted(specs))})")
    limit = cfg.get("limit")
    loaded = []
    for name in names:
        spec = BenchmarkSpec.from_dict(OmegaConf.to_container(specs[name], resolve=True))  # type: ignore[arg-type]
        benchmark = load_benchmark(spec, data_dir=cfg.get("data_dir"))
        if limit is not None:
            benchmark = replace(benchmark, problems=benchmark.problems[: int(limit)])
        loaded.append(benchmark)
    return loaded


def build_protocols(cfg: DictConfig, section: EvaluateSection, benchmarks: list[Benchmark]) -> list[EvalProtocol]:
    """Each benchmark's protocol: its spec's defaults, the section's overrides, the recipe seed."""
    overrides = {k: v for k, v in vars(section.protocol).items() if v is not None}
    specs = cfg.benchmark_specs
    return [resolve_protocol(dict(specs[b.name].get("protocol") or {}), overrides, int(cfg.seed)) for b in benchmarks]


def command_line_overrides() -> list[str]:
    """The overrides typed on the command line (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def resolve_model_path(cfg: DictConfig, section: EvaluateSection) -> str | None:
    """``model.path=`` on the command line, else ``evaluate.model_path``, else ``model.path`` (built if tiny).

    Returns None for backends that need no model folder (``openai``, ``replay``).
    """
    if section.backend in ("openai", "replay"):
        return None
    given = any(o.lstrip("+").startswith("model.path=") for o in command_line_overrides())
    if given or not section.model_path:
        from limo.training.build import ensure_model

        return ensure_model(cfg.model)
    path = Path(section.model_path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"model path {path}: no model there (train it first with `python -m limo.train recipe={cfg.name}`, "
            "or pass model.path=<folder or hub id>)"
        )
    return str(path)


def build_backend_for(cfg: DictConfig, section: EvaluateSection, model_path: str | None) -> Any:
    """Create the section's backend with plain keyword arguments."""
    from eval.backends.registry import build_backend

    options = dict(section.backend_options or {})
    if section.backend in ("hf", "vllm"):
        options.update(model_path=model_path, chat_template=cfg.model.get("chat_template"))
        options.setdefault("revision", cfg.model.get("revision"))
    if section.backend == "hf":
        options.update(dtype=str(cfg.model.dtype), device=section.device, batch_size=section.batch_size)
        options["budget"] = BudgetForcing(**vars(section.budget))
    elif BudgetForcing(**vars(section.budget)).active:
        raise ValueError(f"budget forcing is implemented in the hf backend only (backend: {section.backend})")
    return build_backend(section.backend, **options)


def model_identity(section: EvaluateSection, model_path: str | None) -> dict[str, Any]:
    """What produced the responses: backend and model (server URL and model name for ``openai``)."""
    options = section.backend_options or {}
    if section.backend == "openai":
        return {"backend": "openai", "model": f"{options.get('model')} @ {options.get('base_url')}"}
    if section.backend == "replay":
        return {"backend": "replay", "model": f"replay:{options.get('path')}"}
    return {"backend": section.backend, "model": model_path}


def build_prompt(section: EvaluateSection) -> PromptStyle:
    return build_prompt_style(section.system_prompt, section.user_template, section.few_shot)


def build_grading(section: EvaluateSection) -> GradingOptions:
    return GradingOptions(workers=section.grader_workers, timeout_s=section.grader_timeout_s)


def load_regrade_inputs(cfg: DictConfig) -> tuple[list[dict[str, Any]], dict[str, str], str, list[str]]:
    """Response rows, gold answers, a source label and the group fields for an external re-grade."""
    responses, problems = cfg.get("responses"), cfg.get("problems")
    if not responses or not problems:
        raise ValueError("mode=regrade needs run_dir=<dir>, or responses=<file|champ> and problems=<file|champ>")
    group_by = list(cfg.get("group_by") or [])
    rows = champ_response_rows() if responses == "champ" else read_jsonl(str(responses))
    golds = load_golds(str(problems))
    if cfg.get("limit") is not None:  # the responses to the first N problems, as limit= means for generation
        golds = dict(list(golds.items())[: int(cfg.limit)])
        rows = [r for r in rows if r.get("problem_id") in (None, "") or str(r["problem_id"]) in golds]
    return rows, golds, str(responses), group_by


def champ_response_rows() -> list[dict[str, Any]]:
    """CHAMP's 19,440 model responses, each graded on its final summary turn (None when truncated)."""
    from curation.champ import load_champ_pool

    pool = load_champ_pool()
    texts = {p.id: p.problem for p in pool.problems}  # the grader reads yes/no statements against the question
    return [
        {
            "problem_id": c.problem_id,
            "problem": texts[c.problem_id],
            "response": c.final_answer,
            "model": c.generator,
            "prompt_setting": c.prompt_setting,
        }
        for c in pool.model_chains
    ]


def load_golds(problems: str) -> dict[str, str]:
    """``{problem id: gold answer}`` from CHAMP or a problem file (shared/data layout)."""
    if problems == "champ":
        from eval.champ import load_champ_problems

        return {p.id: p.answer for p in load_champ_problems()}
    benchmark = load_benchmark(BenchmarkSpec(name=Path(problems).stem), path=problems)
    return {p.id: p.answer for p in benchmark.problems}


def build_multiturn(cfg: DictConfig, section: EvaluateSection, protocol: EvalProtocol) -> Any:
    """`eval.multiturn.MultiTurnOptions` from ``evaluate.multiturn`` (``turns=`` / ``oracle=`` on the command
    line win) and the benchmark's protocol (one answer per turn)."""
    from eval.multiturn import MultiTurnOptions

    settings = section.multiturn
    turns = int(cfg.get("turns") if cfg.get("turns") is not None else settings.turns)
    oracle = bool(cfg.get("oracle") if cfg.get("oracle") is not None else settings.oracle)
    feedback = settings.feedback_oracle if oracle else settings.feedback_no_oracle
    return MultiTurnOptions(turns, oracle, feedback, protocol.sampling, protocol.seed)
