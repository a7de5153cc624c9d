"""`python -m limo.discover` end to end on CPU: real CHAMP pairs, the tiny model, a replay proposer with valid,
malformed and hostile proposals. Hostile ones must leave no sentinel file; every valid proposal gets a
fitness and every other one a reason; a loop killed with SIGKILL mid-training resumes to the same archive
without re-training finished candidates; a changed setting is refused on resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from limo.discovery.sandbox import bubblewrap_works
from tests.launch import entry

REPO = Path(__file__).resolve().parent.parent
ARGS = "policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps"
LOGITS = (
    "    logits = (policy_chosen_logps - policy_rejected_logps)"
    " - (reference_chosen_logps - reference_rejected_logps)\n"
)


def reply(name: str, body: str, prelude: str = "") -> dict:
    code = prelude + f"def {name}({ARGS}):\n{LOGITS}" + "".join(f"    {line}\n" for line in body.splitlines())
    return {"text": "My next idea:\n" + json.dumps({"thought": f"{name} thought", "name": name, "code": code})}


def proposals(sentinel: Path) -> list[dict]:
    s = str(sentinel)
    return [
        reply("cell", "z = beta * logits\nreturn 0.5 * -F.logsigmoid(z) + 0.5 * torch.exp(-z)"),
        {"text": "Let me think about a focal loss first."},
        reply("shell", f"os.system('touch {s}')\nreturn -F.logsigmoid(beta * logits)", prelude="import os\n"),
        reply("dunder", f"__import__('os').system('touch {s}')\nreturn -F.logsigmoid(beta * logits)"),
        reply("builtins", f"().__class__.__base__.__subclasses__()[0]('{s}')\nreturn -F.logsigmoid(beta * logits)"),
        reply("save", f"torch.save(logits, '{s}')\nreturn -F.logsigmoid(beta * logits)"),
        reply("bomb", "x = logits\nfor i in range(8):\n    x = (x[:, None] * x[None, :]).flatten()\nreturn x"),
        reply("nan", "return torch.log(beta * logits)"),
        reply("importlib", f"importlib.import_module('os').system('touch {s}')\nreturn logits", "import importlib\n"),
        reply("getattr", f"getattr(torch, 'os').system('touch {s}')\nreturn -F.logsigmoid(beta * logits)"),
        reply("write", f"open('{s}', 'w').write('x')\nreturn -F.logsigmoid(beta * logits)"),
        reply("spin", "while True:\n    logits = logits + 0\nreturn -F.logsigmoid(beta * logits)"),
        reply("huge", "x = torch.ones(100000, 100000)\nreturn -F.logsigmoid(beta * logits) + x.sum()"),
        {
            "text": json.dumps(
                {
                    "thought": "two functions",
                    "name": "two",
                    "code": f"def a(x):\n    return x\n\ndef b({ARGS}):\n    return a(x)\n",
                }
            )
        },
    ]


EXPECTED = [  # (generation, name, status) of the archive rows
    (0, "dpo", "valid"),
    (1, "cell", "valid"),
    (2, "", "invalid"),
    (3, "shell", "rejected_unsafe"),
    (4, "dunder", "rejected_unsafe"),
    (5, "builtins", "rejected_unsafe"),
    (6, "save", "rejected_unsafe"),
    (7, "bomb", "rejected_unsafe"),
    (8, "nan", "invalid"),
    (9, "importlib", "rejected_unsafe"),
    (10, "getattr", "rejected_unsafe"),
    (11, "write", "rejected_unsafe"),
    (12, "spin", "rejected_unsafe"),
    (13, "huge", "rejected_unsafe"),
    (14, "two", "invalid"),
]


@pytest.fixture(scope="module")
def champ_pairs(tmp_path_factory) -> Path:
    """Pairs curated from CHAMP by the recipe's own curate section (real chains, not invented ones)."""
    out = tmp_path_factory.mktemp("pairs")
    done = run(["-m", "limo.curate", "recipe=discover", f"output_dir={out}"])
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "curate" / "pairs.jsonl"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, champ_pairs):
    folder = tmp_path_factory.mktemp("inputs")
    seeds = [json.loads(line) for line in (REPO / "recipes/data/discover/seed_archive.jsonl").read_text().splitlines()]
    (folder / "seed.jsonl").write_text(json.dumps(seeds[0]) + "\n")  # DPO only: keeps the test short
    sentinel = folder / "sentinel"
    (folder / "replay.jsonl").write_text("".join(json.dumps(r) + "\n" for r in proposals(sentinel)))
    return {
        "pairs": champ_pairs,
        "seed": folder / "seed.jsonl",
        "replay": folder / "replay.jsonl",
        "sentinel": sentinel,
    }


def run(args: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    """``python -m <module> ...`` (``args`` starts with ``-m``), through the warm server where one runs
    (`tests.launch.entry`); the loop's candidates run in confined workers of their own either way."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    assert args[0] == "-m", args
    return subprocess.run(entry(*args[1:]), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def loop_args(inputs: dict, out: Path, confinement: str = "auto") -> list[str]:
    return [
        "-m",
        "limo.discover",
        "recipe=discover",
        f"output_dir={out}",
        f"discover.seed_archive={inputs['seed']}",
        "discover.proposer.backend=replay",
        f"discover.proposer.path={inputs['replay']}",
        f"discover.generations={len(EXPECTED) - 1}",
        f"discover.fitness.pairs={inputs['pairs']}",
        "discover.fitness.max_train_pairs=4",
        "discover.fitness.max_eval_pairs=4",
        "discover.fitness.max_pair_chars=700",
        "train.args.max_steps=2",
        "train.args.per_device_train_batch_size=2",
        "train.global_batch_size=2",
        f"discover.sandbox.confinement={confinement}",
    ]


def archive(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "discover" / "archive.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, inputs) -> Path:
    out = tmp_path_factory.mktemp("loop")
    done = run(loop_args(inputs, out))
    assert done.returncode == 0, done.stderr[-4000:]
    return out


@pytest.mark.slow
def test_loop_scores_valid_proposals_and_rejects_the_rest_with_reasons(finished, inputs):
    rows = archive(finished)
    assert [(r["generation"], r["name"], r["status"]) for r in rows] == EXPECTED
    for row in rows:
        if row["status"] == "valid":
            assert 0.0 <= row["fitness"] <= 1.0 and row["reason"] is None
            assert (finished / "discover" / row["training_log"]).exists()
            assert row["metrics"]["test"]["pairs"] == 4 and row["metrics"]["selection"]["pairs"] == 4
        else:
            assert row["fitness"] is None and row["reason"]
    assert not inputs["sentinel"].exists()
    runtime_checked = {r["name"]: r["confinement"] for r in rows if r["confinement"]}
    assert set(runtime_checked) == {"dpo", "cell", "bomb", "nan"}  # the rest never reached a process
    assert set(runtime_checked.values()) == {"bubblewrap" if bubblewrap_works() else "rlimits"}
    report = (finished / "discover" / "report.md").read_text()
    assert "proposals read: 14 = 1 valid + 3 invalid + 10 rejected_unsafe" in report
    assert "| dpo |" in report and "### 1. cell (generation 1)" in report and "fitness.png" in report
    cell = next(r for r in rows if r["name"] == "cell")
    accuracy = cell["fitness"]  # 4 held-out pairs: a binomial standard error, shown beside the score
    assert cell["fitness_se"] == pytest.approx((accuracy * (1 - accuracy) / 4) ** 0.5, abs=1e-6)
    assert f"{accuracy:.4f} ± {cell['fitness_se']:.3f}" in report and "## How noisy the fitness is" in report
    assert (finished / "discover" / "fitness.png").stat().st_size > 1000


@pytest.mark.slow
def test_killed_loop_resumes_to_the_same_archive_without_retraining(finished, inputs, tmp_path):
    """SIGKILL while the first proposal trains, then rerun. This run confines by rlimits only (the run above used
    bubblewrap where it works), so it also shows that both confinements give the same results."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, *loop_args(inputs, tmp_path, "rlimits")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    candidates = tmp_path / "discover" / "candidates"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not list(candidates.glob("g0001-*/validation.json")):
        assert process.poll() is None, "the loop ended before it could be killed"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not list(candidates.glob("g0001-*/result.json"))  # killed mid-training
    seed_result = next(candidates.glob("g0000-*/result.json"))
    reference = tmp_path / "discover" / "data" / "reference" / "result.json"
    finished_at, reference_at = seed_result.stat().st_mtime_ns, reference.stat().st_mtime_ns
    assert len(archive(tmp_path)) == 1
    done = run(loop_args(inputs, tmp_path, "rlimits"))
    assert done.returncode == 0, done.stderr[-4000:]
    assert seed_result.stat().st_mtime_ns == finished_at  # the finished seed was not trained again
    assert reference.stat().st_mtime_ns == reference_at  # nor the reference log-probs computed again
    resumed, uninterrupted = archive(tmp_path), archive(finished)
    assert {r["confinement"] for r in resumed} == {None, "rlimits"}
    assert [{**r, "confinement": None} for r in resumed] == [{**r, "confinement": None} for r in uninterrupted]
    assert not inputs["sentinel"].exists()


@pytest.mark.slow
def test_resuming_with_changed_settings_is_refused(finished, inputs):
    done = run([*loop_args(inputs, finished), "discover.fitness.metric=preference_margin"])
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("limo.discover: error: ")
    assert "fitness.metric" in done.stderr


@pytest.mark.slow
def test_missing_replay_file_is_one_error_line(tmp_path, champ_pairs):
    missing = tmp_path / "nope.jsonl"
    done = run(
        [
            "-m",
            "limo.discover",
            "recipe=discover",
            f"output_dir={tmp_path}",
            f"discover.proposer.path={missing}",
            f"discover.fitness.pairs={champ_pairs}",
        ]
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("limo.discover: error: ") and "nope.jsonl" in last
    assert not (tmp_path / "discover" / "archive.jsonl").exists()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["recipe=demo"], "recipe 'demo' has no `discover:` section (recipes with one: discover)"),
        (["recipe=discover", "discover.fitness.metric=accuracy"], "discover.fitness.metric: expected one of"),
        (["recipe=discover", "+discover.fitness.pair=x"], "discover.fitness.pair: unknown key"),
        (["recipe=discover", "discover.proposer.path=null"], "discover.proposer.path: a replay proposer needs"),
        (["recipe=discover", "+train.discovered_loss.name=x"], "train: discover trains candidates with"),
    ],
)
def test_a_bad_discover_setting_is_one_error_line_naming_it(tmp_path, overrides, expected):
    done = run(["-m", "limo.discover", *overrides, f"output_dir={tmp_path}"])
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("limo.discover: error: ") and expected in last, last


class _Proposer(BaseHTTPRequestHandler):
    """An OpenAI-compatible proposer on 127.0.0.1 that records the conversations it is sent."""

    replies: list[str] = []
    seen: list[list[dict]] = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body["messages"])
        text = type(self).replies[len(type(self).seen) - 1]
        payload = json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_openai_proposer_hears_each_verdict_and_is_not_asked_again_on_resume(tmp_path):
    """Proposals refused before any process runs keep this fast; the conversation is the paper's."""
    from limo.cli.compose import compose
    from limo.discovery.build import build_prompt_texts, build_proposer
    from limo.discovery.loop import CandidateRunner, load_state, run_generations
    from limo.discovery.options import DiscoverPaths, build_discover_options
    from limo.discovery.sandbox import Limits

    _Proposer.replies = [json.loads(r["text"].split("\n", 1)[1]) for r in proposals(tmp_path / "sentinel")[2:4]]
    _Proposer.replies = ["no json here", *(json.dumps(r) for r in _Proposer.replies)]
    _Proposer.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proposer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    overrides = [
        f"output_dir={tmp_path}",
        "discover.generations=3",
        "discover.proposer.backend=openai",
        "discover.proposer.model=m",
        f"+discover.proposer.backend_args.base_url={url}",
    ]
    options = build_discover_options(compose("discover", overrides))
    paths = DiscoverPaths(str(tmp_path))
    runner = CandidateRunner(
        paths, {"seed": 0, "metric": "preference_accuracy"}, Limits(60, 60, 1 << 30), "rlimits", ()
    )
    try:
        for _ in range(2):  # the second pass resumes from the proposer's reply cache and asks nothing
            proposer = build_proposer(options.proposer, paths, 0)
            state = load_state(paths, proposer)
            state.rows = []
            texts = build_prompt_texts(options)
            run_generations(runner, proposer, texts, options, 3, state, on_row=state.rows.append)
            assert [r["status"] for r in state.rows] == ["invalid", "rejected_unsafe", "rejected_unsafe"]
    finally:
        server.shutdown()
    assert len(_Proposer.seen) == 3 and not (tmp_path / "sentinel").exists()
    third = _Proposer.seen[2]
    assert [m["role"] for m in third] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert third[2]["content"] == "no json here"
    assert third[3]["content"].startswith("Code not valid. Error: the reply contains no JSON object")
    assert "import of 'os' is not allowed" in third[5]["content"]


@pytest.mark.slow
def test_benchmark_accuracy_fitness_grades_the_trained_models_answers(tmp_path, inputs, overfit_model_dir):
    """The overfit tiny model answers "What is 2 + 3?" with 5; half the benchmark's golds say 6. A negligible
    learning rate leaves it unchanged, so each half's accuracy is its share of rows whose gold is 5."""
    from eval.records import read_jsonl, write_jsonl

    rows = [
        {"id": f"{kind}{i}", "problem": "What is 2 + 3?", "answer": gold}
        for i in range(6)
        for kind, gold in (("five", "5"), ("six", "6"))
    ]
    write_jsonl(tmp_path / "data" / "math500.jsonl", rows)
    out = tmp_path / "run"
    args = [
        *loop_args(inputs, out),
        "discover.generations=0",
        "discover.fitness.metric=benchmark_accuracy",
        "discover.fitness.benchmark=math500",
        f"data_dir={tmp_path / 'data'}",
        f"model.path={overfit_model_dir}",
        "train.system_prompt=null",
        "train.args.learning_rate=1e-12",
        "discover.fitness.max_new_tokens=40",
    ]
    done = run(args)
    assert done.returncode == 0, done.stderr[-4000:]
    [row] = archive(out)
    assert row["status"] == "valid", row["reason"]
    assert row["fitness"] == row["metrics"]["selection"]["benchmark_accuracy"]
    for half in ("selection", "test"):
        problems = read_jsonl(out / "discover" / "data" / f"benchmark_{half}.jsonl")
        expected = sum(p["answer"] == "5" for p in problems) / len(problems)
        assert row["metrics"][half]["problems"] == len(problems) > 0
        assert row["metrics"][half]["benchmark_accuracy"] == pytest.approx(expected)
    assert 0 < row["metrics"]["selection"]["benchmark_accuracy"] < 1 or 0 < expected < 1
    assert not list((out / "discover" / "candidates").glob("*/model"))  # the saved model is removed after scoring
    assert "benchmark math500" in (out / "discover" / "report.md").read_text()


@pytest.mark.slow
def test_a_program_that_passes_the_checker_but_runs_too_long_is_stopped_by_the_sandbox(tmp_path):
    """Allowed operations only, within every interpreter limit, but ~1,000 quantiles of 2^20 elements per
    random input (over 20 s of CPU here): the worker's 8 s wall clock stops it while validating, so it counts as
    hostile. The quantiles are of a detached tensor: with the graph kept, each held 8 MB and a loaded machine reached
    the memory limit first."""
    from limo.discovery.loop import CandidateRunner, run_worker
    from limo.discovery.options import DiscoverPaths
    from limo.discovery.sandbox import Limits, python_paths

    body = (
        "a = (logits[:, None] * logits[None, :]).flatten()\nb = (a[:, None] * a[None, :]).flatten()\n"
        "c = (b[:, None] * a[None, :]).flatten()\nd = (c[:, None] * logits[None, :4]).flatten().detach()\n"
        "s = 0.0\nfor i in range(1000):\n    s = s + torch.quantile(d, 0.5)\n"
        "return -F.logsigmoid(beta * logits) + 0 * s"
    )
    code = json.loads(reply("slow", body)["text"].split("\n", 1)[1])["code"]
    job = {"beta": 0.05, "seed": 0, "validation_trials": 10, "fitness": False, "metric": "preference_accuracy"}
    runner = CandidateRunner(
        DiscoverPaths(str(tmp_path)),
        job,
        Limits(8, 60, 4 << 30),
        "rlimits",
        tuple(python_paths()),
        {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    result, confinement = run_worker(runner, tmp_path / "candidate", code)
    assert result["status"] == "rejected_unsafe" and "wall-clock" in result["reason"], result
    assert confinement == "rlimits" and not (tmp_path / "candidate" / "validation.json").exists()
