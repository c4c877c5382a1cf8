"""LangChain document compressors backed by the rerank-kit engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.language_models import BaseChatModel
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from rerank_kit import ListwiseLLMReranker, Ranked, Reranker
from rerank_kit._adapt import (
    OnError,
    Outcome,
    arun_rerank,
    fusion_setting,
    run_rerank,
    validate_settings,
)
from rerank_kit._core.fusion import FusionMethod
from rerank_kit._registry import build_cascade, build_reranker

__all__ = [
    "from_config",
    "BiEncoderRerank",
    "CascadeRerank",
    "CrossEncoderRerank",
    "FlashRankRerank",
    "ListwiseLLMRerank",
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
    if ranked.llm_repaired:
        metadata["llm_repaired"] = True
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


def _stages(stages: Any) -> Any:
    """Cascade stages with this package's compressors replaced by their engine rerankers."""
    if isinstance(stages, str):
        return stages
    return [
        (model._get_reranker() if isinstance(model, _BaseRerank) else model, keep)
        for model, keep in stages
    ]


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

    ``stages`` is a ``load_reranker`` cascade spec or a list of ``(stage, keep)`` pairs, where a
    stage is a spec string, a rerank-kit ``Reranker``, or one of this package's compressors (such
    as ``ListwiseLLMRerank``, which has to be last). Each returned document has
    ``metadata["relevance_score"]`` (last stage) and ``metadata["stage_scores"]`` (every stage).

    Cheap model prunes to 20, the chat model orders them:
        .. code-block:: python

            from langchain_rerank_kit import CascadeRerank, ListwiseLLMRerank

            compressor = CascadeRerank(
                stages=[("flashrank:ms-marco-TinyBERT-L-2-v2", 20),
                        (ListwiseLLMRerank(llm=chat_model), None)],
                top_n=5,
            )

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import CascadeRerank

            compressor = CascadeRerank(
                stages=[("flashrank:ms-marco-TinyBERT-L-2-v2", 20),
                        ("cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2", None)],
                top_n=5,
            )
    """

    stages: str | list[tuple[str | Reranker | _BaseRerank, int | None]] = Field(
        description="Cascade spec ('a@20 >> b') or a list of (spec, reranker or compressor; keep) pairs."
    )
    _reranker: Reranker | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        self._reranker = build_cascade(_stages(self.stages))

    def _get_reranker(self) -> Reranker:
        if self._reranker is None:  # pragma: no cover - set in model_post_init
            self._reranker = build_cascade(_stages(self.stages))
        return self._reranker


class ListwiseLLMRerank(_BaseRerank):
    """Listwise reranking by a LangChain chat model (RankGPT-style sliding windows).

    Any ``BaseChatModel`` works: the engine's :class:`~rerank_kit.ListwiseLLMReranker` sends it
    numbered passages (``window`` at a time, sliding up by ``step``) through ``invoke`` and
    ``ainvoke`` (so async retrieval awaits the model) and parses answers like ``[3] > [1] > [2]``,
    ``3, 1, 2`` or a JSON list; unknown or repeated numbers are ignored and left-out passages keep
    their order after the ranked ones. A document placed from such a repaired or unparsable answer
    gets ``metadata["llm_repaired"] = True``; one whose text was cut to the passage budget gets
    ``metadata["rerank_truncated"] = True``.

    ``metadata["relevance_score"]`` is rank-derived (``1 / rank``: 1.0, 0.5, 0.33...), so
    ``top_n`` works and ``score_threshold`` is refused. With ``on_error="passthrough"`` a failing
    model returns the first-stage order with ``metadata["rerank_failed"] = True``.

    Setup:
        ``pip install "rerank-kit[langchain]"`` plus your chat model's package.

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import ListwiseLLMRerank

            compressor = ListwiseLLMRerank(llm=chat_model, top_n=5)   # window=20, step=10
            docs = compressor.compress_documents(docs, "how do I reset my password?")
            docs = await compressor.acompress_documents(docs, "how do I reset my password?")

    As the last stage of a cascade, see :class:`CascadeRerank`.
    """

    llm: BaseChatModel = Field(description="The chat model that orders the passages.")
    window: int = Field(default=20, description="Passages per LLM call.")
    step: int = Field(default=10, description="How far the window moves up between calls.")
    max_calls: int | None = Field(default=None, description="At most this many calls per query.")
    max_passage_tokens: int | None = Field(
        default=300, description="Cut passages to this many tokens (whitespace words by default)."
    )
    count_tokens: Callable[[str], int] | None = Field(
        default=None, description="Token counter for max_passage_tokens (default: words)."
    )
    max_passage_chars: int | None = Field(
        default=None, description="Cut passages to this many characters."
    )
    prompt: Callable[[str, Sequence[str]], str] | None = Field(
        default=None, description="(query, passages) -> prompt, to replace the default prompt."
    )
    _reranker: ListwiseLLMReranker | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _no_threshold(self) -> ListwiseLLMRerank:
        if self.score_threshold is not None:
            raise ValueError(
                "ListwiseLLMRerank gives rank-derived scores, so score_threshold has no meaning "
                "for it; use top_n"
            )
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._reranker = self._build()

    def _build(self) -> ListwiseLLMReranker:
        llm = self.llm

        def call(prompt: str) -> str:
            return str(llm.invoke(prompt).text)

        async def acall(prompt: str) -> str:
            return str((await llm.ainvoke(prompt)).text)

        return ListwiseLLMReranker(
            call,
            allm=acall,
            window=self.window,
            step=self.step,
            max_calls=self.max_calls,
            max_passage_tokens=self.max_passage_tokens,
            count_tokens=self.count_tokens,
            max_passage_chars=self.max_passage_chars,
            prompt=self.prompt,
            name=f"listwise-llm:{type(llm).__name__}",
        )

    @property
    def reranker(self) -> ListwiseLLMReranker:
        """The engine reranker (e.g. to read ``stats`` or to use it in an engine cascade)."""
        if self._reranker is None:  # pragma: no cover - set in model_post_init
            self._reranker = self._build()
        return self._reranker

    def _get_reranker(self) -> Reranker:
        return self.reranker


def from_config(
    config: Any, *, first_stage_score_key: str | None = None, **kwargs: Any
) -> RerankCompressor:
    """The tuned pipeline that ``rerank-kit tune --config FILE`` saved, in one call.

    Builds the reranker and sets ``top_n``, ``score_threshold``, ``fusion`` and
    ``fusion_method`` from the file (or a ``rerank_kit.PipelineConfig``); ``config.depth`` is how
    many candidates the first stage should retrieve.

    Args:
        config: Path of the JSON file, or a ``PipelineConfig``.
        first_stage_score_key: The metadata key holding the first-stage score (fusion falls
            back to the input order without it).
        **kwargs: Passed to ``load_reranker`` (e.g. ``threads=``).

    Example:
        >>> rerank = from_config("pipeline.json")  # doctest: +SKIP
    """
    from rerank_kit import load_pipeline

    pipeline = load_pipeline(config, **kwargs)
    settings = pipeline.config
    return RerankCompressor(
        reranker=pipeline.reranker,
        top_n=settings.top_n,
        score_threshold=settings.score_threshold,
        fusion=settings.fusion_weight,
        fusion_method=settings.fusion_method,  # type: ignore[arg-type]
        first_stage_score_key=first_stage_score_key,
    )
