"""Judgments from what a team already has: feedback logs, document metadata, LLM questions.

Each builder returns ``(judgments, report)``: ``judgments`` is a list of :class:`Judgment`
(a query and the graded documents for it), ready for :func:`write_judgments`, which writes the
JSONL that ``rerank-kit eval`` and ``rerank_kit.evaluation.load_judgments`` read; ``report``
counts what was kept and what was dropped, and why.

**Application feedback** (:func:`judgments_from_feedback`). One record per query shown to a
user, as JSONL or dicts::

    {"query": "reset password", "shown": ["d3", "d7", "d1"], "clicked": ["d7"],
     "cited": [], "ratings": {"d1": 0}}

Logs written by :class:`rerank_kit.FeedbackRecorder` hold the same records with an ``"id"``,
and the later events as lines of their own (``{"record": ID, "event": "cited", "ids": [...]}``,
``"clicked"``, ``"rated"`` with ``"ratings"``): :func:`read_feedback` and :func:`load_feedback`
join them back (and read the files the log was rotated into), skipping and counting any line
torn by a crash; :func:`feedback_dataset` turns a log and its corpus into a ``Dataset``.

The conversion, per record:

- a document the answer **cited** gets grade 2, one the user **clicked** grade 1;
- ``ratings`` (document id -> grade, 0 = not relevant) are explicit judgments and override
  both;
- a shown document ranked **above** the lowest clicked or cited one, and neither clicked nor
  cited, was seen and passed over: it is judged not relevant (grade 0, "skip above");
- shown documents below the last click are not judged (the user may never have seen them).

Records of the same query (compared case- and space-insensitively) are merged: per document,
the positive events (clicks, citations, positive ratings) and the negative ones (skips, zero
ratings) are counted; a document is relevant, with its best grade, when it has at least
``min_evidence`` positive events and no more negative than positive ones, judged not relevant
when negatives win, and left unjudged otherwise. A query with no relevant document left is
dropped. ``min_evidence=2`` ignores one-off clicks on noisy logs.

**Metadata** (:func:`judgments_from_metadata`). For queries that came from a known document
(a ticket and its answer, a question written for a page), every document that shares a chosen
metadata value with it (same product, section or tag) is judged relevant with grade 1 and the
source document with grade 2.

**LLM-generated questions** (:func:`questions_from_llm`). For sampled documents, the LLM you
pass (a LangChain chat model, a LlamaIndex LLM, or any ``str -> str`` callable) writes questions
that the document answers; each becomes a query with that document relevant. Answers that are
empty, duplicate an earlier question, or copy the document are dropped and counted.

Example:
    >>> from rerank_kit.feedback import judgments_from_feedback
    >>> log = [
    ...     {"query": "reset password", "shown": ["a", "b", "c"], "clicked": ["b"]},
    ...     {"query": "Reset  password", "shown": ["b", "a"], "cited": ["b"]},
    ... ]
    >>> judgments, report = judgments_from_feedback(log)
    >>> judgments[0].query, dict(judgments[0].relevant)
    ('reset password', {'b': 2, 'a': 0})
    >>> report["records"], report["queries"]
    (2, 1)
"""

from __future__ import annotations

from rerank_kit.learning import _feedback
from rerank_kit.learning._feedback import *  # noqa: F403  (the public names, listed once)

__all__ = list(_feedback.__all__)
