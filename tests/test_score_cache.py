"""The opt-in score cache: same results as no cache, fewer model calls, safe under threads."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rerank_kit import PairScores, Reranker, ScoreCache
from rerank_kit._core.score_cache import make_score_cache
from rerank_kit.demo import CORPUS, QUERIES

TEXTS = [text for _, text in CORPUS]


class Counting(Reranker):
    """Scores by word overlap; counts the pairs it is asked to score, flags long texts."""

    def __init__(self, name: str = "counting", score_cache: object = 0) -> None:
        super().__init__()
        self.name = name
        self._score_cache = make_score_cache(score_cache)
        self.pairs = 0
        self.calls = 0

    def _score_pairs(self, query: str, texts: list[str]) -> PairScores:
        self.calls += 1
        self.pairs += len(texts)
        q = set(query.lower().split())
        return PairScores(
            [len(q & set(t.lower().split())) + len(t) / 1000 for t in texts],
            truncated=[len(t) > 120 for t in texts],
        )


def test_cached_results_equal_uncached_and_skip_the_model() -> None:
    plain, cached = Counting(), Counting(score_cache=1000)
    for _ in range(3):
        for query, _ in QUERIES:
            assert cached.rerank(query, TEXTS, top_n=5) == plain.rerank(query, TEXTS, top_n=5)
    assert plain.pairs == 3 * len(QUERIES) * len(TEXTS)
    assert cached.pairs == len(QUERIES) * len(TEXTS)  # each pair scored once
    info = cached.cache_info()
    assert info == {
        "size": len(QUERIES) * len(TEXTS),
        "max_size": 1000,
        "hits": 2 * len(QUERIES) * len(TEXTS),
        "misses": len(QUERIES) * len(TEXTS),
    }
    assert any(r.truncated for r in cached.rerank(QUERIES[0][0], TEXTS))  # flags come back too
    cached.clear_cache()
    assert cached.cache_info()["size"] == 0 and cached.cache_info()["hits"] == 0


def test_only_unseen_pairs_are_scored_and_duplicates_once() -> None:
    r = Counting(score_cache=100)
    r.score("laptop", TEXTS[:5])
    r.score("laptop", [*TEXTS[3:8], TEXTS[7]])  # 3,4 cached; 5,6,7 new; 7 twice in the call
    assert r.pairs == 5 + 3
    assert r.score("laptop", TEXTS[:8]) == Counting().score("laptop", TEXTS[:8])


def test_key_is_model_query_and_text() -> None:
    shared = ScoreCache(1000)
    a, b = Counting("a", shared), Counting("b", shared)
    a.score("laptop hot", TEXTS)
    b.score("laptop hot", TEXTS)  # another model: no hits
    a.score("laptop cold", TEXTS)  # another query: no hits
    assert a.pairs == 2 * len(TEXTS) and b.pairs == len(TEXTS)
    assert shared.info()["hits"] == 0
    a.score("laptop hot", TEXTS)
    assert a.pairs == 2 * len(TEXTS) and shared.info()["hits"] == len(TEXTS)


def test_cache_is_bounded_lru() -> None:
    r = Counting(score_cache=3)
    r.score("q", ["a", "b", "c"])
    r.score("q", ["a"])  # a is now the most recent
    r.score("q", ["d"])  # evicts b
    assert r.cache_info()["size"] == 3
    before = r.pairs
    r.score("q", ["a", "c", "d"])
    assert r.pairs == before
    r.score("q", ["b"])
    assert r.pairs == before + 1


def test_settings_are_checked() -> None:
    for bad in (-1, 1.5, True, b"scores"):
        with pytest.raises(ValueError, match="score_cache"):
            make_score_cache(bad)
    with pytest.raises(ValueError, match="max_size"):
        ScoreCache(0)
    assert make_score_cache(0) is None and make_score_cache(None) is None


def test_threads_get_consistent_results() -> None:
    r = Counting(score_cache=50)  # smaller than the working set: evictions under contention
    want = {q: Counting().score(q, TEXTS) for q, _ in QUERIES}
    barrier = threading.Barrier(8)

    def work(i: int) -> bool:
        barrier.wait()
        ok = True
        for j in range(40):
            query = QUERIES[(i + j) % len(QUERIES)][0]
            ok &= r.score(query, TEXTS) == want[query]
        return ok

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(8)))
    info = r.cache_info()
    assert info["size"] <= 50 and info["hits"] + info["misses"] == 8 * 40 * len(TEXTS)


@pytest.mark.models
def test_cross_encoder_score_cache_matches_and_counts(tiny_ce_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from rerank_kit import CrossEncoderReranker, OnnxCrossEncoderReranker

    query = QUERIES[0][0]
    for make in (
        lambda c: CrossEncoderReranker(str(tiny_ce_dir), score_cache=c),
        lambda c: CrossEncoderReranker(
            str(tiny_ce_dir), backend="onnx", model_kwargs={"cache_dir": tmp_path}, score_cache=c
        ),
        lambda c: OnnxCrossEncoderReranker(str(tiny_ce_dir), cache_dir=tmp_path, score_cache=c),
    ):
        plain, cached = make(0), make(1000)
        want = plain.score(query, TEXTS)
        assert cached.score(query, TEXTS) == pytest.approx(want, abs=1e-6)
        assert cached.score(query, TEXTS) == pytest.approx(want, abs=1e-6)
        assert cached.cache_info()["hits"] == len(TEXTS)
        assert plain.cache_info()["max_size"] == 0


def test_file_cache_survives_the_process_and_scores_only_new_pairs(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "scores.jsonl"
    first = Counting(score_cache=path)  # a file name: a persistent cache
    want = first.rerank("laptop", TEXTS)
    assert first.pairs == len(TEXTS) and path.is_file()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == len(TEXTS) and rows[0][:3] == ["counting", "laptop", TEXTS[0]]
    again = Counting(score_cache=ScoreCache(100, path=path))  # a new "process"
    assert again.rerank("laptop", TEXTS) == want
    assert again.pairs == 0 and again.cache_info()["hits"] == len(TEXTS)
    again.score("password", TEXTS[:2])
    assert again.pairs == 2 and len(path.read_text().splitlines()) == len(TEXTS) + 2
    again.clear_cache()  # memory only: the file keeps every pair
    assert Counting(score_cache=path).score("password", TEXTS[:2]) == again.score(
        "password", TEXTS[:2]
    )
    other = Counting("other", score_cache=path)  # keyed by the reranker's name
    other.score("laptop", TEXTS[:1])
    assert other.pairs == 1


def test_file_cache_skips_a_torn_line_and_appends_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "scores.jsonl"
    Counting(score_cache=path).score("laptop", TEXTS[:3])
    text = path.read_text()
    path.write_text(text + '["counting", "laptop", "half a li')  # a run killed mid-write
    with caplog.at_level(logging.WARNING, logger="rerank_kit._core.score_cache"):
        r = Counting(score_cache=path)
    assert "skipped 1 unreadable line" in caplog.text
    r.score("laptop", TEXTS[:4])
    assert r.pairs == 1  # the three whole lines were loaded
    fresh = Counting(score_cache=path)
    fresh.score("laptop", TEXTS[:4])
    assert fresh.pairs == 0  # the new line did not glue onto the torn one
    with pytest.raises(ValueError, match="folder"):
        ScoreCache(10, path=tmp_path)


def test_file_cache_respects_max_size_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "scores.jsonl"
    Counting(score_cache=path).score("q", ["a", "b", "c", "d"])
    small = ScoreCache(2, path=path)
    assert small.info()["size"] == 2
    assert small.get("counting", "q", ["c", "d"]) == [(pytest.approx(0.001), False)] * 2


def test_set_score_cache_after_construction() -> None:
    from rerank_kit import CascadeReranker, Stage
    from rerank_kit.testing import FakeReranker

    r = Counting()
    r.set_score_cache(100)
    r.score("q", TEXTS)
    r.score("q", TEXTS)
    assert r.pairs == len(TEXTS) and r.cache_info()["hits"] == len(TEXTS)
    r.set_score_cache(None)
    assert r.cache_info()["max_size"] == 0
    with pytest.raises(ValueError, match="keeps no score cache"):
        FakeReranker().set_score_cache(10)
    cheap, good = FakeReranker(), Counting()
    cascade = CascadeReranker([Stage(cheap, 3), Stage(good, None)])
    shared = ScoreCache(100)
    cascade.set_score_cache(shared)
    cascade.rerank("laptop", TEXTS)
    cascade.rerank("laptop", TEXTS)
    assert good.pairs == 3 and shared.info()["hits"] == 3
    with pytest.raises(ValueError, match="no stage"):
        CascadeReranker([Stage(FakeReranker(), 3), Stage(FakeReranker(), None)]).set_score_cache(1)
