"""Signals measured against the student (docs/curation.md, "Difficulty for the student you will train" and "Diversity
and selection"), on real model text.

Difficulty from the student's own pass rate runs on tests/assets/smol_samples.jsonl (the fixture of real SmolLM2
samples, 20 problems x 8, recipe smol_selfpool): the student's samples come through the rollouts stage from a replay
of recorded samples — the fixture itself (a student as good as its teacher, whose pass rates are counted here by
hand) or the fixture shifted by one problem (a student that answers another problem: it solves almost nothing, so its
likelihood takes over). The chain kept for a problem (fit to the student, length preference, several chains a
problem) runs on the authored arithmetic pool (recipe smol_limo), whose problems have four verified chains of very
different lengths each. The student's scores there are a likelihood cache written here, row for row as
`eval.run.likelihood.score_answers` writes it, so that the expected choice is known by hand; the tiny model computes
real ones in tests/test_student_likelihood.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from curation.options import RolloutOptions, SelectOptions, StudentOptions, StudentPassRateOptions
from curation.stages.difficulty import student_score
from curation.stages.select import combine, length_terms, weighted, within_problem_places
from eval.backends.generation import GenerationOptions
from eval.options import OptionsError
from eval.run.likelihood import cache_path

FIXTURE = Path(__file__).resolve().parent / "assets" / "smol_samples.jsonl"
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."  # smol_limo's train.system_prompt
STUDENT = "fixture/student"  # a name for the cached student's scores; no model is loaded
NO_SEMANTIC = "curate.stages.decontam.semantic.enabled=false"  # decontamination has its own tests


def _samples() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _curate(recipe: str, out: Path, *overrides: str) -> Path:
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    build_curation(compose(recipe, [f"output_dir={out}", NO_SEMANTIC, *overrides])).run()
    return out / "curate"


def _funnel(curate: Path) -> dict[str, dict]:
    return {row["stage"]: row for row in json.loads((curate / "funnel.json").read_text())["stages"]}


def _student(path: Path, **more: str) -> list[str]:
    """Overrides: difficulty from the student's own 8 samples, replayed from ``path``, instead of the teacher's
    (smol_selfpool_limo's ``curate.student.pass_rate`` with a replay for its generator, named ``smol-student``;
    ``more``: other ``curate.student.pass_rate`` keys)."""
    rollouts = f"{{k: 8, generator: {{backend: replay, model: smol-student, backend_args: {{path: '{path}'}}}}}}"
    keys = {"fallback": "none", "window": "null", **more}
    return [
        f"curate.stages.ingest.source={FIXTURE}",
        "curate.stages.difficulty.strong_pass_rate=null",
        "curate.stages.difficulty.pass_rate_of=student",
        f"curate.student.pass_rate.rollouts={rollouts}",
        "curate.stages.select.n=50",
        *(f"curate.student.pass_rate.{key}={value}" for key, value in keys.items()),
    ]


def _solved_by_hand() -> dict[str, int]:
    solved: Counter[str] = Counter()
    for row in _samples():
        solved[row["problem_id"]] += bool(row["correct"])
    return solved


# ------------------------------------------------------------------------------------------------ the formula


def test_the_combined_score_is_the_documented_weighted_mean_and_limo_s_without_the_new_terms():
    options = SelectOptions(quality_weight=2.0, difficulty_weight=1.0, student_fit_weight=3.0, length_weight=0.5)
    assert combine(0.4, 0.9, options, fit=1.0, length=0.0) == round((2 * 0.4 + 0.9 + 3 * 1.0 + 0) / 6.5, 6)
    assert combine(0.4, 0.9, options, fit=1.0) == round((2 * 0.4 + 0.9 + 3 * 1.0) / 6.0, 6)
    rng = np.random.default_rng(0)
    quality, difficulty = rng.random(1000), rng.random(1000)
    limo = SelectOptions()  # the defaults: exactly (q + d) / 2, the same float operations as before the new terms
    assert np.array_equal(weighted(quality, difficulty, limo), (1.0 * quality + 1.0 * difficulty) / 2.0)


def test_places_within_a_problem_share_ties_and_a_lone_chain_is_its_problem_s_best():
    problems = np.array([0, 0, 0, 0, 1, 2, 2])
    values = np.array([30.0, 10.0, 20.0, 20.0, 5.0, 7.0, 3.0])
    places = within_problem_places(problems, values)
    assert places[:4].tolist() == [1.0, 0.0, 0.5, 0.5] and np.isnan(places[4]) and places[5:].tolist() == [1.0, 0.0]
    assert length_terms(places, "short").tolist() == [0.0, 1.0, 0.5, 0.5, 1.0, 0.0, 1.0]
    assert length_terms(places, "long").tolist() == [1.0, 0.0, 0.5, 0.5, 1.0, 1.0, 0.0]
    assert length_terms(places, "mixed").tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_paced_weights_problems_the_student_solves_half_the_time():
    assert [student_score(p, "paced") for p in (0.0, 0.25, 0.5, 0.875, 1.0)] == [0.0, 0.75, 1.0, 0.4375, 0.0]
    assert student_score(0.25, "hardness") == 0.75


def test_the_new_options_are_checked():
    with pytest.raises(OptionsError, match="chains_per_problem"):
        SelectOptions(chains_per_problem=0)
    with pytest.raises(OptionsError, match="min_solved"):
        StudentPassRateOptions(min_solved=1.5)


def test_a_student_needs_attempts_and_a_name(tmp_path):
    with pytest.raises(ValueError, match="needs source pool or rollouts"):
        _curate(
            "smol_selfpool_limo",
            tmp_path / "a",
            f"curate.stages.ingest.source={FIXTURE}",
            "curate.stages.difficulty.source=metadata",
            "curate.stages.difficulty.pass_rate_of=student",
        )
    with pytest.raises(ValueError, match="names no student"):
        _curate(
            "smol_selfpool_limo",
            tmp_path / "b",
            f"curate.stages.ingest.source={FIXTURE}",
            "curate.stages.difficulty.pass_rate_of=student",
            "curate.student.pass_rate.rollouts=null",
        )


# ------------------------------------------------------------------------------------------------ difficulty


@pytest.fixture(scope="module")
def student_run(tmp_path_factory) -> Path:
    """smol_selfpool with the student's pass rate (the fixture replayed as its samples), a window of 1 to 7 of 8."""
    out = tmp_path_factory.mktemp("student")
    return _curate("smol_selfpool_limo", out, *_student(FIXTURE, window="[0.125,0.875]"))


def test_the_student_s_pass_rate_is_counted_over_its_own_k_samples(student_run):
    solved = _solved_by_hand()
    funnel = _funnel(student_run)["difficulty"]
    reached = funnel["problems_in"]
    manifest = json.loads((student_run / "manifest.json").read_text())
    assert manifest["rollouts"]["stages"][0]["stage"] == "student"
    assert manifest["rollouts"]["generations"] == 8 * reached  # every problem's 8 (the window decides at the 8th)
    assert manifest["difficulty"]["student"] | {"used": None} == {
        "models": ["smol-student"],
        "k": 8,
        "pass_rate": [0.125, 0.875],
        "score": "paced",
        "fallback": "none",
        "min_solved": 0.1,
        "used": None,
    }
    assert manifest["difficulty"]["student"]["used"] == "student_pass_rate"
    rows = _jsonl(student_run / "curated.jsonl")
    assert rows
    for row in rows:
        note = row["pass_rates"]
        rate = solved[row["id"]] / 8
        assert note["attempts"]["smol-student"] == [solved[row["id"]], 8]
        assert note["student_pass_rate"] == rate and note["score"] == round(4 * rate * (1 - rate), 6)
        assert row["scores"]["difficulty"] == note["score"]
        assert note["score_from"] == "student_pass_rate (paced)"


def test_the_window_keeps_what_the_student_solves_sometimes(student_run):
    solved = _solved_by_hand()
    rows = _jsonl(student_run / "curated.jsonl")
    dropped = {
        r["id"]: (r["stage"], r["reason"]) for r in _jsonl(student_run / "rejects.jsonl") if r["kind"] == "problem"
    }
    at_difficulty = {p: why for p, (stage, why) in dropped.items() if stage == "difficulty"}
    earlier = {p for p, (stage, _) in dropped.items() if stage != "difficulty"}
    assert {row["id"] for row in rows} == {p for p, c in solved.items() if 1 <= c <= 7} - earlier
    always = {p for p, c in solved.items() if c == 8} - earlier
    assert always and at_difficulty == dict.fromkeys(always, "student_pass_rate_above_window")
    # never solved: no verified chain, gone at the answer check before any pass rate is asked
    assert all(dropped[p][0] == "answer_check" for p, c in solved.items() if c == 0)
    # ranked by (quality + 4p(1-p)) / 2
    ranked = sorted(rows, key=lambda r: r["rank"])
    assert [r["scores"]["combined"] for r in ranked] == sorted((r["scores"]["combined"] for r in ranked), reverse=True)
    for row in rows:
        assert row["scores"]["combined"] == round(
            (row["scores"]["quality"]["score"] + row["pass_rates"]["score"]) / 2, 6
        )


def test_pool_samples_named_as_the_student_s_give_the_same_rates(student_run, tmp_path):
    out = _curate(
        "smol_selfpool_limo",
        tmp_path,
        f"curate.stages.ingest.source={FIXTURE}",
        "curate.stages.difficulty.strong_pass_rate=null",
        "curate.stages.difficulty.pass_rate_of=student",
        "curate.student.pass_rate.models=[smol-teacher]",
        "curate.student.pass_rate.rollouts=null",
        "curate.student.pass_rate.fallback=none",
        "curate.student.pass_rate.window=[0.125,0.875]",
        "curate.stages.select.n=50",
    )
    by_pool = {r["id"]: (r["pass_rates"]["student_pass_rate"], r["chain_id"]) for r in _jsonl(out / "curated.jsonl")}
    by_rollouts = {
        r["id"]: (r["pass_rates"]["student_pass_rate"], r["chain_id"]) for r in _jsonl(student_run / "curated.jsonl")
    }
    assert by_pool == by_rollouts


def _shifted_student(tmp_path: Path) -> Path:
    """The fixture's samples, each problem answered with the next problem's samples: real text, other answers."""
    rows = _samples()
    problems = sorted({r["problem_id"] for r in rows})
    by_problem = defaultdict(list)
    for row in rows:
        by_problem[row["problem_id"]].append(row)
    path = tmp_path / "student.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i, problem in enumerate(problems):
            for sample in by_problem[problems[(i + 1) % len(problems)]]:
                handle.write(
                    json.dumps({"request_id": f"{problem}#{sample['sample_index']}", "response": sample["response"]})
                    + "\n"
                )
    return path


def _chain_id(problem: str, generator: str, text: str) -> str:
    return f"{problem}/{generator}/{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def _write_scores(curate: Path, scores: dict[str, tuple[float, int, float]], model: str = STUDENT) -> None:
    """The student's likelihood cache (`eval.run.likelihood.cache_path`), as score_answers writes it: per chain id its
    mean negative log-likelihood per token, its tokens and its mean clipped token rank."""
    path = cache_path(curate / "work" / "likelihood", model, SYSTEM, 1024)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": i, "nll": nll, "tokens": tokens, "truncated": False, "rank": rank}
        for i, (nll, tokens, rank) in scores.items()
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_a_student_that_solves_almost_nothing_is_scored_by_its_likelihood_and_says_so(tmp_path, caplog):
    samples = _samples()
    first_correct: dict[str, str] = {}
    for row in samples:  # the first verified chain of each problem, in pool order: the one the fallback scores
        if row["correct"] and row["finish_reason"] == "stop" and "\\boxed" in row["response"]:
            first_correct.setdefault(row["problem_id"], row["response"])
    nats = {p: round(0.2 + len(text) / 1000, 3) for p, text in first_correct.items()}
    scores = {_chain_id(p, "smol-teacher", text): (nats[p], 10, 5.0) for p, text in first_correct.items()}
    out = tmp_path / "run"
    _write_scores(out / "curate", scores)
    overrides = _student(_shifted_student(tmp_path), window="[0.125,0.875]", fallback="likelihood", min_solved="0.25")
    with caplog.at_level(logging.WARNING, logger="curation.stages.difficulty"):
        curate = _curate("smol_selfpool_limo", out, *overrides, f"curate.student.model={STUDENT}")
    assert any("its pass rates say nothing here" in r.getMessage() for r in caplog.records)
    notes = _funnel(curate)["difficulty"]["notes"]["student"]
    assert notes["used"] == "likelihood" and notes["solved_share"] < 0.25
    assert notes["problems_tried"] == _funnel(curate)["difficulty"]["problems_in"]
    manifest = json.loads((curate / "manifest.json").read_text())
    assert manifest["difficulty"]["student"]["used"] == "likelihood"
    assert manifest["rollouts"]["generations"] == 8 * notes["problems_tried"]  # all k: the fallback needs them
    reasons = Counter(r["reason"] for r in _jsonl(curate / "rejects.jsonl") if r["kind"] == "problem")
    assert not [r for r in reasons if r.startswith("student_pass_rate")]  # its window is set aside with its rates
    rows = _jsonl(curate / "curated.jsonl")
    assert {r["id"] for r in rows} == set(first_correct) - {r["id"] for r in _jsonl(curate / "rejects.jsonl")}
    for row in rows:
        note = row["pass_rates"]
        assert note["score_from"] == "likelihood" and note["likelihood"]["total"] == round(nats[row["id"]] * 10, 3)
        assert row["scores"]["difficulty"] == note["score"]
    by_nats = sorted(rows, key=lambda r: nats[r["id"]])
    assert [r["pass_rates"]["score"] for r in by_nats] == sorted(r["pass_rates"]["score"] for r in rows)
    assert by_nats[0]["pass_rates"]["score"] == 0.0 and by_nats[-1]["pass_rates"]["score"] == 1.0


# ------------------------------------------------------------------------------------------------ the chain kept


AUTHORED = (
    "++curate.stages.ingest.problem_limit=12",
    "curate.stages.select.n=12",
    "curate.stages.decontam.enabled=false",
    "curate.stages.diversity.enabled=false",
)
POOL = Path(__file__).resolve().parents[1] / "recipes" / "data" / "arithmetic" / "pool.jsonl.gz"


@pytest.fixture(scope="module")
def authored(tmp_path_factory) -> tuple[Path, dict[str, dict[str, str]]]:
    """smol_limo on its first 12 problems as LIMO selects (one chain a problem, quality and difficulty), and each
    selected problem's candidate chains at selection (chain id -> text): its selected chain and those dropped as
    ``not_best_chain``."""
    import gzip

    curate = _curate("smol_limo", tmp_path_factory.mktemp("authored"), *AUTHORED)
    with gzip.open(POOL, "rt", encoding="utf-8") as handle:
        texts = {_chain_id(r["problem_id"], r["generator"], r["chain"]): r["chain"] for r in map(json.loads, handle)}
    candidates: dict[str, dict[str, str]] = defaultdict(dict)
    for row in _jsonl(curate / "curated.jsonl"):
        candidates[row["id"]][row["chain_id"]] = texts[row["chain_id"]]
    for row in _jsonl(curate / "rejects.jsonl"):
        if row["kind"] == "chain" and row["reason"] == "not_best_chain":
            candidates[row["problem_id"]][row["id"]] = texts[row["id"]]
    return curate, dict(candidates)


def _problem_of(row: dict) -> str:
    return row["id"].split("#")[0]  # a problem's further chains are <problem id>#<place>


def _kept(curate: Path) -> dict[str, list[str]]:
    kept: dict[str, list[str]] = defaultdict(list)
    for row in _jsonl(curate / "curated.jsonl"):  # in file order: rank, then place in the problem
        kept[_problem_of(row)].append(row["chain_id"])
    return dict(kept)


def test_limo_s_selection_notes_nothing_new(authored):
    curate, candidates = authored
    rows = _jsonl(curate / "curated.jsonl")
    assert len(rows) == 12 and all(len(c) >= 2 for c in candidates.values())  # a choice to make in every problem
    assert all(set(row["scores"]) == {"combined", "difficulty", "quality"} for row in rows)
    assert "selection" not in json.loads((curate / "manifest.json").read_text())
    assert "terms" not in _funnel(curate)["select"]["notes"]


@pytest.mark.parametrize("preference", ["short", "long"])
def test_a_length_preference_keeps_the_shortest_or_the_longest_chain(authored, tmp_path, preference):
    _, candidates = authored
    curate = _curate(
        "smol_limo",
        tmp_path,
        *AUTHORED,
        f"curate.stages.select.length_preference={preference}",
        "curate.stages.select.quality_weight=0",
    )
    pick = min if preference == "short" else max
    expected = {p: [pick(c, key=lambda i: len(c[i].split()))] for p, c in candidates.items()}
    assert _kept(curate) == expected
    facts = json.loads((curate / "manifest.json").read_text())["selection"]
    assert facts["length_preference"] == preference and facts["weights"] == {
        "quality": 0.0,
        "difficulty": 1.0,
        "length": 1.0,
    }
    assert all(
        row["scores"]["length"] == 1.0 and row["scores"]["place"] == 1 for row in _jsonl(curate / "curated.jsonl")
    )


def test_mixed_lengths_with_two_chains_a_problem_keep_both_ends(authored, tmp_path):
    _, candidates = authored
    curate = _curate(
        "smol_limo",
        tmp_path,
        *AUTHORED,
        "curate.stages.select.length_preference=mixed",
        "curate.stages.select.chains_per_problem=2",
        "curate.stages.select.quality_weight=0",
    )
    by_words = {p: sorted(c, key=lambda i: len(c[i].split())) for p, c in candidates.items()}
    assert {p: set(ids) for p, ids in _kept(curate).items()} == {p: {w[0], w[-1]} for p, w in by_words.items()}
    rows = _jsonl(curate / "curated.jsonl")
    assert [row["scores"]["place"] for row in rows] == [1, 2] * 12  # best first within its problem
    assert [row["rank"] for row in rows] == [r for r in range(1, 13) for _ in (1, 2)]
    assert [row["id"] for row in rows[:2]] == [_problem_of(rows[0]), f"{_problem_of(rows[0])}#2"]
    messages = _jsonl(curate / "messages.jsonl")
    assert len(messages) == 24 and [m["id"] for m in messages] == [row["id"] for row in rows]  # each id once
    totals = json.loads((curate / "funnel.json").read_text())["totals"]
    assert totals["selected"] == 24 and totals["read"] == totals["selected"] + totals["dropped"]


def _fit_cache(curate: Path, candidates: dict[str, dict[str, str]]) -> dict[str, tuple[float, int, float]]:
    """Scores under which the measures disagree: the long chain is likelier per token (GRAPE keeps it), the short one
    has the lower rank-to-surprisal ratio (RSR keeps it): long 0.5 nats and rank 3 (ratio 6), short 0.8 and 2 (2.5)."""
    scores = {}
    for chains in candidates.values():
        shortest = min(chains, key=lambda i: len(chains[i].split()))
        for chain_id, text in chains.items():
            scores[chain_id] = (0.8, len(text.split()), 2.0) if chain_id == shortest else (0.5, len(text.split()), 3.0)
    _write_scores(curate, scores)
    return scores


@pytest.mark.parametrize("measure", ["likelihood", "rsr"])
def test_the_chain_kept_is_the_one_that_fits_the_student(authored, tmp_path, measure):
    _, candidates = authored
    out = tmp_path / "run"
    scores = _fit_cache(out / "curate", candidates)
    curate = _curate(
        "smol_limo",
        out,
        *AUTHORED,
        f"curate.stages.select.student_fit={measure}",
        f"curate.student.model={STUDENT}",
        "curate.stages.select.quality_weight=0",
    )

    def fit(chain_id: str) -> float:
        nll, _, rank = scores[chain_id]
        return nll if measure == "likelihood" else rank / nll

    assert _kept(curate) == {p: [min(c, key=fit)] for p, c in candidates.items()}
    for row in _jsonl(curate / "curated.jsonl"):
        key = "student_nll" if measure == "likelihood" else "rsr"
        assert row["scores"]["student_fit"] == 1.0 and row["scores"][key] == round(fit(row["chain_id"]), 3)
    notes = _funnel(curate)["select"]["notes"]["terms"]["student_fit"]
    assert notes == {"measure": measure, "chains_scored": sum(map(len, candidates.values())), "model": STUDENT}


def test_fit_quality_and_difficulty_combine_in_one_weighted_mean(authored, tmp_path):
    _, candidates = authored
    out = tmp_path / "run"
    _fit_cache(out / "curate", candidates)
    curate = _curate(
        "smol_limo",
        out,
        *AUTHORED,
        "curate.stages.select.student_fit=rsr",
        "curate.stages.select.student_fit_weight=2",
        f"curate.student.model={STUDENT}",
    )
    for row in _jsonl(curate / "curated.jsonl"):
        scores = row["scores"]
        expected = (scores["quality"]["score"] + scores["difficulty"] + 2 * scores["student_fit"]) / 4
        assert scores["combined"] == round(expected, 6)


def test_fit_needs_its_student(tmp_path):
    with pytest.raises(ValueError, match="student_fit: rsr needs the student"):
        _curate(
            "smol_limo",
            tmp_path,
            *AUTHORED,
            "curate.stages.select.student_fit=rsr",
            "curate.student.model=null",
        )


def test_a_chain_the_student_already_writes_is_not_ranked_the_best_fit_by_a_guard(authored, tmp_path):
    """Each problem's longest chain has surprisal 0 under the student (it writes it token for token, each its top
    choice): it has nothing left to teach, so RSR keeps the shortest chain (ratio 2 / 0.8 = 2.5) over it and over the
    rest (3 / 0.5 = 6). A guard that scored surprisal 0 as ratio 0 kept the longest chain of every problem."""
    _, candidates = authored
    out = tmp_path / "run"
    scores = {}
    for chains in candidates.values():
        by_words = sorted(chains, key=lambda i: len(chains[i].split()))
        for chain_id in chains:
            words = len(chains[chain_id].split())
            scores[chain_id] = (0.8, words, 2.0) if chain_id == by_words[0] else (0.5, words, 3.0)
        scores[by_words[-1]] = (0.0, len(chains[by_words[-1]].split()), 1.0)
    _write_scores(out / "curate", scores)
    curate = _curate(
        "smol_limo",
        out,
        *AUTHORED,
        "curate.stages.select.student_fit=rsr",
        f"curate.student.model={STUDENT}",
        "curate.stages.select.quality_weight=0",
    )
    shortest = {p: [min(c, key=lambda i: len(c[i].split()))] for p, c in candidates.items()}
    assert _kept(curate) == shortest
    assert {row["scores"]["rsr"] for row in _jsonl(curate / "curated.jsonl")} == {2.5}


def test_the_rank_surprisal_ratio_grows_as_the_surprisal_falls_to_its_floor():
    from eval.run.likelihood import RANK_CLIP, SURPRISAL_FLOOR, rank_surprisal_ratio

    assert rank_surprisal_ratio(2.0, 0.8) == 2.5 and rank_surprisal_ratio(3.0, 0.5) == 6.0  # the paper's ratio
    falling = [rank_surprisal_ratio(1.0, s) for s in (0.5, 0.1, 0.01, SURPRISAL_FLOOR, 1e-5, 0.0)]
    assert falling == sorted(falling) and falling[-1] == falling[-2] == 1.0 / SURPRISAL_FLOOR
    assert rank_surprisal_ratio(1.0, 0.0) >= rank_surprisal_ratio(RANK_CLIP, 0.1)  # never a better fit than any


# ------------------------------------------------------------------------------------------------ the student section


def test_the_student_s_samples_are_the_student_s_model_with_its_system_prompt():
    sampled = StudentOptions(
        model="run/train/model",
        system_prompt="Think.",
        pass_rate=StudentPassRateOptions(rollouts=RolloutOptions(k=8)),
    )
    rollouts = sampled.rollouts()
    assert rollouts is not None and rollouts.k == 8
    assert (rollouts.generator.model, rollouts.system_prompt) == ("run/train/model", "Think.")
    assert sampled.generators() == ("run/train/model",)
    served = RolloutOptions(k=8, generator=GenerationOptions(backend="openai", model="served-name"))
    named = replace(sampled, pass_rate=StudentPassRateOptions(rollouts=served, models=("pool-name",)))
    assert named.generators() == ("pool-name", "served-name")  # a served model's own name, and its pool chains
    assert StudentOptions(model="m").rollouts() is None


def test_a_recipe_with_the_old_student_keys_is_refused_naming_what_to_write(tmp_path):
    """A user's recipe written before ``curate.student``: one line naming every old key it sets and its new key with
    its value."""
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - smol_limo\n  - _self_\ncurate:\n  stages:\n    difficulty:\n"
        "      likelihood: {model: my/student, measure: per_token}\n"
        "      student: {enabled: true, pass_rate: [0.125, 0.875], fallback: likelihood}\n"
    )
    with pytest.raises(OptionsError) as refused:
        build_curation(compose("mine", [f"output_dir={tmp_path / 'out'}"], [tmp_path]))
    line = str(refused.value)
    assert "\n" not in line and line.startswith("curate.stages.difficulty.likelihood and ")
    assert line.endswith(
        "write curate.student.model=my/student, curate.student.likelihood.measure=per_token, "
        "curate.stages.difficulty.pass_rate_of=student, curate.student.pass_rate.window=[0.125,0.875], "
        "curate.student.pass_rate.fallback=likelihood"
    )
    rewritten = [
        "curate.student.model=my/student",
        "curate.student.likelihood.measure=per_token",
        "curate.stages.difficulty.pass_rate_of=student",
        "curate.student.pass_rate.window=[0.125,0.875]",
        "curate.student.pass_rate.fallback=likelihood",
    ]
    student = build_curation(compose("smol_limo", [f"output_dir={tmp_path / 'new'}", *rewritten])).context.student
    assert (student.model, student.likelihood.measure) == ("my/student", "per_token")
    assert (student.pass_rate.window, student.pass_rate.fallback) == ((0.125, 0.875), "likelihood")


def test_an_old_student_key_on_the_command_line_fails_in_one_line(repo_root, tmp_path):
    import subprocess

    from tests.launch import entry

    done = subprocess.run(
        entry("limo.curate", "recipe=smol_limo", f"output_dir={tmp_path}",
              "curate.stages.difficulty.student.rollouts.k=4"),
        cwd=repo_root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0 and not (tmp_path / "curate").exists()
    assert done.stderr.strip().splitlines() == [
        "limo.curate: error: curate.stages.difficulty.student.rollouts.k: moved (the student is one section, "
        "curate.student, that difficulty, select and rl_prompts read); write curate.student.pass_rate.rollouts.k=4"
    ]


def test_an_unknown_student_key_fails_at_start_up(tmp_path):
    from limo.cli.compose import compose

    with pytest.raises(OptionsError, match=r"curate\.student\.modle: unknown key \(did you mean curate\.student\.mod"):
        compose("smol_limo", [f"output_dir={tmp_path}", "curate.student.modle=x"])


# ------------------------------------------------------------------------------------------------ RL prompts


def test_rl_prompts_are_those_the_student_itself_sometimes_solves(tmp_path):
    """smol_rlvr_student: GRPO's prompts ranked by p (1 - p) of the trained model's own pass rate over its 8 samples
    (the fixture replayed as them), inside the 1-7 of 8 window, the top n kept; the teacher's chains do not decide."""
    pool_map = "{id: problem_id, problem: problem, chain: response, answer: gold, subject: subject, difficulty: level}"
    common = [
        f"curate.stages.ingest.field_map={pool_map}",
        "curate.stages.ingest.generator=smol-teacher",  # not one of the recipe's strong models: no teacher's rate
    ]

    def student(**keys: str) -> list[str]:  # rl_prompts runs no select stage
        return [o for o in _student(FIXTURE, **keys) if not o.startswith("curate.stages.select.")]

    out = _curate(
        "smol_rlvr_student", tmp_path / "run", *common, *student(window="[0.125,0.875]"), "curate.rl_prompts.n=3"
    )
    solved = _solved_by_hand()
    dropped = {r["id"]: (r["stage"], r["reason"]) for r in _jsonl(out / "rejects.jsonl") if r["kind"] == "problem"}
    earlier = {p for p, (stage, _) in dropped.items() if stage not in ("difficulty", "rank")}
    inside = {p: c for p, c in solved.items() if 1 <= c <= 7 and p not in earlier}
    assert len(inside) > 3  # the cut has work to do
    for problem, count in solved.items():  # the window is the student's; never-solved problems stay until it
        if problem not in earlier and not 1 <= count <= 7:
            side = "below" if count == 0 else "above"
            assert dropped[problem] == ("difficulty", f"student_pass_rate_{side}_window")
    rows = _jsonl(out / "prompts.jsonl")
    assert [r["rank"] for r in rows] == list(range(1, 4))
    for row in rows:
        rate = solved[row["id"]] / 8
        assert row["pass_rate_of"] == "student" and row["pass_rate"] == rate
        assert row["score"] == {"pass_rate": round(rate * (1 - rate), 6)}
    best = sorted((round(c / 8 * (1 - c / 8), 6) for c in inside.values()), reverse=True)[:3]
    assert [r["score"]["pass_rate"] for r in rows] == best
    ranked = {r["id"] for r in rows}
    assert {p for p, (stage, why) in dropped.items() if why == "below_top_n"} == set(inside) - ranked
    with pytest.raises(ValueError, match="set curate.student.pass_rate.fallback=none"):
        _curate("smol_rlvr_student", tmp_path / "fallback", *common, *student(fallback="likelihood"))


# ------------------------------------------------------------------------------------------------ a pool of two models


def test_two_models_samples_concatenated_are_one_pool_with_each_model_s_pass_rate(tmp_path):
    """A user's pool of two teachers: limo.evaluate samples the training problems with each (here two replays: the
    fixture, and the fixture answered one problem off), every row says which model wrote it, the two samples files
    are concatenated as they stand, and curation reads the writer from that column: each problem has each model's
    attempts, counted as by hand."""
    from limo.cli.compose import compose
    from limo.evaluate import evaluate, runtime_argv

    teachers = {"a": FIXTURE, "b": _shifted_student(tmp_path)}
    pool = tmp_path / "pool.jsonl"
    for name, replay in teachers.items():
        out = tmp_path / name
        replayed = [
            "evaluate.backend=replay",
            f"evaluate.backend_options={{path: {replay}}}",
            "evaluate.protocol.samples=8",
        ]
        evaluate(compose("smol_sample", runtime_argv([f"output_dir={out}", "limit=20", *replayed])))
        rows = _jsonl(out / "eval" / "arith_train" / "samples.jsonl")
        assert len(rows) == 160 and {r["model"] for r in rows} == {f"replay:{replay}"}
        with pool.open("a", encoding="utf-8") as handle:
            handle.write((out / "eval" / "arith_train" / "samples.jsonl").read_text(encoding="utf-8"))
    models = [f"replay:{replay}" for replay in teachers.values()]
    pool_map = (
        "{id: problem_id, problem: problem, chain: response, answer: gold, subject: subject, difficulty: level, "
        "generator: model}"
    )
    curated = _curate(
        "smol_selfpool_limo",
        tmp_path / "run",
        f"curate.stages.ingest.source={pool}",
        f"curate.stages.ingest.field_map={pool_map}",
        f"curate.stages.difficulty.strong_models=[{','.join(models)}]",
        "curate.stages.difficulty.strong_pass_rate=null",
        "curate.stages.select.n=50",
    )
    by_model: dict[str, Counter[str]] = {m: Counter() for m in models}
    for name, replay in teachers.items():
        for row in _jsonl(tmp_path / name / "eval" / "arith_train" / "samples.jsonl"):
            by_model[f"replay:{replay}"][row["problem_id"]] += bool(row["correct"])
    rows = _jsonl(curated / "curated.jsonl")
    assert rows
    for row in rows:
        attempts = row["pass_rates"]["attempts"]
        assert attempts == {m: [by_model[m][row["id"]], 8] for m in models}
        assert row["pass_rates"]["strong_pass_rate"] == sum(by_model[m][row["id"]] for m in models) / 16
    ingest = _funnel(curated)["ingest"]  # a repeated sample is one chain, still one try of its model
    distinct = {(r["problem_id"], r["model"], r["response"]) for r in _jsonl(pool)}
    assert (ingest["items_in"], ingest["items_out"], ingest["dropped"]) == (
        320,
        len(distinct),
        {"invalid_row": 320 - len(distinct)},
    )
