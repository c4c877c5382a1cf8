"""Run a reranker for an adapter: the failure policy, and the results as plain values.

``run_rerank`` and ``arun_rerank`` share every decision (``_Run``: checks, what to pass the
engine, what a failure becomes); they differ only by the awaited call. The adapters read the
``Outcome`` through ``Outcome.results()`` and only translate it to documents or nodes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rerank_kit._core.assembly import AssemblySettings, check_metadata
from rerank_kit._core.calibration import Cutoff
from rerank_kit._core.checks import (
    check_encodable,
    check_query,
    check_threshold,
    check_threshold_supported,
    check_top_n,
)
from rerank_kit._core.fusion import check_first_stage_scores, to_fusion
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.types import Ranked
from rerank_kit._core.usage import Usage

__all__ = [
    "MODEL_KEY",
    "OnError",
    "Outcome",
    "Result",
    "arun_rerank",
    "model_that_runs",
    "passage_texts",
    "run_rerank",
]

logger = logging.getLogger(__name__)

#: ``"raise"`` (default) re-raises a reranker failure; ``"passthrough"`` returns the
#: first-stage order (cut to ``top_n``) with a logged warning and a failure flag.
OnError = Literal["raise", "passthrough"]

#: The metadata key under which both adapters' results name the reranker that was asked to
#: score them (``Reranker.name``: kind and model, e.g. ``"onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"``).
MODEL_KEY = "rerank_model"


@dataclass(frozen=True)
class Result:
    """One returned passage as plain Python values, for an adapter to copy onto its objects.

    Attributes:
        index: Position of the passage in the adapter's input.
        score: The relevance score (the fused one with fusion; ``-inf`` for a blank passage),
            or ``None`` when the reranker failed and the first-stage order was kept.
        reranker_score: With fusion, the reranker's own score.
        first_stage_score: With fusion, the first-stage score that was fused (if one was given).
        first_stage_rank: With fusion, the passage's position in the input (1 = first).
        stage_scores: A cascade's score per stage.
        truncated: The model saw only the start of the passage.
        llm_repaired: An LLM reranker placed it from an answer it had to repair.
        empty: The passage was blank (empty or whitespace only) and was not scored.
        failed: The reranker failed (``on_error="passthrough"``).
        duplicates: With ``dedupe``: input positions of the passages dropped as its
            near-duplicates.
        boost: With ``boosts``: what the metadata boosts added to ``score``.
        context_rank: With context assembly: rank in the selection order (1 = best).
        similarity: With ``dedupe``/``diversity``: the similarity measure used.
        tokens: With ``token_budget``: the passage's length as counted for the budget.
        model: The reranker's ``name`` (what the adapters write under ``MODEL_KEY``).
        probability: With a calibration: the probability that the passage is relevant
            (``score`` stays the raw or fused score); ``None`` without one.
    """

    index: int
    score: float | None
    reranker_score: float | None = None
    first_stage_score: float | None = None
    first_stage_rank: int | None = None
    stage_scores: dict[str, float] = field(default_factory=dict)
    truncated: bool = False
    llm_repaired: bool = False
    empty: bool = False
    failed: bool = False
    duplicates: tuple[int, ...] = ()
    boost: float | None = None
    context_rank: int | None = None
    similarity: str | None = None
    tokens: int | None = None
    model: str | None = None
    probability: float | None = None

    def assembly_metadata(self, duplicate_ids: Sequence[str] = ()) -> dict[str, Any]:
        """What context assembly did to this passage, as metadata (keys only for steps that ran).

        ``duplicate_ids``: the ids of the passages at ``duplicates``, as the framework names
        them (written under ``duplicate_ids`` when given).

        Example:
            >>> Result(index=0, score=1.0, context_rank=1, duplicates=(3,)).assembly_metadata(["d3"])
            {'context_rank': 1, 'duplicates': [3], 'duplicate_ids': ['d3']}
        """
        out: dict[str, Any] = {}
        if self.context_rank is not None:
            out["context_rank"] = self.context_rank
        if self.similarity is not None:
            out["similarity"] = self.similarity
        if self.duplicates:
            out["duplicates"] = list(self.duplicates)
            if duplicate_ids:
                out["duplicate_ids"] = list(duplicate_ids)
        if self.boost is not None:
            out["boost"] = self.boost
        if self.tokens is not None:
            out["context_tokens"] = self.tokens
        return out


def _optional(value: float | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Outcome:
    """Result of one adapter call: the ranking, or the first-stage order after a failure."""

    ranked: list[Ranked]
    failed: bool = False
    error: str | None = field(default=None)
    model: str | None = None
    #: The call's ``Usage`` (what the adapters report in callbacks/events); ``None`` on failure.
    usage: Usage | None = None

    def results(self) -> list[Result]:
        """Every returned passage, best first, with plain ``float`` scores.

        Example:
            >>> Outcome([Ranked(index=1, score=1)]).results()[0].score
            1.0
        """
        out = []
        for r in self.ranked:
            fused = r.reranker_score is not None
            out.append(
                Result(
                    index=r.index,
                    score=None if self.failed else float(r.score),
                    reranker_score=_optional(r.reranker_score),
                    first_stage_score=_optional(r.first_stage_score),
                    first_stage_rank=r.index + 1 if fused else None,
                    stage_scores={k: float(v) for k, v in r.stage_scores.items()},
                    truncated=r.truncated,
                    llm_repaired=r.llm_repaired,
                    empty=getattr(r, "empty", False),
                    failed=self.failed,
                    duplicates=tuple(r.duplicates),
                    boost=_optional(r.boost),
                    context_rank=r.context_rank,
                    similarity=r.similarity,
                    tokens=r.tokens,
                    model=self.model,
                    probability=None if self.failed else _optional(r.probability),
                )
            )
        return out


def model_that_runs(reranker: Reranker) -> str:
    """Which model ``reranker`` runs, in one line: its ``name``, and the graph it loaded if any.

    The demo and ``rerank-kit eval`` print it when they load a reranker, so the model (and,
    for an ONNX Runtime graph, the very file and its precision) is seen, not only logged.

    Example:
        >>> from rerank_kit.testing import FakeReranker
        >>> model_that_runs(FakeReranker())
        'fake'
    """
    for holder in (reranker, getattr(reranker, "_onnx", None)):
        graph = getattr(holder, "onnx_path", None)
        if graph is not None:
            precision = getattr(holder, "precision", None) or "fp32"
            backend = "OpenVINO" if getattr(holder, "backend", "") == "openvino" else "ONNX Runtime"
            return f"{reranker.name} (ran {graph}, {precision} {backend} graph)"
    return reranker.name


def passage_texts(values: Sequence[object], where: Callable[[int], str]) -> list[str]:
    """The passages' texts, or a ``TypeError`` that names the adapter's object (``where(i)``).

    Example:
        >>> passage_texts(["a", None], lambda i: f"documents[{i}].page_content")
        Traceback (most recent call last):
        TypeError: documents[1].page_content must be text (a str), got NoneType
    """
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise TypeError(f"{where(i)} must be text (a str), got {type(value).__name__}")
        check_encodable(value, where(i))
    return [str(v) for v in values]


@dataclass(frozen=True)
class _Run:
    """The decisions of one adapter call, shared by ``run_rerank`` and ``arun_rerank``."""

    reranker: Reranker
    query: str
    texts: list[str]
    top_n: int | None
    on_error: str
    kwargs: dict[str, Any]  # for the engine's rerank/arerank

    @classmethod
    def plan(
        cls,
        reranker: Reranker,
        query: str,
        texts: Sequence[str],
        *,
        top_n: int | None,
        score_threshold: float | None,
        on_error: str = "raise",
        first_stage_scores: Sequence[float] | None = None,
        fusion: Any = None,
        fusion_method: str | None = None,
        fusion_long: float | None = None,
        long_query_tokens: int | None = None,
        metadata: Sequence[Any] | None = None,
        calibration: Any = None,
        min_probability: float | None = None,
        min_n: int | None = None,
        expected_share: float | None = None,
        **assembly: Any,
    ) -> _Run:
        """Check the settings and inputs: errors here are never passed through.

        ``assembly``: ``assembly=`` an ``AssemblySettings`` (what ``run_settings()`` gives: it
        was checked when the adapter was built, and is passed on as it is), or the six
        context-assembly keywords, built into one here.
        """
        if on_error not in ("raise", "passthrough"):
            raise ValueError(f"on_error must be 'raise' or 'passthrough', got {on_error!r}")
        n, threshold = check_top_n(top_n), check_threshold(score_threshold)
        check_threshold_supported(reranker, threshold)
        fused = to_fusion(
            fusion, fusion_method, long_weight=fusion_long, long_query_tokens=long_query_tokens
        )
        items = list(texts)
        first = check_first_stage_scores(first_stage_scores, len(items)) if fused else None
        kwargs: dict[str, Any] = {"top_n": n, "score_threshold": threshold, "fusion": fused}
        kwargs["first_stage_scores"] = first
        settings = AssemblySettings.from_options(assembly)
        if settings is not None:
            kwargs["assembly"] = settings
            kwargs["metadata"] = check_metadata(metadata, len(items))
        cutoff = Cutoff.build(calibration, min_probability, min_n, expected_share)
        if cutoff is not None:  # the engine checks the map against the reranker's scores
            kwargs.update(
                calibration=cutoff.calibration, min_probability=min_probability, min_n=min_n
            )
            if expected_share is not None:
                kwargs["expected_share"] = expected_share
        return cls(reranker, check_query(query), items, n, on_error, kwargs)

    def failed(self, exc: Exception) -> Outcome:
        """Re-raise (``on_error="raise"``), or keep the first-stage order with a warning."""
        if self.on_error == "raise":
            raise exc
        logger.warning(
            "reranker %s failed (%s: %s); on_error='passthrough' keeps the first-stage order",
            self.reranker.name,
            type(exc).__name__,
            exc,
        )
        n = len(self.texts)
        keep = n if self.top_n is None else min(n, self.top_n)
        ranked = [Ranked(index=i, score=math.nan) for i in range(keep)]
        error = f"{type(exc).__name__}: {exc}"
        return Outcome(ranked=ranked, failed=True, error=error, model=self.reranker.name)


def run_rerank(reranker: Reranker, query: str, texts: Sequence[str], **settings: Any) -> Outcome:
    """``reranker.rerank`` with the adapters' settings and failure policy.

    Args:
        reranker: The engine reranker.
        query: The query.
        texts: The passages.
        **settings: ``top_n``, ``score_threshold``, ``on_error`` (``"raise"`` or
            ``"passthrough"``), ``first_stage_scores``, ``fusion`` (a weight or ``Fusion``),
            ``fusion_method``, for query-dependent trust ``fusion_long`` and
            ``long_query_tokens``, the passages' ``metadata`` (for ``boosts``), the
            context-assembly settings: ``assembly`` (an ``AssemblySettings``), or ``dedupe``,
            ``diversity``, ``similarity_model``, ``order``, ``boosts``, ``token_budget``; and
            the adaptive cutoff (``calibration``, ``min_probability``, ``min_n``,
            ``expected_share``).

    Returns:
        The ``Outcome``.

    Example:
        >>> from rerank_kit.testing import FakeReranker
        >>> run_rerank(FakeReranker(), "a", ["b", "a"], top_n=1, score_threshold=None).ranked[0].index
        1
    """
    run = _Run.plan(reranker, query, texts, **settings)
    try:
        ranked = reranker.rerank(run.query, run.texts, **run.kwargs)
    except Exception as exc:
        return run.failed(exc)
    return Outcome(ranked=ranked, model=reranker.name, usage=getattr(ranked, "usage", None))


async def arun_rerank(
    reranker: Reranker, query: str, texts: Sequence[str], **settings: Any
) -> Outcome:
    """Async ``run_rerank``: the same decisions, the engine's ``arerank`` awaited."""
    run = _Run.plan(reranker, query, texts, **settings)
    try:
        ranked = await reranker.arerank(run.query, run.texts, **run.kwargs)
    except Exception as exc:
        return run.failed(exc)
    return Outcome(ranked=ranked, model=reranker.name, usage=getattr(ranked, "usage", None))
