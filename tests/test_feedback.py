"""Judgments from feedback logs, metadata and LLM-generated questions (rerank_kit.feedback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rerank_kit.evaluation import Document, load_judgments
from rerank_kit.feedback import (
    Judgment,
    judgments_from_feedback,
    judgments_from_metadata,
    questions_from_llm,
    read_feedback,
    write_judgments,
)

CORPUS = {
    "pw": Document("pw", "Use the reset link on the sign-in page to choose a new password."),
    "mgr": Document("mgr", "Password managers keep your passwords safe."),
    "fan": Document("fan", "Clean the laptop vents so the fan can cool the machine."),
    "bag": Document("bag", "Laptop bags come in three sizes."),
    "mail": Document("mail", "Outgoing mail needs the right server port."),
}


def test_click_cite_rating_and_skip_above() -> None:
    log = [
        {"query": "reset password", "shown": ["mgr", "bag", "pw", "fan"], "clicked": ["pw"]},
    ]
    judgments, report = judgments_from_feedback(log)
    assert judgments == [Judgment("reset password", {"pw": 1, "mgr": 0, "bag": 0})]
    # fan was below the last click: never judged
    assert report == {
        "records": 1,
        "merged_records": 0,
        "unknown_ids": 0,
        "queries": 1,
        "dropped_no_evidence": 0,
        "relevant": 1,
        "not_relevant": 2,
    }
    cited = [{"query": "q", "shown": ["a", "b"], "cited": ["b"], "clicked": ["a"]}]
    assert dict(judgments_from_feedback(cited)[0][0].relevant) == {"a": 1, "b": 2}
    rated = [{"query": "q", "shown": ["a", "b"], "clicked": ["a", "b"], "ratings": {"b": 0}}]
    assert dict(judgments_from_feedback(rated)[0][0].relevant) == {"a": 1, "b": 0}


def test_repeated_queries_merge_and_evidence_decides() -> None:
    log = [
        {"query": "Laptop too hot", "shown": ["bag", "fan"], "clicked": ["fan"]},
        {"query": "laptop  too HOT", "shown": ["bag", "fan"], "clicked": ["bag"]},
        {"query": "laptop too hot", "shown": ["fan", "bag"], "clicked": ["fan"]},
        {"query": "mail", "shown": ["mail"], "clicked": ["mail"]},
    ]
    judgments, report = judgments_from_feedback(log)
    assert [j.query for j in judgments] == ["Laptop too hot", "mail"]
    # bag: 1 click, 1 skip -> relevant (ties favour the click); fan: 2 clicks, 1 skip
    assert dict(judgments[0].relevant) == {"fan": 1, "bag": 1}
    assert report["merged_records"] == 2
    strict, report = judgments_from_feedback(log, min_evidence=2)
    assert [j.query for j in strict] == ["Laptop too hot"]
    assert dict(strict[0].relevant) == {"fan": 1}
    assert report["dropped_no_evidence"] == 1  # "mail" had a single click


def test_skips_outvoting_clicks_make_a_negative() -> None:
    log = [{"query": "q", "shown": ["a", "b"], "clicked": ["b"]}] * 3 + [
        {"query": "q", "shown": ["a"], "clicked": ["a"]}
    ]
    judgments, _ = judgments_from_feedback(log)
    assert dict(judgments[0].relevant) == {"b": 1, "a": 0}


def test_unknown_ids_and_no_evidence_are_dropped_and_counted() -> None:
    log = [
        {"query": "reset", "shown": ["zzz", "pw"], "clicked": ["pw", "nope"]},
        {"query": "nothing clicked", "shown": ["pw", "mgr"]},
    ]
    judgments, report = judgments_from_feedback(log, corpus=CORPUS)
    assert [j.query for j in judgments] == ["reset"]
    assert dict(judgments[0].relevant) == {"pw": 1}
    assert report["unknown_ids"] == 2 and report["dropped_no_evidence"] == 1


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"query": "", "shown": []}, "non-empty string"),
        ({"query": "q", "shown": "pw"}, "'shown' must be a list"),
        ({"query": "q", "clicked": [1], "ratings": {"1": -1}}, "grade >= 0"),
        ({"query": "q", "ratings": ["pw"]}, "'ratings' must be an object"),
    ],
)
def test_bad_records_are_named(record: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        judgments_from_feedback([{"query": "ok", "clicked": ["pw"]}, record])
    with pytest.raises(ValueError, match="min_evidence"):
        judgments_from_feedback([], min_evidence=0)


def test_feedback_file_to_a_dataset_eval_reads(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    records = [
        {"query": "reset password", "shown": ["mgr", "pw"], "clicked": ["pw"]},
        {"query": "hot laptop", "shown": ["bag", "fan"], "cited": ["fan"]},
    ]
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    assert read_feedback(log) == records
    judgments, _ = judgments_from_feedback(log)
    out = write_judgments(judgments, tmp_path / "judged" / "judgments.jsonl")
    data = load_judgments(out, CORPUS)
    assert list(data.queries.values()) == ["reset password", "hot laptop"]
    assert data.qrels["q1"] == {"pw": 1, "mgr": 0} and data.qrels["q2"] == {"fan": 2, "bag": 0}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a"}\n[1]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        read_feedback(bad)


def test_metadata_judgments() -> None:
    meta: dict[str, dict[str, Any]] = {
        "pw": {"product": "accounts", "tags": ["security", "login"]},
        "mgr": {"product": "accounts", "tags": ["security"]},
        "fan": {"product": "hardware", "tags": ["laptop"]},
        "bag": {"product": "hardware", "tags": ["laptop", "store"]},
        "mail": {"tags": []},
    }
    queries = [("reset password", "pw"), ("cooling", "fan"), ("smtp", "mail"), ("x", "gone")]
    judgments, report = judgments_from_metadata(queries, meta, "product")
    assert [(j.query, dict(j.relevant)) for j in judgments] == [
        ("reset password", {"pw": 2, "mgr": 1}),
        ("cooling", {"fan": 2, "bag": 1}),
    ]
    assert report == {"queries": 2, "dropped_no_source": 1, "dropped_no_value": 1, "relevant": 4}
    tagged, _ = judgments_from_metadata([("hot laptop", "fan")], meta, "tags", max_relevant=5)
    assert dict(tagged[0].relevant) == {"fan": 2, "bag": 1}
    capped, _ = judgments_from_metadata([("login", "pw")], meta, "tags", max_relevant=0)
    assert dict(capped[0].relevant) == {"pw": 2}


SCRIPTED = {
    "pw": "1. How can I choose a new password?\n2. Where is the password reset link?",
    "mgr": "",  # empty answer
    "fan": "- How do I cool down my laptop?\n- how do i cool down my laptop?",  # duplicate
    "bag": "Laptop bags come in three sizes.\nWhat sizes are the laptop bags?",  # one copy
    "mail": "Why won't my email send?\nok\nWhich port does outgoing mail use?\nextra one?",
}


def _scripted(prompt: str) -> str:
    for doc_id, doc in CORPUS.items():
        if doc.text in prompt:
            return SCRIPTED[doc_id]
    raise AssertionError("document missing from the prompt")


def _check_llm_report(judgments: list[Judgment], report: dict[str, int]) -> None:
    assert [(j.query, dict(j.relevant)) for j in judgments] == [
        ("How can I choose a new password?", {"pw": 1}),
        ("Where is the password reset link?", {"pw": 1}),
        ("How do I cool down my laptop?", {"fan": 1}),
        ("What sizes are the laptop bags?", {"bag": 1}),
        ("Why won't my email send?", {"mail": 1}),
    ]
    assert report == {
        "documents": 5,
        "llm_calls": 5,
        "llm_errors": 0,
        "questions": 5,
        "empty": 2,  # the empty answer, and "ok" (under three words)
        "duplicate": 1,
        "copied": 1,
        "extra": 2,  # mail answered four lines for two questions
    }


def test_questions_from_a_plain_callable() -> None:
    judgments, report = questions_from_llm(CORPUS, _scripted, sample=None, per_document=2)
    _check_llm_report(judgments, report)


def test_questions_from_langchain_fake_chat_model() -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.language_models import FakeListChatModel

    llm = FakeListChatModel(responses=[SCRIPTED[d] for d in CORPUS])  # answers in call order
    judgments, report = questions_from_llm(CORPUS, llm, sample=None, per_document=2)
    _check_llm_report(judgments, report)


def test_questions_from_llamaindex_llms() -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback
    from llama_index.core.llms.mock import MockLLM

    class Scripted(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata()

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kw: Any) -> CompletionResponse:
            return CompletionResponse(text=_scripted(prompt))

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kw: Any) -> Any:
            raise NotImplementedError

    judgments, report = questions_from_llm(CORPUS, Scripted(), sample=None, per_document=2)
    _check_llm_report(judgments, report)
    # MockLLM echoes the prompt: every line is either too short, the instruction, or a copy
    echoed, report = questions_from_llm(CORPUS, MockLLM(), sample=2, per_document=20)
    assert report["llm_calls"] == 2 and report["copied"] >= 2
    assert all(j.query not in CORPUS[next(iter(j.relevant))].text for j in echoed)


def test_llm_errors_sampling_and_settings() -> None:
    calls: list[str] = []

    def flaky(prompt: str) -> str:
        calls.append(prompt)
        if len(calls) == 1:
            raise RuntimeError("rate limited")
        return "What does this document explain in detail?"

    judgments, report = questions_from_llm(CORPUS, flaky, sample=3, seed=1)
    assert report["llm_errors"] == 1 and report["llm_calls"] == 3 and report["documents"] == 3
    assert len(judgments) == 1  # the same question twice more: duplicates
    again, _ = questions_from_llm(CORPUS, lambda p: "What is in here, exactly?", sample=3, seed=1)
    first_ids = [next(iter(j.relevant)) for j in again]
    assert len(first_ids) == 1  # one question kept, from the first sampled document
    with pytest.raises(TypeError, match="LangChain chat model"):
        questions_from_llm(CORPUS, object())
    with pytest.raises(ValueError, match="per_document"):
        questions_from_llm(CORPUS, flaky, per_document=0)
    with pytest.raises(ValueError, match="placeholder"):
        questions_from_llm(CORPUS, flaky, prompt="no slot")
