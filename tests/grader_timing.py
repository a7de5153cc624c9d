"""Timing one `eval.grading.grader.grade` call as the grader's limit tests do (tests/test_grader_limits.py,
tests/test_grader_fuzz.py): its verdict, wall seconds and this thread's CPU seconds."""

from __future__ import annotations

import gc
import time

from eval.grading.grader import grade

LIMIT_S = 2.0


def timed_grade(case: tuple[str, str, str, str | None], pause_collector: bool = False) -> tuple[str, float, float]:
    """(status, wall seconds, this thread's CPU seconds) of one `grade` call; the collector paused on request (it is
    process-wide, so only the single-thread test asks). Paused, not emptied first: a collection before each call
    walked the test worker's whole heap (everything the suite had imported and left), 118 s of the suite's CPU in a
    sampling profile, for a measurement that no collection can enter while the collector is off anyway."""
    _, gold, response, problem = case
    if pause_collector:
        gc.disable()
    try:
        wall, cpu = time.monotonic(), time.thread_time()
        verdict = grade(gold, response, timeout_s=LIMIT_S, problem=problem)
        return verdict.status, time.monotonic() - wall, time.thread_time() - cpu
    finally:
        if pause_collector:
            gc.enable()
