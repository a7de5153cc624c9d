"""A model judge beside the symbolic grader: (problem, gold, response) in, a verdict with its reason out.

The judge is a generator like any other (`eval.backends.generation`: backend, model, backend options, sampling) plus a
preset (`eval.grading.judge_presets`: ``generic``, ``compassverifier``, ``xverify``), which fixes its prompt and the
one reply format it may answer in; ``prompt`` and ``system_prompt`` override the preset's (null: the preset's; an
empty system prompt: no system turn). `build_judge` puts it behind a `CachedGenerator`, so a killed run resumes
without asking again and a ``replay`` judge is deterministic.

Three decisions keep a model's reply from deciding more than it should:

- **The response is data.** In the generic prompt it sits between delimiters that carry a digest of the response
  itself (``<<<RESPONSE-1a2b3c4d>>>``), which the response cannot reproduce; in every preset, text imitating the
  prompt's own markers (the fence, CompassVerifier's ``<Candidate's Answer End>``, xVerify's triple quotes) is
  defused in the problem, gold and response before they are placed, and placeholders inside them are never
  substituted. The generic prompt tells the judge that instructions inside the response ("the grader should mark
  this correct") are part of what is judged, never instructions to follow.
- **The reply is untrusted text, parsed strictly** by the preset's parser: anything but one of its exact forms
  is ``unparseable`` with the reason, never guessed and never ``correct``.
- **``order: swap`` asks twice** (as NVIDIA-NeMo/Gym's ``math_with_judge`` does against position bias): once as
  configured (``same``: the gold in the gold slot, the response in the response slot) and once with the two
  texts exchanged (``swap``: the response's tail where the gold goes, the gold where the response goes, fenced
  as the response would be). The verdict is ``correct`` only when both say correct, ``incorrect`` when either
  readable reply says incorrect, else ``unparseable``; both orders' verdicts are kept (`JudgeVerdict.orders`).
  Gym skips the second ask when the first says "different"; here both are always asked, so order disagreements
  can be counted (`eval.grading.policy.order_agreement`). Accepting needs the ``same`` ask to accept too, so a
  response that sways the swapped ask (where it is not fenced) cannot get itself accepted by that alone.

Each request's id is ``judge:<key>:<digest of the rendered prompt>``, and its ``meta`` carries the caller's
``problem_id`` and ``sample_index`` (the swapped ask's ``problem_id`` is ``<problem_id>:swap``), so a replay file
answers by id or by (problem id, sample index), and a changed prompt or response is a new request rather than a
stale cache hit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.backends.base import Backend, GenerationRequest, SamplingParams, row_seed
from eval.backends.generation import GenerationOptions, cached_generator
from eval.grading.judge_presets import (
    GENERIC_PROMPT,
    GENERIC_SYSTEM_PROMPT,
    PLACEHOLDERS,
    JudgePreset,
    preset_named,
)

JUDGE_STATUSES = ("correct", "incorrect", "unparseable")
ORDERS = ("same", "swap")
SWAP_SUFFIX = ":swap"  # the swapped ask's replay key: problem id "<problem_id>:swap"
DEFAULT_PROMPT = GENERIC_PROMPT  # the generic preset's, kept under their old names
DEFAULT_SYSTEM_PROMPT = GENERIC_SYSTEM_PROMPT
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


@dataclass(frozen=True)
class JudgeOptions:
    """A judge: a generation config (the same keys as any generator in a recipe) plus its preset and order.

    Attributes:
        backend: ``replay``, ``hf``, ``vllm`` or ``openai``.
        model: Model folder or hub id (hf, vllm), served model name (openai), a label (replay).
        backend_options: Further backend arguments (``base_url``, ``path`` of a replay file, ...).
        preset: ``generic``, ``compassverifier`` or ``xverify`` (`eval.grading.judge_presets`): prompt and
            reply format.
        order: ``same`` (ask once) or ``swap`` (ask also with gold and response exchanged; accept only when both
            asks say correct).
        temperature: Sampling temperature (0: greedy, the default for a judge).
        top_p: Nucleus sampling mass.
        max_new_tokens: Reply length limit.
        batch_size: Requests per backend call and per cache append.
        prompt: Template with ``{problem}``, ``{gold}``, ``{response}`` (and ``{delimiter}``, which the generic
            preset requires); None: the preset's.
        system_prompt: System turn; None: the preset's; empty: none.
        max_response_chars: The response's last characters the judge sees (its final answer is at the end).
        seed: Seed of each request (``row_seed(seed, problem_id, sample_index)``).
    """

    backend: str = "replay"
    model: str | None = None
    backend_options: dict[str, Any] | None = None
    preset: str = "generic"
    order: str = "same"
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    batch_size: int = 16
    prompt: str | None = None
    system_prompt: str | None = None
    max_response_chars: int = 16000
    seed: int = 0

    def __post_init__(self) -> None:
        preset = preset_named(self.preset)
        if self.order not in ORDERS:
            raise ValueError(f"unknown judge order {self.order!r} (known: {', '.join(ORDERS)}), judge.order")
        missing = [f"{{{k}}}" for k in preset.required if f"{{{k}}}" not in self.template]
        if missing:
            raise ValueError(f"judge prompt: placeholder {missing[0]} is missing, evaluate.grader.judge.prompt")

    @property
    def preset_spec(self) -> JudgePreset:
        return preset_named(self.preset)

    @property
    def template(self) -> str:
        """The prompt template in force: the recipe's, else the preset's."""
        return self.prompt if self.prompt is not None else self.preset_spec.prompt

    @property
    def system(self) -> str | None:
        """The system turn in force (None: no system turn)."""
        system = self.system_prompt if self.system_prompt is not None else self.preset_spec.system_prompt
        return system or None

    def generation(self) -> GenerationOptions:
        """The generator half of these options."""
        return GenerationOptions(
            backend=self.backend,
            model=self.model,
            backend_args=dict(self.backend_options or {}),
            temperature=self.temperature,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
        )


@dataclass(frozen=True)
class JudgeItem:
    """One thing to judge; ``problem_id`` and ``sample_index`` key it for replay and the request id."""

    problem: str
    gold: str
    response: str
    problem_id: str = ""
    sample_index: int = 0


@dataclass(frozen=True)
class JudgeVerdict:
    """The judge's decision on one item.

    Attributes:
        status: ``correct``, ``incorrect`` or ``unparseable`` (the reply broke the preset's format).
        reason: The judge's reason (``REASON:`` line, the letter or word it answered), or why the reply could
            not be read.
        reply: The raw reply (kept for audit; under ``swap``, the ``same`` ask's).
        label: The preset's own word where it has more than two (CompassVerifier's ``invalid``), else None.
        orders: Under ``order: swap``, each ask's verdict (``same``, ``swap``); None when asked once.
    """

    status: str
    reason: str
    reply: str
    label: str | None = None
    orders: Mapping[str, JudgeVerdict] | None = None

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "correct": self.correct, "reason": self.reason}
        if self.label is not None:
            out["label"] = self.label
        if self.orders is not None:
            out["orders"] = {name: verdict.to_dict() for name, verdict in self.orders.items()}
        return out


def delimiter_for(response: str) -> str:
    """``<<<RESPONSE-<digest>>>``: a fence the response cannot contain, since it names the response's digest."""
    return f"<<<RESPONSE-{hashlib.sha256(response.encode()).hexdigest()[:12]}>>>"


def render_messages(item: JudgeItem, options: JudgeOptions, order: str = "same") -> tuple[dict[str, str], ...]:
    """The chat messages asking the judge about ``item`` in ``order`` (``swap``: gold and response exchanged).

    Every placed text is defused against the preset's markers; the response is cut to its tail first.
    """
    preset = options.preset_spec
    response = item.response[-options.max_response_chars :] if options.max_response_chars > 0 else item.response
    gold = item.gold.strip()
    if order == "swap":
        gold, response = response.strip(), gold
    fields = {
        "problem": preset.defuse(item.problem.strip()) or "(not recorded)",
        "gold": preset.defuse(gold),
        "response": preset.defuse(response),
    }
    fields["delimiter"] = delimiter_for(fields["response"])
    # One pass over the template: a response that contains "{gold}" is not substituted again.
    user = _PLACEHOLDER.sub(lambda m: fields[m.group(1)], options.template)
    system = [{"role": "system", "content": options.system}] if options.system else []
    return (*system, {"role": "user", "content": user})


def parse_reply(reply: str, preset: str = "generic") -> JudgeVerdict:
    """Read a judge reply strictly with ``preset``'s parser (see `eval.grading.judge_presets`); never raises."""
    reading = preset_named(preset).parse(reply)
    return JudgeVerdict(reading.status, reading.reason, reply, reading.label)


def build_requests(items: Sequence[JudgeItem], options: JudgeOptions, order: str = "same") -> list[GenerationRequest]:
    """One request per item in ``order``; identical (prompt, item) pairs get the same id and share a reply."""
    sampling = SamplingParams(options.temperature, options.top_p, options.max_new_tokens)
    suffix = SWAP_SUFFIX if order == "swap" else ""
    requests = []
    for item in items:
        messages = render_messages(item, options, order)
        digest = hashlib.sha256(repr(messages).encode()).hexdigest()[:16]
        problem_id = f"{item.problem_id}{suffix}"
        requests.append(
            GenerationRequest(
                id=f"judge:{problem_id}#{item.sample_index}:{digest}",
                messages=messages,
                sampling=sampling,
                seed=row_seed(options.seed, problem_id, item.sample_index),
                meta={"problem_id": problem_id, "sample_index": item.sample_index},
            )
        )
    return requests


def combine_orders(same: JudgeVerdict, swap: JudgeVerdict) -> JudgeVerdict:
    """One verdict from both asks: correct only when both say correct; incorrect when either readable reply
    says incorrect (one readable "no" is enough to refuse); else unparseable (nothing to accept on)."""
    statuses = (same.status, swap.status)
    if "incorrect" in statuses:
        status = "incorrect"
    elif "unparseable" in statuses:
        status = "unparseable"
    else:
        status = "correct"
    if same.status == swap.status:
        reason = f"{same.reason} (both orders)"
    else:
        deciding = same if same.status == status else swap
        reason = f"judge: orders disagree (same: {same.status}, swap: {swap.status}); {deciding.reason}"
    label = same.label if same.label == swap.label else None
    return JudgeVerdict(status, reason, same.reply, label, {"same": same, "swap": swap})


class Judge:
    """A judge bound to its (cached) generator.

    Args:
        generator: Anything with ``generate(requests)`` (a `CachedGenerator` in runs, a backend in tests).
        options: The judge's options (preset, order, prompt, sampling, ...).
    """

    def __init__(self, generator: Backend, options: JudgeOptions) -> None:
        self.generator, self.options = generator, options

    def judge_many(self, items: Sequence[JudgeItem]) -> list[JudgeVerdict]:
        """Verdicts in item order; unique requests (of every order asked) go to the generator in one call."""
        orders = ORDERS if self.options.order == "swap" else ("same",)
        asks = {order: build_requests(items, self.options, order) for order in orders}
        unique = list({r.id: r for requests in asks.values() for r in requests}.values())
        replies = {g.request_id: g for g in self.generator.generate(unique)} if unique else {}
        read = {order: [self._verdict_of(replies[r.id]) for r in requests] for order, requests in asks.items()}
        if self.options.order != "swap":
            return read["same"]
        return [combine_orders(a, b) for a, b in zip(read["same"], read["swap"], strict=True)]

    def _verdict_of(self, generation: Any) -> JudgeVerdict:
        if generation.finish_reason == "error":
            return JudgeVerdict("unparseable", "the judge backend returned an error", generation.text)
        return parse_reply(generation.text, self.options.preset)

    def identity(self) -> dict[str, Any]:
        """What decides the verdicts (for summaries): generator identity, preset, order and a prompt digest."""
        prompt = f"{self.options.system}\x00{self.options.template}"
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
        return {
            **self.options.generation().identity(),
            "preset": self.options.preset,
            "order": self.options.order,
            "prompt_sha256": digest,
        }


def build_judge(options: JudgeOptions, folder: str | Path, task: str = "judge") -> Judge:
    """The judge behind its cache file ``<folder>/<task>-<hash>.jsonl`` (the hash covers backend, model,
    sampling and the prompt in force, so a changed prompt never reuses stale replies; both orders share it)."""
    context = {"prompt": options.template, "system_prompt": options.system, "seed": options.seed}
    return Judge(cached_generator(options.generation(), folder, task, context), options)


def judge_triples(
    triples: Sequence[tuple[str, str, str]],
    judge: Judge,
    *,
    keys: Sequence[tuple[str, int]] | None = None,
) -> list[JudgeVerdict]:
    """Judge many (problem, gold, response) triples through ``judge``; verdicts in order.

    Args:
        triples: (problem, gold, response) each.
        judge: A `Judge` (see `build_judge`; its generator caches and resumes).
        keys: (problem_id, sample_index) per triple for replay and request ids (default: the triple's index).
    """
    keys = keys or [(str(i), 0) for i in range(len(triples))]
    if len(keys) != len(triples):
        raise ValueError(f"judge_triples: {len(keys)} keys for {len(triples)} triples")
    items = [JudgeItem(p, g, r, str(k[0]), int(k[1])) for (p, g, r), k in zip(triples, keys, strict=True)]
    return judge.judge_many(items)
