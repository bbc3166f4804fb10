"""How many CPUs this process may run on: the one count every default of jobs, threads and
workers starts from."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs this process may run on: its CPU affinity where the system has one (a
    container or ``taskset`` may allow fewer than the machine has), else the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
