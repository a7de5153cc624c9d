"""Fitness of a valid loss program: a short DPO run with it, scored on held-out preference pairs.

Runs inside the confined worker. The policy is the recipe's model, trained by TRL's `DPOTrainer` with the
program as its loss (`limo.training.program_loss`) on the training split of curated pairs (correct vs
incorrect chains), every candidate from the same initial weights, seed and data order. Reference
log-probabilities are precomputed once per run (the reference is frozen either way), which also puts them
in the held-out batches.

Scores, on each held-out split (``selection``: the fitness the proposer sees; ``test``: never shown to the
proposer, reported so that selection on the fitness can be checked): with margin ``m = (policy - reference
log-ratio of chosen) - (the same for rejected)`` per pair, ``preference_accuracy`` is the share of pairs with
``m > 0`` and ``preference_margin`` the mean of ``m`` in nats. These suit a model too small to solve problems
(the CPU demo); they measure what training changed, not raw likelihood, which the tiny model ranks by length.
``benchmark_accuracy`` (a real model, a GPU): the trained model is saved, answers each half of a held-out
benchmark greedily through the ``hf`` backend, and `eval.grader` grades the answers; the saved model is
deleted afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval.records import write_json

METRICS = ("preference_accuracy", "preference_margin", "benchmark_accuracy")


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
        raise TrainingDiverged(f"the training loss became {bad[0]['loss'] if bad else result.training_loss} "
                               f"at step {step}")  # fmt: skip
    scores = {name: split_scores(heldout_margins(trainer, name)) for name in job["eval_pairs"]}
    if job.get("benchmark"):
        for name, accuracy in benchmark_scores(job, trainer, out).items():
            scores[name].update(accuracy)
    return {"scores": scores, "steps": result.global_step, "training_loss": result.training_loss}


def build_trainer(job: Mapping[str, Any], program: Any, out: Path):
    """The program-loss `DPOTrainer` for a job (plain values only: no config objects cross the sandbox)."""
    from datasets import Dataset

    from limo.training import build
    from limo.training.preference import build_dpo_config, conversational_rows, load_pairs
    from limo.training.program_loss import program_trainer_class

    tokenizer = build.build_tokenizer(job["model_path"], job["model"])
    rows = {name: conversational_rows(load_pairs(path).pairs, job["system_prompt"])
            for name, path in {"train": job["train_pairs"], **job["eval_pairs"]}.items()}  # fmt: skip
    args = {**job["dpo_args"], "output_dir": str(out / "train"), "precompute_ref_log_probs": True}
    trainer_class = program_trainer_class()
    return trainer_class(
        model=job["model_path"], args=build_dpo_config(args), processing_class=tokenizer,
        train_dataset=Dataset.from_list(rows.pop("train")),
        eval_dataset={name: Dataset.from_list(split) for name, split in rows.items()}, loss_program=program,
    )  # fmt: skip


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
    """Accuracy (share of positive margins) and mean margin over one split."""
    count = len(margins)
    return {
        "pairs": count,
        "preference_accuracy": round(sum(m > 0 for m in margins) / count, 6) if count else None,
        "preference_margin": round(sum(margins) / count, 6) if count else None,
    }


def benchmark_scores(job: Mapping[str, Any], trainer: Any, out: Path) -> dict[str, dict[str, Any]]:
    """Grader accuracy of the trained model on each benchmark half (greedy, one answer per problem)."""
    import shutil

    from eval.backends.base import GenerationRequest, SamplingParams
    from eval.backends.hf import HFBackend
    from eval.grader import grade
    from eval.prompting import build_messages, build_prompt_style
    from eval.records import read_jsonl
    from limo.training.build import save_final_model

    model_dir = out / "model"
    save_final_model(trainer, trainer.processing_class, model_dir, str(job["model"]["eos_token"]),
                     base_path=job["model_path"], model_init_kwargs={})  # fmt: skip
    generation = job["generation"]
    # the saved tokenizer carries the chat template training used
    backend = HFBackend(str(model_dir), dtype=str(job["model"].get("dtype") or "float32"),
                        batch_size=int(generation["batch_size"]))  # fmt: skip
    style = build_prompt_style(job["system_prompt"], "{problem}", [])
    sampling = SamplingParams(temperature=0.0, max_new_tokens=int(generation["max_new_tokens"]))
    scores = {}
    for name, path in job["benchmark"].items():
        problems = read_jsonl(path)
        requests = [GenerationRequest(f"{p['id']}#0", build_messages(p["problem"], style), sampling, 0,
                                      {"problem_id": p["id"], "sample_index": 0}) for p in problems]  # fmt: skip
        answers = backend.generate(requests)
        correct = sum(grade(p["answer"], a.text).correct for p, a in zip(problems, answers, strict=True))
        scores[name] = {"problems": len(problems), "benchmark_accuracy": round(correct / len(problems), 6)}
    shutil.rmtree(model_dir, ignore_errors=True)  # a real model is gigabytes per candidate
    return scores
