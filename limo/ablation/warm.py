"""The warm worker: an ablation's local steps run as forks of one process that imported the training stack once.

A step is ``python -m limo.<curate|train|evaluate> ...``; started cold, a training or evaluation spends 2.5-7 s of
CPU (an idle or a loaded 2-core machine) importing torch, transformers, peft and trl before it reads its first
argument. On the local executor `launch` hands the step to a warm worker instead: a process started once per
launching process (the ablation, or each ``--jobs`` pool worker) at its first training or evaluation, or at a
curation whose run goes on to one (a curation alone imports no torch: it uses a worker that is running, and starts
none), that imports those packages
(`WARM_MODULES`, about 5.5 s of CPU) and nothing of the step's, then per step forks a child that
becomes the step's process: the step's arguments, folder, environment and standard streams (received as file
descriptors), and its entry module run as ``__main__`` the way ``python -m`` runs it, exiting the way the interpreter
does (an exit status, a traceback and 1, or a signal). The worker waits for the child and sends back its status in
`subprocess`'s convention (negative: killed by that signal).

What keeps a warm step the same as a cold one:

- the worker imports modules, never runs them: no CUDA (it checks ``torch.cuda.is_initialized()`` and refuses to
  serve otherwise; a child initialises CUDA itself, as a cold process does), no thread pools started, no seeds drawn;
- what a package reads from the environment or the folder at import (``OMP_NUM_THREADS``, ``HF_HUB_OFFLINE``, cache
  paths) is the step's: a worker serves only steps with the environment and folder it started with, and a step that
  differs gets a fresh worker;
- a child restores the launcher's disposition of SIGINT and SIGTERM, as an exec'd process inherits it.

Lifetimes are those of a cold step: the worker dies with the process that started it (``PR_SET_PDEATHSIG``), and a
child with the worker, checked after the ``prctl`` so a worker gone during the fork leaves no orphan. A launcher
interrupted while a step runs (Ctrl-C, SIGTERM turned into an exception) kills the step and its worker; the next step
starts a fresh one. Its command line names the first step's ``output_dir``, so ``ps`` shows which ablation it serves.

``LIMO_WARM_WORKER=0`` turns it off: every step is a cold ``python -m`` process. A worker that fails to start or to
import says so in one line, and the steps then run cold.

A warm server serves many launchers: ``python -m limo.ablation.warm --serve SOCKET`` imports once and listens on a
Unix socket; with ``LIMO_WARM_SERVER=SOCKET`` a launcher's worker is a fork of it (no imports of its own) instead of a
process it starts. For many short launches, a tiny-model screen's chunks or the test suite's ablations, each of which
would otherwise import the stack for its own worker. The server serves only a launcher whose folder and environment
are its own but for `UNSEEN` (variables no import reads); the forked worker then takes the launcher's environment
exactly. A launcher it refuses, or cannot reach, says so in one line and starts its own worker. A served worker ends
when its launcher's end of the socket closes (a killed launcher's too), killing a step that runs, and with the server.
``python -m limo.ablation.warm --run MODULE [ARGS ...]`` is such a launcher for one entry (`run_served`).
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import fnmatch
import functools
import gc
import importlib
import json
import logging
import multiprocessing.util
import os
import select
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

SWITCH = "LIMO_WARM_WORKER"
SERVER = "LIMO_WARM_SERVER"  # a warm server's socket: this process's worker is a fork of it (see the module's text)
DRIVER = "LIMO_ABLATE_DRIVER"  # the ablation's process id: set for the local executor's shards only
STAGES = ("curate", "train", "evaluate")
STARTERS = ("train", "evaluate")  # the stages that need torch: a curation uses a worker only when one is running
# What a tiny-model step spends its start-up importing (``python -X importtime``); the classes are named because
# transformers, trl and peft import their submodules only when an attribute is first read.
WARM_MODULES = (
    "torch",
    "numpy",
    "sympy",
    "transformers:AutoModelForCausalLM,AutoTokenizer,PreTrainedTokenizerFast,Trainer,TrainingArguments",
    "peft:LoraConfig,PeftModel,get_peft_model",
    "trl:SFTConfig,SFTTrainer,DPOConfig,DPOTrainer,GRPOConfig,GRPOTrainer",
    "datasets:Dataset",
    "accelerate",
    "safetensors.torch",
    "hydra",
    "omegaconf",
    "limo.cli.entry",
    "limo.setup.curate",
    "limo.setup.train",
    "limo.setup.evaluate",
    "limo.setup.eval_modes",
    "limo.training.trainers",
    "eval.grading.grader",
)
# What a DeepSpeed rank imports beyond `WARM_MODULES`: its engine imports the Muon optimizer to check the optimizer it
# is given, and that module compiles a function with torch.compile at import (torch._dynamo and inductor: about 3 s
# of CPU a rank). Preloaded by the launchers that fork ranks from one process (the tests' `tests.fork_ranks`, the
# GPU check's CPU runs); the ablation's steps run no DeepSpeed by default, so the warm worker leaves them out.
DEEPSPEED_MODULES = ("deepspeed", "deepspeed.runtime.zero.utils", "deepspeed.runtime.zero.muon.muon_optimizer")
# Every training imports DeepSpeed's package all the same (accelerate's unwrapping asks whether a model is DeepSpeed's,
# where it is installed): 0.5 s of a tiny-model step. The worker imports it where DeepSpeed is told its accelerator is
# the CPU (``DS_ACCELERATOR=cpu``): elsewhere its import looks for a GPU, which no fork of it could then use.
CPU_MODULES = ("deepspeed",)
# What a warm server ignores when it compares a launcher's environment with its own, read by no import: pytest's name
# of the running test, the ablation's process id, the server's address, torch's CUDA probe (`warm_up` sets it for the
# imports either way; DeepSpeed's import sets it in a launcher), what datatrove's executor sets when shards run, and
# the terminal's size (read when output is sized, not at import; GNU readline's import writes it into the C
# environment, which os.environ does not show and children inherit, so a launcher started after it has it).
UNSEEN = ("PYTEST_CURRENT_TEST", DRIVER, SERVER, "PYTORCH_NVML_BASED_CUDA_CHECK", "DATATROVE_*", "COLUMNS", "LINES")
PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 1 << 22  # a request carries the step's environment; replies are a few bytes
log = logging.getLogger("limo.ablate")


def available() -> bool:
    """Whether a warm worker may run steps at all: Linux, and ``LIMO_WARM_WORKER`` not ``0``."""
    return sys.platform.startswith("linux") and os.environ.get(SWITCH, "1") != "0"


def enabled(local: bool | None = None) -> bool:
    """Whether steps run in a warm worker: `available`, and ``local`` (a process that runs its steps itself, as
    `limo.demo` does); by default, whether this is the local executor's process (the ablation sets `DRIVER` for its
    local shards alone: a Ray or Slurm task starts its steps cold)."""
    return (bool(os.environ.get(DRIVER)) if local is None else local) and available()


def entry_of(command: Sequence[str]) -> tuple[str, list[str]] | None:
    """``(module, arguments)`` of ``[python, -m, limo.<stage>, ...]``; None for any other command."""
    if len(command) < 3 or command[0] != sys.executable or command[1] != "-m":
        return None
    stage = command[2].removeprefix("limo.")
    return (command[2], list(command[3:])) if command[2] == f"limo.{stage}" and stage in STAGES else None


class WorkerGone(OSError):
    """The worker ended before it started the step."""


@dataclass
class Worker:
    """A started warm worker, the environment and folder it serves, and the socket to it (``process``: None for a
    warm server's fork, which ends when that socket closes)."""

    process: subprocess.Popen | None
    channel: socket.socket
    env: dict[str, str]
    cwd: str

    def run(
        self, module: str, args: list[str], streams: Sequence[int], started: Callable[[int], None] | None = None
    ) -> int:
        """The step's exit status (minus the signal that killed it, as `subprocess` says); ``started`` is called with
        the step's pid once it runs.

        Raises:
            WorkerGone: The worker ended before the step started.
        """
        signals = {name: signal.getsignal(getattr(signal, name)) == signal.SIG_IGN for name in ("SIGINT", "SIGTERM")}
        request = json.dumps({"module": module, "args": args, "signals": signals}).encode() + b"\n"
        try:
            socket.send_fds(self.channel, [request], list(streams))
            pid = int(receive(self.channel)["pid"])
        except OSError as err:
            raise WorkerGone(str(err)) from err
        if started is not None:
            started(pid)
        try:
            return int(receive(self.channel)["status"])
        except OSError:
            return -signal.SIGKILL  # the worker was killed, and its child with it
        except BaseException:  # Ctrl-C or SIGTERM in the launcher: the step ends with it, as a cold one does
            kill(pid)
            raise

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def close(self) -> None:
        self.channel.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


_workers: dict[int, Worker] = {}  # this process's worker, by process id: a forked process starts its own
_failed: set[int] = set()  # processes whose worker could not start: their steps run cold
_reaping: set[int] = set()  # processes that end their worker at exit


def entry_status(
    command: Sequence[str], cwd: str, streams: Sequence[int], torch_ahead: bool = False, local: bool | None = None
) -> int:
    """``command``'s exit status, run with ``streams`` as its stdin, stdout and stderr: in a fork of this process's
    warm worker, or as a process of its own (``LIMO_WARM_WORKER=0``, not an entry's command, no worker).
    ``torch_ahead``: a training or an evaluation follows this step in its run, so a curation starts the worker too;
    ``local``: see `enabled`."""
    code = run(command, cwd, streams, torch_ahead) if enabled(local) else None
    if code is not None:
        return code
    stdout, stderr = (None if fd == target else fd for fd, target in zip(streams[1:], (1, 2), strict=True))
    preexec = die_with_parent if sys.platform.startswith("linux") else None
    return subprocess.run(command, cwd=cwd, stdout=stdout, stderr=stderr, check=False, preexec_fn=preexec).returncode


def run(command: Sequence[str], cwd: str, streams: Sequence[int], torch_ahead: bool = False) -> int | None:
    """``command``'s exit status from a warm worker; None when no worker runs it (not an entry's command, or no
    worker could start: said once). A training or an evaluation starts the worker, and so does a curation whose run
    goes on to one (``torch_ahead``): the worker's imports are paid once either way, and the curation then pays none
    of its own."""
    entry = entry_of(command)
    starts = entry is not None and (entry[0].removeprefix("limo.") in STARTERS or torch_ahead)
    worker = current(dict(os.environ), os.path.abspath(cwd), label(command), starts) if entry else None
    if entry is None or worker is None:
        return None
    try:
        return worker.run(*entry, usable(streams))
    except WorkerGone as err:
        log.warning("[limo] the warm worker ended (%s): this step starts cold", err)
        shutdown()
        return None
    except BaseException:
        shutdown()
        raise


def usable(streams: Sequence[int]) -> list[int]:
    """``streams`` with each closed one replaced by the null device (a step's stdin may be closed)."""
    return [fd if valid(fd) else null_device() for fd in streams]


@functools.cache
def null_device() -> int:
    """One descriptor of the null device for this process: opened once, not once for each step (none was closed)."""
    return os.open(os.devnull, os.O_RDWR)


def valid(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def shutdown() -> None:
    """End this process's worker, if any (the next step starts a fresh one)."""
    worker = _workers.pop(os.getpid(), None)
    if worker is not None:
        worker.close()


def current(env: dict[str, str], cwd: str, name: str, start_one: bool = True) -> Worker | None:
    """This process's worker for ``env`` and ``cwd``, started (or restarted) when ``start_one``; None if there is none
    (a curation with no training after it starts none: it imports no torch, and a worker's imports cost more than
    they save it)."""
    worker = _workers.get(os.getpid())
    if worker is not None and (worker.env != env or worker.cwd != cwd or not worker.alive()):
        shutdown()
        worker = None
    if worker is None and start_one and os.getpid() not in _failed:
        worker = start(env, cwd, name)
        if worker is None:
            _failed.add(os.getpid())
        else:
            _workers[os.getpid()] = worker
            reaped_at_exit()
    return worker


def reaped_at_exit() -> None:
    """End and wait for this process's worker when it exits normally (the interpreter's exit, or a pool worker's,
    which runs multiprocessing's finalizers and not ``atexit``): its CPU time is then counted in this process's
    children's, and nothing is left to the parent-death signal but a kill."""
    if os.getpid() in _reaping:
        return
    _reaping.add(os.getpid())
    atexit.register(shutdown)
    multiprocessing.util.Finalize(None, shutdown, exitpriority=0)


def start(env: dict[str, str], cwd: str, name: str) -> Worker | None:
    """A worker that has imported `WARM_MODULES`, or None (one line says why; the steps run cold): a fork of the warm
    server at ``LIMO_WARM_SERVER`` where that one serves this launcher, else a process of this one's."""
    if env.get(SERVER):
        served = from_server(env[SERVER], env, cwd)
        if served is not None:
            return served
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    command = [sys.executable, "-m", "limo.ablation.warm", str(theirs.fileno()), name]
    try:
        inherit = (theirs.fileno(),)
        process = subprocess.Popen(command, cwd=cwd, env=env, pass_fds=inherit, preexec_fn=die_with_parent)
    except OSError as err:
        log.warning("[limo] the warm worker did not start (%s): steps start cold", err)
        ours.close()
        return None
    finally:
        theirs.close()
    worker = Worker(process, ours, env, cwd)
    ready = receive(ours, allow_eof=True)
    if ready.get("ready"):
        return worker
    log.warning("[limo] the warm worker could not import %s: steps start cold", ready.get("error", "its modules"))
    worker.close()
    return None


def from_server(
    address: str, env: dict[str, str], cwd: str, instead: str = "this process starts its own"
) -> Worker | None:
    """A worker forked by the warm server at ``address`` for ``env`` and ``cwd``; None (said in one line, ending with
    what happens ``instead``) where that server is not there or does not serve them."""
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        channel.connect(address)
        channel.sendall(json.dumps({"env": env, "cwd": cwd}).encode() + b"\n")
        reply = receive(channel, allow_eof=True)
    except OSError as err:
        reply = {"error": f"it does not answer ({err})"}
    if reply.get("ready"):
        return Worker(None, channel, env, cwd)
    channel.close()
    why = reply.get("error", "it ended")
    log.warning("[limo] the warm server at %s serves no worker here: %s; %s", address, why, instead)
    return None


def label(command: Sequence[str]) -> str:
    """The first step's ``output_dir``, for the worker's command line (what ``ps`` shows)."""
    return next((a.split("=", 1)[1] for a in reversed(command) if a.startswith("output_dir=")), "")


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def fork_tied() -> int:
    """``os.fork()`` whose child dies with this process (`die_with_parent`): the child's pid here, 0 in the child. A
    child whose parent died before its ``prctl`` exits at once (nobody would kill it)."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        die_with_parent()
        if os.getppid() != parent:
            os._exit(1)
    return pid


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (Linux; run in the child between fork and exec, or after a fork)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def receive(channel: socket.socket, allow_eof: bool = False) -> dict[str, Any]:
    """One JSON line from ``channel``; ``{}`` at end of file when ``allow_eof``, else `OSError`."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = channel.recv(1 << 16)
        if not chunk:
            if allow_eof:
                return {}
            raise OSError("the warm worker is gone")
        data += chunk
    return json.loads(data)


# ----------------------------------------------------------------------------------------------- the worker's side


def warm_up() -> None:
    """Import `WARM_MODULES` (and read the classes named), and `CPU_MODULES` under ``DS_ACCELERATOR=cpu``; CUDA must
    still be untouched.

    A package that asks ``torch.cuda.is_available()`` while it imports would initialise the CUDA driver here, which
    no fork can use: during the imports torch answers through NVML instead (``PYTORCH_NVML_BASED_CUDA_CHECK``, the
    same answer without initialising CUDA); the variable is gone again before any step runs."""
    nvml = "PYTORCH_NVML_BASED_CUDA_CHECK"
    given = os.environ.get(nvml)
    os.environ[nvml] = "1"
    try:
        for spec in WARM_MODULES + (CPU_MODULES if os.environ.get("DS_ACCELERATOR") == "cpu" else ()):
            name, _, attributes = spec.partition(":")
            module = importlib.import_module(name)
            for attribute in filter(None, attributes.split(",")):
                getattr(module, attribute)
    finally:
        if given is None:
            os.environ.pop(nvml)
        else:
            os.environ[nvml] = given
    torch = sys.modules["torch"]
    if torch.cuda.is_initialized():
        raise RuntimeError("importing the training stack initialised CUDA, which a fork cannot use")


def parse_recipes() -> None:
    """The shipped recipe files and Hydra's own, parsed ahead (`limo.config.parsed`, about 0.25 s): every entry a
    server forks composes from them, and would parse each again (a fifth of a composition's CPU)."""
    import hydra

    from limo.config import parsed  # deferred: this module imports the standard library alone (tests' conftest)
    from limo.config.sections import CONFIG_DIR  # deferred: as above

    for folder in (CONFIG_DIR, os.path.join(os.path.dirname(hydra.__file__), "conf")):
        parsed.preload(folder)


def serve(channel: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """Fork a child per request and report its pid and exit status; returns the request in the child (None in the
    worker when the launcher is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the step (same process group), not its server
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(channel, MAX_MESSAGE, 3)
        except OSError:
            return None
        if not message:
            return None
        pid = fork_tied()
        if pid == 0:
            channel.close()
            return json.loads(message), fds
        for fd in fds:
            os.close(fd)
        channel.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        status = wait_or_kill(pid, channel)
        if status is None:
            return None
        channel.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


def wait_or_kill(pid: int, channel: socket.socket) -> int | None:
    """The wait status of the step ``pid``; None once the launcher's end of ``channel`` closed while it ran (a killed
    launcher), the step killed first: a served worker outlives its launcher, the parent-death signal cannot tell."""
    try:
        done = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (before Linux 5.3): the parent-death signal alone
        return os.waitpid(pid, 0)[1]
    try:
        while True:
            ready, _, _ = select.select([done, channel], [], [])
            if done in ready:
                return os.waitpid(pid, 0)[1]
            if channel.recv(1, socket.MSG_PEEK):  # no launcher writes while its step runs: stop watching, wait
                return os.waitpid(pid, 0)[1]
            kill(pid)
            os.waitpid(pid, 0)
            return None
    finally:
        os.close(done)


def serve_launchers(address: str) -> tuple[dict[str, Any], list[int]] | None:
    """The warm server: listen at ``address``, warm up, and fork a worker for each launcher it serves (`UNSEEN`);
    returns in a worker's step child what `serve` returns there, and never in the server."""
    listener = listen(address)  # before the imports: a launcher that comes early waits in the backlog, not cold
    before = dict(os.environ)
    warm_up()
    parse_recipes()
    gc.freeze()
    # what the imports set (torch's TORCHINDUCTOR_CACHE_DIR): a worker a launcher starts has it too
    made = {k: v for k, v in os.environ.items() if before.get(k) != v}
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the server waits for no worker: the kernel reaps them
    while True:
        channel, _ = listener.accept()
        if fork_tied() != 0:
            channel.close()
            continue
        listener.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            wanted = receive(channel)
            refusal = refused(wanted["env"], wanted["cwd"], before, made)
            if refusal:
                channel.sendall(json.dumps({"error": refusal}).encode() + b"\n")
                os._exit(0)
            os.environ.clear()
            os.environ.update(wanted["env"] | made)
            channel.sendall(b'{"ready": true}\n')
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # gone, or not a launcher's request
            os._exit(0)
        job = serve(channel)
        if job is None:
            os._exit(0)
        return job


def listen(address: str) -> socket.socket:
    """A socket listening at ``address``; a file left there by a server that is gone is replaced.

    Raises:
        OSError: A server listens there already, or the address cannot be bound (one line names it).
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(address)
    except FileExistsError:
        pass
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            raise OSError(f"cannot listen at {address}: {err.strerror}") from err
    else:
        listener.listen(64)
        return listener
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(address)
    except OSError:  # nobody listens: a dead server's file
        os.unlink(address)
        listener.bind(address)
        listener.listen(64)
        return listener
    finally:
        probe.close()
    raise OSError(f"a warm server already listens at {address}")


def refused(env: dict[str, str], cwd: str, own: dict[str, str], made: dict[str, str]) -> str:
    """Why the server cannot serve a launcher with ``env`` and ``cwd``: a folder or an environment that differs from
    its own (``own``, as it started) in what its imports may have read (not `UNSEEN`; a variable its imports set,
    ``made``, may be the same in the launcher, whose imports set it too); empty where it can."""
    if os.path.abspath(cwd) != os.getcwd():
        return f"its folder is {os.getcwd()}, not {cwd}"
    differ = differing(env, own, made)
    return f"its environment differs in {', '.join(differ)}" if differ else ""


def differing(env: dict[str, str], own: dict[str, str], made: dict[str, str] | None = None) -> list[str]:
    """The variables in which ``env`` differs from ``own`` for a warm server (`refused`), sorted."""
    made = made or {}
    keys = {k for k in set(env) | set(own) if not any(fnmatch.fnmatchcase(k, pattern) for pattern in UNSEEN)}
    return sorted(k for k in keys if env.get(k) != own.get(k) and not (k in made and env.get(k) == made[k]))


def become(request: dict[str, Any], fds: list[int]) -> None:
    """Turn this forked child into the step's process: its streams, signal dispositions and ``sys.argv``."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    for name, ignore in request["signals"].items():
        number = getattr(signal, name)
        default = signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL
        signal.signal(number, signal.SIG_IGN if ignore else default)
    sys.stdin = open(0, encoding=sys.stdin.encoding, closefd=False)  # noqa: SIM115 (the interpreter's, never closed)
    sys.stdout = text_stream(1, line=os.isatty(1))
    sys.stderr = text_stream(2, line=True, errors="backslashreplace")
    sys.argv = [request["module"], *request["args"]]


def text_stream(fd: int, line: bool, errors: str = "strict") -> Any:
    """A text stream on ``fd`` buffered as the interpreter's start-up buffers it (stderr and a terminal: by line)."""
    return open(fd, "w", encoding=sys.stdout.encoding, errors=errors, closefd=False, buffering=1 if line else -1)  # noqa: SIM115


def main(argv: Sequence[str]) -> None:
    """``python -m limo.ablation.warm <socket fd> <label>``: warm up, serve, and in a child run the step;
    ``python -m limo.ablation.warm --serve SOCKET``: the warm server (`serve_launchers`); ``--run MODULE [ARGS ...]``:
    one entry in a fork of it (`run_served`)."""
    if argv[:1] == ["--run"]:
        if len(argv) < 2:
            sys.exit("limo.ablation.warm: error: usage: python -m limo.ablation.warm --run MODULE [ARGS ...]")
        run_served(argv[1], list(argv[2:]))
        return
    if argv[:1] == ["--serve"]:
        if len(argv) != 2:
            sys.exit("limo.ablation.warm: error: usage: python -m limo.ablation.warm --serve SOCKET")
        try:
            served = serve_launchers(argv[1])
        except OSError as err:
            sys.exit(f"limo.ablation.warm: error: {err}")
        if served is not None:
            run_step(*served)
        return
    channel = socket.socket(fileno=int(argv[0]))
    try:
        warm_up()
    except BaseException as err:  # report, then exit: the launcher runs its steps cold
        reason = "".join(traceback.format_exception_only(type(err), err)).strip()
        channel.sendall(json.dumps({"error": reason}).encode() + b"\n")
        sys.exit(1)
    # What the imports made is never garbage: out of the collector's sight (Python's advice for fork without exec), a
    # step's collections no longer walk the whole training stack's objects, nor copy their pages by touching them.
    gc.freeze()
    channel.sendall(b'{"ready": true}\n')
    job = serve(channel)
    if job is not None:
        run_step(*job)


FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP")  # what `run_served` passes on to its step (not in its process group)


def run_served(module: str, args: list[str]) -> None:
    """``python -m limo.ablation.warm --run MODULE [ARGS ...]``: ``python -m MODULE ARGS ...`` in a fork of the warm
    server at ``LIMO_WARM_SERVER`` (`from_server`), with this process's streams, folder and environment, ending the
    way that process ends (its exit status, or the signal that killed it). SIGINT, SIGTERM and SIGHUP sent here go to
    the step (a Ctrl-C too: the step is no child of this terminal's process group); killed, this process takes its
    step with it. Where no server serves this process (none named, refused, gone), the module runs here, cold: said in
    one line when a server was named."""
    address, here = os.environ.get(SERVER), f"{module} runs here, cold"
    worker = from_server(address, dict(os.environ), os.getcwd(), here) if address else None
    if worker is not None:
        step: list[int] = []

        def forward(number: int, _frame: Any) -> None:
            if step:
                os.kill(step[0], number)
            else:  # before the step started: end as the signal would have ended it
                signal.signal(number, signal.SIG_DFL)
                os.kill(os.getpid(), number)

        given = {getattr(signal, name): signal.getsignal(getattr(signal, name)) for name in FORWARDED}
        for number, handler in given.items():
            if handler != signal.SIG_IGN:
                signal.signal(number, forward)
        try:
            status = worker.run(module, args, usable((0, 1, 2)), step.append)
        except WorkerGone as err:
            log.warning("[limo] the warm server's worker ended (%s): %s", err, here)
            for number, handler in given.items():  # the run here meets signals as a cold one does
                if handler is not None:  # None: a handler set outside Python, left in place
                    signal.signal(number, handler)
        else:
            worker.close()
            if status < 0:
                signal.signal(-status, signal.SIG_DFL)
                os.kill(os.getpid(), -status)
            sys.exit(status if status >= 0 else 128 - status)
    import importlib.util
    import runpy  # deferred: only a step runs a module

    try:
        found = importlib.util.find_spec(module)
    except ImportError:  # a package on the way is missing
        found = None
    if found is None:
        sys.exit(f"{sys.executable}: No module named {module}")  # python -m's words
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def run_step(request: dict[str, Any], fds: list[int]) -> None:
    """In a worker's child: become the step's process and run its entry as ``python -m`` does."""
    become(request, fds)
    import runpy  # deferred: the worker's child alone runs a module

    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
