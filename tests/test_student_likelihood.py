"""The student's scores on a real model path (the tiny model built in code, `limo.models.tiny`): the mean token rank
behind the rank-surprisal ratio (`eval.run.likelihood`), and curation that scores chains with it — selection's fit
to the student and the difficulty stage's fallback to the student's likelihood — on the fixture of real SmolLM2
samples (tests/assets/smol_samples.jsonl).
"""

from __future__ import annotations

import json

import pytest

from eval.run.likelihood import RANK_CLIP, answer_ids, cache_path, conversation, score_answers
from tests.test_student_signals import FIXTURE, SYSTEM, _chain_id, _curate, _funnel, _jsonl, _shifted_student, _student

PROBLEM = "Nora has 88 eggs. She gives away 54 eggs. How many eggs does Nora have now?"
ROWS = [
    ("right", PROBLEM, "88 - 54 = 34.\nThe answer is \\boxed{34}."),
    ("long", PROBLEM, 'Let\'s solve this step by step.\n"Nora has 88 eggs": 88.\n"She gives away 54": 88 - 54 = 34.'),
]


@pytest.mark.slow
def test_each_answer_s_mean_token_rank_is_its_true_tokens_rank_under_the_model(tmp_path, tiny_model_dir):
    import torch

    import eval.backends.hf as hf

    scored = score_answers(ROWS, str(tiny_model_dir), cache_folder=tmp_path, system_prompt=SYSTEM, ranks=True)
    model, tokenizer = hf.load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    for row_id, problem, answer in ROWS:
        full, start = answer_ids(tokenizer, conversation(problem, answer, SYSTEM), row_id)
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([full])).logits[0, start - 1 : len(full) - 1]
        targets = torch.tensor(full[start:])
        true = logits.gather(-1, targets.unsqueeze(-1))
        ranks = [min(1 + int((row > value).sum()), RANK_CLIP) for row, value in zip(logits, true, strict=True)]
        nll = torch.nn.functional.cross_entropy(logits, targets).item()
        assert scored[row_id].rank == pytest.approx(sum(ranks) / len(ranks), abs=1e-3)
        assert scored[row_id].nll == pytest.approx(nll, abs=1e-4)
        assert scored[row_id].rsr == pytest.approx(scored[row_id].rank / nll, rel=1e-3)
        assert 1.0 <= scored[row_id].rank <= RANK_CLIP


@pytest.mark.slow
def test_a_row_cached_without_its_rank_is_scored_again_only_when_ranks_are_asked(tmp_path, tiny_model_dir):
    path = cache_path(tmp_path, str(tiny_model_dir), SYSTEM, 1024)
    path.write_text(json.dumps({"id": "right", "nll": 9.0, "tokens": 3, "truncated": False}) + "\n")
    plain = score_answers(ROWS[:1], str(tiny_model_dir), cache_folder=tmp_path, system_prompt=SYSTEM)
    assert plain["right"].nll == 9.0 and plain["right"].rank is None  # the cache answers
    with pytest.raises(ValueError, match="no token rank recorded"):
        _ = plain["right"].rsr
    ranked = score_answers(ROWS[:1], str(tiny_model_dir), cache_folder=tmp_path, system_prompt=SYSTEM, ranks=True)
    assert ranked["right"].rank is not None and ranked["right"].nll != 9.0
    again = score_answers(ROWS[:1], str(tiny_model_dir), cache_folder=tmp_path, system_prompt=SYSTEM, ranks=True)
    assert again == ranked and len(path.read_text().splitlines()) == 2  # the later line wins; nothing scored twice


@pytest.mark.slow
def test_curation_scores_chains_with_the_student_for_its_difficulty_and_its_fit(tmp_path, tiny_model_dir):
    """The shifted student (it answers other problems) solves almost nothing, so the tiny student's likelihood scores
    the problems; selection keeps each problem's two best chains by their rank-surprisal ratio under it."""
    overrides = _student(_shifted_student(tmp_path), fallback="likelihood", min_solved="0.25")
    curate = _curate(
        "smol_selfpool_limo",
        tmp_path / "run",
        *overrides,
        f"model.path={tiny_model_dir}",  # the recipe's student: curate.student.model
        "curate.stages.select.student_fit=rsr",
        "curate.stages.select.chains_per_problem=2",
        "curate.stages.select.quality_weight=0",  # within a problem the fit alone decides
    )
    notes = _funnel(curate)["difficulty"]["notes"]["student"]
    assert notes["used"] == "likelihood" and notes["likelihood"]["problems_with_difficulty"] > 0
    cache = cache_path(curate / "work" / "likelihood", str(tiny_model_dir), SYSTEM, 1024)
    cached = {row["id"]: row for row in _jsonl(cache)}
    assert all(row["rank"] is not None for row in cached.values())
    rows = _jsonl(curate / "curated.jsonl")
    assert rows and {row["pass_rates"]["score_from"] for row in rows} == {"likelihood"}
    by_problem: dict[str, list[dict]] = {}
    for row in rows:
        by_problem.setdefault(row["id"].split("#")[0], []).append(row)
        score = cached[row["chain_id"]]
        assert row["scores"]["rsr"] == round(score["rank"] / score["nll"], 3)
    samples = [json.loads(line) for line in FIXTURE.read_text().splitlines()]
    two = {s["problem_id"] for s in samples if s["problem_id"] in by_problem and len(by_problem[s["problem_id"]]) == 2}
    assert two  # arith-train-0016 has two distinct verified chains: both kept, the better-fitting first
    for problem in two:
        first, second = by_problem[problem]
        assert (first["scores"]["place"], second["scores"]["place"]) == (1, 2)
        assert first["scores"]["rsr"] <= second["scores"]["rsr"]
        assert {first["chain_id"], second["chain_id"]} <= {
            _chain_id(problem, "smol-teacher", s["response"]) for s in samples if s["problem_id"] == problem
        }
