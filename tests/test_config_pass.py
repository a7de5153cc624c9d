"""One typed config pass: Hydra composes a run's config once, and the options schema checks the command line
without composing it again (`limo.cli.overrides.hydra_argv`): unknown keys, closest names and map replacement.

Compositions are counted where Hydra does every one of them, `ConfigLoaderImpl.load_configuration` (both
``@hydra.main`` and the compose API call it), in the real entry point run as a user runs it. Hydra 1.3's
``@hydra.main`` also composes before every run to read ``hydra.mode`` (``Hydra.get_mode``, called by
``hydra._internal.utils._run_hydra``, whose result only picks run or multirun): that probe is counted apart, and on
the shipped recipes it is answered without composing (`limo.cli.entry.known_mode`: none sets the key), so the runs
here count none. Before this pass, limo composed once more for its own check, and once more per override the recipe
lacked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl

from eval.options import OptionsError
from limo.cli.compose import compose
from limo.cli.overrides import hydra_argv
from limo.setup.curate import build_curation
from tests.test_entry_errors import one_line_error

# Runs ``python -m <module> <args>`` with every composition counted, Hydra's mode probes apart; the counts are
# stderr's last line.
COUNTED_RUN = """
import atexit, runpy, sys, traceback
from hydra._internal.config_loader_impl import ConfigLoaderImpl
load, calls = ConfigLoaderImpl.load_configuration, []
def counted(self, *args, **kwargs):
    calls.append(any(frame.name == "get_mode" for frame in traceback.extract_stack()))
    return load(self, *args, **kwargs)
ConfigLoaderImpl.load_configuration = counted
atexit.register(lambda: print(f"compositions: {calls.count(False)} {calls.count(True)}", file=sys.stderr))
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def counted_run(repo_root: Path, module: str, *args: str) -> tuple[subprocess.CompletedProcess, int]:
    """The entry point's result with the count line taken off stderr, and the number of compositions.

    Hydra's mode probe is checked apart: none, the shipped recipes setting no ``hydra.mode`` (`known_mode`).
    """
    command = [sys.executable, "-c", COUNTED_RUN, module, *args]
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600)
    *rest, last = done.stderr.rstrip("\n").split("\n")
    assert last.startswith("compositions: "), done.stderr[-3000:]
    done.stderr = "\n".join(rest)
    compositions, probes = map(int, last.removeprefix("compositions: ").split())
    assert probes == 0, last
    return done, compositions


@pytest.mark.slow
def test_curate_composes_its_config_once(repo_root, tmp_path):
    """Overrides the recipe leaves at their default (each cost a composition of its own before) included."""
    done, compositions = counted_run(
        repo_root, "limo.curate", "recipe=champ", "dry_run=true", "dry_run_problems=10", f"output_dir={tmp_path}",
        "curate.stages.ingest.problem_limit=3", "curate.stages.select.n=5", "executor=local",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Rollout plan" in done.stdout
    assert compositions == 1


@pytest.mark.parametrize(
    ("entry", "args", "says"),
    [
        ("train", ["recipe=demo", "train.data=nope.jsonl", "train.args.max_steps=2"], "train.data: no such file"),
        (
            "evaluate",
            ["recipe=demo", "mode=regrade", "responses=nope.jsonl", "problems=champ"],
            "responses=nope.jsonl",
        ),
    ],
)
def test_train_and_evaluate_compose_their_config_once(repo_root, tmp_path, entry, args, says):
    """Up to the first check on the built options, which fails here on a missing file, before any work."""
    done, compositions = counted_run(repo_root, f"limo.{entry}", *args, f"output_dir={tmp_path}")
    assert says in one_line_error(done, entry)
    assert compositions == 1


def test_an_unknown_key_is_one_line_with_the_closest_field_and_nothing_composed(repo_root, tmp_path):
    done, compositions = counted_run(
        repo_root, "limo.curate", "recipe=champ", "curate.stages.select.nn=3", f"output_dir={tmp_path}"
    )
    line = one_line_error(done, "curate")
    assert line.startswith("limo.curate: error: curate.stages.select.nn: unknown key (did you mean curate.stages.")
    assert compositions == 0


def test_compose_composes_once_whatever_the_overrides(monkeypatch):
    load, calls = ConfigLoaderImpl.load_configuration, []

    def counted(self, *args, **kwargs):
        calls.append(1)
        return load(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    overrides = [
        "curate.stages.ingest.problem_limit=3",
        "curate.stages.select.n=5",
        "curate.stages.dedup.enabled=false",
    ]
    cfg = compose("champ", overrides)
    assert cfg.curate.stages.ingest.problem_limit == 3 and cfg.curate.stages.dedup.enabled is False
    assert len(calls) == 1


def test_a_map_override_replaces_the_recipes_map_in_the_built_options(tmp_path):
    """pool_math maps ``chain: solution, difficulty: level``: the override's map is the whole map, not merged in."""
    assert dict(compose("pool_math").curate.stages.ingest.field_map) == {"chain": "solution", "difficulty": "level"}
    override = "curate.stages.ingest.field_map={problem: question, subject: topic}"
    (tmp_path / "pool.jsonl").write_text("")
    curation = build_curation(
        compose("pool_math", [override, f"curate.stages.ingest.source={tmp_path / 'pool.jsonl'}"])
    )
    assert curation.stages.ingest.field_map == {"problem": "question", "subject": "topic"}


def test_a_single_key_of_a_map_still_merges():
    cfg = compose("pool_math", ["curate.stages.ingest.field_map.subject=topic"])
    merged = dict(compose("pool_math").curate.stages.ingest.field_map, subject="topic")
    assert dict(cfg.curate.stages.ingest.field_map) == merged


@pytest.mark.parametrize(
    ("arg", "starts"),
    [
        ("curate.stages.selct.n=3", "curate.stages.selct: unknown key (did you mean curate.stages.select?"),
        ("curat.stages.select.n=3", "curat: unknown key (did you mean curate?"),
        ("curate.methd=limo", "curate.methd: unknown key (did you mean curate.method?"),
        ("model.pathh=x", "model.pathh: unknown key (did you mean model.path?"),
        ("benchmark_specs.math500.splitt=x", "benchmark_specs.math500.splitt: unknown key (did you mean"),
        ("train.args_=x", "train.args_: unknown key (did you mean train.args?"),
    ],
)
def test_the_schema_names_the_closest_key_at_every_level(arg, starts):
    with pytest.raises(OptionsError) as err:
        hydra_argv(["recipe=champ", arg])
    assert str(err.value).startswith(starts) and "\n" not in str(err.value)
