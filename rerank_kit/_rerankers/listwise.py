"""Listwise reranking with an LLM: RankGPT-style sliding windows over numbered passages.

The LLM is whatever the caller already uses: the engine takes a plain callable ``prompt -> answer``
(and optionally an async one); the LangChain and LlamaIndex adapters wrap a ``BaseChatModel`` or an
``LLM`` into such callables. Nothing here imports a model library.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from rerank_kit._core.checks import check_query, check_texts
from rerank_kit._core.errors import RerankError
from rerank_kit._core.protocol import Reranker
from rerank_kit._core.types import PairScores, Ranked
from rerank_kit._rerankers.listwise_prompt import (
    ParsedRanking,
    default_prompt,
    parse_ranking,
    plan_windows,
)

__all__ = [
    "ListwiseLLMReranker",
    "ListwiseRun",
    "ParsedRanking",
    "default_prompt",
    "parse_ranking",
    "plan_windows",
]

logger = logging.getLogger(__name__)

#: A synchronous LLM: prompt in, answer text out.
LLMCall = Callable[[str], str]
#: An asynchronous LLM: prompt in, awaitable answer text out.
AsyncLLMCall = Callable[[str], Awaitable[str]]
#: Builds the prompt from the query and the (already cut) passages of one window.
PromptBuilder = Callable[[str, Sequence[str]], str]


@dataclass(frozen=True)
class ListwiseRun:
    """Everything one listwise rerank did.

    Attributes:
        ranked: Every candidate, best first, with rank-derived scores.
        calls: LLM calls made.
        repaired: Answers that needed repair (unknown, repeated or missing numbers).
        unparsable: Answers without any passage number (empty included); their window kept its
            order. Not counted in ``repaired``.
        parsed: The parsed answer of each call, in call order.
        windows: The ``(start, end)`` slices ordered, in call order.
    """

    ranked: list[Ranked]
    calls: int
    repaired: int
    unparsable: int
    parsed: list[ParsedRanking]
    windows: list[tuple[int, int]]


def _positive(label: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{label} must be an int >= {minimum}, got {value!r}")
    return value


def _words(text: str) -> int:
    return len(text.split())


class _Plan:
    """The state of one query: passages cut to budget, windows, the ordering so far."""

    def __init__(self, owner: ListwiseLLMReranker, query: str, texts: list[str]) -> None:
        self.owner = owner
        self.query = query
        cut = [owner._cut(t) for t in texts]
        self.passages = [c[0] for c in cut]
        self.truncated = [c[1] for c in cut]
        self.perm = list(range(len(texts)))
        self.repaired_docs = [False] * len(texts)
        self.windows = plan_windows(len(texts), owner.window, owner.step, owner.max_calls)
        self.parsed: list[ParsedRanking] = []
        if owner.max_calls is not None and len(texts) > (
            covered := owner.window + (owner.max_calls - 1) * owner.step
        ):
            logger.warning(
                "%s: max_calls=%d covers the first %d of %d candidates; the other %d keep their "
                "input order below them",
                owner.name,
                owner.max_calls,
                covered,
                len(texts),
                len(texts) - covered,
            )

    def prompt(self, k: int) -> str:
        start, end = self.windows[k]
        return self.owner.build_prompt(self.query, [self.passages[i] for i in self.perm[start:end]])

    def feed(self, k: int, answer: object) -> None:
        if answer is not None and not isinstance(answer, str):
            raise TypeError(
                f"{self.owner.name}: the LLM callable must return str, got {type(answer).__name__}"
            )
        start, end = self.windows[k]
        ids = self.perm[start:end]
        parsed = parse_ranking(answer, len(ids))
        self.parsed.append(parsed)
        self.perm[start:end] = [ids[j] for j in parsed.order]
        if parsed.repaired:
            for i in ids:
                self.repaired_docs[i] = True
            logger.warning(
                "%s: LLM answer for candidates %d-%d %s (%r); %s",
                self.owner.name,
                start + 1,
                end,
                "had no passage number" if parsed.unparsable else "needed repair",
                (answer or "")[:200],
                "input order kept"
                if parsed.unparsable
                else f"ignored {parsed.ignored}, appended missing {parsed.missing}",
            )

    def failed(self, k: int, exc: Exception) -> RerankError:
        start, end = self.windows[k]
        err = RerankError(
            f"{self.owner.name}: LLM call {k + 1} of {len(self.windows)} (candidates "
            f"{start + 1}-{end}) failed: {type(exc).__name__}: {exc}"
        )
        err.__cause__ = exc
        return err

    def result(self) -> ListwiseRun:
        ranked = [
            Ranked(
                index=doc,
                score=1.0 / (rank + 1),
                truncated=self.truncated[doc],
                llm_repaired=self.repaired_docs[doc],
            )
            for rank, doc in enumerate(self.perm)
        ]
        repaired = sum(p.repaired and not p.unparsable for p in self.parsed)
        unparsable = sum(p.unparsable for p in self.parsed)
        self.owner._count(len(self.parsed), repaired, unparsable)
        return ListwiseRun(
            ranked=ranked,
            calls=len(self.parsed),
            repaired=repaired,
            unparsable=unparsable,
            parsed=list(self.parsed),
            windows=list(self.windows),
        )


class ListwiseLLMReranker(Reranker):
    """Orders candidates by asking an LLM to rank numbered passages (listwise, RankGPT-style).

    The LLM sees ``window`` passages at a time, numbered ``[1]..[n]``, and answers with an
    ordering such as ``[3] > [1] > [2]``. Windows slide from the bottom of the list to the top by
    ``step`` (default 20 and 10: 1 call for 20 candidates, 4 for 50, 9 for 100), so a relevant
    passage found low in the list can climb to the top in one pass. Answers are parsed with
    :func:`parse_ranking`: unknown and repeated numbers are ignored, passages left out keep their
    input order after the ranked ones, and an answer without numbers keeps the window as it was.
    Every candidate of a window whose answer was repaired or unparsable gets
    ``Ranked.llm_repaired=True``; ``stats`` counts calls and such answers.

    Scores are rank-derived: the candidate in final position ``r`` (0-based) scores
    ``1 / (r + 1)`` (1.0, 0.5, 0.333...). They order and cut (``top_n`` works) but measure no
    relevance, so ``score_threshold`` is refused with ``ValueError``. In a cascade, put this
    reranker last, behind a cheap model that prunes to about one window::

        CascadeReranker([(FlashRankReranker(), 20), ListwiseLLMReranker(llm)])

    Passages are cut to ``max_passage_tokens`` (counted by ``count_tokens``) and to
    ``max_passage_chars`` before they go into the prompt; a cut passage gets
    ``Ranked.truncated=True``. The query is never cut.

    Args:
        llm: ``prompt -> answer`` (a plain function around your LLM client).
        allm: Optional ``async`` ``prompt -> answer``; ``arerank`` awaits it. Without it,
            ``arerank`` runs ``llm`` in a worker thread, so the event loop never blocks.
        window: Passages per LLM call (>= 2).
        step: How far the window moves up between calls (1 to ``window``).
        max_calls: At most this many LLM calls per query (``None``: as many as the windows need).
            When the candidates need more, only the first ``window + (max_calls - 1) * step``
            are reranked and the rest follow in input order (a warning is logged).
        max_passage_tokens: Cut each passage to this many tokens (``None``: no token cut).
        count_tokens: Counts the tokens of a text (default: whitespace-separated words, which
            undercounts subword tokens); pass your tokenizer's, e.g.
            ``lambda t: len(encoding.encode(t))``. Passages are cut at word boundaries.
        max_passage_chars: Also cut each passage to this many characters (``None``: no cut).
        prompt: ``(query, passages) -> prompt`` to replace :func:`default_prompt`; passages are
            numbered ``[1]..[n]`` in the order given and the answer is parsed as above.
        name: Name shown in logs, ``stage_scores`` and rerank events.

    Example:
        >>> from rerank_kit import ListwiseLLMReranker
        >>> def llm(prompt: str) -> str:  # your client here, e.g. a chat model's invoke
        ...     return "[2] > [3] > [1]"
        >>> reranker = ListwiseLLMReranker(llm)
        >>> [(r.index, r.score) for r in reranker.rerank("capital of France", ["Berlin", "Paris", "Lyon"], top_n=2)]
        [(1, 1.0), (2, 0.5)]
    """

    supports_threshold = False
    #: LLM calls of different queries may run at once (no model lock).
    serialise = False

    def __init__(
        self,
        llm: LLMCall,
        *,
        allm: AsyncLLMCall | None = None,
        window: int = 20,
        step: int = 10,
        max_calls: int | None = None,
        max_passage_tokens: int | None = 300,
        count_tokens: Callable[[str], int] | None = None,
        max_passage_chars: int | None = None,
        prompt: PromptBuilder | None = None,
        name: str = "listwise-llm",
    ) -> None:
        super().__init__()
        if not callable(llm):
            raise TypeError(f"llm must be a callable prompt -> str, got {type(llm).__name__}")
        if inspect.iscoroutinefunction(llm):
            raise TypeError("llm is an async function; pass it as allm= and a sync one as llm=")
        if allm is not None and not callable(allm):
            raise TypeError(f"allm must be an async callable, got {type(allm).__name__}")
        self.window = _positive("window", window, 2)
        self.step = _positive("step", step)
        if self.step > self.window:
            raise ValueError(
                f"step ({step}) must not exceed window ({window}): windows would skip candidates"
            )
        self.max_calls = None if max_calls is None else _positive("max_calls", max_calls)
        self.max_passage_tokens = (
            None
            if max_passage_tokens is None
            else _positive("max_passage_tokens", max_passage_tokens)
        )
        self.max_passage_chars = (
            None if max_passage_chars is None else _positive("max_passage_chars", max_passage_chars)
        )
        self.llm = llm
        self.allm = allm
        self.count_tokens = count_tokens or _words
        self._prompt = prompt or default_prompt
        self.name = name
        self._stats_lock = threading.Lock()
        #: Totals over this instance's life: queries, LLM calls, repaired and unparsable answers.
        self.stats = {"queries": 0, "calls": 0, "repaired": 0, "unparsable": 0}

    # -- building blocks -------------------------------------------------------------------

    def build_prompt(self, query: str, passages: Sequence[str]) -> str:
        """The prompt for one window (passages already cut)."""
        text = self._prompt(query, passages)
        if not isinstance(text, str):
            raise TypeError(f"prompt builder must return str, got {type(text).__name__}")
        return text

    def token_counts(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length by ``count_tokens`` (whitespace words unless one was given)."""
        return [int(self.count_tokens(t)) for t in texts]

    def _cut(self, text: str) -> tuple[str, bool]:
        cut = False
        budget = self.max_passage_tokens
        if budget is not None and self.count_tokens(text) > budget:
            words = text.split()
            lo, hi = 0, min(len(words), budget * 8)  # largest word prefix within the budget
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.count_tokens(" ".join(words[:mid])) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            text, cut = " ".join(words[:lo]), True
        if self.max_passage_chars is not None and len(text) > self.max_passage_chars:
            text, cut = text[: self.max_passage_chars], True
        return text, cut

    def _count(self, calls: int, repaired: int, unparsable: int) -> None:
        with self._stats_lock:
            self.stats["queries"] += 1
            self.stats["calls"] += calls
            self.stats["repaired"] += repaired
            self.stats["unparsable"] += unparsable

    # -- running ---------------------------------------------------------------------------

    def run(self, query: str, texts: Sequence[str]) -> ListwiseRun:
        """Rerank and report what happened (calls, repaired answers, parsed answers).

        Example:
            >>> r = ListwiseLLMReranker(lambda prompt: "3, 1")
            >>> run = r.run("q", ["a", "b", "c"])
            >>> ([x.index for x in run.ranked], run.calls, run.repaired)
            ([2, 0, 1], 1, 1)
        """
        plan = _Plan(self, check_query(query), check_texts(texts))
        for k in range(len(plan.windows)):
            prompt = plan.prompt(k)
            try:
                answer = self.llm(prompt)
            except Exception as exc:
                raise plan.failed(k, exc) from exc
            plan.feed(k, answer)
        return plan.result()

    async def arun(self, query: str, texts: Sequence[str]) -> ListwiseRun:
        """Async ``run``: awaits ``allm``, or runs ``llm`` in a worker thread."""
        plan = _Plan(self, check_query(query), check_texts(texts))
        for k in range(len(plan.windows)):
            prompt = plan.prompt(k)
            try:
                if self.allm is not None:
                    answer = await self.allm(prompt)
                else:
                    answer = await asyncio.to_thread(self.llm, prompt)
            except Exception as exc:
                raise plan.failed(k, exc) from exc
            plan.feed(k, answer)
        return plan.result()

    # -- the Reranker interface ------------------------------------------------------------

    @staticmethod
    def _pair_scores(run: ListwiseRun, n: int) -> PairScores:
        scores = [0.0] * n
        truncated = [False] * n
        repaired = [False] * n
        for r in run.ranked:
            scores[r.index], truncated[r.index], repaired[r.index] = (
                r.score,
                r.truncated,
                r.llm_repaired,
            )
        return PairScores(scores, truncated=truncated, llm_repaired=repaired)

    def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
        return self._pair_scores(self.run(query, texts), len(texts))

    async def _ascore_pairs(self, query: str, texts: list[str]) -> PairScores:
        """Awaits ``allm`` when given (no thread), else runs ``llm`` in a thread."""
        return self._pair_scores(await self.arun(query, texts), len(texts))
