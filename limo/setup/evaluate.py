"""The recipe's ``evaluate:`` section as frozen options, and the small builders that turn it into eval's values.

The options map onto the recipe through `limo.config.sections.to_options` (unknown keys fail at start-up, naming
the key); budget forcing is `eval.backends.budget.BudgetForcing` itself. Library code in `eval` never sees a config
object: these builders hand it plain values (a `BenchmarkSpec`, an `EvalProtocol`, a `PromptStyle`, a
backend built by `eval.backends.generation.build_generator`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from curation.pool.champ import load_champ_pool
from eval.backends.budget import BudgetForcing
from eval.backends.generation import GenerationOptions, build_generator
from eval.benchmarks.champ import load_champ_problems
from eval.benchmarks.loader import Benchmark, BenchmarkSpec, announce_fallbacks, load_benchmark
from eval.grading.judge import build_judge
from eval.grading.policy import GraderOptions
from eval.records import DataError, read_jsonl
from eval.run.multiturn import MultiTurnOptions
from eval.run.prompting import PromptStyle, build_prompt_style
from eval.run.runner import EvalProtocol, GradingOptions, resolve_protocol
from limo.config.sections import build_benchmark_specs, section, to_options
from limo.models.chat import ChatSetup, group_template_text, require_chat_template
from limo.models.tiny import ensure_model

log = logging.getLogger("limo.evaluate")
LLAMA_SERVER_LOG = "llama-server.log"  # the llamacpp backend's server log, in <output_dir>/eval/
PROMPT_ROOM = 1024  # tokens of a llamacpp slot kept for the prompt (system turn, few-shot examples, the problem)


@dataclass(frozen=True)
class ProtocolOverrides:
    """Recipe-wide protocol overrides; null keeps each benchmark's own default (recipes/benchmark/*.yaml)."""

    samples: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_new_tokens: int | None = None
    seed: int | None = None  # null: the recipe's top-level seed


@dataclass(frozen=True)
class MultiTurnSettings:
    """``mode=multiturn`` (RISE): each problem answered again after feedback, up to ``turns`` answers.

    Attributes:
        turns: Answers per problem at most (1..5; ``turns=`` on the command line wins).
        oracle: Feedback only after a wrong answer, stopping at the first right one (``oracle=`` wins; a list
            runs both variants).
        feedback_oracle: The user message after a wrong answer, with the oracle.
        feedback_no_oracle: The user message after every answer, without it.
        reuse_answers: Answer a request this model was asked before from its earlier answer instead of generating
            it again (turn 1 is the single-turn request, and each variant asks it): from the single-turn run beside
            this one (``mode=[generate,multiturn]``) or the variant before; the turn's record says ``"reused":
            true``. false asks the engine every time; the ``replay`` backend always is (its answers follow the
            request id).
    """

    turns: int = 5
    oracle: bool = True
    feedback_oracle: str = (
        "Your answer is incorrect. Review your solution, find the mistake and solve the problem again."
    )
    feedback_no_oracle: str = (
        "There might be an error in the solution above. Review it, correct the error if there is one, "
        "and rewrite the solution."
    )
    reuse_answers: bool = True


@dataclass(frozen=True)
class EvaluateOptions:
    """The recipe's ``evaluate:`` section."""

    benchmarks: tuple[str, ...] = ()
    model_path: str | None = None  # null: model.path
    backend: str = "hf"
    backend_options: dict[str, Any] | None = None
    batch_size: int = 8
    device: str | None = None
    system_prompt: str | None = None
    user_template: str = "{problem}"
    few_shot: tuple[dict[str, str], ...] = ()
    protocol: ProtocolOverrides = field(default_factory=ProtocolOverrides)
    budget: BudgetForcing = field(default_factory=BudgetForcing)
    multiturn: MultiTurnSettings = field(default_factory=MultiTurnSettings)
    grader_workers: int = 2
    grader_timeout_s: float = 2.0
    grader: GraderOptions = field(default_factory=GraderOptions)
    reference_scores: dict[str, float] | None = None  # published numbers shown beside ours in the suite table
    reference_label: str | None = None  # where they come from ("LIMO paper, Table 2")


def build_evaluate_options(cfg: DictConfig) -> EvaluateOptions:
    """``evaluate:`` as `EvaluateOptions` (unknown keys and wrong types raise, naming the key)."""
    return to_options(EvaluateOptions, section(cfg, "evaluate"), "evaluate")


def build_benchmarks(cfg: DictConfig, section: EvaluateOptions) -> list[Benchmark]:
    """Load the requested benchmarks (``benchmarks=`` or the section's), each cut to ``limit`` problems."""
    names = benchmark_names(cfg, section)
    specs = cfg.get("benchmark_specs") or {}
    unknown = [n for n in names if n not in specs]
    if unknown:
        groups = ", ".join(sorted(cfg.get("benchmark_groups") or {}))
        raise ValueError(f"unknown benchmark {unknown[0]!r} (known: {', '.join(sorted(specs))}; groups: {groups})")
    limit = cfg.get("limit")
    typed = build_benchmark_specs(cfg)
    loaded = []
    for name in names:
        benchmark = load_benchmark(typed[name], data_dir=cfg.get("data_dir"))
        if limit is not None:
            benchmark = replace(benchmark, problems=benchmark.problems[: int(limit)])
        loaded.append(benchmark)
    announce_fallbacks(loaded, "limo.evaluate: read")  # the hub did not answer: which sets came from limo's copies
    return loaded


def benchmark_names(cfg: DictConfig, section: EvaluateOptions) -> list[str]:
    """``benchmarks=`` (or the section's), each group (``limo_suite``) replaced by its members, once each."""
    requested = cfg.get("benchmarks") or section.benchmarks
    given = [requested] if isinstance(requested, str) else list(requested)
    if not given:
        raise ValueError("no benchmarks: pass benchmarks=[math500,...] or set evaluate.benchmarks")
    groups = cfg.get("benchmark_groups") or {}
    names: list[str] = []
    for name in given:
        for member in groups[name] if name in groups else [name]:
            if str(member) not in names:
                names.append(str(member))
    return names


def build_protocols(cfg: DictConfig, section: EvaluateOptions, benchmarks: list[Benchmark]) -> list[EvalProtocol]:
    """Each benchmark's protocol: its spec's defaults, the section's overrides, the recipe seed."""
    overrides = {k: v for k, v in asdict(section.protocol).items() if v is not None}
    specs = cfg.benchmark_specs
    return [resolve_protocol(dict(specs[b.name].get("protocol") or {}), overrides, int(cfg.seed)) for b in benchmarks]


def command_line_overrides() -> list[str]:
    """The overrides typed on the command line (empty outside Hydra)."""
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def resolve_model_path(cfg: DictConfig, section: EvaluateOptions) -> tuple[str | None, ChatSetup | None]:
    """``model.path=`` on the command line, else ``evaluate.model_path``, else ``model.path`` (built if tiny), and the
    chat template and end-of-turn token the backend will use with it.

    The model must have a chat template, its own or the group's: that is checked on its files before a ``.gguf`` or
    ``pkg:`` model is converted (`limo.models.chat.require_chat_template`). Returns ``(None, None)`` for backends that
    need no model folder (``openai``, ``replay``). ``llamacpp`` gets a ``.gguf`` file or ``pkg:`` model as typed: it
    serves the file itself, not a safetensors conversion of it.
    """
    if section.backend in ("openai", "replay"):
        return None, None
    given = any(o.lstrip("+").startswith("model.path=") for o in command_line_overrides())
    serves_files = section.backend == "llamacpp" and not cfg.model.get("build_tiny")
    if (given or not section.model_path) and serves_files:
        return str(cfg.model.path), require_chat_template(cfg.model)
    if given or not section.model_path:
        if cfg.model.get("build_tiny"):  # built in code, with its template: there are files to read only after
            built = ensure_model(cfg.model)
            return built, require_chat_template(cfg.model, built)
        chat = require_chat_template(cfg.model)
        return ensure_model(cfg.model), chat
    path = Path(section.model_path).expanduser()
    if serves_files and path.suffix.lower() == ".gguf" and path.is_file():
        return str(path), require_chat_template(cfg.model, str(path))
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no trained model at {path} (train it first with `python -m limo.train recipe={cfg.name}`; or evaluate "
            f"the recipe's own model, {cfg.model.path}, with evaluate.model_path=null; or another with "
            "model.path=<folder or hub id>), evaluate.model_path"
        )
    return str(path), require_chat_template(cfg.model, str(path))


def build_backend_for(
    cfg: DictConfig,
    section: EvaluateOptions,
    model_path: str | None,
    benchmark: str | None = None,
    reply_tokens: int | None = None,
) -> Any:
    """The section's backend, through `eval.backends.generation.build_generator` like every other generator.

    A replay ``path`` holding ``{benchmark}`` names one file per benchmark (request ids repeat across
    benchmarks: row 1 of Minerva and of GradeSchool are both ``1#0``); `per_benchmark_backend` says when.
    ``llamacpp`` gets, unless ``backend_options`` sets them, one server slot per row of a batch (``batch_size``: a
    batch's rows are all in flight) and slots of ``reply_tokens`` (the longest reply the run asks for) plus
    `PROMPT_ROOM` tokens.
    """
    args = dict(section.backend_options or {})
    if benchmark is not None and per_benchmark_backend(section):
        args["path"] = str(args["path"]).replace("{benchmark}", benchmark)
    if section.backend == "replay" and args.get("path") and "{benchmark}" not in str(args["path"]):
        input_file(str(args["path"]), "evaluate.backend_options.path")
    if section.backend in ("hf", "vllm"):
        args.update(model_path=model_path, chat_template=group_template_text(cfg.model))
        args.setdefault("revision", cfg.model.get("revision"))
    if section.backend == "llamacpp":
        args.update(model_path=model_path, chat_template=group_template_text(cfg.model))
        args.setdefault("log_path", str(Path(str(cfg.output_dir)) / "eval" / LLAMA_SERVER_LOG))
        args.setdefault("parallel", section.batch_size)
        if reply_tokens:
            args.setdefault("context_per_slot", reply_tokens + PROMPT_ROOM)
    if section.backend == "hf":
        args.update(dtype=str(cfg.model.dtype), device=section.device, batch_size=section.batch_size)
        args["end_of_turn"] = cfg.model.get("eos_token")
        args["budget"] = section.budget
    elif section.budget.active:
        raise ValueError(
            f"budget forcing is implemented in the hf backend only (backend: {section.backend}), evaluate.budget"
        )
    return build_generator(GenerationOptions(backend=section.backend, backend_args=args))


def per_benchmark_backend(section: EvaluateOptions) -> bool:
    """Whether the backend is built per benchmark: a replay path with a ``{benchmark}`` placeholder."""
    return section.backend == "replay" and "{benchmark}" in str((section.backend_options or {}).get("path", ""))


def model_identity(section: EvaluateOptions, model_path: str | None) -> dict[str, Any]:
    """What produced the responses: backend and model (server URL and model name for ``openai``)."""
    options = section.backend_options or {}
    if section.backend == "openai":
        return {"backend": "openai", "model": f"{options.get('model')} @ {options.get('base_url')}"}
    if section.backend == "replay":
        return {"backend": "replay", "model": f"replay:{options.get('path')}"}
    return {"backend": section.backend, "model": model_path}


def engine_identity(backend: Any) -> dict[str, Any]:
    """``{"engine": ...}`` for a backend that runs an engine of its own (``llamacpp``: version, server flags, the
    GGUF's digest), recorded in run.json and the report beside backend and model; else nothing."""
    engine = getattr(backend, "engine", None)
    return {"engine": engine} if engine else {}


def close_backend(backend: Any) -> None:
    """Stop what a backend started (``llamacpp``'s server); a no-op for the others."""
    close = getattr(backend, "close", None)
    if callable(close):
        close()


def build_prompt(section: EvaluateOptions) -> PromptStyle:
    return build_prompt_style(section.system_prompt, section.user_template, list(section.few_shot))


def build_grading(section: EvaluateOptions, folder: Path | None = None) -> GradingOptions:
    """Grader settings; with a policy that asks the judge, the judge cached in ``folder`` (the benchmark's)."""
    policy = section.grader.policy
    judge = build_judge(section.grader.judge, folder) if section.grader.uses_judge and folder is not None else None
    return GradingOptions(section.grader_workers, section.grader_timeout_s, policy, judge)


def load_regrade_inputs(cfg: DictConfig) -> tuple[list[dict[str, Any]], dict[str, str], str, list[str]]:
    """Response rows, gold answers, a source label and the group fields for an external re-grade."""
    responses, problems = cfg.get("responses"), cfg.get("problems")
    if not responses or not problems:
        raise ValueError("mode=regrade needs run_dir=<dir>, or responses=<file|champ> and problems=<file|champ>")
    group_by = list(cfg.get("group_by") or [])
    rows = champ_response_rows() if responses == "champ" else read_jsonl(input_file(str(responses), "responses"))
    golds = load_golds(str(problems) if problems == "champ" else input_file(str(problems), "problems"))
    if cfg.get("limit") is not None:  # the responses to the first N problems, as limit= means for generation
        golds = dict(list(golds.items())[: int(cfg.limit)])
        rows = [r for r in rows if r.get("problem_id") in (None, "") or str(r["problem_id"]) in golds]
    return rows, golds, str(responses), group_by


def input_file(value: str, key: str) -> str:
    """``value`` when it names a file or folder that exists.

    Raises:
        DataError: Naming ``key`` and the folder a relative path was read from.
    """
    if Path(value).expanduser().exists():
        return value
    relative = "" if Path(value).is_absolute() else f" (relative to the working directory, {Path.cwd()})"
    raise DataError(f"{key}={value}: no such file{relative}, {key}")


def champ_response_rows() -> list[dict[str, Any]]:
    """CHAMP's 19,440 model responses, each graded on its final summary turn (None when truncated)."""
    pool = load_champ_pool()
    texts = {p.id: p.problem for p in pool.problems}  # the grader reads yes/no statements against the question
    return [
        {
            "id": c.id,
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
        return {p.id: p.answer for p in load_champ_problems()}
    benchmark = load_benchmark(BenchmarkSpec(name=Path(problems).stem), path=problems)
    return {p.id: p.answer for p in benchmark.problems}


def build_multiturn(cfg: DictConfig, section: EvaluateOptions, protocol: EvalProtocol) -> MultiTurnOptions:
    """`eval.run.multiturn.MultiTurnOptions` from ``evaluate.multiturn`` (``turns=`` / ``oracle=`` on the command
    line win) and the benchmark's protocol (one answer per turn)."""
    settings = section.multiturn
    turns = int(cfg.get("turns") if cfg.get("turns") is not None else settings.turns)
    oracle = bool(cfg.get("oracle") if cfg.get("oracle") is not None else settings.oracle)
    feedback = settings.feedback_oracle if oracle else settings.feedback_no_oracle
    return MultiTurnOptions(turns, oracle, feedback, protocol.sampling, protocol.seed)
