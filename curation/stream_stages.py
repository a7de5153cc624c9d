"""The shared pool stages as sharded jobs over the pool store: the same decisions as `curation.stages`, no texts held.

Each stage here makes the decision its in-memory counterpart makes (`curation.validate`, `answer_check`,
`dedup`, `decontam`, `suspect_gold`, `difficulty`, `quality`, `diversity`, `select`), with the same
per-item functions and drop details, in the same order, so the rejects and the selection are the same:

- per-chain and per-problem work (validation, grading, shingling, n-gram scans and confirmation, quality
  scores) is a shard job over the pool table's parts (`curation.shard_tasks`), run on the run's executor;
- global decisions work on compact keys the jobs return: 128-bit digests for exact duplicates (first in
  pool order wins), LSH band keys for near-duplicate candidates — whose exact Jaccard is again a sharded
  job, and whose greedy pass (a problem is a duplicate of the earliest kept problem it matches) is the
  in-memory LSH loop's —, n-gram document frequencies for decontamination, counts per (problem, generator)
  for pass rates, and one combined score per chain for diversity and selection.

Pass rates from fresh rollouts go through `curation.rollouts.run_rollout_stages` (sharded, resumable,
adaptive), the same function the in-memory runner calls.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from curation.decontam import (
    Candidate,
    Contamination,
    Scan,
    Verdict,
    boilerplate,
    build_index,
    candidates_of,
    contamination_result,
    document_frequencies,
    gram_weights,
    idf_sample,
    load_benchmark_items,
    word_weights,
)
from curation.difficulty import (
    check_missing,
    difficulty_decision,
    difficulty_note,
    difficulty_signal,
    metadata_note,
    metadata_summary,
    problem_metadata,
)
from curation.diversity import UNKNOWN_DOMAIN, quota_drops, quota_limit, s1_drops
from curation.options import StageOptions
from curation.pool_store import first_of_equal, write_once
from curation.rollouts import run_rollout_stages
from curation.select import UNKNOWN_DIFFICULTY, fallback_signal, length_percentiles, weighted
from curation.shard_tasks import (
    answer_check_chains,
    decontam_confirm,
    decontam_scans,
    dedup_chain_digests,
    dedup_problem_keys,
    near_duplicate_pairs,
    quality_chains,
    validate_chains,
    validate_problems,
    write_context,
    write_rows_file,
)
from curation.stages import benchmark_error
from curation.streaming import DropItem, StreamContext, StreamState, options_dict, rows_of, run_items, run_parts
from curation.suspect_gold import judge_problem
from curation.validate import problem_detail
from eval.problem import Problem
from eval.records import DataError

PAIRS_PER_TASK = 200_000
CANDIDATES_PER_TASK = 2_000

StreamStage = Callable[[StreamState, StageOptions, StreamContext], None]


def problem_limit(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    limit = options.ingest.problem_limit
    count = state.begin("problem_limit", limit is not None)
    over: list[int] = np.flatnonzero(state.problem_alive)[limit:].tolist() if limit is not None else []
    state.apply(count, problems=[(p, "problem_limit", {"limit": limit}) for p in over])


def validate(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    count = state.opened("validate", options.validate.enabled)
    if count is None:
        return
    params = {"options": options_dict(options.validate)}
    problems = run_parts(state, context, "validate-problems", validate_problems, params, table="problems")
    chains = run_parts(state, context, "validate-chains", validate_chains, params)  # before any problem drop
    chain_drops = (
        (c, reason, {"prompt_setting": setting} if setting else {}) for c, reason, setting in rows_of(chains)
    )
    problem_drops = [(p, reason, problem_detail(reason, chars)) for p, reason, chars in rows_of(problems)]
    state.apply(count, chains=chain_drops, problems=problem_drops)


def answer_check(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    """`curation.answer_check.run_answer_check`: model chains stay only when the grader confirms them."""
    settings = options.answer_check
    count = state.opened("answer_check", settings.enabled)
    if count is None:
        return
    job = run_parts(state, context, "answer-check", answer_check_chains, {"options": options_dict(settings)})
    human = state.store.columns.chain_human
    results = state.results
    results.answer_job = job
    results.attempt = np.zeros(len(state.chain_alive), dtype=bool)
    results.correct = np.zeros(len(state.chain_alive), dtype=bool)
    statuses: Counter[str] = Counter()
    flags: Counter[str] = Counter()

    def drops() -> Iterator[DropItem]:
        for chain, status, correct, extracted, reason, why, circular, marked in rows_of(job):
            statuses[status] += 1
            flags.update(human_references=bool(human[chain]), gold_circular=circular, pool_marked_incorrect=marked)
            if human[chain]:
                continue
            results.attempt[chain], results.correct[chain] = True, correct  # type: ignore[index]
            if why is not None and not settings.keep_incorrect:
                yield chain, why, {"reason": reason, "extracted": extracted}

    state.apply(count, chains=drops())
    count.notes = {
        "statuses": dict(sorted(statuses.items())),
        **{k: flags[k] for k in ("human_references", "gold_circular", "pool_marked_incorrect")},
        "keep_incorrect": settings.keep_incorrect,
    }


# ------------------------------------------------------------------------------------------------ dedup


def dedup(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    settings = options.dedup
    count = state.opened("dedup", settings.enabled)
    if count is None:
        return
    params = {"options": options_dict(settings)}
    job = run_parts(state, context, "dedup-problems", dedup_problem_keys, params, table="problems")
    problems, exact, bands = _problem_keys(job, int(state.problem_alive.sum()), settings.near)
    chains = duplicate_chains(state, context) if settings.exact_chains else []
    first, kept = first_of_equal(exact)
    drops = [(int(problems[i]), "duplicate_problem", int(problems[kept[i]])) for i in np.flatnonzero(~first)]
    if settings.near and first.any():
        problems = problems[first]
        buckets = save_buckets(context, problems, bands[first])
        del bands  # the candidate tasks memory-map the saved buckets: the driver holds no band keys meanwhile
        drops += near_duplicates(state, context, problems, buckets, params)
    problem_drops = [(p, reason, {"duplicate_of": state.problem_ids[k]}) for p, reason, k in drops]
    state.apply(count, chains=chains, problems=problem_drops)


def _problem_keys(job: Any, rows: int, near: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dedup keys of every alive problem as arrays: problem, exact digest (2 words), band keys."""
    problems = np.zeros(rows, dtype=np.int64)
    exact = np.zeros((rows, 2), dtype=np.uint64)
    bands: np.ndarray | None = None
    for position, (problem, digest, keys) in enumerate(rows_of(job)):
        if bands is None:
            bands = np.zeros((rows, len(keys) if near else 0), dtype=np.uint32)
        problems[position] = problem
        exact[position] = np.frombuffer(bytes.fromhex(digest), dtype=np.uint64)
        bands[position] = keys
    return problems, exact, bands if bands is not None else np.zeros((0, 0), dtype=np.uint32)


def duplicate_chains(state: StreamState, context: StreamContext) -> list[DropItem]:
    """Exact duplicate chains within a problem (normalised text digest), the first in pool order kept."""
    job = run_parts(state, context, "dedup-chains", dedup_chain_digests, {})
    rows = int(state.chain_alive.sum())
    keys = np.zeros((rows, 3), dtype=np.uint64)  # problem, digest
    chains = np.zeros(rows, dtype=np.int64)
    for position, (chain, digest) in enumerate(rows_of(job)):
        chains[position] = chain
        keys[position, 1:] = np.frombuffer(bytes.fromhex(digest), dtype=np.uint64)
    keys[:, 0] = state.chain_problem[chains]
    first, kept = first_of_equal(keys)
    duplicates = np.flatnonzero(~first)
    kept_ids = state.chain_ids(chains[kept[duplicates]])
    return [
        (int(chains[i]), "duplicate_chain", {"duplicate_of": k}) for i, k in zip(duplicates, kept_ids, strict=True)
    ]


def save_buckets(context: StreamContext, problems: np.ndarray, bands: np.ndarray) -> Path | None:
    """The LSH buckets of ``bands`` (`lsh_buckets`) with the problems and band keys, saved as ``.npy`` files in
    a folder named from their content (`write_once`), which the candidate tasks memory-map: each reads the few
    rows of its buckets, so neither they nor the driver hold the band keys of every problem (4 bytes x 128
    bands per problem at the same-gold threshold). None when no bucket has two members."""
    members, starts, band_of = lsh_buckets(bands)
    if len(starts) <= 1:
        return None
    arrays = {"problems": problems, "bands": bands, "members": members, "starts": starts, "band": band_of}

    def fill(partial: Path) -> None:
        for name, array in arrays.items():
            np.save(partial / f"{name}.npy", array)

    return write_once(context.work_dir / "buckets" / f"{_digest_of(bands)}-{_digest_of(problems)}", fill)


def near_duplicates(
    state: StreamState, context: StreamContext, problems: np.ndarray, buckets: Path | None, params: dict[str, Any]
) -> list[tuple[int, str, int]]:
    """`curation.dedup`'s LSH pass: in pool order, a problem whose verified candidates include a kept (not
    duplicate) earlier problem is a near-duplicate of the earliest such; otherwise it is kept.

    Candidates are the members of each LSH bucket (`save_buckets`: problems with equal band keys); a sharded
    job checks each pair's exact shingle Jaccard in the first band the two share only, so memory holds one
    bucket at a time and never a list of all candidate pairs.
    """
    matches: dict[int, list[int]] = {}
    if buckets is not None:
        starts = np.load(buckets / "starts.npy")
        common = {"store": str(state.store.folder), "buckets": str(buckets), **params}
        items = tuple({**common, "start": a, "stop": b} for a, b in _bucket_slices(starts, PAIRS_PER_TASK))
        for earlier, later in rows_of(run_items(context, "dedup-near", near_duplicate_pairs, items)):
            matches.setdefault(later, []).append(earlier)
    kept: set[int] = set()
    found = []
    for problem in problems.tolist():
        earlier = [e for e in matches.get(problem, ()) if e in kept]
        if earlier:
            found.append((problem, "near_duplicate_problem", min(earlier)))
        else:
            kept.add(problem)
    return found


def lsh_buckets(bands: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every LSH bucket with at least two members: the members (positions, ascending within a bucket), where
    each bucket starts in that array (plus the end), and each bucket's band."""
    members, starts, band_of = [], [0], []
    for band in range(bands.shape[1]):
        order = np.argsort(bands[:, band], kind="stable")
        keys = bands[order, band]
        edges = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1], [True])))
        for begin, end in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
            if end - begin > 1:
                members.append(order[begin:end].astype(np.int32))
                starts.append(starts[-1] + end - begin)
                band_of.append(band)
    flat = np.concatenate(members) if members else np.zeros(0, dtype=np.int32)
    return flat, np.asarray(starts, dtype=np.int64), np.asarray(band_of, dtype=np.int16)


def _bucket_slices(starts: np.ndarray, pairs_per_task: int) -> Iterator[tuple[int, int]]:
    """Ranges of buckets holding about ``pairs_per_task`` member pairs each."""
    begin = pairs = 0
    sizes = np.diff(starts).tolist()
    for index, size in enumerate(sizes):
        pairs += size * (size - 1) // 2
        if pairs >= pairs_per_task:
            yield begin, index + 1
            begin, pairs = index + 1, 0
    if begin < len(sizes):
        yield begin, len(sizes)


def _digest_of(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ decontam


def decontam(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    settings = options.decontam
    count = state.begin("decontam", settings.enabled)
    if not settings.enabled or not settings.benchmarks:  # on, but nothing to check against: passes everything
        state.apply(count)
        return
    try:
        items, loaded = load_benchmark_items(settings.benchmarks, context.benchmark_specs, settings)
    except DataError as err:
        raise benchmark_error(err) from err
    state.manifest["benchmarks"] = loaded
    index = build_index(items, settings)
    key = {"benchmarks": loaded, "options": asdict(settings)}
    index_path = write_context(context.work_dir / "contexts", {"index": key}, index)
    scan_job = run_parts(state, context, "decontam-scan", decontam_scans, {"context": index_path}, table="problems")
    pool: Counter[int] = Counter()
    for row in rows_of(scan_job):
        pool.update(row[1])
    documents = document_frequencies(index, pool)
    weights = gram_weights(index, documents)
    jobs = [(p, found) for p, *scan in rows_of(scan_job) if (found := candidates_of(index, _scan(scan), weights))]
    alive = np.flatnonzero(state.problem_alive)
    sample = idf_sample(len(alive), settings)
    chosen = alive if sample is None else alive[sample]
    words = word_weights(index, (row["problem"] for row in state.store.problems.read_many(chosen)))
    verdicts = _confirm(state, context, jobs, (index, words), {"confirm": key, "scan": scan_job.digest})
    ids = [state.problem_ids[p] for p, _ in jobs]
    result = contamination_result(ids, verdicts, boilerplate(index, documents))
    drops = [(p, v.match) for (p, _), v in zip(jobs, verdicts, strict=True) if v.match]
    state.results.decontam_hits = [{"problem_id": state.problem_ids[p], **hit.to_dict()} for p, hit in drops]
    count.notes = {
        "benchmarks": {n: v.get("items", 0) for n, v in loaded.items()},
        "index_items": len(items),
        **result.notes(),
        **result.listing(),
    }
    state.apply(count, problems=[(p, f"contaminated:{hit.benchmark}", hit.to_dict()) for p, hit in drops])


def _scan(row: list[Any]) -> Scan:
    grams, chars, formulas = row
    return Scan(tuple(grams), tuple((c[0], c[1]) for c in chars), tuple((f[0], f[1]) for f in formulas))


def _confirm(
    state: StreamState, context: StreamContext, jobs: list[tuple[int, list[Candidate]]], confirm: Any, key: Any
) -> list[Verdict]:
    """Confirm every candidate problem on its whole text, as a sharded job over slices of the candidates."""
    if not jobs:
        return []
    folder = context.work_dir / "contexts"
    context_path = write_context(folder, key, confirm)
    jobs_file = Path(context_path).with_suffix(".candidates.jsonl")
    if not jobs_file.is_file():
        texts = state.store.problems.read_many(p for p, _ in jobs)
        write_rows_file(
            jobs_file, (_candidate_row(p, row["problem"], found) for (p, found), row in zip(jobs, texts, strict=True))
        )
    items = tuple(
        {"jobs": str(jobs_file), "context": context_path, "start": a, "stop": min(a + CANDIDATES_PER_TASK, len(jobs))}
        for a in range(0, len(jobs), CANDIDATES_PER_TASK)
    )
    rows = rows_of(run_items(context, "decontam-confirm", decontam_confirm, items))
    return [Verdict(*(_contamination(hit) for hit in row[1:])) for row in rows]


def _candidate_row(problem: int, text: str, found: list[Candidate]) -> list[Any]:
    return [problem, text, [[c.item, c.method, c.evidence, list(c.ngrams)] for c in found]]


def _contamination(hit: dict[str, Any] | None) -> Contamination | None:
    return None if hit is None else Contamination(**{**hit, "ngrams": tuple(hit["ngrams"])})


# ------------------------------------------------------------------------------------------------ pass rates


def suspect_gold(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    settings = options.suspect_gold
    count = state.opened("suspect_gold", settings.enabled)
    if count is None:
        return
    found = _suspects(state, settings)
    golds = state.store.problems.read_many(found)
    for (problem, detail), row in zip(found.items(), golds, strict=True):
        state.results.suspects[problem] = {**detail, "gold": row["answer"]}
    count.notes = {"flagged": len(found), "action": settings.action}
    drops = [(p, "suspect_gold", d) for p, d in found.items()] if settings.action == "drop" else []
    state.apply(count, problems=drops)


def _suspects(state: StreamState, settings: Any) -> dict[int, dict[str, Any]]:
    """`curation.suspect_gold.suspect_golds` over the answer check's rows: strong attempts of alive problems."""
    results = state.results
    if results.answer_job is None or results.attempt is None:
        return {}
    generators = state.store.columns.generators
    strong = np.isin(
        state.store.columns.chain_generator, [i for i, g in enumerate(generators) if g in settings.models]
    )
    groups: dict[int, list[Any]] = {}  # problem -> [correct, attempts, wrong answers], in first-attempt order
    for chain, _, correct, extracted, *_ in rows_of(results.answer_job):
        problem = int(state.chain_problem[chain])
        if not (results.attempt[chain] and strong[chain] and state.problem_alive[problem]):
            continue
        group = groups.setdefault(problem, [0, 0, []])
        group[0] += correct
        group[1] += 1
        if not correct and extracted:
            group[2].append(extracted)
    judged = ((p, judge_problem(g[2], g[0], g[1], settings)) for p, g in groups.items())
    return {p: detail for p, detail in judged if detail is not None}


def difficulty(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    """`curation.difficulty.run_difficulty`: pass rates (pool or rollouts) or a metadata column per problem."""
    settings = options.difficulty
    state.manifest["difficulty"] = difficulty_signal(settings)
    count = state.opened("difficulty", settings.enabled)
    if count is None:
        return
    results = state.results
    results.difficulty_source = settings.source
    results.noted = state.problem_alive.copy()
    results.difficulty_score = np.full(len(state.problem_alive), np.nan)
    if settings.source == "metadata":
        metadata_difficulty(state, settings, count)
        return
    counts = pool_counts(state) if settings.source == "pool" else rollout_counts(state, options, context)
    results.counts = counts
    results.strong_rate = np.full(len(state.problem_alive), np.nan)
    drops, with_attempts = [], 0
    for problem in np.flatnonzero(state.problem_alive).tolist():
        per_model = problem_counts(counts, problem)
        with_attempts += bool(per_model)
        note = difficulty_note(per_model, settings)
        if note["strong_pass_rate"] is not None:
            results.strong_rate[problem] = note["strong_pass_rate"]
            results.difficulty_score[problem] = note["score"]
        reason = difficulty_decision(per_model, settings)
        if reason:
            drops.append((problem, reason, {k: note[k] for k in ("strong_pass_rate", "weak_pass_rate")}))
    count.notes = {"source": settings.source, "problems_with_attempts": with_attempts}
    state.apply(count, problems=drops)


def metadata_difficulty(state: StreamState, settings: Any, count: Any) -> None:
    """`curation.difficulty.run_metadata_difficulty` over the problems table (one note per alive problem)."""
    check_missing(settings)
    results = state.results
    scores = results.difficulty_score = np.full(len(state.problem_alive), np.nan)
    alive = np.flatnonzero(state.problem_alive).tolist()
    drops = []
    for problem, row in zip(alive, state.store.problems.read_many(alive), strict=True):
        record = Problem.from_dict(row)
        note, drop = metadata_note(problem_metadata(record), settings, record.id)
        results.metadata_notes[problem] = note
        if note["score"] is not None:
            scores[problem] = note["score"]
        if drop is not None:
            drops.append((problem, *drop))
    count.notes = metadata_summary([results.metadata_notes[p] for p in alive], settings)
    state.apply(count, problems=drops)


def problem_counts(counts: dict[str, tuple[np.ndarray, np.ndarray]], problem: int) -> dict[str, list[int]]:
    """``{generator: [correct, tries]}`` of one problem (generators with at least one try)."""
    return {g: [int(c[problem]), int(t[problem])] for g, (c, t) in counts.items() if t[problem]}


def pool_counts(state: StreamState) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Correct answers and tries per (generator, problem) from the answer check's attempts."""
    results = state.results
    if results.attempt is None or results.correct is None:
        return {}
    columns = state.store.columns
    counts = {}
    problems = len(state.problem_alive)
    for code, name in enumerate(columns.generators):
        chains = results.attempt & (columns.chain_generator == code)
        if chains.any():
            tries = np.bincount(state.chain_problem[chains], minlength=problems)
            correct = np.bincount(state.chain_problem[chains & results.correct], minlength=problems)
            counts[name] = (correct, tries)
    return counts


def rollout_counts(
    state: StreamState, options: StageOptions, context: StreamContext
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fresh rollouts of the alive problems (`curation.rollouts.run_rollout_stages`) as counts per generator."""
    alive = np.flatnonzero(state.problem_alive)
    problems = (row for row in state.store.problems.read_many(alive))
    outcome = run_rollout_stages(problems, options, context.work_dir / "rollouts", context.seed, context.executor)
    state.results.rollouts = outcome.manifest()
    counts = {}
    for name, (correct, tries) in outcome.counts().items():
        full_correct = np.zeros(len(state.problem_alive), dtype=np.int64)
        full_tries = np.zeros(len(state.problem_alive), dtype=np.int64)
        full_correct[alive], full_tries[alive] = correct, tries
        counts[name] = (full_correct, full_tries)
    return counts


# ------------------------------------------------------------------------------------------------ scoring


def quality(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    settings = options.quality
    count = state.opened("quality", settings.enabled)
    if count is None:
        return
    job = run_parts(state, context, "quality", quality_chains, {"options": options_dict(settings)})
    if state.results.quality is None:
        state.results.quality = np.full(len(state.chain_alive), np.nan)
    scores = state.results.quality

    def drops() -> Iterator[DropItem]:
        for chain, score, _, repetition, problem in rows_of(job):
            scores[chain] = score
            if problem:
                yield chain, problem, {"score": score, "repetition": repetition}

    state.apply(count, chains=drops())
    state.results.quality_job = job


def best_chains(state: StreamState, options: StageOptions) -> tuple[np.ndarray, np.ndarray, list[float], list[float]]:
    """`curation.select.best_chains`: per alive problem (in first-alive-chain order) its best chain and score.

    Scores and terms stay numpy arrays (8 bytes per alive chain each), never a Python float per chain.

    Returns:
        Problems, their best chain, its combined score and its difficulty term; the earlier chain wins a tie.
    """
    chains = np.flatnonzero(state.chain_alive)
    signal, terms = difficulty_terms(state, chains, options)
    state.results.selection_difficulty = signal
    scores = chain_scores(state, chains, terms, options)
    problems = state.chain_problem[chains]
    order = np.lexsort((chains, -scores, problems))
    first = np.ones(len(order), dtype=bool)
    first[1:] = problems[order][1:] != problems[order][:-1]
    winners = order[first]
    by_first_chain = np.argsort(_first_chain_of(problems, chains)[problems[winners]], kind="stable")
    winners = winners[by_first_chain]
    return problems[winners], chains[winners], scores[winners].tolist(), terms[winners].tolist()


def _first_chain_of(problems: np.ndarray, chains: np.ndarray) -> np.ndarray:
    first = np.full(int(problems.max()) + 1 if len(problems) else 0, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, problems, chains)
    return first


def chain_scores(state: StreamState, chains: np.ndarray, terms: np.ndarray, options: StageOptions) -> np.ndarray:
    """`curation.select.combine` for each chain: `weighted`'s float operations on arrays, then Python's round
    value by value (numpy's rounding to 6 decimals can differ from it in the last place)."""
    quality_scores = state.results.quality
    quality = np.zeros(len(chains)) if quality_scores is None else np.nan_to_num(quality_scores[chains], nan=0.0)
    raw = weighted(quality, terms, options.select)
    return np.fromiter((round(float(value), 6) for value in raw), dtype=np.float64, count=len(raw))


def difficulty_terms(state: StreamState, chains: np.ndarray, options: StageOptions) -> tuple[str, np.ndarray]:
    """`curation.select.difficulty_terms` for the alive ``chains``: the difficulty stage's score of their problem,
    or (no alive problem has one) the fallback: chain-length percentiles or none."""
    scores = state.results.difficulty_score
    if scores is not None and not np.isnan(scores[state.problem_alive]).all():
        return "difficulty_stage", np.nan_to_num(scores[state.chain_problem[chains]], nan=UNKNOWN_DIFFICULTY)
    signal = fallback_signal(options.select, len(chains) > 0)
    if signal == "none":
        return signal, np.zeros(len(chains))
    return signal, np.asarray(length_percentiles(state.store.columns.chain_words[chains].tolist()), dtype=np.float64)


def ranked(problems: np.ndarray, scores: list[float]) -> np.ndarray:
    """Positions of ``problems`` by descending score, pool order (problem index) breaking ties."""
    return np.lexsort((problems, -np.asarray(scores)))


def domain(state: StreamState, problem: int) -> str:
    return state.store.columns.subjects[state.store.columns.problem_subject[problem]] or UNKNOWN_DOMAIN


def diversity(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    settings = options.diversity
    count = state.opened("diversity", settings.enabled)
    if count is None:
        return
    problems, chains, scores, _ = best_chains(state, options)
    domains = [domain(state, p) for p in problems.tolist()]
    count.notes = {"method": settings.method, "domains_in": dict(sorted(Counter(domains).items()))}
    if settings.method == "quota":
        limit = quota_limit(settings, options.select.n)
        order = problems[ranked(problems, scores)].tolist()
        drops = quota_drops(order, lambda p: domain(state, p), limit) if limit is not None else {}
    elif settings.method == "s1":
        lengths = state.store.columns.chain_chars[chains].tolist()
        best = [(state.problem_ids[p], d, n) for p, d, n in zip(problems.tolist(), domains, lengths, strict=True)]
        index = {state.problem_ids[p]: p for p in problems.tolist()}
        drops = {index[pid]: v for pid, v in s1_drops(best, options.select.n, context.seed).items()}
    else:
        raise ValueError(f"diversity.method must be 'quota' or 's1', got {settings.method!r}")
    state.apply(count, problems=[(p, reason, detail) for p, (reason, detail) in drops.items()])


def select(state: StreamState, options: StageOptions, context: StreamContext) -> None:
    count = state.begin("select", True)
    problems, chains, scores, terms = best_chains(state, options)
    winner = dict(zip(problems.tolist(), zip(chains.tolist(), scores, strict=True), strict=True))
    alive = np.flatnonzero(state.chain_alive)
    losers = alive[chains_not_winning(state, alive, winner)]
    winner_ids = _winner_ids(state, losers, winner)
    chain_drops = (
        (int(c), "not_best_chain", {"best_chain": winner_ids[p], "best_score": winner[p][1]})
        for c, p in zip(losers.tolist(), state.chain_problem[losers].tolist(), strict=True)
    )
    order = ranked(problems, scores)
    n = options.select.n
    problem_drops = [
        (int(problems[i]), "below_top_n", {"rank": r + 1, "score": scores[i]}) for r, i in enumerate(order) if r >= n
    ]
    state.results.rank = {int(problems[i]): r + 1 for r, i in enumerate(order[:n])}
    state.results.scores = {int(chains[i]): (scores[i], terms[i]) for i in order[:n].tolist()}
    signal = state.results.selection_difficulty
    count.notes = {"n": n, "difficulty_term": signal}
    state.manifest["selection_difficulty"] = signal
    state.apply(count, chains=chain_drops, problems=problem_drops)


def chains_not_winning(state: StreamState, alive: np.ndarray, winner: dict[int, tuple[int, float]]) -> np.ndarray:
    best = np.array([winner[p][0] for p in state.chain_problem[alive].tolist()], dtype=np.int64)
    return best != alive


def _winner_ids(state: StreamState, losers: np.ndarray, winner: dict[int, tuple[int, float]]) -> dict[int, str]:
    problems = sorted(set(state.chain_problem[losers].tolist()))
    return dict(zip(problems, state.chain_ids(winner[p][0] for p in problems), strict=True))


STREAM_STAGES: dict[str, StreamStage] = {
    "problem_limit": problem_limit,
    "validate": validate,
    "answer_check": answer_check,
    "dedup": dedup,
    "decontam": decontam,
    "suspect_gold": suspect_gold,
    "difficulty": difficulty,
    "quality": quality,
    "diversity": diversity,
    "select": select,
}
