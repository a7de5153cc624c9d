"""The ``random_problems`` baseline: n distinct problems drawn at random among those with a confirmed chain, one
confirmed chain each — a curation's coverage with the problems left to chance — and its size in an ablation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from curation.methods.baseline.method import BaselineOptions, draw
from curation.schema import Chain
from eval.options import to_options
from limo.ablation.plan import Study, curation_items
from limo.setup.ablate import AblateOptions, check_ablate
from tests.test_ablate import run_baseline

POOL = "recipes/data/arithmetic/pool.jsonl.gz"


baseline = run_baseline  # the authored pool's first 30 problems, as test_ablate's baselines curate it


def problem_of(row: dict) -> str:
    return row["chain_id"].split("/", 1)[0]  # the authored pool's chain ids are <problem id>/<style>/<hash>


def test_random_problems_draws_distinct_problems_one_confirmed_chain_each_by_its_seed(tmp_path):
    correct, _ = baseline(tmp_path / "all", "all_correct", None, 0)
    drawn, summary = baseline(tmp_path / "p1", "random_problems", 12, 1)
    problems = [problem_of(r) for r in drawn]
    assert len(drawn) == 12 and len(set(problems)) == 12 and not summary.notices
    assert all(r["verdict"]["correct"] for r in drawn)
    assert {r["chain_id"] for r in drawn} <= {r["chain_id"] for r in correct}
    again, _ = baseline(tmp_path / "p1-again", "random_problems", 12, 1)
    other, _ = baseline(tmp_path / "p2", "random_problems", 12, 2)
    assert again == drawn and {r["chain_id"] for r in other} != {r["chain_id"] for r in drawn}
    funnel = json.loads((tmp_path / "p1" / "curate" / "funnel.json").read_text())
    last = funnel["stages"][-1]
    assert (last["stage"], last["items_out"], last["problems_out"]) == ("draw", 12, 12)


def test_asking_for_more_problems_than_have_a_confirmed_chain_draws_them_all_and_says_so_in_one_line(tmp_path):
    correct, _ = baseline(tmp_path / "all", "all_correct", None, 0)
    having = len({problem_of(r) for r in correct})
    drawn, summary = baseline(tmp_path / "short", "random_problems", 100, 3)
    assert len(drawn) == having and len({problem_of(r) for r in drawn}) == having
    assert len(summary.notices) == 1
    line = summary.notices[0]
    assert "\n" not in line and f"drew {having} problems of the 100 asked" in line and "random_problems" in line


def chains(counts: dict[str, int]) -> list[Chain]:
    return [Chain(f"{p}/{i}", p, "t") for p, k in counts.items() for i in range(k)]


def test_a_problem_with_many_chains_is_drawn_no_more_often_than_one_with_a_single_chain():
    """random_correct draws chains, so a problem with nine of eighteen chains comes half the time; random_problems
    draws the problem first: one time in ten, as each of the other nine."""
    pool = chains({"easy": 9, **{f"hard{i}": 1 for i in range(9)}})
    seeds = range(2000)
    problems = Counter(draw(pool, BaselineOptions("random_problems", 1), s)[0].problem_id for s in seeds)
    by_chain = Counter(draw(pool, BaselineOptions("random_correct", 1), s)[0].problem_id for s in seeds)
    assert 0.07 < problems["easy"] / 2000 < 0.13 and 0.45 < by_chain["easy"] / 2000 < 0.55
    picked = Counter(draw(pool, BaselineOptions("random_problems", 10), s)[0].id for s in range(200))
    assert len([k for k in picked if k.startswith("easy/")]) > 5  # the easy problem's chain is itself drawn at random


def write_curation(folder: Path, problems: list[str]) -> None:
    """An arm's curation as limo.curate leaves it: its training rows and its funnel's problem count."""
    (folder / "curate").mkdir(parents=True)
    rows = [{"id": f"{p}#{i}", "messages": []} for i, p in enumerate(problems)]
    (folder / "curate" / "messages.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    stage = {"stage": "select", "unit": "chain", "items_out": len(problems), "problems_out": len(set(problems))}
    (folder / "curate" / "funnel.json").write_text(json.dumps({"stages": [stage]}))


def test_sized_by_an_arm_that_keeps_two_chains_a_problem_it_draws_as_many_problems_not_rows(tmp_path):
    section = {
        "arms": [
            {"name": "mixed"},
            {"name": "rc", "baseline": "random_correct", "n": "mixed"},
            {"name": "rp", "baseline": "random_problems", "n": "mixed"},
        ],
        "compute": {"steps": 2},
        "draws": 2,
        "draw_seeds": "paired",
        "seeds": [0, 1],
    }
    options = to_options(AblateOptions, section, where="ablate")
    check_ablate(options)
    assert options.arm("rp").random and options.runs_of(options.arm("rp")) == ((0, 0), (1, 1))
    study = Study("ablate_demo", tmp_path, options, ("b",))
    write_curation(tmp_path / "arms" / "mixed", ["a", "a", "b", "b", "c", "c", "d", "d"])
    commands = {
        s["folder"].rsplit("/arms/", 1)[1]: s["own"]
        for item in curation_items(study, [(options.arm("rc"), 0), (options.arm("rp"), 1)])
        for s in item["steps"]
    }
    assert "curate.baseline.n=8" in commands["rc/draw0"] and "seed=0" in commands["rc/draw0"]
    assert (
        "curate.baseline.n=4" in commands["rp/draw1"]
        and "curate.baseline.kind=random_problems" in commands["rp/draw1"]
    )
    assert "seed=1" in commands["rp/draw1"]
