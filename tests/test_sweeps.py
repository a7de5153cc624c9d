"""Hydra sweeps (``-m``) as a user types them: each job gets its own run folder, nothing is clobbered, Hydra
leaves nothing in the working directory, the evaluation sweep finds each training job's model, and
``mode=compare`` takes the sweep's folder."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from limo.training.champ_examples import write_champ_messages
from tests.launch import entry

JOBS = (
    "train.args.learning_rate=0.0001,train.args.max_steps=2",
    "train.args.learning_rate=0.001,train.args.max_steps=2",
)


def run(repo_root: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = entry(module, *args)
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_a_learning_rate_sweep_trains_evaluates_and_compares_each_job_in_its_own_folder(
    repo_root, tmp_path, tiny_model_dir
):
    curate = tmp_path / "run" / "curate"
    write_champ_messages(curate / "messages.jsonl", limit=8)  # the sweep's shared curated set, in its run root
    model = (f"model.path={tiny_model_dir}", "model.build_tiny=false")
    sweep = ("-m", "recipe=demo", f"output_dir={tmp_path / 'run'}", *model)
    values = ("train.args.learning_rate=1e-4,1e-3", "train.args.max_steps=2")
    run(repo_root, "limo.train", *sweep, *values)
    folders = sorted(p for p in (tmp_path / "run" / "multirun").iterdir() if p.is_dir())
    endings = [f"learning_rate={lr},train.args.max_steps=2" for lr in ("0.0001", "0.001")]
    assert len(folders) == 2 and all(f.name.endswith(end) for f, end in zip(folders, endings, strict=True))
    assert all("model.path=_tmp" in f.name for f in folders), "a path value stays one folder name"
    histories = [json.loads((f / "train" / "log_history.json").read_text()) for f in folders]
    assert histories[0][0]["learning_rate"] != histories[1][0]["learning_rate"], "each job kept its own value"
    assert not (tmp_path / "run" / "train").exists() and not (repo_root / "multirun").exists()
    run(repo_root, "limo.evaluate", *sweep, *values, "limit=2")
    assert all((f / "eval" / "champ_heldout" / "summary.json").is_file() for f in folders)
    sweep_folder = tmp_path / "run" / "multirun"
    done = run(
        repo_root, "limo.evaluate", "recipe=demo", f"output_dir={tmp_path}", "mode=compare", f"runs=[{sweep_folder}]"
    )
    assert "champ_heldout" in done.stdout and (tmp_path / "compare").is_dir()


def test_an_entry_skips_hydras_mode_probe_only_where_no_recipe_of_the_users_could_set_the_mode(tmp_path):
    """`limo.cli.entry.known_mode`: Hydra's probe (a whole composition to read ``hydra.mode``) is answered None
    without composing on the shipped recipes, and left to Hydra where the user's folders or keys could set it."""
    from hydra._internal.hydra import Hydra

    from limo.cli.entry import known_mode

    probe = Hydra.get_mode
    with known_mode(["recipe=demo", "train.args.max_steps=2", "-m"]):
        assert Hydra.get_mode is not probe and Hydra.get_mode(None, "config", ["recipe=demo"]) is None
    assert Hydra.get_mode is probe
    (tmp_path / "plain" / "recipe").mkdir(parents=True)
    (tmp_path / "plain" / "recipe" / "mine.yaml").write_text("# @package _global_\ndefaults:\n  - demo\n  - _self_\n")
    with known_mode(["--config-dir", str(tmp_path / "plain"), "recipe=mine"]):
        assert Hydra.get_mode is not probe  # the user's files set no mode
    (tmp_path / "moded" / "recipe").mkdir(parents=True)
    (tmp_path / "moded" / "recipe" / "mine.yaml").write_text("# @package hydra\nmode: MULTIRUN\n")
    moded = (["--config-dir", str(tmp_path / "moded"), "recipe=mine"], [f"-cd={tmp_path / 'moded'}", "recipe=mine"])
    for argv in (*moded, ["hydra.mode=MULTIRUN"], ["+hydra.sweeper=x"], ["-cn", "other"]):
        with known_mode(argv):
            assert Hydra.get_mode is probe, argv


def test_a_users_recipe_that_sets_hydras_mode_to_multirun_runs_as_a_sweep(repo_root, tmp_path):
    """Where the probe still runs (a folder of the user's recipes), a recipe's ``hydra.mode: MULTIRUN`` sweeps
    without ``-m``, as Hydra does: one job per value."""
    (tmp_path / "conf" / "recipe").mkdir(parents=True)
    (tmp_path / "conf" / "recipe" / "swept.yaml").write_text(
        "# @package _global_\ndefaults:\n  - demo\n  - _self_\n"
        "hydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n      num_gpus: 1,2\n"
    )
    done = run(repo_root, "limo.plan", "--config-dir", str(tmp_path / "conf"), "recipe=swept",
               f"output_dir={tmp_path / 'out'}")  # fmt: skip
    plans = [line for line in done.stdout.splitlines() if line.startswith(("GPU memory", "verdict:"))]
    assert len(plans) == 4 and "#1 : num_gpus=2 recipe=swept" in done.stdout, done.stdout[-2000:]  # two jobs
