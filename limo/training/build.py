"""Small builders that turn the recipe into the plain objects TRL takes: args, tokenizer, trainer, saved model.

Order matters and is kept by `limo.train`: the `SFTConfig` (with its DeepSpeed dict) is built before the
model exists, because HF's ZeRO-3 path partitions weights while `from_pretrained` loads them only if the
DeepSpeed config is registered first. The model is therefore passed to TRL as a path and loaded by
`SFTTrainer` with ``model_init_kwargs`` (the model group's dtype and revision merged in).

Every trainer's entry (`limo.training.trainers`) builds its TRL arguments through `build_run_args` with its own
defaults: no trainer builds another's arguments.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from eval.records import require_hub, write_json, write_text_atomic
from limo.models.chat import group_template_text
from limo.training.batch_plan import BatchPlan, plan_batches, split_global_batch
from limo.training.data import LengthReport, check_truncation, length_report
from limo.training.distributed import ProcessInfo, cuda_available, prepare_cpu_deepspeed
from limo.training.kernels import PACKED_ATTENTION, packed_attention
from limo.training.model_card import render_model_card
from limo.training.options import LoraOptions, TrainRun

log = logging.getLogger(__name__)

# Keys we own in the SFTConfig: a recipe that sets them under train.args fights the run layout or the plan.
OWNED_ARGS = ("output_dir", "deepspeed", "accelerator_config")


def trained_model_path(path: str) -> str:
    """``path``, or the model a run trained when ``path`` is that run's directory (``<run>/train/model``): an SFT
    run's output is the starting point of an RL run by naming the run."""
    trained = Path(path).expanduser() / "train" / "model"
    if not (Path(path).expanduser() / "config.json").exists() and (trained / "config.json").exists():
        return str(trained)
    return path


def build_tokenizer(model_path: str, model_cfg: Mapping[str, Any]):
    """Load the tokenizer, apply the group's chat template / EOS, and check the template ends turns with EOS.

    Raises:
        ValueError: The EOS token is not in the vocabulary, or the chat template does not close an assistant
            turn with it (the model would never learn to stop).
    """
    from transformers import AutoTokenizer

    require_hub(model_path, "the model to train")
    tokenizer = AutoTokenizer.from_pretrained(model_path, revision=model_cfg.get("revision"))
    template = group_template_text(model_cfg)
    if template:
        tokenizer.chat_template = template  # saved with the model: train/model carries the template it learnt
    eos = str(model_cfg["eos_token"])
    if eos not in tokenizer.get_vocab():
        raise ValueError(f"model.eos_token={eos!r} is not in the vocabulary of {model_path}")
    tokenizer.eos_token = eos
    check_template_eos(tokenizer, eos)
    fingerprint_without_build_inputs(type(tokenizer))
    return tokenizer


# What some tokenizer classes keep beside the backend tokenizer they built from it: transformers 5's GemmaTokenizer
# keeps Gemma 3's 262,144-entry vocabulary and 514,906 merges. datasets fingerprints every `Dataset.map` that TRL hands
# the tokenizer to by pickling it, in pure Python: 3.8 s a map for Gemma 3 on a 2-core CPU (SmolLM2's: 0.03 s).
BUILD_INPUTS = ("_vocab", "_merges")


def fingerprint_without_build_inputs(tokenizer_type: type) -> None:
    """Let datasets fingerprint ``tokenizer_type`` as it does every tokenizer, but without `BUILD_INPUTS`: the backend
    tokenizer (``_tokenizer``), which the fingerprint keeps, holds the same vocabulary and merges, so a fingerprint
    still changes with them. Registered once per class in the table of picklers datasets hashes with (no other
    pickling reads it), in place of datasets' own entry; a datasets release without that entry keeps its own way."""
    from datasets.utils import _dill

    save = getattr(_dill, "_save_transformersPreTrainedTokenizerBase", None)
    registered = _dill.Pickler.dispatch.get(tokenizer_type)
    if save is None or registered not in (None, save):  # not datasets' way, or ours already
        return

    def save_without_build_inputs(pickler: Any, tokenizer: Any) -> None:
        if tokenizer.__dict__.get("_tokenizer") is None:  # no backend to stand for the vocabulary: hash it all
            save(pickler, tokenizer)
            return
        kept = {name: tokenizer.__dict__.pop(name) for name in BUILD_INPUTS if name in tokenizer.__dict__}
        try:
            save(pickler, tokenizer)
        finally:
            tokenizer.__dict__.update(kept)

    _dill.pklregister(tokenizer_type)(save_without_build_inputs)


def check_template_eos(tokenizer: Any, eos: str) -> None:
    """Raise unless the chat template closes an assistant turn with ``eos``."""
    probe = "PROBE-ANSWER"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": probe}], tokenize=False
    )
    tail = text[text.rindex(probe) + len(probe) :]
    if not tail.strip().startswith(eos):
        raise ValueError(
            f"the chat template closes an assistant turn with {tail.strip()!r}, not model.eos_token={eos!r}: "
            "set model.eos_token to the template's end-of-turn token"
        )


def build_trl_args(
    args: Mapping[str, Any],
    batch_split: tuple[int, int],
    *,
    train_dir: str,
    seed: int,
    model_cfg: Mapping[str, Any],
    deepspeed: Mapping[str, Any] | None,
    accelerator_config: Mapping[str, Any] | None,
    on_cpu: bool,
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The recipe's ``train.args`` plus what the run decides: output dir, batch split, DeepSpeed, CPU, and the
    attention of padding-free rows (`limo.training.kernels.PACKED_ATTENTION` unless the recipe names one).

    ``batch_split`` is ``(per_device_train_batch_size, gradient_accumulation_steps)`` from
    `limo.training.batch_plan.split_global_batch`. ``defaults`` are the trainer's own changes to its TRL config's
    defaults (`SFT_DEFAULTS`); the recipe's values win over them. Every trainer also gets the seed from the recipe
    and no logging integrations; everything else is TRL's own default or the recipe's value.

    Raises:
        ValueError: The recipe sets a key the run owns (``output_dir``, ``deepspeed``, ...).
    """
    clash = [key for key in OWNED_ARGS if key in args]
    if clash:
        raise ValueError(
            f"train.args sets {', '.join(clash)}: these are decided by the run (output_dir=<run>/train, "
            "deepspeed=<group>); use the top-level output_dir / deepspeed keys instead"
        )
    built: dict[str, Any] = {**(defaults or {}), "seed": seed, "report_to": "none", **copy.deepcopy(dict(args))}
    built["output_dir"] = train_dir
    built["per_device_train_batch_size"], built["gradient_accumulation_steps"] = batch_split
    built["model_init_kwargs"] = _model_init_kwargs(model_cfg, built.get("model_init_kwargs"))
    if built.get("padding_free") and "attn_implementation" not in built["model_init_kwargs"]:
        # a packed row attends example by example, not through one block-masked product (limo.training.kernels)
        built["model_init_kwargs"]["attn_implementation"] = packed_attention()
    if deepspeed:
        built["deepspeed"] = copy.deepcopy(dict(deepspeed))
    if accelerator_config:
        built["accelerator_config"] = dict(accelerator_config)
    if on_cpu:
        built["use_cpu"] = True
    return built


# SFT's change to SFTConfig's defaults: loss on assistant turns only.
SFT_DEFAULTS: Mapping[str, Any] = MappingProxyType({"assistant_only_loss": True})


def build_sft_args(args: Mapping[str, Any], batch_split: tuple[int, int], **run: Any) -> dict[str, Any]:
    """`build_trl_args` with `SFT_DEFAULTS`: the `SFTConfig` arguments (``run``: its keyword arguments)."""
    return build_trl_args(args, batch_split, **run, defaults=SFT_DEFAULTS)


def _model_init_kwargs(model_cfg: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dtype": model_cfg.get("dtype") or "auto"}
    if model_cfg.get("revision"):
        kwargs["revision"] = model_cfg["revision"]
    kwargs.update(extra or {})
    return kwargs


def build_run_args(
    run: TrainRun, world_size: int, defaults: Mapping[str, Any] | None = None
) -> tuple[tuple[int, int], dict[str, Any]]:
    """The batch split for this world size and a trainer's argument dict (DeepSpeed and CPU set-up included),
    with the trainer's own ``defaults`` (`build_trl_args`).

    Each trainer's argument builder (`limo.training.trainers.Trainer.build_args`) is this with its defaults;
    called before the model is built, as ZeRO-3 needs its config in place first.

    Returns:
        ``((per_device_batch, accumulation), args)``.
    """
    split = split_global_batch(run.options.global_batch_size, run.options.args, world_size)
    on_cpu = not cuda_available()
    accelerator_config = prepare_cpu_deepspeed() if run.deepspeed and on_cpu else None
    args = build_trl_args(
        run.options.args,
        split,
        train_dir=run.paths.train_dir,
        seed=run.seed,
        model_cfg=run.model,
        deepspeed=run.deepspeed,
        accelerator_config=accelerator_config,
        on_cpu=on_cpu,
        defaults=defaults,
    )
    return split, args


def build_sft_run_args(run: TrainRun, world_size: int) -> tuple[tuple[int, int], dict[str, Any]]:
    """The SFT entries' argument builder: `build_run_args` with `SFT_DEFAULTS`."""
    return build_run_args(run, world_size, SFT_DEFAULTS)


def build_sft_config(args: Mapping[str, Any]):
    """`trl.SFTConfig` from plain arguments (registers the DeepSpeed config for ZeRO-3 init)."""
    from trl import SFTConfig

    return SFTConfig(**args)


def padding_free_note(padding_free: bool, model_init_kwargs: Mapping[str, Any] | None, on_gpu: bool) -> str | None:
    """What limo says before a padding-free run on a GPU whose attention is one block-masked product over the whole
    row (None: nothing to say).

    A padding-free row is every example of the batch in one sequence. The flash attention kernels and limo's
    `limo.training.kernels.PACKED_ATTENTION` (the default of a padding-free run) attend each example apart; ``sdpa`` or
    ``eager`` named in the recipe attend over the whole row under a block mask. Measured by bench/gpu/gpu_check.py on
    an H200 (docs/performance.md, "GPU figures"): 0.60x (SmolLM2-135M's shape) and 0.68x (Qwen2.5-1.5B's) the
    tokens/s of padded batches of the same examples under sdpa.
    """
    attention = str((model_init_kwargs or {}).get("attn_implementation") or PACKED_ATTENTION)
    if not (padding_free and on_gpu) or "flash" in attention or attention == PACKED_ATTENTION:
        return None  # flash_attention_2/3, kernels-community/flash-attn*, sdpa_packed: example by example
    return (
        f"note: padding-free batches with attn_implementation={attention}: on an H200 this trained at 0.60-0.68x the "
        "tokens/s of padded batches (docs/performance.md); leave train.args.model_init_kwargs.attn_implementation "
        f"unset ({PACKED_ATTENTION}: each example attended apart), set it to flash_attention_2 (needs the flash-attn "
        "package) or set train.args.padding_free=false"
    )


def build_peft_config(lora: LoraOptions | None):
    """A `peft.LoraConfig` for ``train.lora``, or None for a full fine-tune."""
    if lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
    )


def build_dataset(rows: Sequence[Mapping[str, Any]]):
    """A `datasets.Dataset` of conversational rows."""
    from datasets import Dataset

    return Dataset.from_list([dict(r) for r in rows])


def sft_trainer_class(weighted: bool) -> type:
    """The TRL trainer class of an SFT entry (``weighted``: it applies per-example weights)."""
    from trl import SFTTrainer

    from limo.training.weighted import WeightedSFTTrainer  # deferred: torch and TRL

    return WeightedSFTTrainer if weighted else SFTTrainer


def check_weight_support(trainer: Any, weights: Sequence[float], source: str) -> None:
    """Refuse rows with loss weights other than 1.0 when the trainer would silently ignore them.

    ``trainer`` is its `limo.training.trainers.Trainer` entry (``name``, ``weighted``).

    Raises:
        ValueError: Some weight differs from 1.0 and the trainer does not apply weights.
    """
    weighted = sum(1 for w in weights if w != 1.0)
    if weighted and not trainer.weighted:
        raise ValueError(
            f"{source}: {weighted} of {len(weights)} rows carry a loss weight other than 1.0, which the "
            f"{trainer.name!r} trainer would ignore; set train.trainer=weighted_sft or write weight 1.0"
        )


def check_loss_turns_support(trainer: Any, loss_turns: Sequence[str], source: str) -> None:
    """Refuse ``loss_turns: "last"`` rows when the trainer would put loss on every assistant turn.

    ``trainer`` is its `limo.training.trainers.Trainer` entry (``name``, ``weighted``).

    Raises:
        ValueError: Some row asks for last-turn-only loss and the trainer does not apply it.
    """
    last = sum(1 for turns in loss_turns if turns == "last")
    if last and not trainer.weighted:
        raise ValueError(
            f"{source}: {last} of {len(loss_turns)} rows ask for loss on the last assistant turn only "
            f"(loss_turns: last), which the {trainer.name!r} trainer would ignore; use train.trainer=weighted_sft"
        )


def build_trainer(
    trainer_class: type,
    *,
    model_path: str,
    tokenizer: Any,
    sft_config: Any,
    dataset: Any,
    peft_config: Any,
    callbacks=(),
):
    """The TRL trainer; it loads the model from ``model_path`` with ``sft_config.model_init_kwargs``."""
    return trainer_class(
        model=model_path,
        args=sft_config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
    )


def find_resume_checkpoint(train_dir: str | Path, resume: bool) -> str | None:
    """The checkpoint to resume from, or None to start fresh.

    Raises:
        FileExistsError: ``train/`` already holds checkpoints and ``resume`` is off (a rerun would mix runs).
    """
    from transformers.trainer_utils import get_last_checkpoint

    folder = Path(train_dir)
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if last and not resume:
        raise FileExistsError(
            f"{folder} already holds checkpoints (last: {Path(last).name}); pass train.resume=true to continue "
            "that run, or remove the folder to start over"
        )
    if resume and not last:
        log.warning("train.resume=true but %s has no checkpoint: starting from the first step", folder)
    return last


def set_generation_eos(model: Any, tokenizer: Any, eos: str) -> None:
    """Make the generation config stop on the chat template's EOS (first in the list), keeping other stops."""
    eos_id = tokenizer.convert_tokens_to_ids(eos)
    config = model.generation_config
    existing = config.eos_token_id
    others = [i for i in (existing if isinstance(existing, list) else [existing]) if i is not None and i != eos_id]
    config.eos_token_id = [eos_id, *others] if others else eos_id
    config.pad_token_id = tokenizer.pad_token_id


def save_final_model(
    trainer: Any,
    tokenizer: Any,
    model_dir: str | Path,
    eos: str,
    *,
    base_path: str,
    model_init_kwargs: Mapping[str, Any],
) -> None:
    """Save model + tokenizer + generation config to ``model_dir`` as an ordinary HF model.

    LoRA adapters are merged into the base weights so evaluation loads a plain model. Under ZeRO-3 the base
    is partitioned across ranks and cannot be merged in place: the gathered adapter is saved first, then rank 0
    reloads the base on CPU, merges and overwrites the folder. Every rank must call this (ZeRO-3 gathers the
    weights collectively); only rank 0 writes.
    """
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    model = trainer.accelerator.unwrap_model(trainer.model)
    is_lora = hasattr(model, "merge_and_unload")
    base = model.get_base_model() if is_lora else model
    set_generation_eos(base, tokenizer, eos)
    if is_lora and not is_deepspeed_zero3_enabled():
        if trainer.accelerator.is_main_process:
            model.merge_and_unload().save_pretrained(model_dir)
            tokenizer.save_pretrained(model_dir)
    else:
        trainer.save_model(str(model_dir))
        if is_lora and trainer.accelerator.is_main_process:
            merge_saved_adapter(base_path, model_dir, dict(model_init_kwargs), base.generation_config)
    trainer.accelerator.wait_for_everyone()


def merge_saved_adapter(
    base_path: str, adapter_dir: str | Path, model_init_kwargs: dict[str, Any], generation
) -> None:
    """Replace the PEFT adapter in ``adapter_dir`` by base + adapter merged (loaded on CPU, outside ZeRO-3)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()  # training is over: load the base whole, not partitioned
    kwargs = {k: v for k, v in model_init_kwargs.items() if k != "attn_implementation"}
    base = AutoModelForCausalLM.from_pretrained(base_path, **kwargs)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.generation_config = generation
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        (Path(adapter_dir) / name).unlink(missing_ok=True)
    merged.save_pretrained(adapter_dir)


@dataclass(frozen=True)
class RunPlan:
    """What a run checked and decided before training: token lengths, the batch plan, the checkpoint to resume."""

    lengths: LengthReport
    plan: BatchPlan
    checkpoint: str | None


def plan_run(
    run: TrainRun,
    proc: ProcessInfo,
    split: tuple[int, int],
    config: Any,
    ids: Sequence[str],
    counts: Sequence[int],
    data: Mapping[str, Any],
) -> RunPlan:
    """Length report (stopping on truncation), batch plan and resume checkpoint, the same for every trainer.

    Rank 0 prints them and writes ``train/plan.json`` and ``train/config.yaml``.

    Raises:
        TruncationError: Examples exceed ``max_length`` and ``train.allow_truncation`` is off.
    """
    lengths = length_report(ids, counts, config.max_length)
    check_truncation(lengths, str(data["path"]), run.options.allow_truncation)
    plan = plan_batches(
        per_device=split[0],
        accumulation=split[1],
        world_size=proc.world_size,
        lengths=counts,
        epochs=config.num_train_epochs,
        max_steps=config.max_steps,
    )
    checkpoint = find_resume_checkpoint(run.paths.train_dir, run.options.resume)
    if proc.is_main:
        print(
            f"[train] data {data['path']} (sha256 {data['sha256']})\n[train] lengths: {lengths.summary()}", flush=True
        )
        print(f"[train] plan: {plan.summary()}", flush=True)
        chat = {"chat": run.chat.to_dict()} if run.chat else {}
        if run.chat:
            print(f"[train] {run.chat.line()}", flush=True)
        write_json(run.paths.plan, {"plan": plan.to_dict(), "lengths": lengths.to_dict(), "data": dict(data), **chat})
        write_text_atomic(run.paths.config, run.config_yaml)
    return RunPlan(lengths, plan, checkpoint)


def train_and_save(trainer: Any, tokenizer: Any, run: TrainRun, model_path: str, planned: RunPlan, config: Any) -> Any:
    """Train (resuming when planned) and save the final model; returns TRL's train output."""
    result = trainer.train(resume_from_checkpoint=planned.checkpoint)
    save_final_model(
        trainer,
        tokenizer,
        run.paths.model_dir,
        str(run.model["eos_token"]),
        base_path=model_path,
        model_init_kwargs=config.model_init_kwargs or {},
    )
    return result


def write_model_card(
    run: TrainRun,
    planned: RunPlan,
    data_path: str,
    data_checksum: str | None,
    metrics: Mapping[str, Any],
    **notes: Any,
) -> None:
    """``train/model/README.md``: recipe, base model, data, plan, lengths and metrics (``notes``: trainer extras)."""
    card = render_model_card(
        recipe=run.recipe,
        base_model=str(run.model["path"]),
        data_path=data_path,
        data_checksum=data_checksum,
        plan=planned.plan,
        lengths=planned.lengths,
        metrics=dict(metrics),
        system_prompt=run.options.system_prompt,
        lora=run.options.lora is not None,
        **notes,
    )
    write_text_atomic(f"{run.paths.model_dir}/README.md", card)
