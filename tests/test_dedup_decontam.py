"""Dedup (exact and MinHash near-duplicates) and n-gram decontamination, planted benchmark problems included."""

from __future__ import annotations

import json
import random

import pytest

from curation.decontam import BenchmarkItem, build_index, find_contamination, load_benchmark_items
from curation.dedup import find_duplicates, normalize_text, run_dedup
from curation.funnel import CurationState
from curation.options import DecontamOptions, DedupOptions
from curation.schema import Chain
from eval.benchmarks import BenchmarkSpec
from eval.champ import load_champ_problems
from eval.problem import Problem

BENCHMARKS = ("math500", "aime24", "aime25", "amc23")
# Light rewordings: one verb swapped, TeX dollars dropped, a prefix and a suffix added.
SWAPS = [
    ("Find", "Determine"),
    ("find", "determine"),
    ("What is", "Compute"),
    ("Compute", "Calculate"),
    ("Simplify", "Please simplify"),
    ("Evaluate", "Work out"),
    ("Let", "Suppose"),
]


def reword(text: str) -> str:
    for old, new in SWAPS:
        if old in text:
            text = text.replace(old, new, 1)
            break
    return "Problem: " + text.replace("$", "") + " Show your reasoning."


def test_normalisation_ignores_case_tex_and_punctuation():
    assert normalize_text("Simplify $\\sqrt{242}$.") == normalize_text("simplify  \\sqrt{242}") == "simplify sqrt 242"


def test_exact_and_near_duplicates_keep_the_first():
    base = "Find all primes p such that p^2+2 is prime and also p is less than one hundred."
    texts = {
        "a": base,
        "b": base.upper().replace(" ", "  "),
        "c": base.replace("one hundred.", "one hundred and one."),
        "d": "How many ways can eight rooks be placed on a chessboard without attacking each other?",
    }
    assert find_duplicates(texts, DedupOptions()) == {
        "b": ("duplicate_problem", "a"),
        "c": ("near_duplicate_problem", "a"),
    }
    assert find_duplicates(texts, DedupOptions(near=False)) == {"b": ("duplicate_problem", "a")}


def test_dedup_stage_drops_duplicate_problems_with_their_chains():
    problems = {
        pid: Problem(pid, text, "1", "t")
        for pid, text in [("a", "Solve x + 1 = 2 for real x please."), ("b", "Solve x+1=2 for real x, please!")]
    }
    chains = {c.id: c for c in [Chain("a/1", "a", "x=1"), Chain("a/2", "a", "x = 1"), Chain("b/1", "b", "x=1")]}
    state = CurationState(problems, chains, read=3)
    state.apply(state.begin("ingest"))
    run_dedup(state, DedupOptions())
    assert list(state.chains) == ["a/1"]
    assert {(d.id, d.reason) for d in state.drops} == {
        ("a/2", "duplicate_chain"),
        ("b/1", "duplicate_problem"),
        ("b", "duplicate_problem"),
    }
    assert state.reconcile() == {"read": 3, "selected": 1, "dropped": 2}


def test_short_problems_match_on_character_ngrams():
    index = build_index(
        [
            BenchmarkItem("bench", "short", "Simplify $\\sqrt{242}$."),
            BenchmarkItem("bench", "long", "Let $x$ be " + "a " * 20),
        ],
        DecontamOptions(),
    )
    hit = index.match("Please simplify \\sqrt{242} completely.")
    assert hit is not None and (hit.item_id, hit.method) == ("short", "char_ngram")
    assert index.match("Factor x^2-5x+6 over the integers.") is None
    inside = index.match(
        "In the first round of the contest you are asked: simplify $\\sqrt{242}$. Give the exact radical form."
    )
    assert inside is not None and inside.item_id == "short"


@pytest.fixture(scope="module")
def benchmark_index(shared_data):
    from limo.config import compose

    specs = {name: BenchmarkSpec.from_dict(dict(spec)) for name, spec in compose("champ").benchmark_specs.items()}
    options = DecontamOptions(benchmarks=BENCHMARKS, data_dir=str(shared_data))
    items, loaded = load_benchmark_items(BENCHMARKS, specs, options)
    assert {name: info["items"] for name, info in loaded.items()} == {
        "math500": 500,
        "aime24": 30,
        "aime25": 30,
        "amc23": 40,
    }
    return build_index(items, options)


@pytest.mark.shared_data
def test_planted_benchmark_problems_are_caught(benchmark_index, shared_data):
    rows = [json.loads(line) for line in (shared_data / "math500.jsonl").read_text().splitlines()]
    short = [r for r in rows if len(r["problem"].split()) < 8][:5]
    planted = short + random.Random(0).sample([r for r in rows if r not in short], 15)
    pool = {f"plant/{r['id']}": reword(r["problem"]) for r in planted}
    hits = find_contamination(pool, benchmark_index)
    caught = [pid for pid, hit in hits.items() if pid == f"plant/{hit.item_id}" and hit.benchmark == "math500"]
    assert len(caught) >= 19, sorted(set(pool) - set(caught))
    assert sum(1 for r in short if f"plant/{r['id']}" in caught) >= 4  # short problems included


@pytest.mark.shared_data
def test_clean_pool_flags_nothing(benchmark_index):
    champ = {p.id: p.problem for p in load_champ_problems()}
    assert find_contamination(champ, benchmark_index, workers=2) == {}
