"""limo.training.kernels: per-example attention of a padding-free row, and TRL's fused LM head on a CPU scoring only
the labelled positions — the same loss and gradients as the libraries' own paths, on a real (tiny) model."""

from __future__ import annotations

import itertools

import pytest
import torch

from limo.training.kernels import CPU_TILE, PACKED_ATTENTION, cpu_lm_head, packed_attention


def _packed_batch(lengths, vocab, seed=0):
    """A padding-free row as TRL's collator builds it: ids, labels (the first third of each example is prompt),
    position ids restarting at every example, and the boundaries."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (sum(lengths),), generator=generator)
    labels = ids.clone()
    for start, length in zip(itertools.accumulate([0, *lengths]), lengths, strict=False):
        labels[start : start + length // 3] = -100
    positions = torch.cat([torch.arange(n) for n in lengths])
    bounds = torch.tensor([0, *itertools.accumulate(lengths)], dtype=torch.int32)
    return {
        "input_ids": ids[None],
        "labels": labels[None],
        "position_ids": positions[None],
        "cu_seq_lens_q": bounds,
        "cu_seq_lens_k": bounds,
        "max_length_q": max(lengths),
        "max_length_k": max(lengths),
    }


def _model(path, attention):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation=attention)


def _loss_and_grads(model, batch, **extra):
    model.zero_grad(set_to_none=True)
    out = model(**batch, use_cache=False, **extra)
    loss = out.loss if out.loss is not None else -out.log_probs.sum() / out.label_mask.sum()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_packed_attention_is_the_block_masked_product(tiny_model_dir):
    name = packed_attention()
    assert name == PACKED_ATTENTION == packed_attention()  # registering twice is harmless
    batch = _packed_batch([7, 12, 5, 9], vocab=500)
    masked, packed = _model(tiny_model_dir, "sdpa"), _model(tiny_model_dir, name)
    loss, grads = _loss_and_grads(masked, batch)
    import transformers.integrations.sdpa_attention as sdpa

    lengths, original = [], sdpa.sdpa_attention_forward

    def spy(module, query, *args, **kwargs):
        lengths.append(query.shape[2])
        return original(module, query, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sdpa, "sdpa_attention_forward", spy)
        loss_packed, grads_packed = _loss_and_grads(packed, batch)
    assert lengths == [7, 12, 5, 9] * packed.config.num_hidden_layers  # each example apart, in every layer
    assert loss_packed == pytest.approx(loss.item(), rel=1e-6)
    assert grads.keys() == grads_packed.keys() and grads
    for key, grad in grads.items():
        torch.testing.assert_close(grads_packed[key], grad, rtol=1e-4, atol=1e-6)
    # the row really is attended example by example: changing the first example leaves the others' logits alone
    changed = {**batch, "input_ids": batch["input_ids"].clone()}
    changed["input_ids"][0, :7] = 3
    with torch.no_grad():
        before, after = (packed(**b, use_cache=False).logits[0, 7:] for b in (batch, changed))
    torch.testing.assert_close(after, before)


def test_packed_attention_falls_back_to_sdpa_without_boundaries(tiny_model_dir):
    """Padded batches and generation carry no boundaries: the same logits and tokens as plain sdpa."""
    masked, packed = _model(tiny_model_dir, "sdpa"), _model(tiny_model_dir, packed_attention())
    ids = torch.randint(3, 500, (2, 10), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    with torch.no_grad():
        torch.testing.assert_close(
            packed(input_ids=ids, attention_mask=mask).logits, masked(input_ids=ids, attention_mask=mask).logits
        )
        kwargs = {"input_ids": ids, "attention_mask": mask, "max_new_tokens": 6, "do_sample": False}
        assert packed.generate(**kwargs).tolist() == masked.generate(**kwargs).tolist()


def test_cpu_lm_head_scores_only_labelled_positions_with_the_same_loss(tiny_model_dir):
    import trl.kernels.chunked_logprob as chunked
    import trl.trainer.utils as fused
    from trl.trainer.utils import add_fused_lm_head

    model = _model(tiny_model_dir, "sdpa")
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    batch = _packed_batch([30, 41, 25], vocab=500, seed=2)
    extra = {"fused_lm_head": True}
    loss, grads = _loss_and_grads(model, batch, **extra)
    full = model(**batch, use_cache=False, **extra)
    saved = (fused._use_triton, fused._CHUNKED_LOGPROB_CHUNK_SIZE, chunked.TOKEN_CHUNK_SIZE)
    scored = []
    original = chunked.ChunkedLogProbFunction.forward

    def counting(ctx, hidden, *args, **kwargs):
        scored.append(hidden.shape[0])
        return original(ctx, hidden, *args, **kwargs)

    with cpu_lm_head(), pytest.MonkeyPatch.context() as patch:
        assert (chunked.TOKEN_CHUNK_SIZE, fused._CHUNKED_LOGPROB_CHUNK_SIZE) == CPU_TILE
        patch.setattr(chunked.ChunkedLogProbFunction, "forward", staticmethod(counting))
        loss_cpu, grads_cpu = _loss_and_grads(model, batch, **extra)
        compact = model(**batch, use_cache=False, **extra)
    assert (fused._use_triton, fused._CHUNKED_LOGPROB_CHUNK_SIZE, chunked.TOKEN_CHUNK_SIZE) == saved  # restored
    labelled = int((batch["labels"][0, 1:] != -100).sum())
    assert scored == [labelled, labelled] and labelled < batch["input_ids"].shape[1] - 1
    assert loss_cpu == pytest.approx(loss.item(), rel=1e-6)
    for field in ("log_probs", "entropy", "is_top1", "label_mask"):
        torch.testing.assert_close(getattr(compact, field), getattr(full, field), rtol=1e-5, atol=1e-6)
    for key, grad in grads.items():
        torch.testing.assert_close(grads_cpu[key], grad, rtol=1e-4, atol=1e-6)
    with cpu_lm_head(enabled=False):
        assert fused._use_triton is saved[0]


def test_padding_free_runs_attend_example_by_example_unless_the_recipe_names_an_attention():
    from limo.training.build import build_trl_args

    common = {"train_dir": "/tmp/x", "seed": 0, "model_cfg": {"dtype": "float32"}, "deepspeed": None}
    run = {**common, "accelerator_config": None, "on_cpu": True}
    args = build_trl_args({"padding_free": True}, (8, 1), **run)
    assert args["model_init_kwargs"]["attn_implementation"] == PACKED_ATTENTION
    padded = build_trl_args({"padding_free": False}, (8, 1), **run)
    assert "attn_implementation" not in padded["model_init_kwargs"]
    named = {"padding_free": True, "model_init_kwargs": {"attn_implementation": "eager"}}
    assert build_trl_args(named, (8, 1), **run)["model_init_kwargs"]["attn_implementation"] == "eager"


def test_what_the_per_example_product_does_not_honour_takes_the_masked_one():
    """A sliding window shorter than an example, soft-capping, sinks: plain sdpa with transformers' mask."""
    import transformers.integrations.sdpa_attention as sdpa

    from limo.training.kernels import packed_sdpa

    module = torch.nn.Module()
    module.is_causal, module.num_key_value_groups = True, 1
    query, key, value = (torch.randn(1, 2, 9, 8) for _ in range(3))
    mask = torch.ones(1, 1, 9, 9, dtype=torch.bool).tril()
    bounds = torch.tensor([0, 5, 9], dtype=torch.int32)
    seen = []
    original = sdpa.sdpa_attention_forward

    def spy(module, query, key, value, attention_mask, **kwargs):
        seen.append((query.shape[2], attention_mask is not None))
        return original(module, query, key, value, attention_mask, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sdpa, "sdpa_attention_forward", spy)
        packed_sdpa(module, query, key, value, mask, cu_seq_lens_q=bounds, sliding_window=8)
        assert seen == [(5, False), (4, False)]  # the window holds every example: apart
        seen.clear()
        packed_sdpa(module, query, key, value, mask, cu_seq_lens_q=bounds, sliding_window=4)
        assert seen == [(9, True)]
        seen.clear()
        with pytest.raises(ValueError, match="softcap"):
            packed_sdpa(module, query, key, value, mask, cu_seq_lens_q=bounds, softcap=30.0)
        assert seen == [(9, True)]
