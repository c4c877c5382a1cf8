"""Listwise LLM reranking: parser repairs, sliding windows, limits, async, both adapters (offline)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from rerank_kit import CascadeReranker, ListwiseLLMReranker, RerankError
from rerank_kit._adapters.run import run_rerank
from rerank_kit._rerankers.listwise import default_prompt, parse_ranking, plan_windows
from rerank_kit.testing import FakeReranker

_PASSAGE = re.compile(r"^\[(\d+)\] doc(\d+)\b", re.MULTILINE)


def _reranked(nodes: Sequence[Any]) -> list[Any]:
    """The postprocessor's output, checked to be ``RerankedNodeWithScore`` (typed for mypy)."""
    from llamaindex_rerank_kit import RerankedNodeWithScore

    assert all(isinstance(n, RerankedNodeWithScore) for n in nodes)
    return list(nodes)


def oracle(relevance: dict[int, float], calls: list[str] | None = None) -> Any:
    """An LLM that orders the prompt's passages ``docN`` by a hidden relevance table."""

    def llm(prompt: str) -> str:
        if calls is not None:
            calls.append(prompt)
        shown = [(int(num), int(doc)) for num, doc in _PASSAGE.findall(prompt)]
        shown.sort(key=lambda x: -relevance[x[1]])
        return " > ".join(f"[{num}]" for num, _ in shown)

    return llm


def docs(n: int) -> list[str]:
    return [f"doc{i} some passage text" for i in range(n)]


# ---------------------------------------------------------------------------- the parser

REPAIR_TABLE = [
    # (answer, n, expected order (0-based), shape, repaired, unparsable)
    ("[3] > [1] > [2]", 3, [2, 0, 1], "brackets", False, False),
    ("3, 1, 2", 3, [2, 0, 1], "numbers", False, False),
    ("3 > 1 > 2", 3, [2, 0, 1], "numbers", False, False),
    ("[3, 1, 2]", 3, [2, 0, 1], "json", False, False),
    ('["[3]", "[1]", "[2]"]', 3, [2, 0, 1], "json", False, False),
    ("```json\n[2, 3, 1]\n```", 3, [1, 2, 0], "json", False, False),
    ("Ranking: [2] > [3] > [1]. Passage 2 is best.", 3, [1, 2, 0], "brackets", False, False),
    ("[3] > [1]", 3, [2, 0, 1], "brackets", True, False),  # 2 missing: appended
    ("[2] > [2] > [1] > [3]", 3, [1, 0, 2], "brackets", True, False),  # duplicate ignored
    ("[7] > [0] > [2] > [1] > [3]", 3, [1, 0, 2], "brackets", True, False),  # unknown ignored
    ("4, 2", 4, [3, 1, 0, 2], "numbers", True, False),  # missing keep input order
    ("[9]", 3, [0, 1, 2], "json", True, False),  # only unknown: input order
    ("", 3, [0, 1, 2], "none", True, True),
    ("   \n ", 3, [0, 1, 2], "none", True, True),
    (None, 3, [0, 1, 2], "none", True, True),
    ("I cannot rank these passages.", 3, [0, 1, 2], "none", True, True),
    ("[a] > [b]", 2, [0, 1], "none", True, True),
    ('{"ranking": [2, 1]}', 2, [1, 0], "numbers", False, False),
    ("[1, 2", 2, [0, 1], "numbers", False, False),  # broken JSON: numbers still read
]


@pytest.mark.parametrize(("answer", "n", "order", "shape", "repaired", "unparsable"), REPAIR_TABLE)
def test_parser_repair_table(
    answer: str | None, n: int, order: list[int], shape: str, repaired: bool, unparsable: bool
) -> None:
    parsed = parse_ranking(answer, n)
    assert parsed.order == order
    assert sorted(parsed.order) == list(range(n))  # always a full permutation
    assert (parsed.shape, parsed.repaired, parsed.unparsable) == (shape, repaired, unparsable)


def test_parser_reports_what_it_dropped_and_added() -> None:
    parsed = parse_ranking("[2] > [2] > [9] > [4]", 4)
    assert parsed.ignored == [2, 9]
    assert parsed.missing == [1, 3]
    assert parsed.order == [1, 3, 0, 2]


def test_parser_rejects_bad_n() -> None:
    with pytest.raises(ValueError, match="n must be"):
        parse_ranking("1", -1)


# ---------------------------------------------------------------------------- windows


def test_windows_slide_bottom_up_and_cover_the_top() -> None:
    assert plan_windows(100) == [(s, s + 20) for s in range(80, -1, -10)]
    assert plan_windows(55) == [(35, 55), (25, 45), (15, 35), (5, 25), (0, 15)]
    assert plan_windows(20) == [(0, 20)]
    assert plan_windows(7) == [(0, 7)]
    assert plan_windows(1) == [] and plan_windows(0) == []
    assert plan_windows(10, window=4, step=4) == [(6, 10), (2, 6), (0, 2)]
    assert plan_windows(100, max_calls=3) == [(20, 40), (10, 30), (0, 20)]


@pytest.mark.parametrize(("n", "calls"), [(1, 0), (2, 1), (20, 1), (21, 2), (50, 4), (100, 9)])
def test_calls_per_query_measured(n: int, calls: int) -> None:
    prompts: list[str] = []
    reranker = ListwiseLLMReranker(oracle({i: 0.0 for i in range(n)}, prompts))
    run = reranker.run("q", docs(n))
    assert run.calls == len(prompts) == calls
    assert reranker.stats["calls"] == calls


def test_overlapping_windows_bring_the_true_top_ten_up_from_anywhere() -> None:
    n = 100
    # the ten most relevant sit at the bottom, in reverse order of relevance
    relevance = {i: (i - 89.0) if i >= 90 else -float(i) / 1000 for i in range(n)}
    prompts: list[str] = []
    reranker = ListwiseLLMReranker(oracle(relevance, prompts))
    ranked = reranker.rerank("q", docs(n), top_n=10)
    assert [r.index for r in ranked] == list(range(99, 89, -1))
    assert [r.score for r in ranked] == [1.0 / (k + 1) for k in range(10)]
    assert not any(r.llm_repaired or r.truncated for r in ranked)
    # the first call saw the bottom window, the last one the top
    assert "[20] doc99" in prompts[0] and "[1] doc80" in prompts[0]
    # ...the last one the top 10 of the input, then the 10 best carried up from below
    assert "[1] doc0 " in prompts[-1] and "[11] doc99 " in prompts[-1]


def test_fewer_candidates_than_a_window_one_call_with_all() -> None:
    prompts: list[str] = []
    reranker = ListwiseLLMReranker(oracle({0: 0.1, 1: 0.9, 2: 0.5}, prompts))
    assert [r.index for r in reranker.rerank("q", docs(3))] == [1, 2, 0]
    assert len(prompts) == 1
    assert prompts[0] == default_prompt("q", docs(3))


def test_single_and_no_candidate_need_no_call() -> None:
    def boom(prompt: str) -> str:
        raise AssertionError("no call expected")

    reranker = ListwiseLLMReranker(boom)
    assert reranker.rerank("q", []) == []
    only = reranker.rerank("q", ["alone"])
    assert [(r.index, r.score) for r in only] == [(0, 1.0)]


def test_call_limit_reranks_the_head_and_keeps_the_tail() -> None:
    n = 100
    relevance = {i: float(i) for i in range(n)}  # the later, the better
    prompts: list[str] = []
    reranker = ListwiseLLMReranker(oracle(relevance, prompts), max_calls=2)
    ranked = reranker.rerank("q", docs(n))
    assert len(prompts) == 2
    head = [r.index for r in ranked[:30]]
    # window + step = 30 covered: (10,30) then (0,20); one pass puts the best 10 on top
    assert head == [*range(29, 19, -1), *range(9, -1, -1), *range(19, 9, -1)]
    assert [r.index for r in ranked[30:]] == list(range(30, 100))  # the rest in input order


def test_repaired_and_unparsable_answers_are_counted_and_flagged() -> None:
    answers = iter(["[2] > [2] > [1]", "", "[1] > [2] > [3]"])
    reranker = ListwiseLLMReranker(lambda p: next(answers), window=3, step=2)
    run = reranker.run("q", ["a", "b", "c", "d", "e"])
    assert run.windows == [(2, 5), (0, 3)]
    assert run.calls == 2
    assert (run.repaired, run.unparsable) == (1, 1)
    # window (2,5) = c,d,e answered "[2] > [2] > [1]": d, c, then e appended; all three flagged
    # window (0,3) = a,b,d unparsable: kept as is, all three flagged
    assert [r.index for r in run.ranked] == [0, 1, 3, 2, 4]
    assert all(r.llm_repaired for r in run.ranked)
    assert reranker.stats == {"queries": 1, "calls": 2, "repaired": 1, "unparsable": 1}


def test_clean_windows_are_not_flagged() -> None:
    answers = iter(["[1] > [2] > [3]", "[3] > [1]"])
    reranker = ListwiseLLMReranker(lambda p: next(answers), window=3, step=2)
    ranked = reranker.rerank("q", ["a", "b", "c", "d", "e"])
    flags = {r.index: r.llm_repaired for r in ranked}
    assert flags == {0: True, 1: True, 2: True, 3: False, 4: False}


def test_empty_answers_keep_input_order() -> None:
    reranker = ListwiseLLMReranker(lambda p: "", window=4, step=2)
    ranked = reranker.rerank("q", docs(9))
    assert [r.index for r in ranked] == list(range(9))
    assert all(r.llm_repaired for r in ranked)
    assert reranker.stats["unparsable"] == reranker.stats["calls"] == 4


def test_llm_exception_is_raised_with_context() -> None:
    def broken(prompt: str) -> str:
        raise ConnectionError("rate limited")

    reranker = ListwiseLLMReranker(broken)
    with pytest.raises(
        RerankError, match=r"LLM call 1 of 1 .*ConnectionError: rate limited"
    ) as err:
        reranker.rerank("q", docs(5))
    assert isinstance(err.value.__cause__, ConnectionError)


def test_llm_must_return_text() -> None:
    reranker = ListwiseLLMReranker(lambda p: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="must return str, got int"):
        reranker.rerank("q", docs(3))


def test_threshold_is_refused_and_top_n_works() -> None:
    reranker = ListwiseLLMReranker(lambda p: "[2] > [1]")
    with pytest.raises(ValueError, match="rank-derived"):
        reranker.rerank("q", ["a", "b"], score_threshold=0.5)
    with pytest.raises(ValueError, match="rank-derived"):
        asyncio.run(reranker.arerank("q", ["a", "b"], score_threshold=0.5))
    # a settings error: never turned into a passthrough
    with pytest.raises(ValueError, match="rank-derived"):
        run_rerank(reranker, "q", ["a", "b"], top_n=1, score_threshold=0.1, on_error="passthrough")
    cascade = CascadeReranker([(FakeReranker(), 2), reranker])
    with pytest.raises(ValueError, match="rank-derived"):
        cascade.rerank("q", ["a", "b"], score_threshold=0.1)
    assert [r.index for r in reranker.rerank("q", ["a", "b"], top_n=1)] == [1]
    assert reranker.score("q", ["a", "b"]) == [0.5, 1.0]


def test_passages_cut_to_token_and_char_budget_and_flagged() -> None:
    prompts: list[str] = []

    def llm(prompt: str) -> str:
        prompts.append(prompt)
        return "[1] > [2] > [3]"

    texts = ["one two three four five six", "short", "x" * 50]
    reranker = ListwiseLLMReranker(llm, max_passage_tokens=3, max_passage_chars=20)
    ranked = reranker.rerank("q", texts)
    assert "[1] one two three\n" in prompts[0]
    assert "[2] short\n" in prompts[0]
    assert "[3] " + "x" * 20 + "\n" in prompts[0]
    assert {r.index: r.truncated for r in ranked} == {0: True, 1: False, 2: True}
    # a real token counter (characters here) cuts at word boundaries within its budget
    prompts.clear()
    by_chars = ListwiseLLMReranker(llm, max_passage_tokens=9, count_tokens=len)
    by_chars.rerank("q", texts)
    assert "[1] one two\n" in prompts[0]
    # no budget: nothing cut
    prompts.clear()
    ListwiseLLMReranker(llm, max_passage_tokens=None).rerank("q", texts)
    assert "[1] one two three four five six\n" in prompts[0]


def test_custom_prompt_builder() -> None:
    seen: list[str] = []

    def prompt(query: str, passages: Sequence[str]) -> str:
        return f"{query}|" + "|".join(passages)

    def llm(p: str) -> str:
        seen.append(p)
        return "2 1"

    reranker = ListwiseLLMReranker(llm, prompt=prompt)
    assert [r.index for r in reranker.rerank("q", ["a", "b"])] == [1, 0]
    assert seen == ["q|a|b"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 1}, "window must be"),
        ({"step": 0}, "step must be"),
        ({"window": 5, "step": 6}, "must not exceed window"),
        ({"max_calls": 0}, "max_calls must be"),
        ({"max_passage_tokens": 0}, "max_passage_tokens must be"),
        ({"max_passage_chars": True}, "max_passage_chars must be"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ListwiseLLMReranker(lambda p: "", **kwargs)


def test_async_llm_given_as_llm_is_refused() -> None:
    async def allm(prompt: str) -> str:
        return ""

    with pytest.raises(TypeError, match="allm="):
        ListwiseLLMReranker(allm)  # type: ignore[arg-type]


def test_async_awaits_the_async_llm() -> None:
    sync_calls: list[str] = []
    async_calls: list[str] = []
    relevance = {i: float(i % 7) for i in range(30)}
    sync = oracle(relevance)

    def llm(prompt: str) -> str:
        sync_calls.append(prompt)
        return sync(prompt)

    async def allm(prompt: str) -> str:
        await asyncio.sleep(0)
        async_calls.append(prompt)
        return sync(prompt)

    reranker = ListwiseLLMReranker(llm, allm=allm)
    expected = [r.index for r in reranker.rerank("q", docs(30))]
    sync_calls.clear()
    got = asyncio.run(reranker.arerank("q", docs(30)))
    assert [r.index for r in got] == expected
    assert len(async_calls) == 2 and sync_calls == []
    scores = asyncio.run(reranker.ascore("q", docs(30)))
    assert sorted(scores, reverse=True)[:2] == [1.0, 0.5]


def test_async_without_async_llm_runs_in_a_thread() -> None:
    threads: list[str] = []

    def llm(prompt: str) -> str:
        threads.append(threading.current_thread().name)
        return "[2] > [1]"

    reranker = ListwiseLLMReranker(llm)
    got = asyncio.run(reranker.arerank("q", ["a", "b"]))
    assert [r.index for r in got] == [1, 0]
    assert threads and threads[0] != threading.main_thread().name


def test_cascade_last_stage_orders_the_pruned_and_carries_flags() -> None:
    prompts: list[str] = []
    texts = [f"doc{i} apple" if i % 3 == 0 else f"doc{i} pear" for i in range(30)]

    def llm(prompt: str) -> str:
        prompts.append(prompt)
        return "[2] > [1]"  # leaves out the rest: repaired

    cascade = CascadeReranker([(FakeReranker(), 10), ListwiseLLMReranker(llm)])
    ranked = cascade.rerank("apple", texts, top_n=4)
    assert len(prompts) == 1 and prompts[0].count("\n[") == 10  # the LLM saw only the 10 kept
    survivors = [i for i in range(30) if i % 3 == 0]  # FakeReranker's top 10, input order on ties
    assert [r.index for r in ranked] == [survivors[1], survivors[0], survivors[2], survivors[3]]
    assert all(r.llm_repaired for r in ranked)
    assert set(ranked[0].stage_scores) == {"fake", "listwise-llm"}


# ---------------------------------------------------------------------------- LangChain


def _lc_docs(n: int) -> list[Any]:
    from langchain_core.documents import Document

    return [
        Document(page_content=f"doc{i} text", id=f"id-{i}", metadata={"source": f"s{i}"})
        for i in range(n)
    ]


def test_langchain_orders_with_a_fake_chat_model_and_keeps_documents() -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from langchain_rerank_kit import ListwiseLLMRerank

    docs_in = _lc_docs(4)
    before = [d.model_copy(deep=True) for d in docs_in]
    chat = GenericFakeChatModel(messages=iter([AIMessage(content="[3] > [1] > [4] > [2]")]))
    out = ListwiseLLMRerank(llm=chat, top_n=3).compress_documents(docs_in, "q")
    assert [d.id for d in out] == ["id-2", "id-0", "id-3"]
    assert [d.metadata["relevance_score"] for d in out] == [1.0, 0.5, 1.0 / 3]
    assert out[0].metadata["source"] == "s2" and "llm_repaired" not in out[0].metadata
    assert docs_in == before  # nothing mutated


@pytest.mark.parametrize(
    ("answer", "ids", "repaired"),
    [
        ("3, 1, 2", ["id-2", "id-0", "id-1"], False),
        ("[2, 3, 1]", ["id-1", "id-2", "id-0"], False),
        ("[3] > [3] > [8]", ["id-2", "id-0", "id-1"], True),
        ("", ["id-0", "id-1", "id-2"], True),
        ("no idea", ["id-0", "id-1", "id-2"], True),
    ],
)
def test_langchain_answer_shapes(answer: str, ids: list[str], repaired: bool) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from langchain_rerank_kit import ListwiseLLMRerank

    chat = FakeListChatModel(responses=[answer])
    out = ListwiseLLMRerank(llm=chat, top_n=None).compress_documents(_lc_docs(3), "q")
    assert [d.id for d in out] == ids
    assert all(d.metadata.get("llm_repaired", False) is repaired for d in out)


def test_langchain_async_uses_ainvoke_and_windows_overlap() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from langchain_rerank_kit import ListwiseLLMRerank

    chat = FakeListChatModel(responses=["[2] > [1]"])
    calls: list[str] = []
    original = FakeListChatModel.ainvoke

    async def spy(self: Any, prompt: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(prompt)
        return await original(self, prompt, *args, **kwargs)

    compressor = ListwiseLLMRerank(llm=chat, top_n=None, window=4, step=2)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FakeListChatModel, "ainvoke", spy)
        out = asyncio.run(compressor.acompress_documents(_lc_docs(8), "q"))
    assert len(calls) == 3  # windows (4,8), (2,6), (0,4)
    assert len(out) == 8 and sorted(str(d.id) for d in out) == sorted(f"id-{i}" for i in range(8))
    assert compressor.reranker.stats["calls"] == 3


def test_langchain_llm_failure_raise_and_passthrough() -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    from langchain_rerank_kit import ListwiseLLMRerank

    def exhausted() -> GenericFakeChatModel:
        return GenericFakeChatModel(messages=iter([]))  # StopIteration -> an error on invoke

    with pytest.raises(RerankError, match="LLM call 1 of 1"):
        ListwiseLLMRerank(llm=exhausted(), top_n=2).compress_documents(_lc_docs(3), "q")
    safe = ListwiseLLMRerank(llm=exhausted(), top_n=2, on_error="passthrough")
    out = safe.compress_documents(_lc_docs(3), "q")
    assert [d.id for d in out] == ["id-0", "id-1"]
    assert all(d.metadata["rerank_failed"] for d in out)
    out = asyncio.run(safe.acompress_documents(_lc_docs(3), "q"))
    assert [d.id for d in out] == ["id-0", "id-1"] and out[0].metadata["rerank_failed"]


def test_langchain_threshold_refused_at_construction() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from langchain_rerank_kit import ListwiseLLMRerank

    with pytest.raises(ValueError, match="rank-derived"):
        ListwiseLLMRerank(llm=FakeListChatModel(responses=["1"]), score_threshold=0.5)


def test_langchain_cascade_with_llm_last() -> None:
    from langchain_core.documents import Document
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from langchain_rerank_kit import CascadeRerank, ListwiseLLMRerank

    texts = ["apple pie", "pear", "apple", "plum", "apple tart"]
    docs_in = [Document(page_content=t, id=f"id-{i}") for i, t in enumerate(texts)]
    llm_stage = ListwiseLLMRerank(llm=FakeListChatModel(responses=["[3] > [1] > [2]"]))
    compressor = CascadeRerank(stages=[(FakeReranker(), 3), (llm_stage, None)], top_n=2)
    out = compressor.compress_documents(docs_in, "apple")
    # FakeReranker keeps apple pie, apple, apple tart (ties in input order); the LLM puts [3] first
    assert [d.id for d in out] == ["id-4", "id-0"]
    assert set(out[0].metadata["stage_scores"]) == {"fake", "listwise-llm:FakeListChatModel"}


# ---------------------------------------------------------------------------- LlamaIndex


def _scripted_llm(answers: list[str], *, chat: bool = False, fail: bool = False) -> Any:
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        CompletionResponse,
        LLMMetadata,
        MessageRole,
    )
    from llama_index.core.bridge.pydantic import Field
    from llama_index.core.llms import CustomLLM

    class Scripted(CustomLLM):
        script: list[str]
        prompts: list[str] = Field(default_factory=list)
        async_calls: int = 0
        is_chat: bool = False
        fails: bool = False

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(is_chat_model=self.is_chat)

        def _next(self, prompt: str) -> str:
            if self.fails:
                raise TimeoutError("LLM timed out")
            self.prompts.append(prompt)
            return self.script[(len(self.prompts) - 1) % len(self.script)]

        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            return CompletionResponse(text=self._next(prompt))

        async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            self.async_calls += 1
            await asyncio.sleep(0)
            return CompletionResponse(text=self._next(prompt))

        def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
            text = self._next(str(messages[-1].content))
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            raise NotImplementedError

    return Scripted(script=answers, is_chat=chat, fails=fail)


def _nodes(n: int) -> list[Any]:
    from llama_index.core.schema import NodeWithScore, TextNode

    return [
        NodeWithScore(
            node=TextNode(text=f"doc{i} text", id_=f"n{i}", metadata={"k": i}), score=1 - i / 10
        )
        for i in range(n)
    ]


def test_llamaindex_orders_with_a_scripted_llm() -> None:
    from llamaindex_rerank_kit import ListwiseLLMRerank, RerankedNodeWithScore

    llm = _scripted_llm(["[2] > [4] > [1] > [3]"])
    nodes = _nodes(4)
    out = _reranked(ListwiseLLMRerank(llm=llm, top_n=3).postprocess_nodes(nodes, query_str="q"))
    assert [n.node.node_id for n in out] == ["n1", "n3", "n0"]
    assert all(isinstance(n, RerankedNodeWithScore) for n in out)
    assert [n.score for n in out] == [1.0, 0.5, 1.0 / 3]
    assert out[0].retrieval_score == pytest.approx(0.9) and not out[0].llm_repaired
    assert out[0].node.node_id == nodes[1].node.node_id  # a copy (+ metadata["rerank_model"])
    assert "rerank_model" not in nodes[1].node.metadata  # the input untouched
    assert nodes[1].score == pytest.approx(0.9)
    assert "Search query: q\n" in llm.prompts[0]
    assert re.search(r"^\[1\] .*doc0 text$", llm.prompts[0], re.MULTILINE)


@pytest.mark.parametrize("chat", [False, True])
@pytest.mark.parametrize(
    ("answer", "ids", "repaired"),
    [
        ("2, 3, 1", ["n1", "n2", "n0"], False),
        ('["3", "2", "1"]', ["n2", "n1", "n0"], False),
        ("[3]", ["n2", "n0", "n1"], True),
        ("", ["n0", "n1", "n2"], True),
    ],
)
def test_llamaindex_answer_shapes_complete_and_chat(
    chat: bool, answer: str, ids: list[str], repaired: bool
) -> None:
    from llamaindex_rerank_kit import ListwiseLLMRerank

    rerank = ListwiseLLMRerank(llm=_scripted_llm([answer], chat=chat), top_n=None)
    out = _reranked(rerank.postprocess_nodes(_nodes(3), query_str="q"))
    assert [n.node.node_id for n in out] == ids
    assert all(n.llm_repaired is repaired for n in out)


def test_llamaindex_async_awaits_acomplete_and_emits_events() -> None:
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
    from llama_index.core.schema import QueryBundle

    from llamaindex_rerank_kit import ListwiseLLMRerank

    seen: list[Any] = []

    class Collect(BaseEventHandler):
        def handle(self, event: Any, **kwargs: Any) -> None:
            seen.append(event)

    root = get_dispatcher()
    handler = Collect()
    root.add_event_handler(handler)
    llm = _scripted_llm(["[2] > [1]"])
    try:
        rerank = ListwiseLLMRerank(llm=llm, top_n=2, window=4, step=2)
        out = asyncio.run(rerank.apostprocess_nodes(_nodes(6), query_bundle=QueryBundle("q")))
    finally:
        root.event_handlers.remove(handler)
    assert llm.async_calls == 2 and len(llm.prompts) == 2  # windows (2,6), (0,4)
    assert len(out) == 2
    assert any(isinstance(e, ReRankStartEvent) for e in seen)
    ends = [e for e in seen if isinstance(e, ReRankEndEvent)]
    assert [n.node.node_id for n in ends[0].nodes] == [n.node.node_id for n in out]


def test_llamaindex_mock_llm_echo_is_survived() -> None:
    from llama_index.core.llms import MockLLM

    from llamaindex_rerank_kit import ListwiseLLMRerank

    # MockLLM echoes the prompt: its numbers are [1]..[n] in order, then the format example
    out = _reranked(
        ListwiseLLMRerank(llm=MockLLM(), top_n=None).postprocess_nodes(_nodes(3), query_str="q")
    )
    assert [n.node.node_id for n in out] == ["n0", "n1", "n2"]
    assert all(n.llm_repaired for n in out)  # the example's repeated numbers were ignored


def test_llamaindex_llm_failure_raise_and_passthrough() -> None:
    from llamaindex_rerank_kit import ListwiseLLMRerank

    with pytest.raises(RerankError, match="TimeoutError: LLM timed out"):
        ListwiseLLMRerank(llm=_scripted_llm(["1"], fail=True)).postprocess_nodes(
            _nodes(3), query_str="q"
        )
    safe = ListwiseLLMRerank(llm=_scripted_llm(["1"], fail=True), top_n=2, on_error="passthrough")
    out = _reranked(safe.postprocess_nodes(_nodes(3), query_str="q"))
    assert [n.node.node_id for n in out] == ["n0", "n1"]
    assert all(n.rerank_failed for n in out) and out[0].score == pytest.approx(1.0)
    out = asyncio.run(safe.apostprocess_nodes(_nodes(3), query_str="q"))
    assert [n.node.node_id for n in out] == ["n0", "n1"] and out[1].rerank_failed


def test_llamaindex_cascade_with_llm_last_and_threshold_refused() -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    from llamaindex_rerank_kit import CascadeRerank, ListwiseLLMRerank

    texts = ["apple pie", "pear", "apple", "plum", "apple tart"]
    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.5) for i, t in enumerate(texts)
    ]
    llm_stage = ListwiseLLMRerank(llm=_scripted_llm(["[2] > [9]"]))
    rerank = CascadeRerank(stages=[(FakeReranker(), 3), (llm_stage, None)], top_n=3)
    out = _reranked(rerank.postprocess_nodes(nodes, query_str="apple"))
    assert [n.node.node_id for n in out] == ["n2", "n0", "n4"]
    assert all(n.llm_repaired for n in out)
    assert ListwiseLLMRerank.class_name() == "ListwiseLLMRerank"
    with pytest.raises(ValueError, match="rank-derived"):
        ListwiseLLMRerank(llm=_scripted_llm(["1"]), score_threshold=0.2)


def test_concurrent_async_queries_overlap_and_stay_separate() -> None:
    running = 0
    peak = 0

    async def allm(prompt: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        # the query names the passage to put first
        wanted = re.search(r"Search query: pick (\d+)", prompt)
        return f"[{wanted[1]}]" if wanted else ""

    reranker = ListwiseLLMReranker(lambda p: "", allm=allm)

    async def main() -> list[list[Any]]:
        return await asyncio.gather(
            *(reranker.arerank(f"pick {k % 5 + 1}", docs(5), top_n=1) for k in range(40))
        )

    results = asyncio.run(main())
    assert [r[0].index for r in results] == [k % 5 for k in range(40)]
    assert peak > 1  # the LLM calls of different queries ran at the same time


def test_cascades_in_threads_keep_their_own_repair_flags() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def llm(prompt: str) -> str:
        # clean answer for "clean" queries, a repaired one otherwise
        return "[2] > [1] > [3]" if "Search query: clean" in prompt else "[2]"

    cascade = CascadeReranker([(FakeReranker(), 3), ListwiseLLMReranker(llm)])
    queries = ["clean" if k % 2 else "messy" for k in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda q: cascade.rerank(q, ["a", "b", "c", "d"]), queries))
    for query, ranked in zip(queries, results, strict=True):
        assert [r.index for r in ranked] == [1, 0, 2]
        assert all(r.llm_repaired is (query == "messy") for r in ranked)
