"""One call's context assembly: the checked settings, and the steps applied in their order.

After scoring (and fusion), on the reranker's final scores:

1. ``boosts``: metadata adjustments added to each score (then reordered by the new score);
2. ``dedupe``: near-duplicates of a better passage dropped;
3. ``diversity``: maximal-marginal-relevance order;
4. ``score_threshold``, ``top_n`` and ``token_budget`` together: walk that order, skip passages
   under the threshold or too long for what is left of the budget, stop at ``top_n``;
5. ``order``: the kept passages placed for the prompt (``"lost-in-the-middle"``).

Blank passages take no part in 1-3 and stay last (with ``token_budget``, they are dropped). Decisions are the same in ``rerank`` and
``arerank``; only the embedding of the passages (with ``similarity_model``) is awaited there.

Example:
    >>> from rerank_kit import Ranked
    >>> plan = AssemblySettings(dedupe=1.0, order="lost-in-the-middle")
    >>> texts = ["a b", "a  b", "c", "d"]
    >>> ranked = [Ranked(i, s) for i, s in enumerate([4.0, 3.0, 2.0, 1.0])]
    >>> out = plan.apply(ranked, texts, context=plan.prepare(texts, [0, 1, 2, 3], object()))
    >>> [(r.index, r.context_rank, r.duplicates) for r in out]
    [(0, 1, (1,)), (3, 3, ()), (2, 2, ())]
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from rerank_kit._core.assembly.boosts import boost_of, check_boosts
from rerank_kit._core.assembly.budget import TokenCounter, token_counter
from rerank_kit._core.assembly.dedupe import dedupe
from rerank_kit._core.assembly.diversity import mmr
from rerank_kit._core.assembly.order import check_order, lost_in_the_middle
from rerank_kit._core.assembly.similarity import (
    Embedder,
    EmbeddingSimilarity,
    LexicalSimilarity,
    Similarity,
    embed,
    load_similarity_model,
)
from rerank_kit._core.calibration import Cutoff, CutoffWalk
from rerank_kit._core.types import Ranked

__all__ = ["SETTINGS", "Assembly", "AssemblySettings", "Context", "check_metadata"]

logger = logging.getLogger(__name__)
_HOW = {"words": "as whitespace words", "tokenizer": "with the reranker's tokenizer"}


def _fraction(name: str, value: Any, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise TypeError(f"{name} must be a number, got {value!r}")
    ok = (0.0 < value <= 1.0) if low_open else (0.0 <= value <= 1.0)
    if not ok:
        span = "(0, 1] (a similarity; 1.0: exact duplicates only)" if low_open else "[0, 1]"
        raise ValueError(f"{name} must be in {span}, got {value!r}")
    return float(value)


def check_metadata(metadata: Any, n: int) -> list[Mapping[str, Any] | None] | None:
    """Each passage's metadata (a dict or ``None``), one per text, or ``None`` for none."""
    if metadata is None:
        return None
    if isinstance(metadata, (str, bytes, Mapping)) or not isinstance(metadata, Sequence):
        raise TypeError(f"metadata must be a list of dicts (one per text), got {metadata!r}")
    items = list(metadata)
    if len(items) != n:
        raise ValueError(f"metadata has {len(items)} entries for {n} texts")
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, Mapping):
            raise TypeError(f"metadata[{i}] must be a dict or None, got {type(item).__name__}")
    return items


def _note(owner: MutableMapping[str, Any], key: str, message: str, *args: Any) -> None:
    """Log a warning the first time for ``owner`` (a reranker's ``__dict__``), then DEBUG."""
    first = not owner.get(key)
    owner[key] = True
    suffix = "; further cases are logged at DEBUG" if first else ""
    logger.log(logging.WARNING if first else logging.DEBUG, message + "%s", *args, suffix)


@dataclass(frozen=True)
class Context:
    """What the steps need beyond the scores: the similarity, the token counter, the logger."""

    similarity: Similarity | None
    counter: TokenCounter | None
    owner: MutableMapping[str, Any]


@dataclass(frozen=True)
class AssemblySettings:
    """The context-assembly settings as one value, checked (and normalised) once, when built.

    ``rerank``/``arerank`` take it as ``assembly=`` (instead of the six keywords), and the
    adapters and ``Pipeline`` build it once and carry it, so no call checks the settings again.
    The steps themselves (``prepare``, ``apply``) run in the order of the module docstring.

    Attributes:
        dedupe: Similarity threshold in (0, 1] (``None``: off).
        diversity: MMR weight in [0, 1] (0: off).
        similarity_model: Bi-encoder spec or ``Embedder`` for the similarity (``None``: lexical).
        order: ``"score"`` or ``"lost-in-the-middle"``.
        boosts: The metadata boosts (given as a dict or a list of dicts; kept as a tuple of
            checked boosts).
        token_budget: Most tokens the kept passages may hold together (``None``: no limit).

    Example:
        >>> AssemblySettings(dedupe=1, order="lost-in-the-middle")
        AssemblySettings(dedupe=1.0, diversity=0.0, similarity_model=None, order='lost-in-the-middle', boosts=(), token_budget=None)
        >>> AssemblySettings(diversity=2)
        Traceback (most recent call last):
        ...
        ValueError: diversity must be in [0, 1], got 2
    """

    dedupe: float | None = None
    diversity: float = 0.0
    similarity_model: str | Embedder | None = None
    order: str = "score"
    boosts: Any = ()
    token_budget: int | None = None

    def __post_init__(self) -> None:
        threshold = None if self.dedupe is None else _fraction("dedupe", self.dedupe, True)
        weight = 0.0 if self.diversity is None else _fraction("diversity", self.diversity, False)
        model = self.similarity_model
        if model is not None:
            if not isinstance(model, (str, Embedder)) or (
                isinstance(model, str) and not model.strip()
            ):
                raise TypeError(
                    "similarity_model must be a bi-encoder spec (e.g. "
                    "'bi-encoder:all-MiniLM-L6-v2') or an embedder such as a BiEncoderReranker "
                    f"(an object with name and embed(texts)), got {model!r}"
                )
            if threshold is None and weight == 0.0:
                raise ValueError(
                    "similarity_model is used by dedupe and diversity; set one of them"
                )
        budget = self.token_budget
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int) or budget < 1
        ):
            raise ValueError(f"token_budget must be a positive int or None, got {budget!r}")
        checked = {
            "dedupe": threshold,
            "diversity": weight,
            "order": check_order("score" if self.order is None else self.order),
            "boosts": check_boosts(self.boosts),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @classmethod
    def build(cls, **settings: Any) -> AssemblySettings | None:
        """Check settings given as keywords (``None``: the default); ``None`` if all are off.

        Raises:
            TypeError: A keyword that is no context-assembly setting, or a bad value's type.
            ValueError: A value out of range.
        """
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
        plan = cls(**{k: v for k, v in settings.items() if v is not None})
        return None if plan.is_off else plan

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> AssemblySettings | None:
        """The settings of a call: its ``assembly=`` value, or built from its six keywords.

        ``options`` holds the call's context-assembly keywords (any of ``SETTINGS``) and maybe
        ``assembly`` (an ``AssemblySettings``, taken as it is: it was checked when built); both
        at once is an error. ``None`` when every step is off.
        """
        given = {k: v for k, v in options.items() if k != "assembly" and v is not None}
        built = options.get("assembly")
        if built is None:
            return cls.build(**given) if given else None
        if not isinstance(built, AssemblySettings):
            raise TypeError(f"assembly must be an AssemblySettings or None, got {built!r}")
        if given:
            raise ValueError(
                "give the context-assembly settings either as assembly= or as keywords "
                f"({', '.join(sorted(given))}), not both"
            )
        return None if built.is_off else built

    @property
    def is_off(self) -> bool:
        """Whether every step is off (the settings change nothing)."""
        return self == _OFF

    @property
    def needs_similarity(self) -> bool:
        """Whether a step compares passages (dedupe below 1.0, or diversity)."""
        return (self.dedupe is not None and self.dedupe < 1.0) or self.diversity > 0.0

    # -- before the steps: the similarity (the only part that may be awaited) --------------

    def _context(self, reranker: Any, similarity: Similarity | None) -> Context:
        counter = token_counter(reranker) if self.token_budget is not None else None
        return Context(similarity, counter, getattr(reranker, "__dict__", {}))

    def prepare(self, texts: Sequence[str], live: Sequence[int], reranker: Any) -> Context:
        """The ``Context`` for ``texts`` (``live``: indices of the non-blank candidates)."""
        similarity: Similarity | None = None
        if self.needs_similarity:
            if self.similarity_model is None:
                similarity = LexicalSimilarity(texts)
            else:
                model = load_similarity_model(self.similarity_model)
                vectors = embed(model, [texts[i] for i in live]) if live else []
                similarity = EmbeddingSimilarity(model.name, live, vectors)
        return self._context(reranker, similarity)

    async def aprepare(self, texts: Sequence[str], live: Sequence[int], reranker: Any) -> Context:
        """Async ``prepare``: loading and running the similarity model happen in a thread."""
        if self.needs_similarity and self.similarity_model is not None:
            return await asyncio.to_thread(self.prepare, texts, live, reranker)
        return self.prepare(texts, live, reranker)

    # -- the steps ---------------------------------------------------------------------------

    def _boosted(
        self,
        ranked: list[Ranked],
        metadata: Sequence[Mapping[str, Any] | None] | None,
        owner: MutableMapping[str, Any],
    ) -> list[Ranked]:
        out, missing, bad, passages = [], 0, 0, 0
        now = time.time()  # one reference time for the whole call
        for r in ranked:
            meta = None if metadata is None else metadata[r.index]
            value, lost, unread = boost_of(self.boosts, meta, now)
            missing, bad, passages = missing + lost, bad + unread, passages + bool(lost or unread)
            out.append(dataclasses.replace(r, score=float(r.score + value), boost=float(value)))
        if passages:
            fields = ", ".join(sorted({b.field for b in self.boosts}))
            _note(
                owner,
                "_warned_boosts",
                "boosts: %d of %d passages lacked a boost field (%d missing, %d unreadable; "
                "fields: %s); those fields gave them no boost",
                passages,
                len(ranked),
                missing,
                bad,
                fields,
            )
        return sorted(out, key=lambda r: -r.score)  # stable: ties keep their order

    def _stream(
        self, live: list[Ranked], texts: Sequence[str], context: Context
    ) -> Iterator[Ranked]:
        if self.dedupe is not None:
            live = dedupe(live, texts, self.dedupe, context.similarity)
        if self.diversity > 0.0 and context.similarity is not None:
            return mmr(live, self.diversity, context.similarity)
        return iter(live)

    def _select(
        self,
        stream: Iterable[Ranked],
        counts: Mapping[int, int],
        threshold: float | None,
        top_n: int | None,
        walk: CutoffWalk | None = None,
    ) -> tuple[list[Ranked], list[int]]:
        """The kept passages, and the lengths of those skipped for the budget."""
        kept: list[Ranked] = []
        too_long: list[int] = []
        left = self.token_budget
        for r in stream:
            if threshold is not None and not r.score >= threshold:
                continue
            if walk is not None and not walk.admits(r):
                continue
            if left is not None:
                if counts[r.index] > left:
                    too_long.append(counts[r.index])
                    continue
                left -= counts[r.index]
            kept.append(r)
            if walk is not None:
                walk.keep(r)
            if top_n is not None and len(kept) >= top_n:
                break
        return kept, too_long

    def apply(
        self,
        ranked: list[Ranked],
        texts: Sequence[str],
        *,
        context: Context,
        threshold: float | None = None,
        top_n: int | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        cutoff: Cutoff | None = None,
    ) -> list[Ranked]:
        """The steps on ``ranked`` (best first, after fusion): what reaches the prompt.

        ``cutoff`` (the adaptive cutoff, ``min_probability``/``expected_share``/``min_n``)
        applies with the threshold, in the same walk as ``top_n`` and ``token_budget``: a
        passage skipped for the budget adds nothing to ``expected_share``'s summed probability.
        """
        live = [r for r in ranked if not r.empty]
        blank = [r for r in ranked if r.empty]
        if self.boosts:
            live = self._boosted(live, metadata, context.owner)
        if self.token_budget is not None:
            blank = []  # nothing to put in a prompt
        stream = chain(self._stream(live, texts, context), blank)
        counts: dict[int, int] = {}
        if context.counter is not None:
            lengths = context.counter([texts[r.index] for r in ranked])
            counts = dict(zip([r.index for r in ranked], lengths, strict=True))
        walk = None if cutoff is None else cutoff.walk(ranked)  # the total: every candidate
        kept, too_long = self._select(stream, counts, threshold, top_n, walk)
        if not kept and too_long:
            _note(
                context.owner,
                "_warned_budget",
                "token_budget=%d fits none of the %d passages (the shortest has %d tokens, "
                "counted %s): no passage returned",
                self.token_budget,
                len(too_long),
                min(too_long),
                _HOW.get(context.counter.name if context.counter else "words", ""),
            )
        measure = None if context.similarity is None else context.similarity.name
        if self.dedupe is not None and measure is None:
            measure = "exact"
        out = [
            dataclasses.replace(
                r,
                context_rank=rank,
                similarity=measure,
                tokens=counts.get(r.index) if self.token_budget is not None else None,
            )
            for rank, r in enumerate(kept, start=1)
        ]
        return lost_in_the_middle(out) if self.order == "lost-in-the-middle" else out


#: The names of the context-assembly settings (``AssemblySettings``' fields), everywhere.
SETTINGS = tuple(f.name for f in dataclasses.fields(AssemblySettings))
_OFF = AssemblySettings()
#: The name the engine's steps had before the settings became one value (kept for callers).
Assembly = AssemblySettings
