"""Issue 30, files and inputs: each test is one "Why" case that held on bd35bff and fails there.

Score-cache files (bad lines skipped and counted, never the file; cache hits as checked as model
output), failed cache writes (a real read-only and a real full file system: small tmpfs mounts),
pipeline configs (every field checked at load, named), and text that cannot be encoded as UTF-8
(refused at the boundary with its position, in the engine and both adapters).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import subprocess
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import Fusion, PipelineConfig, ScoreCache
from rerank_kit._core import score_cache as score_cache_module
from rerank_kit._core.score_cache import make_score_cache
from rerank_kit.testing import FakeReranker

LOGGER = "rerank_kit._core.score_cache"
TEXTS = ["red apple", "green pear", "apple pie", "red car"]


class Cached(FakeReranker):
    """``FakeReranker`` with a score cache; counts the pairs the model is asked to score."""

    def __init__(self, score_cache: object = 0, name: str = "fake") -> None:
        super().__init__(name)
        self._score_cache = make_score_cache(score_cache)
        self.pairs = 0

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        self.pairs += len(texts)
        return super()._score_pairs(query, texts)


def _line(*record: Any) -> str:
    return json.dumps(list(record))


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _all_finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


# -- score-cache files: every line checked -------------------------------------------------


def test_cache_file_nan_inf_and_out_of_range_scores_never_reach_results(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "scores.jsonl"
    lines = [
        _line("fake", "red apple", "red apple", 0.9999, False),  # a good line
        '["fake", "red apple", "green pear", NaN, false]',
        '["fake", "red apple", "apple pie", Infinity, false]',
        '["fake", "red apple", "red car", 1e400, false]',  # parses as inf
        '["fake", "red apple", "banana", "nan", false]',
        '["fake", "red apple", "kiwi", -Infinity, false]',
    ]
    _write_lines(path, lines)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        r = Cached(score_cache=path)
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 5 unreadable line(s)" in warnings[0].getMessage()
    assert "line 2" in warnings[0].getMessage()  # the first bad line is named
    texts = ["red apple", "green pear", "apple pie", "red car", "banana", "kiwi"]
    scores = r.score("red apple", texts)
    assert _all_finite(scores) and scores[0] == 0.9999  # the good line was a hit
    assert r.pairs == 5  # the five bad lines were scored again
    ranked = Cached(score_cache=path).rerank("red apple", texts)
    assert all(math.isfinite(x.score) for x in ranked)
    fused = Cached(score_cache=path).rerank(
        "red apple", texts, first_stage_scores=[6, 5, 4, 3, 2, 1], fusion=Fusion(0.5, "minmax")
    )
    assert all(math.isfinite(x.score) for x in fused)


def test_cache_file_wrong_types_and_shapes_are_skipped_not_coerced(tmp_path: Path) -> None:
    path = tmp_path / "scores.jsonl"
    bad = [
        '["fake", "q", "a", 0.5, "false"]',  # was read as truncated=True
        '["fake", "q", "b", 0.5, 0]',  # an int is not a flag
        '["fake", "q", "c", true, false]',  # a bool is not a score
        '["fake", "q", "d", [0.5], false]',
        '[1, "q", "e", 0.5, false]',  # was coerced to the model "1"
        '["fake", "q", "f", 0.5, false, "extra"]',
        '{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}',  # unpacks into five keys
        '["fake", "q", "g", "0.5", false]',
        '["fake", "q", "h", 0.5]',
        "\x00\x01garbage",
        '["fake", "q", "\\ud800", 0.5, false]',  # a lone surrogate can never be a hit
    ]
    _write_lines(path, [_line("fake", "q", "z", 0.25, True), *bad])
    cache = ScoreCache(100, path=path)
    assert cache.info()["size"] == 1
    assert cache.get("fake", "q", ["z", "a", "b", "c", "e"]) == [(0.25, True)] + [None] * 4
    assert cache.get("1", "q", ["e"]) == [None]


def test_cache_file_deep_nesting_skips_the_line_not_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "scores.jsonl"
    deep = "[" * 200_000 + "]" * 200_000
    _write_lines(
        path,
        [
            _line("fake", "q", "a", 0.5, False),
            deep,
            '["fake", "q", ' + "[" * 100_000 + "]" * 100_000 + ", 0.5, false]",
            _line("fake", "q", "b", 0.25, False),
        ],
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        cache = ScoreCache(10, path=path)  # bd35bff: RecursionError, the file unloadable
    assert cache.get("fake", "q", ["a", "b"]) == [(0.5, False), (0.25, False)]
    assert "skipped 2 unreadable line(s)" in caplog.text


def test_cache_file_over_long_line_is_skipped_in_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(score_cache_module, "MAX_LINE_BYTES", 2**20, raising=False)
    path = tmp_path / "scores.jsonl"
    huge = '["fake", "q", "' + "x" * (48 * 2**20) + '", 0.5, false]'
    _write_lines(
        path, [_line("fake", "q", "a", 0.5, False), huge, _line("fake", "q", "b", 0.1, False)]
    )
    del huge
    tracemalloc.start()
    try:
        cache = ScoreCache(10, path=path)  # bd35bff read the whole 48 MB file, then the line
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cache.info()["size"] == 2
    assert cache.get("fake", "q", ["a", "b"]) == [(0.5, False), (0.1, False)]
    assert peak < 8 * 2**20, f"peak {peak} bytes while loading"


def test_cache_hits_pass_the_model_output_checks(tmp_path: Path) -> None:
    cache = ScoreCache(100)
    cache.put("fake", "red apple", ["red apple", "red car"], [math.nan, math.inf], [False, False])
    assert cache.info()["size"] == 0  # non-finite scores are not kept
    r = Cached(score_cache=cache)
    assert _all_finite(r.score("red apple", ["red apple", "red car"]))
    # an entry placed around put() (e.g. by an older version in the same process) is rescored
    cache._lru.put(("fake", "q", "a"), (math.nan, False))
    assert _all_finite(r.score("q", ["a"])) and r.pairs == 3
    path = tmp_path / "scores.jsonl"
    file_cache = ScoreCache(10, path=path)
    file_cache.put("fake", "q", ["a", "b"], [0.5, math.nan], [False, False])
    assert [json.loads(x)[2] for x in path.read_text().splitlines()] == ["a"]


# -- failed cache writes: nothing scored is lost -------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (CI runs as root, where file modes stop nothing); skipped if not allowed."""
    where = tmp_path / "mnt"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)


def _fill(where: Path) -> Path:
    """Fill the file system until it is full; the filler file to delete later."""
    filler = where / "filler"
    with filler.open("wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _rows(path: Path) -> list[list[Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_read_only_file_system_never_fails_the_call_and_saves_later(
    tmpfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmpfs / "scores.jsonl"
    Cached(score_cache=path).score("red apple", TEXTS[:1])
    _remount(tmpfs, "ro")
    try:
        r = Cached(score_cache=path)  # loading still works
        with caplog.at_level(logging.DEBUG, logger=LOGGER):
            first = r.score("red apple", TEXTS)  # bd35bff: OSError, scores lost
            second = r.score("apple pie", TEXTS)
        assert first == FakeReranker().score("red apple", TEXTS) and r.pairs == 7
        assert second == FakeReranker().score("apple pie", TEXTS)
        warned = [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
        assert len(warned) == 1 and "Read-only file system" in warned[0].getMessage()
        assert r._score_cache is not None and r._score_cache.unsaved == 7
    finally:
        _remount(tmpfs, "rw")
    r.score("red car", TEXTS[:1])  # the next write takes the unsaved entries with it
    assert r._score_cache.unsaved == 0
    rows = _rows(path)
    assert len(rows) == 1 + 7 + 1
    again = Cached(score_cache=path)
    again.score("red apple", TEXTS)
    again.score("apple pie", TEXTS)
    assert again.pairs == 0


def test_a_full_file_system_never_fails_the_call_and_saves_later(
    tmpfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmpfs / "scores.jsonl"
    r = Cached(score_cache=path)
    r.score("red apple", TEXTS[:1])
    before = path.stat().st_size
    filler = _fill(tmpfs)
    long_texts = [f"passage {i} " + "apple " * 100 for i in range(20)]  # > the free space
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        scores = r.score("red apple", long_texts)  # bd35bff: OSError: No space left
        r.score("green pear", long_texts)
    assert scores == FakeReranker().score("red apple", long_texts)
    warned = [rec for rec in caplog.records if rec.levelno >= logging.WARNING]
    assert len(warned) == 1 and "No space left" in warned[0].getMessage()
    assert r._score_cache is not None and r._score_cache.unsaved == 40
    # the write filled the file's last page, then failed: that partial write was cut off
    assert path.stat().st_size == before
    for row in _rows(path):
        assert len(row) == 5
    filler.unlink()
    assert r._score_cache.flush() and r._score_cache.unsaved == 0
    again = Cached(score_cache=path)
    again.score("red apple", long_texts)
    again.score("green pear", long_texts)
    assert again.pairs == 0 and len(_rows(path)) == 41


def test_a_failed_write_is_tried_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "scores.jsonl"
    real_open = Path.open
    failures: list[int] = []

    def flaky_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path and not failures:
            failures.append(1)
            raise OSError(errno.EIO, "Input/output error")
        return real_open(self, *args, **kwargs)

    r = Cached(score_cache=path)
    monkeypatch.setattr(Path, "open", flaky_open)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        r.score("red apple", TEXTS)
    assert failures == [1] and not caplog.records and len(_rows(path)) == len(TEXTS)


# -- pipeline configs: every field checked at load, named ----------------------------------

BASE = {"format": "rerank-kit-pipeline/2", "reranker": "x:y"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("top_n", math.nan),
        ("top_n", "10"),
        ("top_n", -3),
        ("top_n", 0),
        ("top_n", 2.5),
        ("top_n", True),
        ("score_threshold", math.nan),
        ("score_threshold", "high"),
        ("score_threshold", math.inf),
        ("score_threshold", 10**400),
        ("depth", 10**18),
        ("format", "something-else"),
        ("format", 2),
        ("fusion", 10**400),
        ("fusion", "0.5"),
        ("fusion_method", "sum"),
        ("first_stage", 3),
        ("first_stage", ""),
        ("reranker", "x:\ud800"),
        ("dedupe", math.nan),
        ("diversity", "lots"),
        ("boosts", "recency"),
    ],
)
def test_pipeline_config_fields_are_checked_at_load_and_named(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=key):
        PipelineConfig.from_dict({**BASE, key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("depth", 0),
        ("depth", "100"),
        ("fusion", math.nan),
        ("token_budget", -1),
        ("long_query_tokens", "long"),
        ("order", ["score"]),
    ],
)
def test_pipeline_config_fields_refused_before_stay_refused(key: str, value: Any) -> None:
    """Not regressions (bd35bff refused these too): the new checks keep them ValueErrors."""
    with pytest.raises(ValueError, match=key):
        PipelineConfig.from_dict({**BASE, key: value})


def test_pipeline_config_from_a_newer_version_says_upgrade() -> None:
    with pytest.raises(ValueError, match="upgrade rerank-kit"):
        PipelineConfig.from_dict({**BASE, "format": "rerank-kit-pipeline/3"})


def test_pipeline_config_deep_nesting_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"reranker": "x:y", "boosts": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match="nested too deeply"):  # bd35bff: RecursionError
        PipelineConfig.load(path)
    nested: Any = {"field": "year", "half_life_days": 30}
    for _ in range(5000):
        nested = [nested]
    with pytest.raises(ValueError, match="nested more than"):
        PipelineConfig.from_dict({**BASE, "boosts": nested})
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="nested more than"):
        PipelineConfig.from_dict({**BASE, "boosts": cyclic})


def test_pipeline_config_file_is_bounded_and_named(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_bytes(b'{"reranker": "x:y"}' + b" " * (9 * 2**20))
    with pytest.raises(ValueError, match="larger than"):
        PipelineConfig.load(path)
    path.write_bytes(b'{"reranker": "x:\xff"}')
    with pytest.raises(ValueError, match=f"{path}: not UTF-8"):
        PipelineConfig.load(path)
    path.write_text(json.dumps({**BASE, "top_n": -1}))
    with pytest.raises(ValueError, match=f"{path}: .*top_n"):
        PipelineConfig.load(path)


# -- text that cannot be encoded as UTF-8 --------------------------------------------------


def test_lone_surrogates_are_refused_by_the_engine_with_the_position() -> None:
    r = FakeReranker()
    with pytest.raises(ValueError, match=r"texts\[1\] holds a lone surrogate .* at character 3"):
        r.rerank("apple", ["ok", "abc\ud800def"])  # bd35bff: scored (or a tokenizer TypeError)
    with pytest.raises(ValueError, match=r"query holds a lone surrogate .* at character 0"):
        r.score("\udfffapple", ["ok"])
    assert r.calls == 0


@pytest.mark.parametrize("on_error", ["raise", "passthrough"])
def test_lone_surrogates_are_refused_by_the_langchain_adapter(on_error: Any) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from langchain_rerank_kit import RerankCompressor

    compressor = RerankCompressor(reranker=FakeReranker(), on_error=on_error)
    docs = [Document(page_content="ok"), Document(page_content="x\ud83d")]
    with pytest.raises(ValueError, match=r"documents\[1\]\.page_content holds a lone surrogate"):
        compressor.compress_documents(docs, "apple")
    with pytest.raises(ValueError, match="query holds a lone surrogate"):
        compressor.compress_documents(docs[:1], "apple\udc80")


@pytest.mark.parametrize("on_error", ["raise", "passthrough"])
def test_lone_surrogates_are_refused_by_the_llamaindex_adapter(on_error: Any) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, TextNode

    from llamaindex_rerank_kit import RerankPostprocessor

    post = RerankPostprocessor(reranker=FakeReranker(), on_error=on_error)
    nodes = [NodeWithScore(node=TextNode(text=t), score=1.0) for t in ("ok", "ab\ud800")]
    with pytest.raises(ValueError, match=r"nodes\[1\]\.node\.get_content\(\) holds a lone"):
        post.postprocess_nodes(nodes, query_str="apple")
    with pytest.raises(ValueError, match="query holds a lone surrogate"):
        post.postprocess_nodes(nodes[:1], query_str="\ud800")


def test_valid_astral_characters_still_pass(tmp_path: Path) -> None:
    r = Cached(score_cache=tmp_path / "scores.jsonl")
    texts = ["emoji 😀 apple", "\U0001d518 CJK \u4e2d\u6587 apple"]
    assert r.score("apple 😀", texts) == FakeReranker().score("apple 😀", texts)
    again = Cached(score_cache=tmp_path / "scores.jsonl")
    again.score("apple 😀", texts)
    assert again.pairs == 0 and os.path.getsize(tmp_path / "scores.jsonl") > 0


# -- found by tests/test_properties.py (full profile) ------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"score_threshold": 10**400},
        {"fusion": 10**400},
        {"fusion": 0.5, "first_stage_scores": [1.0, 10**400]},
        {"dedupe": 10**400},
        {"diversity": -(10**400)},
    ],
    ids=["score_threshold", "fusion", "first_stage_scores", "dedupe", "diversity"],
)
def test_huge_ints_in_options_are_named_errors_not_overflow(options: dict[str, Any]) -> None:
    name = next(iter(options)) if "first_stage_scores" not in options else "first_stage_scores"
    with pytest.raises((ValueError, TypeError), match=name):  # bd35bff: OverflowError
        FakeReranker().rerank("red apple", ["red apple", "pear"], **options)


def test_fusion_with_huge_first_stage_scores_stays_finite() -> None:
    texts = ["red apple", "pear"]
    for method in ("zscore", "minmax"):
        fused = FakeReranker().rerank(
            "red apple", texts, first_stage_scores=[0.0, 2.6e154], fusion=Fusion(0.5, method)
        )  # bd35bff: OverflowError in zscore
        small = FakeReranker().rerank(
            "red apple", texts, first_stage_scores=[0.0, 1.0], fusion=Fusion(0.5, method)
        )
        assert [r.index for r in fused] == [r.index for r in small]
        assert [r.score for r in fused] == pytest.approx([r.score for r in small])
        assert all(math.isfinite(r.score) for r in fused)


def test_remote_score_beyond_float_range_is_a_remote_error() -> None:
    pytest.importorskip("httpx")
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from rerank_kit import RemoteReranker
    from rerank_kit._rerankers.remote.errors import RemoteRerankError

    body = b'[{"index": 0, "score": 1' + b"0" * 400 + b"}]"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        tei = RemoteReranker("tei", url, max_retries=0, timeout=5)
        with pytest.raises(RemoteRerankError, match="non-numeric score"):  # bd35bff: Overflow
            tei.score("red apple", ["red apple"])
    finally:
        server.shutdown()
        server.server_close()


def test_every_test_named_in_the_reliability_table_exists() -> None:
    import re

    docs = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    section = docs.split("## Files and untrusted text", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", section))
    here = Path(__file__).read_text()
    assert len(named) >= 10
    for name in named:
        assert f"def {name}(" in here, name
    for short in re.findall(r"`\.\.\.(_[a-z0-9_]+)`", section):
        assert short in here, short
