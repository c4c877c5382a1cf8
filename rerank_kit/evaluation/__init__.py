"""Does reranking help on my data? Quality and latency of first stages and rerankers.

Load a dataset (BEIR folder or hand-written judgments), pick first stages (BM25, dense, hybrid)
and rerankers, and ``compare`` them: nDCG, MRR, precision, recall and hit rate over graded
judgments, with per-query latency of each stage (``rerank-kit eval``). What to do about the
answer lives beside it, in ``rerank_kit.learning``, and is re-exported here: ``tune`` chooses a
pipeline's depth, fusion and first stage on judged queries (``rerank-kit tune``), ``train``
fine-tunes a cross-encoder or bi-encoder on them (``rerank-kit train``), ``bootstrap_ci`` gives
paired intervals. Nothing here imports a model library until it is used; install the extra with
``pip install "rerank-kit[eval]"`` (``[train]`` for ``train``).

Example:
    >>> from rerank_kit.evaluation import compare, load_dataset
    >>> data = load_dataset("data/beir/cranfield")  # doctest: +SKIP
    >>> result = compare(
    ...     data,
    ...     first_stage=["bm25", "dense", "hybrid"],
    ...     rerankers=["bi-encoder:all-MiniLM-L6-v2"],
    ...     depth=100,
    ...     k=10,
    ... )  # doctest: +SKIP
    >>> print(result.to_table())  # doctest: +SKIP
    >>> result.plot("eval.png")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rerank_kit.evaluation._compare import compare
from rerank_kit.evaluation._dataset import (
    Dataset,
    Document,
    load_beir,
    load_corpus,
    load_dataset,
    load_judgments,
)
from rerank_kit.evaluation._duplicates import (
    deduplicated_ndcg_at_k,
    near_duplicate_share,
    with_near_duplicates,
)
from rerank_kit.evaluation._first_stage import (
    FIRST_STAGES,
    BM25FirstStage,
    DenseFirstStage,
    FirstStage,
    Hit,
    HybridFirstStage,
    build_first_stages,
    reciprocal_rank_fusion,
)
from rerank_kit.evaluation._metrics import (
    LatencyStats,
    Qrels,
    evaluate_ranking,
    evaluate_run,
    hit_rate_at_k,
    metric_names,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from rerank_kit.evaluation._plot import plot_quality_latency
from rerank_kit.evaluation._results import ComparisonResult, SystemResult

if TYPE_CHECKING:  # for type checkers and the API reference; never run
    from rerank_kit.learning import TrainResult, TuneResult, bootstrap_ci, train, tune

# rerank_kit.learning builds on this package (datasets, metrics, first stages; none of its modules
# imports this package's __init__), and no module of this package imports learning when it runs:
# its documented names here are forwarded on first use (the module __getattr__ below), so either
# package can be imported first (tests/test_imports.py: no cycle, this package's modules import
# nothing of learning).
_FROM_LEARNING = frozenset({"TrainResult", "TuneResult", "bootstrap_ci", "train", "tune"})

__all__ = [
    "FIRST_STAGES",
    "BM25FirstStage",
    "ComparisonResult",
    "Dataset",
    "DenseFirstStage",
    "Document",
    "FirstStage",
    "Hit",
    "HybridFirstStage",
    "LatencyStats",
    "Qrels",
    "SystemResult",
    "TrainResult",
    "TuneResult",
    "bootstrap_ci",
    "build_first_stages",
    "compare",
    "deduplicated_ndcg_at_k",
    "evaluate_ranking",
    "evaluate_run",
    "hit_rate_at_k",
    "load_beir",
    "load_corpus",
    "load_dataset",
    "load_judgments",
    "metric_names",
    "mrr_at_k",
    "ndcg_at_k",
    "near_duplicate_share",
    "plot_quality_latency",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank_fusion",
    "train",
    "tune",
    "with_near_duplicates",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_LEARNING:
        import rerank_kit.learning

        return getattr(rerank_kit.learning, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_FROM_LEARNING})
