"""The loop, offline: an agent, a retrieval chain and a query engine write feedback with
citations, and ``rerank-kit tune --feedback`` learns from the log.

No LLM is called: the chat models are scripted, the LlamaIndex LLM answers a fixed text, the
compressors wrap ``FakeReranker`` (share of query words in a passage).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain")
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_v1_smoke import HELP_DESK, QUERY, ListRetriever, calling, help_desk

from langchain_rerank_kit import RerankCompressor, RerankMiddleware, record_feedback
from rerank_kit import FeedbackRecorder
from rerank_kit.feedback import load_feedback
from rerank_kit.testing import FakeReranker

TEXT = dict(HELP_DESK)
PASSWORD = "how do I reset the password"
BATTERY = "how long do laptop batteries last"


def agent_answer(
    recorder: FeedbackRecorder, answer: str, run: str, middleware: Any = None
) -> dict[str, Any]:
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import create_retriever_tool

    search = create_retriever_tool(
        ListRetriever(docs=help_desk()), "search", "Search.", response_format="content_and_artifact"
    )
    model = calling("search", {"query": QUERY}, answer=answer)
    rerank = RerankCompressor(reranker=FakeReranker(), top_n=3)
    middleware = middleware or RerankMiddleware(rerank, recorder=recorder)
    agent = create_agent(model, tools=[search], middleware=[middleware])
    state: Any = {"messages": [HumanMessage(QUERY)]}
    return agent.invoke(state) if run == "invoke" else asyncio.run(agent.ainvoke(state))


@pytest.mark.parametrize("run", ["invoke", "ainvoke"])
def test_agent_middleware_records_the_tool_result_and_the_answers_citations(
    tmp_path: Path, run: str
) -> None:
    log = tmp_path / "feedback.jsonl"
    recorder = FeedbackRecorder(log)
    answer = "Clean the laptop fan vents: a loud fan is a dusty fan."  # d5 paraphrased
    state = agent_answer(recorder, answer, run)
    assert state["messages"][-1].content == answer
    (record,), report = load_feedback(log)
    assert record["query"] == QUERY and record["shown"] == ["d5", "d3", "d1"]
    assert record["scores"][:2] == [0.8, 0.6] and record["pipeline"] == "fake"
    assert record["cited"] == ["d5"] and report["events"] == 1
    artifact = state["messages"][2].artifact
    assert {d.metadata["feedback_record"] for d in artifact} == {record["id"]}


def test_agent_markers_win_and_no_recorder_writes_nothing(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    agent_answer(FeedbackRecorder(log), "See [2] and [d1]; [d4] was not shown.", "invoke")
    (record,), _ = load_feedback(log)
    assert record["cited"] == ["d3", "d1"]
    with pytest.raises(TypeError, match="FeedbackRecorder"):
        RerankMiddleware(RerankCompressor(reranker=FakeReranker()), recorder="log.jsonl")  # type: ignore[arg-type]


def retrieval_chain(recorder: FeedbackRecorder, answer: str) -> Any:
    rerank = RerankCompressor(reranker=FakeReranker(), top_n=3).as_runnable()
    retriever = ListRetriever(docs=help_desk())
    prompt = ChatPromptTemplate.from_template("Context: {context}\nQuestion: {question}")
    llm = FakeListChatModel(responses=[answer])
    return (
        {"context": {"query": RunnablePassthrough(), "documents": retriever} | rerank,
         "question": RunnablePassthrough()}
        | RunnablePassthrough.assign(answer=prompt | llm | StrOutputParser())
        | record_feedback(recorder)
    )  # fmt: skip


def test_retrieval_chain_step_records_and_returns_the_record_id(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    recorder = FeedbackRecorder(log)
    out = retrieval_chain(recorder, f"{TEXT['d2']} Then sign in again.").invoke(PASSWORD)
    assert out["cited"] == ["d2"] and out["feedback_id"].startswith("r-")
    recorder.rated(out["feedback_id"], {"d2": 2})  # the user's thumbs up: one call
    (record,), _ = load_feedback(log)
    assert record["id"] == out["feedback_id"] and record["shown"][0] == "d2"
    assert record["cited"] == ["d2"] and record["ratings"] == {"d2": 2}
    with pytest.raises(TypeError, match="'question'"):
        record_feedback(recorder).invoke({"query": "x"})


def query_engine(answer: str, top_n: int = 3) -> Any:
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.schema import TextNode

    from llamaindex_rerank_kit import RerankPostprocessor

    class FixedLLM(CustomLLM):
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata()

        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            return CompletionResponse(text=answer)

        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            yield CompletionResponse(text=answer, delta=answer)

    nodes = [TextNode(text=t, id_=i, metadata={"source": f"kb/{i}"}) for i, t in HELP_DESK]
    index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
    rerank = RerankPostprocessor(reranker=FakeReranker(), top_n=top_n)
    return index.as_query_engine(llm=FixedLLM(), similarity_top_k=5, node_postprocessors=[rerank])


def test_llamaindex_response_helper_and_event_handler(tmp_path: Path) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.instrumentation import get_dispatcher

    from llamaindex_rerank_kit import FeedbackEventHandler, record_response

    log = tmp_path / "feedback.jsonl"
    recorder = FeedbackRecorder(log, id_keys=["source"])
    engine = query_engine("Keep laptop batteries below 80 percent charge and they last longer.")
    response = engine.query(BATTERY)
    rid, cited = record_response(recorder, BATTERY, response) or ("", [])
    assert cited == ["kb/d4"]
    handler = FeedbackEventHandler(recorder=recorder)
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    try:
        engine.query(BATTERY)
    finally:
        dispatcher.event_handlers.remove(handler)
    records, _ = load_feedback(log)
    assert [r["id"] for r in records] == [rid, handler.last_record_id]
    assert all(r["cited"] == ["kb/d4"] and r["shown"][0] == "kb/d4" for r in records)
    assert record_response(recorder, BATTERY, object()) is None


def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"_id": i, "text": t}) for i, t in HELP_DESK]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_all_three(log: Path) -> None:
    recorder = FeedbackRecorder(log)  # no id_keys: LlamaIndex node ids are the corpus ids
    agent_answer(recorder, "Clean the laptop fan vents when the fan is loud.", "invoke")
    retrieval_chain(recorder, TEXT["d2"]).invoke(PASSWORD)
    from llamaindex_rerank_kit import record_response

    response = query_engine(TEXT["d4"]).query(BATTERY)
    record_response(recorder, BATTERY, response)


@pytest.mark.models
def test_records_round_trip_through_tune_feedback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("bm25s")
    from rerank_kit import PipelineConfig
    from rerank_kit.cli import main

    log, config, out = tmp_path / "feedback.jsonl", tmp_path / "pipeline.json", tmp_path / "t.json"
    write_all_three(log)
    args = ["tune", "--feedback", str(log), "--corpus", str(corpus_file(tmp_path))]
    args += ["--reranker", "onnx:cross-encoder/ms-marco-MiniLM-L-12-v2", "--folds", "3"]
    args += ["--depth", "3", "--no-progress", "--config", str(config), "--json", str(out)]
    config.write_text("old")
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "3 records, 3 events" in text and "-> 3 judged queries" in text
    report = json.loads(out.read_text())
    assert len(report["per_query"]) == 3
    if report["difference"]["ci95"][0] > 0:  # --ship-if ci, the default
        assert PipelineConfig.load(config).to_dict() == report["config"]
    else:
        assert config.read_text() == "old" and "is kept as it was" in text
    assert main([*args, "--min-queries", "4"]) == 0
    assert "nothing tuned" in capsys.readouterr().out


def test_tune_feedback_never_ships_a_config_without_a_positive_gain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import rerank_kit.learning._tune as tune_module
    from rerank_kit.cli import main
    from rerank_kit.learning._tune_report import TuneResult

    log, config = tmp_path / "feedback.jsonl", tmp_path / "pipeline.json"
    write_all_three(log)
    cases = [
        ("gain", -0.01, -0.02, False),
        ("gain", 0.0, -0.01, False),
        ("gain", 0.02, -0.01, True),
    ]
    cases += [("ci", 0.02, -0.01, False), ("ci", 0.02, 0.0, False), ("ci", 0.03, 0.01, True)]
    for rule, gain, low, ships in cases:

        def fake_tune(
            data: Any, rerankers: Any, gain: float = gain, low: float = low, **kwargs: Any
        ) -> Any:
            result = TuneResult.__new__(TuneResult)
            from rerank_kit import PipelineConfig

            result.config = PipelineConfig(reranker="none", first_stage="bm25", depth=3)
            result.difference = {"mean": gain, "ci95": [low, gain + 0.01]}
            result.folds = {"folds": 2, "seed": 0}
            result.to_table = lambda: "table"  # type: ignore[method-assign]
            return result

        monkeypatch.setattr(tune_module, "tune", fake_tune)
        config.write_text("old")
        args = ["tune", "--feedback", str(log), "--corpus", str(corpus_file(tmp_path))]
        args += ["--reranker", "x:y", "--config", str(config), "--ship-if", rule]
        assert main(args) == 0
        shipped = config.read_text() != "old"
        assert shipped == ships, (rule, gain, low, capsys.readouterr().out)
    with pytest.raises(SystemExit):
        main(["tune", "--feedback"])
    assert main(["tune", "--feedback", str(log), "--reranker", "x:y"]) == 2  # no --corpus
    assert "--corpus" in capsys.readouterr().err
    assert main(["tune", "--reranker", "x:y"]) == 2  # neither DATA nor --feedback
    assert "DATA" in capsys.readouterr().err
    train = ["train", "--feedback", str(log), "--model", "x:y", "--out", str(tmp_path / "m")]
    assert main(train) == 2  # the same reading of the log as tune's
    assert "--corpus" in capsys.readouterr().err
    few = [*train, "--corpus", str(corpus_file(tmp_path)), "--min-queries", "10"]
    assert main(few) == 0
    assert "3 judged queries < --min-queries 10" in capsys.readouterr().out


def test_a_failing_recorder_never_fails_the_agent(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FeedbackRecorder):
        def record(self, *args: Any, **kwargs: Any) -> str:
            raise RuntimeError("database down")

    recorder = Broken(lambda line: None)
    middleware = RerankMiddleware(
        RerankCompressor(reranker=FakeReranker(), top_n=3), recorder=recorder
    )
    with caplog.at_level("WARNING", logger="langchain_rerank_kit._middleware"):
        for _ in range(2):
            state = agent_answer(recorder, "Clean the laptop fan vents.", "invoke", middleware)
            assert state["messages"][-1].content == "Clean the laptop fan vents."
            assert [d.id for d in state["messages"][2].artifact] == ["d5", "d3", "d1"]
    assert len([r for r in caplog.records if "database down" in r.getMessage()]) == 1
