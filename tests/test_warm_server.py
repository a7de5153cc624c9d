"""The warm server (`limo.ablation.warm`, ``--serve``): a launcher's worker forked from it where its folder and its
environment (but for `warm.UNSEEN`) are the server's; otherwise one line says why and the launcher starts its own. A
served step runs with the launcher's environment and dies with a killed launcher.

The server is the session's (`tests.conftest.warm_server`): these tests fork it, they import nothing heavy."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from limo.ablation import warm
from tests.shared_data import REPO_ROOT


@pytest.fixture
def address(warm_server) -> str:
    if warm_server is None:
        pytest.skip("no warm server in this session (not Linux, or LIMO_WARM_WORKER=0)")
    return warm_server.address


def test_a_launcher_whose_environment_or_folder_differs_is_told_why_and_one_alike_is_served(address, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="limo.ablate")
    own = dict(os.environ)  # the server's (tests.conftest.WarmServer.follow)
    assert warm.from_server(address, {**own, "OMP_NUM_THREADS": "3"}, str(REPO_ROOT)) is None
    assert warm.from_server(address, own, str(tmp_path)) is None
    assert warm.from_server(str(tmp_path / "nobody.sock"), own, str(REPO_ROOT)) is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 3 and all(line.endswith("; this process starts its own") for line in said), said
    assert (
        f"the warm server at {address} serves no worker here: its environment differs in OMP_NUM_THREADS;" in (said[0])
    )
    assert f"its folder is {REPO_ROOT}, not {tmp_path};" in said[1]
    assert "does not answer" in said[2]

    caplog.clear()
    unseen = {**own, "PYTEST_CURRENT_TEST": "another test", "DATATROVE_NODE_RANK": "3", warm.DRIVER: "1"}
    served = warm.from_server(address, unseen, str(REPO_ROOT))
    try:
        assert served is not None and served.process is None and served.alive() and not caplog.records
    finally:
        if served is not None:
            served.close()


LAUNCHER = """
import os, sys
from limo.ablation import warm
worker = warm.from_server(os.environ[warm.SERVER], dict(os.environ), os.getcwd())
assert worker is not None and worker.process is None, "not served"
print("first", worker.run("timeit", ["-n", "1", "-r", "1", "pass"], (0, 1, 2)), flush=True)
print("second", worker.run("timeit", ["-n", "1", "-r", "1", sys.argv[1]], (0, 1, 2)), flush=True)
"""


def test_a_launcher_started_after_readline_s_import_is_served(address):
    """GNU readline's import writes the terminal's size (COLUMNS, LINES) into the C environment, which os.environ
    does not show and children inherit: a launcher started after it (by a test or a shell that imported readline)
    differed from the server there alone, and was refused (a second stderr line where one was expected)."""
    pytest.importorskip("readline")  # a Python built without GNU readline never exports the size
    parent = "import readline, subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    launcher = LAUNCHER + "print('size', os.environ.get('COLUMNS'), os.environ.get('LINES'))\n"
    done = subprocess.run(
        [sys.executable, "-c", parent, sys.executable, "-c", launcher, "pass"],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr  # served: "not served" fails the launcher
    size = done.stdout.splitlines()[-1].split()
    assert size[0] == "size" and size[1].isdigit() and size[2].isdigit(), done.stdout  # it had the size


def test_a_served_step_has_the_launchers_environment_and_dies_with_a_killed_launcher(address, tmp_path):
    seen = tmp_path / "step.txt"
    step = (
        f"import os, time, pathlib; pathlib.Path({str(seen)!r}).write_text(' '.join([str(os.getpid()), "
        "str(os.getppid()), os.environ.get('DATATROVE_NODE_RANK', '-'), os.getcwd()])); time.sleep(300)"
    )
    env = {**os.environ, "DATATROVE_NODE_RANK": "7"}  # the launcher's own, not the server's: the step's
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, step], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        pid, worker, rank, cwd = written_by_step(seen, launcher)
        assert (rank, cwd) == ("7", str(REPO_ROOT))
        launcher.send_signal(signal.SIGKILL)
        assert launcher.wait() == -signal.SIGKILL
        timed, status = launcher.stdout.read().splitlines()  # the first step wrote to the launcher's stdout
        assert timed.startswith("1 loop, best of 1: ") and status == "first 0"
        assert gone(int(pid), int(worker)), "the served step or its worker outlived the killed launcher"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


def written_by_step(path: Path, launcher: subprocess.Popen) -> list[str]:
    """The fields a step wrote to ``path``, once it has (within 120 s: a bound against a hang, not a timing)."""
    deadline = time.monotonic() + 120
    while not path.exists() or not path.read_text():
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.1)
    return path.read_text().split()


def gone(*pids: int) -> bool:
    """Whether every one of ``pids`` has ended within 30 s."""
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone: it is dead, its parent not yet told)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def step_writing(path: Path, sleep: int = 0) -> str:
    """A ``timeit`` statement that writes its process's pid, parent's pid and DATATROVE_NODE_RANK to ``path``."""
    return (
        f"import os, time, pathlib; pathlib.Path({str(path)!r}).write_text(' '.join([str(os.getpid()), "
        f"str(os.getppid()), os.environ.get('DATATROVE_NODE_RANK', '-')])); time.sleep({sleep})"
    )


def run_served(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A ``--run`` client started with SIGINT and SIGTERM at their defaults, as from a terminal: the test process may
    ignore them (an earlier test's doing, or a shell's), and a process inherits that, a served run too."""
    command = [sys.executable, "-m", "limo.ablation.warm", "--run", *args]
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env or dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )


def default_signals() -> None:
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)


def test_an_entry_run_through_the_server_is_a_fork_of_it_with_its_launchers_streams_environment_and_status(
    address, tmp_path
):
    seen = tmp_path / "step.txt"
    client = run_served(
        "timeit", "-n", "1", "-r", "1", step_writing(seen), env={**os.environ, "DATATROVE_NODE_RANK": "7"}
    )
    stdout, stderr = client.communicate(timeout=300)
    assert client.returncode == 0 and stdout.startswith("1 loop, best of 1: ") and not stderr, stderr
    pid, parent, rank = seen.read_text().split()
    assert rank == "7" and int(parent) != client.pid and int(pid) != client.pid  # the server's worker forked it
    failed = run_served("json.tool", str(tmp_path / "missing.json"))
    stdout, stderr = failed.communicate(timeout=300)
    assert failed.returncode == 2 and "missing.json" in stderr.splitlines()[-1] and "warm server" not in stderr


def test_an_entry_the_server_cannot_serve_runs_cold_in_the_client_and_says_so(address, tmp_path):
    seen = tmp_path / "step.txt"
    client = run_served("timeit", "-n", "1", "-r", "1", step_writing(seen), env={**os.environ, "OMP_NUM_THREADS": "3"})
    stdout, stderr = client.communicate(timeout=300)
    assert client.returncode == 0 and stdout.startswith("1 loop, best of 1: ")
    line = f"[limo] the warm server at {address} serves no worker here: its environment differs in OMP_NUM_THREADS; "
    assert stderr == line + "timeit runs here, cold\n"
    assert int(seen.read_text().split()[0]) == client.pid


@pytest.mark.parametrize(("name", "status"), [("SIGTERM", -signal.SIGTERM), ("SIGINT", 1)])
def test_a_signal_to_the_client_reaches_its_served_entry(address, tmp_path, name, status):
    """SIGTERM kills the entry (its default), and the client ends the same way; SIGINT is the entry's
    KeyboardInterrupt (a traceback, status 1) as a Ctrl-C of ``python -m`` is."""
    seen = tmp_path / "step.txt"
    client = run_served("timeit", "-n", "1", "-r", "1", step_writing(seen, sleep=300))
    try:
        pid = int(written_by_step(seen, client)[0])
        client.send_signal(getattr(signal, name))
        _, stderr = client.communicate(timeout=60)
        assert client.returncode == status, stderr
        assert name != "SIGINT" or stderr.rstrip().endswith("KeyboardInterrupt")
        assert gone(pid), "the served entry outlived its signal"
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


def test_a_client_whose_served_worker_ends_before_its_entry_starts_runs_it_cold_with_its_own_signal_handlers(tmp_path):
    """A server that hands out a worker which then ends without starting the entry (its machine's memory killer, a
    server shut down in between): the client says so in one line and runs the entry itself, its SIGINT handler
    Python's own again (not the forwarding one), as a cold ``python -m`` has it."""
    address, seen = str(tmp_path / "ending.sock"), tmp_path / "handler.txt"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(1)

    def serve_then_end() -> None:  # the server's side of `warm.from_server`, then a worker that ends unasked
        channel, _ = listener.accept()
        with channel, channel.makefile("rb") as lines:
            lines.readline()  # the launcher's environment and folder
            channel.sendall(b'{"ready": true}\n')
            _, streams, _, _ = socket.recv_fds(channel, 1 << 16, 3)  # the entry and its streams: ended unstarted
            for fd in streams:  # (held, they would keep the client's pipes open)
                os.close(fd)

    server = threading.Thread(target=serve_then_end, daemon=True)
    server.start()
    statement = f"import signal, pathlib; pathlib.Path({str(seen)!r}).write_text(repr(signal.getsignal(2)))"
    client = run_served("timeit", "-n", "1", "-r", "1", statement, env={**os.environ, warm.SERVER: address})
    try:
        stdout, stderr = client.communicate(timeout=300)
    finally:
        listener.close()
    server.join(timeout=10)
    assert client.returncode == 0 and stdout.startswith("1 loop, best of 1: "), stderr
    assert stderr.startswith("[limo] the warm server's worker ended (") and stderr.endswith("timeit runs here, cold\n")
    assert len(stderr.splitlines()) == 1
    assert seen.read_text() == repr(signal.default_int_handler)
