"""The settings of adapters over a service or other rerankers: remote APIs, cascades, LLMs.

The rest of the adapters' settings (what every adapter takes, one local model) live in
``settings.py``; both are public through ``rerank_kit.adapters``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from rerank_kit._adapters.build import (
    build_listwise,
    build_remote,
    build_stages,
)
from rerank_kit._adapters.settings import RerankSettings, _Built
from rerank_kit._core.protocol import Reranker
from rerank_kit._rerankers.remote.security import mask_credentials

if TYPE_CHECKING:
    from rerank_kit._rerankers.listwise import ListwiseLLMReranker

__all__ = ["CascadeSettings", "ListwiseSettings", "RemoteSettings"]


def _mask_urls(value: Any) -> Any:
    """``value`` with the ``user:pass@`` of every URL in its strings masked."""
    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_mask_urls(v) for v in value)
    return value


class RemoteSettings(_Built):
    """A hosted rerank API or a serving engine (``rerank_kit.RemoteReranker``)."""

    model: str = Field(
        default="cohere:rerank-v3.5",
        description="Remote spec, e.g. 'cohere:rerank-v3.5', 'tei:http://HOST:PORT' or "
        "'llamacpp:http://HOST:PORT'.",
    )
    api_key: SecretStr | None = Field(
        default=None,
        exclude=True,
        description="The provider's key (default: its environment variable, e.g. "
        "COHERE_API_KEY); masked in the repr and left out of serialisation.",
    )
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        repr=False,
        exclude=True,
        description="Keyword arguments for RemoteReranker (base_url, timeout, max_retries, "
        "batch_size, retry, max_response_bytes, api_key); left out of the repr and of "
        "serialisation (an api_key here is masked in validation errors too).",
    )
    allow_insecure_http: bool = Field(
        default=False,
        description="Send a hosted provider's key over plain http:// to a host that is not "
        "loopback (a trusted proxy on your own network); without it such a base_url is "
        "refused. Self-hosted engines (tei, infinity, llamacpp) take http:// without it.",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _mask_keys(cls, data: Any, handler: Any) -> Any:
        """Validate with the keys held as ``SecretStr``, so no validation error shows them.

        A pydantic error repeats the input it was given (up to 21 characters of a key in
        ``model_kwargs``); the caller's dicts are copied, never changed.
        """
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("api_key"), str):
                data["api_key"] = SecretStr(data["api_key"])
            kwargs = data.get("model_kwargs")
            if isinstance(kwargs, dict) and isinstance(kwargs.get("api_key"), str):
                data["model_kwargs"] = {**kwargs, "api_key": SecretStr(kwargs["api_key"])}
        try:
            return handler(data)
        except ValidationError as exc:
            # a URL's user:pass@ (a TEI spec, a base_url) is in the input the error repeats
            errors = [{**e, "input": _mask_urls(e["input"])} for e in exc.errors()]
            if errors == exc.errors():
                raise
            raise ValidationError.from_exception_data(exc.title, errors) from None  # type: ignore[arg-type]

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, (_mask_urls(value) if name == "model" else value)

    def _build(self) -> Reranker:
        key = None if self.api_key is None else self.api_key.get_secret_value()
        kwargs = dict(self.model_kwargs)
        if isinstance(kwargs.get("api_key"), SecretStr):
            kwargs["api_key"] = kwargs["api_key"].get_secret_value()
        if self.allow_insecure_http:
            kwargs.setdefault("allow_insecure_http", True)
        return build_remote(
            self.model,
            adapter=type(self).__name__,
            framework=self.framework,
            api_key=key,
            kwargs=kwargs,
        )


class CascadeSettings(_Built):
    """A cascade: cheap stages prune, the last one orders (``rerank_kit.CascadeReranker``)."""

    stages: str | list[tuple[str | Reranker | RerankSettings, int | None]] = Field(
        description="Cascade spec ('a@20 >> b') or a list of (stage, keep) pairs; a stage is a "
        "spec, an engine reranker or one of the adapter's own classes."
    )

    def _build(self) -> Reranker:
        stages = self.stages
        if not isinstance(stages, str):  # adapter objects stand for their engine rerankers
            stages = [
                (s._get_reranker() if isinstance(s, RerankSettings) else s, keep)
                for s, keep in stages
            ]
        return build_stages(stages, adapter=type(self).__name__, framework=self.framework)


class ListwiseSettings(_Built):
    """Listwise reranking by a framework LLM (``rerank_kit.ListwiseLLMReranker``)."""

    llm: Any = Field(description="The LLM that orders the passages.")
    window: int = Field(default=20, description="Passages per LLM call.")
    step: int = Field(default=10, description="How far the window moves up between calls.")
    max_calls: int | None = Field(default=None, description="At most this many calls per query.")
    max_passage_tokens: int | None = Field(
        default=300, description="Cut passages to this many tokens (whitespace words by default)."
    )
    count_tokens: Callable[[str], int] | None = Field(
        default=None, description="Token counter for max_passage_tokens (default: words)."
    )
    max_passage_chars: int | None = Field(
        default=None, description="Cut passages to this many characters."
    )
    prompt: Callable[[str, Sequence[str]], str] | None = Field(
        default=None, description="(query, passages) -> prompt, to replace the default prompt."
    )

    @model_validator(mode="after")
    def _no_threshold(self) -> ListwiseSettings:
        if self.score_threshold is not None:
            raise ValueError(
                f"{type(self).__name__} gives rank-derived scores, so score_threshold has no "
                "meaning for it; use top_n"
            )
        return self

    def _build(self) -> Reranker:
        settings = {
            "window": self.window,
            "step": self.step,
            "max_calls": self.max_calls,
            "max_passage_tokens": self.max_passage_tokens,
            "count_tokens": self.count_tokens,
            "max_passage_chars": self.max_passage_chars,
            "prompt": self.prompt,
        }
        return build_listwise(self.llm, settings)

    @property
    def reranker(self) -> ListwiseLLMReranker:
        """The engine ``ListwiseLLMReranker`` (e.g. to read ``stats`` or for an engine cascade)."""
        return cast("ListwiseLLMReranker", self._get_reranker())
