"""The grader pool (`eval.grading.pool`): persistent workers (forks of the fork server), a per-pair deadline, stuck
workers replaced.

The real grader has no input that hangs (its size limits and time limit bound every call), so a wedged worker is
simulated the documented way: a grading function injected through ``grade_fn`` that spins, blocks, crashes or
raises on a marker response and calls the real `eval.grading.grader.grade` for everything else.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from eval.grading.grader import grade
from eval.grading.options import GradeOptions
from eval.grading.pool import GraderPool

PAIRS = [
    ("5", "The answer is \\boxed{5}.", None),
    ("5", "So we get \\boxed{6}.", None),
    ("\\frac{1}{2}", "Hence $\\boxed{0.5}$", None),
    ("B", "The answer is (B).", "Which is prime? (A) 4 (B) 7 (C) 9"),
    ("3", "I cannot tell.", None),
]


def wedged_grade(gold, response, *, timeout_s, problem=None):
    """`eval.grading.grader.grade`, except on marker responses: SPIN (CPU-bound wedge, like a runaway SymPy call),
    BLOCK (waits without computing), CRASH (the process dies), RAISE (an exception)."""
    if response == "SPIN":
        while True:
            pass
    if response == "BLOCK":
        time.sleep(3600)
    if response == "CRASH":
        os._exit(3)
    if response == "RAISE":
        raise ValueError("boom")
    return grade(gold, response, timeout_s=timeout_s, problem=problem)


DEADLINE_S, WALL_S = 0.5, 1.5
MARGIN_S = 20.0  # generous: on a shared machine a wedged worker waits for a core before it spends its CPU deadline


def expected():
    return [grade(g, r, problem=p) for g, r, p in PAIRS]


@pytest.fixture(scope="module")
def pool():
    """Two workers that grade with `wedged_grade`; started once (spawning a worker imports the grader)."""
    with GraderPool(
        workers=2, timeout_s=2.0, deadline_s=DEADLINE_S, wall_deadline_s=WALL_S, grade_fn=wedged_grade
    ) as p:
        p.grade_batch(PAIRS[:2])  # both workers up: start-up is not part of any measured batch
        yield p


def test_batch_verdicts_equal_grade_in_order_and_report_throughput(pool):
    first = pool.grade_batch(PAIRS)
    second = pool.grade_batch([(g, r) for g, r, _ in PAIRS[:3]])  # workers persist between batches
    assert first.verdicts == expected()
    assert [v.status for v in first.verdicts] == ["correct", "incorrect", "correct", "correct", "no_answer"]
    assert second.verdicts == expected()[:3]
    assert first.timeouts == first.errors == 0 and first.pairs_per_s > 0 and first.seconds > 0


def test_a_spinning_worker_is_killed_at_the_deadline_and_the_batch_goes_on(pool):
    pairs = [PAIRS[0], ("7", "SPIN", None), *PAIRS[1:]]
    replaced = pool.replaced
    started = time.monotonic()
    result = pool.grade_batch(pairs)
    elapsed = time.monotonic() - started
    after = pool.grade_batch(PAIRS)  # the replacement worker grades like the others
    assert result.verdicts[1].status == "timeout" and "killed and replaced" in result.verdicts[1].reason
    assert [v for i, v in enumerate(result.verdicts) if i != 1] == expected()
    assert result.timeouts == 1 and result.errors == 0 and pool.replaced == replaced + 1
    assert after.verdicts == expected()
    assert elapsed < DEADLINE_S + MARGIN_S


def test_a_blocked_worker_is_ended_by_the_wall_clock_backstop(pool):
    started = time.monotonic()
    result = pool.grade_batch([("7", "BLOCK"), PAIRS[0]])
    elapsed = time.monotonic() - started
    assert [v.status for v in result.verdicts] == ["timeout", "correct"]
    assert result.timeouts == 1
    assert elapsed < WALL_S + MARGIN_S


def test_a_crash_or_an_exception_costs_only_its_pair(pool):
    pairs = [("7", "CRASH"), PAIRS[0], ("7", "RAISE"), PAIRS[1]]
    result = pool.grade_batch(pairs)
    crashed, raised = result.verdicts[0], result.verdicts[2]
    assert crashed.status == "unparseable" and "died (exit code 3)" in crashed.reason
    assert raised.status == "unparseable" and "ValueError: boom" in raised.reason
    assert [result.verdicts[1], result.verdicts[3]] == expected()[:2]
    assert result.errors == 2 and result.timeouts == 0


def test_closed_pool_refuses_work_and_leaves_no_process():
    pool = GraderPool(workers=1)
    pool.grade_batch(PAIRS[:1])
    processes = [w.process for w in pool._workers]
    pool.close()
    assert not any(p.is_alive() for p in processes)
    with pytest.raises(RuntimeError, match="closed"):
        pool.grade_batch(PAIRS[:1])


def test_options_reach_every_worker():
    pairs = [("x^2+1", "t^2+1"), ("x^2+1", "t^2+2"), ("0.3333", "\\frac{1}{3}")]
    loose = GradeOptions(strict=False, precision=4)
    with GraderPool(workers=1, options=loose) as pool:
        verdicts = pool.grade_batch(pairs).verdicts
    assert verdicts == [grade(g, r, options=loose) for g, r in pairs]
    assert [v.correct for v in verdicts] == [True, False, True]
    assert [grade(g, r).correct for g, r in pairs] == [False, False, False]  # the defaults differ on two pairs


@pytest.mark.skipif(sys.platform != "linux", reason="the fork server and /proc are Linux's here")
def test_workers_are_forks_of_the_fork_server_not_of_the_caller():
    """`worker_context`: a worker is forked by multiprocessing's fork server (a fresh interpreter that imported the
    grader once), so neither the caller's threads nor a new interpreter's imports come with each worker."""
    from multiprocessing import forkserver

    from eval.grading.grader import worker_context

    assert worker_context().get_start_method() == "forkserver"
    with GraderPool(workers=2) as pool:
        assert [v.status for v in pool.grade_batch([("1", "1"), ("2", "3")]).verdicts] == ["correct", "incorrect"]
        parents = {
            int(Path(f"/proc/{w.process.pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) for w in pool._workers
        }
    assert parents == {forkserver._forkserver._forkserver_pid} and os.getpid() not in parents
