"""What a user looks at after a GRPO run: ``train/report.md`` with per-step curves, and the model card.

The curves come from TRL's ``log_history`` (one entry per logging step): reward mean and standard deviation,
each reward function's mean (accuracy is ``rewards/accuracy/mean``), KL to the reference (when ``beta > 0``),
entropy, mean completion length and the share of completions cut at ``max_completion_length``, and the grader's
throughput and time-outs. They are drawn into ``train/curves.png`` (matplotlib's Agg backend) and tabulated in
the report. The model card names the prompts file and its sha256, the rewards and who decided them, and the
GRPO settings that shape the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from limo.training.rl_plan import RLPlan

CURVES = (
    ("reward", "reward (mean; band: std)", "reward_std"),
    ("rewards/accuracy/mean", "accuracy", None),
    ("kl", "KL to the reference", None),
    ("entropy", "entropy (nats/token)", None),
    ("completions/mean_length", "completion length (tokens)", None),
    ("completions/clipped_ratio", "share cut at max_completion_length", None),
    ("grader/pairs_per_s", "grader pairs/s (per process)", None),
    ("grader/timeouts", "grader time-outs per call", None),
)
TABLE_KEYS = (
    "reward",
    "reward_std",
    "rewards/accuracy/mean",
    "rewards/format/mean",
    "kl",
    "entropy",
    "completions/mean_length",
    "completions/clipped_ratio",
    "grader/pairs_per_s",
    "grader/timeouts",
    "grader/errors",
)


def step_rows(log_history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The per-step entries of a GRPO ``log_history`` (the final summary entry has no ``reward``)."""
    return [row for row in log_history if "reward" in row and "step" in row]


def plot_curves(rows: Sequence[Mapping[str, Any]], path: Path) -> bool:
    """Draw every curve the log has into one figure at ``path``; False (nothing drawn) when no step was logged."""
    present = [c for c in CURVES if any(row.get(c[0]) is not None for row in rows)]
    if not rows or not present:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 2
    fig, axes = plt.subplots((len(present) + 1) // columns, columns, figsize=(10, 2.6 * ((len(present) + 1) // 2)))
    for ax, (key, title, band) in zip(axes.flat, present, strict=False):
        points = [(row["step"], row[key], row.get(band) if band else None) for row in rows if row.get(key) is not None]
        steps, values = [p[0] for p in points], [p[1] for p in points]
        ax.plot(steps, values, marker="o", markersize=3)
        if band:
            spread = [p[2] or 0.0 for p in points]
            low = [v - s for v, s in zip(values, spread, strict=True)]
            high = [v + s for v, s in zip(values, spread, strict=True)]
            ax.fill_between(steps, low, high, alpha=0.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def render_report(recipe: str, plan: RLPlan, rows: Sequence[Mapping[str, Any]], plotted: bool) -> str:
    """``train/report.md``: the plan, the curves and a per-step table."""
    keys = [k for k in TABLE_KEYS if any(row.get(k) is not None for row in rows)]
    header = "| step | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys)
    body = "\n".join(f"| {row['step']} | " + " | ".join(_fmt(row.get(k)) for k in keys) + " |" for row in rows)
    return "\n\n".join(
        [
            f"# GRPO training report: {recipe}",
            f"Plan: {plan.summary()}",
            "![per-step curves](curves.png)" if plotted else "No step was logged (no curves).",
            "## Per step",
            header + ("\n" + body if body else ""),
            "Keys are TRL's (`reward`, `rewards/<function>/mean`, `kl`, `entropy`, `completions/...`) and the "
            "grader's (`grader/...`: throughput, time-outs and errors per call, averaged over processes; "
            "`prompt_rewards/rank-*.jsonl` has the exact counts).",
        ]
    )


def render_card(
    *,
    recipe: str,
    base_model: str,
    prompts: tuple[str, str | None, int],
    rewards: Sequence[str],
    weights: Sequence[float] | None,
    policy: str,
    settings: Mapping[str, Any],
    plan: RLPlan,
    metrics: Mapping[str, Any],
    system_prompt: str | None,
    user_template: str,
) -> str:
    """Markdown model card of a GRPO run (front matter for the Hub, then what reproduces and explains it).

    ``prompts`` is ``(path, sha256, count)``.
    """
    path, checksum, count = prompts
    shown_weights = ", ".join(f"{r} x {w:g}" for r, w in zip(rewards, weights or [1.0] * len(rewards), strict=True))
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in sorted(metrics.items()))
    knobs = ", ".join(f"`{k}` {v}" for k, v in settings.items())
    return f"""---
base_model: {base_model}
library_name: transformers
tags: [limo, grpo, rlvr, trl, reasoning]
---

# {recipe} — trained with GRPO (RL with verifiable rewards) by limo

- **Recipe**: `{recipe}` (`python -m limo.train recipe={recipe}`); the resolved config is `../config.yaml`.
- **Base model**: `{base_model}`
- **Prompts**: `{path}`, sha256 `{checksum or "unknown"}`, {count} prompts
- **Reward**: {shown_weights}; `accuracy` is limo's grader (`eval.grading.grader`, policy `{policy}`): 1 for a correct
  final answer, 0 otherwise (a grader time-out or error is 0 and counted); `format` is 1 when the answer is boxed.
- **Prompt**: system {f"`{system_prompt}`" if system_prompt else "none (the chat template's default)"}; user
  turn `{user_template}`
- **GRPO settings**: {knobs}

## Plan

{plan.summary()}

## Training metrics

| metric | value |
|---|---|
{rows}

Per-step curves: `../report.md`.
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
