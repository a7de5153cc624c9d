"""``python -m limo.discovery.worker <job.json>``: what runs, confined, for one candidate.

Checks the code again (the parent checked it too: defence in depth), validates it (`validation`), writes
``validation.json`` (so the parent can tell a candidate killed while validating, which is treated as
hostile, from one killed while training), then trains and scores it (`fitness`). Every outcome that is
the candidate's doing ends in ``result.json`` with a status and a reason; the process exits 0. A non-zero
exit without ``result.json`` means the worker itself could not run (an environment problem), or the
sandbox killed it (a signal or the wall clock): the parent tells which. A reference job (``"kind":
"reference"``, once per run, no candidate code) computes the reference log-probs every candidate reuses.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from eval.records import write_json
from limo.discovery.fitness import TrainingDiverged, compute_reference, train_and_score
from limo.discovery.validation import validate
from limo.training.loss_language import ProgramError, check_program

log = logging.getLogger("limo.discovery.worker")


def run_job(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """Check, validate and (when ``job["fitness"]``) train and score; returns the result row."""
    try:
        program = check_program(job["code"])
        validation = validate(
            program, beta=float(job["beta"]), seed=int(job["seed"]), trials=int(job["validation_trials"])
        )
    except ProgramError as err:
        return {"status": err.status, "reason": str(err), "phase": "validation"}
    except MemoryError:
        return {"status": "rejected_unsafe", "reason": "ran out of memory while validating", "phase": "validation"}
    except Exception as err:  # noqa: BLE001 - e.g. backward() failing on the program's graph: the candidate's doing
        traceback.print_exc()
        return {
            "status": "invalid",
            "reason": f"validation failed: {type(err).__name__}: {err}"[:500],
            "phase": "validation",
        }
    write_json(out / "validation.json", validation)
    if not job.get("fitness", True):
        return {"status": "valid", "reason": None, "phase": "validation"}
    try:
        scores = train_and_score(job, program, out)
    except ProgramError as err:
        return {"status": err.status, "reason": f"during fitness training: {err}", "phase": "fitness"}
    except TrainingDiverged as err:
        return {"status": "invalid", "reason": f"fitness training diverged: {err}", "phase": "fitness"}
    except Exception as err:  # noqa: BLE001 - any failure of a candidate's training is its result, with the reason
        traceback.print_exc()
        return {
            "status": "invalid",
            "reason": f"fitness training failed: {type(err).__name__}: {err}"[:500],
            "phase": "fitness",
        }
    return {"status": "valid", "reason": None, "phase": "fitness", **scores}


def run_reference(job: dict[str, Any], out: Path) -> dict[str, Any]:
    """The run's reference log-probs (no candidate code runs); a failure is the environment's, so it raises."""
    return compute_reference(job, out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m limo.discovery.worker <job.json>", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    job_path = Path(argv[1])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    out = job_path.parent
    started = time.monotonic()
    result = run_reference(job, out) if job.get("kind") == "reference" else run_job(job, out)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["job_sha256"] = job["job_sha256"]
    write_json(out / "result.json", result)
    log.info("candidate done: %s %s", result["status"], result.get("reason") or "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
