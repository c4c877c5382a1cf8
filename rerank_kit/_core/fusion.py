"""Score fusion: combine a reranker's scores with what the first stage knew.

A reranker alone throws away the first stage's signal (BM25's exact term matches, a dense
retriever's similarity). Fusing the two, per query, is often better than either alone. Three
methods, each with a weight ``w`` on the reranker (``1 - w`` on the first stage):

- ``"zscore"`` (default): ``w * z(reranker) + (1 - w) * z(first stage)``, where ``z`` subtracts
  the mean over this query's candidates and divides by their standard deviation.
- ``"minmax"``: the same with scores scaled to [0, 1] over this query's candidates.
- ``"rrf"``: weighted reciprocal rank fusion, ``w / (k + rank_reranker) + (1 - w) / (k +
  rank_first_stage)`` with 1-based ranks and ``k = 60``; scores themselves are ignored.

The first-stage signal is the retrieval score where one is given, else the candidate's position
in the input list (the first stage's order), so fusion always works.

**Query-dependent trust**: a ``Fusion`` can carry a second weight for long queries
(``long_weight``, used when the query has more than ``long_query_tokens`` tokens, as
``query_length`` counts them); ``rerank`` resolves it per query with ``Fusion.for_query``.

Example:
    >>> from rerank_kit._core.fusion import Fusion, fuse
    >>> fuse([0.9, 0.1, 0.5], [1.0, 3.0, 2.0], Fusion(weight=0.5))
    [0.0, 0.0, 0.0]
    >>> [round(s, 3) for s in fuse([0.9, 0.1, 0.5], None, Fusion(weight=0.7))]
    [1.225, -0.857, -0.367]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rerank_kit._core.types import Ranked

__all__ = [
    "DEFAULT_FUSION_WEIGHT",
    "FUSION_METHODS",
    "Fusion",
    "FusionMethod",
    "check_first_stage_scores",
    "fuse",
    "fuse_ranked",
    "query_length",
    "to_fusion",
]

FusionMethod = Literal["zscore", "minmax", "rrf"]

#: Names accepted for ``Fusion.method``.
FUSION_METHODS: tuple[str, ...] = ("zscore", "minmax", "rrf")

#: Weight on the reranker when none is given: the best of 0.5, 0.7 and 0.9 on average over
#: Cranfield and CISI with the all-MiniLM-L6-v2 bi-encoder after BM25 and after hybrid
#: retrieval (mean nDCG@10 .416, .423, .420; docs/evaluation.md, "Score fusion").
DEFAULT_FUSION_WEIGHT = 0.7

#: The ``k`` of reciprocal rank fusion (as in Cormack et al. 2009 and the hybrid first stage).
RRF_K = 60

_TOKEN = re.compile(r"\w+")


def query_length(query: str) -> int:
    """Tokens in ``query`` as query-dependent fusion counts them: runs of word characters.

    Example:
        >>> query_length("what is the lift of a wing?")
        7
    """
    return len(_TOKEN.findall(query))


@dataclass(frozen=True)
class Fusion:
    """How to fuse the reranker's score with the first-stage signal.

    Attributes:
        weight: Weight on the reranker, in [0, 1]; ``1 - weight`` goes to the first stage.
            ``1.0`` orders by the reranker alone, ``0.0`` keeps the first-stage order.
        method: ``"zscore"``, ``"minmax"`` or ``"rrf"`` (see the module docstring).

        long_weight: Weight on the reranker for long queries (``None``: ``weight`` for all).
        long_query_tokens: A query with more tokens than this (``query_length``) is long and
            gets ``long_weight``; give both or neither.

    Example:
        >>> Fusion(0.7, "minmax")
        Fusion(weight=0.7, method='minmax')
        >>> split = Fusion(0.8, long_weight=0.2, long_query_tokens=12)
        >>> split.for_query("what is lift"), split.for_query("a " * 13).weight
        (Fusion(weight=0.8, method='zscore'), 0.2)
    """

    weight: float = DEFAULT_FUSION_WEIGHT
    method: FusionMethod = "zscore"
    long_weight: float | None = field(default=None, kw_only=True)
    long_query_tokens: int | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _weight(self.weight, "fusion weight"))
        if self.method not in FUSION_METHODS:
            raise ValueError(
                f"fusion method must be one of {', '.join(FUSION_METHODS)}, got {self.method!r}"
            )
        if (self.long_weight is None) != (self.long_query_tokens is None):
            raise ValueError("give long_weight and long_query_tokens together, or neither")
        if self.long_weight is not None:
            object.__setattr__(self, "long_weight", _weight(self.long_weight, "long_weight"))
            t = self.long_query_tokens
            if isinstance(t, bool) or not isinstance(t, int) or t < 0:
                raise ValueError(f"long_query_tokens must be an int >= 0, got {t!r}")

    def __repr__(self) -> str:
        split = (
            ""
            if self.long_weight is None
            else f", long_weight={self.long_weight!r}, long_query_tokens={self.long_query_tokens!r}"
        )
        return f"Fusion(weight={self.weight!r}, method={self.method!r}{split})"

    def for_query(self, query: str) -> Fusion:
        """The plain ``Fusion`` for ``query``: ``long_weight`` if it is long, else ``weight``."""
        if self.long_weight is None or self.long_query_tokens is None:
            return self
        long = query_length(query) > self.long_query_tokens
        return Fusion(self.long_weight if long else self.weight, self.method)

    @property
    def label(self) -> str:
        """Short text for system names, e.g. ``"fused zscore w=0.7"``."""
        if self.long_weight is not None:
            return (
                f"fused {self.method} w={self.weight:g}, "
                f"w={self.long_weight:g} above {self.long_query_tokens} tokens"
            )
        return f"fused {self.method} w={self.weight:g}"


def _weight(value: object, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0.0 <= value <= 1.0  # compared as is: a huge int must not overflow float()
    ):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def to_fusion(
    fusion: Any,
    method: str | None = None,
    *,
    long_weight: float | None = None,
    long_query_tokens: int | None = None,
) -> Fusion | None:
    """``None``, a weight (float) or a ``Fusion`` as a ``Fusion`` (``None`` stays ``None``).

    ``long_weight`` and ``long_query_tokens`` (the adapters' ``fusion_long`` and
    ``long_query_tokens``) make it query-dependent; they need a weight.

    Example:
        >>> to_fusion(0.7, "rrf")
        Fusion(weight=0.7, method='rrf')
        >>> to_fusion(0.7, long_weight=0.2, long_query_tokens=12)
        Fusion(weight=0.7, method='zscore', long_weight=0.2, long_query_tokens=12)
        >>> to_fusion(None) is None
        True
    """
    split = long_weight is not None or long_query_tokens is not None
    if fusion is None:
        if split:
            raise ValueError("fusion_long and long_query_tokens need a fusion weight (fusion=)")
        return None
    if isinstance(fusion, Fusion):
        if method is not None and method != fusion.method:
            raise ValueError(
                f"fusion={fusion!r} already names its method; got fusion_method={method!r} too"
            )
        if split and (long_weight, long_query_tokens) != (
            fusion.long_weight,
            fusion.long_query_tokens,
        ):
            raise ValueError(f"fusion={fusion!r} already says how it treats long queries")
        return fusion
    if isinstance(fusion, bool) or not isinstance(fusion, (int, float)):
        raise TypeError(
            f"fusion must be None, a weight in [0, 1] or a Fusion, got {type(fusion).__name__}"
        )
    return Fusion(
        fusion,  # Fusion checks the range before converting (a huge int must not overflow)
        method or "zscore",  # type: ignore[arg-type]
        long_weight=long_weight,
        long_query_tokens=long_query_tokens,
    )


def check_first_stage_scores(scores: Any, n: int) -> list[float] | None:
    """``scores`` as a list of ``n`` finite floats, or ``None`` for "use the input order".

    Raises a clear error for a wrong length or a non-number; NaN and infinite values are
    rejected (a retriever that gives them has no usable score).

    Example:
        >>> check_first_stage_scores([3, 1.5], 2)
        [3.0, 1.5]
    """
    if scores is None:
        return None
    if isinstance(scores, (str, bytes)) or not isinstance(scores, Sequence):
        raise TypeError(
            f"first_stage_scores must be a sequence of numbers, got {type(scores).__name__}"
        )
    if len(scores) != n:
        raise ValueError(f"first_stage_scores has {len(scores)} values for {n} texts")
    out: list[float] = []
    for i, s in enumerate(scores):
        if isinstance(s, bool) or not isinstance(s, (int, float)):
            raise TypeError(f"first_stage_scores[{i}] must be a number, got {s!r}")
        try:
            value = float(s)
        except OverflowError:  # an int beyond float range
            value = math.inf
        if not math.isfinite(value):
            raise ValueError(f"first_stage_scores[{i}] must be finite, got {value}")
        out.append(value)
    return out


#: Above this magnitude, scores are scaled before normalising (their squares would overflow).
_HUGE = 1e100


def _tamed(values: Sequence[float]) -> Sequence[float]:
    """``values`` scaled down if huge (both normalisations are scale-free): no overflow.

    Example:
        >>> _zscore([0.0, 2.6e154]) == _zscore([0.0, 1.0])
        True
    """
    top = max((abs(v) for v in values), default=0.0)
    if top <= _HUGE or not math.isfinite(top):
        return values
    return [v / top for v in values]


def _zscore(values: Sequence[float]) -> list[float]:
    values = _tamed(values)
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) * (v - mean) for v in values) / n)
    if std == 0.0 or not math.isfinite(std):
        return [0.0] * n
    return [(v - mean) / std for v in values]


def _minmax(values: Sequence[float]) -> list[float]:
    values = _tamed(values)
    lo, hi = min(values), max(values)
    if hi == lo or not math.isfinite(hi - lo):
        return [0.0] * len(values)
    return [(v - lo) / (hi - lo) for v in values]


def _ranks(values: Sequence[float]) -> list[int]:
    """1-based rank of each value, highest first; ties keep input order."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    ranks = [0] * len(values)
    for r, i in enumerate(order, start=1):
        ranks[i] = r
    return ranks


def fuse(
    reranker_scores: Sequence[float],
    first_stage_scores: Sequence[float] | None,
    fusion: Fusion,
) -> list[float]:
    """Fused score of each candidate (higher is better), in input order.

    Args:
        reranker_scores: The reranker's score of each candidate.
        first_stage_scores: The first stage's score of each candidate (higher is better), or
            ``None`` to use the input order (first = best).
        fusion: Weight and method.

    Returns:
        One float per candidate. Normalisation is over the candidates given (one query's).

    Example:
        >>> fuse([2.0, 1.0], [0.0, 1.0], Fusion(1.0))
        [1.0, -1.0]
    """
    n = len(reranker_scores)
    if n == 0:
        return []
    if first_stage_scores is None:
        first: list[float] = [float(n - i) for i in range(n)]  # earlier is better
    else:
        first = [float(s) for s in first_stage_scores]
        if len(first) != n:
            raise ValueError(f"{len(first)} first-stage scores for {n} candidates")
    w = fusion.weight
    if fusion.method == "rrf":
        rr, fr = _ranks(reranker_scores), _ranks(first)
        return [w / (RRF_K + a) + (1.0 - w) / (RRF_K + b) for a, b in zip(rr, fr, strict=True)]
    norm = _zscore if fusion.method == "zscore" else _minmax
    # -inf (a cascade's pruned candidate) cannot be normalised: fuse the finite ones only
    finite = [i for i, s in enumerate(reranker_scores) if math.isfinite(s)]
    out = [-math.inf] * n
    if not finite:
        return out
    a = norm([float(reranker_scores[i]) for i in finite])
    b = norm([first[i] for i in finite])
    for j, i in enumerate(finite):
        out[i] = w * a[j] + (1.0 - w) * b[j]
    return out


def fuse_ranked(
    ranked: Sequence[Ranked], first_stage_scores: Sequence[float] | None, fusion: Fusion
) -> list[Ranked]:
    """Re-order a reranker's output by the fused score.

    ``ranked`` is what ``Reranker._rank`` returns (every surviving candidate; a cascade's pruned
    ones are absent). Normalisation is over these candidates. Each returned ``Ranked`` has
    ``score`` = the fused score, ``reranker_score`` = the reranker's own score and
    ``first_stage_score`` = the first-stage score (``None`` when the input order was used).
    Equal fused scores keep the reranker's order.

    Args:
        ranked: The reranker's ranking; ``index`` points into the caller's list.
        first_stage_scores: One score per input text (indexed like the caller's list), or
            ``None`` to use the input order (position 0 = best).
        fusion: Weight and method.

    Example:
        >>> from rerank_kit import Ranked
        >>> out = fuse_ranked([Ranked(1, 0.9), Ranked(0, 0.8)], None, Fusion(0.5, "rrf"))
        >>> [(r.index, r.reranker_score) for r in out]
        [(1, 0.9), (0, 0.8)]
    """
    items = list(ranked)
    if not items:
        return []
    total = max(r.index for r in items) + 1
    if first_stage_scores is None:
        first = [float(total - r.index) for r in items]
        given: list[float | None] = [None] * len(items)
    else:
        first = [float(first_stage_scores[r.index]) for r in items]
        given = list(first)
    fused = fuse([r.score for r in items], first, fusion)
    order = sorted(range(len(items)), key=lambda j: -fused[j])
    return [
        replace(
            items[j],
            score=float(fused[j]),
            reranker_score=float(items[j].score),
            first_stage_score=given[j],
        )
        for j in order
    ]
