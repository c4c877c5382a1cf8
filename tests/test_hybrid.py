"""Hybrid first stages in both frameworks, end to end on real data, with a fusing reranker.

LangChain: ``EnsembleRetriever`` over a BM25 retriever (langchain-community, rank_bm25) and a
Chroma retriever, wrapped by ``ContextualCompressionRetriever`` with a rerank-kit compressor.
LlamaIndex: ``QueryFusionRetriever`` (``mode="reciprocal_rerank"``) over BM25
(llama-index-retrievers-bm25) and a Chroma vector index, with a rerank-kit postprocessor in a
query engine (``MockLLM``). Both embed with the real all-MiniLM-L6-v2 and rerank with it too
(fused with the first stage, weight ``WEIGHT``), on Cranfield (BEIR copy in ../shared/data).

To stay short, the test takes the first ``N_QUERIES`` judged queries and a sub-collection: every
document judged for them plus every ``STRIDE``-th other document. nDCG@10 of each whole
pipeline, with and without the reranker, is measured here with ``rerank_kit.evaluation``.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from conftest import SHARED_DATA

from rerank_kit import BiEncoderReranker
from rerank_kit._core.fusion import DEFAULT_FUSION_WEIGHT
from rerank_kit.evaluation import Dataset, evaluate_run, load_dataset

pytestmark = pytest.mark.models

CRANFIELD = SHARED_DATA / "beir" / "cranfield"
N_QUERIES = 25
STRIDE = 8
DEPTH = 20  # each retriever's top DEPTH; the hybrid list holds up to 2 x DEPTH
K = 10
WEIGHT = DEFAULT_FUSION_WEIGHT  # weight of the reranker in the fused score (0.7)
_WORDS = re.compile(r"\w+")


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


@pytest.fixture(scope="module")
def data() -> Dataset:
    if not (CRANFIELD / "corpus.jsonl").is_file():
        pytest.skip(f"Cranfield is not at {CRANFIELD}")
    full = load_dataset(CRANFIELD)
    queries = {q: t for q, t in full.queries.items() if full.qrels.get(q)}
    keep_q = dict(list(queries.items())[:N_QUERIES])
    judged = {d for q in keep_q for d in full.qrels[q]}
    ids = [d for i, d in enumerate(full.corpus) if d in judged or i % STRIDE == 0]
    corpus = {d: full.corpus[d] for d in ids}
    qrels = {q: {d: g for d, g in full.qrels[q].items() if d in corpus} for q in keep_q}
    return Dataset("cranfield-subset", corpus, keep_q, qrels)


@pytest.fixture(scope="module")
def vectors(data: Dataset, minilm_reranker: BiEncoderReranker) -> dict[str, list[float]]:
    """Each document's all-MiniLM-L6-v2 embedding, computed once for both frameworks.

    The reranker embeds the documents (it caches each passage's embedding, so reranking later
    costs only the query), and the vector stores use the same vectors: one encoding per text.
    """
    texts = [d.full_text for d in data.corpus.values()]
    minilm_reranker.score("warm-up", texts)
    cache = minilm_reranker._cache  # the reranker's passage embeddings, keyed by text
    entries = {t: cache.peek(t) for t in texts}
    return {t: [float(x) for x in e[0]] for t, e in entries.items() if e is not None}


def _encoder(minilm_reranker: BiEncoderReranker, vectors: dict[str, list[float]]) -> Any:
    def encode(texts: list[str]) -> list[list[float]]:
        missing = [t for t in texts if t not in vectors]
        if missing:
            rows = minilm_reranker.model.encode(missing, normalize_embeddings=True)
            vectors.update({t: [float(x) for x in r] for t, r in zip(missing, rows, strict=True)})
        return [vectors[t] for t in texts]

    return encode


def _chroma_client() -> Any:
    import chromadb
    from chromadb.config import Settings

    return chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))


def _ndcg(run: dict[str, list[str]], data: Dataset) -> float:
    return evaluate_run(run, data.judged_qrels, k=K)[0][f"nDCG@{K}"]


def test_langchain_ensemble_bm25_chroma_with_fusing_compressor(
    data: Dataset, vectors: dict[str, list[float]], minilm_reranker: BiEncoderReranker
) -> None:
    pytest.importorskip("rank_bm25")
    from langchain_chroma import Chroma
    from langchain_classic.retrievers import ContextualCompressionRetriever, EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings

    from langchain_rerank_kit import RerankCompressor

    encode = _encoder(minilm_reranker, vectors)

    class MiniLM(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return encode(texts)

        def embed_query(self, text: str) -> list[float]:
            return encode([text])[0]

    docs = [Document(page_content=d.full_text, id=i) for i, d in data.corpus.items()]
    bm25 = BM25Retriever.from_documents(docs, k=DEPTH, preprocess_func=_words)
    store = Chroma(
        collection_name=f"hybrid-{time.time_ns()}",
        embedding_function=MiniLM(),
        client=_chroma_client(),
        collection_metadata={"hnsw:space": "cosine"},
    )
    store.add_documents(docs, ids=[d.id for d in docs])
    hybrid = EnsembleRetriever(
        retrievers=[bm25, store.as_retriever(search_kwargs={"k": DEPTH})], weights=[0.5, 0.5]
    )
    fused = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(reranker=minilm_reranker, top_n=K, fusion=WEIGHT),
        base_retriever=hybrid,
    )
    plain: dict[str, list[str]] = {}
    reranked: dict[str, list[str]] = {}
    for qid, query in data.queries.items():
        candidates = hybrid.invoke(query)
        plain[qid] = [str(d.id) for d in candidates[:K]]
        out = fused.invoke(query)
        reranked[qid] = [str(d.id) for d in out]
        assert len(out) == min(K, len(candidates))
        assert {d.id for d in out} <= {d.id for d in candidates}
        top = out[0].metadata
        assert {"relevance_score", "reranker_score", "first_stage_rank"} <= set(top)
    base, ours = _ndcg(plain, data), _ndcg(reranked, data)
    print(f"LangChain hybrid nDCG@{K}: {base:.3f} alone, {ours:.3f} with fused rerank")
    assert ours > base


def test_llamaindex_query_fusion_bm25_chroma_with_fusing_postprocessor(
    data: Dataset, vectors: dict[str, list[float]], minilm_reranker: BiEncoderReranker
) -> None:
    pytest.importorskip("llama_index.retrievers.bm25")
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.response_synthesizers.no_text import NoText
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from llamaindex_rerank_kit import RerankPostprocessor as RerankCompressor

    encode = _encoder(minilm_reranker, vectors)

    class MiniLM(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return encode([query])[0]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return encode([query])[0]

        def _get_text_embedding(self, text: str) -> list[float]:
            return encode([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return encode(texts)

    nodes = [TextNode(text=d.full_text, id_=i) for i, d in data.corpus.items()]
    collection = _chroma_client().create_collection(
        f"hybrid-{time.time_ns()}", embedding_function=None, metadata={"hnsw:space": "cosine"}
    )
    storage = StorageContext.from_defaults(
        vector_store=ChromaVectorStore(chroma_collection=collection)
    )
    index = VectorStoreIndex(nodes, storage_context=storage, embed_model=MiniLM())
    bm25 = BM25Retriever.from_defaults(nodes=list[Any](nodes), similarity_top_k=DEPTH)
    hybrid = QueryFusionRetriever(
        [index.as_retriever(similarity_top_k=DEPTH), bm25],
        similarity_top_k=2 * DEPTH,
        num_queries=1,  # no LLM-written query variants: the query as asked
        mode="reciprocal_rerank",  # type: ignore[arg-type]
        use_async=False,
        llm=MockLLM(),
    )
    rerank = RerankCompressor(reranker=minilm_reranker, top_n=K, fusion=WEIGHT)
    engine = RetrieverQueryEngine(
        retriever=hybrid,
        response_synthesizer=NoText(llm=MockLLM()),  # retrieval quality only: no answer text
        node_postprocessors=[rerank],
    )
    plain: dict[str, list[str]] = {}
    reranked: dict[str, list[str]] = {}
    for qid, query in data.queries.items():
        candidates = hybrid.retrieve(query)
        plain[qid] = [n.node.node_id for n in candidates[:K]]
        response = engine.query(query)
        reranked[qid] = [n.node.node_id for n in response.source_nodes]
        assert len(response.source_nodes) == min(K, len(candidates))
        first = response.source_nodes[0]
        assert first.reranker_score is not None  # type: ignore[attr-defined]
        assert first.retrieval_score is not None  # type: ignore[attr-defined]
    base, ours = _ndcg(plain, data), _ndcg(reranked, data)
    print(f"LlamaIndex hybrid nDCG@{K}: {base:.3f} alone, {ours:.3f} with fused rerank")
    assert ours > base
