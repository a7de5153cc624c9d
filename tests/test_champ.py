"""The CHAMP loader: 270 problems, 270 human chains, 19,440 model chains with provenance, 540 annotations."""

from __future__ import annotations

import pytest

from curation.pool.champ import STRONG_MODELS, UNAIDED_SETTINGS, WEAK_MODELS, load_champ_pool
from eval.benchmarks.champ import champ_heldout_ids, heldout_split, load_champ_problems


@pytest.fixture(scope="module")
def pool():
    return load_champ_pool()


def test_counts(pool):
    assert len(pool.problems) == 270
    assert len(pool.human_chains) == 270
    assert len(pool.model_chains) == 19_440
    assert len(pool.annotations) == 540
    assert sum(a.no_mistake for a in pool.annotations) == 96


def test_chain_ids_unique_and_provenance(pool):
    ids = [c.id for c in pool.chains]
    assert len(set(ids)) == len(ids)
    for chain in pool.model_chains:
        assert chain.generator in WEAK_MODELS + STRONG_MODELS
        assert chain.prompt_setting and chain.provenance["conversation"] == f"{chain.generator}|{chain.prompt_setting}"
        assert chain.provenance["dataset"] == "champ-dataset"


def test_truncated_chains_have_no_summary(pool):
    truncated = [c for c in pool.model_chains if c.truncated]
    assert len(truncated) == 261
    assert all(c.final_answer is None for c in truncated)
    assert all(c.final_answer for c in pool.model_chains if not c.truncated)


def test_first_wrong_step_lies_in_its_chain(pool):
    annotated = [c for c in pool.model_chains if c.first_wrong_step is not None]
    assert len(annotated) == 540
    assert sum(c.first_wrong_step == -1 for c in annotated) == 96
    assert all(-1 <= c.first_wrong_step < len(c.text) for c in annotated)


def test_every_problem_has_72_conversations_of_which_12_unaided(pool):
    per_problem: dict[str, int] = {}
    unaided: dict[str, int] = {}
    for c in pool.model_chains:
        per_problem[c.problem_id] = per_problem.get(c.problem_id, 0) + 1
        unaided[c.problem_id] = unaided.get(c.problem_id, 0) + (c.prompt_setting in UNAIDED_SETTINGS)
    assert set(per_problem.values()) == {72}
    assert set(unaided.values()) == {12}


def test_heldout_is_seeded_per_category_20_percent():
    problems = load_champ_problems()
    train, held = heldout_split(problems)
    assert len(held) == 54 and len(train) == 216
    by_subject = {}
    for p in held:
        by_subject[p.subject] = by_subject.get(p.subject, 0) + 1
    assert by_subject == {"Number-Theory": 16, "Inequality": 10, "Polynomial": 10, "Sequence": 10, "Combinatorics": 8}
    assert champ_heldout_ids() == frozenset(p.id for p in held)
    assert heldout_split(problems, seed=1)[1] != held
