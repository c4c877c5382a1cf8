"""LangChain document compressors backed by the rerank-kit engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from rerank_kit import Ranked, Reranker
from rerank_kit._adapt import (
    OnError,
    Outcome,
    arun_rerank,
    fusion_setting,
    run_rerank,
    validate_settings,
)
from rerank_kit._fusion import FusionMethod
from rerank_kit._registry import build_cascade, build_reranker

__all__ = [
    "BiEncoderRerank",
    "CascadeRerank",
    "CrossEncoderRerank",
    "FlashRankRerank",
    "RerankCompressor",
]


def _texts(documents: Sequence[Document]) -> list[Document]:
    docs = list(documents)
    for i, doc in enumerate(docs):
        if not isinstance(doc, Document):
            raise TypeError(
                f"documents[{i}] must be a langchain Document, got {type(doc).__name__}"
            )
    return docs


def _first_stage_scores(docs: list[Document], key: str | None) -> list[float] | None:
    """The first-stage score of each document, read from ``metadata[key]`` (``None``: no key)."""
    if key is None:
        return None
    out: list[float] = []
    for i, doc in enumerate(docs):
        if key not in doc.metadata:
            raise ValueError(
                f"documents[{i}] has no metadata[{key!r}] (first_stage_score_key); every "
                "document needs the first-stage score, or leave first_stage_score_key=None to "
                "fuse with the first-stage order"
            )
        value = doc.metadata[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"documents[{i}].metadata[{key!r}] must be a number, got {value!r}")
        out.append(float(value))
    return out


def _reranked(doc: Document, ranked: Ranked, failed: bool) -> Document:
    """A new Document: same content, id and metadata, plus the scores (input never touched)."""
    metadata = dict(doc.metadata)
    if failed:
        metadata["rerank_failed"] = True
    else:
        metadata["relevance_score"] = float(ranked.score)
        if ranked.reranker_score is not None:  # fused: keep every part of the score
            metadata["reranker_score"] = float(ranked.reranker_score)
            metadata["first_stage_rank"] = ranked.index + 1
            if ranked.first_stage_score is not None:
                metadata["first_stage_score"] = float(ranked.first_stage_score)
    if ranked.stage_scores:
        metadata["stage_scores"] = {k: float(v) for k, v in ranked.stage_scores.items()}
    if ranked.truncated:
        metadata["rerank_truncated"] = True
    return doc.model_copy(update={"metadata": metadata})


def _documents(docs: list[Document], outcome: Outcome) -> list[Document]:
    return [_reranked(docs[r.index], r, outcome.failed) for r in outcome.ranked]


class _BaseRerank(BaseDocumentCompressor):
    """Shared behaviour: rerank ``page_content``, keep the best, write scores to metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    top_n: int | None = Field(default=3, description="Keep at most this many (None: all).")
    score_threshold: float | None = Field(
        default=None, description="Drop documents scoring below this (applied before top_n)."
    )
    on_error: OnError = Field(
        default="raise",
        description="'passthrough' returns the first-stage order (cut to top_n) with "
        "metadata['rerank_failed']=True and a logged warning if the reranker fails.",
    )

    fusion: float | None = Field(
        default=None,
        description="Weight in [0, 1] on the reranker's score when fusing it with the "
        "first-stage signal (None: no fusion). With fusion, relevance_score is the fused score "
        "and orders, filters (score_threshold) and cuts (top_n).",
    )
    fusion_method: FusionMethod = Field(
        default="zscore", description="'zscore', 'minmax' or 'rrf' (reciprocal rank fusion)."
    )
    first_stage_score_key: str | None = Field(
        default=None,
        description="Metadata key holding each document's first-stage score, fused with "
        "the reranker's; None fuses with the first-stage order (input position).",
    )

    @model_validator(mode="after")
    def _check_settings(self) -> _BaseRerank:
        validate_settings(self.top_n, self.score_threshold)
        fusion_setting(self.fusion, self.fusion_method)
        return self

    def _run_kwargs(self, docs: list[Document]) -> dict[str, Any]:
        fusion = fusion_setting(self.fusion, self.fusion_method)
        return {
            "top_n": self.top_n,
            "score_threshold": self.score_threshold,
            "on_error": self.on_error,
            "fusion": fusion,
            "first_stage_scores": (
                _first_stage_scores(docs, self.first_stage_score_key) if fusion else None
            ),
        }

    def _get_reranker(self) -> Reranker:
        raise NotImplementedError

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query`` and return the best as new ``Document`` objects."""
        docs = _texts(documents)
        outcome = run_rerank(
            self._get_reranker(), query, [d.page_content for d in docs], **self._run_kwargs(docs)
        )
        return _documents(docs, outcome)

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Async ``compress_documents``; the model runs in a worker thread."""
        docs = _texts(documents)
        outcome = await arun_rerank(
            self._get_reranker(), query, [d.page_content for d in docs], **self._run_kwargs(docs)
        )
        return _documents(docs, outcome)


class RerankCompressor(_BaseRerank):
    """Wraps any rerank-kit ``Reranker`` as a LangChain document compressor.

    Returns new ``Document`` objects (same ``page_content``, ``id`` and metadata) with
    ``metadata["relevance_score"]``; cascades add ``metadata["stage_scores"]``; a passage longer
    than the model's token limit gets ``metadata["rerank_truncated"] = True``; with
    ``on_error="passthrough"`` a reranker failure returns the first-stage order with
    ``metadata["rerank_failed"] = True``.

    Score fusion (every compressor here): with ``fusion=0.7`` (the weight on the reranker) each
    document's reranker score is fused with its first-stage signal, the number in
    ``metadata[first_stage_score_key]`` if you name that key, else its position in the input
    (``fusion_method`` ``"zscore"``, ``"minmax"`` or ``"rrf"``). ``relevance_score`` is then the
    fused score, and it is what orders, what ``score_threshold`` compares with and what
    ``top_n`` cuts; ``metadata["reranker_score"]``, ``["first_stage_score"]`` (if a key was
    named) and ``["first_stage_rank"]`` (1 = first) keep the parts.

    Setup:
        ``pip install "rerank-kit[langchain,flashrank]"``

    Instantiate:
        .. code-block:: python

            from rerank_kit import load_reranker
            from langchain_rerank_kit import RerankCompressor

            compressor = RerankCompressor(
                reranker=load_reranker("flashrank:ms-marco-TinyBERT-L-2-v2"), top_n=3
            )

    Use with ``ContextualCompressionRetriever``:
        .. code-block:: python

            from langchain_classic.retrievers import ContextualCompressionRetriever

            retriever = ContextualCompressionRetriever(
                base_compressor=compressor, base_retriever=vectorstore.as_retriever(search_kwargs={"k": 20})
            )
            docs = retriever.invoke("how do I reset my password?")
            docs = await retriever.ainvoke("how do I reset my password?")

    Fuse with the retriever's score (when it writes one to metadata) or its order:
        .. code-block:: python

            fused = RerankCompressor(reranker=reranker, top_n=5, fusion=0.7,
                                     first_stage_score_key="score")
    """

    reranker: Reranker = Field(description="The rerank-kit engine reranker to use.")

    def _get_reranker(self) -> Reranker:
        return self.reranker


class _ModelRerank(_BaseRerank):
    """A compressor that builds its engine reranker from a model name."""

    _kind: str = PrivateAttr(default="")
    _reranker: Reranker | None = PrivateAttr(default=None)

    model: str
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for the engine reranker."
    )

    def model_post_init(self, context: Any, /) -> None:
        self._reranker = build_reranker(self._kind, self.model, **self.model_kwargs)

    def _get_reranker(self) -> Reranker:
        if self._reranker is None:  # pragma: no cover - set in model_post_init
            self._reranker = build_reranker(self._kind, self.model, **self.model_kwargs)
        return self._reranker


class CrossEncoderRerank(_ModelRerank):
    """Cross-encoder reranker (sentence-transformers) as a LangChain document compressor.

    Setup:
        ``pip install "rerank-kit[langchain,cross-encoder]"``

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import CrossEncoderRerank

            compressor = CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-6-v2", top_n=3)
            docs = compressor.compress_documents(docs, "my question")
    """

    _kind: str = PrivateAttr(default="cross-encoder")
    model: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L-6-v2", description="Hub id or local folder."
    )


class FlashRankRerank(_ModelRerank):
    """FlashRank (ONNX, no torch) reranker as a LangChain document compressor.

    Setup:
        ``pip install "rerank-kit[langchain,flashrank]"``

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import FlashRankRerank

            compressor = FlashRankRerank(model="ms-marco-TinyBERT-L-2-v2", top_n=3,
                                         model_kwargs={"cache_dir": "/models/flashrank"})
    """

    _kind: str = PrivateAttr(default="flashrank")
    model: str = Field(
        default="ms-marco-TinyBERT-L-2-v2", description="FlashRank model name or local folder."
    )


class BiEncoderRerank(_ModelRerank):
    """Bi-encoder (cosine) reranker as a LangChain document compressor.

    Setup:
        ``pip install "rerank-kit[langchain,bi-encoder]"``

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import BiEncoderRerank

            compressor = BiEncoderRerank(model="sentence-transformers/all-MiniLM-L6-v2", top_n=4)
    """

    _kind: str = PrivateAttr(default="bi-encoder")
    model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2", description="Hub id or local folder."
    )


class CascadeRerank(_BaseRerank):
    """A cascade (cheap model prunes, better model orders) as a LangChain document compressor.

    ``stages`` is a ``load_reranker`` cascade spec or a list of ``(spec, keep)`` pairs. Each
    returned document has ``metadata["relevance_score"]`` (last stage) and
    ``metadata["stage_scores"]`` (every stage).

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import CascadeRerank

            compressor = CascadeRerank(
                stages=[("flashrank:ms-marco-TinyBERT-L-2-v2", 20),
                        ("cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2", None)],
                top_n=5,
            )
    """

    stages: str | list[tuple[str, int | None]] = Field(
        description="Cascade spec ('a@20 >> b') or a list of (spec, keep) pairs."
    )
    _reranker: Reranker | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        self._reranker = build_cascade(self.stages)

    def _get_reranker(self) -> Reranker:
        if self._reranker is None:  # pragma: no cover - set in model_post_init
            self._reranker = build_cascade(self.stages)
        return self._reranker
