"""A curation driver process for tests that stop it: ``python -m tests.curation_driver '<json spec>'``.

The spec holds ``stages`` (a ``curate.stages`` mapping), ``output_dir``, ``seed`` and ``executor`` (an
``executor`` mapping). It runs the limo method the way ``limo.curate`` does, including its graceful stop
(`limo.curate.stops_gracefully`: SIGTERM ends the run with one line, finished work kept).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from curation.methods import METHODS, RunContext
from curation.options import StageOptions
from eval.options import to_options
from limo.curate import stops_gracefully
from limo.setup.curate import build_executor


def main() -> None:
    spec = json.loads(sys.argv[1])
    stages = to_options(StageOptions, spec["stages"], where="curate.stages")
    executor = build_executor(spec["executor"])
    context = RunContext(Path(spec["output_dir"]), spec.get("seed", 0), "test", executor=executor)
    with stops_gracefully():
        summary = METHODS["limo"].run(stages, None, context)
    print(summary.line())


if __name__ == "__main__":
    main()
