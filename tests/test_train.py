"""limo.train: data validation, length guard, batch plan, recipe -> SFTConfig, loss mask, end-to-end runs.

Unit tests build no trainer. Tests marked `slow` run real TRL training of the tiny model on CPU (seconds
each): the demo recipe end to end (model, tokenizer, generation config, model card), the loss mask of the
collated batch, resume after a stop, and LoRA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.records import DataError, write_jsonl
from limo.cli.compose import compose
from limo.config.sections import recipe_has, recipe_names
from limo.training.batch_plan import BatchPlanError, plan_batches, split_global_batch
from limo.training.data import (
    TruncationError,
    chat_rows,
    check_truncation,
    length_report,
    load_train_data,
)
from tests.launch import entry
from tests.shared_data import REPO_ROOT
from tests.shared_runs import computed_once


def sft_recipes() -> list[str]:
    """The recipes whose training is SFT; the preference recipes (train.trainer: dpo) build a DPOConfig, tested in
    tests/test_discopop.py. Only recipes with a train section (read from their files) are composed, once each."""
    trains = [name for name in recipe_names() if recipe_has(name, "train")]
    return [name for name in trains if compose(name).train.get("trainer", "sft") in ("sft", "weighted_sft")]


# This runs when every xdist worker collects, and composing the 24 training recipes took 7.4 s of a worker's CPU:
# computed once while the recipes and the code composing them are unchanged (`tests.shared_runs.computed_once`).
TRAIN_RECIPES = computed_once(
    "sft-recipes", [REPO_ROOT / "recipes", REPO_ROOT / "limo" / "config", REPO_ROOT / "limo" / "cli"], sft_recipes
)
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
# Short pairs the tiny model can memorise in a few dozen steps (greedy decoding must reproduce them and stop).
PAIRS = [
    ("What is 2 + 3?", "2 + 3 = 5. The answer is \\boxed{5}."),
    ("Find x if 2x = 8.", "Since 2x = 8, x = 4. The answer is \\boxed{4}."),
]


def _messages_file(path: Path, pairs=PAIRS) -> Path:
    rows = [
        {"id": f"ex{i}", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for i, (q, a) in enumerate(pairs)
    ]
    write_jsonl(path, rows)
    return path


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    return _messages_file(tmp_path_factory.mktemp("pairs") / "messages.jsonl")


# ------------------------------------------------------------------------------------------- batch plan


def test_global_batch_split_follows_world_size():
    assert split_global_batch(32, {"per_device_train_batch_size": 1}, 8) == (1, 4)
    assert split_global_batch(32, {"per_device_train_batch_size": 2}, 16) == (2, 1)
    assert split_global_batch(16, {}, 1) == (1, 16)
    assert split_global_batch(None, {"gradient_accumulation_steps": 3}, 2) == (1, 3)


def test_global_batch_not_divisible_names_the_numbers():
    with pytest.raises(BatchPlanError, match=r"global_batch_size=32 .* \(2\) x world size \(3\) = 6"):
        split_global_batch(32, {"per_device_train_batch_size": 2}, 3)


def test_global_batch_with_accumulation_is_an_error():
    with pytest.raises(BatchPlanError, match="either train.global_batch_size or"):
        split_global_batch(32, {"gradient_accumulation_steps": 4}, 8)


def test_plan_counts_steps_like_the_trainer():
    plan = plan_batches(per_device=1, accumulation=4, world_size=8, lengths=[100] * 817, epochs=15)
    # 817 examples / 8 ranks -> 103 batches per rank; ceil(103 / 4) = 26 optimizer steps per epoch.
    assert (plan.global_batch_size, plan.steps_per_epoch, plan.total_steps) == (32, 26, 390)
    assert plan.tokens_per_step == 3200 and plan.total_tokens == 3200 * 390
    capped = plan_batches(per_device=2, accumulation=1, world_size=1, lengths=[10, 30], epochs=3, max_steps=7)
    assert capped.total_steps == 7 and capped.tokens_per_step == 40


def test_plan_says_when_an_epochs_last_step_is_short():
    # 817 = 25 x 32 + 17: the last step of each epoch trains 17 examples (or repeats, across processes)
    short = plan_batches(per_device=1, accumulation=4, world_size=8, lengths=[100] * 817, epochs=1).summary()
    assert "817 examples is not a multiple of the global batch" in short and "takes 17 of 32" in short
    even = plan_batches(per_device=1, accumulation=4, world_size=8, lengths=[100] * 800, epochs=1).summary()
    assert "note:" not in even


# ------------------------------------------------------------------------------------------------- data


def test_bad_rows_are_named_by_file_row_and_field(tmp_path):
    good = {"id": "a", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    bad_content = {"id": "b", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]}
    system = {"id": "c", "messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
    path = tmp_path / "messages.jsonl"
    write_jsonl(path, [good, bad_content, system])
    with pytest.raises(DataError) as err:
        load_train_data(path)
    message = str(err.value)
    assert str(path) in message and "2 of 3 rows are invalid" in message
    assert "row 2 field messages[1].content" in message
    assert "row 3 field messages[0].role" in message and "no system turn" in message


def test_missing_file_and_duplicate_ids(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_train_data(tmp_path / "absent.jsonl")
    row = {"id": "x", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    write_jsonl(tmp_path / "dup.jsonl", [row, row])
    with pytest.raises(DataError, match="example 2 field 'id': duplicate id 'x'"):
        load_train_data(tmp_path / "dup.jsonl")


def test_system_prompt_is_added_first(pairs_file):
    data = load_train_data(pairs_file)
    rows = chat_rows(data.examples, SYSTEM)
    assert rows[0]["messages"][0] == {"role": "system", "content": SYSTEM}
    assert [m["role"] for m in rows[0]["messages"]] == ["system", "user", "assistant"]
    assert chat_rows(data.examples, None)[0]["messages"][0]["role"] == "user"
    assert data.checksum and len(data.checksum) == 64


def test_length_report_and_truncation_guard():
    report = length_report(["a", "b", "c", "d"], [10, 20, 30, 400], max_length=100)
    assert (report.longest, report.p50, report.p90, report.truncated_ids) == (400, 20, 400, ("d",))
    with pytest.raises(TruncationError, match=r"1 of 4 examples are longer than max_length=100 tokens .*: d\."):
        check_truncation(report, "m.jsonl", allow=False)
    check_truncation(report, "m.jsonl", allow=True)


def test_loss_weights_are_refused_not_ignored(tmp_path):
    from limo.training.build import check_weight_support
    from limo.training.trainers import TRAINERS

    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    write_jsonl(tmp_path / "w.jsonl", [{"id": "a", **row}, {"id": "b", "weight": 0.5, **row}])
    data = load_train_data(tmp_path / "w.jsonl")
    assert [e.weight for e in data.examples] == [1.0, 0.5]
    with pytest.raises(ValueError, match="1 of 2 rows carry a loss weight other than 1.0"):
        check_weight_support(TRAINERS["sft"], [e.weight for e in data.examples], data.path)
    check_weight_support(TRAINERS["sft"], [1.0, 1.0], data.path)
    write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "weight": "heavy", **row}])
    with pytest.raises(DataError, match="row 1 field weight"):
        load_train_data(tmp_path / "bad.jsonl")


# --------------------------------------------------------------------------------- recipes -> SFTConfig


@pytest.fixture
def restore_environ():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.parametrize("recipe", TRAIN_RECIPES)
def test_recipe_converts_to_sft_config(recipe, restore_environ):
    """Every recipe's train section builds an SFTConfig on CPU, DeepSpeed "auto" values filled (no model load)."""
    import gc

    from omegaconf import OmegaConf

    from limo.training import build
    from limo.training.options import TrainPaths, build_train_options

    cfg = compose(recipe)
    section = build_train_options(cfg)
    world = 1 if section.args.get("use_cpu") else 8  # CPU recipes run as one process, GPU recipes on a node
    split = split_global_batch(section.global_batch_size, section.args, world_size=world)
    deepspeed = OmegaConf.to_container(cfg.deepspeed, resolve=True) if cfg.get("deepspeed") else None
    args = build.build_sft_args(
        section.args,
        split,
        train_dir=TrainPaths("/tmp/x").train_dir,
        seed=cfg.seed,
        model_cfg=cfg.model,
        deepspeed=deepspeed,
        accelerator_config=None,
        on_cpu=True,
    )
    sft = build.build_sft_config(args)
    assert sft.use_cpu and sft.assistant_only_loss and sft.output_dir == "/tmp/x/train"
    assert sft.per_device_train_batch_size * sft.gradient_accumulation_steps * world == section.global_batch_size
    assert sft.model_init_kwargs["dtype"] == cfg.model.dtype
    if deepspeed:
        filled = sft.hf_deepspeed_config.config
        assert filled["zero_optimization"]["stage"] == deepspeed["zero_optimization"]["stage"]
        assert filled["train_micro_batch_size_per_gpu"] == sft.per_device_train_batch_size
        assert filled["gradient_accumulation_steps"] == sft.gradient_accumulation_steps
    del sft
    if deepspeed:  # drop the global ZeRO-3 weakref before other tests load models (only a DeepSpeed config sets it)
        gc.collect()


def test_paper_hyperparameters_are_in_the_recipes():
    limo, s1 = compose("limo").train, compose("s1").train
    assert (limo.global_batch_size, limo.args.learning_rate, limo.args.num_train_epochs) == (32, 5e-6, 15)
    assert (limo.args.max_length, limo.args.lr_scheduler_type, limo.args.warmup_steps) == (16384, "cosine", 0)
    assert limo.args.model_init_kwargs.attn_implementation == "flash_attention_2"
    assert (s1.global_batch_size, s1.args.learning_rate, s1.args.num_train_epochs, s1.args.max_length) == (
        16,
        1e-5,
        5,
        32768,
    )
    assert (s1.args.warmup_steps, s1.args.weight_decay, s1.args.adam_beta2) == (0.05, 1e-4, 0.95)
    assert compose("limo_lora").train.lora.r > 0


def test_unknown_train_key_fails():
    from eval.options import OptionsError
    from limo.training.options import build_train_options

    with pytest.raises(OptionsError, match=r"train.global_batch: unknown key"):
        build_train_options(compose("demo", ["+train.global_batch=3"]))


def test_run_owned_args_are_rejected():
    from limo.training.build import build_sft_args

    with pytest.raises(ValueError, match="train.args sets output_dir"):
        build_sft_args(
            {"output_dir": "x"},
            (1, 1),
            train_dir="r/train",
            seed=0,
            model_cfg={"dtype": "float32"},
            deepspeed=None,
            accelerator_config=None,
            on_cpu=True,
        )


# ------------------------------------------------------------------------------------- real TRL (slow)


def _demo_cfg(out: Path, data: Path, model_dir: Path, *extra: str):
    return compose(
        "demo",
        [f"output_dir={out}", f"train.data={data}", f"model.path={model_dir}", "model.build_tiny=false", *extra],
    )


@pytest.mark.slow
def test_loss_mask_starts_exactly_at_the_assistant_turn(tmp_path, pairs_file, tiny_model_dir):
    """The collated batch labels exactly the assistant turn: its text, the end-of-turn token, nothing before."""
    from limo.training import build

    cfg = _demo_cfg(tmp_path, pairs_file, tiny_model_dir)
    tokenizer = build.build_tokenizer(str(tiny_model_dir), cfg.model)
    rows = chat_rows(load_train_data(pairs_file).examples, SYSTEM)
    sft = build.build_sft_config(
        build.build_sft_args(
            cfg.train.args,
            (2, 1),
            train_dir=str(tmp_path / "train"),
            seed=0,
            model_cfg=cfg.model,
            deepspeed=None,
            accelerator_config=None,
            on_cpu=True,
        )
    )
    trainer = build.build_trainer(
        build.sft_trainer_class(weighted=False),
        model_path=str(tiny_model_dir),
        tokenizer=tokenizer,
        sft_config=sft,
        dataset=build.build_dataset(rows),
        peft_config=None,
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    for row, ids, labels in zip(rows, batch["input_ids"], batch["labels"], strict=True):
        labelled = (labels != -100).nonzero().flatten().tolist()
        start, end = labelled[0], labelled[-1] + 1
        assert labelled == list(range(start, end)), "the labelled span is contiguous"
        answer = row["messages"][-1]["content"]
        assert tokenizer.decode(ids[:start]).endswith("<|im_start|>assistant")
        assert tokenizer.decode(ids[start:end]) == f"\n{answer}<|im_end|>\n"
        assert tokenizer.convert_tokens_to_ids("<|im_end|>") in labels[start:end].tolist()
        prompt = tokenizer.apply_chat_template(row["messages"][:-1], tokenize=False)
        assert tokenizer.decode(ids[:start]).startswith(prompt) and SYSTEM in prompt


def test_a_tokenizer_is_fingerprinted_by_its_backend_and_not_by_the_vocabulary_it_was_built_from():
    """datasets fingerprints each `Dataset.map` TRL hands the tokenizer to by pickling it; limo leaves out the
    vocabulary and merges a tokenizer class keeps beside its backend (Gemma 3's: 262,144 and 514,906 entries, 3.8 s
    a map), which the backend holds too: the fingerprint still follows the vocabulary and the template."""
    import threading

    from datasets.fingerprint import Hasher
    from transformers import GemmaTokenizer

    from limo.training.build import BUILD_INPUTS, fingerprint_without_build_inputs

    def tokenizer(extra: str = "") -> GemmaTokenizer:
        vocab = {
            t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", "a", "b", "ab", *filter(None, [extra])])
        }
        return GemmaTokenizer(vocab=vocab, merges=[("a", "b")])

    fingerprint_without_build_inputs(GemmaTokenizer)
    fingerprint_without_build_inputs(GemmaTokenizer)  # once is enough; a second call changes nothing
    plain = tokenizer()
    assert all(name in plain.__dict__ for name in BUILD_INPUTS)  # what the class keeps, which the hash leaves out
    unpicklable = threading.Lock()  # hashing fails on it: only a hash that leaves the build inputs out succeeds
    kept = plain.__dict__["_vocab"]
    plain.__dict__["_vocab"] = {"a": unpicklable}
    first = Hasher.hash(plain)
    assert plain.__dict__["_vocab"] == {"a": unpicklable}  # put back after hashing
    plain.__dict__["_vocab"] = kept
    assert Hasher.hash(plain) == first == Hasher.hash(tokenizer())
    assert Hasher.hash(tokenizer("ba")) != first  # another vocabulary: its backend differs
    templated = tokenizer()
    templated.chat_template = "{{ messages }}"
    assert Hasher.hash(templated) != first


@pytest.mark.slow
def test_demo_recipe_trains_and_saves_a_model_that_stops(tmp_path, pairs_file, repo_root):
    """`python -m limo.train recipe=demo` end to end: outputs, generation config EOS, greedy output ends in EOS."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    command = entry(
        "limo.train",
        "recipe=demo",
        f"output_dir={out}",
        f"train.data={pairs_file}",
        f"model.path={tmp_path / 'tiny'}",
        "train.global_batch_size=2",
        "train.args.max_steps=60",
        "train.args.learning_rate=3e-3",
        "train.args.lr_scheduler_type=constant",
    )
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "would be truncated" in done.stdout and "world size 1" in done.stdout
    model_dir = out / "train" / "model"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert json.loads((model_dir / "generation_config.json").read_text())["eos_token_id"] == eos_id
    for question, answer in PAIRS:
        prompt = tokenizer.apply_chat_template(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            tokenize=False,
            add_generation_prompt=True,
        )
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            generated = model.generate(ids, max_new_tokens=60, do_sample=False)[0, ids.shape[1] :]
        assert generated[-1].item() == eos_id, tokenizer.decode(generated)
        assert tokenizer.decode(generated, skip_special_tokens=True).strip() == answer
    plan = json.loads((out / "train" / "plan.json").read_text())
    history = json.loads((out / "train" / "log_history.json").read_text())
    assert plan["plan"]["total_steps"] == 60 == history[-1]["step"]
    assert plan["lengths"]["truncated"] == 0 and plan["data"]["sha256"]
    card = (model_dir / "README.md").read_text()
    assert "recipe=demo" in card and plan["data"]["sha256"] in card and "train_loss" in card
    assert "name: demo" in (out / "train" / "config.yaml").read_text()


class _StopAtStep:
    """Callback that ends training after ``step`` (as a kill right after a checkpoint would)."""

    def __init__(self, step: int):
        self.step = step

    def __getattr__(self, name):  # every other TrainerCallback event is a no-op
        return lambda *args, **kwargs: None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


def _losses(history):
    return {row["step"]: row["loss"] for row in history if "loss" in row}


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_losses(tmp_path, tiny_model_dir, restore_environ):
    from limo.train import train
    from limo.training.champ_examples import write_champ_messages

    data = write_champ_messages(tmp_path / "messages.jsonl", limit=8)
    steps = ["train.args.max_steps=6", "train.args.save_strategy=steps", "+train.args.save_steps=3"]
    uninterrupted = train(_demo_cfg(tmp_path / "full", data, tiny_model_dir, *steps)).state
    full = _losses(uninterrupted.log_history)
    plan = json.loads((tmp_path / "full" / "train" / "plan.json").read_text())["plan"]
    # 8 examples, 2 per device x 2 accumulation: the plan's 2 steps per epoch are the trainer's.
    assert plan["steps_per_epoch"] == 2 and uninterrupted.epoch == pytest.approx(6 / plan["steps_per_epoch"])
    stopped = tmp_path / "stopped"
    partial = train(_demo_cfg(stopped, data, tiny_model_dir, *steps), callbacks=[_StopAtStep(3)])
    assert partial.state.global_step == 3 and (stopped / "train" / "checkpoint-3").is_dir()
    with pytest.raises(FileExistsError, match="train.resume=true"):
        train(_demo_cfg(stopped, data, tiny_model_dir, *steps))
    resumed = _losses(train(_demo_cfg(stopped, data, tiny_model_dir, *steps, "train.resume=true")).state.log_history)
    assert sorted(full) == [1, 2, 3, 4, 5, 6] and {4, 5, 6} <= set(resumed)
    for step in (4, 5, 6):
        assert resumed[step] == pytest.approx(full[step], rel=1e-6), step


@pytest.mark.slow
def test_lora_trains_adapters_and_saves_a_merged_model(tmp_path, pairs_file, tiny_model_dir, restore_environ):
    import torch
    from transformers import AutoModelForCausalLM

    from limo.train import train

    lora = "+train.lora={r: 4, alpha: 8, dropout: 0.0, target_modules: [q_proj, v_proj]}"
    train(_demo_cfg(tmp_path, pairs_file, tiny_model_dir, lora, "train.global_batch_size=2", "train.args.max_steps=3"))
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    tuned = AutoModelForCausalLM.from_pretrained(tmp_path / "train" / "model", dtype=torch.float32).state_dict()
    assert set(base) == set(tuned), "merged: plain HF weights, no adapter keys"
    changed = {name for name in base if not torch.equal(base[name], tuned[name])}
    assert changed and all(("q_proj" in name or "v_proj" in name) for name in changed), changed


@pytest.mark.slow
def test_lora_under_zero3_without_a_launcher_saves_a_merged_model(tmp_path, pairs_file, tiny_model_dir, repo_root):
    """One process, no torchrun: DeepSpeed over gloo still starts; the partitioned base is merged after training.
    It compiles nothing: DeepSpeed's shared-memory all-reduce (inference only) is not built into an empty extensions
    folder (`limo.training.distributed.skip_shm_op`)."""
    import torch
    from transformers import AutoModelForCausalLM

    command = [
        sys.executable,
        "-m",
        "limo.train",
        "recipe=demo",
        f"output_dir={tmp_path}",
        f"train.data={pairs_file}",
        f"model.path={tiny_model_dir}",
        "model.build_tiny=false",
        "deepspeed=zero3",
        "train.global_batch_size=2",
        "train.args.max_steps=3",
        "+train.lora={r: 4, alpha: 8, dropout: 0.0, target_modules: [q_proj, v_proj]}",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    extensions = tmp_path / "torch_extensions"
    env["TORCH_EXTENSIONS_DIR"] = str(extensions)
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    built = [path.name for path in extensions.rglob("*") if path.is_file()]  # the lock check makes the op's folder
    assert not built, built
    saved = tmp_path / "train" / "model"
    assert not (saved / "adapter_config.json").exists()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).state_dict()
    tuned = AutoModelForCausalLM.from_pretrained(saved, dtype=torch.float32).state_dict()
    changed = {name for name in base if not torch.equal(base[name], tuned[name])}
    assert changed and all(("q_proj" in name or "v_proj" in name) for name in changed), changed


@pytest.mark.slow
def test_weighted_trainer_equals_sft_at_weight_one_and_scales_the_loss(tmp_path, tiny_model_dir, restore_environ):
    from eval.records import read_jsonl
    from limo.train import train
    from limo.training.champ_examples import write_champ_messages

    data = write_champ_messages(tmp_path / "messages.jsonl", limit=8)
    doubled = tmp_path / "doubled.jsonl"
    write_jsonl(doubled, [{**row, "weight": 2.0} for row in read_jsonl(data)])
    steps = "train.args.max_steps=3"
    plain = _losses(train(_demo_cfg(tmp_path / "sft", data, tiny_model_dir, steps)).state.log_history)
    weighted = "train.trainer=weighted_sft"
    ones = _losses(train(_demo_cfg(tmp_path / "w1", data, tiny_model_dir, steps, weighted)).state.log_history)
    assert [ones[s] for s in (1, 2, 3)] == pytest.approx([plain[s] for s in (1, 2, 3)], rel=1e-6)
    twos = _losses(train(_demo_cfg(tmp_path / "w2", doubled, tiny_model_dir, steps, weighted)).state.log_history)
    assert twos[1] == pytest.approx(2 * plain[1], rel=1e-6), "same first batch, every token counted twice"
    with pytest.raises(ValueError, match="set train.trainer=weighted_sft"):
        train(_demo_cfg(tmp_path / "refused", doubled, tiny_model_dir, steps))


def test_padding_free_without_flash_attention_on_a_gpu_is_announced():
    from limo.training.build import padding_free_note

    note = padding_free_note(True, {"attn_implementation": "sdpa"}, on_gpu=True)
    assert note is not None and "attn_implementation=sdpa" in note and "padding_free=false" in note
    assert "attn_implementation=eager" in (padding_free_note(True, {"attn_implementation": "eager"}, True) or "")
    assert padding_free_note(True, {"attn_implementation": "flash_attention_2"}, on_gpu=True) is None
    assert padding_free_note(True, {"attn_implementation": "kernels-community/flash-attn3"}, on_gpu=True) is None
    assert padding_free_note(True, None, on_gpu=True) is None  # unset: sdpa_packed, each example attended apart
    assert padding_free_note(False, None, on_gpu=True) is None
    assert padding_free_note(True, {"attn_implementation": "sdpa"}, on_gpu=False) is None  # CPUs: measured apart
    # the demo's recipe names no attention (padding-free rows attend example by example); LIMO's own is flash, padded
    smol = compose("smol_limo").train.args
    assert padding_free_note(bool(smol.padding_free), smol.get("model_init_kwargs"), on_gpu=True) is None
    limo = compose("limo").train.args
    assert padding_free_note(bool(limo.padding_free), dict(limo.model_init_kwargs), on_gpu=True) is None
