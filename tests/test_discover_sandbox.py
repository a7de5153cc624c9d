"""The confined runner itself, with code that *does* try to escape (plain Python, not the loss language):
bubblewrap keeps writes, reads of home and the network out; rlimits bound time, memory and file size; the
environment is cleared; a worker dies with its parent. Bubblewrap tests skip where it cannot run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from limo.discovery.sandbox import Limits, bubblewrap_works, resolve_confinement, run_confined

LIMITS = Limits(wall_seconds=60, cpu_seconds=60, memory_bytes=2 << 30, file_bytes=1 << 20)
needs_bwrap = pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap is not installed or cannot run here")


def confined(tmp_path: Path, code: str, confinement: str, limits: Limits = LIMITS, env=None):
    job = tmp_path / "job"
    (job / "work").mkdir(parents=True, exist_ok=True)
    script = job / "script.py"
    script.write_text(code)
    result = run_confined(
        [sys.executable, str(script)],
        workdir=job / "work",
        read_only=[],
        writable=[job],
        limits=limits,
        env=env or {"PATH": "/usr/bin:/bin"},
        confinement=confinement,
        log_path=job / "log.txt",
    )
    return result, job


@pytest.mark.parametrize("confinement", ["rlimits", pytest.param("bubblewrap", marks=needs_bwrap)])
def test_environment_is_cleared(tmp_path, monkeypatch, confinement):
    monkeypatch.setenv("HF_TOKEN", "secret-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-key")
    code = "import os, json\nopen('../env.json', 'w').write(json.dumps(dict(os.environ)))\n"
    result, job = confined(tmp_path, code, confinement)
    assert result.returncode == 0, (job / "log.txt").read_text()
    import json

    env = json.loads((job / "env.json").read_text())
    assert "HF_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["HOME"] == str(job / "work") and env["PATH"] == "/usr/bin:/bin"
    assert result.confinement == confinement


@needs_bwrap
def test_bubblewrap_blocks_writes_reads_and_network_outside_the_job(tmp_path):
    """Sentinels in the host's /tmp and home must not appear; home and the network must be unreachable."""
    sentinels = [tmp_path / "sentinel", Path.home() / ".limo-sandbox-test-sentinel"]
    secret = Path.home() / ".limo-sandbox-test-secret"
    secret.write_text("secret")
    try:
        code = f"""
import socket, subprocess
outcomes = []
for action in (
    lambda: open({str(secret)!r}).read(),
    lambda: open({str(sentinels[1])!r}, "w").write("escaped"),
    lambda: socket.create_connection(("1.1.1.1", 53), timeout=3),
    lambda: open({str(sentinels[0])!r}, "w").write("escaped"),  # lands in the sandbox's private /tmp
    lambda: subprocess.run(["touch", {str(sentinels[0])!r}, {str(sentinels[1])!r}]),
):
    try:
        action()
        outcomes.append("allowed")
    except Exception as err:
        outcomes.append(type(err).__name__)
open("../outcomes.txt", "w").write(",".join(outcomes))
"""
        result, job = confined(tmp_path, code, "bubblewrap")
    finally:
        secret.unlink()
    assert result.returncode == 0, (job / "log.txt").read_text()
    outcomes = (job / "outcomes.txt").read_text().split(",")
    assert "allowed" not in outcomes[:3], outcomes
    assert not any(s.exists() for s in sentinels)


@pytest.mark.parametrize("confinement", ["rlimits", pytest.param("bubblewrap", marks=needs_bwrap)])
def test_wall_clock_limit_kills_an_infinite_loop(tmp_path, confinement):
    limits = Limits(wall_seconds=3, cpu_seconds=60, memory_bytes=2 << 30)
    result, _ = confined(tmp_path, "while True:\n    pass\n", confinement, limits)
    assert result.timed_out and result.seconds < 30
    assert "wall-clock" in result.describe()


def test_cpu_limit_stops_a_busy_loop(tmp_path):
    limits = Limits(wall_seconds=60, cpu_seconds=2, memory_bytes=2 << 30)
    result, _ = confined(tmp_path, "while True:\n    pass\n", "rlimits", limits)
    assert not result.timed_out and result.signal_name in ("SIGXCPU", "SIGKILL")


def test_memory_limit_stops_an_allocation_bomb(tmp_path):
    code = "blocks = []\nwhile True:\n    blocks.append(bytearray(64 << 20))\n"
    result, job = confined(tmp_path, code, "rlimits", Limits(wall_seconds=60, cpu_seconds=60, memory_bytes=1 << 30))
    assert result.returncode != 0 and not result.timed_out
    assert "MemoryError" in (job / "log.txt").read_text()


def test_file_size_limit_bounds_writes(tmp_path):
    code = "f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * (1 << 16))\n"
    result, job = confined(tmp_path, code, "rlimits")
    assert result.returncode != 0
    assert (job / "work" / "big").stat().st_size <= LIMITS.file_bytes


def test_worker_dies_with_its_parent(tmp_path):
    """A loop killed with SIGKILL must not leave a worker training on (resume would race with it)."""
    pid_file = tmp_path / "child.pid"
    parent = f"""
import sys
from pathlib import Path
from limo.discovery.sandbox import Limits, run_confined
job = Path({str(tmp_path)!r}) / "job"
(job / "work").mkdir(parents=True)
script = "import os, time\\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\\ntime.sleep(300)\\n"
(job / "s.py").write_text(script)
run_confined([sys.executable, str(job / "s.py")], workdir=job / "work", read_only=[], writable=[job],
             limits=Limits(300, 300, 2 << 30), env={{}}, confinement="rlimits", log_path=job / "log")
"""
    process = subprocess.Popen([sys.executable, "-c", parent], cwd=Path(__file__).resolve().parent.parent)
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    child = int(pid_file.read_text())
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_unknown_confinement_is_refused():
    with pytest.raises(ValueError, match="confinement"):
        resolve_confinement("docker")
