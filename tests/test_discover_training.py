"""A loss program inside TRL's DPOTrainer: the hook reproduces TRL's own losses and gradients exactly when the
program is TRL's formula, and a discovered loss trains by name through `limo.train` (recipe `discovered`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from eval.records import DataError
from limo.cli.compose import compose
from limo.discovery.proposals import parse_reply
from limo.training.loss_archive import make_row
from limo.training.program_loss import load_discovered_loss
from tests.launch import entry

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
    """The ``dpo`` trainer's builder, as `limo.train` and the discovery worker use it."""
    from transformers import AutoTokenizer

    from limo.setup.train import build_train_run
    from limo.training.build import build_dataset
    from limo.training.preference import PairRow, build_dpo_config, build_dpo_trainer, conversational_rows
    from limo.training.program_loss import program_trainer_class
    from limo.training.trainers import DPO

    overrides = [f"model.path={model_dir}", f"output_dir={out}", "train.global_batch_size=2"]
    run = build_train_run(compose("discopop", overrides))
    _, args = DPO.build_args(run, 1)
    config = build_dpo_config({**args, "precompute_ref_log_probs": precompute, "loss_type": loss_type})
    rows = conversational_rows([PairRow(**p) for p in PAIRS], run.options.system_prompt)
    return build_dpo_trainer(
        model_path=str(model_dir),
        tokenizer=AutoTokenizer.from_pretrained(model_dir),
        dpo_config=config,
        dataset=build_dataset(rows),
        peft_config=None,
        trainer_class=program_trainer_class(program) if program is not None else None,
    )


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

    from limo.training.loss_language import check_program

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
    def row(generation: int, name: str, code: str, fitness: float | None, status: str = "valid") -> dict:
        origin = "seed" if generation == 0 else "proposal"
        reason = None if status == "valid" else "bad"
        return make_row(
            generation=generation,
            origin=origin,
            name=name,
            thought="",
            code=code,
            status=status,
            reason=reason,
            fitness=fitness,
        )

    return [
        row(0, "dpo", seed_code("dpo"), 0.9),
        row(1, "LRML", lrml_code(), 0.6),
        row(2, "CELL", seed_code("slic"), 0.7),
        row(3, "LRML", seed_code("ipo"), 0.5),
        row(4, "broken", "x", None, status="invalid"),
    ]


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
    (tmp_path / "curate" / "pairs.jsonl").write_text(
        "".join(json.dumps({**PAIRS[i % 2], "id": str(i)}) + "\n" for i in range(4))
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = entry(
        "limo.train",
        "recipe=discovered",
        f"output_dir={tmp_path}",
        f"model.path={tiny_model_dir}",
        f"train.discovered_loss.archive={archive}",
        "train.discovered_loss.name=LRML",
        "train.args.max_steps=2",
    )
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    card = (tmp_path / "train" / "model" / "README.md").read_text()
    assert "discovered loss 'LRML' (generation 1" in card
    assert (tmp_path / "train" / "model" / "model.safetensors").exists()


def _fitness_job(model_dir: Path, tmp_path: Path) -> dict:
    """A candidate job as the loop builds it (`limo.discovery.build.build_job`), on a few hand-written pairs."""
    from limo.discovery.build import build_job, build_training
    from limo.discovery.data import PairSplits
    from limo.discovery.options import build_discover_options

    paths = {}
    for name, count in (("train", 4), ("selection", 2), ("test", 2)):
        paths[name] = tmp_path / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps({**PAIRS[i % 2], "id": f"{name}{i}"}) + "\n" for i in range(count)))
    overrides = [
        f"model.path={model_dir}",
        f"output_dir={tmp_path}",
        "train.args.max_steps=2",
        "train.args.per_device_train_batch_size=2",
        "train.global_batch_size=2",
    ]
    cfg = compose("discover", overrides)
    return build_job(
        build_training(cfg), build_discover_options(cfg), PairSplits({k: str(v) for k, v in paths.items()}, {})
    )


@pytest.mark.slow
def test_reference_log_probs_computed_once_leave_training_and_scores_unchanged(tiny_model_dir, tmp_path):
    """Every candidate reads the run's reference log-probs instead of recomputing them: the training losses and
    held-out scores are exactly those of TRL's own per-run precompute."""
    from limo.discovery.fitness import compute_reference, train_and_score
    from limo.training.loss_language import check_program

    job = _fitness_job(tiny_model_dir, tmp_path)
    done = compute_reference(job, tmp_path / "reference")
    assert done == {"status": "done", "pairs": {"train": 4, "selection": 2, "test": 2}}
    reused_job = {**job, "reference": str(tmp_path / "reference" / "reference.json")}
    program = check_program(seed_code("dpo"))
    own, reused = (train_and_score(j, program, tmp_path / n) for j, n in ((job, "own"), (reused_job, "reused")))
    assert reused == own and own["scores"]["selection"]["preference_margin"] != 0
    history = [json.loads((tmp_path / n / "log_history.json").read_text()) for n in ("own", "reused")]
    assert [r.get("loss") for r in history[0]] == [r.get("loss") for r in history[1]]


@pytest.mark.slow
def test_the_candidate_reads_the_stored_reference_rather_than_recomputing_it(tiny_model_dir, tmp_path):
    """Shift every stored reference log-prob of a chosen answer by one nat: each held-out margin drops by one."""
    from limo.discovery.fitness import build_trainer, compute_reference, heldout_margins
    from limo.training.loss_language import check_program

    job = _fitness_job(tiny_model_dir, tmp_path)
    compute_reference(job, tmp_path / "reference")
    stored = json.loads((tmp_path / "reference" / "reference.json").read_text())
    for split in stored.values():
        split["values"] = [[chosen + 1.0, rejected] for chosen, rejected in split["values"]]
    (tmp_path / "shifted.json").write_text(json.dumps(stored))
    program = check_program(seed_code("dpo"))
    margins = [
        heldout_margins(build_trainer({**job, "reference": str(path)}, program, tmp_path / path.stem), "selection")
        for path in (tmp_path / "reference" / "reference.json", tmp_path / "shifted.json")
    ]
    assert margins[1] == pytest.approx([m - 1.0 for m in margins[0]], abs=1e-4)


def test_a_reference_for_other_pairs_is_refused(tmp_path):
    from limo.discovery.fitness import load_reference

    for name in ("train", "selection", "test"):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps({**PAIRS[0], "id": name}) + "\n")
    stored = {name: {"sha256": "0" * 64, "values": [[-1.0, -2.0]]} for name in ("train", "selection", "test")}
    (tmp_path / "reference.json").write_text(json.dumps(stored))
    job = {
        "reference": str(tmp_path / "reference.json"),
        "train_pairs": str(tmp_path / "train.jsonl"),
        "eval_pairs": {n: str(tmp_path / f"{n}.jsonl") for n in ("selection", "test")},
    }
    with pytest.raises(ValueError, match="computed for other train, selection, test pairs"):
        load_reference(job)
