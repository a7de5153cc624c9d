"""`make demo`: the whole toolkit on embedded data, on CPU, as one command.

Runs each stage as its own process — exactly the command a user would type — so a failure names the stage
and its command line, and every stage shows its own progress. At the end it writes ``demo_report.md`` in
the run folder: what ran, how long it took, and where each report lives.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.records import write_text_atomic
from limo.search_path import split_folder_flags
from limo.usage import exit_if_help

DISCLAIMER = (
    "The tiny model (a ~100k-parameter Qwen2-shaped network built in code) exercises the machinery: it "
    "learns no mathematics, so its scores are near zero by design. The real experiment is the `limo` "
    "recipe on GPUs: `python -m limo.plan recipe=limo num_gpus=8 num_nodes=2` says whether it fits, and the "
    'README\'s "Reproducing LIMO end to end" gives the training commands.'
)


@dataclass(frozen=True)
class Stage:
    title: str
    module: str
    args: tuple[str, ...]
    outputs: str


def demo_stages(output_dir: str, data_dir: str | None = None, config_args: Sequence[str] = ()) -> list[Stage]:
    """The demo's stages in order; all write under ``output_dir``.

    ``data_dir`` (the shared benchmark files) lets curation decontaminate against MATH500 / AIME / AMC too;
    without it only `champ_heldout` is checked, and the curation manifest records the skip. ``config_args``
    (``--config-dir DIR``, ``hydra.searchpath=[...]``) go to every stage, so a user's config folder (a model
    group of their own, say) is seen by each.
    """
    extra = (f"data_dir={data_dir}",) if data_dir else ()
    regrade = ("mode=regrade", "responses=champ", "problems=champ", "group_by=[model,prompt_setting]")
    stages = [
        ("curate CHAMP (recipe champ)", "limo.curate", ("recipe=champ", *extra), "curate/report.md"),
        ("train the tiny model on the curated set (recipe demo)", "limo.train", ("recipe=demo",), "train/model/"),
        (
            "evaluate the trained model on champ_heldout",
            "limo.evaluate",
            ("recipe=demo", "benchmarks=[champ_heldout]"),
            "eval/champ_heldout/report.md",
        ),
        ("re-grade the 19,440 CHAMP model responses", "limo.evaluate", ("recipe=demo", *regrade), "regrade/report.md"),
    ]
    return [Stage(t, m, (*config_args, *a, f"output_dir={output_dir}"), f"{output_dir}/{o}") for t, m, a, o in stages]


def run_stage(stage: Stage) -> float:
    """Run one stage in its own process; returns its wall time in seconds."""
    command = [sys.executable, "-m", stage.module, *stage.args]
    print(f"\n[demo] {stage.title}\n[demo] $ {' '.join(command)}", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"limo.demo: error: stage failed ({stage.title}), exit {done.returncode}: {' '.join(command)}"
        )
    seconds = time.monotonic() - started
    print(f"[demo] done in {seconds:.0f}s -> {stage.outputs}", flush=True)
    return seconds


def demo_report(stages: list[Stage], seconds: list[float], output_dir: str) -> str:
    """The report's text; every command it recommends runs as written (tests/test_overrides.py runs them)."""
    rows = [f"| {s.title} | {t:.0f} s | `{s.outputs}` |" for s, t in zip(stages, seconds, strict=True)]
    table = ["| stage | time | output |", "|---|---|---|", *rows]
    explore = f"Next: `make explore CURATE_DIR={output_dir}/curate` runs the exploration notebook on the curated set."
    return "\n".join(["# limo demo", "", DISCLAIMER, "", *table, "", explore, ""])


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
    config_args = check_argv(argv)
    output_dir = _arg(argv, "output_dir") or "outputs/demo"
    stages = demo_stages(output_dir, _arg(argv, "data_dir"), config_args)
    seconds = [run_stage(stage) for stage in stages]
    report = demo_report(stages, seconds, output_dir)
    write_text_atomic(Path(output_dir) / "demo_report.md", report)
    print(f"\n{report}\n[demo] all outputs under {output_dir}/ (summary: {output_dir}/demo_report.md)")


if __name__ == "__main__":
    main(sys.argv[1:])
