"""Long passages scored whole (``long_documents``): windows, every backend, adapters and CLI."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import TRAIN_TEXTS

from rerank_kit import (
    BiEncoderReranker,
    CascadeReranker,
    CrossEncoderReranker,
    FlashRankReranker,
    OnnxCrossEncoderReranker,
    PairScores,
    Reranker,
    load_reranker,
)
from rerank_kit._core.windows import WindowPlan, aggregate, make_windows, whitespace_offsets
from rerank_kit.testing import FakeReranker

QUERY = "rerankers score a query and a passage"
LONG = " ".join(TRAIN_TEXTS * 3)  # hundreds of tokens
SHORT = "rerankers score a query and a passage together with a cross encoder"
TEXTS = [SHORT, LONG, "paris is the capital of france"]


# ----------------------------------------------------------------------------- windows


def test_windows_cover_the_passage_with_overlap_and_fit() -> None:
    words = [f"w{i}" for i in range(103)]
    text = " ".join(words)
    plan = WindowPlan(budget=20, offsets=whitespace_offsets)
    windows, owner, split = make_windows([text, "tiny one"], plan)
    assert split == [True, False] and owner[-1] == 1 and windows[-1] == "tiny one"
    parts = [w.split() for w, o in zip(windows, owner, strict=True) if o == 0]
    assert all(len(p) <= 20 for p in parts)
    covered = [w for p in parts for w in p]
    assert set(covered) == set(words)  # nothing lost
    assert parts[0][0] == "w0" and parts[-1][-1] == "w102"
    for a, b in itertools.pairwise(parts):  # consecutive windows overlap
        assert set(a) & set(b)
    first, _, _ = make_windows([text], plan, first_only=True)
    assert first == [windows[0]]


def test_aggregate_modes() -> None:
    scores, owner = [0.2, 0.8, 0.5, 0.1], [0, 0, 0, 1]
    assert aggregate(scores, owner, 2, "max") == [0.8, 0.1]
    assert aggregate(scores, owner, 2, "mean") == pytest.approx([0.5, 0.1])
    assert aggregate(scores, owner, 2, "first") == [0.2, 0.1]


def test_bad_modes_and_backends_without_windows() -> None:
    with pytest.raises(ValueError, match="long_documents must be one of"):
        FakeReranker().set_long_documents("all")
    with pytest.raises(ValueError, match="cannot score long documents"):
        FakeReranker().set_long_documents("max")
    fake = FakeReranker()
    fake.set_long_documents("truncate")
    assert fake.name == "fake"


# ----------------------------------------------------------------------------- backends


class _Counting:
    """Wraps a reranker's ``_score_pairs`` to record each call's texts."""

    def __init__(self, reranker: Reranker) -> None:
        self.calls: list[list[str]] = []
        inner = reranker._score_pairs

        def score(query: str, texts: list[str]) -> PairScores | Sequence[float]:
            self.calls.append(list(texts))
            return inner(query, texts)

        reranker._score_pairs = score  # type: ignore[method-assign]


def _check_backend(make: Any) -> None:
    """Same checks for every backend: ``make(mode)`` builds the reranker."""
    plain = make("truncate")
    truncated = plain._scored(QUERY, TEXTS).truncated
    assert truncated == [False, True, False]

    windowed = make("max")
    assert windowed.name.endswith("[long_documents=max]")
    calls = _Counting(windowed)
    got = windowed._scored(QUERY, TEXTS)
    scores, flags = got.scores, got.truncated
    assert flags == [False, False, False]  # windows covered the long passage: no flag
    assert len(calls.calls) == 1  # every window in one batched call
    windows = calls.calls[0]
    assert len(windows) > len(TEXTS)
    plan = windowed._window_plan(QUERY)
    assert plan is not None
    expected, owner, split = make_windows(TEXTS, plan)
    assert windows == expected and split == [False, True, False]
    # the long passage scores the max of its windows, each scored like a short passage
    per_windows = plain._scored(QUERY, windows)
    per_window, cut = per_windows.scores, per_windows.truncated or []
    assert not any(cut)  # each window fits
    assert scores == pytest.approx(aggregate(per_window, owner, len(TEXTS), "max"), abs=1e-5)
    assert scores[0] == pytest.approx(plain.score(QUERY, TEXTS)[0], abs=1e-5)

    mean = make("mean")
    assert mean._scored(QUERY, TEXTS).scores == pytest.approx(
        aggregate(per_window, owner, len(TEXTS), "mean"), abs=1e-5
    )
    first = make("first")
    first_got = first._scored(QUERY, TEXTS)
    first_scores, first_flags = first_got.scores, first_got.truncated
    assert first_flags == [False, True, False]  # only the first window was read
    assert first_scores[1] == pytest.approx(per_window[owner.index(1)], abs=1e-5)
    # rerank orders by the aggregated scores
    ranked = windowed.rerank(QUERY, TEXTS)
    assert [r.index for r in ranked] == sorted(range(3), key=lambda i: -scores[i])
    assert not any(r.truncated for r in ranked)


@pytest.mark.models
def test_cross_encoder_torch_windows(tiny_ce_dir: Path) -> None:
    _check_backend(
        lambda mode: CrossEncoderReranker(str(tiny_ce_dir), max_length=64, long_documents=mode)
    )


@pytest.mark.models
def test_cross_encoder_onnx_windows(tiny_ce_dir: Path, tmp_path_factory: Any) -> None:
    cache = tmp_path_factory.mktemp("onnx-windows")
    _check_backend(
        lambda mode: OnnxCrossEncoderReranker(
            str(tiny_ce_dir), max_length=64, cache_dir=cache, long_documents=mode
        )
    )
    via_ce = CrossEncoderReranker(
        str(tiny_ce_dir),
        backend="onnx",
        max_length=64,
        model_kwargs={"cache_dir": cache},
        long_documents="max",
    )
    assert via_ce.name.count("[long_documents=max]") == 1
    assert via_ce._scored(QUERY, TEXTS).truncated == [False, False, False]


@pytest.mark.models
def test_flashrank_windows(tiny_flashrank_dir: Path) -> None:
    _check_backend(
        lambda mode: FlashRankReranker(str(tiny_flashrank_dir), max_length=64, long_documents=mode)
    )


@pytest.mark.models
def test_bi_encoder_windows(minilm_path: str) -> None:
    def make(mode: str) -> BiEncoderReranker:
        r = BiEncoderReranker(minilm_path, long_documents=mode, cache_size=0)
        r.model.max_seq_length = 64
        return r

    _check_backend(make)


FILLER = (
    "The recipe calls for two cups of flour, a pinch of salt and three eggs, whisked until the "
    "batter is smooth; bake it for forty minutes and let it cool on a rack before slicing. "
)


@pytest.mark.models
def test_bi_encoder_finds_what_truncation_cuts_off(minilm_reranker: BiEncoderReranker) -> None:
    """A relevant sentence after 500 tokens of baking: only windows see it (real model)."""
    query = "what is the capital of France?"
    buried = FILLER * 14 + "Paris is the capital and largest city of France."
    recipe = FILLER * 15
    truncating = minilm_reranker
    windowed = load_reranker(f"bi-encoder:{truncating.model_name}", long_documents="max")
    cut = truncating.rerank(query, [recipe, buried])
    whole = windowed.rerank(query, [recipe, buried])
    assert all(r.truncated for r in cut)
    assert not any(r.truncated for r in whole)
    buried_cut = next(r.score for r in cut if r.index == 1)
    buried_whole = next(r.score for r in whole if r.index == 1)
    assert buried_whole > buried_cut + 0.2
    assert whole[0].index == 1


def test_cascade_sets_every_stage() -> None:
    class _Windowed(FakeReranker):
        def _window_plan(self, query: str) -> WindowPlan | None:
            return WindowPlan(budget=20, offsets=whitespace_offsets)

    a, b = _Windowed("a"), _Windowed("b")
    cascade = CascadeReranker([(a, 2), b])
    cascade.set_long_documents("mean")
    assert a.long_documents == b.long_documents == cascade.long_documents == "mean"
    long_text = " ".join(["filler"] * 50 + ["query"])
    ranked = cascade.rerank("query", [long_text, "nothing here"])
    assert ranked[0].index == 0 and not ranked[0].truncated
    with pytest.raises(ValueError):
        CascadeReranker([FakeReranker()]).set_long_documents("max")


# ----------------------------------------------------------------------------- adapters, CLI


@pytest.mark.models
def test_adapters_pass_long_documents_through_model_kwargs(tiny_ce_dir: Path) -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li

    kwargs = {"max_length": 64, "long_documents": "max"}
    docs = [Document(page_content=t) for t in TEXTS]
    out = lc.CrossEncoderRerank(model=str(tiny_ce_dir), model_kwargs=kwargs, top_n=None)
    got = out.compress_documents(docs, QUERY)
    assert not any(d.metadata.get("rerank_truncated") for d in got)
    cut = lc.CrossEncoderRerank(model=str(tiny_ce_dir), model_kwargs={"max_length": 64}, top_n=None)
    assert any(d.metadata.get("rerank_truncated") for d in cut.compress_documents(docs, QUERY))
    direct = CrossEncoderReranker(str(tiny_ce_dir), **kwargs).score(QUERY, TEXTS)  # type: ignore[arg-type]
    assert {d.page_content: d.metadata["relevance_score"] for d in got} == pytest.approx(
        dict(zip(TEXTS, direct, strict=True))
    )

    nodes = [NodeWithScore(node=TextNode(text=t), score=1.0) for t in TEXTS]
    post = li.CrossEncoderRerank(model=str(tiny_ce_dir), model_kwargs=kwargs, top_n=None)
    res = post.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))
    assert not any(n.truncated for n in res)  # type: ignore[attr-defined]
    assert sorted(n.score for n in res) == pytest.approx(sorted(direct))  # type: ignore[type-var]


@pytest.mark.models
def test_cli_long_documents_option(
    tiny_ce_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("bm25s")
    from rerank_kit.evaluation._cli import main

    folder = tmp_path / "data"
    folder.mkdir()
    corpus = {"short": SHORT, "long": LONG, "other": TRAIN_TEXTS[3]}
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in corpus.items())
    )
    (folder / "judgments.jsonl").write_text(json.dumps({"query": QUERY, "relevant": ["long"]}))
    import rerank_kit._registry as registry

    real = registry.load_reranker
    monkeypatch.setattr(
        registry, "load_reranker", lambda spec, **kw: real(spec, max_length=64, **kw)
    )
    out = tmp_path / "out.json"
    spec = f"cross-encoder:{tiny_ce_dir}"
    args = [str(folder), "--no-progress", "--json", str(out), "--reranker", spec]
    assert main([*args, "--long-documents", "max"]) == 0
    data = json.loads(out.read_text())
    system = data["systems"][-1]
    assert system["name"].endswith("[long_documents=max]")
    assert system["truncated"] == 0.0
    assert data["settings"]["long_documents"] == "max"
    assert main(args) == 0
    assert json.loads(out.read_text())["systems"][-1]["truncated"] > 0
