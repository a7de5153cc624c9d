"""`python -m limo.evaluate recipe=<r> [benchmarks=[math500,aime24]] [model.path=...] [limit=N] [data_dir=...]`.

Modes (``mode=``): ``generate`` (default) samples and grades every benchmark into
``${output_dir}/eval/<benchmark>/`` (resumable); ``regrade`` grades saved responses again — a run
(``run_dir=<dir>``) or an external file (``responses=<file|champ> problems=<file|champ>
group_by=[model,prompt_setting]``) into ``${output_dir}/regrade/``; ``compare`` prints per-benchmark deltas
of two runs (``runs=[<dirA>,<dirB>]``) with paired bootstrap intervals and the problems that flipped,
refusing runs whose problems, data, prompt or sampling differ (``allow_mismatch=true`` compares and marks
them), into ``compare-<A>-vs-<B>/`` beside the runs (``${output_dir}/compare/`` when ``output_dir=`` is given);
``multiturn`` (RISE) lets the model answer again after feedback, up to ``turns=k`` (``evaluate.multiturn``),
and reports accuracy after each turn (with an oracle, or by majority over turns with ``oracle=false``) into
``${output_dir}/eval/<benchmark>/multiturn_<oracle|no_oracle>/``.

Which model: ``model.path=`` given on the command line wins; otherwise ``evaluate.model_path`` (the demo
and training recipes set it to ``${output_dir}/train/model``, the model they trained); otherwise
``model.path``. The run-time arguments above are not recipe settings, so they need not exist in a recipe:
`main` passes them to Hydra as ``++key=value``. Expected failures (missing model, unknown benchmark,
malformed file, server down) end with one line on stderr and leave results already written intact.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from limo.evaluation import (
    EXPECTED_ERRORS,
    RUNTIME_KEYS,
    build_backend_for,
    build_benchmarks,
    build_grading,
    build_multiturn,
    build_prompt,
    build_protocols,
    command_line_overrides,
    load_regrade_inputs,
    model_identity,
    parse_evaluate_section,
    resolve_model_path,
)

log = logging.getLogger("limo.evaluate")


def generate(cfg: DictConfig) -> None:
    """Sample, grade and summarise every requested benchmark."""
    from eval.grader import verify
    from eval.report import write_benchmark_results
    from eval.runner import run_benchmark

    section = parse_evaluate_section(cfg)
    benchmarks = build_benchmarks(cfg, section)  # bad benchmark names and files fail before the model loads
    model_path = resolve_model_path(cfg, section)
    backend = build_backend_for(cfg, section, model_path)
    style, grading = build_prompt(section), build_grading(section)
    identity = model_identity(section, model_path)
    for benchmark, protocol in zip(benchmarks, build_protocols(cfg, section, benchmarks), strict=True):
        out = Path(str(cfg.output_dir)) / "eval" / benchmark.name
        rows = run_benchmark(
            benchmark, backend, protocol, style, out, identity=identity, batch_size=section.batch_size, grading=grading
        )
        header = {
            "benchmark": benchmark.name, "recipe": str(cfg.name), **identity, "protocol": protocol.to_dict(),
            "prompt": style.to_dict(), "data": {"source": benchmark.source, "checksum": benchmark.checksum,
            "problems": len(benchmark.problems), "limit": cfg.get("limit")},
        }  # fmt: skip
        equivalent = lambda a, b: verify(a, b, timeout_s=grading.timeout_s)  # noqa: E731
        print_summary(write_benchmark_results(out, rows, header, equivalent), out)


def multiturn(cfg: DictConfig) -> None:
    """RISE's multi-turn evaluation: accuracy after each of k turns (eval.multiturn)."""
    from eval.multiturn import run_multiturn
    from eval.prompting import build_messages

    section = parse_evaluate_section(cfg)
    benchmarks = build_benchmarks(cfg, section)
    model_path = resolve_model_path(cfg, section)
    backend, style = build_backend_for(cfg, section, model_path), build_prompt(section)
    for benchmark, protocol in zip(benchmarks, build_protocols(cfg, section, benchmarks), strict=True):
        options = build_multiturn(cfg, section, protocol)
        out = (
            Path(str(cfg.output_dir))
            / "eval"
            / benchmark.name
            / f"multiturn_{'oracle' if options.oracle else 'no_oracle'}"
        )
        header = {"benchmark": benchmark.name, "recipe": str(cfg.name), **model_identity(section, model_path),
                  "prompt": style.to_dict(), "data": {"source": benchmark.source, "checksum": benchmark.checksum,
                  "problems": len(benchmark.problems), "limit": cfg.get("limit")}}  # fmt: skip
        summary = run_multiturn(
            benchmark.problems, backend, options, lambda text: build_messages(text, style), out, header=header,
            batch_size=section.batch_size, timeout_s=section.grader_timeout_s,
        )  # fmt: skip
        per_turn = ", ".join(f"t{t}={a:.3f}" for t, a in enumerate(summary["accuracy_after_turn"], start=1))
        print(
            f"[evaluate] {benchmark.name} multi-turn ({'oracle' if options.oracle else 'majority'}): "
            f"{per_turn} -> {out}"
        )


def regrade(cfg: DictConfig) -> None:
    """Grade saved responses again: a run folder, or an external responses file grouped by fields."""
    from eval.grader import verify
    from eval.regrade import regrade_responses, regrade_run_dir

    grading = build_grading(parse_evaluate_section(cfg))
    if cfg.get("run_dir"):
        equivalent = lambda a, b: verify(a, b, timeout_s=grading.timeout_s)  # noqa: E731
        results = regrade_run_dir(
            cfg.run_dir, workers=grading.workers, timeout_s=grading.timeout_s, equivalent=equivalent
        )
        for name, summary in results.items():
            print_summary(summary, Path(str(cfg.run_dir)), title=f"{name} (re-graded, {summary['regrade']})")
        return
    rows, golds, source, group_by = load_regrade_inputs(cfg)
    out = Path(str(cfg.output_dir)) / "regrade"
    summary = regrade_responses(
        rows, golds, group_by, out, source=source, workers=grading.workers, timeout_s=grading.timeout_s
    )
    print_regrade(summary, out)


def compare(cfg: DictConfig) -> None:
    """Per-benchmark deltas between two comparable runs, written beside them (or under ``output_dir=``)."""
    from eval.compare import compare_runs, default_output_dir

    runs = [str(r) for r in cfg.get("runs") or []]
    if len(runs) != 2:
        raise ValueError(f"mode=compare needs runs=[<dirA>,<dirB>] (got {runs})")
    given = any(o.lstrip("+").startswith("output_dir=") for o in command_line_overrides())
    out = Path(str(cfg.output_dir)) / "compare" if given else default_output_dir(runs)
    allow = bool(cfg.get("allow_mismatch"))
    print_compare(compare_runs(runs[0], runs[1], seed=int(cfg.seed), allow_mismatch=allow), runs, out)


def print_summary(summary: dict[str, Any], out: Path, title: str | None = None) -> None:
    metrics = summary["metrics"]
    ks = ", ".join(f"pass@{k}={v:.3f}" for k, v in metrics["pass@k"].items() if k != "1")
    print(
        f"[evaluate] {title or summary['benchmark']}: mean pass@1 {metrics['mean_pass@1']:.4f} "
        f"± {metrics['pass@1_stderr']:.4f} over {metrics['problems']} problems x "
        f"{metrics['samples_per_problem']} samples{'; ' + ks if ks else ''}; "
        f"truncated {metrics['truncation_rate']:.2%}, no answer {metrics['no_answer_rate']:.2%}"
        f"{_server_errors(metrics)} -> {out}",
        flush=True,
    )


def _server_errors(metrics: dict[str, Any]) -> str:
    rate = metrics.get("error_rate") or 0.0
    return f", server errors (empty replies) {rate:.2%}" if rate else ""


def print_regrade(summary: dict[str, Any], out: Path) -> None:
    from eval.regrade import render_group_table

    print(render_group_table(summary), flush=True)
    print(f"[evaluate] re-grade written to {out}/summary.json and report.md", flush=True)


def print_compare(results: list[Any], runs: list[str], out: Path) -> None:
    from eval.compare import write_comparison

    print(write_comparison(out, results, runs), flush=True)
    print(f"[evaluate] comparison written to {out}", flush=True)


MODES = {"generate": generate, "regrade": regrade, "compare": compare, "multiturn": multiturn}


def evaluate(cfg: DictConfig) -> None:
    """Run the mode ``cfg.mode`` names (default ``generate``)."""
    mode = str(cfg.get("mode") or "generate")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    MODES[mode](cfg)


@hydra.main(config_path="../recipes", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except EXPECTED_ERRORS as err:
        if os.environ.get("LIMO_DEBUG") == "1":
            raise
        log.debug("evaluation failed", exc_info=True)
        sys.exit("limo.evaluate: error: " + "; ".join(line.strip() for line in str(err).splitlines()))


def runtime_argv(argv: list[str]) -> list[str]:
    """Pass run-time arguments (``benchmarks=``, ``limit=``, ...) as ``++key=value`` so any recipe accepts them."""
    return [f"++{a}" if a.split("=", 1)[0] in RUNTIME_KEYS else a for a in argv]


if __name__ == "__main__":
    sys.argv[1:] = runtime_argv(sys.argv[1:])
    main()
