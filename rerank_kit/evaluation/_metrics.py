"""Ranking metrics over graded relevance judgments, and latency summaries.

Definitions follow ``trec_eval`` (and so ``ir_measures`` / ``pytrec_eval``):

- the gain of a document is its grade in the judgments; grades ``<= 0`` and unjudged documents
  count as not relevant (gain 0);
- nDCG@k: ``sum(gain_i / log2(i + 1))`` over the top ``k`` (``i`` from 1), divided by the same
  sum over the ideal ordering of *all* judged documents (``ndcg_cut`` in trec_eval);
- MRR@k: ``1 / rank`` of the first relevant document in the top ``k``, else 0 (``RR@k``);
- Precision@k: relevant documents in the top ``k`` divided by ``k`` (even if fewer were
  returned); Recall@k: divided by the number of relevant documents; hit rate@k (``Success@k``):
  1 if any relevant document is in the top ``k``;
- a query with no relevant document scores 0 on every metric and still counts in the mean.

Example:
    >>> from rerank_kit.evaluation import ndcg_at_k, recall_at_k
    >>> judged = {"d1": 2, "d2": 1}
    >>> round(ndcg_at_k(["d2", "d3", "d1"], judged, k=10), 4)
    0.7602
    >>> recall_at_k(["d2", "d3"], judged, k=10)
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "LatencyStats",
    "Qrels",
    "evaluate_ranking",
    "evaluate_run",
    "hit_rate_at_k",
    "metric_names",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]

#: Relevance judgments: query id -> document id -> grade (higher is more relevant).
Qrels = Mapping[str, Mapping[str, int]]


def _check(ranking: Sequence[str], k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if isinstance(ranking, str):
        raise TypeError("ranking must be a sequence of document ids, not a single str")
    if len(set(ranking)) != len(ranking):
        seen: set[str] = set()
        for doc_id in ranking:
            if doc_id in seen:
                raise ValueError(f"ranking lists document {doc_id!r} more than once")
            seen.add(doc_id)


def _gain(judgments: Mapping[str, int], doc_id: str) -> float:
    grade = judgments.get(doc_id, 0)
    return float(grade) if grade > 0 else 0.0


def _num_relevant(judgments: Mapping[str, int]) -> int:
    return sum(1 for grade in judgments.values() if grade > 0)


def ndcg_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Normalised discounted cumulative gain of the top ``k`` (graded gains, log2 discount).

    Args:
        ranking: Document ids, best first.
        judgments: Document id -> grade for this query.
        k: Cut-off.

    Returns:
        A value in [0, 1]; 0 when no judged document is relevant.

    Example:
        >>> ndcg_at_k(["a", "b"], {"b": 1}, k=10)
        0.6309297535714575
    """
    _check(ranking, k)
    dcg = sum(_gain(judgments, d) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((float(g) for g in judgments.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Reciprocal rank of the first relevant document in the top ``k`` (0 if none).

    Example:
        >>> mrr_at_k(["a", "b", "c"], {"c": 1}, k=10)
        0.3333333333333333
    """
    _check(ranking, k)
    for i, doc_id in enumerate(ranking[:k]):
        if judgments.get(doc_id, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def precision_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Share of the ``k`` top positions holding a relevant document (missing positions count).

    Example:
        >>> precision_at_k(["a", "b"], {"a": 1}, k=4)
        0.25
    """
    _check(ranking, k)
    return sum(1 for d in ranking[:k] if judgments.get(d, 0) > 0) / k


def recall_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top ``k`` (0 if there are none).

    Example:
        >>> recall_at_k(["a", "b"], {"a": 1, "z": 2}, k=10)
        0.5
    """
    _check(ranking, k)
    total = _num_relevant(judgments)
    if total == 0:
        return 0.0
    return sum(1 for d in ranking[:k] if judgments.get(d, 0) > 0) / total


def hit_rate_at_k(ranking: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """1.0 if any relevant document is in the top ``k``, else 0.0 (``Success@k``).

    Example:
        >>> hit_rate_at_k(["a", "b"], {"b": 3}, k=1)
        0.0
    """
    _check(ranking, k)
    return 1.0 if any(judgments.get(d, 0) > 0 for d in ranking[:k]) else 0.0


def metric_names(k: int, recall_depth: int | None = None) -> list[str]:
    """Names of the metrics ``evaluate_ranking`` returns, in table order.

    Example:
        >>> metric_names(10, 100)
        ['nDCG@10', 'MRR@10', 'P@10', 'R@10', 'Hit@10', 'R@100']
    """
    names = [f"nDCG@{k}", f"MRR@{k}", f"P@{k}", f"R@{k}", f"Hit@{k}"]
    if recall_depth is not None and recall_depth != k:
        names.append(f"R@{recall_depth}")
    return names


def evaluate_ranking(
    ranking: Sequence[str],
    judgments: Mapping[str, int],
    *,
    k: int = 10,
    recall_depth: int | None = None,
) -> dict[str, float]:
    """Every metric of one query's ranking, keyed as in ``metric_names``.

    Args:
        ranking: Document ids, best first.
        judgments: Document id -> grade for this query (may be empty).
        k: Cut-off of nDCG, MRR, precision, recall and hit rate.
        recall_depth: Also report recall at this depth (e.g. the first stage's depth).

    Returns:
        Metric name -> value.

    Example:
        >>> evaluate_ranking(["a", "b"], {"b": 1}, k=1, recall_depth=2)
        {'nDCG@1': 0.0, 'MRR@1': 0.0, 'P@1': 0.0, 'R@1': 0.0, 'Hit@1': 0.0, 'R@2': 1.0}
    """
    out = {
        f"nDCG@{k}": ndcg_at_k(ranking, judgments, k),
        f"MRR@{k}": mrr_at_k(ranking, judgments, k),
        f"P@{k}": precision_at_k(ranking, judgments, k),
        f"R@{k}": recall_at_k(ranking, judgments, k),
        f"Hit@{k}": hit_rate_at_k(ranking, judgments, k),
    }
    if recall_depth is not None and recall_depth != k:
        out[f"R@{recall_depth}"] = recall_at_k(ranking, judgments, recall_depth)
    return out


def evaluate_run(
    run: Mapping[str, Sequence[str]],
    qrels: Qrels,
    *,
    k: int = 10,
    recall_depth: int | None = None,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query metrics of a run over every judged query.

    Queries in ``qrels`` but missing from ``run`` count as empty rankings (score 0), as with
    ``trec_eval -c``; queries in ``run`` without judgments are ignored.

    Args:
        run: Query id -> document ids, best first.
        qrels: Query id -> document id -> grade.
        k: Cut-off.
        recall_depth: Also report recall at this depth.

    Returns:
        ``(means, per_query)``: metric name -> mean, and query id -> metric name -> value.

    Example:
        >>> means, per_query = evaluate_run({"q1": ["a", "b"]}, {"q1": {"b": 1}}, k=10)
        >>> round(means["MRR@10"], 2)
        0.5
    """
    if not qrels:
        raise ValueError("qrels is empty: there is nothing to evaluate")
    per_query = {
        qid: evaluate_ranking(run.get(qid, ()), judged, k=k, recall_depth=recall_depth)
        for qid, judged in qrels.items()
    }
    names = metric_names(k, recall_depth)
    means = {name: sum(m[name] for m in per_query.values()) / len(per_query) for name in names}
    return means, per_query


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of already sorted values."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class LatencyStats:
    """Per-query latency of one stage, in milliseconds.

    Attributes:
        mean_ms: Mean.
        p50_ms: Median.
        p95_ms: 95th percentile (linear interpolation, as ``numpy.percentile``).
        count: Number of timed queries.

    Example:
        >>> LatencyStats.from_seconds([0.001, 0.002, 0.003]).p50_ms
        2.0
    """

    mean_ms: float
    p50_ms: float
    p95_ms: float
    count: int

    @classmethod
    def from_seconds(cls, samples: Sequence[float]) -> LatencyStats:
        """Summarise per-query timings given in seconds.

        Raises:
            ValueError: If ``samples`` is empty.
        """
        if not samples:
            raise ValueError("no latency samples to summarise")
        ms = sorted(s * 1000.0 for s in samples)
        return cls(
            mean_ms=sum(ms) / len(ms),
            p50_ms=_percentile(ms, 0.5),
            p95_ms=_percentile(ms, 0.95),
            count=len(ms),
        )

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict for JSON.

        Example:
            >>> LatencyStats(1.0, 1.0, 1.0, 3).to_dict()["p50_ms"]
            1.0
        """
        return {
            "mean_ms": self.mean_ms,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "count": self.count,
        }
