"""LangChain 1.x on langchain-core: RerankRetriever, RerankMiddleware in create_agent, LCEL.

No model is loaded: the compressor wraps ``rerank_kit.testing.FakeReranker`` (the share of query
words in a passage), so the expected order is known. The agent's model is scripted
(``ScriptedChatModel``): it calls the retrieval tool once and records what it receives.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import HumanMessage
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableConfig, RunnableLambda, RunnablePassthrough
from langchain_core.tools import BaseTool, create_retriever_tool, tool
from langchain_v1_smoke import (
    HELP_DESK,
    QUERY,
    ListRetriever,
    ScriptedChatModel,
    calling,
    help_desk,
    tool_message_seen,
)

from langchain_rerank_kit import RerankCompressor, RerankMiddleware, RerankRetriever
from rerank_kit.testing import FakeReranker

TOP = ["d5", "d3"]  # FakeReranker's best two for QUERY (0.8 and 0.6)
TEXT = dict(HELP_DESK)


class AsyncOnlyReranker(FakeReranker):
    """Scores only on the async path: a sync call fails."""

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        raise AssertionError("the sync scoring path was used")

    async def _ascore_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        return FakeReranker._score_pairs(self, query, texts)


class FailingReranker(FakeReranker):
    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        raise RuntimeError("model server down")


class Runs(BaseCallbackHandler):
    """Records every retriever, chain and tool run: (name, kind, run_id, parent_run_id)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str | None, str, UUID, UUID | None]] = []
        self.outputs: dict[UUID, Any] = {}

    def _started(self, kind: str, serialized: Any, kw: dict[str, Any]) -> None:
        name = kw.get("name") or (serialized or {}).get("name")
        self.runs.append((name, kind, kw["run_id"], kw.get("parent_run_id")))

    def on_retriever_start(self, serialized: Any, query: str, **kw: Any) -> None:
        self._started("retriever", serialized, kw)

    def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
        self._started("chain", serialized, kw)

    def on_tool_start(self, serialized: Any, input_str: str, **kw: Any) -> None:
        self._started("tool", serialized, kw)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.outputs[run_id] = outputs

    def tree(self) -> list[tuple[str | None, str, str | None]]:
        """Each run as (name, kind, parent's name)."""
        names = {run_id: name for name, _, run_id, _ in self.runs}
        return [
            (name, kind, names.get(parent)) if parent else (name, kind, None)
            for name, kind, _, parent in self.runs
        ]


def compressor(reranker: FakeReranker | None = None, **kwargs: Any) -> RerankCompressor:
    return RerankCompressor(reranker=reranker or FakeReranker(), **{"top_n": 2, **kwargs})


def retrieve(retriever: Any, run: str, query: str = QUERY, **config: Any) -> list[Document]:
    if run == "invoke":
        return list(retriever.invoke(query, config=config or None))
    return list(asyncio.run(retriever.ainvoke(query, config=config or None)))


RUNS = pytest.mark.parametrize("run", ["invoke", "ainvoke"])

# --- RerankRetriever ---------------------------------------------------------------------------


@RUNS
def test_retriever_returns_the_reranked_documents_and_leaves_the_inputs_alone(run: str) -> None:
    docs = help_desk()
    before = [d.model_copy(deep=True) for d in docs]
    retriever = RerankRetriever(
        base_retriever=ListRetriever(docs=docs), base_compressor=compressor()
    )
    got = retrieve(retriever, run)
    assert [d.id for d in got] == TOP
    assert [d.metadata["relevance_score"] for d in got] == [0.8, 0.6]
    assert got[0].metadata["n"] == 4 and got[0].page_content == TEXT["d5"]
    assert docs == before
    assert all(d.metadata.keys() == {"n"} for d in docs)


@RUNS
def test_retriever_returns_nothing_for_an_empty_retrieval_without_calling_the_compressor(
    run: str,
) -> None:
    reranker = FakeReranker()
    retriever = RerankRetriever(
        base_retriever=ListRetriever(), base_compressor=compressor(reranker)
    )
    assert retrieve(retriever, run) == []
    assert reranker.calls == 0


def test_retriever_ainvoke_awaits_the_async_paths_only() -> None:
    base = ListRetriever(docs=help_desk())
    retriever = RerankRetriever(
        base_retriever=base, base_compressor=compressor(AsyncOnlyReranker())
    )
    assert [d.id for d in retrieve(retriever, "ainvoke")] == TOP
    assert base.calls == ["async"]
    with pytest.raises(AssertionError, match="sync scoring path"):
        retriever.invoke(QUERY)


def test_retriever_takes_any_runnable_as_base_retriever_and_passes_kwargs() -> None:
    seen: list[Any] = []

    def first_stage(query: str, **kwargs: Any) -> list[Document]:
        seen.append(query)
        return help_desk()

    retriever = RerankRetriever(
        base_retriever=RunnableLambda(first_stage), base_compressor=compressor()
    )
    assert [d.id for d in retriever.invoke(QUERY)] == TOP
    assert seen == [QUERY]


@RUNS
def test_retriever_reports_the_retrieval_and_the_rerank_as_child_runs(run: str) -> None:
    runs = Runs()
    retriever = RerankRetriever(
        base_retriever=ListRetriever(docs=help_desk()), base_compressor=compressor()
    )
    got = retrieve(retriever, run, callbacks=[runs])
    assert runs.tree() == [
        ("RerankRetriever", "retriever", None),
        ("ListRetriever", "retriever", "RerankRetriever"),
        ("RerankCompressor", "chain", "RerankRetriever"),
    ]
    rerank_run = runs.runs[2][2]
    assert [d.id for d in runs.outputs[rerank_run]] == [d.id for d in got] == TOP


@RUNS
def test_parity_with_contextual_compression_retriever(run: str) -> None:
    classic = pytest.importorskip("langchain_classic.retrievers.contextual_compression")
    for docs in (help_desk(), [], help_desk()[:1]):
        base, rerank = ListRetriever(docs=docs), compressor(top_n=3)
        ours_runs, theirs_runs = Runs(), Runs()
        ours = retrieve(
            RerankRetriever(base_retriever=base, base_compressor=rerank), run, callbacks=[ours_runs]
        )
        theirs_retriever = classic.ContextualCompressionRetriever(
            base_retriever=base, base_compressor=rerank
        )
        theirs = retrieve(theirs_retriever, run, callbacks=[theirs_runs])
        assert [(d.id, d.page_content, d.metadata) for d in ours] == [
            (d.id, d.page_content, d.metadata) for d in theirs
        ]
        assert [kind for _, kind, _ in ours_runs.tree()] == [
            kind for _, kind, _ in theirs_runs.tree()
        ]
    assert ours and ours[0].id == "d1"  # one document: still reranked (scored), still kept


# --- LCEL ----------------------------------------------------------------------------------------


def test_as_runnable_invoke_ainvoke_batch_and_abatch() -> None:
    rerank = compressor().as_runnable()
    request = {"query": QUERY, "documents": help_desk()}
    assert [d.id for d in rerank.invoke(request)] == TOP  # type: ignore[arg-type]
    assert [d.id for d in asyncio.run(rerank.ainvoke(request))] == TOP  # type: ignore[arg-type]
    other = {"query": "reset the password", "documents": help_desk()}
    batch = rerank.batch([request, other])  # type: ignore[list-item]
    # "reset the password": d2, then d1 and d3 tie on "the" (the first stage's order decides)
    assert [[d.id for d in docs] for docs in batch] == [TOP, ["d2", "d1"]]
    abatch = asyncio.run(rerank.abatch([request, other]))  # type: ignore[list-item]
    assert [[d.id for d in docs] for docs in abatch] == [TOP, ["d2", "d1"]]
    assert rerank.get_name() == "RerankCompressor"
    assert rerank.get_input_jsonschema()["$defs"]["RerankInput"]["required"] == [
        "query",
        "documents",
    ]


def test_as_runnable_ainvoke_awaits_the_async_path() -> None:
    rerank = compressor(AsyncOnlyReranker()).as_runnable()
    got = asyncio.run(rerank.ainvoke({"query": QUERY, "documents": help_desk()}))
    assert [d.id for d in got] == TOP


def test_retriever_then_rerank_in_a_chain() -> None:
    base = ListRetriever(docs=help_desk())
    rerank = compressor()
    chain = {"query": RunnablePassthrough(), "documents": base} | rerank.as_runnable()
    assert [d.id for d in chain.invoke(QUERY)] == TOP
    assert [d.id for d in asyncio.run(chain.ainvoke(QUERY))] == TOP
    formatted = RerankRetriever(base_retriever=base, base_compressor=rerank) | (
        lambda docs: [d.id for d in docs]
    )
    assert formatted.invoke(QUERY) == TOP


def test_as_runnable_names_its_input_when_given_something_else() -> None:
    rerank = compressor().as_runnable()
    documents: Any = help_desk()
    with pytest.raises(TypeError, match=r'\{"query": str, "documents"'):
        rerank.invoke(documents)
    misnamed: Any = {"query": QUERY, "docs": documents}
    with pytest.raises(TypeError, match=r"\['docs', 'query'\]"):
        rerank.invoke(misnamed)


# --- RerankMiddleware ----------------------------------------------------------------------------


def search_tool(
    docs: list[Document] | None = None, name: str = "search", **kwargs: Any
) -> BaseTool:
    retriever = ListRetriever(docs=help_desk() if docs is None else docs)
    return create_retriever_tool(
        retriever, name, "Search the help desk.", response_format="content_and_artifact", **kwargs
    )


def run_agent(
    model: ScriptedChatModel,
    tools: list[BaseTool],
    middleware: list[Any],
    run: str,
    config: RunnableConfig | None = None,
) -> dict[str, Any]:
    """The agent's final state, after ``invoke`` or ``ainvoke`` on the user's QUERY."""
    agent = create_agent(model, tools=tools, middleware=middleware)
    if run == "invoke":
        return agent.invoke({"messages": [HumanMessage(QUERY)]}, config)
    return asyncio.run(agent.ainvoke({"messages": [HumanMessage(QUERY)]}, config))


@RUNS
def test_middleware_gives_the_model_only_the_reranked_top_documents(run: str) -> None:
    model = calling("search", {"query": QUERY})
    state = run_agent(model, [search_tool()], [RerankMiddleware(compressor())], run)
    seen = tool_message_seen(model)
    assert seen.content == f"{TEXT['d5']}\n\n{TEXT['d3']}"
    assert [d.id for d in seen.artifact] == TOP
    assert [d.metadata["relevance_score"] for d in seen.artifact] == [0.8, 0.6]
    assert seen.tool_call_id == "call-1" and seen.name == "search"
    assert state["messages"][-1].content == "done"
    assert state["messages"][2] == seen  # the state holds the reranked message too


@RUNS
def test_without_middleware_the_model_reads_the_whole_retrieval(run: str) -> None:
    model = calling("search", {"query": QUERY})
    run_agent(model, [search_tool()], [], run)
    seen = tool_message_seen(model)
    assert [d.id for d in seen.artifact] == [doc_id for doc_id, _ in HELP_DESK]


@RUNS
def test_middleware_awaits_the_async_path_under_ainvoke(run: str) -> None:
    model = calling("search", {"query": QUERY})
    middleware = RerankMiddleware(compressor(AsyncOnlyReranker()))
    if run == "invoke":
        with pytest.raises(AssertionError, match="sync scoring path"):
            run_agent(model, [search_tool()], [middleware], run)
        return
    run_agent(model, [search_tool()], [middleware], run)
    assert [d.id for d in tool_message_seen(model).artifact] == TOP


@RUNS
def test_middleware_formats_documents_as_the_tool_does(run: str) -> None:
    docs = [d.model_copy(update={"metadata": {"source": d.id}}) for d in help_desk()]
    prompt = PromptTemplate.from_template("[{source}] {page_content}")
    tool_ = search_tool(docs, document_prompt=prompt, document_separator="\n---\n")
    model = calling("search", {"query": QUERY})
    middleware = RerankMiddleware(
        compressor(), document_prompt=prompt, document_separator="\n---\n"
    )
    run_agent(model, [tool_], [middleware], run)
    assert tool_message_seen(model).content == f"[d5] {TEXT['d5']}\n---\n[d3] {TEXT['d3']}"


@RUNS
def test_middleware_reranks_only_the_named_tools(run: str) -> None:
    model = calling("faq", {"query": QUERY})
    tools = [search_tool(), search_tool(name="faq")]
    run_agent(model, tools, [RerankMiddleware(compressor(), tools=["search"])], run)
    seen = tool_message_seen(model)
    assert seen.name == "faq" and len(seen.artifact) == len(HELP_DESK)  # not reranked

    model = calling("search", {"query": QUERY})
    run_agent(model, tools, [RerankMiddleware(compressor(), tools=["search"])], run)
    assert [d.id for d in tool_message_seen(model).artifact] == TOP


@tool(response_format="content_and_artifact")
def lookup(question: str, limit: int = 5) -> tuple[str, list[Document]]:
    """Look the question up in the help desk."""
    docs = help_desk()[:limit]
    return "\n\n".join(d.page_content for d in docs), docs


@tool
def clock(zone: str) -> str:
    """The time in a zone."""
    return f"12:00 in {zone}"


@RUNS
def test_middleware_reads_the_only_string_argument_of_any_document_tool(run: str) -> None:
    model = calling("lookup", {"question": QUERY, "limit": 5})
    run_agent(model, [lookup], [RerankMiddleware(compressor())], run)
    assert [d.id for d in tool_message_seen(model).artifact] == TOP


@RUNS
def test_middleware_leaves_other_tool_results_alone(run: str) -> None:
    model = calling("clock", {"zone": "UTC"})
    reranker = FakeReranker()
    run_agent(model, [clock], [RerankMiddleware(compressor(reranker))], run)
    seen = tool_message_seen(model)
    assert seen.content == "12:00 in UTC" and seen.artifact is None
    assert reranker.calls == 0


@RUNS
def test_middleware_raises_a_reranker_failure_by_default(run: str) -> None:
    model = calling("search", {"query": QUERY})
    with pytest.raises(RuntimeError, match="model server down"):
        run_agent(model, [search_tool()], [RerankMiddleware(compressor(FailingReranker()))], run)


@RUNS
def test_middleware_passthrough_keeps_the_first_stage_order_flagged(run: str) -> None:
    model = calling("search", {"query": QUERY})
    rerank = compressor(FailingReranker(), on_error="passthrough")
    run_agent(model, [search_tool()], [RerankMiddleware(rerank)], run)
    seen = tool_message_seen(model)
    assert [d.id for d in seen.artifact] == ["d1", "d2"]
    assert all(d.metadata["rerank_failed"] for d in seen.artifact)
    assert seen.content == f"{TEXT['d1']}\n\n{TEXT['d2']}"


@tool(response_format="content_and_artifact")
def by_number(first: int, count: int) -> tuple[str, list[Document]]:
    """Help-desk passages by position."""
    docs = help_desk()[first : first + count]
    return "\n\n".join(d.page_content for d in docs), docs


@RUNS
def test_middleware_without_a_query_follows_on_error(
    run: str, caplog: pytest.LogCaptureFixture
) -> None:
    model = calling("by_number", {"first": 0, "count": 3})
    with pytest.raises(ValueError, match="found no query in the call of tool 'by_number'"):
        run_agent(model, [by_number], [RerankMiddleware(compressor())], run)

    model = calling("by_number", {"first": 0, "count": 3})
    rerank = compressor(on_error="passthrough")
    with caplog.at_level(logging.WARNING, logger="langchain_rerank_kit._middleware"):
        run_agent(model, [by_number], [RerankMiddleware(rerank)], run)
    seen = tool_message_seen(model)
    assert [d.id for d in seen.artifact] == ["d1", "d2", "d3"]  # the tool's own message
    assert "could not rerank the result of tool 'by_number'" in caplog.text


@RUNS
def test_middleware_rerank_step_is_a_run_under_the_tool_node(run: str) -> None:
    model, runs = calling("search", {"query": QUERY}), Runs()
    run_agent(model, [search_tool()], [RerankMiddleware(compressor())], run, {"callbacks": [runs]})
    parents = {name: parent for name, _, parent in runs.tree()}
    assert parents["RerankCompressor"] == "tools"
    assert parents["ListRetriever"] == "search"  # the tool's run


def test_middleware_checks_its_arguments_and_takes_a_name() -> None:
    with pytest.raises(TypeError, match="BaseDocumentCompressor"):
        RerankMiddleware(FakeReranker())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of tool names"):
        RerankMiddleware(compressor(), tools="search")
    middleware = RerankMiddleware(compressor(), tools=["search"])
    assert middleware.name == "RerankMiddleware"
    assert not hasattr(middleware, "tools")  # AgentMiddleware.tools would be added to the agent
    pair = [
        RerankMiddleware(compressor(), name="rerank-a"),
        RerankMiddleware(compressor(), name="rerank-b"),
    ]
    model = calling("search", {"query": QUERY})
    run_agent(model, [search_tool()], pair, "invoke")
    assert [d.id for d in tool_message_seen(model).artifact] == TOP


WITHOUT_LANGCHAIN = """
import sys
sys.modules["langchain"] = None  # langchain-core alone
from langchain_rerank_kit import RerankCompressor, RerankRetriever
assert "langgraph" not in sys.modules
try:
    from langchain_rerank_kit import RerankMiddleware
except ImportError as exc:
    print(exc)
"""


def test_the_package_imports_without_the_langchain_package_until_the_middleware_is_asked_for() -> (
    None
):
    run = subprocess.run([sys.executable, "-c", WITHOUT_LANGCHAIN], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    hint = 'pip install "langchain>=1,<2"'
    assert (
        run.stdout.strip()
        == f"RerankMiddleware needs LangChain 1.x agents. Install them with: {hint}"
    )
