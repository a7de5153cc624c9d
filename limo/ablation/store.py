"""The runs an ablation keeps in the repository: ``results/<name>/``, what its tables need and nothing else.

``outputs/`` is never committed and is gone on the next machine; this folder is committed. For every finished run
(a training, an evaluation, an ``after`` arm's curation in its run folder) it holds, under the run's path in the
ablation (``runs/<arm>/seed<s>/``, ``base/``):

- ``.ablate/<stage>.json``: the step's marker (`limo.ablation.markers`: its composed config, its inputs' checksums,
  its key), so that a step found here counts as done on any machine whose settings give the same key;
- ``train/log_history.json`` (the run's compute) and ``train/config.yaml`` (the config limo.train resolved);
- ``eval/<benchmark>/summary.json`` and ``samples.jsonl.gz``: one row a problem (its first sample: the one the tables
  read) with its id, part, verdict, extracted answer and response and the fields a table breaks down by; a multi-turn
  variant's ``multiturn_<variant>/summary.json`` and ``episodes.jsonl.gz`` (each turn's verdict and answer);
- ``curate/rows.json``: an ``after`` arm's curated row counts (its prompts), for the compute table;
- ``curate/samples/<cache>.jsonl.gz`` and ``curate/samples.json``: a curation's sampling caches (`SAMPLED`: the
  student's rollouts, RISE's episodes, a teacher's replies), finished or not, with the curation's key
  (`keep_samples`). Sampling is the long part of an ``after`` arm's curation (hours on a CPU), and the data it
  trains on is made from them in seconds: on the next machine the curation runs again with the same key, finds its
  samples (`restore_samples`), and generates only what they lack.

and ``plan.json``: the recipe, the command, each arm's steps and rows, every run, the benchmarks' parts, the header
of the tables last made from these runs, and the primary comparison as declared before the first run (kept
unchanged once a run is kept, so that a later edit of ``ablate.primary`` shows as such). No weights, checkpoints,
caches or curated pools (but the samples above): an ablation of a dozen runs on a few hundred problems is a few hundred
KB, and each seed's samples about as much again. Files are written
atomically and byte for byte the same when their content is (gzip without a timestamp), so a rerun that changes
nothing changes nothing in git.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.records import DataError, write_bytes_atomic, write_json
from limo.ablation.markers import ROOT, Content, digest, read_marker, remove

PLAN = "plan.json"
SAMPLE_FIELDS = ("problem_id", "sample_index", "part", "correct", "status", "extracted", "response")
BY_FIELDS = ("level", "subject")  # the sample fields the tables break down by (`limo.ablation.results.load_run`)
TURN_FIELDS = ("correct", "extracted", "status", "response")
CURATED = ("prompts.jsonl", "messages.jsonl", "pairs.jsonl")
SAMPLED = ("rollouts", "rise", "teacher")  # a curation's generation caches: curate/<folder>/*.jsonl
SAMPLES = "samples"  # where they are kept: curate/samples/<folder>/<file>.gz, curate/samples.json
TRAINED = "/train/model"  # an input that is a run's trained model (`limo.ablation.markers.trained_model`)
ORIGIN = "samples_origin.json"  # beside restored samples of another key (`Store.restore_samples`)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of ``path``, or of ``path`` + ``.gz`` when only the compressed copy is there (a kept run).

    Raises:
        DataError: Neither is there, or a line is not JSON (the file and line named).
    """
    if path.is_file():
        opened: Any = path.open(encoding="utf-8")
    elif path.with_name(path.name + ".gz").is_file():
        path = path.with_name(path.name + ".gz")
        opened = gzip.open(path, "rt", encoding="utf-8")
    else:
        raise DataError(f"{path}: no such file")
    rows = []
    with opened as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DataError(f"{path}: line {number}: not JSON ({err.msg})") from err
    return rows


def write_rows_gz(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """JSONL, gzip-compressed without a name or timestamp in its header (the same rows give the same bytes)."""
    write_gz(path, "".join(json.dumps(dict(r), ensure_ascii=False, sort_keys=True) + "\n" for r in rows))


def write_gz(path: Path, text: str) -> None:
    """``text`` gzip-compressed without a name or timestamp in its header, atomically."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as handle:
        handle.write(text.encode("utf-8"))
    write_bytes_atomic(path, buffer.getvalue())


def slim_sample(row: Mapping[str, Any], part_of: Mapping[str, str]) -> dict[str, Any]:
    kept = {k: row.get(k) for k in SAMPLE_FIELDS if k != "part"}
    kept["part"] = part_of.get(str(row.get("problem_id")))
    kept.update({k: row[k] for k in BY_FIELDS if k in row})
    return kept


def slim_episode(row: Mapping[str, Any]) -> dict[str, Any]:
    turns = [{k: t.get(k) for k in TURN_FIELDS if k in t} for t in row.get("turns") or []]
    return {"problem_id": row.get("problem_id"), "turns": turns}


class Store:
    """One ablation's kept runs (see the module docstring).

    Args:
        root: ``results/<name>/``.
        ablation: The ablation's working folder (``<output_dir>/ablate``), whose run folders it mirrors.
    """

    def __init__(self, root: Path, ablation: Path) -> None:
        self.root = root
        self.ablation = ablation
        self.part_of: dict[str, dict[str, str]] | None = None

    def parts(self) -> dict[str, dict[str, str]]:
        """Benchmark -> problem id -> its part, from the plan (`limo.ablation.study` writes it before the runs)."""
        if self.part_of is None:
            parts = (self.read_plan() or {}).get("parts") or {}
            self.part_of = {b: {i: p for p, ids in ps.items() for i in ids} for b, ps in parts.items()}
        return self.part_of

    def folder(self, run_folder: str | Path) -> Path:
        """Where a run folder of the ablation is kept (the same path under the store)."""
        return self.root / Path(run_folder).relative_to(self.ablation)

    def marker(self, stage: str, run_folder: str | Path) -> dict[str, Any] | None:
        return read_marker(self.folder(run_folder) / ".ablate" / f"{stage}.json")

    def holds(self, stage: str, run_folder: str | Path, benchmarks: Sequence[str] = ()) -> bool:
        """Whether a finished step is kept (its ``done`` marker, and an evaluation's results for ``benchmarks``)."""
        marker = self.marker(stage, run_folder)
        if marker is None or marker.get("status") != "done":
            return False
        where = self.folder(run_folder)
        return all((where / "eval" / b / "summary.json").is_file() for b in benchmarks)

    def done(self, stage: str, run_folder: str | Path, now: Content, benchmarks: Sequence[str] = ()) -> bool:
        """Whether the step is kept here with the key (and an evaluation's benchmark specs) it has now."""
        if not self.holds(stage, run_folder, benchmarks):
            return False
        marker = self.marker(stage, run_folder) or {}
        specs = marker.get("benchmarks") or {}
        return marker.get("key") == now.key and all(specs.get(b) == now.benchmarks.get(b) for b in benchmarks)

    def keep(self, stage: str, run_folder: str | Path, parts: Mapping[str, Mapping[str, str]]) -> None:
        """Copy a finished step's table inputs from ``run_folder`` (its marker last, so a kill leaves no marker
        for a half-copied step). ``parts``: benchmark -> problem id -> its part, written into each sample row."""
        source, target = Path(run_folder), self.folder(run_folder)
        marker = read_marker(source / ".ablate" / f"{stage}.json")
        if marker is None or marker.get("status") != "done":
            return
        if stage == "train":
            for name in ("log_history.json", "config.yaml"):
                copy_file(source / "train" / name, target / "train" / name)
        elif stage == "evaluate":
            for bench in marker.get("benchmarks") or {}:
                self.keep_evaluation(source / "eval" / bench, target / "eval" / bench, parts.get(bench, {}))
        elif stage == "curate":
            counts = {n: count_rows(source / "curate" / n) for n in CURATED if (source / "curate" / n).is_file()}
            write_json(target / "curate" / "rows.json", counts)
            self.keep_samples(source)
        write_json(target / ".ablate" / f"{stage}.json", marker)

    def keep_evaluation(self, source: Path, target: Path, part_of: Mapping[str, str]) -> None:
        if not (source / "summary.json").is_file():
            return
        rows = read_rows(source / "samples.jsonl")
        write_rows_gz(target / "samples.jsonl.gz", (slim_sample(r, part_of) for r in rows if first_sample(r)))
        copy_file(source / "summary.json", target / "summary.json")
        for variant in sorted(source.glob("multiturn_*/summary.json")):
            episodes = read_rows(variant.parent / "episodes.jsonl")
            write_rows_gz(target / variant.parent.name / "episodes.jsonl.gz", map(slim_episode, episodes))
            copy_file(variant, target / variant.parent.name / "summary.json")

    def keep_samples(self, curation: str | Path) -> int:
        """Copy a curation's sampling caches (finished or cut: every whole line) with its marker's key, config digest
        and inputs (``done`` or ``started``); returns the rows kept. Samples kept under another key are replaced
        (that key's curation is not the one to go on with); under the same key a file is replaced only by one with
        more rows, so a machine that restored nothing does not shrink what another made. Where the rows came from
        samples of another key (`restore_samples`), ``restored_from`` says so."""
        source, target = Path(curation) / "curate", self.folder(curation) / "curate"
        marker = read_marker(Path(curation) / ".ablate" / "curate.json") or {}
        caches = sorted(p for d in SAMPLED for p in source.glob(f"{d}/*.jsonl"))
        files = {str(p.relative_to(source)): lines for p in caches if (lines := whole_lines(p))}
        if not files or not marker.get("key"):
            return 0
        record = read_marker(target / f"{SAMPLES}.json") or {}
        same = record.get("key") == marker["key"]
        kept = dict(record.get("files") or {}) if same else {}
        if not same:
            remove([target / SAMPLES])
        for name, lines in files.items():
            if len(lines) > int(kept.get(name, 0)):
                write_gz(target / SAMPLES / f"{name}.gz", "".join(lines))
                kept[name] = len(lines)
        origin = read_marker(source / ORIGIN) or (record.get("restored_from") if same else None)
        write_json(
            target / f"{SAMPLES}.json",
            {
                "key": marker["key"],
                "config": digest(marker.get("config")),
                "inputs": marker.get("inputs") or {},
                "files": dict(sorted(kept.items())),
                **({"restored_from": origin} if origin else {}),
            },
        )
        return sum(kept.values())

    def restore_samples(self, curation: str | Path, now: Content) -> tuple[int, str | None]:
        """Put a curation's kept samples (`keep_samples`) back where it caches them, where the file here has fewer
        rows. Returns (rows restored, what differs when it is not the key).

        Kept under the curation's key of now, they are its own. Kept under the same config with the same inputs
        read, where only trained models of the ablation's runs have other checksums (an ``after`` arm's upstream
        model retrained on another machine: its weights differ in rounding and its model card in timings), they are
        restored too, and the difference is returned to be said, and written beside them (`ORIGIN`, carried into
        the kept record): the samples then come from a model trained the same way, not from these bytes. Another
        config, or other data: nothing."""
        source, target = self.folder(curation) / "curate", Path(curation) / "curate"
        record = read_marker(source / f"{SAMPLES}.json")
        if not record:
            return 0, None
        differs = None
        if record.get("key") != now.key:
            was = record.get("inputs") or {}
            if record.get("config") != digest(now.config) or set(was) != set(now.inputs):
                return 0, "not used: they were made with other settings (the curation samples again)"
            changed_inputs = sorted(k for k in was if was[k] != now.inputs[k])
            if not all(k.startswith(f"{ROOT}/") and k.endswith(TRAINED) for k in changed_inputs):
                return 0, "not used: they were made from other data (the curation samples again)"
            changed = ", ".join(changed_inputs)
            differs = (
                f"used, with the same settings, though {changed} changed since they were made (another checksum): "
                "they come from a model made the same way, not from these bytes"
            )
        restored = 0
        for name, rows in (record.get("files") or {}).items():
            here = target / name
            if here.is_file() and len(whole_lines(here)) >= int(rows):
                continue
            with gzip.open(source / SAMPLES / f"{name}.gz", "rt", encoding="utf-8") as handle:
                write_bytes_atomic(here, handle.read().encode("utf-8"))
            restored += int(rows)
        if not (differs and restored):
            return restored, None
        origin = record.get("restored_from") or {"key": record.get("key"), "inputs": record.get("inputs")}
        write_json(target / ORIGIN, origin)
        return restored, differs

    def rows(self, run_folder: str | Path) -> dict[str, int]:
        """An ``after`` arm's curated row counts at a run, as kept (`keep`)."""
        path = self.folder(run_folder) / "curate" / "rows.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def read_plan(self) -> dict[str, Any] | None:
        return read_marker(self.root / PLAN)

    def write_plan(self, plan: Mapping[str, Any]) -> None:
        write_json(self.root / PLAN, dict(plan))

    def any_run_kept(self) -> bool:
        return any(self.root.glob("**/.ablate/*.json"))


def first_sample(row: Mapping[str, Any]) -> bool:
    return int(row.get("sample_index") or 0) == 0


def whole_lines(path: Path) -> list[str]:
    """A JSONL file's whole lines, each with its newline: a kill can leave the last one torn (no newline, or not
    JSON). Split at "\n" only, as `eval.records.read_jsonl` reads: a reply may hold U+2028, which splitlines breaks."""
    text = path.read_text(encoding="utf-8")
    lines = [line + "\n" for line in text[: text.rfind("\n") + 1].split("\n")[:-1] if line.strip()]
    if lines:
        try:
            json.loads(lines[-1])
        except ValueError:
            lines.pop()
    return lines


def count_rows(path: Path) -> int:
    """A JSONL file's rows (blank lines not counted)."""
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def copy_file(source: Path, target: Path) -> None:
    """``source`` to ``target`` atomically, when it is there (untouched when the bytes are the same)."""
    if not source.is_file():
        return
    data = source.read_bytes()
    if target.is_file() and target.read_bytes() == data:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, data)
