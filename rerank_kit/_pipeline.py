"""A tuned reranking pipeline: settings saved by ``rerank-kit tune``, loaded in one call.

Example:
    >>> from rerank_kit import load_pipeline  # doctest: +SKIP
    >>> pipeline = load_pipeline("pipeline.json")  # doctest: +SKIP
    >>> pipeline.rerank("reset my password", passages, first_stage_scores=bm25_scores)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rerank_kit._base import Reranker
from rerank_kit._core.fusion import Fusion
from rerank_kit._core.types import Ranked

__all__ = ["Pipeline", "PipelineConfig", "load_pipeline"]


@dataclass(frozen=True)
class PipelineConfig:
    """The settings of a reranking pipeline, as ``rerank-kit tune`` writes them.

    Attributes:
        reranker: A ``load_reranker`` spec.
        first_stage: The first stage the settings were chosen for (``"bm25"``, ...).
        depth: Candidates to retrieve and rerank.
        fusion_weight: Weight on the reranker for score fusion (``None``: no fusion).
        fusion_method: ``"zscore"``, ``"minmax"`` or ``"rrf"``.
        top_n: Candidates to keep.
        score_threshold: Drop candidates scoring below this (the fused score with fusion).

    Example:
        >>> c = PipelineConfig("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2", "bm25", 50, 0.7)
        >>> PipelineConfig.from_dict(c.to_dict()) == c
        True
    """

    reranker: str
    first_stage: str = "bm25"
    depth: int = 100
    fusion_weight: float | None = None
    fusion_method: str = "zscore"
    top_n: int | None = 10
    score_threshold: float | None = None

    @property
    def fusion(self) -> Fusion | None:
        """The ``Fusion`` these settings describe, or ``None``."""
        if self.fusion_weight is None:
            return None
        return Fusion(self.fusion_weight, self.fusion_method)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the JSON file's content)."""
        return {"format": "rerank-kit-pipeline/1", **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineConfig:
        """Read ``to_dict`` output, checking every field."""
        fields = {k: v for k, v in data.items() if k != "format"}
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown pipeline config keys: {', '.join(sorted(unknown))}")
        if not isinstance(fields.get("reranker"), str) or not fields["reranker"].strip():
            raise ValueError("pipeline config needs 'reranker', a load_reranker spec")
        config = cls(**fields)
        if isinstance(config.depth, bool) or not isinstance(config.depth, int) or config.depth < 1:
            raise ValueError(f"depth must be a positive int, got {config.depth!r}")
        _ = config.fusion  # validates weight and method
        return config

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
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: not valid JSON ({exc.msg})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{p}: expected a JSON object")
        return cls.from_dict(data)


@dataclass
class Pipeline:
    """A reranker with the settings it was tuned with (fusion, ``top_n``, threshold, depth).

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

    def rerank(
        self, query: str, texts: Sequence[str], *, first_stage_scores: Sequence[float] | None = None
    ) -> list[Ranked]:
        """``reranker.rerank`` with the tuned fusion, ``top_n`` and ``score_threshold``."""
        return self.reranker.rerank(
            query,
            texts,
            top_n=self.config.top_n,
            score_threshold=self.config.score_threshold,
            first_stage_scores=first_stage_scores,
            fusion=self.config.fusion,
        )

    async def arerank(
        self, query: str, texts: Sequence[str], *, first_stage_scores: Sequence[float] | None = None
    ) -> list[Ranked]:
        """Async ``rerank``."""
        return await self.reranker.arerank(
            query,
            texts,
            top_n=self.config.top_n,
            score_threshold=self.config.score_threshold,
            first_stage_scores=first_stage_scores,
            fusion=self.config.fusion,
        )


def load_pipeline(config: str | Path | PipelineConfig, **kwargs: Any) -> Pipeline:
    """Build the reranker and settings a ``rerank-kit tune --config`` file describes.

    Args:
        config: The JSON file, or a ``PipelineConfig``.
        **kwargs: Passed to ``load_reranker`` (e.g. ``threads=`` for ONNX models).

    Example:
        >>> pipeline = load_pipeline("pipeline.json")  # doctest: +SKIP
        >>> pipeline.config.fusion_weight  # doctest: +SKIP
        0.6
    """
    from rerank_kit._registry import load_reranker

    settings = config if isinstance(config, PipelineConfig) else PipelineConfig.load(config)
    return Pipeline(settings, load_reranker(settings.reranker, **kwargs))
