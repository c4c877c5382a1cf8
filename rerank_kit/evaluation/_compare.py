"""``compare``: run first stages and rerankers over a dataset, quality and latency side by side."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rerank_kit._core.assembly import AssemblySettings
from rerank_kit._core.errors import missing_extra
from rerank_kit._core.fusion import Fusion, fuse_ranked, to_fusion
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.score_cache import ScoreCache, make_score_cache
from rerank_kit._core.types import Ranked
from rerank_kit._core.windows import check_long_documents
from rerank_kit.evaluation._dataset import Dataset
from rerank_kit.evaluation._first_stage import (
    DEFAULT_EMBEDDING_MODEL,
    FirstStage,
    Hit,
    build_first_stages,
)
from rerank_kit.evaluation._metrics import LatencyStats, evaluate_run
from rerank_kit.evaluation._results import ComparisonResult, SystemResult

__all__ = ["ComparisonResult", "SystemResult", "attach_score_cache", "compare"]

logger = logging.getLogger(__name__)


def attach_score_cache(model: Reranker, score_cache: Any) -> bool:
    """Give ``model`` (or its cascade stages) ``score_cache`` if it keeps one; say if it took it."""
    if score_cache is None:
        return False
    try:
        model.set_score_cache(score_cache)
    except ValueError:
        logger.debug("%s keeps no score cache; scoring without one", model.name)
        return False
    return True


def _resolve_rerankers(
    rerankers: Iterable[str | Reranker],
    long_documents: str | None = None,
    score_cache: ScoreCache | None = None,
) -> list[Reranker]:
    from rerank_kit._registry import load_reranker

    out: list[Reranker] = []
    for item in rerankers:
        if isinstance(item, Reranker):
            out.append(item)
        elif isinstance(item, str):
            model = load_reranker(item)
            if long_documents is not None:
                model.set_long_documents(long_documents)
            attach_score_cache(model, score_cache)
            out.append(model)
        else:
            raise TypeError(f"rerankers must be specs (str) or Reranker objects, got {item!r}")
    return out


def _resolve_first_stages(
    first_stage: str | FirstStage | Sequence[str | FirstStage], embedding_model: Any
) -> tuple[list[FirstStage], list[FirstStage]]:
    """``(stages in order, stages built here and to be closed here)``."""
    items: list[str | FirstStage] = (
        [first_stage] if isinstance(first_stage, (str, FirstStage)) else list(first_stage)
    )
    names = [i for i in items if isinstance(i, str)]
    built = build_first_stages(names, embedding_model=embedding_model) if names else []
    by_name = {s.name: s for s in built}
    stages: list[FirstStage] = []
    for item in items:
        if isinstance(item, FirstStage):
            stages.append(item)
        elif isinstance(item, str):
            wanted = list(by_name) if item.strip().lower() == "all" else [item.strip().lower()]
            stages.extend(by_name[n] for n in wanted if by_name[n] not in stages)
        else:
            raise TypeError(f"first_stage must be a name or a FirstStage, got {item!r}")
    if not stages:
        raise ValueError("no first stage given")
    return stages, built


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def _clear_caches(reranker: Reranker) -> None:
    """Empty the embedding cache of ``reranker`` and of its cascade stages, if they keep one."""
    clear = getattr(reranker, "clear_cache", None)
    if callable(clear):
        clear()
    for stage in getattr(reranker, "stages", ()):
        _clear_caches(stage.reranker)


def _ids(ranked: Sequence[Ranked], hits: list[Hit]) -> list[str]:
    """Ranked ids; candidates the reranker dropped follow in first-stage order."""
    order = [hits[r.index][0] for r in ranked]
    if len(order) < len(hits):
        kept = set(order)
        order.extend(doc_id for doc_id, _ in hits if doc_id not in kept)
    return order


def _reranked(
    reranker: Reranker, query: str, hits: list[Hit], texts: list[str]
) -> tuple[list[Ranked], list[str], int]:
    """The reranker's ranking, its ids (see ``_ids``) and how many candidates it truncated."""
    if not hits:
        return [], [], 0
    ranked = reranker.rerank(query, texts)
    return ranked, _ids(ranked, hits), sum(1 for r in ranked if r.truncated)


def _check_fusions(fusion: Sequence[float | Fusion]) -> list[Fusion]:
    if isinstance(fusion, (int, float, Fusion)):
        fusion = [fusion]
    out: list[Fusion] = []
    for item in fusion:
        f = to_fusion(item)
        if f is None:
            raise ValueError("fusion entries must be weights in [0, 1] or Fusion objects")
        if f not in out:
            out.append(f)
    return out


def compare(
    dataset: Dataset,
    first_stage: str | FirstStage | Sequence[str | FirstStage] = "bm25",
    rerankers: Sequence[str | Reranker] = (),
    *,
    depth: int = 100,
    k: int = 10,
    embedding_model: Any = DEFAULT_EMBEDDING_MODEL,
    limit_queries: int | None = None,
    show_progress: bool = False,
    warmup: bool = True,
    cold_cache: bool = False,
    fusion: Sequence[float | Fusion] = (),
    long_documents: str | None = None,
    score_cache: str | os.PathLike[str] | ScoreCache | None = None,
    assembly: Mapping[str, Any] | None = None,
) -> ComparisonResult:
    """Measure what each reranker adds to each first stage, in quality and in latency.

    Every first stage retrieves its top ``depth`` for each query; every reranker then reorders
    that same candidate list (it sees ``title + " " + text`` of each candidate). For each query
    the first stage runs once and the rerankers run one after the other on its candidates, so
    background load spreads evenly over the systems compared. Rankings are scored against the
    graded judgments (nDCG, MRR, precision, recall and hit rate at ``k``, recall at ``depth``),
    and each stage is timed per query (model loading, indexing and one warm-up query are not
    timed). Candidates a reranker drops (a cascade's pruned ones) follow its ranking in
    first-stage order, so recall at ``depth`` always measures the candidate pool.

    Args:
        dataset: The ``Dataset`` (see ``load_dataset``).
        first_stage: ``"bm25"``, ``"dense"``, ``"hybrid"``, ``"all"``, a ``FirstStage`` object,
            or a list of these. Named stages share one BM25 and one dense index.
        rerankers: Reranker specs for ``load_reranker`` (e.g.
            ``"bi-encoder:all-MiniLM-L6-v2"``) or ``Reranker`` objects; may be empty.
        depth: Candidates taken from the first stage (and passed to each reranker).
        k: Metric cut-off.
        embedding_model: Model of the named dense / hybrid stages.
        limit_queries: Evaluate only the first N queries (to try things quickly).
        show_progress: Show tqdm progress bars on stderr.
        warmup: Run the first query once, untimed, before timing (first calls are slow).
        cold_cache: Empty every reranker's embedding cache (``clear_cache()``, e.g. a
            ``BiEncoderReranker``'s passage embeddings, cascade stages included) before each
            timed call, so latency is that of passages never seen before. By default caches
            stay warm, as in a service that keeps running: over a fixed corpus each passage is
            encoded once, and most later candidates come from the cache.
        fusion: Weights on the reranker (or ``Fusion`` objects; a weight means z-score
            fusion): for each, every reranked system gets a fused variant, named
            ``"<system> (fused zscore w=0.7)"``, whose order fuses the reranker's scores with
            the first stage's scores of the same candidates (``Reranker.rerank(fusion=...)``).
            Fused variants reuse the reranker's scores: no model runs again; their latency is
            the reranker's plus the fusion's.
        long_documents: For rerankers given as specs: ``"truncate"``, ``"max"``, ``"mean"`` or
            ``"first"`` (see ``Reranker.set_long_documents``); ``None`` keeps their default.
            Reranker objects keep their own setting.
        score_cache: For rerankers given as specs that score pairs (cross-encoders,
            FlashRank, cascade stages): one shared ``ScoreCache``, or a file name for a
            persistent one (see ``ScoreCache``), so a pair is scored once across first stages,
            runs and ``tune``. Quality is unchanged; latency of cached pairs is that of a
            lookup, so time rerankers without it. Cannot be combined with ``cold_cache``.
        assembly: Context-assembly settings (``dedupe``, ``diversity``, ``similarity_model``,
            ``order``, ``boosts``, ``token_budget``; see ``Reranker.rerank``): every reranked
            system gets a variant ``"<system> (context ...)"`` whose ranking is the assembled
            one (dropped candidates follow in first-stage order), from the same scores; its
            latency is the reranker's plus the assembly's. The corpus has no metadata, so
            ``boosts`` find none.

    Returns:
        A ``ComparisonResult``: each first stage followed by its reranked variants.

    Example:
        >>> from rerank_kit.evaluation import compare, load_dataset
        >>> data = load_dataset("data/beir/cranfield")  # doctest: +SKIP
        >>> result = compare(data, "bm25", ["bi-encoder:all-MiniLM-L6-v2"])  # doctest: +SKIP
        >>> print(result.to_table())  # doctest: +SKIP
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"dataset must be a Dataset (see load_dataset), got {type(dataset).__name__}"
        )
    for label, value in (("depth", depth), ("k", k)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive int, got {value!r}")
    if limit_queries is not None:
        dataset = dataset.head(limit_queries)
    progress: Any = None
    if show_progress:
        try:
            from tqdm.auto import tqdm
        except ImportError as exc:
            raise missing_extra("eval", "tqdm", exc) from exc
        progress = tqdm

    fusions = _check_fusions(fusion)
    if long_documents is not None:
        check_long_documents(long_documents)
    if score_cache is not None and cold_cache:
        raise ValueError("score_cache and cold_cache contradict: a cold run scores every pair")
    cache = make_score_cache(score_cache)
    models = _resolve_rerankers(rerankers, long_documents, cache)
    stages, built = _resolve_first_stages(first_stage, embedding_model)
    try:
        plan = AssemblySettings.build(**(assembly or {}))
        settings = _Settings(depth, k, progress, warmup, cold_cache, tuple(fusions), plan)
        return _run(dataset, stages, models, settings)
    finally:
        for stage in built:
            stage.close()


@dataclass(frozen=True)
class _Settings:
    """How one comparison runs: depth, cut-off, progress bar, warm-up, cache, fusions."""

    depth: int
    k: int
    tqdm: Any
    warmup: bool
    cold_cache: bool = False
    fusions: tuple[Fusion, ...] = ()
    assembly: AssemblySettings | None = None


def _assembly_label(plan: AssemblySettings) -> str:
    """``"context dedupe=0.8 order=lost-in-the-middle"``: the settings that differ from off."""
    off = AssemblySettings()
    parts = []
    for name in ("dedupe", "diversity", "similarity_model", "order", "boosts", "token_budget"):
        value = getattr(plan, name)
        if value != getattr(off, name):
            shown = getattr(value, "name", value) if name == "similarity_model" else value
            parts.append(f"{name}={len(value) if name == 'boosts' else shown}")
    return "context " + " ".join(parts)


def _run(
    dataset: Dataset, stages: list[FirstStage], models: list[Reranker], settings: _Settings
) -> ComparisonResult:
    depth, k, tqdm, warmup = settings.depth, settings.k, settings.tqdm, settings.warmup
    cold_cache, fusions = settings.cold_cache, settings.fusions
    corpus = dataset.corpus
    for stage in stages:
        logger.info("indexing %d documents for %s", len(corpus), stage.name)
        stage.index(corpus, show_progress=tqdm is not None)
    stage_names = _unique_names([s.name for s in stages])
    model_names = _unique_names([m.name for m in models])

    def candidates(stage: FirstStage, query: str) -> tuple[list[Hit], list[str], float]:
        start = time.perf_counter()
        hits = stage.search(query, depth)
        elapsed = time.perf_counter() - start
        return hits, [corpus[doc_id].full_text for doc_id, _ in hits], elapsed

    if warmup:
        query = next(iter(dataset.queries.values()))
        for stage in stages:
            hits, texts, _ = candidates(stage, query)
            for model in models:
                _reranked(model, query, hits, texts)

    runs: dict[tuple[int, int | None], dict[str, list[str]]] = {}
    times: dict[tuple[int, int | None], list[float]] = {}
    # fused variants: (stage, model, fusion) -> run, and the fusion's own time per query
    fused_runs: dict[tuple[int, int, int], dict[str, list[str]]] = {}
    fused_times: dict[tuple[int, int, int], list[float]] = {}
    first_times: dict[int, list[float]] = {i: [] for i in range(len(stages))}
    counts: dict[tuple[int, int], tuple[int, int]] = {}  # (candidates reranked, truncated)
    queries: Iterable[tuple[str, str]] = dataset.queries.items()
    if tqdm is not None:
        queries = tqdm(
            list(queries), desc=f"{dataset.name}", unit="query", file=sys.stderr, leave=False
        )
    for qid, query in queries:
        for si, stage in enumerate(stages):
            hits, texts, first_elapsed = candidates(stage, query)
            first_times[si].append(first_elapsed)
            runs.setdefault((si, None), {})[qid] = [doc_id for doc_id, _ in hits]
            for mi, model in enumerate(models):
                if cold_cache:
                    _clear_caches(model)
                start = time.perf_counter()
                ranked, order, cut = _reranked(model, query, hits, texts)
                times.setdefault((si, mi), []).append(time.perf_counter() - start)
                runs.setdefault((si, mi), {})[qid] = order
                first_scores = [score for _, score in hits]
                for fi, fuser in enumerate(fusions):
                    start = time.perf_counter()
                    fused = fuse_ranked(ranked, first_scores, fuser)
                    fused_times.setdefault((si, mi, fi), []).append(time.perf_counter() - start)
                    fused_runs.setdefault((si, mi, fi), {})[qid] = _ids(fused, hits)
                if settings.assembly is not None:  # the variant after the fused ones
                    plan, fi = settings.assembly, len(fusions)
                    start = time.perf_counter()
                    live = [r.index for r in ranked if not r.empty]
                    kept = plan.apply(ranked, texts, context=plan.prepare(texts, live, model))
                    fused_times.setdefault((si, mi, fi), []).append(time.perf_counter() - start)
                    fused_runs.setdefault((si, mi, fi), {})[qid] = _ids(kept, hits)
                n_seen, n_cut = counts.get((si, mi), (0, 0))
                counts[(si, mi)] = (n_seen + len(hits), n_cut + cut)

    qrels = dataset.judged_qrels
    context_label = _assembly_label(settings.assembly) if settings.assembly else ""
    systems: list[SystemResult] = []
    variants: list[tuple[int | None, int | None]] = [(None, None)]
    for model_index in range(len(models)):
        variants.append((model_index, None))
        extra = len(fusions) + (settings.assembly is not None)  # the assembled variant last
        variants.extend((model_index, fusion_index) for fusion_index in range(extra))
    for si in range(len(stages)):
        first = LatencyStats.from_seconds(first_times[si])
        for variant, fusion_index in variants:
            run = (
                runs[(si, variant)]
                if fusion_index is None or variant is None
                else fused_runs[(si, variant, fusion_index)]
            )
            means, per_query = evaluate_run(run, qrels, k=k, recall_depth=depth)
            truncated: float | None = None
            fusion_info: dict[str, Any] | None = None
            if variant is None:
                name, reranker_name = stage_names[si], None
                latency: dict[str, LatencyStats | None] = {
                    "first_stage": first,
                    "reranker": None,
                    "total": first,
                }
            else:
                reranker_name = model_names[variant]
                rerank_times = times[(si, variant)]
                if fusion_index is not None and fusion_index == len(fusions):
                    reranker_name = f"{reranker_name} ({context_label})"
                    rerank_times = [
                        a + b
                        for a, b in zip(
                            rerank_times, fused_times[(si, variant, fusion_index)], strict=True
                        )
                    ]
                elif fusion_index is not None:
                    fuser = fusions[fusion_index]
                    reranker_name = f"{reranker_name} ({fuser.label})"
                    fusion_info = {"method": fuser.method, "weight": fuser.weight}
                    rerank_times = [
                        a + b
                        for a, b in zip(
                            rerank_times, fused_times[(si, variant, fusion_index)], strict=True
                        )
                    ]
                name = f"{stage_names[si]} >> {reranker_name}"
                seen, cut = counts[(si, variant)]
                truncated = cut / seen if seen else 0.0
                if cut and fusion_index is None:
                    logger.warning(
                        "%s: %d of %d candidates (%.0f%%) were longer than the model's token "
                        "limit; only their start was scored",
                        name,
                        cut,
                        seen,
                        100.0 * truncated,
                    )
                latency = {
                    "first_stage": first,
                    "reranker": LatencyStats.from_seconds(rerank_times),
                    "total": LatencyStats.from_seconds(
                        [a + b for a, b in zip(first_times[si], rerank_times, strict=True)]
                    ),
                }
            systems.append(
                SystemResult(
                    name,
                    stage_names[si],
                    reranker_name,
                    means,
                    latency,
                    per_query,
                    run,
                    truncated,
                    fusion_info,
                )
            )
            logger.info("%s: %s", name, ", ".join(f"{m}={v:.4f}" for m, v in means.items()))
    return ComparisonResult(
        dataset=dataset.name,
        num_queries=len(dataset.queries),
        num_documents=len(corpus),
        k=k,
        depth=depth,
        systems=tuple(systems),
    )
