"""The model-zoo conformance matrix: every architecture x every path, against the model card.

Tiny random-weight models of each architecture users pick (``zoo_models``) run on every path
that applies (``zoo_matrix.PATHS``) and are compared with an independent plain-transformers
reference of each model card's recipe (``zoo_reference``): fp32 paths within 1e-5 in the same
order, int8 and bf16 within a band measured per architecture, and every path's scores
independent of the batch (a text scored alone vs among long and short neighbours, 1e-5).

``RERANK_KIT_WRITE_ZOO=1`` writes the cells that ran into ``docs/model_zoo.json`` and renders
``docs/model-zoo.md`` from it (``scripts/model_zoo_page.py``); without it the tree is untouched.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from zoo_matrix import PATHS, Cell, Zoo, merge_results, run_cell
from zoo_models import ZOO, build_zoo

REPO = Path(__file__).resolve().parents[1]
JSON_PATH = REPO / "docs" / "model_zoo.json"
PAGE_PATH = REPO / "docs" / "model-zoo.md"


def _page_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "model_zoo_page", REPO / "scripts" / "model_zoo_page.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _environment() -> dict[str, Any]:
    import onnxruntime
    import sentence_transformers
    import torch
    import transformers

    versions = {
        "transformers": transformers.__version__,
        "sentence-transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    for name in ("openvino", "flashrank"):
        if importlib.util.find_spec(name) is not None:
            module = __import__(name)
            versions[name] = str(getattr(module, "__version__", "?")).split("-")[0]
    return {"python": platform.python_version(), "versions": versions}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoo]:
    """Every zoo model built once (cached), and where the cells keep exports and copies."""
    start = time.perf_counter()
    work = tmp_path_factory.mktemp("zoo")
    missing: dict[str, str] = {}
    yield Zoo(build_zoo(work / "models", missing=missing), work, missing)
    seconds = time.perf_counter() - start
    if os.environ.get("RERANK_KIT_WRITE_ZOO") == "1" and RESULTS:
        meta: dict[str, Any] = {"environment": _environment()}
        if sum(len(row) for row in RESULTS.values()) == len(ZOO) * len(PATHS):
            meta["matrix_seconds"] = round(seconds, 1)
        merge_results(JSON_PATH, RESULTS, meta)
        PAGE_PATH.write_text(_page_module().render(json.loads(JSON_PATH.read_text())))


RESULTS: dict[str, dict[str, Cell]] = {}


@pytest.mark.models
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("arch", list(ZOO))
def test_zoo_cell(zoo: Zoo, arch: str, path: str) -> None:
    cell = run_cell(zoo, arch, path)
    RESULTS.setdefault(arch, {})[path] = cell
    if cell.status == "n/a":
        pytest.skip(f"n/a: {cell.reason}")
    assert cell.status in ("pass", "refused"), cell.reason


@pytest.mark.models
@pytest.mark.parametrize(
    "arch",  # the encoders, and the decoders whose folder tells sentence-transformers the prompt
    [k for k, m in ZOO.items() if m.family == "encoder" or m.st_config or k == "qwen3-seq-cls"],
)
def test_zoo_reference_agrees_with_sentence_transformers(zoo: Zoo, arch: str) -> None:
    """Where sentence-transformers is the model card's own runner, the reference matches it.

    Texts within 512 tokens: sentence-transformers itself takes an XLM-R folder's position
    count (514) as its limit when the tokenizer names none, which the reference does not.
    """
    from sentence_transformers import CrossEncoder
    from zoo_matrix import QUERY, TEXTS

    if arch in zoo.missing:
        pytest.skip(f"not built here: {zoo.missing[arch]}")
    texts = [t for t in TEXTS if len(t) < 1000]
    import torch

    model = CrossEncoder(str(zoo.folders[arch]), device="cpu")
    raw = model.predict([(QUERY, t) for t in texts], batch_size=1)
    if model.num_labels == 2:  # predict gives both logits: the relevant label's probability
        got = [float(torch.softmax(torch.tensor(row), dim=0)[1]) for row in raw]
    else:
        got = [float(x) for x in raw]
    want = zoo.ref_scores(arch, texts)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-5


def test_zoo_page_matches_json() -> None:
    """The committed page is what scripts/model_zoo_page.py renders from the committed JSON."""
    data = json.loads(JSON_PATH.read_text())
    assert PAGE_PATH.read_text() == _page_module().render(data)


def test_zoo_json_covers_the_matrix() -> None:
    """The committed JSON has a cell for every architecture x path, each with a status."""
    data = json.loads(JSON_PATH.read_text())
    assert set(data["cells"]) == set(ZOO)
    for arch, row in data["cells"].items():
        assert set(row) == set(PATHS), arch
        for path, cell in row.items():
            assert cell["status"] in ("pass", "fail", "refused", "n/a"), (arch, path)
            if cell["status"] in ("refused", "n/a", "fail"):
                assert cell.get("reason"), (arch, path)
