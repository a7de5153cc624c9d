"""`pip install ARGS` into the running interpreter's environment, done by uv where it can be: the Makefile's installs
(`make setup`, `setup-gemma`, `llamacpp`, `docs`) call ``.venv/bin/python tools/install.py ARGS``.

Why: pip unpacks and byte-compiles the training stack's ~24,000 files one after another; on the 2-core machines the
suite is timed on, `pip install -e '.[dev]'` took 149 s of a fresh clone's setup, uv 52 s with the same versions and
the same bytecode (docs/performance.md, "Eighteenth pass"). Bytecode is compiled at install time
(``--compile-bytecode``) because these machines set PYTHONDONTWRITEBYTECODE: nothing would write it later.

uv does not read pip's configuration, so pip's own (``pip config list``: its files and PIP_* variables) is passed on:
index-url, extra-index-url, find-links, constraint, no-index, cert and trusted-host, and pip's choice among indexes
(the best version on any of them: uv's ``unsafe-best-match``); a ``file://`` index or a find-links folder that does
not exist is left out, as pip leaves it out (with a line saying so).

uv itself (pinned, `UV`) is installed into the environment by pip the first time. Where it cannot be, where
LIMO_INSTALLER=pip asks for pip, or where uv's install fails, pip does the install, and a line on stderr says so.
Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

UV = "uv==0.13.9"
# pip's option -> uv's (both take a value unless listed in FLAGS); pip's precedence: PIP_* variables, then the
# [install] section, then [global]
OPTIONS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraints",
    "cert": "--cert",
    "trusted-host": "--allow-insecure-host",
    "no-index": "--no-index",
}
FLAGS = {"no-index"}
SECTIONS = (":env:", "install", "global")


def say(line: str) -> None:
    print(f"tools/install.py: {line}", file=sys.stderr, flush=True)


def pip_config(python: str) -> dict[str, str]:
    """pip's effective settings for `pip install`, as ``{option: value}`` (``pip config list``; empty if pip cannot
    list them)."""
    listed = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True)
    found: dict[tuple[str, str], str] = {}
    for line in listed.stdout.splitlines() if listed.returncode == 0 else []:
        key, sep, raw = line.partition("=")
        section, _, option = key.rpartition(".")
        if not sep or section not in SECTIONS:
            continue
        try:
            value = ast.literal_eval(raw)  # pip prints repr(str): a literal, never code
        except (ValueError, SyntaxError):
            value = raw.strip("'\"")
        found[(section, option)] = str(value)
    return {
        option: next(found[(s, option)] for s in SECTIONS if (s, option) in found)
        for option in OPTIONS
        if any((s, option) in found for s in SECTIONS)
    }


def present(location: str) -> bool:
    """False for a local index or find-links location that does not exist (pip ignores those); True for the rest."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(parsed.path).exists()
    return bool(parsed.scheme) or Path(location).exists()


def uv_options(config: dict[str, str]) -> list[str]:
    """pip's settings as uv's options."""
    options: list[str] = []
    for option, value in config.items():
        flag = OPTIONS[option]
        if option in FLAGS:
            if value.strip().lower() in ("1", "true", "yes", "on"):
                options.append(flag)
            continue
        for item in value.split():
            if option in ("index-url", "extra-index-url", "find-links") and not present(item):
                say(f"pip's {option} {item} does not exist: left out, as pip leaves it out")
                continue
            options += [flag, item]
    return options


def uv_binary(python: str) -> Path | None:
    """The environment's uv, installed by pip the first time; None where it cannot be (said on stderr)."""
    uv = Path(python).parent / "uv"
    if uv.exists():
        return uv
    done = subprocess.run([python, "-m", "pip", "install", "-q", UV], capture_output=True, text=True)
    if done.returncode != 0 or not uv.exists():
        reason = (done.stderr.strip().splitlines() or ["no uv in the environment after it"])[-1]
        say(f"uv could not be installed ({reason}): pip installs instead (slower)")
        return None
    return uv


def main(args: list[str]) -> int:
    python = sys.executable
    pip = [python, "-m", "pip", "install", *args]
    if os.environ.get("LIMO_INSTALLER", "uv") == "pip":
        say("LIMO_INSTALLER=pip: pip installs")
        return subprocess.run(pip).returncode
    uv = uv_binary(python)
    if uv is None:
        return subprocess.run(pip).returncode
    # pip takes the best version from every index; uv's default takes the first index that lists a package
    command = [str(uv), "pip", "install", "--python", python, "--compile-bytecode"]
    command += ["--index-strategy", "unsafe-best-match", *uv_options(pip_config(python))]
    code = subprocess.run([*command, *args]).returncode
    if code != 0:
        say(f"uv pip install failed (exit status {code}): pip installs instead")
        return subprocess.run(pip).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
