"""A duplicate-rich copy of a dataset, and the metrics that see through duplicates.

Real corpora repeat themselves (the same answer in three product versions, overlapping
chunks); public test collections hardly do. ``with_near_duplicates`` makes such a collection
from any dataset, deterministically: every judged document gets one to three copies, each with
small edits (a changed word, a reordered sentence, an added boilerplate line), judged like the
original. It is built in memory; nothing is written.

``deduplicated_ndcg_at_k`` scores a ranking counting each original once (copies after the first
of a group are removed before cutting at ``k``); ``near_duplicate_share`` is the share of the
top ``k`` taken by a copy of a document already ranked above it.

Example:
    >>> from rerank_kit.evaluation import Dataset, Document
    >>> data = Dataset("tiny", {"d1": Document("d1", "Red apples grow. They are sweet.")},
    ...                {"q1": "apples"}, {"q1": {"d1": 1}})
    >>> dup, originals = with_near_duplicates(data, seed=1)
    >>> sorted(dup.qrels["q1"]) == sorted(dup.corpus), set(originals.values())
    (True, {'d1'})
    >>> near_duplicate_share(["d1", "d1~copy1", "x"], originals | {"x": "x"}, k=3)
    0.3333333333333333
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence

from rerank_kit.evaluation._dataset import Dataset, Document
from rerank_kit.evaluation._metrics import ndcg_at_k

__all__ = ["deduplicated_ndcg_at_k", "near_duplicate_share", "with_near_duplicates"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\b[a-z]{4,}\b")
_REPLACEMENTS = ("results", "method", "analysis", "model", "values", "system", "effects")
_BOILERPLATE = (
    "This abstract is reproduced from the archive copy of the report.",
    "See the full report for figures, tables and references.",
    "Copyright notice: reproduced for research use only.",
)


def _change_word(text: str, rng: random.Random) -> str:
    words = list(_WORD.finditer(text))
    if not words:
        return text + " " + rng.choice(_REPLACEMENTS)
    m = rng.choice(words)
    new = rng.choice([w for w in _REPLACEMENTS if w != m.group()])
    return text[: m.start()] + new + text[m.end() :]


def _reorder(text: str, rng: random.Random) -> str:
    sentences = [s for s in _SENTENCE.split(text.strip()) if s]
    if len(sentences) < 2:
        return _change_word(text, rng)
    i, j = rng.sample(range(len(sentences)), 2)
    sentences[i], sentences[j] = sentences[j], sentences[i]
    return " ".join(sentences)


def _boilerplate(text: str, rng: random.Random) -> str:
    line = rng.choice(_BOILERPLATE)
    return f"{line} {text}" if rng.random() < 0.5 else f"{text} {line}"


_EDITS = (_change_word, _reorder, _boilerplate)


def with_near_duplicates(
    dataset: Dataset, *, seed: int = 0, max_copies: int = 3
) -> tuple[Dataset, dict[str, str]]:
    """``dataset`` with 1 to ``max_copies`` edited copies of every judged document.

    Each copy ``"<id>~copy<k>"`` gets one edit, the three kinds taking turns (a random start
    per document), and a second one half of the time. Copies are judged as their original for
    every query that judges it.

    Args:
        dataset: The dataset to copy from (not modified).
        seed: Seed of the edits (same seed, same collection).
        max_copies: Most copies of one document (at least 1).

    Returns:
        ``(dataset, originals)``: the new dataset and each document id -> its original's id.
    """
    if max_copies < 1:
        raise ValueError(f"max_copies must be >= 1, got {max_copies}")
    judged = sorted({d for grades in dataset.qrels.values() for d, g in grades.items() if g > 0})
    corpus: dict[str, Document] = dict(dataset.corpus)
    originals = {doc_id: doc_id for doc_id in corpus}
    copies: dict[str, list[str]] = {}
    for doc_id in judged:
        doc = dataset.corpus.get(doc_id)
        if doc is None:
            continue
        rng = random.Random(f"{seed}:{doc_id}")
        start = rng.randrange(len(_EDITS))
        for k in range(1, rng.randint(1, max_copies) + 1):
            text = _EDITS[(start + k) % len(_EDITS)](doc.text, rng)
            if rng.random() < 0.5:
                text = _EDITS[(start + k + 1) % len(_EDITS)](text, rng)
            copy_id = f"{doc_id}~copy{k}"
            corpus[copy_id] = Document(copy_id, text, title=doc.title)
            originals[copy_id] = doc_id
            copies.setdefault(doc_id, []).append(copy_id)
    qrels = {
        qid: {
            **grades,
            **{c: g for d, g in grades.items() for c in copies.get(d, [])},
        }
        for qid, grades in dataset.qrels.items()
    }
    name = f"{dataset.name}+near-duplicates"
    return Dataset(name, corpus, dict(dataset.queries), qrels), originals


def _first_of_each(ranking: Sequence[str], originals: Mapping[str, str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for doc_id in ranking:
        original = originals.get(doc_id, doc_id)
        if original not in seen:
            seen.add(original)
            out.append(original)
    return out


def deduplicated_ndcg_at_k(
    ranking: Sequence[str],
    judgments: Mapping[str, int],
    originals: Mapping[str, str],
    k: int,
) -> float:
    """nDCG@k counting each original once: later copies of a group are removed first.

    Example:
        >>> deduplicated_ndcg_at_k(["a~copy1", "a", "b"], {"a": 1}, {"a~copy1": "a"}, k=2)
        1.0
    """
    distinct = _first_of_each(ranking, originals)
    grades = {d: g for d, g in judgments.items() if originals.get(d, d) == d}
    return ndcg_at_k(distinct, grades, k)


def near_duplicate_share(ranking: Sequence[str], originals: Mapping[str, str], k: int) -> float:
    """Share of the top ``k`` held by a copy of a document ranked above it (0 for none)."""
    top = list(ranking[:k])
    if not top:
        return 0.0
    seen: set[str] = set()
    repeats = 0
    for doc_id in top:
        original = originals.get(doc_id, doc_id)
        repeats += original in seen
        seen.add(original)
    return repeats / len(top)
