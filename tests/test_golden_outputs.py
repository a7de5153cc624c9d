"""Every curating recipe still makes the decisions it made when its outputs were captured (`tests.golden_outputs`).

A failure lists the decisions that changed (items moved to another stage or reason, newly selected, no longer
selected) before the files whose normalised bytes differ. An intended change recaptures the golden files and
says in its commit which decision changed and why it is now right.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden_outputs import CASES, differences, run_case


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("case", sorted(CASES))
def test_recipe_outputs_match_golden(case: str, shared_data: Path, tmp_path: Path):
    data_dir = shared_data.resolve()
    out = run_case(case, tmp_path / "run", data_dir)
    changed = differences(case, out, {str(tmp_path / "run"): "<output_dir>", str(data_dir): "<data_dir>"})
    assert not changed, f"{case}: " + "\n".join(changed)
