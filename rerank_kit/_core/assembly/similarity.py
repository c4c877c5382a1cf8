r"""How alike two candidate passages are, for ``dedupe`` and ``diversity``.

Two measures, both in [0, 1] for unrelated to identical text (cosine may dip below 0):

- ``LexicalSimilarity`` (no model): Jaccard similarity of the passages' word 3-shingles, after
  lower-casing and splitting on non-word characters (so whitespace, case and punctuation do
  not count). Named ``"lexical:jaccard-3-shingles"`` in results.
- ``EmbeddingSimilarity``: cosine of unit-length passage embeddings from a bi-encoder
  (``similarity_model=``, a ``bi-encoder:`` spec or a ``BiEncoderReranker``); the embeddings go
  through that bi-encoder's passage-embedding cache. Named ``"cosine:<bi-encoder name>"``.

Pairs are computed when first asked for and kept for the call.

Example:
    >>> sim = LexicalSimilarity(["the cat sat on the mat", "The cat sat on the mat!", "dogs"])
    >>> sim(0, 1), sim(0, 2)
    (1.0, 0.0)
    >>> normalise_space("  a \n b ")
    'a b'
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rerank_kit._rerankers.bi_encoder import BiEncoderReranker

__all__ = [
    "EmbeddingSimilarity",
    "LexicalSimilarity",
    "Similarity",
    "load_similarity_model",
    "normalise_space",
]

SHINGLE = 3
LEXICAL = f"lexical:jaccard-{SHINGLE}-shingles"
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")
_models: dict[str, BiEncoderReranker] = {}
_models_lock = threading.Lock()


def normalise_space(text: str) -> str:
    """``text`` with runs of whitespace collapsed to one space and the ends stripped."""
    return _SPACE.sub(" ", text).strip()


class Similarity:
    """Pairwise similarity of the texts of one call, by their index in the caller's list."""

    name: str = ""

    def __init__(self) -> None:
        self._pairs: dict[tuple[int, int], float] = {}

    def __call__(self, i: int, j: int) -> float:
        """Similarity of texts ``i`` and ``j`` (1.0 for ``i == j``)."""
        if i == j:
            return 1.0
        key = (i, j) if i < j else (j, i)
        value = self._pairs.get(key)
        if value is None:
            value = self._pairs[key] = self._pair(*key)
        return value

    def _pair(self, i: int, j: int) -> float:
        raise NotImplementedError


def _shingles(text: str) -> frozenset[int]:
    words = _WORD.findall(text.lower())
    if not words:
        return frozenset()
    size = min(SHINGLE, len(words))
    return frozenset(hash(tuple(words[k : k + size])) for k in range(len(words) - size + 1))


class LexicalSimilarity(Similarity):
    """Jaccard similarity of word 3-shingles (shorter texts: one shingle of all their words)."""

    name = LEXICAL

    def __init__(self, texts: Sequence[str]) -> None:
        super().__init__()
        self._texts = texts
        self._sets: dict[int, frozenset[int]] = {}

    def _set(self, i: int) -> frozenset[int]:
        found = self._sets.get(i)
        if found is None:
            found = self._sets[i] = _shingles(self._texts[i])
        return found

    def _pair(self, i: int, j: int) -> float:
        a, b = self._set(i), self._set(j)
        if not a or not b:
            same = normalise_space(self._texts[i].lower()) == normalise_space(
                self._texts[j].lower()
            )
            return 1.0 if same else 0.0
        inter = len(a & b)
        return inter / (len(a) + len(b) - inter)


class EmbeddingSimilarity(Similarity):
    """Cosine of unit-length embeddings (rows of ``vectors``, aligned with ``indices``)."""

    def __init__(self, name: str, indices: Sequence[int], vectors: Any) -> None:
        super().__init__()
        self.name = f"cosine:{name}"
        self._row = {index: row for row, index in enumerate(indices)}
        self._vectors = vectors

    def _pair(self, i: int, j: int) -> float:
        a, b = self._vectors[self._row[i]], self._vectors[self._row[j]]
        return float(a @ b)


def load_similarity_model(model: Any) -> BiEncoderReranker:
    """The bi-encoder for ``similarity_model``: loaded once per spec, then shared.

    ``model`` is a ``BiEncoderReranker``, a ``"bi-encoder:..."`` spec, or a bare model name
    (read as ``"bi-encoder:<name>"``).
    """
    from rerank_kit._rerankers.bi_encoder import BiEncoderReranker

    if isinstance(model, BiEncoderReranker):
        return model
    spec = model if model.startswith("bi-encoder") else f"bi-encoder:{model}"
    with _models_lock:
        found = _models.get(spec)
        if found is None:
            from rerank_kit._registry import load_reranker

            loaded = load_reranker(spec)
            if not isinstance(loaded, BiEncoderReranker):
                raise ValueError(f"similarity_model must name a bi-encoder, got {model!r}")
            found = _models[spec] = loaded
    return found


def embed(model: BiEncoderReranker, texts: list[str]) -> Any:
    """Unit-length embeddings of ``texts`` through the bi-encoder's cache (model lock held)."""
    return model._locked(model._passage_embeddings, texts)
