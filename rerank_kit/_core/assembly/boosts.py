"""Metadata boosts: adjustments of the final score read from each passage's metadata.

Two kinds, given as dicts (one, or a list: their boosts add up):

- Recency: ``{"field": "updated_at", "half_life_days": 30, "weight": 0.2}`` adds
  ``weight * 0.5 ** (age_days / half_life_days)``: ``weight`` for a passage dated now, half of
  it 30 days ago. Dates may be ISO strings (``"2026-05-01"``, ``"2026-05-01T12:00:00Z"``),
  ``datetime``/``date`` objects or epoch seconds; naive ones are read as UTC; a future date
  counts as now. ``"now"`` (same forms) fixes the reference time (default: the call's time).
- Field value: ``{"field": "source", "values": {"handbook": 0.1, "forum": -0.05}}`` adds the
  value's boost (a list value, e.g. tags, gets the largest boost among its items); other values
  get none.

Boosts are added to the final score (the fused one with fusion), in that score's own units:
a cross-encoder's score is a sigmoid in [0, 1], a bi-encoder's a cosine in [-1, 1], a fused
z-score a few units either side of 0. A passage whose field is missing or unreadable gets no
boost; the count is logged, never raised.

Example:
    >>> boosts = check_boosts({"field": "source", "values": {"handbook": 0.5}})
    >>> [boost_of(boosts, m, None)[0] for m in ({"source": "handbook"}, {"source": "x"}, {})]
    [0.5, 0.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

__all__ = [
    "Boost",
    "FieldBoost",
    "RecencyBoost",
    "boost_of",
    "check_boosts",
    "read_date",
    "to_jsonable",
]

_DAY = 86_400.0


def read_date(value: Any) -> float | None:
    """Epoch seconds of an ISO string, ``datetime``, ``date`` or number; ``None`` if unreadable.

    Example:
        >>> read_date("1970-01-02"), read_date(86400), read_date("soon")
        (86400.0, 86400.0, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp()
    return None


def _number(spec: Mapping[str, Any], key: str, where: str) -> float:
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RecencyBoost:
    """``weight * 0.5 ** (age_days / half_life_days)`` from the date in ``field``."""

    field: str
    half_life_days: float
    weight: float
    now: float | None = None

    def __call__(self, value: Any, now: float) -> float | None:
        stamp = read_date(value)
        if stamp is None:
            return None
        age = max(0.0, ((self.now if self.now is not None else now) - stamp) / _DAY)
        return self.weight * 0.5 ** (age / self.half_life_days)


@dataclass(frozen=True)
class FieldBoost:
    """The boost of the value in ``field`` (``values``: value -> boost)."""

    field: str
    values: Mapping[str, float]

    def __call__(self, value: Any, now: float) -> float | None:
        items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
        found = []
        for item in items:
            if isinstance(item, (Mapping, list, tuple, set)) or item is None:
                return None
            key = item if isinstance(item, str) else str(item)
            if key in self.values:
                found.append(self.values[key])
        return max(found) if found else 0.0


Boost = RecencyBoost | FieldBoost


def _one(spec: Any, i: int) -> Boost:
    where = f"boosts[{i}]"
    if not isinstance(spec, Mapping):
        raise TypeError(f"{where} must be a dict, got {spec!r}")
    field = spec.get("field")
    if not isinstance(field, str) or not field:
        raise ValueError(f"{where} needs 'field', the metadata key to read")
    if "values" in spec:
        unknown = set(spec) - {"field", "values"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} for a field-value boost")
        values = spec["values"]
        if not isinstance(values, Mapping) or not values:
            raise ValueError(f"{where}: values must be a non-empty dict of value -> boost")
        return FieldBoost(field, {str(k): _number(values, k, where) for k in values})
    if "half_life_days" in spec:
        unknown = set(spec) - {"field", "half_life_days", "weight", "now"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)} for a recency boost")
        half_life = _number(spec, "half_life_days", where)
        if half_life <= 0:
            raise ValueError(f"{where}: half_life_days must be > 0, got {half_life}")
        weight = _number(spec, "weight", where) if "weight" in spec else 0.1
        now = None
        if spec.get("now") is not None:
            now = read_date(spec["now"])
            if now is None:
                raise ValueError(f"{where}: now must be a date, got {spec['now']!r}")
        return RecencyBoost(field, half_life, weight, now)
    raise ValueError(
        f"{where} must be a recency boost ({{'field', 'half_life_days', 'weight'}}) or a "
        f"field-value boost ({{'field', 'values'}}), got {dict(spec)!r}"
    )


def check_boosts(boosts: Any) -> tuple[Boost, ...]:
    """The boosts as checked objects (a dict or a list of dicts; ``None``: none)."""
    if boosts is None:
        return ()
    if isinstance(boosts, (RecencyBoost, FieldBoost)):
        return (boosts,)
    if isinstance(boosts, Mapping):
        boosts = [boosts]
    if isinstance(boosts, (str, bytes)) or not isinstance(boosts, Sequence):
        raise TypeError(f"boosts must be a dict or a list of dicts, got {boosts!r}")
    return tuple(
        b if isinstance(b, (RecencyBoost, FieldBoost)) else _one(b, i) for i, b in enumerate(boosts)
    )


def boost_of(
    boosts: Sequence[Boost], metadata: Mapping[str, Any] | None, now: float | None
) -> tuple[float, int, int]:
    """``(boost, fields missing, fields unreadable)`` for one passage's metadata."""
    when = datetime.now(timezone.utc).timestamp() if now is None else now
    total, missing, bad = 0.0, 0, 0
    for boost in boosts:
        if metadata is None or boost.field not in metadata or metadata[boost.field] is None:
            missing += 1
            continue
        value = boost(metadata[boost.field], when)
        if value is None:
            bad += 1
        else:
            total += value
    return total, missing, bad


def to_jsonable(boosts: Sequence[Boost]) -> list[dict[str, Any]]:
    """The boosts as the dicts they were written as (for config files)."""
    out: list[dict[str, Any]] = []
    for b in boosts:
        if isinstance(b, FieldBoost):
            out.append({"field": b.field, "values": dict(b.values)})
        else:
            spec: dict[str, Any] = {
                "field": b.field,
                "half_life_days": b.half_life_days,
                "weight": b.weight,
            }
            if b.now is not None:
                spec["now"] = b.now
            out.append(spec)
    return out
