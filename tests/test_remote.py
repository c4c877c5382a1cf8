"""Remote rerankers against a real HTTP server on 127.0.0.1 speaking each provider's protocol.

No patched client: requests go through httpx to ``tests/fake_rerank_server.py``, which checks
path, auth header and body fields the way each provider documents them and can inject faults.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, cast

import pytest
from fake_rerank_server import KEY, ROUTES, FakeRerankServer, relevance

from rerank_kit import RemoteReranker, RerankError, load_reranker
from rerank_kit._core.ranking import order_by_score
from rerank_kit._rerankers.remote import PROFILES, RemoteRerankError, RetryPolicy, parse_retry_after

pytest.importorskip("httpx")

HOSTED = {
    "cohere": "cohere:rerank-v3.5",
    "voyage": "voyage:rerank-2.5",
    "jina": "jina:jina-reranker-v2-base-multilingual",
    "pinecone": "pinecone:bge-reranker-v2-m3",
    "zeroentropy": "zeroentropy:zerank-1-small",
}
QUERY = "red apple pie recipe"
TEXTS = [
    "a pear tart",
    "red apple pie with cinnamon, the recipe",
    "apple pie",
    "the stock market today",
    "a red apple",
    "recipe for bread",
]
FAST = RetryPolicy(backoff=0.01, max_backoff=0.05)


def spec_for(provider: str, url: str) -> tuple[str, dict[str, Any]]:
    """The spec and kwargs that point ``provider`` at the loopback server."""
    if provider == "tei":
        return f"tei:{url}/tei", {}
    if provider == "infinity":
        return f"infinity:{url}/infinity#tiny-ce", {}
    if provider == "llamacpp":
        return f"llamacpp:{url}/llamacpp", {}
    return HOSTED[provider], {"api_key": KEY, "base_url": f"{url}/{provider}"}


def expected(query: str, texts: list[str]) -> list[tuple[int, float]]:
    scores = relevance(query, texts)
    return [(i, scores[i]) for i in order_by_score(scores)]


@pytest.fixture
def server() -> Iterator[FakeRerankServer]:
    with FakeRerankServer() as srv:
        yield srv


# ----------------------------------------------------------------------- surfaces


def _lc_docs(texts: list[str]) -> list[Any]:
    from langchain_core.documents import Document

    return [Document(page_content=t, id=f"d{i}", metadata={"i": i}) for i, t in enumerate(texts)]


def _li_nodes(texts: list[str]) -> list[Any]:
    from llama_index.core.schema import NodeWithScore, TextNode

    return [
        NodeWithScore(
            node=TextNode(
                text=t, id_=f"n{i}", metadata={"i": i}, excluded_embed_metadata_keys=["i"]
            ),
            score=1.0 - i / 100,
        )
        for i, t in enumerate(texts)
    ]


def run_surface(
    surface: str,
    spec: str,
    kwargs: dict[str, Any],
    query: str,
    texts: list[str],
    *,
    top_n: int | None = None,
    on_error: Literal["raise", "passthrough"] = "raise",
) -> tuple[list[tuple[int, float]], bool]:
    """Rerank through one surface; returns ((input index, score) best first, failed flag)."""
    if surface in ("engine", "engine-async"):
        reranker = RemoteReranker(spec, **kwargs)
        if surface == "engine":
            ranked = reranker.rerank(query, texts, top_n=top_n)
        else:
            ranked = asyncio.run(reranker.arerank(query, texts, top_n=top_n))
        return [(r.index, r.score) for r in ranked], False
    if surface.startswith("langchain"):
        from langchain_rerank_kit import RemoteRerank

        compressor = RemoteRerank(model=spec, top_n=top_n, model_kwargs=kwargs, on_error=on_error)
        docs = _lc_docs(texts)
        if surface == "langchain":
            out = compressor.compress_documents(docs, query)
        else:
            out = asyncio.run(compressor.acompress_documents(docs, query))
        failed = any(d.metadata.get("rerank_failed") for d in out)
        assert [d.id for d in out] == [f"d{d.metadata['i']}" for d in out]
        assert all(d.metadata is not docs[d.metadata["i"]].metadata for d in out)
        assert all("relevance_score" not in d.metadata for d in docs)  # input untouched
        return [
            (d.metadata["i"], d.metadata.get("relevance_score", float("nan"))) for d in out
        ], failed
    from llamaindex_rerank_kit import RemoteRerank as LIRemoteRerank

    post = LIRemoteRerank(model=spec, top_n=top_n, model_kwargs=kwargs, on_error=on_error)
    nodes = _li_nodes(texts)
    if surface == "llamaindex":
        res = post.postprocess_nodes(nodes, query_str=query)
    else:
        res = asyncio.run(post.apostprocess_nodes(nodes, query_str=query))
    failed = any(getattr(n, "rerank_failed", False) for n in res)
    assert all(n.node.node_id == nodes[n.node.metadata["i"]].node.node_id for n in res)
    return [(n.node.metadata["i"], cast(float, n.score)) for n in res], failed


SURFACES = [
    "engine",
    "engine-async",
    "langchain",
    "langchain-async",
    "llamaindex",
    "llamaindex-async",
]
PROVIDERS = [*HOSTED, "tei", "infinity", "llamacpp"]


# ----------------------------------------------------------------------- protocol per provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_request_and_response_follow_the_provider_reference(
    server: FakeRerankServer, provider: str
) -> None:
    spec, kwargs = spec_for(provider, server.url)
    reranker = load_reranker(spec, **kwargs)
    assert isinstance(reranker, RemoteReranker)
    ranked = reranker.rerank(QUERY, TEXTS)
    assert [(r.index, r.score) for r in ranked] == expected(QUERY, TEXTS)
    assert all(type(r.score) is float for r in ranked)

    (req,) = server.state.requests
    path, auth_header, auth_value, _ = ROUTES[provider]
    assert req.path == path
    if auth_header:
        assert req.headers[auth_header] == auth_value.format(key=KEY)
    else:
        assert "Authorization" not in req.headers
    body = req.body
    assert body["query"] == QUERY
    if provider == "tei":
        assert body["texts"] == TEXTS
        assert body["raw_scores"] is False and body["truncate"] is True
    elif provider == "pinecone":
        assert body["documents"] == [{"text": t} for t in TEXTS]
        assert body["model"] == "bge-reranker-v2-m3"
        assert req.headers["X-Pinecone-Api-Version"] == "2025-10"
    elif provider == "llamacpp":  # one model per server: named only when the spec names it
        assert body["documents"] == TEXTS and "model" not in body
    else:
        assert body["documents"] == TEXTS
        assert body["model"] == (
            spec.split("#")[1] if provider == "infinity" else spec.split(":")[1]
        )
    assert "top_n" not in body and "top_k" not in body  # every document is scored


@pytest.mark.parametrize("provider", ["pinecone", "tei", "cohere"])
def test_long_lists_are_split_sent_concurrently_and_merged_in_order(
    server: FakeRerankServer, provider: str
) -> None:
    texts = [
        f"passage {i} " + ("red apple " if i % 7 == 0 else "pear ") * (i % 5) for i in range(230)
    ]
    spec, kwargs = spec_for(provider, server.url)
    if provider == "cohere":
        kwargs["batch_size"] = 50
    server.state.delay = 0.05
    reranker = load_reranker(spec, **kwargs)
    scores = reranker.score("red apple", texts)
    assert scores == relevance("red apple", texts)
    limit = {"pinecone": 100, "tei": 32, "cohere": 50}[provider]
    sizes = [len(r.body.get("texts") or r.body["documents"]) for r in server.state.requests]
    assert max(sizes) <= limit and sum(sizes) == len(texts)
    assert len(sizes) == -(-len(texts) // limit)
    assert server.state.max_in_flight > 1  # the parts overlapped
    server.state.max_in_flight = 0
    assert asyncio.run(reranker.ascore("red apple", texts)) == scores
    assert server.state.max_in_flight > 1


def test_zeroentropy_splits_on_its_byte_budget(server: FakeRerankServer) -> None:
    spec, kwargs = spec_for("zeroentropy", server.url)
    reranker = RemoteReranker(spec, **kwargs)
    big = "x" * 1_300_000
    texts = [big, "red apple", big, big, "apple", big]
    assert reranker.score("red apple", texts) == relevance("red apple", texts)
    for req in server.state.requests:
        used = sum(150 + len(req.body["query"]) + len(d) for d in req.body["documents"])
        assert used <= 5_000_000
    assert len(server.state.requests) == 2


# ----------------------------------------------------------------------- llama.cpp


@pytest.mark.parametrize("surface", SURFACES)
def test_llamacpp_through_every_surface_with_and_without_a_model_name(
    server: FakeRerankServer, surface: str
) -> None:
    base = f"llamacpp:{server.url}/llamacpp"
    for spec, model in ((base, None), (f"{base}#bge-reranker-v2-m3", "bge-reranker-v2-m3")):
        got, failed = run_surface(surface, spec, {}, QUERY, TEXTS, top_n=3)
        assert not failed and got == expected(QUERY, TEXTS)[:3]
        body = server.state.requests[-1].body
        assert server.state.requests[-1].path == "/v1/rerank"
        assert body.get("model") == model and body["documents"] == TEXTS
        assert "top_n" not in body  # every document is scored; top_n is cut here


@pytest.mark.parametrize("surface", SURFACES)
def test_llamacpp_pair_over_the_physical_batch_is_not_retried(
    server: FakeRerankServer, surface: str
) -> None:
    from fake_rerank_server import LLAMACPP_UBATCH

    spec, kwargs = spec_for("llamacpp", server.url)
    kwargs.update(max_retries=3, retry=FAST)
    long = " ".join(["apple"] * LLAMACPP_UBATCH)
    with pytest.raises(
        RerankError,
        match=r"^llamacpp: server error HTTP 500 .*input is too large to process.*--ubatch-size",
    ):
        run_surface(surface, spec, kwargs, QUERY, [*TEXTS, long])
    assert len(server.state.requests) == 1  # a retry cannot make the pair fit
    got, failed = run_surface(surface, spec, kwargs, QUERY, TEXTS, on_error="passthrough")
    assert not failed and got == expected(QUERY, TEXTS)


def test_llamacpp_in_rerank_kit_eval(
    server: FakeRerankServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from rerank_kit.cli import main

    docs = ["red apple pie", "jet engines", "apple orchards in autumn", "pear tart", "engines"]
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs))
    )
    judgments = tmp_path / "qs.jsonl"
    rows = [
        {"query": "red apple", "relevant": ["d0"]},
        {"query": "jet engines", "relevant": ["d1"]},
    ]
    judgments.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = f"llamacpp:{server.url}/llamacpp#bge-reranker-v2-m3"
    args = ["eval", str(judgments), "--corpus", str(corpus), "--no-progress", "--depth", "5"]
    code = main([*args, "--reranker", spec, "--json", str(tmp_path / "out.json")])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "out.json").read_text())
    assert [s["reranker"] for s in result["systems"]] == [None, spec]
    assert result["systems"][1]["metrics"]["MRR@10"] == 1.0
    assert {r.provider for r in server.state.requests} == {"llamacpp"}


# ----------------------------------------------------------------------- faults


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("fault", ["429", "500", "drop", "slow"])
def test_transient_faults_are_retried(server: FakeRerankServer, surface: str, fault: str) -> None:
    provider = "cohere" if fault in ("429", "drop") else "pinecone"
    spec, kwargs = spec_for(provider, server.url)
    kwargs.update(timeout=0.8, max_retries=2, retry=FAST)
    server.state.slow = 1.5
    server.queue(fault)
    start = time.perf_counter()
    got, failed = run_surface(surface, spec, kwargs, QUERY, TEXTS)
    elapsed = time.perf_counter() - start
    assert not failed
    assert got == expected(QUERY, TEXTS)
    assert len(server.state.requests) == 2
    if fault == "429":
        assert elapsed >= 0.3  # Retry-After: 0.3 was honoured


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("malformed", "not valid JSON"),
        ("out_of_range", "out of range"),
        ("duplicate", "twice"),
        ("missing", "results for 6 documents"),
        ("non_numeric", "non-numeric score"),
    ],
)
def test_bad_responses_raise_naming_the_provider(
    server: FakeRerankServer, surface: str, fault: str, message: str
) -> None:
    spec, kwargs = spec_for("voyage", server.url)
    kwargs.update(max_retries=2, retry=FAST)
    server.queue(fault)
    with pytest.raises(RerankError, match=rf"^voyage: .*{message}"):
        run_surface(surface, spec, kwargs, QUERY, TEXTS)
    assert len(server.state.requests) == 1  # a bad answer is not retried


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("fault", ["429", "500", "drop", "slow"])
def test_persistent_faults_give_up_after_max_retries(
    server: FakeRerankServer, surface: str, fault: str
) -> None:
    spec, kwargs = spec_for("jina", server.url)
    kwargs.update(timeout=0.3, max_retries=1, retry=FAST)
    server.state.slow = 0.8
    server.state.retry_after = "0.05"
    server.queue(fault, fault)
    messages = {
        "429": r"rate limited \(HTTP 429\).*Too many requests",
        "500": r"server error HTTP 500.*internal error",
        "drop": r"could not reach http://127\.0\.0\.1:\d+/jina/v1/rerank",
        "slow": r"no answer from http://127\.0\.0\.1:\d+/jina/v1/rerank within the 0\.3 s timeout",
    }
    with pytest.raises(RerankError, match=rf"^jina: {messages[fault]}"):
        run_surface(surface, spec, kwargs, QUERY, TEXTS)
    assert len(server.state.requests) == 2


@pytest.mark.parametrize("surface", SURFACES)
def test_other_4xx_shows_the_provider_message_without_retry(
    server: FakeRerankServer, surface: str
) -> None:
    spec, kwargs = spec_for("pinecone", server.url)
    kwargs.update(max_retries=3, retry=FAST)
    server.queue("400")
    with pytest.raises(RerankError, match=r"^pinecone: HTTP 400 .*model 'nope' not found"):
        run_surface(surface, spec, kwargs, QUERY, TEXTS)
    assert len(server.state.requests) == 1


@pytest.mark.parametrize("surface", SURFACES)
def test_refused_key_is_reported_without_the_key(
    server: FakeRerankServer, surface: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-live-SECRET-never-print-me"
    spec, kwargs = spec_for("cohere", server.url)
    kwargs.update(api_key=secret, max_retries=3, retry=FAST)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RerankError) as info:
        run_surface(surface, spec, kwargs, QUERY, TEXTS)
    assert "the API key was refused (HTTP 401); check COHERE_API_KEY" in str(info.value)
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert secret not in caplog.text
    assert len(server.state.requests) == 1


@pytest.mark.parametrize("surface", [s for s in SURFACES if s not in ("engine", "engine-async")])
@pytest.mark.parametrize("fault", ["malformed", "duplicate", "500"])
def test_passthrough_keeps_the_first_stage_order(
    server: FakeRerankServer, surface: str, fault: str
) -> None:
    spec, kwargs = spec_for("tei", server.url)
    kwargs.update(max_retries=0, retry=FAST)
    server.queue(fault)
    got, failed = run_surface(surface, spec, kwargs, QUERY, TEXTS, top_n=3, on_error="passthrough")
    assert failed
    assert [i for i, _ in got] == [0, 1, 2]


# ----------------------------------------------------------------------- keys, specs, repr


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for provider, spec in HOSTED.items():
        env = PROFILES[provider].endpoint.key_env
        assert env is not None
        monkeypatch.delenv(env, raising=False)
        with pytest.raises(RerankError, match=rf"set the {env} environment variable"):
            load_reranker(spec)
    with pytest.raises(RerankError, match="COHERE_API_KEY"):
        from langchain_rerank_kit import RemoteRerank

        RemoteRerank(model="cohere:rerank-v3.5")


def test_key_comes_from_the_environment_and_stays_out_of_reprs(
    server: FakeRerankServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOYAGE_API_KEY", KEY)
    reranker = load_reranker("voyage:rerank-2.5", base_url=f"{server.url}/voyage")
    assert reranker.score(QUERY, TEXTS) == relevance(QUERY, TEXTS)
    assert server.state.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    from langchain_rerank_kit import RemoteRerank
    from llamaindex_rerank_kit import RemoteRerank as LIRemoteRerank

    kwargs = {"api_key": KEY, "base_url": f"{server.url}/voyage"}
    for obj in (
        reranker,
        RemoteRerank(model="voyage:rerank-2.5", model_kwargs=kwargs),
        LIRemoteRerank(model="voyage:rerank-2.5", model_kwargs=kwargs),
    ):
        assert KEY not in repr(obj)
    assert KEY not in str(vars(reranker))
    li = LIRemoteRerank(model="voyage:rerank-2.5", model_kwargs=kwargs)
    assert KEY not in li.to_json()


def test_self_hosted_key_is_sent_when_given(server: FakeRerankServer) -> None:
    server.state.server_key = "tei-secret"
    with pytest.raises(RerankError, match=r"^tei: the API key was refused"):
        load_reranker(f"tei:{server.url}/tei").rerank(QUERY, TEXTS)
    ok = load_reranker(f"tei:{server.url}/tei", api_key="tei-secret")
    assert ok.score(QUERY, TEXTS) == relevance(QUERY, TEXTS)


@pytest.mark.parametrize(
    ("spec", "kwargs", "error"),
    [
        ("tei:localhost:8080", {}, "expected the server URL"),
        ("infinity:http://localhost:7997", {}, "name the served model after '#'"),
        ("tei:http://a:1", {"base_url": "http://b:2"}, "give the server URL once"),
        ("cohere:", {"api_key": "k"}, "names no model"),
        ("pinecone:bge-reranker-v2-m3", {"api_key": "k", "batch_size": 101}, "limit of 100"),
        ("cohere:rerank-v3.5", {"api_key": "k", "timeout": 0}, "timeout must be"),
        ("cohere:rerank-v3.5", {"api_key": "k", "max_retries": -1}, "max_retries must be"),
    ],
)
def test_bad_settings_fail_early(spec: str, kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load_reranker(spec, **kwargs)


def test_tei_batch_size_can_follow_the_server_setting(server: FakeRerankServer) -> None:
    reranker = load_reranker(f"tei:{server.url}/tei", batch_size=8)
    texts = [f"red apple {i}" for i in range(20)]
    assert reranker.score("red apple", texts) == relevance("red apple", texts)
    assert sorted(len(r.body["texts"]) for r in server.state.requests) == [4, 8, 8]


def test_remote_stage_in_a_cascade_and_thresholds(server: FakeRerankServer) -> None:
    from rerank_kit import CascadeReranker
    from rerank_kit.testing import FakeReranker

    remote = load_reranker(f"infinity:{server.url}/infinity#tiny-ce")
    cascade = load_reranker(f"tei:{server.url}/tei@4 >> infinity:{server.url}/infinity#tiny-ce")
    assert isinstance(cascade, CascadeReranker)
    ranked = cascade.rerank(QUERY, TEXTS, top_n=2)
    first = expected(QUERY, TEXTS)[:4]
    survivors = [TEXTS[i] for i, _ in first]
    second = expected(QUERY, survivors)
    assert [r.index for r in ranked] == [first[j][0] for j, _ in second[:2]]
    assert len(ranked[0].stage_scores) == 2
    mixed = CascadeReranker([(FakeReranker(), 3), remote])
    assert len(mixed.rerank(QUERY, TEXTS)) == 3
    kept = remote.rerank(QUERY, TEXTS, score_threshold=0.5)
    assert [r.index for r in kept] == [i for i, s in expected(QUERY, TEXTS) if s >= 0.5]


def test_async_path_does_not_use_the_sync_client_or_threads(
    server: FakeRerankServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, kwargs = spec_for("jina", server.url)
    reranker = RemoteReranker(spec, **kwargs)

    def forbidden(*args: object, **kw: object) -> None:
        raise AssertionError("the async path used a worker thread or the sync client")

    monkeypatch.setattr(reranker, "_post", forbidden)
    monkeypatch.setattr(asyncio, "to_thread", forbidden)
    got = asyncio.run(reranker.arerank(QUERY, TEXTS, top_n=2))
    assert [(r.index, r.score) for r in got] == expected(QUERY, TEXTS)[:2]
    from langchain_rerank_kit import RerankCompressor

    docs = asyncio.run(
        RerankCompressor(reranker=reranker, top_n=1).acompress_documents(_lc_docs(TEXTS), QUERY)
    )
    assert docs[0].metadata["i"] == expected(QUERY, TEXTS)[0][0]


def test_input_checks_match_local_rerankers(server: FakeRerankServer) -> None:
    from rerank_kit.testing import FakeReranker

    remote = load_reranker(f"tei:{server.url}/tei")
    local = FakeReranker()
    for reranker in (remote, local):
        assert reranker.rerank(QUERY, []) == []
        assert asyncio.run(reranker.arerank(QUERY, [])) == []
        assert asyncio.run(reranker.ascore(QUERY, [])) == []
    bad_calls: list[Callable[[Any], Any]] = [
        lambda r: r.rerank("", TEXTS),
        lambda r: r.rerank(QUERY, "not a list"),
        lambda r: r.rerank(QUERY, [1, 2]),
        lambda r: r.rerank(QUERY, TEXTS, top_n=0),
        lambda r: r.rerank(QUERY, TEXTS, score_threshold=float("nan")),
        lambda r: asyncio.run(r.arerank(QUERY, TEXTS, top_n=0)),
        lambda r: asyncio.run(r.arerank("  ", TEXTS)),
        lambda r: asyncio.run(r.ascore(QUERY, [None])),
    ]
    for call in bad_calls:
        errors = []
        for reranker in (remote, local):
            with pytest.raises((TypeError, ValueError)) as info:
                call(reranker)
            errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1]
    assert server.state.requests == []  # bad input never reaches the network


def test_retry_policy() -> None:
    import random

    policy = RetryPolicy(backoff=1.0, max_backoff=8.0, max_retry_after=30.0)
    rng = random.Random(0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        waits = [policy.delay(attempt, rng=rng) for _ in range(200)]
        assert min(waits) >= ceiling / 2 and max(waits) <= ceiling
        assert len(set(waits)) > 100  # jittered
    assert policy.delay(5, retry_after=2.5) == 2.5
    assert policy.delay(0, retry_after=300) == 30.0
    assert [s for s in range(400, 600) if RetryPolicy.retryable_status(s)] == [
        429,
        *range(500, 600),
    ]
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("later") is None


#: fault script -> (the server's answers in order, attempts, start of the error or None: success)
FAULT_SCRIPTS: dict[str, tuple[list[str], int, str | None]] = {
    "429-retry-after": (["429"], 2, None),
    "503-then-success": (["503"], 2, None),
    "timeout": (["slow", "slow"], 2, r"cohere: no answer from .* within the 0\.3 s timeout"),
    "malformed": (["malformed"], 1, "cohere: the answer from .* is not valid JSON"),
    "401-no-retry": (["401"], 1, r"cohere: the API key was refused \(HTTP 401\)"),
}


@pytest.mark.parametrize("script", FAULT_SCRIPTS)
def test_sync_and_async_take_the_same_decisions(
    server: FakeRerankServer, monkeypatch: pytest.MonkeyPatch, script: str
) -> None:
    """The same faults give the same attempts, the same waits and the same error both ways."""
    import random

    faults, attempts, error = FAULT_SCRIPTS[script]
    server.state.slow = 0.8
    spec, kwargs = spec_for("cohere", server.url)

    def run(mode: str) -> tuple[object, list[float], int]:
        reranker = RemoteReranker(spec, timeout=0.3, max_retries=1, **kwargs)
        monkeypatch.setattr(reranker, "_rng", random.Random(7))  # the same jitter both ways
        waits: list[float] = []

        async def asleep(seconds: float) -> None:
            waits.append(seconds)

        monkeypatch.setattr(reranker, "_sleep", waits.append)
        monkeypatch.setattr(reranker, "_asleep", asleep)
        server.state.requests.clear()
        server.queue(*faults)
        outcome: object
        try:
            if mode == "sync":
                ranked = reranker.rerank(QUERY, TEXTS)
            else:
                ranked = asyncio.run(reranker.arerank(QUERY, TEXTS))
            outcome = [(r.index, r.score) for r in ranked]
        except RemoteRerankError as exc:
            outcome = (str(exc), exc.status)
        return outcome, waits, len(server.state.requests)

    sync, async_ = run("sync"), run("async")
    assert sync == async_
    outcome, waits, sent = sync
    assert sent == attempts and len(waits) == attempts - 1
    if script == "429-retry-after":
        assert waits == [0.3]  # the server's Retry-After
    elif waits:
        assert 0.25 <= waits[0] <= 0.5  # backoff 0.5 s with jitter (the same draw both ways)
    if error is None:
        assert outcome == expected(QUERY, TEXTS)
    else:
        assert isinstance(outcome, tuple)
        assert re.match(error, outcome[0]), outcome


def test_retry_after_http_date_is_honoured(server: FakeRerankServer) -> None:
    import email.utils
    import math

    target = math.floor(time.time()) + 1.0  # HTTP dates have whole seconds
    server.state.retry_after = email.utils.formatdate(target, usegmt=True)
    spec, kwargs = spec_for("cohere", server.url)
    reranker = RemoteReranker(spec, retry=FAST, **kwargs)
    server.queue("429")
    assert reranker.score(QUERY, TEXTS) == relevance(QUERY, TEXTS)
    assert time.time() >= target - 0.01  # the retry waited for the date the server named
    assert len(server.state.requests) == 2


def test_error_type_is_a_rerank_error() -> None:
    assert issubclass(RemoteRerankError, RerankError)


# ----------------------------------------------------------------------- concurrency


def test_100_concurrent_arerank_calls_overlap(server: FakeRerankServer) -> None:
    """100 queries with a 50 ms server delay each finish far below 100 x 50 ms."""
    spec, kwargs = spec_for("cohere", server.url)
    reranker = RemoteReranker(spec, **kwargs)
    queries = [f"red apple query {i}" for i in range(100)]
    sequential = [reranker.rerank(q, TEXTS, top_n=3) for q in queries]
    server.state.delay = 0.05
    server.state.max_in_flight = 0

    async def main() -> tuple[list[Any], float]:
        await reranker.arerank(queries[0], TEXTS)  # open the pool
        start = time.perf_counter()
        out = await asyncio.gather(*(reranker.arerank(q, TEXTS, top_n=3) for q in queries))
        return out, time.perf_counter() - start

    concurrent, elapsed = asyncio.run(main())
    print(f"100 concurrent arerank calls, 50 ms server delay each: {elapsed * 1000:.0f} ms")
    assert concurrent == sequential
    assert elapsed < 0.5 * 100 * 0.05, f"{elapsed:.2f} s: the calls did not overlap"
    assert server.state.max_in_flight >= 10
    assert len(server.state.requests) == 201  # 100 sequential + 1 warm-up + 100: no retries


# ----------------------------------------------------------------------- CLI and events


def test_remote_specs_in_rerank_kit_eval(
    server: FakeRerankServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from rerank_kit.cli import main

    docs = ["red apple pie", "jet engines", "apple orchards in autumn", "pear tart", "engines"]
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs))
    )
    judgments = tmp_path / "qs.jsonl"
    rows = [
        {"query": "red apple", "relevant": ["d0"]},
        {"query": "jet engines", "relevant": ["d1"]},
    ]
    judgments.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tei = f"tei:{server.url}/tei"
    cascade = f"{tei}@2 >> infinity:{server.url}/infinity#tiny-ce"
    args = ["eval", str(judgments), "--corpus", str(corpus), "--no-progress", "--depth", "5"]
    args += ["--reranker", tei, "--reranker", cascade, "--json", str(tmp_path / "out.json")]
    code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    assert tei in out
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["settings"]["rerankers"] == [tei, cascade]
    assert {r.provider for r in server.state.requests} == {"tei", "infinity"}


def test_llamaindex_remote_rerank_emits_events_and_has_a_class_name(
    server: FakeRerankServer,
) -> None:
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent

    from llamaindex_rerank_kit import RemoteRerank

    seen: list[Any] = []

    class Collect(BaseEventHandler):
        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, (ReRankStartEvent, ReRankEndEvent)):
                seen.append(event)

    root = get_dispatcher()
    handler = Collect()
    root.add_event_handler(handler)
    try:
        spec = f"tei:{server.url}/tei"
        post = RemoteRerank(model=spec, top_n=2)
        assert post.class_name() == "RemoteRerank"
        post.postprocess_nodes(_li_nodes(TEXTS), query_str=QUERY)
        asyncio.run(post.apostprocess_nodes(_li_nodes(TEXTS), query_str=QUERY))
    finally:
        root.event_handlers.remove(handler)
    starts = [e for e in seen if isinstance(e, ReRankStartEvent)]
    assert len(starts) == 2 and all(e.model_name == spec for e in starts)
    assert sum(isinstance(e, ReRankEndEvent) for e in seen) == 2


def test_async_cascade_with_a_remote_stage_awaits_the_network(server: FakeRerankServer) -> None:
    """A cascade's arerank awaits its remote stage: 30 queries overlap beyond any thread pool."""
    from rerank_kit import CascadeReranker
    from rerank_kit.testing import FakeReranker

    spec, kwargs = spec_for("cohere", server.url)
    cascade = CascadeReranker([(FakeReranker(), 4), RemoteReranker(spec, **kwargs)])
    queries = [f"red apple recipe {i}" for i in range(30)]
    sequential = [cascade.rerank(q, TEXTS, top_n=2) for q in queries]
    assert all(len(r[0].stage_scores) == 2 for r in sequential)
    server.state.delay = 0.2
    server.state.max_in_flight = 0

    async def main() -> list[Any]:
        return await asyncio.gather(*(cascade.arerank(q, TEXTS, top_n=2) for q in queries))

    assert asyncio.run(main()) == sequential
    # more requests at once than the default worker-thread pool has threads (2 cores: 6)
    assert server.state.max_in_flight >= 10


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_providers_error_body_is_read(server: FakeRerankServer, provider: str) -> None:
    spec, kwargs = spec_for(provider, server.url)
    reranker = load_reranker(spec, max_retries=0, **kwargs)
    server.queue("400")
    with pytest.raises(
        RerankError, match=rf"^{provider}: HTTP 4\d\d from .*model 'nope' not found"
    ):
        reranker.rerank(QUERY, TEXTS)
    server.queue("429")
    with pytest.raises(RerankError, match=rf"^{provider}: rate limited .*Too many requests"):
        reranker.rerank(QUERY, TEXTS)


def test_clients_close(server: FakeRerankServer) -> None:
    spec, kwargs = spec_for("tei", server.url)
    with RemoteReranker(spec, **kwargs) as reranker:
        assert reranker.score(QUERY, TEXTS) == relevance(QUERY, TEXTS)
    assert reranker._client.is_closed

    async def main() -> None:
        async with RemoteReranker(spec, **kwargs) as r:
            assert await r.ascore(QUERY, TEXTS) == relevance(QUERY, TEXTS)
            client = r._aclient()
        assert client.is_closed and r._client.is_closed

    asyncio.run(main())
