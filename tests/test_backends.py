"""Generation backends: seeded hf sampling independent of batching, budget forcing, replay, the openai
backend against real servers on 127.0.0.1 (`limo.serve`, `transformers serve`), and its retry / failure
behaviour."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eval.backends.base import GenerationRequest, SamplingParams, row_seed
from eval.backends.budget import BudgetForcing, RowBudget
from eval.backends.openai import BackendUnavailableError, OpenAIBackend
from eval.backends.registry import build_backend
from eval.backends.replay import ReplayBackend, ReplayMissError
from eval.records import write_jsonl

SAMPLED = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=24)


def _requests(n_problems=3, samples=2, sampling=SAMPLED, seed=7):
    return [
        GenerationRequest(
            f"p{i}#{j}",
            ({"role": "user", "content": f"What is {i} + {j}?" + " Think." * i},),
            sampling,
            row_seed(seed, f"p{i}", j),
            {"problem_id": f"p{i}", "sample_index": j},
        )
        for i in range(n_problems)
        for j in range(samples)
    ]


@pytest.fixture(scope="module")
def hf_backend(tiny_model_dir):
    from eval.backends.hf import HFBackend

    return HFBackend(str(tiny_model_dir), batch_size=4, device="cpu")


def test_hf_sampling_is_identical_at_batch_size_1_and_4(hf_backend):
    requests = _requests()
    hf_backend.batch_size = 4
    batched = hf_backend.generate(requests)
    hf_backend.batch_size = 1
    single = hf_backend.generate(requests)
    hf_backend.batch_size = 4
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.num_tokens for g in batched] == [g.num_tokens for g in single]
    assert len({g.text for g in batched}) == len(batched)  # samples of one problem differ: seeds reach the sampler


def test_hf_seed_changes_the_sample_and_reruns_reproduce(hf_backend):
    first = [g.text for g in hf_backend.generate(_requests(seed=1))]
    again = [g.text for g in hf_backend.generate(_requests(seed=1))]
    other = [g.text for g in hf_backend.generate(_requests(seed=2))]
    assert first == again
    assert first != other


def test_hf_reports_length_finish_and_token_counts(hf_backend):
    generation = hf_backend.generate(_requests(1, 1, SamplingParams(0.0, 1.0, 16)))[0]
    assert generation.finish_reason == "length" and generation.num_tokens == 16


def test_hf_stops_at_eos_with_the_overfit_model(overfit_model_dir):
    from eval.backends.hf import HFBackend

    backend = HFBackend(str(overfit_model_dir), device="cpu")
    request = GenerationRequest("q#0", ({"role": "user", "content": "What is 2 + 3?"},), SamplingParams(0, 1, 40))
    generation = backend.generate([request])[0]
    assert generation.text == "2 + 3 = 5. The answer is \\boxed{5}."
    assert generation.finish_reason == "stop" and generation.num_tokens < 40


def test_budget_forcing_minimum_appends_wait_instead_of_stopping(overfit_model_dir):
    from eval.backends.hf import HFBackend

    request = GenerationRequest("h#0", ({"role": "user", "content": "Say hello."},), SamplingParams(0, 1, 30))
    plain = HFBackend(str(overfit_model_dir), device="cpu").generate([request])[0]
    budget = BudgetForcing(min_thinking_tokens=20, max_waits=1)
    forced = HFBackend(str(overfit_model_dir), device="cpu", budget=budget).generate([request])[0]
    assert plain.text == "Hello."
    assert forced.text.startswith("Hello.Wait")
    assert forced.num_tokens > plain.num_tokens


def test_budget_forcing_maximum_forces_the_final_answer(tiny_model_dir):
    from eval.backends.hf import HFBackend

    budget = BudgetForcing(max_thinking_tokens=6, answer_tokens=5)
    backend = HFBackend(str(tiny_model_dir), device="cpu", budget=budget)
    generations = backend.generate(_requests(2, 1, SamplingParams(0.0, 1.0, 400)))
    final_len = len(backend.tokenizer.encode(budget.final_answer_text, add_special_tokens=False))
    for generation in generations:
        assert "Final Answer:" in generation.text
        assert generation.num_tokens <= 6 + final_len + 5


def test_row_budget_state_machine_without_a_model():
    settings = BudgetForcing(min_thinking_tokens=3, max_waits=2)
    row = RowBudget(settings, end_think_id=0, wait_ids=(7, 8), final_ids=(9,), eos_ids=frozenset({0}))
    assert row.next_token(5) == 5  # one thinking token
    assert row.next_token(0) == 7 and row.forced() == 8  # too early to stop: "Wait" (two tokens)
    assert row.thinking_tokens == 3
    assert row.forced() is None and row.next_token(0) == 0  # minimum reached: the end is allowed


def test_budget_settings_are_validated():
    with pytest.raises(ValueError):
        BudgetForcing(min_thinking_tokens=10, max_thinking_tokens=5)


def test_replay_by_request_id_by_problem_and_index_and_from_a_pool(tmp_path):
    path = tmp_path / "responses.jsonl"
    write_jsonl(path, [{"request_id": "p0#0", "text": "A"}, {"problem_id": "p1", "sample_index": 1, "response": "B"}])
    backend = build_backend("replay", path=str(path))
    requests = _requests(2, 2)
    assert [g.text for g in backend.generate([requests[0], requests[3]])] == ["A", "B"]
    with pytest.raises(ReplayMissError, match="p0#1"):
        backend.generate([requests[1]])
    pool = ReplayBackend(pool={"p0": ["x", "y"]})
    assert [g.text for g in pool.generate(_requests(1, 3))] == ["x", "y", "x"]


def test_replay_pool_of_gold_solutions():
    from eval.problem import Problem

    problems = [Problem("p0", "q", "1", "t", solution="So \\boxed{1}."), Problem("p1", "q", "2", "t")]
    backend = ReplayBackend.from_solutions(problems)
    assert backend.generate(_requests(1, 1))[0].text == "So \\boxed{1}."
    with pytest.raises(ReplayMissError):
        backend.generate(_requests(2, 1)[1:])


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(ValueError, match="hf, llamacpp, openai, replay, vllm"):
        build_backend("nope")


@pytest.fixture(scope="module")
def loopback_server(hf_backend):
    from eval.backends.server import start_server

    server = start_server(hf_backend, "tiny")
    yield server
    server.shutdown()


def test_openai_backend_against_loopback_server_matches_hf_in_process(loopback_server, hf_backend):
    requests = _requests()
    remote = OpenAIBackend(loopback_server.base_url, "tiny", concurrency=3).generate(requests)
    local = hf_backend.generate(requests)
    assert [g.text for g in remote] == [g.text for g in local]
    assert [g.num_tokens for g in remote] == [g.num_tokens for g in local]
    assert [g.finish_reason for g in remote] == [g.finish_reason for g in local]


def test_server_answers_bad_requests_with_400_and_is_not_retried(loopback_server, caplog):
    backend = OpenAIBackend(loopback_server.base_url, "tiny", max_retries=3, backoff_s=5.0)
    bad = GenerationRequest("x#0", (), SAMPLED, 0)
    with caplog.at_level("WARNING", logger="eval.backends.openai"):
        with pytest.raises(BackendUnavailableError, match="HTTP 400"):
            backend.generate([bad])
    # Every retry is announced by its failed try's warning (then the backoff sleep): none means none was made. (Not a
    # clock: a wall time bound would also fail on a loaded machine.)
    assert not [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]


def test_server_down_gives_one_line_after_retries():
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "tiny", max_retries=2, backoff_s=0.01, timeout_s=2)
    with pytest.raises(BackendUnavailableError) as err:
        backend.generate(_requests(1, 1))
    assert "after 3 tries" in str(err.value) and "\n" not in str(err.value)


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 to the first two calls, then a valid completion."""

    calls = 0

    def do_POST(self):  # noqa: N802
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).calls <= 2:
            self.send_response(503)
            self.end_headers()
            return
        body = json.dumps({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_openai_backend_retries_server_errors_with_backoff():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        generation = OpenAIBackend(url, "m", max_retries=3, backoff_s=0.01).generate(_requests(1, 1))[0]
    finally:
        server.shutdown()
    assert generation.text == "ok" and _Flaky.calls == 3


def test_api_key_comes_from_the_named_environment_variable(monkeypatch):
    monkeypatch.delenv("LIMO_TEST_KEY", raising=False)
    with pytest.raises(BackendUnavailableError, match="LIMO_TEST_KEY"):
        OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env="LIMO_TEST_KEY")
    monkeypatch.setenv("LIMO_TEST_KEY", "secret")
    assert OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env="LIMO_TEST_KEY").api_key == "secret"


@pytest.fixture(scope="module")
def transformers_server(tiny_model_dir, tmp_path_factory):
    """`transformers serve <tiny model>` on a free port of 127.0.0.1 (a real FastAPI server in its own process)."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "w")  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(tiny_model_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"transformers serve did not come up (exit {process.poll()}); see {log.name}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
def test_empty_replies_from_transformers_serve_are_recorded_and_warned_once(
    transformers_server, tiny_model_dir, caplog
):
    """`transformers serve` parses Qwen2-family replies with a response template: the tiny model's come back
    as empty content with tokens spent. They must not pass for the model's "no answer"."""
    backend = OpenAIBackend(transformers_server, str(tiny_model_dir), concurrency=2)  # model name = served path
    sampling = SamplingParams(temperature=0.0, max_new_tokens=8)
    with caplog.at_level("WARNING", logger="eval.backends.openai"):
        generations = backend.generate(_requests(2, 2, sampling))
    assert [(g.text, g.finish_reason, g.num_tokens) for g in generations] == [("", "error", 8)] * 4
    assert all(g.meta["empty_content"] and g.meta["server_finish_reason"] == "length" for g in generations)
    warnings = [r.getMessage() for r in caplog.records if "empty content" in r.getMessage()]
    assert len(warnings) == 1 and backend.empty_replies == 4 and "warned once" in warnings[0]


@pytest.mark.slow
def test_transformers_serve_needs_the_served_path_as_model_name_and_ignores_n(transformers_server, tiny_model_dir):
    """What docs/evaluation.md says about `transformers serve`, checked against the real server."""
    with pytest.raises(BackendUnavailableError, match="pinned to"):
        OpenAIBackend(transformers_server, "tiny", max_retries=0).generate(_requests(1, 1))
    body = {"model": str(tiny_model_dir), "messages": [{"role": "user", "content": "2+2?"}], "max_tokens": 4, "n": 3}
    reply = OpenAIBackend(transformers_server, str(tiny_model_dir))._post(body)
    assert len(reply["choices"]) == 1  # n > 1 is ignored: the backend sends one request per sample (n=1)


@pytest.mark.slow
def test_evaluation_through_transformers_serve_reports_the_server_errors(
    transformers_server, tiny_model_dir, tmp_path, capsys
):
    from limo.cli.compose import compose
    from limo.evaluate import evaluate, runtime_argv

    data = tmp_path / "data"
    write_jsonl(
        data / "math500.jsonl", [{"id": f"q{i}", "problem": f"{i} + 1 = ?", "answer": str(i + 1)} for i in range(3)]
    )
    options = f"{{base_url: '{transformers_server}', model: '{tiny_model_dir}'}}"
    overrides = [
        "benchmarks=[math500]",
        f"data_dir={data}",
        f"output_dir={tmp_path / 'run'}",
        "evaluate.backend=openai",
        f"evaluate.backend_options={options}",
        "evaluate.protocol.max_new_tokens=8",
    ]
    evaluate(compose("demo", runtime_argv(overrides)))
    folder = tmp_path / "run" / "eval" / "math500"
    metrics = json.loads((folder / "summary.json").read_text())["metrics"]
    assert metrics["error_rate"] == 1.0 and metrics["no_answer_rate"] == 1.0
    assert "server errors (empty replies) 100.00%" in capsys.readouterr().out
    assert "server-error rate" in (folder / "report.md").read_text()
