"""Where recipes are found: the shipped config folder, then every folder the user adds the way Hydra takes them.

The shipped folder is the repository's ``recipes/`` in a source checkout (editable install), or the copy
installed with the package (``limo/recipes/``, put there by setup.py's build step) after ``pip install .``:
`shipped_config_dir` picks whichever exists, so ``python -m limo.curate recipe=champ`` runs from any folder.

A user's own folder holds ``recipe/<name>.yaml`` (and may hold ``model/``, ``benchmark/``, ... like ours) and is
named on the command line as Hydra names config folders: ``hydra.searchpath=[file:///my/conf]``,
``--config-dir /my/conf`` (``-cd``), or ``--config-path /my/conf`` (``-cp``). Hydra reads the first two itself;
``--config-path`` replaces Hydra's primary folder, which then lacks our ``config.yaml``, so `split_folder_flags`
reads a ``--config-path`` folder without a ``config.yaml`` as a ``--config-dir`` one and says so on stderr.
Our checks that run before Hydra composes (`limo.cli.overrides`: closest-name hints for a misspelt recipe) and
the messages naming recipes (`limo.config.sections.section`) look in the same folders, in `search_dirs`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # limo/: an installed copy holds recipes/ there
DIR_FLAGS = ("--config-dir", "-cd")
PATH_FLAGS = ("--config-path", "-cp")
HYDRA_OWN = ("hydra", "main", "schema")  # config sources that are not a user's folder


def shipped_config_dir() -> Path:
    """The shipped recipes: the installed copy (``limo/recipes``) or the source tree's ``recipes/``."""
    installed = PACKAGE_DIR / "recipes"
    return installed if (installed / "config.yaml").is_file() else PACKAGE_DIR.parent / "recipes"


def split_folder_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the config-folder flags with absolute folders, every other argument), each in the order given.

    Hydra takes a relative ``--config-path`` from the entry point's module file, not from where the user
    stands; both flags are made absolute from the working directory, which is what a user means. The caller puts
    the flags first: Hydra's argument parser refuses overrides on both sides of a flag.
    """
    flags: list[str] = []
    rest: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        flag, value = _flag_value(arg, args)
        if flag is None:
            rest.append(arg)
            continue
        folder = Path(value).expanduser().resolve()
        if flag in PATH_FLAGS and not (folder / "config.yaml").is_file():
            print(
                f"limo: {flag} {value} has no config.yaml: reading it as a folder of your own recipes beside the "
                f"shipped ones (as --config-dir {folder})",
                file=sys.stderr,
            )
            flag = "--config-dir"
        flags += [flag, str(folder)]
    return flags, rest


def _flag_value(arg: str, rest: list[str]) -> tuple[str | None, str]:
    """(flag, folder) when ``arg`` is a config-folder flag (``-cd X``, ``--config-dir=X``), X taken from ``rest``."""
    name, eq, value = arg.partition("=")
    if name not in (*DIR_FLAGS, *PATH_FLAGS):
        return None, ""
    if eq:
        return name, value
    if not rest:
        return None, ""  # Hydra reports the missing value itself
    return name, rest.pop(0)


def user_config_dirs(argv: Sequence[str]) -> list[Path]:
    """The user's config folders named in ``argv`` (``--config-dir``/``-cd``, ``hydra.searchpath=[...]``)."""
    dirs: list[Path] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        flag, value = _flag_value(arg, args)
        if flag is not None:
            dirs.append(Path(value).expanduser().resolve())
        elif arg.lstrip("+").startswith("hydra.searchpath="):
            dirs += [d for d in map(_searchpath_dir, _list_items(arg.split("=", 1)[1])) if d is not None]
    return dirs


def _list_items(value: str) -> list[str]:
    return [v.strip().strip("'\"") for v in value.strip().strip("[]").split(",") if v.strip()]


def _searchpath_dir(entry: str) -> Path | None:
    """A ``hydra.searchpath`` entry as a folder: ``file://DIR`` or a bare path; ``pkg://a.b`` via its package."""
    if entry.startswith("pkg://"):
        import importlib.util

        spec = importlib.util.find_spec(entry[len("pkg://") :].split("/")[0])
        locations = list(spec.submodule_search_locations or []) if spec else []
        return Path(locations[0]) if locations else None
    return Path(entry.removeprefix("file://")).expanduser().resolve()


def searchpath_overrides(dirs: Sequence[Path]) -> list[str]:
    """The override that gives Hydra's compose API the folders ``--config-dir`` gives ``@hydra.main``."""
    return [f"hydra.searchpath=[{','.join(f'file://{d}' for d in dirs)}]"] if dirs else []


def search_dirs(argv: Sequence[str] | None = None) -> list[Path]:
    """Every config folder, shipped first: from ``argv`` when given, else from the running Hydra job."""
    if argv is not None:
        user = user_config_dirs(argv)
    elif HydraConfig.initialized():
        sources = HydraConfig.get().runtime.config_sources
        found = [_searchpath_dir(f"{s.schema}://{s.path}") for s in sources if s.provider not in HYDRA_OWN and s.path]
        user = [d for d in found if d is not None]
    else:
        user = []
    shipped = shipped_config_dir()
    return [shipped, *[d for d in dict.fromkeys(user) if d != shipped]]


def group_options(group: str, dirs: Sequence[Path]) -> list[str]:
    """The names a config group offers across ``dirs`` (``recipe`` -> every ``recipe/<name>.yaml``)."""
    return sorted({p.stem for d in dirs for p in (d / group).glob("*.yaml")})


def config_groups(dirs: Sequence[Path]) -> list[str]:
    return sorted({p.name for d in dirs if d.is_dir() for p in d.iterdir() if p.is_dir() and any(p.glob("*.yaml"))})


def find_config(group: str, name: str, dirs: Sequence[Path]) -> Path | None:
    """The first ``<dir>/<group>/<name>.yaml`` in ``dirs``."""
    return next((d / group / f"{name}.yaml" for d in dirs if (d / group / f"{name}.yaml").is_file()), None)


def misplaced_hint(group: str, name: str, dirs: Sequence[Path]) -> str:
    """A hint when ``<dir>/<name>.yaml`` exists where ``<dir>/<group>/<name>.yaml`` was expected."""
    stray = next((d / f"{name}.yaml" for d in dirs[1:] if (d / f"{name}.yaml").is_file()), None)
    return f"; {stray} is not read: put it in {stray.parent / group}/" if stray else ""
