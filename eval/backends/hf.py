"""Generation with a transformers model: batched, left-padded, CPU or GPU, seeded per row.

`decode` is the loop of transformers' ``generate`` with a KV cache, except that a row that stops leaves the batch
(``generate`` carries every row to the end of the longest). Reproducibility regardless of batching: `RowSampler`
makes each row's choice itself — temperature, top-p, then one uniform draw from that row's own
``torch.Generator`` seeded with the request's seed. A row's draws therefore never depend on which other rows share
its batch, so batch size 1 and 4 give the same responses, and a resumed run regenerates identical rows. The same
sampler applies budget forcing (`eval.backends.budget`). The model's ``generation_config`` sampling defaults
(repetition penalty, top-k, ...) are deliberately not applied: the protocol in the recipe is the whole protocol.

torch and transformers are imported inside functions, so importing this module stays light.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from eval.backends.base import FinishReason, Generation, GenerationRequest, SamplingParams
from eval.backends.budget import BudgetForcing, RowBudget
from eval.backends.model_source import resolve_model_path
from eval.records import require_hub

log = logging.getLogger(__name__)


class ModelNotFoundError(FileNotFoundError):
    """The model folder does not exist or holds no model."""


class HFBackend:
    """transformers backend.

    Args:
        model_path: Folder with model and tokenizer (HF format) or a hub id.
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        device: ``cpu``, ``cuda``, ``cuda:1``...; None picks CUDA when available.
        batch_size: Rows per ``generate`` call.
        chat_template: Jinja text replacing the tokenizer's template (None: the model's own).
        budget: Budget forcing settings (None: off).
        revision: Hub revision when ``model_path`` is a hub id.
        end_of_turn: The token the chat template closes a turn with (the model group's ``eos_token``), a stop token
            beside the model's EOS: a base model's EOS (Gemma's ``<eos>``) is not the token its instruct template
            ends a turn with (``<end_of_turn>``), and a model that never saw the template would run on past it.
    """

    name = "hf"

    def __init__(
        self,
        model_path: str,
        *,
        dtype: str = "float32",
        device: str | None = None,
        batch_size: int = 8,
        chat_template: str | None = None,
        budget: BudgetForcing | None = None,
        revision: str | None = None,
        end_of_turn: str | None = None,
    ):
        self.model_path = str(model_path)
        self.batch_size = max(1, int(batch_size))
        self.budget = budget if budget is not None and budget.active else None
        self.model, self.tokenizer = load_model(self.model_path, dtype=dtype, device=device, revision=revision)
        if chat_template:
            self.tokenizer.chat_template = chat_template
        self.eos_ids = eos_token_ids(self.model, self.tokenizer, end_of_turn)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        """Generate every request, in order; rows sharing sampling parameters are batched together, in order of
        prompt length, so that a batch pads its prompts little (each row's result does not depend on its batch)."""
        results: dict[str, Generation] = {}
        lengths = {r.id: len(self.render(r)) for r in requests}
        ordered = sorted(requests, key=lambda r: (_sampling_key(r.sampling), lengths[r.id]))
        for _, group in groupby(ordered, key=lambda r: _sampling_key(r.sampling)):
            rows = list(group)
            for start in range(0, len(rows), self.batch_size):
                for generation in self._generate_batch(rows[start : start + self.batch_size]):
                    results[generation.request_id] = generation
        return [results[r.id] for r in requests]

    def render(self, request: GenerationRequest) -> str:
        """The prompt text for a request: its messages through the chat template, assistant turn opened."""
        return self.tokenizer.apply_chat_template(list(request.messages), tokenize=False, add_generation_prompt=True)

    def _generate_batch(self, rows: Sequence[GenerationRequest]) -> list[Generation]:
        import torch

        sampling = rows[0].sampling
        encoded = self.tokenizer(
            [self.render(r) for r in rows], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.model.device)
        sampler = RowSampler(rows, self._row_budgets(rows), device=self.model.device)
        max_new = sampling.max_new_tokens
        if self.budget is not None:
            max_new = self.budget.max_new_tokens(max_new, len(self._final_ids()))
        with torch.inference_mode():
            ids, mask = encoded["input_ids"], encoded["attention_mask"]
            new_tokens = decode(self.model, ids, mask, sampler, max_new, self.eos_ids)
        return [self._to_generation(r, ids, sampling) for r, ids in zip(rows, new_tokens, strict=True)]

    def _to_generation(self, request: GenerationRequest, ids: list[int], sampling: SamplingParams) -> Generation:
        stop_at = next((i for i, t in enumerate(ids) if t in self.eos_ids), None)
        kept = ids if stop_at is None else ids[: stop_at + 1]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        finish: FinishReason = "length" if stop_at is None else "stop"
        text, finish = apply_stop_strings(text, finish, sampling.stop)
        return Generation(request.id, text, finish, len(kept), {"seed": request.seed})

    def _row_budgets(self, rows: Sequence[GenerationRequest]) -> list[RowBudget] | None:
        if self.budget is None:
            return None
        end_id = self._end_think_id()
        wait_ids = tuple(self.tokenizer.encode(self.budget.wait_text, add_special_tokens=False))
        final = self._final_ids()
        return [RowBudget(self.budget, end_id, wait_ids, final, frozenset(self.eos_ids)) for _ in rows]

    def _end_think_id(self) -> int:
        assert self.budget is not None
        if self.budget.end_think is None:
            return min(self.eos_ids)
        ids = self.tokenizer.encode(self.budget.end_think, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"budget forcing: end_think {self.budget.end_think!r} is {len(ids)} tokens, not one")
        return int(ids[0])

    def _final_ids(self) -> tuple[int, ...]:
        assert self.budget is not None
        ids = self.tokenizer.encode(self.budget.final_answer_text, add_special_tokens=False)
        if self.budget.end_think is not None:
            ids = [self._end_think_id(), *ids]
        return tuple(ids)


class RowSampler:
    """Picks each row's next token with that row's own random generator.

    Temperature and top-p (nucleus) are applied to the rows still writing at once; then each row draws one
    uniform number from its own ``torch.Generator`` and takes the token where the nucleus's cumulative
    probability first reaches it (inverse-CDF sampling). Rows with temperature 0 take the argmax. Every row
    draws exactly one number per step it writes, so its stream never depends on its neighbours. Budget forcing,
    when given, may replace the choice (see `eval.backends.budget.RowBudget`).
    """

    def __init__(self, rows: Sequence[GenerationRequest], budgets: list[RowBudget] | None, *, device: Any):
        import torch

        self.temperatures = torch.tensor([r.sampling.temperature for r in rows], device=device)
        self.top_ps = torch.tensor([r.sampling.top_p for r in rows], device=device)
        self.generators = [torch.Generator(device=device).manual_seed(int(r.seed)) for r in rows]
        self.budgets = budgets

    def choose(self, scores: Any, rows: Sequence[int] | None = None) -> list[int]:
        """The next token of each row in ``rows`` (indices into the batch this sampler was built for; None: all of
        them, in order), ``scores`` holding one row of logits for each."""
        chosen = self._sample(scores.float(), rows)
        if self.budgets:
            order = range(len(chosen)) if rows is None else rows
            chosen = [self._apply_budget(row, token) for row, token in zip(order, chosen, strict=True)]
        return chosen

    def _apply_budget(self, row: int, token: int) -> int:
        assert self.budgets is not None
        queued = self.budgets[row].forced()
        return queued if queued is not None else self.budgets[row].next_token(token)

    def _sample(self, logits: Any, rows: Sequence[int] | None = None) -> list[int]:
        import torch

        temperatures, top_ps, generators = self.temperatures, self.top_ps, self.generators
        if rows is not None:
            index = torch.tensor(list(rows), device=logits.device)
            temperatures, top_ps = temperatures[index], top_ps[index]
            generators = [generators[row] for row in rows]
        greedy = temperatures <= 0
        argmax = torch.argmax(logits, dim=-1)
        uniforms = torch.stack([torch.rand((), generator=g, device=logits.device) for g in generators])
        if bool(greedy.all()):
            return argmax.tolist()
        temperature = torch.where(greedy, torch.ones_like(temperatures), temperatures)
        probs = torch.softmax(logits / temperature[:, None], dim=-1)
        probs, order = torch.sort(probs, dim=-1, descending=True)
        outside = torch.cumsum(probs, dim=-1) - probs > top_ps[:, None]
        cumulative = torch.cumsum(probs.masked_fill(outside, 0.0), dim=-1)
        targets = (uniforms * cumulative[:, -1])[:, None]
        index = torch.searchsorted(cumulative, targets).clamp(max=logits.shape[-1] - 1)
        sampled = order.gather(1, index).squeeze(1)
        return torch.where(greedy, argmax, sampled).tolist()


def decode(model: Any, input_ids: Any, attention_mask: Any, sampler: RowSampler, max_new: int, eos_ids: set[int]):
    """Each row's new token ids (its stop token included), ``sampler`` choosing every token: the loop of transformers'
    greedy ``generate`` with a KV cache, except that a row that stops leaves the batch (its cache rows too), so the
    later steps compute only the rows still writing — ``generate`` carries every row to the longest one's end.

    ``input_ids`` and ``attention_mask`` are the left-padded prompts; positions count each row's own tokens (its
    padding at 0), as ``generate`` does.
    """
    import torch
    from transformers import DynamicCache

    out: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    rows = list(range(input_ids.shape[0]))  # the batch rows still writing, in the order of the tensors below
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    cache = DynamicCache(config=model.config)
    step_ids, mask = input_ids, attention_mask
    for _ in range(max_new):
        logits = model(
            input_ids=step_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1, :]
        tokens = sampler.choose(logits, rows)
        keep = []
        for place, (row, token) in enumerate(zip(rows, tokens, strict=True)):
            out[row].append(token)
            if token not in eos_ids:
                keep.append(place)
        if not keep:
            break
        index = torch.tensor(keep, device=input_ids.device)
        if len(keep) < len(rows):
            cache.batch_select_indices(index)
            mask, positions = mask[index], positions[index]
            rows = [rows[place] for place in keep]
        step_ids = torch.tensor([[tokens[place]] for place in keep], device=input_ids.device)
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=-1)
        positions = positions[:, -1:] + 1
    return out


def apply_stop_strings(text: str, finish: FinishReason, stop: Sequence[str]) -> tuple[str, FinishReason]:
    """Cut ``text`` at the first stop string (which then counts as a normal stop)."""
    cuts = [text.find(s) for s in stop if s and s in text]
    if not cuts:
        return text, finish
    return text[: min(cuts)], "stop"


def load_model(model_path: str, *, dtype: str, device: str | None, revision: str | None = None) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer for left-padded batched generation.

    Raises:
        ModelNotFoundError: A local-looking path that does not hold a model.
        eval.backends.model_source.ModelSourceError: A ``.gguf`` file or ``pkg:`` model that cannot be read.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_path = resolve_model_path(model_path)
    path = Path(model_path)
    looks_local = path.is_absolute() or model_path.startswith(".") or path.exists()
    if looks_local and not (path / "config.json").is_file():
        raise ModelNotFoundError(f"model path {model_path}: no model there (no config.json)")
    require_hub(model_path, "the model to generate with")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_path, revision=revision)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(model_path, revision=revision, dtype=getattr(torch, dtype))
    model.to(device)
    model.eval()
    return model, tokenizer


def eos_token_ids(model: Any, tokenizer: Any, end_of_turn: str | None = None) -> set[int]:
    """Every token id that ends a response: the tokenizer's EOS, the model's generation config EOS and
    ``end_of_turn``, the token the chat template closes a turn with.

    Raises:
        ValueError: ``end_of_turn`` is not one token of the vocabulary, or no stop token is known at all.
    """
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    if end_of_turn:
        if end_of_turn not in tokenizer.get_vocab():
            raise ValueError(f"model.eos_token={end_of_turn!r} is not a token of the model's vocabulary")
        ids.add(int(tokenizer.convert_tokens_to_ids(end_of_turn)))
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if not ids:
        raise ValueError("the model has no end-of-sequence token (set model.eos_token)")
    return ids


def _sampling_key(sampling: SamplingParams) -> tuple[Any, ...]:
    return (sampling.max_new_tokens, sampling.stop)
