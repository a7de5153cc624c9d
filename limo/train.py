"""`python -m limo.train recipe=<name> [overrides]`: supervised fine-tuning with TRL (+ DeepSpeed).

Reads ``${output_dir}/curate/messages.jsonl`` (or ``train.data``), adds the recipe's system prompt, derives
per-device batch and accumulation from ``train.global_batch_size`` and the world size, builds the
`SFTConfig` (DeepSpeed dict included) before the model, reports token lengths (stopping on truncation),
trains with loss on assistant turns only, and writes ``train/{plan.json,config.yaml,log_history.json,model/}``.
Launch several processes with torchrun (README, "Training on GPUs"); every rank computes the same plan
from the same inputs, and only rank 0 writes files.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from eval.records import write_json, write_text_atomic
from limo.training import build
from limo.training.batch_plan import plan_batches
from limo.training.data import chat_rows, check_truncation, length_report, load_train_data, token_lengths
from limo.training.distributed import process_info
from limo.training.model_card import render_model_card
from limo.training.preference import train_preference
from limo.training.section import TrainPaths, parse_train_section
from limo.training.weighted import WEIGHTING_NOTE, weighted_rows


def train(cfg: DictConfig, callbacks=()):
    """Run training for a composed config; returns the trainer (tests read its ``state.log_history``)."""
    if cfg.train.get("trainer") == "dpo":  # preference pairs: DPO / DiscoPOP (limo.training.preference)
        return train_preference(cfg, callbacks)
    section, proc, paths = parse_train_section(cfg), process_info(), TrainPaths(str(cfg.output_dir))
    data = load_train_data(section.data or paths.default_data)
    build.check_weight_support(section.trainer, [e.weight for e in data.examples], data.path)
    build.check_loss_turns_support(section.trainer, [e.loss_turns for e in data.examples], data.path)
    model_path = build.ensure_model(cfg.model)
    tokenizer = build.build_tokenizer(model_path, cfg.model)
    rows = chat_rows(data.examples, section.system_prompt)
    if section.trainer in build.WEIGHTED_TRAINERS:  # weight and last-turn-only columns (limo.training.weighted)
        rows = weighted_rows(rows, [e.weight for e in data.examples], [e.loss_turns for e in data.examples])
    split, args = build.build_run_args(cfg, section, proc.world_size, paths.train_dir)
    sft_config = build.build_sft_config(args)
    counts = token_lengths(tokenizer, rows)
    lengths = length_report([e.id for e in data.examples], counts, sft_config.max_length)
    check_truncation(lengths, data.path, section.allow_truncation)
    plan = plan_batches(
        per_device=split[0], accumulation=split[1], world_size=proc.world_size, lengths=counts,
        epochs=sft_config.num_train_epochs, max_steps=sft_config.max_steps,
    )  # fmt: skip
    checkpoint = build.find_resume_checkpoint(paths.train_dir, section.resume)
    if proc.is_main:
        print(f"[train] data {data.path} (sha256 {data.checksum})\n[train] lengths: {lengths.summary()}", flush=True)
        print(f"[train] plan: {plan.summary()}", flush=True)
        data_info = {"path": data.path, "sha256": data.checksum}
        write_json(paths.plan, {"plan": plan.to_dict(), "lengths": lengths.to_dict(), "data": data_info})
        write_text_atomic(paths.config, OmegaConf.to_yaml(cfg, resolve=True))
    trainer = build.build_trainer(
        section.trainer, model_path=model_path, tokenizer=tokenizer, sft_config=sft_config,
        dataset=build.build_dataset(rows), peft_config=build.build_peft_config(section.lora), callbacks=callbacks,
    )  # fmt: skip
    result = trainer.train(resume_from_checkpoint=checkpoint)
    build.save_final_model(
        trainer, tokenizer, paths.model_dir, str(cfg.model.eos_token), base_path=model_path,
        model_init_kwargs=sft_config.model_init_kwargs,
    )  # fmt: skip
    if proc.is_main:
        card = render_model_card(
            recipe=str(cfg.name), base_model=str(cfg.model.path), data_path=data.path, data_checksum=data.checksum,
            plan=plan, lengths=lengths, metrics={**result.metrics, "global_step": result.global_step},
            system_prompt=section.system_prompt, lora=section.lora is not None,
            assistant_only_loss=sft_config.assistant_only_loss,
            weighting=WEIGHTING_NOTE if section.trainer in build.WEIGHTED_TRAINERS else None,
        )  # fmt: skip
        write_text_atomic(f"{paths.model_dir}/README.md", card)
        write_json(paths.log_history, trainer.state.log_history)
        print(f"[train] done: {result.global_step} steps, loss {result.training_loss:.4f} -> {paths.model_dir}")
    return trainer


@hydra.main(config_path="../recipes", config_name="config", version_base=None)
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
