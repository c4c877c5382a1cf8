"""Packaging: public names, py.typed, import isolation and extras hints (fresh interpreters)."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ["rerank_kit", "langchain_rerank_kit", "llamaindex_rerank_kit", "haystack_rerank_kit"]
REPO = Path(__file__).resolve().parents[1]

EXPECTED_ALL = {
    "rerank_kit": {
        "AssemblySettings",
        "BiEncoderReranker",
        "Calibration",
        "CascadeReranker",
        "CrossEncoderReranker",
        "FlashRankReranker",
        "ListwiseLLMReranker",
        "Fusion",
        "ModelNotAvailableError",
        "OnnxCrossEncoderReranker",
        "PairScores",
        "Pipeline",
        "PipelineConfig",
        "Ranked",
        "RankedList",
        "Recipe",
        "RemoteRerankError",
        "RemoteReranker",
        "RetryPolicy",
        "RerankError",
        "Reranker",
        "ScoreCache",
        "Stage",
        "WindowPlan",
        "TraceSettings",
        "Usage",
        "__version__",
        "configure_tracing",
        "FeedbackRecorder",
        "find_citations",
        "dask_client",
        "load_calibration",
        "load_pipeline",
        "load_reranker",
        "match_recipe",
        "list_recipes",
        "register_recipe",
        "register_reranker",
        "score_on_dask",
    },
    "langchain_rerank_kit": {
        "BiEncoderRerank",
        "CascadeRerank",
        "CrossEncoderRerank",
        "FlashRankRerank",
        "ListwiseLLMRerank",
        "RemoteRerank",
        "RerankCompressor",
        "RerankMiddleware",
        "RerankRetriever",
        "from_config",
        "record_feedback",
    },
    "llamaindex_rerank_kit": {
        "BiEncoderRerank",
        "CascadeRerank",
        "CrossEncoderRerank",
        "FlashRankRerank",
        "ListwiseLLMRerank",
        "RemoteRerank",
        "RerankCompressor",
        "from_config",
        "RerankPostprocessor",
        "RerankedNodeWithScore",
        "FeedbackEventHandler",
        "record_response",
    },
    "haystack_rerank_kit": {
        "BiEncoderRerank",
        "CascadeRerank",
        "CrossEncoderRerank",
        "FlashRankRerank",
        "ListwiseLLMRerank",
        "RemoteRerank",
        "RerankComponent",
        "from_config",
    },
}


def _loaded_after(code: str, blocked: tuple[str, ...] = ()) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; report which heavy modules got imported."""
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
    probe = (
        "import json\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "print(json.dumps(sorted(roots)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", prelude + code + "\n" + probe],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return {"modules": set(json.loads(out.stdout.strip().splitlines()[-1]))}


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_and_py_typed(package: str) -> None:
    module = importlib.import_module(package)
    assert set(module.__all__) == EXPECTED_ALL[package]
    for name in module.__all__:
        assert hasattr(module, name), name
    assert (Path(module.__file__).parent / "py.typed").is_file()  # type: ignore[arg-type]


def test_engine_imports_no_framework_and_no_model_library() -> None:
    mods = _loaded_after("import rerank_kit")["modules"]
    for heavy in (
        "torch",
        "onnxruntime",
        "sentence_transformers",
        "transformers",
        "flashrank",
        "langchain_core",
        "llama_index",
        "chromadb",
        "httpx",
    ):
        assert heavy not in mods, heavy  # type: ignore[operator]


def test_langchain_adapter_never_imports_llama_index() -> None:
    mods = _loaded_after("import langchain_rerank_kit")["modules"]
    assert "llama_index" not in mods  # type: ignore[operator]
    assert "torch" not in mods  # type: ignore[operator]


def test_llamaindex_adapter_never_imports_langchain() -> None:
    mods = _loaded_after("import llamaindex_rerank_kit")["modules"]
    assert not {m for m in mods if m.startswith("langchain")}  # type: ignore[attr-defined]
    assert "torch" not in mods  # type: ignore[operator]


def test_haystack_adapter_never_imports_the_other_frameworks() -> None:
    pytest.importorskip("haystack")
    mods: set[str] = _loaded_after("import haystack_rerank_kit")["modules"]  # type: ignore[assignment]
    assert not {m for m in mods if m.startswith(("langchain", "llama_index"))}
    # haystack-ai imports torch itself when it is installed: nothing heavy beyond what it loads
    haystack: set[str] = _loaded_after("import haystack")["modules"]  # type: ignore[assignment]
    heavy = {"torch", "onnxruntime", "sentence_transformers", "transformers", "flashrank"}
    assert not (mods - haystack) & heavy


def test_flashrank_user_never_imports_torch(tiny_flashrank_dir: Path) -> None:
    code = (
        "from rerank_kit import FlashRankReranker\n"
        f"r = FlashRankReranker({str(tiny_flashrank_dir)!r})\n"
        "assert len(r.score('q', ['a', 'b'])) == 2\n"
    )
    # torch is blocked outright: any attempt to import it would fail this run
    mods = _loaded_after(code, blocked=("torch",))["modules"]
    assert "onnxruntime" in mods  # type: ignore[operator]


@pytest.mark.parametrize(
    ("code", "blocked", "hint"),
    [
        (
            # a model that is there (a missing one is a ModelNotAvailableError naming it first)
            "import pathlib, tempfile; d = pathlib.Path(tempfile.mkdtemp())\n"
            "for n, t in (('config.json', '{}'), ('model.safetensors', 'x'), "
            "('tokenizer.json', '{}')): (d / n).write_text(t)\n"
            "from rerank_kit import CrossEncoderReranker as C; C(str(d), backend='torch')",
            ("sentence_transformers",),
            'pip install "rerank-kit[cross-encoder]"',
        ),
        (
            "from rerank_kit import BiEncoderReranker as C; C('x')",
            ("sentence_transformers",),
            'pip install "rerank-kit[bi-encoder]"',
        ),
        (
            "from rerank_kit import FlashRankReranker as C; C()",
            ("flashrank",),
            'pip install "rerank-kit[flashrank]"',
        ),
        (
            "from rerank_kit import RemoteReranker as C; C('tei:http://localhost:1')",
            ("httpx",),
            'pip install "rerank-kit[remote]"',
        ),
        ("import langchain_rerank_kit", ("langchain_core",), 'pip install "rerank-kit[langchain]"'),
        ("import llamaindex_rerank_kit", ("llama_index",), 'pip install "rerank-kit[llamaindex]"'),
        ("import haystack_rerank_kit", ("haystack",), 'pip install "rerank-kit[haystack]"'),
    ],
)
def test_missing_extra_names_the_install_command(
    code: str, blocked: tuple[str, ...], hint: str
) -> None:
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
    out = subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0
    assert "ImportError" in out.stderr
    assert hint in out.stderr


def _requirements(extra: str) -> list[str]:
    """The installed distribution's requirements of ``extra`` (its metadata, not pyproject)."""
    marker = re.compile(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]")
    return [r for r in importlib.metadata.requires("rerank-kit") or [] if marker.search(r)]


def test_the_langchain_extra_needs_langchain_core_alone_and_classic_has_its_own() -> None:
    langchain = _requirements("langchain")
    assert any(d.startswith("langchain-core") for d in langchain)
    assert not any(d.startswith(("langchain-classic", "langchain-community")) for d in langchain)
    classic = _requirements("langchain-classic")
    assert any(d.startswith("langchain-classic") for d in classic)
    assert any(d.startswith("langchain-core") for d in classic)  # (the langchain extra's)
    flashrank = _requirements("flashrank")
    assert flashrank and not any("torch" in d or "sentence-transformers" in d for d in flashrank)


def test_running_an_onnx_graph_needs_no_torch() -> None:
    """The bundled model and pre-exported graphs run with ONNX Runtime and tokenizers (plus onnx,
    which rewrites a dynamic int8 graph once for batch-independent scores): never torch."""
    heavy = ("torch", "transformers", "sentence-transformers")
    for extra in ("onnx-runtime", "bundled"):
        reqs = _requirements(extra)
        assert reqs, extra
        assert not any(r.startswith(heavy) for r in reqs), (extra, reqs)
    assert any(r.startswith("onnxruntime") for r in _requirements("onnx-runtime"))
    assert any(r.startswith("onnxruntime") for r in _requirements("bundled"))
    exporting = _requirements("onnx")
    assert any(r.startswith("torch") for r in exporting)
    assert any(r.startswith("transformers") for r in exporting)


def test_the_version_is_written_once() -> None:
    import rerank_kit

    assert importlib.metadata.version("rerank-kit") == rerank_kit.__version__
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^dynamic = \["version"\]$', pyproject, re.M)
    assert not re.search(r"^version\s*=", pyproject, re.M)  # read from rerank_kit/__init__.py
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{rerank_kit.__version__}]" in changelog


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = REPO / ".ci" / "run"
    if not ci.is_file():
        pytest.skip("no .ci/run here (an sdist)")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = re.findall(r"```bash\n(.*?)\n```", readme, re.S)[1]  # "Run the tests"
    assert "pip install" in command and "pytest" in command
    assert command in ci.read_text(encoding="utf-8").splitlines()
    assert "-e " not in command and "cd tests" in command  # the wheel, off the checkout


def _installed_editable() -> bool:
    """Whether rerank-kit is installed in development (editable) mode, pointing at a checkout."""
    direct_url = importlib.metadata.distribution("rerank-kit").read_text("direct_url.json")
    return bool(direct_url and json.loads(direct_url).get("dir_info", {}).get("editable"))


@pytest.mark.parametrize("package", PACKAGES)
def test_the_suite_imports_the_installed_wheel_not_the_checkout(package: str) -> None:
    """CI installs the wheel (non-editable) and runs pytest from tests/: nothing of the checkout
    is on sys.path, so a file missing from the wheel fails here instead of being read from the
    source tree."""
    if _installed_editable():
        pytest.skip("rerank-kit is installed editable: the checkout is what is installed")
    where = Path(importlib.import_module(package).__file__ or "").resolve()
    source = REPO / package  # (CI's venv may sit in the checkout: compare with the source)
    assert not where.is_relative_to(source), f"{package} was imported from the checkout: {where}"
    assert "site-packages" in where.parts, where


def _modules_with_examples() -> list[str]:
    """Every module of the three packages whose source holds a ``>>>`` example."""
    found = []
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin and spec.submodule_search_locations
        modules = [(package, spec.origin)]
        for info in pkgutil.walk_packages(spec.submodule_search_locations, prefix=f"{package}."):
            sub = info.module_finder.find_spec(info.name, None)
            assert sub is not None and sub.origin, info.name
            modules.append((info.name, sub.origin))
        found += [
            name for name, origin in modules if ">>>" in Path(origin).read_text(encoding="utf-8")
        ]
    return sorted(found)


DOCTEST_MODULES = _modules_with_examples()


def test_doctests_are_found_in_every_package_and_subpackage() -> None:
    assert {name.split(".")[0] for name in DOCTEST_MODULES} == set(PACKAGES)
    for name in ("rerank_kit.feedback", "rerank_kit.learning", "rerank_kit.evaluation"):
        assert name in DOCTEST_MODULES
    assert any(name.count(".") >= 2 for name in DOCTEST_MODULES)  # nested packages too


@pytest.mark.parametrize("module", DOCTEST_MODULES)
def test_docstring_examples_run(
    module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import doctest

    try:
        imported = importlib.import_module(module)
    except ImportError as exc:  # only a dependency that is not installed may stop a module
        missing = exc.name or getattr(exc.__cause__, "name", None)
        if missing and missing.split(".")[0] not in PACKAGES:
            pytest.skip(f"{module} needs {missing}, which is not installed")
        raise
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    result = doctest.testmod(imported, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_the_calibration_text_ships_inside_the_package() -> None:
    """Per-token int8 calibrates its zero points on text inside the package (in the wheel)."""
    from rerank_kit._runtime.batch_rule import calibration_pairs

    pairs = calibration_pairs()
    assert len(pairs) >= 12 and all(q.strip() and p.strip() for q, p in pairs)
