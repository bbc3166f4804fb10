"""The one CPU count every default of jobs, threads and workers starts from."""

from __future__ import annotations

from moviebarcode import _cpus, cluster, segments


def test_usable_cpus_follow_the_affinity(monkeypatch):
    """A process limited to some CPUs (a container, taskset) counts those, not the machine's;
    where the system has no affinity, the machine's count serves."""
    monkeypatch.setattr(_cpus.os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    monkeypatch.setattr(_cpus.os, "cpu_count", lambda: 16)
    assert _cpus.usable_cpus() == 2
    # render's worker processes and prep's decoder threads start from the same count
    assert cluster.default_jobs() == 2
    assert segments.decoder_threads(1) == 2 and segments.decoder_threads(2) == 1

    def no_affinity(pid):
        raise OSError("not here")

    monkeypatch.setattr(_cpus.os, "sched_getaffinity", no_affinity)
    assert _cpus.usable_cpus() == 16
    monkeypatch.delattr(_cpus.os, "sched_getaffinity")
    assert _cpus.usable_cpus() == 16
