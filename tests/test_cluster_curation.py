"""Curation on real engines (slow tier): the `champ` curation on a local Ray instance and on a single-node Slurm gives
the local executor's outputs byte for byte (its golden outputs, which tests/test_golden_outputs.py holds the local
run to: no local run is repeated here), and a rollout stage stopped mid-run on Ray resumes without running a
finished chunk again and ends with the uninterrupted run's outputs.

The engines are the session fixtures of ``tests/conftest.py`` (`tests.cluster_engines`). Pools are kept small
(parts of 10,000 chains, a dozen problems for rollouts) so that the tier stays within CI's time; for the rollouts
the grader's limit is raised so that a loaded machine cannot turn one verdict into a timeout in one run only (the
golden runs need not: the grader grades a pair whose wall clock ran out again, alone). The rollouts come from an
OpenAI-compatible server on 127.0.0.1 (`eval.backends.server`) whose replies the test lets through one at a time, so
the stop lands where the test means it to on any machine: a chunk finished, another part-way, none able to finish.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from curation.executors import ExecutorOptions
from curation.methods import METHODS, RunContext
from curation.options import StageOptions
from eval.backends.base import Generation, GenerationRequest
from eval.backends.server import ChatHandler, ChatServer
from eval.options import to_options
from eval.records import read_jsonl
from tests.curation_outputs import assert_same_outputs
from tests.shared_data import REPO_ROOT

pytestmark = pytest.mark.slow


def curate(stages: StageOptions, out: Path, executor: ExecutorOptions, specs: dict | None = None) -> Path:
    METHODS["limo"].run(stages, None, RunContext(out, 42, "champ", specs or {}, executor=executor))
    return out / "curate"


def champ_on(executor: str, out: Path, data_dir: Path, *settings: str) -> None:
    """`champ` in parts of 10,000 chains on ``executor``: its golden outputs, but for the executor the manifest names
    (tests/test_runner.py holds the local run in parts to the same goldens)."""
    from tests.golden_outputs import differences, run_case

    data_dir = data_dir.resolve()
    overrides = [f"executor={executor}", "executor.workers=2", "executor.shard_rows=10000", *settings]
    curated = run_case("champ", out, data_dir, *overrides)
    assert json.loads((curated / "manifest.json").read_text())["execution"]["executor"] == executor
    assert json.loads((curated / "manifest.json").read_text())["execution"]["chain_parts"] == 2  # 19,710 chains
    local = {str(out): "<output_dir>", str(data_dir): "<data_dir>", f'"executor": "{executor}"': '"executor": "local"'}
    changed = differences("champ", curated, local)
    assert not changed, f"champ on {executor}: " + "\n".join(changed)


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")  # datatrove 0.10.1's Ray call style
def test_champ_on_ray_gives_the_local_outputs(tmp_path, shared_data, ray_instance):
    champ_on("ray", tmp_path / "run", shared_data, "executor.mem_per_cpu_gb=0.5")


@pytest.mark.shared_data
def test_champ_on_slurm_gives_the_local_outputs(tmp_path, shared_data, slurm_cluster, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    settings = (f"executor.partition={slurm_cluster.partition}", "executor.poll_seconds=0.5")
    champ_on("slurm", tmp_path / "run", shared_data, *settings)


# ---------------------------------------------------------------------------------------------- rollouts


class Replies:
    """A generator whose reply is a function of the request alone (its prompt and seed): a local run and a Ray run
    get the same replies, in any order and on any worker. Served on 127.0.0.1 by `GatedServer`."""

    name = "replies"

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        generations = []
        for request in requests:
            key = json.dumps([list(request.messages), request.seed]).encode()
            number = hashlib.sha256(key).digest()[0] % 5
            text = f"Counting the cases gives {number}.\n\nThe answer is $\\boxed{{{number}}}$."
            generations.append(Generation(request.id, text, "stop", 12))
        return generations


class GatedHandler(ChatHandler):
    """`ChatHandler`, but a request waits at the server's gate: let through one per release of `GatedServer.gate`, or
    all (`GatedServer.opened`). A waiting request whose client has gone (its process died) is dropped unanswered."""

    server: GatedServer

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))  # read first: then EOF means gone
        gated = self.server
        with gated.count:
            gated.held += 1
        try:
            while not gated.opened.is_set() and not gated.gate.acquire(timeout=0.05):
                readable, _, _ = select.select([self.connection], [], [], 0)
                if readable and not self.connection.recv(1, socket.MSG_PEEK):
                    return  # the client closed its end while it waited: nobody to answer
        finally:
            with gated.count:
                gated.held -= 1
        self.rfile = io.BytesIO(body)
        super().do_POST()


class GatedServer(ChatServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Replies(), "replies")
        self.RequestHandlerClass = GatedHandler
        self.gate = threading.Semaphore(0)
        self.opened = threading.Event()
        self.count = threading.Lock()
        self.held = 0


@pytest.fixture
def gated_server():
    server = GatedServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.opened.set()
    server.shutdown()


def rollout_stages(base_url: str) -> dict:
    """Twelve CHAMP problems and the weak filter's rollouts from the gated server: one round of 4 samples per problem
    (``round_samples``), two problems per chunk, so six chunks."""
    generator = {
        "backend": "openai",
        "model": "replies",
        "backend_args": {"base_url": base_url, "max_retries": 0},
        "temperature": 1.0,
        "max_new_tokens": 256,
        "batch_size": 1,  # every generation is appended to the chunk's cache as it finishes
    }
    return {
        "ingest": {"source": "champ", "problem_limit": 12},
        "validate": {"allowed_settings": ["0-Shot", "5-Shot", "No C w/o H"]},
        "answer_check": {"timeout_s": 60.0},
        "decontam": {"enabled": False},
        "suspect_gold": {"enabled": False},
        "difficulty": {
            "source": "rollouts",
            "weak_models": ["replies"],
            "weak_max_solved": 1,
            "weak_rollouts": {"k": 4, "round_samples": 4, "chunk_size": 8, "generator": generator},
        },
        "select": {"n": 5},
        "report": {"plots": False},
    }


CHUNKS = 6  # round 1: 12 problems x 4 samples, 8 requests per chunk; chunk i starts at plan entry 2 i
CHUNK_ROWS = 8


def chunk_state(work: Path) -> tuple[set[int], dict[int, int], dict[int, list[dict]]]:
    """Round 1's chunks with a completion marker, the generations in each chunk's cache, each chunk's attempts."""
    jobs = list((work / "rollouts" / "jobs").glob("rollouts-weak-r1-*"))
    done = {int(m.name) for job in jobs for m in (job / "datatrove" / "completions").glob("*")}
    cache = work / "rollouts" / "cache"
    rows, attempts = {}, {}
    for chunk in range(CHUNKS):
        caches = [p for p in cache.glob(f"weak-r1-{2 * chunk}-*.jsonl") if not p.name.endswith(".attempts.jsonl")]
        # read while the writers append: a file may end mid-line, even mid-character (read_jsonl leaves that line)
        rows[chunk] = sum(len(read_jsonl(p, tolerate_torn_tail=True)) for p in caches)
        record = cache / f"weak-r1-{2 * chunk}.attempts.jsonl"
        attempts[chunk] = read_jsonl(record, tolerate_torn_tail=True) if record.exists() else []
    return done, rows, attempts


def start_driver(spec: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.curation_driver", json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, driver: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 600  # the pool stages come first: slow on a loaded machine (a bound, not a timing)
    while not condition():
        assert driver.poll() is None, f"the run ended while waiting for {what}: {driver.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no {what} in 600 s"
        time.sleep(0.02)


def written(work: Path, generations: int) -> bool:
    """``generations`` rows in the chunks' caches, and a marker for every chunk holding all its rows."""
    done, rows, _ = chunk_state(work)
    full = {c for c in range(CHUNKS) if rows[c] == CHUNK_ROWS}
    return sum(rows.values()) == generations and full <= done


def stop_mid_chunk(driver: subprocess.Popen, work: Path, server: GatedServer) -> tuple[set[int], dict[int, int]]:
    """Let the generations through one at a time, each written to its chunk's cache (and a chunk's marker, once its
    last one is) before the next, until a chunk has finished and another has generations but no marker; then SIGTERM
    the driver. Every other request waits at the gate, so no chunk can finish while the stop lands."""
    let = 0
    while True:
        done, rows, _ = chunk_state(work)
        if done and any(rows[c] for c in range(CHUNKS) if c not in done):
            break
        server.gate.release()
        let += 1

        wait_for(lambda let=let: written(work, let), driver, f"generation {let} in its chunk's cache")
    driver.send_signal(signal.SIGTERM)
    _, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 1, f"the run was not stopped mid-chunk: {stderr[-2000:]}"
    assert "finished work is kept; run the same command to resume" in stderr
    deadline = time.monotonic() + 120
    while server.held:  # the stopped run's workers die with it: their requests at the gate lose their clients
        assert time.monotonic() < deadline, f"{server.held} request(s) of the stopped run still wait at the gate"
        time.sleep(0.05)
    after, rows_after, _ = chunk_state(work)
    assert (after, rows_after) == (done, rows)  # nothing was written after the stop
    return done, rows


@pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")
def test_rollouts_stopped_on_ray_resume_without_redoing_finished_chunks(tmp_path, gated_server, ray_instance):
    stages = rollout_stages(gated_server.base_url)
    gated_server.opened.set()
    reference = curate(to_options(StageOptions, stages), tmp_path / "local", ExecutorOptions(kind="local"))
    gated_server.opened.clear()
    address = ray_instance.get_runtime_context().gcs_address
    executor = {"kind": "ray", "workers": 2, "mem_per_cpu_gb": 0.5, "ray_address": address}
    out = tmp_path / "ray"
    spec = {"stages": stages, "output_dir": str(out), "executor": executor}
    work = out / "curate" / "work"
    finished, kept = stop_mid_chunk(start_driver(spec), work, gated_server)
    assert 0 < len(finished) < CHUNKS
    assert any(kept[c] for c in range(CHUNKS) if c not in finished)  # a chunk stopped with generations cached
    gated_server.opened.set()
    resumed = start_driver(spec)
    _, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    done, _, attempts = chunk_state(work)
    assert done == set(range(CHUNKS))
    for chunk in range(CHUNKS):
        if chunk in finished:
            assert len(attempts[chunk]) == 1  # a finished chunk never ran again
        else:  # a chunk stopped halfway resumed from what it had generated (the unit tier checks this one too)
            assert attempts[chunk][-1]["cached"] == kept[chunk]
    ray_out = out / "curate"
    for name in ("curated.jsonl", "messages.jsonl", "rejects.jsonl"):
        assert (ray_out / name).read_bytes() == (reference / name).read_bytes(), name
    rollouts = [json.loads((folder / "manifest.json").read_text())["rollouts"] for folder in (reference, ray_out)]
    assert rollouts[0]["generations"] == rollouts[1]["generations"] == 48  # 12 problems x 4 samples


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")
@pytest.mark.parametrize("case", ["lemma", "discopop", "rise", "mammoth2"])
def test_every_method_on_ray_gives_its_golden_outputs(case, tmp_path, shared_data, ray_instance):
    """Every method's pool stages run on the one runner, so on Ray too (champ: the test above); the outputs are the
    golden ones, which the local executor gives (`tests.test_golden_outputs`), but for the executor the manifest
    names."""
    from tests.golden_outputs import differences, run_case

    data_dir = shared_data.resolve()
    ray = ["executor=ray", "executor.workers=2", "executor.mem_per_cpu_gb=0.5"]
    out = run_case(case, tmp_path / "run", data_dir, *ray)
    assert json.loads((out / "manifest.json").read_text())["execution"]["executor"] == "ray"
    local = {
        str(tmp_path / "run"): "<output_dir>",
        str(data_dir): "<data_dir>",
        '"executor": "ray"': '"executor": "local"',
    }
    changed = differences(case, out, local)
    assert not changed, f"{case} on ray: " + "\n".join(changed)


# ---------------------------------------------------------------------------------------- majority-vote golds


@pytest.mark.shared_data
@pytest.mark.filterwarnings("ignore:placement_group:DeprecationWarning")
def test_a_goldless_pool_on_ray_gives_the_local_outputs(tmp_path, shared_data, ray_instance):
    """Golds voted per part of the problems table (parts of 5 problems here) on Ray are the local run's."""
    from tests.test_majority_gold import stages, write_pool

    pool, _ = write_pool(shared_data, tmp_path, with_gold=2)
    options = to_options(StageOptions, stages(pool))
    local = curate(options, tmp_path / "local", ExecutorOptions(kind="local", shard_rows=5))
    executor = ExecutorOptions(kind="ray", workers=2, mem_per_cpu_gb=0.5, shard_rows=5)
    on_ray = curate(options, tmp_path / "ray", executor)
    assert_same_outputs(local, on_ray, ("local", "ray"))
