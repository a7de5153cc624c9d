"""Two places where the libraries' defaults do work a training step throws away, and what limo calls instead.

Both compute the same loss and, to float rounding, the same gradients (tests/test_training_kernels.py); the speed is
measured by bench/training/sft_speed.py (docs/performance.md, "Training").

1. **Attention over a padding-free row.** TRL's padding-free collator packs a batch's examples into one row and
   passes where each begins (``cu_seq_lens_q``); only the FlashAttention kernels read that. Under ``sdpa``,
   transformers turns the row's position ids into a block-diagonal mask and attends with it: for 8 chains of ~235
   tokens, one 1,900 x 1,900 product per head where 8 products of 235 x 235 would do — 8x the attention work,
   forward and backward. `PACKED_ATTENTION` (``sdpa_packed``, registered with transformers' attention and mask
   interfaces) runs torch's own ``scaled_dot_product_attention`` on each example apart, causal, with no mask;
   a row without boundaries (padded batches, generation) takes plain ``sdpa``. limo picks it for every
   padding-free run whose recipe names no ``attn_implementation`` (`limo.training.build.build_trl_args`).
2. **The LM head on a CPU.** TRL's fused LM head (`trl.trainer.utils.add_fused_lm_head`) scores only the positions
   with a label where Triton runs it, and every position elsewhere, so that a compiled graph keeps one shape; on a
   CPU without ``torch.compile`` nothing recompiles, and the prompt's positions (a third of a chain's tokens in
   ``smol_limo``) cost a 49k-wide product, forward and twice backward, for no loss. Its torch fallback also works on
   tiles of 4,096 tokens x 32,768 vocabulary entries (512 MB at fp32), so each of its dozen element-wise passes goes
   to memory. `cpu_lm_head` scores only the labelled positions, in tiles of `CPU_TILE` (4 MB: they stay in cache),
   for the length of a training run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PACKED_ATTENTION = "sdpa_packed"
# (tokens, vocabulary entries) per tile of the LM head's loss on a CPU: 256 x 4,096 fp32 values, 4 MB
CPU_TILE = (256, 4096)


def packed_sdpa(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' attention-interface signature (query/key/value ``[batch, heads, tokens, head_dim]``; returns
    ``[batch, tokens, heads, head_dim]``): a single packed row with ``cu_seq_lens_q`` attends each example apart,
    anything else is plain sdpa with the mask transformers built (so is a row whose examples outgrow the layer's
    sliding window, or a layer with soft-capping or sinks)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    bounds = kwargs.get("cu_seq_lens_q")
    lengths = bounds.diff().tolist() if bounds is not None else []
    window = kwargs.get("sliding_window")
    apart = bounds is not None and query.shape[0] == 1 and query.shape[2] == key.shape[2]
    # what the causal product of each example alone does not honour goes to the masked product: a sliding window
    # shorter than an example, logit soft-capping, attention sinks
    apart = apart and (window is None or max(lengths) <= window)
    apart = apart and kwargs.get("softcap") is None and kwargs.get("s_aux") is None
    if not apart:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    import torch

    parts = [
        sdpa_attention_forward(module, q, k, v, None, dropout=dropout, scaling=scaling, is_causal=True)[0]
        for q, k, v in zip(query.split(lengths, 2), key.split(lengths, 2), value.split(lengths, 2), strict=True)
    ]
    return torch.cat(parts, dim=1), None


def packed_attention() -> str:
    """Register `packed_sdpa` with transformers (its mask: sdpa's, for the rows that fall back) and return its name,
    the ``attn_implementation`` to load a model with. Idempotent."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(PACKED_ATTENTION, packed_sdpa)
    AttentionMaskInterface.register(PACKED_ATTENTION, sdpa_mask)
    return PACKED_ATTENTION


@contextmanager
def cpu_lm_head(enabled: bool = True) -> Iterator[None]:
    """While open (and ``enabled``), TRL's fused LM head scores on a CPU only the positions with a label, in tiles
    of `CPU_TILE`; TRL's own choices come back on exit. Not for ``torch.compile`` runs: the number of labelled
    positions changes every batch, and a compiled graph would recompile for each.

    The three names it sets are TRL 1.16's (``constraints-cpu.txt`` pins it); tests/test_training_kernels.py fails
    when a TRL version renames them.
    """
    if not enabled:
        yield
        return
    import trl.kernels.chunked_logprob as chunked
    import trl.trainer.utils as fused

    saved = (fused._use_triton, fused._CHUNKED_LOGPROB_CHUNK_SIZE, chunked.TOKEN_CHUNK_SIZE)
    triton = saved[0]
    fused._use_triton = lambda device: device.type == "cpu" or triton(device)  # "compact": labelled positions only
    chunked.TOKEN_CHUNK_SIZE, fused._CHUNKED_LOGPROB_CHUNK_SIZE = CPU_TILE
    try:
        yield
    finally:
        fused._use_triton, fused._CHUNKED_LOGPROB_CHUNK_SIZE, chunked.TOKEN_CHUNK_SIZE = saved
