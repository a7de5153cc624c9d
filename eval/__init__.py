"""eval: the lowest layer of limo.

Holds what both benchmarks and curation pools share — the problem record (`problem.py`), readers and writers with
reject accounting (`records.py`), frozen options from plain mappings (`options.py`) — and, one package each, answer
reading (`answers/`), generation backends and model sources (`backends/`), benchmarks and the generated tasks
(`benchmarks/`), grading (`grading/`), metrics and reports (`reports/`) and the generate-and-grade runs (`run/`).
`grader.py` and `extract.py` hand on the grader's public names (docs/architecture.md, "The grader contract").

Nothing here imports torch, transformers or `limo` at import time (a test walks every submodule).
Always import submodules explicitly (`from eval.grader import grade`): `import eval` would shadow the
builtin inside the importing module.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Old module names that still import, as the module they moved to (docs/architecture.md, "Layers").

    ``import eval.grader_pool`` gives `eval.grading.pool` itself (one module object, so classes compare equal) and
    one DeprecationWarning naming the new place: code written against an earlier layout keeps working.
    """

    def __init__(self, moved: dict[str, str]) -> None:
        self.moved = moved

    def find_spec(self, fullname: str, path: object = None, target: object = None):  # noqa: ANN201 (importlib's)
        return importlib.util.spec_from_loader(fullname, self) if fullname in self.moved else None

    def create_module(self, spec) -> None:  # noqa: ANN001 (importlib's)
        return None

    def exec_module(self, module: ModuleType) -> None:
        new = self.moved[module.__name__]
        warnings.warn(f"{module.__name__} moved to {new}", DeprecationWarning, stacklevel=2)
        sys.modules[module.__name__] = importlib.import_module(new)  # the import statement returns this entry


sys.meta_path.append(
    MovedModules(
        {
            "eval.escapes": "eval.answers.escapes",
            "eval.number_words": "eval.answers.number_words",
            "eval.budget": "eval.backends.budget",
            "eval.generation": "eval.backends.generation",
            "eval.model_source": "eval.backends.model_source",
            "eval.arithmetic": "eval.benchmarks.arithmetic",
            "eval.arithmetic_unseen": "eval.benchmarks.arithmetic_unseen",
            "eval.champ": "eval.benchmarks.champ",
            "eval.choices": "eval.benchmarks.choices",
            "eval.judge": "eval.grading.judge",
            "eval.judge_presets": "eval.grading.judge_presets",
            "eval.majority": "eval.grading.majority",
            "eval.grading_policy": "eval.grading.policy",
            "eval.grader_pool": "eval.grading.pool",
            "eval.html_page": "eval.reports.html_page",
            "eval.metrics": "eval.reports.metrics",
            "eval.report": "eval.reports.report",
            "eval.samples_page": "eval.reports.samples_page",
            "eval.suite": "eval.reports.suite",
            "eval.compare_runs": "eval.run.compare_runs",
            "eval.likelihood": "eval.run.likelihood",
            "eval.multiturn": "eval.run.multiturn",
            "eval.prompting": "eval.run.prompting",
            "eval.regrade": "eval.run.regrade",
            "eval.runner": "eval.run.runner",
        }
    )
)
