"""What a shared pool stage is: one object that owns its options type, its step over the run state, the notes
it leaves on the chains and problems a method reads back, its plot data and its report section.

`curation.stages.run_pool` calls `Stage.run` and keeps what it returns under the stage's name
(`curation.runner.RunState.outputs`); a later stage reads an earlier one's output by that name
(`curation.runner.RunState.output`), and `curation.stages.survivors` and `curation.stages.plots` hand each output
back to its stage's hooks. The outputs (`curation.outputs`) render the sections stages declare
(`curation.funnel.Section`) without knowing the stage. Every hook does nothing by default, so a stage writes only
the ones it has. Adding a stage is one module with a `Stage` and one line in `curation.stages.STAGES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from curation.funnel import Section, Survivors
from curation.options import StageOptions
from curation.runner import RunState, StageContext

Step = Callable[[RunState, StageOptions, StageContext], Any]


class Stage:
    """A shared pool stage (subclass it; `StepStage` wraps a step function that needs no hook).

    Attributes:
        name: The name a recipe gives it under ``curate.stages`` and its funnel row's.
        options_type: Its options dataclass (`settings` finds the run's, else builds the default).
    """

    name: str = ""
    options_type: type | None = None

    def settings(self, options: StageOptions) -> Any:
        """This stage's options of the run: ``curate.stages.<name>``, else its options type's defaults."""
        found = getattr(options, self.name, None)
        if found is None and self.options_type is not None:
            return self.options_type()
        return found

    def run(self, state: RunState, options: StageOptions, context: StageContext) -> Any:
        """Mark items dead with a reason, close the stage's funnel row; returns what later readers need (or None)."""
        raise NotImplementedError

    def chain_notes(
        self, output: Any, state: RunState, kept: Survivors, index_of: Mapping[str, int], options: StageOptions
    ) -> None:
        """Leave notes on the kept chains (``kept.chain_notes``; ``index_of``: chain id -> pool index)."""

    def problem_notes(
        self, output: Any, state: RunState, kept: Survivors, index_of: Mapping[str, int], options: StageOptions
    ) -> None:
        """Leave notes on the kept problems (``kept.problem_notes``; ``index_of``: problem id -> pool index)."""

    def plot_data(self, output: Any, state: RunState) -> dict[str, list[float]]:
        """Series for the report's plots, by `curation.funnel.PoolPlots` field (``rates``, ``all_quality``)."""
        return {}

    def report_section(self, output: Any, state: RunState) -> Section | None:
        """A section report.md and report.html show after the method's own (None: none)."""
        return None


class StepStage(Stage):
    """A stage whose only part is its step, a function ``(state, options, context)``: the hooks do nothing.

    Args:
        name: The stage's name.
        step: The step (`Stage.run`).
        options_type: Its options dataclass (None: it reads another stage's, as ``problem_limit`` reads ingest's).
    """

    def __init__(self, name: str, step: Step, options_type: type | None = None):
        self.name, self.step, self.options_type = name, step, options_type

    def run(self, state: RunState, options: StageOptions, context: StageContext) -> Any:
        return self.step(state, options, context)
