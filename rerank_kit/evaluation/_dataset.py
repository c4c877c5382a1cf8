"""Evaluation datasets: a corpus, queries and graded relevance judgments.

Two layouts load:

**BEIR** (``load_beir``): a folder with ``corpus.jsonl`` (lines ``{"_id", "title", "text"}``),
``queries.jsonl`` (lines ``{"_id", "text"}``) and ``qrels/<split>.tsv`` (tab-separated, header
``query-id corpus-id score``). Only queries judged in the split are kept.

**Hand-written** (``load_judgments``): the questions you care about and the ids of the documents
that answer them, next to a corpus file.

Judgments as JSONL, one query per line; ``relevant`` is a list of document ids (grade 1 each), a
single id, or an object of id -> grade (higher is more relevant; 0 means judged not relevant)::

    {"query": "how do I reset my password?", "relevant": ["faq-12", "faq-40"]}
    {"query": "refund after 30 days", "relevant": {"policy-3": 2, "faq-7": 1}}

Judgments as CSV, one (query, document) pair per row, with a header; ``grade`` is optional
(default 1) and rows with the same query text are merged::

    query,doc_id,grade
    how do I reset my password?,faq-12,2
    how do I reset my password?,faq-40,1

Queries get ids ``q1``, ``q2``, ... in order of first appearance. The corpus is a JSONL file of
``{"id" (or "_id"), "text", "title" (optional)}`` lines, or a CSV file with columns ``id`` (or
``_id`` / ``doc_id``), ``text`` and optionally ``title``. ``load_dataset`` picks the layout: a
folder with ``qrels/`` is BEIR; a folder with ``judgments.jsonl`` (or ``.csv``) and
``corpus.jsonl`` (or ``.csv``) is hand-written; a judgments file takes its corpus from
``corpus=`` or from a ``corpus.jsonl`` / ``corpus.csv`` beside it.

Example:
    >>> from rerank_kit.evaluation import load_dataset
    >>> data = load_dataset("data/beir/scifact", split="test")  # doctest: +SKIP
    >>> mine = load_dataset("my_questions.jsonl", corpus="my_docs.jsonl")  # doctest: +SKIP
    >>> len(mine.queries), len(mine.corpus)  # doctest: +SKIP
    (25, 1200)
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Dataset",
    "Document",
    "load_beir",
    "load_corpus",
    "load_dataset",
    "load_judgments",
]

logger = logging.getLogger(__name__)

_DOC_ID_KEYS = ("_id", "id", "doc_id")


@dataclass(frozen=True)
class Document:
    """One corpus document.

    Attributes:
        id: Document id, as used in the judgments.
        text: Body text.
        title: Optional title.

    Example:
        >>> Document("d1", "Paris is the capital.", title="France").full_text
        'France Paris is the capital.'
    """

    id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        """``title + " " + text`` (``text`` alone without a title): what is indexed and reranked."""
        return f"{self.title} {self.text}" if self.title else self.text


@dataclass(frozen=True)
class Dataset:
    """A corpus, queries and relevance judgments.

    Attributes:
        name: Short name shown in tables and plots.
        corpus: Document id -> ``Document``.
        queries: Query id -> query text; every query must have an entry in ``qrels``.
        qrels: Query id -> document id -> grade (``> 0`` is relevant; an empty mapping means no
            document is relevant, and the query scores 0).

    Raises:
        ValueError: If the corpus or queries are empty, a query has no judgments entry, a query
            is blank, or a corpus key differs from its document's id.

    Example:
        >>> from rerank_kit.evaluation import Dataset, Document
        >>> data = Dataset(
        ...     name="tiny",
        ...     corpus={"d1": Document("d1", "red apples"), "d2": Document("d2", "green pears")},
        ...     queries={"q1": "apples"},
        ...     qrels={"q1": {"d1": 1}},
        ... )
        >>> data
        Dataset('tiny': 1 queries, 2 documents, 1 judgments)
    """

    name: str
    corpus: Mapping[str, Document]
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.corpus:
            raise ValueError(f"dataset {self.name!r} has an empty corpus")
        if not self.queries:
            raise ValueError(f"dataset {self.name!r} has no queries")
        for key, doc in self.corpus.items():
            if key != doc.id:
                raise ValueError(f"corpus key {key!r} holds a document with id {doc.id!r}")
        for qid, text in self.queries.items():
            if qid not in self.qrels:
                raise ValueError(
                    f"query {qid!r} has no entry in qrels; give it an empty dict if no "
                    "document is relevant"
                )
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"query {qid!r} is empty")

    @property
    def judged_qrels(self) -> dict[str, Mapping[str, int]]:
        """Judgments of this dataset's queries only (what the metrics average over)."""
        return {qid: self.qrels[qid] for qid in self.queries}

    def head(self, n: int) -> Dataset:
        """The same dataset with only its first ``n`` queries (to try things quickly).

        Example:
            >>> data.head(20)  # doctest: +SKIP
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        keep = dict(list(self.queries.items())[:n])
        return Dataset(self.name, self.corpus, keep, {q: self.qrels[q] for q in keep})

    def __repr__(self) -> str:
        judged = sum(len(self.qrels[q]) for q in self.queries)
        return (
            f"Dataset({self.name!r}: {len(self.queries)} queries, {len(self.corpus)} documents, "
            f"{judged} judgments)"
        )


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object per line")
            yield lineno, obj


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None:
            raise ValueError(f"{path}: empty CSV file (a header row is required)")
        reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
        for lineno, row in enumerate(reader, start=2):
            yield lineno, {k: (v or "").strip() for k, v in row.items() if k is not None}


def _pick(row: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def _add_doc(corpus: dict[str, Document], where: str, doc_id: Any, text: Any, title: Any) -> None:
    if doc_id is None:
        raise ValueError(f"{where}: no document id (expected one of {', '.join(_DOC_ID_KEYS)})")
    key = str(doc_id)
    if key in corpus:
        raise ValueError(f"{where}: duplicate document id {key!r}")
    corpus[key] = Document(key, str(text or ""), str(title or ""))


def load_corpus(path: str | Path) -> dict[str, Document]:
    """Read a corpus from JSONL (``_id``/``id``, ``text``, ``title``) or CSV (same columns).

    Args:
        path: A ``.jsonl`` or ``.csv`` file.

    Returns:
        Document id -> ``Document``, in file order.

    Raises:
        ValueError: On a missing or duplicate id, bad JSON, or an unknown file type.

    Example:
        >>> corpus = load_corpus("my_docs.jsonl")  # doctest: +SKIP
    """
    p = Path(path)
    corpus: dict[str, Document] = {}
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        for lineno, obj in _read_jsonl(p):
            where = f"{p}:{lineno}"
            _add_doc(corpus, where, _pick(obj, _DOC_ID_KEYS), obj.get("text"), obj.get("title"))
    elif suffix == ".csv":
        for lineno, row in _read_csv(p):
            where = f"{p}:{lineno}"
            _add_doc(corpus, where, _pick(row, _DOC_ID_KEYS), row.get("text"), row.get("title"))
    else:
        raise ValueError(f"{p}: corpus must be a .jsonl or .csv file")
    if not corpus:
        raise ValueError(f"{p}: the corpus file holds no documents")
    return corpus


def _grade(value: Any, where: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: grade {value!r} is not a number") from None
    if number != int(number):
        raise ValueError(f"{where}: grade {value!r} must be a whole number")
    return int(number)


def _relevant(value: Any, where: str) -> dict[str, int]:
    if isinstance(value, str):
        return {value: 1}
    if isinstance(value, list):
        if not all(isinstance(v, (str, int)) for v in value):
            raise ValueError(f"{where}: 'relevant' must list document ids")
        return {str(v): 1 for v in value}
    if isinstance(value, dict):
        return {str(k): _grade(v, where) for k, v in value.items()}
    raise ValueError(
        f"{where}: 'relevant' must be a list of document ids, one id, or an object of id -> grade"
    )


def load_judgments(
    path: str | Path,
    corpus: Mapping[str, Document] | str | Path,
    *,
    name: str | None = None,
) -> Dataset:
    """Build a dataset from hand-written judgments (JSONL or CSV, see the module docstring).

    Args:
        path: The judgments file (``.jsonl`` or ``.csv``).
        corpus: The corpus, or the path of a corpus file for ``load_corpus``.
        name: Dataset name (default: the judgments file name without its suffix).

    Returns:
        A ``Dataset`` with query ids ``q1``, ``q2``, ...

    Raises:
        ValueError: On a malformed line, or a document id that is not in the corpus (a typo
            there would silently lower every score).

    Example:
        >>> data = load_judgments("questions.jsonl", "docs.jsonl")  # doctest: +SKIP
        >>> data.queries["q1"]  # doctest: +SKIP
        'how do I reset my password?'
    """
    p = Path(path)
    docs = load_corpus(corpus) if isinstance(corpus, (str, Path)) else corpus
    ids: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}

    def add(query: Any, judged: dict[str, int], where: str) -> None:
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"{where}: 'query' must be a non-empty string")
        text = query.strip()
        qid = ids.setdefault(text, f"q{len(ids) + 1}")
        merged = qrels.setdefault(qid, {})
        for doc_id, grade in judged.items():
            if doc_id not in docs:
                raise ValueError(f"{where}: document id {doc_id!r} is not in the corpus")
            merged[doc_id] = max(grade, merged.get(doc_id, grade))

    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        for lineno, obj in _read_jsonl(p):
            where = f"{p}:{lineno}"
            if "relevant" not in obj:
                raise ValueError(f"{where}: missing 'relevant' (the ids of the answering docs)")
            add(obj.get("query"), _relevant(obj["relevant"], where), where)
    elif suffix == ".csv":
        for lineno, row in _read_csv(p):
            where = f"{p}:{lineno}"
            doc_id = _pick(row, ("doc_id", "corpus-id", "id"))
            if doc_id is None:
                raise ValueError(f"{where}: missing doc_id")
            grade = _grade(row["grade"], where) if row.get("grade") else 1
            add(row.get("query"), {doc_id: grade}, where)
    else:
        raise ValueError(f"{p}: judgments must be a .jsonl or .csv file")
    if not ids:
        raise ValueError(f"{p}: no judged queries found")
    queries = {qid: text for text, qid in ids.items()}
    return Dataset(name or p.stem, docs, queries, qrels)


def load_beir(folder: str | Path, *, split: str = "test", name: str | None = None) -> Dataset:
    """Load a dataset in the BEIR layout, keeping the queries judged in ``split``.

    Args:
        folder: Holds ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
        split: Which qrels file to use.
        name: Dataset name (default: the folder name).

    Returns:
        The ``Dataset``. Judgments of documents missing from the corpus are dropped with a
        warning in the log.

    Raises:
        FileNotFoundError: If a file is missing (the message lists the splits available).
        ValueError: If no query is judged in the split.

    Example:
        >>> data = load_beir("data/beir/cranfield")  # doctest: +SKIP
        >>> data  # doctest: +SKIP
        Dataset('cranfield': 225 queries, 1400 documents, 1612 judgments)
    """
    root = Path(folder)
    qrels_file = root / "qrels" / f"{split}.tsv"
    for needed in (root / "corpus.jsonl", root / "queries.jsonl", qrels_file):
        if not needed.is_file():
            splits = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
            hint = f" (splits found: {', '.join(splits)})" if splits else ""
            raise FileNotFoundError(f"{needed} not found: not a BEIR folder?{hint}")
    corpus: dict[str, Document] = {}
    for lineno, obj in _read_jsonl(root / "corpus.jsonl"):
        where = f"{root / 'corpus.jsonl'}:{lineno}"
        _add_doc(corpus, where, _pick(obj, _DOC_ID_KEYS), obj.get("text"), obj.get("title"))
    all_queries = {
        str(obj["_id"]): str(obj.get("text") or "")
        for _, obj in _read_jsonl(root / "queries.jsonl")
    }
    qrels: dict[str, dict[str, int]] = {}
    unknown_docs = 0
    with qrels_file.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if not line.strip() or (lineno == 1 and parts[0].strip() == "query-id"):
                continue
            if len(parts) < 3:
                raise ValueError(f"{qrels_file}:{lineno}: expected query-id, corpus-id, score")
            qid, doc_id = parts[0].strip(), parts[1].strip()
            grade = _grade(parts[2].strip(), f"{qrels_file}:{lineno}")
            if doc_id not in corpus:
                unknown_docs += 1
                continue
            qrels.setdefault(qid, {})[doc_id] = grade
    if unknown_docs:
        logger.warning(
            "%s: %d judgments name documents missing from the corpus; dropped",
            qrels_file,
            unknown_docs,
        )
    missing = [qid for qid in qrels if qid not in all_queries]
    if missing:
        logger.warning(
            "%s: %d judged queries are missing from queries.jsonl; dropped (first: %s)",
            qrels_file,
            len(missing),
            missing[0],
        )
    queries = {qid: all_queries[qid] for qid in qrels if qid in all_queries}
    if not queries:
        raise ValueError(f"{qrels_file}: no query of queries.jsonl is judged in split {split!r}")
    return Dataset(name or root.resolve().name, corpus, queries, qrels)


def _first_file(folder: Path, stem: str) -> Path | None:
    for suffix in (".jsonl", ".csv"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def load_dataset(
    path: str | Path,
    *,
    split: str = "test",
    corpus: str | Path | None = None,
) -> Dataset:
    """Load a BEIR folder or hand-written judgments, whichever ``path`` is.

    Args:
        path: A BEIR folder (has ``qrels/``); a folder with ``judgments.jsonl``/``.csv`` and
            ``corpus.jsonl``/``.csv``; or a judgments file.
        split: The BEIR qrels split.
        corpus: Corpus file for hand-written judgments (default: ``corpus.jsonl`` or
            ``corpus.csv`` in the same folder).

    Returns:
        The ``Dataset``.

    Raises:
        FileNotFoundError: If ``path`` does not exist or no corpus can be found.

    Example:
        >>> data = load_dataset("data/beir/cisi")  # doctest: +SKIP
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if p.is_dir():
        if (p / "qrels").is_dir():
            return load_beir(p, split=split)
        judgments = _first_file(p, "judgments")
        if judgments is None:
            raise FileNotFoundError(
                f"{p}: neither a BEIR folder (corpus.jsonl, queries.jsonl, qrels/) nor a folder "
                "with judgments.jsonl (or .csv) and corpus.jsonl (or .csv)"
            )
        found = Path(corpus) if corpus is not None else _first_file(p, "corpus")
        name = p.resolve().name
    else:
        judgments = p
        found = Path(corpus) if corpus is not None else _first_file(p.parent, "corpus")
        name = p.stem
    if found is None:
        raise FileNotFoundError(
            f"no corpus for {judgments}: pass one (--corpus FILE) or put corpus.jsonl or "
            "corpus.csv next to it"
        )
    return load_judgments(judgments, found, name=name)
