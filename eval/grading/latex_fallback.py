"""The slow path, run only inside the `SymbolicWorker` subprocess under a hard limit: answers our parser
declines, compared by math-verify 0.9.0 (LaTeX extraction only), else by latex2sympy2-extended + `simplify`.

math-verify is asked with ``LatexExtractionConfig`` alone: its expression extraction hands text to sympy's
``parse_expr`` (Python evaluation), which untrusted text must never reach. Its LaTeX path builds sympy
objects from an ANTLR parse tree (latex2sympy2-extended, which calls ``parse_expr`` only on
``variable_values``, never passed). Its own timer stays below our limit so a slow pair usually ends inside the
worker instead of costing a restart; the worker's kill is the guarantee. That timer counts this process's CPU time
(`cpu_budget`), not the wall clock as math-verify's ``signal.alarm`` does: on a loaded machine its alarm fired in a
parse or a comparison that had used a fraction of its second, and math-verify read that as "no parse" or "not
equal", a verdict that depended on what else ran. Inputs are capped in length by the caller. Run as
``python -m eval.grading.latex_fallback`` (a JSON-lines loop).
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

_INNER_LIMIT_FRACTION = 0.5
WARM_UP = {"gold": "\\min(1, \\frac{1}{2})", "pred": "\\frac{1}{2}", "timeout_s": 2.0}
T = TypeVar("T")


def compare_math_verify(gold: str, pred: str, timeout_s: float, **options: Any) -> dict[str, Any] | None:
    """math-verify's verdict, or None when it cannot parse one side; `options` are ``verify``'s ``float_rounding``
    (an int) and ``strict`` (a bool), passed only where the caller set them (`eval.grading.options`)."""
    from math_verify import LatexExtractionConfig, parse, verify

    inner = max(1, int(timeout_s * _INNER_LIMIT_FRACTION))
    config = [LatexExtractionConfig(boxed_match_priority=0)]
    _quiet_about_our_timer()
    try:  # math-verify's own timers off (None): `cpu_budget` raises its TimeoutException, which it handles as its own
        nothing: list[Any] = []  # what math-verify's parse returns when its timer ends it
        g = within_cpu(inner, lambda: parse(f"${gold}$", extraction_config=config, parsing_timeout=None), nothing)
        p = within_cpu(inner, lambda: parse(f"${pred}$", extraction_config=config, parsing_timeout=None), nothing)
        if not g or not p:
            return None
        same = within_cpu(inner, lambda: verify(g, p, timeout_seconds=None, **options), False)
    except Exception as exc:  # math-verify raises several types on malformed input
        return {"status": "unparseable", "reason": f"math-verify: {type(exc).__name__}"}
    return {"status": "correct" if same else "incorrect", "reason": "math-verify (our parser declined)"}


@contextlib.contextmanager
def cpu_budget(seconds: float) -> Iterator[None]:
    """Raise math-verify's ``TimeoutException`` in this (main) thread once this process has spent ``seconds`` of CPU
    time in the block (``ITIMER_PROF``: user and system time), the way its own ``signal.alarm`` does after seconds of
    wall clock. math-verify's ``parse`` turns it into no parse and its comparison into "not equal", as for its own."""
    from math_verify.errors import TimeoutException

    def fire(_signum: int, _frame: Any) -> None:
        raise TimeoutException(f"over {seconds:g} s of CPU time")

    previous = signal.signal(signal.SIGPROF, fire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def within_cpu(seconds: float, call: Callable[[], T], spent: T) -> T:
    """``call()`` under `cpu_budget`; ``spent`` if the budget ran out where math-verify did not catch it (between its
    return and the timer's disarming)."""
    from math_verify.errors import TimeoutException

    try:
        with cpu_budget(seconds):
            return call()
    except TimeoutException:
        return spent


def _quiet_about_our_timer() -> None:
    """math-verify warns once that a call without its timer must be bounded by the caller: here it is (`cpu_budget`,
    and the worker's kill)."""
    import math_verify.grader
    import math_verify.parser

    math_verify.grader.TIMEOUT_WARNING_SHOWN = math_verify.parser.TIMEOUT_WARNING_SHOWN = True


def compare_latex(gold: str, pred: str) -> dict[str, Any]:
    """Parse both sides with latex2sympy and test ``simplify(gold - pred) == 0`` (or structural equality)."""
    import sympy
    from latex2sympy2_extended import latex2sympy

    try:
        a, b = latex2sympy(gold), latex2sympy(pred)
    except Exception as exc:  # the parser raises many types on malformed LaTeX
        return {"status": "unparseable", "reason": f"latex parser: {type(exc).__name__}"}
    try:
        if a == b:
            return {"status": "correct", "reason": "latex parse identical"}
        same = sympy.simplify(a - b) == 0
    except Exception as exc:
        return {"status": "incorrect", "reason": f"latex parse differs ({type(exc).__name__})"}
    return {"status": "correct" if same else "incorrect", "reason": "latex parse, simplify(a - b)"}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    """One request: ``{"gold", "pred", "timeout_s"}`` and maybe ``float_rounding`` and ``strict`` (or ``{"spin_s"}``:
    burn CPU, for the limit's tests)."""
    if "spin_s" in request:
        return _spin(float(request["spin_s"]))
    gold, pred = request["gold"], request["pred"]
    timeout_s = float(request.get("timeout_s", 2.0))
    return compare_math_verify(gold, pred, timeout_s, **_verify_options(request)) or compare_latex(gold, pred)


def _verify_options(request: dict[str, Any]) -> dict[str, Any]:
    """The request's math-verify options, type-checked (an int from 0 to 50, a bool); anything else is dropped."""
    options: dict[str, Any] = {}
    rounding = request.get("float_rounding")
    if isinstance(rounding, int) and not isinstance(rounding, bool) and 0 <= rounding <= 50:
        options["float_rounding"] = rounding
    if isinstance(request.get("strict"), bool):
        options["strict"] = request["strict"]
    return options


def _spin(seconds: float) -> dict[str, Any]:
    """Compute for ``seconds`` of CPU time: lets tests check that the caller's limit kills a runaway step."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return {"status": "incorrect", "reason": "spun"}


def serve() -> None:
    """Answer one JSON request per stdin line until stdin closes."""
    import latex2sympy2_extended  # noqa: F401  (imports before saying ready, so start-up is off the clock)
    import math_verify  # noqa: F401

    answer(WARM_UP)  # first-use costs (grammar, sympy caches: ~0.7 s) are off the clock too
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        sys.stdout.write(json.dumps(answer(json.loads(line))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
