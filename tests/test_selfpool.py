"""A pool a model wrote (recipes smol_selfpool_limo and smol_selfpool): curation on real SmolLM2 samples.

The fixture, tests/assets/smol_samples.jsonl, is 160 rows of `limo.evaluate recipe=smol_sample`'s samples.jsonl as
written on 2026-11-26: the first 20 training problems, 8 chains each at temperature 0.8 from the teacher (SmolLM2-135M-
Instruct after smol_limo's 50 LoRA steps, served by llama.cpp), each graded against its gold when it was written. It
holds what model text brings: samples repeated word for word (a problem's 8 samples are often 2 or 3 texts), samples
cut at the token limit in a loop, samples without ``\\boxed{}``, wrong arithmetic.

What a user relies on: every row is accounted for (read = selected + rejected); a repeated sample is one candidate
but still one of the problem's 8 tries, so pass rates are the evaluation's own (correct of 8); the pass-rate window
keeps exactly the problems the teacher solved 1 to 6 times of 8; what is selected is a correct, boxed, finished
chain of a problem in the window, one per problem (LIMO's pipeline, smol_selfpool_limo). The policy smol_selfpool
ships keeps every distinct sample the answer check confirms, whatever the problem's pass rate.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parent / "assets" / "smol_samples.jsonl"
WINDOW = (1, 6)  # smol_selfpool_limo's strong_pass_rate [0.125, 0.75] of 8 samples


def _samples() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def _curate(recipe: str, out: Path) -> Path:
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    overrides = [
        f"output_dir={out}",
        f"curate.stages.ingest.source={FIXTURE}",
        "curate.stages.decontam.semantic.enabled=false",  # decontamination has its own tests; these are about samples
    ]
    build_curation(compose(recipe, overrides)).run()
    return out / "curate"


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    return _curate("smol_selfpool_limo", tmp_path_factory.mktemp("selfpool_limo"))


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    return _curate("smol_selfpool", tmp_path_factory.mktemp("selfpool"))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_fixture_is_what_a_model_writes():
    rows = _samples()
    texts = {(r["problem_id"], r["response"]) for r in rows}
    assert len(rows) == 160 and len({r["problem_id"] for r in rows}) == 20
    assert len(texts) < len(rows) * 3 // 4  # repeated samples
    assert any(r["finish_reason"] == "length" for r in rows) and any("\\boxed" not in r["response"] for r in rows)
    assert 0 < sum(r["correct"] for r in rows) < len(rows)


def test_every_row_is_selected_or_rejected_with_its_reason(curated):
    rows, selected, rejects = _samples(), _jsonl(curated / "curated.jsonl"), _jsonl(curated / "rejects.jsonl")
    chain_rejects = [r for r in rejects if r.get("kind") in ("chain", "row")]
    assert len(selected) + len(chain_rejects) == len(rows)
    repeats = len(rows) - len({(r["problem_id"], r["response"]) for r in rows})
    assert sum("repeated sample" in json.dumps(r) for r in rejects) == repeats


def test_pass_rates_count_every_sample_repeated_ones_included(curated):
    truth: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in _samples():
        truth[row["problem_id"]][0] += bool(row["correct"])
        truth[row["problem_id"]][1] += 1
    selected = _jsonl(curated / "curated.jsonl")
    assert selected
    for row in selected:
        assert row["pass_rates"]["attempts"] == {"smol-teacher": truth[row["id"]]}, row["id"]


def test_the_window_keeps_the_problems_solved_one_to_six_times_of_eight(curated):
    solved = Counter()
    for row in _samples():
        solved[row["problem_id"]] += bool(row["correct"])
    in_window = {p for p, c in solved.items() if WINDOW[0] <= c <= WINDOW[1]}
    selected = {r["id"] for r in _jsonl(curated / "curated.jsonl")}
    assert selected and selected <= in_window
    reasons = {r["id"]: r["reason"] for r in _jsonl(curated / "rejects.jsonl") if r.get("kind") == "problem"}
    above = {p for p, why in reasons.items() if why == "strong_pass_rate_above_window"}
    assert above and above <= {p for p, c in solved.items() if c > WINDOW[1]}
    assert all(p in reasons for p, c in solved.items() if c > WINDOW[1])  # solved 7 or 8 times: never selected


def test_what_is_selected_is_a_correct_finished_boxed_sample_one_per_problem(curated):
    samples = {(r["problem_id"], r["response"]): r for r in _samples()}
    selected = _jsonl(curated / "curated.jsonl")
    assert len({r["id"] for r in selected}) == len(selected)
    for row in selected:
        sample = samples[(row["id"], row["chain"])]
        assert sample["correct"] and sample["finish_reason"] == "stop" and "\\boxed" in row["chain"]
    for message in _jsonl(curated / "messages.jsonl"):
        assert (
            message["messages"][-1]["content"].rstrip().endswith(".")
            and "\\boxed" in message["messages"][-1]["content"]
        )


def test_the_shipped_policy_keeps_every_distinct_verified_sample_and_accounts_for_the_rest(shipped, curated):
    rows, selected, rejects = _samples(), _jsonl(shipped / "curated.jsonl"), _jsonl(shipped / "rejects.jsonl")
    overlap = {r["id"] for r in rejects if r.get("kind") == "problem" and r["stage"] == "decontam"}  # a benchmark's
    verified = {(r["problem_id"], r["response"]) for r in rows if r["correct"] and r["problem_id"] not in overlap}
    assert {(r["id"], r["chain"]) for r in selected} == verified and len(selected) == len(verified)
    assert len(selected) + len([r for r in rejects if r.get("kind") in ("chain", "row")]) == len(rows)
    manifest = json.loads((shipped / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["baseline"]["kind"] == "all_correct"
    solved = Counter(r["problem_id"] for r in rows if r["correct"] and r["problem_id"] not in overlap)
    assert {r["id"] for r in selected} == set(solved)  # no window: problems solved 7 or 8 times of 8 are kept too
    assert any(c > WINDOW[1] for c in solved.values())
    assert len(selected) > len(_jsonl(curated / "curated.jsonl"))  # LIMO's pipeline keeps one chain of fewer problems
