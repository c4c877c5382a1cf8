"""The search behind ``tune``: settings, their simulated rankings, and the cross-fitted choice.

Every candidate of every query is scored once per reranker before anything is searched; a
setting (reranker or none, first stage, depth, a cascade's keep, fusion, and the query-length
split of the fusion weight) is then a matter of arithmetic on those scores. The choice on a
set of queries is the setting with the best mean nDCG on them; whether the query-length split
may be chosen is itself decided by cross-fitting inside those queries (it must win on held-out
queries there), so the judgments of the queries a choice is applied to never reach it.

Example:
    >>> s = Setting("bi-encoder:x", "bm25", 20, 0.8, "zscore", long_weight=0.2, long_tokens=12)
    >>> s.label
    'bi-encoder:x over bm25 depth 20, zscore w=0.8, w=0.2 above 12 tokens'
    >>> s.for_length(30).weight, s.for_length(5).weight
    (0.2, 0.8)
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from rerank_kit._core.fusion import Fusion, fuse
from rerank_kit._rerankers.first_stage import FIRST_STAGE_ONLY

__all__ = ["Scored", "Search", "Setting", "length_thresholds", "split_queries_into_folds"]

#: Weights the query-length split chooses from, for short and for long queries.
DEFAULT_SPLIT_WEIGHTS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Setting:
    """One pipeline ``tune`` can choose.

    Attributes:
        reranker: The reranker's label (its spec or name), or ``"none"``: first stage only.
        first_stage: ``"bm25"``, ``"dense"`` or ``"hybrid"``.
        depth: Candidates reranked.
        weight: Fusion weight on the reranker (``None``: no fusion); for queries that are
            not long when the setting splits by length.
        method: Fusion method.
        keep: A cascade's first-stage keep (``None``: not a cascade, or its own keep).
        long_weight: With ``long_tokens``: the weight for queries longer than that.
        long_tokens: Query length (tokens) above which ``long_weight`` applies.
    """

    reranker: str
    first_stage: str
    depth: int
    weight: float | None
    method: str
    keep: int | None = None
    long_weight: float | None = None
    long_tokens: int | None = None

    @property
    def first_stage_only(self) -> bool:
        """True for "no reranker"."""
        return self.reranker == FIRST_STAGE_ONLY

    @property
    def split(self) -> bool:
        """True if the fusion weight depends on the query's length."""
        return self.long_tokens is not None

    def for_length(self, tokens: int) -> Setting:
        """The plain setting applied to a query of ``tokens`` tokens."""
        if self.long_tokens is None:
            return self
        weight = self.long_weight if tokens > self.long_tokens else self.weight
        return replace(self, weight=weight, long_weight=None, long_tokens=None)

    @property
    def label(self) -> str:
        """Short text for reports."""
        if self.first_stage_only:
            return f"first stage only: {self.first_stage}"
        if self.weight is None:
            fusion = "no fusion"
        else:
            fusion = f"{self.method} w={self.weight:g}"
            if self.long_weight is not None:
                fusion += f", w={self.long_weight:g} above {self.long_tokens} tokens"
        keep = "" if self.keep is None else f", keep {self.keep}"
        return f"{self.reranker} over {self.first_stage} depth {self.depth}{keep}, {fusion}"


@dataclass
class Scored:
    """One query's candidates under one reranker and first stage, and every score needed.

    Ids, first-stage scores, the reranker's (final stage's) scores, for a cascade the scores of
    the stages before the last one, and the query's length in tokens.
    """

    ids: list[str]
    first: list[float]
    final: list[float]
    earlier: list[list[float]] = field(default_factory=list)
    length: int = 0

    def order(
        self, setting: Setting, fixed_keeps: Sequence[int | None]
    ) -> tuple[list[int], list[float]]:
        """Indices of the head (``depth``) in the pipeline's order, and their sort keys.

        The reranked (surviving) candidates come first, ordered by the final score, fused with
        the first-stage score when the setting fuses (with the weight for this query's length);
        candidates a cascade stage pruned follow in first-stage order (as ``compare`` ranks
        them), with keys of ``-inf``.
        """
        setting = setting.for_length(self.length)
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


def split_queries_into_folds(
    qids: Sequence[str], folds: int, seed: int, test_size: float | None = None
) -> list[list[str]]:
    """Seeded split of query ids into ``folds`` (or one held-out share, ``test_size``).

    Example:
        >>> sorted(len(f) for f in split_queries_into_folds(list("abcdefg"), 3, 0))
        [2, 2, 3]
    """
    shuffled = list(qids)
    random.Random(seed).shuffle(shuffled)
    if test_size is not None:
        cut = max(1, round(len(shuffled) * test_size))
        return [shuffled[:cut]]
    return [shuffled[i::folds] for i in range(folds)]


def length_thresholds(lengths: Sequence[int]) -> list[int]:
    """The query-length thresholds searched: the quartiles of the queries' lengths.

    A query is long when it has more tokens than the threshold; thresholds that leave one side
    empty are dropped. Lengths come from the query texts alone, never from judgments.

    Example:
        >>> length_thresholds([3, 4, 5, 6, 20, 30, 40, 50])
        [4, 13, 32]
    """
    values = sorted(lengths)
    if len(values) < 2:
        return []
    cuts = statistics.quantiles(values, n=4, method="inclusive")
    return sorted({int(c) for c in cuts if values[0] <= int(c) < values[-1]})


class Search:
    """Choose settings on a set of queries from per-query nDCG of every plain setting.

    Args:
        main: Setting -> query id -> nDCG of the plain (unsplit) settings evaluated.
        candidates: The plain settings the choice ranges over.
        lengths: Query id -> tokens.
        thresholds: Query-length thresholds for the split (empty: no split).
        split_weights: The weights a split chooses from for each side.
    """

    def __init__(
        self,
        main: Mapping[Setting, Mapping[str, float]],
        candidates: Sequence[Setting],
        lengths: Mapping[str, int],
        thresholds: Sequence[int],
        split_weights: Sequence[float],
    ) -> None:
        self.main = main
        self.candidates = list(candidates)
        self.lengths = lengths
        self.thresholds = list(thresholds)
        self.split_weights = list(split_weights)
        bases: dict[Setting, None] = {}
        for s in self.candidates:
            if not s.first_stage_only and s.weight is not None:
                bases.setdefault(replace(s, weight=0.0), None)
        self.bases = [
            b
            for b in bases
            if all(replace(b, weight=w) in main for w in self.split_weights) and self.thresholds
        ]

    def value(self, setting: Setting, qid: str) -> float:
        """The nDCG of ``setting`` on query ``qid`` (split: the side the query is on)."""
        return self.main[setting.for_length(self.lengths[qid])][qid]

    def _plain(self, on: Sequence[str], pool: Sequence[Setting]) -> tuple[Setting | None, float]:
        best, best_total = None, -math.inf
        for s in pool:
            per = self.main[s]
            total = sum(per[q] for q in on)
            if total > best_total + 1e-12:
                best, best_total = s, total
        return best, best_total

    def _split(self, on: Sequence[str], reranker: str | None) -> tuple[Setting | None, float]:
        best, best_total = None, -math.inf
        for base in self.bases:
            if reranker is not None and base.reranker != reranker:
                continue
            for t in self.thresholds:
                short = [q for q in on if self.lengths[q] <= t]
                long = [q for q in on if self.lengths[q] > t]
                if not short or not long:
                    continue
                ws, ts = self._side(base, short)
                wl, tl = self._side(base, long)
                if ws == wl:
                    continue  # not a split: the plain setting is a candidate already
                if ts + tl > best_total + 1e-12:
                    best = replace(base, weight=ws, long_weight=wl, long_tokens=t)
                    best_total = ts + tl
        return best, best_total

    def _side(self, base: Setting, on: Sequence[str]) -> tuple[float, float]:
        out, out_total = self.split_weights[0], -math.inf
        for w in self.split_weights:
            per = self.main[replace(base, weight=w)]
            total = sum(per[q] for q in on)
            if total > out_total + 1e-12:
                out, out_total = w, total
        return out, out_total

    def best(
        self,
        on: Sequence[str],
        *,
        split: bool,
        exclude: str | None = None,
        only: str | None = None,
    ) -> Setting | None:
        """The setting with the best mean nDCG on ``on``.

        Args:
            on: Query ids the choice may look at.
            split: Whether query-length split settings compete.
            exclude: Leave out settings of this reranker (for the runner-up).
            only: Only settings of this reranker (``"none"``: the best first stage alone).
        """
        pool = [
            s
            for s in self.candidates
            if (exclude is None or s.reranker != exclude) and (only is None or s.reranker == only)
        ]
        best, total = self._plain(on, pool)
        if split and only != FIRST_STAGE_ONLY:
            rerankers = {s.reranker for s in pool if not s.first_stage_only}
            for r in sorted(rerankers):
                candidate, candidate_total = self._split(on, r)
                if candidate is not None and candidate_total > total + 1e-12:
                    best, total = candidate, candidate_total
        return best

    def split_wins(self, on: Sequence[str], folds: int, seed: int) -> bool:
        """Whether allowing the split wins on held-out queries, cross-fitted inside ``on``."""
        if not self.bases:
            return False
        inner = split_queries_into_folds(on, max(2, min(folds, len(on))), seed)
        gain = 0.0
        for fold in inner:
            held = set(fold)
            train = [q for q in on if q not in held]
            if not train or not fold:
                continue
            with_split = self.best(train, split=True)
            without = self.best(train, split=False)
            if with_split is None or without is None:
                continue
            gain += sum(self.value(with_split, q) - self.value(without, q) for q in fold)
        return gain > 1e-12

    def choose(self, on: Sequence[str], folds: int, seed: int) -> Setting:
        """The choice on ``on``: split settings compete only if they win held-out inside it."""
        pick = self.best(on, split=self.split_wins(on, folds, seed))
        if pick is None:
            raise ValueError("no setting to choose from")
        return pick
