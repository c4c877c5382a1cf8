"""Packaging: public names, py.typed, import isolation and extras hints (fresh interpreters)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ["rerank_kit", "langchain_rerank_kit", "llamaindex_rerank_kit"]

EXPECTED_ALL = {
    "rerank_kit": {
        "BiEncoderReranker",
        "CascadeReranker",
        "CrossEncoderReranker",
        "FlashRankReranker",
        "ListwiseLLMReranker",
        "Fusion",
        "ModelNotAvailableError",
        "OnnxCrossEncoderReranker",
        "Pipeline",
        "PipelineConfig",
        "Ranked",
        "RemoteRerankError",
        "RemoteReranker",
        "RetryPolicy",
        "RerankError",
        "Reranker",
        "ScoreCache",
        "Stage",
        "__version__",
        "load_pipeline",
        "load_reranker",
    },
    "langchain_rerank_kit": {
        "BiEncoderRerank",
        "CascadeRerank",
        "CrossEncoderRerank",
        "FlashRankRerank",
        "ListwiseLLMRerank",
        "RemoteRerank",
        "RerankCompressor",
        "from_config",
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
            "from rerank_kit import CrossEncoderReranker as C; C('x')",
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


def test_langchain_classic_is_a_declared_dependency_of_the_langchain_extra() -> None:
    import tomllib

    repo = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((repo / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(d.startswith("langchain-classic") for d in extras["langchain"])
    assert not any("torch" in d or "sentence-transformers" in d for d in extras["flashrank"])


@pytest.mark.parametrize(
    "module",
    [
        "rerank_kit._base",
        "rerank_kit._core.types",
        "rerank_kit._adapt",
        "rerank_kit._rerankers.listwise",
        "rerank_kit._rerankers.remote.retry",
        "rerank_kit.testing",
        "rerank_kit.demo",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    import doctest

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
