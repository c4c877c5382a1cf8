"""``record_feedback``: the step that closes a retrieval chain by logging what it showed and cited.

Put it last in a chain whose output is a dict holding the question, the reranked documents and
the answer (the usual ``RunnablePassthrough.assign(answer=...)`` shape): it writes one record
to a ``rerank_kit.FeedbackRecorder`` (the query, the documents' ids and scores), finds which
documents the answer cited (``rerank_kit.find_citations``: ``[1]``-style markers first, else
lexical overlap) and logs them, and passes its input on with the record id added, for the
application to attach a thumbs up/down or a click later (``recorder.rated(record_id, ...)``).

(No ``from __future__ import annotations`` here: ``RunnableLambda`` reads the annotations.)
"""

from collections.abc import Mapping
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableLambda

from rerank_kit import FeedbackRecorder
from rerank_kit.adapters import MODEL_KEY

__all__ = ["record_feedback"]


def _answer_text(value: Any) -> str:
    content = getattr(value, "content", value)  # an AIMessage, or the parsed string
    return content if isinstance(content, str) else str(content)


def record_feedback(
    recorder: FeedbackRecorder,
    *,
    query_key: str = "question",
    documents_key: str = "context",
    answer_key: str = "answer",
    id_key: str = "feedback_id",
) -> Runnable[dict[str, Any], dict[str, Any]]:
    """A chain step that logs the shown documents and the answer's citations.

    Args:
        recorder: Where the records go.
        query_key: Input key of the question.
        documents_key: Input key of the documents the answer was written from (reranked:
            their ``relevance_score`` metadata is logged as the score).
        answer_key: Input key of the answer (a string or a message).
        id_key: Output key the record id is added under.

    Returns:
        A ``Runnable`` dict -> dict: its input (a new dict), plus ``id_key`` and ``"cited"``
        (the cited ids).

    Example:
        >>> chain = (  # doctest: +SKIP
        ...     {"context": retriever | rerank.as_runnable(), "question": RunnablePassthrough()}
        ...     | RunnablePassthrough.assign(answer=prompt | llm | StrOutputParser())
        ...     | record_feedback(recorder)
        ... )
    """
    if not isinstance(recorder, FeedbackRecorder):
        raise TypeError(
            f"recorder must be a rerank_kit.FeedbackRecorder, got {type(recorder).__name__}"
        )

    def record(value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value, Mapping) or not {query_key, documents_key} <= value.keys():
            got = sorted(value) if isinstance(value, Mapping) else type(value).__name__
            raise TypeError(
                f"record_feedback needs a dict with {query_key!r} and {documents_key!r} (and "
                f"{answer_key!r}), got {got}; rename them with query_key=, documents_key=, "
                "answer_key="
            )
        docs = [d for d in value[documents_key] if isinstance(d, Document)]
        model = next((str(d.metadata[MODEL_KEY]) for d in docs if MODEL_KEY in d.metadata), None)
        answer = value.get(answer_key)
        rid, cited = recorder.record_answer(
            str(value[query_key]),
            [d.page_content for d in docs],
            None if answer is None else _answer_text(answer),
            scores=[d.metadata.get("relevance_score") for d in docs],
            ids=[d.id for d in docs],
            metadata=[d.metadata for d in docs],
            pipeline=model,
        )
        return {**value, id_key: rid, "cited": cited}

    return RunnableLambda(record, name="record_feedback")
