"""docs/results.md's ablation tables, made from the kept runs (``results/<name>/``, `limo.ablation.store`).

Each ablation has a block in the page::

    <!-- ablation: smol_ablate_lemma -->
    ...generated...
    <!-- /ablation -->

(``<!-- ablation: <name> | python -m limo.ablate ... -->`` names the command of an ablation whose kept runs are
not under its recipe's name: one run with another ``output_dir``.)

``python -m limo.ablate --write-docs`` rewrites every block from ``results/<name>/``: its tables as
``--report-only`` makes them (``results.md`` without its title, its headings one level down) when every run of its
plan is kept; how many runs are kept and the command that goes on when some are; "not yet run" and the command when
none is. Text outside the blocks is never touched; a test fails when a committed block differs from what the kept
runs give (`render`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from eval.records import write_text_atomic
from limo.ablation import plan
from limo.ablation.markers import read_marker
from limo.ablation.store import PLAN, Store
from limo.ablation.study import build_study, compose_command, parse_command, report_only

BLOCK = re.compile(
    r"(?P<open><!-- ablation: (?P<name>[A-Za-z0-9_.-]+)(?: \| (?P<command>[^\n]*?))? -->\n)(?P<body>.*?)"
    r"(?P<close><!-- /ablation -->)",
    re.S,
)
DROPPED = {"--report-only": 0, "--deadline": 1, "--until": 1, "--results-dir": 1}  # flag -> values it takes


def run_command(argv: Sequence[str]) -> list[str]:
    """The recorded command line without the flags that only say where or how long (`DROPPED`)."""
    kept, skip = [], 0
    for arg in argv:
        name = arg.split("=", 1)[0]
        if skip:
            skip -= 1
        elif name in DROPPED:
            skip = DROPPED[name] if "=" not in arg else 0
        else:
            kept.append(arg)
    return kept


def shown(argv: Sequence[str]) -> str:
    return "`python -m limo.ablate " + " ".join(argv) + "`"


def block(name: str, results: Path, command_line: str | None = None) -> str:
    """The block's text for ablation ``name`` from ``results/<name>/`` (see the module docstring); ``command_line``:
    the command a block without kept runs names (the marker's ``| python -m limo.ablate ...``; else
    ``recipe=<name>``)."""
    root = results / name
    record = read_marker(root / PLAN)
    if record is None:
        return f"Not yet run: `{command_line or f'python -m limo.ablate recipe={name}'}`.\n"
    argv = run_command(record["argv"])
    command = parse_command([*argv, "--report-only", "--results-dir", str(root)])
    study, _ = build_study(compose_command(command), command)
    store = Store(root, study.root)
    specs = plan.run_specs(study)
    kept = sum(store.holds("evaluate", s.folder, study.benchmarks) for s in specs)
    if kept < len(specs):
        return f"{kept} of {len(specs)} runs kept in `results/{name}/`; go on with: {shown(argv)}.\n"
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "tables"
        report_only(study, folder, argv)
        text = (folder / "results.md").read_text(encoding="utf-8")
    body = "\n".join("#" + line if line.startswith("## ") else line for line in text.splitlines()[1:]).strip()
    return f"Generated from `results/{name}/` by `python -m limo.ablate --write-docs`.\n\n{body}\n"


def render(text: str, results: Path) -> str:
    """``text`` with every ablation block made again from ``results``."""
    return BLOCK.sub(lambda m: m["open"] + block(m["name"], results, m["command"]) + m["close"], text)


def write_docs(page: Path, results: Path) -> list[str]:
    """Rewrite ``page``'s ablation blocks; returns the names of those that changed."""
    text = page.read_text(encoding="utf-8")
    new = render(text, results)
    before = {m["name"]: m["body"] for m in BLOCK.finditer(text)}
    after = {m["name"]: m["body"] for m in BLOCK.finditer(new)}
    if new != text:
        write_text_atomic(page, new)
    return [name for name in after if before.get(name) != after[name]]
