"""Recipe files parsed once per process: Hydra composes a recipe from some thirty YAML files, and reads and parses
each again at every composition. `limo.ablate` composes each step's config to judge it, and its steps compose their
own; in a profile of the ablation tests a fifth of every composition's CPU was PyYAML's (pure-Python) parser working
through the same unchanged files.

`remember` puts a caching `OmegaConf.load` in place (Hydra's file and package config sources both read through it):
a file's text is read every time, as before, and its parse is kept under that text, so a changed file is parsed
again whatever its size or time stamp say. What it returns is what `OmegaConf.load` returned: a new config created
from a copy of the parsed values, which the caller may change. A text PyYAML cannot parse goes to the original
`OmegaConf.load` with the file itself, so the error names the file as before. `preload` parses a folder's YAML files
ahead (the warm server does, for the shipped recipes, so that its forks start with them parsed).
"""

from __future__ import annotations

import copy
import os
import pathlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf._utils import get_yaml_loader

KEPT = 1024  # parsed texts a process keeps (recipe files are a few hundred bytes to a few KB)
_parsed: dict[str, Any] = {}
_original: Callable[..., DictConfig | ListConfig] | None = None


def parse(text: str) -> Any:
    """``text`` as OmegaConf's YAML loader reads it, kept for the next time the same text is read."""
    if text not in _parsed:
        if len(_parsed) >= KEPT:
            del _parsed[next(iter(_parsed))]
        _parsed[text] = yaml.load(text, Loader=get_yaml_loader())  # noqa: S506 - OmegaConf's loader (a SafeLoader)
    return _parsed[text]


def load(file_: str | pathlib.Path | IO[Any]) -> DictConfig | ListConfig:
    """`OmegaConf.load` with the parse kept (see the module's text)."""
    assert _original is not None
    if isinstance(file_, (str, pathlib.Path)):
        with open(os.path.abspath(file_), encoding="utf-8") as handle:
            text = handle.read()
    elif getattr(file_, "read", None) and getattr(file_, "seekable", lambda: False)():
        start = file_.tell()
        read = file_.read()
        text = read.decode("utf-8") if isinstance(read, bytes) else read
        file_.seek(start)  # for the original, should the text not parse
    else:
        return _original(file_)
    try:
        obj = parse(text)
    except (yaml.YAMLError, UnicodeError):
        return _original(file_)
    if obj is not None and not isinstance(obj, (list, dict, str)):
        return _original(file_)  # its own error
    return OmegaConf.create() if obj is None else OmegaConf.create(copy.deepcopy(obj))


def remember() -> None:
    """Put the caching `load` in `OmegaConf.load`'s place (once; later calls change nothing)."""
    global _original
    if _original is None:
        _original = OmegaConf.load
        OmegaConf.load = staticmethod(load)  # type: ignore[assignment,method-assign]


def preload(folder: str | Path) -> int:
    """Parse every ``*.yaml`` file under ``folder`` ahead; returns how many parsed (unreadable or invalid ones are
    left for the composition that reads them to report)."""
    done = 0
    for path in sorted(Path(folder).rglob("*.yaml")):
        try:
            parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, yaml.YAMLError):
            continue
        done += 1
    return done
