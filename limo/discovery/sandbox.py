"""Run a command confined: bubblewrap where the machine has it, resource limits and a cleared environment always.

Two levels, and the run records which one applied (`Confined.confinement`):

- ``bubblewrap``: ``bwrap --unshare-all`` (no network, own PID / IPC / UTS namespaces), a read-only root
  holding only the system directories, the Python installation and the paths the caller names (all
  read-only); the job folder is the only writable place besides a private ``/tmp``; ``--die-with-parent``.
  Home directories, credentials and the rest of the host filesystem do not exist inside.
- ``rlimits``: where bubblewrap is missing or does not work (no user namespaces), the same command runs
  without namespaces. Filesystem and network are then *not* isolated by the OS; what keeps a proposal
  harmless there is that its code is never executed, only interpreted (`limo.training.loss_language`).

Always: RLIMIT_CPU, RLIMIT_AS (address space), RLIMIT_FSIZE, RLIMIT_NOFILE, no core dumps, a wall-clock
limit (the process group is killed), the environment cleared to an allowlist (no tokens, keys or proxies
are inherited), an empty working directory, its own session, and death when the parent dies
(``PR_SET_PDEATHSIG``), so a killed loop leaves no worker training on.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from eval.niceness import keep_niceness

log = logging.getLogger(__name__)

CONFINEMENTS = ("auto", "bubblewrap", "rlimits")
SYSTEM_DIRS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/lib32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
)
PASSED_ENV = ("CUDA_VISIBLE_DEVICES",)  # the only variable inherited; everything else is set explicitly
PR_SET_PDEATHSIG = 1


class SandboxUnavailable(OSError):
    """The requested confinement cannot run on this machine."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one confined run."""

    wall_seconds: float
    cpu_seconds: int
    memory_bytes: int
    file_bytes: int = 1 << 30
    open_files: int = 1024


@dataclass(frozen=True)
class Confined:
    """How a confined run ended."""

    returncode: int | None
    timed_out: bool
    seconds: float
    confinement: str

    @property
    def signal_name(self) -> str | None:
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    def describe(self) -> str:
        if self.timed_out:
            return f"killed after the wall-clock limit ({self.seconds:.0f} s)"
        if self.signal_name:
            hint = {
                "SIGXCPU": " (CPU-time limit)",
                "SIGKILL": " (killed: CPU or memory limit)",
                "SIGSEGV": " (crashed)",
            }.get(self.signal_name, "")
            return f"terminated by {self.signal_name}{hint}"
        return f"exited with status {self.returncode}"


@lru_cache(maxsize=1)
def bubblewrap_works() -> bool:
    """Whether ``bwrap`` is installed and can create its namespaces here (probed once per process)."""
    if shutil.which("bwrap") is None:
        return False
    probe = [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        *_system_binds(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "true",
    ]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def resolve_confinement(requested: str) -> str:
    """``auto`` -> ``bubblewrap`` when it works here, else ``rlimits``.

    Raises:
        SandboxUnavailable: ``bubblewrap`` was asked for and cannot run here.
        ValueError: Unknown confinement name.
    """
    if requested not in CONFINEMENTS:
        raise ValueError(f"discover.sandbox.confinement={requested!r}: expected one of {', '.join(CONFINEMENTS)}")
    if requested == "rlimits":
        return "rlimits"
    if bubblewrap_works():
        return "bubblewrap"
    if requested == "bubblewrap":
        raise SandboxUnavailable(
            "discover.sandbox.confinement=bubblewrap, but bwrap is missing or cannot create "
            "namespaces here (apt-get install bubblewrap; or use auto / rlimits)"
        )
    log.warning("bubblewrap is not available: confined runs use resource limits and a cleared environment only")
    return "rlimits"


def python_paths() -> list[str]:
    """What the current interpreter needs to start: its installation, the venv and every import path."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(sys.executable).resolve().parent)}
    paths |= {p for p in sys.path if p and Path(p).is_dir()}
    return sorted(paths)


def run_confined(
    argv: Sequence[str],
    *,
    workdir: Path,
    read_only: Sequence[str | Path],
    writable: Sequence[str | Path],
    limits: Limits,
    env: Mapping[str, str],
    confinement: str,
    log_path: Path,
) -> Confined:
    """Run ``argv`` confined; stdout and stderr go to ``log_path`` (its size bounded by RLIMIT_FSIZE).

    ``workdir`` must exist and should be empty; it is the working directory and ``HOME``.
    """
    clean_env = {**{k: os.environ[k] for k in PASSED_ENV if k in os.environ}, **env, "HOME": str(workdir)}
    command = list(argv)
    if confinement == "bubblewrap":
        command = _bwrap_command(command, workdir, read_only, writable, clean_env)
    started = time.monotonic()
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=clean_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            preexec_fn=_limit_child(limits),
            close_fds=True,
        )
        timed_out = _wait(process, limits.wall_seconds)
    return Confined(process.returncode, timed_out, time.monotonic() - started, confinement)


def _wait(process: subprocess.Popen, wall_seconds: float) -> bool:
    try:
        process.wait(timeout=wall_seconds)
        return False
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        process.wait()
        return True
    except BaseException:  # the loop itself is stopping: take the worker down with it
        _kill_group(process.pid)
        process.wait()
        raise


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _limit_child(limits: Limits):
    """The child's pre-exec hook: resource limits and death with the parent (Linux ``prctl``)."""
    parent = os.getpid()

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
        keep_niceness()  # its session of its own must not lift a nice on the loop (eval.niceness)

    return apply


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def _bwrap_command(
    argv: list[str],
    workdir: Path,
    read_only: Sequence[str | Path],
    writable: Sequence[str | Path],
    env: Mapping[str, str],
) -> list[str]:
    command = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in env.items():
        command += ["--setenv", key, value]
    command += _system_binds() + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for device in sorted(glob.glob("/dev/nvidia*")):  # GPUs, where there are any
        command += ["--dev-bind", device, device]
    for path in sorted({str(Path(p).resolve()) for p in [*python_paths(), *read_only]}):
        if Path(path).exists():
            command += ["--ro-bind", path, path]
    for path in sorted({str(Path(p).resolve()) for p in [*writable, workdir]}):
        command += ["--bind", path, path]
    # the root bwrap builds (and the parent folders it creates for the binds) becomes read-only too
    return command + ["--remount-ro", "/", "--chdir", str(workdir.resolve()), *argv]
