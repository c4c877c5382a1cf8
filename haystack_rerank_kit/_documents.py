"""Haystack ``Document`` objects to passage texts, and the results back to new ``Document``s.

Translation only: the scores, the order and every flag come from ``rerank_kit.adapters``
(``Outcome.results()``); this module copies them onto new documents and never touches the
caller's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from haystack import Document

from rerank_kit.adapters import MODEL_KEY, Outcome, Result, passage_texts

__all__ = ["FIRST_STAGE_SCORE_KEY", "checked", "first_stage_scores", "reranked", "texts_of"]

#: ``meta`` key of the incoming ``Document.score`` (the first stage's), the key the LangChain
#: adapter writes the fused first-stage score under.
FIRST_STAGE_SCORE_KEY = "first_stage_score"
#: With a calibration (``calibration=``): the ``meta`` key of each document's probability of
#: relevance, as the LangChain adapter's metadata key; ``Document.score`` stays the raw or
#: fused score.
PROBABILITY_KEY = "relevance_probability"


def checked(documents: Sequence[Any]) -> list[Document]:
    """The documents as a list, or a ``TypeError`` naming the first one that is no ``Document``."""
    docs = list(documents)
    for i, doc in enumerate(docs):
        if not isinstance(doc, Document):
            raise TypeError(f"documents[{i}] must be a haystack Document, got {type(doc).__name__}")
    return docs


def texts_of(
    docs: list[Document], meta_fields_to_embed: Sequence[str], separator: str
) -> list[str]:
    """What is scored: the meta fields to embed, then the content, joined by ``separator``.

    As Haystack's own rankers and embedders: a field that is missing or ``None`` is skipped, and
    a document without text (``content=None``, e.g. an image or a blob) counts as blank: it is
    not scored, and comes last with score ``-inf`` (``meta["rerank_empty"]``).
    """
    contents: list[object] = []
    for doc in docs:
        content = "" if doc.content is None else doc.content
        if not meta_fields_to_embed or not isinstance(content, str):
            contents.append(content)
            continue
        meta = [str(doc.meta[k]) for k in meta_fields_to_embed if doc.meta.get(k) is not None]
        contents.append(separator.join([*meta, content]))
    return passage_texts(contents, "documents[{}].content".format)


def first_stage_scores(docs: list[Document]) -> list[float] | None:
    """Every document's incoming score, or ``None`` (fuse with the order) if one has none."""
    scores = [d.score for d in docs]
    if any(s is None for s in scores):
        return None
    return [float(s) for s in scores if s is not None]


def _reranked_one(doc: Document, result: Result, duplicate_ids: list[str]) -> Document:
    meta = dict(doc.meta)
    if result.model is not None:
        meta[MODEL_KEY] = result.model
    if doc.score is not None:
        meta[FIRST_STAGE_SCORE_KEY] = doc.score
    score = result.score
    if result.failed:
        meta["rerank_failed"] = True
        score = doc.score  # the first stage's order, and its scores
    elif result.reranker_score is not None:  # fused: keep every part of the score
        meta["reranker_score"] = result.reranker_score
        meta["first_stage_rank"] = result.first_stage_rank
    flags = {
        "stage_scores": result.stage_scores,
        "rerank_truncated": result.truncated,
        "llm_repaired": result.llm_repaired,
        "rerank_empty": result.empty,
    }
    meta.update({key: value for key, value in flags.items() if value})
    if result.probability is not None:  # calibrated: the probability of relevance
        meta[PROBABILITY_KEY] = result.probability  # (score stays the raw or fused score)
    meta.update(result.assembly_metadata(duplicate_ids))
    # id, content, blob, embedding and sparse_embedding are kept; the input is never changed
    return dataclasses.replace(doc, meta=meta, score=score)


def reranked(docs: list[Document], outcome: Outcome) -> list[Document]:
    """New documents, best first: ``score`` is the rerank score, the rest in ``meta``."""
    return [
        _reranked_one(docs[r.index], r, [docs[i].id for i in r.duplicates])
        for r in outcome.results()
    ]
