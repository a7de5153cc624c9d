"""`limo.evaluate` end to end: resume after SIGKILL, the demo on champ_heldout, the openai backend through
the entry point, replay runs with compare and regrade, CHAMP re-grading, and one-line errors."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from eval.records import DataError, read_jsonl, write_jsonl
from eval.reports.report import machine
from limo.cli.compose import compose
from limo.evaluate import evaluate, runtime_argv
from tests.launch import entry

MATH500_ARGS = [
    "benchmarks=[math500]",
    "limit=20",
    "evaluate.protocol.samples=4",
    "evaluate.protocol.max_new_tokens=32",
    "evaluate.protocol.temperature=0.7",
    "evaluate.protocol.top_p=0.95",
]


def run_in_process(overrides: list[str]) -> None:
    """Compose and run `limo.evaluate` in this process, exactly as the command line would."""
    evaluate(compose("demo", runtime_argv(overrides)))


def _cli(args: list[str]) -> list[str]:
    return entry("limo.evaluate", "recipe=demo", *args)


def _complete_lines(path: Path) -> list[str]:
    data = path.read_bytes().decode("utf-8") if path.exists() else ""
    return data.split("\n")[:-1]  # a torn last line (no newline yet) is not a written row


@pytest.fixture(scope="module")
def math500_reference(tmp_path_factory, tiny_model_dir, shared_data):
    """An uninterrupted run: 20 problems x 4 samples, batch size 4."""
    out = tmp_path_factory.mktemp("reference")
    common = [f"model.path={tiny_model_dir}", f"data_dir={shared_data}", f"output_dir={out}"]
    run_in_process([*MATH500_ARGS, *common, "evaluate.batch_size=4"])
    return out / "eval" / "math500"


# `limo.evaluate` killed by SIGKILL at a known point: right after the batch that completes row 40 is on disk, with the
# first bytes of a row after it (what a kill in the middle of a write leaves), so the test does not race the run.
KILLED_AT_ROW_40 = r"""
import os, runpy, signal, sys
import eval.run.runner as runner

write_rows, written = runner.append_jsonl, [0]

def write_then_die(path, rows):
    count = write_rows(path, rows)
    written[0] += count
    if written[0] >= 40:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write('{"request_id": "torn')
        os.kill(os.getpid(), signal.SIGKILL)
    return count

runner.append_jsonl = write_then_die
sys.argv = ["limo.evaluate", *sys.argv[1:]]
runpy.run_module("limo.evaluate", run_name="__main__", alter_sys=True)
"""


@pytest.mark.shared_data
@pytest.mark.slow
def test_killed_run_resumes_without_regenerating_and_matches_uninterrupted(
    math500_reference, tiny_model_dir, shared_data, tmp_path, repo_root
):
    samples = tmp_path / "eval" / "math500" / "samples.jsonl"
    # Batch size 2 here and 4 in the reference: per-row seeds make batching irrelevant.
    overrides = [*MATH500_ARGS, f"model.path={tiny_model_dir}", f"data_dir={shared_data}", f"output_dir={tmp_path}"]
    overrides.append("evaluate.batch_size=2")
    killed = subprocess.run(  # a process of its own, as a user's: SIGKILL mid-write
        [sys.executable, "-c", KILLED_AT_ROW_40, "recipe=demo", *overrides],
        cwd=repo_root,
        capture_output=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    before = _complete_lines(samples)
    assert len(before) == 40 and samples.read_text().endswith('{"request_id": "torn'), "killed mid-write at row 40"

    done = subprocess.run(_cli(overrides), cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "40 of 80 rows already in" in done.stdout + done.stderr
    assert "generating 40" in done.stdout + done.stderr
    after = _complete_lines(samples)
    assert after[:40] == before  # nothing written before the kill was rewritten; the torn line is gone
    reference = read_jsonl(math500_reference / "samples.jsonl")
    assert read_jsonl(samples) == reference  # row for row, same order
    summary = json.loads((samples.parent / "summary.json").read_text())
    expected = json.loads((math500_reference / "summary.json").read_text())
    assert summary["metrics"] == expected["metrics"]


@pytest.mark.shared_data
def test_math500_run_writes_samples_summary_and_report(math500_reference):
    rows = read_jsonl(math500_reference / "samples.jsonl")
    assert len(rows) == 80 and len({r["request_id"] for r in rows}) == 80
    assert {r["sample_index"] for r in rows} == {0, 1, 2, 3}
    needed = {"problem_id", "sample_index", "response", "extracted", "status", "reason", "num_tokens", "seed"}
    assert needed <= set(rows[0]) and rows[0]["finish_reason"] in ("stop", "length")
    metrics = json.loads((math500_reference / "summary.json").read_text())["metrics"]
    assert set(metrics["pass@k"]) == {"1", "2", "3", "4"} and metrics["samples_per_problem"] == 4
    assert set(metrics["by_level"]) <= {"1", "2", "3", "4", "5"} and metrics["by_subject"]
    assert sum(metrics["status_counts"].values()) == 80
    report = (math500_reference / "report.md").read_text()
    for needle in ("temperature=0.7", "samples=4", "checksum=", "git commit", "transformers=", "mean pass@1"):
        assert needle in report
    where = json.loads((math500_reference / "summary.json").read_text())["environment"]["machine"]
    assert where == machine() and f"**machine**: `{where}`" in report


def test_the_machine_names_its_cores_cpu_and_each_gpu_the_driver_lists(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: a b\n\n")
    gpus = (("0000:01:00.0", "NVIDIA H200"), ("0000:02:00.0", "NVIDIA H200"), ("0000:03:00.0", "NVIDIA L4"))
    for bus, model in gpus:
        (tmp_path / "driver" / "nvidia" / "gpus" / bus).mkdir(parents=True)
        (tmp_path / "driver" / "nvidia" / "gpus" / bus / "information").write_text(f"Model: \t\t {model}\nIRQ: 1\n")
    cores = len(os.sched_getaffinity(0))
    assert machine(tmp_path) == f"{platform.machine()}, {cores} cores (Some CPU 9000), 2 x NVIDIA H200, 1 x NVIDIA L4"
    (tmp_path / "cpuinfo").unlink()
    assert machine(tmp_path / "driver" / "nvidia") == f"{platform.machine()}, {cores} cores, no GPU"


@pytest.mark.shared_data
def test_regrade_of_a_run_folder_keeps_verdicts_and_metrics(math500_reference, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(math500_reference.parent, run / "eval")
    before = json.loads((run / "eval" / "math500" / "summary.json").read_text())
    run_in_process(["mode=regrade", f"run_dir={run}", f"output_dir={tmp_path}"])
    after = json.loads((run / "eval" / "math500" / "summary.json").read_text())
    assert after["regrade"]["changed"] == 0
    assert after["metrics"] == before["metrics"] and after["protocol"] == before["protocol"]


def test_demo_evaluates_on_champ_heldout(tiny_model_dir, tmp_path):
    run_in_process(
        [f"model.path={tiny_model_dir}", "limit=3", "evaluate.protocol.max_new_tokens=16", f"output_dir={tmp_path}"]
    )
    summary = json.loads((tmp_path / "eval" / "champ_heldout" / "summary.json").read_text())
    assert summary["model"] == str(tiny_model_dir) and summary["recipe"] == "demo"
    assert summary["metrics"]["problems"] == 3
    assert summary["data"]["source"].startswith("champ-dataset==")
    assert summary["prompt"]["system_prompt"].startswith("Please reason step by step")


def test_demo_without_a_trained_model_names_the_folder_and_a_setting_that_works(tmp_path, monkeypatch):
    """The suggested setting is taken from the message and run: it evaluates the recipe's own (tiny) model."""
    monkeypatch.setenv("LIMO_CACHE", str(tmp_path / "cache"))  # the tiny model is built there on first use
    with pytest.raises(FileNotFoundError) as failure:
        run_in_process([f"output_dir={tmp_path}", "limit=1"])
    message = str(failure.value)
    assert message.startswith(f"no trained model at {tmp_path}/train/model") and message.endswith(
        ", evaluate.model_path"
    )
    suggested = re.search(r"with (evaluate\.model_path=null)", message)
    assert suggested and "python -m limo.train recipe=demo" in message
    run_in_process([f"output_dir={tmp_path}", "limit=1", "evaluate.protocol.max_new_tokens=8", suggested.group(1)])
    summary = json.loads((tmp_path / "eval" / "champ_heldout" / "summary.json").read_text())
    assert summary["model"] == f"{tmp_path}/cache/tiny-qwen2-seed0" and summary["metrics"]["problems"] == 1


def test_a_missing_input_file_names_its_key_before_any_work(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DataError, match=rf"^responses={missing}: no such file, responses$"):
        run_in_process(["mode=regrade", f"responses={missing}", "problems=champ", f"output_dir={tmp_path}"])
    replay = ["evaluate.backend=replay", "++evaluate.backend_options.path=nope.jsonl", f"output_dir={tmp_path}"]
    with pytest.raises(DataError, match=r"^evaluate.backend_options.path=nope.jsonl: no such file \(relative to the"):
        run_in_process(replay)
    assert not (tmp_path / "eval").exists()


def test_rates_are_percentages_on_the_page_and_in_the_report(tiny_model_dir, tmp_path):
    """report.html and report.md show a rate as the console does (``100.00%``), never as a bare share (``1``)."""
    run_in_process(
        [f"model.path={tiny_model_dir}", "limit=2", "evaluate.protocol.max_new_tokens=8", f"output_dir={tmp_path}"]
    )
    out = tmp_path / "eval" / "champ_heldout"
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    page = (out / "report.html").read_text()
    payload = json.loads(
        page.split('<script type="application/json" id="report-data">', 1)[1].split("</script>", 1)[0]
    )
    headline = dict(payload["headline"])
    no_answer, truncated = f"{metrics['no_answer_rate']:.2%}", f"{metrics['truncation_rate']:.2%}"
    assert headline["no-answer rate"] == no_answer and headline["truncation rate"] == truncated
    report = (out / "report.md").read_text()
    assert f"| no-answer rate | {no_answer} |" in report and f"| {truncated} |" in report


def test_cli_errors_are_one_line_and_leave_results_intact(tiny_model_dir, tmp_path, repo_root):
    kept = tmp_path / "eval" / "champ_heldout" / "samples.jsonl"
    write_jsonl(kept, [{"request_id": "x#0"}])
    done = subprocess.run(
        _cli(["benchmarks=[champ_heldout,nope]", f"model.path={tiny_model_dir}", f"output_dir={tmp_path}"]),
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("limo.evaluate: error: unknown benchmark 'nope'")
    assert "Traceback" not in done.stderr
    assert read_jsonl(kept) == [{"request_id": "x#0"}]


def test_malformed_benchmark_file_names_file_and_field(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    write_jsonl(data / "math500.jsonl", [{"id": "a", "problem": "1+1?"}, {"id": "b", "problem": "2+2?"}])
    with pytest.raises(DataError, match=r"math500.jsonl: required field 'answer'"):
        run_in_process(
            ["benchmarks=[math500]", f"data_dir={data}", f"model.path={tiny_model_dir}", f"output_dir={tmp_path}"]
        )


def test_openai_backend_through_the_entry_point_and_server_down(tiny_model_dir, tmp_path):
    from eval.backends.hf import HFBackend
    from eval.backends.openai import BackendUnavailableError
    from eval.backends.server import start_server

    server = start_server(HFBackend(str(tiny_model_dir), device="cpu"), "tiny")
    args = [
        "evaluate.backend=openai",
        f"evaluate.backend_options={{base_url: '{server.base_url}', model: tiny, max_retries: 1, backoff_s: 0.01}}",
        "evaluate.protocol.max_new_tokens=8",
        f"output_dir={tmp_path}",
    ]
    try:
        run_in_process([*args, "limit=2"])
    finally:
        server.shutdown()
        server.server_close()
    samples = tmp_path / "eval" / "champ_heldout" / "samples.jsonl"
    written = samples.read_bytes()
    assert len(read_jsonl(samples)) == 2 and server.served == 2
    with pytest.raises(BackendUnavailableError, match="server unavailable after 2 tries"):
        run_in_process([*args, "limit=4"])
    assert samples.read_bytes() == written


def _replay_file(path: Path, answers: dict[str, str]) -> Path:
    write_jsonl(
        path, [{"problem_id": pid, "sample_index": 0, "text": f"So \\boxed{{{a}}}."} for pid, a in answers.items()]
    )
    return path


def test_replay_runs_compare_with_bootstrap_and_flips(tmp_path, capsys):
    data = tmp_path / "data"
    write_jsonl(
        data / "math500.jsonl", [{"id": f"q{i}", "problem": f"{i} + 0 = ?", "answer": str(i)} for i in range(6)]
    )
    gold = {f"q{i}": str(i) for i in range(6)}
    wrong = {pid: (a if i < 2 else "no such answer 123") for i, (pid, a) in enumerate(gold.items())}
    runs = []
    for name, answers in (("a", wrong), ("b", gold)):
        replay = _replay_file(tmp_path / f"{name}.jsonl", answers)
        out = tmp_path / name
        backend = ["evaluate.backend=replay", f"evaluate.backend_options={{path: '{replay}'}}"]
        run_in_process([*backend, "benchmarks=[math500]", f"data_dir={data}", f"output_dir={out}"])
        runs.append(out)
    summary_b = json.loads((runs[1] / "eval" / "math500" / "summary.json").read_text())
    assert summary_b["metrics"]["mean_pass@1"] == 1.0  # gold answers replayed grade as correct
    run_in_process(["mode=compare", f"runs=[{runs[0]},{runs[1]}]", f"output_dir={tmp_path}"])
    result = json.loads((tmp_path / "compare" / "summary.json").read_text())["benchmarks"][0]
    assert result["delta"] == pytest.approx(result["pass1_b"] - result["pass1_a"])
    assert result["pass1_a"] == pytest.approx(2 / 6) and result["delta"] == pytest.approx(4 / 6)
    assert result["ci_low"] <= result["delta"] <= result["ci_high"]
    assert sorted(result["gained"]) == sorted(list(gold)[2:]) and result["lost"] == []
    assert "paired bootstrap" in capsys.readouterr().out
    low, high = result["interval_b"]
    assert 0.5 < low < 1.0 == high and result["mcnemar_p"] == pytest.approx(2 / 16)  # 4 gained, 0 lost
    from limo.demo import comparison_dir

    assert Path(comparison_dir(str(tmp_path))) == tmp_path / "compare"  # where make demo reads its before/after


def _replay_runs(tmp_path: Path, settings: dict[str, list[str]]) -> list[Path]:
    """One replay run per name in ``settings`` (extra overrides each) on the same six-problem file."""
    data = tmp_path / "data"
    write_jsonl(
        data / "math500.jsonl", [{"id": f"q{i}", "problem": f"{i} + 0 = ?", "answer": str(i)} for i in range(6)]
    )
    replay = _replay_file(tmp_path / "replay.jsonl", {f"q{i}": str(i) for i in range(6)})
    backend = ["evaluate.backend=replay", f"evaluate.backend_options={{path: '{replay}'}}"]
    runs = []
    for name, extra in settings.items():
        run_in_process([*backend, "benchmarks=[math500]", f"data_dir={data}", f"output_dir={tmp_path / name}", *extra])
        runs.append(tmp_path / name)
    return runs


def test_compare_refuses_runs_with_other_problems_or_sampling(tmp_path, monkeypatch, repo_root):
    """A greedy 6-problem run against a sampled 3-problem run: refused in one line, or marked when allowed."""
    runs = _replay_runs(tmp_path, {"a": [], "b": ["limit=3", "evaluate.protocol.temperature=0.7"]})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the recipe's own output_dir (outputs/demo) would land here
    with pytest.raises(DataError, match=r"not comparable \(math500: problems 6 vs 3 .*temperature 0.0 vs 0.7\)"):
        run_in_process(["mode=compare", f"runs=[{runs[0]},{runs[1]}]"])
    done = subprocess.run(_cli(["mode=compare", f"runs=[{runs[0]},{runs[1]}]"]), cwd=repo_root, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("limo.evaluate: error:") and "allow_mismatch=true" in done.stderr

    run_in_process(["mode=compare", f"runs=[{runs[0]},{runs[1]}]", "allow_mismatch=true"])
    out = tmp_path / "compare-a-vs-b"  # beside the runs, not in the recipe's folder
    summary = json.loads((out / "summary.json").read_text())
    assert summary["comparable"] is False and summary["benchmarks"][0]["problems"] == 3
    assert summary["benchmarks"][0]["differences"] == [
        "problems 6 vs 3 (3 only in A, 0 only in B)",
        "temperature 0.0 vs 0.7",
    ]
    assert "NOT COMPARABLE as run (math500)" in (out / "report.md").read_text()
    assert not (elsewhere / "outputs").exists()


def test_compare_accepts_runs_that_differ_only_in_model_and_seed(tmp_path):
    runs = _replay_runs(tmp_path, {"a": [], "b": ["seed=7"]})
    run_in_process(["mode=compare", f"runs=[{runs[0]},{runs[1]}]"])
    summary = json.loads((tmp_path / "compare-a-vs-b" / "summary.json").read_text())
    assert summary["comparable"] is True and summary["benchmarks"][0]["delta"] == 0.0
    assert [r.split(", seed ")[1] for r in summary["benchmarks"][0]["runs"]] == ["42", "7"]


def test_regrade_champ_responses_prints_accuracy_per_model_and_setting(tmp_path, capsys):
    run_in_process(
        [
            "mode=regrade",
            "responses=champ",
            "problems=champ",
            "group_by=[model,prompt_setting]",
            "limit=3",
            f"output_dir={tmp_path}",
        ]
    )
    summary = json.loads((tmp_path / "regrade" / "summary.json").read_text())
    counts = summary["counts"]
    assert counts["read"] == counts["graded"] + counts["rejected"] == 3 * 72
    groups = {(g["model"], g["prompt_setting"]) for g in summary["groups"]}
    assert len(groups) == 72 and ("GPT-4", "0-Shot") in groups
    assert summary["overall"]["n"] == counts["graded"]
    out = capsys.readouterr().out
    assert "| model | prompt_setting | n | correct | accuracy | no answer |" in out
    assert "| PaLM 2 Medium | 5-Shot | 3 |" in out


def test_regrade_rejects_rows_with_unknown_problems(tmp_path):
    responses = tmp_path / "responses.jsonl"
    rows = [
        {"problem_id": "P_Sequence_1", "response": "The answer is 3.", "model": "m"},
        {"problem_id": "nope", "response": "1", "model": "m"},
        {"problem_id": "P_Sequence_1", "response": "2"},
    ]
    write_jsonl(responses, rows)
    run_in_process(
        ["mode=regrade", f"responses={responses}", "problems=champ", "group_by=[model]", f"output_dir={tmp_path}"]
    )
    summary = json.loads((tmp_path / "regrade" / "summary.json").read_text())
    assert summary["counts"] == {"read": 3, "graded": 1, "rejected": 2}
    rejects = read_jsonl(tmp_path / "regrade" / "rejects.jsonl")
    assert [(r["row"], r["field"]) for r in rejects] == [(2, "problem_id"), (3, "model")]


def test_resume_with_another_protocol_is_refused(tmp_path):
    from eval.benchmarks.champ import heldout_split, load_champ_problems
    from eval.run.runner import ResumeMismatchError

    problem = heldout_split(load_champ_problems())[1][0]
    replay = _replay_file(tmp_path / "r.jsonl", {problem.id: problem.answer})
    args = [
        "evaluate.backend=replay",
        f"evaluate.backend_options={{path: '{replay}'}}",
        "limit=1",
        f"output_dir={tmp_path}",
    ]
    run_in_process(args)
    samples = tmp_path / "eval" / "champ_heldout" / "samples.jsonl"
    written = samples.read_bytes()
    with pytest.raises(ResumeMismatchError, match="different protocol"):
        run_in_process([*args, "evaluate.protocol.temperature=0.6"])
    assert samples.read_bytes() == written


@pytest.mark.slow
def test_every_recipe_evaluate_section_is_valid():
    from limo.config.sections import recipe_names
    from limo.setup.evaluate import benchmark_names, build_evaluate_options

    checked = 0
    for recipe in recipe_names():
        cfg = compose(recipe)
        if cfg.get("evaluate") is not None:
            section = build_evaluate_options(cfg)
            assert set(benchmark_names(cfg, section)) <= set(cfg.benchmark_specs), recipe  # groups expanded
            checked += 1
    assert checked >= 1


def test_overfit_model_answers_are_graded_correct_end_to_end(overfit_model_dir, tmp_path):
    """Real model text through the hf backend, grader and metrics: the overfit model knows two answers."""
    data = tmp_path / "data"
    rows = [
        {"id": "sum", "problem": "What is 2 + 3?", "answer": "5", "level": 1, "subject": "Algebra"},
        {"id": "lin", "problem": "Find x if 2x = 8.", "answer": "4", "level": 2, "subject": "Algebra"},
        {"id": "wrong", "problem": "What is 2 + 3?", "answer": "6", "level": 2, "subject": "Prealgebra"},
    ]
    write_jsonl(data / "math500.jsonl", rows)
    run_in_process(
        [
            "benchmarks=[math500]",
            f"data_dir={data}",
            f"model.path={overfit_model_dir}",
            "evaluate.system_prompt=null",
            "evaluate.protocol.max_new_tokens=40",
            "evaluate.protocol.samples=2",
            f"output_dir={tmp_path}",
        ]
    )
    samples = read_jsonl(tmp_path / "eval" / "math500" / "samples.jsonl")
    assert [r["status"] for r in samples] == ["correct", "correct", "correct", "correct", "incorrect", "incorrect"]
    assert samples[0]["extracted"] == "5" and samples[0]["finish_reason"] == "stop"
    metrics = json.loads((tmp_path / "eval" / "math500" / "summary.json").read_text())["metrics"]
    assert metrics["mean_pass@1"] == pytest.approx(2 / 3) and metrics["maj@k"]["2"] == pytest.approx(2 / 3)
    assert metrics["by_level"]["2"]["pass@1"] == 0.5 and metrics["by_subject"]["Prealgebra"]["pass@1"] == 0.0
    assert metrics["truncation_rate"] == 0.0 and metrics["no_answer_rate"] == 0.0


def test_regrade_of_rows_without_gold_names_file_and_row(tmp_path):
    write_jsonl(tmp_path / "eval" / "x" / "samples.jsonl", [{"request_id": "a#0", "gold": "1"}, {"request_id": "b#0"}])
    with pytest.raises(DataError, match=r"samples.jsonl: row 2: field 'gold' is missing"):
        run_in_process(["mode=regrade", f"run_dir={tmp_path}", f"output_dir={tmp_path}"])


def test_resume_knows_a_model_folder_by_its_relative_and_absolute_path(tmp_path, monkeypatch):
    """A run started with a relative model path resumes when a script passes the same folder absolutely; another
    folder is refused, and the error says which model each run had."""
    from eval.run.runner import MANIFEST_FILE, SAMPLES_FILE, ResumeMismatchError, check_manifest

    monkeypatch.chdir(tmp_path)
    (tmp_path / "teacher" / "model").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    manifest = {"benchmark": "b", "protocol": {"samples": 8}, "model": "teacher/model", "backend": "llamacpp"}
    check_manifest(out, manifest)
    (out / SAMPLES_FILE).write_text('{"request_id": "p#0"}\n')
    check_manifest(out, {**manifest, "model": str(tmp_path / "teacher" / "model")})  # the same folder
    assert json.loads((out / MANIFEST_FILE).read_text())["model"] == str(tmp_path / "teacher" / "model")
    with pytest.raises(ResumeMismatchError, match=r"different model \(model: .*teacher/model' then, '.*other' now\)"):
        check_manifest(out, {**manifest, "model": str(tmp_path / "other")})
    with pytest.raises(ResumeMismatchError, match="different model"):  # a name that is no folder is compared as is
        check_manifest(out, {**manifest, "model": "hub/teacher"})
