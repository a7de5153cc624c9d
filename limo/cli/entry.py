"""One error style for every entry point: a data or configuration error is one line and a non-zero exit.

``limo.<entry>: error: <what>, <where>`` on stderr, exit status 1; earlier results stay on disk. A traceback
only when asked for: ``HYDRA_FULL_ERROR=1`` (Hydra's own switch), ``LIMO_DEBUG=1`` or ``debug=true`` on
the command line. What counts as expected is `EXPECTED_ERRORS`: bad input (`DataError`, `OptionsError`
and other `ValueError`s), missing files, an unreachable server, a replay file that lacks an answer, a
missing optional package, a config key that does not exist, an executor that cannot run or shards that did
not finish (the message names them and their logs). Anything else is a bug and keeps its traceback. An
options error whose key a recipe file sets ends with that file (`limo.config.files.key_source`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from curation.executors import ExecutorError
from eval.backends.openai import BackendUnavailableError
from eval.backends.replay import ReplayMissError
from eval.options import OptionsError
from limo.cli.overrides import hydra_argv
from limo.cli.usage import exit_if_help
from limo.config import parsed
from limo.config.files import key_source
from limo.config.search_path import user_config_dirs
from limo.config.sections import CONFIG_DIR

log = logging.getLogger("limo")
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    OSError,
    ImportError,
    BackendUnavailableError,
    ReplayMissError,
    OmegaConfBaseException,
    ExecutorError,
)


def debug_requested(cfg: Any = None) -> bool:
    """Whether the user asked for tracebacks (``HYDRA_FULL_ERROR=1``, ``LIMO_DEBUG=1`` or ``debug=true``)."""
    flag = bool(cfg.get("debug")) if cfg is not None and hasattr(cfg, "get") else False
    return flag or os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("LIMO_DEBUG") == "1"


def one_line(err: BaseException) -> str:
    """The error's message on one line (a multi-line message joined with ``; ``)."""
    text = str(err) or type(err).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


@contextmanager
def reported_errors(entry: str, cfg: Any = None) -> Iterator[None]:
    """Turn an expected error inside the block into ``limo.<entry>: error: ...`` and exit status 1."""
    try:
        yield
    except EXPECTED_ERRORS as err:
        if debug_requested(cfg):
            raise
        log.debug("limo.%s failed", entry, exc_info=True)
        sys.exit(f"limo.{entry}: error: {one_line(err)}{set_in(err)}")


def set_in(err: BaseException) -> str:
    """``, <recipe file>`` for an options error whose key a recipe file sets (a typo there), else nothing."""
    source = key_source(err.key) if isinstance(err, OptionsError) and err.key else None
    return f", {source}" if source else ""


def hydra_entry(
    entry: str, runtime_keys: Sequence[str] = ()
) -> Callable[[Callable[[DictConfig], None]], Callable[[], None]]:
    """``@hydra.main`` on the recipes, with the command line checked first against the options schema
    (`limo.cli.overrides.hydra_argv`, which composes nothing): the run's config is composed once, by Hydra (which
    composes once before to read ``hydra.mode`` where a user's recipe may set it: `known_mode`).

    An unknown recipe, group option or key ends with one ``limo.<entry>: error: ...`` line naming the
    closest names and the folders searched; an option the recipe leaves at its default needs no ``+``; a
    whole-map ``field_map={...}`` override replaces the recipe's map. ``runtime_keys`` are the entry's
    run-time arguments (``limit=``), which no recipe declares. A user's recipes come from ``--config-dir DIR``,
    ``--config-path DIR`` or ``hydra.searchpath=[file://DIR]`` (`limo.config.search_path`). ``--help`` (``-h``) prints
    the entry's help (`limo.cli.usage`) instead of Hydra's listing of the whole config (still ``--cfg job``).
    """

    def decorate(task: Callable[[DictConfig], None]) -> Callable[[], None]:
        typed: list[str] = []

        @functools.wraps(task)  # Hydra finds the task's module through __wrapped__
        def as_typed(cfg: DictConfig) -> None:
            sys.argv[1:] = typed  # Hydra has read its lines: the run (report.html's command line) sees the user's
            task(cfg)

        run = hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base=None)(as_typed)

        @functools.wraps(task)
        def main() -> None:
            exit_if_help(entry, sys.argv[1:])
            typed[:] = sys.argv[1:]
            with reported_errors(entry):
                sys.argv[1:] = hydra_argv(typed, runtime_keys)
            parsed.remember()  # each recipe file's YAML parsed once a process (a warm fork's: once a server)
            with known_mode(sys.argv[1:]):
                run()

        return main

    return decorate


NAMED_CONFIG = ("--config-name", "-cn")  # another primary config than ours: Hydra probes it
SETS_A_MODE = re.compile(r"^\s*mode\s*:", re.MULTILINE)  # a ``mode:`` key in a config file (``hydra.mode`` or not)


@contextmanager
def known_mode(argv: Sequence[str]) -> Iterator[None]:
    """Hydra composes the whole config once before the run only to read ``hydra.mode`` (`Hydra.get_mode`, its probe:
    about 0.2 s of an entry's start). No shipped recipe sets that key (tests/test_recipes.py checks every one): where
    the command line names no ``hydra`` key and no other primary config, and no file in the user's config folders
    has a ``mode:`` key at all, the probe's answer is known, None (the run's mode is then ``--multirun``'s or a single
    run, Hydra's own rule), and it is not composed. Elsewhere Hydra probes as ever."""
    from hydra._internal.hydra import Hydra

    if mode_may_be_set(argv):
        yield
        return
    probe = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hydra.get_mode = probe  # type: ignore[method-assign]


def mode_may_be_set(argv: Sequence[str]) -> bool:
    """Whether ``argv`` names a ``hydra`` key, another primary config, or a config folder of the user's holding a
    file with a ``mode:`` key (``hydra.mode`` may come from there)."""
    keys = [arg.split("=", 1)[0].lstrip("+~") for arg in argv]
    if any(arg.startswith(NAMED_CONFIG) for arg in argv) or any(re.split(r"[./]", k)[0] == "hydra" for k in keys):
        return True
    files = (path for folder in user_config_dirs(argv) for path in sorted(folder.rglob("*.yaml")))
    return any(sets_a_mode(path) for path in files)


def sets_a_mode(path: Path) -> bool:
    """Whether the config file at ``path`` has a ``mode:`` key; one that cannot be read here may (Hydra reads it)."""
    try:
        return SETS_A_MODE.search(path.read_text(errors="replace")) is not None
    except OSError:
        return True
