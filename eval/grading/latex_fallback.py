"""The slow path, run only inside the `SymbolicWorker` subprocess under a hard limit: answers our parser
declines, compared by math-verify 0.9.0 (LaTeX extraction only), else by latex2sympy2-extended + `simplify`.

math-verify is asked with ``LatexExtractionConfig`` alone: its expression extraction hands text to sympy's
``parse_expr`` (Python evaluation), which untrusted text must never reach. Its LaTeX path builds sympy
objects from an ANTLR parse tree (latex2sympy2-extended, which calls ``parse_expr`` only on
``variable_values``, never passed). Its own signal timer stays below our limit so a slow pair usually ends
inside the worker instead of costing a restart; the worker's kill is the guarantee. Inputs are capped in
length by the caller. Run as ``python -m eval.grading.latex_fallback`` (a JSON-lines loop).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

_INNER_LIMIT_FRACTION = 0.5
WARM_UP = {"gold": "\\min(1, \\frac{1}{2})", "pred": "\\frac{1}{2}", "timeout_s": 2.0}


def compare_math_verify(gold: str, pred: str, timeout_s: float, **options: Any) -> dict[str, Any] | None:
    """math-verify's verdict, or None when it cannot parse one side; `options` are ``verify``'s ``float_rounding``
    (an int) and ``strict`` (a bool), passed only where the caller set them (`eval.grading.options`)."""
    from math_verify import LatexExtractionConfig, parse, verify

    inner = max(1, int(timeout_s * _INNER_LIMIT_FRACTION))
    config = [LatexExtractionConfig(boxed_match_priority=0)]
    try:
        g = parse(f"${gold}$", extraction_config=config, parsing_timeout=inner)
        p = parse(f"${pred}$", extraction_config=config, parsing_timeout=inner)
        if not g or not p:
            return None
        same = verify(g, p, timeout_seconds=inner, **options)
    except Exception as exc:  # math-verify raises several types on malformed input
        return {"status": "unparseable", "reason": f"math-verify: {type(exc).__name__}"}
    return {"status": "correct" if same else "incorrect", "reason": "math-verify (our parser declined)"}


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
