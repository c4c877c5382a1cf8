"""A tuned reranking pipeline: settings saved by ``rerank-kit tune``, loaded in one call.

Example:
    >>> from rerank_kit import load_pipeline  # doctest: +SKIP
    >>> pipeline = load_pipeline("pipeline.json")  # doctest: +SKIP
    >>> pipeline.rerank("reset my password", passages, first_stage_scores=bm25_scores)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import InitVar, asdict, dataclass, field
from pathlib import Path
from typing import Any

from rerank_kit._core.assembly import SETTINGS as ASSEMBLY_SETTINGS
from rerank_kit._core.assembly import AssemblySettings
from rerank_kit._core.calibration import Calibration, Cutoff, fusion_key
from rerank_kit._core.fusion import Fusion, to_fusion
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.ranking import RerankOptions
from rerank_kit._core.types import Ranked
from rerank_kit._pipeline_checks import MAX_FILE_BYTES, check_config, read_config_bytes

__all__ = ["Pipeline", "PipelineConfig", "load_pipeline"]


@dataclass(frozen=True)
class PipelineConfig:
    """The settings of a reranking pipeline, as ``rerank-kit tune`` writes them.

    The fusion settings are spelled as everywhere else (``rerank(fusion=, fusion_method=)``,
    the adapters' fields): ``fusion`` is the weight on the reranker. Files written before 0.2
    used the key ``fusion_weight``; they load unchanged, and ``fusion_weight=`` (argument and
    attribute) still works with a ``DeprecationWarning``.

    Attributes:
        reranker: A ``load_reranker`` spec, or ``"none"``: first stage only (``tune`` found
            that no reranker helps); the pipeline then keeps the first stage's order, cut to
            ``top_n``, and loads no model.
        first_stage: The first stage the settings were chosen for (``"bm25"``, ...).
        depth: Candidates to retrieve and rerank.
        fusion: Weight on the reranker for score fusion, in [0, 1] (``None``: no fusion).
        fusion_method: ``"zscore"``, ``"minmax"`` or ``"rrf"``.
        top_n: Candidates to keep.
        score_threshold: Drop candidates scoring below this (the fused score with fusion).
        dedupe: Near-duplicate threshold in (0, 1] (``None``: off); see ``Reranker.rerank``.
        diversity: Maximal-marginal-relevance weight in [0, 1] (0: off).
        similarity_model: Bi-encoder spec for the similarity of dedupe/diversity (``None``:
            lexical).
        order: ``"score"`` or ``"lost-in-the-middle"``.
        boosts: Metadata boosts (a list of dicts, as ``Reranker.rerank(boosts=)`` takes).
        token_budget: Most tokens the kept passages hold together (``None``: no limit).
        fusion_long: Query-dependent trust (keyword only): the fusion weight for queries with
            more than ``long_query_tokens`` tokens (``rerank_kit.Fusion``'s
            ``long_weight``); ``fusion`` is then the weight for the others. Both are left out
            of the file when unset, so files without them read as before.
        long_query_tokens: With ``fusion_long``: the query length (``query_length``) above
            which a query is long.
        instruction: For an instruction-aware reranker (Qwen3-Reranker, mxbai-rerank v2,
            bge-reranker-v2-gemma; keyword only): the instruction written into its prompt,
            passed to ``load_reranker(instruction=)`` (``None``: the model's default). Left
            out of the file when unset, so files without it read as before.
        calibration: The map from this pipeline's score to the probability of relevance
            (``rerank-kit calibrate`` / ``tune --calibrate``; keyword only), keyed to the
            reranker's score identity and fusion: ``load_pipeline`` refuses it on another
            model, backend or precision. Results then carry ``Ranked.probability``.
        min_probability: The adaptive cutoff (keyword only, needs ``calibration``): keep the
            passages whose probability is at least this, ``top_n`` as the ceiling.
        min_n: With ``min_probability`` or ``expected_share``: keep at least this many
            whatever their probability.
        expected_share: The "expected relevant" cutoff (keyword only, needs ``calibration``):
            keep the shortest prefix whose summed probability reaches this share, in (0, 1],
            of all the candidates'; with ``min_probability``, both must keep a passage.
            The four are left out of the file when unset.

    The context-assembly fields are optional: files without them load with them off.

    Example:
        >>> c = PipelineConfig("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2", "bm25", 50, 0.7)
        >>> PipelineConfig.from_dict(c.to_dict()) == c
        True
        >>> c.fusion, c.to_fusion()
        (0.7, Fusion(weight=0.7, method='zscore'))
        >>> PipelineConfig.from_dict({"reranker": "x:y", "fusion_weight": 0.5}).fusion
        0.5
        >>> PipelineConfig("none", "hybrid").first_stage_only
        True
        >>> split = PipelineConfig("x:y", fusion=0.8, fusion_long=0.1, long_query_tokens=20)
        >>> split.to_fusion().for_query("short question").weight
        0.8
        >>> legal = PipelineConfig("cross-encoder:Qwen/Qwen3-Reranker-0.6B", instruction="Find the clause")
        >>> legal.to_dict()["instruction"], "instruction" in c.to_dict()
        ('Find the clause', False)
    """

    reranker: str
    first_stage: str = "bm25"
    depth: int = 100
    fusion: float | None = None
    fusion_method: str = "zscore"
    top_n: int | None = 10
    score_threshold: float | None = None
    dedupe: float | None = None
    diversity: float = 0.0
    similarity_model: str | None = None
    order: str = "score"
    boosts: list[dict[str, Any]] | None = None
    token_budget: int | None = None

    #: Deprecated spelling of ``fusion`` (argument only; see the class docstring).
    fusion_weight: InitVar[float | None] = None
    fusion_long: float | None = field(default=None, kw_only=True)
    long_query_tokens: int | None = field(default=None, kw_only=True)
    instruction: str | None = field(default=None, kw_only=True)
    # the adaptive cutoff (rerank_kit._core.calibration.CUTOFF_SETTINGS)
    calibration: Calibration | None = field(default=None, kw_only=True)
    min_probability: float | None = field(default=None, kw_only=True)
    min_n: int | None = field(default=None, kw_only=True)
    expected_share: float | None = field(default=None, kw_only=True)

    def __post_init__(self, fusion_weight: float | None) -> None:
        if self.calibration is not None and not isinstance(self.calibration, Calibration):
            object.__setattr__(self, "calibration", Calibration.from_dict(self.calibration))
        Cutoff.build(  # checks the four
            self.calibration, self.min_probability, self.min_n, self.expected_share
        )
        if self.instruction is not None and (
            not isinstance(self.instruction, str) or not self.instruction.strip()
        ):
            raise ValueError(
                f"instruction must be a non-empty string or None, got {self.instruction!r}"
            )
        if fusion_weight is None:
            return
        warnings.warn(
            "PipelineConfig(fusion_weight=) is now spelled fusion=",
            DeprecationWarning,
            stacklevel=3,
        )
        if self.fusion is not None and self.fusion != fusion_weight:
            raise ValueError("give fusion= or the old fusion_weight=, not both")
        object.__setattr__(self, "fusion", fusion_weight)

    @property
    def first_stage_only(self) -> bool:
        """True if the pipeline keeps the first stage's order (``reranker="none"``)."""
        from rerank_kit._rerankers.first_stage import is_first_stage_only

        return is_first_stage_only(self.reranker)

    def to_fusion(self) -> Fusion | None:
        """The ``Fusion`` these settings describe (query-dependent with ``fusion_long``)."""
        return to_fusion(
            self.fusion,
            self.fusion_method,
            long_weight=self.fusion_long,
            long_query_tokens=self.long_query_tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the JSON file's content)."""
        data = asdict(self)
        if self.calibration is not None:
            data["calibration"] = self.calibration.to_dict()
        optional = ("fusion_long", "long_query_tokens", "instruction", *self._CUTOFF)
        for key in optional:  # only when set
            if data[key] is None:
                del data[key]
        return {"format": "rerank-kit-pipeline/2", **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineConfig:
        """Read ``to_dict`` output, checking every field.

        Raises:
            ValueError: Naming the field (wrong type, NaN, out of range, unknown ``format``
                or key, nesting too deep); see ``rerank_kit._pipeline_checks``.
        """
        check_config(data)
        fields = {k: v for k, v in data.items() if k != "format"}
        if "fusion_weight" in fields:  # files written before 0.2
            old = fields.pop("fusion_weight")
            if fields.get("fusion") is None:
                fields["fusion"] = old
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown pipeline config keys: {', '.join(sorted(unknown))}")
        if not isinstance(fields.get("reranker"), str) or not fields["reranker"].strip():
            raise ValueError("pipeline config needs 'reranker', a load_reranker spec")
        config = cls(**fields)
        try:
            _ = config.to_fusion()  # validates weight and method
            AssemblySettings.build(**config.assembly_options())
        except TypeError as exc:  # a file's fields: always ValueError, naming the field
            raise ValueError(f"pipeline config: {exc}") from exc
        return config

    _CUTOFF = ("calibration", "min_probability", "min_n", "expected_share")

    def cutoff_options(self) -> dict[str, Any]:
        """The adaptive-cutoff keyword arguments of ``rerank`` (empty without a calibration)."""
        if self.calibration is None:
            return {}
        options = {name: getattr(self, name) for name in self._CUTOFF}
        if self.expected_share is None:  # as before expected_share existed
            del options["expected_share"]
        return options

    def with_cutoff(
        self,
        calibration: Calibration | Mapping[str, Any] | None,
        min_probability: float | None = None,
        min_n: int | None = None,
        expected_share: float | None = None,
        **changes: Any,
    ) -> PipelineConfig:
        """A copy with this calibration and cutoff (and other fields ``changes``), checked."""
        cal = None if calibration is None else Calibration.from_dict(calibration).to_dict()
        data = {**self.to_dict(), **changes, "calibration": cal}
        cutoff = {"min_probability": min_probability, "min_n": min_n}
        return PipelineConfig.from_dict({**data, **cutoff, "expected_share": expected_share})

    def check_calibration(self, reranker: Reranker) -> None:
        """Refuse a calibration fitted on other scores than ``reranker``'s (``ValueError``)."""
        if self.calibration is not None:
            self.calibration.check(
                reranker._score_identity(),
                fusion_key(self.to_fusion()),
                where=f"the pipeline's reranker {reranker.name!r}",
            )

    def assembly_options(self) -> dict[str, Any]:
        """The context-assembly keyword arguments of ``rerank`` these settings hold."""
        return {name: getattr(self, name) for name in ASSEMBLY_SETTINGS}

    def save(self, path: str | Path) -> Path:
        """Write the settings as JSON."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        """Read a file written by ``save`` (or ``rerank-kit tune --config``)."""
        p = Path(path)
        with p.open("rb") as fh:  # bounded: a huge file is refused unread
            data = read_config_bytes(fh.read(MAX_FILE_BYTES + 1), str(p))
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from exc


def _fusion_weight(self: PipelineConfig) -> float | None:
    """Deprecated spelling of ``fusion`` (the weight)."""
    warnings.warn(
        "PipelineConfig.fusion_weight is now spelled fusion", DeprecationWarning, stacklevel=2
    )
    return self.fusion


# The argument ``fusion_weight`` is an InitVar; reading the attribute gives ``fusion``.
setattr(PipelineConfig, "fusion_weight", property(_fusion_weight))  # noqa: B010


@dataclass
class Pipeline:
    """A reranker with the settings it was tuned with (fusion, ``top_n``, threshold, depth).

    For a "first stage only" config (``reranker="none"``) the reranker is a ``FirstStageOnly``
    that keeps the input order and loads no model. With ``fusion_long`` the fusion weight is
    chosen per query by its length (``rerank_kit.Fusion.for_query``).

    Attributes:
        config: The settings.
        reranker: The engine reranker built from ``config.reranker``.

    Example:
        >>> pipeline = load_pipeline("pipeline.json")  # doctest: +SKIP
        >>> hits = my_retriever(query, k=pipeline.config.depth)  # doctest: +SKIP
        >>> pipeline.rerank(query, [h.text for h in hits], first_stage_scores=[h.score for h in hits])  # doctest: +SKIP
    """

    config: PipelineConfig
    reranker: Reranker

    def options(
        self,
        first_stage_scores: Sequence[float] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> RerankOptions:
        """The tuned keyword arguments of ``rerank`` (fusion, cut, context assembly)."""
        options: RerankOptions = {
            "top_n": self.config.top_n,
            "score_threshold": self.config.score_threshold,
            "first_stage_scores": first_stage_scores,
            "fusion": self.config.to_fusion(),
        }
        assembly = AssemblySettings.build(**self.config.assembly_options())
        if assembly is not None:  # checked here; the engine takes it as it is
            options["assembly"] = assembly
            options["metadata"] = metadata
        options.update(self.config.cutoff_options())  # type: ignore[typeddict-item]
        return options

    def rerank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        first_stage_scores: Sequence[float] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[Ranked]:
        """``reranker.rerank`` with the tuned settings (``metadata``: for ``boosts``)."""
        return self.reranker.rerank(query, texts, **self.options(first_stage_scores, metadata))

    async def arerank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        first_stage_scores: Sequence[float] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[Ranked]:
        """Async ``rerank``."""
        options = self.options(first_stage_scores, metadata)
        return await self.reranker.arerank(query, texts, **options)


def load_pipeline(config: str | Path | PipelineConfig, **kwargs: Any) -> Pipeline:
    """Build the reranker and settings a ``rerank-kit tune --config`` file describes.

    The config's ``instruction``, if any, is passed to ``load_reranker`` as ``instruction=``.

    Args:
        config: The JSON file, or a ``PipelineConfig``.
        **kwargs: Passed to ``load_reranker`` (e.g. ``threads=`` for ONNX models, or
            ``instruction=`` when the config names none).

    Example:
        >>> pipeline = load_pipeline("pipeline.json")  # doctest: +SKIP
        >>> pipeline.config.fusion  # doctest: +SKIP
        0.6
    """
    from rerank_kit._registry import load_reranker
    from rerank_kit._rerankers.first_stage import FirstStageOnly

    settings = config if isinstance(config, PipelineConfig) else PipelineConfig.load(config)
    if settings.first_stage_only:  # no model to load: keep the first stage's order
        return Pipeline(settings, FirstStageOnly())
    if settings.instruction is not None:
        given = kwargs.setdefault("instruction", settings.instruction)
        if given != settings.instruction:
            raise ValueError(
                f"instruction is given twice, instruction={given!r} and the config's "
                f"{settings.instruction!r}"
            )
    reranker = load_reranker(settings.reranker, **kwargs)
    try:
        settings.check_calibration(reranker)
    except ValueError as exc:
        where = "" if isinstance(config, PipelineConfig) else f"{config}: "
        raise ValueError(f"{where}{exc}") from exc
    return Pipeline(settings, reranker)
