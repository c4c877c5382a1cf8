"""``rerank-kit serve`` over loopback with fake rerankers: schemas, clients, errors, batching.

Every request goes over real HTTP to uvicorn on 127.0.0.1. The real-model round trip, the
load test and SIGTERM are in test_serve_load.py.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from serve_support import KEY, BatchDependentFake, ServerThread, SlowFake

from rerank_kit import PipelineConfig, load_reranker
from rerank_kit._pipeline import Pipeline
from rerank_kit.serve import ApiKeys, Batching, Limits, ModelEntry, ServeConfig, create_app

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

QUERY = "what is the capital of france"
TEXTS = [
    "paris is the capital of france",
    "the quick brown fox",
    "berlin is the capital of germany",
    "france has many cities; its capital is paris",
    "what a lovely day",
    "capital letters in french",
]


def _config(**kwargs: object) -> ServeConfig:
    models = (ModelEntry("fast", "slow-fake"), ModelEntry("tuned", "pipeline"))
    return ServeConfig(models, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def engine() -> SlowFake:
    return SlowFake()


@pytest.fixture(scope="module")
def url(engine: SlowFake) -> Iterator[str]:
    tuned = Pipeline(PipelineConfig("fake", top_n=2), SlowFake(name="tuned"))
    config = _config(limits=Limits(max_documents=8, max_body_bytes=20_000, max_tokens=400))
    app = create_app(config, {"fast": engine, "tuned": tuned}, api_keys=ApiKeys([KEY]))
    with ServerThread(app) as base:
        yield base


AUTH = {"Authorization": f"Bearer {KEY}"}


def _post(
    url: str, path: str, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.post(
        url + path, json=body, headers=AUTH if headers is None else headers, timeout=30
    )


# -- our own clients against the server: the engine's scores ------------------------------


@pytest.mark.parametrize("provider", ["cohere", "jina", "tei"])
def test_rerank_kit_clients_get_the_engines_scores(
    url: str, engine: SlowFake, provider: str
) -> None:
    spec = f"tei:{url}" if provider == "tei" else f"{provider}:fast"
    kwargs = {} if provider == "tei" else {"base_url": url, "api_key": KEY}
    if provider == "tei":
        kwargs = {"api_key": KEY}
    client = load_reranker(spec, max_retries=0, **kwargs)
    expected = engine.score(QUERY, TEXTS)
    got = client.score(QUERY, TEXTS)
    assert got == pytest.approx(expected, abs=1e-6)
    assert len(set(expected)) == len(expected)  # distinct: the mapping to indices is checked
    ranked = client.rerank(QUERY, TEXTS, top_n=3)
    assert [r.index for r in ranked] == [r.index for r in engine.rerank(QUERY, TEXTS, top_n=3)]
    assert asyncio.run(client.ascore(QUERY, TEXTS)) == pytest.approx(expected, abs=1e-6)


def test_the_official_cohere_sdk(url: str, engine: SlowFake) -> None:
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(api_key=KEY, base_url=url)
    answer = client.rerank(model="fast", query=QUERY, documents=TEXTS, top_n=3)
    local = engine.rerank(QUERY, TEXTS, top_n=3)
    assert [r.index for r in answer.results] == [r.index for r in local]
    assert [r.relevance_score for r in answer.results] == pytest.approx(
        [r.score for r in local], abs=1e-6
    )
    assert answer.meta is not None and answer.meta.billed_units is not None
    assert answer.meta.billed_units.search_units == 1
    v1 = cohere.Client(api_key=KEY, base_url=url)
    docs = [{"text": t, "source": f"s{i}"} for i, t in enumerate(TEXTS)]
    old = v1.rerank(model="fast", query=QUERY, documents=docs, top_n=2, return_documents=True)
    assert [r.index for r in old.results] == [r.index for r in local[:2]]
    assert old.results[0].document is not None
    assert old.results[0].document.text == TEXTS[local[0].index]
    with pytest.raises(cohere.errors.UnauthorizedError):
        cohere.ClientV2(api_key="wrong", base_url=url).rerank(
            model="fast", query=QUERY, documents=TEXTS
        )


def test_schemas_answer_in_their_shape(url: str, engine: SlowFake) -> None:
    scores = engine.score(QUERY, TEXTS)
    best = max(range(len(TEXTS)), key=lambda i: scores[i])
    v2 = _post(
        url,
        "/v2/rerank",
        {"model": "fast", "query": QUERY, "documents": TEXTS, "return_documents": True},
    )
    assert v2.status_code == 200, v2.text
    body = v2.json()
    assert set(body) == {"id", "results", "meta"}
    assert body["meta"]["api_version"] == {"version": "2"}
    assert body["results"][0] == {
        "index": best,
        "relevance_score": pytest.approx(scores[best]),
        "document": {"text": TEXTS[best]},
    }
    assert len(body["results"]) == len(TEXTS)
    v1 = _post(url, "/v1/rerank", {"query": QUERY, "documents": TEXTS, "top_n": 2})
    body = v1.json()
    assert body["model"] == "fast" and len(body["results"]) == 2
    words = len(QUERY.split()) + sum(len(t.split()) for t in TEXTS)
    assert body["usage"] == {"total_tokens": words}  # FakeReranker has no tokenizer: words
    tei = _post(url, "/rerank", {"query": QUERY, "texts": TEXTS, "return_text": True})
    items = tei.json()
    assert isinstance(items, list) and items[0]["index"] == best and items[0]["text"] == TEXTS[best]
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    # max_tokens_per_doc cuts each document to its first N tokens (words for this model)
    cut = _post(
        url,
        "/v2/rerank",
        {
            "model": "fast",
            "query": "paris france",
            "documents": ["france paris"],
            "max_tokens_per_doc": 1,
        },
    )
    whole = engine.score("paris france", ["france paris"])[0]
    assert cut.json()["results"][0]["relevance_score"] == pytest.approx(
        engine.score("paris france", ["france"])[0]
    )
    assert cut.json()["results"][0]["relevance_score"] < whole
    # 250 documents: three search units, as Cohere bills (one per 100 documents)
    many = [f"doc {i} capital" for i in range(250)]
    app_limit = _post(url, "/v2/rerank", {"model": "fast", "query": "capital", "documents": many})
    assert app_limit.status_code == 400  # over this server's max_documents=8


def test_a_pipeline_is_served_with_its_settings(url: str) -> None:
    answer = _post(url, "/v2/rerank", {"model": "tuned", "query": QUERY, "documents": TEXTS})
    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 2  # the pipeline's top_n
    one = _post(
        url, "/v2/rerank", {"model": "tuned", "query": QUERY, "documents": TEXTS, "top_n": 1}
    )
    assert len(one.json()["results"]) == 1


@pytest.mark.parametrize(
    "cutoff", [{"min_probability": 0.3, "min_n": 1}, {"expected_share": 0.6, "min_n": 1}]
)
def test_a_served_pipeline_applies_its_calibrated_cutoff(cutoff: dict[str, Any]) -> None:
    """A pipeline file's calibration and cutoff reach the HTTP answer: the same passages as the
    engine keeps, each ``relevance_score`` its probability (Cohere v2 schema)."""
    from rerank_kit import Calibration

    fake = SlowFake(name="fake")
    identity = Calibration("fake", (0.0, 1.0), (0.0, 1.0))  # probability = score, clamped
    pipeline = Pipeline(PipelineConfig("fake", calibration=identity, top_n=5, **cutoff), fake)
    want = pipeline.rerank(QUERY, TEXTS)
    assert 0 < len(want) < 5  # the cutoff, not top_n, decides here (so the check can fail)
    config = ServeConfig((ModelEntry("cal", "pipeline"),))
    with ServerThread(create_app(config, {"cal": pipeline})) as base:
        answer = httpx.post(
            base + "/v2/rerank",
            json={"model": "cal", "query": QUERY, "documents": TEXTS},
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["index"] for r in results] == [r.index for r in want]
    assert [r["relevance_score"] for r in results] == pytest.approx([r.probability for r in want])


def test_relevance_score_is_the_probability_when_the_pipeline_has_one() -> None:
    from dataclasses import dataclass

    from rerank_kit._core.types import Ranked
    from rerank_kit.serve.schemas import relevance

    @dataclass(frozen=True)
    class Calibrated(Ranked):
        probability: float | None = None

    assert relevance(Calibrated(index=0, score=7.5, probability=0.91)) == 0.91
    assert relevance(Calibrated(index=0, score=7.5)) == 7.5
    assert relevance(Ranked(index=0, score=-2.0)) == -2.0


# -- bad requests: a clear 4xx in each schema's shape -------------------------------------

GOOD_V2 = {"model": "fast", "query": QUERY, "documents": TEXTS}
GOOD_TEI = {"query": QUERY, "texts": TEXTS}
BAD = [
    # (route, body, headers, status, words in the message)
    ("/v2/rerank", {**GOOD_V2, "query": 5}, None, 400, "'query' must be a string"),
    ("/v2/rerank", {**GOOD_V2, "query": " "}, None, 400, "'query' must not be empty"),
    ("/v2/rerank", {"model": "fast", "query": QUERY}, None, 400, "'documents' is required"),
    ("/v2/rerank", {**GOOD_V2, "documents": "one doc"}, None, 400, "'documents' must be a list"),
    ("/v2/rerank", {**GOOD_V2, "documents": []}, None, 400, "must not be empty"),
    ("/v2/rerank", {**GOOD_V2, "documents": ["a", 3]}, None, 400, "documents[1] must be"),
    ("/v2/rerank", {**GOOD_V2, "documents": ["a", ""]}, None, 400, "documents[1] is empty"),
    ("/v2/rerank", {**GOOD_V2, "top_n": 0}, None, 400, "'top_n' must be a positive integer"),
    ("/v2/rerank", {**GOOD_V2, "top_n": "3"}, None, 400, "'top_n' must be a positive integer"),
    (
        "/v2/rerank",
        {**GOOD_V2, "return_documents": "yes"},
        None,
        400,
        "'return_documents' must be true or false",
    ),
    ("/v2/rerank", {"query": QUERY, "documents": TEXTS}, None, 400, "'model' is required"),
    ("/v2/rerank", {**GOOD_V2, "model": "nope"}, None, 404, "model 'nope' is not served"),
    ("/v2/rerank", {**GOOD_V2, "documents": ["x"] * 9}, None, 400, "9 documents is over"),
    ("/v2/rerank", {**GOOD_V2, "documents": ["word " * 300] * 2}, None, 400, "tokens"),
    ("/v2/rerank", {**GOOD_V2, "documents": ["y" * 30_000]}, None, 413, "over the limit"),
    ("/v2/rerank", GOOD_V2, {}, 401, "API key"),
    ("/v2/rerank", GOOD_V2, {"Authorization": "Bearer wrong"}, 401, "API key"),
    ("/v2/rerank", GOOD_V2, {"Authorization": KEY}, 401, "API key"),
    ("/v2/rerank", [1, 2], None, 400, "must be a JSON object"),
    ("/v1/rerank", {**GOOD_V2, "model": "nope"}, None, 404, "not served"),
    ("/v1/rerank", {**GOOD_V2, "documents": [{"title": "x"}]}, None, 400, "string 'text'"),
    ("/v1/rerank", {**GOOD_V2, "rank_fields": "text"}, None, 400, "'rank_fields' must be"),
    ("/rerank", {**GOOD_TEI, "texts": "x"}, None, 422, "'texts' must be a list"),
    ("/rerank", {"query": QUERY}, None, 422, "'texts' is required"),
    ("/rerank", {**GOOD_TEI, "raw_scores": 1}, None, 422, "'raw_scores' must be true or false"),
    ("/rerank", {**GOOD_TEI, "truncation_direction": "Left"}, None, 422, "not supported"),
    ("/rerank", {**GOOD_TEI, "texts": ["x"] * 9}, None, 413, "9 documents is over"),
    ("/rerank", GOOD_TEI, {"Authorization": "Bearer wrong"}, 401, "API key"),
]


@pytest.mark.parametrize(("route", "body", "headers", "status", "words"), BAD)
def test_bad_requests_get_a_clear_4xx_in_the_schemas_shape(
    url: str, route: str, body: object, headers: dict[str, str] | None, status: int, words: str
) -> None:
    answer = _post(url, route, body, headers)
    assert answer.status_code == status, answer.text
    error = answer.json()
    if route == "/rerank":
        assert set(error) == {"error", "error_type"}
        assert words in error["error"]
        assert error["error_type"] == ("unauthorized" if status == 401 else "validation")
    else:
        assert set(error) == {"id", "message"}
        assert words in error["message"]
    assert KEY not in answer.text


def test_invalid_json_and_huge_declared_bodies(url: str) -> None:
    bad = httpx.post(url + "/v2/rerank", content=b"{not json", headers=AUTH, timeout=10)
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["message"]
    deep = httpx.post(
        url + "/v2/rerank", content=b"[" * 5000 + b"]" * 5000, headers=AUTH, timeout=10
    )
    assert deep.status_code in (400, 413)
    tei = httpx.post(url + "/rerank", content=b"{", headers=AUTH, timeout=10)
    assert tei.status_code == 422 and tei.json()["error_type"] == "validation"


def test_health_ready_metrics_openapi(url: str) -> None:
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    assert httpx.get(url + "/ready").json()["models"] == ["fast", "tuned"]
    _post(url, "/v2/rerank", GOOD_V2)
    text = httpx.get(url + "/metrics").text
    for name in (
        "rerank_kit_serve_requests_total",
        "rerank_kit_serve_request_seconds_bucket",
        "rerank_kit_pairs_scored_total",
        "rerank_kit_serve_batch_pairs_bucket",
        "rerank_kit_serve_queue_depth",
        "rerank_kit_score_cache_hits_total",
    ):
        assert name in text
    assert 'rerank_kit_serve_requests_total{model="fast",route="/v2/rerank",status="200"}' in text
    doc = httpx.get(url + "/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/v2/rerank" in doc["paths"]
    assert doc["paths"]["/v2/rerank"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["properties"]["model"]["enum"] == ["fast", "tuned"]


# -- cross-request batching ----------------------------------------------------------------


def _concurrent(url: str, bodies: Sequence[Mapping[str, object]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
            return await asyncio.gather(*(client.post(url + "/v2/rerank", json=b) for b in bodies))

    return asyncio.run(go())


@pytest.mark.parametrize("kind", [SlowFake, BatchDependentFake])
def test_concurrent_requests_are_batched_only_when_scores_allow_it(kind: type[SlowFake]) -> None:
    model = kind(delay=0.15)
    alone = SlowFake()
    config = ServeConfig((ModelEntry("fast", "x"),), batching=Batching(window_ms=5))
    queries = [f"{QUERY} {i}" if i % 2 else f"capital {i} paris" for i in range(12)]
    bodies = [
        {"model": "fast", "query": q, "documents": TEXTS[i % 3 :]} for i, q in enumerate(queries)
    ]
    with ServerThread(create_app(config, {"fast": model})) as base:
        answers = _concurrent(base, bodies)
        metrics = httpx.get(base + "/metrics").text
    for body, answer in zip(bodies, answers, strict=True):
        assert answer.status_code == 200, answer.text
        expected = alone.rerank(str(body["query"]), list(body["documents"]))
        got = answer.json()["results"]
        assert [r["index"] for r in got] == [r.index for r in expected]
        assert [r["relevance_score"] for r in got] == pytest.approx(
            [r.score for r in expected], abs=1e-12
        )
    if kind is SlowFake:
        assert max(model.groups) > 1 and len(model.groups) < len(bodies)
        assert 'rerank_kit_serve_batch_requests_bucket{le="1.0",model="fast"}' in metrics
    else:
        assert model.groups == [1] * len(bodies)  # one model call per request


def test_a_full_queue_answers_429_with_retry_after() -> None:
    model = SlowFake(delay=0.4)
    config = ServeConfig(
        (ModelEntry("fast", "x"),), batching=Batching(window_ms=0, max_pairs=6, max_queue=2)
    )
    bodies = [{"model": "fast", "query": f"q{i}", "documents": TEXTS} for i in range(8)]
    with ServerThread(create_app(config, {"fast": model})) as base:
        answers = _concurrent(base, bodies)
    codes = sorted(a.status_code for a in answers)
    assert 200 in codes and 429 in codes and set(codes) <= {200, 429}
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["Retry-After"] == "1"
    assert "busy" in refused.json()["message"]


def test_a_request_past_its_deadline_gets_504() -> None:
    model = SlowFake(delay=0.6)
    config = ServeConfig(
        (ModelEntry("fast", "x"),), batching=Batching(window_ms=0, max_pairs=6, deadline_s=0.3)
    )
    with ServerThread(create_app(config, {"fast": model})) as base:
        answers = _concurrent(
            base, [{"model": "fast", "query": f"q{i}", "documents": TEXTS} for i in range(2)]
        )
    assert [a.status_code for a in answers] == [504, 504]
    assert "did not answer within 0.3 s" in answers[0].json()["message"]


def test_cors_is_off_unless_an_origin_is_given() -> None:
    origin = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    for origins, allowed in (((), False), (("https://app.example",), True)):
        config = ServeConfig((ModelEntry("fast", "x"),), cors_origins=origins)
        with ServerThread(create_app(config, {"fast": SlowFake()})) as base:
            pre = httpx.options(base + "/v2/rerank", headers=origin)
        assert ("access-control-allow-origin" in pre.headers) is allowed


def test_the_key_never_reaches_the_logs(url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    _post(url, "/v2/rerank", GOOD_V2, {"Authorization": "Bearer sk-secret-guess-42"})
    _post(url, "/v2/rerank", GOOD_V2)
    assert "sk-secret-guess-42" not in caplog.text and KEY not in caplog.text
    assert KEY not in repr(ApiKeys([KEY]))


def test_config_file_and_cli_arguments(tmp_path: object) -> None:
    from pathlib import Path

    from rerank_kit.cli import main
    from rerank_kit.serve._cli import build_config
    from rerank_kit.serve.config import read_config_file

    folder = Path(str(tmp_path))
    PipelineConfig("fake:x", top_n=3).save(folder / "pipe.json")
    (folder / "serve.json").write_text(
        json.dumps({"models": {"a": "onnx:m", "p": "pipe.json"}, "limits": {"max_documents": 5}})
    )
    read = read_config_file(folder / "serve.json")
    assert read["models"][1].pipeline_file == folder / "pipe.json"
    import argparse

    from rerank_kit.serve._cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--config", str(folder / "serve.json"), "--max-documents", "7", "--model", "b=onnx:y"]
    )
    config = build_config(args)
    assert [m.name for m in config.models] == ["b"] and config.limits.max_documents == 7
    (folder / "bad.json").write_text(json.dumps({"models": {"a": "x"}, "limits": {"max_docs": 1}}))
    with pytest.raises(ValueError, match="unknown limits keys: max_docs"):
        read_config_file(folder / "bad.json")
    with pytest.raises(SystemExit, match="holds no API key"):
        main(["serve", "--model", "a=x", "--api-key-env", "RERANK_KIT_TEST_UNSET_VAR"])
    assert math.isfinite(config.batching.deadline_s)


def test_a_model_that_fails_to_load_keeps_the_server_unready() -> None:
    config = ServeConfig((ModelEntry("a", "x"), ModelEntry("b", "y")))
    with ServerThread(create_app(config, {"a": SlowFake()}), ready="/health") as base:
        ready = httpx.get(base + "/ready", timeout=5)
        for _ in range(100):  # loading runs in a worker thread: wait for it to fail
            if "no reranker" in ready.text:
                break
            time.sleep(0.05)
            ready = httpx.get(base + "/ready", timeout=5)
        assert ready.status_code == 503 and "no reranker given for b" in ready.json()["reason"]
        answer = _post(base, "/v2/rerank", {**GOOD_V2, "model": "a"})
        assert answer.status_code == 503 and "failed to load" in answer.json()["message"]


class _Remote(BatchDependentFake):
    """A reranker whose calls may overlap (as a remote provider's): ``serialise = False``."""

    serialise = False


def test_a_reranker_whose_calls_may_overlap_gets_concurrent_calls() -> None:
    model = _Remote(delay=0.5)
    config = ServeConfig((ModelEntry("remote", "x"),), batching=Batching(window_ms=0))
    bodies = [{"model": "remote", "query": f"q{i}", "documents": TEXTS} for i in range(4)]
    with ServerThread(create_app(config, {"remote": model})) as base:
        start = time.perf_counter()
        answers = _concurrent(base, bodies)
        took = time.perf_counter() - start
    assert [a.status_code for a in answers] == [200] * 4
    assert model.groups == [1] * 4  # batch-dependent: one request per call...
    assert took < 4 * 0.5  # ...but the four calls overlapped


@pytest.mark.parametrize(("docs", "units"), [(1, 1), (100, 1), (101, 2), (250, 3)])
def test_search_units_are_billed_per_100_documents(docs: int, units: int) -> None:
    from rerank_kit.serve.schemas import COHERE_V1, COHERE_V2

    body = {"model": "m", "query": "q", "documents": [f"d{i}" for i in range(docs)]}
    for schema in (COHERE_V2, COHERE_V1):
        answer = schema.answer(schema.parse(body), [], "m", 7)
        assert answer["meta"]["billed_units"] == {"search_units": units}
