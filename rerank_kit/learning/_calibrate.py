"""``calibrate``: what a reranker's score means, as a probability, fitted on judgments.

For each judged query the first stage retrieves ``depth`` candidates, the reranker scores them
(fused with the first stage's scores when ``fusion`` is given: a fused pipeline is calibrated
on its fused score), and each candidate is labelled relevant when its judgment grade is above
0 (unjudged: not relevant). ``cross_fit`` then fits the map by query folds, so every reported
figure is held-out. The result holds the final ``Calibration`` (to save in a
``PipelineConfig`` and apply at query time), held-out ECE, Brier and log-loss beside the raw
sigmoid of the scores, a reliability table, and the adaptive cutoff (``min_probability`` with
the ``min_n`` floor) against fixed ``top_n`` on passages and tokens per query and recall.

Example:
    >>> from rerank_kit.learning import calibrate  # doctest: +SKIP
    >>> result = calibrate(load_dataset("data/beir/cisi"), "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")  # doctest: +SKIP
    >>> print(result.to_table())  # doctest: +SKIP
    >>> PipelineConfig("onnx:...", calibration=result.calibration, min_probability=0.3)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rerank_kit._core.calibration import Calibration, fusion_key
from rerank_kit._core.fusion import Fusion, fuse, to_fusion
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache, make_score_cache
from rerank_kit.evaluation._dataset import Dataset
from rerank_kit.learning._calibrate_fit import CrossFit, cross_fit
from rerank_kit.learning._calibrate_report import (
    DEFAULT_PROBABILITIES,
    DEFAULT_SHARES,
    DEFAULT_TOP_NS,
    cutoff_curve,
    plot_calibration,
    precision_at,
    same_recall,
)

__all__ = ["CalibrationResult", "calibrate", "calibrate_scored", "calibrate_setting"]


@dataclass
class CalibrationResult:
    """What ``calibrate`` returns (``to_dict`` for JSON, ``to_table`` for a terminal).

    Attributes:
        calibration: The final map, keyed to the reranker's score identity (and fusion).
        fit: The cross-fitting (fold maps, held-out probabilities, metrics).
        cutoff: The adaptive cutoff against fixed ``top_n`` (``cutoff_curve`` rows).
        same_recall: Per fixed ``top_n``, the cutoff's tokens at the same recall.
        precision: ``precision_at`` 0.5: the kept passages' precision and mean probability.
        settings: What was calibrated (dataset, reranker, first stage, depth, fusion).
        subsets: The same cutoff figures on subsets of the queries (e.g. at most 3
            relevant candidates), keyed by name.
        same_recall_share: As ``same_recall``, for the ``expected_share`` policy.
        scored: The scores it was fitted on: query -> (scores, labels, tokens), best first
            (not in ``to_dict``; a benchmark saves them to refit without rescoring).
    """

    calibration: Calibration
    fit: CrossFit
    cutoff: list[dict[str, Any]]
    same_recall: list[dict[str, Any]]
    precision: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    subsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    same_recall_share: list[dict[str, Any]] = field(default_factory=list)
    scored: dict[str, tuple[list[float], list[int], list[int]]] = field(
        default_factory=dict, repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON)."""
        return {
            "settings": self.settings,
            "calibration": self.calibration.to_dict(),
            "metrics": self.fit.metrics,
            "fold_methods": self.fit.fold_methods,
            "reliability": self.fit.reliability,
            "precision_at_0.5": self.precision,
            "cutoff": self.cutoff,
            "same_recall": self.same_recall,
            "subsets": self.subsets,
            "same_recall_expected_share": self.same_recall_share,
        }

    def to_table(self) -> str:
        """The held-out calibration metrics and the cutoff table, as text."""
        lines = [f"{'held-out':<18}{'ECE':>8}{'Brier':>8}{'logloss':>9}"]
        for name, m in self.fit.metrics.items():
            lines.append(f"{name:<18}{m['ece']:>8.3f}{m['brier']:>8.3f}{m['log_loss']:>9.3f}")
        c = self.calibration
        shape = (
            f"{len(c.x)} points"
            if c.terms is None
            else ", ".join(f"{k} {v:+.3g}" for k, v in c.terms.items())
        )
        lines.append(
            f"final map: {c.info.get('fit', c.method)}, {shape} "
            f"(folds chose {', '.join(self.fit.fold_methods)})"
        )
        p = self.precision
        lines.append(
            f"min_probability=0.5 keeps {p['kept']:.0f} passages: precision "
            f"{p['precision']:.3f}, mean probability {p['mean_probability']:.3f}"
        )
        lines.append(f"{'policy':<34}{'passages':>9}{'tokens':>8}{'recall':>8}{'prec.':>7}")
        for r in self.cutoff:
            lines.append(
                f"{r['policy']:<34}{r['passages']:>9.2f}{r['tokens']:>8.0f}"
                f"{r['recall']:>8.3f}{r['precision']:>7.3f}"
            )
        for name, rows in (("cutoff", self.same_recall), ("share", self.same_recall_share)):
            for r in rows:
                if r["cutoff_tokens"] is None:
                    lines.append(f"top_n={r['top_n']}: no {name} reaches recall {r['recall']:.3f}")
                else:
                    lines.append(
                        f"at top_n={r['top_n']}'s recall {r['recall']:.3f}: {name} "
                        f"{r['cutoff_tokens']:.0f} tokens vs {r['top_n_tokens']:.0f} "
                        f"({r['token_change']:+.1%})"
                    )
        return "\n".join(lines)

    def plot(self, path: str | Path, title: str = "") -> Path:
        """Reliability diagram and recall-versus-tokens curves (PNG, or SVG by extension)."""
        data = {**self.to_dict(), "title": title or self.settings.get("system", "")}
        return plot_calibration(data, path)


def _relevant_subset(queries: dict[str, Any], most: int) -> dict[str, Any]:
    return {q: v for q, v in queries.items() if 0 < sum(v[1]) <= most}


def calibrate_scored(
    scored: dict[str, tuple[list[float], list[int], list[int]]],
    *,
    identity: str,
    fusion: str | None = None,
    folds: int = 5,
    seed: int = 0,
    method: str = "auto",
    top_ns: Sequence[int] = DEFAULT_TOP_NS,
    probabilities: Sequence[float] = DEFAULT_PROBABILITIES,
    min_n: int = 1,
    settings: dict[str, Any] | None = None,
    expected_shares: Sequence[float] = DEFAULT_SHARES,
    candidates: Sequence[str] | None = None,
) -> CalibrationResult:
    """``calibrate`` on scores already in hand: query -> (scores, labels, tokens), best first.

    Args:
        scored: Each query's candidates in ranked order: their (fused) scores, 1/0 labels,
            and lengths in words.
        identity: The reranker's score identity.
        fusion: Its ``fusion_key`` (``None``: the reranker's own score).
        folds: Cross-fitting folds.
        seed: Their seed.
        method: ``"auto"`` or one map kind (``METHODS``).
        top_ns: Fixed counts to compare with.
        probabilities: ``min_probability`` values.
        min_n: The cutoff's floor.
        settings: Kept in the report.
        expected_shares: ``expected_share`` values (the "expected relevant" policy).
        candidates: The map kinds ``"auto"`` chooses among (``None``: every one of
            ``METHODS``).
    """
    pairs = {q: (s, [bool(v) for v in y]) for q, (s, y, _) in scored.items()}
    fit = cross_fit(
        pairs,
        identity=identity,
        fusion=fusion,
        folds=folds,
        seed=seed,
        method=method,
        **({} if candidates is None else {"candidates": tuple(candidates)}),
    )
    queries = {q: (fit.held_out[q][0], fit.held_out[q][1], scored[q][2]) for q in scored}

    def curve(queries: dict[str, Any]) -> list[dict[str, Any]]:
        return cutoff_curve(
            queries,
            top_ns=top_ns,
            probabilities=probabilities,
            min_n=min_n,
            expected_shares=expected_shares,
        )

    rows = curve(queries)
    subsets = {}
    hard = _relevant_subset(queries, 3)
    if hard:
        sub = curve(hard)
        subsets["at most 3 relevant candidates"] = {
            "queries": len(hard),
            "cutoff": sub,
            "same_recall": same_recall(sub),
            "same_recall_expected_share": same_recall(sub, "expected_share"),
        }
    return CalibrationResult(
        calibration=fit.calibration,
        fit=fit,
        cutoff=rows,
        same_recall=same_recall(rows),
        precision=precision_at(queries, 0.5),
        settings=dict(settings or {}),
        subsets=subsets,
        same_recall_share=same_recall(rows, "expected_share"),
        scored=dict(scored),
    )


def _model(item: str | Reranker, cache: ScoreCache | None) -> Reranker:
    from rerank_kit._registry import load_reranker
    from rerank_kit.evaluation._compare import attach_score_cache

    if isinstance(item, Reranker):
        return item
    if not isinstance(item, str):
        raise TypeError(f"reranker must be a spec or a Reranker, got {type(item).__name__}")
    model = load_reranker(item)
    attach_score_cache(model, cache)
    return model


def calibrate(
    dataset: Dataset,
    reranker: str | Reranker,
    *,
    first_stage: str = "bm25",
    depth: int = 20,
    fusion: float | Fusion | None = None,
    fusion_method: str | None = None,
    folds: int = 5,
    seed: int = 0,
    method: str = "auto",
    top_ns: Sequence[int] = DEFAULT_TOP_NS,
    probabilities: Sequence[float] = DEFAULT_PROBABILITIES,
    min_n: int = 1,
    expected_shares: Sequence[float] = DEFAULT_SHARES,
    embedding_model: Any = None,
    score_cache: str | os.PathLike[str] | ScoreCache | None = None,
    show_progress: bool = False,
    candidates: Sequence[str] | None = None,
) -> CalibrationResult:
    """Fit a reranker's (or fused pipeline's) score -> probability map on judged queries.

    Args:
        dataset: Judged queries and their corpus (``load_dataset``).
        reranker: A ``load_reranker`` spec or a ``Reranker``.
        first_stage: ``"bm25"``, ``"dense"`` or ``"hybrid"``.
        depth: Candidates per query (as the pipeline will rerank).
        fusion: A fusion weight on the reranker, or a ``Fusion`` (``None``: the reranker's
            own score): the pipeline's fused score is calibrated, and the map is keyed to it.
        fusion_method: With a weight: ``"zscore"`` (default), ``"minmax"`` or ``"rrf"``.
        folds: Cross-fitting folds (by query).
        seed: Their seed.
        method: ``"auto"`` (the lowest held-out log-loss) or one map kind (``METHODS``:
            ``"isotonic"``, ``"isotonic-pooled"``, ``"logistic"``, ``"logistic-rank"``,
            ``"logistic-rank-gap"``).
        top_ns: Fixed counts the cutoff is compared with.
        probabilities: ``min_probability`` values measured.
        min_n: The cutoff's floor in the comparison.
        expected_shares: ``expected_share`` values measured (the "expected relevant" policy).
        embedding_model: Model of the dense stage (default all-MiniLM-L6-v2).
        score_cache: A ``ScoreCache`` or file name (as ``compare`` and ``tune`` take).
        show_progress: Progress bar on stderr.
        candidates: The map kinds ``"auto"`` chooses among (``None``: every one of
            ``rerank_kit.learning._calibrate_fit.METHODS``; ``("isotonic", "logistic")``:
            the score-only maps).

    Returns:
        A ``CalibrationResult``; ``result.calibration`` goes into a ``PipelineConfig``.
    """
    from rerank_kit.evaluation._first_stage import DEFAULT_EMBEDDING_MODEL, build_first_stages

    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    fused = to_fusion(fusion, fusion_method)
    model = _model(reranker, make_score_cache(score_cache))
    (stage,) = build_first_stages(
        [first_stage], embedding_model=embedding_model or DEFAULT_EMBEDDING_MODEL
    )
    qrels = dataset.judged_qrels
    scored: dict[str, tuple[list[float], list[int], list[int]]] = {}
    try:
        stage.index(dataset.corpus, show_progress=show_progress)
        todo: Iterable[str] = list(dataset.queries)
        if show_progress:
            from tqdm.auto import tqdm

            todo = tqdm(todo, desc=f"calibrating on {dataset.name}", unit="query", file=sys.stderr)
        for qid in todo:
            query = dataset.queries[qid]
            hits = stage.search(query, depth)
            if not hits:
                continue
            texts = [dataset.corpus[d].full_text for d, _ in hits]
            scores = model.score(query, texts)
            if fused is not None:
                scores = fuse(scores, [s for _, s in hits], fused.for_query(query))
            order = sorted(range(len(hits)), key=lambda i: -scores[i])
            labels = [int(qrels[qid].get(hits[i][0], 0) > 0) for i in order]
            lengths = [len(texts[i].split()) for i in order]
            scored[qid] = ([float(scores[i]) for i in order], labels, lengths)
    finally:
        stage.close()
    identity = model._score_identity()
    label = model.name + ("" if fused is None else f" fused {fusion_key(fused)}")
    settings = {
        "dataset": dataset.name,
        "system": f"{label} over {first_stage} depth {depth}",
        "reranker": reranker if isinstance(reranker, str) else model.name,
        "score_identity": identity,
        "first_stage": first_stage,
        "depth": depth,
        "fusion": fusion_key(fused),
        "queries": len(scored),
    }
    return calibrate_scored(
        scored,
        identity=identity,
        fusion=fusion_key(fused),
        folds=folds,
        seed=seed,
        method=method,
        top_ns=top_ns,
        probabilities=probabilities,
        min_n=min_n,
        settings=settings,
        expected_shares=expected_shares,
        candidates=candidates,
    )


def calibrate_setting(
    dataset: Dataset,
    scored: Mapping[str, Any],
    setting: Any,
    identity: str,
    *,
    seed: int = 0,
    folds: int = 5,
) -> CalibrationResult:
    """``tune --calibrate``: calibrate the chosen setting on the scores ``tune`` already has.

    Args:
        dataset: The judged queries.
        scored: Query id -> ``tune``'s ``Scored`` (ids, first-stage and reranker scores).
        setting: ``tune``'s chosen ``Setting`` (its order and fused keys are calibrated).
        identity: The reranker's score identity.
        seed: Seed of the folds.
        folds: Cross-fitting folds.
    """
    qrels = dataset.judged_qrels
    rows: dict[str, tuple[list[float], list[int], list[int]]] = {}
    for qid, item in scored.items():
        order, keys = item.order(setting, [])
        ids = [item.ids[j] for j in order]
        rows[qid] = (
            [float(k) for k in keys],
            [int(qrels[qid].get(d, 0) > 0) for d in ids],
            [len(dataset.corpus[d].full_text.split()) for d in ids],
        )
    fusion = None
    if setting.weight is not None:
        fusion = Fusion(
            setting.weight,
            setting.method,
            long_weight=setting.long_weight,
            long_query_tokens=setting.long_tokens,
        )
    return calibrate_scored(
        rows,
        identity=identity,
        fusion=fusion_key(fusion),
        folds=min(folds, len(rows)),
        seed=seed,
        settings={"dataset": dataset.name, "system": setting.label},
    )
