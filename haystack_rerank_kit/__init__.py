"""Haystack rankers for rerank-kit: ``@component`` classes for any ``Pipeline``.

Each ranker takes ``run(query, documents, top_k=None)`` and returns new ``Document`` objects
scored by the rerank-kit engine (``pip install "rerank-kit[haystack,bundled]"`` for an offline
trained cross-encoder).

Example:
    >>> from haystack_rerank_kit import CrossEncoderRerank  # doctest: +SKIP
    >>> pipe.add_component("ranker", CrossEncoderRerank(top_k=3))  # doctest: +SKIP
    >>> pipe.connect("retriever.documents", "ranker.documents")  # doctest: +SKIP
"""

from __future__ import annotations

try:
    import haystack  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the import-isolation test
    raise ImportError(
        'haystack_rerank_kit needs Haystack. Install it with: pip install "rerank-kit[haystack]"'
    ) from exc

# the public names are listed once, in _components.__all__
from haystack_rerank_kit._components import *  # noqa: F403
from haystack_rerank_kit._components import __all__ as __all__
