"""What every Haystack ranker here shares: settings held, documents translated, YAML.

A Haystack component is no pydantic model, so each ranker holds an instance of the matching
settings class of ``rerank_kit.adapters`` (built from its ``__init__`` arguments, ``top_k`` as
``top_n``) and keeps the arguments it was given for ``to_dict``. The settings instance checks
every value when the ranker is made; the engine reranker (a model to load) is built by
``warm_up()``, or by the first ``run``, as Haystack's own rankers do.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import Secret

from haystack_rerank_kit._documents import checked, first_stage_scores, reranked, texts_of
from rerank_kit import Calibration, Reranker
from rerank_kit.adapters import RerankSettings, arun_rerank, run_rerank

__all__ = ["FRAMEWORK", "Rerank", "settings_names"]

#: The extra named in install hints (``pip install "rerank-kit[haystack,bundled]"``).
FRAMEWORK = "haystack"

S = TypeVar("S", bound=RerankSettings)


def settings_names(settings: type[RerankSettings]) -> frozenset[str]:
    """The keyword settings a ranker over ``settings`` takes (``top_n`` is spelled ``top_k``)."""
    return frozenset(settings.model_fields) - {"top_n"}


@functools.cache
def _deferred(settings: type[S], name: str) -> type[S]:
    """``settings`` under the ranker's name (for messages), building its reranker on first use.

    The adapter settings build the engine reranker when they are made; a Haystack ranker loads
    its model in ``warm_up()``, so here ``get_reranker()`` builds it on first use instead.
    """

    def model_post_init(self: Any, context: Any, /) -> None:
        """Checked, nothing built: ``get_reranker()`` builds the reranker on first use."""

    namespace = {"model_post_init": model_post_init, "framework": FRAMEWORK, "__module__": __name__}
    return type(name, (settings,), namespace)


def check_top_k(top_k: Any, where: str) -> int | None:
    """``top_k`` if it is ``None`` or a positive int, else an error that names ``top_k``."""
    if top_k is None:
        return None
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise TypeError(f"{where}: top_k must be a positive int or None, got {top_k!r}")
    if top_k <= 0:
        raise ValueError(f"{where}: top_k must be >= 1 or None (keep all), got {top_k}")
    return top_k


def plain(value: Any, name: str, where: str) -> Any:
    """``value`` as a pipeline file holds it, or a ``ValueError`` naming what cannot be saved."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Secret):
        return value.to_dict()  # an env-var secret saves its name; a token secret refuses
    if isinstance(value, Calibration):  # its points (from_dict reads them back)
        return value.to_dict()
    if isinstance(value, dict):
        return {str(k): plain(v, f"{name}[{k!r}]", where) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{name}[{i}]", where) for i, v in enumerate(value)]
    raise ValueError(
        f"{where}.to_dict(): {name} is a {type(value).__name__} object, which a pipeline file "
        "cannot hold; give it as a spec string, a number or a file name to save this ranker"
    )


class Rerank:
    """The shared part of every ranker here (each one is a ``@component`` subclass)."""

    #: The settings class of ``rerank_kit.adapters`` this ranker holds an instance of.
    settings_type: ClassVar[type[RerankSettings]] = RerankSettings

    _settings: RerankSettings
    _init_parameters: dict[str, Any]

    def _setup(
        self,
        fields: dict[str, Any],
        settings: dict[str, Any],
        *,
        top_k: int | None,
        meta_fields_to_embed: list[str] | None,
        embedding_separator: str,
    ) -> None:
        """Check and keep the arguments, and make the settings instance (nothing loaded)."""
        name = type(self).__name__
        built = self._settings_fields(fields)  # (a settings name spelled otherwise here is taken)
        allowed = settings_names(self.settings_type) - set(built)
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise TypeError(
                f"{name} got unexpected keyword arguments {unknown}; it takes "
                f"{sorted(allowed | set(fields) | {'top_k', 'meta_fields_to_embed'})} "
                "and embedding_separator"
            )
        if not isinstance(embedding_separator, str):
            raise TypeError(f"{name}: embedding_separator must be a str")
        meta_fields = list(meta_fields_to_embed or [])
        if not all(isinstance(k, str) for k in meta_fields):
            raise TypeError(f"{name}: meta_fields_to_embed must be a list of meta keys (str)")
        self.top_k = check_top_k(top_k, name)
        self.meta_fields_to_embed = meta_fields
        self.embedding_separator = embedding_separator
        self._init_parameters = {
            **fields,
            "top_k": top_k,
            "meta_fields_to_embed": meta_fields_to_embed,
            "embedding_separator": embedding_separator,
            **settings,
        }
        self._settings = _deferred(self.settings_type, name)(top_n=top_k, **built, **settings)

    def _settings_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The settings-class values of this ranker's own ``__init__`` arguments."""
        return fields

    # ------------------------------------------------------------------ loading
    @property
    def settings(self) -> RerankSettings:
        """The ``rerank_kit.adapters`` settings this ranker holds (checked, shared code)."""
        return self._settings

    @property
    def reranker(self) -> Reranker:
        """The engine reranker (built on first use), e.g. for ``cache_info()`` or ``stats``."""
        return self._settings.get_reranker()

    def warm_up(self) -> None:
        """Load the model (build the engine reranker); ``run`` calls it when it was not called."""
        self._settings.get_reranker()

    # ------------------------------------------------------------------ running
    def _inputs(
        self, documents: Sequence[Document], top_k: int | None
    ) -> tuple[list[Document], dict[str, Any]]:
        name = type(self).__name__
        docs = checked(documents)
        texts = texts_of(docs, self.meta_fields_to_embed, self.embedding_separator)
        run = {"texts": texts, **self._settings.run_settings()}
        if top_k is not None:
            run["top_n"] = check_top_k(top_k, f"{name}.run")
        run["first_stage_scores"] = first_stage_scores(docs) if run["fusion"] is not None else None
        run["metadata"] = [d.meta for d in docs]
        return docs, run

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Rerank ``documents`` for ``query``; the best come back as new ``Document`` objects.

        Args:
            query: The query.
            documents: The candidates (e.g. a retriever's ``documents``).
            top_k: Keep at most this many (``None``: the ranker's ``top_k``).

        Returns:
            ``{"documents": [...]}``, best first: ``score`` is the rerank score, the incoming
            score is in ``meta["first_stage_score"]`` and the model in ``meta["rerank_model"]``.
        """
        docs, run = self._inputs(documents, top_k)
        if not docs:
            return {"documents": []}
        self.warm_up()
        outcome = run_rerank(self._settings.get_reranker(), query, **run)
        return {"documents": reranked(docs, outcome)}

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Async ``run``: awaits the engine's async path (remote and LLM rerankers natively)."""
        docs, run = self._inputs(documents, top_k)
        if not docs:
            return {"documents": []}
        self.warm_up()
        outcome = await arun_rerank(self._settings.get_reranker(), query, **run)
        return {"documents": reranked(docs, outcome)}

    # ------------------------------------------------------------------ YAML
    def _saved(self) -> dict[str, Any]:
        """The ``__init__`` arguments as a pipeline file holds them."""
        return self._saved_of(self._init_parameters)

    def _saved_of(self, params: dict[str, Any]) -> dict[str, Any]:
        where = type(self).__name__
        return {k: plain(v, k, where) for k, v in params.items()}

    def to_dict(self) -> dict[str, Any]:
        """Serialise this ranker for a pipeline file (``Pipeline.dumps``); keys stay secrets.

        Returns:
            ``{"type": ..., "init_parameters": {...}}``.

        Raises:
            ValueError: A value cannot be saved (an engine ``Reranker`` object, a
                ``ScoreCache`` object, a token ``Secret``).
        """
        return default_to_dict(self, **self._saved())

    @classmethod
    def _restored(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The ``__init__`` arguments from a pipeline file's (objects deserialised)."""
        return params

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Deserialise a ranker that ``to_dict`` saved (``Pipeline.loads``).

        Args:
            data: ``{"type": ..., "init_parameters": {...}}``.

        Returns:
            The ranker.

        Raises:
            TypeError: The file names a setting this ranker does not take.
        """
        import inspect

        params = dict(data.get("init_parameters", {}))
        taken = set(inspect.signature(cls.__init__).parameters) - {"self", "settings"}
        unknown = sorted(set(params) - taken - settings_names(cls.settings_type))
        if unknown:  # checked before anything named in the file is imported
            raise TypeError(f"{cls.__name__}: the pipeline file has unknown settings {unknown}")
        return default_from_dict(cls, {**data, "init_parameters": cls._restored(params)})
