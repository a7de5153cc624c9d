"""A loss program inside TRL's DPOTrainer: the hook reproduces TRL's own losses and gradients exactly when the
program is TRL's formula, and a discovered loss trains by name through `limo.train` (recipe `discovered`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.records import DataError
from limo.config import compose
from limo.discovery.archive import make_row
from limo.discovery.proposals import parse_reply
from limo.training.program_loss import load_discovered_loss

REPO = Path(__file__).resolve().parent.parent
PAIRS = [
    {"id": "1", "prompt": "What is 2 + 3?", "chosen": "2 + 3 = 5. \\boxed{5}", "rejected": "2 + 3 = 6. \\boxed{6}"},
    {"id": "2", "prompt": "Find x if 2x = 8.", "chosen": "x = 4. \\boxed{4}", "rejected": "x = 16, so \\boxed{16}"},
]


def seed_code(name: str) -> str:
    rows = [json.loads(line) for line in (REPO / "recipes/data/discover/seed_archive.jsonl").read_text().splitlines()]
    return next(r["code"] for r in rows if r["name"] == name)


def lrml_code() -> str:
    first = json.loads((REPO / "recipes/data/discover/demo_proposals.jsonl").read_text().splitlines()[0])
    return parse_reply(first["text"]).code


def _trainer(model_dir: Path, out: Path, loss_type: str, precompute: bool, program=None):
    from datasets import Dataset
    from transformers import AutoTokenizer

    from limo.training.build import build_sft_args
    from limo.training.preference import PairRow, build_dpo_config, build_dpo_trainer, conversational_rows, dpo_args

    cfg = compose("discopop", [f"model.path={model_dir}", f"output_dir={out}"])
    args = build_sft_args(dict(cfg.train.args), (2, 1), train_dir=str(out), seed=0, model_cfg=cfg.model,
                          deepspeed=None, accelerator_config=None, on_cpu=True)  # fmt: skip
    config = build_dpo_config({**dpo_args(args), "precompute_ref_log_probs": precompute, "loss_type": loss_type})
    rows = conversational_rows([PairRow(**p) for p in PAIRS], cfg.train.system_prompt)
    return build_dpo_trainer(model_path=str(model_dir), tokenizer=AutoTokenizer.from_pretrained(model_dir),
                             dpo_config=config, dataset=Dataset.from_list(rows), peft_config=None,
                             loss_program=program)  # fmt: skip


def _loss_and_grad(trainer):
    import torch

    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():  # move the policy off the reference so the log-ratios are not all zero
        for parameter in trainer.model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(PAIRS))])
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in trainer.model.parameters() if p.grad is not None]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("loss_type", "code", "precompute"),
    [("sigmoid", "dpo", True), ("sigmoid", "dpo", False), ("hinge", "slic", True), ("discopop", "LRML", False)],
)
def test_program_loss_reproduces_trl_losses_and_gradients(tiny_model_dir, tmp_path, loss_type, code, precompute):
    import torch

    from limo.discovery.language import check_program

    program = check_program(lrml_code() if code == "LRML" else seed_code(code))
    trl_loss, trl_grads = _loss_and_grad(_trainer(tiny_model_dir, tmp_path / "a", loss_type, precompute))
    ours, our_grads = _loss_and_grad(_trainer(tiny_model_dir, tmp_path / "b", "sigmoid", precompute, program))
    assert type(_trainer(tiny_model_dir, tmp_path / "c", "sigmoid", precompute, program)).__name__ == (
        "ProgramLossDPOTrainer"
    )
    assert ours == pytest.approx(trl_loss, rel=1e-6) and abs(trl_loss - 0.6931) > 1e-3
    assert len(our_grads) == len(trl_grads) > 0
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(our_grads, trl_grads, strict=True))


def write_archive(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def archive_rows() -> list[dict]:
    return [
        make_row(generation=0, origin="seed", name="dpo", thought="", code=seed_code("dpo"), status="valid",
                 reason=None, fitness=0.9),
        make_row(generation=1, origin="proposal", name="LRML", thought="", code=lrml_code(), status="valid",
                 reason=None, fitness=0.6),
        make_row(generation=2, origin="proposal", name="CELL", thought="", code=seed_code("slic"), status="valid",
                 reason=None, fitness=0.7),
        make_row(generation=3, origin="proposal", name="LRML", thought="", code=seed_code("ipo"), status="valid",
                 reason=None, fitness=0.5),
        make_row(generation=4, origin="proposal", name="broken", thought="", code="x", status="invalid",
                 reason="bad"),
    ]  # fmt: skip


@pytest.mark.parametrize(("name", "generation"), [("best", 2), ("LRML", 1), ("LRML@3", 3), ("dpo", 0), ("CELL@2", 2)])
def test_discovered_loss_is_picked_by_name(tmp_path, name, generation):
    program, row = load_discovered_loss(write_archive(tmp_path / "archive.jsonl", archive_rows()), name)
    assert row["generation"] == generation and program.source == row["code"]


@pytest.mark.parametrize("name", ["broken", "missing", "LRML@7"])
def test_unknown_or_invalid_names_are_refused_with_the_valid_ones_listed(tmp_path, name):
    with pytest.raises(DataError, match="valid: CELL, LRML, dpo"):
        load_discovered_loss(write_archive(tmp_path / "archive.jsonl", archive_rows()), name)


def test_an_edited_archive_row_is_checked_again(tmp_path):
    rows = archive_rows()
    rows[1]["code"] = "import os\n" + rows[1]["code"]  # status still says valid
    with pytest.raises(DataError, match="fails the checker"):
        load_discovered_loss(write_archive(tmp_path / "archive.jsonl", rows), "LRML@1")


@pytest.mark.slow
def test_discovered_loss_trains_by_name_with_limo_train(tiny_model_dir, tmp_path):
    archive = write_archive(tmp_path / "archive.jsonl", archive_rows())
    (tmp_path / "curate").mkdir()
    (tmp_path / "curate" / "pairs.jsonl").write_text("".join(json.dumps({**PAIRS[i % 2], "id": str(i)}) + "\n"
                                                             for i in range(4)))  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "limo.train", "recipe=discovered", f"output_dir={tmp_path}",
               f"model.path={tiny_model_dir}", f"train.discovered_loss.archive={archive}",
               "train.discovered_loss.name=LRML", "train.args.max_steps=2"]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    card = (tmp_path / "train" / "model" / "README.md").read_text()
    assert "discovered loss 'LRML' (generation 1" in card
    assert (tmp_path / "train" / "model" / "model.safetensors").exists()
