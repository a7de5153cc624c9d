"""Golden curation outputs: every curating recipe's ``curate/`` files, captured once, compared on every run.

The runner refactor (one runner for every method) had to leave each recipe's selection untouched, so the
outputs of the code before it are test data: ``tests/golden/<case>.json`` holds the SHA-256 of each output
file after normalisation (the funnel without its seconds; the manifest without its package versions and
with only the executor's name of its ``execution`` entry; the run and data folders replaced by
placeholders; ``curated.parquet`` as its rows), and ``tests/golden/<case>.decisions.jsonl.gz`` one line per
decision (every rejects row's ``kind, id, stage, reason`` and every selected id), so that a failing
comparison names the decisions that changed instead of saying "bytes differ".

When a change of behaviour is intended, recapture (``python -m tests.golden_outputs capture [case ...]``,
with ``../shared/data`` beside the repository) and say in the commit which decision changed and why it is
now right.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden"
FILES = ("curated.jsonl", "messages.jsonl", "pairs.jsonl", "rejects.jsonl", "funnel.json", "manifest.json")
PINNED_DISTRIBUTIONS = ("sympy", "hydra-core", "omegaconf", "datatrove", "math-verify", "latex2sympy2-extended", "trl")
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    # case: (recipe, overrides); plots off (they are pictures of the funnel, not decisions)
    "champ": ("champ", ()),
    "lemma": ("lemma", ()),
    "discopop": ("discopop", ()),
    "rise": ("rise", ()),
    # the embedded corpus draws non-math pages from installed packages: pinned ones only, so that the golden holds in
    # any environment the project installs (a package added to the venv would otherwise change the corpus)
    "mammoth2": ("mammoth2", (f"++curate.mammoth2.corpus.distributions=[{','.join(PINNED_DISTRIBUTIONS)}]",)),
}


def run_case(case: str, output_dir: Path, data_dir: Path, *extra: str) -> Path:
    """Curate ``case``'s recipe into ``output_dir`` in this process, as ``python -m limo.curate`` composes it."""
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    recipe, overrides = CASES[case]
    cfg = compose(
        recipe,
        [f"output_dir={output_dir}", f"data_dir={data_dir}", "++curate.stages.report.plots=false", *overrides, *extra],
    )
    build_curation(cfg).run()
    return output_dir / "curate"


def normalized(curate_dir: Path, replacements: dict[str, str]) -> dict[str, bytes]:
    """The compared content of each output file present (see the module docstring)."""
    found: dict[str, bytes] = {}
    for name in FILES:
        path = curate_dir / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for old, new in replacements.items():
            text = text.replace(old, new)
        if name == "funnel.json":
            text = _funnel(text)
        elif name == "manifest.json":
            text = _manifest(text)
        found[name] = text.encode("utf-8")
    parquet = curate_dir / "curated.parquet"
    if parquet.is_file():
        import pyarrow.parquet as pq

        rows = pq.read_table(parquet).to_pylist()
        text = "".join(json.dumps(r, sort_keys=True, default=str, ensure_ascii=False) + "\n" for r in rows)
        for old, new in replacements.items():
            text = text.replace(old, new)
        found["curated.parquet"] = text.encode("utf-8")
    return found


def _funnel(text: str) -> str:
    funnel = json.loads(text)
    for stage in funnel["stages"]:
        stage.pop("seconds", None)
    return json.dumps(funnel, sort_keys=True, ensure_ascii=False)


def _manifest(text: str) -> str:
    manifest = json.loads(text)
    manifest.pop("packages", None)
    execution = manifest.pop("execution", None)
    manifest["executor"] = (execution or {}).get("executor")
    return json.dumps(manifest, sort_keys=True, ensure_ascii=False)


def decisions(curate_dir: Path) -> list[list[Any]]:
    """One row per decision: ``["drop", kind, id, stage, reason]`` per rejects row, ``["keep", file, id]`` per
    selected row."""
    rows: list[list[Any]] = []
    with open(curate_dir / "rejects.jsonl", encoding="utf-8") as handle:
        for line in handle:
            drop = json.loads(line)
            rows.append(["drop", drop["kind"], drop["id"], drop["stage"], drop["reason"]])
    for name in ("curated.jsonl", "messages.jsonl", "pairs.jsonl"):
        path = curate_dir / name
        if path.is_file():
            with open(path, encoding="utf-8") as handle:
                rows.extend(["keep", name, json.loads(line).get("id")] for line in handle)
    return rows


def digests(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(content).hexdigest() for name, content in sorted(files.items())}


def capture(case: str, data_dir: Path) -> None:
    """Run ``case`` and write its golden digests and decisions."""
    with tempfile.TemporaryDirectory() as tmp:
        out = run_case(case, Path(tmp) / "run", data_dir)
        files = normalized(out, {str(Path(tmp) / "run"): "<output_dir>", str(data_dir): "<data_dir>"})
        GOLDEN.mkdir(exist_ok=True)
        (GOLDEN / f"{case}.json").write_text(json.dumps(digests(files), indent=1, sort_keys=True) + "\n")
        rows = "".join(json.dumps(row) + "\n" for row in decisions(out)).encode("utf-8")
        with gzip.GzipFile(GOLDEN / f"{case}.decisions.jsonl.gz", "wb", compresslevel=9, mtime=0) as handle:
            handle.write(rows)  # no timestamp in the header: unchanged decisions, unchanged bytes


def golden_decisions(case: str) -> list[list[Any]]:
    with gzip.open(GOLDEN / f"{case}.decisions.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def differences(case: str, curate_dir: Path, replacements: dict[str, str]) -> list[str]:
    """What differs from the golden capture: changed decisions first (named), then files whose bytes differ."""
    expected = json.loads((GOLDEN / f"{case}.json").read_text())
    found = digests(normalized(curate_dir, replacements))
    changed = [name for name in sorted(set(expected) | set(found)) if expected.get(name) != found.get(name)]
    if not changed:
        return []
    return [*decision_changes(golden_decisions(case), decisions(curate_dir)), f"files that differ: {changed}"]


def decision_changes(before: list[list[Any]], after: list[list[Any]], limit: int = 15) -> list[str]:
    """Decisions that changed, by item: dropped elsewhere (stage or reason), newly kept, newly dropped."""
    drops = [_by_item(r for r in rows if r[0] == "drop") for rows in (before, after)]
    kept = [{(r[1], r[2]) for r in rows if r[0] == "keep"} for rows in (before, after)]
    lines = []
    moved = Counter(f"{drops[0][k]} -> {drops[1].get(k, 'kept')}" for k in drops[0] if drops[1].get(k) != drops[0][k])
    moved.update(f"kept -> {drops[1][k]}" for k in drops[1] if k not in drops[0])
    lines += [f"{n} items: {change}" for change, n in moved.most_common(limit)]
    lines += [f"newly selected: {sorted(kept[1] - kept[0])[:limit]}"] if kept[1] - kept[0] else []
    lines += [f"no longer selected: {sorted(kept[0] - kept[1])[:limit]}"] if kept[0] - kept[1] else []
    if not lines and before != after:
        lines.append("the same decisions in another order")
    return lines


def _by_item(rows: Iterable[list[Any]]) -> dict[tuple[str, str], str]:
    return {(r[1], r[2]): f"{r[3]}/{r[4]}" for r in rows}


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "capture":
        sys.exit("usage: python -m tests.golden_outputs capture [case ...]")
    from tests.shared_data import REPO_ROOT

    shared = Path(os.environ.get("LIMO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))  # as the test finds it
    for name in sys.argv[2:] or list(CASES):
        capture(name, shared.resolve())
        print(f"captured {name}")
