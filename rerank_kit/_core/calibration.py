"""Scores that mean a probability: a fitted monotone map, applied at query time without numpy.

A ``Calibration`` holds the points of a monotone map from one reranker's score (or one fused
pipeline's score) to the probability that the passage is relevant, as ``rerank-kit calibrate``
(``rerank_kit.learning.calibrate``) fits it on judgments. Applying it is linear interpolation
between the points, clamped at both ends (what ``numpy.interp`` does), in plain Python: the
engine needs no new dependency.

Two kinds of map exist. A points map (``method`` ``"isotonic"`` or ``"logistic"``) reads the
score alone. A rank-aware map (``method`` ``"logistic-rank"``) is a logistic model on the
score, the passage's 1-based rank in its reranked list (``log(rank)``) and optionally the
gap to the query's best score (``terms`` holds its coefficients): a score's meaning moves
from query to query, and the rank carries what the raw score does not. Its ``x``/``y`` are the
map at rank 1, and the score is clamped to ``x``'s range as a points map clamps it. Its
coefficients are checked so that the probability never rises down a ranked list.

A map is only meaningful for the scores it was fitted on, so it names them:
``score_identity`` is the reranker's score identity (``Reranker._score_identity()``: its
``name`` plus the batch rule, e.g. ``"onnx:m [scores=int8-per-token/1]"``), and ``fusion`` the
fusion it was fitted under (``fusion_key``; ``None``: the reranker's own score). A map fitted
on one backend, precision or fusion is refused on another, with a message naming both.

The adaptive cutoff (``Cutoff``) keeps passages by probability rather than by count:
``min_probability`` drops passages whose probability is below it; ``expected_share`` (the
"expected relevant" policy) keeps the shortest prefix of the ranking whose summed probability
reaches that share of all the candidates' summed probability (the expected number of relevant
candidates); with both, a passage stays only if both keep it (the stricter wins). ``min_n`` keeps
at least that many whatever their probability (a floor), and ``top_n`` stays the ceiling.

Example:
    >>> c = Calibration("fake", (0.0, 1.0), (0.1, 0.9))
    >>> c.probability(0.5), c.probability(-3.0), c.probability(7.0)
    (0.5, 0.1, 0.9)
    >>> Calibration.from_dict(c.to_dict()) == c
    True
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CALIBRATION_FORMAT",
    "METHOD_KINDS",
    "CUTOFF_SETTINGS",
    "Calibration",
    "Cutoff",
    "CutoffWalk",
    "fusion_key",
    "load_calibration",
]

#: The ``format`` a calibration's dict carries.
CALIBRATION_FORMAT = "rerank-kit-calibration/1"
#: The adaptive cutoff's settings, spelled the same everywhere (engine, adapters, config, CLI).
CUTOFF_SETTINGS = ("calibration", "min_probability", "min_n", "expected_share")
#: The kinds of map (``Calibration.method``): two points maps and the rank-aware one.
METHOD_KINDS = ("isotonic", "logistic", "logistic-rank")
#: The terms a rank-aware map may hold: its intercept, the score (as it is, or its logit when
#: the scores are probabilities such as a cross-encoder's sigmoid), ``log(rank)`` and the gap
#: to the query's best score (in the same scale as the score term).
RANK_TERMS = ("intercept", "score", "logit_score", "log_rank", "gap")
_LOGIT_EPS = 1e-6
#: Most points a map may hold (a fitted isotonic map has at most one per distinct score).
MAX_POINTS = 100_000


def fusion_key(fusion: Any) -> str | None:
    """A fusion's settings as the text a calibration is keyed by (``None``: no fusion).

    Example:
        >>> from rerank_kit import Fusion
        >>> fusion_key(Fusion(0.7)), fusion_key(None)
        ('zscore w=0.7', None)
        >>> fusion_key(Fusion(0.8, long_weight=0.2, long_query_tokens=12))
        'zscore w=0.8, w=0.2 above 12 tokens'
    """
    if fusion is None:
        return None
    key = f"{fusion.method} w={float(fusion.weight):g}"
    if getattr(fusion, "long_weight", None) is not None:
        key += f", w={float(fusion.long_weight):g} above {fusion.long_query_tokens} tokens"
    return key


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class Calibration:
    """A monotone map from a score to the probability of relevance, and what it was fitted on.

    Attributes:
        score_identity: The scores the map was fitted on (``Reranker._score_identity()``).
        x: Scores, increasing.
        y: The probability at each score, in [0, 1], never decreasing.
        fusion: The fusion it was fitted under (``fusion_key``), or ``None``: raw scores.
        method: ``"isotonic"`` or ``"logistic"`` (how the points were made), or
            ``"logistic-rank"`` (a rank-aware map: ``terms`` holds it).
        info: What the fit reports (held-out ECE, Brier, pairs, queries, ...), kept with it.
        terms: A rank-aware map's coefficients (``RANK_TERMS``); ``None`` for a points map.
    """

    score_identity: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    fusion: str | None = None
    method: str = "isotonic"
    info: Mapping[str, Any] = field(default_factory=dict, compare=False)
    terms: Mapping[str, float] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.score_identity, str) or not self.score_identity.strip():
            raise ValueError("calibration score_identity must be a non-empty string")
        if self.fusion is not None and not isinstance(self.fusion, str):
            raise ValueError(f"calibration fusion must be a string or None, got {self.fusion!r}")
        if isinstance(self.x, (str, bytes)) or isinstance(self.y, (str, bytes)):
            raise ValueError("calibration x and y must be lists of numbers")
        xs = tuple(_number(v, "calibration x") for v in self.x)
        ys = tuple(_number(v, "calibration y") for v in self.y)
        if not xs or len(xs) != len(ys):
            raise ValueError(
                f"calibration needs as many x as y points, at least one (got {len(xs)} and "
                f"{len(ys)})"
            )
        if len(xs) > MAX_POINTS:
            raise ValueError(f"calibration has {len(xs)} points, more than {MAX_POINTS}")
        if any(b <= a for a, b in itertools.pairwise(xs)):
            raise ValueError("calibration x must be strictly increasing")
        if any(not 0.0 <= v <= 1.0 for v in ys) or any(b < a for a, b in itertools.pairwise(ys)):
            raise ValueError("calibration y must be probabilities in [0, 1], never decreasing")
        object.__setattr__(self, "x", xs)
        object.__setattr__(self, "y", ys)
        object.__setattr__(self, "info", dict(self.info))
        if self.method not in METHOD_KINDS:
            raise ValueError(
                f"calibration method must be one of {', '.join(METHOD_KINDS)}, got {self.method!r}"
            )
        object.__setattr__(self, "terms", _check_terms(self.method, self.terms))

    @property
    def uses_rank(self) -> bool:
        """Whether the map reads each passage's rank (a ``"logistic-rank"`` map)."""
        return self.terms is not None

    def probability(self, score: float, rank: int = 1, best: float | None = None) -> float:
        """The probability of relevance at ``score`` (linear between points, clamped at ends).

        ``-inf`` (a blank passage) and NaN get 0.0.

        Args:
            score: The (fused) score.
            rank: A rank-aware map: the passage's 1-based rank in its reranked list.
            best: A rank-aware map with a gap term: the query's best score (``None``: this
                score, a gap of 0).
        """
        if score != score or score == -math.inf:
            return 0.0
        if self.terms is not None:
            return self._rank_probability(score, rank, score if best is None else best)
        xs, ys = self.x, self.y
        if score <= xs[0]:
            return ys[0]
        if score >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, score)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 + (y1 - y0) * (score - x0) / (x1 - x0)

    def _feature(self, score: float) -> float:
        score = min(max(score, self.x[0]), self.x[-1])
        if self.terms is not None and "logit_score" in self.terms:
            q = min(max(score, _LOGIT_EPS), 1.0 - _LOGIT_EPS)
            return math.log(q / (1.0 - q))
        return score

    def _rank_probability(self, score: float, rank: int, best: float) -> float:
        terms = self.terms or {}
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be an int >= 1, got {rank!r}")
        f = self._feature(score)
        z = terms.get("intercept", 0.0)
        z += (terms.get("score", 0.0) + terms.get("logit_score", 0.0)) * f
        z += terms.get("log_rank", 0.0) * math.log(rank)
        if terms.get("gap"):
            best_f = self._feature(best) if math.isfinite(best) else f
            z += terms["gap"] * max(best_f - f, 0.0)
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def probabilities(self, scores: Sequence[float]) -> list[float]:
        """``probability`` of each score of one query's candidates.

        A rank-aware map ranks them by score (highest first, ties in the given order: the
        engine's order) and measures the gap from the best finite one.
        """
        values = [float(s) for s in scores]
        if self.terms is None:
            return [self.probability(v) for v in values]
        finite = [v for v in values if math.isfinite(v)]
        best = max(finite) if finite else None
        order = sorted(
            range(len(values)), key=lambda i: -values[i] if values[i] == values[i] else math.inf
        )
        out = [0.0] * len(values)
        for rank, i in enumerate(order, start=1):
            out[i] = self.probability(values[i], rank, best)
        return out

    def check(self, identity: str, fusion: str | None, *, where: str = "this reranker") -> None:
        """Refuse scores this map was not fitted on (another model, backend, rule or fusion).

        Raises:
            ValueError: Naming both score identities (or both fusions).
        """
        if identity != self.score_identity:
            raise ValueError(
                f"this calibration was fitted on the scores of {self.score_identity!r}, but "
                f"{where} gives the scores of {identity!r} (another model, backend, precision "
                "or batch rule: its scores mean something else); calibrate it with "
                "`rerank-kit calibrate`"
            )
        if fusion != self.fusion:
            fitted = "the reranker's own score" if self.fusion is None else f"fusion {self.fusion}"
            given = "the reranker's own score" if fusion is None else f"fusion {fusion}"
            raise ValueError(
                f"this calibration was fitted on {fitted}, but the call ranks by {given}; "
                "calibrate the pipeline with the same fusion settings"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON), as a pipeline config stores it (``terms`` only when rank-aware)."""
        out = {
            "format": CALIBRATION_FORMAT,
            "score_identity": self.score_identity,
            "fusion": self.fusion,
            "method": self.method,
            "x": list(self.x),
            "y": list(self.y),
            "info": dict(self.info),
        }
        if self.terms is not None:
            out["terms"] = dict(self.terms)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Read ``to_dict`` output (``ValueError`` naming what is wrong)."""
        if isinstance(data, Calibration):
            return data
        if not isinstance(data, Mapping):
            raise ValueError(f"a calibration is a dict, got {type(data).__name__}")
        fmt = data.get("format", CALIBRATION_FORMAT)
        if fmt != CALIBRATION_FORMAT:
            raise ValueError(f"calibration format {fmt!r} is not {CALIBRATION_FORMAT!r}")
        known = {"format", "score_identity", "fusion", "method", "x", "y", "info", "terms"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown calibration keys: {', '.join(sorted(unknown))}")
        for key in ("score_identity", "x", "y"):
            if key not in data:
                raise ValueError(f"calibration needs {key!r}")
        if not isinstance(data["x"], (list, tuple)) or not isinstance(data["y"], (list, tuple)):
            raise ValueError("calibration x and y must be lists of numbers")
        method = data.get("method", "isotonic")
        if method not in METHOD_KINDS:
            raise ValueError(
                f"calibration method must be one of {', '.join(METHOD_KINDS)}, got {method!r}"
            )
        terms = data.get("terms")
        if terms is not None and not isinstance(terms, Mapping):
            raise ValueError("calibration terms must be a dict of numbers")
        info = data.get("info") or {}
        if not isinstance(info, Mapping):
            raise ValueError("calibration info must be a dict")
        return cls(
            score_identity=data["score_identity"],
            x=tuple(data["x"]),
            y=tuple(data["y"]),
            fusion=data.get("fusion"),
            method=method,
            info=info,
            terms=terms,
        )


def _check_terms(method: str, terms: Any) -> dict[str, float] | None:
    """A rank-aware map's coefficients, checked: known names, finite, monotone signs."""
    if method != "logistic-rank":
        if terms is not None:
            raise ValueError(f"a {method} calibration holds points only, not terms")
        return None
    if not isinstance(terms, Mapping) or not terms:
        raise ValueError("a logistic-rank calibration needs terms (its coefficients)")
    unknown = set(terms) - set(RANK_TERMS)
    if unknown:
        raise ValueError(
            f"unknown calibration terms: {', '.join(sorted(map(str, unknown)))} (known: "
            f"{', '.join(RANK_TERMS)})"
        )
    out = {str(k): _number(v, f"calibration term {k!r}") for k, v in terms.items()}
    if "score" in out and "logit_score" in out:
        raise ValueError("calibration terms hold score or logit_score, not both")
    # the probability must never rise down a ranked list (the cutoff walks it in order)
    if out.get("score", 0.0) < 0 or out.get("logit_score", 0.0) < 0:
        raise ValueError("calibration terms: the score's coefficient must be >= 0")
    if out.get("log_rank", 0.0) > 0 or out.get("gap", 0.0) > 0:
        raise ValueError("calibration terms: log_rank's and gap's coefficients must be <= 0")
    return out


def load_calibration(value: Any) -> Calibration | None:
    """A ``Calibration`` from itself, its dict or a JSON file; ``None`` stays ``None``.

    The file holds a calibration's dict, or a pipeline config holding one.

    Raises:
        ValueError: The value or file holds no valid calibration.
    """
    if value is None or isinstance(value, Calibration):
        return value
    if isinstance(value, Mapping):
        return Calibration.from_dict(value)
    import os

    if isinstance(value, (str, os.PathLike)):
        import json
        from pathlib import Path

        path = Path(value)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read a calibration from {path}: {exc}") from exc
        if isinstance(data, Mapping) and "reranker" in data:  # a pipeline config
            data = data.get("calibration")
            if data is None:
                raise ValueError(f"{path} is a pipeline config without a calibration")
        try:
            return Calibration.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    raise TypeError(
        "calibration must be a Calibration, its dict, a JSON file name or None, got "
        f"{type(value).__name__}"
    )


def _probability_setting(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"min_probability must be a number in [0, 1] or None, got {value!r}")
    return float(value)


def _share_setting(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"expected_share must be a number in (0, 1] or None, got {value!r}")
    return float(value)


#: Relative slack on the expected share's sum (a sum in another order may differ in the last bit).
_SLACK = 1e-9


@dataclass(frozen=True)
class Cutoff:
    """The adaptive cutoff: keep passages by probability, with a floor (``top_n``: ceiling).

    Two policies, which compose (a passage stays only if each one given keeps it):
    ``min_probability`` keeps the passages at least that likely relevant; ``expected_share``
    keeps the shortest prefix of the ranking whose summed probability reaches that share of the
    summed probability of all the candidates (``CutoffWalk`` walks it). ``min_n`` keeps the
    first ``min_n`` passages whatever either policy says.

    Attributes:
        calibration: The map that gives each passage its probability.
        min_probability: Keep passages whose probability is at least this (``None``: any).
        min_n: Keep at least this many (the best ones), whatever their probability.
        expected_share: Keep passages until the kept ones' summed probability reaches this
            share, in (0, 1], of all the candidates' (``None``: off).

    Example:
        >>> cut = Cutoff.build(Calibration("fake", (0.0, 1.0), (0.0, 1.0)), 0.5, 1)
        >>> [cut.admits(p, kept) for p, kept in ((0.9, 0), (0.2, 1), (0.2, 0))]
        [True, False, True]
        >>> share = Cutoff.build(Calibration("f", (0.0, 1.0), (0.0, 1.0)), None, None, 0.8)
        >>> [share.admits(0.3, 1, mass=m, total=1.0) for m in (0.7, 0.8)]
        [True, False]
    """

    calibration: Calibration
    min_probability: float | None = None
    min_n: int = 0
    expected_share: float | None = None

    @classmethod
    def build(
        cls, calibration: Any, min_probability: Any, min_n: Any, expected_share: Any = None
    ) -> Cutoff | None:
        """Check the settings; ``None`` without a calibration.

        Raises:
            ValueError: ``min_probability``, ``expected_share`` or ``min_n`` without a
                calibration, ``min_n`` without a policy, a value out of range.
        """
        cal = load_calibration(calibration)
        p = _probability_setting(min_probability)
        share = _share_setting(expected_share)
        if min_n is not None and (isinstance(min_n, bool) or not isinstance(min_n, int)):
            raise ValueError(f"min_n must be an int >= 0 or None, got {min_n!r}")
        if min_n is not None and min_n < 0:
            raise ValueError(f"min_n must be an int >= 0 or None, got {min_n!r}")
        if min_n is not None and p is None and share is None:
            raise ValueError(
                "min_n is the floor of min_probability or expected_share; give min_probability "
                "too (or expected_share)"
            )
        if cal is None:
            for name, value in (("min_probability", p), ("expected_share", share)):
                if value is not None:
                    raise ValueError(
                        f"{name} needs a calibration (the map from this reranker's scores "
                        "to probabilities): pass calibration=, or fit one with `rerank-kit "
                        "calibrate`"
                    )
            return None
        return cls(cal, p, min_n or 0, share)

    def admits(
        self, probability: float | None, kept: int, *, mass: float = 0.0, total: float = 0.0
    ) -> bool:
        """Whether a passage of this probability stays, when ``kept`` are kept already.

        ``mass``: the kept passages' summed probability; ``total``: all the candidates' (both
        read by ``expected_share`` only).
        """
        if kept < self.min_n:
            return True
        if self.min_probability is not None and not (
            probability is not None and probability >= self.min_probability
        ):
            return False
        if self.expected_share is not None:
            return mass < self.expected_share * total * (1.0 - _SLACK)
        return True

    def walk(self, candidates: Sequence[Any]) -> CutoffWalk:
        """A ``CutoffWalk`` over one call's candidates (``Ranked`` with their probability)."""
        return CutoffWalk(self, candidates)


class CutoffWalk:
    """One call's walk through the cutoff: how many were kept, and their summed probability.

    ``total`` is the summed probability of every candidate of the call (blank ones count 0).
    A kept passage adds its probability and that of the near-duplicates it absorbed
    (``Ranked.duplicates``, with ``dedupe``): they say the same, so they count as passed.

    Example:
        >>> from rerank_kit import Ranked
        >>> cut = Cutoff(Calibration("f", (0.0, 1.0), (0.0, 1.0)), expected_share=0.6)
        >>> ranked = [Ranked(i, p, probability=p) for i, p in enumerate((0.5, 0.3, 0.2))]
        >>> walk = cut.walk(ranked)
        >>> [r.index for r in ranked if walk.admits(r) and walk.keep(r) is None]
        [0, 1]
    """

    def __init__(self, cutoff: Cutoff, candidates: Sequence[Any]) -> None:
        self.cutoff = cutoff
        self._probability = {c.index: c.probability or 0.0 for c in candidates}
        self.total = math.fsum(self._probability.values())
        self.kept = 0
        self.mass = 0.0

    def admits(self, candidate: Any) -> bool:
        """Whether ``candidate`` (next in the walk) stays, by the cutoff."""
        return self.cutoff.admits(
            candidate.probability, self.kept, mass=self.mass, total=self.total
        )

    def keep(self, candidate: Any) -> None:
        """Count ``candidate`` as kept (after the other limits, e.g. the token budget)."""
        self.kept += 1
        self.mass += self._probability.get(candidate.index, 0.0) + math.fsum(
            self._probability.get(i, 0.0) for i in getattr(candidate, "duplicates", ())
        )
