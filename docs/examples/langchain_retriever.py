# pip install ".[langchain,bundled]"   (from a checkout of rerank-kit)
"""A LangChain retriever with a reranker, inside an LCEL RAG chain (scripted chat model)."""

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_rerank_kit import CrossEncoderRerank, RerankRetriever

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
        id="printer",
        page_content="Printers on floor 3 are added from the Devices page with their IP address.",
    ),
    Document(id="login", page_content="Two failed logins lock the account for 15 minutes."),
]
# First stage: an in-memory vector store. DeterministicFakeEmbedding needs no download (its
# vectors carry no meaning, so the first-stage order is arbitrary: the reranker fixes it).
vectorstore = InMemoryVectorStore.from_documents(docs, DeterministicFakeEmbedding(size=64))

retriever = RerankRetriever(
    base_retriever=vectorstore.as_retriever(search_kwargs={"k": 5}),
    # the trained ms-marco-MiniLM-L-12-v2: the int8 build from the `bundled` extra when offline
    base_compressor=CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-12-v2", top_n=2),
)
found = retriever.invoke("How do I reset my password?")  # or: await retriever.ainvoke(...)
print([(d.id, round(d.metadata["relevance_score"], 3)) for d in found])
assert found[0].id == "reset"


def format_docs(documents: list[Document]) -> str:
    return "\n\n".join(d.page_content for d in documents)


prompt = ChatPromptTemplate.from_template(
    "Answer from the context.\n\n{context}\n\nQuestion: {question}"
)
llm = FakeListChatModel(
    responses=["Open Settings > Security and click 'Reset password'."]
)  # your chat model
chain = (
    {"context": retriever | format_docs, "question": RunnablePassthrough()}
    | prompt
    | llm
    | StrOutputParser()
)
print(chain.invoke("How do I reset my password?"))
