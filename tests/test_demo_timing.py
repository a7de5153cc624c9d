"""limo.demo says what it cost: each stage's time and the total, `make setup` included when make started it."""

from __future__ import annotations

import os

import pytest

from limo.ablation import warm
from limo.demo import STARTED_ENV, Stage, demo_report, demo_stages, run_stage, setup_time, total_line


def test_setup_time_is_measured_from_makes_start(monkeypatch):
    monkeypatch.delenv(STARTED_ENV, raising=False)
    assert setup_time() is None  # `python -m limo.demo` by hand: no setup to count
    monkeypatch.setenv(STARTED_ENV, "1000.5")
    assert setup_time(now=1081.0) == 80.5
    assert setup_time(now=999.0) is None  # a clock that went back is not a duration
    monkeypatch.setenv(STARTED_ENV, "yesterday")
    assert setup_time() is None


def test_the_report_and_the_console_give_every_stage_and_the_total():
    stages = demo_stages("outputs/demo")
    assert [s.name for s in stages] == ["curate", "evaluate before", "train", "evaluate after", "compare"]
    seconds = [8.0, 100.0, 400.0, 90.0, 4.0]
    assert total_line(seconds) == "602 s (10 min 2 s)"
    assert total_line(seconds, setup_seconds=80.0) == "682 s (11 min 22 s)"
    report = demo_report(stages, seconds, "outputs/demo", "result", setup_seconds=80.0)
    assert "| `make setup` (the environment; seconds when it is in place) | 80 s |" in report
    assert "| fine-tune it on the curated chains (LoRA, 50 steps) | 400 s |" in report
    assert "| **total** | **682 s (11 min 22 s)** | |" in report
    assert "make setup" not in demo_report(stages, seconds, "outputs/demo", "result")


@pytest.mark.slow
def test_a_stage_runs_in_a_fork_of_the_warm_worker_and_a_failed_one_names_its_exit(tmp_path, monkeypatch, capfd):
    """`run_stage` hands the stage's command to a warm worker it starts (the five stages import torch, transformers
    and TRL once), with the demo's own standard streams; a stage that fails, warm or cold (``LIMO_WARM_WORKER=0``),
    ends the demo naming its title, exit status and command."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(warm.SWITCH, raising=False)
    worker = lambda: warm.current(dict(os.environ), os.getcwd(), "", start_one=False)  # noqa: E731
    try:
        run_stage(Stage("help", "the evaluation's help", "limo.evaluate", ("--help",), "-"))
        assert worker() is not None, "the stage did not run in a warm worker"
        assert "usage: python -m limo.evaluate" in capfd.readouterr().out  # the fork wrote to the demo's stdout
        failing = Stage("bad", "a stage that fails", "limo.evaluate", ("recipe=nonesuch",), "-")
        expected = (
            r"limo\.demo: error: stage failed \(a stage that fails\), exit 1: .* -m limo\.evaluate recipe=nonesuch$"
        )
        with pytest.raises(SystemExit, match=expected):
            run_stage(failing)
        assert "limo.evaluate: error: recipe=nonesuch: no such recipe" in capfd.readouterr().err
        warm.shutdown()
        monkeypatch.setenv(warm.SWITCH, "0")
        with pytest.raises(SystemExit, match=expected):
            run_stage(failing)
        assert worker() is None, "a worker started with LIMO_WARM_WORKER=0"
    finally:
        warm.shutdown()
