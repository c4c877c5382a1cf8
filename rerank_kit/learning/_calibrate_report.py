"""What calibration reports: the adaptive cutoff against fixed ``top_n``, and the plots.

Every number here is computed from held-out (cross-fitted) probabilities: a query's
probabilities come from a map fitted without it.

- ``cutoff_curve``: for each policy (``top_n`` = 3, 5, 10; ``min_probability`` = p and
  ``expected_share`` = s, each with the ``min_n`` floor), passages and tokens passed per query,
  recall of the judged-relevant candidates, precision and mean probability of what was kept;
- ``same_recall``: for each fixed ``top_n``, the tokens a cutoff policy (``min_probability``, or
  ``expected_share``) needs to reach the same recall (linear between its measured points), and
  the difference;
- ``precision_at``: the precision of the passages ``min_probability=p`` keeps, beside their mean
  probability (the number means what it says when the two agree);
- ``probability_for_precision``: the lowest ``min_probability`` whose kept passages reach a
  target precision (``tune --calibrate --target-precision``);
- ``share_for_recall``: the lowest ``expected_share`` whose kept passages reach a target recall
  of the judged-relevant candidates (``tune --calibrate --target-recall``).

Example:
    >>> q = {"a": ([0.9, 0.6, 0.1], [1, 1, 0], [10, 10, 10])}
    >>> [round(r["recall"], 2) for r in cutoff_curve(q, top_ns=(1,), probabilities=(0.5,))]
    [0.5, 1.0]
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PROBABILITIES",
    "DEFAULT_SHARES",
    "DEFAULT_TOP_NS",
    "cutoff_curve",
    "plot_calibration",
    "precision_at",
    "probability_for_precision",
    "same_recall",
    "share_for_recall",
]

#: The fixed counts the cutoff is compared with.
DEFAULT_TOP_NS = (3, 5, 10)
#: The ``min_probability`` values measured.
DEFAULT_PROBABILITIES = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)

#: The ``expected_share`` values measured.
DEFAULT_SHARES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
#: The cutoff policies' settings (a ``cutoff_curve`` row naming none is a fixed ``top_n``).
POLICIES = ("min_probability", "expected_share")

#: One query's candidates in ranked order: held-out probabilities, labels, tokens (words).
Query = tuple[Sequence[float], Sequence[int], Sequence[int]]


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def _policy(queries: Mapping[str, Query], keep: Any, label: str, **settings: Any) -> dict[str, Any]:
    passages, tokens, recall, hits, kept_probs = [], [], [], 0, []
    for probs, labels, lengths in queries.values():
        n = keep(probs)
        passages.append(n)
        tokens.append(sum(lengths[:n]))
        relevant = sum(labels)
        if relevant:  # queries whose candidates hold no relevant passage have no recall
            recall.append(sum(labels[:n]) / relevant)
        hits += sum(labels[:n])
        kept_probs += list(probs[:n])
    total = sum(passages)
    return {
        "policy": label,
        **settings,
        "passages": _mean(passages),
        "tokens": _mean(tokens),
        "recall": _mean(recall),
        "precision": hits / total if total else 0.0,
        "mean_probability": _mean(kept_probs),
    }


def _count_kept(probs: Sequence[float], p: float, min_n: int, top_n: int | None) -> int:
    n = 0
    for prob in probs:
        if prob < p and n >= min_n:
            break  # ranked order: probabilities do not rise further down (monotone map)
        n += 1
    return n if top_n is None else min(n, top_n)


def _count_share(probs: Sequence[float], share: float, min_n: int, top_n: int | None) -> int:
    """How many the engine's ``expected_share`` keeps (its own ``Cutoff``, not a copy)."""
    from rerank_kit._core.calibration import Calibration, Cutoff
    from rerank_kit._core.types import Ranked

    cut = Cutoff(Calibration("report", (0.0,), (0.0,)), min_n=min_n, expected_share=share)
    ranked = [Ranked(i, p, probability=p) for i, p in enumerate(probs)]
    walk, n = cut.walk(ranked), 0
    for r in ranked:
        if not walk.admits(r):
            break  # a prefix: the summed probability only grows
        walk.keep(r)
        n += 1
    return n if top_n is None else min(n, top_n)


def _fixed(row: Mapping[str, Any]) -> bool:
    return not any(name in row for name in POLICIES)


def cutoff_curve(
    queries: Mapping[str, Query],
    *,
    top_ns: Sequence[int] = DEFAULT_TOP_NS,
    probabilities: Sequence[float] = DEFAULT_PROBABILITIES,
    min_n: int = 1,
    top_n: int | None = None,
    expected_shares: Sequence[float] = (),
) -> list[dict[str, Any]]:
    """Each policy's passages and tokens per query, recall, precision and mean probability.

    Args:
        queries: Query id -> (held-out probabilities, labels, tokens), candidates best first.
        top_ns: Fixed counts.
        probabilities: ``min_probability`` values (each with floor ``min_n`` and ceiling
            ``top_n``).
        min_n: The cutoff's floor.
        top_n: The cutoff's ceiling (``None``: every candidate may stay).
        expected_shares: ``expected_share`` values (each with floor ``min_n`` and ceiling
            ``top_n``), e.g. ``DEFAULT_SHARES``.
    """
    rows = [_policy(queries, lambda _p, k=k: k, f"top_n={k}", top_n=k) for k in top_ns]
    for p in probabilities:
        rows.append(
            _policy(
                queries,
                lambda probs, p=p: _count_kept(probs, p, min_n, top_n),
                f"min_probability={p:g}" + (f", min_n={min_n}" if min_n else ""),
                min_probability=p,
                min_n=min_n,
            )
        )
    for share in expected_shares:
        rows.append(
            _policy(
                queries,
                lambda probs, s=share: _count_share(probs, s, min_n, top_n),
                f"expected_share={share:g}" + (f", min_n={min_n}" if min_n else ""),
                expected_share=share,
                min_n=min_n,
            )
        )
    return rows


def _frontier(points: Sequence[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """The (tokens, recall, passages) points no cheaper point matches in recall."""
    out: list[tuple[float, float, float]] = []
    for point in sorted(points):
        if not out or point[1] > out[-1][1]:
            out.append(point)
    return out


def same_recall(
    rows: Sequence[Mapping[str, Any]], policy: str = "min_probability"
) -> list[dict[str, Any]]:
    """For each fixed ``top_n``: the cutoff's tokens at the same recall, and the difference.

    ``policy``: the cutoff's rows compared, ``"min_probability"`` or ``"expected_share"``.

    The cutoff's curve is its cheapest points (no point with fewer tokens has as much
    recall); at a recall, its tokens are read linearly between the last point below it and the
    first point reaching it (or that point's, when none is below). ``None``: no cutoff point
    reaches the recall.

    Example:
        >>> rows = [{"top_n": 3, "recall": 0.5, "tokens": 300.0, "passages": 3.0},
        ...         {"min_probability": 0.5, "recall": 0.4, "tokens": 100.0, "passages": 1.0},
        ...         {"min_probability": 0.2, "recall": 0.6, "tokens": 300.0, "passages": 3.0}]
        >>> same_recall(rows)[0]["cutoff_tokens"]
        200.0
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    cut = _frontier([(r["tokens"], r["recall"], r["passages"]) for r in rows if policy in r])
    out = []
    for row in rows:
        if not _fixed(row):
            continue
        target = row["recall"]
        tokens = passages = None
        for i, (t1, r1, n1) in enumerate(cut):
            if r1 + 1e-12 >= target:
                tokens, passages = t1, n1
                if i > 0:
                    t0, r0, n0 = cut[i - 1]
                    w = (target - r0) / (r1 - r0)
                    tokens, passages = t0 + w * (t1 - t0), n0 + w * (n1 - n0)
                break
        out.append(
            {
                "top_n": row["top_n"],
                "recall": target,
                "top_n_tokens": row["tokens"],
                "cutoff_tokens": tokens,
                "cutoff_passages": passages,
                "token_change": None if tokens is None else tokens / row["tokens"] - 1.0,
            }
        )
    return out


def precision_at(queries: Mapping[str, Query], p: float = 0.5) -> dict[str, float]:
    """Precision and mean probability of the candidates with probability >= ``p``."""
    kept = [
        (prob, y)
        for probs, labels, _ in queries.values()
        for prob, y in zip(probs, labels, strict=False)
        if prob >= p
    ]
    return {
        "min_probability": p,
        "kept": float(len(kept)),
        "precision": _mean([float(y) for _, y in kept]),
        "mean_probability": _mean([prob for prob, _ in kept]),
    }


def probability_for_precision(
    held_out: Mapping[str, tuple[Sequence[float], Sequence[int]]], target: float
) -> float | None:
    """The lowest ``min_probability`` whose kept held-out candidates reach ``target`` precision.

    Example:
        >>> probability_for_precision({"a": ([0.9, 0.7, 0.4, 0.2], [1, 1, 0, 0])}, 0.6)
        0.4
    """
    pairs = sorted(
        (
            (p, y)
            for probs, labels in held_out.values()
            for p, y in zip(probs, labels, strict=False)
        ),
        key=lambda t: -t[0],
    )
    hits, best = 0, None
    for i, (p, y) in enumerate(pairs, start=1):
        hits += y
        if hits / i >= target and (i == len(pairs) or pairs[i][0] < p):
            best = p  # only where the next candidate is lower: ties stay or go together
    return best


#: The ``expected_share`` values ``share_for_recall`` tries (0.05 to 1.0, by 0.05).
SHARE_GRID = tuple(round(0.05 * i, 2) for i in range(1, 21))


def share_for_recall(
    held_out: Mapping[str, tuple[Sequence[float], Sequence[int]]],
    target: float,
    top_n: int | None = None,
) -> float | None:
    """The lowest ``expected_share`` (``SHARE_GRID``) whose held-out recall reaches ``target``.

    Recall is of each query's judged-relevant candidates (queries without one are left out),
    the candidates cut by the engine's ``expected_share`` and the ceiling ``top_n``. ``None``:
    no share reaches it (e.g. under a low ``top_n``).

    Example:
        >>> share_for_recall({"a": ([0.8, 0.1, 0.1], [1, 0, 1])}, 0.5)
        0.05
        >>> share_for_recall({"a": ([0.8, 0.1, 0.1], [1, 0, 1])}, 1.0)
        0.95
    """
    queries = {q: (probs, labels, [0] * len(probs)) for q, (probs, labels) in held_out.items()}
    rows = cutoff_curve(
        queries, top_ns=(), probabilities=(), min_n=0, top_n=top_n, expected_shares=SHARE_GRID
    )
    for row in rows:
        if row["recall"] + 1e-12 >= target:
            return float(row["expected_share"])
    return None


def plot_calibration(result: Mapping[str, Any], path: str | Path) -> Path:
    """A reliability diagram and the recall-versus-tokens curves, side by side (PNG or SVG)."""
    from rerank_kit._core.errors import require

    require("matplotlib", extra="eval", package="matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    left.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    bins = result["reliability"]
    left.plot(
        [b["mean_probability"] for b in bins],
        [b["relevant_share"] for b in bins],
        marker="o",
        label=f"held-out (ECE {result['metrics']['cross-fitted']['ece']:.3f})",
    )
    left.set_xlabel("probability")
    left.set_ylabel("share relevant")
    left.set_title("reliability")
    left.legend(loc="upper left", fontsize=8)
    rows = result["cutoff"]
    fixed = sorted((r["tokens"], r["recall"]) for r in rows if _fixed(r))
    cut = sorted((r["tokens"], r["recall"]) for r in rows if "min_probability" in r)
    share = sorted((r["tokens"], r["recall"]) for r in rows if "expected_share" in r)
    for label, pts in (("fixed top_n", fixed), ("min_probability", cut), ("expected_share", share)):
        if not pts:
            continue
        right.plot([t for t, _ in pts], [r for _, r in pts], marker="o", label=label)
    right.set_xlabel("tokens (words) passed per query")
    right.set_ylabel("recall of judged-relevant candidates")
    right.set_title("context size vs recall")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle(result.get("title", ""), fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
