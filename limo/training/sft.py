"""Supervised fine-tuning (``train.trainer: sft`` / ``weighted_sft``) with TRL, from plain inputs (`TrainRun`).

Reads the messages file, adds the recipe's system prompt, derives per-device batch and accumulation from
the global batch and the world size, builds the `SFTConfig` (DeepSpeed dict included) before the model,
reports token lengths (stopping on truncation), trains with loss on assistant turns only, and writes
``train/{plan.json,config.yaml,log_history.json,model/}``. Every rank computes the same plan from the same
inputs; only rank 0 writes files.
"""

from __future__ import annotations

from typing import Any

from eval.records import write_json, write_text_atomic
from limo.tiny_models import ensure_model
from limo.training import build
from limo.training.batch_plan import plan_batches
from limo.training.data import chat_rows, check_truncation, length_report, load_train_data, token_lengths
from limo.training.distributed import process_info
from limo.training.model_card import render_model_card
from limo.training.options import TrainRun
from limo.training.weighted import WEIGHTING_NOTE, weighted_rows


def run_sft(run: TrainRun) -> Any:
    """Train on ``run.paths.data``; returns the trainer (tests read its ``state.log_history``)."""
    options, paths, proc = run.options, run.paths, process_info()
    weighted = run.trainer in build.WEIGHTED_TRAINERS
    data = load_train_data(paths.data)
    build.check_weight_support(run.trainer, [e.weight for e in data.examples], data.path)
    build.check_loss_turns_support(run.trainer, [e.loss_turns for e in data.examples], data.path)
    model_path = ensure_model(run.model)
    tokenizer = build.build_tokenizer(model_path, run.model)
    rows = chat_rows(data.examples, options.system_prompt)
    if weighted:  # weight and last-turn-only columns (limo.training.weighted)
        rows = weighted_rows(rows, [e.weight for e in data.examples], [e.loss_turns for e in data.examples])
    split, args = build.build_run_args(run, proc.world_size)
    sft_config = build.build_sft_config(args)
    counts = token_lengths(tokenizer, rows)
    lengths = length_report([e.id for e in data.examples], counts, sft_config.max_length)
    check_truncation(lengths, data.path, options.allow_truncation)
    plan = plan_batches(
        per_device=split[0],
        accumulation=split[1],
        world_size=proc.world_size,
        lengths=counts,
        epochs=sft_config.num_train_epochs,
        max_steps=sft_config.max_steps,
    )
    checkpoint = build.find_resume_checkpoint(paths.train_dir, options.resume)
    if proc.is_main:
        print(f"[train] data {data.path} (sha256 {data.checksum})\n[train] lengths: {lengths.summary()}", flush=True)
        print(f"[train] plan: {plan.summary()}", flush=True)
        data_info = {"path": data.path, "sha256": data.checksum}
        write_json(paths.plan, {"plan": plan.to_dict(), "lengths": lengths.to_dict(), "data": data_info})
        write_text_atomic(paths.config, run.config_yaml)
    trainer = build.build_trainer(
        run.trainer_class or build.sft_trainer_class(run.trainer),
        model_path=model_path,
        tokenizer=tokenizer,
        sft_config=sft_config,
        dataset=build.build_dataset(rows),
        peft_config=build.build_peft_config(options.lora),
        callbacks=run.callbacks,
    )
    result = trainer.train(resume_from_checkpoint=checkpoint)
    build.save_final_model(
        trainer,
        tokenizer,
        paths.model_dir,
        str(run.model["eos_token"]),
        base_path=model_path,
        model_init_kwargs=sft_config.model_init_kwargs,
    )
    if proc.is_main:
        card = render_model_card(
            recipe=run.recipe,
            base_model=str(run.model["path"]),
            data_path=data.path,
            data_checksum=data.checksum,
            plan=plan,
            lengths=lengths,
            metrics={**result.metrics, "global_step": result.global_step},
            system_prompt=options.system_prompt,
            lora=options.lora is not None,
            assistant_only_loss=sft_config.assistant_only_loss,
            weighting=WEIGHTING_NOTE if weighted else None,
        )
        write_text_atomic(f"{paths.model_dir}/README.md", card)
        write_json(paths.log_history, trainer.state.log_history)
        print(f"[train] done: {result.global_step} steps, loss {result.training_loss:.4f} -> {paths.model_dir}")
    return trainer
