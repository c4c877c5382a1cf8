r"""How alike two candidate passages are, for ``dedupe`` and ``diversity``.

Two measures, both in [0, 1] for unrelated to identical text (cosine may dip below 0):

- ``LexicalSimilarity`` (no model): Jaccard similarity of the passages' word 3-shingles, after
  lower-casing and splitting on non-word characters (so whitespace, case and punctuation do
  not count). Named ``"lexical:jaccard-3-shingles"`` in results.
- ``EmbeddingSimilarity``: cosine of unit-length passage embeddings from an ``Embedder``
  (``similarity_model=``: an object with ``name`` and ``embed(texts)``, such as a
  ``BiEncoderReranker``, whose embeddings go through its passage-embedding cache; or a spec
  string, resolved by the loader the package installs with ``set_embedder_loader``: a
  ``bi-encoder:`` spec or a bare model name). Named ``"cosine:<embedder name>"``.

Pairs are computed when first asked for and kept for the call. The core names no reranker
family: what it needs of one is the ``Embedder`` protocol.

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
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from rerank_kit._core.errors import RerankError

__all__ = [
    "Embedder",
    "EmbeddingSimilarity",
    "LexicalSimilarity",
    "Similarity",
    "load_similarity_model",
    "normalise_space",
    "set_embedder_loader",
]

SHINGLE = 3
LEXICAL = f"lexical:jaccard-{SHINGLE}-shingles"
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


@runtime_checkable
class Embedder(Protocol):
    """What ``similarity_model`` needs: a name, and unit-length embeddings of texts.

    ``BiEncoderReranker`` implements it (``embed`` goes through its passage-embedding cache,
    under its model lock); any object with these two members does.
    """

    name: str

    def embed(self, texts: Sequence[str]) -> Any:
        """One unit-length embedding per text (rows of a 2-D array; ``a @ b`` is cosine)."""
        ...


_models: dict[str, Embedder] = {}
_models_lock = threading.Lock()
_loader: list[Callable[[str], Embedder]] = []


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


def set_embedder_loader(loader: Callable[[str], Embedder]) -> None:
    """Install what turns a ``similarity_model`` spec string into an ``Embedder``.

    The core resolves no spec itself (it imports no reranker family): the package installs
    its registry's embedder loader when it is imported. Specs already loaded are kept.
    """
    _loader[:] = [loader]


def load_similarity_model(model: Any) -> Embedder:
    """The ``Embedder`` for ``similarity_model``: loaded once per spec string, then shared.

    ``model`` is an ``Embedder`` (returned as it is) or a spec string, resolved by the loader
    ``set_embedder_loader`` installed (``rerank_kit``'s reads a ``"bi-encoder:..."`` spec or a
    bare model name as ``"bi-encoder:<name>"``).
    """
    if not isinstance(model, str):
        return model
    with _models_lock:
        found = _models.get(model)
        if found is None:
            if not _loader:
                raise RerankError(
                    f"similarity_model={model!r} is a spec, and no loader turns specs into "
                    "embedders here (import rerank_kit, which installs one)"
                )
            loaded = _loader[0](model)
            if not isinstance(loaded, Embedder):
                raise ValueError(f"similarity_model {model!r} gave no embedder: {loaded!r}")
            found = _models[model] = loaded
    return found


def embed(model: Embedder, texts: list[str]) -> Any:
    """Unit-length embeddings of ``texts`` (the embedder's own lock and cache apply)."""
    return model.embed(texts)
