"""DiscoPOP through TRL's DPOTrainer: the loss by hand against the configured trainer, and the `discopop` /
`dpo` recipes training on CPU (one process, and 2-process ZeRO-3 over gloo)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from limo.cli.compose import compose
from tests.launch import run_module

PAIRS = [
    {"id": "1", "prompt": "What is 2 + 3?", "chosen": "2 + 3 = 5. \\boxed{5}", "rejected": "2 + 3 = 6. \\boxed{6}"},
    {"id": "2", "prompt": "Find x if 2x = 8.", "chosen": "x = 4. \\boxed{4}", "rejected": "x = 16, so \\boxed{16}"},
]
# Fixed policy-minus-reference log-ratios (chosen, rejected) per pair: z = beta * (c - r) lands on both sides
# of the modulation (z / tau = +3 and -4 with beta = tau = 0.05).
LOG_RATIOS = [(2.0, -1.0), (-3.0, 1.0)]


def discopop_by_hand(beta: float, tau: float) -> float:
    """DiscoPOP (Lu et al., 2024, eq. 5), written out with `math` only."""
    losses = []
    for chosen, rejected in LOG_RATIOS:
        z = beta * (chosen - rejected)
        mix = 1 / (1 + math.exp(-z / tau))
        logistic = math.log(1 + math.exp(-z))
        losses.append((1 - mix) * logistic + mix * math.exp(-z))
    return sum(losses) / len(losses)


def _write_pairs(path: Path, count: int = 8) -> Path:
    rows = [{**PAIRS[i % 2], "id": str(i)} for i in range(count)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _dpo_trainer(recipe: str, model_dir: Path, out: Path):
    from datasets import Dataset
    from transformers import AutoTokenizer

    from limo.training.build import build_trl_args
    from limo.training.preference import PairRow, build_dpo_config, build_dpo_trainer, conversational_rows

    cfg = compose(recipe, [f"model.path={model_dir}", f"output_dir={out}"])
    args = build_trl_args(
        dict(cfg.train.args),
        (2, 1),
        train_dir=str(out),
        seed=0,
        model_cfg=cfg.model,
        deepspeed=None,
        accelerator_config=None,
        on_cpu=True,
    )
    config = build_dpo_config({**args, "precompute_ref_log_probs": True})
    rows = conversational_rows([PairRow(**p) for p in PAIRS], cfg.train.system_prompt)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trainer = build_dpo_trainer(
        model_path=str(model_dir),
        tokenizer=tokenizer,
        dpo_config=config,
        dataset=Dataset.from_list(rows),
        peft_config=None,
    )
    return trainer, config


def _policy_logps(model, batch):
    import torch

    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token_logps = logps.gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    return (token_logps * batch["completion_mask"][:, 1:]).sum(dim=1)


def test_discopop_loss_matches_the_hand_formula(tiny_model_dir, tmp_path):
    import torch

    trainer, config = _dpo_trainer("discopop", tiny_model_dir, tmp_path)
    assert (config.loss_type, config.beta, config.discopop_tau, config.learning_rate) == (
        ["discopop"],
        0.05,
        0.05,
        5e-7,
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])
    policy = _policy_logps(trainer.model, batch)
    chosen, rejected = policy.chunk(2)
    ratios = torch.tensor(LOG_RATIOS, dtype=torch.float32)
    # Reference log-probs chosen so that policy - reference equals the fixed log-ratios exactly.
    batch["ref_chosen_logps"], batch["ref_rejected_logps"] = chosen - ratios[:, 0], rejected - ratios[:, 1]
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
    assert loss.item() == pytest.approx(discopop_by_hand(0.05, 0.05), rel=1e-4)
    assert discopop_by_hand(0.05, 0.05) == pytest.approx(
        (0.04743 * 0.6210 + 0.95257 * 0.8607 + 0.98201 * 0.7981 + 0.01799 * 1.2214) / 2, rel=1e-3
    )


@pytest.mark.parametrize("recipe", ["discopop", "dpo"])
def test_preference_recipes_convert_to_dpo_config(recipe):
    from limo.training.build import build_trl_args
    from limo.training.preference import build_dpo_config

    cfg = compose(recipe)
    args = build_trl_args(
        dict(cfg.train.args),
        (2, 2),
        train_dir="/tmp/x/train",
        seed=0,
        model_cfg=cfg.model,
        deepspeed=None,
        accelerator_config=None,
        on_cpu=True,
    )
    config = build_dpo_config(args)
    assert config.loss_type == [cfg.train.args.loss_type] and config.beta == 0.05 and config.learning_rate == 5e-7
    assert config.max_grad_norm == 1.0 and config.use_cpu and config.output_dir == "/tmp/x/train"


def test_dpo_recipe_differs_only_in_the_loss(tmp_path):
    discopop, dpo = compose("discopop"), compose("dpo")
    assert dpo.train.args.loss_type == "sigmoid" and discopop.train.args.loss_type == "discopop"
    assert {k: v for k, v in dpo.train.args.items() if k != "loss_type"} == {
        k: v for k, v in discopop.train.args.items() if k != "loss_type"
    }
    assert dpo.curate == discopop.curate


def _history(out: Path) -> list[dict]:
    states = sorted((out / "train").glob("checkpoint-*/trainer_state.json"))
    return json.loads(states[-1].read_text())["log_history"] if states else []


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["discopop", "dpo"])
def test_preference_recipes_train_on_cpu(recipe, repo_root, tiny_model_dir, tmp_path):
    _write_pairs(tmp_path / "pairs.jsonl")
    (tmp_path / "curate").mkdir()
    (tmp_path / "pairs.jsonl").rename(tmp_path / "curate" / "pairs.jsonl")
    run_module(
        repo_root,
        "limo.train",
        f"recipe={recipe}",
        f"output_dir={tmp_path}",
        f"model.path={tiny_model_dir}",
        "train.args.max_steps=2",
        "train.args.save_strategy=steps",
        "+train.args.save_steps=2",
    )
    assert (tmp_path / "train" / "model" / "model.safetensors").exists()
    losses = [row["loss"] for row in _history(tmp_path) if "loss" in row]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    card = (tmp_path / "train" / "model" / "README.md").read_text()
    assert ("discopop" if recipe == "discopop" else "sigmoid") in card


@pytest.mark.slow
def test_discopop_under_two_process_zero3(repo_root, tiny_model_dir, tmp_path):
    (tmp_path / "curate").mkdir()
    _write_pairs(tmp_path / "curate" / "pairs.jsonl")
    done = run_module(
        repo_root,
        "limo.train",
        "recipe=discopop",
        "deepspeed=zero3",
        f"output_dir={tmp_path}",
        f"model.path={tiny_model_dir}",
        "train.args.max_steps=2",
        "train.args.precompute_ref_log_probs=true",
        "train.args.save_strategy=steps",
        "+train.args.save_steps=2",
        two_processes=True,
    )
    # the ranks leave with os._exit after the exit handlers (limo.train.shut_down_process_group): output is flushed
    assert "[train] done: 2 steps" in done.stdout
    assert (tmp_path / "train" / "model" / "model.safetensors").exists()
    losses = [row["loss"] for row in _history(tmp_path) if "loss" in row]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
