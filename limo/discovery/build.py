"""Config -> plain objects for the discovery loop: the proposer backend, the pairs, the candidate runner.

Library modules of `limo.discovery` never see a config object; these builders read the composed recipe
(``discover:``, ``train:``, ``curate:``, ``model:``) and hand them plain values.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from eval.backends.base import Backend
from eval.backends.generation import CachedGenerator, cached_generator
from eval.backends.replay import ReplayBackend
from eval.benchmarks.loader import load_benchmark
from eval.options import OptionsError
from eval.records import DataError, read_jsonl
from limo.config.sections import build_benchmark_specs, resolve_path
from limo.discovery.data import PairSplits, write_benchmark_halves, write_splits
from limo.discovery.loop import CandidateRunner, request_id
from limo.discovery.options import DiscoverOptions, DiscoverPaths, ProposerOptions
from limo.discovery.proposals import PromptTexts
from limo.discovery.sandbox import Limits, python_paths
from limo.models.tiny import ensure_model
from limo.setup.curate import build_curation, check_selected
from limo.training.options import TrainRun

log = logging.getLogger("limo.discover")
GIB = 1 << 30


def build_prompt_texts(options: DiscoverOptions) -> PromptTexts:
    p = options.prompt
    return PromptTexts(p.system, p.first_user, p.feedback_valid, p.feedback_invalid, p.history, p.shown_best)


def build_proposer(options: ProposerOptions, paths: DiscoverPaths, seed: int) -> CachedGenerator:
    """The proposer behind its reply cache (`eval.backends.generation`): a resumed loop never asks twice for a
    generation.

    ``replay`` with a ``path`` serves that file's rows in order (row i answers generation i).
    """
    replay = (lambda: replay_proposer(str(options.path))) if options.path else None
    return cached_generator(options, paths.root, "proposer", {"seed": seed}, replay_default=replay)


def generation_count(options: DiscoverOptions, proposer: CachedGenerator) -> int:
    """``discover.generations``, or for a replay proposer left at null, the number of recorded proposals.

    Raises:
        OptionsError: ``generations`` is null for a proposer that is not ``replay``.
    """
    if options.generations is not None:
        return options.generations
    rows = getattr(proposer.backend, "rows", None)
    if options.proposer.backend == "replay" and rows is not None:
        return len(rows)
    raise OptionsError(
        f"discover.generations: null is only for a replay proposer; set a number for {options.proposer.backend}"
    )


def replay_proposer(path: str) -> Backend:
    """A replay backend answering request ``proposal-<i>`` with row ``i`` (1-based) of ``path``.

    Raises:
        DataError: A row without ``text`` (file and row named). A ``text`` that is a JSON object rather
            than a string is taken as that object's JSON text.
    """
    rows = {}
    for number, row in enumerate(read_jsonl(path), start=1):
        text = row.get("text") if isinstance(row, dict) else None
        if isinstance(text, (dict, list)):
            text = json.dumps(text)
        if not isinstance(text, str):
            raise DataError(f"{path}: row {number}: field 'text' must be the proposer's reply as a string")
        rows[request_id(number)] = {"text": text}
    return ReplayBackend(rows)


def prepare_pairs(cfg: DictConfig, options: DiscoverOptions, paths: DiscoverPaths) -> PairSplits:
    """Split the curated pairs (curating them first, with the recipe's ``curate:``, when asked and missing)."""
    fitness = options.fitness
    source = fitness.pairs or f"{cfg.output_dir}/curate/pairs.jsonl"
    if not Path(source).exists():
        if fitness.pairs is not None or not fitness.curate_if_missing:
            raise DataError(f"{source}: no preference pairs (run `python -m limo.curate recipe={cfg.name}` first)")
        curate_pairs(cfg)
    caps = {"train": fitness.max_train_pairs, "selection": fitness.max_eval_pairs, "test": fitness.max_eval_pairs}
    return write_splits(
        source,
        paths.data,
        seed=int(cfg.seed),
        selection=fitness.selection_fraction,
        test=fitness.test_fraction,
        caps=caps,
        max_pair_chars=fitness.max_pair_chars,
    )


def curate_pairs(cfg: DictConfig) -> None:
    """Curate preference pairs with the recipe's ``curate:`` section through the registry's ``pairs`` method.

    Raises:
        OptionsError: The recipe's curation method is not ``pairs``.
        EmptyResultError: Curation produced no pair.
    """
    curation = build_curation(cfg)
    if curation.method.name != "pairs":
        raise OptionsError(
            f"curate.method: discover needs preference pairs (method 'pairs', not "
            f"{curation.method.name!r}), or discover.fitness.pairs=<file>"
        )
    log.info("[discover] no pairs yet: curating with the recipe's curate section")
    summary = curation.run()
    check_selected(summary)
    log.info("%s", summary.line())


def prepare_benchmark(cfg: DictConfig, options: DiscoverOptions, paths: DiscoverPaths) -> dict[str, str] | None:
    """For ``benchmark_accuracy``: the benchmark's selection / test halves on disk (None for other metrics)."""
    fitness = options.fitness
    if fitness.metric != "benchmark_accuracy":
        return None
    specs = build_benchmark_specs(cfg)
    if fitness.benchmark not in specs:
        raise OptionsError(
            f"discover.fitness.benchmark: unknown benchmark {fitness.benchmark!r} (known: {', '.join(sorted(specs))})"
        )
    benchmark = load_benchmark(specs[str(fitness.benchmark)], data_dir=cfg.get("data_dir"))
    return write_benchmark_halves(benchmark.problems, paths.data, seed=int(cfg.seed), limit=fitness.benchmark_limit)


def build_training(cfg: DictConfig) -> TrainRun:
    """The recipe's training as the ``dpo`` trainer describes it (`limo.setup.train.build_train_run`).

    Raises:
        OptionsError: It is not ``dpo`` on one process without LoRA or DeepSpeed, or it names a discovered loss
            (the loop supplies the losses).
    """
    from limo.setup.train import build_train_run  # deferred: imports TRL and torch (the trainer registry)
    from limo.training.trainers import DPO, TRAINERS  # deferred: as above

    run = build_train_run(cfg)
    if (
        TRAINERS[run.trainer] is not DPO
        or run.options.lora is not None
        or run.deepspeed
        or run.options.discovered_loss
    ):
        raise OptionsError(
            "train: discover trains candidates with train.trainer=dpo on one process, without LoRA, DeepSpeed or "
            "train.discovered_loss; adjust the recipe's train section"
        )
    return run


def build_job(run: TrainRun, options: DiscoverOptions, splits: PairSplits) -> dict[str, Any]:
    """The fixed part of every candidate's job: model, data, DPO arguments (``beta`` included), seeds.

    The ``dpo`` entry's argument builder (`limo.training.trainers.DPO`, one process) decides the training
    arguments, so a candidate trains exactly as ``limo.train`` would with that recipe.
    """
    from limo.training.trainers import DPO  # deferred: imports TRL and torch

    _, args = DPO.build_args(run, 1)
    model = dict(run.model)
    template = resolve_path(model.get("chat_template"))
    model["chat_template"] = str(Path(template).resolve()) if template else None  # workers start in an empty folder
    return {
        "beta": float(args.get("beta", 0.1)),
        "seed": run.seed,
        "metric": options.fitness.metric,
        "validation_trials": options.fitness.validation_trials,
        "fitness": True,
        "model_path": str(Path(ensure_model(run.model)).resolve()),
        "model": model,
        "system_prompt": run.options.system_prompt,
        "dpo_args": args,
        "train_pairs": str(Path(splits.paths["train"]).resolve()),
        "eval_pairs": {name: str(Path(splits.paths[name]).resolve()) for name in ("selection", "test")},
        "benchmark": None,
        "generation": {
            "max_new_tokens": options.fitness.max_new_tokens,
            "batch_size": options.fitness.generation_batch_size,
        },
    }


def build_runner(
    paths: DiscoverPaths, job: Mapping[str, Any], options: DiscoverOptions, confinement: str
) -> CandidateRunner:
    """Limits, read-only paths and the cleared environment of every candidate's worker."""
    sandbox = options.sandbox
    limits = Limits(
        wall_seconds=sandbox.wall_seconds,
        cpu_seconds=int(sandbox.cpu_seconds),
        memory_bytes=int(sandbox.memory_gb * GIB),
    )
    read_only = [job["model_path"], str(paths.data.resolve()), *python_paths()]
    if job["model"].get("chat_template"):
        read_only.append(str(job["model"]["chat_template"]))
    return CandidateRunner(paths, job, limits, confinement, tuple(read_only), worker_environment())


def worker_environment() -> dict[str, str]:
    """Everything a worker's environment holds: offline, single-threaded, no inherited secrets."""
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TQDM_DISABLE": "1",
        "DS_ACCELERATOR": "cpu",
    }


def run_context(
    cfg: DictConfig,
    options: DiscoverOptions,
    job: Mapping[str, Any],
    splits: PairSplits,
    confinement: str,
    stopped: str | None,
) -> dict[str, Any]:
    """Facts the report states about the run."""
    proposer = options.proposer
    source = proposer.path if proposer.backend == "replay" else proposer.model or proposer.backend_args.get("model")
    args = job["dpo_args"]
    training = (
        f"TRL DPOTrainer with the candidate loss, beta {job['beta']}, lr {args.get('learning_rate')}, "
        f"{args.get('max_steps')} steps x {args.get('per_device_train_batch_size')} pairs "
        f"(x{args.get('gradient_accumulation_steps', 1)} accumulation) on {splits.summary['pairs']['train']} "
        f"training pairs; model {cfg.model.path}"
    )
    archive = Path(str(cfg.output_dir)) / "discover" / "archive.jsonl"
    command = (
        f"python -m limo.train recipe=discovered train.discovered_loss.archive={archive} "
        "train.discovered_loss.name=best output_dir=<run>  # or name=<name> / <name>@<generation>"
    )
    pairs = splits.summary["pairs"]
    if job["benchmark"]:
        counts = {
            name: sum(1 for line in Path(path).read_text(encoding="utf-8").split("\n") if line.strip())
            for name, path in job["benchmark"].items()
        }
        scored_on = (
            f"the selection half of benchmark {options.fitness.benchmark} ({counts['selection']} "
            f"problems); the test half ({counts['test']} problems)"
        )
    else:
        scored_on = f"the selection split ({pairs['selection']} pairs); the test split ({pairs['test']} pairs)"
    return {
        "name": str(cfg.name),
        "proposer": f"{proposer.backend} ({source})",
        "confinement": confinement,
        "metric": job["metric"],
        "scored_on": scored_on,
        "training": training,
        "stopped": stopped,
        "train_command": command,
    }
