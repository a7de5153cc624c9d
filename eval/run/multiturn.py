"""Multi-turn self-correction episodes (RISE): answer, get feedback, answer again, for up to ``turns`` turns.

One episode per problem. At turn ``t`` the policy sees the problem, its earlier answers and a feedback
message after each, and answers again. With an *oracle* the feedback comes only after a wrong answer and
the episode stops at the first correct one; without an oracle the feedback comes after every answer and
the episode runs all turns (the model is never told whether it was right).

Metrics (`turn_accuracy`), as in the RISE paper (Qu et al., 2024):

- oracle: accuracy after turn ``t`` = share of problems answered correctly at some turn ``<= t``;
- no oracle: accuracy after turn ``t`` = share of problems whose *majority* answer over turns ``1..t``
  (clusters of equivalent extracted answers; ties go to the earlier answer) is correct. The last turn's
  own accuracy is reported beside it.

The same loop drives curation (`curation.methods.rise.episodes` adds improved answers between `policy_turn` and
`close_turn`) and evaluation (`run_multiturn`). Request ids are ``<problem_id>#t<turn>`` and each row's
seed is ``row_seed(seed, problem_id, sample_index)`` with a fixed sample index per turn, so a resumed run
regenerates identical turns. Each episode is appended to ``episodes.jsonl`` as soon as it finishes; a rerun
skips the problems already there.

Turn 1 is the single-turn request (the same messages, sampling and seed), and both variants ask it. `KnownAnswers`
holds answers already given, keyed by what decides an answer; a request found there is answered from it, not
generated again, and its record says ``"reused": true``. `limo.evaluate mode=[generate,multiturn]` fills it from
the single-turn run beside it (`eval.run.runner.answers_on_file`), and each variant's answers serve the next.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from eval.backends.base import Backend, Generation, GenerationRequest, SamplingParams, row_seed
from eval.grading.grader import grade_many, verify
from eval.problem import Problem
from eval.records import append_jsonl, read_jsonl, write_json, write_text_atomic
from eval.reports.metrics import majority_vote
from eval.reports.report import environment

log = logging.getLogger(__name__)
EPISODES_FILE = "episodes.jsonl"
MAX_TURNS = 5
Grade = Callable[[Sequence[tuple[str, str]]], list[Any]]  # (gold, response) pairs -> Verdicts


@dataclass(frozen=True)
class MultiTurnOptions:
    """How episodes run.

    Attributes:
        turns: Answers per problem at most (1..5, the paper's range).
        oracle: Feedback only after a wrong answer, and stop at the first correct one.
        feedback: The user message appended after an answer.
        sampling: Sampling of every policy answer.
        seed: Run seed (rows are seeded per problem and turn).
        samples_per_turn: Extra samples each turn takes from the sample-index space (curation's best-of-N
            improvements); keeps the policy's own sample index stable whatever N is.
    """

    turns: int = MAX_TURNS
    oracle: bool = True
    feedback: str = ""
    sampling: SamplingParams = SamplingParams()
    seed: int = 0
    samples_per_turn: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.turns <= MAX_TURNS:
            raise ValueError(f"turns={self.turns}: expected 1..{MAX_TURNS}")
        if not self.feedback.strip():
            raise ValueError("feedback: the feedback message must not be empty")


@dataclass(frozen=True)
class TurnRecord:
    """One graded answer."""

    turn: int
    request_id: str
    text: str
    finish_reason: str
    num_tokens: int
    status: str
    correct: bool
    extracted: str | None
    seed: int
    reused: bool = False  # answered from `KnownAnswers` (the same request asked before), not generated again

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        if not self.reused:  # files written before answers were reused stay byte for byte what they were
            del row["reused"]
        return row


@dataclass(frozen=True)
class Episode:
    """A problem's conversation so far: prompt messages, then answer / feedback pairs."""

    problem: Problem
    messages: tuple[dict[str, str], ...]
    turns: tuple[TurnRecord, ...] = ()
    stopped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def turn(self) -> int:
        """The turn the next answer belongs to (1-based)."""
        return len(self.turns) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem_id": self.problem.id,
            "gold": self.problem.answer,
            "messages": list(self.messages),
            "turns": [t.to_dict() for t in self.turns],
            **self.extra,
        }


def sample_index(turn: int, options: MultiTurnOptions, extra: int = -1) -> int:
    """Sample index of the policy's answer at ``turn`` (``extra=-1``) or of extra sample ``extra``."""
    return (turn - 1) * (options.samples_per_turn + 1) + extra + 1


def request_key(request: GenerationRequest) -> str:
    """What decides a request's answer, for a given model and engine: its messages, its sampling and its seed
    (not its id, which names the row)."""
    return json.dumps([list(request.messages), request.sampling.to_dict(), request.seed], sort_keys=True)


class KnownAnswers:
    """Answers already given to requests, by `request_key`: the caller keeps one per model and engine.

    ``generate(backend, requests)`` answers the requests it knows from here and asks ``backend`` for the rest (one
    call, in order); every answer the backend gives is kept for the next request that asks the same. An answer that
    ended in an error (``finish_reason == "error"``: a server's empty reply) is never kept.
    """

    def __init__(self) -> None:
        self._answers: dict[str, Generation] = {}

    def __len__(self) -> int:
        return len(self._answers)

    def add(self, request: GenerationRequest, generation: Generation) -> None:
        if generation.finish_reason != "error":
            self._answers[request_key(request)] = generation

    def generate(self, backend: Backend, requests: Sequence[GenerationRequest]) -> tuple[list[Generation], list[bool]]:
        """The requests' answers in order, and for each whether it came from here."""
        keys = [request_key(r) for r in requests]
        asked = [r for r, k in zip(requests, keys, strict=True) if k not in self._answers]
        fresh = iter(backend.generate(asked) if asked else [])
        answers, reused = [], []
        for request, key in zip(requests, keys, strict=True):
            known = self._answers.get(key)
            if known is None:
                generation = next(fresh)
                self.add(request, generation)
                answers.append(generation)
            else:
                answers.append(replace(known, request_id=request.id, meta={}))
            reused.append(known is not None)
        return answers, reused


def turn_requests(episodes: Sequence[Episode], options: MultiTurnOptions) -> list[GenerationRequest]:
    """One policy request per active episode, for its current turn."""
    requests = []
    for episode in episodes:
        index = sample_index(episode.turn, options)
        requests.append(
            GenerationRequest(
                id=f"{episode.problem.id}#t{episode.turn}",
                messages=episode.messages,
                sampling=options.sampling,
                seed=row_seed(options.seed, episode.problem.id, index),
                meta={"problem_id": episode.problem.id, "sample_index": index, "turn": episode.turn},
            )
        )
    return requests


def graded_records(
    requests: Sequence[GenerationRequest],
    generations: Sequence[Generation],
    golds: Sequence[str],
    grade: Grade,
    reused: Sequence[bool] | None = None,
) -> list[TurnRecord]:
    """Grade generations into records (order kept; a backend answering another id is an error); ``reused``
    marks the ones `KnownAnswers` gave."""
    for request, generation in zip(requests, generations, strict=True):
        if generation.request_id != request.id:
            raise RuntimeError(f"backend answered {generation.request_id!r} for request {request.id!r}")
    verdicts = grade(list(zip(golds, [g.text for g in generations], strict=True)))
    return [
        TurnRecord(
            int(r.meta.get("turn", 0)),
            r.id,
            g.text,
            g.finish_reason,
            g.num_tokens,
            v.status,
            v.correct,
            v.extracted,
            r.seed,
            again,
        )
        for r, g, v, again in zip(requests, generations, verdicts, reused or [False] * len(requests), strict=True)
    ]


def policy_turn(
    episodes: Sequence[Episode],
    backend: Backend,
    options: MultiTurnOptions,
    grade: Grade,
    known: KnownAnswers | None = None,
) -> list[TurnRecord]:
    """The policy's graded answers for the current turn of every episode (from ``known`` where it holds them)."""
    requests = turn_requests(episodes, options)
    golds = [e.problem.answer for e in episodes]
    if known is None:
        return graded_records(requests, backend.generate(requests), golds, grade)
    generations, reused = known.generate(backend, requests)
    return graded_records(requests, generations, golds, grade, reused)


def close_turn(episode: Episode, record: TurnRecord, options: MultiTurnOptions) -> Episode:
    """Add the answer; then stop (oracle and correct, or last turn) or add the feedback message."""
    messages = (*episode.messages, {"role": "assistant", "content": record.text})
    turns = (*episode.turns, record)
    if (options.oracle and record.correct) or len(turns) >= options.turns:
        return replace(episode, messages=messages, turns=turns, stopped=True)
    return replace(episode, messages=(*messages, {"role": "user", "content": options.feedback}), turns=turns)


def run_episodes(
    episodes: Sequence[Episode],
    backend: Backend,
    options: MultiTurnOptions,
    grade: Grade,
    between: Callable[[list[Episode], list[TurnRecord]], list[Episode]] | None = None,
    on_done: Callable[[list[Episode]], None] | None = None,
    known: KnownAnswers | None = None,
) -> list[Episode]:
    """Run a batch of episodes to the end, turn by turn (one backend call per turn for the whole batch; a request
    ``known`` holds is answered from it).

    ``between(active_episodes, records)`` runs after each turn's answers are graded and before they are
    added, and returns the episodes to continue with (curation records improved answers there, asked from
    the same context the policy saw). ``on_done(finished)`` receives the episodes that stopped at each
    turn, as soon as they stop (`resume_episodes` appends them to its file there).
    """
    done: dict[str, Episode] = {}
    active = list(episodes)
    while active:
        records = policy_turn(active, backend, options, grade, known)
        if between is not None:
            active = between(active, records)
        closed = [close_turn(e, r, options) for e, r in zip(active, records, strict=True)]
        finished = [e for e in closed if e.stopped]
        done.update((e.problem.id, e) for e in finished)
        if on_done is not None and finished:
            on_done(finished)
        active = [e for e in closed if not e.stopped]
    return [done[e.problem.id] for e in episodes]


def resume_episodes(
    problems: Sequence[Problem],
    path: Path,
    start: Callable[[Problem], Episode],
    run_batch: Callable[[list[Episode], Callable[[list[Episode]], None]], Any],
    batch_size: int,
) -> list[dict[str, Any]]:
    """Run the problems ``path`` does not hold yet and return all rows in problem order.

    ``run_batch(episodes, on_done)`` runs a batch of episodes and calls ``on_done`` with each group of
    finished ones (`run_episodes` does); each finished episode is appended to ``path`` at once, so a kill
    loses only the episodes still running.
    """
    done = {row["problem_id"]: row for row in read_jsonl(path, tolerate_torn_tail=True)} if path.exists() else {}
    missing = [p for p in problems if p.id not in done]
    log.info("multi-turn: %d of %d problems already in %s; %d to run", len(done), len(problems), path, len(missing))

    def save(finished: list[Episode]) -> None:
        rows = [e.to_dict() for e in finished]
        append_jsonl(path, rows)
        done.update((row["problem_id"], row) for row in rows)

    for begin in range(0, len(missing), max(1, batch_size)):
        run_batch([start(p) for p in missing[begin : begin + batch_size]], save)
    return [done[p.id] for p in problems]


def check_resume(out: Path, fingerprint: Mapping[str, Any]) -> None:
    """Write ``run.json``; refuse to extend episodes that a different model, prompt or setting produced."""

    path = out / "run.json"
    fingerprint = json.loads(json.dumps(dict(fingerprint), default=str))  # compare as written
    if path.exists() and (out / EPISODES_FILE).exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(previous) | set(fingerprint) if previous.get(k) != fingerprint.get(k))
        if changed:
            raise ValueError(
                f"{out / EPISODES_FILE} was produced with a different {', '.join(changed)}; "
                "use another output_dir or remove that folder"
            )
    write_json(path, dict(fingerprint))


def turn_accuracy(
    rows: Sequence[Mapping[str, Any]], turns: int, oracle: bool, equivalent: Callable[[str, str], bool]
) -> dict[str, Any]:
    """Per-turn accuracy of episode rows (see the module docstring for the two definitions)."""
    if not rows:
        raise ValueError("no episodes to summarise")
    after, last = [], []
    for t in range(1, turns + 1):
        hits, last_hits = 0, 0
        for row in rows:
            upto = row["turns"][:t]
            if oracle:
                hits += any(r["correct"] for r in upto)
            else:
                best = majority_vote([r["extracted"] for r in upto], equivalent)
                hits += best is not None and bool(upto[best]["correct"])
                last_hits += bool(upto[-1]["correct"])
        after.append(hits / len(rows))
        last.append(last_hits / len(rows))
    summary: dict[str, Any] = {
        "problems": len(rows),
        "turns": turns,
        "oracle": oracle,
        "accuracy_after_turn": after,
        "gain_turn1_to_last": after[-1] - after[0],
    }
    if not oracle:
        summary["last_turn_accuracy"] = last
    summary["mean_turns_used"] = sum(len(r["turns"]) for r in rows) / len(rows)
    return summary


def render_report(summary: Mapping[str, Any]) -> str:
    """A Markdown table of accuracy per turn."""
    metric = "correct at some turn <= t (oracle)" if summary["oracle"] else "majority answer over turns 1..t"
    lines = [
        f"# {summary.get('benchmark', 'multi-turn')}: multi-turn self-correction",
        "",
        f"- model: {summary.get('model')} ({summary.get('backend')})",
        f"- problems: {summary['problems']}",
        f"- oracle: {summary['oracle']}; feedback: {summary.get('feedback')!r}",
        f"- metric: {metric}",
        *(
            [f"- answers reused: {summary['reused_answers']} (the same request asked before: not generated again)"]
            if summary.get("reused_answers")
            else []
        ),
        "",
        "| turn | accuracy |" + (" last-turn accuracy |" if not summary["oracle"] else ""),
        "|---|---|" + ("---|" if not summary["oracle"] else ""),
    ]
    for t, value in enumerate(summary["accuracy_after_turn"], start=1):
        extra = f" {summary['last_turn_accuracy'][t - 1]:.4f} |" if not summary["oracle"] else ""
        lines.append(f"| {t} | {value:.4f} |{extra}")
    lines += ["", f"Gain from turn 1 to turn {summary['turns']}: {summary['gain_turn1_to_last']:+.4f}."]
    return "\n".join(lines) + "\n"


def run_multiturn(
    problems: Sequence[Problem],
    backend: Backend,
    options: MultiTurnOptions,
    prompt: Callable[[str], tuple[dict[str, str], ...]],
    out_dir: str | Path,
    *,
    header: Mapping[str, Any],
    batch_size: int = 8,
    timeout_s: float = 2.0,
    known: KnownAnswers | None = None,
) -> dict[str, Any]:
    """Run (or resume) every episode into ``out_dir/episodes.jsonl``; write ``summary.json`` and ``report.md``.

    ``prompt(problem_text)`` gives the first messages (system turn and few-shot included); ``known``: answers to
    requests asked before (`KnownAnswers`), for this model and engine only. The summary's ``reused_answers``
    counts the turns answered from it.
    """

    out = Path(out_dir)
    settings = {
        "turns": options.turns,
        "oracle": options.oracle,
        "feedback": options.feedback,
        "sampling": options.sampling.to_dict(),
        "seed": options.seed,
    }
    check_resume(out, {**header, **settings})
    grade: Grade = lambda pairs: grade_many(pairs, workers=1, timeout_s=timeout_s, progress=False)  # noqa: E731
    rows = resume_episodes(
        problems,
        out / EPISODES_FILE,
        lambda p: Episode(p, prompt(p.problem)),
        lambda batch, on_done: run_episodes(batch, backend, options, grade, on_done=on_done, known=known),
        batch_size,
    )
    accuracy = turn_accuracy(rows, options.turns, options.oracle, lambda a, b: verify(a, b, timeout_s=timeout_s))
    reused = sum(bool(turn.get("reused")) for row in rows for turn in row["turns"])
    summary = {**header, **settings, "environment": environment(), **accuracy, "reused_answers": reused}
    write_json(out / "summary.json", summary)
    write_text_atomic(out / "report.md", render_report(summary))
    return summary
