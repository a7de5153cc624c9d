"""Tiny offline models: deterministic, reloadable offline with an identical tokenizer, and the overfit variant."""

from __future__ import annotations

import pytest

from limo.models.tiny import DEFAULT_OVERFIT_PAIRS, EOS_TOKEN, build_tiny_model, build_tokenizer, chat_prompt

TEXT = "Solve  x^2 = 4.\n\n\\boxed{2} café — 日本 <|im_end|>"


def test_reloaded_tokenizer_encodes_like_ours(tiny_model_dir):
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert reloaded(TEXT)["input_ids"] == build_tokenizer()(TEXT)["input_ids"]
    assert reloaded.eos_token == EOS_TOKEN
    assert "<|im_start|>assistant" in chat_prompt(reloaded, "hi")


def test_same_seed_same_weights(tmp_path, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM

    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    state = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    assert all(torch.equal(v, AutoModelForCausalLM.from_pretrained(again).state_dict()[k]) for k, v in state.items())
    assert not torch.equal(
        state["model.embed_tokens.weight"],
        AutoModelForCausalLM.from_pretrained(other).state_dict()["model.embed_tokens.weight"],
    )


def test_generation_config_eos_matches_chat_template(tiny_model_dir):
    from transformers import AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert GenerationConfig.from_pretrained(tiny_model_dir).eos_token_id == tokenizer.convert_tokens_to_ids(
        "<|im_end|>"
    )


@pytest.mark.slow
def test_overfit_model_reproduces_its_pairs_and_stops(overfit_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(overfit_model_dir)
    model = AutoModelForCausalLM.from_pretrained(overfit_model_dir)
    for prompt, response in DEFAULT_OVERFIT_PAIRS:
        ids = tokenizer(chat_prompt(tokenizer, prompt), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=64, do_sample=False)
        new = out[0, ids["input_ids"].shape[1] :]
        assert tokenizer.decode(new, skip_special_tokens=True) == response
        assert new[-1].item() == tokenizer.eos_token_id
