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

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SMOKE = Path(__file__).with_name("langchain_v1_smoke.py")
REQUIREMENTS = ["langchain>=1,<2"]  # beside the wheel's own `langchain` extra


def _run(command: list[str], cwd: Path) -> str:
    """Run ``command``; its output, or a failure that shows it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    out = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="session")
def langchain_only_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's python, with the wheel's ``langchain`` extra and ``langchain`` 1.x only."""
    root = tmp_path_factory.mktemp("langchain-venv")
    start = time.perf_counter()
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root), str(REPO)], root
    )
    (wheel,) = root.glob("rerank_kit-*.whl")
    _run([sys.executable, "-m", "venv", str(root / "venv")], root)
    python = root / "venv" / ("Scripts" if os.name == "nt" else "bin") / "python"
    spec = f"rerank-kit[langchain] @ {wheel.as_uri()}"
    _run([str(python), "-m", "pip", "install", "-q", spec, *REQUIREMENTS], root)
    print(f"\n  fresh langchain venv built in {time.perf_counter() - start:.0f} s", end="")
    return python


def test_langchain_extra_and_langchain_1x_alone_run_the_retriever_and_the_middleware(
    langchain_only_venv: Path,
) -> None:
    out = _run([str(langchain_only_venv), str(SMOKE)], langchain_only_venv.parents[2])
    assert out.strip().splitlines()[-1] == "smoke: ok", out
    listed = _run([str(langchain_only_venv), "-m", "pip", "list", "--format=freeze"], REPO)
    names = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"rerank-kit", "langchain", "langchain-core"} <= names
    assert not names & {"langchain-classic", "langchain-community", "torch"}, names
