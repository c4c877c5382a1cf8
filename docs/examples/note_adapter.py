# pip install ".[adapters,bundled]"   (from a checkout of rerank-kit)
"""A framework adapter on rerank_kit.adapters: the notes of a made-up app, reranked.

The adapter holds a settings object (every field checked once, the engine reranker built
once), turns its documents into texts, runs them with the shared failure policy, fusion and
context assembly, and copies the results onto new documents. Its framework's types are a
``Note`` here; LangChain's ``Document`` or LlamaIndex's ``NodeWithScore`` work the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from rerank_kit.adapters import (
    MODEL_KEY,
    CrossEncoderSettings,
    RerankSettings,
    Result,
    arun_rerank,
    passage_texts,
    run_rerank,
)


@dataclass(frozen=True)
class Note:
    """The made-up framework's document: a body, tags, and a score once ranked."""

    body: str
    tags: dict[str, Any] = field(default_factory=dict)
    score: float | None = None


class NoteReranker:
    """Reranks notes with any rerank-kit settings (``CrossEncoderSettings``, ...)."""

    def __init__(self, settings: RerankSettings) -> None:
        self.settings = settings
        self.reranker = settings.get_reranker()  # built once, when the adapter is

    def rerank(self, query: str, notes: list[Note]) -> list[Note]:
        texts = passage_texts([n.body for n in notes], lambda i: f"notes[{i}].body")
        tags = [n.tags for n in notes]  # read by boosts=
        run = self.settings.run_settings()
        outcome = run_rerank(self.reranker, query, texts, metadata=tags, **run)
        return [_note(notes[r.index], r) for r in outcome.results()]

    async def arerank(self, query: str, notes: list[Note]) -> list[Note]:
        texts = passage_texts([n.body for n in notes], lambda i: f"notes[{i}].body")
        run = self.settings.run_settings()
        outcome = await arun_rerank(self.reranker, query, texts, **run)
        return [_note(notes[r.index], r) for r in outcome.results()]


def _note(note: Note, result: Result) -> Note:
    """A new note (the caller's is never changed) with the score and the flags in its tags."""
    tags = {**note.tags, MODEL_KEY: result.model, "rerank_truncated": result.truncated}
    if result.duplicates:  # with dedupe=: the input positions dropped as its copies
        tags["rerank_duplicates"] = list(result.duplicates)
    if result.failed:
        tags["rerank_failed"] = True
    return replace(note, score=result.score, tags=tags)


if __name__ == "__main__":
    notes = [
        Note("Refunds take 30 days.", {"folder": "billing"}),
        Note("Reset a password in Settings > Security.", {"folder": "account"}),
        Note("Reset a password in  Settings > Security.", {"folder": "copy"}),
        Note("The VPN needs version 5.2 or later.", {"folder": "it"}),
    ]
    settings = CrossEncoderSettings(
        model="cross-encoder/ms-marco-MiniLM-L-12-v2",  # the bundled int8 build, offline
        top_n=2,
        dedupe=1.0,  # the copy with an extra space is dropped as a duplicate
        on_error="passthrough",  # a failing model keeps the input order, flagged
    )
    adapter = NoteReranker(settings)
    for note in adapter.rerank("How do I reset my password?", notes):
        print(f"{note.score:.3f} {note.body} {note.tags}")
    best = asyncio.run(adapter.arerank("refund delay", notes))[0]
    print(best.body, best.tags[MODEL_KEY])
    assert notes[0].score is None  # the caller's notes are untouched
