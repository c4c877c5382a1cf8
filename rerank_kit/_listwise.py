"""Listwise reranking with an LLM: RankGPT-style sliding windows over numbered passages.

The LLM is whatever the caller already uses: the engine takes a plain callable ``prompt -> answer``
(and optionally an async one); the LangChain and LlamaIndex adapters wrap a ``BaseChatModel`` or an
``LLM`` into such callables. Nothing here imports a model library.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from rerank_kit._base import (
    Reranker,
    check_query,
    check_texts,
)
from rerank_kit._errors import RerankError
from rerank_kit._types import Ranked

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

_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_NUMBER = re.compile(r"\d+")
_FENCE = re.compile(r"^```[A-Za-z]*\s*(.*?)\s*```$", re.DOTALL)
_JSON_ITEM = re.compile(r"^\s*\[?\s*(\d+)\s*\]?\s*$")


def default_prompt(query: str, passages: Sequence[str]) -> str:
    """The RankGPT-style prompt: numbered passages, the query, and the answer format wanted.

    Example:
        >>> print(default_prompt("capital of France", ["Berlin is in Germany.", "Paris is in France."]))
        I will give you 2 passages, each introduced by a number in square brackets. Rank them by relevance to the search query.
        <BLANKLINE>
        Search query: capital of France
        <BLANKLINE>
        [1] Berlin is in Germany.
        [2] Paris is in France.
        <BLANKLINE>
        Search query: capital of France
        Rank the 2 passages above from most to least relevant to the search query. Answer with the passage numbers only, most relevant first, in the form [2] > [1], and say nothing else.
    """
    n = len(passages)
    lines = [
        f"I will give you {n} passages, each introduced by a number in square brackets. "
        "Rank them by relevance to the search query.",
        "",
        f"Search query: {query}",
        "",
    ]
    lines += [f"[{i}] {' '.join(p.split())}" for i, p in enumerate(passages, 1)]
    lines += [
        "",
        f"Search query: {query}",
        f"Rank the {n} passages above from most to least relevant to the search query. Answer "
        "with the passage numbers only, most relevant first, in the form [2] > [1], and say "
        "nothing else.",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class ParsedRanking:
    """An LLM's answer for one window, parsed and repaired into a full ordering.

    Attributes:
        order: 0-based positions in the window, best first; every position exactly once.
        shape: How the answer was read: ``"json"`` (a JSON list), ``"brackets"`` (``[3] > [1]``),
            ``"numbers"`` (``3, 1, 2`` or ``3 > 1 > 2``), or ``"none"`` (empty or no number).
        repaired: True unless the answer named every passage exactly once and nothing else.
        unparsable: True if the answer held no passage number at all (input order kept).
        ignored: Numbers dropped from the answer (unknown, or repeated), as written.
        missing: Passage numbers (1-based) the answer left out, appended in input order.
    """

    order: list[int]
    shape: str
    repaired: bool
    unparsable: bool
    ignored: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def _json_numbers(text: str) -> list[int] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    numbers: list[int] = []
    for item in value:
        if isinstance(item, bool):
            return None
        if isinstance(item, int):
            numbers.append(item)
        elif isinstance(item, str) and (m := _JSON_ITEM.match(item)):
            numbers.append(int(m[1]))
        else:
            return None
    return numbers


def parse_ranking(answer: str | None, n: int) -> ParsedRanking:
    """Read an LLM's ordering of ``n`` numbered passages, repairing what is not clean.

    Accepted shapes: ``[3] > [1] > [2]`` (any text around bracketed numbers is ignored),
    ``3, 1, 2`` or ``3 > 1 > 2`` (bare numbers), a JSON list (``[3, 1, 2]`` or ``["[3]", "[1]"]``),
    optionally inside a Markdown code fence. Repairs: numbers outside ``1..n`` and repeats are
    ignored; passages the answer leaves out follow the ranked ones in their input order. An empty
    answer or one without any number keeps the input order (``unparsable``).

    Args:
        answer: The LLM's text (``None`` counts as empty).
        n: How many passages the prompt numbered (``1..n``).

    Returns:
        A ``ParsedRanking`` whose ``order`` always holds each of ``0..n-1`` once.

    Example:
        >>> parse_ranking("[3] > [1] > [2]", 3).order
        [2, 0, 1]
        >>> p = parse_ranking("2, 2, 7", 3)
        >>> (p.order, p.repaired, p.ignored, p.missing)
        ([1, 0, 2], True, [2, 7], [1, 3])
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    text = (answer or "").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced[1].strip()
    numbers = _json_numbers(text)
    shape = "json"
    if numbers is None:
        bracketed = _BRACKETED.findall(text)
        if bracketed:
            numbers, shape = [int(x) for x in bracketed], "brackets"
        else:
            numbers, shape = [int(x) for x in _NUMBER.findall(text)], "numbers"
    if not numbers:
        return ParsedRanking(
            order=list(range(n)),
            shape="none",
            repaired=True,
            unparsable=True,
            missing=list(range(1, n + 1)),
        )
    order: list[int] = []
    seen: set[int] = set()
    ignored: list[int] = []
    for number in numbers:
        if 1 <= number <= n and number not in seen:
            seen.add(number)
            order.append(number - 1)
        else:
            ignored.append(number)
    missing = [i + 1 for i in range(n) if i + 1 not in seen]
    order += [m - 1 for m in missing]
    return ParsedRanking(
        order=order,
        shape=shape,
        repaired=bool(ignored or missing),
        unparsable=False,
        ignored=ignored,
        missing=missing,
    )


def plan_windows(
    n: int, window: int = 20, step: int = 10, max_calls: int | None = None
) -> list[tuple[int, int]]:
    """The ``(start, end)`` slices the LLM orders, in call order: from the bottom of the list up.

    Each window overlaps the next by ``window - step`` candidates, so a relevant passage can climb
    from the bottom to the top in one pass (RankGPT's sliding window). The last window always
    starts at 0. A window of fewer than two candidates needs no call and is left out. With
    ``max_calls``, only the first ``window + (max_calls - 1) * step`` candidates are covered (the
    rest keep their input order below them).

    Example:
        >>> plan_windows(50)
        [(30, 50), (20, 40), (10, 30), (0, 20)]
        >>> plan_windows(8)
        [(0, 8)]
        >>> plan_windows(100, max_calls=2)
        [(10, 30), (0, 20)]
    """
    span = n if max_calls is None else min(n, window + (max_calls - 1) * step)
    windows: list[tuple[int, int]] = []
    end = span
    while end > 0:
        start = max(0, end - window)
        if end - start >= 2:
            windows.append((start, end))
        if start == 0:
            break
        end -= step
    return windows


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
        self._local = threading.local()
        #: Totals over this instance's life: queries, LLM calls, repaired and unparsable answers.
        self.stats = {"queries": 0, "calls": 0, "repaired": 0, "unparsable": 0}

    # -- building blocks -------------------------------------------------------------------

    def build_prompt(self, query: str, passages: Sequence[str]) -> str:
        """The prompt for one window (passages already cut)."""
        text = self._prompt(query, passages)
        if not isinstance(text, str):
            raise TypeError(f"prompt builder must return str, got {type(text).__name__}")
        return text

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

    def _score(self, query: str, texts: list[str]) -> Sequence[float]:
        return self._score_checked(query, texts)[0]

    def _score_checked(self, query: str, texts: list[str]) -> tuple[list[float], list[bool]]:
        # No model lock: LLM calls of different queries may run at once.
        if not texts:
            self._local.repaired = []
            return [], []
        ranked = self.run(query, texts).ranked
        scores = [0.0] * len(texts)
        truncated = [False] * len(texts)
        repaired = [False] * len(texts)
        for r in ranked:
            scores[r.index], truncated[r.index], repaired[r.index] = (
                r.score,
                r.truncated,
                r.llm_repaired,
            )
        self._local.repaired = repaired  # read by a cascade right after, in this thread
        return scores, truncated

    def _llm_repaired(self) -> list[bool] | None:
        return getattr(self._local, "repaired", None)

    def _rank(self, query: str, texts: list[str]) -> list[Ranked]:
        return self.run(query, texts).ranked

    async def _arank(self, query: str, texts: list[str]) -> list[Ranked]:
        """Awaits ``allm`` when given (no thread), else runs ``llm`` in a thread."""
        return (await self.arun(query, texts)).ranked

    async def ascore(self, query: str, texts: Sequence[str]) -> list[float]:
        """Async ``score``: rank-derived scores in input order."""
        q, items = check_query(query), check_texts(texts)
        if not items:
            return []
        scores = [0.0] * len(items)
        for r in (await self.arun(q, items)).ranked:
            scores[r.index] = r.score
        return scores
