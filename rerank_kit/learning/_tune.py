"""``tune``: choose a pipeline's settings on judged queries, with proof on held-out queries.

With a few dozen to a few hundred judged queries, the settings around a reranker (how many
candidates it sees, how much of the first stage's signal it keeps) are worth learning before
the model itself. ``tune`` scores every candidate once, then searches the settings by
arithmetic:

- first stage (when several are given), candidate depth, fusion method and weight (or no
  fusion), for a cascade the ``keep`` of its first stage (every stage scores every candidate
  once, and each keep is simulated), and, when a target precision is asked for, a
  ``score_threshold``;
- **cross-fitting**: the judged queries are split by query into ``folds`` (seeded); for each
  fold, the settings are chosen on the other folds only and applied to the fold's queries, so
  every judged query is held out exactly once and the held-out metrics cover all of them
  (``test_size=`` gives a plain train/test split instead);
- the report compares, on the held-out queries, the default pipeline (the documented default
  fusion, ``Fusion()``, at the largest depth), plain reranking (no fusion) and the tuned one, with
  a paired bootstrap 95% interval of the nDCG difference and the number of queries that got
  better and worse;
- the final settings are chosen on all judged queries and saved as a :class:`PipelineConfig`
  JSON file, which ``rerank_kit.load_pipeline``, ``langchain_rerank_kit.from_config`` and
  ``llamaindex_rerank_kit.from_config`` load in one call.

Example:
    >>> from rerank_kit.evaluation import load_dataset, tune  # doctest: +SKIP
    >>> result = tune(load_dataset("data/beir/cisi"), "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")  # doctest: +SKIP
    >>> result.difference["mean"], result.difference["ci95"]  # doctest: +SKIP
    (0.041, (0.012, 0.07))
    >>> result.config.save("pipeline.json")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import random
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rerank_kit._core.fusion import FUSION_METHODS, Fusion, fuse
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache, make_score_cache
from rerank_kit._pipeline import PipelineConfig
from rerank_kit._rerankers.cascade import CascadeReranker
from rerank_kit.evaluation._compare import attach_score_cache
from rerank_kit.evaluation._dataset import Dataset
from rerank_kit.evaluation._metrics import evaluate_run

__all__ = ["PipelineConfig", "TuneResult", "bootstrap_ci", "tune"]

logger = logging.getLogger(__name__)

#: Fusion weights searched (``None``: plain reranking, no fusion).
DEFAULT_WEIGHTS: tuple[float | None, ...] = (None, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Candidate depths searched (the largest is what the first stage retrieves).
DEFAULT_DEPTHS: tuple[int, ...] = (20, 50, 100)
#: Keep sizes searched for a cascade's first stage (with the spec's own, below the depth).
DEFAULT_KEEPS: tuple[int, ...] = (10, 20, 30, 50)
_MAIN = "nDCG@10"


@dataclass(frozen=True)
class _Setting:
    first_stage: str
    depth: int
    weight: float | None
    method: str
    keep: int | None = None

    @property
    def label(self) -> str:
        fusion = "no fusion" if self.weight is None else f"{self.method} w={self.weight:g}"
        keep = "" if self.keep is None else f", keep {self.keep}"
        return f"{self.first_stage} depth {self.depth}{keep}, {fusion}"


@dataclass
class _Scored:
    """One query's candidates and every score ``tune`` needs for them.

    Ids, first-stage scores, the reranker's (final stage's) scores and, for a cascade, the
    scores of the stages before the last one.
    """

    ids: list[str]
    first: list[float]
    final: list[float]
    earlier: list[list[float]] = field(default_factory=list)

    def order(
        self, setting: _Setting, fixed_keeps: Sequence[int | None]
    ) -> tuple[list[int], list[float]]:
        """Indices of the head (``depth``) in the pipeline's order, and their sort keys.

        The reranked (surviving) candidates come first, ordered by the final score, fused with
        the first-stage score when the setting fuses; candidates a cascade stage pruned follow
        in first-stage order (as ``compare`` ranks them), with keys of ``-inf``.
        """
        d = setting.depth
        survivors = list(range(min(d, len(self.ids))))
        for i, scores in enumerate(self.earlier):
            keep = setting.keep if i == 0 else fixed_keeps[i]
            ranked = sorted(survivors, key=lambda j: -scores[j])
            survivors = ranked if keep is None else ranked[:keep]
        final = [self.final[j] for j in survivors]
        if setting.weight is None:
            keys = final
        else:
            fusion = Fusion(setting.weight, setting.method)  # type: ignore[arg-type]
            keys = fuse(final, [self.first[j] for j in survivors], fusion)
        ranked_pairs = sorted(zip(survivors, keys, strict=True), key=lambda p: -p[1])
        kept = set(survivors)
        pruned = [j for j in range(min(d, len(self.ids))) if j not in kept]
        return [j for j, _ in ranked_pairs] + pruned, [k for _, k in ranked_pairs] + [
            -math.inf
        ] * len(pruned)


@dataclass
class TuneResult:
    """What ``tune`` measured and chose.

    Attributes:
        config: The settings chosen on all judged queries.
        default: Held-out metrics of the default pipeline (documented default fusion).
        plain: Held-out metrics of plain reranking (no fusion, largest depth).
        tuned: Held-out metrics of the tuned pipeline (settings chosen without the query).
        difference: nDCG@10 tuned minus default: ``mean``, ``ci95``, ``better``, ``worse``.
        difference_vs_plain: The same against plain reranking.
        folds: How the queries were split (``folds``, ``seed``, or ``test_size``).
        chosen: Per fold, the settings chosen on the other folds.
        per_query: Query id -> ``{"default", "plain", "tuned"}`` -> nDCG@10 (held out).
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

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``--json``."""
        return {
            "config": self.config.to_dict(),
            "default": self.default,
            "plain": self.plain,
            "tuned": self.tuned,
            "difference": self.difference,
            "difference_vs_plain": self.difference_vs_plain,
            "folds": self.folds,
            "chosen": self.chosen,
            "per_query": self.per_query,
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
            ("tuned", self.tuned),
        ):
            lines.append(f"{label:30}" + "".join(f"{metrics[n]:10.3f}" for n in names))
        for label, diff in (
            ("tuned - default", self.difference),
            ("tuned - plain", self.difference_vs_plain),
        ):
            lo, hi = diff["ci95"]
            lines.append(
                f"{label:30}{diff['mean']:+10.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]  "
                f"better {diff['better']}, worse {diff['worse']}, same {diff['same']}"
            )
        lines.append(f"settings chosen on all queries: {_describe(self.config)}")
        return "\n".join(lines)


def _describe(config: PipelineConfig) -> str:
    fusion = (
        "no fusion"
        if config.fusion is None
        else f"fusion {config.fusion_method} w={config.fusion:g}"
    )
    threshold = "" if config.score_threshold is None else f", threshold {config.score_threshold:g}"
    return f"{config.first_stage}, depth {config.depth}, {fusion}, top_n {config.top_n}{threshold}"


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


def _folds(qids: list[str], folds: int, seed: int, test_size: float | None) -> list[list[str]]:
    shuffled = list(qids)
    random.Random(seed).shuffle(shuffled)
    if test_size is not None:
        cut = max(1, round(len(shuffled) * test_size))
        return [shuffled[:cut]]
    return [shuffled[i::folds] for i in range(folds)]


def tune(
    dataset: Dataset,
    reranker: str | Reranker,
    *,
    first_stage: str | Sequence[str] = "bm25",
    depths: Sequence[int] = DEFAULT_DEPTHS,
    weights: Sequence[float | None] = DEFAULT_WEIGHTS,
    methods: Sequence[str] = FUSION_METHODS,
    keep_sizes: Sequence[int] = DEFAULT_KEEPS,
    folds: int = 5,
    seed: int = 0,
    test_size: float | None = None,
    k: int = 10,
    top_n: int = 10,
    target_precision: float | None = None,
    embedding_model: Any = None,
    show_progress: bool = False,
    score_cache: str | os.PathLike[str] | ScoreCache | None = None,
) -> TuneResult:
    """Choose depth, fusion and first stage by cross-fitting; report held-out gains.

    Args:
        dataset: Judged queries and their corpus (``load_dataset``).
        reranker: A ``load_reranker`` spec (kept in the config) or a ``Reranker``.
        first_stage: One or several of ``"bm25"``, ``"dense"``, ``"hybrid"``.
        depths: Candidate depths to try; the largest is retrieved once per query.
        weights: Fusion weights to try (``None``: no fusion).
        methods: Fusion methods to try.
        keep_sizes: For a cascade: keep sizes to try for its first stage (those below each
            depth, plus the spec's own keep). Every stage scores every candidate once; the
            chosen keep is written into the config's spec. Later stages keep their keep.
        folds: Cross-fitting folds (every query is held out once).
        seed: Seed of the query split and of the bootstrap.
        test_size: Instead of cross-fitting, hold out this share of the queries once.
        k: Metric cut-off.
        top_n: ``top_n`` written to the config.
        target_precision: If given, also choose a ``score_threshold`` whose kept candidates
            reach this precision on the judged queries (the lowest such threshold).
        embedding_model: Model of the dense stage (default all-MiniLM-L6-v2).
        show_progress: Progress bar on stderr while scoring.
        score_cache: For a spec that scores pairs: a ``ScoreCache`` or a file name for a
            persistent one, shared with ``compare`` / ``rerank-kit eval --score-cache``, so
            pairs an earlier run scored are not scored again.

    Returns:
        A ``TuneResult``.
    """
    from rerank_kit._registry import load_reranker
    from rerank_kit.evaluation._first_stage import DEFAULT_EMBEDDING_MODEL, build_first_stages

    stages_wanted = [first_stage] if isinstance(first_stage, str) else list(first_stage)
    depths = sorted({int(d) for d in depths})
    if not depths or depths[0] < 1:
        raise ValueError(f"depths must be positive ints, got {depths!r}")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an int >= 2, got {folds!r}")
    if test_size is not None and not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    for method in methods:
        Fusion(0.5, method)  # type: ignore[arg-type]
    qids = list(dataset.queries)
    if len(qids) < (2 if test_size is not None else folds):
        raise ValueError(f"{len(qids)} judged queries are too few for {folds} folds")
    spec = reranker if isinstance(reranker, str) else reranker.name
    model = load_reranker(reranker) if isinstance(reranker, str) else reranker
    if isinstance(reranker, str):
        attach_score_cache(model, make_score_cache(score_cache))
    cascade = model if isinstance(model, CascadeReranker) and len(model.stages) > 1 else None
    fixed_keeps: list[int | None] = [st.keep for st in cascade.stages] if cascade else []
    stages = build_first_stages(
        stages_wanted, embedding_model=embedding_model or DEFAULT_EMBEDDING_MODEL
    )
    max_depth = depths[-1]
    # 1. retrieve and score once: doc ids, first-stage scores, reranker scores per query
    #    (a cascade: every stage scores every candidate, so any keep can be simulated)
    scored: dict[str, dict[str, _Scored]] = {}
    try:
        for stage in stages:
            stage.index(dataset.corpus, show_progress=show_progress)
        items: Iterable[str] = qids
        if show_progress:
            from tqdm.auto import tqdm

            items = tqdm(qids, desc=f"scoring {dataset.name}", unit="query", file=sys.stderr)
        for qid in items:
            query = dataset.queries[qid]
            for stage in stages:
                hits = stage.search(query, max_depth)
                ids = [doc_id for doc_id, _ in hits]
                texts = [dataset.corpus[d].full_text for d in ids]
                if cascade is None:
                    every = [model.score(query, texts) if texts else []]
                else:
                    every = [
                        st.reranker.score(query, texts) if texts else [] for st in cascade.stages
                    ]
                scored.setdefault(stage.name, {})[qid] = _Scored(
                    ids, [s for _, s in hits], every[-1], every[:-1]
                )
    finally:
        for stage in stages:
            stage.close()
    spec_keep = fixed_keeps[0] if cascade else None

    def keeps_for(depth: int) -> list[int | None]:
        if cascade is None:
            return [None]
        wanted: list[int | None] = []
        wanted += sorted({k for k in (*keep_sizes, spec_keep) if k is not None and k < depth})
        return wanted or [spec_keep]

    settings = [
        _Setting(stage.name, d, w, m, keep)
        for stage in stages
        for d in depths
        for keep in keeps_for(d)
        for w in weights
        for m in (methods if w is not None else methods[:1])
    ]
    qrels = dataset.judged_qrels

    def run_of(setting: _Setting) -> dict[str, list[str]]:
        run = {}
        for qid in qids:
            item = scored[setting.first_stage][qid]
            order, _ = item.order(setting, fixed_keeps)
            run[qid] = [item.ids[i] for i in order] + item.ids[setting.depth :]
        return run

    per_setting: dict[_Setting, dict[str, dict[str, float]]] = {}
    for setting in settings:
        _, per_query = evaluate_run(run_of(setting), qrels, k=k, recall_depth=max_depth)
        per_setting[setting] = per_query
    main = f"nDCG@{k}"

    def best(on: Sequence[str]) -> _Setting:
        return max(settings, key=lambda s: statistics.fmean(per_setting[s][q][main] for q in on))

    main_stage = stages[0].name
    default = _Setting(main_stage, max_depth, Fusion().weight, Fusion().method, spec_keep)
    plain = _Setting(main_stage, max_depth, None, methods[0], spec_keep)
    for ref in (default, plain):
        if ref not in per_setting:
            _, per_setting[ref] = evaluate_run(run_of(ref), qrels, k=k, recall_depth=max_depth)
    held_out: dict[str, _Setting] = {}
    chosen = []
    for fold in _folds(qids, folds, seed, test_size):
        train = [q for q in qids if q not in set(fold)]
        pick = best(train)
        chosen.append(pick.label)
        for q in fold:
            held_out[q] = pick
    test_qids = list(held_out)

    def means(pick: Mapping[str, _Setting]) -> dict[str, float]:
        names = list(next(iter(per_setting.values()))[qids[0]])
        return {n: statistics.fmean(per_setting[pick[q]][q][n] for q in test_qids) for n in names}

    tuned_m = means(held_out)
    default_m = means(dict.fromkeys(test_qids, default))
    plain_m = means(dict.fromkeys(test_qids, plain))
    tuned_q = {q: per_setting[held_out[q]][q][main] for q in test_qids}
    default_q = {q: per_setting[default][q][main] for q in test_qids}
    plain_q = {q: per_setting[plain][q][main] for q in test_qids}
    final = best(qids)
    threshold = None
    if target_precision is not None:
        threshold = _threshold_for(
            scored[final.first_stage], qrels, final, target_precision, fixed_keeps
        )
    if cascade is not None:
        keeps = [final.keep, *fixed_keeps[1:]]
        spec = " >> ".join(
            f"{name}@{keep}" if keep is not None else name
            for name, keep in zip(cascade.stage_names, keeps, strict=True)
        )
    config = PipelineConfig(
        reranker=spec,
        first_stage=final.first_stage,
        depth=final.depth,
        fusion=final.weight,
        fusion_method=final.method,
        top_n=top_n,
        score_threshold=threshold,
    )
    split = (
        {"test_size": test_size, "seed": seed, "held_out_queries": len(test_qids)}
        if test_size is not None
        else {"folds": folds, "seed": seed, "held_out_queries": len(test_qids)}
    )
    return TuneResult(
        config=config,
        default=default_m,
        plain=plain_m,
        tuned=tuned_m,
        difference=_difference(tuned_q, default_q, seed),
        difference_vs_plain=_difference(tuned_q, plain_q, seed),
        folds=split,
        chosen=chosen,
        per_query={
            q: {"default": default_q[q], "plain": plain_q[q], "tuned": tuned_q[q]}
            for q in test_qids
        },
    )


def _threshold_for(
    scored: Mapping[str, _Scored],
    qrels: Mapping[str, Mapping[str, int]],
    setting: _Setting,
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
