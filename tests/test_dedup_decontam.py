"""Dedup (exact and MinHash near-duplicates) and decontamination, measured on planted copies in MATH-train pools."""

from __future__ import annotations

import json
import random

import pytest

from curation.options import DecontamOptions, DedupOptions, StageOptions
from curation.schema import Chain
from curation.similarity import aligned_similarity, content_tokens, lcs_length, text_tokens
from curation.stages import curate_items
from curation.stages.decontam import (
    BenchmarkItem,
    ContaminationIndex,
    build_index,
    find_contamination,
    load_benchmark_items,
)
from curation.stages.dedup import find_duplicates, jaccard, lsh_bands, normalize_text, word_shingles
from eval.benchmarks.champ import load_champ_problems
from eval.benchmarks.loader import BenchmarkSpec, HubOfflineError
from eval.problem import Problem
from tests.planted import HELD_OUT_SWAPS, PLANT_KINDS, change_words, plant

BENCHMARKS = ("math500", "aime24", "aime25", "amc23")


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


def test_lsh_bands_catch_pairs_at_the_threshold():
    for threshold in (0.6, 0.7, 0.8, 0.9):
        bands, rows = lsh_bands(threshold, 128)
        assert bands * rows <= 128 and 1 - (1 - threshold**rows) ** bands >= 0.999
    assert lsh_bands(0.8, 128) == (25, 5)  # datasketch's own choice, (9, 13), catches a pair at 0.8 40% of the time


@pytest.mark.shared_data
def test_near_duplicates_at_or_above_the_threshold_are_all_caught(math_train):
    """200 MATH-train problems of 25+ words, each planted again with one or two words changed."""
    rng = random.Random(0)
    sources = rng.sample(sorted(pid for pid, text in math_train.items() if len(text.split()) >= 25), 200)
    pool = {pid: math_train[pid] for pid in sources}
    variants = {f"{pid}~": change_words(math_train[pid], 1 + n % 2, rng) for n, pid in enumerate(sources)}
    pool.update(variants)
    options = DedupOptions()
    found = find_duplicates(pool, options)
    above = [
        pid
        for pid in variants
        if jaccard(*(word_shingles(normalize_text(pool[p]), 3) for p in (pid, pid[:-1]))) >= options.threshold
    ]
    assert len(above) >= 50, "enough pairs at or above the threshold to measure"
    assert [pid for pid in above if found.get(pid) != ("near_duplicate_problem", pid[:-1])] == []
    assert not any(pid in found for pid in sources), "the first copy stays"


def rejects_of(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "rejects.jsonl").read_text().splitlines()]


def test_dedup_stage_drops_duplicate_problems_with_their_chains(tmp_path):
    problems = [
        Problem(pid, text, "1", "t")
        for pid, text in [("a", "Solve x + 1 = 2 for real x please."), ("b", "Solve x+1=2 for real x, please!")]
    ]
    chains = [Chain("a/1", "a", "x=1"), Chain("a/2", "a", "x = 1"), Chain("b/1", "b", "x=1")]
    state, kept = curate_items(problems, chains, StageOptions(), ["dedup"], tmp_path)
    assert list(kept.chains) == ["a/1"]
    assert {(d["id"], d["reason"]) for d in rejects_of(tmp_path)} == {
        ("a/2", "duplicate_chain"),
        ("b/1", "duplicate_problem"),
        ("b", "duplicate_problem"),
    }
    assert state.totals == {"read": 3, "selected": 1, "dropped": 2}


def index_of(*texts: str, **options) -> ContaminationIndex:
    items = [BenchmarkItem("bench", f"b{n}", text) for n, text in enumerate(texts)]
    return build_index(items, DecontamOptions(**options))


def test_lcs_length_matches_the_quadratic_definition():
    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 40))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 40))]
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
        assert lcs_length(a, b) == table[-1][-1]


def test_content_tokens_keep_what_decides_the_problem():
    # CHAMP writes formulas in plain text: the operator is the difference between two problems.
    assert content_tokens("Find all positive integer solutions to the equation 2^x-1=3^y.") == list("2x-1=3y")
    assert content_tokens("equation 2^x+1=3^y") != content_tokens("equation 2^x-1=3^y")
    # Formatting does not count: \frac{1}{2} and 1/2, $n$th and nth, dollars or none, 1{,}000 and 1000.
    assert content_tokens("$\\frac{1}{2}$ of the $n$th term, $1{,}000$") == ["1", "2", "n", "1000"]
    assert text_tokens("1/2 of the nth term, 1000") == ["1", "2", "of", "the", "n", "term", "1000"]
    # Number words, negations, extremal words (folded) and words in capitals are content.
    assert content_tokens("Find all three-digit numbers that are not ELLIPSE, the smallest one") == [
        "3", "not", "ellipse", "MIN", "1",
    ]  # fmt: skip
    assert content_tokens("the least value") == content_tokens("the smallest value") == ["MIN"]


def test_aligned_similarity_frees_affixes_and_charges_insertions():
    item = "how many outfits can you make with one shirt and one hat".split()
    weight = lambda word: 1.0  # noqa: E731
    assert aligned_similarity(["problem", "3", *item, "show", "your", "work"], item, weight) == 1.0
    inserted = item[:4] + ["red", "green", "blue"] + item[4:]
    assert aligned_similarity(inserted, item, weight) == pytest.approx(len(item) / (len(item) + 3))
    assert aligned_similarity(["nothing", "shared"], item, weight) == 0.0


def test_short_problems_are_found_inside_rewordings_and_siblings_are_not():
    index = index_of("Simplify $\\sqrt{242}$.", "Let $x$ be " + "a " * 20, "Evaluate $(1+2i)6-3i$.")
    pool = {
        "inside": "In the first round you are asked: simplify $\\sqrt{242}$. Give the exact radical form.",
        "reworded": "Please simplify \\sqrt{242} completely.",
        "verb_swapped": "Q: Work out (1+2i)6-3i. Show your work.",  # no shared word or character 6-gram
        "sibling": "Simplify $\\sqrt{243}$.",  # another number: another problem
        "unrelated": "Factor x^2-5x+6 over the integers.",
    }
    matches = find_contamination(pool, index).matches
    assert {pid: hit.item_id for pid, hit in matches.items()} == {
        "inside": "b0",
        "reworded": "b0",
        "verb_swapped": "b2",
    }
    assert matches["verb_swapped"].method == "formula_ngram" and matches["inside"].content == 1.0


BOILERPLATE = "where m and n are relatively prime positive integers. Find m+n."


def test_boilerplate_ngrams_weigh_little_and_are_listed():
    items = [
        "The probability that two dice show a sum of 7 is m/n, " + BOILERPLATE,
        "A circle of radius 7 is inscribed in a triangle whose area is m/n, " + BOILERPLATE,
        "The ratio of the two volumes for a cone of height 7 is m/n, " + BOILERPLATE,
    ]
    pool = {f"clean{k}": f"A sequence starts at {k} and every term doubles; term {k} over 3^{k} is m/n, " + BOILERPLATE
            for k in range(30)}  # fmt: skip
    pool["copy"] = "Problem 3. " + items[1]
    result = find_contamination(pool, index_of(*items))
    assert set(result.matches) == {"copy"}
    # "is m/n, where ... Find m+n." is held by 34 documents: its eleven 5-grams weigh 4/34 each; a rare one, 1.
    assert {pid: hit.evidence for pid, hit in result.near_misses} == {
        f"clean{k}": pytest.approx(11 * 4 / 34) for k in range(30)
    }
    assert result.matches["copy"].evidence > 10
    assert result.boilerplate[0][1] == 34 and "relatively prime" in result.boilerplate[0][0]
    assert "circle of radius 7 is" in result.matches["copy"].ngrams  # rarest n-grams reported first


def test_champ_drops_exactly_its_held_out_problems():
    """The `champ` recipe's case: the pool holds the 54 held-out problems and their template siblings."""
    from limo.cli.compose import compose

    specs = {name: BenchmarkSpec.from_dict(dict(spec)) for name, spec in compose("champ").benchmark_specs.items()}
    options = DecontamOptions(benchmarks=("champ_heldout",))
    items, _ = load_benchmark_items(options.benchmarks, specs, options)
    result = find_contamination({p.id: p.problem for p in load_champ_problems()}, build_index(items, options))
    assert len(items) == 54
    assert {pid: hit.item_id for pid, hit in result.matches.items()} == {item.id: item.id for item in items}
    # Siblings share a definition or a setup with a held-out problem, not its content.
    assert "P_Combinatorics_11" not in result.matches and "P_Number-Theory_31" not in result.matches


@pytest.fixture(scope="module")
def benchmark_items(shared_data):
    from limo.cli.compose import compose

    specs = {name: BenchmarkSpec.from_dict(dict(spec)) for name, spec in compose("champ").benchmark_specs.items()}
    options = DecontamOptions(benchmarks=BENCHMARKS, data_dir=str(shared_data))
    items, loaded = load_benchmark_items(BENCHMARKS, specs, options)
    assert {name: info["items"] for name, info in loaded.items()} == {
        "math500": 500,
        "aime24": 30,
        "aime25": 30,
        "amc23": 40,
    }
    return items


@pytest.fixture(scope="module")
def math_train(shared_data) -> dict[str, str]:
    rows = [json.loads(line) for line in (shared_data / "math_train.jsonl").read_text().splitlines()]
    return {row["id"]: row["problem"] for row in rows}


@pytest.mark.shared_data
def test_planted_benchmark_problems_are_caught_in_a_math_train_pool(benchmark_items, math_train):
    """Every AIME/AMC item and 200 MATH500 items, planted in six forms among 3,000 MATH-train problems."""
    rng = random.Random(0)
    math500 = [i for i in benchmark_items if i.benchmark == "math500"]
    chosen = [i for i in benchmark_items if i.benchmark != "math500"] + rng.sample(math500, 200)
    pool = dict(rng.sample(sorted(math_train.items()), 3000))
    planted = {}
    for item in chosen:
        for kind in PLANT_KINDS:
            planted[f"plant/{kind}/{item.id}"] = (item, plant(item.text, kind, rng))
        planted[f"plant/held-out/{item.id}"] = (item, plant(item.text, "reworded+affixed", rng, HELD_OUT_SWAPS))
    pool.update({pid: text for pid, (_, text) in planted.items()})
    matches = find_contamination(pool, build_index(benchmark_items, DecontamOptions())).matches
    missed = [pid for pid, (item, _) in planted.items() if getattr(matches.get(pid), "item_id", None) != item.id]
    exact = [pid for pid in missed if pid.split("/")[1] in ("verbatim", "affixed")]
    assert not exact, exact
    assert len(missed) <= len(planted) // 100, missed  # reworded forms: at least 99% (measured: 100%)
    clean = [pid for pid in matches if pid.startswith("math_train/")]
    assert len(clean) <= 3, clean


@pytest.mark.shared_data
def test_math_train_is_clean_against_aime_and_amc(benchmark_items, math_train):
    """MATH train predates AIME 2024/2025 and AMC 2023: every drop against them would be false."""
    index = build_index([i for i in benchmark_items if i.benchmark != "math500"], DecontamOptions())
    result = find_contamination(math_train, index)
    assert result.matches == {}
    assert result.candidates > 0, "boilerplate n-grams make candidates; confirmation rejects them"


@pytest.mark.shared_data
def test_math_train_overlaps_with_math500_are_few_and_explained(benchmark_items, math_train):
    index = build_index([i for i in benchmark_items if i.benchmark == "math500"], DecontamOptions())
    matches = find_contamination(math_train, index).matches
    # The same problem reworded ("then find x+y+z" / "what is the value of x+y+z"): a real overlap.
    assert matches["math_train/6d8935b44b8d"].item_id == "test/intermediate_algebra/337.json"
    assert len(matches) <= 8, sorted(matches)
    for hit in matches.values():
        assert hit.similarity >= 0.6 and hit.content == 1.0 and hit.ngrams


@pytest.mark.shared_data
def test_decontam_stage_reports_each_drop_on_a_math_train_pool(benchmark_items, math_train, shared_data, tmp_path):
    """The stage on a user's pool: planted rows dropped with their evidence, clean rows kept, counts reconciled."""
    from limo.cli.compose import compose

    rng = random.Random(1)
    clean = dict(rng.sample(sorted(math_train.items()), 300))
    aime = [i for i in benchmark_items if i.benchmark == "aime25"][:5]
    texts = {**clean, **{f"plant/{i.id}": plant(i.text, "reworded+affixed", rng) for i in aime}}
    problems = [Problem(pid, text, "1", "pool") for pid, text in texts.items()]
    chains = [Chain(f"{p.id}/0", p.id, "so the answer is \\boxed{1}") for p in problems]
    specs = {name: BenchmarkSpec.from_dict(dict(spec)) for name, spec in compose("champ").benchmark_specs.items()}
    stages = StageOptions(decontam=DecontamOptions(benchmarks=("aime25",), data_dir=str(shared_data)))
    state, _ = curate_items(problems, chains, stages, ["decontam"], tmp_path, benchmark_specs=specs)
    drops = {d["id"]: d for d in rejects_of(tmp_path) if d["kind"] == "problem"}
    assert set(drops) == {f"plant/{i.id}" for i in aime}
    for item in aime:
        detail = drops[f"plant/{item.id}"]["detail"]
        assert drops[f"plant/{item.id}"]["reason"] == "contaminated:aime25"
        assert detail["item_id"] == item.id and detail["ngrams"] and detail["similarity"] >= 0.6
    assert state.totals == {"read": 305, "selected": 300, "dropped": 5}
    notes = state.funnel[-1].notes
    assert notes["confirmed"] == 5 and notes["candidates"] == 5 + notes["not_confirmed"]
    assert len(notes["near_misses"]) == min(20, notes["not_confirmed"])  # the closest ones, listed for audit
    assert notes["boilerplate_ngrams"] and all(m["problem_id"] in clean for m in notes["near_misses"])


@pytest.mark.shared_data
def test_clean_champ_pool_flags_nothing(benchmark_items):
    champ = {p.id: p.problem for p in load_champ_problems()}
    assert find_contamination(champ, build_index(benchmark_items, DecontamOptions())).matches == {}


def test_offline_hub_is_detected_at_once_and_said_in_one_line(unreachable_hub, caplog):
    """With the hub unreachable (a closed port on 127.0.0.1), every hub benchmark is skipped in one warning."""
    from eval.benchmarks import loader as benchmark_module

    specs = {n: BenchmarkSpec(n, hub_id=f"owner/{n}", local_file=f"{n}.jsonl") for n in ("math500", "aime24")}
    options = DecontamOptions(benchmarks=tuple(specs), missing="warn")
    with caplog.at_level("WARNING", logger="curation.stages.decontam"):
        items, loaded = load_benchmark_items(options.benchmarks, specs, options)
    with pytest.raises(HubOfflineError, match="offline .*data_dir="):
        benchmark_module.load_benchmark(specs["math500"])
    assert items == [] and set(loaded) == {"math500", "aime24"}
    assert len(caplog.records) == 1 and "math500, aime24" in caplog.records[0].getMessage()


def test_the_index_is_built_once_for_the_same_items_and_options_and_anew_for_others():
    from curation.stages.decontam import BenchmarkItem, build_index

    items = [BenchmarkItem("b", str(i), f"Find x if {i}x + 3 = {2 * i + 3}, then add seven to it.") for i in range(5)]
    first = build_index(items, DecontamOptions())
    assert build_index(list(items), DecontamOptions()) is first  # equal items and options: the same index
    coarser = build_index(items, DecontamOptions(ngram=first.options.ngram + 1))
    assert coarser is not first and coarser.options.ngram == first.options.ngram + 1
    fewer = build_index(items[:3], DecontamOptions())
    assert fewer is not first and len(fewer.items) == 3
    assert fewer.gram_text != first.gram_text and build_index(items, DecontamOptions()) is not first  # one kept
