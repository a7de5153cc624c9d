"""A GGUF file checked the way people run it: loaded by llama.cpp's own server and compared with transformers.

transformers reading a file back (`limo.gguf.writer.verify_gguf`) proves the weights and tokenizer are in it; what
breaks for users is llama.cpp's reading of them — a wrong chat template, BOS or EOS, a reply that never stops,
nonsense after conversion. `served_check` starts ``llama-server`` on the file (`eval.backends.llamacpp_server`) and
compares it with the source model on the fixed prompts (`limo.gguf.writer.PROMPTS`):

- **chat template**: the server's rendering (``/apply-template``: llama.cpp's Jinja engine on the template the file
  carries) equals ``tokenizer.apply_chat_template`` on three conversations (a user turn; a system and a user turn;
  user, assistant, user), generation prompt included;
- **tokenizer**: llama.cpp's ids for each rendered prompt (``/tokenize``, special tokens parsed) equal transformers';
- **greedy tokens**: `GREEDY_TOKENS` new tokens on each prompt, both engines given transformers' prompt ids
  (``/completion`` with the prompt as ids, temperature 0). A prompt agrees when the two replies are identical, or when
  at their first differing token transformers' own logits put llama.cpp's token within the type's margin of its
  choice (a *near-tie*: ``logit[transformers' token] - logit[llama.cpp's token] <= margin``; after that the texts may
  part, as any two engines' do). Near-ties are counted and reported; a difference outside the margin fails the file;
- **end of turn**: each token transformers stops at (the tokenizer's EOS and the generation config's), forced as the
  reply's first token with a logit bias, ends the reply (``stop_type: eos``) with nothing in its text; and a greedy
  reply transformers ends within the budget ends at the same token in llama.cpp (part of "identical").

The margins (`limo.gguf.writer.TOLERANCES`) are logits: f16 rounds weights and llama.cpp's f16 matrix products round
activations too, q8_0 and q4_k_m round more; docs/performance.md gives the gaps measured on SmolLM2-135M-Instruct.
torch and transformers are imported inside functions.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eval.backends.llamacpp_server import LlamaServer, ServerSettings
from eval.backends.llamacpp_tools import LlamaCppTools

GREEDY_TOKENS = 32
SYSTEM_PROBE = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class PromptAgreement:
    """One prompt's greedy replies compared: where they first differ and how close transformers found that call."""

    tokens: int  # tokens compared (the shorter reply's length, or the common length)
    first_difference: int | None  # None: identical
    gap: float | None  # transformers' logit of its token minus that of llama.cpp's, at the first difference
    near_tie: bool

    @property
    def identical(self) -> bool:
        return self.first_difference is None


@dataclass(frozen=True)
class ServedCheck:
    """One GGUF file served by llama.cpp against the source model."""

    template_identical: bool
    conversations: int
    token_ids_identical: bool
    prompts: int
    greedy_tokens: int
    greedy_margin: float
    greedy_identical: int
    greedy_near_ties: int
    greedy_diverged: int  # first difference outside the margin
    largest_tie_gap: float
    agreeing_tokens: int  # tokens before the first difference, summed over prompts
    end_of_turn_tokens: tuple[str, ...]
    stops_at_end_of_turn: bool
    seconds: float

    @property
    def passed(self) -> bool:
        agree = self.greedy_diverged == 0
        return self.template_identical and self.token_ids_identical and agree and self.stops_at_end_of_turn

    def failure(self) -> str:
        """What failed, in words (empty when `passed`)."""
        parts = []
        if not self.template_identical:
            parts.append("llama.cpp renders the chat template differently from transformers")
        if not self.token_ids_identical:
            parts.append("llama.cpp tokenizes the rendered prompts differently from transformers")
        if self.greedy_diverged:
            parts.append(
                f"greedy replies differ beyond a near-tie on {self.greedy_diverged}/{self.prompts} prompts "
                f"(margin {self.greedy_margin} logits)"
            )
        if not self.stops_at_end_of_turn:
            parts.append(f"llama.cpp does not stop at every end-of-turn token ({', '.join(self.end_of_turn_tokens)})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The figures as export.json holds them (lists, not tuples, so the file reads back equal)."""
        return asdict(self) | {"end_of_turn_tokens": list(self.end_of_turn_tokens), "passed": self.passed}


def served_check(
    tools: LlamaCppTools,
    gguf: Path,
    model: Any,
    tokenizer: Any,
    prompts: tuple[Sequence[str], Sequence[Sequence[int]]],
    margin: float,
) -> ServedCheck:
    """Serve ``gguf`` with llama-server and compare it with ``model`` / ``tokenizer`` (see the module docstring).

    Args:
        tools: The llama.cpp install.
        gguf: The file to check.
        model: The source model (float32, eval mode).
        tokenizer: Its tokenizer.
        prompts: The fixed prompts rendered through the chat template, and transformers' ids for them.
        margin: The largest transformers logit gap a differing greedy token may have (a near-tie).
    """
    started = time.perf_counter()
    texts, prompt_ids = prompts
    longest = max(len(ids) for ids in prompt_ids) + GREEDY_TOKENS
    settings = ServerSettings(parallel=1, context_per_slot=max(512, 2 * longest))
    with tempfile.TemporaryDirectory(prefix="limo-export-serve-") as folder:
        server = LlamaServer.start(tools, gguf, settings, log_path=Path(folder) / "llama-server.log")
        try:
            template_ok, conversations = same_template(server, tokenizer)
            ids_ok = same_token_ids(server, texts, prompt_ids)
            eos = end_of_turn_ids(model, tokenizer)
            agreements = [compare_prompt(server, model, ids, eos, margin) for ids in prompt_ids]
            stops = all(stops_at(server, prompt_ids[0], token) for token in sorted(eos))
        finally:
            server.stop()
    ties = [a.gap for a in agreements if a.near_tie and a.gap is not None]
    return ServedCheck(
        template_identical=template_ok,
        conversations=conversations,
        token_ids_identical=ids_ok,
        prompts=len(agreements),
        greedy_tokens=GREEDY_TOKENS,
        greedy_margin=margin,
        greedy_identical=sum(a.identical for a in agreements),
        greedy_near_ties=sum(a.near_tie for a in agreements),
        greedy_diverged=sum(not a.identical and not a.near_tie for a in agreements),
        largest_tie_gap=round(max(ties, default=0.0), 4),
        agreeing_tokens=sum(a.tokens if a.identical else a.first_difference or 0 for a in agreements),
        end_of_turn_tokens=tuple(tokenizer.convert_ids_to_tokens(sorted(eos))),
        stops_at_end_of_turn=stops,
        seconds=round(time.perf_counter() - started, 2),
    )


def probe_conversations() -> list[list[dict[str, str]]]:
    """The conversations whose renderings must agree: a user turn; system and user; user, assistant, user."""
    return [
        [{"role": "user", "content": "What is 2 + 3?"}],
        [{"role": "system", "content": SYSTEM_PROBE}, {"role": "user", "content": "Compute 12 * 7."}],
        [
            {"role": "user", "content": "Name a prime number."},
            {"role": "assistant", "content": "7 is a prime number."},
            {"role": "user", "content": "And an even one?"},
        ],
    ]


def same_template(server: LlamaServer, tokenizer: Any) -> tuple[bool, int]:
    """Whether llama.cpp's ``/apply-template`` renders every probe conversation as transformers does.

    A template that writes the BOS token first (Gemma's) is rendered by llama.cpp without it, since llama.cpp adds
    BOS itself when it tokenizes the prompt; where it does (``/tokenize`` of nothing with special tokens gives just
    the tokenizer's BOS), transformers' rendering is compared without its leading BOS text: the same token stream."""
    bos = tokenizer.bos_token
    adds_bos = bool(bos) and server.request("POST", "/tokenize", {"content": "", "add_special": True})["tokens"] == [
        tokenizer.bos_token_id
    ]
    conversations = probe_conversations()
    for messages in conversations:
        expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if adds_bos and expected.startswith(bos):
            expected = expected[len(bos) :]
        if server.request("POST", "/apply-template", {"messages": messages})["prompt"] != expected:
            return False, len(conversations)
    return True, len(conversations)


def same_token_ids(server: LlamaServer, texts: Sequence[str], prompt_ids: Sequence[Sequence[int]]) -> bool:
    """Whether llama.cpp tokenizes each rendered prompt into transformers' ids for it."""
    for text, ids in zip(texts, prompt_ids, strict=True):
        body = {"content": text, "add_special": False, "parse_special": True}
        if list(server.request("POST", "/tokenize", body)["tokens"]) != list(ids):
            return False
    return True


def end_of_turn_ids(model: Any, tokenizer: Any) -> set[int]:
    """The ids transformers stops at: the tokenizer's EOS and the generation config's (`eval.backends.hf`)."""
    from eval.backends.hf import eos_token_ids  # deferred: the hf backend imports torch in its functions only

    return eos_token_ids(model, tokenizer)


def llama_greedy(server: LlamaServer, ids: Sequence[int], tokens: int, bias: int | None = None) -> dict[str, Any]:
    """llama.cpp's greedy reply to ``ids`` (``/completion``: ids in, ids out); ``bias`` forces one token first."""
    body: dict[str, Any] = {"prompt": list(ids), "n_predict": tokens, "temperature": 0.0, "return_tokens": True}
    body |= {"cache_prompt": False, "seed": 0}
    if bias is not None:
        body["logit_bias"] = [[bias, 100.0]]
    return server.request("POST", "/completion", body)


def stops_at(server: LlamaServer, ids: Sequence[int], token: int) -> bool:
    """Whether ``token`` as the first reply token ends the reply, with nothing in its text."""
    reply = llama_greedy(server, ids, 3, bias=token)
    return bool(
        reply.get("stop_type") == "eos" and list(reply.get("tokens") or []) == [token] and not reply["content"]
    )


def hf_greedy(model: Any, ids: Sequence[int], eos: set[int], tokens: int) -> list[int]:
    """transformers' greedy reply to ``ids``: up to ``tokens`` new ids, ending with the first end-of-turn id."""
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(max_new_tokens=tokens, do_sample=False, eos_token_id=sorted(eos), pad_token_id=min(eos))
    prompt = torch.tensor([list(ids)])
    with torch.inference_mode():
        output = model.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=config)
    new = output[0, len(ids) :].tolist()
    stop = next((i for i, t in enumerate(new) if t in eos), None)
    return new if stop is None else new[: stop + 1]


def compare_prompt(
    server: LlamaServer, model: Any, ids: Sequence[int], eos: set[int], margin: float
) -> PromptAgreement:
    """Greedy replies of both engines to one prompt, compared by `agreement`."""
    reference = hf_greedy(model, ids, eos, GREEDY_TOKENS)
    served = [int(t) for t in llama_greedy(server, ids, GREEDY_TOKENS)["tokens"]]
    return agreement(model, ids, reference, served, margin)


def agreement(
    model: Any, prompt: Sequence[int], reference: Sequence[int], other: Sequence[int], margin: float
) -> PromptAgreement:
    """Compare another engine's greedy reply with transformers' (``reference``), both as ids after ``prompt``.

    At the first differing position the source model's logits on the shared prefix give the gap between its own
    token and the other engine's; within ``margin`` the difference is a near-tie.
    """
    index = first_difference(reference, other)
    if index is None:
        return PromptAgreement(len(reference), None, None, False)
    if index >= len(reference) or index >= len(other):  # one reply is a prefix of the other: not a token choice
        return PromptAgreement(min(len(reference), len(other)), index, None, False)
    logits = next_logits(model, [*prompt, *reference[:index]])
    gap = float(logits[reference[index]] - logits[other[index]])
    return PromptAgreement(min(len(reference), len(other)), index, round(gap, 4), gap <= margin)


def reply_agreement(
    model: Any, tokenizer: Any, messages: Sequence[dict[str, str]], replies: tuple[Any, Any], margin: float
) -> PromptAgreement:
    """`agreement` for two backends' replies to one chat request (``replies``: transformers' and the other's
    `eval.backends.base.Generation`), read as ids by the source tokenizer, each ended by the end-of-turn token when
    it stopped there. The texts are re-tokenized, so a difference that is only another split of the same text counts
    as a difference (conservative)."""
    prompt = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    end = [tokenizer.eos_token_id]
    reference, other = (
        tokenizer(g.text, add_special_tokens=False)["input_ids"] + (end if g.finish_reason == "stop" else [])
        for g in replies
    )
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return agreement(model, ids, reference, other, margin)


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first index where two id sequences differ (the shorter one's length when one is a prefix), or None."""
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def next_logits(model: Any, ids: Sequence[int]) -> Any:
    """The model's float32 logits for the token after ``ids``."""
    import torch

    with torch.inference_mode():
        return model(torch.tensor([list(ids)])).logits[0, -1].float()
