"""Chat layouts, problem identity and voted golds on a user's own pool, the first time (issue: a ShareGPT pool).

A new user's pool in the ShareGPT layout most public reasoning sets use — one row per sampled chat,
``{"id", "conversations": [{"from": "system" | "human" | "gpt", "value"}], "reference_answer", "origin"}``, several
attempts per problem each with its own id, some attempts wrong, some problems without a reference answer — is built
here from MATH-train rows (``../shared/data``) and curated through ``python -m limo.curate recipe=pool_sharegpt``.
Done when: the chains are grouped by problem (not one problem per chat id), no chain whose answer is wrong is
selected (a gold that one model's attempts alone agree on is refused, since that model repeats its mistake), and
the run says in one line that it selected fewer than asked. The row-level tests check each chat spelling, Alpaca,
and the identity rules (``field_map.id: null``, ids unique per row, ids that name problems after all).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path

import pytest

from curation.options import ChatOptions, IngestOptions, StageOptions
from curation.pool.rows import RowSpec, problem_id, read_row
from curation.pool.store import load_pool, open_or_ingest
from eval.grading.grader import grade
from eval.options import OptionsError, to_options
from eval.records import DataError, RowError
from tests.launch import entry
from tests.pool_builder import math_sources, replace_last_box

SYSTEM = "You are a careful mathematician. Reason step by step and box the final answer."
SOLUTION = "We have $4 \\times 4 = 16$ pairs, so the answer is $\\boxed{16}$."


def spec(**options) -> RowSpec:
    return RowSpec.from_options(IngestOptions(source="pool.jsonl", **options))


def sharegpt(problem: str, answer: str, *, system: str | None = SYSTEM) -> list[dict]:
    turns = [{"from": "system", "value": system}] if system else []
    return [*turns, {"from": "human", "value": problem}, {"from": "gpt", "value": answer}]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------ rows


def test_sharegpt_and_openai_chats_give_the_human_turn_the_last_gpt_turn_and_the_system_turn():
    rules = spec(field_map={"problem": "conversations", "chain": "conversations"})
    record = read_row({"conversations": sharegpt("How many pairings?", SOLUTION), "answer": "16"}, rules, 1)
    assert record.problem.problem == "How many pairings?" and record.chains[0].text == SOLUTION
    assert record.chains[0].prompt_setting == SYSTEM
    openai = [{"role": "user", "content": "How many pairings?"}, {"role": "assistant", "content": SOLUTION}]
    rules = spec(field_map={"problem": "messages", "chain": "messages"})
    record = read_row({"messages": openai, "answer": "16"}, rules, 1)
    assert (record.problem.problem, record.chains[0].text, record.chains[0].prompt_setting) == (
        "How many pairings?",
        SOLUTION,
        None,
    )
    tools = [*openai[:1], {"role": "assistant", "content": "Let me count."}, {"role": "tool", "content": "16"},
             {"role": "assistant", "content": SOLUTION}]  # fmt: skip
    assert read_row({"messages": tools, "answer": "16"}, rules, 1).chains[0].text == SOLUTION
    with pytest.raises(RowError, match=r"column 'messages'\) is text; a column read as both problem and chain"):
        read_row({"messages": "How many pairings? 16.", "answer": "16"}, rules, 1)  # not the problem and its chain


def test_content_parts_are_joined_and_reasoning_kept_apart_goes_before_the_answer_in_think_tags():
    rules = spec(field_map={"problem": "messages", "chain": "messages"})
    asked = [{"type": "text", "text": "How many"}, {"type": "text", "text": "pairings?"}]
    answered = [{"type": "text", "text": SOLUTION}]
    parts = [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    record = read_row({"messages": parts, "answer": "16"}, rules, 1)
    assert (record.problem.problem, record.chains[0].text) == ("How many\n\npairings?", SOLUTION)
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "a.png"}}]}, parts[1]]
    with pytest.raises(RowError, match=r"turn 0 \(user\) has a part of type 'image_url'; only text parts are read"):
        read_row({"messages": image, "answer": "16"}, rules, 1)
    for key in ("reasoning_content", "reasoning"):  # DeepSeek's and vLLM's, OpenRouter's
        r1 = [parts[0], {"role": "assistant", "content": SOLUTION, key: "Four bowls, four glasses ..."}]
        chain = read_row({"messages": r1, "answer": "16"}, rules, 1).chains[0].text
        assert chain == f"<think>\nFour bowls, four glasses ...\n</think>\n\n{SOLUTION}"
    tagged = [parts[0], {"role": "assistant", "content": f"<think>counting</think>{SOLUTION}", "reasoning": "x"}]
    assert read_row({"messages": tagged, "answer": "16"}, rules, 1).chains[0].text.count("<think>") == 1
    gemini = [
        {"role": "user", "parts": [{"text": "How many pairings?"}]},
        {"role": "model", "parts": [{"text": SOLUTION}]},
    ]
    assert read_row({"messages": gemini, "answer": "16"}, rules, 1).chains[0].text == SOLUTION
    pictured = [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png"}}]}, gemini[1]]
    with pytest.raises(RowError, match=r"has a part of type 'inline_data'; only text parts are read"):
        read_row({"messages": pictured, "answer": "16"}, rules, 1)
    unread = spec(field_map={"problem": "messages", "chain": "messages"}, chat=ChatOptions(reasoning_keys=()))
    assert read_row({"messages": r1, "answer": "16"}, unread, 1).chains[0].text == SOLUTION


def test_a_chat_with_its_own_keys_is_read_when_the_recipe_names_them_and_explained_when_not():
    chat = [{"speaker": "asker", "text": "How many pairings?"}, {"speaker": "solver", "text": SOLUTION}]
    raw = {"dialog": chat, "answer": "16"}
    with pytest.raises(RowError, match=r"dicts with keys \['speaker', 'text'\], not a chat.*chat\.role_key"):
        read_row(raw, spec(field_map={"problem": "dialog", "chain": "dialog"}), 1)
    named = ChatOptions(role_key="speaker", content_key="text", user_roles=("asker",), assistant_roles=("solver",))
    record = read_row(raw, spec(field_map={"problem": "dialog", "chain": "dialog"}, chat=named), 1)
    assert (record.problem.problem, record.chains[0].text) == ("How many pairings?", SOLUTION)


def test_a_dialogue_is_rejected_unless_the_recipe_says_which_user_turn_and_an_unknown_role_is_named():
    dialogue = [*sharegpt("How many pairings?", SOLUTION, system=None), {"from": "human", "value": "And 5 x 5?"},
                {"from": "gpt", "value": "That is $\\boxed{25}$."}]  # fmt: skip
    fields = {"problem": "conversations", "chain": "conversations"}
    with pytest.raises(RowError, match=r"chat with 2 user turns; say which is the problem: .*chat\.user_turn"):
        read_row({"conversations": dialogue, "answer": "16"}, spec(field_map=fields), 1)
    first = read_row(
        {"conversations": dialogue, "answer": "16"}, spec(field_map=fields, chat=ChatOptions(user_turn="first")), 1
    )
    assert (first.problem.problem, first.chains[0].text) == ("How many pairings?", SOLUTION)
    last = read_row(
        {"conversations": dialogue, "answer": "25"}, spec(field_map=fields, chat=ChatOptions(user_turn="last")), 1
    )
    assert (last.problem.problem, last.chains[0].text) == ("And 5 x 5?", "That is $\\boxed{25}$.")
    odd = [{"from": "narrator", "value": "Once upon a time"}, *dialogue[:2]]
    with pytest.raises(RowError, match=r"turn 0 has role 'narrator'.*chat\.user_roles"):
        read_row({"conversations": odd, "answer": "16"}, spec(field_map=fields), 1)
    with pytest.raises(OptionsError, match=r"chat\.user_turn"):
        ChatOptions(user_turn="second")


def test_alpaca_rows_join_instruction_and_input_into_the_problem():
    raw = {"instruction": "Count the pairings.", "input": "Four bowls and four glasses.", "output": SOLUTION,
           "answer": "16"}  # fmt: skip
    record = read_row(raw, spec(field_map={"problem": ["instruction", "input"], "chain": "output"}), 1)
    assert record.problem.problem == "Count the pairings.\n\nFour bowls and four glasses."
    assert record.chains[0].text == SOLUTION
    layout = spec().for_row(raw)  # no field_map: the Alpaca layout from the columns
    assert layout.layout == "alpaca" and read_row(raw, layout, 1).problem.problem == record.problem.problem
    assert read_row({**raw, "input": ""}, layout, 1).problem.problem == "Count the pairings."
    named = spec(field_map={"problem": "instruction", "chain": "output"})  # the input goes along
    assert read_row(raw, named, 1).problem.problem == record.problem.problem
    assert read_row({k: v for k, v in raw.items() if k != "input"}, named, 1).problem.problem == "Count the pairings."


def test_a_chat_gold_from_the_chains_own_turn_is_circular():
    raw = {"system": SYSTEM, "conversations": sharegpt("How many pairings?", SOLUTION, system=None)}
    fields = {"problem": "conversations", "chain": "conversations", "prompt_setting": "system"}
    record = read_row(raw, spec(field_map=fields, gold_from="conversations"), 1)
    assert record.problem.answer == "16" and record.chains[0].provenance["gold"] == "circular"
    assert record.chains[0].prompt_setting == SYSTEM


# ------------------------------------------------------------------------------------------------ identity


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def attempts(problems: int, per_problem: int, ids) -> list[dict]:
    rows = []
    for p in range(problems):
        for a in range(per_problem):
            chain = f"Attempt {a}: the sum is $\\boxed{{{2 * p}}}$."
            rows.append({"id": ids(p, a), "conversations": sharegpt(f"Problem {p}: what is {p} + {p}?", chain),
                         "reference_answer": str(2 * p)})  # fmt: skip
    return rows


def ingest(pool: Path, work: Path, **options) -> tuple[list[str], list[str], dict]:
    ingest = IngestOptions(source=str(pool), field_map={"answer": "reference_answer"}, **options)
    store = open_or_ingest(StageOptions(ingest=ingest), work)
    return store.problem_ids(), list(store.chains.values("id")), store.facts["provenance"]["ingest"]["identity"]


def test_ids_unique_per_row_while_texts_repeat_group_chains_by_text_and_keep_the_row_id(tmp_path, caplog):
    rows = attempts(4, 3, lambda p, a: f"chat-{p}-{a}")
    random.Random(0).shuffle(rows)
    with caplog.at_level("WARNING"):
        problems, chains, identity = ingest(write_rows(tmp_path / "pool.jsonl", rows), tmp_path / "work")
    assert len(problems) == 4 and all(p.startswith("p_") for p in problems)
    assert sorted(chains) == sorted(r["id"] for r in rows)  # each chat's id is its chain's id
    assert identity["problems_by"] == "text" and "unique per row" in identity["why"]
    notices = [r.getMessage() for r in caplog.records if "grouped by problem text" in r.getMessage()]
    assert len(notices) == 1 and "field_map.id" in notices[0]
    assert not list((tmp_path / "work").glob(".*.partial"))


def test_ids_that_name_problems_group_by_id_even_when_a_text_repeats_first(tmp_path):
    rows = attempts(3, 2, lambda p, a: f"q{p}")
    twin = {**rows[0], "id": "q9"}  # the same text under another problem id, before any id repeats
    pool = write_rows(tmp_path / "pool.jsonl", [rows[0], twin, *rows[1:]])
    problems, chains, identity = ingest(pool, tmp_path / "work")
    assert problems == ["q0", "q9", "q1", "q2"] and identity["problems_by"] == "id"
    assert "the ids name problems" in identity["why"] and not any(c in ("q0", "q1") for c in chains)


def test_field_map_id_null_groups_by_text_without_reading_ids(tmp_path):
    rows = attempts(2, 2, lambda p, a: f"q{p}")  # ids that would group the same way
    pool = load_pool(IngestOptions(source=str(write_rows(tmp_path / "pool.jsonl", rows)),
                                   field_map={"id": None, "answer": "reference_answer"}))  # fmt: skip
    assert [p.id for p in pool.problems] == [p.id for p in pool.problems if p.id.startswith("p_")]
    assert len(pool.problems) == 2 and all(c.id.startswith("p_") for c in pool.chains)
    options = to_options(IngestOptions, {"field_map": {"id": None}}, where="curate.stages.ingest")
    assert options.field_map == {"id": None}


# ------------------------------------------------------------------------------------------------ the user's pool

# per problem: (attempts as (correct, generator), with reference answer)
SHAPES = {
    "graded": ([(True, "gpt-4"), (True, "gpt-4"), (False, "gpt-4")], True),
    "voted": ([(True, "gpt-4"), (True, "o1-mini"), (False, "gpt-4")], False),
    "unanimous_two_models": ([(True, "gpt-4"), (True, "o1-mini"), (True, "gpt-4")], False),
    "one_model_repeats_a_mistake": ([(False, "gpt-4"), (False, "gpt-4"), (True, "o1-mini")], False),
    "one_family_repeats_a_mistake": ([(False, "gpt-4"), (False, "gpt-4o"), (True, "o1-mini")], False),
    "split": ([(True, "gpt-4"), (False, "o1-mini"), (False, "gpt-4")], False),
}
PER_SHAPE = 2
ASKED = 200


def write_user_pool(data_dir: Path, folder: Path) -> tuple[Path, dict[str, tuple[str, str]], int]:
    """The pool, each problem's (shape, MATH answer) by its text, and the wrong attempts' count."""
    integers = [s for s in math_sources(data_dir) if re.fullmatch(r"\d{1,5}", s.answer.strip())]
    rows, truth, wrong = [], {}, 0
    shapes = [shape for shape in SHAPES for _ in range(PER_SHAPE)]
    for number, (source, shape) in enumerate(zip(integers, shapes, strict=False)):
        chains, with_gold = SHAPES[shape]
        mistake = str(int(source.answer) + 7)  # one model's repeated mistake: the same wrong value
        for attempt, (correct, generator) in enumerate(chains):
            text = source.solution if correct else replace_last_box(source.solution, mistake if shape != "split" else
                                                                    str(int(source.answer) + attempt + 1))  # fmt: skip
            wrong += not correct
            text = f"Attempt {attempt + 1}.\n\n{text}"  # one chain text per attempt, as sampled chains differ
            rows.append({"id": f"chat-{number:03d}-{attempt}", "conversations": sharegpt(source.problem, text),
                         "reference_answer": source.answer if with_gold else None, "origin": generator})  # fmt: skip
        truth[source.problem] = (shape, source.answer)
    random.Random(1).shuffle(rows)
    path = folder / "sharegpt_pool.jsonl"
    return write_rows(path, rows), truth, wrong


@pytest.mark.slow
@pytest.mark.shared_data
def test_a_sharegpt_pool_curates_grouped_by_problem_with_no_wrong_chain_and_says_it_fell_short(
    shared_data, repo_root, tmp_path
):
    pool, truth, _ = write_user_pool(shared_data, tmp_path)
    out = tmp_path / "run"
    command = [*entry("limo.curate"), "recipe=pool_sharegpt", f"output_dir={out}",
               f"curate.stages.ingest.source={pool}", f"curate.stages.select.n={ASKED}",
               "curate.stages.decontam.enabled=false", "++curate.stages.report.plots=false"]  # fmt: skip
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    curate = out / "curate"
    funnel = json.loads((curate / "funnel.json").read_text())
    assert funnel["stages"][0]["problems_out"] == len(truth)  # grouped by problem, not one problem per chat
    curated = jsonl(curate / "curated.jsonl")
    pool_ids = {r["id"] for r in jsonl(pool)}
    for row in curated:
        shape, answer = truth[row["problem"]]
        assert grade(answer, row["chain"]).correct, f"wrong chain selected: {row['chain_id']} ({shape})"
        assert row["chain_id"] in pool_ids and row["prompt_setting"] == SYSTEM
    chosen = {truth[row["problem"]][0] for row in curated}
    assert chosen == {"graded", "voted", "unanimous_two_models"}
    shape_of = {problem_id(text): shape for text, (shape, _) in truth.items()}
    refused = {(shape_of[r["id"]], r["reason"]) for r in jsonl(curate / "rejects.jsonl") if r["kind"] == "problem"}
    assert ("one_model_repeats_a_mistake", "majority_too_few_generators") in refused
    assert ("one_family_repeats_a_mistake", "majority_too_few_generators") in refused  # gpt-4, gpt-4o: one family
    assert ("split", "majority_below_threshold") in refused
    voted = [r for r in curated if r["gold_source"] == "majority"]
    assert voted and all(r["gold_generators"] == 2 for r in voted)
    lines = done.stdout.splitlines()
    short = [line for line in lines if f"selected {len(curated)} of the {ASKED} asked" in line]
    assert len(short) == 1 and "majority_gold removed the most" in short[0], done.stdout
    assert sum("grouped by problem text" in line and "field_map.id" in line for line in lines) == 1, done.stdout
    summary = next(line for line in lines if line.startswith("[curate] limo:"))
    chains = sum(len(SHAPES[s][0]) for s in SHAPES) * PER_SHAPE
    assert f"{chains} chains of {len(truth)} problems read" in summary
    assert f"left out: {chains - len(curated)} chains and {len(truth) - len(curated)} problems" in summary
    report = (curate / "report.md").read_text()
    assert f"Selected {len(curated)} of the {ASKED} asked" in report and "## Golds by majority vote" in report
    assert "counted by model family" in report and "gpt: gpt-4, gpt-4o" in report


@pytest.mark.shared_data
def test_two_runs_that_differ_only_in_output_dir_write_the_same_bytes(shared_data, tmp_path):
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation
    from tests.curation_outputs import assert_same_outputs

    pool, _, _ = write_user_pool(shared_data, tmp_path)
    runs = []
    for folder in ("first", "second/deeper"):
        overrides = [f"curate.stages.ingest.source={pool}", f"output_dir={tmp_path / folder}",
                     "++curate.stages.decontam.enabled=false", "++curate.stages.report.plots=false"]  # fmt: skip
        build_curation(compose("pool_sharegpt", overrides)).run()
        runs.append(tmp_path / folder / "curate")
    assert_same_outputs(runs[0], runs[1], ("local", "local"))
    manifests = [json.loads((run / "manifest.json").read_text()) for run in runs]
    assert manifests[0]["execution"] == manifests[1]["execution"] and manifests[0]["execution"]["work_dir"] == (
        "curate/work"
    )


def test_the_openthoughts_recipe_reads_its_layout_and_flags_its_circular_golds(tmp_path):
    """OpenThoughts-114k's default config: ``system`` and ``conversations`` of {from: user | assistant, value}."""
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    def row(problem: str, answer: str) -> dict:
        reply = f"<|begin_of_thought|>Counting.<|end_of_thought|> {answer}"
        chat = [{"from": "user", "value": f"Return your final response within \\boxed{{}}. {problem}"},
                {"from": "assistant", "value": reply}]  # fmt: skip
        return {"system": SYSTEM, "conversations": chat}

    rows = [row(f"How many pairs of {n} bowls and {n} glasses are there?", f"$\\boxed{{{n * n}}}$") for n in (3, 4, 5)]
    rows.append(row("Write a function that sorts a list.", "def sort(x): return sorted(x)"))
    pool = write_rows(tmp_path / "openthoughts.jsonl", rows)
    overrides = [f"curate.stages.ingest.source={pool}", f"output_dir={tmp_path / 'run'}",
                 "++curate.stages.decontam.enabled=false", "++curate.stages.report.plots=false"]  # fmt: skip
    build_curation(compose("pool_openthoughts", overrides)).run()
    curated = jsonl(tmp_path / "run" / "curate" / "curated.jsonl")
    assert len(curated) == 3 and all(
        r["flags"].get("gold_circular") and r["prompt_setting"] == SYSTEM for r in curated
    )
    assert {r["gold_answer"] for r in curated} == {"9", "16", "25"}
    rejected = [r for r in jsonl(tmp_path / "run" / "curate" / "rejects.jsonl") if r["kind"] == "row"]
    assert len(rejected) == 1 and "no gold answer" in rejected[0]["detail"]["reason"]


# ------------------------------------------------------------------------------------------------ leftovers


def test_a_failed_ingest_leaves_no_partial_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMO_CACHE_DIR", str(tmp_path / "cache"))  # where the machine's shared stores go
    pool = write_rows(tmp_path / "pool.jsonl", attempts(2, 1, lambda p, a: f"q{p}"))
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("nosuch: {was: '1', answer: '2', justification: a typo}\n")
    ingest = IngestOptions(source=str(pool), field_map={"answer": "reference_answer"}, gold_overrides=str(overrides))
    with pytest.raises(DataError, match="no such problem"):  # raised once the pass is over, mid-write
        open_or_ingest(StageOptions(ingest=ingest), tmp_path / "work")
    assert list((tmp_path / "work").iterdir()) == []
    assert not list((tmp_path / "cache").rglob("*pool*"))  # and nothing was shared


def test_a_switched_off_stage_draws_no_plot(tmp_path):
    from collections import Counter

    from curation.funnel import HISTOGRAM, Chart, StageCount, domain_chart
    from curation.outputs.report import write_plots

    off = [StageCount("difficulty", enabled=False), StageCount("diversity", enabled=False)]
    funnel = [StageCount("ingest", items_out=3, problems_out=2), *off, StageCount("quality"), StageCount("select")]
    (tmp_path / "pass_rate.png").write_bytes(b"a stale plot of an earlier run")
    charts = [  # as the stages declare them: difficulty off has no rates, diversity off draws no domains PNG
        Chart("pass_rate", "Pass rate", HISTOGRAM, {"problems scored": []}, "rate", "Pass rate: not drawn (off)."),
        Chart("quality", "Quality score", HISTOGRAM, {"candidates": [0.5, 0.7], "curated": [0.7]}, "quality score"),
        Chart("length", "Length of the selected", HISTOGRAM, {"curated": [120, 80]}, "words"),
        domain_chart({"pool": Counter(algebra=2), "curated": Counter(algebra=1)}, image=False),
    ]
    drawn = write_plots(tmp_path, funnel, charts)
    assert drawn == ["funnel.png", "quality.png", "length.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(drawn)


def test_the_summary_line_counts_chains_and_problems_apart_for_every_pool_method():
    from curation.funnel import StageCount
    from curation.methods.base import CurationSummary
    from curation.outputs.report import pool_counts

    ingest = StageCount(
        "ingest", items_in=33, items_out=30, problems_in=10, problems_out=10, dropped={"invalid_row": 3}
    )
    graded = StageCount("graded_pool", items_in=18, items_out=18, problems_in=7, problems_out=7)
    funnel = [ingest, graded, StageCount("pairs", unit="pair", items_in=18, items_out=5)]
    counts = pool_counts(funnel)
    assert counts == {"rows_rejected": 3, "chains": 30, "problems": 10, "chains_kept": 18, "problems_kept": 7}
    line = CurationSummary("pairs", "out", 33, 5, "pairs", 20, 1.0, counts).line()
    assert (
        "30 chains of 10 problems read (+ 3 rows rejected at ingest) -> 18 chains of 7 problems kept -> 5 pairs"
        in line
    )
    assert "left out: 12 chains and 3 problems" in line
    documents = CurationSummary("mammoth2", "out", 40, 5, "pairs", 35, 1.0).line()
    assert "40 items read -> 5 pairs selected; 35 rows in rejects.jsonl" in documents
