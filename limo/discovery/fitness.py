"""Fitness of a valid loss program: a short DPO run with it, scored on held-out preference pairs.

Runs inside the confined worker. The policy is the recipe's model, trained by TRL's `DPOTrainer` with the
program as its loss (`limo.training.program_loss`) on the training split of curated pairs (correct vs
incorrect chains), every candidate from the same initial weights, seed and data order.

The reference model is the initial policy for every candidate, so its log-probabilities are computed once
per run, by TRL's own precompute in a reference job (`compute_reference`: a confined worker with no
candidate code, ``discover/data/reference/reference.json``, rows by position in each split file), and each
candidate's datasets carry them as TRL's ``ref_chosen_logps`` / ``ref_rejected_logps`` columns: TRL 1.16
recomputes them whatever the dataset holds, so `reusing_reference` skips its precompute for a dataset that
already has them (the one override; results are identical, tests/test_discover_training.py). That removes a
forward pass over every training and held-out pair from each candidate (about a third of its compute) and
puts the reference values in the held-out batches.

Scores, on each held-out split (``selection``: the fitness the proposer sees; ``test``: never shown to the
proposer, reported so that selection on the fitness can be checked): with margin ``m = (policy - reference
log-ratio of chosen) - (the same for rejected)`` per pair, ``preference_accuracy`` is the share of pairs with
``m > 0`` and ``preference_margin`` the mean of ``m`` in nats. These suit a model too small to solve problems
(the CPU demo); they measure what training changed, not raw likelihood, which the tiny model ranks by length.
``benchmark_accuracy`` (a real model, a GPU): the trained model is saved, answers each half of a held-out
benchmark greedily through the ``hf`` backend, and `eval.grading.grader` grades the answers; the saved model is
deleted afterwards.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.backends.base import GenerationRequest, SamplingParams
from eval.grading.grader import grade
from eval.records import read_jsonl, sha256_file, write_json
from eval.run.prompting import build_messages, build_prompt_style
from limo.training.program_loss import program_trainer_class

METRICS = ("preference_accuracy", "preference_margin", "benchmark_accuracy")
REFERENCE_COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


def train_and_score(job: Mapping[str, Any], program: Any, out: Path) -> dict[str, Any]:
    """Train with ``program`` as the loss and score the held-out splits; writes ``log_history.json``.

    Raises:
        TrainingDiverged: A logged training loss is not finite.
    """
    trainer = build_trainer(job, program, out)
    result = trainer.train()
    history = trainer.state.log_history
    write_json(out / "log_history.json", history)
    bad = [row for row in history if "loss" in row and not math.isfinite(float(row["loss"]))]
    if bad or not math.isfinite(result.training_loss):
        step = bad[0].get("step") if bad else result.global_step
        raise TrainingDiverged(
            f"the training loss became {bad[0]['loss'] if bad else result.training_loss} at step {step}"
        )
    scores = {name: split_scores(heldout_margins(trainer, name)) for name in job["eval_pairs"]}
    if job.get("benchmark"):
        for name, accuracy in benchmark_scores(job, trainer, out).items():
            scores[name].update(accuracy)
    return {"scores": scores, "steps": result.global_step, "training_loss": result.training_loss}


def build_trainer(job: Mapping[str, Any], program: Any, out: Path):
    """The ``dpo`` trainer's `DPOTrainer` with ``program`` as its loss (None: TRL's own, for the reference job)
    and the held-out splits as eval datasets; plain values only, no config objects cross the sandbox."""
    from limo.training import build  # deferred: TRL and torch, only for candidates that pass validation
    from limo.training.preference import build_dpo_config, build_dpo_trainer  # deferred: as above

    tokenizer = build.build_tokenizer(job["model_path"], job["model"])
    reference = load_reference(job)
    splits = {"train": job["train_pairs"], **job["eval_pairs"]}
    datasets = {name: split_dataset(job, path, reference and reference[name]) for name, path in splits.items()}
    trainer_class = program_trainer_class(program, "the candidate's loss program") if program is not None else None
    if reference is not None:
        trainer_class = reusing_reference(trainer_class)
    args = {**job["dpo_args"], "output_dir": str(out / "train"), "precompute_ref_log_probs": True}
    return build_dpo_trainer(
        model_path=job["model_path"],
        tokenizer=tokenizer,
        dpo_config=build_dpo_config(args),
        dataset=datasets.pop("train"),
        peft_config=None,
        trainer_class=trainer_class,
        eval_dataset=datasets,
    )


def split_dataset(job: Mapping[str, Any], path: str, reference: Sequence[Any] | None):
    """One split's pairs as TRL's conversational rows with their position (``row``) and, when given, their
    reference log-probs; a row the reference job has none for is one TRL dropped there, and is left out here."""
    from limo.training.build import build_dataset  # deferred: TRL and torch, as above
    from limo.training.preference import conversational_rows, load_pairs  # deferred: as above

    rows = [{**r, "row": i} for i, r in enumerate(conversational_rows(load_pairs(path).pairs, job["system_prompt"]))]
    if reference is not None:
        rows = [
            {**row, REFERENCE_COLUMNS[0]: values[0], REFERENCE_COLUMNS[1]: values[1]}
            for row, values in zip(rows, reference, strict=True)
            if values is not None
        ]
    return build_dataset(rows)


def reusing_reference(trainer_class: type | None) -> type:
    """``trainer_class`` (default TRL's `DPOTrainer`) that keeps reference log-probs a dataset already holds."""
    from trl import DPOTrainer

    class ReusedReferenceDPOTrainer(trainer_class or DPOTrainer):  # type: ignore[misc, valid-type]
        def _precompute_ref_logps(self, dataset: Any, name: str, batch_size: int) -> Any:
            if set(REFERENCE_COLUMNS) <= set(dataset.column_names):
                return dataset
            return super()._precompute_ref_logps(dataset, name, batch_size)

    return ReusedReferenceDPOTrainer


def compute_reference(job: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """The reference job: TRL's precompute on every split, written to ``out/reference.json`` as ``{split: {"sha256":
    <split file>, "values": [[chosen, rejected] or null per row]}}``; returns the result row."""
    from limo.training.preference import load_pairs  # deferred: TRL and torch, as above

    trainer = build_trainer({**job, "reference": None}, None, out)
    splits = {"train": job["train_pairs"], **job["eval_pairs"]}
    datasets = {"train": trainer.train_dataset, **trainer.eval_dataset}
    reference = {}
    for name, path in splits.items():
        values: list[Any] = [None] * len(load_pairs(path).pairs)  # the rows `split_dataset` numbers
        columns = [datasets[name][c] for c in ("row", *REFERENCE_COLUMNS)]
        for row, chosen, rejected in zip(*columns, strict=True):
            values[int(row)] = [float(chosen), float(rejected)]
        reference[name] = {"sha256": sha256_file(path), "values": values}
    write_json(out / "reference.json", reference)
    return {
        "status": "done",
        "pairs": {name: sum(v is not None for v in r["values"]) for name, r in reference.items()},
    }


def load_reference(job: Mapping[str, Any]) -> dict[str, list[Any]] | None:
    """The run's reference log-probs per split (None when the job has none).

    Raises:
        ValueError: They were computed for other split files than the job's.
    """
    if not job.get("reference"):
        return None
    reference = json.loads(Path(job["reference"]).read_text(encoding="utf-8"))
    splits = {"train": job["train_pairs"], **job["eval_pairs"]}
    stale = [name for name, path in splits.items() if reference[name]["sha256"] != sha256_file(path)]
    if stale:
        raise ValueError(f"{job['reference']}: computed for other {', '.join(stale)} pairs than this run's")
    return {name: reference[name]["values"] for name in splits}


def heldout_margins(trainer: Any, split: str) -> list[float]:
    """Per-pair implicit-reward margins (nats) of the trained policy on one held-out split, in file order."""
    import torch

    trainer.model.eval()
    margins: list[float] = []
    with torch.no_grad():
        for batch in trainer.get_eval_dataloader(split):
            batch = trainer._prepare_inputs(batch)
            chosen, rejected = trainer.compute_ref_log_probs(trainer.model, batch)  # the policy's log-probs
            margin = (chosen - batch["ref_chosen_logps"]) - (rejected - batch["ref_rejected_logps"])
            margins.extend(float(m) for m in margin.cpu())
    return margins


def split_scores(margins: Sequence[float]) -> dict[str, Any]:
    """Accuracy (share of positive margins) and mean margin over one split, each with its standard error
    (``_se``: binomial for the accuracy, sample standard deviation over sqrt(n) for the margin)."""
    count = len(margins)
    if not count:
        return {"pairs": 0, "preference_accuracy": None, "preference_margin": None}
    accuracy = sum(m > 0 for m in margins) / count
    mean = sum(margins) / count
    spread = math.sqrt(sum((m - mean) ** 2 for m in margins) / (count - 1)) if count > 1 else 0.0
    return {
        "pairs": count,
        "preference_accuracy": round(accuracy, 6),
        "preference_accuracy_se": round(binomial_se(accuracy, count), 6),
        "preference_margin": round(mean, 6),
        "preference_margin_se": round(spread / math.sqrt(count), 6),
    }


def binomial_se(share: float, count: int) -> float:
    """Standard error of a share of ``count`` independent yes/no outcomes."""
    return math.sqrt(share * (1 - share) / count) if count else 0.0


def benchmark_scores(job: Mapping[str, Any], trainer: Any, out: Path) -> dict[str, dict[str, Any]]:
    """Grader accuracy of the trained model on each benchmark half (greedy, one answer per problem)."""
    from eval.backends.hf import HFBackend  # deferred: imports torch and transformers
    from limo.training.build import save_final_model  # deferred: TRL and torch, as above

    model_dir = out / "model"
    save_final_model(
        trainer,
        trainer.processing_class,
        model_dir,
        str(job["model"]["eos_token"]),
        base_path=job["model_path"],
        model_init_kwargs={},
    )
    generation = job["generation"]
    # the saved tokenizer carries the chat template training used
    backend = HFBackend(
        str(model_dir), dtype=str(job["model"].get("dtype") or "float32"), batch_size=int(generation["batch_size"])
    )
    style = build_prompt_style(job["system_prompt"], "{problem}", [])
    sampling = SamplingParams(temperature=0.0, max_new_tokens=int(generation["max_new_tokens"]))
    scores = {}
    for name, path in job["benchmark"].items():
        problems = read_jsonl(path)
        requests = [
            GenerationRequest(
                f"{p['id']}#0",
                build_messages(p["problem"], style),
                sampling,
                0,
                {"problem_id": p["id"], "sample_index": 0},
            )
            for p in problems
        ]
        answers = backend.generate(requests)
        correct = sum(
            grade(p["answer"], a.text, problem=p["problem"]).correct for p, a in zip(problems, answers, strict=True)
        )
        accuracy = correct / len(problems)
        scores[name] = {
            "problems": len(problems),
            "benchmark_accuracy": round(accuracy, 6),
            "benchmark_accuracy_se": round(binomial_se(accuracy, len(problems)), 6),
        }
    shutil.rmtree(model_dir, ignore_errors=True)  # a real model is gigabytes per candidate
    return scores
