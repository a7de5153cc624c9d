"""Where `../shared/data` is, and the policy for tests that need it (docs/architecture.md, "Tests").

Such tests carry the ``shared_data`` marker and skip with a clear reason when the folder is absent on a
user's machine; CI sets ``LIMO_REQUIRE_SHARED_DATA=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The shared data folder (``$LIMO_SHARED_DATA`` or ``<repo>/../shared/data``); skips or fails if absent."""
    folder = Path(os.environ.get("LIMO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if folder.is_dir():
        return folder
    message = f"shared data folder {folder} is absent"
    if os.environ.get("LIMO_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(f"{message} and LIMO_REQUIRE_SHARED_DATA=1")
    pytest.skip(f"{message} (set LIMO_SHARED_DATA to run this test)")
