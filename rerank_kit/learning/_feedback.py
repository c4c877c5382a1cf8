"""Judgments from feedback logs, document metadata and LLM-written questions.

The implementation behind the public ``rerank_kit.feedback`` module, whose docstring gives the
rules each builder follows.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_kit._adapters.llm import text_llm
from rerank_kit.learning._feedback_log import load_feedback

__all__ = [
    "DEFAULT_QUESTION_PROMPT",
    "Judgment",
    "feedback_dataset",
    "judgments_from_feedback",
    "judgments_from_metadata",
    "load_feedback",
    "questions_from_llm",
    "read_feedback",
    "write_judgments",
]

logger = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\(?\d+[.):]|q\d*[.:)]|question\s*\d*[.:)])\s*", re.I)

#: Prompt of :func:`questions_from_llm`; ``{n}`` and ``{document}`` are filled in.
DEFAULT_QUESTION_PROMPT = (
    "Here is a document from a knowledge base.\n\n"
    "Document:\n{document}\n\n"
    "Write {n} different questions that a user might ask and that this document answers. "
    "Use your own words rather than copying sentences from the document. "
    "Write one question per line, with no numbering and nothing else."
)


@dataclass(frozen=True)
class Judgment:
    """One judged query: document id -> grade (0 = judged not relevant, higher = better).

    Example:
        >>> Judgment("how do I reset my password?", {"faq-12": 2}).to_json()
        '{"query": "how do I reset my password?", "relevant": {"faq-12": 2}}'
    """

    query: str
    relevant: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        """The JSONL line ``rerank-kit eval`` reads."""
        return json.dumps(
            {"query": self.query, "relevant": dict(self.relevant)}, ensure_ascii=False
        )


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def write_judgments(judgments: Iterable[Judgment], path: str | Path) -> Path:
    """Write judgments as JSONL (one query per line), the format ``rerank-kit eval`` reads.

    Example:
        >>> write_judgments(judgments, "judgments.jsonl")  # doctest: +SKIP
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [j.to_json() for j in judgments]
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return out


def read_feedback(path: str | Path) -> list[dict[str, Any]]:
    """Read a feedback log (JSONL): records with their events joined (see ``load_feedback``).

    Reads the files the log was rotated into too (oldest first). A line that is not JSON (a
    write torn by a crash) is skipped and counted, with one warning per read; a line that is
    JSON but not an object is an error naming its line. ``load_feedback`` also returns the
    counts.

    Example:
        >>> records = read_feedback("feedback.jsonl")  # doctest: +SKIP
    """
    return load_feedback(path)[0]


def _ids(record: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = record.get(key) or []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: {key!r} must be a list of document ids")
    return [str(v) for v in value]


def _ratings(record: Mapping[str, Any], where: str) -> dict[str, int]:
    value = record.get("ratings") or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: 'ratings' must be an object of document id -> grade")
    out = {}
    for doc_id, grade in value.items():
        if isinstance(grade, bool) or not isinstance(grade, (int, float)) or grade < 0:
            raise ValueError(f"{where}: rating of {doc_id!r} must be a grade >= 0, got {grade!r}")
        out[str(doc_id)] = int(grade)
    return out


def judgments_from_feedback(
    records: Iterable[Mapping[str, Any]] | str | Path,
    *,
    min_evidence: int = 1,
    corpus: Iterable[str] | None = None,
) -> tuple[list[Judgment], dict[str, int]]:
    """Turn application feedback (shown, clicked, cited, rated) into graded judgments.

    The rules are in the ``rerank_kit.feedback`` docstring: cited 2, clicked 1, explicit
    ratings override, shown-above-a-click-and-skipped 0, records of the same query merged,
    ``min_evidence`` positive events needed for a document to count as relevant.

    Args:
        records: Feedback records, or the path of a JSONL log.
        min_evidence: Positive events (over all records of a query) a relevant document needs.
        corpus: Known document ids; ids outside it are dropped (and counted).

    Returns:
        The judgments (queries in order of first appearance) and a report with the counts
        ``records``, ``queries`` (kept), ``merged_records`` (records folded into an earlier
        query), ``dropped_no_evidence`` (queries without a relevant document), ``relevant``,
        ``not_relevant`` and ``unknown_ids``.

    Example:
        >>> judgments, report = judgments_from_feedback("feedback.jsonl", min_evidence=2)  # doctest: +SKIP
    """
    if isinstance(min_evidence, bool) or not isinstance(min_evidence, int) or min_evidence < 1:
        raise ValueError(f"min_evidence must be an int >= 1, got {min_evidence!r}")
    rows = read_feedback(records) if isinstance(records, (str, Path)) else list(records)
    known = set(corpus) if corpus is not None else None
    texts: dict[str, str] = {}  # normalised query -> first spelling
    grades: dict[str, dict[str, int]] = {}  # best positive grade per document
    positive: dict[str, Counter[str]] = {}
    negative: dict[str, Counter[str]] = {}
    report = Counter(records=0, merged_records=0, unknown_ids=0)
    for n, record in enumerate(rows, start=1):
        where = f"feedback record {n}"
        if not isinstance(record, Mapping):
            raise TypeError(f"{where} must be a mapping, got {type(record).__name__}")
        query = record.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"{where}: 'query' must be a non-empty string")
        report["records"] += 1
        shown = _ids(record, "shown", where)
        clicked, cited = _ids(record, "clicked", where), _ids(record, "cited", where)
        ratings = _ratings(record, where)
        if known is not None:
            before = len(shown) + len(clicked) + len(cited) + len(ratings)
            shown, clicked, cited = (
                [d for d in ids if d in known] for ids in (shown, clicked, cited)
            )
            ratings = {d: g for d, g in ratings.items() if d in known}
            report["unknown_ids"] += before - (
                len(shown) + len(clicked) + len(cited) + len(ratings)
            )
        key = _norm(query)
        if key in texts:
            report["merged_records"] += 1
        texts.setdefault(key, _SPACE.sub(" ", query).strip())
        best, pos, neg = (
            grades.setdefault(key, {}),
            positive.setdefault(key, Counter()),
            negative.setdefault(key, Counter()),
        )
        events: dict[str, int] = {d: 1 for d in clicked}
        events.update({d: 2 for d in cited})
        for doc_id, grade in ratings.items():
            events[doc_id] = grade
        for doc_id, grade in events.items():
            if grade > 0:
                pos[doc_id] += 1
                best[doc_id] = max(grade, best.get(doc_id, 0))
            else:
                neg[doc_id] += 1
        engaged = [i for i, d in enumerate(shown) if events.get(d, 0) > 0]
        if engaged:
            for doc_id in shown[: max(engaged)]:
                if doc_id not in events:
                    neg[doc_id] += 1  # seen above a click and passed over
    judgments: list[Judgment] = []
    dropped = relevant_count = not_relevant_count = 0
    for key, text in texts.items():
        pos, neg = positive[key], negative[key]
        judged: dict[str, int] = {}
        for doc_id in dict.fromkeys([*pos, *neg]):
            if pos[doc_id] >= min_evidence and pos[doc_id] >= neg[doc_id]:
                judged[doc_id] = grades[key][doc_id]
            elif neg[doc_id] > pos[doc_id]:
                judged[doc_id] = 0
        if not any(g > 0 for g in judged.values()):
            dropped += 1
            continue
        relevant_count += sum(g > 0 for g in judged.values())
        not_relevant_count += sum(g == 0 for g in judged.values())
        judgments.append(Judgment(text, judged))
    out = dict(report)
    out.update(
        queries=len(judgments),
        dropped_no_evidence=dropped,
        relevant=relevant_count,
        not_relevant=not_relevant_count,
    )
    logger.info("feedback: %s", out)
    return judgments, out


def judgments_from_metadata(
    queries: Iterable[tuple[str, str]],
    metadata: Mapping[str, Mapping[str, Any]],
    key: str,
    *,
    max_relevant: int | None = None,
) -> tuple[list[Judgment], dict[str, int]]:
    """Judge relevant the documents that share ``metadata[key]`` with each query's source.

    Args:
        queries: ``(query, source document id)`` pairs, e.g. a ticket and its answer page.
        metadata: Document id -> its metadata (a dict holding ``key`` for most documents).
        key: The metadata field, e.g. ``"product"`` or ``"section"``. A list value counts as
            several values (tags): documents sharing any of them match.
        max_relevant: Keep at most this many sharing documents per query (in ``metadata``
            order); ``None`` keeps all. The source document always stays, with grade 2.

    Returns:
        The judgments and a report: ``queries``, ``dropped_no_source`` (source id unknown),
        ``dropped_no_value`` (source has no ``key``), ``relevant``.

    Example:
        >>> meta = {"a": {"product": "x"}, "b": {"product": "x"}, "c": {"product": "y"}}
        >>> judgments, _ = judgments_from_metadata([("how to x", "a")], meta, "product")
        >>> dict(judgments[0].relevant)
        {'a': 2, 'b': 1}
    """
    if not isinstance(key, str) or not key:
        raise ValueError("key must name a metadata field")

    def values(doc_id: str) -> set[str]:
        value = metadata.get(doc_id, {}).get(key)
        if value is None or value == "":
            return set()
        items = value if isinstance(value, (list, tuple, set)) else [value]
        return {str(v) for v in items}

    by_value: dict[str, list[str]] = {}
    for doc_id in metadata:
        for v in values(doc_id):
            by_value.setdefault(v, []).append(doc_id)
    judgments: list[Judgment] = []
    report = Counter(queries=0, dropped_no_source=0, dropped_no_value=0, relevant=0)
    for query, source in queries:
        if not isinstance(query, str) or not query.strip():
            raise ValueError("every query must be a non-empty string")
        if source not in metadata:
            report["dropped_no_source"] += 1
            continue
        shared = values(source)
        if not shared:
            report["dropped_no_value"] += 1
            continue
        others = [d for v in sorted(shared) for d in by_value[v] if d != source]
        others = list(dict.fromkeys(others))[:max_relevant]
        judged = {source: 2, **{d: 1 for d in others}}
        report["queries"] += 1
        report["relevant"] += len(judged)
        judgments.append(Judgment(query.strip(), judged))
    return judgments, dict(report)


def _questions(answer: str) -> list[str]:
    out = []
    for line in answer.splitlines():
        text = _BULLET.sub("", line).strip().strip('"').strip()
        if text:
            out.append(text)
    return out


def questions_from_llm(
    corpus: Mapping[str, Any],
    llm: Any,
    *,
    sample: int | None = 50,
    per_document: int = 3,
    seed: int = 0,
    prompt: str = DEFAULT_QUESTION_PROMPT,
    max_chars: int = 2000,
) -> tuple[list[Judgment], dict[str, int]]:
    """Ask an LLM for questions that sampled documents answer; each becomes a judged query.

    Args:
        corpus: Document id -> text, or -> an object with ``text`` (and ``title``), such as
            ``rerank_kit.evaluation.Document``.
        llm: A LangChain chat model (``invoke``), a LlamaIndex LLM (``complete``) or a
            callable ``str -> str``.
        sample: Documents to sample (seeded); ``None`` uses every document.
        per_document: Questions asked for per document (extra lines are ignored).
        seed: Seed of the sample.
        prompt: The prompt, with ``{n}`` and ``{document}`` placeholders.
        max_chars: Documents are cut to this many characters in the prompt.

    Returns:
        The judgments (the source document relevant with grade 1) and a report:
        ``documents``, ``llm_calls``, ``llm_errors``, ``questions`` (kept), ``empty``
        (answers without a usable line, or lines under three words), ``duplicate``,
        ``copied`` (a question found word for word in its document) and ``extra``
        (lines beyond ``per_document``).

    Example:
        >>> from langchain_core.language_models import FakeListChatModel  # doctest: +SKIP
        >>> llm = FakeListChatModel(responses=["How do I reset my password?"])  # doctest: +SKIP
        >>> judgments, report = questions_from_llm(corpus, llm, sample=1)  # doctest: +SKIP
    """
    if isinstance(per_document, bool) or not isinstance(per_document, int) or per_document < 1:
        raise ValueError(f"per_document must be an int >= 1, got {per_document!r}")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int)):
        raise ValueError(f"sample must be an int or None, got {sample!r}")
    if "{document}" not in prompt:
        raise ValueError("prompt must contain a {document} placeholder")
    call = text_llm(llm).call  # the adapters' wrapper: LangChain, LlamaIndex or a callable
    ids = list(corpus)
    if sample is not None and sample < len(ids):
        ids = sorted(random.Random(seed).sample(ids, sample), key=list(corpus).index)
    report = Counter(
        documents=len(ids),
        llm_calls=0,
        llm_errors=0,
        questions=0,
        empty=0,
        duplicate=0,
        copied=0,
        extra=0,
    )
    seen: set[str] = set()
    judgments: list[Judgment] = []
    for doc_id in ids:
        doc = corpus[doc_id]
        text = doc if isinstance(doc, str) else str(getattr(doc, "text", doc))
        title = "" if isinstance(doc, str) else str(getattr(doc, "title", "") or "")
        full = f"{title}\n{text}".strip() if title else text
        report["llm_calls"] += 1
        try:
            answer = call(prompt.format(n=per_document, document=full[:max_chars]))
        except Exception as exc:  # one failing call must not lose the others
            report["llm_errors"] += 1
            logger.warning(
                "LLM call for document %s failed: %s: %s", doc_id, type(exc).__name__, exc
            )
            continue
        lines = _questions(answer)
        if not lines:
            report["empty"] += 1
            continue
        report["extra"] += max(0, len(lines) - per_document)
        haystack = _norm(full)
        for line in lines[:per_document]:
            key = _norm(line)
            if len(_WORD.findall(key)) < 3:
                report["empty"] += 1
            elif key in seen:
                report["duplicate"] += 1
            elif key.rstrip("?.! ") in haystack:
                report["copied"] += 1
            else:
                seen.add(key)
                judgments.append(Judgment(line, {str(doc_id): 1}))
                report["questions"] += 1
    return judgments, dict(report)


def _translate(record: dict[str, Any], known: dict[str, str]) -> dict[str, Any]:
    """The record with content-hash ids (``sha1:...``) replaced by the corpus's ids."""

    def one(doc_id: Any) -> str:
        return known.get(str(doc_id), str(doc_id))

    out = dict(record)
    for key in ("shown", "cited", "clicked"):
        if isinstance(out.get(key), list):
            out[key] = [one(d) for d in out[key]]
    if isinstance(out.get("ratings"), dict):
        out["ratings"] = {one(d): g for d, g in out["ratings"].items()}
    return out


def feedback_dataset(
    path: str | Path,
    corpus: Any,
    *,
    min_evidence: int = 1,
    name: str | None = None,
) -> tuple[Any, dict[str, int]]:
    """A feedback log and its corpus as a judged ``Dataset`` (what ``tune --feedback`` reads).

    The log holds ids, not texts: the corpus gives them. Ids the recorder made from a content
    hash (``sha1:...``) are mapped back to the corpus document with that text (its ``text``
    or its ``full_text``). Judgments follow ``judgments_from_feedback`` (``min_evidence``).

    Args:
        path: The log (its rotated files are read too).
        corpus: A corpus (id -> ``Document``) or the path of a corpus file (``load_corpus``).
        min_evidence: Positive events a relevant document needs (over a query's records).
        name: The dataset's name (default: the log's file name without suffix).

    Returns:
        The dataset (query ids ``q1``, ``q2``...) and a report: the log's counts
        (``load_feedback``) and the judgments' (``judgments_from_feedback``), keys prefixed
        ``judged_`` for the latter.

    Raises:
        ValueError: When no query in the log has a relevant document left.
    """
    from rerank_kit.evaluation._dataset import Dataset, load_corpus
    from rerank_kit.recorder import content_id

    docs = load_corpus(corpus) if isinstance(corpus, (str, Path)) else dict(corpus)
    known: dict[str, str] = {}
    for doc_id, doc in docs.items():
        known.setdefault(content_id(doc.text), doc_id)
        known.setdefault(content_id(doc.full_text), doc_id)
    records, report = load_feedback(path)
    rows = [_translate(r, known) for r in records]
    judgments, judged = judgments_from_feedback(rows, min_evidence=min_evidence, corpus=docs)
    out = dict(report)
    out.update({f"judged_{k}": v for k, v in judged.items()})
    if not judgments:
        raise ValueError(
            f"feedback log {path}: no query has a relevant document with min_evidence="
            f"{min_evidence} ({report['records']} records, {report['events']} events)"
        )
    queries = {f"q{i}": j.query for i, j in enumerate(judgments, start=1)}
    qrels = {f"q{i}": dict(j.relevant) for i, j in enumerate(judgments, start=1)}
    return Dataset(name or Path(path).stem, docs, queries, qrels), out
