"""Where `../shared/data` lives, and the skip-or-fail policy for tests that read it.

Tests marked `shared_data` call `shared_data_dir()`: it returns the folder (``$LIMO_SHARED_DATA`` or the
repository's sibling ``shared/data``), skips with a clear reason when the folder is absent, and fails
instead when ``LIMO_REQUIRE_SHARED_DATA=1`` (CI sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared data folder; skips (or fails under LIMO_REQUIRE_SHARED_DATA=1) when it is absent."""
    path = Path(os.environ.get("LIMO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if path.is_dir():
        return path
    reason = f"shared data folder {path} is absent (set LIMO_SHARED_DATA or place ../shared/data)"
    if os.environ.get("LIMO_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(reason + "; LIMO_REQUIRE_SHARED_DATA=1 requires it")
    pytest.skip(reason)
