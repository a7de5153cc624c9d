"""Summaries and reports: every number next to exactly what produced it.

``summary.json`` holds the metrics plus the provenance a reader needs to reproduce them — model,
recipe, backend (and its engine, for llamacpp: version, server flags, the GGUF's digest), protocol, prompt, data
source and checksum, grader fingerprint, package versions, git commit, the machine — and ``report.md`` renders the
same in a header and a table; ``report.html`` adds every sample (`eval.reports.samples_page`). All are written
atomically.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.grading.policy import render_agreement
from eval.records import write_json, write_text_atomic
from eval.reports.metrics import summarize
from eval.reports.samples_page import percent, write_samples_page

PACKAGES = ("limo", "torch", "transformers", "vllm", "math-verify", "latex2sympy2-extended", "sympy", "champ-dataset")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Python's version and the installed versions of the packages that can change a number.

    An absent package is listed as ``not installed`` rather than left out, so a reader sees it was checked.
    """
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(cwd: str | Path | None = None) -> str | None:
    """``git rev-parse HEAD`` of the working tree (None outside a git checkout), ``+dirty`` if modified."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=cwd, capture_output=True, text=True)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def grader_fingerprint() -> str:
    """SHA-256 (first 16 hex) of the grader's source, so a re-grade with a changed grader is visible."""
    digest = hashlib.sha256()
    folder = Path(__file__).resolve().parents[1]
    for name in ("answers/extract.py", "grading/grader.py"):
        path = folder / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def machine(proc: Path = Path("/proc")) -> str:
    """Where this process runs, in a few words: the architecture, the cores it may use and the CPU's model, and the
    NVIDIA GPUs the driver lists (``/proc/driver/nvidia``, read without loading CUDA), e.g. ``x86_64, 2 cores (AMD
    EPYC), no GPU`` or ``x86_64, 16 cores (...), 1 x NVIDIA H200``: what a number made here was made on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = next((v for k, v in proc_fields(proc / "cpuinfo") if k == "model name"), None)
    gpus = sorted((proc / "driver" / "nvidia" / "gpus").glob("*/information"))
    names = [next((v for k, v in proc_fields(g) if k == "Model"), "an NVIDIA GPU") for g in gpus]
    counted = ", ".join(f"{names.count(n)} x {n}" for n in dict.fromkeys(names)) or "no GPU"
    return f"{platform.machine()}, {cores} cores" + (f" ({cpu})" if cpu else "") + f", {counted}"


def proc_fields(path: Path) -> list[tuple[str, str]]:
    """``key: value`` lines of a ``/proc`` file (none where it cannot be read)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [(k.strip(), v.strip()) for k, sep, v in (line.partition(":") for line in lines) if sep]


def environment() -> dict[str, Any]:
    """Package versions, git commit, grader fingerprint and machine (`machine`) of this process."""
    return {
        "packages": package_versions(),
        "git_commit": git_commit(),
        "grader": grader_fingerprint(),
        "machine": machine(),
    }


def write_benchmark_results(
    out_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    header: Mapping[str, Any],
    equivalent: Callable[[str, str], bool],
) -> dict[str, Any]:
    """Compute the metrics of ``rows`` and write ``summary.json``, ``report.md`` and ``report.html`` (every sample:
    `eval.reports.samples_page`); returns the summary."""
    summary = {**header, "environment": environment(), "metrics": summarize(rows, equivalent)}
    out = Path(out_dir)
    write_json(out / "summary.json", summary)
    write_text_atomic(out / "report.md", render_report(summary))
    write_samples_page(out, summary, rows)
    return summary


def render_report(summary: Mapping[str, Any]) -> str:
    """Markdown report of one benchmark: provenance header, main table, breakdowns."""
    metrics = summary["metrics"]
    lines = [f"# {summary.get('benchmark', 'benchmark')}: evaluation report", ""]
    lines += [f"- **{key}**: {_inline(value)}" for key, value in _header_items(summary)]
    lines += ["", "## Results", "", "| metric | value |", "|---|---|"]
    lines.append(f"| mean pass@1 | {metrics['mean_pass@1']:.4f} ± {metrics['pass@1_stderr']:.4f} (s.e.) |")
    lines += [f"| pass@{k} | {v:.4f} |" for k, v in metrics["pass@k"].items() if k != "1"]
    lines += [f"| maj@{k} | {v:.4f} |" for k, v in metrics["maj@k"].items()]
    lines += [
        f"| problems / samples | {metrics['problems']} / {metrics['samples']} |",
        f"| mean / max response tokens | {metrics['mean_tokens']:.1f} / {metrics['max_tokens']} |",
        f"| truncation rate (finish_reason=length) | {percent(metrics['truncation_rate'])} |",
        f"| no-answer rate | {percent(metrics['no_answer_rate'])} |",
        f"| server-error rate (empty reply, tokens spent) | {percent(metrics.get('error_rate', 0.0))} |",
        f"| ungradable (symbolic grader undecided) | {metrics.get('ungradable', 0)} |",
        f"| verdicts | {_inline(metrics['status_counts'])} |",
    ]
    for field in ("level", "subject"):
        table = metrics.get(f"by_{field}")
        if table:
            lines += ["", f"## By {field}", "", f"| {field} | problems | pass@1 | s.e. |", "|---|---|---|---|"]
            lines += [f"| {k} | {v['problems']} | {v['pass@1']:.4f} | {v['stderr']:.4f} |" for k, v in table.items()]
    if summary.get("grader_agreement"):
        lines += render_agreement(summary["grader_agreement"])
    lines += ["", "mean pass@1 averages per-problem accuracy over all samples; pass@k is the unbiased estimator."]
    return "\n".join(lines) + "\n"


def _header_items(summary: Mapping[str, Any]) -> list[tuple[str, Any]]:
    env = summary.get("environment", {})
    keys = ("model", "recipe", "backend", "engine", "protocol", "prompt", "data", "grading")
    items = [(k, summary[k]) for k in keys if k in summary]
    items += [("grader", env.get("grader")), ("git commit", env.get("git_commit")), ("packages", env.get("packages"))]
    items += [("machine", env["machine"])] if "machine" in env else []
    return items


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_inline(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_inline(v) for v in value) + "]"
    text = str(value).replace("\n", "\\n").replace("|", "\\|")
    return f"`{text}`" if isinstance(value, str) and value else text
