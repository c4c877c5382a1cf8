# pip install ".[langchain,bundled]" "langchain>=1,<2"   (from a checkout of rerank-kit)
"""Rerank what an agent's retrieval tool returns, with RerankMiddleware (scripted chat model)."""

from langchain.agents import create_agent
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import create_retriever_tool
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_rerank_kit import CrossEncoderRerank, RerankMiddleware

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
vectorstore = InMemoryVectorStore.from_documents(docs, DeterministicFakeEmbedding(size=64))
search = create_retriever_tool(
    vectorstore.as_retriever(search_kwargs={"k": 5}),
    "search_docs",
    "Search the help-desk docs.",
    response_format="content_and_artifact",  # the Documents travel in the ToolMessage's artifact
)


class ScriptedModel(GenericFakeChatModel):
    """Stands in for your chat model: calls the tool once, then answers."""

    def bind_tools(self, tools, **kwargs):
        return self


question = "How do I reset my password?"
call = {"name": "search_docs", "args": {"query": question}, "id": "call-1", "type": "tool_call"}
model = ScriptedModel(messages=iter([AIMessage("", tool_calls=[call]), "Use Settings > Security."]))

agent = create_agent(
    model,
    tools=[search],
    middleware=[
        RerankMiddleware(
            CrossEncoderRerank(model="cross-encoder/ms-marco-MiniLM-L-12-v2", top_n=2),
            tools=["search_docs"],
        )
    ],
)
result = agent.invoke({"messages": [("user", question)]})  # or: await agent.ainvoke(...)
tool_message = next(m for m in result["messages"] if isinstance(m, ToolMessage))
print(tool_message.content)  # the 2 kept passages: what the model reads
print([(d.id, round(d.metadata["relevance_score"], 3)) for d in tool_message.artifact])
assert tool_message.artifact[0].id == "reset"
