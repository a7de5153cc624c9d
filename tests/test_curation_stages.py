"""Curation stages on small in-memory pools: each stage's rule, its drop reasons, and the accounting."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from curation.executors import ExecutorOptions
from curation.methods import METHODS, CurationSummary, RunContext
from curation.options import (
    AnswerCheckOptions,
    DifficultyOptions,
    QualityOptions,
    RolloutOptions,
    StageOptions,
    SuspectGoldOptions,
)
from curation.outputs.writer import assistant_text
from curation.pool.ingest import GoldOverride, Pool, apply_gold_overrides
from curation.rollouts.run import rollout_generator, run_rollouts
from curation.schema import HUMAN, Chain
from curation.stages import curate_items
from curation.stages.difficulty import difficulty_decision
from curation.stages.diversity import s1_sample
from curation.stages.quality import assess_chain, keyword_pattern, repetition_fraction, score_text, tokenize
from eval.backends.generation import CachedGenerator, GenerationOptions
from eval.backends.registry import BACKENDS
from eval.backends.replay import ReplayBackend
from eval.options import OptionsError, to_options
from eval.problem import Problem
from eval.records import DataError


def _problem(pid: str, answer: str = "4", subject: str = "algebra") -> Problem:
    return Problem(pid, f"What is the value of {pid}?", answer, "test", subject=subject)


def _attempts(pid: str, generator: str, answers: list[str]) -> list[Chain]:
    """Model chains of ``generator`` at problem ``pid`` (gold 4) that end with each of ``answers``."""
    return [
        Chain(f"{pid}/{generator}/{i}", pid, f"So it is \\boxed{{{a}}}.", generator=generator)
        for i, a in enumerate(answers)
    ]


def _graded(tmp_path: Path, chains: list[Chain], stages: StageOptions, names: list[str], golds: dict[str, str]):
    """``answer_check`` (incorrect chains kept: they are attempts) then ``names`` on the one runner."""
    problems = [_problem(pid, answer=gold) for pid, gold in golds.items()]
    stages = replace(stages, answer_check=AnswerCheckOptions(keep_incorrect=True, timeout_s=60.0))
    return curate_items(problems, chains, stages, ["answer_check", *names], tmp_path)


def test_quality_follows_the_documented_formula():
    options = QualityOptions(
        length_target_words=10, per_words=10, saturation={"verification": 1, "exploration": 1, "granularity": 1}
    )
    patterns = {family: keyword_pattern(words) for family, words in options.keywords.items()}
    text = "Let us verify this. Perhaps x is 2, therefore y is 4."  # 12 words: 1 hit per family
    result = score_text(text, options, patterns)
    assert result["words"] == 12
    assert result["keyword_hits"] == {"verification": 1, "exploration": 1, "granularity": 1}
    rate = min(1.0, 1 / 12 * 10)
    expected = 0.30 * 1.0 + (0.20 + 0.25 + 0.25) * rate
    assert result["score"] == pytest.approx(expected, abs=1e-6)
    assert score_text("x " * 5, options, patterns)["score"] == pytest.approx(0.30 * 0.5)
    assert keyword_pattern(["check"]).count(tokenize("checking re-check Check")) == 1  # whole words only
    assert keyword_pattern(["what if", "so"]).count(tokenize("What if so? Whatever, if")) == 2


def test_structural_checks_drop_with_reasons():
    chains = [
        Chain("ok", "p", "We verify: 2+2=4. The answer is \\boxed{4}.", generator="m"),
        Chain("cut", "p", "We start", generator="m", truncated=True),
        Chain("noanswer", "p", "Some musings without any conclusion at all here", generator="m"),
        Chain("loop", "p", "so we add one more " * 40 + "\\boxed{4}", generator="m"),
    ]
    results = [assess_chain(chain, QualityOptions()) for chain in chains]
    problems = {problem for _, problem in results} - {None}
    verdicts = [problem for _, problem in results]
    assert verdicts == [None, "truncated", "no_final_answer", "repetition_loop"]
    assert problems == {"truncated", "no_final_answer", "repetition_loop"}
    assert repetition_fraction("a b c d e f".split() * 10, 4) > 0.8


def test_difficulty_filters_follow_limo(tmp_path):
    options = DifficultyOptions(
        weak_models=("weak",), weak_max_solved=1, strong_models=("strong",), strong_pass_rate=(1 / 32, 3 / 32)
    )
    assert difficulty_decision({"weak": [1, 1], "strong": [2, 2]}, options) == "too_easy_for_weak_model"
    assert difficulty_decision({"weak": [0, 4], "strong": [2, 32]}, options) is None
    assert difficulty_decision({"weak": [0, 4], "strong": [0, 32]}, options) == "strong_pass_rate_below_window"
    chains = _attempts("easy", "weak", ["4"]) + _attempts("easy", "strong", ["4", "4"])
    chains += _attempts("hard", "weak", ["5"] * 4) + _attempts("hard", "strong", ["4"] * 2 + ["5"] * 30)
    chains += _attempts("never", "weak", ["5"] * 4) + _attempts("never", "strong", ["5"] * 32)
    stages = StageOptions(difficulty=replace(options, source="pool"))
    state, kept = _graded(tmp_path, chains, stages, ["difficulty"], {p: "4" for p in ("easy", "hard", "never")})
    assert list(kept.problems) == ["hard"]
    assert state.funnel[-1].problems_dropped == {"strong_pass_rate_below_window": 1, "too_easy_for_weak_model": 1}
    assert kept.problem_notes["hard"]["difficulty"]["strong_pass_rate"] == pytest.approx(2 / 32)
    assert kept.problem_notes["hard"]["difficulty"]["attempts"] == {"strong": [2, 32], "weak": [0, 4]}


def test_suspect_gold_needs_strong_models_to_agree_against_the_gold(tmp_path):
    options = SuspectGoldOptions(models=("A", "B"), min_agreeing=3, action="drop")
    chains = _attempts("wrong_gold", "A", ["1/8", "0.125"]) + _attempts("wrong_gold", "B", ["\\frac{1}{8}", "8"])
    chains += _attempts("hard", "A", ["1", "2"]) + _attempts("hard", "B", ["3", "5"])
    chains += _attempts("weak_only", "C", ["7"] * 4)
    golds = {"wrong_gold": "8", "hard": "4", "weak_only": "4"}
    state, kept = _graded(tmp_path, chains, StageOptions(suspect_gold=options), ["suspect_gold"], golds)
    assert set(kept.problems) == {"hard", "weak_only"}
    drops = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    (found,) = [d for d in drops if d["kind"] == "problem"]
    assert found["id"] == "wrong_gold" and found["reason"] == "suspect_gold"
    assert found["detail"]["agreeing"] == 3 and found["detail"]["agreed_answer"] == "1/8"


def test_gold_overrides_check_the_old_value():
    human = Chain("p/human", "p", "... = 1/8", final_answer="8", generator=HUMAN)
    pool = Pool([_problem("p", answer="8")], [human], "mem", 1)
    applied = apply_gold_overrides(pool, [GoldOverride("p", "8", "1/8", "the derivation gives 1/8")], "overrides.yaml")
    assert pool.problems[0].answer == "1/8" and pool.chains[0].final_answer == "1/8"
    assert applied[0]["was"] == "8"
    with pytest.raises(DataError, match="overrides.yaml.*expected gold"):
        apply_gold_overrides(pool, [GoldOverride("p", "8", "1/8", "again")], "overrides.yaml")
    with pytest.raises(DataError, match="no such problem"):
        apply_gold_overrides(pool, [GoldOverride("q", "8", "1/8", "x")], "overrides.yaml")


def test_s1_sampling_is_seeded_and_balances_domains():
    by_domain = {"a": [(f"a{i}", 100 - i) for i in range(50)], "b": [("b0", 10), ("b1", 5)]}
    first = s1_sample(by_domain, 6, seed=3)
    assert first == s1_sample(by_domain, 6, seed=3)
    assert {"b0", "b1"} <= set(first)  # the small domain is drawn as often as the big one
    assert len(first) == len(set(first)) == 6


def test_boxed_line_is_appended_only_when_missing():
    assert assistant_text(Chain("c", "p", "so x=2."), "2").endswith("The final answer is $\\boxed{2}$.")
    assert assistant_text(Chain("c", "p", "so \\boxed{2}"), "2") == "so \\boxed{2}"


def test_options_reject_unknown_keys_and_wrong_types_naming_the_key():
    with pytest.raises(OptionsError, match=r"curate.stages.quality.wieghts: unknown key"):
        to_options(StageOptions, {"quality": {"wieghts": {}}}, where="curate.stages")
    with pytest.raises(OptionsError, match=r"curate.stages.select.n: expected int, got str 'ten'"):
        to_options(StageOptions, {"select": {"n": "ten"}}, where="curate.stages")
    with pytest.raises(OptionsError, match=r"select.n: expected int, got bool"):
        to_options(StageOptions, {"select": {"n": True}})
    options = to_options(StageOptions, {"difficulty": {"strong_pass_rate": [0.1, 0.2], "weak_rollouts": {"k": 3}}})
    assert options.difficulty.strong_pass_rate == (0.1, 0.2) and options.difficulty.weak_rollouts.k == 3
    # a nested mapping is merged onto the field's default: setting k keeps the rollout generator's sampling
    assert options.difficulty.weak_rollouts.generator.temperature == 0.7


def run_limo(stages: dict, out: Path, seed: int = 0, executor: ExecutorOptions | None = None) -> CurationSummary:
    """The limo method on plain stage options: in memory, or sharded on ``executor`` as `limo.curate` runs it."""
    return METHODS["limo"].run(
        to_options(StageOptions, stages), None, RunContext(out, seed, "test", executor=executor)
    )


class CountingReplay(ReplayBackend):
    """The replay backend, stopping (as a kill would) after ``fail_after`` generate calls."""

    def __init__(self, pool, fail_after=None):
        super().__init__(pool=pool)
        self.batches = 0
        self.fail_after = fail_after

    def generate(self, requests):
        if self.fail_after is not None and self.batches >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.batches += 1
        return super().generate(requests)


def test_rollouts_show_a_progress_bar_while_they_generate_and_none_when_all_is_cached(tmp_path: Path, capsys):
    problems = [_problem(f"p{i}") for i in range(3)]
    pool = {p.id: [f"{p.id} answer \\boxed{{{i}}}" for i in range(2)] for p in problems}
    options = RolloutOptions(GenerationOptions(backend="replay", model="replayed", batch_size=2), k=2)
    path = rollout_generator(options, tmp_path, 7).path
    run_rollouts(
        problems, CachedGenerator(CountingReplay(pool), path, 2, progress="rollouts student"), options, seed=7
    )
    shown = capsys.readouterr().err
    assert "rollouts student: 100%" in shown and "6/6" in shown
    run_rollouts(
        problems, CachedGenerator(CountingReplay(pool), path, 2, progress="rollouts student"), options, seed=7
    )
    assert "rollouts student" not in capsys.readouterr().err  # nothing left to generate: no bar
    assert rollout_generator(options, tmp_path, 7).progress == "rollouts replayed"


def test_killed_rollouts_resume_without_repeating(tmp_path: Path):
    problems = [_problem(f"p{i}") for i in range(5)]
    pool = {p.id: [f"{p.id} answer \\boxed{{{i}}}" for i in range(3)] for p in problems}
    options = RolloutOptions(GenerationOptions(backend="replay", model="replayed", temperature=0.7, batch_size=3), k=4)
    path = rollout_generator(options, tmp_path, 7).path
    killed = CountingReplay(pool, fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_rollouts(problems, CachedGenerator(killed, path, 3), options, seed=7)
    with open(path, "a") as handle:
        handle.write('{"request_id": "p2#2", "text": "torn')  # a kill mid-append leaves a torn line
    assert killed.calls == 6
    resumed = CountingReplay(pool)
    rows = run_rollouts(problems, CachedGenerator(resumed, path, 3), options, seed=7)
    assert resumed.calls == 20 - 6  # only the unfinished rows
    assert [r["id"] for r in rows] == [f"p{i}#{j}" for i in range(5) for j in range(4)]
    assert rows[5]["text"] == pool["p1"][1]
    again = CountingReplay(pool)
    assert run_rollouts(problems, CachedGenerator(again, path, 3), options, seed=7) == rows and again.calls == 0
    ids = [json.loads(line)["request_id"] for line in path.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 20
    greedy = replace(options, generator=replace(options.generator, temperature=0.0))
    assert rollout_generator(greedy, tmp_path, 7).path != path  # other sampling: another cache file


def test_jsonl_pool_end_to_end_with_field_map_and_bad_rows(tmp_path: Path):
    rows = [
        {
            "uid": "q1",
            "question": "What is 2+2 when added together?",
            "sol": "2+2=4, therefore \\boxed{4}",
            "topic": "a",
        },
        {
            "uid": "q1",
            "question": "What is 2+2 when added together?",
            "sol": "Since 2+2 is 5, \\boxed{5}",
            "topic": "a",
        },
        {
            "uid": "q2",
            "question": "What is 3 times 3 exactly?",
            "sol": "Perhaps 9. Let us verify: 3*3=9. \\boxed{9}",
            "topic": "b",
        },
        {"uid": "q3", "question": "", "sol": "\\boxed{1}", "topic": "b"},
    ]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("\n".join(json.dumps(r) for r in [*rows, rows[2]]) + "\n{not json\n")
    stages = {
        "ingest": {
            "source": str(pool),
            "field_map": {"id": "uid", "problem": "question", "chain": "sol", "subject": "topic"},
            "gold_from": "sol",
        },
        "answer_check": {},
        "decontam": {"enabled": False},
        "difficulty": {"enabled": False},
        "select": {"n": 5},
        "report": {"plots": False},
    }
    summary = run_limo(stages, tmp_path / "run")
    out = tmp_path / "run" / "curate"
    curated = [json.loads(line) for line in (out / "curated.jsonl").read_text().splitlines()]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert summary.read == 6 and summary.selected == 2
    assert {r["id"] for r in curated} == {"q1", "q2"}
    reasons = sorted(r["reason"] for r in rejects)
    # q1's second row contradicts the gold from its first; q2 repeats; q3 has no problem text; a line is not JSON
    assert reasons == ["invalid_row"] * 4
    assert any("contradicts" in r["detail"]["reason"] for r in rejects)
    assert any("earlier row" in r["detail"]["reason"] and r["detail"]["field"] == "chain" for r in rejects)
    assert any(r["detail"]["field"] == "problem" for r in rejects)


def test_pipeline_difficulty_from_replayed_rollouts(tmp_path: Path, monkeypatch):
    rows = [
        {
            "id": f"q{i}",
            "problem": f"What is {i} plus {i} in this exercise number {i}?",
            "answer": str(2 * i),
            "chain": f"{i}+{i}={2 * i}",
        }
        for i in range(1, 5)
    ]
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # q1 is solved in every try (too easy), q2 in 1 of 4, q3 and q4 never.
    responses = {
        "q1": ["\\boxed{2}"],
        "q2": ["\\boxed{4}", "\\boxed{5}", "\\boxed{5}", "\\boxed{5}"],
        "q3": ["\\boxed{0}"],
        "q4": ["\\boxed{0}"],
    }
    # a plug-in backend, registered as a user would (eval.backends.registry.BACKENDS), counting its calls
    backends: list[CountingReplay] = []

    def counting(**_: object) -> CountingReplay:
        backends.append(CountingReplay(responses))
        return backends[-1]

    monkeypatch.setitem(BACKENDS, "counting", counting)
    rollout = {"k": 4, "generator": {"backend": "counting", "model": "replayed", "batch_size": 3}}
    stages = {
        "ingest": {"source": str(pool)},
        "answer_check": {},
        "decontam": {"enabled": False},
        "quality": {"require_final_answer": False},
        "difficulty": {
            "source": "rollouts",
            "strong_models": ["replayed"],
            "strong_pass_rate": [0.2, 0.5],
            "strong_rollouts": rollout,
        },
        "report": {"plots": False},
    }
    run_limo(stages, tmp_path / "run", seed=1)
    made = sum(b.calls for b in backends)
    run_limo(stages, tmp_path / "run", seed=1)
    # adaptive: q1 stops at 3 successes, q3 and q4 at 4 failures, q2 is kept after 3 and completed to 4 (its pass
    # rate ranks it); the second run reads every rollout back (finished chunks are not run again)
    assert sum(b.calls for b in backends) == made == 15
    manifest = json.loads((tmp_path / "run" / "curate" / "manifest.json").read_text())
    assert manifest["rollouts"]["generations"] == 15 and manifest["rollouts"]["fixed_k_staged"] == 16
    curated = [json.loads(line) for line in (tmp_path / "run" / "curate" / "curated.jsonl").read_text().splitlines()]
    assert [r["id"] for r in curated] == ["q2"]
    sharded = run_limo(stages, tmp_path / "sharded", seed=1, executor=ExecutorOptions(kind="local"))
    assert sharded.selected == 1
    for name in ("curated.jsonl", "messages.jsonl", "rejects.jsonl"):
        assert (tmp_path / "sharded" / "curate" / name).read_bytes() == (
            tmp_path / "run" / "curate" / name
        ).read_bytes()
    assert (
        curated[0]["pass_rates"]["attempts"] == {"replayed": [1, 4]}
        and curated[0]["pass_rates"]["source"] == "rollouts"
    )
    funnel = json.loads((tmp_path / "run" / "curate" / "funnel.json").read_text())
    difficulty = next(s for s in funnel["stages"] if s["stage"] == "difficulty")
    assert difficulty["problems_dropped"] == {"strong_pass_rate_above_window": 1, "strong_pass_rate_below_window": 2}
