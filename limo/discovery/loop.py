"""The discovery loop: score the archive seed, then per generation ask the proposer, check, confine, score.

Per candidate: the parent parses the reply (`proposals`) and checks the code (`language.check_program`,
parsing only); only a program that passes runs, in a confined worker (`sandbox`, `worker`), which validates
and trains it. Its row goes to the archive (`archive`), the report is rewritten (`report`).

Resume after a kill (even ``kill -9``): rows in ``archive.jsonl`` are finished candidates and are never
redone; raw replies are kept in the proposer's reply cache (`eval.backends.generation.CachedGenerator`,
``discover/proposer-<hash>.jsonl``) before a candidate is scored, so the proposer is not asked again for a
generation it already answered; a worker's ``result.json`` whose job hash matches is reused
(the kill came between the worker's end and the archive append); any other candidate folder is cleared and
the candidate rerun from scratch with the same seeds, which gives the same result. ``manifest.json`` holds a
fingerprint of everything that decides a result; resuming with different settings is refused. Only
``generations`` may grow between runs. A lock file keeps two loops off one folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from eval.backends.base import GenerationRequest, row_seed
from eval.backends.generation import CachedGenerator
from eval.backends.replay import ReplayMissError
from eval.records import DataError, read_jsonl, sha256_file, write_json
from limo.discovery.options import DiscoverOptions, DiscoverPaths
from limo.discovery.proposals import MalformedReply, PromptTexts, Proposal, build_messages, parse_reply, slug
from limo.discovery.sandbox import Confined, Limits, run_confined
from limo.training import loss_archive as archive_io
from limo.training.loss_language import ProgramError, check_program

log = logging.getLogger("limo.discover")
RUNTIME_ONLY = ("generations", "sandbox")  # may change between a run and its resumption


class WorkerError(OSError):
    """The confined worker could not run at all (an environment problem, not the candidate's doing)."""


@dataclass(frozen=True)
class CandidateRunner:
    """Everything needed to score one candidate in a confined worker (plain values)."""

    paths: DiscoverPaths
    job: Mapping[str, Any]  # the job's fixed part: model, data splits, training arguments, beta, seed
    limits: Limits
    confinement: str
    read_only: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LoopState:
    rows: list[dict[str, Any]]
    replies: dict[int, str]
    stopped_early: str | None = None


# --- one candidate ---------------------------------------------------------------------------------------


def assess_reply(runner: CandidateRunner, generation: int, text: str) -> dict[str, Any]:
    """Archive row for a proposer reply: malformed replies and unsafe code never reach a process."""
    try:
        proposal = parse_reply(text)
    except MalformedReply as err:
        return archive_io.make_row(
            generation=generation, origin="proposal", name="", thought="", code="", status="invalid", reason=str(err)
        )
    return assess_proposal(runner, generation, "proposal", proposal)


def assess_proposal(
    runner: CandidateRunner, generation: int, origin: str, proposal: Proposal, tag: str = ""
) -> dict[str, Any]:
    """Check in the parent (parsing only), then validate and score in a confined worker (its folder is
    ``candidates/g<generation>-<tag><name>``; seeds share generation 0 and get their index as ``tag``)."""
    common = {"generation": generation, "origin": origin, "thought": proposal.thought, "code": proposal.code}
    try:
        program = check_program(proposal.code)
    except ProgramError as err:
        name = proposal.name or f"candidate_{generation}"
        return archive_io.make_row(**common, name=name, status=err.status, reason=str(err))
    name = proposal.name or program.name
    folder = runner.paths.candidates / f"g{generation:04d}-{tag}{slug(name, 'candidate')}"
    result, confined = run_worker(runner, folder, proposal.code)
    scores = result.get("scores") or {}
    metric = runner.job["metric"]
    selection = scores.get("selection", {}) if result["status"] == "valid" else {}
    log_path = folder / "log_history.json"
    training_log = str(log_path.relative_to(runner.paths.root)) if log_path.exists() else None
    return archive_io.make_row(
        **common,
        name=name,
        status=result["status"],
        reason=result.get("reason"),
        fitness=selection.get(metric),
        fitness_se=selection.get(f"{metric}_se"),
        training_log=training_log,
        metrics=scores,
        confinement=confined,
    )


def run_worker(runner: CandidateRunner, folder: Path, code: str) -> tuple[dict[str, Any], str]:
    """The worker's result for ``code`` (reused when a finished result for the same job is on disk)."""
    return run_job(runner, folder, {**runner.job, "code": code})


def run_job(runner: CandidateRunner, folder: Path, job: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Run ``job`` in a confined worker whose only writable place is ``folder``; returns (result, confinement)."""
    job = {**job, "output_dir": str(folder)}
    job["job_sha256"] = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()
    previous = folder / "result.json"
    if previous.exists():
        result = json.loads(previous.read_text(encoding="utf-8"))
        if result.get("job_sha256") == job["job_sha256"]:
            log.info("[discover] %s: reusing the finished result on disk", folder.name)
            return result, result.get("confinement", runner.confinement)
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "work").mkdir(parents=True)
    write_json(folder / "job.json", job)
    confined = run_confined(
        [sys.executable, "-m", "limo.discovery.worker", str((folder / "job.json").resolve())],
        workdir=folder / "work",
        read_only=runner.read_only,
        writable=[folder],
        limits=runner.limits,
        env=runner.env,
        confinement=runner.confinement,
        log_path=folder / "worker.log",
    )
    return _worker_result(folder, confined, candidate=job.get("kind") != "reference"), confined.confinement


def reference_log_probs(runner: CandidateRunner) -> CandidateRunner:
    """Compute the reference log-probs once (a confined job without candidate code, in ``discover/data/reference``;
    reused on resume) and return the runner whose candidate jobs read them.

    Raises:
        WorkerError: The reference job did not finish (the reason and its log are named).
    """
    folder = runner.paths.data / "reference"
    job = {key: value for key, value in runner.job.items() if key != "reference"}
    run_job(runner, folder, {**job, "kind": "reference"})  # raises WorkerError unless it finished
    return replace(runner, job={**job, "reference": str((folder / "reference.json").resolve())})


def _worker_result(folder: Path, confined: Confined, *, candidate: bool) -> dict[str, Any]:
    result_path = folder / "result.json"
    if result_path.exists():
        result = json.loads(result_path.read_text(encoding="utf-8"))
        result["confinement"] = confined.confinement
        write_json(result_path, result)
        return result
    killed = confined.timed_out or confined.signal_name is not None
    if not killed or not candidate:  # a job without candidate code that fails is the environment's failure
        raise WorkerError(
            f"the confined worker failed without a result ({confined.describe()}); see {folder / 'worker.log'}"
        )
    if (folder / "validation.json").exists():
        return {"status": "invalid", "reason": f"fitness training did not finish: {confined.describe()}"}
    return {"status": "rejected_unsafe", "reason": f"stopped by the sandbox while validating: {confined.describe()}"}


# --- the loop --------------------------------------------------------------------------------------------


def load_seed_archive(path: str) -> list[Proposal]:
    """The archive seed: rows ``{"name", "thought", "code"}`` with unique names.

    Raises:
        DataError: A row without a string name or code, or a repeated name (file and row named).
    """
    seeds, names = [], set()
    for number, row in enumerate(read_jsonl(path), start=1):
        for key in ("name", "code"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DataError(f"{path}: row {number}: field {key!r} must be a non-empty string")
        if row["name"] in names:
            raise DataError(f"{path}: row {number}: field 'name': {row['name']!r} appears twice")
        names.add(row["name"])
        seeds.append(Proposal(row["name"], str(row.get("thought") or ""), row["code"]))
    if not seeds:
        raise DataError(f"{path}: the archive seed is empty")
    return seeds


def score_seeds(runner: CandidateRunner, seeds: Sequence[Proposal], state: LoopState, on_row) -> None:
    """Generation 0: every seed objective not yet in the archive, in file order."""
    done = {r["name"] for r in state.rows if r["generation"] == 0}
    for index, seed in enumerate(seeds):
        if seed.name in done:
            continue
        log.info("[discover] seed %s", seed.name)
        on_row(assess_proposal(runner, 0, "seed", seed, tag=f"s{index}-"))


def run_generations(
    runner: CandidateRunner,
    proposer: CachedGenerator,
    texts: PromptTexts,
    options: DiscoverOptions,
    generations: int,
    state: LoopState,
    on_row,
) -> None:
    """Generations after the last finished one, up to ``generations``; the proposer's reply is cached before the
    candidate is scored."""
    sampling = options.proposer.sampling()
    first = max((r["generation"] for r in state.rows), default=0) + 1
    for generation in range(first, generations + 1):
        messages = build_messages(texts, state.rows, state.replies)
        request = GenerationRequest(
            request_id(generation),
            tuple(messages),
            sampling,
            row_seed(int(runner.job["seed"]), "discover", generation),
            {"problem_id": "discover", "sample_index": generation},
        )
        try:
            text = proposer.generate([request])[0].text
        except ReplayMissError:
            state.stopped_early = f"the replay file has no proposal for generation {generation}"
            log.info("[discover] %s: stopping after generation %d", state.stopped_early, generation - 1)
            return
        state.replies[generation] = text
        log.info("[discover] generation %d", generation)
        on_row(assess_reply(runner, generation, text))


def request_id(generation: int) -> str:
    return f"proposal-{generation}"


def load_state(paths: DiscoverPaths, proposer: CachedGenerator) -> LoopState:
    """The finished candidates (archive rows) and the replies the proposer already gave (its cache)."""
    cached = proposer.cached()
    rows = archive_io.read_archive(paths.archive)
    generations = sorted({int(r["generation"]) for r in rows if r["generation"] > 0})
    replies = {g: str(cached[request_id(g)]["text"]) for g in generations if request_id(g) in cached}
    return LoopState(rows, replies)


# --- run folder: lock and fingerprint --------------------------------------------------------------------


@contextmanager
def locked(paths: DiscoverPaths) -> Iterator[None]:
    """Hold ``discover/.lock`` for the run; a second loop on the same folder is refused."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"{paths.root}: another limo.discover run is using this folder") from None
        yield


def fingerprint(options: DiscoverOptions, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What decides results: the discover section (minus `RUNTIME_ONLY`) and the run's inputs."""
    settings = {k: v for k, v in asdict(options).items() if k not in RUNTIME_ONLY}
    settings["seed_archive_sha256"] = sha256_file(options.seed_archive)
    if options.proposer.path:
        settings["proposer"]["path_sha256"] = sha256_file(options.proposer.path)
    return {"settings": settings, "inputs": dict(inputs)}


def check_manifest(paths: DiscoverPaths, current: Mapping[str, Any]) -> None:
    """Write the fingerprint on the first run; refuse to resume with a different one.

    Raises:
        DataError: The folder was produced with different settings (the differing keys are named).
    """
    if not paths.manifest.exists():
        write_json(paths.manifest, current)
        return
    recorded = json.loads(paths.manifest.read_text(encoding="utf-8"))
    changed = sorted(_differences(recorded, json.loads(json.dumps(current))))
    if changed:
        raise DataError(
            f"{paths.manifest}: this run folder was made with different settings ({', '.join(changed)}); "
            "use another output_dir, or delete the folder to start over"
        )


def _differences(old: Any, new: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _differences(old.get(key), new.get(key), f"{prefix}{key}.")
    elif old != new:
        yield prefix.rstrip(".")
