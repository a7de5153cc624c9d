"""Every grading call is bounded: its verdict arrives within its time limit plus 1 s, in the calling thread, in a
worker thread and in a process pool.

Two layers are checked. Size limits decide every pathological input below long before any clock (status never
``timeout``, little CPU time): one input per path that ran unbounded or slowly before issue 33 (a family of
polynomials with side conditions, fractional powers of long numbers, unclosed math openers, runs of ``#``, of
blanks, of verbs, of turn markers, an inequality with a huge power, huge exponents, ...). The clock is the
backstop for paths nobody has found yet: with the comparison replaced by an endless loop, ``grade`` still
returns ``timeout`` on time. And the slow symbolic path's worker subprocess is killed and replaced on overrun, on
CPU time, not wall time (its ``spin_s`` request computes for that many CPU seconds, so these tests check the
limit itself rather than whichever pair happens to be slow today).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import eval.grading.grader as grader
import eval.grading.timeouts as timeouts
from eval.grading.grader import DEADLINE_SLACK_S, Verdict, grade, grade_answer, is_wall_clock_timeout, verify
from eval.grading.options import DEFAULT_OPTIONS
from eval.grading.timeouts import (
    WALL_BACKSTOP_FACTOR,
    WALL_CLOCK,
    WORKERS,
    CallTimeout,
    SymbolicWorker,
    WorkerTimeout,
    paused,
    run_bounded,
)
from tests.grader_timing import LIMIT_S, timed_grade
from tests.shared_data import REPO_ROOT

CONTRACT_S = LIMIT_S + 1.0  # every call returns within its limit plus 1 s
# what size limits let one of these inputs cost, half the limit. Measured with the collector paused: a full collection
# of a test worker's heap (models, datasets of earlier tests) is charged to whichever call triggers it, and cost one
# CI run 0.7 s on a pair that grades in 0.01 s.
CPU_BUDGET_S = 1.0
POLYNOMIALS = "Find all polynomials $f$ with real coefficients such that $f(x)f(2x^2) = f(2x^3 + x)$ for all real $x$."
NINES = "9" * 399
OPENERS = ("\n\\(" * 16_667)[:50_000]
TOWERS = ("]9^{9^{9^9}}" * 4_200)[:50_000]
EXPONENT_TOWER = "".join(
    "{" + base + "^" for base in "10 9 2 2 x x 9 x 9 9 2 10 9 9 9 x 10 x 9 x x x x 10 10 9 x 9 x".split()
)
EXPONENT_TOWER += "2" + "}" * 29
# (path, gold, response, problem): each ran for seconds to many minutes before it was bounded.
PATHOLOGICAL = [
    (
        "family, plain",
        "f(x) = a_0(x^2 + c)^n where a_0 > 0 and c > 0",
        "f(x) = b(x^2 + d)^m where b > 0 and d > 0",
        None,
    ),
    (
        "family, LaTeX, with the problem",
        r"f(x) = a_0(x^2 + c)^n \text{ where } a_0 > 0 \text{ and } c > 0",
        r"f(x) = a_0(x^2 + c)^{n+1} \text{ where } a_0 > 0 \text{ and } c > 0",
        POLYNOMIALS,
    ),
    (
        "family, sentence, with the problem",
        "f(x) = a_0(x^2 + c)^n where a_0 > 0 and c > 0",
        r"The answer is $f(x) = b(x^2 + d)^m$ where $b > 0$ and $d > 0$.",
        POLYNOMIALS,
    ),
    (
        "fractional power of a long number",
        rf"\left(\frac{{{NINES}}}{{{NINES[:-1]}7}}\right)^{{\frac{{12345}}{{6789}}}}",
        "1",
        None,
    ),
    ("fractional power of a rational", r"\left(\frac{7316}{10007}\right)^{\frac{30011}{7919}}", "x", None),
    ("unclosed math openers", "7", "\\(" * 25_000, None),
    ("a run of #", "7", "#" * 50_000, None),
    ("blanks inside a gold", "1" + " " * 3998 + "2", "7", None),
    ("a verb per word", "7", "x = " * 12_000, None),
    ("turn markers", "7", "<|im_end|>" * 5_000, None),
    ("an inequality with a huge power", "(x+1)^{100000} + x > 0", "x > 0", None),
    ("a quantifier tail after blanks", "f(x) = x" + "\\," * 400 + r" \text{ for all } x", "f(x) = x + 1", None),
    ("huge exponents", "x^{999999}", "x^{999998}", None),
    (
        "equal forms of huge degree",
        r"x^{9900}\left(\frac{1+x^{100}}{2}\right)^2",
        r"\frac{x^{9900}+2x^{10000}+x^{10100}}{4}",
        None,
    ),
    ("trigonometry of a huge argument", r"\sin(10^{5000})", r"\cos(10^{5000})", None),
    ("an exponent tower", "9^{9^{9^9}}", "9^{9^{9^{9}}}+1", None),
    ("a million characters", "1" * 1_000_000, "7", None),
    # math-verify's second opinion cost 1.2 s of the worker's CPU on this pair (0.3 ms a character)
    ("a long word against a LaTeX command", "k" * 4_000, ("\\begin{pmatrix}\\\\" * 300)[:4_000], None),
    # found by the long-run fuzz test (tests/test_grader_fuzz.py): a lazy regular expression scanned to the end from
    # each of 25,000 \( left open (10 s in one C call); sympy evaluated 200 nested symbolic remainders (2.7 s)
    ("inline openers ending their lines", (")-\\right)" * 500)[:4_000], OPENERS, OPENERS),
    ("nested symbolic remainders", ("\\bmod\\text{ for all } " * 200)[:4_000], TOWERS, None),
    # found by the long fuzz run (bench/grader/grader_fuzz.py, docs/grader.md "Fuzzing"): environments left open ran
    # the rewrite into Python's recursion limit; nested boxes were joined as siblings (144 million characters copied)
    # and a run of bare ones rescanned the rest per box (10 s); an exponent tower made mpmath square once per bit of
    # a 100,000-bit exponent (minutes); a value restated in brackets was looked for at every split (26 s); after a
    # marker, a 21,000-character sentence was read once per verb
    ("environments left open", "x" * 4_000, ("\\begin{pmatrix}" * 300)[:4_000], None),
    ("nested boxes", "7", "\\boxed{" * 6_000 + "1" + "}" * 6_000, None),
    ("a run of bare boxes", "7", "\\boxed" * 6_000 + "7", None),
    (
        "an exponent tower at a point",
        "\\boxed{\\boxed{" + NINES[:23],
        EXPONENT_TOWER + "\\boxed{\\boxed{" + NINES[:23],
        None,
    ),
    ("brackets after every word", "1", "The answer is " + "x (" * 15_000, None),
    ("a verb per word after a marker", "1", "Answer: " + "is not " * 3_000, None),
]
IDS = [p[0] for p in PATHOLOGICAL]
# Pairs our grammar declines with a LaTeX command left (so math-verify would be asked) in shapes it cannot judge
# within its own 1 s: a tower on numbers, a huge binomial or factorial, brackets eight deep, a sum of 1,000 powers,
# 400 letters. Before, each took 0.2-2.6 s of the worker (a timeout, or a verdict its clock decided).
BEYOND_MATH_VERIFY = [
    ("{9^{10^{9^{10^{10^{10^{x^{2}}}}}}}}", "\\lim_{n\\to\\infty} \\overline{x}"),
    ("\\overline{AB}", "\\binom{10^{9}}{500000000}"),
    ("\\overline{AB}", "999999!"),
    ("\\overline{AB}", "\\left(" * 8 + "1" + "\\right)" * 8),
    ("\\overline{AB}", " + ".join(["\\sum_{k=1}^{1000} k^{k}"] * 4)),
    ("i" * 400, "\\overline{AB}"),
]


@pytest.mark.parametrize("case", PATHOLOGICAL, ids=IDS)
def test_size_limits_decide_pathological_inputs_in_this_thread(case):
    status, wall, cpu = timed_grade(case, pause_collector=True)
    assert status != "timeout", case[0]  # decided by size limits, not by the clock: no dependence on load
    assert cpu < CPU_BUDGET_S, (case[0], cpu)
    assert wall < CONTRACT_S, (case[0], wall)


def test_a_long_side_gets_no_second_opinion():
    """The fuzz run's timeout: the worker's math-verify spent over a second on a 4,000-letter gold (that pair's
    300 environments are now refused before, by their depth: a flat LaTeX text stands in)."""
    gold, response = "k" * 4_000, ("\\overline{x} + " * 300)[:4_000]
    verdict = grade(gold, response, timeout_s=LIMIT_S)
    assert verdict.status == "unparseable"
    assert f"over {grader.SECOND_OPINION_MAX_CHARS} characters for math-verify" in verdict.reason
    short = grade("1", r"\lim_{n \to \infty} \frac{n}{n+1}", timeout_s=LIMIT_S)  # a short pair still gets one
    assert (short.status, short.reason) == ("correct", "math-verify (our parser declined)")


@pytest.mark.parametrize("gold, response", BEYOND_MATH_VERIFY, ids=range(len(BEYOND_MATH_VERIFY)))
def test_shapes_math_verify_cannot_judge_in_time_get_no_second_opinion(gold, response):
    """Decided by their shape before the worker's clock: unparseable, naming why (the reason is the proof; the CPU
    budget, measured as above, is the margin)."""
    verdict = grade(gold, response, timeout_s=LIMIT_S)
    assert verdict.status == "unparseable" and verdict.reason.endswith("for math-verify"), verdict
    status, _, cpu = timed_grade(("", gold, response, None), pause_collector=True)
    assert status == "unparseable" and cpu < CPU_BUDGET_S, cpu


def test_pathological_inputs_in_worker_threads():
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(timed_grade, PATHOLOGICAL))
    assert [r[0] for r in results if r[0] == "timeout"] == []
    assert max(r[1] for r in results) < CONTRACT_S * 4  # four threads share one interpreter lock


def test_pathological_inputs_in_a_process_pool():
    """Spawned processes, as `grade_many` uses: each call is timed inside its process."""
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(timed_grade, PATHOLOGICAL))
    assert [IDS[i] for i, r in enumerate(results) if r[0] == "timeout"] == []
    assert max(r[1] for r in results) < CONTRACT_S


# -- the clock: a path that never ends -----------------------------------------------------------------------------
def _endless(*_args, **_kwargs):
    n = 0
    while True:
        n += 1


def _endless_after_a_swallow(*_args, **_kwargs):
    try:
        _endless()
    except:  # noqa: E722 - the point: one interruption swallowed by a bare except does not win
        pass
    _endless()


def _graded_on_time(_: int = 0) -> tuple[str, float]:
    start = time.monotonic()
    verdict = grade("1", "2", timeout_s=0.5)
    return verdict.status, time.monotonic() - start


@pytest.fixture()
def endless_comparison(monkeypatch):
    monkeypatch.setattr(grader, "equal", _endless)
    yield
    # a stray interruption must not outlive its call: the next grade is an ordinary one
    monkeypatch.undo()
    assert grade("\\frac{1}{2}", "0.5").correct


def test_the_clock_ends_an_endless_path_in_this_thread(endless_comparison):
    status, elapsed = _graded_on_time()
    assert status == "timeout" and 0.5 <= elapsed < 0.5 + 1.0


def test_the_clock_ends_an_endless_path_in_worker_threads(endless_comparison):
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(_graded_on_time, range(3)))
    assert all(status == "timeout" and elapsed < 0.5 + 1.0 for status, elapsed in results), results


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the replaced comparison reaches the children by fork")
def test_the_clock_ends_an_endless_path_in_forked_processes(endless_comparison):
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_graded_on_time, range(2)))
    assert all(status == "timeout" and elapsed < 0.5 + 1.0 for status, elapsed in results), results


def test_a_swallowed_interruption_is_raised_again(monkeypatch):
    monkeypatch.setattr(grader, "equal", _endless_after_a_swallow)
    status, elapsed = _graded_on_time()
    assert status == "timeout" and elapsed < 0.5 + 1.0


def test_verify_and_grade_answer_are_bounded_too(endless_comparison):
    start = time.monotonic()
    assert grade_answer("1", "2", timeout_s=0.3).status == "timeout"
    assert verify("1", "2", timeout_s=0.3) is False
    assert time.monotonic() - start < 2 * (0.3 + DEADLINE_SLACK_S) + 0.5


def test_run_bounded_nests_under_the_outer_deadline_and_pauses():
    def inner() -> str:
        return run_bounded(lambda: "inner", 100.0)

    assert run_bounded(inner, 1.0) == "inner"
    with pytest.raises(CallTimeout):
        run_bounded(lambda: run_bounded(_endless, 100.0), 0.3)

    def waits() -> str:
        with paused():
            time.sleep(0.6)  # past the deadline, but paused: nothing fires inside
        return "not reached"

    start = time.monotonic()
    with pytest.raises(CallTimeout):
        run_bounded(waits, 0.2)  # the deadline passed while paused: it fires right after
    assert 0.6 <= time.monotonic() - start < 1.5


# -- the worker subprocess -----------------------------------------------------------------------------------------
@pytest.fixture()
def worker():
    w = SymbolicWorker()
    yield w
    w.close()


def test_runaway_step_is_killed_and_the_worker_replaced(worker):
    assert worker.call({"spin_s": 0.05}, timeout_s=2.0)["reason"] == "spun"
    first = worker._proc.pid
    started = time.monotonic()
    with pytest.raises(WorkerTimeout, match="CPU time") as spent:
        worker.call({"spin_s": 30.0}, timeout_s=0.5)
    assert WALL_CLOCK not in str(spent.value)  # its CPU budget ended it: the same on any machine, never retried
    assert time.monotonic() - started < 10.0
    assert worker._proc is None
    assert worker.call({"gold": "1", "pred": "\\frac{2}{2}", "timeout_s": 2.0}, timeout_s=2.0)["status"] == "correct"
    assert worker._proc.pid != first


def test_the_caller_s_deadline_bounds_the_worker_on_the_wall_clock(worker):
    worker.call({"spin_s": 0.01}, timeout_s=2.0)
    started = time.monotonic()
    with pytest.raises(WorkerTimeout, match=re.escape(WALL_CLOCK)):
        worker.call({"spin_s": 30.0}, timeout_s=30.0, deadline=time.monotonic() + 0.5)
    assert time.monotonic() - started < 1.5


def test_a_worker_still_starting_at_the_deadline_says_wall_clock(worker):
    with pytest.raises(WorkerTimeout, match="still starting.*" + re.escape(WALL_CLOCK)):
        worker.call({"spin_s": 0.01}, timeout_s=2.0, deadline=time.monotonic() + 0.001)
    worker.wait_ready()  # outside any limit: the same process finishes starting and answers
    assert worker.call({"spin_s": 0.01}, timeout_s=2.0)["reason"] == "spun"


def test_grade_many_grades_wall_clock_timeouts_again_and_keeps_cpu_ones(capsys):
    """What a loaded machine did to a batch (one pair's wall clock ran out, one pair spent its CPU budget) is
    undone for the first only: it is graded again, once the symbolic worker is ready, and says so on stderr."""
    jobs = [("\\frac{1}{2}", "0.5", None, 2.0, DEFAULT_OPTIONS), ("1", "2", None, 2.0, DEFAULT_OPTIONS)]
    loaded = [
        Verdict("timeout", False, "0.5", f"the symbolic worker was still starting when the limit passed {WALL_CLOCK}"),
        Verdict("timeout", False, "2", "symbolic step over 2s of CPU time"),
    ]
    assert is_wall_clock_timeout(loaded[0]) and not is_wall_clock_timeout(loaded[1])
    results = grader.regrade_late(list(loaded), lambda i: grader._grade_pair(jobs[i]))
    assert results[0].status == "correct" and results[1] == loaded[1]
    assert "1 pair(s) ran out of wall-clock time" in capsys.readouterr().err
    assert grader.regrade_late([grade("1", "2")], lambda i: grader._grade_pair(jobs[1]))[0].status == "incorrect"
    assert "ran out of wall-clock time" not in capsys.readouterr().err  # nothing to retry: nothing said


def _held_off_its_core(job: tuple) -> Verdict:
    """``job`` graded while every running symbolic worker of this process is stopped for 2.5 s: a machine so loaded
    that the worker gets no core for longer than the pair's whole wall-clock limit (0.5 s + the slack)."""
    pids = [w._proc.pid for w in WORKERS._all if w._proc is not None and w._proc.poll() is None]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)

    def resume_them() -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # a worker the clock ended was killed meanwhile
                os.kill(pid, signal.SIGCONT)

    resume = threading.Timer(2.5, resume_them)
    resume.start()
    try:
        return grader._grade_pair(job)
    finally:
        resume.join()


@pytest.mark.slow
def test_a_retry_is_decided_by_the_worker_s_cpu_budget_not_by_the_load_again(capsys):
    """The load that ended a pair's wall clock is still there when `regrade_late` grades it again (a champ curation
    on Ray lost two chains so, 2026-11-27): the retry's wall-clock deadline is WALL_BACKSTOP_FACTOR times the limit,
    so the worker, held off its core longer than the limit both times, still decides it; its CPU budget stays the
    limit."""
    job = (r"\lim_{n\to\infty} \frac{n}{n+1}", "1", None, 0.5, DEFAULT_OPTIONS)  # answered by the worker
    WORKERS.warm()
    first = _held_off_its_core(job)
    assert is_wall_clock_timeout(first), first  # the same hold, outside a retry: the clock ends the call
    assert 0.5 + DEADLINE_SLACK_S < 2.5 < 0.5 * WALL_BACKSTOP_FACTOR
    again = grader.regrade_late([first], lambda _: _held_off_its_core(job))
    assert again[0].status == "correct", again[0]
    assert "graded again one at a time: 1 decided, 0 timed out again" in capsys.readouterr().err
    assert timeouts.wall_factor() == 1.0  # only the retry had the longer deadline


TIMED_PARSE = """
import json, signal, sys, time
import math_verify.parser
from eval.grading.latex_fallback import _spin, compare_math_verify
original = math_verify.parser.extract_target_from_pred
wait = {"sleep": lambda: time.sleep(1.5), "spin": lambda: _spin(1.5)}[sys.argv[1]]
def slowed(*args, **kwargs):
    wait()
    return original(*args, **kwargs)
math_verify.parser.extract_target_from_pred = slowed
print(json.dumps([compare_math_verify("\\\\frac{1}{2}", "0.5", 2.0), list(signal.getitimer(signal.ITIMER_PROF))]))
"""


@pytest.mark.slow
def test_math_verify_s_own_timer_counts_cpu_time_not_the_wall_clock():
    """In the worker, math-verify's timer (1 s under a 2 s limit) fired by the wall clock (its signal.alarm): a parse
    that waited 1.5 s for a core read as no parse, and the pair went to the other parser. It counts CPU time now: a
    parse that waits keeps math-verify's verdict, one that computes past the budget is still cut off. Each case runs in
    a process of its own, as in the grader's worker: the timer counts the whole process's CPU time, and a test
    worker's other threads (a Ray client's, say) could spend it during the wait."""

    def parsed(wait: str) -> list:
        done = subprocess.run(
            [sys.executable, "-c", TIMED_PARSE, wait], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    verdict, timer = parsed("sleep")  # waiting: wall clock passes, CPU time does not
    assert verdict == {"status": "correct", "reason": "math-verify (our parser declined)"}
    assert timer == [0.0, 0.0]  # disarmed after the call
    verdict, timer = parsed("spin")  # computing: the 1 s of CPU time runs out inside the parse
    assert verdict is None and timer == [0.0, 0.0]  # no parse, as math-verify's own timer gave


def test_limit_holds_in_threads(worker):
    """The limit needs no signal: it works from a thread that is not the main one."""
    outcome: list[str] = []

    def run() -> None:
        try:
            worker.call({"spin_s": 30.0}, timeout_s=0.3)
            outcome.append("answered")
        except WorkerTimeout:
            outcome.append("killed")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert outcome == ["killed"]


def test_threads_do_not_queue_behind_each_other_s_worker():
    """Two threads on the slow path at once hold two workers (two processes), so neither waits for the other's
    limit: with one shared worker the second would queue behind the first's whole step."""
    WORKERS.prestart()
    both_holding = threading.Barrier(2, timeout=120)
    pids: list[int] = []

    def hold() -> None:
        with WORKERS.checkout() as w:
            w.call({"spin_s": 0.01}, timeout_s=30.0)
            pids.append(w._proc.pid)
            both_holding.wait()  # both checked out at once

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert len(pids) == 2 and pids[0] != pids[1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_child_starts_its_own_worker():
    """The parent's worker pipes are not the child's: the child forgets them and grades through a new worker."""
    with WORKERS.checkout() as w:
        w.call({"spin_s": 0.01}, timeout_s=30.0)
        parent_pid = w._proc.pid
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        child = pool.submit(_worker_pids).result(timeout=120)
    assert child["before"] == [] and child["answer"] == "correct"  # no handle on the parent's worker
    assert parent_pid not in child["used"]
    with WORKERS.checkout() as w:  # and the parent's worker still answers the parent
        assert w.call({"gold": "1", "pred": "\\frac{3}{3}", "timeout_s": 2.0}, timeout_s=10.0)["status"] == "correct"


def _worker_pids() -> dict:
    before = [w._proc.pid for w in WORKERS._all if w._proc is not None]
    verdict = grade(r"\lim_{n\to\infty} \frac{n}{n+1}", "1", timeout_s=30.0)
    used = [w._proc.pid for w in WORKERS._all if w._proc is not None]
    return {"before": before, "answer": verdict.status, "used": used}


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="CPU-time accounting reads /proc")
def test_waiting_for_a_core_does_not_use_up_the_limit(worker):
    """Two CPU hogs on the same core as the worker: a 0.4 s step still finishes under a 0.6 s limit."""
    worker.call({"spin_s": 0.01}, timeout_s=2.0)
    pid = worker._proc.pid
    hogs = [
        subprocess.Popen([sys.executable, "-c", "import time\nend=time.time()+20\nwhile time.time()<end: pass"])
        for _ in range(3)
    ]
    try:
        for hog in hogs:
            os.sched_setaffinity(hog.pid, {0})
        os.sched_setaffinity(pid, {0})  # worker and hogs share one core
        started = time.monotonic()
        assert worker.call({"spin_s": 0.4}, timeout_s=0.6)["reason"] == "spun"
        assert time.monotonic() - started > 0.6  # it did wait for the core longer than the limit
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
