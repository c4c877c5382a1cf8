"""Fakes for the LangChain 1.x tests, and the smoke run of the fresh-venv test.

Imported by ``test_langchain_v1.py``; run as a script (``python langchain_v1_smoke.py``) by
``test_langchain_fresh_venv.py`` in a virtual environment holding only the wheel,
``rerank-kit[langchain]`` (langchain-core) and ``langchain`` 1.x: nothing here needs more, and
nothing downloads anything. The script prints ``smoke: ok`` when every check passed.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from pydantic import Field

# The help desk: retrieval order (by id) puts the answers to QUERY last.
HELP_DESK = [
    ("d1", "The fan club meets on Fridays."),
    ("d2", "Reset the password from the sign-in page."),
    ("d3", "A loud laptop fan needs cleaning: blow the dust out of the fan vents."),
    ("d4", "Laptop batteries last longer below 80 percent charge."),
    ("d5", "Clean the laptop fan vents when the fan is loud."),
]
QUERY = "my laptop fan is loud"


def help_desk() -> list[Document]:
    """The help-desk passages as documents, in the first stage's order."""
    return [
        Document(page_content=text, id=doc_id, metadata={"n": i})
        for i, (doc_id, text) in enumerate(HELP_DESK)
    ]


class ListRetriever(BaseRetriever):
    """Returns the same documents for every query; counts its sync and async calls."""

    docs: list[Document] = Field(default_factory=list)
    calls: list[str] = Field(default_factory=list)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        self.calls.append("sync")
        return list(self.docs)

    async def _aget_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        self.calls.append("async")
        return list(self.docs)


class ScriptedChatModel(GenericFakeChatModel):
    """A chat model that answers from a script and keeps the messages of every call.

    ``bind_tools`` returns the model itself, so ``create_agent`` can use it.
    """

    received: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.received.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def calling(tool: str, args: dict[str, Any], answer: str = "done") -> ScriptedChatModel:
    """A model that calls ``tool`` with ``args`` once, then answers ``answer``."""
    call = {"name": tool, "args": args, "id": "call-1", "type": "tool_call"}
    script: Iterator[AIMessage | str] = iter([AIMessage(content="", tool_calls=[call]), answer])
    return ScriptedChatModel(messages=script)


def tool_message_seen(model: ScriptedChatModel) -> ToolMessage:
    """The tool message the model received on its second call."""
    assert len(model.received) == 2, model.received
    messages = [m for m in model.received[1] if isinstance(m, ToolMessage)]
    assert len(messages) == 1, model.received[1]
    return messages[0]


def _smoke() -> None:  # pragma: no cover - run in the fresh venv
    from langchain.agents import create_agent
    from langchain_core.tools import create_retriever_tool

    import langchain_rerank_kit
    from langchain_rerank_kit import RerankCompressor, RerankMiddleware, RerankRetriever
    from rerank_kit.testing import FakeReranker

    where = Path(langchain_rerank_kit.__file__ or "").resolve()
    assert "site-packages" in where.parts, f"langchain_rerank_kit imported from {where}"
    versions = {name: metadata.version(name) for name in ("langchain", "langchain-core")}
    print("versions:", ", ".join(f"{name} {version}" for name, version in versions.items()))
    assert importlib.util.find_spec("langchain_classic") is None, "langchain-classic is installed"
    try:
        import langchain_classic  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("import langchain_classic worked")
    assert importlib.util.find_spec("torch") is None, "torch is installed"
    assert {"RerankRetriever", "RerankMiddleware"} <= set(langchain_rerank_kit.__all__)

    reranker = FakeReranker()
    rerank = RerankCompressor(reranker=reranker, top_n=2)
    docs = help_desk()
    before = [d.model_copy(deep=True) for d in docs]
    retriever = RerankRetriever(base_retriever=ListRetriever(docs=docs), base_compressor=rerank)
    for got in (retriever.invoke(QUERY), asyncio.run(retriever.ainvoke(QUERY))):
        assert [d.id for d in got] == ["d5", "d3"], got
        assert all("relevance_score" in d.metadata for d in got)
    assert docs == before, "the retrieved documents were changed"
    calls = reranker.calls
    empty = RerankRetriever(base_retriever=ListRetriever(), base_compressor=rerank)
    assert empty.invoke(QUERY) == [] and asyncio.run(empty.ainvoke(QUERY)) == []
    assert reranker.calls == calls, "the compressor was called for an empty retrieval"

    tool = create_retriever_tool(
        ListRetriever(docs=docs), "search", "Search.", response_format="content_and_artifact"
    )
    for run in ("invoke", "ainvoke"):
        model = calling("search", {"query": QUERY})
        agent = create_agent(model, tools=[tool], middleware=[RerankMiddleware(rerank)])
        if run == "invoke":
            agent.invoke({"messages": [HumanMessage(QUERY)]})
        else:
            asyncio.run(agent.ainvoke({"messages": [HumanMessage(QUERY)]}))
        seen = tool_message_seen(model)
        assert [d.id for d in seen.artifact] == ["d5", "d3"], (run, seen)
        assert seen.content == f"{HELP_DESK[4][1]}\n\n{HELP_DESK[2][1]}", (run, seen)
    print("smoke: ok")


if __name__ == "__main__":
    _smoke()
