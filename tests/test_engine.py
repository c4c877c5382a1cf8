"""Engine behaviour with deterministic fake rerankers (no models)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Sequence

import pytest

from rerank_kit import CascadeReranker, Ranked, Reranker, Stage, load_reranker
from rerank_kit.testing import FakeReranker


class FixedReranker(Reranker):
    """Returns preset scores by text and records what it was asked to score."""

    def __init__(self, scores: dict[str, float], name: str = "fixed", delay: float = 0.0) -> None:
        super().__init__()
        self.scores = scores
        self.name = name
        self.delay = delay
        self.seen: list[list[str]] = []

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        self.seen.append(list(texts))
        if self.delay:
            time.sleep(self.delay)
        return [self.scores[t] for t in texts]


TEXTS = ["a", "b", "c", "d", "e"]
SCORES = {"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.9, "e": -0.3}


def test_score_is_plain_floats_in_input_order() -> None:
    import numpy as np

    class NumpyReranker(Reranker):
        def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
            return np.array([0.25, 0.75], dtype=np.float32)  # type: ignore[return-value]

    scores = NumpyReranker().score("q", ["x", "y"])
    assert scores == [0.25, 0.75]
    assert all(type(s) is float for s in scores)


def test_rerank_orders_by_score_and_keeps_ties_in_input_order() -> None:
    ranked = FixedReranker(SCORES).rerank("q", TEXTS)
    assert [r.index for r in ranked] == [1, 3, 2, 0, 4]
    assert [r.score for r in ranked] == [0.9, 0.9, 0.5, 0.1, -0.3]
    assert all(isinstance(r, Ranked) and type(r.score) is float for r in ranked)


def test_threshold_filters_before_top_n_cuts() -> None:
    r = FixedReranker(SCORES)
    assert [x.index for x in r.rerank("q", TEXTS, top_n=2)] == [1, 3]
    assert [x.index for x in r.rerank("q", TEXTS, score_threshold=0.5)] == [1, 3, 2]
    assert [x.index for x in r.rerank("q", TEXTS, top_n=4, score_threshold=0.2)] == [1, 3, 2]
    # negative thresholds are valid (logits and cosines can be negative)
    assert len(r.rerank("q", TEXTS, score_threshold=-1.0)) == 5
    assert r.rerank("q", TEXTS, score_threshold=5.0) == []


def test_top_n_larger_than_list_keeps_all() -> None:
    assert len(FixedReranker(SCORES).rerank("q", TEXTS, top_n=50)) == 5


@pytest.mark.parametrize("top_n", [0, -1])
def test_top_n_must_be_positive(top_n: int) -> None:
    with pytest.raises(ValueError, match="top_n"):
        FixedReranker(SCORES).rerank("q", TEXTS, top_n=top_n)


@pytest.mark.parametrize("top_n", [1.5, "3", True])
def test_top_n_must_be_int(top_n: object) -> None:
    with pytest.raises(TypeError, match="top_n"):
        FixedReranker(SCORES).rerank("q", TEXTS, top_n=top_n)  # type: ignore[arg-type]


def test_nan_threshold_is_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        FixedReranker(SCORES).rerank("q", TEXTS, score_threshold=math.nan)


def test_empty_input_returns_empty_without_calling_the_model() -> None:
    r = FixedReranker(SCORES)
    assert r.score("q", []) == []
    assert r.rerank("q", [], top_n=3) == []
    assert r.seen == []


@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_blank_query_is_rejected(query: str) -> None:
    with pytest.raises(ValueError, match="query"):
        FixedReranker(SCORES).rerank(query, TEXTS)


def test_non_string_inputs_are_rejected_with_the_index() -> None:
    r = FakeReranker()
    with pytest.raises(TypeError, match="query"):
        r.rerank(None, ["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        r.rerank("q", ["a", None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence"):
        r.rerank("q", "a single string")


def test_input_list_is_not_modified() -> None:
    texts = ["c", "a", "b"]
    FixedReranker({"a": 1.0, "b": 2.0, "c": 0.0}).rerank("q", texts)
    assert texts == ["c", "a", "b"]


def test_model_nan_is_reported() -> None:
    with pytest.raises(RuntimeError, match=r"NaN for texts\[0\]"):
        FixedReranker({"a": math.nan}).score("q", ["a"])


def test_wrong_score_count_is_reported() -> None:
    class Short(Reranker):
        def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
            return [1.0]

    with pytest.raises(RuntimeError, match="1 scores for 2 texts"):
        Short().score("q", ["a", "b"])


def test_async_equals_sync() -> None:
    r = FakeReranker()
    texts = ["red apple", "green pear", "red car", "apple pie"]
    sync = r.rerank("red apple", texts, top_n=3)
    async_ = asyncio.run(r.arerank("red apple", texts, top_n=3))
    assert sync == async_
    assert asyncio.run(r.ascore("red apple", texts)) == r.score("red apple", texts)


def test_async_does_not_block_the_event_loop() -> None:
    slow = FixedReranker({"a": 1.0}, delay=0.3)

    async def main() -> int:
        ticks = 0
        done = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(heartbeat())
        await slow.arerank("q", ["a"])
        done.set()
        await beat
        return ticks

    assert asyncio.run(main()) >= 10


def test_shared_instance_serialises_model_calls() -> None:
    active = 0
    overlap = False

    class Guarded(Reranker):
        def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
            nonlocal active, overlap
            active += 1
            overlap = overlap or active > 1
            time.sleep(0.005)
            active -= 1
            return [float(len(t)) for t in texts]

    r = Guarded()
    threads = [threading.Thread(target=r.score, args=("q", ["ab", "c"])) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlap


# --- cascades ---------------------------------------------------------------------------


def test_cascade_later_stage_scores_only_survivors() -> None:
    cheap = FixedReranker({t: float(i) for i, t in enumerate("abcdef")}, name="cheap")
    good = FixedReranker({"d": 0.9, "e": 0.1, "f": 0.5}, name="good")
    cascade = CascadeReranker([(cheap, 3), (good, None)])
    ranked = cascade.rerank("q", list("abcdef"))
    assert cheap.seen == [list("abcdef")]
    assert sorted(good.seen[0]) == ["d", "e", "f"]  # only the survivors
    assert [r.index for r in ranked] == [3, 5, 4]  # final order is the last stage's
    assert ranked[0].score == 0.9
    assert dict(ranked[0].stage_scores) == {"cheap": 3.0, "good": 0.9}


def test_cascade_top_n_threshold_and_score() -> None:
    cheap = FixedReranker({t: float(i) for i, t in enumerate("abcd")}, name="x")
    good = FixedReranker({"c": 0.2, "d": 0.8}, name="x")
    cascade = CascadeReranker([Stage(cheap, keep=2), Stage(good)])
    assert cascade.stage_names == ("x", "x#2")
    assert [r.index for r in cascade.rerank("q", list("abcd"), top_n=1)] == [3]
    assert [r.index for r in cascade.rerank("q", list("abcd"), score_threshold=0.5)] == [3]
    assert cascade.score("q", list("abcd")) == [-math.inf, -math.inf, 0.2, 0.8]
    assert cascade.rerank("q", []) == []


def test_cascade_async_equals_sync() -> None:
    cascade = CascadeReranker([(FakeReranker("a"), 2), FakeReranker("b")])
    texts = ["red apple", "apple", "red", "car"]
    assert cascade.rerank("red apple", texts) == asyncio.run(cascade.arerank("red apple", texts))


@pytest.mark.parametrize(
    ("stages", "error"),
    [([], ValueError), ([(FakeReranker(), 0)], ValueError), (["x"], TypeError)],
)
def test_cascade_rejects_bad_stages(stages: list[object], error: type[Exception]) -> None:
    with pytest.raises(error):
        CascadeReranker(stages)  # type: ignore[arg-type]


# --- load_reranker ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["", "nonsense", "unknown:model", "cross-encoder:", "bi-encoder:   "]
)
def test_load_reranker_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        load_reranker(spec)


def test_load_reranker_cascade_needs_keep_on_inner_stages() -> None:
    with pytest.raises(ValueError, match="@KEEP"):
        load_reranker("flashrank:a >> flashrank:b")


def test_load_reranker_unknown_flashrank_name_is_clear() -> None:
    pytest.importorskip("flashrank")
    with pytest.raises(ValueError, match="unknown FlashRank model 'no-such-model'"):
        load_reranker("flashrank:no-such-model")
