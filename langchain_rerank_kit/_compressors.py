"""LangChain document compressors backed by the rerank-kit engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from rerank_kit import Ranked, Reranker
from rerank_kit._adapt import OnError, Outcome, arun_rerank, run_rerank, validate_settings
from rerank_kit._registry import build_cascade, build_reranker

__all__ = [
    "BiEncoderRerank",
    "CascadeRerank",
    "CrossEncoderRerank",
    "FlashRankRerank",
    "RemoteRerank",
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


def _reranked(doc: Document, ranked: Ranked, failed: bool) -> Document:
    """A new Document: same content, id and metadata, plus the scores (input never touched)."""
    metadata = dict(doc.metadata)
    if failed:
        metadata["rerank_failed"] = True
    else:
        metadata["relevance_score"] = float(ranked.score)
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

    @model_validator(mode="after")
    def _check_settings(self) -> _BaseRerank:
        validate_settings(self.top_n, self.score_threshold)
        return self

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
            self._get_reranker(),
            query,
            [d.page_content for d in docs],
            top_n=self.top_n,
            score_threshold=self.score_threshold,
            on_error=self.on_error,
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
            self._get_reranker(),
            query,
            [d.page_content for d in docs],
            top_n=self.top_n,
            score_threshold=self.score_threshold,
            on_error=self.on_error,
        )
        return _documents(docs, outcome)


class RerankCompressor(_BaseRerank):
    """Wraps any rerank-kit ``Reranker`` as a LangChain document compressor.

    Returns new ``Document`` objects (same ``page_content``, ``id`` and metadata) with
    ``metadata["relevance_score"]``; cascades add ``metadata["stage_scores"]``; a passage longer
    than the model's token limit gets ``metadata["rerank_truncated"] = True``; with
    ``on_error="passthrough"`` a reranker failure returns the first-stage order with
    ``metadata["rerank_failed"] = True``.

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


class RemoteRerank(_ModelRerank):
    """A hosted rerank API or a self-hosted serving engine (TEI, Infinity) as a LangChain document compressor.

    ``model`` is a remote spec: ``cohere:rerank-v3.5``, ``voyage:rerank-2.5``,
    ``jina:jina-reranker-v2-base-multilingual``, ``pinecone:bge-reranker-v2-m3``,
    ``zeroentropy:zerank-1-small``, ``tei:http://HOST:PORT`` or ``infinity:http://HOST:PORT#MODEL``.
    ``model_kwargs`` go to :class:`rerank_kit.RemoteReranker` (``api_key``, ``base_url``,
    ``timeout``, ``max_retries``, ``batch_size``); they are left out of the repr and of
    serialisation, so a key passed there is never printed. Scores are the provider's relevance
    scores; the async path awaits an ``httpx.AsyncClient`` (no worker thread).

    Setup:
        ``pip install "rerank-kit[langchain,remote]"``

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import RemoteRerank

            compressor = RemoteRerank(model="cohere:rerank-v3.5", top_n=5)  # reads COHERE_API_KEY
            # the same pipeline on your own GPU pool (TEI behind a load balancer):
            compressor = RemoteRerank(model="tei:http://rerank.internal:8080", top_n=5,
                                      model_kwargs={"timeout": 5, "max_retries": 2})

    Use with ``ContextualCompressionRetriever``:
        .. code-block:: python

            from langchain_classic.retrievers import ContextualCompressionRetriever

            retriever = ContextualCompressionRetriever(
                base_compressor=compressor, base_retriever=vectorstore.as_retriever(search_kwargs={"k": 20})
            )
            docs = await retriever.ainvoke("how do I reset my password?")  # truly async (httpx)
    """

    model: str = Field(
        default="cohere:rerank-v3.5",
        description="Remote spec, e.g. 'cohere:rerank-v3.5' or 'tei:http://HOST:PORT'.",
    )
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        repr=False,
        exclude=True,
        description="Keyword arguments for RemoteReranker (api_key, base_url, timeout, ...).",
    )

    def model_post_init(self, context: Any, /) -> None:
        from rerank_kit import RemoteReranker

        self._reranker = RemoteReranker(self.model, **self.model_kwargs)

    def _get_reranker(self) -> Reranker:
        if self._reranker is None:  # pragma: no cover - set in model_post_init
            self.model_post_init(None)
        assert self._reranker is not None
        return self._reranker


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
