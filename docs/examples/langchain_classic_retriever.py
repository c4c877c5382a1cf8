# pip install ".[langchain-classic,bundled]"   (from a checkout of rerank-kit)
"""The classic alternative: langchain-classic's ContextualCompressionRetriever, same compressors."""

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
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
vectorstore = InMemoryVectorStore.from_documents(docs, DeterministicFakeEmbedding(size=64))
retriever = ContextualCompressionRetriever(
    base_compressor=CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-12-v2", top_n=2),
    base_retriever=vectorstore.as_retriever(search_kwargs={"k": 3}),
)
found = retriever.invoke("Which VPN client version do I need?")
print([(d.id, round(d.metadata["relevance_score"], 3)) for d in found])
assert found[0].id == "vpn"
