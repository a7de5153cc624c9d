"""The dependency direction eval <- curation <- limo holds: lower layers never import torch, transformers or limo."""

from __future__ import annotations

import subprocess
import sys

import pytest

WALK = r"""
import importlib, pkgutil, sys, json
bad = {}
for top in ("eval", "curation"):
    pkg = importlib.import_module(top)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=top + "."):
        importlib.import_module(info.name)
        hits = [m for m in ("torch", "transformers", "limo") if m in sys.modules]
        if hits:
            bad[info.name] = hits
            break
print(json.dumps(bad))
"""


def test_eval_and_curation_import_neither_torch_transformers_nor_limo(repo_root):
    done = subprocess.run([sys.executable, "-c", WALK], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{}", f"upward or heavy imports: {done.stdout}"


@pytest.mark.parametrize("package", ["eval", "curation"])
def test_top_level_import_is_light(repo_root, package):
    code = f"import {package}, sys; assert 'torch' not in sys.modules and 'limo' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_walk_finds_every_module(repo_root):
    """Guard against the walk silently checking nothing (e.g. a missing __init__.py)."""
    code = (
        "import pkgutil, eval, curation; print(len(list(pkgutil.walk_packages(eval.__path__))) + "
        "len(list(pkgutil.walk_packages(curation.__path__))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert int(done.stdout.strip()) >= 5
