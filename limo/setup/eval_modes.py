"""The modes of `limo.evaluate`: generate (default), multiturn, regrade, compare — each from a composed config.

- ``generate`` samples and grades every benchmark into ``${output_dir}/eval/<benchmark>/`` (resumable);
- ``multiturn`` (RISE) lets the model answer again after feedback, up to ``turns=k``, and reports accuracy
  after each turn into ``${output_dir}/eval/<benchmark>/multiturn_<oracle|no_oracle>/``; ``oracle=[true,false]``
  runs both variants with one model load;
- ``regrade`` grades saved responses again: a run (``run_dir=<dir>``) or an external file
  (``responses=<file|champ> problems=<file|champ> group_by=[...]``) into ``${output_dir}/regrade/``;
- ``compare`` prints per-benchmark deltas of two runs (``runs=[<dirA>,<dirB>]``), or of every job of a sweep
  against its first (``runs=[<sweep folder>]``), with paired bootstrap intervals and the problems that flipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from eval.benchmarks.loader import Benchmark
from eval.grading.grader import verify
from eval.grading.policy import grading_summary, write_agreement
from eval.reports.report import write_benchmark_results
from eval.reports.suite import write_suite_table
from eval.run.compare_runs import compare_runs, default_output_dir, skipped_benchmarks, write_comparison
from eval.run.multiturn import KnownAnswers, MultiTurnOptions, run_multiturn
from eval.run.prompting import build_messages
from eval.run.regrade import regrade_responses, regrade_run_dir, render_group_table
from eval.run.runner import CHOICE_SEED_RULE, SHUFFLED_KINDS, answers_on_file, run_benchmark
from limo.config.sweeps import sweep_jobs
from limo.setup.evaluate import (
    EvaluateOptions,
    build_backend_for,
    build_benchmarks,
    build_evaluate_options,
    build_grading,
    build_multiturn,
    build_prompt,
    build_protocols,
    close_backend,
    command_line_overrides,
    engine_identity,
    load_regrade_inputs,
    model_identity,
    per_benchmark_backend,
    resolve_model_path,
)


def generate(cfg: DictConfig) -> None:
    """Sample, grade and summarise every requested benchmark."""
    section = build_evaluate_options(cfg)
    benchmarks = build_benchmarks(cfg, section)  # bad benchmark names and files fail before the model loads
    model_path, chat = resolve_model_path(cfg, section)
    if chat is not None:
        print(f"[evaluate] {chat.line()}", flush=True)
    longest = max(p.max_new_tokens for p in build_protocols(cfg, section, benchmarks))
    shared = None if per_benchmark_backend(section) else build_backend_for(cfg, section, model_path, None, longest)
    try:
        summaries = generate_all(cfg, section, benchmarks, model_path, shared)
    finally:
        close_backend(shared)
    suite_dir = Path(str(cfg.output_dir)) / "eval"
    run = {"recipe": str(cfg.name), **model_identity(section, model_path), **engine_identity(shared)}
    run |= {"data_dir": cfg.get("data_dir"), "limit": cfg.get("limit")}
    table = write_suite_table(
        suite_dir, summaries, reference=section.reference_scores, label=section.reference_label, header=run
    )
    print(table, flush=True)
    print(f"[evaluate] suite table written to {suite_dir / 'suite.md'}", flush=True)


def generate_all(
    cfg: DictConfig, section: EvaluateOptions, benchmarks: list[Benchmark], model_path: str | None, shared: Any
) -> list[dict[str, Any]]:
    """Sample and grade each benchmark with the shared backend (or one built per benchmark); their summaries."""
    style = build_prompt(section)
    identity = {**model_identity(section, model_path), **engine_identity(shared)}
    summaries = []
    for benchmark, protocol in zip(benchmarks, build_protocols(cfg, section, benchmarks), strict=True):
        out = Path(str(cfg.output_dir)) / "eval" / benchmark.name
        grading = build_grading(section, out)
        backend = shared or build_backend_for(cfg, section, model_path, benchmark.name)
        rows = run_benchmark(
            benchmark, backend, protocol, style, out, identity=identity, batch_size=section.batch_size, grading=grading
        )
        header = {
            "benchmark": benchmark.name,
            "recipe": str(cfg.name),
            **identity,
            "protocol": protocol.to_dict(),
            "prompt": style.to_dict(),
            "data": data_header(cfg, benchmark),
            "answer_kind": benchmark.answer_kind,
            "grading": grading_summary(grading.policy, grading.judge, rows),
            "grader_agreement": write_agreement(out, rows),
        }
        if benchmark.answer_kind in SHUFFLED_KINDS:
            header["choices"] = {"shuffle": True, "seed": CHOICE_SEED_RULE}
        summaries.append(write_benchmark_results(out, rows, header, equivalence(grading.timeout_s)))
        print_summary(summaries[-1], out)
    return summaries


def data_header(cfg: DictConfig, benchmark: Any) -> dict[str, Any]:
    """Where a benchmark's problems came from, for ``run.json``."""
    return {
        "source": benchmark.source,
        "checksum": benchmark.checksum,
        "problems": len(benchmark.problems),
        "limit": cfg.get("limit"),
    }


def equivalence(timeout_s: float) -> Callable[[str, str], bool]:
    """Answer equivalence for majority votes: the grader's `verify` under the run's timeout."""
    return lambda a, b: verify(a, b, timeout_s=timeout_s)


def multiturn(cfg: DictConfig) -> None:
    """RISE's multi-turn evaluation: accuracy after each of k turns (`eval.run.multiturn`)."""
    section = build_evaluate_options(cfg)
    benchmarks = build_benchmarks(cfg, section)
    oracles = oracle_settings(cfg)  # a wrong value fails before the model loads
    model_path, chat = resolve_model_path(cfg, section)
    if chat is not None:
        print(f"[evaluate] {chat.line()}", flush=True)
    turns = build_multiturn(cfg, section, build_protocols(cfg, section, benchmarks)[0]).turns
    longest = turns * max(p.max_new_tokens for p in build_protocols(cfg, section, benchmarks))  # earlier answers stay
    backend = build_backend_for(cfg, section, model_path, None, longest)
    known = None
    if section.multiturn.reuse_answers and section.backend != "replay":  # one per model and engine
        known = single_turn_answers(cfg, section, benchmarks, model_path, backend)
    try:
        for oracle in oracles:
            multiturn_all(cfg, section, benchmarks, model_path, backend, oracle, known)
    finally:
        close_backend(backend)


def single_turn_answers(
    cfg: DictConfig, section: EvaluateOptions, benchmarks: list[Benchmark], model_path: str | None, backend: Any
) -> KnownAnswers:
    """The single-turn answers beside this run (``eval/<benchmark>/samples.jsonl`` of the same model, prompt,
    protocol and data), read once: they answer turn 1 of every variant; each variant's answers then serve the next."""
    known = KnownAnswers()
    style = build_prompt(section)
    identity = {**model_identity(section, model_path), **engine_identity(backend)}
    for benchmark, protocol in zip(benchmarks, build_protocols(cfg, section, benchmarks), strict=True):
        folder = Path(str(cfg.output_dir)) / "eval" / benchmark.name
        for request, generation in answers_on_file(folder, benchmark, protocol, style, identity):
            known.add(request, generation)
    return known


def oracle_settings(cfg: DictConfig) -> list[bool | None]:
    """The variants ``oracle=`` asks for, in order: ``true``, ``false``, both (``[true,false]``), or none given
    (None: ``evaluate.multiturn.oracle``).

    Raises:
        ValueError: A value that is not true or false.
    """
    asked = cfg.get("oracle")
    values = list(asked) if isinstance(asked, (ListConfig, list, tuple)) else [asked]
    if not values or any(v is not None and not isinstance(v, bool) for v in values):
        raise ValueError(f"oracle={asked}: expected true, false or a list of them ([true,false]), oracle")
    return list(dict.fromkeys(values))


def variant_options(cfg: DictConfig, section: EvaluateOptions, protocol: Any, oracle: bool | None) -> MultiTurnOptions:
    """`build_multiturn`'s options with ``oracle`` (None: the section's) and that variant's feedback text."""
    options = build_multiturn(cfg, section, protocol)
    settings = section.multiturn
    chosen = settings.oracle if oracle is None else oracle
    feedback = settings.feedback_oracle if chosen else settings.feedback_no_oracle
    return replace(options, oracle=chosen, feedback=feedback)


def multiturn_all(
    cfg: DictConfig,
    section: EvaluateOptions,
    benchmarks: list[Benchmark],
    model_path: str | None,
    backend: Any,
    oracle: bool | None = None,
    known: KnownAnswers | None = None,
) -> None:
    style = build_prompt(section)
    identity = {**model_identity(section, model_path), **engine_identity(backend)}
    for benchmark, protocol in zip(benchmarks, build_protocols(cfg, section, benchmarks), strict=True):
        options = variant_options(cfg, section, protocol, oracle)
        folder = f"multiturn_{'oracle' if options.oracle else 'no_oracle'}"
        out = Path(str(cfg.output_dir)) / "eval" / benchmark.name / folder
        header = {
            "benchmark": benchmark.name,
            "recipe": str(cfg.name),
            **identity,
            "prompt": style.to_dict(),
            "data": data_header(cfg, benchmark),
        }
        summary = run_multiturn(
            benchmark.problems,
            backend,
            options,
            lambda text: build_messages(text, style),
            out,
            header=header,
            batch_size=section.batch_size,
            timeout_s=section.grader_timeout_s,
            known=known,
        )
        per_turn = ", ".join(f"t{t}={a:.3f}" for t, a in enumerate(summary["accuracy_after_turn"], start=1))
        kind = "oracle" if options.oracle else "majority"
        reused = summary["reused_answers"]
        again = f"; {reused} answers reused, their requests asked before" if reused else ""
        print(f"[evaluate] {benchmark.name} multi-turn ({kind}): {per_turn}{again} -> {out}")


def regrade(cfg: DictConfig) -> None:
    """Grade saved responses again: a run folder, or an external responses file grouped by fields."""
    section = build_evaluate_options(cfg)
    grading = build_grading(section)
    if cfg.get("run_dir"):
        results = regrade_run_dir(
            cfg.run_dir,
            workers=grading.workers,
            timeout_s=grading.timeout_s,
            equivalent=equivalence(grading.timeout_s),
            grader=section.grader,
        )
        for name, summary in results.items():
            print_summary(summary, Path(str(cfg.run_dir)), title=f"{name} (re-graded, {summary['regrade']})")
        return
    rows, golds, source, group_by = load_regrade_inputs(cfg)
    out = Path(str(cfg.output_dir)) / "regrade"
    summary = regrade_responses(
        rows,
        golds,
        group_by,
        out,
        source=source,
        workers=grading.workers,
        timeout_s=grading.timeout_s,
        grader=section.grader,
    )
    print(render_group_table(summary), flush=True)
    print(f"[evaluate] re-grade written to {out}/summary.json and report.md", flush=True)


def compare(cfg: DictConfig) -> None:
    """Per-benchmark deltas between two comparable runs (or every sweep job against the first) with a paired
    bootstrap, written beside the runs (``compare-<A>-vs-<B>/``) or under ``output_dir=`` when it is given."""
    runs = compared_runs([str(r) for r in cfg.get("runs") or []])
    given = any(o.lstrip("+").startswith("output_dir=") for o in command_line_overrides())
    allow = bool(cfg.get("allow_mismatch"))
    for other in runs[1:]:
        pair = [runs[0], other]
        if given:
            folder = Path(str(cfg.output_dir)) / "compare" / ("" if len(runs) == 2 else Path(other).name)
        else:
            folder = default_output_dir(pair)
        results = compare_runs(runs[0], other, seed=int(cfg.seed), allow_mismatch=allow)
        print(write_comparison(folder, results, pair, skipped_benchmarks(*pair)), flush=True)
        print(f"[evaluate] comparison written to {folder}", flush=True)


def compared_runs(runs: list[str]) -> list[str]:
    """Two run folders as given, or the job folders of one sweep folder (the first is the baseline).

    Raises:
        ValueError: Neither two runs nor a sweep with at least two jobs.
    """
    if len(runs) == 1 and len(sweep_jobs(runs[0])) >= 2:
        return sweep_jobs(runs[0])
    if len(runs) != 2:
        raise ValueError(f"mode=compare needs runs=[<dirA>,<dirB>] or runs=[<sweep folder>] (got {runs}), runs")
    return runs


def print_summary(summary: dict[str, Any], out: Path, title: str | None = None) -> None:
    metrics = summary["metrics"]
    ks = ", ".join(f"pass@{k}={v:.3f}" for k, v in metrics["pass@k"].items() if k != "1")
    print(
        f"[evaluate] {title or summary['benchmark']}: mean pass@1 {metrics['mean_pass@1']:.4f} "
        f"± {metrics['pass@1_stderr']:.4f} over {metrics['problems']} problems x "
        f"{metrics['samples_per_problem']} samples{'; ' + ks if ks else ''}; "
        f"truncated {metrics['truncation_rate']:.2%}, no answer {metrics['no_answer_rate']:.2%}, "
        f"ungradable {metrics.get('ungradable', 0)}"
        f"{_server_errors(metrics)} -> {out}",
        flush=True,
    )


def _server_errors(metrics: dict[str, Any]) -> str:
    rate = metrics.get("error_rate") or 0.0
    return f", server errors (empty replies) {rate:.2%}" if rate else ""


MODES: dict[str, Callable[[DictConfig], None]] = {
    "generate": generate,
    "regrade": regrade,
    "compare": compare,
    "multiturn": multiturn,
}
