"""Command-line mistakes are one line with the closest names and the syntax that works (`limo.cli.overrides`).

Compositions are counted, and the rest of the one config pass is shown, in tests/test_config_pass.py."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from eval.options import OptionsError
from limo.cli.compose import compose
from limo.cli.overrides import EVALUATE_RUNTIME, hydra_argv
from tests.test_entry_errors import one_line_error, run


def refusal(*argv: str, runtime_keys: tuple[str, ...] = ()) -> str:
    with pytest.raises(OptionsError) as err:
        hydra_argv(list(argv), runtime_keys)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_an_unknown_recipe_names_the_closest_recipes():
    message = refusal("recipe=limoo")
    assert message.startswith("recipe=limoo: no such recipe (did you mean limo or limo_lora or limr?")


def test_an_unknown_group_option_names_the_closest():
    assert "did you mean ray?" in refusal("recipe=limo", "executor=rayy")


def test_a_misspelt_key_names_the_key_it_resembles_and_the_syntax():
    message = refusal("recipe=limo", "curate.stages.select.nn=3")
    assert message.startswith("curate.stages.select.nn: unknown key (did you mean curate.stages.select.n?")
    assert "set one as curate.stages.select.<key>=<value>" in message and "+curate" not in message


def test_an_option_the_recipe_leaves_at_its_default_needs_no_plus():
    """Every key the schema declares is forced: the recipe may or may not set it, and the dataclass checks it."""
    argv = hydra_argv(["recipe=champ", "curate.stages.ingest.problem_limit=3", "curate.stages.select.n=5"])
    assert argv == ["recipe=champ", "++curate.stages.ingest.problem_limit=3", "++curate.stages.select.n=5"]
    assert compose("champ", argv[1:]).curate.stages.ingest.problem_limit == 3
    assert compose("champ", ["curate.stages.ingest.problem_limit=3"]).curate.stages.ingest.problem_limit == 3


def test_a_new_key_of_a_free_map_needs_no_plus():
    argv = hydra_argv(["recipe=limo", "curate.stages.ingest.field_map.difficulty=level"])
    assert argv == ["recipe=limo", "++curate.stages.ingest.field_map.difficulty=level"]


def test_group_choices_sweeps_and_keys_outside_the_schema_pass_unchanged():
    argv = ["recipe=limo", "executor=ray", "curate.stages.select.n=3,4", "seed=1,2", "model.path=x", "-m"]
    assert hydra_argv(argv) == argv


def test_a_whole_map_override_may_add_keys_the_recipe_map_lacks():
    wanted = {"problem": "question", "answer": "final_answer", "subject": "topic"}
    cfg = compose(
        "pool_math", ["curate.stages.ingest.field_map={problem: question, answer: final_answer, subject: topic}"]
    )
    assert cfg.curate.stages.ingest.field_map == wanted


@pytest.mark.slow
def test_the_entry_point_prints_one_line_for_an_unknown_recipe(repo_root):
    line = one_line_error(run(repo_root, "limo.plan", "recipe=limoo"), "plan")
    assert "did you mean limo or limo_lora or limr?" in line


def test_the_demo_refuses_an_argument_it_would_ignore():
    from limo.demo import check_argv

    check_argv(["output_dir=x", "data_dir=y"])
    with pytest.raises(SystemExit, match=r"limo.demo: error: unknown argument 'outputdir=x'"):
        check_argv(["outputdir=x"])


def recommended_commands(text: str) -> list[list[str]]:
    return [shlex.split(c) for c in re.findall(r"`((?:python -m limo\.|make )[^`]*)`", text)]


def python_commands(words: list[str], repo_root, tmp_path) -> list[list[str]]:
    """``python -m limo.X ...`` as is; a make target run with PY=echo, giving the commands it would run."""
    if words[0] == "python":
        return [words[2:]]
    stamp = tmp_path / "stamp"
    stamp.touch()  # newer than pyproject.toml: make's setup does nothing
    done = subprocess.run(
        ["make", *words[1:], "PY=echo", f"STAMP={stamp}"], cwd=repo_root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{' '.join(words)} exits {done.returncode}: {done.stdout}{done.stderr}"
    lines = [shlex.split(line) for line in done.stdout.splitlines() if line.startswith("-m limo.")]
    assert lines, done.stdout
    return [line[1:] for line in lines]


@pytest.mark.slow  # runs make and the memory planner (DeepSpeed import)
def test_every_command_the_demo_report_recommends_runs(repo_root, tmp_path):
    from limo.demo import demo_report, demo_stages
    from limo.plan import plan

    stages = demo_stages("outputs/demo")
    commands = recommended_commands(demo_report(stages, [1.0] * len(stages), "outputs/demo"))
    assert len(commands) >= 2
    for words in commands:
        for module, *args in python_commands(words, repo_root, tmp_path):
            if module == "limo.explore":
                assert all(a.startswith("run_dir=") for a in args), words
                continue
            args = hydra_argv(args)
            recipe = next(a.split("=", 1)[1] for a in args if a.startswith("recipe="))
            cfg = compose(recipe, [a for a in args if not a.startswith("recipe=")])
            if module == "limo.plan":
                assert plan(cfg).startswith(f"limo plan: recipe {recipe}")


def test_a_misspelt_run_time_argument_names_the_one_it_resembles():
    assert refusal("recipe=demo", "limitt=3", runtime_keys=EVALUATE_RUNTIME).startswith(
        "limitt: unknown key (did you mean limit?"
    )
    assert hydra_argv(["recipe=demo", "limit=3"], EVALUATE_RUNTIME) == ["recipe=demo", "++limit=3"]
