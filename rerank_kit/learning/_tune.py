"""``tune``: choose a pipeline's settings on judged queries, with proof on held-out queries.

With a few dozen to a few hundred judged queries, the settings around a reranker (how many
candidates it sees, how much of the first stage's signal it keeps) are worth learning before
the model itself. ``tune`` scores every candidate once, then searches the settings by
arithmetic:

- the reranker (when several are given) **or none** (each first stage alone is always a
  candidate), first stage (when several are given), candidate depth, fusion method and weight
  (or no fusion), for a cascade the ``keep`` of its first stage (every stage scores every
  candidate once, and each keep is simulated), and, when a target precision is asked for, a
  ``score_threshold``;
- **query-dependent trust**: a fusion weight for short queries and another for long ones, with
  the length threshold (tokens) from the quartiles of the queries' lengths; it competes only
  where it wins on held-out queries, cross-fitted inside the queries the choice looks at;
- **cross-fitting**: the judged queries are split by query into ``folds`` (seeded); for each
  fold, the settings are chosen on the other folds only and applied to the fold's queries, so
  every judged query is held out exactly once and the held-out metrics cover all of them
  (``test_size=`` gives a plain train/test split instead);
- the report compares, on the held-out queries, the default pipeline (the first reranker with
  the documented default fusion, ``Fusion()``, at the largest depth), plain reranking (no
  fusion), the best single first stage alone (chosen per fold like the tuned pipeline) and the
  tuned one, with paired bootstrap 95% intervals of the nDCG differences and the number of
  queries that got better and worse; per fold it names the winner and the runner-up (the best
  setting with another reranker, or none);
- the final settings are chosen on all judged queries and saved as a :class:`PipelineConfig`
  JSON file, which ``rerank_kit.load_pipeline``, ``langchain_rerank_kit.from_config`` and
  ``llamaindex_rerank_kit.from_config`` load in one call.

Example:
    >>> from rerank_kit.evaluation import load_dataset, tune  # doctest: +SKIP
    >>> rerankers = ["onnx:cross-encoder/ms-marco-MiniLM-L-12-v2", "bi-encoder:all-MiniLM-L6-v2"]
    >>> result = tune(load_dataset("data/beir/cisi"), rerankers)  # doctest: +SKIP
    >>> result.difference_vs_first_stage["mean"]  # doctest: +SKIP
    0.012
    >>> result.config.save("pipeline.json")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rerank_kit._core.fusion import FUSION_METHODS, Fusion, query_length
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache, make_score_cache
from rerank_kit._pipeline import PipelineConfig
from rerank_kit._rerankers.cascade import CascadeReranker
from rerank_kit._rerankers.first_stage import FIRST_STAGE_ONLY, is_first_stage_only
from rerank_kit.evaluation._compare import attach_score_cache
from rerank_kit.evaluation._dataset import Dataset
from rerank_kit.evaluation._metrics import evaluate_run
from rerank_kit.learning._calibrate import calibrate_setting
from rerank_kit.learning._calibrate_report import probability_for_precision, share_for_recall
from rerank_kit.learning._tune_report import TuneResult, _difference, bootstrap_ci
from rerank_kit.learning._tune_search import (
    DEFAULT_SPLIT_WEIGHTS,
    Scored,
    Search,
    Setting,
    length_thresholds,
    split_queries_into_folds,
)

__all__ = ["PipelineConfig", "TuneResult", "bootstrap_ci", "tune"]

logger = logging.getLogger(__name__)

#: Fusion weights searched (``None``: plain reranking, no fusion).
DEFAULT_WEIGHTS: tuple[float | None, ...] = (None, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Candidate depths searched (the largest is what the first stage retrieves).
DEFAULT_DEPTHS: tuple[int, ...] = (20, 50, 100)
#: Keep sizes searched for a cascade's first stage (with the spec's own, below the depth).
DEFAULT_KEEPS: tuple[int, ...] = (10, 20, 30, 50)


class _Candidate:
    """One reranker to search: its label (the spec, kept in the config), model and cascade."""

    def __init__(self, item: str | Reranker, cache: ScoreCache | None) -> None:
        from rerank_kit._registry import load_reranker

        if isinstance(item, str):
            self.label = item
            self.model = load_reranker(item)
            attach_score_cache(self.model, cache)
        elif isinstance(item, Reranker):
            self.label, self.model = item.name, item
        else:
            raise TypeError(f"reranker must be a spec or a Reranker, got {type(item).__name__}")
        model = self.model
        self.cascade = (
            model if isinstance(model, CascadeReranker) and len(model.stages) > 1 else None
        )
        self.fixed_keeps: list[int | None] = (
            [st.keep for st in self.cascade.stages] if self.cascade else []
        )
        self.spec_keep = self.fixed_keeps[0] if self.cascade else None

    def score(self, query: str, texts: list[str]) -> list[list[float]]:
        """Every stage's scores of every candidate (one list for a single model)."""
        if not texts:
            return [[] for _ in (self.cascade.stages if self.cascade else [self.model])]
        if self.cascade is None:
            return [self.model.score(query, texts)]
        return [st.reranker.score(query, texts) for st in self.cascade.stages]

    def keeps_for(self, depth: int, keep_sizes: Sequence[int]) -> list[int | None]:
        if self.cascade is None:
            return [None]
        wanted = sorted({k for k in (*keep_sizes, self.spec_keep) if k is not None and k < depth})
        return list(wanted) or [self.spec_keep]

    def spec_with_keep(self, keep: int | None) -> str:
        if self.cascade is None:
            return self.label
        keeps = [keep, *self.fixed_keeps[1:]]
        return " >> ".join(
            f"{name}@{k}" if k is not None else name
            for name, k in zip(self.cascade.stage_names, keeps, strict=True)
        )


def _rerankers(reranker: Any) -> list[str | Reranker]:
    items = [reranker] if isinstance(reranker, (str, Reranker)) else list(reranker)
    if not items:
        raise ValueError("give at least one reranker (the first stage alone is always tried)")
    return items


def tune(
    dataset: Dataset,
    reranker: str | Reranker | Sequence[str | Reranker],
    *,
    first_stage: str | Sequence[str] = "bm25",
    depths: Sequence[int] = DEFAULT_DEPTHS,
    weights: Sequence[float | None] = DEFAULT_WEIGHTS,
    methods: Sequence[str] = FUSION_METHODS,
    keep_sizes: Sequence[int] = DEFAULT_KEEPS,
    query_split: bool = True,
    split_weights: Sequence[float] = DEFAULT_SPLIT_WEIGHTS,
    folds: int = 5,
    seed: int = 0,
    test_size: float | None = None,
    k: int = 10,
    top_n: int = 10,
    target_precision: float | None = None,
    embedding_model: Any = None,
    show_progress: bool = False,
    score_cache: str | os.PathLike[str] | ScoreCache | None = None,
    calibrate: bool = False,
    target_recall: float | None = None,
) -> TuneResult:
    """Choose reranker (or none), depth, fusion and first stage by cross-fitting.

    Args:
        dataset: Judged queries and their corpus (``load_dataset``).
        reranker: A ``load_reranker`` spec (kept in the config) or a ``Reranker``, or a list
            of them: the search ranges over each, and over no reranker (each first stage
            alone) too.
        first_stage: One or several of ``"bm25"``, ``"dense"``, ``"hybrid"``.
        depths: Candidate depths to try; the largest is retrieved once per query.
        weights: Fusion weights to try (``None``: no fusion).
        methods: Fusion methods to try.
        keep_sizes: For a cascade: keep sizes to try for its first stage (those below each
            depth, plus the spec's own keep). Every stage scores every candidate once; the
            chosen keep is written into the config's spec. Later stages keep their keep.
        query_split: Also search a fusion weight that depends on the query's length (one for
            queries up to a threshold of tokens, one above it; thresholds: the quartiles of
            the queries' lengths). It competes only where it wins held-out (cross-fitted
            inside the queries a choice is made on).
        split_weights: The weights each side of the split chooses from.
        folds: Cross-fitting folds (every query is held out once).
        seed: Seed of the query split and of the bootstrap.
        test_size: Instead of cross-fitting, hold out this share of the queries once.
        k: Metric cut-off.
        top_n: ``top_n`` written to the config.
        target_precision: If given, also choose a ``score_threshold`` whose kept candidates
            reach this precision on the judged queries (the lowest such threshold; not for a
            first-stage-only choice).
        embedding_model: Model of the dense stage (default all-MiniLM-L6-v2).
        show_progress: Progress bar on stderr while scoring.
        score_cache: For specs that score pairs: a ``ScoreCache`` or a file name for a
            persistent one, shared by all the rerankers (keyed by spec) and with ``compare`` /
            ``rerank-kit eval --score-cache``, so pairs an earlier run scored are not scored
            again.
        calibrate: Also fit a calibration of the chosen pipeline's (fused) score on the
            judged queries (cross-fitted; ``rerank_kit.learning.calibrate``) and save it in the
            config. With ``target_precision`` the config then gets a ``min_probability``
            (the lowest whose held-out kept candidates reach the precision) instead of a raw
            ``score_threshold``.
        target_recall: With ``calibrate``: also choose an ``expected_share``, the lowest whose
            kept held-out candidates reach this mean recall of the judged-relevant ones under
            the config's ``top_n`` (``share_for_recall``; none when no share reaches it).

    Returns:
        A ``TuneResult``.
    """
    from rerank_kit.evaluation._first_stage import DEFAULT_EMBEDDING_MODEL, build_first_stages

    stages_wanted = [first_stage] if isinstance(first_stage, str) else list(first_stage)
    depths = sorted({int(d) for d in depths})
    if not depths or depths[0] < 1:
        raise ValueError(f"depths must be positive ints, got {depths!r}")
    if target_recall is not None and (not calibrate or not 0.0 < target_recall <= 1.0):
        raise ValueError(
            f"target_recall needs calibrate=True and a recall in (0, 1], got {target_recall!r}"
        )
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an int >= 2, got {folds!r}")
    if test_size is not None and not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    for method in methods:
        Fusion(0.5, method)  # type: ignore[arg-type]
    for split_weight in split_weights:
        Fusion(split_weight)
    qids = list(dataset.queries)
    if len(qids) < (2 if test_size is not None else folds):
        raise ValueError(f"{len(qids)} judged queries are too few for {folds} folds")
    items = _rerankers(reranker)
    for item in items:
        if isinstance(item, str) and is_first_stage_only(item):
            raise ValueError("'none' is always searched; give the rerankers to compare with it")
    cache = make_score_cache(score_cache)
    candidates = [_Candidate(item, cache) for item in items]
    labels = [c.label for c in candidates]
    if len(set(labels)) != len(labels) or FIRST_STAGE_ONLY in labels:
        raise ValueError(f"each reranker must be given once (and not named 'none'): {labels}")
    stages = build_first_stages(
        stages_wanted, embedding_model=embedding_model or DEFAULT_EMBEDDING_MODEL
    )
    max_depth = depths[-1]
    lengths = {q: query_length(dataset.queries[q]) for q in qids}
    # 1. retrieve once per stage, score once per reranker: doc ids, first-stage scores,
    #    every reranker's scores (a cascade: every stage, so any keep can be simulated)
    hits: dict[str, dict[str, list[str]]] = {}
    scored: dict[tuple[str, str], dict[str, Scored]] = {}
    try:
        for stage in stages:
            stage.index(dataset.corpus, show_progress=show_progress)
        todo: Iterable[str] = qids
        if show_progress:
            from tqdm.auto import tqdm

            todo = tqdm(qids, desc=f"scoring {dataset.name}", unit="query", file=sys.stderr)
        for qid in todo:
            query = dataset.queries[qid]
            found = {stage.name: stage.search(query, max_depth) for stage in stages}
            pool = list(dict.fromkeys(d for got in found.values() for d, _ in got))
            at = {d: i for i, d in enumerate(pool)}
            texts = [dataset.corpus[d].full_text for d in pool]
            for cand in candidates:  # each candidate once per reranker, whatever its stages
                every = cand.score(query, texts)
                for name, got in found.items():
                    ids = [doc_id for doc_id, _ in got]
                    hits.setdefault(name, {})[qid] = ids
                    per = [[scores[at[d]] for d in ids] for scores in every]
                    scored.setdefault((cand.label, name), {})[qid] = Scored(
                        ids, [s for _, s in got], per[-1], per[:-1], lengths[qid]
                    )
    finally:
        for stage in stages:
            stage.close()
    by_label = {c.label: c for c in candidates}
    grid: list[float | None] = list(weights)
    extra: list[float | None] = [w for w in split_weights if w not in grid] if query_split else []
    # the first stages alone come first: on a tie, the simpler pipeline (no model) is chosen
    evaluated = [Setting(FIRST_STAGE_ONLY, st.name, max_depth, None, methods[0]) for st in stages]
    plain_candidates = list(evaluated)
    for cand in candidates:
        for stage in stages:
            for d in depths:
                for keep in cand.keeps_for(d, keep_sizes):
                    for w in [*grid, *extra]:
                        for m in methods if w is not None else methods[:1]:
                            s = Setting(cand.label, stage.name, d, w, m, keep)
                            evaluated.append(s)
                            if w in grid:
                                plain_candidates.append(s)
    qrels = dataset.judged_qrels

    def run_of(setting: Setting) -> dict[str, list[str]]:
        if setting.first_stage_only:
            return dict(hits[setting.first_stage])
        keeps = by_label[setting.reranker].fixed_keeps
        run = {}
        for qid in qids:
            item = scored[(setting.reranker, setting.first_stage)][qid]
            order, _ = item.order(setting, keeps)
            run[qid] = [item.ids[i] for i in order] + item.ids[setting.depth :]
        return run

    main = f"nDCG@{k}"
    first = candidates[0]
    default = Setting(
        first.label, stages[0].name, max_depth, Fusion().weight, Fusion().method, first.spec_keep
    )
    plain = Setting(first.label, stages[0].name, max_depth, None, methods[0], first.spec_keep)
    per_setting: dict[Setting, dict[str, dict[str, float]]] = {}
    for setting in [*evaluated, default, plain]:
        if setting not in per_setting:
            _, per_setting[setting] = evaluate_run(
                run_of(setting), qrels, k=k, recall_depth=max_depth
            )
    main_of = {s: {q: m[main] for q, m in per.items()} for s, per in per_setting.items()}
    search = Search(
        main_of,
        plain_candidates,
        lengths,
        length_thresholds(list(lengths.values())) if query_split else [],
        split_weights,
    )

    def metrics_of(setting: Setting, qid: str) -> dict[str, float]:
        return per_setting[setting.for_length(lengths[qid])][qid]

    # 2. cross-fitting: each fold's settings chosen on the other folds only
    held_out: dict[str, Setting] = {}
    first_stage_pick: dict[str, Setting] = {}
    chosen: list[str] = []
    fold_choices: list[dict[str, Any]] = []
    splits = split_queries_into_folds(qids, folds, seed, test_size)
    for i, fold in enumerate(splits):
        held = set(fold)
        train = [q for q in qids if q not in held]
        pick = search.choose(train, folds, seed + 1 + i)
        runner = search.best(train, split=pick.split, exclude=pick.reranker)
        alone = search.best(train, split=False, only=FIRST_STAGE_ONLY)
        assert alone is not None  # the first stages alone are always candidates
        chosen.append(pick.label)

        def train_mean(s: Setting, on: Sequence[str] = train) -> float:
            return statistics.fmean(search.value(s, q) for q in on)

        fold_choices.append(
            {
                "queries": len(fold),
                "winner": pick.label,
                "winner_reranker": pick.reranker,
                "winner_train": train_mean(pick),
                "runner_up": None if runner is None else runner.label,
                "runner_up_reranker": None if runner is None else runner.reranker,
                "runner_up_train": None if runner is None else train_mean(runner),
                "query_split": pick.split,
                "first_stage_alone": alone.label,
            }
        )
        for q in fold:
            held_out[q] = pick
            first_stage_pick[q] = alone
    test_qids = list(held_out)

    def means(pick: Mapping[str, Setting]) -> dict[str, float]:
        names = list(per_setting[default][qids[0]])
        return {n: statistics.fmean(metrics_of(pick[q], q)[n] for q in test_qids) for n in names}

    tuned_q = {q: search.value(held_out[q], q) for q in test_qids}
    default_q = {q: main_of[default][q] for q in test_qids}
    plain_q = {q: main_of[plain][q] for q in test_qids}
    alone_q = {q: search.value(first_stage_pick[q], q) for q in test_qids}
    # 3. the final settings, chosen on every judged query the same way
    final = search.choose(qids, folds, seed)
    threshold = None
    calibrated = None
    if calibrate and not final.first_stage_only:
        cand = by_label[final.reranker]
        if cand.cascade is not None:
            logger.warning("tune --calibrate: %s is a cascade; not calibrated", final.reranker)
        else:
            calibrated = calibrate_setting(
                dataset,
                scored[(final.reranker, final.first_stage)],
                final,
                cand.model._score_identity(),
                seed=seed,
                folds=folds,
            )
    if target_precision is not None and not final.first_stage_only and calibrated is None:
        threshold = _threshold_for(
            scored[(final.reranker, final.first_stage)],
            qrels,
            final,
            target_precision,
            by_label[final.reranker].fixed_keeps,
        )
    config = _config(final, by_label, top_n, threshold)
    if calibrated is not None:
        config = config.with_cutoff(
            calibrated.calibration,
            None
            if target_precision is None
            else probability_for_precision(calibrated.fit.held_out, target_precision),
            expected_share=None
            if target_recall is None
            else share_for_recall(calibrated.fit.held_out, target_recall, config.top_n),
        )
    split = (
        {"test_size": test_size, "seed": seed, "held_out_queries": len(test_qids)}
        if test_size is not None
        else {"folds": folds, "seed": seed, "held_out_queries": len(test_qids)}
    )
    return TuneResult(
        config=config,
        default=means(dict.fromkeys(test_qids, default)),
        plain=means(dict.fromkeys(test_qids, plain)),
        tuned=means(held_out),
        difference=_difference(tuned_q, default_q, seed),
        difference_vs_plain=_difference(tuned_q, plain_q, seed),
        folds=split,
        chosen=chosen,
        per_query={
            q: {
                "default": default_q[q],
                "plain": plain_q[q],
                "tuned": tuned_q[q],
                "first_stage": alone_q[q],
            }
            for q in test_qids
        },
        first_stage=means(first_stage_pick),
        difference_vs_first_stage=_difference(tuned_q, alone_q, seed),
        fold_choices=fold_choices,
        query_split={
            "searched": bool(search.bases),
            "folds_picking": sum(f["query_split"] for f in fold_choices),
            "folds": len(fold_choices),
            "final": final.split,
            "thresholds": search.thresholds,
        },
        rerankers=[*labels, FIRST_STAGE_ONLY],
        calibration={} if calibrated is None else calibrated.to_dict(),
    )


def _config(
    final: Setting, by_label: Mapping[str, _Candidate], top_n: int, threshold: float | None
) -> PipelineConfig:
    if final.first_stage_only:
        return PipelineConfig(
            reranker=FIRST_STAGE_ONLY, first_stage=final.first_stage, depth=final.depth, top_n=top_n
        )
    return PipelineConfig(
        reranker=by_label[final.reranker].spec_with_keep(final.keep),
        first_stage=final.first_stage,
        depth=final.depth,
        fusion=final.weight,
        fusion_method=final.method,
        top_n=top_n,
        score_threshold=threshold,
        fusion_long=final.long_weight,
        long_query_tokens=final.long_tokens,
    )


def _threshold_for(
    scored: Mapping[str, Scored],
    qrels: Mapping[str, Mapping[str, int]],
    setting: Setting,
    target: float,
    fixed_keeps: Sequence[int | None],
) -> float | None:
    """Lowest score threshold whose kept candidates are relevant at least ``target`` of the time."""
    pairs: list[tuple[float, bool]] = []
    for qid, item in scored.items():
        order, keys = item.order(setting, fixed_keeps)
        pairs += [
            (key, qrels.get(qid, {}).get(item.ids[j], 0) > 0)
            for j, key in zip(order, keys, strict=True)
            if key > -math.inf
        ]
    pairs.sort(key=lambda p: -p[0])
    hits = 0
    best: float | None = None
    for i, (score, relevant) in enumerate(pairs, start=1):
        hits += relevant
        if hits / i >= target:
            best = score
    return best
