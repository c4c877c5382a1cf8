"""LlamaIndex node postprocessors backed by the rerank-kit engine."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr, model_validator
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import LLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

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
    "RerankCompressor",
    "RerankedNodeWithScore",
]

dispatcher = get_dispatcher(__name__)
logger = logging.getLogger(__name__)


class RerankedNodeWithScore(NodeWithScore):
    """A ``NodeWithScore`` whose ``score`` is the rerank score.

    The node itself is the input's node, untouched; the first-stage score stays readable as
    ``retrieval_score`` and a cascade's per-stage scores as ``stage_scores``. ``truncated`` is
    True if the passage was longer than the model's token limit; ``rerank_failed`` is True when
    ``on_error="passthrough"`` kept the first-stage order (``score`` is then the retrieval score);
    ``llm_repaired`` is True when an LLM reranker placed the node from an answer it had to repair.
    With score fusion, ``score`` is the fused score, ``reranker_score`` the reranker's own and
    ``first_stage_rank`` the node's position in the input (1 = first).
    """

    retrieval_score: float | None = Field(default=None, description="Score before reranking.")
    reranker_score: float | None = Field(
        default=None, description="With fusion: the reranker's own score (score is fused)."
    )
    first_stage_rank: int | None = Field(
        default=None, description="With fusion: position in the first stage's list (1 = first)."
    )
    stage_scores: dict[str, float] = Field(default_factory=dict, description="Cascade scores.")
    truncated: bool = Field(default=False, description="Passage cut at the token limit.")
    rerank_failed: bool = Field(default=False, description="Reranker failed; first-stage order.")
    llm_repaired: bool = Field(default=False, description="Placed from a repaired LLM answer.")

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RerankedNodeWithScore"


def _check_nodes(nodes: list[NodeWithScore]) -> list[NodeWithScore]:
    items = list(nodes)
    for i, item in enumerate(items):
        if not isinstance(item, NodeWithScore):
            raise TypeError(f"nodes[{i}] must be a NodeWithScore, got {type(item).__name__}")
    return items


def _query(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise ValueError("reranking needs the query: pass query_bundle= or query_str=")
    return query_bundle.query_str


def _wrap(item: NodeWithScore, ranked: Ranked, failed: bool) -> RerankedNodeWithScore:
    retrieval = None if item.score is None else float(item.score)
    return RerankedNodeWithScore(
        node=item.node,
        score=retrieval if failed else float(ranked.score),
        retrieval_score=retrieval,
        stage_scores={k: float(v) for k, v in ranked.stage_scores.items()},
        truncated=ranked.truncated,
        rerank_failed=failed,
        llm_repaired=ranked.llm_repaired,
        reranker_score=None if ranked.reranker_score is None else float(ranked.reranker_score),
        first_stage_rank=None if ranked.reranker_score is None else ranked.index + 1,
    )


def _retrieval_scores(items: list[NodeWithScore]) -> list[float] | None:
    """Every node's retrieval score, or ``None`` (fuse with the order) if any node has none."""
    scores = [n.score for n in items]
    if any(s is None for s in scores):
        if any(s is not None for s in scores):
            logger.debug("some nodes have no retrieval score; fusing with the first-stage order")
        return None
    return [float(s) for s in scores if s is not None]


def _nodes(items: list[NodeWithScore], outcome: Outcome) -> list[NodeWithScore]:
    return [_wrap(items[r.index], r, outcome.failed) for r in outcome.ranked]


class _BaseRerank(BaseNodePostprocessor):
    """Shared behaviour: rerank node text, keep the best, emit LlamaIndex's rerank events."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    top_n: int | None = Field(default=3, description="Keep at most this many (None: all).")
    score_threshold: float | None = Field(
        default=None, description="Drop nodes scoring below this (applied before top_n)."
    )
    on_error: OnError = Field(
        default="raise",
        description="'passthrough' returns the first-stage order (cut to top_n) flagged "
        "rerank_failed=True, with a logged warning, if the reranker fails.",
    )

    fusion: float | None = Field(
        default=None,
        description="Weight in [0, 1] on the reranker's score when fusing it with the "
        "retrieval score (or, for nodes without one, the retrieval order); None: no fusion. "
        "With fusion, score is the fused score and orders, filters and cuts.",
    )
    fusion_method: FusionMethod = Field(
        default="zscore", description="'zscore', 'minmax' or 'rrf' (reciprocal rank fusion)."
    )

    @model_validator(mode="after")
    def _check_settings(self) -> _BaseRerank:
        validate_settings(self.top_n, self.score_threshold)
        fusion_setting(self.fusion, self.fusion_method)
        return self

    def _run_kwargs(self, items: list[NodeWithScore]) -> dict[str, Any]:
        fusion = fusion_setting(self.fusion, self.fusion_method)
        return {
            "top_n": self.top_n,
            "score_threshold": self.score_threshold,
            "on_error": self.on_error,
            "fusion": fusion,
            "first_stage_scores": _retrieval_scores(items) if fusion else None,
        }

    def _get_reranker(self) -> Reranker:
        raise NotImplementedError

    def _start(self, query_bundle: QueryBundle | None, nodes: list[NodeWithScore]) -> str:
        query = _query(query_bundle)
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle,
                nodes=nodes,
                top_n=self.top_n if self.top_n is not None else len(nodes),
                model_name=self._get_reranker().name,
            )
        )
        return query

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        items = _check_nodes(nodes)
        query = self._start(query_bundle, items)
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in items]
        with self.callback_manager.event(
            CBEventType.RERANKING,
            payload={
                EventPayload.NODES: items,
                EventPayload.MODEL_NAME: self._get_reranker().name,
                EventPayload.QUERY_STR: query,
                EventPayload.TOP_K: self.top_n,
            },
        ) as event:
            outcome = run_rerank(self._get_reranker(), query, texts, **self._run_kwargs(items))
            out = _nodes(items, outcome)
            event.on_end(payload={EventPayload.NODES: out})
        dispatcher.event(ReRankEndEvent(nodes=out))
        return out

    async def _apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        items = _check_nodes(nodes)
        query = self._start(query_bundle, items)
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in items]
        outcome = await arun_rerank(self._get_reranker(), query, texts, **self._run_kwargs(items))
        out = _nodes(items, outcome)
        dispatcher.event(ReRankEndEvent(nodes=out))
        return out


class RerankCompressor(_BaseRerank):
    """Wraps any rerank-kit ``Reranker`` as a LlamaIndex node postprocessor.

    (The name matches the LangChain adapter; ``RerankPostprocessor`` is an alias.) Returns new
    ``RerankedNodeWithScore`` objects: ``score`` is the rerank score, ``retrieval_score`` the
    first-stage one; input nodes are never modified.

    Score fusion (every postprocessor here): with ``fusion=0.7`` (the weight on the reranker)
    each node's reranker score is fused with its retrieval score (``NodeWithScore.score``; the
    retrieval order if any node has none), per query (``fusion_method`` ``"zscore"``,
    ``"minmax"`` or ``"rrf"``). ``score`` is then the fused score, and it is what orders, what
    ``score_threshold`` compares with and what ``top_n`` cuts; ``reranker_score``,
    ``retrieval_score`` and ``first_stage_rank`` keep the parts.

    Setup:
        ``pip install "rerank-kit[llamaindex,flashrank]"``

    Instantiate:
        .. code-block:: python

            from rerank_kit import load_reranker
            from llamaindex_rerank_kit import RerankCompressor

            rerank = RerankCompressor(reranker=load_reranker("flashrank:ms-marco-TinyBERT-L-2-v2"), top_n=3)
            engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])
            response = engine.query("how do I reset my password?")
            response = await engine.aquery("how do I reset my password?")

    Fuse the reranker's score with the retrieval score:
        .. code-block:: python

            rerank = RerankCompressor(reranker=reranker, top_n=5, fusion=0.7)
    """

    reranker: Reranker = Field(description="The rerank-kit engine reranker to use.")

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RerankCompressor"

    def _get_reranker(self) -> Reranker:
        return self.reranker


RerankPostprocessor = RerankCompressor


class _ModelRerank(_BaseRerank):
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
    """Cross-encoder reranker (sentence-transformers) as a LlamaIndex node postprocessor.

    Instantiate:
        .. code-block:: python

            from llamaindex_rerank_kit import CrossEncoderRerank

            rerank = CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-6-v2", top_n=3)
            engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])
    """

    _kind: str = PrivateAttr(default="cross-encoder")
    model: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L-6-v2", description="Hub id or local folder."
    )

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "CrossEncoderRerank"


class FlashRankRerank(_ModelRerank):
    """FlashRank (ONNX, no torch) reranker as a LlamaIndex node postprocessor.

    Instantiate:
        .. code-block:: python

            from llamaindex_rerank_kit import FlashRankRerank

            rerank = FlashRankRerank(model="ms-marco-TinyBERT-L-2-v2", top_n=3)
    """

    _kind: str = PrivateAttr(default="flashrank")
    model: str = Field(
        default="ms-marco-TinyBERT-L-2-v2", description="FlashRank model name or local folder."
    )

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "FlashRankRerank"


class BiEncoderRerank(_ModelRerank):
    """Bi-encoder (cosine) reranker as a LlamaIndex node postprocessor.

    Instantiate:
        .. code-block:: python

            from llamaindex_rerank_kit import BiEncoderRerank

            rerank = BiEncoderRerank(model="sentence-transformers/all-MiniLM-L6-v2", top_n=4)
    """

    _kind: str = PrivateAttr(default="bi-encoder")
    model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2", description="Hub id or local folder."
    )

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "BiEncoderRerank"


def _stages(stages: Any) -> Any:
    """Cascade stages with this package's postprocessors replaced by their engine rerankers."""
    if isinstance(stages, str):
        return stages
    return [
        (model._get_reranker() if isinstance(model, _BaseRerank) else model, keep)
        for model, keep in stages
    ]


class RemoteRerank(_ModelRerank):
    """A hosted rerank API or a self-hosted serving engine (TEI, Infinity) as a LlamaIndex node postprocessor.

    ``model`` is a remote spec: ``cohere:rerank-v3.5``, ``voyage:rerank-2.5``,
    ``jina:jina-reranker-v2-base-multilingual``, ``pinecone:bge-reranker-v2-m3``,
    ``zeroentropy:zerank-1-small``, ``tei:http://HOST:PORT`` or ``infinity:http://HOST:PORT#MODEL``.
    ``model_kwargs`` go to :class:`rerank_kit.RemoteReranker` (``api_key``, ``base_url``,
    ``timeout``, ``max_retries``, ``batch_size``); they are left out of the repr and of
    serialisation, so a key passed there is never printed. Scores are the provider's relevance
    scores; the async path awaits an ``httpx.AsyncClient`` (no worker thread).

    Setup:
        ``pip install "rerank-kit[llamaindex,remote]"``

    Instantiate:
        .. code-block:: python

            from llamaindex_rerank_kit import RemoteRerank

            rerank = RemoteRerank(model="voyage:rerank-2.5", top_n=5)  # reads VOYAGE_API_KEY
            rerank = RemoteRerank(model="infinity:http://rerank.internal:7997#BAAI/bge-reranker-base",
                                  top_n=5, model_kwargs={"timeout": 5})

    Use in a query engine:
        .. code-block:: python

            engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])
            response = await engine.aquery("how do I reset my password?")  # truly async (httpx)
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

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RemoteRerank"

    def model_post_init(self, context: Any, /) -> None:
        from rerank_kit import RemoteReranker

        self._reranker = RemoteReranker(self.model, **self.model_kwargs)

    def _get_reranker(self) -> Reranker:
        if self._reranker is None:  # pragma: no cover - set in model_post_init
            self.model_post_init(None)
        assert self._reranker is not None
        return self._reranker


class CascadeRerank(_BaseRerank):
    """A cascade (cheap model prunes, better model orders) as a LlamaIndex node postprocessor.

    ``stages`` is a ``load_reranker`` cascade spec or a list of ``(stage, keep)`` pairs, where a
    stage is a spec string, a rerank-kit ``Reranker``, or one of this package's postprocessors
    (such as ``ListwiseLLMRerank``, which has to be last); each returned node has every stage's
    score in ``stage_scores``.

    Cheap model prunes to 20, the LLM orders them:
        .. code-block:: python

            from llamaindex_rerank_kit import CascadeRerank, ListwiseLLMRerank

            rerank = CascadeRerank(
                stages=[("flashrank:ms-marco-TinyBERT-L-2-v2", 20),
                        (ListwiseLLMRerank(llm=Settings.llm), None)],
                top_n=5,
            )

    Instantiate:
        .. code-block:: python

            from llamaindex_rerank_kit import CascadeRerank

            rerank = CascadeRerank(
                stages="flashrank:ms-marco-TinyBERT-L-2-v2@20 >> cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2",
                top_n=5,
            )
    """

    stages: str | list[tuple[str | Reranker | _BaseRerank, int | None]] = Field(
        description="Cascade spec ('a@20 >> b') or a list of (spec, reranker or postprocessor; keep) pairs."
    )
    _reranker: Reranker | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "CascadeRerank"

    def model_post_init(self, context: Any, /) -> None:
        self._reranker = build_cascade(_stages(self.stages))

    def _get_reranker(self) -> Reranker:
        if self._reranker is None:  # pragma: no cover - set in model_post_init
            self._reranker = build_cascade(_stages(self.stages))
        return self._reranker


def _answer_text(llm: LLM, prompt: str) -> str:
    if llm.metadata.is_chat_model:
        message = llm.chat([ChatMessage(role=MessageRole.USER, content=prompt)]).message
        return message.content or ""
    return llm.complete(prompt).text


async def _aanswer_text(llm: LLM, prompt: str) -> str:
    if llm.metadata.is_chat_model:
        response = await llm.achat([ChatMessage(role=MessageRole.USER, content=prompt)])
        return response.message.content or ""
    return (await llm.acomplete(prompt)).text


class ListwiseLLMRerank(_BaseRerank):
    """Listwise reranking by a LlamaIndex ``LLM`` (RankGPT-style sliding windows).

    Any ``LLM`` works: the engine's :class:`~rerank_kit.ListwiseLLMReranker` sends it numbered
    passages (``window`` at a time, sliding up by ``step``) through ``chat``/``achat`` for chat
    models and ``complete``/``acomplete`` otherwise, and parses answers like ``[3] > [1] > [2]``,
    ``3, 1, 2`` or a JSON list; unknown or repeated numbers are ignored and left-out passages keep
    their order after the ranked ones. A node placed from such a repaired or unparsable answer has
    ``llm_repaired=True``; one whose text was cut to the passage budget has ``truncated=True``.

    ``score`` is rank-derived (``1 / rank``: 1.0, 0.5, 0.33...), so ``top_n`` works and
    ``score_threshold`` is refused; ``retrieval_score`` keeps the first-stage score. With
    ``on_error="passthrough"`` a failing LLM returns the first-stage order with
    ``rerank_failed=True``.

    Setup:
        ``pip install "rerank-kit[llamaindex]"`` plus your LLM's package.

    Instantiate:
        .. code-block:: python

            from llama_index.core import Settings
            from llamaindex_rerank_kit import ListwiseLLMRerank

            rerank = ListwiseLLMRerank(llm=Settings.llm, top_n=5)   # window=20, step=10
            engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])

    As the last stage of a cascade, see :class:`CascadeRerank`.
    """

    llm: LLM = Field(description="The LLM that orders the passages.")
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

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "ListwiseLLMRerank"

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
            return _answer_text(llm, prompt)

        async def acall(prompt: str) -> str:
            return await _aanswer_text(llm, prompt)

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


def from_config(config: Any, **kwargs: Any) -> RerankCompressor:
    """The tuned pipeline that ``rerank-kit tune --config FILE`` saved, in one call.

    Builds the reranker and sets ``top_n``, ``score_threshold``, ``fusion`` and
    ``fusion_method`` from the file (or a ``rerank_kit.PipelineConfig``); ``config.depth`` is how
    many candidates the first stage should retrieve.

    Args:
        config: Path of the JSON file, or a ``PipelineConfig``.
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
    )
