"""The ``Reranker`` protocol: one scoring hook (and its async twin); the core does the rest.

A reranker family implements ``_score_pairs(query, texts)``, returning a ``PairScores`` (or
plain floats), and may implement ``_ascore_pairs`` to await the network instead of using a
worker thread, and ``_window_plan`` to score long passages in windows (``WindowPlan``).
Everything else is decided here, once, for both paths: input checks, blank passages, the score
cache, long-document windows, count and NaN checks, warnings, ordering, fusion, the threshold
and ``top_n``. ``docs/guides/extending.md`` writes a family with public names only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rerank_kit._core import telemetry
from rerank_kit._core.cache_services import CacheServices
from rerank_kit._core.checks import check_query, check_texts
from rerank_kit._core.fusion import Fusion
from rerank_kit._core.groups import GroupScoring
from rerank_kit._core.ranking import Request, RerankOptions
from rerank_kit._core.score_cache import ScoreCache, make_score_cache
from rerank_kit._core.scoring import ScorePlan, Split, checked, report_flags
from rerank_kit._core.types import PairScores
from rerank_kit._core.usage import RankedList, Usage, usage_total
from rerank_kit._core.windows import WindowPlan, check_long_documents

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from rerank_kit._core.assembly import AssemblySettings
    from rerank_kit._core.assembly.similarity import Embedder
    from rerank_kit._core.calibration import Calibration

__all__ = ["Reranker"]

logger = logging.getLogger(__name__)

_MODE_SUFFIX = re.compile(r" \[long_documents=\w+\]$")


class Reranker(CacheServices, GroupScoring, ABC):
    """Scores (query, text) pairs and orders texts by relevance.

    A subclass implements one method, ``_score_pairs(query, texts)``: a score per text, as plain
    floats or as a :class:`PairScores` that also says which pairs the model truncated. It may
    also implement ``async _ascore_pairs`` (network and LLM rerankers do, so ``arerank`` awaits
    them); by default the async path runs ``_score_pairs`` in a worker thread, so it never blocks
    the event loop. Two services need a declaration: a score cache (set ``keeps_score_cache =
    True`` and pass ``score_cache=`` on to ``Reranker.__init__``) and long-document windows
    (implement ``_window_plan(query)``, returning a :class:`WindowPlan`); see
    ``docs/guides/extending.md``. This class checks inputs, keeps blank passages away from the
    model (they score ``-inf``, flagged ``empty``, with one warning), consults the score cache,
    scores long passages in windows if asked, checks the scores, then orders, fuses, filters and
    cuts. One instance may be shared by many threads and tasks: calls into a local model are
    serialised by a lock (tokenizers are not thread-safe); rerankers with ``serialise = False``
    (network, LLM) run concurrently.

    Example:
        >>> from rerank_kit import Reranker
        >>> class LengthReranker(Reranker):
        ...     name = "length"
        ...     def _score_pairs(self, query, texts):
        ...         return [float(len(t)) for t in texts]
        >>> r = LengthReranker()
        >>> [(x.index, x.score) for x in r.rerank("q", ["aa", "a", "aaa"], top_n=2)]
        [(2, 3.0), (0, 2.0)]
    """

    #: A short description of the model, e.g. ``"cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"``.
    name: str = "reranker"
    #: False for rerankers whose scores only encode rank (``score_threshold`` is then refused).
    supports_threshold: bool = True
    #: ``"truncate"`` (default), ``"max"``, ``"mean"`` or ``"first"``: see ``set_long_documents``.
    long_documents: str = "truncate"
    #: True (local models): one call into the model at a time. False: calls may overlap.
    serialise: bool = True
    #: The instruction the model is prompted with (instruction-aware rerankers such as
    #: Qwen3-Reranker; ``None``: the model takes none). Part of the score cache's key when it
    #: differs from ``default_instruction``.
    instruction: str | None = None
    #: True when a passage's score depends on the (query, passage) pair alone (and on what
    #: ``name`` says), so a score cache may keep it: ``score_cache=`` (passed on to
    #: ``Reranker.__init__``) and ``set_score_cache`` then work. False (default): this
    #: reranker keeps no score cache and ``set_score_cache`` raises ``ValueError``.
    keeps_score_cache: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        legacy = cls.__dict__.get("_score")
        if legacy is not None and "_score_pairs" not in cls.__dict__:
            warnings.warn(
                f"{cls.__name__} overrides _score, which rerank-kit 0.2 replaced by "
                "_score_pairs (same arguments; return floats or a PairScores)",
                DeprecationWarning,
                stacklevel=3,  # the class statement (past ABCMeta.__new__)
            )

            def _score_pairs(self: Reranker, query: str, texts: list[str]) -> Sequence[float]:
                return legacy(self, query, texts)

            cls._score_pairs = _score_pairs  # type: ignore[method-assign]

    def __init__(
        self, *, score_cache: int | str | os.PathLike[str] | ScoreCache | None = None
    ) -> None:
        """Set up the model lock and, for a family that keeps one, the score cache.

        Args:
            score_cache: ``None`` or ``0`` (no cache, the default), the number of (query,
                passage) pairs to keep in memory, a file name (a persistent cache, see
                ``ScoreCache``) or a ``ScoreCache`` to share. A family passes its own
                ``score_cache=`` argument here; it needs ``keeps_score_cache = True``.

        Raises:
            ValueError: A cache given to a reranker that keeps none, or a bad setting.
        """
        self._lock = threading.Lock()
        if self.keeps_score_cache:
            self._score_cache = make_score_cache(score_cache)
        elif score_cache is not None and score_cache != 0:
            raise ValueError(f"{type(self).__name__} keeps no score cache (score_cache=)")

    @property
    def default_instruction(self) -> str | None:
        """The instruction used when none is given (``None``: none, or no ``recipe``).

        It is the ``default_instruction`` of the reranker's ``recipe`` attribute (a
        ``rerank_kit.Recipe``), for the families that have one.
        """
        return getattr(getattr(self, "recipe", None), "default_instruction", None)

    # -- the hook ------------------------------------------------------------------------

    @abstractmethod
    def _score_pairs(self, query: str, texts: list[str]) -> PairScores | Sequence[float]:
        """Score each text against the query: the one method a reranker implements.

        ``texts`` is never empty and holds no blank passage. Return one float per text, or a
        ``PairScores`` with flags (``truncated``, ``llm_repaired``) from this same call.
        """

    async def _ascore_pairs(self, query: str, texts: list[str]) -> PairScores | Sequence[float]:
        """Async ``_score_pairs``: a worker thread here; network and LLM rerankers await."""
        return await asyncio.to_thread(self._locked, self._score_pairs, query, texts)

    def _window_plan(self, query: str) -> WindowPlan | None:
        """How to split long passages for ``query``: the windows hook (``None``: cannot).

        A family that can score long passages in windows (``long_documents="max"``, ...)
        returns a :class:`WindowPlan`: passage tokens per window beside this query, and each
        text's token spans. Called under the model lock, unless ``long_documents`` is
        ``"truncate"``; without it, ``set_long_documents`` accepts only ``"truncate"``.
        """
        return None

    def token_counts(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in this reranker's own tokens (no special tokens, no truncation).

        ``token_budget`` counts with it. ``None`` (this default) means the reranker has no
        tokenizer, whatever the texts: lengths are then whitespace-separated words. A family
        with a tokenizer overrides it (``rerank_kit._core.assembly.budget.tokenizer_counts``
        builds the count from a ``tokenizers`` or transformers tokenizer).

        Example:
            >>> from rerank_kit.testing import FakeReranker
            >>> FakeReranker().token_counts(["a b"]) is None
            True
        """
        return None

    # -- the core: one plan, two ways of waiting -----------------------------------------

    @contextlib.contextmanager
    def _model_lock(self) -> Iterator[None]:
        if not self.serialise:
            yield
            return
        lock = self.__dict__.get("_lock")
        if lock is None:  # a subclass forgot super().__init__(); still stay thread-safe
            lock = self.__dict__.setdefault("_lock", threading.Lock())
        with lock:
            yield

    def _locked(self, call: Any, *args: Any) -> Any:
        with self._model_lock():
            return call(*args)

    def _split(self, query: str, texts: list[str]) -> Split:
        plan = self._window_plan(query) if self.long_documents != "truncate" else None
        return Split(self.name, self.long_documents, plan, texts)

    def _plan(self, query: str, texts: list[str]) -> ScorePlan:
        return ScorePlan(self._score_identity(), query, texts, self.__dict__.get("_score_cache"))

    def _score_identity(self) -> str:
        """The score cache's model key: ``name``, plus what else decides the scores, if any.

        ONNX graphs rewritten or run per pair for batch-independent scores (see
        ``rerank_kit._runtime.batch_rule``) set ``_score_rule``; their entries are then keyed
        ``"NAME [scores=RULE]"``, so scores of the old batch-dependent path (keyed ``NAME``,
        still loaded from old files) are never mixed with them. An instruction-aware reranker
        whose ``instruction`` is not its ``default_instruction`` adds
        ``" [instruction=HASH]"`` (the first 12 hex digits of the instruction's SHA-256), so
        scores under two instructions are kept apart; rerankers without an instruction, or
        with the default one, keep the key they always had.

        Example:
            >>> from rerank_kit.testing import FakeReranker
            >>> r = FakeReranker()
            >>> r._score_rule = "int8-per-token/1"
            >>> r._score_identity()
            'fake [scores=int8-per-token/1]'
            >>> r.instruction = "Find the passage that answers the question"
            >>> r._score_identity()
            'fake [scores=int8-per-token/1] [instruction=0f83f32a51e1]'
        """
        rule = self.__dict__.get("_score_rule")
        identity = f"{self.name} [scores={rule}]" if rule else self.name
        instruction = self.instruction
        if instruction and instruction != self.default_instruction:
            digest = hashlib.sha256(instruction.encode("utf-8")).hexdigest()[:12]
            identity += f" [instruction={digest}]"
        return identity

    def _scored(self, query: str, texts: list[str]) -> PairScores:
        """Every text's score and flags (checked input): cache, blanks, windows, checks."""
        plan = self._plan(query, texts)
        fresh, split = None, None
        if plan.pending:
            with self._model_lock():
                split = self._split(query, plan.pending)
                raw = self._score_pairs(query, split.texts)
            fresh = split.fold(checked(raw, len(split.texts), self.name))
        return telemetry.note_scored(self, plan, split, self._report(plan.finish(fresh)))

    async def _ascored(self, query: str, texts: list[str]) -> PairScores:
        """Async ``_scored``: the same plan; only the model call is awaited."""
        plan = self._plan(query, texts)
        fresh, split = None, None
        if plan.pending:
            if self.long_documents == "truncate":
                part = Split(self.name, "truncate", None, plan.pending)
            else:
                part = await asyncio.to_thread(self._locked, self._split, query, plan.pending)
            raw = await self._ascore_pairs(query, part.texts)
            fresh, split = part.fold(checked(raw, len(part.texts), self.name)), part
        return telemetry.note_scored(self, plan, split, self._report(plan.finish(fresh)))

    def _report(self, result: PairScores) -> PairScores:
        """Log truncated and blank passages: a warning the first time, then at DEBUG."""
        return report_flags(self, result, logger)

    # -- settings ------------------------------------------------------------------------

    def set_long_documents(self, mode: str) -> None:
        """Choose how passages longer than the model's token limit are scored.

        ``"truncate"`` (default) scores the start of the passage only (and flags it).
        ``"max"``, ``"mean"`` and ``"first"`` split such a passage, with the model's own
        tokenizer, into windows that fit beside the whole query (a quarter of each window
        repeated in the next), score every window of every passage in the same batched call
        as the short passages, and give the passage the max, mean or first of its windows'
        scores. A windowed passage is not flagged as truncated (``"first"`` still flags it:
        the rest was not read). Cost grows with the number of windows. The backends'
        constructors take it as ``long_documents=``; a mode other than truncate is shown in
        ``name``.

        Example:
            >>> from rerank_kit.testing import FakeReranker
            >>> FakeReranker().set_long_documents("max")
            Traceback (most recent call last):
            ...
            ValueError: FakeReranker cannot score long documents in windows; use long_documents='truncate'
        """
        mode = check_long_documents(mode)
        if mode != "truncate" and type(self)._window_plan is Reranker._window_plan:
            raise ValueError(
                f"{type(self).__name__} cannot score long documents in windows; "
                "use long_documents='truncate'"
            )
        self.long_documents = mode
        base = _MODE_SUFFIX.sub("", self.name)
        self.name = base if mode == "truncate" else f"{base} [long_documents={mode}]"

    # -- the public calls ----------------------------------------------------------------

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance score of each text for ``query``, in input order, as plain floats.

        Blank texts score ``-inf``; for a cascade, texts pruned by an earlier stage score
        ``-inf`` too.

        Args:
            query: The search query (non-empty).
            texts: The candidate passages.

        Returns:
            One float per text; an empty list for no texts.

        Example:
            >>> from rerank_kit.testing import FakeReranker
            >>> FakeReranker().score("red apple", ["an apple", ""])
            [0.5, -inf]
        """
        q, items = check_query(query), check_texts(texts)
        return self._scored(q, items).scores if items else []

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        """Async ``score`` (network and LLM rerankers await; local models use a thread)."""
        q, items = check_query(query), check_texts(texts)
        return (await self._ascored(q, items)).scores if items else []

    def rerank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
        first_stage_scores: Sequence[float] | None = None,
        fusion: float | Fusion | None = None,
        fusion_method: str | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        dedupe: float | None = None,
        diversity: float | None = None,
        similarity_model: str | Embedder | None = None,
        order: str | None = None,
        boosts: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        token_budget: int | None = None,
        assembly: AssemblySettings | None = None,
        calibration: Calibration | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        min_probability: float | None = None,
        min_n: int | None = None,
        expected_share: float | None = None,
    ) -> RankedList:
        """Order ``texts`` by relevance to ``query``.

        Order is by score, highest first; equal scores keep their input order. The threshold
        filters first (scores ``>= score_threshold`` stay), then ``top_n`` cuts. Blank texts are
        not scored: they come last with score ``-inf`` and ``empty=True`` (a threshold drops
        them).

        With ``fusion`` (a weight on the reranker in [0, 1], or a ``Fusion``), each candidate's
        score is fused with its first-stage signal (``first_stage_scores``, else its input
        position) per query, see ``rerank_kit.Fusion``; then ``Ranked.score`` is the fused
        score, which orders and is compared with ``score_threshold``, ``reranker_score`` the
        model's own and ``first_stage_score`` the first-stage one. For a cascade, fusion
        orders the last stage's survivors.

        Args:
            query: The search query (non-empty).
            texts: The candidate passages; never modified.
            top_n: Keep at most this many (``None`` keeps all; larger than the list keeps all).
            score_threshold: Drop candidates scoring below this value.
            first_stage_scores: The first stage's score of each text (higher is better); used
                only with ``fusion``.
            fusion: ``None`` (reranker score only), a weight on the reranker, or a ``Fusion``.
            fusion_method: With a weight: ``"zscore"`` (default), ``"minmax"`` or ``"rrf"``.
            metadata: Each text's metadata (a dict or ``None``), read by ``boosts`` only.
            dedupe: Drop a passage whose similarity to a better kept one is at or above this
                threshold, in (0, 1] (1.0: exact duplicates after whitespace normalisation);
                the kept one lists them in ``Ranked.duplicates``.
            diversity: Maximal-marginal-relevance weight in [0, 1] (0: off).
            similarity_model: A bi-encoder spec, or an embedder (an object with ``name`` and
                ``embed(texts)``, such as a ``BiEncoderReranker``), whose embeddings' cosine is
                the similarity of ``dedupe``/``diversity`` (default: Jaccard of word 3-shingles,
                no model).
            order: ``"score"`` (default) or ``"lost-in-the-middle"`` (best at both ends).
            boosts: Metadata boosts added to the final score: recency
                (``{"field", "half_life_days", "weight"}``) or field value
                (``{"field", "values"}``); a list adds them up.
            token_budget: Keep the best passages whose lengths (the reranker's tokenizer, else
                words) fit this many tokens together; with ``top_n`` both limits hold.
            assembly: The six settings above as one ``AssemblySettings``, built (and checked)
                once and reused across calls; not together with any of them.
            calibration: A ``Calibration`` fitted on this reranker's scores (``rerank-kit
                calibrate``; its dict or JSON file): each result then carries
                ``probability``. A map fitted on other scores (another model, backend,
                precision or fusion) raises ``ValueError``.
            min_probability: The adaptive cutoff (needs ``calibration``): drop passages whose
                probability is below this; ``top_n`` stays the ceiling, ``token_budget``
                still holds.
            min_n: With ``min_probability`` or ``expected_share``: keep at least this many
                (the best) whatever their probability.
            expected_share: The "expected relevant" cutoff (needs ``calibration``), in (0, 1]:
                keep the shortest prefix whose summed probability reaches this share of all
                the candidates' summed probability; with ``min_probability`` both must keep a
                passage; ``top_n`` stays the ceiling, ``token_budget`` still holds.

        The context-assembly steps apply after fusion in this order: boosts, dedupe,
        diversity, then threshold / ``top_n`` / ``token_budget``, then ``order``; see
        ``docs/context-assembly.md``.

        Returns:
            ``Ranked`` items whose ``index`` points into ``texts``.

        Example:
            >>> from rerank_kit.testing import FakeReranker
            >>> [x.index for x in FakeReranker().rerank("capital of France", ["Berlin", "France"], top_n=1)]
            [1]
        """
        with telemetry.rerank_call(self, "rerank", query, texts, top_n) as call:
            request = Request.build(
                self,
                query,
                texts,
                top_n=top_n,
                score_threshold=score_threshold,
                first_stage_scores=first_stage_scores,
                fusion=fusion,
                fusion_method=fusion_method,
                metadata=metadata,
                dedupe=dedupe,
                diversity=diversity,
                similarity_model=similarity_model,
                order=order,
                boosts=boosts,
                token_budget=token_budget,
                assembly=assembly,
                calibration=calibration,
                min_probability=min_probability,
                min_n=min_n,
                expected_share=expected_share,
            )
            if not request.texts:
                return call.finish(request, [])
            scored = self._scored(request.query, request.texts)
            return call.finish(request, request.finish(scored, request.context(self, scored)))

    async def arerank(
        self, query: str, texts: Sequence[str], **options: Unpack[RerankOptions]
    ) -> RankedList:
        """Async ``rerank``, with the same keyword arguments; only the model call is awaited.

        Example:
            >>> import asyncio
            >>> from rerank_kit.testing import FakeReranker
            >>> [x.index for x in asyncio.run(FakeReranker().arerank("a", ["b", "a"], top_n=1))]
            [1]
        """
        with telemetry.rerank_call(self, "arerank", query, texts, options.get("top_n")) as call:
            request = Request.build(self, query, texts, **options)
            if not request.texts:
                return call.finish(request, [])
            scored = await self._ascored(request.query, request.texts)
            return call.finish(
                request, request.finish(scored, await request.acontext(self, scored))
            )

    @property
    def usage(self) -> Usage:
        """What this instance's ``rerank``/``arerank`` calls cost so far, summed (thread-safe).

        A cascade's stages count in their own rerankers' ``usage`` too. Each call's own cost
        is on its result: ``rerank(...).usage`` (see ``rerank_kit.Usage``).

        Example:
            >>> from rerank_kit.testing import FakeReranker
            >>> r = FakeReranker()
            >>> _ = r.rerank("a", ["a", "b"]); _ = r.rerank("a", ["c"])
            >>> r.usage.pairs, r.reset_usage().pairs, r.usage.pairs
            (3, 3, 0)
        """
        return usage_total(self).value

    def reset_usage(self) -> Usage:
        """Set ``usage`` back to zero; returns what it was."""
        return usage_total(self).reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
