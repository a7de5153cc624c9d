"""LEMMA: steps and teacher JSON, first-wrong-step location, connections, injected errors, and the
`lemma` recipe end to end on CHAMP (curate through `python -m limo.curate`, then SFT on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from curation.methods.lemma.chain_steps import TeacherOutputError, parse_json_object, step_spans
from curation.methods.lemma.examples import (
    ConnectionOptions,
    CorrectChain,
    WrongChain,
    assign_connections,
    connect_wrong_chains,
    harvest_wrong_chains,
    locate_with_judge,
    match_reference_step,
    verify_examples,
)
from curation.methods.lemma.injection import InjectionTask, assign_error_types, inject_errors, parse_injection
from curation.schema import Chain
from eval.backends.base import SamplingParams
from eval.backends.replay import ReplayBackend
from eval.grading.grader import Verdict
from eval.problem import Problem
from tests.funnel_schema import check_one_schema
from tests.launch import entry

TAXONOMY = {"calculation_error": "an arithmetic slip", "counting_error": "miscounts cases"}
PROBLEM = Problem(id="p1", problem="How many strings of length 2 over {a, b}?", answer="4", source="test")
HUMAN = Chain(
    id="p1/human",
    problem_id="p1",
    text="Each position has 2 choices.\nThere are 2 positions.\nSo there are 2 * 2 = 4 strings.",
    final_answer="4",
    generator="human",  # a reference solution is declared, never assumed (chains default to model)
)
WRONG = Chain(
    id="p1/m/0-Shot",
    problem_id="p1",
    text="We count strings.\n\nEach position has 3 choices.\n\nSo 3 * 3 = 9.",
    final_answer="9",
    generator="m",
    prompt_setting="0-Shot",
    first_wrong_step=19,
)
REFLECTIONS = ("Wait, that step is wrong. Let me fix it.",)


def _reply(rewritten: str, step: int, error_type: str = "calculation_error") -> str:
    return json.dumps({"rewritten_solution": rewritten, "error_step": step, "error_type": error_type})


# --- steps and teacher JSON ----------------------------------------------------------------------------


def test_step_spans_prefer_paragraphs_then_lines_then_sentences():
    assert [WRONG.text[s:e] for s, e in step_spans(WRONG.text)][1] == "Each position has 3 choices."
    assert len(step_spans(HUMAN.text)) == 3
    assert len(step_spans("First we add. Then we multiply. Done.")) == 3


@pytest.mark.parametrize(
    "text, fragment",
    [("no json here", "no JSON object"), ("[1, 2]", "no JSON object"), ('{"a": 1', "no JSON object")],
)
def test_parse_json_object_rejects_non_objects(text, fragment):
    with pytest.raises(TeacherOutputError, match=fragment):
        parse_json_object(text)


def test_parse_json_object_reads_fenced_and_embedded_objects():
    assert parse_json_object('Sure!\n```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json_object('Here: {"a": {"b": 2}} done') == {"a": {"b": 2}}


# --- harvesting and connections ------------------------------------------------------------------------


def test_harvest_accounts_for_every_chain():
    chains = [
        WRONG,
        Chain("p1/m/5-Shot", "p1", "right", "4", "m", "5-Shot"),
        Chain("p1/m/No C w/o H", "p1", "bad", "7", "m", "No C w/o H", first_wrong_step=-1),
        Chain("p1/m/1/3 Soln", "p1", "bad", "7", "m", "1/3 Soln"),
        HUMAN,
    ]
    verdicts = {
        WRONG.id: Verdict("incorrect", False, "9", "x"),
        "p1/m/5-Shot": Verdict("correct", True, "4", "x"),
        "p1/m/No C w/o H": Verdict("incorrect", False, "7", "x"),
        "p1/m/1/3 Soln": Verdict("incorrect", False, "7", "x"),
    }
    wrong, rejects, skipped = harvest_wrong_chains(chains, verdicts, settings=("0-Shot", "5-Shot", "No C w/o H"))
    assert [w.chain.id for w in wrong] == [WRONG.id] and wrong[0].located_by == "annotation"
    assert [r.reason for r in rejects] == ["annotated 'no mistake' but graded incorrect"]
    assert skipped == {"graded_correct": 1, "prompt_setting_not_used": 1, "human_reference": 1}
    assert len(wrong) + len(rejects) + sum(skipped.values()) == len(chains)


def test_assign_connections_follows_the_mixture_exactly():
    ids = [f"c{i}" for i in range(10)]
    counts = list(assign_connections(ids, {"fix_and_continue": 0.7, "fresh_restart": 0.3}, seed=1).values())
    assert counts.count("fix_and_continue") == 7 and counts.count("fresh_restart") == 3
    with pytest.raises(ValueError, match="connection mixture"):
        assign_connections(ids, {"retry": 1.0}, seed=1)


def test_match_reference_step_uses_word_overlap():
    index, method = match_reference_step(WRONG.text, WRONG.first_wrong_step, HUMAN.text)
    assert (index, method) == (0, "overlap")  # "Each position has 3 choices" ~ "Each position has 2 choices"


@pytest.mark.parametrize("connection", ["fix_and_continue", "fresh_restart"])
def test_build_examples_cut_at_the_first_wrong_step_and_verify(connection):
    wrong = [WrongChain(WRONG, "harvested", WRONG.first_wrong_step, "annotation")]
    options = ConnectionOptions(mixture={connection: 1.0}, reflections=REFLECTIONS, restart_sources=("human",))
    human = {"p1": CorrectChain(HUMAN, "4")}
    examples, rejects = connect_wrong_chains(wrong, {"p1": PROBLEM}, {}, human, options, seed=0)
    assert not rejects and examples[0].connection == connection
    response = examples[0].response()
    assert response.startswith("We count strings.\n\nWait, that step is wrong.")
    assert "3 choices" not in response and response.endswith("$\\boxed{4}$.")
    kept, rejected = verify_examples(examples, {"p1": PROBLEM})
    assert len(kept) == 1 and not rejected and kept[0].provenance["final_verdict"]["status"] == "correct"


def test_unlocated_and_unverifiable_examples_are_rejected_with_reasons():
    unlocated = WrongChain(Chain("p1/m/x", "p1", "Guess.\n\nIt is 9.", "9", "m"), "harvested")
    options = ConnectionOptions(reflections=REFLECTIONS, restart_sources=("human",))
    examples, rejects = connect_wrong_chains([unlocated], {"p1": PROBLEM}, {}, {}, options, seed=0)
    assert not examples and "first wrong step not located" in rejects[0].reason
    wrong = [WrongChain(WRONG, "harvested", WRONG.first_wrong_step, "annotation")]
    bad_human = {"p1": CorrectChain(HUMAN, "5")}  # a reference whose answer the grader refuses
    examples, _ = connect_wrong_chains(wrong, {"p1": PROBLEM}, {}, bad_human, options, seed=0)
    kept, rejects = verify_examples(examples, {"p1": PROBLEM})
    assert not kept and rejects[0].reason.startswith("final answer not confirmed: incorrect")


def test_judge_locates_steps_and_rejects_malformed_replies():
    other = Chain("p1/n/0-Shot", "p1", WRONG.text, "9", "n", "0-Shot")
    third = Chain("p1/o/0-Shot", "p1", WRONG.text, "9", "o", "0-Shot")
    replies = {
        f"{WRONG.id}#judge": {"text": '{"first_wrong_step": 2, "error_type": "counting_error"}'},
        f"{other.id}#judge": {"text": '{"first_wrong_step": 9}'},
        f"{third.id}#judge": {"text": "The second step is wrong."},
    }
    wrong = [WrongChain(c, "harvested") for c in (WRONG, other, third)]
    located, rejects = locate_with_judge(
        ReplayBackend(replies), wrong, {"p1": PROBLEM}, TAXONOMY, sampling=SamplingParams(), seed=0
    )
    assert [(w.first_wrong_step, w.error_type, w.located_by) for w in located] == [(19, "counting_error", "judge")]
    assert sorted(r.reason for r in rejects) == [
        "judge: first_wrong_step 9 is outside the chain's 3 steps",
        "judge: teacher reply holds no JSON object",
    ]


# --- injected errors -----------------------------------------------------------------------------------


def _task(error_type: str = "calculation_error") -> InjectionTask:
    return InjectionTask(PROBLEM, CorrectChain(HUMAN, "4"), error_type)


def test_parse_injection_records_the_position_of_the_changed_step():
    rewritten = "Each position has 2 choices.\nThere are 3 positions.\nSo there are 2 * 2 * 2 = 8 strings."
    item = parse_injection(_reply(rewritten, 2), _task())
    assert item.first_wrong_step == rewritten.index("There are 3") and item.located_by == "teacher_record"
    assert item.original_offset == HUMAN.text.index("There are 2") and item.error_type == "calculation_error"


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("I changed step 2.", "no JSON object"),
        (json.dumps({"rewritten_solution": "x", "error_type": "calculation_error"}), "lacks field 'error_step'"),
        (
            _reply("Each position has 2 choices.\nThere are 3 positions.\nSo 8.", 2, "counting_error"),
            "not the requested",
        ),
        (_reply("Each position has 2 choices.\nThere are 3 positions.\nSo 8.", 7), "outside the rewritten"),
        (_reply("Each position has 5 choices.\nThere are 3 positions.\nSo 125.", 2), "step 1 differs"),
        (_reply("Each position has 2 choices.\nThere are 2 positions!\nSo there are 4 strings.", 2), "still reaches"),
        (_reply(HUMAN.text, 2), "equals the original"),
    ],
)
def test_parse_injection_rejects_malformed_records(reply, reason):
    with pytest.raises(TeacherOutputError, match=reason):
        parse_injection(reply, _task())


def test_inject_errors_through_replay_counts_every_task():
    tasks = assign_error_types([(PROBLEM, CorrectChain(HUMAN, "4"))], TAXONOMY, per_chain=2, seed=0)
    assert sorted(t.error_type for t in tasks) == sorted(TAXONOMY)
    good = "Each position has 2 choices.\nThere are 3 positions.\nSo there are 8 strings."
    rows = {tasks[0].request_id: {"text": _reply(good, 2, tasks[0].error_type)}, tasks[1].request_id: {"text": "{}"}}
    wrong, rejects = inject_errors(ReplayBackend(rows), tasks, TAXONOMY, sampling=SamplingParams(), seed=0)
    assert len(wrong) == 1 and len(rejects) == 1 and "lacks field" in rejects[0].reason
    examples, _ = connect_wrong_chains(
        wrong, {"p1": PROBLEM}, {}, {}, ConnectionOptions({"fix_and_continue": 1.0}, REFLECTIONS), seed=0
    )
    kept, _ = verify_examples(examples, {"p1": PROBLEM})
    assert kept[0].response().endswith("So there are 2 * 2 = 4 strings.\n\nThe final answer is $\\boxed{4}$.")
    assert kept[0].error_type == tasks[0].error_type and kept[0].provenance["origin"] == "injected"


@pytest.mark.slow
def test_overfit_tiny_model_as_teacher_emits_an_accepted_error_record(tmp_path):
    """A real model through the hf backend: the tiny model overfit on one injection prompt -> JSON record."""
    from curation.methods.lemma.injection import injection_request
    from eval.backends.hf import HFBackend
    from limo.models.tiny import build_overfit_model

    task = _task()
    request = injection_request(task, TAXONOMY, sampling=SamplingParams(max_new_tokens=120), seed=0)
    record = _reply("Each position has 2 choices.\nThere are 3 positions.\nSo 8.", 2)
    model = build_overfit_model(tmp_path / "teacher", [(request.messages[0]["content"], record)], steps=120)
    wrong, rejects = inject_errors(HFBackend(str(model)), [task], TAXONOMY, sampling=request.sampling, seed=0)
    assert not rejects and wrong[0].first_wrong_step == len("Each position has 2 choices.\n")


# --- the recipe end to end -----------------------------------------------------------------------------


def _run(repo_root: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(entry(*args), cwd=repo_root, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def lemma_run(repo_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lemma")
    _run(
        repo_root,
        "limo.curate",
        "recipe=lemma",
        f"output_dir={out}",
        "curate.stages.ingest.problem_limit=40",
    )
    return out


def test_lemma_recipe_builds_verified_examples_in_both_connections(lemma_run):
    curate = lemma_run / "curate"
    rows = [json.loads(line) for line in (curate / "curated.jsonl").read_text().splitlines()]
    errors = [r for r in rows if r["kind"] == "error_correction"]
    assert {r["connection"] for r in errors} == {"fix_and_continue", "fresh_restart"}
    for row in errors:
        assert 0 < row["first_wrong_step"] <= len(row["wrong_chain"])
        assert row["provenance"]["final_verdict"]["correct"] is True
        assert row["provenance"]["wrong_chain_id"] and row["provenance"]["continuation_chain_id"]
        assert row["problem_id"] not in _heldout()
    messages = [json.loads(line) for line in (curate / "messages.jsonl").read_text().splitlines()]
    assert len(messages) == len(rows) and all(m["messages"][-1]["content"].rstrip().endswith("}$.") for m in messages)
    funnel = check_one_schema(curate, "lemma")
    stages = {s["stage"]: s for s in funnel["stages"]}
    assert stages["verify"]["items_out"] == len(errors)
    for name in ("connect", "verify"):  # each wrong chain becomes an example or a reject with its reason
        assert stages[name]["items_in"] == stages[name]["items_out"] + sum(stages[name]["dropped"].values()), name
    manifest = json.loads((curate / "manifest.json").read_text())
    assert manifest["summary"]["error_correction"] == len(errors) and manifest["facts"]["annotations_shared"] > 0
    assert "## Final set" in (curate / "report.md").read_text()


def _heldout() -> frozenset[str]:
    from eval.benchmarks.champ import champ_heldout_ids

    return champ_heldout_ids()


@pytest.mark.slow
def test_lemma_recipe_trains_on_cpu(lemma_run, repo_root):
    _run(repo_root, "limo.train", "recipe=lemma", f"output_dir={lemma_run}", "train.args.max_steps=2")
    assert (lemma_run / "train" / "model" / "model.safetensors").exists()
    plan = json.loads((lemma_run / "train" / "plan.json").read_text())
    assert plan["data"]["path"].endswith("curate/messages.jsonl")


def test_lemma_with_teacher_judge_and_injector_through_replay(tmp_path):
    """The recipe with both teacher roles configured (replay backends): judged and injected chains reach the
    final set with their error types, malformed teacher replies are rejected, and a rerun asks no teacher."""
    from omegaconf import OmegaConf

    from curation.methods.lemma.chain_steps import numbered_steps
    from eval.benchmarks.champ import load_champ_problems
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    def curate_lemma(cfg):
        summary = build_curation(cfg).run()
        return json.loads((tmp_path / "curate" / "funnel.json").read_text())["summary"] | {
            "selected": summary.selected
        }

    # The injection's sources are the pool's first three problems: the first 20 without CHAMP's held-out half
    # and without P_Combinatorics_1, which decontamination by meaning drops as a copy of a held-out problem
    # (asserted below, so a change there says so rather than missing a replay row).
    decontaminated = "P_Combinatorics_1"
    problems = [p for p in load_champ_problems()[:20] if p.id not in _heldout() and p.id != decontaminated][:3]
    cfg = compose(
        "lemma",
        [f"output_dir={tmp_path}", "curate.stages.ingest.problem_limit=20"],
    )
    taxonomy = dict(cfg.curate.lemma.error_types)
    types = [
        t.error_type
        for t in assign_error_types([(PROBLEM, CorrectChain(HUMAN, "4"))] * 3, taxonomy, per_chain=1, seed=42)
    ]
    rows = []
    for problem, error_type in zip(problems, types, strict=True):
        steps = [line.split(": ", 1)[1] for line in numbered_steps(problem.solution).splitlines()]
        rewritten = "\n".join([steps[0], "Here we wrongly take the value 12345.", "So the answer is \\boxed{12345}."])
        rows.append({"request_id": f"{problem.id}/human#inject-0", "text": _reply(rewritten, 2, error_type)})
    rows[2]["text"] = "I would rather not."  # a malformed reply: rejected with its reason
    replies = tmp_path / "inject.jsonl"
    replies.write_text("".join(json.dumps(r) + "\n" for r in rows))
    verdict = '{"first_wrong_step": 2, "error_type": "counting_error"}'
    judge = {"backend": "replay", "backend_args": {"pool": {p.id: [verdict] for p in load_champ_problems()[:20]}}}
    injection = {
        "enabled": True,
        "max_sources": 3,
        "teacher": {"backend": "replay", "backend_args": {"path": str(replies)}},
    }
    wrong_rollout = "First we set up the count.\n\nSo the answer is \\boxed{99999}."
    rollouts = {
        "k": 2,
        "generator": {
            "backend": "replay",
            "backend_args": {"pool": {p.id: [wrong_rollout] for p in load_champ_problems()[:20]}},
        },
    }
    OmegaConf.update(cfg, "curate.lemma.harvest", {"rollouts": rollouts, "max_per_problem": None}, merge=True)
    OmegaConf.update(cfg, "curate.lemma.judge", judge, force_add=True)
    OmegaConf.update(cfg, "curate.lemma.injection", injection, merge=True)
    summary = curate_lemma(cfg)
    drops = [json.loads(line) for line in (tmp_path / "curate" / "rejects.jsonl").read_text().splitlines()]
    assert {"kind": "problem", "id": decontaminated, "stage": "decontam"}.items() <= next(
        d for d in drops if d["id"] == decontaminated and d["kind"] == "problem"
    ).items()
    assert summary["origins"]["injected"] == 2 and summary["located_by"]["judge"] > 0
    assert summary["error_types"]["counting_error"] >= summary["located_by"]["judge"]
    assert {types[0], types[1]} <= set(summary["error_types"])
    curated = [json.loads(line) for line in (tmp_path / "curate" / "curated.jsonl").read_text().splitlines()]
    from_rollouts = [r for r in curated if r.get("provenance", {}).get("wrong_chain_generator") == "rollout:replay"]
    assert from_rollouts and all(r["wrong_chain"] == wrong_rollout for r in from_rollouts)
    rejects = (tmp_path / "curate" / "rejects.jsonl").read_text()
    assert "teacher reply holds no JSON object" in rejects
    assert "Error types" in (tmp_path / "curate" / "report.md").read_text()
    (cache,) = (tmp_path / "curate" / "teacher").glob("judge-*.jsonl")
    cached = cache.read_text().count("\n")
    judged = summary_stage(tmp_path, "judge")["items_in"] - summary_stage(tmp_path, "harvest")["notes"]["annotated"]
    assert cached == judged
    OmegaConf.update(cfg, "curate.lemma.judge.backend_args", {"pool": {}}, merge=False)  # an empty teacher: not asked
    assert curate_lemma(cfg) == summary


def summary_stage(out: Path, name: str) -> dict:
    return {s["stage"]: s for s in json.loads((out / "curate" / "funnel.json").read_text())["stages"]}[name]
