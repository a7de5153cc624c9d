"""The resumable generate-and-grade loop for one benchmark.

Rows are generated in a fixed order (problem by problem, sample by sample) and appended to
``samples.jsonl`` one finished batch at a time (`append_jsonl`, fsynced), so a killed run loses at most
the batch in flight. On restart the finished request ids are read back (a torn last line is ignored and
cut) and only the missing rows are generated; because every row carries its own seed (`row_seed`), the
rows generated after a resume are the ones an uninterrupted run would have written, in the same order.
``run.json`` records what produced the rows (protocol, prompt, model, data checksum); resuming with a
different one is refused instead of mixing two protocols in one file.

Multiple-choice problems (answer kinds ``choice`` and ``chinese``) are presented per sample with their
options shuffled (`eval.benchmarks.choices.present`): each request carries its own question text, gold letter,
option order and shuffle seed, and its row records them; grading goes through
`eval.grading.kinds.grade_sample`, which adds the kind's rules to the symbolic grader.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from eval.backends.base import Backend, Generation, GenerationRequest, SamplingParams, row_seed
from eval.benchmarks.choices import present
from eval.benchmarks.loader import Benchmark
from eval.grading.grader import Verdict, regrade_late
from eval.grading.judge import Judge, JudgeItem
from eval.grading.kinds import grade_sample
from eval.grading.policy import apply_policy
from eval.problem import Problem
from eval.records import DataError, append_jsonl, read_jsonl, write_json
from eval.run.prompting import PromptStyle, build_messages

log = logging.getLogger(__name__)
SAMPLES_FILE = "samples.jsonl"
MANIFEST_FILE = "run.json"
# Keys of run.json that must match for a resume to continue a run.
FINGERPRINT_KEYS = ("benchmark", "protocol", "prompt", "model", "backend", "data_checksum", "choices")
SHUFFLED_KINDS = ("choice", "chinese")  # answer kinds whose multiple-choice problems are shuffled per sample
CHOICE_SEED_RULE = "row_seed(seed, '<problem id>#choices', sample_index)"


class ResumeMismatchError(DataError):
    """``samples.jsonl`` in the output folder was produced by a different protocol, prompt or model."""


@dataclass(frozen=True)
class EvalProtocol:
    """How every response of a benchmark is sampled.

    Attributes:
        samples: Responses per problem.
        temperature: Sampling temperature (0: greedy).
        top_p: Nucleus sampling mass.
        max_new_tokens: Generation length limit.
        seed: Run seed; each row's seed is ``row_seed(seed, problem_id, sample_index)``.
    """

    samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        if self.samples < 1 or self.max_new_tokens < 1 or self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"invalid protocol {self}: samples >= 1, max_new_tokens >= 1, 0 < top_p <= 1")

    @property
    def sampling(self) -> SamplingParams:
        return SamplingParams(self.temperature, self.top_p, self.max_new_tokens)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_protocol(benchmark_default: Mapping[str, Any], overrides: Mapping[str, Any], seed: int) -> EvalProtocol:
    """The benchmark's default protocol, with the recipe's non-null overrides on top, and the run seed."""
    known = set(EvalProtocol.__dataclass_fields__)
    values: dict[str, Any] = {"seed": seed}
    values.update({k: v for k, v in benchmark_default.items() if k in known and v is not None})
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"evaluate.protocol: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    return EvalProtocol(**values)


def build_requests(
    problems: Sequence[Problem], protocol: EvalProtocol, style: PromptStyle, *, answer_kind: str = "math"
) -> list[GenerationRequest]:
    """One request per (problem, sample index), problem by problem, in file order; multiple-choice problems
    of a shuffled kind get their own option order per sample (meta: question, gold, order, seed, options)."""
    requests = []
    for problem in problems:
        messages = build_messages(problem.problem, style)
        for index in range(protocol.samples):
            meta: dict[str, Any] = {"problem_id": problem.id, "sample_index": index}
            shown = present(problem, protocol.seed, index) if answer_kind in SHUFFLED_KINDS else None
            if shown is not None and (shown.order is not None or shown.gold != problem.answer):
                meta.update(question=shown.question, gold=shown.gold, choice_order=shown.order)
                meta.update(choice_seed=shown.seed, options=list(shown.options))
            requests.append(
                GenerationRequest(
                    id=f"{problem.id}#{index}",
                    messages=build_messages(meta["question"], style) if "question" in meta else messages,
                    sampling=protocol.sampling,
                    seed=row_seed(protocol.seed, problem.id, index),
                    meta=meta,
                )
            )
    return requests


@dataclass(frozen=True)
class GradingOptions:
    """How responses are graded: worker processes (for re-grading; the run loop grades each batch in
    process), the per-answer time limit, and who decides (`eval.grading.policy`: ``symbolic``, ``judge``,
    ``symbolic_then_judge``, ``both``) with the judge those policies ask."""

    workers: int | None = None
    timeout_s: float = 2.0
    policy: str = "symbolic"
    judge: Judge | None = None


def run_benchmark(
    benchmark: Benchmark,
    backend: Backend,
    protocol: EvalProtocol,
    style: PromptStyle,
    out_dir: str | Path,
    *,
    identity: Mapping[str, Any],
    batch_size: int = 8,
    grading: GradingOptions = GradingOptions(),
) -> list[dict[str, Any]]:
    """Generate and grade every missing row of ``benchmark`` into ``out_dir/samples.jsonl``.

    Args:
        benchmark: Loaded problems.
        backend: Generation backend.
        protocol: Sampling protocol.
        style: Prompt style.
        out_dir: ``<output_dir>/eval/<benchmark>``.
        identity: ``model`` and ``backend`` (and anything else that must match on resume).
        batch_size: Rows per backend call and per append.
        grading: Grader settings.

    Returns:
        All rows of this run, in request order.

    Raises:
        ResumeMismatchError: ``out_dir`` holds rows from a different protocol, prompt, model or data.
    """
    out = Path(out_dir)
    check_manifest(out, run_manifest(benchmark, protocol, style, identity))
    requests = build_requests(benchmark.problems, protocol, style, answer_kind=benchmark.answer_kind)
    done = {str(r["request_id"]): r for r in read_samples(out)}
    pending = [r for r in requests if r.id not in done]
    log.info(
        "%s: %d of %d rows already in %s; generating %d",
        benchmark.name,
        len(requests) - len(pending),
        len(requests),
        out / SAMPLES_FILE,
        len(pending),
    )
    problems = {p.id: p for p in benchmark.problems}
    with tqdm(total=len(requests), initial=len(requests) - len(pending), desc=f"generate {benchmark.name}") as bar:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            generated = backend.generate(batch)
            rows = grade_rows(batch, generated, problems, grading, benchmark.answer_kind, identity.get("model"))
            append_jsonl(out / SAMPLES_FILE, rows)
            done.update((row["request_id"], row) for row in rows)
            bar.update(len(batch))
    return [done[r.id] for r in requests]


def run_manifest(
    benchmark: Benchmark, protocol: EvalProtocol, style: PromptStyle, identity: Mapping[str, Any]
) -> dict[str, Any]:
    """What ``run.json`` records of a run: its `FINGERPRINT_KEYS` decide whether its rows are this run's."""
    manifest = {
        "benchmark": benchmark.name,
        "protocol": protocol.to_dict(),
        "prompt": style.to_dict(),
        "data_checksum": benchmark.checksum,
        "answer_kind": benchmark.answer_kind,
        **identity,
    }
    if benchmark.answer_kind in SHUFFLED_KINDS:
        manifest["choices"] = {"shuffle": True, "seed": CHOICE_SEED_RULE, "run_seed": protocol.seed}
    return manifest


def answers_on_file(
    out_dir: str | Path,
    benchmark: Benchmark,
    protocol: EvalProtocol,
    style: PromptStyle,
    identity: Mapping[str, Any],
) -> list[tuple[GenerationRequest, Generation]]:
    """The answers a single-turn run in ``out_dir`` gave, each with the request it answered, when that run is this
    one (``run.json``'s fingerprint, and the engine's model file digest where both runs name one); else none.

    The requests are rebuilt from the benchmark, protocol and prompt, which the fingerprint holds equal; a row whose
    request is not among them, or whose answer lacks a field, is left out, as is a server's empty reply.
    """
    out = Path(out_dir)
    path = out / MANIFEST_FILE
    if not path.exists() or not (out / SAMPLES_FILE).exists():
        return []
    previous = json.loads(path.read_text(encoding="utf-8"))
    now = run_manifest(benchmark, protocol, style, identity)
    if any(not _same_value(k, previous.get(k), now.get(k)) for k in FINGERPRINT_KEYS):
        return []
    digests = [(m.get("engine") or {}).get("gguf_sha256") for m in (previous, now)]
    if all(digests) and digests[0] != digests[1]:
        return []
    built = build_requests(benchmark.problems, protocol, style, answer_kind=benchmark.answer_kind)
    requests = {r.id: r for r in built}
    found = []
    for row in read_samples(out):
        request = requests.get(str(row.get("request_id")))
        text, reason, tokens = row.get("response"), row.get("finish_reason"), row.get("num_tokens")
        if request is None or not isinstance(text, str) or not isinstance(tokens, int):
            continue
        if reason == "stop" or reason == "length":  # a server's empty reply ("error") is asked again
            found.append((request, Generation(request.id, text, reason, tokens)))
    return found


def check_manifest(out: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``run.json``, or refuse when an earlier run in ``out`` used a different fingerprint."""
    path = out / MANIFEST_FILE
    if path.exists() and (out / SAMPLES_FILE).exists():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = [k for k in FINGERPRINT_KEYS if not _same_value(k, previous.get(k), manifest.get(k))]
        if changed:
            was = "; ".join(
                f"{k}: {previous.get(k)!r} then, {manifest.get(k)!r} now" for k in changed if k in ("model", "backend")
            )
            raise ResumeMismatchError(
                f"{out / SAMPLES_FILE} was produced with a different {', '.join(changed)}"
                f"{f' ({was})' if was else ''}; use another output_dir or remove that folder"
            )
    write_json(path, dict(manifest))


def _same_value(key: str, before: Any, now: Any) -> bool:
    """Equal fingerprints; a model given once as a relative and once as an absolute path to the same folder is the
    same model (a run resumed from a script that passes absolute paths)."""
    if before == now:
        return True
    if key != "model" or not isinstance(before, str) or not isinstance(now, str):
        return False
    first, second = Path(before).expanduser(), Path(now).expanduser()
    return first.exists() and second.exists() and first.resolve() == second.resolve()


def read_samples(out: Path) -> list[dict[str, Any]]:
    """Rows already written (a torn last line from a kill is ignored)."""
    path = out / SAMPLES_FILE
    return read_jsonl(path, tolerate_torn_tail=True) if path.exists() else []


def grade_rows(
    requests: Sequence[GenerationRequest],
    generations: Sequence[Generation],
    problems: Mapping[str, Problem],
    grading: GradingOptions,
    answer_kind: str = "math",
    model: str | None = None,
) -> list[dict[str, Any]]:
    """Grade one batch of generations into sample rows (in this process: small batches), then apply the
    grading policy (a judge asked about the rows it sends to one). ``model``: who wrote them, in every row (a
    samples file is a pool: two models' files concatenated still say which chain is whose)."""
    items = []
    for request, generation in zip(requests, generations, strict=True):
        problem = problems[request.meta["problem_id"]]
        gold = request.meta.get("gold", problem.answer)
        question = request.meta.get("question", problem.problem)  # lets the grader read yes/no statements
        items.append((request, generation, problem, gold, question))

    def graded(i: int) -> Verdict:
        request, generation, _, gold, question = items[i]
        options = tuple(request.meta.get("options") or ())
        return grade_sample(
            gold, generation.text, kind=answer_kind, problem=question, options=options, timeout_s=grading.timeout_s
        )

    verdicts = regrade_late([graded(i) for i in range(len(items))], graded)  # wall-clock timeouts graded again
    rows, questions = [], []
    for (request, generation, problem, gold, question), verdict in zip(items, verdicts, strict=True):
        row = {
            "request_id": request.id,
            "problem_id": problem.id,
            "problem": problem.problem,  # a samples file is a pool of chains as it stands (recipe smol_selfpool)
            "sample_index": request.meta["sample_index"],
            "seed": request.seed,
            "response": generation.text,
            "extracted": verdict.extracted,
            "status": verdict.status,
            "correct": verdict.correct,
            "reason": verdict.reason,
            "gold": gold,
            "num_tokens": generation.num_tokens,
            "finish_reason": generation.finish_reason,
            "level": problem.level,
            "subject": problem.subject,
            "model": model,
        }
        if "choice_order" in request.meta:
            row.update({k: request.meta[k] for k in ("choice_order", "choice_seed", "options")})
        rows.append(row)
        questions.append(question)
    return _decided(rows, questions, grading)


def _decided(rows: list[dict[str, Any]], questions: list[str], grading: GradingOptions) -> list[dict[str, Any]]:
    """The rows under the grading policy (`eval.grading.policy`): the symbolic verdict for ``symbolic``, else
    the judge asked about the rows the policy sends it, with who decided and both verdicts recorded."""
    items = [
        JudgeItem(question, str(row["gold"]), str(row["response"]), row["problem_id"], row["sample_index"])
        for question, row in zip(questions, rows, strict=True)
    ]
    verdicts = [Verdict(row["status"], row["correct"], row["extracted"], row["reason"]) for row in rows]
    decided = apply_policy(grading.policy, items, verdicts, grading.judge)
    return [{**row, **fields} for row, fields in zip(rows, decided, strict=True)]
