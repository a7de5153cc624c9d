"""One ``llama-server`` process owned by limo: started on a free 127.0.0.1 port, health-checked, always stopped.

Why these flags (`server_command`): the protocol in the recipe is the whole protocol, as in the hf backend, so the
server's own sampling defaults are switched off — ``--samplers temperature;top_p`` (temperature first, then the
nucleus of the tempered distribution, as `eval.backends.hf.RowSampler` does; llama.cpp's default order applies top-p
before temperature and adds top-k 40 and min-p 0.05); ``--jinja`` renders the chat template the GGUF carries (or
``--chat-template-file``), ``--reasoning-format none`` leaves any thinking in the reply's text; ``-np`` slots of
``context_per_slot`` tokens each (``-c`` is their sum: llama.cpp splits it between the slots); ``--cache-ram 0``:
no prompt cache kept in host memory beside the slots; ``-t`` follows ``OMP_NUM_THREADS`` (the budget torch gets) unless
the caller sets threads. That matters on a shared machine: llama.cpp's threads meet at a spinning barrier after every
operation, so one descheduled thread stalls the others — with 2 threads on 2 cores under a load average of 9, 8
sequences ran at 5.1 tokens/s against 32.7 with 1 thread (transformers with 2 OpenMP threads fared worse still: 1.0
against 8.8).

On a CPU with AMX tiles (Intel Xeon since Sapphire Rapids; Linux) the server runs with ``--no-repack``: weight
repacking hands quantized weights (q4_k_m, q8_0, a ``pkg:`` model's q4_1) to llama.cpp's AMX kernels, which die with
SIGILL there (ggml-org/llama.cpp#26954: the kernel grants the tile-data state per process only when asked, and the
pinned llama.cpp asks from its main thread alone and can lose its tile configuration to the optimiser; measured on a
2-core Intel Xeon with AMX: SmolLM2's q4_1 file killed the server at start, and served with ``--no-repack``). Repacking
is a speed-up of quantized CPU matmuls, so the replies are llama.cpp's own either way; f16 files are not repacked
at all. The flag is in the command ``run.json`` records, and `amx_cpu` says once that it is used.

No orphan server: the child runs in a session of its own (``start_new_session``: a Ctrl-C in the terminal reaches
limo, which stops it, not the server mid-reply) and asks the kernel for SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)`` through ctypes in ``preexec_fn``; the function is looked up before the fork, so the
child runs no import). That covers a SIGKILL of limo, where no Python code runs. SIGKILL, not SIGTERM: a server
whose client is gone has nothing to finish, and llama-server's own shutdown can hang (a 2-core CI run of 2026-11-29:
limo killed mid-reply, the server logged the cancelled task, took the SIGTERM and stayed, asleep, an orphan). The
kernel ties the signal to the *thread* that started the child: start servers from a thread that lives as long as the
server (the main thread, as the entry points do). A normal exit, an exception or Ctrl-C stop it through
`LlamaServer.stop`, which a ``weakref.finalize`` also calls at interpreter exit. The server's output goes to a log
file the caller names, kept after the run; a failed start is one `LlamaServerError` line quoting the log's last line.

Standard library only (``urllib``), like the ``openai`` backend that talks to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from eval.backends.llamacpp_tools import LlamaCppTools
from eval.backends.openai import BackendUnavailableError
from eval.niceness import keep_niceness

PR_SET_PDEATHSIG = 1
HOST = "127.0.0.1"
log = logging.getLogger(__name__)


class LlamaServerError(BackendUnavailableError):
    """llama-server did not start, or answered a request with an error (entry points report it in one line)."""


@dataclass(frozen=True)
class ServerSettings:
    """How limo runs llama-server (the ``llamacpp`` backend's options).

    Attributes:
        parallel: Slots: sequences decoded together (``-np``).
        context_per_slot: Tokens of context each slot holds (prompt and reply).
        threads: CPU threads for generation (``-t``; None: ``OMP_NUM_THREADS`` when set, else llama.cpp's default).
        chat_template_file: A Jinja file that replaces the template the GGUF carries.
        extra_args: Further llama-server arguments, passed as given (after limo's own).
    """

    parallel: int = 8
    context_per_slot: int = 4096
    threads: int | None = None
    chat_template_file: str | None = None
    extra_args: tuple[str, ...] = ()


def server_command(tools: LlamaCppTools, gguf: Path, port: int, settings: ServerSettings) -> list[str]:
    """The llama-server command line limo runs (the module docstring says why each flag)."""
    command = [str(tools.server), "-m", str(gguf), "--host", HOST, "--port", str(port)]
    command += ["-np", str(settings.parallel), "-c", str(settings.parallel * settings.context_per_slot)]
    command += ["--jinja", "--reasoning-format", "none", "--samplers", "temperature;top_p"]
    command += ["--top-k", "0", "--min-p", "0", "--cache-ram", "0", "--no-webui"]
    threads = settings.threads or default_threads()
    if threads:
        command += ["-t", str(threads)]
    if settings.chat_template_file:
        command += ["--chat-template-file", settings.chat_template_file]
    if amx_cpu():
        command.append("--no-repack")
    return command + list(settings.extra_args)


def amx_cpu(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has AMX tiles, where llama-server runs without weight repacking (see the module docstring);
    said once a process."""
    try:
        flags = next((line for line in Path(cpuinfo).read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    found = "amx_tile" in flags.split()
    if found and not getattr(amx_cpu, "said", False):
        amx_cpu.said = True  # type: ignore[attr-defined]
        log.warning(
            "[llamacpp] this CPU has AMX tiles: llama-server runs with --no-repack (its AMX kernels die with SIGILL "
            "on Linux: ggml-org/llama.cpp#26954)"
        )
    return found


def default_threads() -> int | None:
    """``OMP_NUM_THREADS`` when set (the thread budget limo gives torch: the Makefile and the tests set 1), else None
    (llama.cpp's own default, every physical core)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def flags_of(command: Sequence[str]) -> list[str]:
    """The command's arguments without the program, the model file and the port (what run.json records)."""
    kept: list[str] = []
    skip = False
    for arg in command[1:]:
        if skip:
            skip = False
            continue
        if arg in ("-m", "--port"):
            skip = True
            continue
        kept.append(arg)
    return kept


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server may still lose it to another process: `start` retries)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that asks the kernel to SIGKILL the child when limo dies (Linux; elsewhere a no-op), and keeps
    limo's niceness for the child's new session (`eval.niceness`)."""
    parent = os.getpid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return keep_niceness

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # limo died between fork and prctl: nobody would stop this server
            os._exit(1)
        keep_niceness()  # its own session must not lift a nice on limo (eval.niceness)

    return preexec


def _stop_process(process: subprocess.Popen[bytes], log: TextIO | None) -> None:
    """SIGTERM the server's process group, SIGKILL after 10 s; close its log."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if log is not None and not log.closed:
        log.close()


class LlamaServer:
    """A running llama-server; `start` it, talk to it with `request`, `stop` it (also at exit).

    Attributes:
        url: ``http://127.0.0.1:<port>``.
        command: The full command line it runs.
        log_path: Where its output goes.
        pid: Its process id.
    """

    def __init__(self, process: subprocess.Popen[bytes], command: list[str], port: int, log_path: Path, log: TextIO):
        self.process, self.command, self.port, self.log_path = process, command, port, log_path
        self.url = f"http://{HOST}:{port}"
        self.pid = process.pid
        self._finalizer = weakref.finalize(self, _stop_process, process, log)

    @classmethod
    def start(
        cls,
        tools: LlamaCppTools,
        gguf: Path,
        settings: ServerSettings = ServerSettings(),
        *,
        log_path: str | Path | None = None,
        startup_timeout_s: float = 600.0,
        attempts: int = 3,
    ) -> LlamaServer:
        """Start llama-server on ``gguf`` and wait until ``/health`` says it is ready.

        Args:
            tools: The llama.cpp install (`eval.backends.llamacpp_tools.find_tools`).
            gguf: The model file.
            settings: Slots, context, threads, template.
            log_path: The server's log (appended to; None: a new file in the temporary folder).
            startup_timeout_s: How long loading may take.
            attempts: Tries with a fresh port when another process took the one chosen.

        Raises:
            LlamaServerError: The server exited or did not become ready in time.
        """
        log_file = (
            Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="limo-llama-server-", suffix=".log")[1])
        )
        log_file.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(attempts):
            server = cls._spawn(tools, gguf, settings, log_file)
            try:
                server.wait_ready(startup_timeout_s)
                return server
            except LlamaServerError as error:
                server.stop()
                if "bind" not in str(error) or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _spawn(cls, tools: LlamaCppTools, gguf: Path, settings: ServerSettings, log_file: Path) -> LlamaServer:
        port = free_port()
        command = server_command(tools, gguf, port, settings)
        log = log_file.open("a", encoding="utf-8")
        log.write(f"# limo: {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # noqa: PLW1509 - no import in the child: see _die_with_parent
        )
        log.write(f"# limo: llama-server pid {process.pid}\n")  # the log is opened for appending: whole lines
        log.flush()
        return cls(process, command, port, log_file, log)

    def wait_ready(self, timeout_s: float) -> None:
        """Poll ``/health`` until it answers 200 (503 while the model loads).

        Raises:
            LlamaServerError: The process exited, or the time ran out.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.process.poll()
            if status is not None:
                raise LlamaServerError(
                    f"llama-server exited with status {status} before it was ready ({self.last_log_line()}), "
                    f"log {self.log_path}"
                )
            with contextlib.suppress(urllib.error.URLError, OSError, LlamaServerError):
                if self.request("GET", "/health", timeout_s=5).get("status") == "ok":
                    return
            time.sleep(0.2)
        raise LlamaServerError(f"llama-server was not ready after {timeout_s:.0f} s, log {self.log_path}")

    def last_log_line(self) -> str:
        """The log's last non-empty line that is not limo's own (why a start failed)."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "no log"
        useful = [line.strip() for line in lines if line.strip() and not line.startswith("# limo:")]
        return useful[-1][-300:] if useful else "the log is empty"

    def request(self, method: str, path: str, body: Any = None, *, timeout_s: float = 600.0) -> dict[str, Any]:
        """One JSON request to the server.

        Raises:
            LlamaServerError: An HTTP error status (its message quoted).
            urllib.error.URLError: The server cannot be reached.
        """
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return dict(json.loads(response.read().decode("utf-8")))
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise LlamaServerError(f"{self.url}{path}: HTTP {error.code}: {detail}") from None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        self._finalizer()


def version(tools: LlamaCppTools) -> str:
    """``llama-server --version``'s version line (``version: 0.5.0-dev (build 1, commit 0c1e570)``)."""
    done = subprocess.run([str(tools.server), "--version"], capture_output=True, text=True, timeout=60)
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.startswith("version")]
    return lines[0].removeprefix("version: ") if lines else "unknown"
