"""Prove limo's GPU path in one command and write its figures: bf16 peak, SFT speed and MFU, ZeRO-2/3 against plain,
the memory planner against the allocator, hf generation, a GRPO step and the demo's loop; and, named alone
(``--parts peak,long``), LIMO's sequence length: a 7B shape at 16k-token rows under ZeRO-3, padding-free against
padded.

Usage::

    python bench/gpu/gpu_check.py [--device cuda|cpu] [--out outputs/gpu_check] [--wheels .gpu_wheels] [--parts a,b]

On the GPU machine (docs/training.md, "Checking the GPU path"): ``--wheels .gpu_wheels`` first installs the wheels
bench/gpu/gpu_wheels.py fetched (``pip install --no-index --no-deps --target``) and puts them on the path of every
process it starts. ``--device`` defaults to CUDA where torch sees it, else the CPU, where every part runs on
scaled-down shapes in a minute or two: tests/test_gpu_check.py runs it so the check cannot rot where no GPU is.

Each part (bench/gpu/gpu_parts.py says what each measures and how) runs in a process of its own under its own time
budget (`BUDGETS`, and all of them under `TOTAL_S`: a part that would start with too little left is skipped, saying
so), so a part that fails, hangs or dies leaves the others' figures: its entry says ``failed`` with the error's line,
or ``skipped`` with the reason. ``<out>/gpu_check.json`` is rewritten atomically after every part; every part's
output goes to ``<out>/gpu_check.log`` (two files: the device tool returns at most eight); a short summary is
printed at the end. ``--fault part:raise|hang`` makes a part fail on purpose (the tests check that the others go
on). ``--shared-process`` (CPU only) runs consecutive `SHAREABLE` parts in one process, every part still with its
own entry: tests/test_gpu_check.py's whole CPU run, where each process of its own cost ~3 s of imports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "gpu"))

import gpu_parts  # noqa: E402  (bench/ is no package)

ORDER = ("peak", "sft", "memory", "zero", "generation", "grpo", "demo")
# Parts that run only when named (`--parts peak,long`): LIMO's sequence length on a 7B shape fills a device session
# of its own.
EXTRA = ("long",)
# Seconds each part may take (its process killed after), and for the whole check. The GPU figures fit one device
# session (under 8 minutes with the wheels' installation); the CPU ones only guard against a hang.
BUDGETS = {
    "cuda": {
        "peak": 60,
        "sft": 150,
        "memory": 75,
        "zero": 120,
        "generation": 60,
        "grpo": 75,
        "demo": 120,
        "long": 480,  # with peak, within the device tool's 600 s a call
    },
    "cpu": {
        "peak": 120,
        "sft": 600,
        "memory": 300,
        "zero": 900,
        "generation": 300,
        "grpo": 300,
        "demo": 900,
        "long": 600,
    },
}
TOTAL_S = {"cuda": 420, "cpu": 3600}  # and each named EXTRA part's own budget on top
# Parts that may share one process in the CPU run (``--shared-process``): there a part measures no device memory and
# leaves no device state behind, so a process of its own buys only isolation, at ~3 s of imports (torch,
# transformers, TRL) each; `zero` starts its runs in processes of their own either way. `demo` (its stages are
# processes) and `long` keep theirs.
SHAREABLE = ("peak", "sft", "memory", "zero", "generation", "grpo")
MIN_PART_S = 20  # a part that would start with less than this left is skipped
LOG_TAIL_BYTES = 200_000  # of each part's output, in <out>/gpu_check.log
PACKAGES = ("torch", "transformers", "trl", "deepspeed", "accelerate", "peft", "datasets", "tokenizers", "numpy")


def install_wheels(folder: Path) -> Path:
    """Install the carried wheels into a folder of their own and put it first on every process's path.

    Raises:
        SystemExit: No wheels in ``folder``.
    """
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise SystemExit(
            f"gpu_check: error: no wheels in {folder} (python bench/gpu/gpu_wheels.py fetches them), --wheels"
        )
    target = Path(tempfile.gettempdir()) / "limo-gpu-site"
    marker = target / ".limo-wheels.json"
    names = [wheel.name for wheel in wheels]
    if not (marker.exists() and json.loads(marker.read_text()) == names):
        pip = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--no-cache-dir",
        ]
        subprocess.run([*pip, "--upgrade", "--target", str(target), *map(str, wheels)], check=True)
        marker.write_text(json.dumps(names))
    sys.path.insert(0, str(target))
    os.environ["PATH"] = f"{target / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return target


def set_python_path(site: Path | None) -> None:
    """Every process this check starts imports the carried wheels (if any) and this checkout's limo."""
    entries = [str(p) for p in (site, REPO) if p] + [
        p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(entries))


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: error: torch sees no CUDA device here, --device cuda (or --device cpu)")
    return device


def environment(device: str, site: Path | None, wheels: Path | None) -> dict[str, Any]:
    """What ran the check: machine, Python, the packages that matter (and where the carried ones came from)."""
    import importlib.metadata

    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    env: dict[str, Any] = {"machine": platform.machine(), "python": platform.python_version(), "packages": versions}
    env.update(
        cpus=os.cpu_count(), omp_num_threads=os.environ.get("OMP_NUM_THREADS"), site=str(site) if site else None
    )
    if wheels and (wheels / "carried.json").exists():
        env["carried"] = [row["file"] for row in json.loads((wheels / "carried.json").read_text())]
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, gpu_memory_gib=props.total_memory / 1024**3, cuda=torch.version.cuda)
    return env


def run_part(name: str, spec: dict[str, Any], budget: float, log: Path) -> dict[str, Any]:
    """Run one part in its own process group, killed after ``budget`` seconds; its result entry."""
    result_file, seconds, status = run_process(name, spec, budget, log)
    if result_file.exists():
        return {**json.loads(result_file.read_text()), "seconds": seconds, "budget_s": budget}
    error = no_result(seconds, budget, status, log)
    return {"status": "failed", "error": error, "seconds": seconds, "budget_s": budget}


def run_shared(names: list[str], spec: dict[str, Any], budget: float, log: Path) -> dict[str, dict[str, Any]]:
    """Run ``names`` one after the other in one process (``--shared-process``), killed after ``budget`` seconds (the
    sum of theirs); each part's entry, with the seconds it took in that process."""
    result_file, seconds, status = run_process(",".join(names), spec, budget, log)
    results = json.loads(result_file.read_text()) if result_file.exists() else {}
    entries = {name: {**results[name], "budget_s": budget} for name in names if name in results}
    for name in names[len(entries) :]:  # the part that was running when the process ended, and those after it
        error = f"{no_result(seconds, budget, status, log)} (in one process with {', '.join(names)})"
        entries[name] = {"status": "failed", "error": error, "seconds": 0.0, "budget_s": budget}
    return entries


def run_process(parts: str, spec: dict[str, Any], budget: float, log: Path) -> tuple[Path, float, int | None]:
    """Run gpu_parts.py on ``parts`` in its own process group, killed after ``budget`` seconds; its result file (which
    may be missing), its seconds and its exit status."""
    folder = Path(spec["work"]) / "parts"
    folder.mkdir(parents=True, exist_ok=True)
    spec_file, result_file = folder / f"{parts}.spec.json", folder / f"{parts}.result.json"
    spec_file.write_text(json.dumps(spec))
    result_file.unlink(missing_ok=True)
    command = [sys.executable, str(REPO / "bench" / "gpu" / "gpu_parts.py"), parts, str(spec_file), str(result_file)]
    started = time.monotonic()
    with log.open("w") as output:
        process = subprocess.Popen(
            command, env=gpu_parts.child_env(spec), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the part and whatever it started (ZeRO runs, demo stages)
            process.wait()
    return result_file, time.monotonic() - started, process.returncode


def no_result(seconds: float, budget: float, status: int | None, log: Path) -> str:
    """Why a part has no result: its budget ran out, or its process ended without writing one."""
    if seconds >= budget:
        return f"timed out after its budget of {budget:.0f} s (killed with everything it started)"
    return f"its process exited with status {status} and wrote no result; last line: {last_line(log)}"


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def append_log(combined: Path, name: str, log: Path) -> None:
    """The part's output, its tail when long, under a header in the one log file the check returns."""
    data = log.read_bytes()
    cut = (
        f"[... first {len(data) - LOG_TAIL_BYTES} bytes left out ...]\n".encode()
        if len(data) > LOG_TAIL_BYTES
        else b""
    )
    with combined.open("ab") as handle:
        handle.write(f"\n===== {name} =====\n".encode() + cut + data[-LOG_TAIL_BYTES:])


def write_report(path: Path, report: dict[str, Any]) -> None:
    gpu_parts.write_json_atomic(path, report)


def run_check(args: argparse.Namespace, device: str, site: Path | None, work: Path) -> dict[str, Any]:
    """Every selected part in order, the report rewritten after each; returns the report."""
    args.out.mkdir(parents=True, exist_ok=True)
    report_path, combined = args.out / "gpu_check.json", args.out / "gpu_check.log"
    combined.write_text("")
    report: dict[str, Any] = {"schema": 1, "device": device, "command": " ".join(sys.argv), "started": now()}
    report.update(environment=environment(device, site, args.wheels), parts={})
    write_report(report_path, report)
    budgets, faults = BUDGETS[device], dict(fault.split(":", 1) for fault in args.fault)
    if any(mode not in ("raise", "hang") for mode in faults.values()):
        raise SystemExit(f"gpu_check: error: a fault is raise or hang, --fault {args.fault}")
    total = TOTAL_S[device] + sum(budgets[name] for name in args.parts if name in EXTRA)
    deadline = time.monotonic() + total * args.budget_factor
    for group in process_groups(args.parts, args.shared_process):
        left = deadline - time.monotonic()
        if left < MIN_PART_S:
            reason = f"the check's total budget is spent ({left:.0f} s left)"
            entries: dict[str, dict[str, Any]] = {name: {"status": "skipped", "reason": reason} for name in group}
        else:
            spec: dict[str, Any] = {"device": device, "work": str(work), "peak": figures(report, "peak")}
            log = work / "logs" / f"{'+'.join(group)}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            budget = min(left, sum(args.budget.get(name, budgets[name] * args.budget_factor) for name in group))
            if len(group) == 1:
                entries = {group[0]: run_part(group[0], {**spec, "fault": faults.get(group[0])}, budget, log)}
            else:
                spec["faults"] = {name: faults[name] for name in group if name in faults}
                entries = run_shared(group, spec, budget, log)
            append_log(combined, ", ".join(group), log)
        for name, entry in entries.items():
            report["parts"][name] = entry
            report["finished"] = now()
            write_report(report_path, report)
            print(summary_line(name, entry), flush=True)
    return report


def process_groups(parts: list[str], shared: bool) -> list[list[str]]:
    """The parts in order, cut into the runs of one process each: one part a process, or with ``shared`` (the CPU
    run's ``--shared-process``) consecutive `SHAREABLE` parts in one."""
    groups: list[list[str]] = []
    for name in parts:
        if shared and name in SHAREABLE and groups and groups[-1][-1] in SHAREABLE:
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def figures(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    entry = report["parts"].get(name) or {}
    return entry.get("figures") if entry.get("status") == "ok" else None


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def summary_line(name: str, entry: dict[str, Any]) -> str:
    """One line per part: its status, time and headline figures."""
    head = f"[gpu_check] {name:10s} {entry['status']:7s} {entry.get('seconds', 0):6.1f} s"
    if entry["status"] == "failed":
        return f"{head}  {entry['error']}"
    if entry["status"] == "skipped":
        return f"{head}  {entry['reason']}"
    return f"{head}  {headline(name, entry['figures'])}"


def headline(name: str, fig: dict[str, Any]) -> str:
    """A part's figures in a few words."""
    if name == "peak":
        return f"{fig['dtype']} matmul {fig['size']}^3: {fig['tflops']:.1f} TFLOP/s"
    if name == "sft":
        shapes = [k for k, v in fig.items() if isinstance(v, dict) and "padded" in v]
        return "; ".join(sft_words(shape, fig[shape]) for shape in shapes)
    if name == "memory":
        measured = f"{fig['measured_gib']:.2f} GiB" if fig.get("measured_gib") else "not measured (no CUDA)"
        return f"planner {fig['estimate_gib']['total']:.2f} GiB vs max_memory_allocated {measured}"
    if name == "zero":
        return ", ".join(
            f"{s} max |loss diff| {fig[s]['max_abs_diff']:.2g} (drop {fig['drop']:.2f})" for s in ("zero2", "zero3")
        )
    if name == "generation":
        rates = [
            f"batch {k.split('_')[1]}: {v['tokens_per_s']:,.0f}" for k, v in fig.items() if k.startswith("batch_")
        ]
        return "new tokens/s " + ", ".join(rates)
    if name == "grpo":
        return (
            f"{fig['steps']} steps, last {fig['step_seconds'][-1]:.2f} s ({fig['completions_per_step']} completions)"
        )
    if name == "demo":
        return f"curate -> SFT -> evaluate in {fig['wall_s']:.0f} s ({fig['model']})"
    if name == "long":
        memory = fig["padding_free"].get("max_memory_allocated_gib")
        planner = (
            f"; planner {fig['padding_free']['estimate_gib']:.1f} vs {memory:.1f} GiB allocated" if memory else ""
        )
        return (
            sft_words(f"{fig['model']} ({fig['mode']}, rows ~{fig['padding_free']['planned_seq_len']:,})", fig)
            + planner
        )
    return json.dumps(fig)[:200]


def sft_words(shape: str, fig: dict[str, Any]) -> str:
    free, padded = fig["padding_free"], fig["padded"]
    mfu = f", MFU {free['mfu']:.0%}/{padded['mfu']:.0%}" if free.get("mfu") and padded.get("mfu") else ""
    return f"{shape} {free['tokens_per_s']:,.0f}/{padded['tokens_per_s']:,.0f} tokens/s padding-free/padded{mfu}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "gpu_check", help="gpu_check.json and .log")
    parser.add_argument("--wheels", type=Path, default=None, help="install these carried wheels first")
    parser.add_argument("--parts", default=",".join(ORDER), help=f"in the order given, of {','.join(ORDER + EXTRA)}")
    parser.add_argument("--work", type=Path, default=None, help="models and runs (default: a temporary folder)")
    parser.add_argument("--keep-work", action="store_true", help="keep the work folder")
    parser.add_argument("--budget-factor", type=float, default=1.0, help="multiply every time budget")
    parser.add_argument("--budget", action="append", default=[], help="part=seconds: that part's budget")
    parser.add_argument("--fault", action="append", default=[], help="part:raise or part:hang (tests)")
    parser.add_argument(
        "--shared-process",
        action="store_true",
        help=f"CPU only: consecutive parts of {','.join(SHAREABLE)} in one process (a hang fails them all)",
    )
    args = parser.parse_args(argv)
    args.parts = [p for p in args.parts.split(",") if p]
    args.budget = {part: float(seconds) for part, seconds in (b.split("=", 1) for b in args.budget)}
    named = [*args.parts, *(f.split(":")[0] for f in args.fault), *args.budget]
    unknown = [p for p in named if p not in ORDER + EXTRA]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r} (parts: {', '.join(ORDER + EXTRA)})")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    site = install_wheels(args.wheels) if args.wheels else None
    set_python_path(site)
    device = resolve_device(args.device)
    if args.shared_process and device != "cpu":
        raise SystemExit("gpu_check: error: a GPU part measures in a process of its own, --shared-process (CPU only)")
    work = args.work or Path(tempfile.mkdtemp(prefix="limo-gpu-check-"))
    try:
        report = run_check(args, device, site, work)
    finally:
        if not args.keep_work and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    statuses = [entry["status"] for entry in report["parts"].values()]
    print(f"[gpu_check] {statuses.count('ok')} of {len(statuses)} parts ok on {device}; {args.out / 'gpu_check.json'}")
    return report


if __name__ == "__main__":
    parts = main()["parts"].values()
    sys.exit(1 if any(entry["status"] == "failed" for entry in parts) else 0)
