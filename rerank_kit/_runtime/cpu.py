"""What this machine offers the runtimes: usable CPUs, physical cores, feature flags."""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CPU_TIERS",
    "FASTEST_PATHS",
    "CpuPath",
    "available_cpus",
    "cpu_flags",
    "cpu_has_bf16",
    "cpu_tier",
    "default_threads",
    "fastest_path",
    "installed_backends",
    "physical_cores",
]


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


#: CPU tiers, best first, and the ``/proc/cpuinfo`` flags each needs (all of them).
CPU_TIERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("amx", ("amx_bf16", "amx_int8")),
    ("avx512_bf16_vnni", ("avx512_bf16", "avx512_vnni")),
    ("avx2", ("avx2",)),
    ("baseline", ()),
)


@dataclass(frozen=True)
class CpuPath:
    """A batch-independent way to run a dynamic int8 graph (the bundled model, int8 exports).

    Attributes:
        backend: ``"onnx"`` (ONNX Runtime: the per-token int8 rewrite) or ``"openvino"``
            (OpenVINO: the dequantized graph at ``precision``, batched in fixed shapes).
        precision: ``"int8"`` (ONNX Runtime) or OpenVINO's ``"bf16"`` / ``"f32"``.
        why: The measurement behind the choice (one line, for the INFO log and the docs).
    """

    backend: str
    precision: str
    why: str

    @property
    def name(self) -> str:
        """``"onnx-int8"``, ``"openvino-bf16"``: how logs and benchmarks name the path."""
        return f"{self.backend}-{self.precision}"


_ORT_INT8 = CpuPath(
    "onnx",
    "int8",
    "per-token int8 + MultiHeadAttention on ONNX Runtime; on an AMD EPYC with AVX512_BF16 and "
    "VNNI (no AMX), OpenVINO bf16 in fixed shapes was 1.13x its speed on abstracts but 0.84x on "
    "short passages, MatMulNBits 0.64-0.66x (docs/speed.md, Speed III)",
)
_OV_BF16 = CpuPath(
    "openvino",
    "bf16",
    "OpenVINO bf16 on AMX: one pair per call 1.5x faster than per-token int8 on a Xeon with AMX "
    "(issue 31); batched in fixed shapes not measured on AMX yet",
)
#: For each tier, the batch-independent paths in order of preference (the first whose backend
#: is installed wins). Change an entry only with a measurement on such a CPU (docs/speed.md).
FASTEST_PATHS: dict[str, tuple[CpuPath, ...]] = {
    "amx": (_OV_BF16, _ORT_INT8),
    "avx512_bf16_vnni": (_ORT_INT8,),
    "avx2": (_ORT_INT8,),
    "baseline": (_ORT_INT8,),
}


def cpu_tier(flags: Iterable[str] | None = None) -> str:
    """The best tier of ``CPU_TIERS`` whose flags ``flags`` (default: this CPU's) all has.

    Example:
        >>> cpu_tier({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})
        'avx512_bf16_vnni'
        >>> cpu_tier({"sse4_2"})
        'baseline'
    """
    have = set(cpu_flags() if flags is None else flags)
    for tier, needed in CPU_TIERS:
        if all(f in have for f in needed):
            return tier
    return CPU_TIERS[-1][0]


def installed_backends() -> set[str]:
    """The runtimes importable here: ``"onnx"`` (onnxruntime) and/or ``"openvino"``."""
    found = {"onnx": "onnxruntime", "openvino": "openvino"}
    return {name for name, module in found.items() if _importable(module)}


def _importable(module: str) -> bool:
    """Whether ``module`` can be found (a finder that refuses it counts as not installed).

    An import hook may raise instead of answering ``None``, and a module set to ``None`` in
    ``sys.modules`` raises ``ValueError``: both mean the backend cannot be used.
    """
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def fastest_path(
    flags: Iterable[str] | None = None,
    installed: Iterable[str] | Callable[[], Iterable[str]] | None = None,
) -> CpuPath:
    """The fastest batch-independent path for a CPU with ``flags`` among ``installed`` backends.

    ``flags`` defaults to this CPU's, ``installed`` to ``installed_backends()``.

    Table-driven (``FASTEST_PATHS``); ONNX Runtime's per-token int8 when no entry's backend is
    installed.

    Example:
        >>> fastest_path({"amx_bf16", "amx_int8", "avx512_bf16"}, {"onnx", "openvino"}).name
        'openvino-bf16'
        >>> fastest_path({"amx_bf16", "amx_int8"}, {"onnx"}).name
        'onnx-int8'
        >>> fastest_path({"avx2"}, {"onnx", "openvino"}).name
        'onnx-int8'
    """
    if installed is None:  # looked up when called (tests replace it)
        installed = installed_backends
    have = set(installed() if callable(installed) else installed)
    for path in FASTEST_PATHS[cpu_tier(flags)]:
        if path.backend in have:
            return path
    return _ORT_INT8
