"""`make demo`: the whole toolkit on embedded data, on CPU, as one command.

Runs each stage as its own process (exactly the command a user would type) so that a failure names
the stage and its command line, and prints where every output lands. Stages not built yet are named as
missing instead of silently skipped.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    title: str
    module: str
    args: tuple[str, ...]
    outputs: str


def demo_stages(output_dir: str) -> list[Stage]:
    """The demo's stages in order; all write under ``output_dir``."""
    return [
        Stage(
            "curate CHAMP (recipe champ)",
            "limo.curate",
            ("recipe=champ", f"output_dir={output_dir}"),
            f"{output_dir}/curate/",
        ),
        Stage(
            "train the tiny model on the curated set (recipe demo)",
            "limo.train",
            ("recipe=demo", f"output_dir={output_dir}", f"train.data={output_dir}/curate/messages.jsonl"),
            f"{output_dir}/train/model/",
        ),
        Stage(
            "evaluate the trained model on champ_heldout",
            "limo.evaluate",
            ("recipe=demo", f"output_dir={output_dir}", "benchmarks=[champ_heldout]"),
            f"{output_dir}/eval/",
        ),
        Stage(
            "re-grade the 19,440 CHAMP model responses",
            "limo.evaluate",
            (
                "recipe=demo",
                "mode=regrade",
                "responses=champ",
                "problems=champ",
                "group_by=[model,prompt_setting]",
                f"output_dir={output_dir}",
            ),
            f"{output_dir}/regrade/",
        ),
    ]


def run_stage(stage: Stage) -> bool:
    """Run one stage; returns False when its module does not exist yet."""
    if importlib.util.find_spec(stage.module) is None:
        print(f"[demo] SKIPPED (not built yet: {stage.module}): {stage.title}", flush=True)
        return False
    command = [sys.executable, "-m", stage.module, *stage.args]
    print(f"[demo] {stage.title}\n[demo] $ {' '.join(command)}", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise SystemExit(f"[demo] stage failed ({stage.title}), exit {done.returncode}: {' '.join(command)}")
    print(f"[demo] done in {time.monotonic() - started:.0f}s -> {stage.outputs}", flush=True)
    return True


def main(argv: list[str]) -> None:
    output_dir = next((a.split("=", 1)[1] for a in argv if a.startswith("output_dir=")), "outputs/demo")
    ran = [stage for stage in demo_stages(output_dir) if run_stage(stage)]
    print(
        "\n[demo] summary: the tiny model exercises the machinery; the `limo` recipe on GPUs is the real experiment."
    )
    for stage in demo_stages(output_dir):
        print(f"  {'ok     ' if stage in ran else 'missing'}  {stage.title:60s} {stage.outputs}")


if __name__ == "__main__":
    main(sys.argv[1:])
