"""``pip install "rerank-kit[langchain]" "langchain>=1,<2"`` in a fresh venv: no classic, no torch.

Once per test session: the wheel is built from this checkout (``pip wheel --no-deps``), a
virtual environment is created under pytest's temporary folder, and pip installs
``rerank-kit[langchain] @ <the wheel>`` and ``langchain>=1,<2`` into it: PyPI packages only,
through pip's own cache (nothing else is downloaded, no model). ``langchain_v1_smoke.py`` then
runs there: it imports ``langchain_rerank_kit`` from the venv's site-packages, checks that
``langchain_classic`` and ``torch`` are not importable, and runs ``RerankRetriever`` (invoke,
ainvoke, an empty retrieval) and ``RerankMiddleware`` in ``create_agent`` (invoke, ainvoke)
with a ``FakeReranker``-based ``RerankCompressor``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from installs import clean_run, fresh_venv

REPO = Path(__file__).resolve().parents[1]
SMOKE = Path(__file__).with_name("langchain_v1_smoke.py")
REQUIREMENTS = ["langchain>=1,<2"]  # beside the wheel's own `langchain` extra


@pytest.fixture(scope="session")
def langchain_only_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's python, with the wheel's ``langchain`` extra and ``langchain`` 1.x only."""
    root = tmp_path_factory.mktemp("langchain-venv")
    start = time.perf_counter()
    python = fresh_venv(root, ["langchain"], REQUIREMENTS)
    print(f"\n  fresh langchain venv built in {time.perf_counter() - start:.0f} s", end="")
    return python


def test_langchain_extra_and_langchain_1x_alone_run_the_retriever_and_the_middleware(
    langchain_only_venv: Path,
) -> None:
    out = clean_run([str(langchain_only_venv), str(SMOKE)], langchain_only_venv.parents[2])
    assert out.strip().splitlines()[-1] == "smoke: ok", out
    listed = clean_run([str(langchain_only_venv), "-m", "pip", "list", "--format=freeze"], REPO)
    names = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"rerank-kit", "langchain", "langchain-core"} <= names
    assert not names & {"langchain-classic", "langchain-community", "torch"}, names
