"""`python -m limo.ablate`: the ``ablate:`` section's checks, the command lines it builds, the chance baselines it
curates, the tables it computes from per-sample files, and (slow) the whole command on the tiny model — killed with
SIGKILL half-way, resumed, nothing finished redone, its paired counts checked against a count by hand. When a finished
step counts as done (its marker's content key): tests/test_ablate_markers.py."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation.methods import METHODS, RunContext
from curation.options import StageOptions
from eval.options import OptionsError, to_options
from eval.reports.metrics import holm, mcnemar_p
from limo.ablation.plan import RunSpec, Study, arm_steps, entry_overrides, flat_overrides, hydra_value, run_specs
from limo.ablation.results import RunResult, Tables, to_json
from limo.ablation.store import read_rows
from limo.cli.compose import compose
from limo.config.sections import recipe_has, recipe_names
from limo.setup.ablate import AblateOptions, build_ablate, check_ablate, pairs_of
from tests.launch import cold_environment, entry, run_group

POOL = "recipes/data/arithmetic/pool.jsonl.gz"


def options(**section) -> AblateOptions:
    section.setdefault("arms", [{"name": "curated"}, {"name": "rc", "baseline": "random_correct", "n": "curated"}])
    section.setdefault("compute", {"steps": 2})
    built = to_options(AblateOptions, section, where="ablate")
    check_ablate(built)
    return built


def test_the_demo_recipe_parses_into_its_arms_seeds_and_parts():
    built = build_ablate(compose("ablate_demo"))
    assert [a.name for a in built.arms] == ["curated", "random_correct", "curated_rl"]
    assert built.arm("random_correct").random and built.seeds == (0, 1)
    assert built.benchmarks[1].part_field == "part" and built.benchmarks[0].part_ranges["rest"] == (4, None)
    assert pairs_of(built) == (("curated", "random_correct"), ("curated_rl", "curated"))
    assert built.arm("curated_rl").after == "curated" and [a.name for a in built.curated] == [
        "curated",
        "random_correct",
    ]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"arms": [{"name": "a", "baseline": "random"}]}, "ablate.arms[0].n: the random baseline 'a' needs n"),
        ({"arms": [{"name": "a"}, {"name": "a"}]}, "ablate.arms[1].name: 'a' names an arm before it"),
        ({"arms": [{"name": "base"}]}, "reserved for the untrained model"),
        ({"arms": [{"name": "r", "baseline": "random", "n": "nope"}]}, "'nope' is not an arm whose size"),
        ({"arms": [{"name": "a", "n": 3}]}, "only a random baseline takes n"),
        ({"arms": [{"name": "a"}], "compute": {}}, "arm 'a' has no step count"),
        ({"arms": [{"name": "a"}], "pairs": [["a", "b"]]}, "ablate.pairs: [a, b]: no arm 'b'"),
        (
            {"arms": [{"name": "a", "stpes": 3}]},
            "ablate.arms[0].stpes: unknown key (did you mean ablate.arms[0].steps",
        ),
        ({"arms": [{"name": "a"}], "compute": {"epochs_of": "x"}}, "ablate.compute.epochs_of: no arm 'x'"),
        (
            {"arms": [{"name": "a"}, {"name": "b", "after": "x", "steps": 1}]},
            "ablate.arms[1].after: 'x' is not an arm",
        ),
        ({"arms": [{"name": "a"}, {"name": "b", "after": "a"}]}, "an arm after 'a' curates per run and needs its own"),
        ({"arms": [{"name": "a", "recipe": "rl_demo"}]}, "ablate.arms[0].recipe: only an arm with after takes"),
        (
            {
                "arms": [{"name": "a", "seeds": [0]}, {"name": "b", "after": "a", "steps": 1, "seeds": [0, 1]}],
                "seeds": [0, 1],
            },
            "ablate.arms[1].seeds: 'a' has no run at seeds [1]",
        ),
        (
            {"arms": [{"name": "a"}, {"name": "b", "seeds": [1, 2]}], "seeds": [0]},
            "ablate.arms[1].seeds: none of [1, 2] is in ablate.seeds [0], so arm 'b' would train at no seed",
        ),
        (
            {
                "arms": [
                    {"name": "a"},
                    {"name": "r", "baseline": "random", "n": 3},
                    {"name": "b", "after": "r", "steps": 1},
                ]
            },
            "'r' is not an arm with one trained run a seed",
        ),
        (
            {"arms": [{"name": "a"}, {"name": "b", "after": "a", "steps": 1}, {"name": "c", "data_of": "b"}]},
            "ablate.arms[2].data_of: 'b' is not an arm with one set of rows",
        ),
        (
            {"arms": [{"name": "a"}, {"name": "b", "after": "a", "steps": 1}], "compute": {"epochs_of": "b"}},
            "ablate.compute.epochs_of: 'b' goes on from another arm's runs",
        ),
    ],
)
def test_a_section_that_would_make_wrong_tables_is_refused_naming_the_key(section, message):
    with pytest.raises(OptionsError) as err:
        options(**section)
    assert message in str(err.value)


def test_a_run_of_some_seeds_keeps_the_seeds_each_arm_lists_among_them():
    """An arm outside the primary pair trains at fewer seeds (``seeds: [0, 1, 2]`` beside the pair's five); a screen
    of some seeds (``ablate.seeds=[0]``) narrows it with the others instead of asking for runs its arm lacks."""
    arms = [{"name": "a"}, {"name": "b", "after": "a", "steps": 1}, {"name": "c", "after": "a", "steps": 1,
            "seeds": [2, 0]}]  # fmt: skip
    whole = options(arms=arms, seeds=[0, 1, 2, 3, 4])
    assert [whole.seeds_of(a) for a in whole.arms] == [(0, 1, 2, 3, 4), (0, 1, 2, 3, 4), (2, 0)]
    screen = options(arms=arms, seeds=[0])
    assert [screen.seeds_of(a) for a in screen.arms] == [(0,), (0,), (0,)]
    left_out = options(arms=arms, seeds=[3], only=["a", "b"])  # the arm with no seed among them is not run
    assert left_out.seeds_of(left_out.arms[2]) == ()
    with pytest.raises(OptionsError, match=r"ablate.arms\[2\].seeds: none of \[2, 0\] is in ablate.seeds \[3\]"):
        options(arms=arms, seeds=[3])


def test_every_pair_of_arms_and_each_arm_against_the_base_model_by_default():
    built = options(arms=[{"name": "a"}, {"name": "b"}, {"name": "c"}], base=True)
    assert pairs_of(built) == (("a", "b"), ("a", "c"), ("b", "c"), ("a", "base"), ("b", "base"), ("c", "base"))


def test_overrides_become_command_lines_a_user_could_type():
    lines = flat_overrides(
        "curate", {"stages": {"select": {"n": 5}, "ingest": {"field_map": {"id": "uid"}}, "dedup": {"near": False}}}
    )
    assert lines == [
        "curate.stages.select.n=5",
        "curate.stages.ingest.field_map={id:uid}",
        "curate.stages.dedup.near=false",
    ]
    assert hydra_value("a b's") == "'a b\\'s'" and hydra_value("1.0") == "'1.0'" and hydra_value(None) == "null"
    assert hydra_value([1, "x"]) == "[1,x]" and hydra_value("recipes/data/x.jsonl") == "recipes/data/x.jsonl"


def test_a_trained_runs_evaluation_never_gets_the_base_models_path():
    """model.path= names the base model: training starts from it and the base row evaluates it; typed on
    limo.evaluate's command line it is also the model evaluated, so a trained run's evaluation leaves it out (on the
    first GPU run of bench/experiments/limo_small.py it did not, and every arm scored exactly the base model's
    4/129)."""
    typed = ["model.path=/tmp/smol.gguf", "train.args.use_cpu=false", "benchmark_specs.toy={source: t.jsonl}"]
    assert entry_overrides(typed, "evaluate") == typed[1:]
    assert entry_overrides(typed, "base") == typed
    assert entry_overrides(typed, "train") == entry_overrides(typed, "curate") == typed[:2]
    assert entry_overrides(["+model.path=x.gguf"], "evaluate") == []
    assert entry_overrides(typed, "after") == [typed[1]]  # an after arm starts from its run, never the base model


@pytest.mark.parametrize("recipe", [r for r in recipe_names() if recipe_has(r, "ablate")])
def test_every_ablation_recipe_parses_and_every_arm_composes(recipe):
    """Each arm's overrides are what its curate and train commands get: a misspelt key or a wrong type there fails
    here, not hours into a run."""
    from limo.config.sections import section
    from limo.setup.curate import build_method_options, build_stages, find_method

    built = build_ablate(compose(recipe))
    assert built.arms and built.benchmarks
    for arm in built.arms:
        lines = [*flat_overrides("curate", arm.curate), *flat_overrides("train", arm.train)]
        lines += ["curate.method=baseline", f"curate.baseline.kind={arm.baseline}"] if arm.baseline else []
        data = section(compose(recipe, lines), "curate")
        method = find_method(data)
        build_stages(data.get("stages"), method, None)
        build_method_options(data, method)


def write_rows(path: Path, rows: int, chars: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {
        "id": "x",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a" * (chars - 1)}],
    }
    path.write_text("".join(json.dumps({**row, "id": f"r{i}"}) + "\n" for i in range(rows)))


def test_steps_follow_compute_an_arms_own_budget_and_matched_tokens(tmp_path):
    section = {
        "arms": [
            {"name": "cur"},
            {"name": "all", "baseline": "all"},
            {"name": "once", "data_of": "cur", "epochs": 1},
            {"name": "fixed", "baseline": "all_correct", "steps": 7},
        ],
        "compute": {"epochs_of": "all"},
    }
    study = Study("r", tmp_path, options(**section), ("b",), global_batch=8)
    for name, rows, chars in (("cur", 20, 100), ("all", 100, 50), ("fixed", 30, 10)):
        write_rows(tmp_path / "arms" / name / "curate" / "messages.jsonl", rows, chars)
    assert arm_steps(study) == {"cur": 13, "all": 13, "once": 3, "fixed": 7}  # ceil(100 / 8), ceil(20 / 8)
    matched = Study("r", tmp_path, options(**{**section, "compute": {"steps": 10, "match_tokens": "all"}}), ("b",))
    assert arm_steps(matched) == {"cur": 5, "all": 10, "once": 5, "fixed": 50}  # 10 x 50 chars / each arm's chars
    assert [s.folder.rsplit("/", 2)[-2:] for s in run_specs(study)][:2] == [["cur", "seed0"], ["all", "seed0"]]


def test_a_screen_runs_only_the_arms_named_and_curates_what_they_need(tmp_path):
    section = {
        "arms": [
            {"name": "cur"},
            {"name": "rc", "baseline": "random_correct", "n": "cur"},
            {"name": "all", "baseline": "all"},
            {"name": "once", "data_of": "cur", "epochs": 1},
        ],
        "compute": {"epochs_of": "all"},
        "only": ["rc", "once"],
        "pairs": [["cur", "rc"], ["rc", "once"]],
        "draws": 2,
    }
    built = options(**section)
    assert [a.name for a in built.active] == ["rc", "once"] and [a.name for a in built.curated] == [
        "cur",
        "rc",
        "all",
        "once",
    ]
    assert pairs_of(built) == (("rc", "once"),)
    study = Study("r", tmp_path, built, ("b",), global_batch=8)
    assert [(s.arm, s.seed, s.draw) for s in run_specs(study)] == [("rc", 0, 0), ("rc", 0, 1), ("once", 0, None)]
    with pytest.raises(OptionsError, match="ablate.only: no arm 'x'"):
        options(**{**section, "only": ["x"]})


def test_a_screen_from_the_command_line_writes_its_tables_beside_the_whole_comparisons(tmp_path):
    """results.md is the recipe's whole comparison: a subset asked for on the command line (ablate.only or
    ablate.seeds) tabulates into subsets/<arms>_seeds<s>/, and an ``only`` the recipe itself sets does not."""
    from omegaconf import open_dict

    from limo.ablation.study import build_study, compose_command, parse_command, results_folder

    def folder(*extra: str) -> Path:
        parsed = parse_command(["recipe=ablate_demo", f"output_dir={tmp_path}", *extra])
        return results_folder(build_study(compose_command(parsed), parsed)[0], parsed)

    root = tmp_path / "ablate"
    assert folder() == root
    assert folder("ablate.only=[curated]", "ablate.seeds=[0]") == root / "subsets" / "curated_seeds0"
    assert folder("ablate.seeds=[1,0]").parent == root / "subsets" and folder("ablate.seeds=[1,0]").name.endswith(
        "_seeds1-0"
    )
    recipe_only = parse_command(["recipe=gemma_ablate_selfpool_mix", f"output_dir={tmp_path}"])
    cfg = compose_command(recipe_only)
    with open_dict(cfg):
        cfg.ablate.only = ["all_correct", "random_correct"]  # as a recipe's own section would set it
    assert results_folder(build_study(cfg, recipe_only)[0], recipe_only) == root


def test_paired_draws_give_each_seed_its_own_draw_and_curate_only_those(tmp_path):
    """``draw_seeds: paired``: seed s of a random arm trains draw s mod draws, one run a seed, the same draw whatever
    other seeds run beside it; only the draws its seeds reach are curated."""
    section = {"seeds": [0, 1, 2], "draws": 3, "draw_seeds": "paired"}
    study = Study("r", tmp_path, options(**section), ("b",))
    assert [(s.arm, s.seed, s.draw) for s in run_specs(study)] == [
        ("curated", 0, None),
        ("curated", 1, None),
        ("curated", 2, None),
        ("rc", 0, 0),
        ("rc", 1, 1),
        ("rc", 2, 2),
    ]
    alone = options(**{**section, "seeds": [2]})
    assert alone.runs_of(alone.arm("rc")) == ((2, 2),)  # seed 2 run alone: still draw 2, one draw curated
    assert alone.draws_of(alone.arm("rc")) == (2,)
    few = options(**{**section, "draws": 2})
    assert [d for _, d in few.runs_of(few.arm("rc"))] == [0, 1, 0]
    crossed = options(**{**section, "draw_seeds": "cross", "seeds": [0, 1]})
    assert len(crossed.runs_of(crossed.arm("rc"))) == 6 and crossed.draws_of(crossed.arm("rc")) == (0, 1, 2)
    with pytest.raises(OptionsError, match="draw_seeds"):
        options(**{**section, "draw_seeds": "zip"})


def test_the_bench_script_is_a_thin_caller_of_limo_ablate(repo_root):
    """bench/experiments/limo_small.py keeps the bench's flags and hands them to limo.ablate (one copy of the
    plumbing); its command composes as limo.ablate would compose it."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("limo_small", repo_root / "bench/experiments/limo_small.py")
    assert spec and spec.loader
    small = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(small)
    flags = argparse.Namespace(
        arms=["curated_50"], seeds=[0, 1], limit=64, backend="llamacpp", set=["model.path=/m.gguf"], jobs=2, work="w"
    )
    command = small.ablate_command(flags)
    assert command[1:] == [
        "-m",
        "limo.ablate",
        "recipe=smol_ablate_authored",
        "output_dir=w",
        "ablate.only=[curated_50]",
        "ablate.seeds=[0,1]",
        "ablate.limit=64",
        "evaluate.backend=llamacpp",
        "model.path=/m.gguf",
        "--jobs",
        "2",
    ]
    from limo.ablation.study import build_study, compose_command, parse_command

    parsed = parse_command(command[3:])
    study = build_study(compose_command(parsed), parsed)[0]
    assert [a.name for a in study.options.active] == ["curated_50"] and study.options.limit == 64
    assert [a.name for a in study.options.curated] == ["curated", "curated_50"]  # 50 steps: no epoch of `all` needed


def test_the_two_teacher_bench_names_each_teacher_s_model_as_a_writer_of_its_pool(repo_root, tmp_path):
    """bench/experiments/limo_selfpool.py --mix: the ablation reads the concatenated pool, and the writers it counts
    pass rates for are the two teachers' models as limo.evaluate recorded them (``<teacher run>/train/model``)."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("limo_selfpool", repo_root / "bench/experiments/limo_selfpool.py")
    assert spec and spec.loader
    selfpool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(selfpool)
    work = tmp_path / "w"
    flags = argparse.Namespace(mix=True, work=work, backend=None, arms=["curated"], seeds=[0], limit=8, n=None,
                               problems=None)  # fmt: skip
    from limo.ablation.study import compose_command, parse_command

    cfg = compose_command(parse_command(selfpool.ablate_args(flags, work / "pool.jsonl")))
    assert cfg.name == "smol_ablate_selfpool_mix" and cfg.curate.stages.ingest.source == str(work / "pool.jsonl")
    assert cfg.curate.stages.ingest.field_map.generator == "model"
    assert list(cfg.curate.stages.difficulty.strong_models) == [
        str(work / "teacher" / "train" / "model"),
        str(work / "gemma_teacher" / "train" / "model"),
    ]
    names = [a.name for a in cfg.ablate.arms]
    assert names == ["curated", "random_correct", "random_problems", "all_correct", "student_fit", "short"]
    assert cfg.ablate.arms[3].get("seeds") is None and list(cfg.ablate.arms[4].seeds) == [0]  # a screen arm: seed 0
    assert cfg.ablate.compute.steps == 50
    assert cfg.ablate.draw_seeds == "paired" and cfg.output_dir == str(work)
    # `curated` stays LIMO's pipeline (the measured table's arm), though smol_selfpool itself ships all_correct
    assert cfg.curate.method == "limo" and list(cfg.curate.stages.difficulty.strong_pass_rate) == [0.125, 0.75]
    shipped = compose_command(parse_command(["recipe=smol_selfpool"]))
    assert shipped.curate.method == "baseline" and shipped.curate.baseline.kind == "all_correct"
    given = tmp_path / "runs" / "curated" / "seed0"  # a teacher trained elsewhere (--gemma-teacher)
    flags.gemma_teacher = str(given)
    with pytest.raises(SystemExit, match="--gemma-teacher .*no trained model"):
        selfpool.ablate_args(flags, work / "pool.jsonl")
    (given / "train" / "model").mkdir(parents=True)
    (given / "train" / "model" / "config.json").write_text("{}")
    given_cfg = compose_command(parse_command(selfpool.ablate_args(flags, work / "pool.jsonl")))
    assert list(given_cfg.curate.stages.difficulty.strong_models) == [
        str(work / "teacher" / "train" / "model"),
        str(given / "train" / "model"),
    ]


def test_the_second_student_on_the_two_teacher_pool_changes_the_model_and_nothing_the_arms_train_on():
    """gemma_ablate_selfpool_mix: Gemma 3 270M in SmolLM2's place; the pool, its curation, the compute and the
    random draws are smol_ablate_selfpool_mix's, so the two students' tables pair chain for chain."""
    from limo.ablation.study import compose_command, parse_command

    smol = compose_command(parse_command(["recipe=smol_ablate_selfpool_mix"]))
    gemma = compose_command(parse_command(["recipe=gemma_ablate_selfpool_mix"]))
    assert gemma.model.path != smol.model.path and "gemma" in gemma.model.path
    assert gemma.curate.stages.ingest == smol.curate.stages.ingest and gemma.curate.method == smol.curate.method
    assert gemma.curate.stages.difficulty.strong_models == smol.curate.stages.difficulty.strong_models
    assert [a.name for a in gemma.ablate.arms] == ["curated", "random_correct", "all_correct"]
    assert gemma.ablate.base is False and list(gemma.ablate.seeds) == [0, 1, 2]
    arms = {a.name: a for a in gemma.ablate.arms}
    assert (
        arms["random_correct"].n == "curated"
        and arms["random_correct"] == {a.name: a for a in smol.ablate.arms}["random_correct"]
    )
    assert gemma.ablate.compute == smol.ablate.compute and gemma.ablate.draw_seeds == smol.ablate.draw_seeds


# ------------------------------------------------------------------------------------------- the tables


def write_run(folder: Path, verdicts: dict[str, list[bool]], steps: int = 0) -> None:
    """A run folder as limo.train and limo.evaluate leave it: per-sample files (and a training log)."""
    for bench, rights in verdicts.items():
        (folder / "eval" / bench).mkdir(parents=True)
        rows = [
            {"problem_id": f"p{i}", "sample_index": 0, "correct": r, "level": 1 + i % 2} for i, r in enumerate(rights)
        ]
        (folder / "eval" / bench / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if steps:
        (folder / "train").mkdir()
        log = [{"step": s, "num_tokens": 100.0 * s} for s in range(1, steps + 1)]
        (folder / "train" / "log_history.json").write_text(json.dumps(log))


def test_comparisons_take_the_problem_as_the_unit_and_match_a_count_by_hand(tmp_path):
    """Two seeds of ``cur``, two draws at each of two seeds of ``rnd``, the base model's one run: every comparison
    has one difference per problem (seeds averaged, draws averaged within a seed), counted here by hand."""
    from limo.ablation.results import load_run

    runs = {
        ("cur", 0, None): [True, True, False, False, True, False],
        ("cur", 1, None): [True, False, False, True, True, False],
        ("rnd", 0, 0): [False, True, True, False, False, False],
        ("rnd", 0, 1): [True, True, False, False, False, False],
        ("rnd", 1, 0): [False, False, False, True, True, True],
        ("rnd", 1, 1): [False, True, False, True, False, False],
        ("base", None, None): [False, False, False, False, True, False],
    }
    arms: dict[str, list[RunResult]] = {}
    for (arm, seed, draw), rights in runs.items():
        folder = tmp_path / f"{arm}-{seed}-{draw}"
        write_run(folder, {"b": rights}, steps=0 if seed is None else 3)
        arms.setdefault(arm, []).append(load_run(RunSpec(arm, seed, draw, str(folder)), ["b"]))
    parts = {"b": {"first": {"p0", "p1", "p2"}, "rest": {"p3", "p4", "p5"}}}
    pairs = (("cur", "rnd"), ("rnd", "base"))
    payload = to_json(Tables(arms, parts, {"b": ("level",)}, pairs, {"recipe": "t"}))
    found = {(r["a"], r["b"], r["part"]): r for r in payload["pairs"]}

    # cur - rnd per problem, seed 0: (1, 1, 0, 0, 1, 0) - (1/2, 1, 1/2, 0, 0, 0); seed 1: (1, 0, 0, 1, 1, 0) -
    # (0, 1/2, 0, 1, 1/2, 1/2); averaged: (3/4, -1/4, -1/4, 0, 3/4, -1/4): 2 problems for cur, 3 for rnd, 1 tie
    whole = found[("cur", "rnd", None)]
    assert (whole["problems"], whole["problems_a_higher"], whole["problems_b_higher"]) == (6, 2, 3)
    assert whole["difference"] == pytest.approx(0.75 / 6) and whole["accuracy_b"] == pytest.approx(4.5 / 12)
    # |sum| >= 3/4 over the 32 sign patterns of (3/4, 3/4, 1/4, 1/4, 1/4): 8 + 8 with both 3/4 alike, 4 with them apart
    assert whole["p"] == pytest.approx(20 / 32) and whole["p_exact"]
    assert [(s["seed"], s["a_higher"], s["b_higher"]) for s in whole["per_seed"]] == [(0, 2, 1), (1, 2, 2)]
    assert [s["p"] for s in whole["per_seed"]] == [mcnemar_p(2, 1), mcnemar_p(2, 2)]
    first = found[("cur", "rnd", "first")]
    assert (first["problems"], first["problems_a_higher"], first["problems_b_higher"]) == (3, 1, 2)
    # rnd against the base model's one run, problem by problem: (1/4, 3/4, 1/4, 1/2, -3/4, 1/4); 28 of 64 patterns
    base = found[("rnd", "base", None)]
    assert (base["problems"], base["seeds"], base["problems_a_higher"], base["problems_b_higher"]) == (6, [0, 1], 5, 1)
    assert base["p"] == pytest.approx(28 / 64)
    assert [r["p_holm"] for r in payload["pairs"]] == pytest.approx(holm([r["p"] for r in payload["pairs"]]))

    first_run = payload["runs"][0]
    assert first_run["steps"] == 3 and first_run["tokens"] == 300 and first_run["accuracy"]["b"]["correct"] == 3
    assert first_run["accuracy"]["b"]["parts"]["first"]["correct"] == 2
    low, high = first_run["accuracy"]["b"]["wilson"]
    assert low < 0.5 < high
    per_arm = {(r["arm"], r["part"]): r for r in payload["arm_accuracy"]}
    assert per_arm[("rnd", None)]["accuracy"] == pytest.approx(4.5 / 12) and per_arm[("rnd", None)]["problems"] == 6
    levels = [r for r in payload["breakdowns"] if r["arm"] == "cur" and r["value"] == "1"]
    assert levels[0]["accuracy"] == pytest.approx(2 / 3) and levels[0]["problems"] == 3  # p0, p2, p4: 2 of 3


def test_runs_pair_by_seed_with_draws_averaged_and_the_base_model_against_every_seed():
    from limo.ablation.results import align

    def run(arm, seed, draw, rights):
        return RunResult(RunSpec(arm, seed, draw, ""), 0, 0, {"b": {f"p{i}": r for i, r in enumerate(rights)}})

    a = [run("a", 0, None, [1, 1]), run("a", 1, None, [1, 0]), run("a", 2, None, [0, 0])]
    b = [run("b", 0, 0, [1, 0]), run("b", 0, 1, [0, 0]), run("b", 1, 0, [1, 1])]
    paired = align(a, b, "b", None)
    assert paired.seeds == [0, 1] and paired.problems == ["p0", "p1"]  # seed 2: a alone ran it
    assert paired.b.tolist() == [[0.5, 0.0], [1.0, 1.0]]  # seed 0's two draws averaged, never two pairs
    against_base = align(a, [run("base", None, None, [0, 1])], "b", {"p1"})
    assert against_base.seeds == [0, 1, 2] and against_base.b.tolist() == [[1.0], [1.0], [1.0]]


# ------------------------------------------------------------------------------------------- the baselines


def run_baseline(folder: Path, kind: str, n: int | None, seed: int) -> tuple[list[dict], object]:
    """A baseline curated on the authored pool's first 30 problems (five chains each, the careless ones wrong) into
    ``folder``: its curated rows and the method's summary."""
    stages = to_options(
        StageOptions,
        {
            "ingest": {
                "source": POOL,
                "field_map": {"id": "problem_id", "generator": "generator"},
                "problem_limit": 30,
            },
            "decontam": {"enabled": False},
            "report": {"enabled": False},
        },
        where="curate.stages",
    )
    summary = METHODS["baseline"].run(stages, METHODS["baseline"].options(kind, n), RunContext(folder, seed, "t"))
    return [json.loads(line) for line in (folder / "curate" / "curated.jsonl").read_text().splitlines()], summary


def baseline(tmp_path: Path, kind: str, n: int | None, seed: int) -> list[dict]:
    return run_baseline(tmp_path / f"{kind}-{seed}", kind, n, seed)[0]


def test_the_baselines_draw_from_the_cleaned_pool_by_their_seed(tmp_path):
    every = baseline(tmp_path, "all", None, 0)
    correct = baseline(tmp_path, "all_correct", None, 0)
    drawn = baseline(tmp_path, "random_correct", 20, 1)
    assert len(every) == 150 and 0 < len(correct) < len(every)  # 30 problems x 5 chains; the careless ones fail
    assert all(r["verdict"]["correct"] for r in correct) and not all(r["verdict"]["correct"] for r in every)
    assert len(drawn) == 20 and {r["chain_id"] for r in drawn} <= {r["chain_id"] for r in correct}
    assert drawn == baseline(tmp_path / "again", "random_correct", 20, 1)
    assert drawn != baseline(tmp_path, "random_correct", 20, 2)
    messages = (tmp_path / "random_correct-1" / "curate" / "messages.jsonl").read_text().splitlines()
    assert len({json.loads(m)["id"] for m in messages}) == 20  # a problem drawn twice keeps two training rows
    funnel = json.loads((tmp_path / "random_correct-1" / "curate" / "funnel.json").read_text())
    stages = {s["stage"]: s for s in funnel["stages"]}
    assert not stages["difficulty"]["enabled"] and stages["draw"]["items_out"] == 20
    assert funnel["totals"]["read"] == funnel["totals"]["selected"] + funnel["totals"]["dropped"]


# ------------------------------------------------------------------------------------------- the command


def ablate(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return run_group(entry("limo.ablate", *args), cwd=cwd, timeout=timeout, env=env)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "limo.ablate: error: no recipe: python -m limo.ablate recipe=<name>"),
        (
            ("recipe=demo",),
            "limo.ablate: error: recipe 'demo' has no `ablate:` section (recipes with one: ablate_demo",
        ),
        (
            ("recipe=ablate_demo", "ablate.drawz=2"),
            "limo.ablate: error: ablate.drawz: unknown key (did you mean ablate.draws?",
        ),
        (("recipe=ablate_demo", "--jobs", "0"), "limo.ablate: error: --jobs takes a count of at least 1"),
        (("recipe=ablate_demo", "seed=3"), "limo.ablate: error: seed= is set per run by ablate"),
    ],
)
def test_a_bad_command_line_ends_in_one_line(args, message, repo_root, tmp_path):
    done = ablate(*args, f"output_dir={tmp_path}", cwd=repo_root)
    assert done.returncode == 1 and done.stderr.startswith(message), done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "ablate").exists()


def events(out: Path) -> list[dict]:
    path = out / "ablate" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def alive_with(text: str) -> list[int]:
    """PIDs of processes whose command line mentions ``text``."""
    found = []
    for process in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if process.name.isdigit() and text in (process / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(process.name))
    return found


@pytest.mark.slow
def test_ablate_killed_half_way_resumes_without_redoing_and_counts_pairs_right(repo_root, tmp_path, overfit_model_dir):
    """2 arms x 2 seeds of the demo recipe, two runs side by side (--jobs 2), and its RL arm: one GRPO step after
    seed 0's curated run, with its own prompts. The base model is the tiny model taught to answer two prompts, and a
    benchmark of those prompts is declared on the command line, so the verdicts differ between runs (lr 0.01 moves
    each seed's model its own way) and the paired counts are not all zero."""
    toy = tmp_path / "toy.jsonl"
    prompts = ["What is 2 + 3?", "Find x if 2x = 8.", "What is 2 + 3 ?", "Find x if 2x = 8", "what is 2 + 3?"]
    toy.write_text(
        "".join(json.dumps({"id": f"t{i}", "problem": p, "answer": "54"[i % 2]}) + "\n" for i, p in enumerate(prompts))
    )
    out = tmp_path / "out"
    args = (
        "recipe=ablate_demo",
        f"output_dir={out}",
        f"model.path={overfit_model_dir}",
        "train.args.learning_rate=0.01",
        f"benchmark_specs.toy={{source: {toy}, answer_kind: math}}",
        "ablate.primary={pair: [curated, random_correct], benchmark: arith_unseen, part: untouched}",
        "curate.stages.report.plots=false",  # the curations' PNGs: 2 s of CPU each, and nothing here reads them
        "--jobs",
        "2",
    )
    # its own warm workers, not the tests' warm server's forks: a process left behind names the ablation's output
    env = cold_environment() | {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "limo.ablate", *args]
    with subprocess.Popen(
        command, cwd=repo_root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as first:
        deadline = time.monotonic() + 300
        while not any(e["stage"] == "train" and e["event"] == "ran" for e in events(out)):
            assert first.poll() is None and time.monotonic() < deadline, "no training finished"
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)  # the ablation itself, not its group: its entries must die with it
    deadline = time.monotonic() + 30
    while alive_with(str(out)):
        assert time.monotonic() < deadline, f"processes outlived the killed ablation: {alive_with(str(out))}"
        time.sleep(0.2)
    finished = {(e["stage"], e["folder"]) for e in events(out) if e["event"] == "ran"}
    markers = {
        key: (Path(key[1]) / ".ablate" / f"{key[0]}.json").stat().st_mtime_ns
        for key in finished
        if key[0] != "evaluate"
    }
    assert not (out / "ablate" / "results.json").exists()
    before = len(events(out))

    done = ablate(*args, cwd=repo_root, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ran = [(e["stage"], e["folder"]) for e in events(out) if e["event"] == "ran"]
    resumed = events(out)[before:]
    # A step whose entry finished just before the kill, its event not yet logged, is found done on resume: reused.
    settled = set(ran) | {(e["stage"], e["folder"]) for e in resumed if e["event"] == "reused"}
    # two curations, four trainings, four evaluations; the RL run's curation, training and evaluation
    assert len(ran) == len(set(ran)) and len(settled) == 2 + 4 + 4 + 3
    assert all(e["event"] == "reused" for e in resumed if (e["stage"], e["folder"]) in finished)
    assert {k: (Path(k[1]) / ".ablate" / f"{k[0]}.json").stat().st_mtime_ns for k in markers} == markers

    results = json.loads((out / "ablate" / "results.json").read_text())
    assert [(r["arm"], r["steps"]) for r in results["runs"]].count(("curated_rl", 1)) == 1
    assert len(results["runs"]) == 5 and {r["steps"] for r in results["runs"] if r["arm"] != "curated_rl"} == {2}
    rl = out / "ablate" / "runs" / "curated_rl" / "seed0"  # from seed 0's SFT model, on prompts curated for it
    assert f"model.path={out / 'ablate' / 'runs' / 'curated' / 'seed0'}" in (rl / ".ablate" / "train.json").read_text()
    assert (rl / "curate" / "prompts.jsonl").read_text().strip() and (rl / "train" / "prompt_rewards").is_dir()
    verdicts = {}
    for run in results["runs"]:
        for bench in ("arith_heldout", "arith_unseen", "toy"):
            rows = read_rows(Path(run["folder"]) / "eval" / bench / "samples.jsonl")  # the kept run's
            verdicts[(run["arm"], run["seed"], bench)] = {r["problem_id"]: r["correct"] for r in rows}
    assert any(any(v.values()) for v in verdicts.values())  # the taught prompts: some answers right
    for row in (r for r in results["pairs"] if r["part"] is None):
        seeds, bench = (0, 1) if "curated_rl" not in (row["a"], row["b"]) else (0,), row["benchmark"]
        problems = list(verdicts[(row["a"], 0, bench)])
        assert row["seeds"] == list(seeds) and row["problems"] == len(problems)  # each problem once, not per seed
        mean = {
            arm: {p: sum(verdicts[(arm, s, bench)][p] for s in seeds) / len(seeds) for p in problems}
            for arm in (row["a"], row["b"])
        }
        higher = sum(mean[row["a"]][p] > mean[row["b"]][p] for p in problems)
        lower = sum(mean[row["a"]][p] < mean[row["b"]][p] for p in problems)
        assert (row["problems_a_higher"], row["problems_b_higher"]) == (higher, lower), row
        for counts, seed in zip(row["per_seed"], seeds, strict=True):
            mine, theirs = verdicts[(row["a"], seed, bench)], verdicts[(row["b"], seed, bench)]
            a_only = sum(mine[p] and not theirs[p] for p in problems)
            b_only = sum(theirs[p] and not mine[p] for p in problems)
            assert (counts["seed"], counts["a_higher"], counts["b_higher"]) == (seed, a_only, b_only), row
            assert counts["p"] == pytest.approx(mcnemar_p(a_only, b_only))
        assert 0 < row["p"] <= 1
    first = results["pairs"][0]
    assert results["primary"] == {**PRIMARY, "turns": None, "in_table": True}
    assert first["primary"] and first["p_holm"] is None
    assert all(r["p_holm"] >= r["p"] for r in results["pairs"][1:] if r["p"] is not None)
    text = (out / "ablate" / "results.md").read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Primary comparison: curated vs random_correct on arith_unseen untouched"
    assert "| curated vs random_correct |" in text and "| curated_rl vs curated |" in text
    assert "arith_unseen dev" in text and "toy" in text and "| curated_rl | after curated (rl_demo) |" in text
    assert "report-data" in (out / "ablate" / "report.html").read_text()


PRIMARY = {"pair": ["curated", "random_correct"], "benchmark": "arith_unseen", "part": "untouched"}


def demo_study(out: Path) -> Study:
    from limo.ablation.study import Command, build_study, compose_command

    command = Command("ablate_demo", 1, (), ("recipe=ablate_demo", f"output_dir={out}"))
    return build_study(compose_command(command), command)[0]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")  # datatrove 0.10.1's Ray call style
@pytest.mark.parametrize("cluster_engine", ["ray", "slurm"], indirect=True)
def test_the_arms_curations_run_as_cluster_jobs_and_are_reused_after(cluster_engine, tmp_path, request, monkeypatch):
    """One job per curation on a Ray instance or a single-node Slurm (the executor curation uses): each runs
    limo.curate in the engine's worker, not here; run again, every job reuses its arm."""
    from curation.executors import ExecutorOptions
    from limo.ablation.plan import curation_items, curation_waves
    from limo.ablation.study import run_shards

    engine, cluster = request.node.callspec.params["cluster_engine"], cluster_engine
    extra = {}
    if engine == "slurm":
        monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
        extra = {"partition": cluster.partition, "poll_seconds": 0.5}
    executor = ExecutorOptions(kind=engine, workers=2, mem_per_cpu_gb=0.5, **extra)
    study = demo_study(tmp_path)
    waves = curation_waves(study)
    for attempt in range(2):
        for index, wave in enumerate(waves):
            run_shards(f"curate-{index}-{attempt}", curation_items(study, wave), study, executor)
    happened = [(e["event"], e["folder"].rsplit("/ablate/", 1)[1]) for e in events(tmp_path)]
    assert sorted(happened) == [
        ("ran", "arms/curated"),
        ("ran", "arms/random_correct/draw0"),
        ("reused", "arms/curated"),
        ("reused", "arms/random_correct/draw0"),
    ]
    assert all(e["pid"] != os.getpid() for e in events(tmp_path))
    assert len((tmp_path / "ablate/arms/random_correct/draw0/curate/messages.jsonl").read_text().splitlines()) == 16
