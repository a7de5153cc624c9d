"""Ingest of real layouts, the answer check that trusts nothing, metadata difficulty, selection without one, dedup.

Small pools built in each test (rows as the layouts have them), run through the real stages.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from curation.methods import METHODS, CurationSummary, RunContext
from curation.options import (
    DedupOptions,
    DifficultyOptions,
    IngestOptions,
    SelectOptions,
    StageOptions,
    ValidateOptions,
)
from curation.pool.rows import RowSpec, gold_from_text, read_row
from curation.pool.store import load_pool
from curation.schema import HUMAN, MODEL, Chain
from curation.stages import curate_items
from curation.stages.dedup import find_duplicates, normalize_problem, normalize_text
from curation.stages.difficulty import metadata_score
from curation.stages.select import length_percentiles
from eval.options import OptionsError, to_options
from eval.problem import Problem
from eval.records import RowError

SOLUTION = "We have $4 \\times 4 = 16$ pairs, so the answer is $\\boxed{16}$."


def spec(**options) -> RowSpec:
    return RowSpec.from_options(IngestOptions(source="pool.jsonl", **options))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_limo(stages: dict, out: Path) -> CurationSummary:
    return METHODS["limo"].run(to_options(StageOptions, stages), None, RunContext(out, 0, "test"))


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------ rows


def test_s1k_thinking_list_and_attempt_join_into_one_chain_and_gold_comes_from_solution():
    row = {
        "question": "How many bowl and glass pairings are there?",
        "solution": "Four bowls, four glasses: $\\boxed{16}$.",
        "thinking_trajectories": ["Let me count: 4 times 4.", "That is 16."],
        "attempt": "The answer is $\\boxed{16}$.",
    }
    rules = spec(
        field_map={"problem": "question", "chain": ["thinking_trajectories", "attempt"]},
        lists={"chain": "join"},
        gold_from="solution",
    )
    record = read_row(row, rules, 1)
    assert record.chains[0].text == "Let me count: 4 times 4.\n\nThat is 16.\n\nThe answer is $\\boxed{16}$."
    assert record.problem.answer == "16" and record.gold_origin == "solution"
    assert record.chains[0].generator == MODEL and "gold" not in record.chains[0].provenance
    with pytest.raises(RowError, match=r"field 'chain' \(column 'thinking_trajectories'\) is a list of 2; declare"):
        fields = {"problem": "question", "chain": ["thinking_trajectories", "attempt"]}
        read_row(row, spec(field_map=fields, gold_from="solution"), 1)


def test_openr1_generations_explode_with_their_own_labels_and_finish_reasons():
    row = {
        "uuid": "u1",
        "problem": "How many pairings?",
        "answer": "16",
        "generations": [SOLUTION, "Cut off mid-way", SOLUTION.replace("{16}", "{17}")],
        "correctness_math_verify": [True, False, True],
        "finish_reasons": ["stop", "length", "stop"],
    }
    rules = spec(
        field_map={"id": "uuid", "chain": "generations", "correct": "correctness_math_verify",
                   "finish_reason": "finish_reasons"},
        lists={"chain": "explode"},
        generator="DeepSeek-R1",
    )  # fmt: skip
    chains = read_row(row, rules, 7).chains
    assert [c.provenance["pool_correct"] for c in chains] == [True, False, True]
    assert [c.truncated for c in chains] == [False, True, False]
    assert [c.provenance["element"] for c in chains] == [0, 1, 2] and {c.problem_id for c in chains} == {"u1"}
    assert all(c.generator == "DeepSeek-R1" and c.provenance["row"] == 7 for c in chains)
    row["correctness_math_verify"] = [True, False]
    with pytest.raises(RowError, match="column 'correctness_math_verify'.* has 2 elements for 3 chains"):
        read_row(row, rules, 7)


def test_chat_messages_give_the_user_and_assistant_turns_and_a_bad_chat_is_rejected():
    chat = [{"role": "user", "content": "How many pairings?"}, {"role": "assistant", "content": SOLUTION}]
    rules = spec(field_map={"problem": "messages", "chain": "messages"}, gold_from="solution")
    record = read_row({"messages": chat, "solution": SOLUTION}, rules, 1)
    assert record.problem.problem == "How many pairings?" and record.chains[0].text == SOLUTION
    assert record.chains[0].provenance["gold"] == "circular"  # solution holds the chain's own text
    dialogue = [*chat, {"role": "user", "content": "And with five bowls?"}, {"role": "assistant", "content": "25."}]
    with pytest.raises(RowError, match=r"column 'messages'\) is a chat with 2 user turns; say which"):
        read_row({"messages": dialogue, "solution": SOLUTION}, rules, 1)


@pytest.mark.parametrize(
    ("value", "shown"),
    [({"a": 1}, "is a dict; expected text"), (True, "is a bool; expected text"), ([SOLUTION, "x"], "is a list of 2")],
)
def test_unexpected_types_reject_the_row_naming_field_and_column_never_a_repr(value, shown):
    rules = spec(field_map={"problem": "question", "chain": "solution"})
    with pytest.raises(RowError, match=rf"field 'chain' \(column 'solution'\) {shown}") as err:
        read_row({"question": "How many?", "solution": value, "answer": "16"}, rules, 1)
    assert err.value.field == "chain"


def test_gold_from_a_column_boxed_or_one_short_line_else_no_gold():
    assert gold_from_text(SOLUTION) == "16"
    assert gold_from_text("$\\frac{1}{2}$") == "\\frac{1}{2}" and gold_from_text("128") == "128"
    assert gold_from_text("A long reference.\nIt never states the answer in a box.") is None
    rules = spec(field_map={"chain": "solution"}, gold_from="solution")
    record = read_row({"problem": "How many?", "solution": SOLUTION}, rules, 1)
    assert record.problem.answer == "16" and record.chains[0].provenance["gold"] == "circular"
    with pytest.raises(RowError, match="no gold answer: column 'answer' is empty and .*gold_from is not set"):
        read_row({"problem": "How many?", "solution": SOLUTION}, spec(field_map={"chain": "solution"}), 1)


def test_ingest_options_that_cannot_work_fail_naming_the_key():
    with pytest.raises(OptionsError, match=r"field_map\.topic: unknown field"):
        spec(field_map={"topic": "subject"})
    with pytest.raises(OptionsError, match=r"lists\.answer: only chain can explode"):
        spec(lists={"answer": "explode"})
    with pytest.raises(OptionsError, match=r"field_map\.answer: one column expected"):
        spec(field_map={"answer": ["a", "b"]})
    with pytest.raises(OptionsError, match=r"field_map\.problem: null is for id .* and generator .* only"):
        spec(field_map={"problem": None})


def test_generator_null_reads_no_column_and_the_constant_names_every_chain():
    """A recipe that inherits a map naming a generator column (smol_selfpool from smol_limo) unsets it with null."""
    rules = spec(field_map={"generator": None}, generator="smol-teacher")
    record = read_row({"problem": "How many?", "chain": SOLUTION, "answer": "16", "generator": "human"}, rules, 1)
    assert rules.generator_column is None and record.chains[0].generator == "smol-teacher"


def test_a_json_array_file_is_read_and_an_unread_generator_column_is_warned_about(tmp_path, caplog):
    rows = [{"problem": "How many pairings?", "chain": SOLUTION, "answer": "16", "generator": "human"}]
    path = tmp_path / "pool.json"
    path.write_text(json.dumps(rows, indent=1))
    with caplog.at_level(logging.WARNING):
        pool = load_pool(IngestOptions(source=str(path)))
    assert pool.chains[0].generator == MODEL, "a generator column counts only when field_map declares it"
    assert "column 'generator' is not read" in caplog.text
    declared = load_pool(IngestOptions(source=str(path), field_map={"generator": "generator"}))
    assert declared.chains[0].generator == HUMAN
    assert declared.provenance["ingest"]["generators"] == {HUMAN: 1}


# ------------------------------------------------------------------------------------------------ trust


def trust_pool(tmp_path: Path) -> Path:
    rows = [
        {"id": "right", "problem": "How many bowl and glass pairings are there?", "answer": "16", "chain": SOLUTION},
        {"id": "wrong", "problem": "How many glass and cup pairings are there?", "answer": "16",
         "chain": SOLUTION.replace("{16}", "{17}")},
    ]  # fmt: skip
    return write_jsonl(tmp_path / "pool.jsonl", rows)


def trust_stages(pool: Path, **ingest) -> dict:
    return {
        "ingest": {"source": str(pool), **ingest},
        "answer_check": {},
        "decontam": {"enabled": False},
        "difficulty": {"enabled": False},
        "report": {"plots": False},
    }


def test_a_pool_without_a_generator_is_model_written_and_its_wrong_chain_dropped(tmp_path):
    out = tmp_path / "run"
    run_limo(trust_stages(trust_pool(tmp_path)), out)
    assert [r["id"] for r in jsonl(out / "curate" / "curated.jsonl")] == ["right"]
    drop = next(r for r in jsonl(out / "curate" / "rejects.jsonl") if r["kind"] == "chain")
    assert drop["reason"] == "answer_incorrect" and drop["detail"]["extracted"] == "17"


def test_declared_human_chains_are_kept_as_references_with_the_grader_doubt_flagged(tmp_path):
    out = tmp_path / "run"
    run_limo(trust_stages(trust_pool(tmp_path), generator="human"), out)
    curated = {r["id"]: r for r in jsonl(out / "curate" / "curated.jsonl")}
    assert set(curated) == {"right", "wrong"} and curated["wrong"]["flags"] == {"grader_disagrees": True}


def test_kept_incorrect_chains_are_flagged_in_both_files_and_warned_about_once(tmp_path, caplog):
    out = tmp_path / "run"
    stages = trust_stages(trust_pool(tmp_path))
    stages["answer_check"]["keep_incorrect"] = True
    with caplog.at_level(logging.WARNING):
        run_limo(stages, out)
    curated = {r["id"]: r for r in jsonl(out / "curate" / "curated.jsonl")}
    messages = {r["id"]: r for r in jsonl(out / "curate" / "messages.jsonl")}
    assert curated["wrong"]["flags"]["unconfirmed"] == {"reason": "answer_incorrect", "extracted": "17"}
    assert messages["wrong"]["provenance"]["flags"]["unconfirmed"]["reason"] == "answer_incorrect"
    assert curated["right"]["flags"] == {} and "provenance" not in messages["right"]
    warnings = [r for r in caplog.records if "not confirmed correct" in r.getMessage()]
    assert len(warnings) == 1 and "1 of 2 selected chains" in warnings[0].getMessage()


def rejects_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "rejects.jsonl").read_text().splitlines()]


def test_a_chain_the_pool_marks_incorrect_is_dropped_even_when_it_grades_correct(tmp_path):
    problem = Problem("p", "How many pairings?", "16", "test")
    chains = [
        Chain("p/a", "p", SOLUTION, provenance={"pool_correct": False}),
        Chain("p/b", "p", SOLUTION + " ", provenance={"pool_correct": True}),
    ]
    state, kept = curate_items([problem], chains, StageOptions(), ["answer_check"], tmp_path)
    assert list(kept.chains) == ["p/b"] and rejects_of(tmp_path)[0]["reason"] == "answer_pool_marked_incorrect"
    assert state.funnel[-1].notes["pool_marked_incorrect"] == 1


def test_a_problem_over_the_length_cap_is_dropped_with_its_length(tmp_path):
    problems = [Problem("huge", "x " * 15_000, "1", "t"), Problem("fine", "What is 1?", "1", "t")]
    chains = [Chain(f"{p.id}/c", p.id, "\\boxed{1}") for p in problems]
    stages = StageOptions(validate=ValidateOptions(max_problem_chars=20_000))
    curate_items(problems, chains, stages, ["validate"], tmp_path)
    drop = next(d for d in rejects_of(tmp_path) if d["kind"] == "problem")
    assert (drop["id"], drop["reason"], drop["detail"]) == ("huge", "problem_too_long", {"chars": 30_000})


# ------------------------------------------------------------------------------------------------ difficulty


def test_metadata_difficulty_reads_levels_numbers_and_source_names():
    math = DifficultyOptions(source="metadata", scale=(1, 5))
    values = ("Level 1", "Level 4", 5, "Level ?", None)
    assert [metadata_score(v, math) for v in values] == [0.0, 0.75, 1.0, None, None]
    sources = DifficultyOptions(source="metadata", levels={"olympiads": 1.0, "gsm8k": 0.1})
    assert metadata_score("olympiads", sources) == 1.0 and metadata_score("cn_k12", sources) is None


def test_metadata_difficulty_filters_ranks_and_is_recorded(tmp_path):
    levels = {"a": "Level 5", "b": "Level 2", "c": "Level ?", "d": "Level 3"}
    problems = [Problem(pid, f"Problem {pid}?", "1", "t", extra={"difficulty": v}) for pid, v in levels.items()]
    chains = [Chain(f"{p.id}/c", p.id, "so \\boxed{1}") for p in problems]
    options = DifficultyOptions(source="metadata", scale=(1, 5), min_difficulty=0.5, missing="drop")
    stages = StageOptions(difficulty=options, select=SelectOptions(quality_weight=0.0))
    state, kept = curate_items(problems, chains, stages, ["difficulty", "select"], tmp_path)
    assert {d["id"]: d["reason"] for d in rejects_of(tmp_path) if d["kind"] == "problem"} == {
        "b": "below_min_difficulty",
        "c": "no_difficulty",
    }
    assert state.manifest["difficulty"]["signal"] == "metadata"
    assert kept.problem_notes["a"]["rank"] == 1 and kept.problem_notes["d"]["rank"] == 2
    assert state.manifest["selection_difficulty"] == "difficulty_stage"


def test_without_a_difficulty_signal_longer_chains_rank_higher_not_keyword_density(tmp_path):
    problems = [Problem(p, f"Problem {p}?", "1", "t") for p in ("short", "long")]
    chains = [
        Chain("short/c", "short", "check verify maybe so \\boxed{1}"),
        Chain("long/c", "long", "We add the two numbers carefully, one step at a time. " * 8 + "\\boxed{1}"),
    ]
    assert length_percentiles([len(c.text.split()) for c in chains]) == [0.0, 0.5]
    stages = StageOptions(select=SelectOptions(quality_weight=0.0))
    state, kept = curate_items(problems, chains, stages, ["select"], tmp_path / "length")
    assert kept.problem_notes["long"]["rank"] == 1 and state.manifest["selection_difficulty"] == "chain_length"
    stages = StageOptions(select=SelectOptions(quality_weight=0.0, fallback_difficulty="none"))
    state, kept = curate_items(problems, chains, stages, ["select"], tmp_path / "none")
    assert kept.problem_notes["short"]["rank"] == 1 and state.manifest["selection_difficulty"] == "none"


# ------------------------------------------------------------------------------------------------ dedup


def test_dedup_keeps_operators_so_sign_siblings_are_not_duplicates():
    minus, plus = "Find all integers x, y with 2^x-1=3^y.", "Find all integers x, y with 2^x+1=3^y."
    assert normalize_text(minus) == normalize_text(plus), "decontamination's tokeniser drops operators"
    assert normalize_problem(minus) != normalize_problem(plus)
    assert find_duplicates({"a": minus, "b": plus}, DedupOptions()) == {}


def test_a_reworded_copy_with_the_same_gold_is_a_near_duplicate_and_a_sibling_is_not():
    base = (
        "A bag holds five red marbles and three blue marbles. Two marbles are drawn at random without "
        "replacement. What is the probability that both marbles drawn from the bag are red?"
    )
    copy = base.replace("holds", "contains").replace("drawn at random", "taken at random")
    texts = {"base": base, "copy": copy}
    assert find_duplicates(texts, DedupOptions(same_answer_threshold=None)) == {}, "below 0.8 on its own"
    same = find_duplicates(texts, DedupOptions(), answers={"base": "\\frac{5}{14}", "copy": "5/14"})
    assert same == {"copy": ("near_duplicate_problem", "base")}
    other = find_duplicates(texts, DedupOptions(), answers={"base": "\\frac{5}{14}", "copy": "\\frac{3}{28}"})
    assert other == {}


def test_same_content_keeps_template_siblings_with_a_coincident_gold_apart():
    """CHAMP's P_Number-Theory_1 / _75 shape: one number differs, both golds are 'No' (Jaccard 0.73)."""
    a = "Are there integer solutions to the equation (x^2-1)(y^2-1)+1981=z^2?"
    texts, answers = {"a": a, "b": a.replace("1981", "1985")}, {"a": "No", "b": "No"}
    assert find_duplicates(texts, DedupOptions(), answers=answers) == {"b": ("near_duplicate_problem", "a")}
    assert find_duplicates(texts, DedupOptions(same_content=True), answers=answers) == {}
