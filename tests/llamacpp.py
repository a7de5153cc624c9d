"""llama.cpp's programs for tests: found where ``make llamacpp`` installs them, or the tests that need them skip.

Tests that start ``llama-server`` or run llama.cpp's converter take the ``llama_tools`` fixture (tests/conftest.py).
Where llama.cpp is not installed it skips with the reason and the command that installs it, unless
``LIMO_REQUIRE_LLAMACPP=1`` (set by CI once it has run ``make llamacpp``), which turns the skip into a failure.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ENV = "LIMO_REQUIRE_LLAMACPP"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail when the environment promises llama.cpp (CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: llama.cpp was installed, so this must work)")
    pytest.skip(reason)


def require_tools():
    """The llama.cpp install (`eval.backends.llamacpp_tools.LlamaCppTools`), or skip / fail."""
    from eval.backends.llamacpp_tools import LlamaCppMissingError, find_tools

    try:
        return find_tools()
    except LlamaCppMissingError as missing:
        skip_or_fail(f"llama.cpp is not installed: make llamacpp ({missing})")
