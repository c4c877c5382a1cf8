"""Scores that mean a probability: a fitted monotone map, applied at query time without numpy.

A ``Calibration`` holds the points of a monotone map from one reranker's score (or one fused
pipeline's score) to the probability that the passage is relevant, as ``rerank-kit calibrate``
(``rerank_kit.learning.calibrate``) fits it on judgments. Applying it is linear interpolation
between the points, clamped at both ends (what ``numpy.interp`` does), in plain Python: the
engine needs no new dependency.

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
        method: ``"isotonic"`` or ``"logistic"`` (how the points were made).
        info: What the fit reports (held-out ECE, Brier, pairs, queries, ...), kept with it.
    """

    score_identity: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    fusion: str | None = None
    method: str = "isotonic"
    info: Mapping[str, Any] = field(default_factory=dict, compare=False)

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

    def probability(self, score: float) -> float:
        """The probability of relevance at ``score`` (linear between points, clamped at ends).

        ``-inf`` (a blank passage) and NaN get 0.0.
        """
        if score != score or score == -math.inf:
            return 0.0
        xs, ys = self.x, self.y
        if score <= xs[0]:
            return ys[0]
        if score >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, score)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 + (y1 - y0) * (score - x0) / (x1 - x0)

    def probabilities(self, scores: Sequence[float]) -> list[float]:
        """``probability`` of each score."""
        return [self.probability(float(s)) for s in scores]

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
        """Plain dict (JSON), as a pipeline config stores it."""
        return {
            "format": CALIBRATION_FORMAT,
            "score_identity": self.score_identity,
            "fusion": self.fusion,
            "method": self.method,
            "x": list(self.x),
            "y": list(self.y),
            "info": dict(self.info),
        }

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
        unknown = set(data) - {"format", "score_identity", "fusion", "method", "x", "y", "info"}
        if unknown:
            raise ValueError(f"unknown calibration keys: {', '.join(sorted(unknown))}")
        for key in ("score_identity", "x", "y"):
            if key not in data:
                raise ValueError(f"calibration needs {key!r}")
        if not isinstance(data["x"], (list, tuple)) or not isinstance(data["y"], (list, tuple)):
            raise ValueError("calibration x and y must be lists of numbers")
        method = data.get("method", "isotonic")
        if method not in ("isotonic", "logistic"):
            raise ValueError(f"calibration method must be isotonic or logistic, got {method!r}")
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
        )


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
