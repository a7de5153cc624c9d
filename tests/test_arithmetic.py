"""The real model's task (`eval.arithmetic`): the shipped files are what the generator writes, pool and held-out
problems never meet, and each kind of chain is what its name says — the grader accepts the careful and terse ones
and rejects the careless ones, and curation keeps only careful chains."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from eval.arithmetic import HELDOUT_PROBLEMS, POOL_PROBLEMS, files
from eval.grader import grade

DATA = Path(__file__).resolve().parents[1] / "recipes" / "data" / "arithmetic"


def _pool() -> list[dict]:
    with gzip.open(DATA / "pool.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_the_shipped_files_are_the_generator_s_bytes():
    for name, data in files().items():
        assert (DATA / name).read_bytes() == data, f"{name}: regenerate with python -m eval.arithmetic {DATA}"


def test_pool_and_held_out_problems_never_share_a_text():
    held = [json.loads(line) for line in (DATA / "heldout.jsonl").read_text(encoding="utf-8").splitlines()]
    pool = _pool()
    assert len(held) == HELDOUT_PROBLEMS and len({r["problem_id"] for r in pool}) == POOL_PROBLEMS
    assert not {r["problem"] for r in held} & {r["problem"] for r in pool}
    assert Counter(r["level"] for r in held).keys() == {1, 2, 3}


def test_each_chain_kind_grades_as_its_name_says():
    verdicts: dict[str, Counter] = {}
    for row in _pool()[:250]:  # 50 problems x 5 chains
        verdict = grade(row["answer"], row["chain"], problem=row["problem"])
        verdicts.setdefault(row["generator"], Counter())[verdict.correct] += 1
    assert verdicts["tutor"] == Counter({True: 50}) and verdicts["quick"] == Counter({True: 50})
    assert verdicts["careless"] == Counter({False: 50})
    assert verdicts["rambler"][True] == 50  # right answer: the repetition check drops it, not the grader
    assert verdicts["unsure"][True] == 0


@pytest.mark.slow
def test_curation_keeps_only_careful_chains_of_problems_curation_may_use(tmp_path):
    from limo.config import compose
    from limo.curate_setup import build_curation

    build_curation(compose("smol_limo", [f"output_dir={tmp_path}"])).run()
    curated = [json.loads(line) for line in (tmp_path / "curate" / "curated.jsonl").read_text().splitlines()]
    assert len(curated) == 200 and {r["generator"] for r in curated} == {"tutor"}
    assert all(r["verdict"]["correct"] for r in curated)
    rejects = Counter(json.loads(line)["reason"] for line in (tmp_path / "curate" / "rejects.jsonl").open())
    assert rejects["answer_incorrect"] >= POOL_PROBLEMS and rejects["repetition_loop"] > 0
