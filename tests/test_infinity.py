"""``infinity:`` against a real Infinity server (infinity-emb 0.0.78) on 127.0.0.1.

The server runs in its own virtual environment (``scripts/infinity_venv.sh``, created once and
reused; about a minute the first time) and serves the same tiny cross-encoder folder the local
``CrossEncoderReranker`` loads. Its scores must equal the local ones to 1e-5, in the same order,
through the engine and both adapters, sync and async. If the engine cannot be installed or
started, these tests fail: they are never skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import REPO

from rerank_kit import CrossEncoderReranker, RemoteReranker, load_reranker

pytestmark = pytest.mark.models

QUERY = "what is the capital of france"
TEXTS = [
    "paris is the capital of france and berlin is the capital of germany",
    "the quick brown fox jumps over the lazy dog",
    "rerankers score a query and a passage together with a cross encoder",
    "Zürich, Kraków, São Paulo, 東京 and Москва are cities",
    "berlin is the capital of germany",
    "france",
]
SERVED = "tiny-ce"
#: The server takes at most this many documents per request (INFINITY_MAX_CLIENT_BATCH_SIZE), so
#: the six documents are split into two requests and merged back: splitting is tested for real.
SERVER_BATCH = 4
KW = {"batch_size": SERVER_BATCH}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def infinity_bin() -> str:
    """The ``infinity_emb`` command of the dedicated venv (built by the repo's script)."""
    script = REPO / "scripts" / "infinity_venv.sh"
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=1800, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"could not install the Infinity engine ({script}):\n{proc.stderr[-3000:]}",
            pytrace=False,
        )
    print(f"Infinity venv ready in {time.perf_counter() - start:.1f} s")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def infinity_model_dir(tiny_ce_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny cross-encoder whose tokenizer config names its class (Infinity needs it)."""
    folder = tmp_path_factory.mktemp("infinity") / "tiny-ce"
    shutil.copytree(tiny_ce_dir, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2))
    return folder


@pytest.fixture(scope="session")
def infinity_url(
    infinity_bin: str, infinity_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Start Infinity on 127.0.0.1 (telemetry off, offline), wait for /health, stop it after."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("infinity-log") / "infinity.log"
    env = dict(os.environ)
    env.update(
        DO_NOT_TRACK="1",
        INFINITY_ANONYMOUS_USAGE_STATS="0",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(tmp_path_factory.mktemp("infinity-hf-home")),
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1",
        INFINITY_MAX_CLIENT_BATCH_SIZE=str(SERVER_BATCH),
    )
    env.pop("PYTHONPATH", None)
    cmd = [
        infinity_bin,
        "v2",
        "--model-id",
        str(infinity_model_dir),
        "--served-model-name",
        SERVED,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--engine",
        "torch",
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--no-bettertransformer",
        "--no-compile",
        "--no-vector-disk-cache",
        "--no-model-warmup",
        "--log-level",
        "warning",
    ]
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        start = time.perf_counter()
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"Infinity exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}",
                    pytrace=False,
                )
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - start > 180:
                pytest.fail(f"Infinity not healthy after 180 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        print(f"Infinity healthy after {time.perf_counter() - start:.1f} s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def local_reference(tiny_ce_dir: Path) -> list[float]:
    return CrossEncoderReranker(str(tiny_ce_dir)).score(QUERY, TEXTS)


def _check(pairs: list[tuple[int, float]], local: list[float]) -> float:
    """Same order as the local model, same scores to 1e-5; returns the largest difference."""
    local_order = sorted(range(len(local)), key=lambda i: -local[i])
    assert [i for i, _ in pairs] == local_order
    diff = max(abs(s - local[i]) for i, s in pairs)
    assert diff <= 1e-5
    assert all(type(s) is float for _, s in pairs)
    return diff


def test_infinity_scores_equal_the_local_cross_encoder(
    infinity_url: str, local_reference: list[float]
) -> None:
    reranker = load_reranker(f"infinity:{infinity_url}#{SERVED}", **KW)
    assert isinstance(reranker, RemoteReranker)
    assert len({round(s, 4) for s in local_reference}) == len(
        TEXTS
    )  # distinct: order is meaningful
    scores = reranker.score(QUERY, TEXTS)
    diff = max(abs(a - b) for a, b in zip(scores, local_reference, strict=True))
    assert diff <= 1e-5
    print(f"Infinity vs CrossEncoderReranker, engine sync: max |diff| = {diff:.2e}, {scores}")
    ranked = reranker.rerank(QUERY, TEXTS)
    _check([(r.index, r.score) for r in ranked], local_reference)
    aranked = asyncio.run(reranker.arerank(QUERY, TEXTS))
    print(
        "Infinity vs CrossEncoderReranker, engine async: max |diff| = "
        f"{_check([(r.index, r.score) for r in aranked], local_reference):.2e}"
    )
    assert asyncio.run(reranker.ascore(QUERY, TEXTS)) == pytest.approx(scores, abs=1e-5)


def test_infinity_through_langchain(infinity_url: str, local_reference: list[float]) -> None:
    from langchain_core.documents import Document

    from langchain_rerank_kit import RemoteRerank

    docs = [Document(page_content=t, id=f"d{i}", metadata={"i": i}) for i, t in enumerate(TEXTS)]
    compressor = RemoteRerank(
        model=f"infinity:{infinity_url}#{SERVED}", top_n=None, model_kwargs=KW
    )
    for out in (
        compressor.compress_documents(docs, QUERY),
        asyncio.run(compressor.acompress_documents(docs, QUERY)),
    ):
        pairs = [(d.metadata["i"], d.metadata["relevance_score"]) for d in out]
        print(
            f"Infinity vs CrossEncoderReranker, LangChain: max |diff| = {_check(pairs, local_reference):.2e}"
        )
        assert [d.id for d in out] == [f"d{i}" for i, _ in pairs]


def test_infinity_through_llamaindex(infinity_url: str, local_reference: list[float]) -> None:
    from llama_index.core.schema import NodeWithScore, TextNode

    from llamaindex_rerank_kit import RemoteRerank

    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=1.0 - i / 10)
        for i, t in enumerate(TEXTS)
    ]
    post = RemoteRerank(model=f"infinity:{infinity_url}#{SERVED}", top_n=None, model_kwargs=KW)
    for out in (
        post.postprocess_nodes(nodes, query_str=QUERY),
        asyncio.run(post.apostprocess_nodes(nodes, query_str=QUERY)),
    ):
        pairs = [(int(n.node.node_id[1:]), float(n.score or 0.0)) for n in out]
        print(
            f"Infinity vs CrossEncoderReranker, LlamaIndex: max |diff| = {_check(pairs, local_reference):.2e}"
        )


def test_infinity_errors_show_the_servers_message(infinity_url: str) -> None:
    from rerank_kit import RerankError

    too_big = load_reranker(f"infinity:{infinity_url}#{SERVED}", batch_size=8, max_retries=0)
    with pytest.raises(RerankError, match=r"^infinity: HTTP 422 .*at most 4 items"):
        too_big.rerank(QUERY, TEXTS)
    down = load_reranker(f"infinity:http://127.0.0.1:{_free_port()}#{SERVED}", max_retries=0)
    with pytest.raises(RerankError, match=r"^infinity: could not reach http://127\.0\.0\.1"):
        down.rerank(QUERY, TEXTS)
