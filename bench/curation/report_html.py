"""What ``report.html`` costs: the champ run's time with and without it, and the page's size for a 1M-chain run.

Usage::

    python bench/curation/report_html.py [--repeats 3] [--chains 1000000] [--browser] [--ab-only]

1. **A/B on the champ run.** ``limo.curate``'s code path for ``recipe=champ`` runs ``--repeats`` times with the page
   (A) and as many without it (B: `curation.outputs.writer.write_report_html` replaced by a no-op), alternating
   A, B, B, A, ... so load drifts hit both, each in a fresh process with a fresh output folder; the run is timed
   inside the process (imports excluded; wall and CPU seconds: the CPU ratio holds up better on a busy machine),
   and A also times the page writer alone. Reported: median seconds of A and B, their ratios, and the writer's
   median seconds as a share of B.
2. **A synthetic 1M-chain output.** ``curate/`` as a 1M-chain pool run leaves it, built from the champ run of
   part 1: ``rejects.jsonl`` with the champ run's rows cycled (ids made unique) to ``--chains`` rows, so every
   group's evidence has a real shape and the reason mix is the champ run's; 800 selected rows (``select.n`` of
   bench/curation/sharded.py) cycled from its 120; the funnel scaled; plot data with one quality score per chain and
   one pass rate per 13 chains. Reported: the writer's seconds and the page's size, and the same with 817 selected
   rows of LIMO's length (chains repeated to about 16,000 characters, LIMO's mean is about 4,000 tokens), where
   the rejects get what the selected rows leave of the page's budget. ``--browser`` also times opening each page
   in headless Chromium until its script has drawn it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def run_champ(out: str, with_page: bool) -> None:
    """The child: the champ recipe as ``limo.curate`` runs it, with or without the page; prints its timings."""
    import curation.outputs.writer as writer
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    timed = {"page": 0.0}
    original = writer.write_report_html

    def page(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = original(*args, **kwargs) if with_page else None
        timed["page"] += time.perf_counter() - started
        return result

    writer.write_report_html = page
    curation = build_curation(compose("champ", [f"output_dir={out}"]))
    started, cpu = time.perf_counter(), cpu_seconds()
    curation.run()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "page": timed["page"]}))


def cpu_seconds() -> float:
    """User and system seconds of this process and of the children it has waited for (grading workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def ab(repeats: int, folder: Path) -> tuple[dict[str, Any], Path]:
    """Alternate A (page) and B (no page) runs; returns the medians and the folder of an A run."""
    order = [True, False, False, True] * ((repeats + 1) // 2)
    seconds: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    pages: list[float] = []
    kept = folder / "a0"
    for n, with_page in enumerate(order[: 2 * repeats]):
        out = folder / f"{'a' if with_page else 'b'}{n}"
        command = [sys.executable, __file__, "--child", str(out), "1" if with_page else "0"]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        seconds[with_page].append(result["seconds"])
        cpu[with_page].append(result["cpu"])
        if with_page:
            pages.append(result["page"])
            kept = out
    a, b, page = (statistics.median(v) for v in (seconds[True], seconds[False], pages))
    cpu_a, cpu_b = statistics.median(cpu[True]), statistics.median(cpu[False])
    return {
        "runs": {"with_page": seconds[True], "without_page": seconds[False], "page_writer": pages},
        "median_with_page_s": round(a, 3),
        "median_without_page_s": round(b, 3),
        "ratio": round(a / b, 4),
        "median_cpu_with_page_s": round(cpu_a, 3),
        "median_cpu_without_page_s": round(cpu_b, 3),
        "cpu_ratio": round(cpu_a / cpu_b, 4),
        "page_writer_median_s": round(page, 3),
        "page_writer_share_of_run": round(page / b, 4),
    }, kept / "curate"


def synthetic_output(champ: Path, out: Path, chains: int, selected: int, chain_chars: int | None) -> Any:
    """``out`` as a ``chains``-chain run leaves it (see the module docstring); returns the page writer's inputs."""
    from collections import Counter

    from curation.funnel import HISTOGRAM, Chart, StageCount, Survivors, domain_chart
    from curation.outputs.writer import RunOutputs

    out.mkdir(parents=True, exist_ok=True)
    shared = out.parent / f"rejects-{chains}.jsonl"  # both synthetic outputs of a size read the same file
    if not shared.exists():
        rejects = (champ / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
        with shared.open("w", encoding="utf-8") as handle:
            for n in range(chains - 800):
                row = json.loads(rejects[n % len(rejects)])
                row["id"] = f"{row['id']}~{n // len(rejects)}"
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.link(shared, out / "rejects.jsonl")
    base = [json.loads(line) for line in (champ / "curated.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = []
    for n in range(selected):
        row = dict(base[n % len(base)], id=f"{base[n % len(base)]['id']}~{n}", rank=n + 1)
        if chain_chars:
            row["chain"] = (row["chain"] + "\n\n") * (chain_chars // (len(row["chain"]) + 2) + 1)
        rows.append(row)
    scale = chains / json.loads((champ / "funnel.json").read_text())["totals"]["read"]
    funnel = [scaled(StageCount(**s), scale) for s in json.loads((champ / "funnel.json").read_text())["stages"]]
    rng = random.Random(0)
    rates = [rng.random() for _ in range(chains // 13)]
    quality = {"candidates": [rng.betavariate(2, 5) for _ in range(chains)]}
    quality["curated"] = [rng.betavariate(5, 2) for _ in range(selected)]
    pool = Counter({d: chains // 65 for d in ("Algebra", "Combinatorics", "Number-Theory", "Polynomial", "Sequence")})
    lengths = [len(r["chain"].split()) for r in rows]
    plots = [  # the charts LIMO's stages declare
        Chart("pass_rate", "Pass rate", HISTOGRAM, {"problems scored": rates}, "strong-model pass rate", span=(0, 1)),
        Chart("quality", "Quality score", HISTOGRAM, quality, "quality score"),
        Chart("length", "Length of the selected", HISTOGRAM, {"curated": lengths}, "words"),
        domain_chart({"pool": pool, "curated": Counter(r["subject"] for r in rows)}),
    ]
    state = Survivors({}, {}, funnel=funnel)
    manifest = json.loads((champ / "manifest.json").read_text())
    totals = {"read": chains, "selected": selected, "dropped": chains - selected}
    data = {"curated.jsonl": rows}
    return RunOutputs("limo", data, state, totals, {"selected": selected}, manifest, "", plots=plots)


def scaled(count: Any, scale: float) -> Any:
    count.items_in, count.items_out = round(count.items_in * scale), round(count.items_out * scale)
    count.dropped = {k: round(v * scale) for k, v in count.dropped.items()}
    return count


def page_size(champ: Path, folder: Path, chains: int, selected: int, chain_chars: int | None, browse: bool) -> dict:
    from curation.outputs.report_html import write_report_html

    out = folder / f"synthetic-{chains}-{selected}"
    run = synthetic_output(champ, out, chains, selected, chain_chars)
    started = time.perf_counter()
    path = write_report_html(out, run, run.manifest)
    result = {
        "chains": chains,
        "selected": selected,
        "selected_json_mb": round(len(json.dumps(run.data["curated.jsonl"])) / 1e6, 2),
        "rejects_jsonl_mb": round((out / "rejects.jsonl").stat().st_size / 1e6, 1),
        "writer_s": round(time.perf_counter() - started, 2),
        "page_mb": round(path.stat().st_size / 1e6, 2),
    }
    if browse:
        result["browser_open_s"] = open_seconds(path)
    return result


def open_seconds(path: Path) -> float | None:
    from tests.browser import Browser, chromium_path

    executable = chromium_path()
    if executable is None:
        print("bench/curation/report_html.py: chromium is not installed; skipping the browser timing", file=sys.stderr)
        return None
    browser = Browser(executable)
    try:
        started = time.perf_counter()
        tab = browser.open(path.resolve().as_uri(), timeout=120)
        seconds = round(time.perf_counter() - started, 2)
        assert tab.problems() == [], tab.problems()
        return seconds
    finally:
        browser.close()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        run_champ(sys.argv[2], sys.argv[3] == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chains", type=int, default=1_000_000)
    parser.add_argument("--browser", action="store_true")
    parser.add_argument("--ab-only", action="store_true", help="skip the synthetic 1M-chain pages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-html-") as tmp:
        folder = Path(tmp)
        timing, champ = ab(args.repeats, folder)
        print(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(), "ab": timing}, indent=2), flush=True)
        if args.ab_only:
            return
        sizes = [
            page_size(champ, folder, args.chains, 800, None, args.browser),
            page_size(champ, folder, args.chains, 817, 16_000, args.browser),
        ]
        print(json.dumps({"pages": sizes}, indent=2))


if __name__ == "__main__":
    main()
