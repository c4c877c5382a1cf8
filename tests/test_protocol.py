"""One protocol for every family: rerank and arerank, alone and from 8 threads/tasks, agree.

Each family is run through ``rerank`` and ``arerank``, sequentially and from 8 concurrent threads
and 8 concurrent tasks, and every run must give the same order, scores and flags (truncated,
llm_repaired, empty). The candidates hold one passage longer than any model's token limit (so
truncation flags are exercised) and one blank passage (never scored: ``-inf``, ``empty``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fake_rerank_server import FakeRerankServer

from rerank_kit import (
    BiEncoderReranker,
    CascadeReranker,
    CrossEncoderReranker,
    FlashRankReranker,
    ListwiseLLMReranker,
    Ranked,
    Reranker,
    Stage,
    load_reranker,
)
from rerank_kit.demo import CORPUS
from rerank_kit.testing import FakeReranker

QUERY = "how do I reset my password"
LONG = " ".join(["password reset help desk account login recovery"] * 120)  # ~840 words
TEXTS = [text for _, text in CORPUS[:7]] + [LONG, "   "]


class ScriptedLLM:
    """Ranks numbered passages by length, longest first, and leaves out the last number of any
    window of more than 4 passages (so those windows need repair). Counts sync and async calls.
    """

    def __init__(self) -> None:
        self.sync_calls = 0
        self.async_calls = 0

    @staticmethod
    def answer(prompt: str) -> str:
        found = re.findall(r"^\[(\d+)\] (.*)$", prompt, flags=re.M)
        ranked = sorted(found, key=lambda m: -len(m[1]))
        numbers = [n for n, _ in ranked]
        if len(numbers) > 4:
            numbers = numbers[:-1]
        return " > ".join(f"[{n}]" for n in numbers)

    def __call__(self, prompt: str) -> str:
        self.sync_calls += 1
        return self.answer(prompt)

    async def acall(self, prompt: str) -> str:
        self.async_calls += 1
        await asyncio.sleep(0)
        return self.answer(prompt)


def _listwise(llm: ScriptedLLM | None = None, window: int = 6, step: int = 3) -> Any:
    llm = llm or ScriptedLLM()
    return ListwiseLLMReranker(llm, allm=llm.acall, window=window, step=step)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeRerankServer]:
    with FakeRerankServer() as srv:
        yield srv


def _families(name: str, request: pytest.FixtureRequest) -> Reranker:
    def fixture(key: str) -> Any:
        return request.getfixturevalue(key)

    builders: dict[str, Callable[[], Reranker]] = {
        "fake": lambda: FakeReranker(),
        "cross-encoder-torch": lambda: CrossEncoderReranker(
            str(fixture("tiny_ce_dir")), backend="torch"
        ),
        "onnx-bundled": lambda: load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"),
        "flashrank": lambda: FlashRankReranker(str(fixture("tiny_flashrank_dir"))),
        "bi-encoder": lambda: BiEncoderReranker(fixture("minilm_path")),
        "remote-tei": lambda: load_reranker(f"tei:{fixture('server').url}"),
        "listwise": lambda: _listwise(),
        "cascade-fake-listwise": lambda: CascadeReranker(
            [Stage(FakeReranker(), keep=6), Stage(_listwise())]
        ),
        "cascade-bi-remote": lambda: CascadeReranker(
            [
                Stage(BiEncoderReranker(fixture("minilm_path")), keep=5),
                Stage(load_reranker(f"tei:{fixture('server').url}")),
            ]
        ),
        "cascade-flashrank-onnx-listwise": lambda: CascadeReranker(
            [
                Stage(FlashRankReranker(str(fixture("tiny_flashrank_dir"))), keep=7),
                Stage(load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2"), keep=5),
                Stage(_listwise(window=4, step=2)),
            ]
        ),
    }
    return builders[name]()


FAMILIES = [
    "fake",
    "cross-encoder-torch",
    "onnx-bundled",
    "flashrank",
    "bi-encoder",
    "remote-tei",
    "listwise",
    "cascade-fake-listwise",
    "cascade-bi-remote",
    "cascade-flashrank-onnx-listwise",
]


def _key(ranked: list[Ranked]) -> list[tuple[Any, ...]]:
    return [
        (r.index, r.score, dict(r.stage_scores), r.truncated, r.llm_repaired, r.empty)
        for r in ranked
    ]


@pytest.mark.models
@pytest.mark.parametrize("family", FAMILIES)
def test_sync_async_and_concurrent_calls_agree(family: str, request: pytest.FixtureRequest) -> None:
    reranker = _families(family, request)
    want = _key(reranker.rerank(QUERY, TEXTS))
    assert len(want) >= 2
    assert _key(asyncio.run(reranker.arerank(QUERY, TEXTS))) == want

    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda _: _key(reranker.rerank(QUERY, TEXTS)), range(8)))
    assert threaded == [want] * 8

    async def tasks() -> list[list[tuple[Any, ...]]]:
        runs = await asyncio.gather(*(reranker.arerank(QUERY, TEXTS) for _ in range(8)))
        return [_key(r) for r in runs]

    assert asyncio.run(tasks()) == [want] * 8

    # scores agree with the ranking, and the blank passage is last, unscored and flagged
    scores = reranker.score(QUERY, TEXTS)
    assert asyncio.run(reranker.ascore(QUERY, TEXTS)) == scores
    for index, score, *_ in want:
        assert scores[index] == score
    assert want[-1][0] == len(TEXTS) - 1 and want[-1][-1] is True and scores[-1] == float("-inf")
    assert all(isinstance(s, float) for s in scores)


@pytest.mark.models
@pytest.mark.parametrize(
    "family", ["cross-encoder-torch", "onnx-bundled", "flashrank", "bi-encoder"]
)
def test_local_models_flag_the_long_passage(family: str, request: pytest.FixtureRequest) -> None:
    reranker = _families(family, request)
    flags = {r.index: r.truncated for r in reranker.rerank(QUERY, TEXTS)}
    assert flags[TEXTS.index(LONG)] is True
    assert not any(flag for i, flag in flags.items() if TEXTS[i] != LONG)


def test_listwise_flags_come_from_the_call_that_made_them() -> None:
    reranker = _listwise()
    ranked = reranker.rerank(QUERY, TEXTS)
    assert any(r.llm_repaired for r in ranked)
    clean = reranker.rerank(QUERY, TEXTS[:3])  # one window of 3: nothing to repair
    assert not any(r.llm_repaired for r in clean)
    # a later async call on the same thread reports its own flags, not the last sync call's
    assert not any(r.llm_repaired for r in asyncio.run(reranker.arerank(QUERY, TEXTS[:3])))


class _Refusing:
    """Answers like an LLM that will not rank (no passage number at all)."""

    def __init__(self) -> None:
        self.sync_calls = 0
        self.async_calls = 0

    def __call__(self, prompt: str) -> str:
        self.sync_calls += 1
        return "I cannot rank these."

    async def acall(self, prompt: str) -> str:
        self.async_calls += 1
        return "I cannot rank these."


def test_async_cascade_awaits_allm_and_reports_its_flags() -> None:
    """The defect of issue 19: an async cascade ran the sync llm and read stale flags."""
    llm = _Refusing()
    cascade = CascadeReranker(
        [Stage(FakeReranker(), keep=5), Stage(ListwiseLLMReranker(llm, allm=llm.acall))]
    )
    texts = [f"cats and dogs {i}" for i in range(8)]
    ranked = asyncio.run(cascade.arerank("cats", texts))
    assert (llm.sync_calls, llm.async_calls) == (0, 1)
    assert len(ranked) == 5 and all(r.llm_repaired for r in ranked)
    assert all(r.llm_repaired for r in cascade.rerank("cats", texts))
    assert (llm.sync_calls, llm.async_calls) == (1, 1)

    # a sync call that needed no repair, then an async one that did: each reports its own
    clean = CascadeReranker([Stage(FakeReranker(), keep=1), Stage(_listwise())])
    assert not any(r.llm_repaired for r in clean.rerank("cats", texts))
    mixed = CascadeReranker(
        [Stage(FakeReranker(), keep=5), Stage(ListwiseLLMReranker(llm, allm=llm.acall))]
    )
    assert not any(r.llm_repaired for r in clean.rerank("cats", texts))
    assert all(r.llm_repaired for r in asyncio.run(mixed.arerank("cats", texts)))


def test_the_protocol_has_one_sync_and_one_async_scoring_hook() -> None:
    hooks = {
        name
        for name, value in vars(Reranker).items()
        if callable(value) and getattr(value, "__isabstractmethod__", False)
    }
    assert hooks == {"_score_pairs"}
    assert "_ascore_pairs" in vars(Reranker)
    for gone in ("_score", "_truncated", "_llm_repaired", "_score_checked", "_rank", "_arank"):
        assert not hasattr(Reranker, gone), gone


def test_a_legacy_score_subclass_still_works_with_a_deprecation_warning() -> None:
    with pytest.deprecated_call(match="_score_pairs"):

        class Legacy(Reranker):
            def _score(self, query: str, texts: list[str]) -> list[float]:
                return [float(len(t)) for t in texts]

    legacy = Legacy()  # type: ignore[abstract]  # mypy cannot see the wrapped hook
    assert [r.index for r in legacy.rerank("q", ["aa", "a", "aaa"])] == [2, 0, 1]


def test_blank_passages_are_never_sent_to_the_model(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[list[str]] = []

    class Recording(Reranker):
        name = "recording"

        def _score_pairs(self, query: str, texts: list[str]) -> list[float]:
            seen.append(list(texts))
            return [1.0] * len(texts)

    r = Recording()
    with caplog.at_level("DEBUG", logger="rerank_kit._core.protocol"):
        out = r.rerank("q", ["", "a", " \n\t", "b"])
        r.rerank("q", ["", "a"])
        assert r.rerank("q", ["", "  "]) == [
            Ranked(index=0, score=float("-inf"), empty=True),
            Ranked(index=1, score=float("-inf"), empty=True),
        ]
    assert seen == [["a", "b"], ["a"]]
    assert [(x.index, x.empty) for x in out] == [(1, False), (3, False), (0, True), (2, True)]
    assert r.rerank("q", ["", "a"], score_threshold=0.0) == [Ranked(index=1, score=1.0)]
    warnings = [rec for rec in caplog.records if rec.levelname == "WARNING"]
    assert len(warnings) == 1 and "empty or whitespace" in warnings[0].getMessage()


def test_fusion_keeps_blank_passages_last() -> None:
    out = FakeReranker().rerank("a b", ["", "b", "a b"], fusion=0.5, fusion_method="rrf")
    assert [x.index for x in out][-1] == 0 and out[-1].empty
    assert all(x.reranker_score is not None for x in out[:-1])


def test_truncation_is_warned_once_per_reranker(caplog: pytest.LogCaptureFixture) -> None:
    from rerank_kit import PairScores

    class Cutting(Reranker):
        name = "cutting"

        def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
            return PairScores([1.0] * len(texts), truncated=[len(t) > 3 for t in texts])

    first, second = Cutting(), Cutting()
    with caplog.at_level("DEBUG", logger="rerank_kit._core.protocol"):
        for _ in range(5):
            assert first.rerank("q", ["long text", "ab"])[0].truncated
        second.rerank("q", ["long text"])
    levels = [rec.levelname for rec in caplog.records if "truncated" in rec.getMessage()]
    assert levels == ["WARNING", "DEBUG", "DEBUG", "DEBUG", "DEBUG", "WARNING"]
