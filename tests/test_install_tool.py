"""tools/install.py: pip's configuration (its files and PIP_* variables) reaches uv as uv's options, with pip's
precedence, and a local location that does not exist is left out as pip leaves it out."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def install():
    spec = importlib.util.spec_from_file_location("limo_tools_install", ROOT / "tools" / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configured(tmp_path: Path, monkeypatch, text: str, **env: str) -> None:
    """pip reads only ``text`` as its configuration (and the PIP_* variables in ``env``): not this machine's global
    and user files (XDG and HOME moved to an empty folder)."""
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS"):
        monkeypatch.setenv(name, str(empty))
    conf = tmp_path / "pip.conf"
    conf.write_text(text)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_pips_settings_become_uvs_options_with_pips_precedence(install, tmp_path, monkeypatch, capsys):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    constraints = tmp_path / "c.txt"
    constraints.write_text("torch==2.13.0\n")
    configured(
        tmp_path,
        monkeypatch,
        "[global]\n"
        "index-url = https://mirror.example/simple\n"
        f"extra-index-url = file://{tmp_path}/missing https://extra.example/simple\n"
        "find-links = /nowhere/at/all\n"
        f"cert = {tmp_path}/ca.pem\n"
        "[install]\n"
        f"constraint = {constraints}\n"
        "timeout = 30\n",
        PIP_FIND_LINKS=str(wheels),  # a variable wins over the files, as in pip
    )
    config = install.pip_config(sys.executable)
    # /etc/pip.conf is read whatever the variables say: the options set here are compared, its others left alone
    assert {
        k: v for k, v in config.items() if k in ("index-url", "extra-index-url", "find-links", "constraint", "cert")
    } == {
        "index-url": "https://mirror.example/simple",
        "extra-index-url": f"file://{tmp_path}/missing https://extra.example/simple",
        "find-links": str(wheels),
        "constraint": str(constraints),
        "cert": f"{tmp_path}/ca.pem",
    }
    options = install.uv_options(config)
    assert options[:10] == [
        "--index-url", "https://mirror.example/simple",
        "--extra-index-url", "https://extra.example/simple",
        "--find-links", str(wheels),
        "--constraints", str(constraints),
        "--cert", f"{tmp_path}/ca.pem",
    ]  # fmt: skip
    assert f"extra-index-url file://{tmp_path}/missing does not exist: left out" in capsys.readouterr().err


def test_no_index_is_a_flag_and_an_unconfigured_pip_adds_nothing(install, tmp_path, monkeypatch):
    configured(tmp_path, monkeypatch, "", PIP_NO_INDEX="1")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip then reads no file at all
    assert install.uv_options(install.pip_config(sys.executable)) == ["--no-index"]
    monkeypatch.delenv("PIP_NO_INDEX")
    assert install.uv_options(install.pip_config(sys.executable)) == []


def test_pip_installs_and_says_so_when_asked(tmp_path, monkeypatch):
    """LIMO_INSTALLER=pip: pip itself, announced; its own error and exit status come through unchanged."""
    env = {**os.environ, "LIMO_INSTALLER": "pip", "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}
    done = subprocess.run(
        [sys.executable, ROOT / "tools" / "install.py", "--dry-run", "no-such-package-limo-test"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "tools/install.py: LIMO_INSTALLER=pip: pip installs" in done.stderr
    assert "no-such-package-limo-test" in done.stderr
