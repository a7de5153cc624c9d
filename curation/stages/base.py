"""What a shared pool stage is: one object that owns its options type, its step over the run state, the notes
it leaves on the chains and problems a method reads back, its charts and its report section.

`curation.stages.run_pool` calls `Stage.run` and keeps what it returns under the stage's name
(`curation.runner.RunState.outputs`); a later stage reads an earlier one's output by that name
(`curation.runner.RunState.output`), and `curation.stages.survivors` hands each output back to its stage's hooks.
The outputs (`curation.outputs`) render the sections and charts stages declare (`curation.funnel.Section`,
`curation.funnel.Chart`) without knowing the stage. Every hook does nothing by default, so a stage writes only
the ones it has. Adding a stage is one module with a `Stage` and one line in `curation.stages.STAGES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from curation.executors import ShardJob
from curation.funnel import Chart, Section, Survivors
from curation.options import StageOptions
from curation.runner import RunState, StageContext, rows_as

Step = Callable[[RunState, StageOptions, StageContext], Any]
R = TypeVar("R", bound=tuple)
V = TypeVar("V")


@dataclass(frozen=True)
class Kept:
    """What `curation.stages.survivors` reads back, handed to each stage's note hooks.

    Attributes:
        state: The finished run.
        survivors: The kept problems and chains, whose notes the hooks fill.
        chains: Each kept chain's pool index by its id (pool order).
        problems: Each kept problem's pool index by its id (pool order).
        options: The run's stage options.
    """

    state: RunState
    survivors: Survivors
    chains: Mapping[str, int]
    problems: Mapping[str, int]
    options: StageOptions

    def chain_rows(self, job: ShardJob, row_type: type[R], note: Callable[[R], V]) -> Iterator[tuple[str, V]]:
        """``(chain id, note(row))`` for each kept chain that has a row in ``job`` (rows naming their ``chain``)."""
        wanted = set(self.chains.values())
        by_index = {row.chain: note(row) for row in rows_as(job, row_type) if row.chain in wanted}  # type: ignore[attr-defined]
        return self.chain_values(by_index)

    def chain_values(self, values: Mapping[int, V]) -> Iterator[tuple[str, V]]:
        """``(chain id, value)`` for each kept chain ``values`` (by pool index) has, in pool order."""
        return ((chain_id, values[index]) for chain_id, index in self.chains.items() if index in values)

    def problem_values(self, values: Mapping[int, V]) -> Iterator[tuple[str, V]]:
        """``(problem id, value)`` for each kept problem ``values`` (by pool index) has, in pool order."""
        return ((problem_id, values[index]) for problem_id, index in self.problems.items() if index in values)


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

    def chain_notes(self, output: Any, kept: Kept) -> None:
        """Leave notes on the kept chains (``kept.survivors.chain_notes``)."""

    def problem_notes(self, output: Any, kept: Kept) -> None:
        """Leave notes on the kept problems (``kept.survivors.problem_notes``)."""

    def charts(self, output: Any, kept: Kept) -> list[Chart]:
        """The charts report.md and report.html draw for this stage (`curation.funnel.Chart`), in order; called for
        every stage the run went through, after the notes, with ``output`` None where the stage handed nothing on
        (a stage switched off can still say why its chart is left out)."""
        return []

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
