"""``RerankMiddleware``: rerank what an agent's retrieval tool returns, before the model reads it.

For ``langchain.agents.create_agent`` (LangChain 1.x, the ``langchain`` package). The middleware
wraps each tool call; when the tool answers with a ``ToolMessage`` whose artifact is a list of
``Document``s (a ``create_retriever_tool(..., response_format="content_and_artifact")`` tool, or
any tool that returns ``(content, documents)``), the compressor reranks those documents for the
tool call's query, and the message's content and artifact are rewritten to the kept documents.
``_Rewrite`` holds every decision; ``wrap_tool_call`` and ``awrap_tool_call`` differ only in the
awaited calls.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain.agents.middleware import AgentMiddleware
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.prompts import (
    BasePromptTemplate,
    PromptTemplate,
    aformat_document,
    format_document,
)
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from rerank_kit import FeedbackRecorder
from rerank_kit.adapters import MODEL_KEY

__all__ = ["RerankMiddleware"]

logger = logging.getLogger(__name__)

ToolResult = ToolMessage | Command[Any]

#: Metadata key of the feedback record id, on each document of a recorded tool message.
RECORD_KEY = "feedback_record"


def _documents(artifact: object) -> list[Document] | None:
    """The artifact as a list of ``Document``s, or ``None`` when it is anything else."""
    if isinstance(artifact, (list, tuple)) and artifact:
        if all(isinstance(doc, Document) for doc in artifact):
            return list(artifact)
    return None


def _query(args: object) -> str | None:
    """The tool call's ``query`` argument, else its only string argument (``None``: neither)."""
    if not isinstance(args, dict):
        return None
    if isinstance(args.get("query"), str):
        return str(args["query"])
    texts = [value for value in args.values() if isinstance(value, str)]
    return texts[0] if len(texts) == 1 else None


@dataclass(frozen=True)
class _Rewrite:
    """One tool message to rerank: its documents, the query, and what a failure becomes."""

    message: ToolMessage
    documents: list[Document]
    tool: str
    args: object
    on_error: str
    callbacks: Callbacks

    @classmethod
    def plan(
        cls, middleware: RerankMiddleware, request: ToolCallRequest, result: ToolResult
    ) -> _Rewrite | None:
        """The rewrite of ``result``, or ``None`` when it is not a message to rerank."""
        call = request.tool_call
        if middleware.tool_names is not None and call["name"] not in middleware.tool_names:
            return None
        if not isinstance(result, ToolMessage) or result.status == "error":
            return None
        documents = _documents(result.artifact)
        if documents is None:
            return None
        on_error = getattr(middleware.compressor, "on_error", "raise")
        config = getattr(request.runtime, "config", None) or {}
        callbacks = config.get("callbacks")
        return cls(result, documents, call["name"], call.get("args"), on_error, callbacks)

    def query(self) -> str:
        """The query to rerank for; a ``ValueError`` when the tool call has none."""
        query = _query(self.args)
        if query is None:
            raise ValueError(
                f"RerankMiddleware found no query in the call of tool {self.tool!r} "
                f"(arguments {self.args!r}): it reads the 'query' argument or the only string "
                "argument; limit it to retrieval tools with tools=[...]"
            )
        return query

    def done(self, kept: Sequence[Document], content: str) -> ToolMessage:
        """The tool's message with the kept documents as its content and artifact."""
        return self.message.model_copy(update={"content": content, "artifact": list(kept)})

    def failed(self, exc: Exception) -> ToolMessage:
        """Re-raise (``on_error="raise"``), or give the model the tool's message unchanged."""
        if self.on_error != "passthrough":
            raise exc
        logger.warning(
            "RerankMiddleware could not rerank the result of tool %r (%s: %s); "
            "on_error='passthrough' gives the model the tool's own message",
            self.tool,
            type(exc).__name__,
            exc,
        )
        return self.message


class RerankMiddleware(AgentMiddleware):
    r"""Agent middleware that reranks the ``Document``s a retrieval tool returns.

    Works with ``langchain.agents.create_agent``: after a tool runs, if its ``ToolMessage`` has
    an artifact that is a list of ``Document``s (tools made by
    ``create_retriever_tool(..., response_format="content_and_artifact")``, or any tool
    returning ``(content, documents)``), ``compressor`` reranks them for the tool call's
    ``query`` argument (or its only string argument). The model then receives a message whose
    content is the kept documents, formatted as the retriever tool formats them
    (``document_prompt``, ``document_separator``: pass the ones you gave the tool), and whose
    artifact is the kept documents with their scores in metadata. Other tool results pass
    untouched. Sync (``invoke``) and async (``ainvoke``: ``acompress_documents`` is awaited).

    Failures follow the compressor's ``on_error``: with ``"raise"`` (the default) an error
    propagates (the agent's tool-error handling applies); with ``"passthrough"`` a reranker
    failure gives the first-stage order cut to ``top_n`` (the compressor's behaviour, flagged
    ``metadata["rerank_failed"]``), and any other failure (no query in the call, a check that
    refuses the input) gives the model the tool's own message, with a logged warning.

    Setup:
        ``pip install "rerank-kit[langchain,bundled]" "langchain>=1,<2"``

    Instantiate:
        .. code-block:: python

            from langchain.agents import create_agent
            from langchain_core.tools import create_retriever_tool
            from langchain_rerank_kit import CrossEncoderRerank, RerankMiddleware

            search = create_retriever_tool(
                vectorstore.as_retriever(search_kwargs={"k": 20}),
                "search_docs",
                "Search the help-desk articles.",
                response_format="content_and_artifact",
            )
            agent = create_agent(
                model,
                tools=[search],
                middleware=[RerankMiddleware(CrossEncoderRerank(top_n=3), tools=["search_docs"])],
            )
            agent.invoke({"messages": [("user", "how do I reset my password?")]})

    Args:
        compressor: Any ``BaseDocumentCompressor``: this package's (``CrossEncoderRerank``,
            ``RerankCompressor``...) or another.
        tools: Names of the tools whose results are reranked (``None``: every tool whose
            artifact is a list of ``Document``s).
        document_prompt: How each kept document is written into the message content
            (``create_retriever_tool``'s default: ``"{page_content}"``).
        document_separator: Between two documents in the content (the tool's default:
            ``"\n\n"``).
        name: The middleware's name (``create_agent`` refuses two with one name: give each
            instance its own when you rerank different tools differently).
        recorder: A ``rerank_kit.FeedbackRecorder``: each reranked tool result is logged (the
            query, the kept documents' ids and scores; the record id goes into each kept
            document's ``metadata["feedback_record"]``), and when the agent finishes
            (``after_agent``) its final answer is matched against those documents
            (``rerank_kit.find_citations``) and the cited ids are logged against the record.

    Feedback:
        .. code-block:: python

            recorder = FeedbackRecorder("feedback.jsonl", id_keys=["source"])
            middleware = RerankMiddleware(CrossEncoderRerank(top_n=3), recorder=recorder)
    """

    def __init__(
        self,
        compressor: BaseDocumentCompressor,
        *,
        tools: Sequence[str] | None = None,
        document_prompt: BasePromptTemplate[str] | None = None,
        document_separator: str = "\n\n",
        name: str | None = None,
        recorder: FeedbackRecorder | None = None,
    ) -> None:
        super().__init__()
        if recorder is not None and not isinstance(recorder, FeedbackRecorder):
            raise TypeError(
                f"recorder must be a rerank_kit.FeedbackRecorder, got {type(recorder).__name__}"
            )
        self.recorder = recorder
        if not isinstance(compressor, BaseDocumentCompressor):
            raise TypeError(
                "compressor must be a langchain BaseDocumentCompressor (e.g. "
                f"CrossEncoderRerank(...)), got {type(compressor).__name__}"
            )
        if isinstance(tools, str):
            raise TypeError(f"tools must be a list of tool names, got the string {tools!r}")
        self.compressor = compressor
        # (not `self.tools`: AgentMiddleware.tools are tools the middleware adds to the agent)
        self.tool_names = None if tools is None else frozenset(tools)
        self.document_prompt = document_prompt or PromptTemplate.from_template("{page_content}")
        self.document_separator = document_separator
        self._name = name

    @property
    def name(self) -> str:
        """The middleware's name (the class name unless ``name=`` was given)."""
        return self._name or type(self).__name__

    def _content(self, kept: Sequence[Document]) -> str:
        return self.document_separator.join(format_document(d, self.document_prompt) for d in kept)

    async def _acontent(self, kept: Sequence[Document]) -> str:
        parts = [await aformat_document(d, self.document_prompt) for d in kept]
        return self.document_separator.join(parts)

    def wrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], ToolResult]
    ) -> ToolResult:
        """Run the tool, then rerank the documents in its message."""
        result = handler(request)
        job = _Rewrite.plan(self, request, result)
        if job is None:
            return result
        try:
            query = job.query()
            kept = self.compressor.compress_documents(job.documents, query, job.callbacks)
            kept = self._recorded(query, kept)
            return job.done(kept, self._content(kept))
        except Exception as exc:
            return job.failed(exc)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        """Async ``wrap_tool_call``: the tool and ``acompress_documents`` are awaited."""
        result = await handler(request)
        job = _Rewrite.plan(self, request, result)
        if job is None:
            return result
        try:
            query = job.query()
            kept = await self.compressor.acompress_documents(job.documents, query, job.callbacks)
            kept = self._recorded(query, kept)
            return job.done(kept, await self._acontent(kept))
        except Exception as exc:
            return job.failed(exc)

    # --- feedback ----------------------------------------------------------------------------

    def _recorded(self, query: str, kept: Sequence[Document]) -> list[Document]:
        """Log the kept documents (with a recorder): copies that carry the record id."""
        docs = list(kept)
        if self.recorder is None or not docs:
            return docs
        scores = [d.metadata.get("relevance_score") for d in docs]
        pipeline = next((str(d.metadata[MODEL_KEY]) for d in docs if MODEL_KEY in d.metadata), None)
        try:
            rid = self.recorder.record(
                query,
                [d.page_content for d in docs],
                scores=scores,
                ids=[d.id for d in docs],
                metadata=[d.metadata for d in docs],
                pipeline=pipeline or type(self.compressor).__name__,
            )
        except Exception as exc:  # feedback must never fail the agent
            self._feedback_failed("record feedback", exc)
            return docs
        return [d.model_copy(update={"metadata": {**d.metadata, RECORD_KEY: rid}}) for d in docs]

    def after_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """With a recorder: log which recorded documents the agent's final answer cited."""
        if self.recorder is not None:
            try:
                _cite_final_answer(self.recorder, state)
            except Exception as exc:  # feedback must never fail the agent
                self._feedback_failed("record the answer's citations", exc)
        return None

    def _feedback_failed(self, what: str, exc: Exception) -> None:
        """Log a feedback failure: a warning the first time, then at DEBUG."""
        level = logging.DEBUG if getattr(self, "_warned", False) else logging.WARNING
        self._warned = True
        logger.log(level, "RerankMiddleware could not %s: %s: %s", what, type(exc).__name__, exc)

    async def aafter_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        """Async ``after_agent`` (nothing to await: the log is appended in one write)."""
        return self.after_agent(state, runtime)


def _text(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = [p if isinstance(p, str) else str(p.get("text", "")) for p in content]
    return "\n".join(parts)


def _cite_final_answer(recorder: FeedbackRecorder, state: Any) -> None:
    """Cite, against each record of this turn, the documents the final answer used."""
    messages = list(state.get("messages", []) if isinstance(state, dict) else [])
    if not messages or not isinstance(messages[-1], AIMessage):
        return
    answer = _text(messages[-1])
    turn: list[ToolMessage] = []
    for message in reversed(messages[:-1]):
        if isinstance(message, HumanMessage):
            break  # only this turn's tool results
        if isinstance(message, ToolMessage):
            turn.append(message)
    for message in reversed(turn):
        docs = _documents(message.artifact) or []
        rids = {d.metadata.get(RECORD_KEY) for d in docs}
        if len(rids) != 1 or None in rids:
            continue
        rid = str(rids.pop())
        ids = recorder.ids_for(
            [d.page_content for d in docs],
            ids=[d.id for d in docs],
            metadata=[d.metadata for d in docs],
        )
        recorder.cite_answer(rid, answer, [d.page_content for d in docs], ids)
