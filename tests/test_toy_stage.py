"""Adding a shared stage is one new module and one registry line (docs/architecture.md, "Adding a shared stage").

The toy stage below is written the way a new stage module is: its options type, its step over the run state, the
notes it leaves on kept chains and problems, its chart and its report section. The tests register it (the one line in
`curation.stages.STAGES`, patched here) and run it through the runner, the funnel, report.md and report.html,
with no other file of the project knowing of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from curation import stages as pool_stages
from curation.funnel import HISTOGRAM, Chart, Section
from curation.methods import METHODS, RunContext
from curation.methods.limo import method as limo_method
from curation.options import StageOptions
from curation.runner import RunState, StageContext
from curation.schema import Chain
from curation.stages.base import Kept, Stage
from eval.options import to_options
from eval.problem import Problem

# ------------------------------------------------------------------------------------------------ the new module


@dataclass(frozen=True)
class ShortChainOptions:
    """``curate.stages.short_chain``: chains under ``min_words`` words are dropped."""

    min_words: int = 5


@dataclass
class ShortChains:
    """What the stage hands on: every chain's word count, and how many chains it dropped."""

    words: np.ndarray
    dropped: int


class ShortChain(Stage):
    """Drop chains too short to teach anything; note each kept chain's length."""

    name, options_type = "short_chain", ShortChainOptions

    def run(self, state: RunState, options: StageOptions, context: StageContext) -> ShortChains:
        settings = self.settings(options)
        count = state.begin(self.name)
        words = state.store.columns.chain_words
        alive = np.flatnonzero(state.chain_alive)
        short = alive[words[alive] < settings.min_words].tolist()
        count.notes = {"min_words": settings.min_words}
        state.apply(count, chains=[(c, "too_short", {"words": int(words[c])}) for c in short])
        return ShortChains(np.asarray(words), len(short))

    def chain_notes(self, output: ShortChains, kept: Kept) -> None:
        for chain_id, index in kept.chains.items():
            kept.survivors.chain_notes[chain_id]["short_chain"] = int(output.words[index])

    def problem_notes(self, output: ShortChains, kept: Kept) -> None:
        for problem_id in kept.problems:
            kept.survivors.problem_notes[problem_id]["short_chain"] = "checked"

    def charts(self, output: ShortChains | None, kept: Kept) -> list[Chart]:
        words = {"kept": [int(output.words[index]) for index in kept.chains.values()]} if output is not None else {}
        return [Chart("short_chain", "Words of the kept chains", HISTOGRAM, words, "words")]

    def report_section(self, output: ShortChains, state: RunState) -> Section:
        return Section("Short chains", ("chains dropped", "minimum words"), ((output.dropped, 5),))


# ------------------------------------------------------------------------------------------------ the tests


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> ShortChain:
    """The one registry line: ``"short_chain": short_chain.STAGE`` in `curation.stages.STAGES`."""
    stage = ShortChain()
    monkeypatch.setitem(pool_stages.STAGES, stage.name, stage)
    return stage


def test_a_registered_stage_runs_counts_and_notes(tmp_path: Path, registered: ShortChain):
    problems = [Problem("p1", "What is 2+2?", "4", "toy"), Problem("p2", "What is 3*3?", "9", "toy")]
    chains = [
        Chain("p1/a", "p1", "so 4 \\boxed{4}"),
        Chain("p2/a", "p2", "three times three is nine, so \\boxed{9}"),
    ]
    state, kept = pool_stages.curate_items(problems, chains, StageOptions(), ["short_chain"], tmp_path)
    row = next(c for c in state.funnel if c.stage == "short_chain")
    assert (row.items_in, row.items_out, row.dropped, row.notes) == (2, 1, {"too_short": 1}, {"min_words": 5})
    assert row.problems_dropped == {"no_chain_left": 1}
    assert state.output("short_chain", ShortChains) is not None
    assert kept.chain_notes["p2/a"]["short_chain"] == 7 and kept.problem_notes["p2"]["short_chain"] == "checked"
    assert kept.sections == [Section("Short chains", ("chains dropped", "minimum words"), ((1, 5),))]
    assert kept.charts == [Chart("short_chain", "Words of the kept chains", HISTOGRAM, {"kept": [7]}, "words")]
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert {(r["id"], r["stage"], r["reason"]) for r in rejects} == {
        ("p1/a", "short_chain", "too_short"),
        ("p1", "short_chain", "no_chain_left"),
    }


def test_a_registered_stage_reaches_the_funnel_and_both_reports(
    tmp_path: Path, registered: ShortChain, monkeypatch: pytest.MonkeyPatch
):
    rows = [
        {"id": "q1", "problem": "What is 2+2 when added together?", "chain": "so \\boxed{4}", "answer": "4"},
        {"id": "q2", "problem": "What is 3 times 3?", "chain": "Let us verify: 3*3=9. \\boxed{9}", "answer": "9"},
    ]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(limo_method, "STAGES", ("validate", "answer_check", "short_chain", "select"))
    stages = {"ingest": {"source": str(pool)}, "select": {"n": 5}}
    summary = METHODS["limo"].run(to_options(StageOptions, stages), None, RunContext(tmp_path, 0, "toy"))
    out = tmp_path / "curate"
    assert summary.selected == 1
    funnel = json.loads((out / "funnel.json").read_text())
    row = next(s for s in funnel["stages"] if s["stage"] == "short_chain")
    assert row["dropped"] == {"too_short": 1} and row["notes"] == {"min_words": 5}
    report = (out / "report.md").read_text()
    assert "## Short chains\n\n| chains dropped | minimum words |\n|---|---|\n| 1 | 5 |\n" in report
    assert "| short_chain | chain | 2 | 1 |" in report  # its funnel row
    assert "![short_chain.png](short_chain.png)" in report and (out / "short_chain.png").is_file()  # its chart
    assert report.index("short_chain.png") < report.index("length.png")  # in the stages' order (select's after)
    page = (out / "report.html").read_text()
    assert '"title": "Short chains"' in page or '"title":"Short chains"' in page
    assert '"title":"Words of the kept chains"' in page.replace('": "', '":"')
    curated = [json.loads(line) for line in (out / "curated.jsonl").read_text().splitlines()]
    assert [r["decisions"].get("short_chain") for r in curated] == ["kept"]
