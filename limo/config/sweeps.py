"""Hydra sweeps that do not clobber each other: under ``-m`` (multirun) each job writes into its own run folder.

``python -m limo.train -m recipe=demo train.args.learning_rate=1e-4,2e-4`` runs two jobs. Hydra gives each
a folder, ``<output_dir>/multirun/<its overrides>`` (``hydra.sweep`` in recipes/config.yaml: named from the
job's overrides by `job_folder`, as lightning-hydra-template names them, with no timestamp so that every rank
and a later ``limo.evaluate -m`` with the same overrides agree), and `job_config` makes that folder the job's
``output_dir``: its ``train/``, ``eval/`` and ``curate/`` land there. What a job reads from an earlier stage
of the same run (the curated set a training sweep shares) is looked up in its own folder first, then in
the sweep's run root, ``run_root`` (`input_path`). ``mode=compare runs=[<sweep folder>]`` compares the jobs.
Single runs are unchanged: ``output_dir`` as the recipe or command line sets it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

SWEEP_FOLDER = "multirun"
MAX_FOLDER = 200  # of the 255 bytes a file name may have
NEXT_OVERRIDE = re.compile(r",(?=[+~]*[A-Za-z_][\w.@/-]*=)")  # the comma before the next ``key=value``


def job_folder(overrides: str, number: int | str) -> str:
    """A sweep job's folder name: its overrides as one path component (``/`` in a path value becomes ``_``;
    a long name is cut and keeps a hash of the whole), or ``job<number>`` when it has none."""
    name = re.sub(r"[/\\:]+", "_", as_written(str(overrides))).strip("._") or f"job{number}"
    if len(name) <= MAX_FOLDER:
        return name
    return f"{name[: MAX_FOLDER - 13]}-{hashlib.sha256(name.encode()).hexdigest()[:12]}"


def as_written(overrides: str) -> str:
    """Hydra's ``override_dirname`` without what `limo.cli.overrides` adds: the ``++`` that makes a key settable and a
    whole map's ``key=null`` line (the last line of a key wins, as in Hydra); sorted again, as Hydra sorts."""
    lines: dict[str, str] = {}
    for line in NEXT_OVERRIDE.split(overrides) if overrides else []:
        bare = line.lstrip("+")
        lines[bare.split("=", 1)[0]] = bare
    return ",".join(sorted(lines.values()))


# recipes/config.yaml names sweep folders with it; registered on import, before any entry point composes.
OmegaConf.register_new_resolver("job_folder", job_folder, replace=True)


def job_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` with ``output_dir`` set to the job's own folder under a multirun (unchanged otherwise)."""
    with open_dict(cfg):
        cfg.run_root = str(cfg.output_dir)
        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            cfg.output_dir = str(HydraConfig.get().runtime.output_dir)
    return cfg


def input_path(cfg: DictConfig, relative: str) -> str:
    """``<output_dir>/<relative>`` when it exists, else the sweep's ``<run_root>/<relative>`` when that does."""
    own = Path(str(cfg.output_dir)) / relative
    shared = Path(str(cfg.get("run_root") or cfg.output_dir)) / relative
    return str(shared if not own.exists() and shared.exists() else own)


def sweep_jobs(folder: str | Path) -> list[str]:
    """The job folders of a sweep (``<run>/multirun`` or one of its parents' ``multirun``), sorted by name."""
    root = Path(folder)
    if (root / SWEEP_FOLDER).is_dir():
        root = root / SWEEP_FOLDER
    return sorted(str(p) for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
