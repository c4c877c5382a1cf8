"""What both framework adapters share: run a reranker with a failure policy.

Adapters only translate framework objects to texts and back; the policy lives here once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rerank_kit._base import Reranker, check_threshold, check_threshold_supported, check_top_n
from rerank_kit._core.fusion import Fusion, to_fusion
from rerank_kit._core.types import Ranked

__all__ = [
    "OnError",
    "Outcome",
    "arun_rerank",
    "fusion_setting",
    "run_rerank",
    "validate_settings",
]

logger = logging.getLogger(__name__)

#: ``"raise"`` (default) re-raises a reranker failure; ``"passthrough"`` returns the
#: first-stage order (cut to ``top_n``) with a logged warning and a failure flag.
OnError = Literal["raise", "passthrough"]


@dataclass(frozen=True)
class Outcome:
    """Result of one adapter call: the ranking, or the first-stage order after a failure."""

    ranked: list[Ranked]
    failed: bool = False
    error: str | None = field(default=None)


def _passthrough(n: int, top_n: int | None, exc: Exception, name: str) -> Outcome:
    logger.warning(
        "reranker %s failed (%s: %s); on_error='passthrough' keeps the first-stage order",
        name,
        type(exc).__name__,
        exc,
    )
    keep = n if top_n is None else min(n, top_n)
    ranked = [Ranked(index=i, score=math.nan) for i in range(keep)]
    return Outcome(ranked=ranked, failed=True, error=f"{type(exc).__name__}: {exc}")


def _check_policy(on_error: str) -> None:
    if on_error not in ("raise", "passthrough"):
        raise ValueError(f"on_error must be 'raise' or 'passthrough', got {on_error!r}")


def run_rerank(
    reranker: Reranker,
    query: str,
    texts: Sequence[str],
    *,
    top_n: int | None,
    score_threshold: float | None,
    on_error: OnError = "raise",
    first_stage_scores: Sequence[float] | None = None,
    fusion: Fusion | None = None,
) -> Outcome:
    """``reranker.rerank`` with the adapters' failure policy (and score fusion, if given).

    Example:
        >>> from rerank_kit.testing import FakeReranker
        >>> run_rerank(FakeReranker(), "a", ["b", "a"], top_n=1, score_threshold=None).ranked[0].index
        1
    """
    _check_policy(on_error)
    n, threshold = check_top_n(top_n), check_threshold(score_threshold)
    check_threshold_supported(reranker, threshold)  # a settings error, never passed through
    try:
        ranked = reranker.rerank(
            query,
            texts,
            top_n=n,
            score_threshold=threshold,
            first_stage_scores=first_stage_scores,
            fusion=fusion,
        )
    except Exception as exc:
        if on_error == "raise":
            raise
        return _passthrough(len(texts), n, exc, reranker.name)
    return Outcome(ranked=ranked)


async def arun_rerank(
    reranker: Reranker,
    query: str,
    texts: Sequence[str],
    *,
    top_n: int | None,
    score_threshold: float | None,
    on_error: OnError = "raise",
    first_stage_scores: Sequence[float] | None = None,
    fusion: Fusion | None = None,
) -> Outcome:
    """Async ``run_rerank``: the model runs in a worker thread."""
    _check_policy(on_error)
    n, threshold = check_top_n(top_n), check_threshold(score_threshold)
    check_threshold_supported(reranker, threshold)  # a settings error, never passed through
    try:
        ranked = await reranker.arerank(
            query,
            texts,
            top_n=n,
            score_threshold=threshold,
            first_stage_scores=first_stage_scores,
            fusion=fusion,
        )
    except Exception as exc:
        if on_error == "raise":
            raise
        return _passthrough(len(texts), n, exc, reranker.name)
    return Outcome(ranked=ranked)


def validate_settings(top_n: object, score_threshold: object) -> None:
    """Check adapter settings at construction, so a bad value fails early and clearly."""
    check_top_n(top_n)
    check_threshold(score_threshold)


def fusion_setting(fusion: object, method: object) -> Fusion | None:
    """The adapters' ``fusion`` / ``fusion_method`` settings as a ``Fusion`` (checked).

    Example:
        >>> fusion_setting(0.7, "minmax")
        Fusion(weight=0.7, method='minmax')
        >>> fusion_setting(None, "zscore") is None
        True
    """
    if not isinstance(method, str):
        raise TypeError(f"fusion_method must be a str, got {method!r}")
    return to_fusion(fusion, method)
