"""The ablation's statistics take the problem as the unit: a problem seen at several seeds, or against several draws,
or against the base model's one run, is one observation. Sign-flip p (exact and Monte Carlo), the two-level bootstrap,
Holm's adjustment and the primary comparison, from per-sample files as limo.evaluate writes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval.options import OptionsError, to_options
from eval.reports.metrics import holm, mcnemar_p, sign_flip_p, two_level_bootstrap
from limo.ablation.plan import RunSpec
from limo.ablation.results import RunResult, Tables, load_run, to_json, write_results
from limo.cli.compose import compose
from limo.setup.ablate import AblateOptions, PrimaryOptions, build_ablate, check_ablate, pairs_of

# ------------------------------------------------------------------------------------------- the tests themselves


def test_the_exact_sign_flip_p_is_a_count_of_sign_patterns_by_hand():
    assert sign_flip_p([1, 1, 1, 1, 1]).p == 2 / 32  # only all + and all - are as extreme: 2 of 2**5
    assert sign_flip_p([1, 1, 1, 1, 1, 0, 0]).p == 2 / 32  # a tie moves no sum
    # four of +-1 with sum 2: k plus signs give 2k - 4, and |2k - 4| >= 2 for k in {0, 1, 3, 4}: 1 + 4 + 4 + 1 of 16
    assert sign_flip_p([1, 1, 1, -1]).p == 10 / 16
    # 1, 0.5, -0.5: the eight sums are 2, 1, 1, 0, 0, -1, -1, -2; six are at least 1 in size
    assert sign_flip_p([1, 0.5, -0.5]).p == 6 / 8
    assert sign_flip_p([]).p == 1.0 and sign_flip_p([0, 0]).p == 1.0
    # on 0/1 verdicts the test is the exact McNemar test
    assert sign_flip_p([1] * 8 + [-1] * 2).p == pytest.approx(mcnemar_p(8, 2))
    assert sign_flip_p([1, 1, 1, 1, 1]).exact


def test_the_monte_carlo_p_agrees_with_the_exact_one_and_states_its_draw():
    differences = [1, 1, 1, 0.5, 1, -1, 1, 0.5, -0.5, 1, 1, -1, 1, 0.5, 1, -1, 1]  # 17 non-zero: enumerable
    exact = sign_flip_p(differences)
    drawn = sign_flip_p(differences, exact_max=0)
    assert exact.exact and not drawn.exact and 0.01 < exact.p < 0.5
    assert abs(drawn.p - exact.p) < 0.01
    assert (drawn.resamples, drawn.seed) == (100_000, 0) and drawn == sign_flip_p(differences, exact_max=0)
    assert sign_flip_p(differences, exact_max=0, seed=1).p != drawn.p  # the seed is what fixes the draw
    far = sign_flip_p([1] * 40)  # beyond enumeration; no drawn pattern is as extreme: p is the draw's floor
    assert not far.exact and far.at_floor and far.p == 1 / 100_001


def test_holm_adjusts_a_hand_worked_family():
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to 0.06 (monotone)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0] and holm([0.2]) == [0.2] and holm([]) == []


def test_the_two_level_bootstrap_widens_when_seeds_disagree_and_not_when_they_agree():
    one = [[1.0] * 12 + [0.0] * 12 + [-1.0] * 6]  # A's gain over B at one seed, problem by problem
    agree = one * 3
    disagree = [[1.0] * 30, one[0], [0.0] * 12 + [-1.0] * 18]  # the same mean gain (0.2), seeds far apart

    def width(table: list[list[float]]) -> float:
        low, high = two_level_bootstrap(table)
        return high - low

    assert two_level_bootstrap(agree) == two_level_bootstrap(one)
    assert width(disagree) > 2 * width(one)
    low, high = two_level_bootstrap(one)
    assert low < 0.2 < high  # the mean gain, 6 / 30


# ------------------------------------------------------------------------------------------- from per-sample files


def write_run(folder: Path, rights: list[bool], bench: str = "b") -> None:
    """A run folder as limo.evaluate leaves it: one greedy sample per problem."""
    (folder / "eval" / bench).mkdir(parents=True)
    rows = [{"problem_id": f"p{i}", "sample_index": 0, "correct": r, "level": 1 + i % 2} for i, r in enumerate(rights)]
    (folder / "eval" / bench / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def tables(
    tmp_path: Path,
    runs: dict[tuple[str, int | None, int | None], list[bool]],
    pairs: tuple[tuple[str, str], ...],
    primary: PrimaryOptions | None = None,
    parts: dict[str, set[str]] | None = None,
) -> Tables:
    arms: dict[str, list[RunResult]] = {}
    for (arm, seed, draw), rights in runs.items():
        folder = tmp_path / f"{arm}-{seed}-{draw}"
        write_run(folder, rights)
        arms.setdefault(arm, []).append(load_run(RunSpec(arm, seed, draw, str(folder)), ["b"]))
    facts = {
        "recipe": "t",
        "command": "python -m limo.ablate recipe=t",
        "machine": "here",
        "written": "now",
        "seeds": sorted({s for _, s, _ in runs if s is not None}),
        "draws": 1,
        "arms": [{"name": a, "kind": "curation"} for a in arms],
        "benchmarks": {},
    }
    return Tables(arms, {"b": parts or {}}, {}, pairs, facts, primary)


def whole(payload: dict, a: str, b: str) -> dict:
    return next(r for r in payload["pairs"] if (r["a"], r["b"], r["part"]) == (a, b, None))


A_RIGHT = [True] * 9 + [False]  # 10 problems: A right on 9, B on 2, so 7 problems A alone solves
B_RIGHT = [True] * 2 + [False] * 8


def test_three_seeds_that_agree_give_the_p_of_one_seed_not_a_smaller_one(tmp_path):
    once = to_json(tables(tmp_path / "one", {("a", 0, None): A_RIGHT, ("b", 0, None): B_RIGHT}, (("a", "b"),)))
    thrice = {(arm, s, None): r for s in (0, 1, 2) for arm, r in (("a", A_RIGHT), ("b", B_RIGHT))}
    three = to_json(tables(tmp_path / "three", thrice, (("a", "b"),)))
    one_row, three_row = whole(once, "a", "b"), whole(three, "a", "b")
    assert one_row["p"] == 2 / 2**7  # 7 problems differ, all one way
    assert three_row["p"] == one_row["p"]  # not 2 / 2**21: the same 7 problems seen three times
    assert (three_row["problems"], three_row["problems_a_higher"], three_row["problems_b_higher"]) == (10, 7, 0)
    assert three_row["interval"] == one_row["interval"] and three_row["difference"] == pytest.approx(0.7)
    assert [s["a_higher"] for s in three_row["per_seed"]] == [7, 7, 7]  # each seed agrees
    # an arm's interval is over problems: three agreeing seeds do not narrow it (as n = problems x runs would)
    arm = {r["arm"]: r for r in three["arm_accuracy"]}["a"]
    assert arm["interval"] == {r["arm"]: r for r in once["arm_accuracy"]}["a"]["interval"]
    assert (arm["problems"], arm["runs"], arm["accuracy"]) == (10, 3, pytest.approx(0.9))


def test_seeds_that_disagree_widen_the_interval_of_the_difference(tmp_path):
    agree = {(arm, s, None): r for s in (0, 1, 2) for arm, r in (("a", A_RIGHT), ("b", B_RIGHT))}
    disagree = {**agree, ("a", 0, None): [True] * 10, ("a", 2, None): [False] * 10}  # seed 2: A solves nothing
    low, high = whole(to_json(tables(tmp_path / "agree", agree, (("a", "b"),))), "a", "b")["interval"]
    row = whole(to_json(tables(tmp_path / "disagree", disagree, (("a", "b"),))), "a", "b")
    assert row["interval"][1] - row["interval"][0] > 1.5 * (high - low)
    assert [(s["a_higher"], s["b_higher"]) for s in row["per_seed"]] == [(8, 0), (7, 0), (0, 2)]


def test_the_base_model_counts_each_problem_once_against_the_arms_mean(tmp_path):
    """The base model is one run: each problem once, against the arm's mean over its three seeds."""
    runs = {
        ("base", None, None): [True] * 2 + [False] * 8,
        ("a", 0, None): [True] * 7 + [False] * 3,  # problems 0-5 at every seed, problem 6 at seed 0 only
        ("a", 1, None): [True] * 6 + [False] * 4,
        ("a", 2, None): [True] * 6 + [False] * 4,
    }
    row = whole(to_json(tables(tmp_path, runs, (("a", "base"),))), "a", "base")
    assert (row["problems"], row["seeds"], row["problems_a_higher"], row["problems_b_higher"]) == (10, [0, 1, 2], 5, 0)
    # differences 1, 1, 1, 1, 1/3: only the two all-same-sign patterns of 32 are as far from zero
    assert row["p"] == pytest.approx(2 / 32)
    assert row["difference"] == pytest.approx((4 + 1 / 3) / 10)
    assert [(s["seed"], s["a_higher"], s["b_higher"]) for s in row["per_seed"]] == [(0, 5, 0), (1, 4, 0), (2, 4, 0)]


def test_an_arm_paired_with_three_draws_is_not_counted_three_times(tmp_path):
    """A random arm drawn three times at a seed: its draws are averaged, the other arm's run is not tripled."""
    runs = {
        ("a", 0, None): [True] * 6 + [False] * 4,
        ("r", 0, 0): B_RIGHT,
        ("r", 0, 1): B_RIGHT,
        ("r", 0, 2): [True] * 3 + [False] * 7,  # this draw also solves problem 2
    }
    row = whole(to_json(tables(tmp_path, runs, (("a", "r"),))), "a", "r")
    assert (row["problems"], row["problems_a_higher"], row["problems_b_higher"]) == (10, 4, 0)
    # differences 2/3, 1, 1, 1: the sum is at least 11/3 in size only with all four signs alike, 2 of 16
    assert row["p"] == pytest.approx(2 / 16)
    assert row["accuracy_b"] == pytest.approx((2 + 2 + 3) / 30) and row["per_seed"][0]["a_higher"] == 4


def test_the_primary_comparison_comes_first_and_the_others_are_holm_adjusted(tmp_path):
    runs = {
        ("a", 0, None): A_RIGHT,
        ("b", 0, None): B_RIGHT,
        ("c", 0, None): [True] * 5 + [False] * 5,
    }
    primary = PrimaryOptions(("c", "b"), "b", "tail")
    built = tables(
        tmp_path, runs, (("a", "b"), ("c", "b"), ("a", "c")), primary, {"tail": {f"p{i}" for i in (2, 3, 4)}}
    )
    payload = write_results(tmp_path, built)
    text = (tmp_path / "results.md").read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Primary comparison: c vs b on b tail" and sections[1] == "## Compute"
    assert "declared in the recipe (ablate.primary)" in text and "its p is not adjusted" in text
    first_table_row = next(line for line in text.splitlines() if line.startswith("| c vs b |"))
    assert "| b tail |" in first_table_row  # the primary's row is the first comparison shown
    assert "exploratory" in sections[-1] and "Holm-adjusted over 5 comparisons" in sections[-1]
    rows = payload["pairs"]
    assert rows[0]["primary"] and (rows[0]["a"], rows[0]["b"], rows[0]["part"]) == ("c", "b", "tail")
    assert rows[0]["p"] == 2 / 8 and rows[0]["p_holm"] is None  # three problems c alone solves, unadjusted
    others = rows[1:]
    assert all(not r["primary"] for r in others) and len(others) == 5
    assert [r["p_holm"] for r in others] == pytest.approx(holm([r["p"] for r in others]))
    assert payload["statistics"]["holm_family"] == 5 and payload["primary"]["in_table"]
    assert payload["statistics"]["monte_carlo"] == {"resamples": 100_000, "seed": 0}
    assert payload["statistics"]["bootstrap"] == {"resamples": 10_000, "seed": 0}
    assert "Monte Carlo with 100,000 sign patterns, seed 0" in text and "10,000 resamples, seed 0" in text
    assert "Primary comparison" in (tmp_path / "report.html").read_text()


def test_without_a_primary_every_comparison_is_exploratory(tmp_path):
    runs = {("a", 0, None): A_RIGHT, ("b", 0, None): B_RIGHT}
    write_results(tmp_path, tables(tmp_path, runs, (("a", "b"),)))
    text = (tmp_path / "results.md").read_text()
    assert "No primary comparison declared (ablate.primary): every comparison is exploratory" in text
    assert "| a vs b | b | 10 | 0 | 90.0% | 20.0% | +70.0 [" in text
    missing = tables(tmp_path / "screen", runs, (("a", "b"),), PrimaryOptions(("a", "gone"), "b"))
    write_results(tmp_path / "screen", missing)
    assert (
        "primary comparison, a vs gone on b, is not in this table" in (tmp_path / "screen" / "results.md").read_text()
    )


# ------------------------------------------------------------------------------------------- ablate.primary


def options(**section) -> AblateOptions:
    section.setdefault("arms", [{"name": "curated"}, {"name": "rc", "baseline": "random_correct", "n": "curated"}])
    section.setdefault("compute", {"steps": 2})
    section.setdefault(
        "benchmarks", [{"name": "h", "part_ranges": {"tuned": [0, 10], "rest": [10, None]}}, {"name": "u"}]
    )
    built = to_options(AblateOptions, section, where="ablate")
    check_ablate(built)
    return built


@pytest.mark.parametrize(
    ("primary", "message"),
    [
        ({"pair": ["curated", "nope"], "benchmark": "h"}, "ablate.primary.pair: no arm 'nope' (arms: curated, rc)"),
        ({"pair": ["rc", "rc"], "benchmark": "h"}, "ablate.primary.pair: an arm against itself"),
        ({"pair": ["curated", "base"], "benchmark": "h"}, "ablate.primary.pair: no arm 'base'"),
        (
            {"pair": ["curated", "rc"], "benchmark": "x"},
            "ablate.primary.benchmark: 'x' is not one of ablate.benchmarks",
        ),
        ({"pair": ["curated", "rc"], "benchmark": "h", "part": "dev"}, "ablate.primary.part: h has no part 'dev'"),
        ({"pair": ["curated", "rc"], "benchmark": "u", "part": "dev"}, "ablate.primary.part: u has no parts"),
        ({"pair": ["curated"], "benchmark": "h"}, "ablate.primary.pair: expected 2 values"),
    ],
)
def test_a_primary_naming_nothing_is_refused(primary, message):
    with pytest.raises(OptionsError) as err:
        options(primary=primary)
    assert message in str(err.value)


def test_the_primary_pair_is_tested_first_in_its_own_order():
    built = options(primary={"pair": ["rc", "curated"], "benchmark": "h", "part": "rest"})
    assert pairs_of(built) == (("rc", "curated"),)
    three = options(
        arms=[{"name": "a"}, {"name": "b"}, {"name": "c"}],
        base=True,
        pairs=[["a", "b"], ["b", "c"]],
        primary={"pair": ["c", "base"], "benchmark": "u"},
    )
    assert pairs_of(three) == (("c", "base"), ("a", "b"), ("b", "c"))  # added first where the list lacked it
    assert pairs_of(options()) == (("curated", "rc"),)


def test_a_primary_part_is_checked_against_the_benchmarks_file_at_start_up():
    given = "ablate.primary={pair: [curated, random_correct], benchmark: arith_unseen, part: untouched}"
    assert build_ablate(compose("ablate_demo", [given])).primary == PrimaryOptions(
        ("curated", "random_correct"), "arith_unseen", "untouched"
    )
    with pytest.raises(OptionsError, match=r"arith_unseen has no part 'untuoched' \(parts: dev, untouched\)"):
        build_ablate(compose("ablate_demo", [given.replace("untouched", "untuoched")]))


def test_a_bad_primary_ends_the_command_in_one_line_before_anything_runs(repo_root, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    line = "ablate.primary={pair: [curated, random], benchmark: arith_unseen}"
    command = [sys.executable, "-m", "limo.ablate", "recipe=ablate_demo", f"output_dir={tmp_path}", line]
    done = subprocess.run(command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.startswith("limo.ablate: error: ablate.primary.pair: no arm 'random'")
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "ablate").exists()
