"""One error style for every entry point: a data or config error is one line, ``limo.<entry>: error: ...``, and a
non-zero exit; the traceback only when asked for. Each case runs the real entry point, ``python -m limo.<entry>``,
through the test process's warm server where one runs (`tests.launch.entry`: the same run, streams and exit status,
without a second of imports each)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from limo.config.sections import recipe_has, recipe_names
from tests.launch import entry

# Every shipped recipe with a curate: section, its own or through a recipe in its defaults (dpo: discopop's).
CURATE_RECIPES = ", ".join(r for r in recipe_names() if recipe_has(r, "curate"))


def run(repo_root: Path, module: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    if "HYDRA_FULL_ERROR" not in env:
        environ.pop("HYDRA_FULL_ERROR", None)
    command = entry(module, *args)
    return subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600, env=environ)


def one_line_error(done: subprocess.CompletedProcess, entry: str) -> str:
    """The error line, after checking the exit status and that no traceback was printed."""
    assert done.returncode != 0, done.stdout[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"limo.{entry}: error: "), done.stderr[-3000:]
    return last


def test_curate_on_a_recipe_without_a_curate_section_names_the_recipes_that_have_one(repo_root):
    line = one_line_error(run(repo_root, "limo.curate", "recipe=demo"), "curate")
    assert f"recipe 'demo' has no `curate:` section (recipes with one: {CURATE_RECIPES})" in line
    assert line.endswith("recipes/recipe/demo.yaml")


@pytest.mark.parametrize(
    ("entry", "recipe", "section"),
    [("train", "champ", "train"), ("plan", "mammoth2", "train"), ("evaluate", "lemma", "evaluate")],
)
def test_other_entry_points_say_which_section_is_missing(repo_root, entry, recipe, section):
    line = one_line_error(run(repo_root, f"limo.{entry}", f"recipe={recipe}"), entry)
    assert f"recipe '{recipe}' has no `{section}:` section" in line and "demo" in line


def test_a_missing_pool_file_is_named(repo_root, tmp_path):
    missing = tmp_path / "no_such_pool.jsonl"
    done = run(
        repo_root, "limo.curate", "recipe=champ", f"output_dir={tmp_path}", f"curate.stages.ingest.source={missing}"
    )
    line = one_line_error(done, "curate")
    assert line.endswith(f"curate.stages.ingest.source: no such file {missing}, the command line")
    assert not (tmp_path / "curate").exists()


def user_recipe(folder: Path, name: str, ingest: str) -> Path:
    """``folder/recipe/<name>.yaml``: the champ recipe with the ingest section given (a user's own recipe)."""
    path = folder / "recipe" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# @package _global_\ndefaults:\n  - champ\ncurate:\n  stages:\n    ingest:\n{ingest}")
    return path


def alpaca_pool(path: Path) -> Path:
    rows = [
        {"instruction": f"What is {i} + {i}? Say why.", "output": f"It is \\boxed{{{2 * i}}}.", "qid": i}
        for i in range(9)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_typo_in_a_recipe_file_gets_a_did_you_mean_and_the_file(repo_root, tmp_path):
    pool = alpaca_pool(tmp_path / "pool.jsonl")
    recipe = user_recipe(
        tmp_path / "conf", "mine", f"      source: {pool}\n      feild_map: {{problem: instruction}}\n"
    )
    done = run(
        repo_root, "limo.curate", "--config-dir", str(tmp_path / "conf"), "recipe=mine", f"output_dir={tmp_path}"
    )
    line = one_line_error(done, "curate")
    assert line.startswith("limo.curate: error: curate.stages.ingest.feild_map: unknown key (did you mean ")
    assert "curate.stages.ingest.field_map?" in line and line.endswith(f", {recipe}")


def test_a_missing_pool_file_in_a_recipe_names_the_key_the_folder_and_the_recipe(tmp_path):
    conf = tmp_path / "conf"
    recipe = user_recipe(conf, "mine", "      source: data/nope.jsonl\n")
    work = tmp_path / "work"
    work.mkdir()
    done = run(work, "limo.curate", "--config-dir", str(conf), "recipe=mine", f"output_dir={tmp_path / 'out'}")
    line = one_line_error(done, "curate")
    assert (
        f"curate.stages.ingest.source: no such file data/nope.jsonl (looked up in the working directory, {work}"
        in line
    )
    assert line.endswith(f", {recipe}")
    assert not (tmp_path / "out").exists()  # found before any work: no run folder, no empty curate/work/


def test_a_pool_that_fails_to_read_leaves_no_empty_work_folder(repo_root, tmp_path):
    pool = alpaca_pool(tmp_path / "pool.jsonl")
    out = tmp_path / "out"
    done = run(
        repo_root,
        "limo.curate",
        "recipe=champ",
        f"output_dir={out}",
        f"curate.stages.ingest.source={pool}",
        "curate.stages.ingest.field_map={problem: instruction, chain: outptu}",
    )
    line = one_line_error(done, "curate")
    assert "field_map.chain names column 'outptu'" in line and "instruction, output, qid" in line
    assert not out.exists()


def test_a_benchmark_field_map_typo_lists_the_files_own_columns(repo_root, tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(
        "".join(json.dumps({"qid": f"b{i}", "question": f"{i} + 1?", "answer": i + 1}) + "\n" for i in range(3))
    )
    spec = f"benchmark_specs.mine={{source: {bench}, field_map: {{id: qid, problem: questoin}}}}"
    done = run(repo_root, "limo.evaluate", "recipe=demo", "benchmarks=[mine]", spec, f"output_dir={tmp_path}")
    line = one_line_error(done, "evaluate")
    assert "required field 'problem' (source field 'questoin')" in line
    assert line.endswith("did you mean question? its own columns: answer, qid, question")


def test_a_misspelt_key_names_its_path(repo_root, tmp_path):
    done = run(repo_root, "limo.curate", "recipe=lemma", f"output_dir={tmp_path}", "+curate.lemma.plain_ration=1")
    assert "curate.lemma.plain_ration: unknown key" in one_line_error(done, "curate")


def test_curate_without_a_needed_data_dir_says_how_to_fix_it(repo_root, tmp_path):
    done = run(
        repo_root,
        "limo.curate",
        "recipe=champ",
        f"output_dir={tmp_path}",
        "data_dir=null",
        "+curate.stages.ingest.problem_limit=3",
        "curate.stages.decontam.missing=error",
        "curate.stages.decontam.benchmarks=[champ_heldout,math500,minerva]",  # minerva: on the hub, not shipped
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
    )
    line = one_line_error(done, "curate")
    assert "minerva" in line.lower() and "math500" not in line.lower()  # math500 came from limo's shipped copy
    assert "pass data_dir=" in line and line.endswith("curate.stages.decontam")
    assert not (tmp_path / "curate").exists()  # found before any work started


def test_a_pool_that_yields_nothing_is_an_error_and_keeps_its_reasons(repo_root, tmp_path):
    pool = tmp_path / "pool.jsonl"
    rows = [{"id": f"q{i}", "problem": "x?", "answer": "1", "chain": "so \\boxed{1}"} for i in range(3)]
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = run(
        repo_root,
        "limo.curate",
        "recipe=champ",
        f"output_dir={tmp_path}",
        f"curate.stages.ingest.source={pool}",
        "curate.stages.ingest.gold_overrides=null",
        "curate.stages.validate.allowed_settings=[]",
        "++curate.stages.decontam.enabled=false",
    )
    line = one_line_error(done, "curate")
    assert "0 chains selected from 3 items read" in line and line.endswith("curate/funnel.json")
    rejects = [json.loads(r) for r in (tmp_path / "curate" / "rejects.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in rejects if r["kind"] == "chain"} == {"problem_too_short"}


def test_the_traceback_comes_back_when_asked_for(repo_root):
    done = run(repo_root, "limo.curate", "recipe=demo", HYDRA_FULL_ERROR="1")
    assert done.returncode != 0 and "Traceback" in done.stderr and "OptionsError" in done.stderr
    assert "Traceback" in run(repo_root, "limo.curate", "recipe=demo", "debug=true").stderr


def test_curate_on_slurm_without_a_partition_says_which_key(repo_root, tmp_path):
    done = run(repo_root, "limo.curate", "recipe=champ", f"output_dir={tmp_path}", "executor=slurm")
    line = one_line_error(done, "curate")
    assert line.endswith("executor slurm needs a partition (executor.partition=<name>)")


def test_train_without_its_data_names_the_key_and_how_to_make_it(repo_root, tmp_path):
    done = run(repo_root, "limo.train", "recipe=demo", f"output_dir={tmp_path / 'run'}")
    line = one_line_error(done, "train")
    assert f"no training data at {tmp_path / 'run'}/curate/messages.jsonl" in line and line.endswith(", train.data")
    done = run(repo_root, "limo.train", "recipe=demo", "train.data=nope.jsonl", f"output_dir={tmp_path / 'run'}")
    assert "train.data: no such file nope.jsonl (looked up in the working directory" in one_line_error(done, "train")
    assert not (tmp_path / "run").exists()  # nothing loaded, nothing written


def test_discover_with_a_missing_seed_archive_names_the_key_before_the_run_folder(repo_root, tmp_path):
    out = tmp_path / "run"
    done = run(repo_root, "limo.discover", "recipe=discover", f"output_dir={out}", "discover.seed_archive=nope.jsonl")
    line = one_line_error(done, "discover")
    assert line.startswith("limo.discover: error: discover.seed_archive: no such file nope.jsonl (looked up in")
    assert not out.exists()


@pytest.mark.slow
def test_a_typo_in_a_recipe_files_trl_arguments_is_caught_before_training(repo_root, tmp_path):
    recipe = tmp_path / "conf" / "recipe" / "mine.yaml"
    recipe.parent.mkdir(parents=True)
    recipe.write_text("# @package _global_\ndefaults:\n  - demo\ntrain:\n  args:\n    learning_rte: 1.0e-4\n")
    data = tmp_path / "curate" / "messages.jsonl"  # the data is there (a missing file is reported first, sooner)
    data.parent.mkdir()
    data.write_text('{"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]}\n')
    done = run(
        repo_root, "limo.train", "--config-dir", str(tmp_path / "conf"), "recipe=mine", f"output_dir={tmp_path}"
    )
    line = one_line_error(done, "train")
    assert line == (
        "limo.train: error: train.args.learning_rte: not a field of TRL's SFTConfig "
        f"(did you mean train.args.learning_rate?), {recipe}"
    )
