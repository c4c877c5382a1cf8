"""What ``tune`` reports: held-out metrics, paired bootstrap intervals, the folds' choices.

Example:
    >>> lo, hi = bootstrap_ci([0.1, 0.2, 0.0, 0.1])
    >>> 0.0 <= lo <= 0.1 <= hi <= 0.2
    True
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rerank_kit._pipeline import PipelineConfig

__all__ = ["TuneResult", "bootstrap_ci", "describe"]

_MAIN = "nDCG@10"


def bootstrap_ci(
    differences: Sequence[float], *, samples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Paired bootstrap 95% interval of the mean of per-query differences.

    Example:
        >>> lo, hi = bootstrap_ci([0.1, 0.2, 0.0, 0.1])
        >>> 0.0 <= lo <= 0.1 <= hi <= 0.2
        True
    """
    values = list(differences)
    if not values:
        return (math.nan, math.nan)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(samples))
    return (means[int(0.025 * samples)], means[min(samples - 1, int(0.975 * samples))])


def _difference(a: Mapping[str, float], b: Mapping[str, float], seed: int) -> dict[str, Any]:
    diffs = [a[q] - b[q] for q in a]
    lo, hi = bootstrap_ci(diffs, seed=seed)
    return {
        "metric": _MAIN,
        "mean": statistics.fmean(diffs) if diffs else math.nan,
        "ci95": [lo, hi],
        "better": sum(d > 1e-12 for d in diffs),
        "worse": sum(d < -1e-12 for d in diffs),
        "same": sum(abs(d) <= 1e-12 for d in diffs),
    }


def describe(config: PipelineConfig) -> str:
    """One line for a ``PipelineConfig``.

    Example:
        >>> describe(PipelineConfig("none", "hybrid", 50))
        'first stage only (hybrid), top_n 10'
    """
    if config.first_stage_only:
        return f"first stage only ({config.first_stage}), top_n {config.top_n}"
    if config.fusion is None:
        fusion = "no fusion"
    else:
        fusion = f"fusion {config.fusion_method} w={config.fusion:g}"
        if config.fusion_long is not None:
            fusion += f" (w={config.fusion_long:g} above {config.long_query_tokens} tokens)"
    threshold = "" if config.score_threshold is None else f", threshold {config.score_threshold:g}"
    policies = ("min_probability", "expected_share")  # the cutoff's policies
    cut = [f", {name} {getattr(config, name):g}" for name in policies if getattr(config, name)]
    if cut:
        threshold += "".join(cut)
    elif config.calibration is not None:
        threshold += ", calibrated"
    return (
        f"{config.reranker} over {config.first_stage}, depth {config.depth}, {fusion}, "
        f"top_n {config.top_n}{threshold}"
    )


@dataclass
class TuneResult:
    """What ``tune`` measured and chose.

    Attributes:
        config: The settings chosen on all judged queries.
        default: Held-out metrics of the default pipeline (first reranker, documented default
            fusion, largest depth).
        plain: Held-out metrics of plain reranking (first reranker, no fusion, largest depth).
        tuned: Held-out metrics of the tuned pipeline (settings chosen without the query).
        difference: nDCG@10 tuned minus default: ``mean``, ``ci95``, ``better``, ``worse``.
        difference_vs_plain: The same against plain reranking.
        folds: How the queries were split (``folds``, ``seed``, or ``test_size``).
        chosen: Per fold, the settings chosen on the other folds.
        per_query: Query id -> ``{"default", "plain", "tuned", "first_stage"}`` -> nDCG@10.
        first_stage: Held-out metrics of the best single first stage alone (chosen per fold
            on the other folds, like the tuned pipeline).
        difference_vs_first_stage: nDCG@10 tuned minus the best first stage alone.
        fold_choices: Per fold: the winner, the runner-up (the best setting with another
            reranker, or none), their rerankers and training nDCG, and whether the winner
            splits the fusion weight by query length.
        query_split: ``{"folds_picking": n, "folds": F, "final": bool}``: how often folds (and
            the final choice) kept the query-length split.
        rerankers: The rerankers searched (labels), ``"none"`` included.
        calibration: With ``calibrate=True``: the calibration's held-out report
            (``CalibrationResult.to_dict()``); empty otherwise.
    """

    config: PipelineConfig
    default: dict[str, float]
    plain: dict[str, float]
    tuned: dict[str, float]
    difference: dict[str, Any]
    difference_vs_plain: dict[str, Any]
    folds: dict[str, Any]
    chosen: list[str] = field(default_factory=list)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    first_stage: dict[str, float] = field(default_factory=dict)
    difference_vs_first_stage: dict[str, Any] = field(default_factory=dict)
    fold_choices: list[dict[str, Any]] = field(default_factory=list)
    query_split: dict[str, Any] = field(default_factory=dict)
    rerankers: list[str] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``--json``."""
        return {
            "config": self.config.to_dict(),
            "rerankers": self.rerankers,
            "default": self.default,
            "plain": self.plain,
            "first_stage": self.first_stage,
            "tuned": self.tuned,
            "difference": self.difference,
            "difference_vs_plain": self.difference_vs_plain,
            "difference_vs_first_stage": self.difference_vs_first_stage,
            "folds": self.folds,
            "chosen": self.chosen,
            "fold_choices": self.fold_choices,
            "query_split": self.query_split,
            "per_query": self.per_query,
            **({"calibration": self.calibration} if self.calibration else {}),
        }

    def to_table(self) -> str:
        """The held-out comparison as text."""
        names = [n for n in self.tuned if n.startswith(("nDCG", "MRR", "R@"))]
        lines = [
            f"{'held-out (' + str(len(self.per_query)) + ' queries)':30}"
            + "".join(f"{n:>10}" for n in names)
        ]
        for label, metrics in (
            ("default", self.default),
            ("plain", self.plain),
            ("best first stage alone", self.first_stage),
            ("tuned", self.tuned),
        ):
            if metrics:
                lines.append(f"{label:30}" + "".join(f"{metrics[n]:10.3f}" for n in names))
        for label, diff in (
            ("tuned - default", self.difference),
            ("tuned - plain", self.difference_vs_plain),
            ("tuned - best first stage", self.difference_vs_first_stage),
        ):
            if not diff:
                continue
            lo, hi = diff["ci95"]
            lines.append(
                f"{label:30}{diff['mean']:+10.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]  "
                f"better {diff['better']}, worse {diff['worse']}, same {diff['same']}"
            )
        for i, fold in enumerate(self.fold_choices, start=1):
            runner = fold.get("runner_up")
            lines.append(
                f"fold {i}: {fold['winner']} ({fold['winner_train']:.3f} on the other folds)"
                + (
                    ""
                    if runner is None
                    else f"; runner-up {runner} ({fold['runner_up_train']:.3f})"
                )
            )
        if self.query_split:
            qs = self.query_split
            lines.append(
                f"query-length split kept by {qs['folds_picking']} of {qs['folds']} folds"
                f"{' and the final choice' if qs.get('final') else ''}"
            )
        if self.calibration:
            m = self.calibration["metrics"]["cross-fitted"]
            lines.append(
                f"calibration ({self.calibration['calibration']['method']}): held-out ECE "
                f"{m['ece']:.3f}, Brier {m['brier']:.3f}"
            )
        lines.append(f"settings chosen on all queries: {describe(self.config)}")
        return "\n".join(lines)
