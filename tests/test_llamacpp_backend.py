"""The ``llamacpp`` backend against real llama-server processes on 127.0.0.1 (llama.cpp from ``make llamacpp``).

What a user relies on: a model folder served after one cached export; greedy replies equal to the hf backend's (the
overfit tiny model here, SmolLM2 in the slow tier of tests/test_llamacpp_real.py); seeds that decide sampled rows;
the engine (version, flags, GGUF digest) and the server's log beside the run; no server left behind after a normal
exit, a Ctrl-C or a SIGKILL of limo; an evaluation killed midway that resumes. Without llama.cpp these tests skip
(``LIMO_REQUIRE_LLAMACPP=1`` makes that a failure, tests/llamacpp.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.backends.base import GenerationRequest, SamplingParams, row_seed
from eval.backends.generation import GenerationOptions, cached_generator
from eval.backends.llamacpp_server import ServerSettings, server_command
from eval.backends.llamacpp_tools import LlamaCppTools
from limo.models.tiny import DEFAULT_OVERFIT_PAIRS

GREEDY = SamplingParams(temperature=0.0, top_p=1.0, max_new_tokens=40)


@pytest.fixture(scope="module")
def llama_env(llama_tools, tmp_path_factory):
    """llama.cpp where it is installed, and a fresh cache for the exports (so the export path really runs)."""
    cache = tmp_path_factory.mktemp("limo-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIMO_LLAMACPP_DIR", str(llama_tools.root))
        patch.setenv("LIMO_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(scope="module")
def overfit_backend(llama_env, overfit_model_dir):
    from eval.backends.registry import build_backend

    backend = build_backend("llamacpp", model_path=str(overfit_model_dir), parallel=2, context_per_slot=512)
    yield backend
    backend.close()


def _chat(prompt: str, index: int = 0, sampling: SamplingParams = GREEDY, seed: int = 0) -> GenerationRequest:
    meta = {"problem_id": prompt, "sample_index": index}
    messages = ({"role": "user", "content": prompt},)
    return GenerationRequest(f"{prompt}#{index}", messages, sampling, row_seed(seed, prompt, index), meta)


def test_the_server_runs_the_recipes_protocol_not_llamacpps_sampling_defaults():
    tools = LlamaCppTools(Path("/x"), Path("/x/bin/llama-server"), Path("/q"), Path("/c"), Path("/g"), "v")
    command = server_command(tools, Path("m.gguf"), 8123, ServerSettings(parallel=8, context_per_slot=1024))
    flags = " ".join(command)
    assert "--samplers temperature;top_p" in flags  # temperature before the nucleus, as the hf backend samples
    assert "--top-k 0" in flags and "--min-p 0" in flags  # llama.cpp's top-k 40 and min-p 0.05 are off
    assert "-np 8 -c 8192" in flags and "--host 127.0.0.1 --port 8123" in flags and "--jinja" in flags


def test_a_cpu_with_amx_tiles_is_served_without_weight_repacking(tmp_path, monkeypatch, caplog):
    """llama.cpp's AMX kernels die with SIGILL on Linux (ggml-org/llama.cpp#26954; CI on a 2-core Intel Xeon with
    AMX lost every quantized export to it): limo serves without repacking there, and says so once."""
    from eval.backends import llamacpp_server

    sapphire, zen = tmp_path / "sapphire", tmp_path / "zen"
    sapphire.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n")
    zen.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    monkeypatch.delattr(llamacpp_server.amx_cpu, "said", raising=False)
    with caplog.at_level("WARNING"):
        assert llamacpp_server.amx_cpu(str(sapphire)) and llamacpp_server.amx_cpu(str(sapphire))
    assert caplog.text.count("--no-repack") == 1
    assert not llamacpp_server.amx_cpu(str(zen)) and not llamacpp_server.amx_cpu(str(tmp_path / "none"))
    tools = LlamaCppTools(Path("/x"), Path("/x/bin/llama-server"), Path("/q"), Path("/c"), Path("/g"), "v")
    for has_amx in (True, False):
        monkeypatch.setattr(llamacpp_server, "amx_cpu", lambda has_amx=has_amx: has_amx)
        command = server_command(tools, Path("m.gguf"), 8123, ServerSettings())
        assert ("--no-repack" in command) == has_amx


@pytest.mark.slow
def test_a_model_folder_is_exported_once_and_served_with_its_engine_recorded(overfit_backend, overfit_model_dir):
    from eval.backends.llamacpp import exported_gguf, folder_digest
    from eval.backends.model_source import file_digest

    gguf = overfit_backend.gguf
    assert gguf.name == "model.f16.gguf" and gguf.parent.name.startswith(folder_digest(overfit_model_dir)[:24])
    assert (gguf.parent / "export.json").is_file() and (gguf.parent / "model.f16.Modelfile").is_file()
    started = time.monotonic()
    assert exported_gguf(overfit_model_dir, "f16") == gguf  # cached by the folder's digest: nothing runs again
    assert time.monotonic() - started < 10
    engine = overfit_backend.engine
    assert engine["name"] == "llama.cpp" and engine["version"].startswith("0.") and "build" in engine["version"]
    assert engine["gguf_sha256"] == file_digest(gguf) and "--samplers" in engine["server_flags"]


@pytest.mark.slow
def test_greedy_replies_equal_the_hf_backend_and_stop_at_end_of_turn(overfit_backend, overfit_model_dir):
    from eval.backends.hf import HFBackend

    requests = [_chat(prompt) for prompt, _ in DEFAULT_OVERFIT_PAIRS]
    served = overfit_backend.generate(requests)
    local = HFBackend(str(overfit_model_dir), device="cpu").generate(requests)
    assert [g.text for g in served] == [g.text for g in local] == [answer for _, answer in DEFAULT_OVERFIT_PAIRS]
    assert all(g.finish_reason == "stop" and 0 < g.num_tokens < 40 for g in served)


@pytest.mark.slow
def test_sampled_rows_follow_their_seeds(overfit_backend):
    sampled = SamplingParams(temperature=1.5, top_p=1.0, max_new_tokens=16)
    requests = [_chat("Say hello.", index, sampled, seed=3) for index in range(6)]
    first = [g.text for g in overfit_backend.generate(requests)]
    again = [g.text for g in overfit_backend.generate(list(reversed(requests)))]
    assert first == list(reversed(again))  # the same seed gives the same row, in any order and batch
    assert len(set(first)) > 1  # different seeds reach the sampler
    other = [g.text for g in overfit_backend.generate([_chat("Say hello.", i, sampled, seed=4) for i in range(6)])]
    assert other != first


def test_a_rollout_generator_keeps_the_servers_log_beside_its_cache(llama_env, overfit_model_dir, tmp_path):
    server = {"parallel": 2, "context_per_slot": 256}
    options = GenerationOptions("llamacpp", str(overfit_model_dir), server, max_new_tokens=24, batch_size=2)
    generator = cached_generator(options, tmp_path, "rollouts")
    replies = generator.generate([_chat("What is 2 + 3?", i, options.sampling()) for i in range(2)])
    generator.backend.close()
    assert [g.text for g in replies] == ["2 + 3 = 5. The answer is \\boxed{5}."] * 2
    logs = list(tmp_path.glob("rollouts-*.llamacpp.log"))
    assert len(logs) == 1 and "llama-server pid" in logs[0].read_text() and generator.path.is_file()


def _evaluate(repo_root: Path, out: Path, model: Path, limit: int, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "limo.evaluate", "recipe=demo", f"model.path={model}", f"output_dir={out}"]
    command += ["evaluate.backend=llamacpp", f"limit={limit}", "evaluate.batch_size=4", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        command, cwd=repo_root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_sigint_default
    )


def _sigint_default() -> None:
    """In the child: SIGINT back to its default, so Python installs its KeyboardInterrupt handler as in a terminal.
    A suite started in the background by a shell without job control (``cmd &``) inherits SIGINT ignored, and a
    limo started from it ignored the test's Ctrl-C and finished with status 0."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _server_pid(log: Path, timeout: float = 300) -> int:
    """The pid limo wrote into the server's log, once the server is listening."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.is_file() else ""
        pids = [line.split()[-1] for line in text.splitlines() if line.startswith("# limo: llama-server pid")]
        if pids and "listening on" in text:
            return int(pids[-1])
        time.sleep(0.2)
    raise AssertionError(f"no ready server in {log}")


def _gone(pid: int, timeout: float = 20) -> bool:
    """Whether the process has exited (a zombie waiting for init to reap it counts as exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def test_evaluation_records_the_engine_and_leaves_no_server(llama_env, repo_root, overfit_model_dir, tmp_path):
    done = _evaluate(repo_root, tmp_path, overfit_model_dir, 4)
    output = done.communicate(timeout=600)[0].decode()
    assert done.returncode == 0, output[-3000:]
    run = json.loads((tmp_path / "eval" / "champ_heldout" / "run.json").read_text())
    assert run["backend"] == "llamacpp" and run["model"] == str(overfit_model_dir)
    assert run["engine"]["gguf"].endswith("model.f16.gguf") and len(run["engine"]["gguf_sha256"]) == 64
    flags = run["engine"]["server_flags"]
    assert flags[flags.index("-np") + 1] == "4", "one slot per row of a batch (evaluate.batch_size=4)"
    assert flags[flags.index("-c") + 1] == str(4 * (64 + 1024)), "slots sized for the demo's 64 new tokens + prompt"
    assert "engine" in (tmp_path / "eval" / "champ_heldout" / "report.md").read_text()
    assert _gone(_server_pid(tmp_path / "eval" / "llama-server.log")), "the server outlived limo"


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=lambda s: s.name)
@pytest.mark.slow
def test_no_orphan_server_after_limo_is_killed_and_the_run_resumes(
    llama_env, repo_root, overfit_model_dir, tmp_path, stop
):
    # limo is frozen (SIGSTOP) once its first rows are written, so the signal lands mid-run however fast the machine:
    # only if the whole run finished within one poll does it start again, ten times longer.
    for limit in (40, 400):
        out = tmp_path / f"run{limit}"
        running = _evaluate(repo_root, out, overfit_model_dir, limit)
        pid = _server_pid(out / "eval" / "llama-server.log")
        samples = out / "eval" / "champ_heldout" / "samples.jsonl"
        deadline = time.monotonic() + 120
        while not samples.is_file() and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        running.send_signal(signal.SIGSTOP)
        rows_before = samples.read_text().count("\n") if samples.is_file() else 0
        if running.poll() is None and rows_before < limit:
            break
        running.send_signal(signal.SIGCONT)
        running.communicate(timeout=600)
    else:
        pytest.fail("the evaluation finished before it could be stopped, at 40 and at 400 rows")
    running.send_signal(stop)
    running.send_signal(signal.SIGCONT)  # a stopped process takes SIGINT when it runs again (SIGKILL at once)
    running.communicate(timeout=120)
    assert running.returncode != 0
    assert _gone(pid), f"llama-server {pid} outlived limo after {stop.name}"
    resumed = _evaluate(repo_root, out, overfit_model_dir, limit)
    output = resumed.communicate(timeout=600)[0].decode()
    assert resumed.returncode == 0, output[-3000:]
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert len(rows) == len({r["request_id"] for r in rows}) == limit > rows_before
