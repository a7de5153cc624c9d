"""limo.config.parsed: a recipe file's YAML parsed once a process, and what `OmegaConf.load` returns unchanged."""

from __future__ import annotations

import io
import os

import pytest
import yaml
from omegaconf import OmegaConf

from limo.cli.compose import compose
from limo.config import parsed
from limo.config.sections import CONFIG_DIR


@pytest.fixture(autouse=True)
def remembering():
    parsed.remember()
    assert parsed._original is not None


def test_every_shipped_file_loads_as_the_original_load_gives_it():
    files = sorted(CONFIG_DIR.rglob("*.yaml"))
    assert len(files) > 50
    for path in files:
        original = parsed._original(path)
        for given in (path, str(path)):
            loaded = OmegaConf.load(given)
            assert type(loaded) is type(original) and OmegaConf.to_container(loaded) == OmegaConf.to_container(
                original
            ), path
        with open(path, encoding="utf-8") as handle:
            handle.read(100)
            handle.seek(0)
            assert OmegaConf.to_container(OmegaConf.load(handle)) == OmegaConf.to_container(original), path


def test_a_text_is_parsed_once_and_each_load_gets_a_config_of_its_own(tmp_path, monkeypatch):
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  lr: 0.001\n  tags: [a, b]\n")
    calls = []
    real = yaml.load
    monkeypatch.setattr(parsed.yaml, "load", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = OmegaConf.load(path)
    first.train.lr = 9.0
    first.train.tags.append("c")
    second = OmegaConf.load(path)
    assert OmegaConf.to_container(second) == {"train": {"lr": 0.001, "tags": ["a", "b"]}}
    assert len(calls) == 1


def test_a_changed_file_is_parsed_again_whatever_its_size_and_time_say(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("seed: 1\n")
    stat = os.stat(path)
    assert OmegaConf.load(path).seed == 1
    path.write_text("seed: 2\n")  # the same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same time stamp
    assert OmegaConf.load(path).seed == 2


def test_a_file_that_does_not_parse_gets_the_original_error_naming_it(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("a: [1, 2\n")
    with pytest.raises(yaml.YAMLError) as err:
        OmegaConf.load(path)
    assert "broken.yaml" in str(err.value)
    with pytest.raises(IOError, match="Invalid loaded object type: int"):
        OmegaConf.load(io.StringIO("3\n"))
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert OmegaConf.to_container(OmegaConf.load(empty)) == {}


def test_a_composition_reads_a_changed_user_recipe(tmp_path):
    (tmp_path / "recipe").mkdir()
    user = tmp_path / "recipe" / "mine.yaml"
    user.write_text("# @package _global_\ndefaults:\n  - demo\n  - _self_\ncurate: {stages: {select: {n: 11}}}\n")
    assert compose("mine", config_dirs=[tmp_path]).curate.stages.select.n == 11
    user.write_text("# @package _global_\ndefaults:\n  - demo\n  - _self_\ncurate: {stages: {select: {n: 123}}}\n")
    assert compose("mine", config_dirs=[tmp_path]).curate.stages.select.n == 123
