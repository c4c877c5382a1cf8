"""Context assembly: boosts, dedupe, diversity, token budget and order, engine and adapters.

The engine tests use a reranker with fixed scores per text, so every expected list is worked
out by hand; the adapter tests run both frameworks' wrappers over it; the ``models`` tests use
the real all-MiniLM-L6-v2 (cosine similarity, its embedding cache) and the bundled
cross-encoder's tokenizer.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import importlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rerank_kit import Fusion, Pipeline, PipelineConfig, Ranked, Reranker, load_pipeline
from rerank_kit._core.assembly import Assembly
from rerank_kit._core.assembly.boosts import check_boosts, read_date
from rerank_kit._core.assembly.budget import token_counter, tokenizer_counts
from rerank_kit._core.assembly.diversity import normalised
from rerank_kit._core.assembly.order import lost_in_the_middle
from rerank_kit._core.assembly.similarity import LexicalSimilarity
from rerank_kit.testing import FakeReranker

ASSEMBLY_LOG = "rerank_kit._core.assembly.plan"
DAY = 86_400.0


class Fixed(Reranker):
    """Scores each text by a table (unknown texts: 0.0)."""

    name = "fixed"

    def __init__(self, scores: dict[str, float]) -> None:
        super().__init__()
        self.scores = scores
        self.calls = 0

    def _score_pairs(self, query: str, texts: list[str]) -> Sequence[float]:
        self.calls += 1
        return [self.scores.get(t, 0.0) for t in texts]


A = "the wing lift grows with the angle of attack in subsonic flow"
A_WS = "the  wing lift grows with the angle of attack\nin subsonic flow "
A_EDIT = "the wing lift grows with the angle of attack in supersonic flow"
B = "boundary layer transition on a flat plate at high mach number"
C = "heat transfer to a blunt body in hypersonic flight"
D = "panel flutter of thin plates"
TEXTS = [A, A_WS, A_EDIT, B, C, D]
SCORES = {A: 5.0, A_WS: 4.0, A_EDIT: 3.0, B: 2.0, C: 1.0, D: 0.0}


def _indices(ranked: Sequence[Ranked]) -> list[int]:
    return [r.index for r in ranked]


@pytest.fixture
def fixed() -> Fixed:
    return Fixed(SCORES)


# ------------------------------------------------------------------------------ dedupe


def test_dedupe_exact_drops_whitespace_copies_and_fills_top_n(fixed: Fixed) -> None:
    out = fixed.rerank("q", TEXTS, dedupe=1.0, top_n=3)
    assert _indices(out) == [0, 2, 3]  # A_WS is A after whitespace normalisation
    assert out[0].duplicates == (1,) and out[1].duplicates == ()
    assert {r.similarity for r in out} == {"exact"}
    assert [r.context_rank for r in out] == [1, 2, 3]
    assert [r.score for r in out] == [5.0, 3.0, 2.0]
    assert all(type(r.score) is float for r in out)


def test_dedupe_lexical_threshold(fixed: Fixed) -> None:
    sim = LexicalSimilarity(TEXTS)
    assert sim(0, 1) == 1.0  # whitespace and case do not count
    near = sim(0, 2)
    assert 0.6 < near < 1.0 and sim(0, 3) == 0.0
    dropped = fixed.rerank("q", TEXTS, dedupe=0.6)
    assert _indices(dropped) == [0, 3, 4, 5] and dropped[0].duplicates == (1, 2)
    assert dropped[0].similarity == "lexical:jaccard-3-shingles"
    kept = fixed.rerank("q", TEXTS, dedupe=round(near + 0.01, 3))
    assert _indices(kept) == [0, 2, 3, 4, 5]


def test_all_identical_passages_collapse_to_one(fixed: Fixed) -> None:
    same = Fixed({"x y z": 1.0})
    out = same.rerank("q", ["x y z"] * 4, dedupe=0.9, diversity=0.5, top_n=3)
    assert _indices(out) == [0] and out[0].duplicates == (1, 2, 3)
    # without dedupe, diversity alone keeps them all (nothing else to choose)
    assert _indices(same.rerank("q", ["x y z"] * 4, diversity=0.5)) == [0, 1, 2, 3]


def test_empty_input_and_a_single_passage(fixed: Fixed) -> None:
    options: dict[str, Any] = {
        "dedupe": 0.8,
        "diversity": 0.5,
        "order": "lost-in-the-middle",
        "boosts": {"field": "f", "values": {"x": 1.0}},
        "token_budget": 100,
    }
    assert fixed.rerank("q", [], **options) == []
    assert asyncio.run(fixed.arerank("q", [], **options)) == []
    [one] = fixed.rerank("q", [B], metadata=[{"f": "x"}], **options)
    assert (one.index, one.score, one.boost, one.context_rank) == (0, 3.0, 1.0, 1)
    assert one.tokens == len(B.split()) and one.duplicates == ()


# ---------------------------------------------------------------------------- diversity


def test_mmr_order_worked_by_hand() -> None:
    texts = [A, A_WS, B]
    r = Fixed({A: 3.0, A_WS: 2.9, B: 1.0})
    assert LexicalSimilarity(texts)(0, 1) == 1.0 and LexicalSimilarity(texts)(0, 2) == 0.0
    # relevance (min-max): A 1.0, A_WS 0.95, B 0.0. After A: A_WS gets
    # (1 - w) * 0.95 - w * 1.0, B gets 0: with w = 0.5, -0.025, so B comes second; with
    # w = 0.01, 0.93, so A_WS does.
    assert _indices(r.rerank("q", texts, diversity=0.5)) == [0, 2, 1]
    assert _indices(r.rerank("q", texts, diversity=0.01)) == [0, 1, 2]
    assert _indices(r.rerank("q", texts, diversity=0.0)) == [0, 1, 2]
    out = r.rerank("q", texts, diversity=0.5, top_n=2)
    assert _indices(out) == [0, 2] and [x.context_rank for x in out] == [1, 2]
    assert [x.score for x in out] == [3.0, 1.0]  # scores are not the MMR values


def test_normalised_scores() -> None:
    assert normalised([1.0, 3.0, 2.0]) == [0.0, 1.0, 0.5]
    assert normalised([7.0, 7.0]) == [1.0, 1.0]
    assert normalised([]) == []


def test_diversity_one_ignores_relevance_after_the_first(fixed: Fixed) -> None:
    out = fixed.rerank("q", TEXTS, diversity=1.0, top_n=3)
    assert out[0].index == 0
    assert {r.index for r in out[1:]} <= {3, 4, 5}  # no copy of A while others are left


# -------------------------------------------------------------------------------- order


def test_lost_in_the_middle_as_longcontextreorder() -> None:
    assert lost_in_the_middle([1, 2, 3, 4, 5]) == [1, 3, 5, 4, 2]
    assert lost_in_the_middle([1, 2, 3, 4]) == [2, 4, 3, 1]  # even: the best is last, as there
    assert lost_in_the_middle([1]) == [1] and lost_in_the_middle([]) == []


def test_order_keeps_scores_and_context_rank(fixed: Fixed) -> None:
    plain = fixed.rerank("q", TEXTS, top_n=5)
    out = fixed.rerank("q", TEXTS, top_n=5, order="lost-in-the-middle")
    assert _indices(out) == [_indices(plain)[i] for i in (0, 2, 4, 3, 1)]
    assert [r.context_rank for r in out] == [1, 3, 5, 4, 2]
    assert {r.index: r.score for r in out} == {r.index: r.score for r in plain}


# ------------------------------------------------------------------------------- boosts


def test_recency_and_field_boosts_by_hand(fixed: Fixed) -> None:
    now = 1_700_000_000.0
    boosts: list[dict[str, Any]] = [
        {"field": "updated_at", "half_life_days": 10, "weight": 4.0, "now": now},
        {"field": "source", "values": {"handbook": 0.5}},
    ]
    metadata: list[dict[str, Any] | None] = [
        {"updated_at": now - 10 * DAY, "source": "forum"},  # A: +2.0
        {"updated_at": "2023-11-14T22:13:20Z"},  # A_WS: now as ISO -> +4.0
        {"updated_at": now - 20 * DAY, "source": ["x", "handbook"]},  # A_EDIT: 1.0 + 0.5
        {"source": "handbook"},  # B: +0.5 (date missing)
        {"updated_at": "next tuesday"},  # C: unreadable -> 0
        None,  # D: no metadata
    ]
    out = fixed.rerank("q", TEXTS, metadata=metadata, boosts=boosts)
    got = {r.index: (r.score, r.boost) for r in out}
    assert got == {
        0: (7.0, 2.0),
        1: (8.0, 4.0),
        2: (4.5, 1.5),
        3: (2.5, 0.5),
        4: (1.0, 0.0),
        5: (0.0, 0.0),
    }
    assert _indices(out) == [1, 0, 2, 3, 4, 5]


def test_missing_or_malformed_metadata_is_counted_in_one_warning(
    fixed: Fixed, caplog: pytest.LogCaptureFixture
) -> None:
    boosts = {"field": "updated_at", "half_life_days": 30, "weight": 0.2}
    metadata: list[dict[str, Any] | None] = [{"updated_at": "bad"}, {}, None, {}, {}, {}]
    with caplog.at_level(logging.DEBUG, logger=ASSEMBLY_LOG):
        out = fixed.rerank("q", TEXTS, metadata=metadata, boosts=boosts)
        fixed.rerank("q", TEXTS, boosts=boosts)  # no metadata at all: every field missing
    assert [r.boost for r in out] == [0.0] * 6 and _indices(out) == [0, 1, 2, 3, 4, 5]
    records = [r for r in caplog.records if r.name == ASSEMBLY_LOG]
    assert len(records) == 2  # one per call, not one per passage
    assert records[0].levelno == logging.WARNING and records[1].levelno == logging.DEBUG
    assert (
        "6 of 6 passages lacked a boost field (5 missing, 1 unreadable" in records[0].getMessage()
    )
    assert (
        "6 of 6 passages lacked a boost field (6 missing, 0 unreadable" in records[1].getMessage()
    )


def test_boosts_reorder_before_threshold_and_top_n(fixed: Fixed) -> None:
    metadata = [{}, {}, {}, {}, {"pin": "yes"}, {}]
    out = fixed.rerank(
        "q",
        TEXTS,
        metadata=metadata,
        boosts={"field": "pin", "values": {"yes": 10.0}},
        score_threshold=4.5,
        top_n=2,
    )
    assert _indices(out) == [4, 0] and out[0].score == 11.0


def test_read_date_forms() -> None:
    import datetime as dt

    assert read_date("1970-01-02") == DAY
    assert read_date("1970-01-02T00:00:00+00:00") == DAY
    assert read_date(dt.datetime(1970, 1, 2)) == DAY  # naive: UTC
    assert read_date(dt.date(1970, 1, 2)) == DAY
    assert read_date(DAY) == DAY
    for bad in ("", "2026-13-40", True, float("nan"), [1], {"d": 1}):
        assert read_date(bad) is None


# --------------------------------------------------------------------------- token budget


def test_budget_skips_what_does_not_fit_and_tries_the_next() -> None:
    texts = ["a " * 6, "b " * 5, "c " * 2, "d " * 3, "e " * 1]
    r = Fixed({t: float(10 - i) for i, t in enumerate(texts)})
    out = r.rerank("q", texts, token_budget=10)
    # 6 fits (left 4), 5 does not, 2 fits (left 2), 3 does not, 1 fits
    assert _indices(out) == [0, 2, 4] and [x.tokens for x in out] == [6, 2, 1]
    assert _indices(r.rerank("q", texts, token_budget=10, top_n=2)) == [0, 2]
    assert _indices(r.rerank("q", texts, token_budget=100, top_n=2)) == [0, 1]


def test_budget_smaller_than_every_passage_gives_nothing_and_warns(
    fixed: Fixed, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=ASSEMBLY_LOG):
        assert fixed.rerank("q", TEXTS, token_budget=3) == []
        assert asyncio.run(Fixed(SCORES).arerank("q", TEXTS, token_budget=3)) == []
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2 and "fits none of the 6 passages" in messages[0]
    assert "the shortest has 5 tokens, counted as whitespace words" in messages[0]


def test_token_counts_come_from_the_public_method() -> None:
    class CharTokenizer:  # transformers-style: callable, num_special_tokens_to_add
        def num_special_tokens_to_add(self, pair: bool = False) -> int:
            return 2

        def __call__(self, texts: list[str], **kwargs: Any) -> dict[str, list[list[int]]]:
            assert kwargs["add_special_tokens"] is False and kwargs["truncation"] is False
            return {"input_ids": [[0] * len(t) for t in texts]}

    class WithTokenizer(FakeReranker):
        tokenizer = CharTokenizer()

        def token_counts(self, texts: Sequence[str]) -> list[int] | None:
            return tokenizer_counts(self, self.tokenizer, texts)

    class Guessable(FakeReranker):  # a tokenizer under a private name is not guessed at
        _model = WithTokenizer

    counter = token_counter(WithTokenizer())
    assert counter.name == "tokenizer" and counter(["abc", "de"]) == [3, 2]
    out = WithTokenizer().rerank("abc", ["abc", "abcdef", "ab"], token_budget=5)
    assert [(r.index, r.tokens) for r in out] == [(0, 3), (2, 2)]
    assert token_counter(FakeReranker()).name == "words"
    assert token_counter(Guessable()).name == "words"
    assert FakeReranker().token_counts(["a b"]) is None

    from rerank_kit import CascadeReranker, ListwiseLLMReranker, Stage

    cascade = CascadeReranker([Stage(FakeReranker(), 2), Stage(WithTokenizer())])
    assert cascade.token_counts(["abcd"]) == [4] and token_counter(cascade)(["abcd"]) == [4]
    listwise = ListwiseLLMReranker(lambda p: "[1]", count_tokens=lambda t: 7)
    assert listwise.token_counts(["a", "b c"]) == [7, 7]
    assert token_counter(listwise)(["a", "b c"]) == [7, 7]


@pytest.mark.models
def test_budget_counts_with_the_bundled_cross_encoders_tokenizer() -> None:
    from rerank_kit import OnnxCrossEncoderReranker
    from rerank_kit.models import bundled_cross_encoder

    try:
        folder = bundled_cross_encoder()
    except Exception as exc:  # the bundled model's package is an extra
        pytest.skip(f"bundled cross-encoder not installed: {exc}")
    reranker = OnnxCrossEncoderReranker(str(folder))
    text = "Aeroelasticity of hypersonic vehicles, revisited."
    out = reranker.rerank("flutter", [text], token_budget=100)
    assert out[0].tokens is not None and out[0].tokens > len(text.split())
    assert token_counter(reranker).name == "tokenizer"


# ------------------------------------------------------------------- everything together


def test_blank_passages_stay_last_and_are_dropped_with_a_budget() -> None:
    r = FakeReranker()
    texts = ["apple pie", "   ", "apple  pie", "pear"]
    out = r.rerank("apple", texts, dedupe=1.0)
    assert _indices(out) == [0, 3, 1] and out[-1].empty
    assert _indices(r.rerank("apple", texts, dedupe=1.0, token_budget=50)) == [0, 3]


def test_fusion_then_assembly(fixed: Fixed) -> None:
    first = [0.0, 0.0, 0.0, 100.0, 0.0, 0.0]
    out = fixed.rerank(
        "q", TEXTS, first_stage_scores=first, fusion=Fusion(0.5, "minmax"), dedupe=1.0
    )
    assert out[0].index == 3 and out[0].reranker_score == 2.0  # the fused score orders
    assert 1 not in _indices(out)


def test_sync_and_async_decide_alike(fixed: Fixed) -> None:
    options: dict[str, Any] = {
        "dedupe": 0.7,
        "diversity": 0.4,
        "order": "lost-in-the-middle",
        "boosts": [{"field": "s", "values": {"x": 0.5}}],
        "token_budget": 30,
        "top_n": 4,
        "metadata": [{"s": "x"}, {}, {}, {"s": "x"}, {}, {}],
    }
    sync = fixed.rerank("q", TEXTS, **options)
    assert sync == asyncio.run(fixed.arerank("q", TEXTS, **options))
    assert sync  # something was kept


def test_caller_objects_are_untouched(fixed: Fixed) -> None:
    texts = list(TEXTS)
    metadata = [{"updated_at": "2026-01-01", "tags": ["a"]} for _ in texts]
    boosts = [{"field": "updated_at", "half_life_days": 30, "weight": 0.2}]
    before = (copy.deepcopy(texts), copy.deepcopy(metadata), copy.deepcopy(boosts))
    fixed.rerank("q", texts, metadata=metadata, boosts=boosts, dedupe=0.8, token_budget=40)
    assert (texts, metadata, boosts) == before


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"dedupe": 0}, ValueError, r"dedupe must be in \(0, 1\]"),
        ({"dedupe": 1.5}, ValueError, "dedupe must be in"),
        ({"dedupe": "high"}, TypeError, "dedupe must be a number"),
        ({"diversity": -0.1}, ValueError, r"diversity must be in \[0, 1\]"),
        ({"diversity": 2}, ValueError, "diversity must be in"),
        ({"order": "random"}, ValueError, "order must be 'score' or 'lost-in-the-middle'"),
        ({"token_budget": 0}, ValueError, "token_budget must be a positive int"),
        ({"token_budget": 1.5}, ValueError, "token_budget must be a positive int"),
        ({"similarity_model": "bi-encoder:x"}, ValueError, "used by dedupe and diversity"),
        ({"similarity_model": 3, "dedupe": 0.9}, TypeError, "similarity_model must be"),
        ({"boosts": "recency"}, TypeError, "boosts must be a dict or a list"),
        ({"boosts": {"half_life_days": 3}}, ValueError, r"boosts\[0\] needs 'field'"),
        ({"boosts": {"field": "d", "half_life_days": 0}}, ValueError, "half_life_days must"),
        ({"boosts": {"field": "d", "values": {}}}, ValueError, "values must be a non-empty"),
        ({"boosts": {"field": "d", "values": {"a": "x"}}}, ValueError, "finite number"),
        ({"boosts": {"field": "d", "weight": 1}}, ValueError, "recency boost"),
        ({"boosts": {"field": "d", "values": {"a": 1}, "x": 1}}, ValueError, "unknown keys"),
        ({"metadata": [{}]}, ValueError, "metadata has 1 entries for 6 texts"),
        ({"metadata": [1, 2, 3, 4, 5, 6]}, TypeError, r"metadata\[0\] must be a dict"),
    ],
)
def test_settings_are_checked_before_scoring(
    fixed: Fixed, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        fixed.rerank("q", TEXTS, **options)
    assert fixed.calls == 0


def test_every_step_off_is_the_plain_ranking(fixed: Fixed) -> None:
    assert Assembly.build() is None and Assembly.build(diversity=0, order="score") is None
    assert fixed.rerank("q", TEXTS, diversity=0.0, order="score") == fixed.rerank("q", TEXTS)
    assert check_boosts(None) == ()


# --------------------------------------------------------------- embedding similarity


@pytest.mark.models
def test_cosine_similarity_with_the_bi_encoders_cache(minilm_reranker: Any) -> None:
    minilm_reranker.clear_cache()
    texts = [
        "How do I reset my password?",
        "how can I reset my password",
        "Shipping takes three to five days.",
    ]
    r = Fixed({texts[0]: 2.0, texts[1]: 1.5, texts[2]: 1.0})
    out = r.rerank("password", texts, dedupe=0.85, similarity_model=minilm_reranker)
    assert _indices(out) == [0, 2] and out[0].duplicates == (1,)
    assert out[0].similarity == f"cosine:{minilm_reranker.name}"
    assert minilm_reranker.cache_info()["misses"] == 3
    again = asyncio.run(r.arerank("password", texts, dedupe=0.85, similarity_model=minilm_reranker))
    assert again == out and minilm_reranker.cache_info()["hits"] >= 3  # from the cache
    lexical = r.rerank("password", texts, dedupe=0.85)
    assert _indices(lexical) == [0, 1, 2]  # the words differ: lexically distinct


# --------------------------------------------------------------------------- adapters

FRAMEWORKS = ["langchain_rerank_kit", "llamaindex_rerank_kit"]
FIELDS = {
    "dedupe": None,
    "diversity": 0.0,
    "similarity_model": None,
    "order": "score",
    "boosts": None,
    "token_budget": None,
}


@pytest.fixture(params=FRAMEWORKS, ids=["langchain", "llamaindex"])
def fw(request: pytest.FixtureRequest) -> Any:
    return importlib.import_module(request.param)


def test_every_rerank_class_has_the_settings(fw: Any) -> None:
    from rerank_kit._adapters.settings import RerankSettings

    classes = [
        getattr(fw, name)
        for name in fw.__all__
        if isinstance(getattr(fw, name), type) and issubclass(getattr(fw, name), RerankSettings)
    ]
    assert len(classes) >= 7
    for cls in classes:
        for name, default in FIELDS.items():
            assert cls.model_fields[name].default == default, (cls.__name__, name)
            assert cls.model_fields[name].description


def _wrapper(fw: Any, reranker: Reranker, **settings: Any) -> Any:
    if fw.__name__.startswith("langchain"):
        return fw.RerankCompressor(reranker=reranker, **settings)
    return fw.RerankPostprocessor(reranker=reranker, metadata_mode="none", **settings)


def _items(fw: Any, texts: Sequence[str], metadata: Sequence[dict[str, Any]]) -> list[Any]:
    if fw.__name__.startswith("langchain"):
        from langchain_core.documents import Document

        return [
            Document(page_content=t, id=f"doc-{i}", metadata=m)
            for i, (t, m) in enumerate(zip(texts, metadata, strict=True))
        ]
    from llama_index.core.schema import NodeWithScore, TextNode

    return [
        NodeWithScore(node=TextNode(text=t, id_=f"doc-{i}", metadata=m), score=0.1)
        for i, (t, m) in enumerate(zip(texts, metadata, strict=True))
    ]


def _run(fw: Any, wrapper: Any, items: list[Any], *, run_async: bool = False) -> list[Any]:
    if fw.__name__.startswith("langchain"):
        if run_async:
            return list(asyncio.run(wrapper.acompress_documents(items, "q")))
        return list(wrapper.compress_documents(items, "q"))
    if run_async:
        return list(asyncio.run(wrapper.apostprocess_nodes(items, query_str="q")))
    return list(wrapper.postprocess_nodes(items, query_str="q"))


def _view(fw: Any, out: list[Any]) -> list[dict[str, Any]]:
    """Each result as (id, score, what assembly recorded), the same for both frameworks."""
    rows = []
    for item in out:
        if fw.__name__.startswith("langchain"):
            m = item.metadata
            rows.append(
                {
                    "id": item.id,
                    "score": m["relevance_score"],
                    "duplicates": m.get("duplicates", []),
                    "duplicate_ids": m.get("duplicate_ids", []),
                    "context_rank": m.get("context_rank"),
                    "boost": m.get("boost"),
                    "similarity": m.get("similarity"),
                    "tokens": m.get("context_tokens"),
                }
            )
        else:
            rows.append(
                {
                    "id": item.node.node_id,
                    "score": item.score,
                    "duplicates": item.duplicates,
                    "duplicate_ids": item.duplicate_ids,
                    "context_rank": item.context_rank,
                    "boost": item.boost,
                    "similarity": item.similarity,
                    "tokens": item.context_tokens,
                }
            )
    return rows


def test_adapters_apply_every_step_alike(fw: Any) -> None:
    metadata = [{"source": "handbook"}, {}, {}, {"source": "forum"}, {}, {}]
    items = _items(fw, TEXTS, metadata)
    before = copy.deepcopy([i.model_dump() for i in items])
    wrapper = _wrapper(
        fw,
        Fixed(SCORES),
        top_n=3,
        dedupe=0.6,
        diversity=0.2,
        order="lost-in-the-middle",
        boosts={"field": "source", "values": {"handbook": 0.5}},
        token_budget=40,
    )
    rows = _view(fw, _run(fw, wrapper, items))
    assert [r["id"] for r in rows] == ["doc-0", "doc-4", "doc-3"]
    assert [r["context_rank"] for r in rows] == [1, 3, 2]
    assert rows[0]["duplicates"] == [1, 2] and rows[0]["duplicate_ids"] == ["doc-1", "doc-2"]
    assert rows[0]["score"] == 5.5 and rows[0]["boost"] == 0.5 and rows[1]["boost"] == 0.0
    assert {r["similarity"] for r in rows} == {"lexical:jaccard-3-shingles"}
    assert [r["tokens"] for r in rows] == [len(TEXTS[i].split()) for i in (0, 4, 3)]
    assert _view(fw, _run(fw, wrapper, items, run_async=True)) == rows
    assert [i.model_dump() for i in items] == before  # the caller's objects are untouched


def test_adapters_keep_metadata_and_add_nothing_when_off(fw: Any) -> None:
    items = _items(fw, TEXTS, [{"k": i} for i in range(6)])
    out = _run(fw, _wrapper(fw, Fixed(SCORES), top_n=2), items)
    rows = _view(fw, out)
    assert [r["context_rank"] for r in rows] == [None, None]
    assert [r["duplicates"] for r in rows] == [[], []]
    if fw.__name__.startswith("langchain"):
        assert set(out[0].metadata) == {"k", "relevance_score", "rerank_model"}


def test_adapters_budget_too_small_is_empty(fw: Any, caplog: pytest.LogCaptureFixture) -> None:
    items = _items(fw, TEXTS, [{}] * 6)
    with caplog.at_level(logging.WARNING, logger=ASSEMBLY_LOG):
        assert _run(fw, _wrapper(fw, Fixed(SCORES), token_budget=2), items) == []
    assert "fits none" in caplog.text


@pytest.mark.parametrize(
    "settings",
    [
        {"dedupe": 0},
        {"diversity": 1.5},
        {"order": "shuffled"},
        {"token_budget": -1},
        {"boosts": {"field": "x"}},
        {"similarity_model": "bi-encoder:x"},
    ],
)
def test_adapters_check_the_settings_at_construction(fw: Any, settings: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        _wrapper(fw, FakeReranker(), **settings)


def test_model_classes_pass_the_settings_to_the_engine(
    fw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rerank_kit

    monkeypatch.setattr(rerank_kit, "CrossEncoderReranker", lambda model, **kw: Fixed(SCORES))
    compressor = fw.CrossEncoderRerank(model="m", top_n=None, dedupe=1.0)
    if fw.__name__.startswith("llamaindex"):
        compressor = fw.CrossEncoderRerank(model="m", top_n=None, dedupe=1.0, metadata_mode="none")
    rows = _view(fw, _run(fw, compressor, _items(fw, TEXTS, [{}] * 6)))
    assert [r["id"] for r in rows] == ["doc-0", "doc-2", "doc-3", "doc-4", "doc-5"]
    assert rows[0]["duplicate_ids"] == ["doc-1"]


# ------------------------------------------------------------------ pipeline and CLI


def test_pipeline_config_round_trip_and_old_files(tmp_path: Path) -> None:
    config = PipelineConfig(
        "x:y",
        top_n=4,
        dedupe=0.8,
        diversity=0.3,
        similarity_model="bi-encoder:all-MiniLM-L6-v2",
        order="lost-in-the-middle",
        boosts=[{"field": "updated_at", "half_life_days": 30, "weight": 0.2}],
        token_budget=512,
    )
    path = config.save(tmp_path / "p.json")
    assert PipelineConfig.load(path) == config
    data = json.loads(path.read_text())
    assert data["format"] == "rerank-kit-pipeline/2" and data["token_budget"] == 512
    old = {"format": "rerank-kit-pipeline/2", "reranker": "x:y", "top_n": 3}
    loaded = PipelineConfig.from_dict(old)
    assert (loaded.dedupe, loaded.diversity, loaded.order, loaded.token_budget) == (
        None,
        0.0,
        "score",
        None,
    )
    with pytest.raises(ValueError, match="dedupe must be in"):
        PipelineConfig.from_dict({**old, "dedupe": 3})


def test_pipeline_and_from_config_apply_the_settings(
    fw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rerank_kit._registry

    monkeypatch.setattr(rerank_kit._registry, "load_reranker", lambda spec, **kw: Fixed(SCORES))
    config = PipelineConfig("fixed:x", top_n=3, dedupe=1.0, order="lost-in-the-middle")
    pipeline = load_pipeline(config)
    assert isinstance(pipeline, Pipeline)
    out = pipeline.rerank("q", TEXTS)
    assert _indices(out) == [0, 3, 2] and out[0].duplicates == (1,)
    assert asyncio.run(pipeline.arerank("q", TEXTS)) == out
    boosted = PipelineConfig("fixed:x", top_n=1, boosts=[{"field": "s", "values": {"a": 9}}])
    metadata = [{}, {}, {}, {}, {"s": "a"}, {}]
    assert load_pipeline(boosted).rerank("q", TEXTS, metadata=metadata)[0].index == 4

    wrapper = fw.from_config(config)
    assert (wrapper.dedupe, wrapper.order, wrapper.top_n) == (1.0, "lost-in-the-middle", 3)
    if fw.__name__.startswith("llamaindex"):
        wrapper.metadata_mode = "none"
    assert [r["id"] for r in _view(fw, _run(fw, wrapper, _items(fw, TEXTS, [{}] * 6)))] == [
        "doc-0",
        "doc-3",
        "doc-2",
    ]


def test_compare_reports_the_assembled_variant_from_the_same_scores() -> None:
    from rerank_kit.evaluation import Dataset, Document, compare

    texts = {"d0": "red apples", "d1": "red  apples", "d2": "green apples", "d3": "jet engines"}
    data = Dataset(
        "tiny",
        {k: Document(k, v) for k, v in texts.items()},
        {"q1": "red apples"},
        {"q1": {"d0": 1, "d2": 1}},
    )
    reranker = FakeReranker()
    result = compare(data, "bm25", [reranker], depth=4, warmup=False, assembly={"dedupe": 1.0})
    names = [s.name for s in result.systems]
    assert names[-1] == "bm25 >> fake (context dedupe=1.0)"
    assembled, plain = result.systems[-1], result.systems[-2]
    assert reranker.calls == 1  # the variant reuses the reranker's scores
    assert assembled.run["q1"][:2] == ["d0", "d2"] and plain.run["q1"][:2] == ["d0", "d1"]
    assert assembled.metrics["nDCG@10"] > plain.metrics["nDCG@10"]


def test_cli_flags_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rerank_kit.cli import main

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"id": "d0", "text": "red apples"}\n', encoding="utf-8")
    judgments = tmp_path / "qs.jsonl"
    judgments.write_text('{"query": "apples", "relevant": ["d0"]}\n', encoding="utf-8")
    base = ["eval", str(judgments), "--corpus", str(corpus), "--no-progress"]
    for extra, message in (
        (["--dedupe", "2", "--reranker", "x"], "dedupe must be in"),
        (["--boosts", "{bad", "--reranker", "x"], "--boosts is not valid JSON"),
        (["--diversity", "0.5"], "needs at least one --reranker"),
        (["--token-budget", "0", "--reranker", "x"], "token_budget must be a positive int"),
    ):
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--order", "middle"])


@pytest.mark.models
def test_cli_reports_the_assembled_system(
    tiny_ce_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rerank_kit.cli import main

    docs = ["red apples grow on trees", "red  apples grow on trees", "green pears", "jet engines"]
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)),
        encoding="utf-8",
    )
    judgments = tmp_path / "qs.jsonl"
    judgments.write_text('{"query": "red apples", "relevant": ["d0"]}\n', encoding="utf-8")
    out_json = tmp_path / "eval.json"
    boosts = json.dumps({"field": "source", "values": {"a": 0.5}})
    code = main(
        [
            "eval",
            str(judgments),
            "--corpus",
            str(corpus),
            "--no-progress",
            "--reranker",
            f"cross-encoder:{tiny_ce_dir}",
            "--dedupe",
            "1.0",
            "--order",
            "lost-in-the-middle",
            "--token-budget",
            "50",
            "--boosts",
            boosts,
            "--json",
            str(out_json),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(out_json.read_text())
    assert payload["settings"]["context_assembly"] == {
        "dedupe": 1.0,
        "order": "lost-in-the-middle",
        "token_budget": 50,
        "boosts": {"field": "source", "values": {"a": 0.5}},
    }
    last = payload["systems"][-1]["name"]
    assert "(context dedupe=1.0 order=lost-in-the-middle boosts=1 token_budget=50)" in last
    assert "context dedupe=1.0" in captured.out


# ------------------------------------------------------------ duplicate-rich collection


def _tiny_dataset() -> Any:
    from rerank_kit.evaluation import Dataset, Document

    one = (
        "Wings stall at high angles of attack in slow flight over the field. "
        "Leading edge flaps delay the stall by several degrees in these tests. "
        "Wind tunnel tests agree with the flight tests within the error bars. "
        "The trailing edge flaps change the pitching moment much more than expected."
    )
    two = (
        "Shock waves form near the speed of sound on the upper surface of wings. "
        "The waves move aft as the Mach number of the free stream grows further. "
        "Drag rises sharply once the flow separates behind the strongest shock wave."
    )
    docs = {
        "d1": Document("d1", one),
        "d2": Document("d2", two),
        "d3": Document("d3", "Unjudged filler about plates."),
    }
    return Dataset("tiny", docs, {"q1": "stall"}, {"q1": {"d1": 2, "d2": 1, "d3": 0}})


def test_with_near_duplicates_is_deterministic_and_judges_copies_alike() -> None:
    from rerank_kit.evaluation import with_near_duplicates

    data = _tiny_dataset()
    before = copy.deepcopy(dict(data.corpus))
    one, originals = with_near_duplicates(data, seed=3)
    two, _ = with_near_duplicates(data, seed=3)
    assert dict(one.corpus) == dict(two.corpus) and dict(data.corpus) == before
    copies = [d for d in one.corpus if "~copy" in d]
    assert copies and all(originals[c] == c.split("~")[0] for c in copies)
    assert not any(c.startswith("d3") for c in copies)  # only judged-relevant documents
    for c in copies:
        assert one.qrels["q1"][c] == data.qrels["q1"][originals[c]]
        assert one.corpus[c].text != data.corpus[originals[c]].text  # edited
        sim = LexicalSimilarity([one.corpus[c].text, data.corpus[originals[c]].text])(0, 1)
        assert sim > 0.4  # small edits: still a near-duplicate
    counts = {d: sum(originals[c] == d for c in copies) for d in ("d1", "d2")}
    assert all(1 <= n <= 3 for n in counts.values())
    other, _ = with_near_duplicates(data, seed=4)
    assert dict(other.corpus) != dict(one.corpus)


def test_deduplicated_metrics() -> None:
    from rerank_kit.evaluation import deduplicated_ndcg_at_k, ndcg_at_k, near_duplicate_share

    originals = {"a": "a", "a~copy1": "a", "b": "b", "c": "c"}
    judged = {"a": 1, "a~copy1": 1, "b": 1}
    ranking = ["a", "a~copy1", "c", "b"]
    assert deduplicated_ndcg_at_k(ranking, judged, originals, 10) == ndcg_at_k(
        ["a", "c", "b"], {"a": 1, "b": 1}, 10
    )
    assert near_duplicate_share(ranking, originals, 2) == 0.5
    assert near_duplicate_share(["a", "b"], originals, 5) == 0.0
    assert near_duplicate_share([], originals, 5) == 0.0


# ----------------------------------------------------------- the settings as one value


def test_settings_are_one_frozen_value_checked_when_built(fixed: Fixed) -> None:
    from rerank_kit import AssemblySettings

    settings = AssemblySettings(
        dedupe=0.6, order="lost-in-the-middle", boosts={"field": "s", "values": {"x": 0.5}}
    )
    assert settings.dedupe == 0.6 and isinstance(settings.boosts, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.dedupe = 0.9  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"dedupe must be in \(0, 1\]"):
        AssemblySettings(dedupe=0.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'dedup'"):
        AssemblySettings.build(dedup=0.5)
    assert AssemblySettings.build(order=None, diversity=0.0) is None  # every step off
    as_keywords = fixed.rerank("q", TEXTS, dedupe=0.6, order="lost-in-the-middle", top_n=3)
    same = AssemblySettings(dedupe=0.6, order="lost-in-the-middle")
    assert fixed.rerank("q", TEXTS, assembly=same, top_n=3) == as_keywords
    assert asyncio.run(fixed.arerank("q", TEXTS, assembly=same, top_n=3)) == as_keywords
    assert [r.index for r in as_keywords] == [0, 4, 3]
    with pytest.raises(ValueError, match=r"either as assembly= or as keywords \(dedupe\)"):
        fixed.rerank("q", TEXTS, assembly=settings, dedupe=0.5)
    with pytest.raises(TypeError, match="assembly must be an AssemblySettings"):
        fixed.rerank("q", TEXTS, assembly={"dedupe": 0.5})  # type: ignore[arg-type]


def test_an_adapter_checks_its_settings_once_not_on_every_call(
    fw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerank_kit import AssemblySettings, Fusion

    built: list[AssemblySettings] = []
    check = AssemblySettings.__post_init__

    def counted(self: AssemblySettings) -> None:
        built.append(self)
        check(self)

    monkeypatch.setattr(AssemblySettings, "__post_init__", counted)
    wrapper = _wrapper(fw, Fixed(SCORES), top_n=3, dedupe=0.6, fusion=0.5, token_budget=40)
    assert len(built) == 1  # at construction
    settings = wrapper.run_settings()
    assert settings["assembly"] is built[0] and isinstance(settings["fusion"], Fusion)
    items = _items(fw, TEXTS, [{}] * len(TEXTS))
    first = _view(fw, _run(fw, wrapper, items))
    for _ in range(3):
        assert _view(fw, _run(fw, wrapper, items)) == first
        assert _view(fw, _run(fw, wrapper, items, run_async=True)) == first
    assert len(built) == 1  # no call checked them again
    changed = wrapper.model_copy(update={"dedupe": None})  # a field changed after construction
    assert changed.run_settings()["assembly"].dedupe is None and len(built) == 2
