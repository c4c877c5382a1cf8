"""The CPU table of issue 31: which batch-independent path each CPU tier gets (fake flag sets)."""

from __future__ import annotations

import pytest

from rerank_kit._runtime.cpu import FASTEST_PATHS, cpu_tier, fastest_path

AMX = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"}
ZEN4 = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni"}
AVX2 = {"avx2", "fma"}


@pytest.mark.parametrize(
    ("flags", "tier"),
    [(AMX, "amx"), (ZEN4, "avx512_bf16_vnni"), (AVX2, "avx2"), (set(), "baseline")],
)
def test_cpu_tier_reads_the_flags(flags: set[str], tier: str) -> None:
    assert cpu_tier(flags) == tier


def test_amx_picks_openvino_bf16_only_when_openvino_is_installed() -> None:
    assert fastest_path(AMX, {"onnx", "openvino"}).name == "openvino-bf16"
    assert fastest_path(AMX, {"onnx"}).name == "onnx-int8"


@pytest.mark.parametrize("flags", [ZEN4, AVX2, set()])
def test_without_amx_the_measured_default_stays(flags: set[str]) -> None:
    assert fastest_path(flags, {"onnx", "openvino"}).name == "onnx-int8"
    assert fastest_path(flags, lambda: {"onnx"}).name == "onnx-int8"


def test_every_tier_has_an_entry_with_a_reason() -> None:
    assert set(FASTEST_PATHS) == {"amx", "avx512_bf16_vnni", "avx2", "baseline"}
    assert all(p.why for paths in FASTEST_PATHS.values() for p in paths)
