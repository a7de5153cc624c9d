"""Budget forcing (s1, Muennighoff et al. 2025): control how long a model thinks, token by token.

- Minimum: while fewer than ``min_thinking_tokens`` thinking tokens were written, the end of thinking is
  suppressed and ``wait_text`` ("Wait") is appended instead, at most ``max_waits`` times.
- Maximum: when ``max_thinking_tokens`` thinking tokens were written, the end of thinking (if the model
  has a separate marker such as ``</think>``) and ``final_answer_text`` ("Final Answer:") are forced, and
  the model gets ``answer_tokens`` more tokens to write its answer.

The state machine works on token ids only (no torch), one `RowBudget` per generated row, so a backend
decides each row's next token independently of its batch. The end of thinking must be a single token:
the model's end-of-sequence token when ``end_think`` is None (models without thinking tags), or a
special token such as ``</think>``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BudgetForcing:
    """Budget-forcing settings (all token counts are in the model's tokens).

    Attributes:
        min_thinking_tokens: Suppress the end of thinking before this many thinking tokens (0: off).
        max_waits: How many times "Wait" may be appended to reach the minimum.
        max_thinking_tokens: Force the final answer after this many thinking tokens (None: off).
        answer_tokens: Tokens allowed after the forced final-answer text.
        end_think: The end-of-thinking token text (None: the end-of-sequence token).
        wait_text: Appended in place of a suppressed end of thinking.
        final_answer_text: Forced when the thinking budget runs out.
    """

    min_thinking_tokens: int = 0
    max_waits: int = 1
    max_thinking_tokens: int | None = None
    answer_tokens: int = 64
    end_think: str | None = None
    wait_text: str = "Wait"
    final_answer_text: str = "\n\nFinal Answer:"

    def __post_init__(self) -> None:
        if self.min_thinking_tokens < 0 or self.max_waits < 0 or self.answer_tokens < 1:
            raise ValueError("budget forcing: token counts must be non-negative (answer_tokens >= 1)")
        if self.max_thinking_tokens is not None and self.max_thinking_tokens < max(1, self.min_thinking_tokens):
            raise ValueError("budget forcing: max_thinking_tokens must be >= min_thinking_tokens and >= 1")

    @property
    def active(self) -> bool:
        return self.min_thinking_tokens > 0 or self.max_thinking_tokens is not None

    def max_new_tokens(self, requested: int, forced_answer_len: int) -> int:
        """Generation length for a row: the request's, or enough for thinking + forced text + answer."""
        if self.max_thinking_tokens is None:
            return requested
        return self.max_thinking_tokens + forced_answer_len + self.answer_tokens


@dataclass
class RowBudget:
    """Per-row budget-forcing state; `next_token` turns the sampler's choice into the token to emit.

    Attributes:
        settings: The budget-forcing settings.
        end_think_id: Token id that ends thinking.
        wait_ids: Token ids of ``wait_text``.
        final_ids: Token ids forced at the thinking budget (end-of-thinking marker included when separate).
        eos_ids: Token ids that end the sequence.
    """

    settings: BudgetForcing
    end_think_id: int
    wait_ids: tuple[int, ...]
    final_ids: tuple[int, ...]
    eos_ids: frozenset[int]
    thinking_tokens: int = 0
    waits_used: int = 0
    thinking: bool = True
    queue: deque[int] = field(default_factory=deque)

    def forced(self) -> int | None:
        """The next forced token, if one is queued (the sampler's draw is then ignored)."""
        return self.queue.popleft() if self.queue else None

    def next_token(self, chosen: int) -> int:
        """The token to emit given the sampler's ``chosen`` token (call only when `forced` gave None)."""
        if not self.thinking:
            return chosen
        if chosen == self.end_think_id or (chosen in self.eos_ids and self.end_think_id in self.eos_ids):
            return self._on_end_of_thinking(chosen)
        if self.settings.max_thinking_tokens is not None and self.thinking_tokens >= self.settings.max_thinking_tokens:
            return self._force_final_answer()
        self.thinking_tokens += 1
        return chosen

    def _on_end_of_thinking(self, chosen: int) -> int:
        want_more = self.thinking_tokens < self.settings.min_thinking_tokens
        if want_more and self.waits_used < self.settings.max_waits and self.wait_ids:
            self.waits_used += 1
            self.queue.extend(self.wait_ids[1:])
            self.thinking_tokens += len(self.wait_ids)
            return self.wait_ids[0]
        self.thinking = False
        return chosen

    def _force_final_answer(self) -> int:
        self.thinking = False  # the row's max_new_tokens leaves `answer_tokens` after the forced text
        self.queue.extend(self.final_ids[1:])
        return self.final_ids[0]
