"""The slow path: LaTeX our grammar refuses (``\\sum``, ``\\int``, ``\\lim``, ...) parsed by latex2sympy2-extended
and compared with `sympy.simplify`, run only inside the `SymbolicWorker` subprocess under a hard limit.

latex2sympy2-extended builds sympy objects from an ANTLR parse tree; it calls `parse_expr` only on the
`variable_values` argument, which we never pass, and `sympify` only on objects it already built. Inputs
are capped in length by the caller. Run as ``python -m eval.grading.latex_fallback`` (a JSON-lines loop).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def compare_latex(gold: str, pred: str) -> dict[str, Any]:
    """Parse both sides and test ``simplify(gold - pred) == 0`` (or structural equality)."""
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


def serve() -> None:
    """Answer one JSON request per stdin line until stdin closes."""
    import latex2sympy2_extended  # noqa: F401  (import before saying ready, so start-up is off the clock)

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.write(json.dumps(compare_latex(request["gold"], request["pred"])) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
