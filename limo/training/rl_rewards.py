"""The RL rewards: our grader as TRL reward functions (``train.rl.rewards``).

``accuracy`` grades each completion against its prompt's gold through `eval.grading.pool.GraderPool` (persistent
grading processes, a per-pair deadline, a stuck worker killed and replaced), with the prompt's problem text
passed so option letters and worded answers are read as in evaluation. Reward 1.0 when the verdict is
``correct``, else 0.0: an incorrect answer, no answer, an unparseable one, a grader time-out or error all give
0, and the time-outs and errors are counted. Under a judge policy (``train.rl.grader.policy``:
``judge``, ``symbolic_then_judge``, ``both``; `eval.grading.policy`) the verdict that decides is the policy's,
exactly as in evaluation. Nothing executes the completion's text: it is only parsed by the grader (size limits
first, hard time limits after) or shown to the judge as data between fences.

``format`` is 1.0 when the completion boxes a final answer (a closed ``\\boxed{...}`` that `eval.answers.extract`
reads), else 0.0.

Each call logs, through TRL's ``log_metric`` hook (averaged over processes at each logging step):
``grader/pairs_per_s``, ``grader/seconds``, ``grader/slowest_s``, ``grader/timeouts``, ``grader/errors`` (and
``grader/judged`` under a judge policy). With ``train.rl.prompt_rewards`` every call also appends one row per
process to ``train/prompt_rewards/rank-<r>.jsonl`` (`curation.reward_history`): the exact counts,
and the per-prompt rewards LIMR's and 1-shot RLVR's rankings read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from curation.reward_history import history_row
from eval.answers.extract import extract_answer, has_box
from eval.grading.judge import Judge, JudgeItem
from eval.grading.policy import apply_policy
from eval.grading.pool import BatchResult, GraderPool
from eval.records import append_jsonl

MetricLogger = Callable[[str, float], None]


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or a conversational list whose assistant turns are joined."""
    if isinstance(completion, str):
        return completion
    return "".join(str(m.get("content") or "") for m in completion if m.get("role", "assistant") == "assistant")


class AccuracyReward:
    """TRL reward function ``accuracy`` (the name TRL logs it under): 1.0 for a correct completion, else 0.0.

    Args:
        pool: The grading processes (kept for the whole run; `close` stops them).
        policy: ``symbolic`` or a judge policy (`eval.grading.policy.POLICIES`).
        judge: The judge for a judge policy, else None.
        history_file: Where this process appends its per-prompt reward rows, or None.
    """

    __name__ = "accuracy"

    def __init__(
        self,
        pool: GraderPool,
        policy: str = "symbolic",
        judge: Judge | None = None,
        history_file: str | Path | None = None,
    ) -> None:
        if policy != "symbolic" and judge is None:
            raise ValueError(f"train.rl.grader.policy={policy!r} needs a judge (train.rl.grader.judge)")
        self.pool, self.policy, self.judge = pool, policy, judge
        self.history_file = Path(history_file) if history_file else None

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        *,
        gold: Sequence[str],
        problem: Sequence[str],
        id: Sequence[str],  # noqa: A002 - TRL passes dataset columns by their names
        trainer_state: Any = None,
        log_metric: MetricLogger | None = None,
        **_: Any,
    ) -> list[float]:
        texts = [completion_text(c) for c in completions]
        result = self.pool.grade_batch(list(zip(gold, texts, problem, strict=True)))
        correct, judged = self.decide(result, texts, gold, problem, id)
        rewards = [1.0 if ok else 0.0 for ok in correct]
        _log(log_metric, result, judged)
        if self.history_file is not None:
            step = (trainer_state.global_step if trainer_state is not None else 0) + 1  # the step these train
            append_jsonl(self.history_file, [history_row(step, id, rewards, result.timeouts, result.errors)])
        return rewards

    def decide(
        self,
        result: BatchResult,
        texts: Sequence[str],
        gold: Sequence[str],
        problem: Sequence[str],
        ids: Sequence[str],
    ) -> tuple[list[bool], int]:
        """Correct or not per completion under the policy, and how many rows the judge was asked about."""
        if self.policy == "symbolic":
            return [v.correct for v in result.verdicts], 0
        rows = zip(problem, gold, texts, ids, strict=True)
        items = [JudgeItem(p, g, t, str(i), n) for n, (p, g, t, i) in enumerate(rows)]
        decided = apply_policy(self.policy, items, result.verdicts, self.judge)
        return [bool(r["correct"]) for r in decided], sum(1 for r in decided if "judge_verdict" in r)

    def close(self) -> None:
        self.pool.close()


def _log(log_metric: MetricLogger | None, result: BatchResult, judged: int) -> None:
    if log_metric is None:
        return
    log_metric("grader/pairs_per_s", result.pairs_per_s)
    log_metric("grader/seconds", result.seconds)
    log_metric("grader/slowest_s", result.slowest_s)
    log_metric("grader/timeouts", float(result.timeouts))
    log_metric("grader/errors", float(result.errors))
    if judged:
        log_metric("grader/judged", float(judged))


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **_: Any) -> list[float]:
    """TRL reward function ``format``: 1.0 when the completion boxes a final answer, else 0.0."""
    return [1.0 if boxes_an_answer(completion_text(c)) else 0.0 for c in completions]


def boxes_an_answer(text: str) -> bool:
    """Whether the last ``\\boxed{`` is closed and holds an answer (a completion cut inside its box does not)."""
    start = text.rfind("\\boxed{")
    if start < 0 or not has_box(text):
        return False
    depth = 0
    for ch in text[start + len("\\boxed") :]:
        depth += (ch == "{") - (ch == "}")
        if depth == 0:
            return bool((extract_answer(text, fallback=False) or "").strip())
    return False


format_reward.__name__ = "format"
