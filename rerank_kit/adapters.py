"""The framework-neutral adapter core, public: what a framework adapter is built on.

The LangChain and LlamaIndex adapters use only the names here; a third framework's adapter
(``haystack_rerank_kit``, or your own) does the same. An adapter does three things:

1. **Settings**: one of the settings classes (pydantic models that hold every field, check it
   once and build the engine reranker: ``CrossEncoderSettings``, ``FlashRankSettings``, ...).
   A pydantic-based framework inherits one as a mixin; any other holds an instance.
2. **Run**: ``run_rerank`` / ``arun_rerank`` with ``settings.get_reranker()``, the query, the
   passage texts (``passage_texts`` checks them) and ``**settings.run_settings()``. They apply
   the failure policy (``on_error``), fusion and context assembly, and return an ``Outcome``.
3. **Translate back**: ``Outcome.results()`` lists plain ``Result`` values (input position,
   score, flags) to copy onto new framework objects; write ``Result.model`` under
   ``MODEL_KEY`` in their metadata.

Example:
    >>> from rerank_kit.adapters import WrapperSettings, run_rerank
    >>> from rerank_kit.testing import FakeReranker
    >>> settings = WrapperSettings(reranker=FakeReranker(), top_n=2)
    >>> texts = ["cats purr", "dogs bark", "cats sleep a lot"]
    >>> outcome = run_rerank(settings.get_reranker(), "cats", texts, **settings.run_settings())
    >>> [texts[r.index] for r in outcome.results()]
    ['cats purr', 'cats sleep a lot']
"""

from __future__ import annotations

from rerank_kit._adapters.build import pipeline_settings
from rerank_kit._adapters.llm import TextLLM, text_llm
from rerank_kit._adapters.run import (
    MODEL_KEY,
    OnError,
    Outcome,
    Result,
    arun_rerank,
    model_that_runs,
    passage_texts,
    run_rerank,
)
from rerank_kit._adapters.service_settings import (
    CascadeSettings,
    ListwiseSettings,
    RemoteSettings,
)
from rerank_kit._adapters.settings import (
    BiEncoderSettings,
    CrossEncoderSettings,
    FlashRankSettings,
    RerankSettings,
    WrapperSettings,
)

__all__ = [
    "MODEL_KEY",
    "BiEncoderSettings",
    "CascadeSettings",
    "CrossEncoderSettings",
    "FlashRankSettings",
    "ListwiseSettings",
    "OnError",
    "Outcome",
    "RemoteSettings",
    "RerankSettings",
    "Result",
    "TextLLM",
    "WrapperSettings",
    "arun_rerank",
    "model_that_runs",
    "passage_texts",
    "pipeline_settings",
    "run_rerank",
    "text_llm",
]
