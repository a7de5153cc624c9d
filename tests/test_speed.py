"""limo.training.speed: the matmul peak and the plan's wall-time line for a CPU run, measured briefly for a short run
and for longer where the estimate is worth planning by."""

from __future__ import annotations

import re

from limo.training import speed


def test_a_measurement_of_no_time_still_times_one_product_after_the_warm_up():
    assert speed.matmul_peak_gflops(size=64, seconds=0.0) > 0


def test_a_short_run_is_estimated_from_the_brief_measurement_and_a_long_one_measured_again(
    tiny_model_dir, monkeypatch
):
    asked: list[float] = []

    def peak(size: int = 1024, seconds: float = speed.FULL_S) -> float:
        asked.append(seconds)
        return 100.0 if seconds == speed.QUICK_S else 200.0  # the longer loop finds a higher best

    monkeypatch.setattr(speed, "matmul_peak_gflops", peak)
    params = speed.parameter_count(str(tiny_model_dir))
    assert params
    tokens_a_minute = speed.LONG_RUN_S * speed.CPU_EFFICIENCY["full"] * 100.0e9 / (6 * params)
    short = speed.cpu_estimate(str(tiny_model_dir), tokens_a_minute / 2, lora=False)
    assert asked == [speed.QUICK_S] and short and "measured now 100 GFLOP/s" in short
    assert re.search(r"about 0\.5 min$", short)
    asked.clear()
    long = speed.cpu_estimate(str(tiny_model_dir), tokens_a_minute * 2, lora=False)
    assert asked == [speed.QUICK_S, speed.FULL_S] and long and "measured now 200 GFLOP/s" in long
    assert re.search(r"about 1\.0 min$", long)  # at the better peak: half the brief measurement's 2 minutes
