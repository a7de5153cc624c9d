"""limo.demo says what it cost: each stage's time and the total, `make setup` included when make started it."""

from __future__ import annotations

from limo.demo import STARTED_ENV, demo_report, demo_stages, setup_time, total_line


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
