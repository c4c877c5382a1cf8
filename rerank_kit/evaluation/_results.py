"""What ``compare`` returns: per-system quality and latency, as a table, a dict or a plot."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_kit.evaluation._metrics import LatencyStats, metric_names

__all__ = ["ComparisonResult", "SystemResult", "short_name"]


@dataclass(frozen=True)
class SystemResult:
    """Quality and latency of one system: a first stage, optionally followed by a reranker.

    Attributes:
        name: ``"bm25"`` or ``"bm25 >> bi-encoder:all-MiniLM-L6-v2"``.
        first_stage: Name of the first stage.
        reranker: Name of the reranker, ``None`` for the first stage alone.
        metrics: Metric name -> mean over the queries (see ``metric_names``).
        latency: ``"first_stage"``, ``"reranker"`` (``None`` without a reranker) and
            ``"total"`` per-query latency.
        per_query: Query id -> metric name -> value.
        run: Query id -> ranked document ids.
        truncated: Share of the candidates the reranker saw only the start of, because the
            (query, passage) pair was longer than its token limit (``None`` without a reranker;
            0.0 for backends that cannot tell).
        fusion: For a fused variant, its fusion (``{"method": ..., "weight": ...}``): the
            reranker's scores fused with the first stage's, see ``compare(fusion=...)``;
            ``reranker`` then names the reranker and the fusion, e.g.
            ``"bi-encoder:all-MiniLM-L6-v2 (fused zscore w=0.5)"``.

    Example:
        >>> best = max(result.systems, key=lambda s: s.metrics["nDCG@10"])  # doctest: +SKIP
        >>> best.name, best.latency["total"].p50_ms  # doctest: +SKIP
        ('bm25 >> bi-encoder:all-MiniLM-L6-v2', 412.0)
    """

    name: str
    first_stage: str
    reranker: str | None
    metrics: Mapping[str, float]
    latency: Mapping[str, LatencyStats | None]
    per_query: Mapping[str, Mapping[str, float]] = field(repr=False)
    run: Mapping[str, Sequence[str]] = field(repr=False)
    truncated: float | None = None
    fusion: Mapping[str, Any] | None = None

    def to_dict(self, *, per_query: bool = False) -> dict[str, Any]:
        """Plain dict for JSON (``per_query=True`` adds every query's metrics)."""
        out: dict[str, Any] = {
            "name": self.name,
            "first_stage": self.first_stage,
            "reranker": self.reranker,
            "metrics": dict(self.metrics),
            "truncated": self.truncated,
            "fusion": None if self.fusion is None else dict(self.fusion),
            "latency_ms": {
                stage: (stats.to_dict() if stats is not None else None)
                for stage, stats in self.latency.items()
            },
        }
        if per_query:
            out["per_query"] = {qid: dict(m) for qid, m in self.per_query.items()}
        return out


_PATH_IN_SPEC = re.compile(r"(?P<kind>[\w-]+:)(?P<path>(?:/|~|\.{1,2}/)[^\s@>]+)")


def short_name(name: str) -> str:
    """Shorten local model paths in a system name to their last two folders, for display.

    Example:
        >>> short_name("bm25 >> bi-encoder:/opt/models/x/all-MiniLM-L6-v2/model")
        'bm25 >> bi-encoder:.../all-MiniLM-L6-v2/model'
    """

    def shorten(match: re.Match[str]) -> str:
        parts = [p for p in match["path"].rstrip("/").split("/") if p]
        if len(parts) <= 2:
            return match[0]
        return f"{match['kind']}.../{'/'.join(parts[-2:])}"

    return _PATH_IN_SPEC.sub(shorten, name)


@dataclass(frozen=True)
class ComparisonResult:
    """What ``compare`` measured: one ``SystemResult`` per first stage and per reranker.

    Attributes:
        dataset: Dataset name.
        num_queries: Queries evaluated.
        num_documents: Corpus size.
        k: Metric cut-off.
        depth: Candidates taken from each first stage.
        systems: First stages, each followed by its reranked variants.

    Example:
        >>> print(result.to_table())  # doctest: +SKIP
        >>> result["bm25"].metrics["nDCG@10"]  # doctest: +SKIP
        0.352
    """

    dataset: str
    num_queries: int
    num_documents: int
    k: int
    depth: int
    systems: tuple[SystemResult, ...]

    def __getitem__(self, name: str) -> SystemResult:
        """The system called ``name``."""
        for system in self.systems:
            if system.name == name:
                return system
        raise KeyError(f"no system {name!r}; have {[s.name for s in self.systems]}")

    @property
    def metric_names(self) -> list[str]:
        """Metric names in table order."""
        return metric_names(self.k, self.depth)

    def to_dict(self, *, per_query: bool = False) -> dict[str, Any]:
        """Plain dict for JSON.

        Example:
            >>> import json
            >>> json.dumps(result.to_dict(), indent=2)  # doctest: +SKIP
        """
        return {
            "dataset": self.dataset,
            "num_queries": self.num_queries,
            "num_documents": self.num_documents,
            "k": self.k,
            "depth": self.depth,
            "metrics": self.metric_names,
            "systems": [s.to_dict(per_query=per_query) for s in self.systems],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComparisonResult:
        """Rebuild a result from ``to_dict()`` output, e.g. a saved JSON file, to re-plot it.

        Runs are not saved, so ``SystemResult.run`` is empty (and ``per_query`` too unless it
        was saved with ``per_query=True``).

        Example:
            >>> import json
            >>> saved = ComparisonResult.from_dict(json.load(open("eval.json")))  # doctest: +SKIP
            >>> saved.plot("eval.png")  # doctest: +SKIP
        """
        systems = tuple(
            SystemResult(
                name=s["name"],
                first_stage=s["first_stage"],
                reranker=s["reranker"],
                metrics=dict(s["metrics"]),
                latency={
                    stage: (LatencyStats(**stats) if stats is not None else None)
                    for stage, stats in s["latency_ms"].items()
                },
                per_query=s.get("per_query", {}),
                run={},
                truncated=s.get("truncated"),
                fusion=s.get("fusion"),
            )
            for s in data["systems"]
        )
        return cls(
            dataset=data["dataset"],
            num_queries=int(data["num_queries"]),
            num_documents=int(data["num_documents"]),
            k=int(data["k"]),
            depth=int(data["depth"]),
            systems=systems,
        )

    def to_table(self) -> str:
        """A fixed-width text table of every system's metrics and latency.

        Columns: the metrics; ``dnDCG@k``, the change a reranker brings over its own first stage;
        the median first-stage, reranker and total latency per query and the p95 total, in ms;
        ``trunc``, the share of candidates the reranker truncated to fit its token limit.

        Example:
            >>> print(result.to_table())  # doctest: +SKIP
        """
        names = self.metric_names
        ndcg = names[0]
        headers = [
            "system",
            *names,
            f"d{ndcg}",
            "1st p50",
            "rerank p50",
            "total p50",
            "total p95",
            "trunc",
        ]
        first_ndcg = {s.name: s.metrics[ndcg] for s in self.systems if s.reranker is None}
        rows: list[list[str]] = []
        for s in self.systems:
            base = first_ndcg.get(s.first_stage)
            delta = "" if s.reranker is None or base is None else f"{s.metrics[ndcg] - base:+.3f}"
            rerank = s.latency.get("reranker")
            first = s.latency["first_stage"]
            total = s.latency["total"]
            rows.append(
                [
                    short_name(s.name),
                    *(f"{s.metrics[n]:.3f}" for n in names),
                    delta,
                    _ms(first.p50_ms if first else None),
                    _ms(rerank.p50_ms if rerank else None),
                    _ms(total.p50_ms if total else None),
                    _ms(total.p95_ms if total else None),
                    "-" if s.truncated is None else f"{100 * s.truncated:.0f}%",
                ]
            )
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

        def line(cells: list[str]) -> str:
            first_cell = cells[0].ljust(widths[0])
            rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
            return "  ".join([first_cell, *rest]).rstrip()

        title = (
            f"{self.dataset}: {self.num_queries} queries, {self.num_documents} documents; "
            f"each first stage returns its top {self.depth}, rerankers reorder them; "
            f"metrics at k={self.k}; latency in ms per query"
        )
        rule = "-" * len(line(headers))
        return "\n".join([title, line(headers), rule, *(line(r) for r in rows)])

    def plot(self, path: str | Path, *, title: str | None = None) -> Path:
        """Save a PNG of quality (nDCG@k) against median latency; see ``plot_quality_latency``."""
        from rerank_kit.evaluation._plot import plot_quality_latency

        return plot_quality_latency(self, path, title=title)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
