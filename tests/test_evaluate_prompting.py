"""Prompting from the recipe: system turn, few-shot turns, user template; protocol resolution."""

from __future__ import annotations

import pytest

from eval.problem import Problem
from eval.run.prompting import build_messages, build_prompt_style
from eval.run.runner import EvalProtocol, build_requests, resolve_protocol


def test_messages_have_system_few_shot_and_problem_in_order():
    style = build_prompt_style("Reason.", "Q: {problem}", [{"problem": "1+1?", "response": "\\boxed{2}"}])
    messages = build_messages("2+2?", style)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "Q: 1+1?" and messages[-1]["content"] == "Q: 2+2?"


def test_no_system_prompt_means_no_system_turn():
    assert [m["role"] for m in build_messages("x", build_prompt_style(None))] == ["user"]


def test_bad_prompt_config_is_rejected():
    with pytest.raises(ValueError, match="no {problem} placeholder"):
        build_prompt_style(None, "no placeholder")
    with pytest.raises(ValueError, match="few_shot example 1: missing field 'response'"):
        build_prompt_style(None, "{problem}", [{"problem": "p"}])


def test_protocol_overrides_benchmark_defaults_and_ignores_loader_keys():
    default = {"samples": 8, "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 100, "heldout_seed": 0}
    protocol = resolve_protocol(default, {"max_new_tokens": 32}, seed=42)
    assert protocol == EvalProtocol(samples=8, temperature=0.6, top_p=0.95, max_new_tokens=32, seed=42)
    with pytest.raises(ValueError, match="unknown keys"):
        resolve_protocol({}, {"temprature": 0.7}, seed=0)


def test_requests_are_problem_major_with_distinct_seeds():
    problems = [Problem("a", "p1", "1", "t"), Problem("b", "p2", "2", "t")]
    requests = build_requests(problems, EvalProtocol(samples=3, seed=5), build_prompt_style(None))
    assert [r.id for r in requests] == ["a#0", "a#1", "a#2", "b#0", "b#1", "b#2"]
    assert len({r.seed for r in requests}) == 6
    assert build_requests(problems, EvalProtocol(samples=3, seed=5), build_prompt_style(None)) == requests
