"""A process limo starts in a session of its own keeps the niceness it inherited.

Linux's autogroup scheduler (on by default on most distributions' kernels:
``/proc/sys/kernel/sched_autogroup_enabled``) puts every session in a scheduling group of its own and shares the CPU
fairly between groups; a process's nice value weighs it only against the others of its group. A child started with
``setsid`` (``start_new_session``, ``os.setsid``) therefore escapes a ``nice`` on its parent. Measured on a 2-core
machine: ``nice -n 19 python -m limo.ablate ...`` beside the test suite, its llama-server (a session of its own, so a
Ctrl-C in the terminal does not reach it mid-reply) took 22-35% of the cores from the suite's nice-0 processes, where
nice 19 leaves about 1.5%. `keep_niceness` gives the new session's group the process's own nice value; the places
that start a session call it (llama-server, the grader pool's workers, the discovery sandbox).

Raising a group's nice needs no privilege; the kernel refuses a write within 100 ms of the previous one (any
process's) unless the writer has CAP_SYS_ADMIN, so a refused write is tried again a few times. Where there is no
autogroup (another kernel, another OS) it does nothing.
"""

from __future__ import annotations

import errno
import os
from time import sleep  # bound at import: a preexec_fn must not import in the forked child

AUTOGROUP = "/proc/self/autogroup"
TRIES = 4
PAUSE_S = 0.11  # the kernel's limit: one write every HZ/10 (100 ms)


def keep_niceness() -> None:
    """In a process that has just become a session leader: set its autogroup's nice to the process's nice value (a
    no-op at nice 0 or below, and where autogroup is absent). Safe in a ``preexec_fn``: it imports nothing."""
    try:
        nice = os.getpriority(os.PRIO_PROCESS, 0)
    except OSError:
        return
    if nice <= 0 or not os.path.exists(AUTOGROUP):
        return
    for _ in range(TRIES):
        try:
            with open(AUTOGROUP, "w") as group:
                group.write(str(nice))
            return
        except OSError as error:
            if error.errno != errno.EAGAIN:
                return  # no permission, or no such file in a confined process: nothing to keep
            sleep(PAUSE_S)


def new_session() -> None:
    """``os.setsid`` and `keep_niceness`: for a process that makes itself a session leader (a pool's worker)."""
    os.setsid()
    keep_niceness()
