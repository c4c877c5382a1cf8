"""Quality against latency: one point per system, an arrow from each first stage to its rerankers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rerank_kit._core.errors import missing_extra

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_label", "plot_quality_latency", "quality_latency_figure"]


class _System(Protocol):
    """What the plot reads of one system (``rerank_kit.evaluation.SystemResult``)."""

    @property
    def name(self) -> str: ...
    @property
    def first_stage(self) -> str: ...
    @property
    def reranker(self) -> str | None: ...
    @property
    def metrics(self) -> Mapping[str, float]: ...
    @property
    def latency(self) -> Mapping[str, Any]: ...


class _Comparison(Protocol):
    """What the plot reads of ``compare``'s result (``rerank_kit.evaluation.ComparisonResult``).

    A protocol, so that this module does not import the results module (which imports it).
    """

    @property
    def dataset(self) -> str: ...
    @property
    def num_queries(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def metric_names(self) -> Sequence[str]: ...
    @property
    def systems(self) -> Sequence[_System]: ...


_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_MARKERS = ("^", "s", "D", "v", "P", "X")


def plot_quality_latency(
    result: _Comparison, path: str | Path, *, title: str | None = None
) -> Path:
    """Save a PNG of nDCG@k (y) against median total latency per query (x, log scale).

    Colour tells the first stage, marker shape the reranker (a circle is the first stage alone);
    an arrow joins each first stage to its reranked variants, so its rise is what reranking buys
    and its run to the right what it costs. Uses matplotlib's Agg canvas directly: no GUI, no
    global pyplot state.

    Args:
        result: What ``compare`` returned.
        path: Output ``.png`` file (parent folders are created).
        title: Plot title (default: dataset, query count and depth).

    Returns:
        The path written.

    Example:
        >>> plot_quality_latency(result, "eval.png")  # doctest: +SKIP
    """
    fig = quality_latency_figure(result, title=title)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def quality_latency_figure(result: _Comparison, *, title: str | None = None) -> Figure:
    """The figure ``plot_quality_latency`` saves (matplotlib ``Figure`` on an Agg canvas)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter
    except ImportError as exc:
        raise missing_extra("eval", "matplotlib", exc) from exc

    ndcg = result.metric_names[0]
    fig = Figure(figsize=(8.0, 5.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    first_names = list(dict.fromkeys(s.first_stage for s in result.systems))
    reranker_names = list(dict.fromkeys(s.reranker for s in result.systems if s.reranker))
    colors = {name: _COLORS[i % len(_COLORS)] for i, name in enumerate(first_names)}
    markers = {name: _MARKERS[i % len(_MARKERS)] for i, name in enumerate(reranker_names)}
    points: dict[str, tuple[float, float]] = {}
    for system in result.systems:
        total = system.latency["total"]
        x = max(total.p50_ms if total is not None else 0.0, 1e-3)
        y = system.metrics[ndcg]
        points[system.name] = (x, y)
        color = colors[system.first_stage]
        marker = "o" if system.reranker is None else markers[system.reranker]
        ax.scatter(
            [x], [y], s=70, color=color, marker=marker, zorder=3, label=plot_label(system.name)
        )
        if system.reranker is not None and system.first_stage in points:
            ax.annotate(
                "",
                xy=(x, y),
                xytext=points[system.first_stage],
                arrowprops={"arrowstyle": "->", "color": color, "alpha": 0.5, "shrinkB": 6},
            )
    ax.set_xscale("log")
    xs = [p[0] for p in points.values()]
    ys = [p[1] for p in points.values()]
    ax.set_xlim(min(xs) / 2.0, max(xs) * 2.0)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    span = max(ys) - min(ys)
    pad = max(span * 0.15, 0.02)
    # a margin on both sides, so a point at nDCG 1.0 (or 0.0) is drawn whole
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.set_xlabel("median latency per query, ms (first stage + reranker, log scale)")
    ax.set_ylabel(ndcg)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    ax.set_title(
        title
        or f"{result.dataset}: {ndcg} vs latency ({result.num_queries} queries, "
        f"top {result.depth} candidates reranked)",
        fontsize=10,
    )
    return fig


_GENERIC = frozenset({"model", "models", "onnx", "snapshots", "checkpoint", "final"})
_HASH = re.compile(r"^[0-9a-f]{40}$")
_LOCAL = re.compile(r"(?P<kind>[\w-]+:)(?P<path>(?:/|~|\.{1,2}/|[A-Za-z]:\\)[^\s@>]+)")


def plot_label(name: str) -> str:
    """A system's name for a legend: each local model path cut to the model's folder name.

    The last path part that names the model is kept: a generic last folder (``model``,
    ``onnx``, a Hugging Face snapshot hash) gives way to the one above it, and a Hugging Face
    cache folder ``models--org--name`` reads ``org/name``.

    Example:
        >>> plot_label("bm25 >> cross-encoder:/home/me/models/Qwen3-Reranker-0.6B")
        'bm25 >> cross-encoder:Qwen3-Reranker-0.6B'
        >>> plot_label("dense >> onnx:/root/.cache/hub/models--BAAI--bge-reranker-base/snapshots/"
        ...            "0123456789abcdef0123456789abcdef01234567@20 >> bi-encoder:./my/model")
        'dense >> onnx:BAAI/bge-reranker-base@20 >> bi-encoder:my'
        >>> plot_label("bm25 >> flashrank:ms-marco-TinyBERT-L-2-v2")
        'bm25 >> flashrank:ms-marco-TinyBERT-L-2-v2'
    """

    def shorten(match: re.Match[str]) -> str:
        parts = [p for p in re.split(r"[/\\]", match["path"]) if p and p not in (".", "..", "~")]
        while len(parts) > 1 and (parts[-1].lower() in _GENERIC or _HASH.match(parts[-1])):
            parts.pop()
        last = parts[-1] if parts else match["path"]
        if last.startswith("models--"):
            last = last[len("models--") :].replace("--", "/")
        return f"{match['kind']}{last}"

    return _LOCAL.sub(shorten, name)
