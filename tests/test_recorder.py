"""FeedbackRecorder: records and events in one log, crash-safe appends, rotation, torn lines."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import rerank_kit
from rerank_kit.feedback import judgments_from_feedback, load_feedback, read_feedback
from rerank_kit.recorder import FeedbackRecorder, content_id

ROOT = Path(__file__).resolve().parents[1]

WRITER = """
import sys
from rerank_kit.recorder import FeedbackRecorder
path, tag, count, size, max_bytes = sys.argv[1:6]
rec = FeedbackRecorder(path, store_texts=True, max_bytes=int(max_bytes) or None, backups=1000,
                       fsync="never")
text = "x" * int(size)
n = 0
while int(count) < 0 or n < int(count):
    rid = rec.record(f"{tag} {n}", [text, "b"], ids=[f"{tag}-{n}", "b"], scores=[1.0, 0.5])
    rec.cited(rid, [f"{tag}-{n}"])
    n += 1
    if n == 5:
        print("ready", flush=True)
"""


def writer(path: Path, tag: str, count: int, size: int = 10, max_bytes: int = 0) -> Any:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = [sys.executable, "-c", WRITER, str(path), tag, str(count), str(size), str(max_bytes)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)


def test_records_and_events_join_into_the_format_judgments_read(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    rec = FeedbackRecorder(log, id_keys=["doc_id"], pipeline="bm25 >> fake")
    texts = ["Clean the fan vents.", "Batteries last longer.", "The fan club meets."]
    meta: list[dict[str, Any]] = [{"doc_id": "d5"}, {}, {"other": 1}]
    rid = rec.record("loud fan", texts, scores=[0.9, 0.4, float("nan")], ids=[None, "d4", None],
                     metadata=meta)  # fmt: skip
    rec.cited(rid, ["d5"], answer="not stored")
    rec.clicked(rid, ["d4"])
    rec.rated(rid, {"d4": 0})
    assert rec.written == 4 and rec.dropped == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["shown"] == ["d5", "d4", content_id(texts[2])]
    assert lines[0]["scores"] == [0.9, 0.4, None] and lines[0]["pipeline"] == "bm25 >> fake"
    assert "texts" not in lines[0] and "answer" not in lines[1]  # privacy by default
    assert [line.get("event") for line in lines] == [None, "cited", "clicked", "rated"]
    (record,) = read_feedback(log)
    assert record["cited"] == ["d5"] and record["clicked"] == ["d4"]
    assert record["ratings"] == {"d4": 0}
    judgments, _ = judgments_from_feedback(log)
    assert dict(judgments[0].relevant) == {"d5": 2, "d4": 0}  # the rating overrides the click
    assert rec.shown_ids(rid) == lines[0]["shown"]


def test_a_callable_sink_and_store_texts() -> None:
    got: list[dict[str, Any]] = []
    rec = FeedbackRecorder(got.append, store_texts=True)
    rid = rec.record("q", ["a text"], record_id="mine-1", extra={"user": "u7"})
    rec.cited(rid, ["x"], answer="the answer")
    assert got[0]["id"] == "mine-1" and got[0]["texts"] == ["a text"] and got[0]["user"] == "u7"
    assert got[1]["answer"] == "the answer"


def test_a_failing_sink_never_fails_the_application(caplog: pytest.LogCaptureFixture) -> None:
    def broken(line: dict[str, Any]) -> None:
        raise OSError("disk full")

    rec = FeedbackRecorder(broken)
    with caplog.at_level(logging.WARNING, logger="rerank_kit.recorder"):
        for _ in range(3):
            rec.record("q", ["a"])
    assert rec.dropped == 3
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fsync": "sometimes"}, "fsync"),
        ({"max_bytes": 10}, "max_bytes"),
        ({"backups": 0}, "backups"),
        ({"id_keys": "doc_id"}, "id_keys"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeedbackRecorder(tmp_path / "log.jsonl", **kwargs)
    with pytest.raises(ValueError, match="folder"):
        FeedbackRecorder(tmp_path)


def test_bad_calls_are_named(tmp_path: Path) -> None:
    rec = FeedbackRecorder(tmp_path / "log.jsonl")
    with pytest.raises(ValueError, match="query"):
        rec.record(" ", ["a"])
    with pytest.raises(ValueError, match="2 scores for 1"):
        rec.record("q", ["a"], scores=[1.0, 2.0])
    with pytest.raises(ValueError, match="string"):
        rec.cited("r-1", "d1")
    with pytest.raises(ValueError, match="grade"):
        rec.rated("r-1", {"d1": -1})
    with pytest.raises(ValueError, match="record_id"):
        rec.clicked("", ["d1"])


def test_rotation_keeps_every_line_readable(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    rec = FeedbackRecorder(log, max_bytes=2048, backups=100, fsync="never")
    for n in range(60):
        rid = rec.record(f"query {n}", ["t" * 50], ids=[f"d{n}"])
        rec.cited(rid, [f"d{n}"])
    assert (tmp_path / "feedback.jsonl.1").exists()
    assert all(p.stat().st_size <= 2048 for p in tmp_path.glob("feedback.jsonl*"))
    records, report = load_feedback(log)
    assert [r["query"] for r in records] == [f"query {n}" for n in range(60)]
    assert report["files"] > 2 and report["orphan_events"] == 0
    assert all(r["cited"] == r["shown"] for r in records)


def test_torn_line_is_skipped_counted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "feedback.jsonl"
    rec = FeedbackRecorder(log)
    rec.record("first", ["a"], ids=["a"])
    with log.open("ab") as fh:  # what a writer killed half-way through a line leaves
        fh.write(b'{"id": "r-torn", "query": "half a li')
    rec.record("second", ["b"], ids=["b"])  # ends the torn line first: it is not swallowed
    with log.open("ab") as fh:
        fh.write(b'{"record": "r-torn", "ev')
    with caplog.at_level(logging.WARNING):
        records, report = load_feedback(log)
    assert [r["query"] for r in records] == ["first", "second"]
    assert report["torn"] == 2 and report["records"] == 2
    assert len([r for r in caplog.records if "torn" in r.getMessage()]) == 1


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_a_writer_killed_mid_write_leaves_a_readable_log(tmp_path: Path, how: int) -> None:
    log = tmp_path / "feedback.jsonl"
    proc = writer(log, "k", -1, size=200_000)  # 200 kB lines: kills land inside writes too
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(how)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    size = log.stat().st_size
    with log.open("r+b") as fh:  # and the worst case: the last line cut in the middle
        fh.truncate(size - 1000)
    records, report = load_feedback(log)
    assert report["torn"] == 1 and report["records"] >= 5
    queries = [r["query"] for r in records]
    assert queries == [f"k {n}" for n in range(len(queries))]  # in order, none lost before
    assert all(r["cited"] == [f"k {n}".replace(" ", "-")] for n, r in enumerate(records[:-1]))
    FeedbackRecorder(log).record("after the crash", ["a"])
    records2, report2 = load_feedback(log)
    assert records2[-1]["query"] == "after the crash" and report2["torn"] == 1


def test_two_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    log = tmp_path / "feedback.jsonl"
    procs = [writer(log, tag, 300, size=500, max_bytes=200_000) for tag in ("a", "b")]
    for proc in procs:
        proc.wait(timeout=120)
        assert proc.returncode == 0
    records, report = load_feedback(log)
    assert report["torn"] == 0 and report["orphan_events"] == 0
    assert report["files"] > 1  # both rotated the file while the other wrote
    for tag in ("a", "b"):
        mine = [r for r in records if r["query"].startswith(tag + " ")]
        assert [r["query"] for r in mine] == [f"{tag} {n}" for n in range(300)]
        assert all(r["cited"] == [r["shown"][0]] for r in mine)


def test_public_names() -> None:
    assert {"FeedbackRecorder", "find_citations"} <= set(rerank_kit.__all__)
    assert rerank_kit.FeedbackRecorder is FeedbackRecorder


def test_threads_sharing_one_recorder_lose_nothing(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    log = tmp_path / "feedback.jsonl"
    rec = FeedbackRecorder(log, fsync="never", max_bytes=4096, backups=1000)

    def work(n: int) -> None:
        rid = rec.record(f"q {n}", ["t" * 30], ids=[f"d{n}"])
        rec.cited(rid, [f"d{n}"])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(400)))
    records, report = load_feedback(log)
    assert rec.written == 800 and report["torn"] == 0 and report["orphan_events"] == 0
    assert sorted(r["query"] for r in records) == sorted(f"q {n}" for n in range(400))
    assert all(r["cited"] == r["shown"] for r in records)
