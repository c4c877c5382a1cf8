"""Cascades: a cheap model prunes the list, a better one orders the survivors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rerank_kit._core import telemetry
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.ranking import order_by_score
from rerank_kit._core.score_cache import make_score_cache
from rerank_kit._core.types import PairScores
from rerank_kit._core.windows import check_long_documents

__all__ = ["CascadeReranker", "Stage"]


@dataclass(frozen=True)
class Stage:
    """One stage of a cascade.

    Attributes:
        reranker: The model of this stage.
        keep: How many of the candidates it scores go on to the next stage (``None``: all).
        name: Key of this stage in ``Ranked.stage_scores`` (default: the reranker's name).

    Example:
        >>> from rerank_kit import Stage  # doctest: +SKIP
        >>> Stage(FlashRankReranker(), keep=20)  # doctest: +SKIP
    """

    reranker: Reranker
    keep: int | None = None
    name: str | None = None


StageLike = Stage | tuple[Reranker, int | None] | Reranker


class _Run:
    """The state of one cascade run: survivors and every stage's scores and flags."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.survivors = list(range(n))
        self.per_doc: list[dict[str, float]] = [{} for _ in range(n)]
        self.truncated = [False] * n
        self.repaired = [False] * n
        self.last: list[float] = []

    def texts(self, texts: list[str]) -> list[str]:
        return [texts[i] for i in self.survivors]

    def record(self, stage: Stage, name: str, result: PairScores) -> None:
        for doc, s, cut, fix in zip(
            self.survivors,
            result.scores,
            result.truncated or [],
            result.llm_repaired or [],
            strict=True,
        ):
            self.per_doc[doc][name] = s
            self.truncated[doc] = self.truncated[doc] or cut
            self.repaired[doc] = self.repaired[doc] or fix
        order = order_by_score(result.scores)
        if stage.keep is not None:
            order = order[: stage.keep]
        self.survivors = [self.survivors[j] for j in order]
        self.last = [result.scores[j] for j in order]

    def result(self) -> PairScores:
        """Last stage's scores for survivors, ``-inf`` for pruned ones; survivors in order."""
        scores = [float("-inf")] * self.n
        for d, s in zip(self.survivors, self.last, strict=True):
            scores[d] = s
        return PairScores(
            scores,
            truncated=self.truncated,
            llm_repaired=self.repaired,
            stage_scores=self.per_doc,
            order=list(self.survivors),
        )


class CascadeReranker(Reranker):
    """Runs rerankers in sequence, each on the previous stage's survivors.

    Stage 1 scores every candidate and keeps its best ``keep``; stage 2 scores only those, and so
    on. The final order is the last stage's. Every stage's score of each survivor is kept in
    ``Ranked.stage_scores``. ``score()`` gives the last stage's score to candidates that reach it
    and ``-inf`` to pruned ones; ``rerank()`` returns survivors only. ``arerank()`` awaits each
    stage's async path (a remote stage awaits httpx, a listwise stage its ``allm``).

    Args:
        stages: ``Stage`` objects, ``(reranker, keep)`` tuples, or bare rerankers (keep all).

    Example:
        >>> from rerank_kit import CascadeReranker, load_reranker  # doctest: +SKIP
        >>> cascade = CascadeReranker([
        ...     (load_reranker("flashrank:ms-marco-TinyBERT-L-2-v2"), 20),
        ...     (load_reranker("cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"), None),
        ... ])  # doctest: +SKIP
        >>> best = cascade.rerank("query", candidates, top_n=5)  # doctest: +SKIP
        >>> best[0].stage_scores  # doctest: +SKIP
        {'flashrank:ms-marco-TinyBERT-L-2-v2': 0.91, 'cross-encoder:...': 0.97}
    """

    #: Stages lock their own models; the cascade itself holds no lock.
    serialise = False
    #: Its stages score the pairs (and count them, each in a span of its own).
    _composite = True

    def __init__(self, stages: Sequence[StageLike]) -> None:
        super().__init__()
        if isinstance(stages, (str, bytes)) or not stages:
            raise ValueError("a cascade needs at least one stage")
        built: list[Stage] = []
        for i, raw in enumerate(stages):
            if isinstance(raw, Stage):
                stage = raw
            elif isinstance(raw, Reranker):
                stage = Stage(raw)
            elif isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[0], Reranker):
                stage = Stage(raw[0], raw[1])
            else:
                raise TypeError(
                    f"stage {i} must be a Stage, a (reranker, keep) tuple or a Reranker, "
                    f"got {raw!r}"
                )
            keep = stage.keep
            if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int)):
                raise TypeError(f"stage {i}: keep must be a positive int or None, got {keep!r}")
            if keep is not None and keep <= 0:
                raise ValueError(f"stage {i}: keep must be >= 1 or None, got {keep}")
            built.append(stage)
        names: list[str] = []
        for stage in built:
            base = stage.name or stage.reranker.name
            name, k = base, 2
            while name in names:
                name, k = f"{base}#{k}", k + 1
            names.append(name)
        self.stages: tuple[Stage, ...] = tuple(built)
        self.supports_threshold = built[-1].reranker.supports_threshold
        self.stage_names: tuple[str, ...] = tuple(names)
        self.name = " >> ".join(
            f"{n}@{s.keep}" if s.keep is not None else n for n, s in zip(names, built, strict=True)
        )

    def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
        run = _Run(len(texts))
        for i, (stage, name) in enumerate(zip(self.stages, self.stage_names, strict=True)):
            with telemetry.stage(stage.reranker, name, i, stage.keep, len(run.survivors)):
                run.record(stage, name, stage.reranker._scored(query, run.texts(texts)))
        return run.result()

    async def _ascore_pairs(self, query: str, texts: list[str]) -> PairScores:
        """Each stage's async scoring: remote and LLM stages await, local ones use a thread."""
        run = _Run(len(texts))
        for i, (stage, name) in enumerate(zip(self.stages, self.stage_names, strict=True)):
            with telemetry.stage(stage.reranker, name, i, stage.keep, len(run.survivors)):
                run.record(stage, name, await stage.reranker._ascored(query, run.texts(texts)))
        return run.result()

    def token_counts(self, texts: Sequence[str]) -> list[int] | None:
        """The last stage's ``token_counts`` (it orders what is kept)."""
        return self.stages[-1].reranker.token_counts(texts)

    def set_score_cache(self, score_cache: Any) -> None:
        """Share one score cache among the stages that keep one (see ``Reranker.set_score_cache``).

        Raises ``ValueError`` when no stage keeps one.
        """
        cache = make_score_cache(score_cache)
        took = False
        for stage in self.stages:
            try:
                stage.reranker.set_score_cache(cache)
                took = True
            except ValueError:
                continue
        if not took:
            raise ValueError(f"no stage of {self.name} keeps a score cache")

    def set_long_documents(self, mode: str) -> None:
        """Set ``long_documents`` on every stage (see ``Reranker.set_long_documents``)."""
        check_long_documents(mode)
        for stage in self.stages:
            stage.reranker.set_long_documents(mode)
        self.long_documents = mode
