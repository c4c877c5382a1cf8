"""Feedback from a LlamaIndex query engine: its ``Response`` logged with the answer's citations.

Two ways, the same record: :func:`record_response` (call it with the query and the
``Response``; it returns the record id for a later thumbs up/down), or
:class:`FeedbackEventHandler` (add it to a dispatcher once; every query engine's
``QueryEndEvent`` is then logged). Either writes, to a ``rerank_kit.FeedbackRecorder``, the
query, the source nodes (ids: the recorder's ``id_keys`` in metadata, else the node id, else a
content hash) with their scores, and the source nodes the answer cited
(``rerank_kit.find_citations``: ``[1]``-style markers first, else lexical overlap).
"""

from __future__ import annotations

import logging
from typing import Any

from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.query import QueryEndEvent
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from pydantic import ConfigDict, Field

from rerank_kit import FeedbackRecorder
from rerank_kit.adapters import MODEL_KEY

__all__ = ["FeedbackEventHandler", "record_response"]

logger = logging.getLogger(__name__)


def record_response(
    recorder: FeedbackRecorder, query: str | QueryBundle, response: Any
) -> tuple[str, list[str]] | None:
    """Log a query engine's response: its source nodes as shown, and the ones its text cited.

    Args:
        recorder: Where the record goes.
        query: The question (a string or a ``QueryBundle``).
        response: A ``Response`` (or anything with ``source_nodes`` and ``response``).

    Returns:
        The record id and the cited ids, or ``None`` when the response has no source nodes.

    Example:
        >>> response = engine.query("why is my laptop fan loud?")  # doctest: +SKIP
        >>> record_id, cited = record_response(recorder, "why is my laptop fan loud?", response)  # doctest: +SKIP
        >>> recorder.rated(record_id, {cited[0]: 2})  # the user's thumbs up  # doctest: +SKIP
    """
    if not isinstance(recorder, FeedbackRecorder):
        raise TypeError(
            f"recorder must be a rerank_kit.FeedbackRecorder, got {type(recorder).__name__}"
        )
    text = query.query_str if isinstance(query, QueryBundle) else str(query)
    nodes = [
        n for n in (getattr(response, "source_nodes", None) or []) if isinstance(n, NodeWithScore)
    ]
    if not nodes or not text.strip():
        return None
    answer = getattr(response, "response", None)
    model = next(
        (str(n.node.metadata[MODEL_KEY]) for n in nodes if MODEL_KEY in n.node.metadata), None
    )
    return recorder.record_answer(
        text,
        [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes],
        None if answer is None else str(answer),
        scores=[n.score for n in nodes],
        ids=[n.node.node_id for n in nodes],
        metadata=[n.node.metadata for n in nodes],
        pipeline=model,
    )


class FeedbackEventHandler(BaseEventHandler):
    """Logs every query engine's response (``QueryEndEvent``) to a ``FeedbackRecorder``.

    Example:
        >>> from llama_index.core.instrumentation import get_dispatcher  # doctest: +SKIP
        >>> handler = FeedbackEventHandler(recorder=FeedbackRecorder("feedback.jsonl"))  # doctest: +SKIP
        >>> get_dispatcher().add_event_handler(handler)  # doctest: +SKIP
        >>> engine.query("why is my laptop fan loud?")  # doctest: +SKIP
        >>> handler.last_record_id  # doctest: +SKIP
        'r-5f0c...'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    recorder: FeedbackRecorder = Field(description="Where the records go.")
    last_record_id: str | None = Field(default=None, description="The latest record's id.")

    @classmethod
    def class_name(cls) -> str:
        """The class name."""
        return "FeedbackEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        """Log a ``QueryEndEvent``'s query and response; other events are ignored."""
        if not isinstance(event, QueryEndEvent):
            return
        try:
            got = record_response(self.recorder, event.query, event.response)
        except Exception as exc:  # feedback must never fail the query
            logger.warning("FeedbackEventHandler: %s: %s", type(exc).__name__, exc)
            return
        if got is not None:
            self.last_record_id = got[0]
