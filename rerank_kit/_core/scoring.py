"""What happens around a reranker's one scoring hook, for the sync and async paths alike.

``ScorePlan`` holds every decision of one scoring call: blank passages are set aside (score
``-inf``, flagged ``empty``), the score cache answers what it can, and only the rest is sent to
the model. ``Split`` cuts long passages into token windows (``long_documents``) and folds the
windows' scores back. ``checked`` turns whatever the hook returned into a ``PairScores`` with
its count and values checked. ``Reranker._scored`` and ``Reranker._ascored`` drive these and
differ only in the call that waits.

Example:
    >>> plan = ScorePlan("fake", "q", ["a", " ", "b"], cache=None)
    >>> plan.pending
    ['a', 'b']
    >>> plan.finish(PairScores([0.5, 0.1])).scores
    [0.5, -inf, 0.1]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from rerank_kit._core.checks import is_blank
from rerank_kit._core.score_cache import ScoreCache
from rerank_kit._core.types import PairScores
from rerank_kit._core.windows import MIN_BUDGET, WindowPlan, aggregate, make_windows

__all__ = ["EMPTY_SCORE", "ScorePlan", "Split", "checked"]

logger = logging.getLogger(__name__)

#: The score of a blank passage: below every real score, so it ranks last and fails thresholds.
EMPTY_SCORE = float("-inf")


def checked(raw: PairScores | Sequence[float], n: int, name: str) -> PairScores:
    """The hook's result as a ``PairScores`` of ``n`` plain floats (count and NaN checked).

    Example:
        >>> checked([1, 0.5], 2, "m").scores
        [1.0, 0.5]
    """
    result = raw if isinstance(raw, PairScores) else PairScores([float(s) for s in raw])
    scores = [float(s) for s in result.scores]
    if len(scores) != n:
        raise RuntimeError(f"{name} returned {len(scores)} scores for {n} texts")
    for i, s in enumerate(scores):
        if s != s:  # NaN
            raise RuntimeError(f"{name} returned NaN for texts[{i}]")
    if scores == result.scores and all(type(s) is float for s in result.scores):
        return result
    return PairScores(
        scores,
        truncated=result.truncated,
        llm_repaired=result.llm_repaired,
        stage_scores=result.stage_scores,
        order=result.order,
    )


def _usable(hit: tuple[float, bool], name: str) -> bool:
    """Whether a cache hit passes the checks model output gets (else the pair is rescored).

    The cache file's reader and ``ScoreCache.put`` keep only finite scores; this guards
    against entries placed any other way (a ``NaN`` from the cache never reaches a result).
    """
    score, cut = hit
    if type(score) is float and math.isfinite(score) and type(cut) is bool:
        return True
    logger.debug("%s: a cached score %r is not a finite float; rescoring the pair", name, score)
    return False


class Split:
    """Long passages cut into windows for one call, and the windows' scores folded back.

    Built under the model lock (window planning uses the model's tokenizer).
    """

    def __init__(self, name: str, mode: str, plan: WindowPlan | None, texts: list[str]) -> None:
        self.n = len(texts)
        self.mode = mode
        self.texts = texts
        self.owner: list[int] | None = None
        self.split: list[bool] = []
        if mode == "truncate" or plan is None:
            return
        if plan.budget < MIN_BUDGET:
            logger.debug(
                "%s: the query leaves only %d tokens for the passage; truncating instead of "
                "scoring windows",
                name,
                plan.budget,
            )
            return
        windows, owner, split = make_windows(texts, plan, first_only=mode == "first")
        if any(split):
            logger.debug("%s: %d passages -> %d windows", name, len(texts), len(windows))
            self.texts, self.owner, self.split = windows, owner, split

    def fold(self, result: PairScores) -> PairScores:
        """Per-passage scores and flags from per-window ones (identity without windows)."""
        if self.owner is None:
            return result
        if result.order is not None or result.stage_scores is not None:
            raise RuntimeError("a cascade result cannot be folded from windows")
        flags = [self.mode == "first" and cut for cut in self.split]
        repaired = [False] * self.n
        for i, cut, fix in zip(
            self.owner, result.truncated or [], result.llm_repaired or [], strict=True
        ):
            flags[i] = flags[i] or cut
            repaired[i] = repaired[i] or fix
        scores = aggregate(result.scores, self.owner, self.n, self.mode)
        return PairScores(scores, truncated=flags, llm_repaired=repaired)


class ScorePlan:
    """One scoring call's bookkeeping: blanks, cache hits and the passages left to score.

    Args:
        name: The reranker's name (the cache key and the name in messages).
        query: The checked query.
        texts: The checked passages (may hold blanks and repeats).
        cache: The reranker's score cache, or ``None``.
    """

    def __init__(self, name: str, query: str, texts: list[str], cache: ScoreCache | None) -> None:
        self.name = name
        self.query = query
        self.texts = texts
        self.cache = cache
        self.blank = [is_blank(t) for t in texts]
        live = [i for i, b in enumerate(self.blank) if not b]
        self.hits: dict[str, tuple[float, bool]] = {}
        if cache is None:
            self.live = live
            self.pending = [texts[i] for i in live]
            return
        distinct = list(dict.fromkeys(texts[i] for i in live))
        found = cache.get(name, query, distinct)
        for text, hit in zip(distinct, found, strict=True):
            if hit is not None and _usable(hit, name):
                self.hits[text] = hit
        self.live = live
        self.pending = [t for t in distinct if t not in self.hits]

    def finish(self, fresh: PairScores | None) -> PairScores:
        """The full result, in input order, from the model's result for ``pending``."""
        n = len(self.texts)
        if fresh is None:
            fresh = PairScores([])
        if self.cache is not None:
            if self.pending:
                self.cache.put(
                    self.name, self.query, self.pending, fresh.scores, fresh.truncated or []
                )
            known = dict(self.hits)
            known.update(
                zip(
                    self.pending, zip(fresh.scores, fresh.truncated or [], strict=True), strict=True
                )
            )
            scores = [EMPTY_SCORE] * n
            cut = [False] * n
            for i in self.live:
                scores[i], cut[i] = known[self.texts[i]]
            return PairScores(scores, truncated=cut, empty=self.blank)
        return self._spread(fresh)

    def _spread(self, fresh: PairScores) -> PairScores:
        """Place the model's result (over the non-blank passages) back among the blanks."""
        if not any(self.blank):
            return fresh
        n = len(self.texts)
        scores = [EMPTY_SCORE] * n
        cut = [False] * n
        fixed = [False] * n
        stages: list[dict[str, float]] | None = (
            [{} for _ in range(n)] if fresh.stage_scores else None
        )
        for j, i in enumerate(self.live):
            scores[i] = fresh.scores[j]
            cut[i] = (fresh.truncated or [])[j]
            fixed[i] = (fresh.llm_repaired or [])[j]
            if stages is not None and fresh.stage_scores is not None:
                stages[i] = fresh.stage_scores[j]
        order: list[int] | None = None
        if fresh.order is not None:
            order = [self.live[j] for j in fresh.order]
            order += [i for i, b in enumerate(self.blank) if b]
        return PairScores(
            scores,
            truncated=cut,
            llm_repaired=fixed,
            empty=self.blank,
            stage_scores=stages,
            order=order,
        )


def report_flags(
    reranker: Any, result: PairScores, log: logging.Logger | None = None
) -> PairScores:
    """Log ``result``'s truncated and blank passages: a warning the first time, then at DEBUG.

    ``reranker`` (any object with a ``name``) remembers in its ``__dict__`` that it warned.
    """
    log = log or logger
    for flags, key, what in (
        (
            result.truncated,
            "_warned_truncated",
            "were longer than the model's token limit "
            "and were truncated (only their start was scored; see long_documents)",
        ),
        (
            result.empty,
            "_warned_empty",
            "were empty or whitespace only: not scored, given "
            "score -inf and ranked last (flagged empty)",
        ),
    ):
        count = sum(flags or [])
        if count:
            first = not reranker.__dict__.get(key)
            reranker.__dict__[key] = True
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "%s: %d of %d passages %s%s",
                reranker.name,
                count,
                len(result.scores),
                what,
                "; further cases are logged at DEBUG" if first else "",
            )
    return result
