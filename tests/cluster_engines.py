"""Real cluster engines for tests: a local Ray instance and a single-node Slurm on 127.0.0.1.

Slurm (Debian's ``slurm-wlm`` 22.05 + ``munge``) runs entirely inside a temporary folder: its own munge
key and socket (``munged`` as the ``munge`` user), a ``slurm.conf`` with state, spool, logs and pid files
there, free non-default ports, one node (this host, ``NodeAddr=127.0.0.1``, 2 CPUs) and one partition.
Nothing under /etc or /run is touched, so concurrent test sessions do not collide. It needs root (slurmd
and munged as another user) and the packages; where either is missing the fixtures skip with the reason,
unless ``LIMO_REQUIRE_CLUSTER=1`` (set by ``.ci/run`` once it has installed them), which turns the skip
into a failure. Daemons are stopped by the PIDs in their own pid files, never by name.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_ENV = "LIMO_REQUIRE_CLUSTER"
DAEMONS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "runuser")


class EngineUnavailable(RuntimeError):
    """The engine cannot start here; the message says why."""


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail when the environment promises the engines (CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: CI installed the cluster engines, so this must work)")
    pytest.skip(reason)


@dataclass(frozen=True)
class SlurmCluster:
    root: Path
    conf: Path
    partition: str
    pid_files: tuple[Path, ...]


def _free_ports(count: int) -> list[int]:
    """Ports free right now, all different (held open together while asking)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def slurm_unavailable_reason() -> str | None:
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        return f"single-node Slurm needs {', '.join(missing)} (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "single-node Slurm needs root (slurmd runs jobs, munged runs as the munge user)"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user (apt-get install munge creates it)"
    return None


def _start_munge(root: Path) -> Path:
    munge = pwd.getpwnam("munge")
    run_dir, key_dir = root / "munge", root / "munge-key"
    for folder, mode in ((run_dir, 0o755), (key_dir, 0o700)):  # munged insists on these modes
        folder.mkdir()
        os.chown(folder, munge.pw_uid, munge.pw_gid)
        folder.chmod(mode)
    key = key_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chown(key, munge.pw_uid, munge.pw_gid)
    key.chmod(0o400)
    socket_path = run_dir / "munge.socket"
    command = ["runuser", "-u", "munge", "--", "munged", f"--socket={socket_path}", f"--key-file={key}"]
    command += [f"--log-file={run_dir / 'munged.log'}", f"--pid-file={run_dir / 'munged.pid'}"]
    command += [f"--seed-file={key_dir / 'munged.seed'}"]
    _check_call(command, run_dir / "munged.log")
    return socket_path


def _slurm_conf(root: Path, munge_socket: Path, partition: str) -> str:
    host = socket.gethostname()
    ctld_port, slurmd_port = _free_ports(2)
    return "\n".join(
        [
            "ClusterName=limotest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={munge_socket}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ReturnToService=2",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "MinJobAge=600",
            # start a submitted job at once: Slurm's default lets a batch job wait up to 3 s for others to start
            # with it, which on one node with a job array and its afterok stats job per curation stage was ~6 s a
            # stage (a `true` job and one depending on it: 6.0 s, 2.0 s with this)
            "SchedulerParameters=batch_sched_delay=0",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=4096 State=UNKNOWN",
            f"PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _check_call(command: list[str], log_file: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = log_file.read_text()[-2000:] if log_file.exists() else ""
        raise EngineUnavailable(f"{command[0]} did not start: {done.stderr.strip()} {tail}")


def start_slurm(partition: str = "limo") -> SlurmCluster:
    """Start munged, slurmctld and slurmd in a fresh temporary folder; wait until the node is idle.

    The folder is made with mode 0755 directly under the system temp dir (pytest's own temp folders are
    0700, which the munge user could not cross). The caller removes ``cluster.root`` after `stop_slurm`.

    Raises:
        EngineUnavailable: A daemon did not start or the node never became idle (logs in the message).
    """
    root = Path(tempfile.mkdtemp(prefix="limo-slurm-"))
    root.chmod(0o755)
    pid_files = (root / "slurmd.pid", root / "slurmctld.pid", root / "munge" / "munged.pid")
    cluster = SlurmCluster(root, root / "slurm.conf", partition, pid_files)
    try:
        _start_daemons(cluster)
    except BaseException:
        stop_slurm(cluster)
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster


def _start_daemons(cluster: SlurmCluster) -> None:
    for name in ("state", "spool"):
        (cluster.root / name).mkdir()
    munge_socket = _start_munge(cluster.root)
    cluster.conf.write_text(_slurm_conf(cluster.root, munge_socket, cluster.partition))
    env = {**os.environ, "SLURM_CONF": str(cluster.conf)}
    _check_call(["slurmctld", "-f", str(cluster.conf)], cluster.root / "slurmctld.log", env)
    _check_call(["slurmd", "-f", str(cluster.conf)], cluster.root / "slurmd.log", env)
    _wait_idle(cluster, env)


def _wait_idle(cluster: SlurmCluster, env: dict[str, str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    state = ""
    while time.monotonic() < deadline:
        listed = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env)
        state = listed.stdout.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    logs = "".join((cluster.root / name).read_text()[-1500:] for name in ("slurmctld.log", "slurmd.log"))
    raise EngineUnavailable(f"Slurm node not idle after {timeout_s:.0f} s (state {state!r}): {logs}")


def stop_slurm(cluster: SlurmCluster) -> None:
    """Stop the daemons this helper started, by the PIDs in their pid files, and wait for them to exit."""
    for pid_file in cluster.pid_files:
        if not pid_file.exists() or not pid_file.read_text().strip():
            continue
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        _wait_gone(pid)


def _wait_gone(pid: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
