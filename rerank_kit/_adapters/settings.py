"""The adapters' settings, defined once: pydantic mixins that both frameworks' classes inherit.

A LangChain compressor is ``class CrossEncoderRerank(shared.CrossEncoderSettings, _BaseRerank)``
where ``_BaseRerank`` is ``shared.RerankSettings`` plus ``BaseDocumentCompressor``; the
LlamaIndex postprocessor is the same with ``BaseNodePostprocessor``. Fields, descriptions, checks and the
way each engine reranker is built live here; the framework classes only translate documents or
nodes to texts and back. Importing this module imports pydantic, never a framework.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    model_validator,
)

from rerank_kit._adapters.build import (
    ENGINE_FIELDS,
    build_listwise,
    build_model,
    build_remote,
    build_stages,
)
from rerank_kit._adapters.run import OnError
from rerank_kit._core.assembly import SETTINGS as ASSEMBLY_SETTINGS
from rerank_kit._core.assembly import Assembly
from rerank_kit._core.checks import check_threshold, check_top_n
from rerank_kit._core.fusion import FusionMethod, to_fusion
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache
from rerank_kit._rerankers.remote.security import mask_credentials

if TYPE_CHECKING:
    from rerank_kit._rerankers.listwise import ListwiseLLMReranker

__all__ = [
    "BiEncoderSettings",
    "CascadeSettings",
    "CrossEncoderSettings",
    "FlashRankSettings",
    "ListwiseSettings",
    "RemoteSettings",
    "RerankSettings",
    "WrapperSettings",
]


class RerankSettings(BaseModel):
    """What every adapter takes: how many to keep, a threshold, the failure policy, fusion."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    #: ``"langchain"`` or ``"llamaindex"``: the extra named in install hints.
    framework: ClassVar[str] = ""

    top_n: int | None = Field(
        default=3,
        description="Keep at most this many passages (None: all). The adapters keep 3 by "
        "default; the engine's rerank keeps all (top_n=None).",
    )
    score_threshold: float | None = Field(
        default=None,
        description="Drop passages scoring below this (applied before top_n; with fusion, "
        "compared with the fused score).",
    )
    on_error: OnError = Field(
        default="raise",
        description="'raise' re-raises a reranker failure; 'passthrough' returns the "
        "first-stage order (cut to top_n), flagged as failed, with a logged warning.",
    )
    fusion: float | None = Field(
        default=None,
        description="Weight in [0, 1] on the reranker's score when fusing it with the "
        "first-stage signal (None: no fusion). With fusion, the returned score is the fused "
        "score, and it orders, filters (score_threshold) and cuts (top_n).",
    )
    fusion_method: FusionMethod = Field(
        default="zscore", description="'zscore', 'minmax' or 'rrf' (reciprocal rank fusion)."
    )
    # context assembly (rerank_kit._core.assembly): boosts -> dedupe -> diversity ->
    # score_threshold / top_n / token_budget -> order
    dedupe: float | None = Field(
        default=None,
        description="Drop a passage whose similarity to a better kept one is at or above this "
        "threshold, in (0, 1] (1.0: exact duplicates after whitespace normalisation; None: "
        "off); the kept one lists the dropped ones.",
    )
    diversity: float = Field(
        default=0.0,
        description="Maximal marginal relevance weight in [0, 1] (0: off): (1 - w) * "
        "normalised score - w * max similarity to the passages already chosen.",
    )
    similarity_model: str | Reranker | None = Field(
        default=None,
        description="Bi-encoder spec (e.g. 'bi-encoder:all-MiniLM-L6-v2') or BiEncoderReranker "
        "whose cosine is the similarity of dedupe and diversity (None: Jaccard of word "
        "3-shingles, no model).",
    )
    order: Literal["score", "lost-in-the-middle"] = Field(
        default="score",
        description="'score' keeps the selection order; 'lost-in-the-middle' puts the best "
        "passages at both ends of the list and the weakest in the middle.",
    )
    boosts: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None,
        description="Metadata boosts added to the final score: recency {'field', "
        "'half_life_days', 'weight'} or field value {'field', 'values'}; a list adds up. "
        "Missing or unreadable fields get no boost (counted in a logged warning).",
    )
    token_budget: int | None = Field(
        default=None,
        description="Keep the best passages whose lengths fit this many tokens together "
        "(the reranker's tokenizer, else whitespace words); a passage that does not fit is "
        "skipped and the next tried; with top_n both limits hold.",
    )
    fusion_long: float | None = Field(
        default=None,
        description="Query-dependent trust: the fusion weight for long queries (more than "
        "long_query_tokens tokens); fusion is then the weight for the others. Needs fusion.",
    )
    long_query_tokens: int | None = Field(
        default=None,
        description="With fusion_long: a query with more tokens (runs of word characters) "
        "than this is long.",
    )

    # the adaptive cutoff (rerank_kit._core.calibration): probabilities, min_probability, min_n
    calibration: Any = Field(
        default=None,
        description="A Calibration fitted on this reranker's scores (rerank-kit calibrate), "
        "its dict, or a JSON file holding one (or a pipeline config holding one): results "
        "then carry a probability of relevance beside the score. A map fitted on another "
        "model, backend, precision or fusion is refused (ValueError) when the reranker runs.",
    )
    min_probability: float | None = Field(
        default=None,
        description="Adaptive cutoff (needs calibration): keep the passages whose probability "
        "of relevance is at least this; top_n stays the ceiling and token_budget still holds. "
        "One number that means the same for every reranker and fused pipeline.",
    )
    min_n: int | None = Field(
        default=None,
        description="With min_probability: keep at least this many passages (the best), "
        "whatever their probability.",
    )

    @model_validator(mode="after")
    def _check_cutoff(self) -> RerankSettings:
        from rerank_kit._core.calibration import Cutoff, load_calibration

        if self.calibration is not None:  # read a file once, here
            self.__dict__["calibration"] = load_calibration(self.calibration)
        Cutoff.build(self.calibration, self.min_probability, self.min_n)
        return self

    @model_validator(mode="after")
    def _check_settings(self) -> RerankSettings:
        check_top_n(self.top_n)
        check_threshold(self.score_threshold)
        to_fusion(
            self.fusion,
            self.fusion_method,
            long_weight=self.fusion_long,
            long_query_tokens=self.long_query_tokens,
        )
        Assembly.build(**self._assembly_settings())
        return self

    def _assembly_settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ASSEMBLY_SETTINGS}

    def run_settings(self) -> dict[str, Any]:
        """The keyword arguments of ``run_rerank``/``arun_rerank`` (but the first-stage scores)."""
        return {
            "top_n": self.top_n,
            "score_threshold": self.score_threshold,
            "on_error": self.on_error,
            "fusion": self.fusion,
            "fusion_method": self.fusion_method,
            "fusion_long": self.fusion_long,
            "long_query_tokens": self.long_query_tokens,
            **self._assembly_settings(),
            **self._cutoff_settings(),
        }

    def _cutoff_settings(self) -> dict[str, Any]:
        """The adaptive cutoff's settings, only when a calibration is given."""
        if self.calibration is None:
            return {}
        return {
            "calibration": self.calibration,
            "min_probability": self.min_probability,
            "min_n": self.min_n,
        }

    def get_reranker(self) -> Reranker:
        """The engine reranker these settings describe (built once, then reused)."""
        return self._get_reranker()

    def _run_settings(self) -> dict[str, Any]:
        return self.run_settings()

    def _get_reranker(self) -> Reranker:
        raise NotImplementedError


class WrapperSettings(RerankSettings):
    """An adapter around a ready engine reranker."""

    reranker: Reranker = Field(description="The rerank-kit engine reranker to use.")

    def _get_reranker(self) -> Reranker:
        return self.reranker


class _Built(RerankSettings):
    """An adapter that builds its engine reranker at construction (so errors show there).

    It is built again on first use if an instance was made without validation.
    """

    _reranker: Reranker | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._reranker = self._build()

    def _build(self) -> Reranker:
        raise NotImplementedError

    def _get_reranker(self) -> Reranker:
        if self._reranker is None:
            self._reranker = self._build()
        return self._reranker

    @property
    def reranker(self) -> Reranker:
        """The engine reranker (e.g. for ``cache_info()``, ``stats`` or an engine cascade)."""
        return self._get_reranker()


class _ModelSettings(_Built):
    """An adapter over one model: the engine constructors' arguments as top-level fields."""

    kind: ClassVar[str] = ""
    #: Fields of this family beyond ``ENGINE_FIELDS``, passed to its engine the same way.
    family_fields: ClassVar[tuple[str, ...]] = ()

    model: str = Field(description="Model name, Hub id or local folder.")
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra arguments for the underlying model, as the engine's model_kwargs "
        "(e.g. CrossEncoder(...) arguments). Keys that are arguments of the engine reranker "
        "itself (backend, max_length, batch_size, device, ...) are passed as those arguments, "
        "so the older spelling model_kwargs={'backend': 'onnx'} keeps working.",
    )
    backend: str | None = Field(
        default=None,
        description="Where the model runs, as the engine's backend= (cross-encoder and "
        "bi-encoder: 'torch', 'onnx' or 'openvino'; FlashRank: 'auto', 'onnx' or "
        "'openvino'). None: the engine's default.",
    )
    quantize: str | None = Field(
        default=None, description="'int8' for an int8 ONNX graph (None: the engine's default)."
    )
    file_name: str | None = Field(
        default=None,
        description="Which ONNX graph of a pre-exported model folder to load, e.g. "
        "'onnx/model_qint8_avx512.onnx'.",
    )
    threads: int | None = Field(
        default=None, description="CPU threads of ONNX Runtime/OpenVINO (None: engine default)."
    )
    cache_dir: str | Path | None = Field(
        default=None,
        description="Folder for downloaded or exported models (None: the engine's default).",
    )
    score_cache: int | str | Path | ScoreCache | None = Field(
        default=None,
        description="Opt-in score cache: how many (query, passage) pairs to keep, a file name "
        "(a persistent cache) or a ScoreCache shared with other rerankers (None: off).",
    )
    long_documents: str | None = Field(
        default=None,
        description="'truncate' (the engine's default) scores the start of a passage longer "
        "than the model's token limit; 'max', 'mean' or 'first' score it in windows.",
    )

    def _build(self) -> Reranker:
        return build_model(
            self.kind,
            self.model,
            adapter=type(self).__name__,
            framework=self.framework,
            fields={name: getattr(self, name) for name in (*ENGINE_FIELDS, *self.family_fields)},
            model_kwargs=self.model_kwargs,
        )


class CrossEncoderSettings(_ModelSettings):
    """A cross-encoder (``rerank_kit.CrossEncoderReranker``)."""

    kind: ClassVar[str] = "cross-encoder"
    family_fields: ClassVar[tuple[str, ...]] = ("instruction",)
    model: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L-6-v2", description="Hub id or local folder."
    )
    instruction: str | None = Field(
        default=None,
        description="For instruction-aware rerankers (Qwen3-Reranker, mxbai-rerank v2, "
        "bge-reranker-v2-gemma): the task instruction written into the model's prompt, as the "
        "engine's instruction= (None: the model's default instruction). A model that takes no "
        "instruction raises ValueError.",
    )


class FlashRankSettings(_ModelSettings):
    """A FlashRank model (``rerank_kit.FlashRankReranker``)."""

    kind: ClassVar[str] = "flashrank"
    model: str = Field(
        default="ms-marco-TinyBERT-L-2-v2", description="FlashRank model name or local folder."
    )


class BiEncoderSettings(_ModelSettings):
    """A bi-encoder (``rerank_kit.BiEncoderReranker``)."""

    kind: ClassVar[str] = "bi-encoder"
    model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2", description="Hub id or local folder."
    )


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
