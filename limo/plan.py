"""`python -m limo.plan recipe=<name> num_gpus=8 [num_nodes=1] [gpu_memory_gb=80]`: will this recipe fit?

Estimates per-GPU memory (model states under the recipe's ZeRO stage via DeepSpeed's estimators,
activations at ``max_length``, the LM head's logits) and CPU memory for offload, then prints what fits on
``num_gpus x gpu_memory_gb``: the recipe as written and the usual alternatives. Runs offline in seconds
(the model shape comes from AutoConfig or the model group's ``shape:``) and starts no processes.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from limo.entry import hydra_entry, reported_errors
from limo.training.batch_plan import split_global_batch
from limo.training.memory import alternatives, estimate_memory, lora_param_count, model_shape, render_plan, run_setup
from limo.training.options import build_train_options

RESERVE_GIB = 4.0  # CUDA context, NCCL buffers, allocator fragmentation


def plan(cfg: DictConfig) -> str:
    """The planner's report for a composed config."""
    section = build_train_options(cfg)
    num_gpus, num_nodes = int(cfg.num_gpus), int(cfg.num_nodes)
    per_device, _ = split_global_batch(section.global_batch_size, section.args, num_gpus * num_nodes)
    shape, source = model_shape(cfg.model)
    lora = lora_param_count(shape, section.lora.r, list(section.lora.target_modules)) if section.lora else 0
    deepspeed = OmegaConf.to_container(cfg.deepspeed, resolve=True) if cfg.get("deepspeed") else None
    setup = run_setup(
        section.args,
        deepspeed,
        cfg.model,
        num_gpus=num_gpus,
        num_nodes=num_nodes,
        per_device_batch=per_device,
        lora_params=lora,
    )
    estimates = {label: estimate_memory(shape, option) for label, option in alternatives(setup).items()}
    header = (
        f"limo plan: recipe {cfg.name}, {num_nodes} node(s) x {num_gpus} GPU(s), ZeRO stage {setup.zero_stage}"
        f"{' + offload' if setup.offload_optimizer else ''}, {'LoRA' if lora else 'full fine-tune'}, "
        f"max_length {setup.seq_len}, per-device batch {per_device}, "
        f"activation checkpointing {'on' if setup.activation_checkpointing else 'off'}"
    )
    return header + "\n" + render_plan(shape, source, estimates, float(cfg.gpu_memory_gb), RESERVE_GIB)


@hydra_entry("plan")
def main(cfg: DictConfig) -> None:
    with reported_errors("plan", cfg):
        print(plan(cfg))


if __name__ == "__main__":
    main()
