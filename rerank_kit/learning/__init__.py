"""Learning from feedback: judgments from what users did, tuned settings, fine-tuned models.

The loop that turns an application's own signals into a better pipeline, proven on held-out
queries at every step:

- ``feedback`` (public as ``rerank_kit.feedback``): judgments from feedback logs (shown,
  clicked, cited, rated), from document metadata, or from questions an LLM writes;
- ``tune``: candidate depth, score fusion, first stage (and a cascade's keep) chosen by
  cross-fitting on judged queries, saved as a ``PipelineConfig``; ``rerank-kit tune``;
- ``calibrate``: a map from a reranker's (or fused pipeline's) score to the probability of
  relevance, cross-fitted by query, for ``min_probability``; ``rerank-kit calibrate``;
- ``train``: a cross-encoder or bi-encoder fine-tuned on the training queries with negatives
  mined from the first stage, compared before and after on test queries; ``rerank-kit train``.

It builds on ``rerank_kit.evaluation`` (datasets, metrics, first stages), which re-exports
``tune``, ``train`` and ``bootstrap_ci`` too. Nothing here imports a model library until it is
used: ``tune`` needs the ``[eval]`` extra, ``train`` the ``[train]`` extra.

Example:
    >>> from rerank_kit.learning import judgments_from_feedback
    >>> judgments, report = judgments_from_feedback(
    ...     [{"query": "reset password", "shown": ["a", "b"], "clicked": ["b"]}]
    ... )
    >>> dict(judgments[0].relevant), report["queries"]
    ({'b': 1, 'a': 0}, 1)
"""

from __future__ import annotations

from rerank_kit.learning import _feedback
from rerank_kit.learning._calibrate import CalibrationResult, calibrate
from rerank_kit.learning._feedback import *  # noqa: F403  (listed once, in _feedback.__all__)
from rerank_kit.learning._train import TrainResult, split_queries, train
from rerank_kit.learning._tune import TuneResult, bootstrap_ci, tune

__all__ = [
    *_feedback.__all__,
    "CalibrationResult",
    "TrainResult",
    "TuneResult",
    "bootstrap_ci",
    "calibrate",
    "split_queries",
    "train",
    "tune",
]
