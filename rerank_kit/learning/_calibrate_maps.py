"""The map kinds beyond plain isotonic and logistic: pooled isotonic steps, rank-aware maps.

- ``pooled_isotonic``: isotonic regression whose steps hold at least ``MIN_STEP_PAIRS`` pairs
  each (the top steps of a plain fit hold a handful of pairs and extrapolate from them);
- ``fit_rank_map``: a logistic model on the score, ``log(rank)`` in the query's reranked list
  and optionally the gap to the query's best score (``Calibration`` kind ``"logistic-rank"``).

scikit-learn fits them (the ``[eval]`` extra); ``Calibration`` applies them without it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rerank_kit._core.errors import require

__all__ = ["LOGISTIC_POINTS", "MIN_STEP_PAIRS", "Pairs", "fit_rank_map", "pooled_isotonic"]

#: Points a logistic map is stored with (evenly spaced over the scores it was fitted on).
LOGISTIC_POINTS = 65
#: Fewest pairs a step of an ``isotonic-pooled`` map holds.
MIN_STEP_PAIRS = 40
_EPS = 1e-6

#: One query's pairs: the candidates' scores and whether each is judged relevant.
Pairs = tuple[Sequence[float], Sequence[bool]]


def pooled_isotonic(x: Any, y: Any, min_pairs: int) -> tuple[Any, Any]:
    """Isotonic steps, each holding at least ``min_pairs`` pairs (thin ones pooled).

    A step with fewer pairs merges with the neighbour whose level is closer; merging two
    adjacent steps of a monotone fit keeps it monotone. The points are each step's lowest
    and highest score at its level.
    """
    import numpy as np
    from sklearn.isotonic import IsotonicRegression

    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit_transform(xs, ys)
    # steps: [lo, hi) index ranges of equal fitted level
    cuts = [0, *(np.flatnonzero(np.diff(fitted) != 0) + 1).tolist(), len(xs)]
    steps = [[cuts[i], cuts[i + 1]] for i in range(len(cuts) - 1)]

    def level(step: list[int]) -> float:
        return float(ys[step[0] : step[1]].mean())

    while len(steps) > 1:
        thin = [i for i, (a, b) in enumerate(steps) if b - a < min_pairs]
        if not thin:
            break
        i = min(thin, key=lambda j: steps[j][1] - steps[j][0])
        if i == 0:
            j = 1
        elif i == len(steps) - 1:
            j = i - 1
        else:
            here = level(steps[i])
            j = min((i - 1, i + 1), key=lambda k: abs(level(steps[k]) - here))
        lo, hi = min(i, j), max(i, j)
        steps[lo : hi + 1] = [[steps[lo][0], steps[hi][1]]]
    px: list[float] = []
    py: list[float] = []
    for a, b in steps:
        for edge in (float(xs[a]), float(xs[b - 1])):
            if not px or edge > px[-1]:
                px.append(edge)
                py.append(level([a, b]))
    return np.asarray(px), np.asarray(py)


def _rank_rows(
    pairs: Mapping[str, Pairs], qids: Sequence[str]
) -> tuple[list[float], list[int], list[int], list[float]]:
    """Finite pairs of ``qids`` with each one's 1-based rank and its query's best score."""
    xs: list[float] = []
    ys: list[int] = []
    ranks: list[int] = []
    bests: list[float] = []
    for q in qids:
        scores, labels = pairs[q]
        values = [float(v) for v in scores]
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            continue
        best = max(finite)
        order = sorted(
            range(len(values)), key=lambda i: -values[i] if values[i] == values[i] else math.inf
        )
        for rank, i in enumerate(order, start=1):
            if math.isfinite(values[i]):
                xs.append(values[i])
                ys.append(int(bool(labels[i])))
                ranks.append(rank)
                bests.append(best)
    return xs, ys, ranks, bests


def fit_rank_map(
    pairs: Mapping[str, Pairs], qids: Sequence[str], *, gap: bool = False
) -> tuple[tuple[float, ...], tuple[float, ...], dict[str, float]]:
    """A rank-aware logistic map on the score, ``log(rank)`` and (``gap``) the gap to the best.

    The score enters as it is, or as its logit when every score is in [0, 1] (a
    cross-encoder's sigmoid); the gap is the query's best score less this one, in that scale.

    A coefficient of the wrong sign (the probability would rise down a ranked list) drops its
    term and the rest is refitted.

    Returns:
        ``(x, y, terms)``: the map at rank 1 (``LOGISTIC_POINTS`` points over the scores) and
        the coefficients (``Calibration.terms``).
    """
    require("sklearn", extra="eval", package="scikit-learn")
    import numpy as np

    raw, labels, ranks, bests = _rank_rows(pairs, qids)
    if not raw:
        raise ValueError("no scored pairs to fit a calibration on")
    x = np.asarray(raw, dtype=float)
    y = np.asarray(labels, dtype=float)
    logit = bool(x.min() >= 0.0 and x.max() <= 1.0)
    score_term = "logit_score" if logit else "score"

    def feature(v: Any) -> Any:
        if not logit:
            return v
        q = np.clip(v, 1e-6, 1.0 - 1e-6)
        return np.log(q / (1.0 - q))

    f = feature(x)
    columns = {
        score_term: f,
        "log_rank": np.log(np.asarray(ranks, dtype=float)),
        "gap": feature(np.asarray(bests, dtype=float)) - f,
    }
    names = [score_term, "log_rank"] + (["gap"] if gap else [])
    terms: dict[str, float] = {"intercept": float(_logit_of_mean(y))}
    if y.min() != y.max():
        from sklearn.linear_model import LogisticRegression

        while names:
            model = LogisticRegression(C=1e4, max_iter=2000)
            model.fit(np.column_stack([columns[n] for n in names]), y.astype(int))
            coef = dict(zip(names, (float(c) for c in model.coef_[0]), strict=True))
            wrong = [n for n in names if (coef[n] < 0) == (n == score_term) and coef[n] != 0]
            if not wrong:
                terms = {"intercept": float(model.intercept_[0]), **coef}
                break
            names = [n for n in names if n not in wrong]
    px = np.linspace(x.min(), x.max(), LOGISTIC_POINTS) if x.min() < x.max() else x[:1]
    z = terms["intercept"] + terms.get(score_term, 0.0) * feature(px)
    py = np.maximum.accumulate(1.0 / (1.0 + np.exp(-z)))
    return tuple(float(v) for v in px), tuple(float(v) for v in py), terms


def _logit_of_mean(y: Any) -> float:
    m = min(max(float(y.mean()), _EPS), 1.0 - _EPS)
    return math.log(m / (1.0 - m))
