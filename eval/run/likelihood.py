"""A model's likelihood of given answers: the mean negative log-likelihood per token of each answer after its
prompt, rendered with the model's chat template exactly as training renders a prompt -> completion row.

The answer's tokens are those the template adds for the assistant turn: its text, its end-of-turn token and what
follows it (SmolLM2: ``<|im_end|>`` and a newline), the tokens SFT's completion-only loss trains. So a low value
means the model already nearly writes this answer; a high one, that it is far from it. Curation uses it as a
student's difficulty signal where its pass rate says nothing yet (0 everywhere before training:
`curation.stages.difficulty`, ``source: likelihood``), and to choose among a problem's verified chains the one that
fits the student (`curation.stages.select`, ``student_fit``). Beside the mean negative log-likelihood (surprisal),
each answer gets the mean rank of its true tokens among the model's predictions (1: its top choice), each rank
clipped at `RANK_CLIP` (100) — the rank-surprisal ratio's numerator (RSR, arXiv 2601.14249: ``rank / nll``, computed
by `rank_surprisal_ratio` alone, wherever it is used).

Scores are cached in a JSONL file keyed by row id, appended a batch at a time (fsync), so a killed run resumes
without scoring again; the file's name carries a hash of what decides the scores (model, system prompt, token
limit). A row cached before ranks were recorded is scored again when ranks are asked for (the later line wins).
One forward pass per batch of rows, sorted by length so little is spent on padding.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.records import append_jsonl, read_jsonl

log = logging.getLogger(__name__)
RANK_CLIP = 100  # RSR's clip: a token ranked past 100 counts as 100 (the paper's default), so no outlier dominates
SURPRISAL_FLOOR = 1e-3  # RSR's denominator floor, nats per token (`rank_surprisal_ratio`)


def rank_surprisal_ratio(rank: float, surprisal: float) -> float:
    """RSR (arXiv 2601.14249): an answer's mean clipped token rank over its mean surprisal (nats per token; the ratio
    of the sums over its tokens). Lower fits the student better: tokens it finds informative (high surprisal) yet
    still ranks near its top choice.

    The surprisal is floored at `SURPRISAL_FLOOR` before dividing, so that a chain of near-zero surprisal is scored by
    what it is. The ratio grows without bound as the surprisal falls to 0: a chain the student already writes token
    for token has nothing left to teach, the worst fit by RSR's own premise. A guard that returned 0 for a surprisal
    of 0 ranked exactly that chain the best fit of all. With the floor, the ratio keeps growing as the surprisal
    falls, and a chain at or under the floor scores ``rank / SURPRISAL_FLOOR``: at least 1,000, above any chain of
    mean surprisal 0.1 nats or more (at most ``RANK_CLIP / 0.1``). Every chain above the floor keeps the paper's
    ratio exactly (so selections made before the floor stand). Only the denominator needs a floor: a clipped rank is
    at least 1.
    """
    return rank / max(surprisal, SURPRISAL_FLOOR)


@dataclass(frozen=True)
class Scored:
    """One answer's likelihood: mean negative log-likelihood per answer token (nats, its mean surprisal), the tokens
    scored, whether the answer was cut at ``max_tokens``, and the mean rank of its tokens under the model, each
    clipped at `RANK_CLIP` (None: a row cached before ranks were recorded)."""

    id: str
    nll: float
    tokens: int
    truncated: bool
    rank: float | None = None

    @property
    def rsr(self) -> float:
        """The rank-surprisal ratio of the answer (`rank_surprisal_ratio`: mean clipped rank over mean surprisal,
        floored; lower: informative tokens the model still ranks high).

        Raises:
            ValueError: No rank was recorded (score it with ``ranks=True``).
        """
        if self.rank is None:
            raise ValueError(f"row {self.id}: no token rank recorded (score_answers(..., ranks=True))")
        return rank_surprisal_ratio(self.rank, self.nll)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "nll": self.nll, "tokens": self.tokens, "truncated": self.truncated, "rank": self.rank}


def conversation(problem: str, answer: str, system_prompt: str | None) -> list[dict[str, str]]:
    """The turns a training row for (problem, answer) has: an optional system turn, the problem, the answer."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt is not None else []
    return [*system, {"role": "user", "content": problem}, {"role": "assistant", "content": answer}]


def answer_ids(tokenizer: Any, messages: Sequence[Mapping[str, str]], row_id: str) -> tuple[list[int], int]:
    """The conversation's token ids and where the answer's tokens start.

    Raises:
        ValueError: The template does not render the prompt as a prefix of the whole conversation (naming the row).
    """
    prompt = _ids(tokenizer.apply_chat_template(list(messages[:-1]), add_generation_prompt=True, tokenize=True))
    full = _ids(tokenizer.apply_chat_template(list(messages), tokenize=True))
    if full[: len(prompt)] != prompt or len(full) == len(prompt):
        raise ValueError(
            f"row {row_id}: the chat template does not render the prompt as a prefix of the conversation with its "
            "answer, so the answer's tokens cannot be told apart"
        )
    return full, len(prompt)


def _ids(rendered: Any) -> list[int]:
    """`apply_chat_template`'s ids, whether it returned a list or a mapping holding ``input_ids``."""
    if isinstance(rendered, Mapping):
        rendered = rendered["input_ids"]
    return [int(i) for i in rendered]


def cache_path(
    folder: str | Path, model: str, system_prompt: str | None, max_tokens: int, chat_template: str | None = None
) -> Path:
    """``<folder>/nll-<hash>.jsonl``; a replacement template enters the hash only when given, so the caches of runs
    with the model's own template keep their names."""
    fields: dict[str, Any] = {"model": model, "system_prompt": system_prompt, "max_tokens": max_tokens}
    if chat_template is not None:
        fields["chat_template"] = chat_template
    key = json.dumps(fields, sort_keys=True)
    return Path(folder) / f"nll-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl"


def score_answers(
    rows: Sequence[tuple[str, str, str]],
    model_path: str,
    *,
    cache_folder: str | Path,
    chat_template: str | None = None,
    system_prompt: str | None = None,
    batch_size: int = 8,
    max_tokens: int = 1024,
    dtype: str = "float32",
    device: str | None = None,
    ranks: bool = False,
) -> dict[str, Scored]:
    """Each (id, problem, answer) row's `Scored`, by id; rows already in the cache are not scored again (with
    ``ranks``, unless the cached row has no rank).

    Args:
        rows: (row id, problem text, answer text); ids must be unique.
        model_path: A folder, hub id, ``.gguf`` file or ``pkg:`` model (`eval.backends.model_source`).
        cache_folder: Where the cache file goes (`cache_path`).
        chat_template: Jinja text replacing the model's own template (a base model ships none); None: its own.
        system_prompt: A system turn before the problem; None keeps the template's default (SmolLM2 inserts one).
        batch_size: Rows per forward pass.
        max_tokens: Longest conversation scored; a longer one is cut and its answer scored up to the cut
            (``truncated``).
        dtype, device: How the model is loaded (`eval.backends.hf.load_model`).
        ranks: Every row must carry its mean token rank (`Scored.rank`; every newly scored row does).

    Raises:
        ValueError: Repeated ids, or a template that does not render the prompt as a prefix (`answer_ids`).
    """
    ids = [row[0] for row in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("score_answers: row ids repeat")
    path = cache_path(cache_folder, model_path, system_prompt, max_tokens, chat_template)
    done = {r["id"]: Scored(**r) for r in read_jsonl(path, tolerate_torn_tail=True)} if path.exists() else {}
    missing = [row for row in rows if row[0] not in done or (ranks and done[row[0]].rank is None)]
    log.info("likelihood: %d of %d answers already in %s; scoring %d", len(rows) - len(missing), len(rows), path,
             len(missing))  # fmt: skip
    if missing:
        scoring = (system_prompt, batch_size, max_tokens, dtype, device)
        done.update(_score(missing, model_path, path, *scoring, chat_template=chat_template))
    return {row_id: done[row_id] for row_id in ids}


def _score(
    rows: Sequence[tuple[str, str, str]],
    model_path: str,
    path: Path,
    system_prompt: str | None,
    batch_size: int,
    max_tokens: int,
    dtype: str,
    device: str | None,
    *,
    chat_template: str | None,
) -> dict[str, Scored]:
    import torch
    from tqdm.auto import tqdm

    from eval.backends.hf import load_model  # deferred: imports torch and transformers

    model, tokenizer = load_model(model_path, dtype=dtype, device=device)
    if chat_template:
        tokenizer.chat_template = chat_template
    encoded = [(row[0], *answer_ids(tokenizer, conversation(row[1], row[2], system_prompt), row[0])) for row in rows]
    encoded.sort(key=lambda item: -len(item[1]))  # long first: a memory problem shows at once
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scored: dict[str, Scored] = {}
    with tqdm(total=len(encoded), desc="likelihood", unit="answer") as bar:
        for start in range(0, len(encoded), max(1, batch_size)):
            batch = encoded[start : start + batch_size]
            width = min(max_tokens, max(len(ids) for _, ids, _ in batch))
            inputs = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, (_, ids, _) in enumerate(batch):
                kept = ids[:width]
                inputs[row, : len(kept)] = torch.tensor(kept)
                mask[row, : len(kept)] = 1
            with torch.inference_mode():
                logits = model(input_ids=inputs.to(model.device), attention_mask=mask.to(model.device)).logits
                logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
                taken = logprobs.gather(-1, inputs[:, 1:].to(model.device).unsqueeze(-1)).squeeze(-1).cpu()
            rows_out = []
            for row, (row_id, ids, answer_start) in enumerate(batch):
                end = min(len(ids), width)
                values = taken[row, answer_start - 1 : end - 1]  # position p predicts token p + 1
                if len(values) == 0:
                    raise ValueError(f"row {row_id}: its prompt alone fills max_tokens={max_tokens}; no answer token")
                rank = token_ranks(logprobs[row, answer_start - 1 : end - 1], taken[row, answer_start - 1 : end - 1])
                item = Scored(row_id, round(-float(values.mean()), 6), len(values), end < len(ids), rank)
                scored[row_id] = item
                rows_out.append(item.to_dict())
            append_jsonl(path, rows_out)
            bar.update(len(batch))
    return scored


def token_ranks(logprobs: Any, taken: Any) -> float:
    """The mean over answer tokens of each true token's rank among the model's predictions (1 + the tokens it scored
    strictly higher), clipped at `RANK_CLIP`, at 4 decimals. ``logprobs``: (tokens, vocabulary); ``taken``: the true
    tokens' log-probabilities (tokens,)."""
    higher = (logprobs > taken.to(logprobs.device).unsqueeze(-1)).sum(dim=-1)
    return round(float((higher + 1).clamp(max=RANK_CLIP).float().mean()), 4)
