"""Fitting a calibration: cross-fitted by query, the map kind picked by held-out log-loss.

The candidates (``METHODS``): isotonic regression on the score; isotonic with at least
``MIN_STEP_PAIRS`` pairs per step (thin steps pooled with a neighbour: the top steps of a
plain isotonic fit hold a handful of pairs and say 1.0 on them); logistic regression on the
score; and two rank-aware logistic maps (``Calibration`` kind ``"logistic-rank"``), on the
score and ``log(rank)`` in the query's reranked list, and on those and the gap to the query's
best score. A score's meaning moves from query to query; the rank and the gap carry what the
raw score does not, and with the rank a probability cutoff can also act as a count.

The judged queries are split by query into folds (seeded, as ``tune`` splits them). For each
fold, a map is fitted on the other folds' (score, relevant) pairs only and applied to the
fold's pairs, so every probability reported is held-out and the judgments of a fold never
reach the map that scores it. Which of the two methods a fold uses is chosen by log-loss on
held-out queries inside its training folds (nested), so the choice does not look at the fold
either. The final map is the method with the lower cross-fitted log-loss, fitted on every
judged query. scikit-learn does the fitting (the ``[eval]`` extra); the result is a
``Calibration`` (points only), applied at query time without it.

Example:
    >>> pairs = {f"q{i}": ([0.1 * j for j in range(10)], [j > 6 for j in range(10)])
    ...          for i in range(6)}
    >>> fit = cross_fit(pairs, identity="fake", folds=3)  # doctest: +SKIP
    >>> fit.calibration.probability(0.9) > fit.calibration.probability(0.1)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rerank_kit._core.calibration import Calibration
from rerank_kit._core.errors import require
from rerank_kit.learning._calibrate_maps import (
    LOGISTIC_POINTS,
    MIN_STEP_PAIRS,
    Pairs,
    fit_rank_map,
    pooled_isotonic,
)
from rerank_kit.learning._tune_search import split_queries_into_folds

__all__ = [
    "METHODS",
    "CrossFit",
    "brier",
    "cross_fit",
    "expected_calibration_error",
    "fit_map",
    "log_loss",
    "reliability",
]

#: The calibration methods fitted and compared (the last two are rank-aware).
METHODS = ("isotonic", "isotonic-pooled", "logistic", "logistic-rank", "logistic-rank-gap")
#: ``Calibration.method`` of each (``isotonic-pooled`` is an isotonic points map too).
KINDS = {
    "isotonic": "isotonic",
    "isotonic-pooled": "isotonic",
    "logistic": "logistic",
    "logistic-rank": "logistic-rank",
    "logistic-rank-gap": "logistic-rank",
}

_EPS = 1e-6


def _flat(pairs: Mapping[str, Pairs], qids: Sequence[str]) -> tuple[list[float], list[int]]:
    xs: list[float] = []
    ys: list[int] = []
    for q in qids:
        scores, labels = pairs[q]
        for s, y in zip(scores, labels, strict=True):
            if math.isfinite(s):  # a blank or pruned candidate has no score to map
                xs.append(float(s))
                ys.append(int(bool(y)))
    return xs, ys


def fit_map(
    scores: Sequence[float], labels: Sequence[int], method: str
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The points of a monotone map fitted on ``(score, label)`` pairs.

    Args:
        scores: Finite scores.
        labels: 1 for relevant, 0 for not.
        method: ``"isotonic"`` (scikit-learn ``IsotonicRegression``) or ``"logistic"``
            (``LogisticRegression`` on the score, sampled at ``LOGISTIC_POINTS`` points).

    Returns:
        ``(x, y)``: strictly increasing scores and non-decreasing probabilities.
    """
    require("sklearn", extra="eval", package="scikit-learn")
    import numpy as np

    if method not in ("isotonic", "isotonic-pooled", "logistic"):
        raise ValueError(f"method must be isotonic, isotonic-pooled or logistic, got {method!r}")
    x = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    if x.size == 0:
        raise ValueError("no scored pairs to fit a calibration on")
    if x.min() == x.max() or y.min() == y.max():  # one score, or one class: a constant map
        return (float(x.min()),), (float(y.mean()),)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        iso.fit(x, y)
        px, py = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
    elif method == "isotonic-pooled":
        px, py = pooled_isotonic(x, y, MIN_STEP_PAIRS)
    else:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1e4, max_iter=1000)
        model.fit(x.reshape(-1, 1), y.astype(int))
        px = np.linspace(x.min(), x.max(), LOGISTIC_POINTS)
        py = model.predict_proba(px.reshape(-1, 1))[:, 1]
    py = np.maximum.accumulate(np.clip(py, 0.0, 1.0))  # monotone, in [0, 1]
    keep = np.concatenate([[True], np.diff(px) > 0])  # strictly increasing x
    return tuple(float(v) for v in px[keep]), tuple(float(v) for v in py[keep])


def fit_calibration(
    pairs: Mapping[str, Pairs],
    qids: Sequence[str],
    method: str,
    *,
    identity: str,
    fusion: str | None = None,
) -> Calibration:
    """The ``Calibration`` of one candidate ``method`` (``METHODS``) fitted on ``qids``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if KINDS[method] == "logistic-rank":
        x, y, terms = fit_rank_map(pairs, qids, gap=method == "logistic-rank-gap")
        return Calibration(identity, x, y, fusion=fusion, method="logistic-rank", terms=terms)
    tx, ty = _flat(pairs, qids)
    return Calibration(identity, *fit_map(tx, ty, method), fusion=fusion, method=KINDS[method])


def _apply(
    calibration: Calibration, pairs: Mapping[str, Pairs], qids: Sequence[str]
) -> list[float]:
    """Probabilities of the finite pairs of ``qids`` (in ``_flat``'s order)."""
    out: list[float] = []
    for q in qids:
        scores = pairs[q][0]
        probs = calibration.probabilities(scores)
        out += [p for p, s in zip(probs, scores, strict=True) if math.isfinite(s)]
    return out


def expected_calibration_error(
    probabilities: Sequence[float], labels: Sequence[int], bins: int = 10
) -> float:
    """ECE: the share-weighted gap between mean probability and relevant share, per bin.

    Bins are ``bins`` equal widths of [0, 1].

    Example:
        >>> round(expected_calibration_error([0.2, 0.2, 0.8, 0.8], [0, 1, 1, 1]), 6)
        0.25
    """
    n = len(probabilities)
    if n == 0:
        return math.nan
    return sum(
        row["count"] / n * abs(row["mean_probability"] - row["relevant_share"])
        for row in reliability(probabilities, labels, bins)
    )


def reliability(
    probabilities: Sequence[float], labels: Sequence[int], bins: int = 10
) -> list[dict[str, float]]:
    """Per probability bin (equal widths, non-empty ones): count, mean probability, relevant share."""
    rows: list[list[tuple[float, int]]] = [[] for _ in range(bins)]
    for p, y in zip(probabilities, labels, strict=True):
        rows[min(int(p * bins), bins - 1)].append((p, int(y)))
    out = []
    for i, row in enumerate(rows):
        if row:
            out.append(
                {
                    "low": i / bins,
                    "high": (i + 1) / bins,
                    "count": float(len(row)),
                    "mean_probability": sum(p for p, _ in row) / len(row),
                    "relevant_share": sum(y for _, y in row) / len(row),
                }
            )
    return out


def brier(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    """Mean squared error of the probabilities against the labels."""
    n = len(probabilities)
    return sum((p - y) ** 2 for p, y in zip(probabilities, labels, strict=True)) / n if n else 0.0


def log_loss(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    """Mean negative log-likelihood (probabilities clipped to [1e-6, 1 - 1e-6])."""
    total = 0.0
    for p, y in zip(probabilities, labels, strict=True):
        q = min(max(p, _EPS), 1.0 - _EPS)
        total -= math.log(q) if y else math.log(1.0 - q)
    return total / len(probabilities) if probabilities else 0.0


def _sigmoid(s: float) -> float:
    return 1.0 / (1.0 + math.exp(-s)) if s >= 0 else math.exp(s) / (1.0 + math.exp(s))


def _raw_probabilities(scores: Sequence[float]) -> list[float]:
    """The raw scores read as probabilities.

    As they are when every one is in [0, 1] (a cross-encoder's sigmoid output), else their
    sigmoid (logits, cosines, fused scores).
    """
    finite = [s for s in scores if math.isfinite(s)]
    as_is = all(0.0 <= s <= 1.0 for s in finite)
    return [(s if as_is else _sigmoid(s)) if math.isfinite(s) else 0.0 for s in scores]


def _metrics(probabilities: Sequence[float], labels: Sequence[int]) -> dict[str, float]:
    return {
        "ece": expected_calibration_error(probabilities, labels),
        "brier": brier(probabilities, labels),
        "log_loss": log_loss(probabilities, labels),
    }


@dataclass
class CrossFit:
    """What ``cross_fit`` returns.

    Attributes:
        calibration: The final map (the method with the lower held-out log-loss, fitted on
            every judged query).
        fold_maps: Each fold's map, fitted without that fold (``folds[i]`` -> ``fold_maps[i]``).
        folds: The query ids of each fold.
        held_out: Query id -> (held-out probability of each candidate, its label); ``-inf``
            candidates get 0.0.
        metrics: ``"raw sigmoid"`` (the raw scores read as probabilities: as they are when
            all lie in [0, 1], such as a cross-encoder's sigmoid output, else their sigmoid),
            ``"isotonic"``, ``"logistic"`` and ``"cross-fitted"`` (each fold's nested choice)
            -> held-out ``ece``, ``brier``, ``log_loss``.
        fold_methods: The method each fold chose on its training queries.
        reliability: The cross-fitted probabilities' reliability bins.
    """

    calibration: Calibration
    fold_maps: list[Calibration]
    folds: list[list[str]]
    held_out: dict[str, tuple[list[float], list[int]]]
    metrics: dict[str, dict[str, float]]
    fold_methods: list[str] = field(default_factory=list)
    reliability: list[dict[str, float]] = field(default_factory=list)


def _choose(
    pairs: Mapping[str, Pairs],
    qids: Sequence[str],
    folds: int,
    seed: int,
    candidates: Sequence[str] = METHODS,
) -> str:
    """The method with the lowest log-loss on held-out queries inside ``qids`` (nested)."""
    inner = split_queries_into_folds(qids, max(2, min(folds, len(qids))), seed)
    losses = dict.fromkeys(candidates, 0.0)
    for fold in inner:
        held = set(fold)
        train = [q for q in qids if q not in held]
        tx, _ = _flat(pairs, train)
        hx, hy = _flat(pairs, fold)
        if not tx or not hx:
            continue
        for method in candidates:
            c = fit_calibration(pairs, train, method, identity="inner")
            losses[method] += log_loss(_apply(c, pairs, fold), hy) * len(hx)
    return min(candidates, key=lambda m: losses[m])


def cross_fit(
    pairs: Mapping[str, Pairs],
    *,
    identity: str,
    fusion: str | None = None,
    folds: int = 5,
    seed: int = 0,
    method: str = "auto",
    candidates: Sequence[str] = METHODS,
) -> CrossFit:
    """Fit a calibration on per-query pairs, cross-fitted by query.

    Args:
        pairs: Query id -> (candidate scores, relevant flags).
        identity: The score identity the map is keyed to (``Reranker._score_identity()``).
        fusion: The fusion it is fitted under (``fusion_key``), or ``None``.
        folds: Folds (every query is held out once).
        seed: Seed of the split (and of the nested split).
        method: ``"auto"`` (the lowest held-out log-loss among ``candidates``) or one of
            ``METHODS``.
        candidates: The methods ``"auto"`` chooses among (default: all of ``METHODS``;
            ``("isotonic", "logistic")`` is the choice of rerank-kit before rank-aware maps).

    Raises:
        ValueError: Too few queries, no relevant or no irrelevant pair, a bad method.
    """
    if method not in ("auto", *METHODS):
        raise ValueError(f"method must be auto or one of {', '.join(METHODS)}, got {method!r}")
    candidates = tuple(candidates)
    if not candidates or any(m not in METHODS for m in candidates):
        raise ValueError(f"candidates must be some of {', '.join(METHODS)}, got {candidates!r}")
    if method != "auto":
        candidates = (method,)
    qids = list(pairs)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an int >= 2, got {folds!r}")
    if len(qids) < folds:
        raise ValueError(f"{len(qids)} judged queries are too few for {folds} folds")
    all_x, all_y = _flat(pairs, qids)
    if not any(all_y) or all(all_y):
        raise ValueError(
            "calibration needs judged-relevant and non-relevant candidates; the candidates "
            f"hold {sum(all_y)} relevant of {len(all_y)}"
        )
    splits = split_queries_into_folds(qids, folds, seed)
    held: dict[str, tuple[list[float], list[int]]] = {}
    per_method: dict[str, dict[str, list[float]]] = {m: {} for m in candidates}
    fold_maps: list[Calibration] = []
    fold_methods: list[str] = []
    for i, fold in enumerate(splits):
        train = [q for q in qids if q not in set(fold)]
        maps = {
            m: fit_calibration(pairs, train, m, identity=identity, fusion=fusion)
            for m in candidates
        }
        pick = (
            candidates[0]
            if len(candidates) == 1
            else _choose(pairs, train, folds, seed + 1 + i, candidates)
        )
        fold_maps.append(maps[pick])
        fold_methods.append(pick)
        for q in fold:
            scores, flags = pairs[q]
            ys = [int(bool(v)) for v in flags]
            held[q] = (maps[pick].probabilities(scores), ys)
            for m in candidates:
                per_method[m][q] = maps[m].probabilities(scores)
    order = [q for fold in splits for q in fold]
    labels = [y for q in order for y in held[q][1]]
    raw = [s for q in order for s in pairs[q][0]]
    metrics = {
        "raw sigmoid": _metrics(_raw_probabilities(raw), labels),
        **{m: _metrics([p for q in order for p in per_method[m][q]], labels) for m in candidates},
        "cross-fitted": _metrics([p for q in order for p in held[q][0]], labels),
    }
    final_method = min(candidates, key=lambda m: metrics[m]["log_loss"])
    final = fit_calibration(pairs, qids, final_method, identity=identity, fusion=fusion)
    calibration = Calibration(
        identity,
        final.x,
        final.y,
        fusion=fusion,
        method=final.method,
        terms=final.terms,
        info={
            "fit": final_method,
            "queries": len(qids),
            "pairs": len(all_x),
            "relevant": sum(all_y),
            "folds": folds,
            "seed": seed,
            "held_out": metrics["cross-fitted"],
        },
    )
    probs = [p for q in order for p in held[q][0]]
    return CrossFit(
        calibration=calibration,
        fold_maps=fold_maps,
        folds=splits,
        held_out=held,
        metrics=metrics,
        fold_methods=fold_methods,
        reliability=reliability(probs, labels),
    )


def as_pairs(
    scores: Mapping[str, Sequence[float]], relevant: Mapping[str, Sequence[bool]]
) -> dict[str, Pairs]:
    """Zip per-query scores and flags (checking their lengths)."""
    out: dict[str, Pairs] = {}
    for q, s in scores.items():
        flags = relevant[q]
        if len(flags) != len(s):
            raise ValueError(f"query {q!r}: {len(s)} scores for {len(flags)} labels")
        out[q] = (list(s), list(flags))
    return out


def summary(metrics: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    """Rows of the metrics table (for reports)."""
    return [{"method": name, **values} for name, values in metrics.items()]
