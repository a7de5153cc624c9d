"""The grader's public names (docs/architecture.md, "The grader contract") import from where users type them.

`eval.grader` and `eval.extract` only hand on names whose code lives in `eval.grading` and `eval.answers`: each name
must be the implementation itself, never a second copy, and must grade as the contract says.
"""

from __future__ import annotations

import eval.extract as extract_face
import eval.grader as grader_face
from eval.answers import extract
from eval.grading import grader, options, pool


def test_every_public_name_is_the_implementation():
    homes = (grader, options, pool)
    for name in grader_face.__all__:
        assert any(getattr(home, name, None) is getattr(grader_face, name) for home in homes), name
    assert extract_face.extract_answer is extract.extract_answer


def test_the_public_names_grade():
    from eval.extract import extract_answer
    from eval.grader import STATUSES, Verdict, grade, grade_many, verify

    assert extract_answer("so the answer is \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert verify("1/2", "0.5") and not verify("1/2", "0.6")
    verdict = grade("1/2", "Thus \\boxed{0.5}")
    assert isinstance(verdict, Verdict) and verdict.correct and verdict.status in STATUSES
    assert [v.correct for v in grade_many([("2", "\\boxed{2}"), ("2", "\\boxed{3}")], workers=1, progress=False)] == [
        True,
        False,
    ]


def test_an_earlier_layouts_module_names_import_as_the_moved_module_with_a_warning():
    """Code written before the move (``from eval.grader_pool import GraderPool``, ``limo.tiny_models``) keeps
    working: the old name is the new module object itself, and the import says where it went. Run in a fresh
    process, so the warning is not swallowed by an earlier import of the same name."""
    import subprocess
    import sys

    from eval import MovedModules

    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('always')\n"
        "import limo\n"
        "from eval import MovedModules\n"
        "moved = {}\n"
        "for finder in sys.meta_path:\n"
        "    if isinstance(finder, MovedModules): moved.update(finder.moved)\n"
        "import importlib\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    for old, new in sorted(moved.items()):\n"
        "        assert importlib.import_module(old) is importlib.import_module(new), old\n"
        "assert len(seen) == len(moved) and all(w.category is DeprecationWarning for w in seen)\n"
        "from eval.grader_pool import GraderPool\n"
        "from eval.grading.pool import GraderPool as Home\n"
        "from eval.benchmarks import load_benchmark\n"
        "from eval.benchmarks.loader import load_benchmark as home\n"
        "assert GraderPool is Home and load_benchmark is home\n"
        "print(len(moved))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) >= 40
    assert MovedModules({"a.b": "c"}).find_spec("a.c") is None
