"""What this machine offers the runtimes: usable CPUs, physical cores, feature flags."""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cpus", "cpu_flags", "cpu_has_bf16", "default_threads", "physical_cores"]


def available_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by a container's CPU quota."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    try:  # a container's CPU quota (cgroup v2), e.g. "200000 100000" = 2 CPUs
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            available = min(available, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, available)


def physical_cores() -> int | None:
    """Distinct (package, core) pairs in ``/proc/cpuinfo`` among the CPUs we may run on."""
    try:
        allowed = os.sched_getaffinity(0)
        text = Path("/proc/cpuinfo").read_text()
    except (AttributeError, OSError):
        return None
    cores: set[tuple[str, str]] = set()
    for block in text.strip().split("\n\n"):
        fields = dict(
            (k.strip(), v.strip())
            for k, _, v in (line.partition(":") for line in block.splitlines())
        )
        try:
            cpu = int(fields["processor"])
        except (KeyError, ValueError):
            continue
        if cpu in allowed:
            cores.add((fields.get("physical id", "0"), fields.get("core id", str(cpu))))
    return len(cores) or None


def default_threads() -> int:
    """Intra-op threads to use: physical cores among the CPUs this process may use.

    Hyper-threads add little to dense matrix products, and more threads than the CPU affinity
    mask or the container's CPU quota allow only make threads wait for each other.

    Example:
        >>> default_threads() >= 1
        True
    """
    available = available_cpus()
    physical = physical_cores()
    return max(1, min(available, physical) if physical else available)


def cpu_flags() -> set[str]:
    """The CPU feature flags of this machine (``/proc/cpuinfo``; empty where unreadable).

    Example:
        >>> isinstance(cpu_flags(), set)
        True
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_has_bf16() -> bool:
    """True if the CPU computes bf16 natively (AVX512_BF16 or AMX)."""
    flags = cpu_flags()
    return "avx512_bf16" in flags or any(f.startswith("amx") for f in flags)
