# pip install ".[langchain,bundled]"   (from a checkout of rerank-kit)
"""A reranker as an LCEL runnable: {"query", "documents"} in, reranked documents out."""

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_rerank_kit import CrossEncoderRerank

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
]
base_retriever = InMemoryVectorStore.from_documents(
    docs, DeterministicFakeEmbedding(size=64)
).as_retriever(search_kwargs={"k": 3})
rerank = CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-12-v2", top_n=2).as_runnable()
chain = {
    "query": RunnablePassthrough(),
    "documents": base_retriever,
} | rerank  # invoke, ainvoke, batch
found = chain.invoke("How long do refunds take?")
print([(d.id, round(d.metadata["relevance_score"], 3)) for d in found])
assert found[0].id == "refund"
