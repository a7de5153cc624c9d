"""What made a step's output: its marker's content key, so that a rerun whose settings or inputs changed redoes the
step (and says why) instead of reusing output made another way.

A step's marker ``<folder>/.ablate/<stage>.json`` (`FORMAT` 2) holds:

- ``config``: the step's config composed as its entry composes it (`limo.cli.compose.compose` with the step's
  arguments: the recipe, what ablate sets, and every ``key=value`` the user typed that the entry gets), flattened to
  dotted keys. The sections the entry never reads are left out (`NOT_READ`: another entry's section, ``ablate``,
  ``debug``), so ``evaluate.backend=`` reruns the evaluations and not the trainings. Paths under the ablation's folder
  are written ``<ablate>/...``, so a moved output_dir keeps its markers.
- ``inputs``: the sha256 of each file the step reads that its config names only by path (`step_inputs`): a
  training's data; the model a training starts from and the model an evaluation evaluates (every file of a model
  folder: a retrained upstream run changes them); a curation's pool file, and the trained model an ``after`` arm's
  curation samples.
- ``key``: the sha256 of ``config`` and ``inputs`` together; equal keys mean the step would do the same again. An
  input recorded but not on this machine counts as recorded (`checkable`): a copy of the runs without their weights
  regenerates the tables without running anything.
- ``benchmarks`` (an evaluation): each benchmark's spec, hashed apart from the key, so that a benchmark added later is
  evaluated alone and one whose spec changed is evaluated again alone.
- ``status``: ``started`` (written before the entry runs: a killed step's leftovers are known to be this key's, so
  the entry may resume them) or ``done`` (after it exits 0); ``command``: the step's arguments, and ``machine``: where
  it ran (`eval.reports.report.machine`), for a reader: neither is part of the key.

Hashing a model folder of hundreds of MB takes seconds, so each file's sha256 is kept in ``<ablate>/checksums.jsonl``
keyed by (path, size, mtime_ns) and computed once (`Checksums`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from eval.records import sha256_file
from eval.reports.report import machine
from limo.cli.compose import compose
from limo.cli.overrides import EVALUATE_RUNTIME, forced_runtime
from limo.config.search_path import split_folder_flags, user_config_dirs

FORMAT = 2
ROOT = "<ablate>"  # the ablation's folder, in a marker's paths
CHECKSUMS = "checksums.jsonl"
# What each entry never reads (its config is the recipe composed whole): leaving these out keeps a setting of one
# entry from rerunning the others' steps. Evaluations' benchmark specs are hashed one by one (``benchmarks``).
NOT_READ = {
    "curate": ("train", "evaluate", "ablate", "debug", "benchmarks"),
    "train": ("curate", "evaluate", "ablate", "debug", "benchmark_specs", "benchmark_groups"),
    "evaluate": ("curate", "train", "ablate", "debug", "benchmark_specs", "benchmarks"),
}
SHOWN = 3  # changed keys a reason line names


class Step(Protocol):
    """What a marker reads of a step (`limo.ablation.steps.Step`, whose module imports this one)."""

    @property
    def stage(self) -> str: ...
    @property
    def folder(self) -> str: ...
    @property
    def own(self) -> tuple[str, ...]: ...
    @property
    def extra(self) -> tuple[str, ...]: ...
    @property
    def inputs(self) -> tuple[str, ...]: ...
    @property
    def benchmarks(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Content:
    """What a step's output depends on (see the module docstring)."""

    config: dict[str, Any]
    inputs: dict[str, str]
    benchmarks: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return digest({"config": self.config, "inputs": self.inputs})

    def marker(self, step: Step, status: str, benchmarks: Mapping[str, str]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "status": status,
            "key": self.key,
            "inputs": self.inputs,
            "benchmarks": dict(benchmarks),
            "config": self.config,
            "command": [*step.own, *step.extra],
            "machine": machine(),  # where the step ran (a table's runs may come from several machines)
        }


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class Checksums:
    """Files' sha256, computed once per (path, size, mtime_ns) and kept in a JSONL file (lines from processes side
    by side are single appends; an unreadable line is skipped, so at worst a file is hashed again)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: dict[tuple[str, int, int], str] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.known[(row["path"], row["size"], row["mtime_ns"])] = row["sha256"]
                except (ValueError, KeyError, TypeError):
                    continue

    def file(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in self.known:
            self.known[key] = sha256_file(path)
            row = {"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": self.known[key]}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        return self.known[key]

    def of(self, path: Path) -> str:
        """A file's sha256, or a folder's: of its files' names and checksums (hidden ones left out)."""
        if path.is_file():
            return self.file(path)
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.parts))
        return digest([[str(p.relative_to(path)), self.file(p)] for p in files])


def step_config(step: Step) -> DictConfig:
    """The step's config as its entry composes it (the evaluation's run-time keys forced, as limo.evaluate does)."""
    flags, rest = split_folder_flags([*step.own, *step.extra])
    recipe = next(a.split("=", 1)[1] for a in reversed(rest) if a.split("=", 1)[0] == "recipe")
    overrides = [a for a in rest if a.split("=", 1)[0] != "recipe"] + [f"output_dir={step.folder}"]
    if step.stage == "evaluate":
        overrides = forced_runtime(overrides, EVALUATE_RUNTIME)
    return compose(recipe, overrides, user_config_dirs([*flags, *rest]))


def flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{dotted key: value}`` (lists kept whole)."""
    if not isinstance(node, Mapping) or (not node and prefix):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def relative(value: Any, root: str) -> Any:
    """``value`` with the ablation's folder written `ROOT` in every string (in lists too)."""
    if isinstance(value, str):
        return value.replace(root, ROOT)
    if isinstance(value, list):
        return [relative(v, root) for v in value]
    if isinstance(value, dict):
        return {k: relative(v, root) for k, v in value.items()}
    return value


def local(path: Any, cwd: str) -> tuple[str, Path] | None:
    """``path`` as (what the config says, the file or folder on this machine), relative paths from the entries'
    working directory; None for what is not on this machine (a hub id, a ``pkg:`` model, ``champ``)."""
    if not isinstance(path, str) or not path or ":" in path.split("/", 1)[0]:
        return None
    found = Path(cwd, path).expanduser()
    return (path, found) if found.exists() else None


def trained_model(found: tuple[str, Path] | None) -> tuple[str, Path] | None:
    """The model of a run folder (``<run>/train/model``, as limo.train reads ``model.path=<run>``), else None."""
    if found is None or (found[1] / "config.json").exists():
        return None
    model = found[1] / "train" / "model"
    return (f"{found[0].rstrip('/')}/train/model", model) if (model / "config.json").exists() else None


def model_files(found: tuple[str, Path] | None) -> tuple[str, Path] | None:
    """The model at a path: a model folder or file as it is, a run folder's trained model."""
    return trained_model(found) or found


def step_inputs(step: Step, cfg: DictConfig, cwd: str) -> list[tuple[str, Path]]:
    """The files the step reads that its config names only by path (see the module docstring), as (name, path)."""
    model = str(cfg.model.path) if cfg.get("model") is not None else None
    found = [local(x, cwd) for x in step.inputs]
    if step.stage == "curate":  # its student is keyed by its path; an after arm's trained start by its weights
        found += [local(OmegaConf.select(cfg, "curate.stages.ingest.source"), cwd), trained_model(local(model, cwd))]
    elif step.stage == "train":
        found.append(model_files(local(model, cwd)))
    else:
        given = any(a.lstrip("+").startswith("model.path=") for a in step.extra)
        chosen = model if given else (OmegaConf.select(cfg, "evaluate.model_path") or model)
        found.append(model_files(local(chosen, cwd)))
    return list(dict.fromkeys(f for f in found if f is not None))


def step_content(step: Step, root: str, cwd: str, sums: Checksums, cfg: DictConfig | None = None) -> Content:
    """The step's `Content` now: its composed config (``cfg``, composed when not given), its inputs' checksums, its
    benchmarks' specs."""
    cfg = step_config(step) if cfg is None else cfg
    tree = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(tree, dict)
    kept = {k: v for k, v in tree.items() if k not in NOT_READ[step.stage]}
    config = {k: relative(v, root) for k, v in flat(kept).items()}
    specs = tree.get("benchmark_specs") or {}
    benchmarks = {b: digest(relative(specs.get(b), root)) for b in step.benchmarks}
    return Content(config, input_sums(step, cfg, root, cwd, sums), benchmarks)


def input_sums(step: Step, cfg: DictConfig, root: str, cwd: str, sums: Checksums) -> dict[str, str]:
    return {relative(name, root): sums.of(path) for name, path in step_inputs(step, cfg, cwd)}


MISSING = object()


def show(value: Any) -> str:
    text = "(unset)" if value is MISSING else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def what_changed(then: Mapping[str, Any], now: Content) -> str:
    """The keys and inputs that differ between a marker and the step now, on one line (the first `SHOWN` keys)."""
    old, new = then.get("config") or {}, now.config
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, MISSING) != new.get(k, MISSING))
    parts = [f"{k}: {show(old.get(k, MISSING))} -> {show(new.get(k, MISSING))}" for k in keys[:SHOWN]]
    parts += [f"and {len(keys) - SHOWN} more keys"] if len(keys) > SHOWN else []
    was, now_inputs = then.get("inputs") or {}, now.inputs
    for path in sorted(was.keys() | now_inputs.keys()):
        if path not in was:
            parts.append(f"{path} is read now")
        elif path not in now_inputs:
            parts.append(f"{path} is no longer read")
        elif was[path] != now_inputs[path]:
            parts.append(f"{path} changed")
    return "; ".join(parts) or "its marker's key differs"


def legacy_matches(step: Step, then: Mapping[str, Any]) -> bool:
    """Whether a marker from before content keys (the arguments ablate chose, its inputs' checksums) matches the
    step: what such a marker could vouch for. Paths under an ablation's folder compare from that folder on (the
    marker may come from another machine), and an input not on this machine cannot be checked, so it is not."""
    inputs = then.get("inputs") or {}
    same_inputs = all(sha256_file(p) == s for p, s in inputs.items() if Path(p).is_file())
    return [portable(a) for a in then.get("own") or []] == [portable(a) for a in step.own] and same_inputs


def portable(argument: str) -> str:
    """``key=<path>/ablate/<rest>`` as ``key=<ablate>/<rest>``."""
    return re.sub(r"=[^=]*?/ablate/", f"={ROOT}/", argument, count=1)


def checkable(now: Content, then: Mapping[str, Any] | None) -> Content:
    """``now`` with each input the marker recorded that is not on this machine taken as recorded: it cannot be
    checked, and a step that needs it could not run again anyway (a report-only rerun on a copy without the models'
    weights reuses every step). An input read now that the marker lacks still counts as a change."""
    recorded = (then or {}).get("inputs") or {}
    gone = {p: s for p, s in recorded.items() if p not in now.inputs}
    return Content(now.config, {**gone, **now.inputs}, now.benchmarks) if gone else now


def read_marker(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return loaded if isinstance(loaded, dict) else None


def remove(paths: Iterable[Path]) -> None:
    """Delete a step's earlier output (a file or a folder tree)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            os.unlink(path)
