# pip install ".[langchain,bundled]"   (from a checkout of rerank-kit)
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding  # no download; use your embeddings
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_rerank_kit import CrossEncoderRerank, RerankRetriever

texts = ["Refunds take 30 days.", "Reset a password in Settings > Security.", "VPN: 5.2+"]
store = InMemoryVectorStore.from_documents(
    [Document(t) for t in texts], DeterministicFakeEmbedding(size=8)
)
retriever = RerankRetriever(
    base_retriever=store.as_retriever(search_kwargs={"k": 3}),
    base_compressor=CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-12-v2", top_n=1),
)
docs = retriever.invoke("How do I reset my password?")
print(docs[0].page_content, docs[0].metadata["relevance_score"])  # the best passage, its score
