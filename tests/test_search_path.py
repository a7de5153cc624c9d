"""A recipe kept in the user's own folder runs at every entry point, named the ways Hydra names config folders.

``--config-dir DIR``, ``--config-path DIR`` and ``hydra.searchpath=[file://DIR]`` with ``DIR/recipe/<name>.yaml``
(`limo.config.search_path`). The installed-package side is in tests/test_install.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.options import OptionsError
from limo.cli.compose import compose
from limo.cli.overrides import hydra_argv
from limo.config.search_path import search_dirs, shipped_config_dir
from limo.demo import check_argv as demo_argv
from limo.demo import demo_stages
from tests.test_entry_errors import one_line_error, run

CHAMP_BASED = "# @package _global_\ndefaults:\n  - champ\ncurate:\n  stages:\n    select:\n      n: 7\n"
DEMO_BASED = "# @package _global_\ndefaults:\n  - demo\n"


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    (tmp_path / "conf" / "recipe").mkdir(parents=True)
    (tmp_path / "conf" / "recipe" / "my_pool.yaml").write_text(CHAMP_BASED)
    (tmp_path / "conf" / "recipe" / "my_demo.yaml").write_text(DEMO_BASED)
    return tmp_path / "conf"


def folder_args(how: str, conf: Path) -> list[str]:
    return [f"hydra.searchpath=[file://{conf}]"] if how == "hydra.searchpath" else [how, str(conf)]


@pytest.mark.parametrize("how", ["--config-dir", "-cd", "hydra.searchpath"])
def test_the_command_line_check_finds_a_users_recipe(conf, how):
    argv = ["recipe=my_pool", *folder_args(how, conf), "curate.stages.select.n=3"]
    assert "recipe=my_pool" in hydra_argv(argv)


def test_a_users_recipe_composes_over_a_shipped_one(conf):
    cfg = compose("my_pool", config_dirs=[conf])
    assert cfg.name == "my_pool" and cfg.curate.stages.select.n == 7
    assert cfg.curate.stages.ingest.source == "champ"  # from the shipped recipe it extends


@pytest.mark.parametrize("how", ["config_dirs", "hydra.searchpath"])
def test_a_recipe_edited_between_two_compositions_composes_anew_and_each_caller_gets_its_own_copy(
    conf, how, monkeypatch
):
    """`compose` keeps what it composed (an ablation composes each step several times): an edit to a recipe file,
    an environment variable a recipe reads, or a caller changing its config must not show in the next one."""

    def composed(*extra: str):
        if how == "config_dirs":
            return compose("my_pool", list(extra), config_dirs=[conf])
        return compose("my_pool", [*extra, f"hydra.searchpath=[file://{conf}]"])

    first = composed()
    assert first.curate.stages.select.n == 7
    first.curate.stages.select.n = 99  # the caller's copy
    assert composed().curate.stages.select.n == 7
    (conf / "recipe" / "my_pool.yaml").write_text(CHAMP_BASED.replace("n: 7", "n: 11"))
    assert composed().curate.stages.select.n == 11
    assert composed("curate.stages.select.n=5").curate.stages.select.n == 5
    monkeypatch.setenv("LIMO_CACHE", str(conf / "cache"))  # recipes/model/tiny.yaml reads it
    assert compose("demo", ["model=tiny"]).model.path == str(conf / "cache" / "tiny-qwen2-seed0")
    monkeypatch.setenv("LIMO_CACHE", str(conf / "elsewhere"))
    assert compose("demo", ["model=tiny"]).model.path == str(conf / "elsewhere" / "tiny-qwen2-seed0")


def test_a_composition_is_kept_across_variables_no_recipe_reads_and_made_anew_in_another_folder(conf, monkeypatch):
    """The kept compositions are keyed by the variables the recipes read (a test runner changes others between
    tests), by all of them when a recipe names its variable through an interpolation, and by the working folder
    (Hydra's ``runtime.cwd``)."""
    import limo.cli.compose as composing

    made: list[list[str]] = []
    real = composing.hydra_compose

    def counted(*args, **kwargs):
        made.append(list(kwargs["overrides"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(composing, "hydra_compose", counted)
    monkeypatch.setenv("LIMO_NOT_READ_BY_ANY_RECIPE", "1")
    compose("my_pool", config_dirs=[conf])
    monkeypatch.setenv("LIMO_NOT_READ_BY_ANY_RECIPE", "2")
    assert compose("my_pool", config_dirs=[conf]).curate.stages.select.n == 7 and len(made) == 1
    monkeypatch.chdir(conf)
    compose("my_pool", config_dirs=[conf])
    assert len(made) == 2  # another working folder
    indirect = CHAMP_BASED + "which: LIMO_NOT_READ_BY_ANY_RECIPE\nread: ${oc.env:${which}}\n"
    (conf / "recipe" / "my_pool.yaml").write_text(indirect)
    assert compose("my_pool", config_dirs=[conf]).read == "2" and len(made) == 3
    monkeypatch.setenv("LIMO_NOT_READ_BY_ANY_RECIPE", "3")
    assert compose("my_pool", config_dirs=[conf]).read == "3" and len(made) == 4


def test_a_misspelt_users_recipe_names_the_closest_and_every_folder_searched(conf):
    with pytest.raises(OptionsError) as err:
        hydra_argv(["recipe=my_pol", "--config-dir", str(conf)])
    message = str(err.value)
    assert message.startswith("recipe=my_pol: no such recipe (did you mean my_pool or my_demo?")
    assert f"searched {shipped_config_dir() / 'recipe'}/, {conf / 'recipe'}/" in message


def test_a_recipe_next_to_the_recipe_folder_is_pointed_at(conf):
    (conf / "stray.yaml").write_text(DEMO_BASED)
    with pytest.raises(OptionsError, match=r"stray.yaml is not read: put it in .*/conf/recipe/"):
        hydra_argv(["recipe=stray", "-cd", str(conf)])


def test_folder_flags_move_to_the_front_and_become_absolute(conf, monkeypatch):
    monkeypatch.chdir(conf.parent)
    argv = hydra_argv(["recipe=my_pool", "--config-dir", "conf", "seed=3", "--config-dir=conf"])
    assert argv == ["--config-dir", str(conf), "--config-dir", str(conf), "recipe=my_pool", "seed=3"]
    assert search_dirs(argv) == [shipped_config_dir(), conf]


def test_a_config_path_without_config_yaml_is_read_as_a_recipe_folder(conf, capsys):
    assert hydra_argv(["-cp", str(conf), "recipe=my_pool"]) == ["--config-dir", str(conf), "recipe=my_pool"]
    assert "has no config.yaml: reading it as a folder of your own recipes" in capsys.readouterr().err
    full = conf.parent / "full"
    full.mkdir()
    (full / "config.yaml").write_text("{}\n")
    assert hydra_argv(["--config-path", str(full)]) == ["--config-path", str(full)]  # the user's own root


def test_the_demo_passes_config_folders_to_every_stage(conf):
    config_args = demo_argv(["output_dir=x", "-cd", str(conf), f"hydra.searchpath=[file://{conf}]"])
    assert config_args == ["-cd", str(conf), f"hydra.searchpath=[file://{conf}]"]
    assert all(stage.args[:3] == tuple(config_args) for stage in demo_stages("x", None, config_args))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("entry", "recipe", "missing", "how"),
    [
        ("curate", "my_demo", "curate", "--config-dir"),
        ("train", "my_pool", "train", "--config-path"),
        ("evaluate", "my_pool", "evaluate", "hydra.searchpath"),
        ("discover", "my_pool", "discover", "--config-dir"),
        ("plan", "my_pool", "train", "hydra.searchpath"),
    ],
)
def test_every_entry_point_composes_a_users_recipe(repo_root, conf, entry, recipe, missing, how):
    """The user's recipe composes (the section check runs on it and names its file) at each entry point."""
    line = one_line_error(run(repo_root, f"limo.{entry}", f"recipe={recipe}", *folder_args(how, conf)), entry)
    assert f"recipe '{recipe}' has no `{missing}:` section" in line
    assert line.endswith(str(conf / "recipe" / f"{recipe}.yaml"))
