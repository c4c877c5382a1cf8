"""The adapters' settings, defined once: pydantic mixins that both frameworks' classes inherit.

A LangChain compressor is ``class CrossEncoderRerank(shared.CrossEncoderSettings, _BaseRerank)``
where ``_BaseRerank`` is ``shared.RerankSettings`` plus ``BaseDocumentCompressor``; the
LlamaIndex postprocessor is the same with ``BaseNodePostprocessor``. Fields, descriptions, checks and the
way each engine reranker is built live here; the framework classes only translate documents or
nodes to texts and back. Importing this module imports pydantic, never a framework.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from rerank_kit._adapters.build import (
    ENGINE_FIELDS,
    build_model,
)
from rerank_kit._adapters.run import OnError
from rerank_kit._core.assembly import SETTINGS as ASSEMBLY_SETTINGS
from rerank_kit._core.assembly import AssemblySettings
from rerank_kit._core.checks import check_threshold, check_top_n
from rerank_kit._core.fusion import FusionMethod, to_fusion
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache

if TYPE_CHECKING:
    pass

__all__ = [
    "BiEncoderSettings",
    "CrossEncoderSettings",
    "FlashRankSettings",
    "RerankSettings",
    "WrapperSettings",
]


#: The fields ``run_settings`` is built from (a change to one rebuilds it).
_RUN_FIELDS = (
    "top_n",
    "score_threshold",
    "on_error",
    "fusion",
    "fusion_method",
    "fusion_long",
    "long_query_tokens",
    *ASSEMBLY_SETTINGS,
    "calibration",
    "min_probability",
    "min_n",
    "expected_share",
)


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

    #: What the fields were when ``_prepared`` was built, and the run settings built then.
    _prepared: tuple[tuple[Any, ...], dict[str, Any]] | None = PrivateAttr(default=None)
    # the adaptive cutoff (rerank_kit._core.calibration.CUTOFF_SETTINGS): probabilities, ...
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
        description="With min_probability or expected_share: keep at least this many "
        "passages (the best), whatever their probability.",
    )
    expected_share: float | None = Field(
        default=None,
        description="'Expected relevant' cutoff (needs calibration), in (0, 1]: keep the "
        "shortest prefix whose summed probability reaches this share of all the candidates' "
        "summed probability; with min_probability both must keep a passage; top_n stays the "
        "ceiling and token_budget still holds.",
    )

    @model_validator(mode="after")
    def _check_cutoff(self) -> RerankSettings:
        from rerank_kit._core.calibration import Cutoff, load_calibration

        if self.calibration is not None:  # read a file once, here
            self.__dict__["calibration"] = load_calibration(self.calibration)
        Cutoff.build(self.calibration, self.min_probability, self.min_n, self.expected_share)
        return self

    @model_validator(mode="after")
    def _check_settings(self) -> RerankSettings:
        self._prepared = self._prepare()  # checked here, once: the calls reuse it
        return self

    def _field_values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _RUN_FIELDS)

    def _prepare(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        fusion = to_fusion(
            self.fusion,
            self.fusion_method,
            long_weight=self.fusion_long,
            long_query_tokens=self.long_query_tokens,
        )
        assembly = AssemblySettings.build(
            **{name: getattr(self, name) for name in ASSEMBLY_SETTINGS}
        )
        settings = {
            "top_n": check_top_n(self.top_n),
            "score_threshold": check_threshold(self.score_threshold),
            "on_error": self.on_error,
            "fusion": fusion,
            "assembly": assembly,
            **self._cutoff_settings(),
        }
        return self._field_values(), settings

    def run_settings(self) -> dict[str, Any]:
        """The keyword arguments of ``run_rerank``/``arun_rerank`` (but the first-stage scores).

        Built and checked once, with the adapter (fusion as a ``Fusion``, the context-assembly
        settings as one ``AssemblySettings``), and rebuilt only if a field was changed since.
        """
        prepared = self._prepared
        if prepared is None or prepared[0] != self._field_values():
            prepared = self._prepared = self._prepare()
        return dict(prepared[1])

    def _cutoff_settings(self) -> dict[str, Any]:
        """The adaptive cutoff's settings, only when a calibration is given."""
        if self.calibration is None:
            return {}
        return {
            "calibration": self.calibration,
            "min_probability": self.min_probability,
            "min_n": self.min_n,
            "expected_share": self.expected_share,
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

    #: Engine fields this family does not offer, and what to use instead (a message).
    not_offered: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_fields_not_offered(cls, data: Any) -> Any:
        """An engine field this family does not offer: refused, naming what to use instead."""
        if not isinstance(data, dict) or not cls.not_offered:
            return data
        given = sorted(k for k in cls.not_offered if data.get(k) is not None)
        if given:
            raise ValueError(
                f"{cls.__name__} takes no {', '.join(f'{k}=' for k in given)}: "
                + " ".join(dict.fromkeys(cls.not_offered[k] for k in given))
            )
        return {k: v for k, v in data.items() if k not in cls.not_offered}  # None: not given

    def _build(self) -> Reranker:
        names = [n for n in (*ENGINE_FIELDS, *self.family_fields) if n in type(self).model_fields]
        return build_model(
            self.kind,
            self.model,
            adapter=type(self).__name__,
            framework=self.framework,
            fields={name: getattr(self, name) for name in names},
            model_kwargs=self.model_kwargs,
        )


_QUANTIZE = Field(
    default=None,
    description="'int8' for an int8 ONNX graph (None: the engine's default); the older name "
    "of precision='int8'.",
)
_PRECISION = Field(
    default=None,
    description="What the model computes in, as the engine's precision=: 'fp32', 'int8' (ONNX "
    "Runtime) or 'bf16' (OpenVINO); None: the engine's default (the bundled model follows the "
    "CPU). quantize= and model_kwargs' openvino_precision are its older names; one that "
    "disagrees is a ValueError.",
)
_GRAPH_CHOICE = (
    "For an int8 graph or a chosen graph of an exported folder, use "
    "CrossEncoderRerank(model=<folder>, backend='onnx', precision='int8') or "
    "CrossEncoderRerank(model=<folder>, backend='onnx', file_name='onnx/model.onnx')."
)


class CrossEncoderSettings(_ModelSettings):
    """A cross-encoder (``rerank_kit.CrossEncoderReranker``)."""

    kind: ClassVar[str] = "cross-encoder"
    family_fields: ClassVar[tuple[str, ...]] = ("instruction",)
    model: str = Field(
        default="cross-encoder/ms-marco-MiniLM-L-6-v2", description="Hub id or local folder."
    )
    quantize: str | None = _QUANTIZE
    precision: str | None = _PRECISION
    file_name: str | None = Field(
        default=None,
        description="Which ONNX graph of a pre-exported model folder to load, e.g. "
        "'onnx/model_qint8_avx512.onnx'.",
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
    not_offered: ClassVar[dict[str, str]] = {
        "quantize": "A FlashRank model runs the one ONNX graph its folder ships. " + _GRAPH_CHOICE,
        "precision": "A FlashRank model runs the one ONNX graph its folder ships. " + _GRAPH_CHOICE,
        "file_name": "A FlashRank model runs the one ONNX graph its folder ships. " + _GRAPH_CHOICE,
    }


class BiEncoderSettings(_ModelSettings):
    """A bi-encoder (``rerank_kit.BiEncoderReranker``)."""

    kind: ClassVar[str] = "bi-encoder"
    model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2", description="Hub id or local folder."
    )
    not_offered: ClassVar[dict[str, str]] = {
        "file_name": "The bi-encoder exports and loads its own graph (backend='onnx'; "
        "quantize='int8' for int8 weights)."
    }
    quantize: str | None = Field(
        default=None,
        description="'int8' for int8 weights (with backend='onnx'; None: fp32); the older name "
        "of precision='int8'.",
    )
    precision: str | None = _PRECISION
