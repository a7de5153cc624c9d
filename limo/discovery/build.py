"""Config -> plain objects for the discovery loop: the proposer backend, the pairs, the candidate runner.

Library modules of `limo.discovery` never see a config object; these builders read the composed recipe
(``discover:``, ``train:``, ``curate:``, ``model:``) and hand them plain values.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from eval.records import DataError, read_jsonl
from limo.config import resolve_path
from limo.discovery.data import PairSplits, write_benchmark_halves, write_splits
from limo.discovery.loop import CandidateRunner
from limo.discovery.proposals import PromptTexts
from limo.discovery.sandbox import Limits, python_paths
from limo.discovery.settings import DiscoverPaths, DiscoverSection, ProposerSection

log = logging.getLogger("limo.discover")
GIB = 1 << 30


def build_prompt_texts(section: DiscoverSection) -> PromptTexts:
    p = section.prompt
    return PromptTexts(p.system, p.first_user, p.feedback_valid, p.feedback_invalid, p.history, p.shown_best)


def build_proposer(section: ProposerSection) -> Any:
    """The proposer's generation backend; ``replay`` serves the file's rows in order (row i -> generation i)."""
    if section.backend == "replay":
        if not section.path:
            raise ValueError('discover.proposer.path: a replay proposer needs a file of {"text": ...} rows')
        return replay_proposer(str(resolve_path(section.path)))
    from eval.backends.registry import build_backend

    options = dict(section.backend_args)
    if section.model is not None:  # hf loads a folder; openai / vllm name a served model
        options.setdefault("model_path" if section.backend == "hf" else "model", section.model)
    return build_backend(section.backend, **options)


def generation_count(section: DiscoverSection, proposer: Any) -> int:
    """``discover.generations``, or for a replay proposer left at null, the number of recorded proposals."""
    if section.generations is not None:
        return section.generations
    if section.proposer.backend == "replay":
        return len(proposer.rows)
    raise ValueError(f"discover.generations=null is only for a replay proposer; set a number for "
                     f"{section.proposer.backend}")  # fmt: skip


def replay_proposer(path: str) -> Any:
    """A replay backend answering request ``proposal-<i>`` with row ``i`` (1-based) of ``path``.

    Raises:
        DataError: A row without ``text`` (file and row named). A ``text`` that is a JSON object rather
            than a string is taken as that object's JSON text.
    """
    import json

    from eval.backends.replay import ReplayBackend

    rows = {}
    for number, row in enumerate(read_jsonl(path), start=1):
        text = row.get("text") if isinstance(row, dict) else None
        if isinstance(text, (dict, list)):
            text = json.dumps(text)
        if not isinstance(text, str):
            raise DataError(f"{path}: row {number}: field 'text' must be the proposer's reply as a string")
        rows[f"proposal-{number}"] = {"text": text}
    return ReplayBackend(rows)


def prepare_pairs(cfg: DictConfig, section: DiscoverSection, paths: DiscoverPaths) -> PairSplits:
    """Split the curated pairs (curating them first, with the recipe's ``curate:``, when asked and missing)."""
    fitness = section.fitness
    source = resolve_path(fitness.pairs) or f"{cfg.output_dir}/curate/pairs.jsonl"
    if not Path(source).exists():
        if fitness.pairs is not None or not fitness.curate_if_missing:
            raise DataError(f"{source}: no preference pairs (run `python -m limo.curate recipe={cfg.name}` first)")
        curate_pairs(cfg)
    caps = {"train": fitness.max_train_pairs, "selection": fitness.max_eval_pairs, "test": fitness.max_eval_pairs}
    return write_splits(source, paths.data, seed=int(cfg.seed), selection=fitness.selection_fraction,
                        test=fitness.test_fraction, caps=caps, max_pair_chars=fitness.max_pair_chars)  # fmt: skip


def curate_pairs(cfg: DictConfig) -> None:
    """Curate preference pairs with the recipe's ``curate:`` section (``method: pairs``), as limo.curate would."""
    from limo.learning_from_errors import curate_errors

    if cfg.get("curate") is None or cfg.curate.get("method") != "pairs":
        raise ValueError("discover needs preference pairs: the recipe's curate.method must be 'pairs'")
    log.info("[discover] no pairs yet: curating with the recipe's curate section")
    summary = curate_errors(cfg)
    log.info("[discover] curated %s pairs into %s/curate/", summary.get("pairs"), cfg.output_dir)


def prepare_benchmark(cfg: DictConfig, section: DiscoverSection, paths: DiscoverPaths) -> dict[str, str] | None:
    """For ``benchmark_accuracy``: the benchmark's selection / test halves on disk (None for other metrics)."""
    fitness = section.fitness
    if fitness.metric != "benchmark_accuracy":
        return None
    from eval.benchmarks import load_benchmark
    from limo.config import build_benchmark_specs

    specs = build_benchmark_specs(cfg)
    if fitness.benchmark not in specs:
        raise ValueError(
            f"discover.fitness.benchmark={fitness.benchmark!r}: unknown (known: {', '.join(sorted(specs))})"
        )
    benchmark = load_benchmark(specs[str(fitness.benchmark)], data_dir=cfg.get("data_dir"))
    return write_benchmark_halves(benchmark.problems, paths.data, seed=int(cfg.seed), limit=fitness.benchmark_limit)


def build_job(cfg: DictConfig, section: DiscoverSection, splits: PairSplits, model_path: str) -> dict[str, Any]:
    """The fixed part of every candidate's job: model, data, DPO arguments (``beta`` included), seeds."""
    from limo.training.build import build_run_args
    from limo.training.preference import dpo_args
    from limo.training.section import parse_train_section

    train = parse_train_section(cfg)
    if train.trainer != "dpo" or train.lora is not None or cfg.get("deepspeed"):
        raise ValueError("discover trains candidates with train.trainer=dpo on one process, without LoRA or "
                         "DeepSpeed: adjust the recipe's train section")  # fmt: skip
    _, args = build_run_args(cfg, train, 1, str(Path(str(cfg.output_dir)) / "discover"))
    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model, dict)
    model["chat_template"] = resolve_path(model.get("chat_template"))
    return {
        "beta": float(args.get("beta", 0.1)), "seed": int(cfg.seed), "metric": section.fitness.metric,
        "validation_trials": section.fitness.validation_trials, "fitness": True,
        "model_path": str(Path(model_path).resolve()), "model": model, "system_prompt": train.system_prompt,
        "dpo_args": dpo_args(args), "train_pairs": str(Path(splits.paths["train"]).resolve()),
        "eval_pairs": {name: str(Path(splits.paths[name]).resolve()) for name in ("selection", "test")},
        "benchmark": None,
        "generation": {"max_new_tokens": section.fitness.max_new_tokens,
                       "batch_size": section.fitness.generation_batch_size},
    }  # fmt: skip


def build_runner(
    paths: DiscoverPaths, job: Mapping[str, Any], section: DiscoverSection, confinement: str
) -> CandidateRunner:
    """Limits, read-only paths and the cleared environment of every candidate's worker."""
    sandbox = section.sandbox
    limits = Limits(wall_seconds=sandbox.wall_seconds, cpu_seconds=int(sandbox.cpu_seconds),
                    memory_bytes=int(sandbox.memory_gb * GIB))  # fmt: skip
    read_only = [job["model_path"], str(paths.data.resolve()), *python_paths()]
    if job["model"].get("chat_template"):
        read_only.append(str(job["model"]["chat_template"]))
    return CandidateRunner(paths, job, limits, confinement, tuple(read_only), worker_environment())


def worker_environment() -> dict[str, str]:
    """Everything a worker's environment holds: offline, single-threaded, no inherited secrets."""
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    return {
        "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
        "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1", "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
        "TQDM_DISABLE": "1", "DS_ACCELERATOR": "cpu",
    }  # fmt: skip


def run_context(cfg: DictConfig, section: DiscoverSection, job: Mapping[str, Any], splits: PairSplits,
                confinement: str, stopped: str | None) -> dict[str, Any]:  # fmt: skip
    """Facts the report states about the run."""
    proposer = section.proposer
    source = proposer.path if proposer.backend == "replay" else proposer.model or proposer.backend_args.get("model")
    args = job["dpo_args"]
    training = (f"TRL DPOTrainer with the candidate loss, beta {job['beta']}, lr {args.get('learning_rate')}, "
                f"{args.get('max_steps')} steps x {args.get('per_device_train_batch_size')} pairs "
                f"(x{args.get('gradient_accumulation_steps', 1)} accumulation) on {splits.summary['pairs']['train']} "
                f"training pairs; model {cfg.model.path}")  # fmt: skip
    archive = Path(str(cfg.output_dir)) / "discover" / "archive.jsonl"
    command = (f"python -m limo.train recipe=discovered train.discovered_loss.archive={archive} "
               "train.discovered_loss.name=best output_dir=<run>  # or name=<name> / <name>@<generation>")  # fmt: skip
    pairs = splits.summary["pairs"]
    if job["benchmark"]:
        counts = {
            name: len(Path(path).read_text(encoding="utf-8").splitlines()) for name, path in job["benchmark"].items()
        }
        scored_on = (f"the selection half of benchmark {section.fitness.benchmark} ({counts['selection']} "
                     f"problems); the test half ({counts['test']} problems)")  # fmt: skip
    else:
        scored_on = f"the selection split ({pairs['selection']} pairs); the test split ({pairs['test']} pairs)"
    return {"name": str(cfg.name), "proposer": f"{proposer.backend} ({source})", "confinement": confinement,
            "metric": job["metric"], "scored_on": scored_on, "training": training, "stopped": stopped,
            "train_command": command}  # fmt: skip
