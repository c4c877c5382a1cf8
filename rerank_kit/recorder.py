"""``FeedbackRecorder``: the running application writes its own feedback log.

One **record** per reranked query: the query, the ids shown in order with their scores, the
pipeline's identity and a timestamp, under a record id the application can keep. Later
**events** for the same record (``cited``, ``clicked``, ``rated``) are lines of their own that
name the record id; ``rerank_kit.feedback.read_feedback`` joins them back, and
``judgments_from_feedback`` / ``rerank-kit tune --feedback`` learn from the result::

    {"id": "r-5f0c...", "ts": 1765000000.1, "query": "reset password",
     "shown": ["d3", "d7"], "scores": [0.91, 0.40], "pipeline": "onnx:cross-encoder/..."}
    {"record": "r-5f0c...", "ts": 1765000002.7, "event": "cited", "ids": ["d7"]}
    {"record": "r-5f0c...", "ts": 1765000009.0, "event": "rated", "ratings": {"d3": 0}}

**Ids** come, per passage, from the first metadata key named in ``id_keys`` that the passage
has, else from its document id (LangChain ``Document.id``, a LlamaIndex node id), else from a
stable hash of its text (:func:`content_id`; ``rerank-kit tune --feedback`` maps such ids back
to a corpus by hashing the corpus texts). **Texts** are not written unless
``store_texts=True`` (privacy): the log holds ids, scores and queries.

**Writes** are append-only and crash-safe like the score cache's: each line is one ``write``
on a file opened with ``O_APPEND`` (several processes may append to one log: whole lines
never interleave), a torn last line (a writer killed mid-write, a full disk) is ended with a
newline before the next line so it never swallows it, and ``fsync`` is ``"always"`` (each
line reaches the disk before ``record`` returns), ``"interval"`` (at most every
``fsync_interval`` seconds) or ``"never"`` (the OS decides). A file over ``max_bytes`` is
rotated (``log.jsonl`` -> ``log.jsonl.1`` ... ``log.jsonl.<backups>``, the oldest dropped);
``read_feedback`` reads the rotated files too, oldest first. Recording never fails the
application: a write that fails is logged (a warning the first time) and counted in
``dropped``.

Example:
    >>> import tempfile, os
    >>> from rerank_kit.recorder import FeedbackRecorder
    >>> log = os.path.join(tempfile.mkdtemp(), "feedback.jsonl")
    >>> recorder = FeedbackRecorder(log, pipeline="bm25 >> cross-encoder")
    >>> rid = recorder.record("fan noise", ["Clean the fan.", "Batteries."], scores=[0.9, 0.1],
    ...                       ids=["d5", "d4"])
    >>> recorder.cited(rid, ["d5"])
    >>> from rerank_kit.feedback import read_feedback
    >>> [(r["shown"], r["cited"]) for r in read_feedback(log)]
    [(['d5', 'd4'], ['d5'])]
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from rerank_kit._core.lru import LRU

__all__ = ["FeedbackRecorder", "content_id"]

logger = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")
Sink = Callable[[dict[str, Any]], Any]
FsyncPolicy = Literal["always", "interval", "never"]
_EVENTS = ("cited", "clicked")


def content_id(text: str) -> str:
    """A stable id for a passage without one: ``"sha1:"`` and 16 hex digits of its text.

    Whitespace is normalised first, so re-chunking that only changes spaces keeps the id.

    Example:
        >>> content_id("Clean the  fan.") == content_id("Clean the fan.")
        True
        >>> content_id("Clean the fan.")
        'sha1:d1fe86e55f502b85'
    """
    norm = _SPACE.sub(" ", text).strip()
    return "sha1:" + hashlib.sha1(norm.encode("utf-8")).hexdigest()[:16]


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class FeedbackRecorder:
    """Append one record per reranked query, and later events, to a JSON-lines log.

    Args:
        sink: A file path (JSON lines, appended) or a callable that receives each line as a
            dict (a queue, a database writer, a test list). A callable that raises is logged
            once and counted in ``dropped``.
        id_keys: Metadata keys that hold a passage's id, tried in order (e.g.
            ``["doc_id", "source"]``), before the document id and the content hash.
        store_texts: Also write the passage texts and the answer text (off: privacy).
        pipeline: The pipeline or reranker identity written into each record (a spec, a
            config name); ``record(pipeline=...)`` overrides it per record.
        fsync: ``"always"``, ``"interval"`` or ``"never"`` (see the module docstring).
        fsync_interval: Seconds between two fsyncs with ``fsync="interval"``.
        max_bytes: Rotate the file before a line would take it over this size (``None``:
            never rotate).
        backups: Rotated files kept (``log.1`` ... ``log.<backups>``).
        keep_records: Record ids (and their shown ids) kept in memory, for ``shown_ids``.

    Raises:
        ValueError: On a bad setting or a path that is a folder.
    """

    def __init__(
        self,
        sink: str | os.PathLike[str] | Sink,
        *,
        id_keys: Sequence[str] = (),
        store_texts: bool = False,
        pipeline: str | None = None,
        fsync: FsyncPolicy = "always",
        fsync_interval: float = 1.0,
        max_bytes: int | None = 64 * 2**20,
        backups: int = 5,
        keep_records: int = 10_000,
    ) -> None:
        if isinstance(id_keys, str):
            raise ValueError(f"id_keys must be a list of metadata keys, got the string {id_keys!r}")
        if fsync not in ("always", "interval", "never"):
            raise ValueError(f"fsync must be 'always', 'interval' or 'never', got {fsync!r}")
        if max_bytes is not None and (isinstance(max_bytes, bool) or max_bytes < 1024):
            raise ValueError(f"max_bytes must be an int >= 1024 or None, got {max_bytes!r}")
        if isinstance(backups, bool) or not isinstance(backups, int) or backups < 1:
            raise ValueError(f"backups must be an int >= 1, got {backups!r}")
        self.path: Path | None = None
        self._sink: Sink | None = None
        if callable(sink):
            self._sink = sink
        elif isinstance(sink, (str, os.PathLike)):
            self.path = Path(sink)
            if self.path.is_dir():
                raise ValueError(f"FeedbackRecorder path {self.path} is a folder; give a file")
        else:
            raise ValueError(f"sink must be a file path or a callable, got {type(sink).__name__}")
        self.id_keys = tuple(id_keys)
        self.store_texts = bool(store_texts)
        self.pipeline = pipeline
        self.fsync: FsyncPolicy = fsync
        self.fsync_interval = float(fsync_interval)
        self.max_bytes = max_bytes
        self.backups = backups
        self.dropped = 0
        self.written = 0
        self._failed = False
        self._last_sync = 0.0
        self._lock = threading.Lock()
        self._shown: LRU[str, tuple[str, ...]] = LRU(max(1, keep_records))

    # --- ids -------------------------------------------------------------------------------

    def ids_for(
        self,
        texts: Sequence[str],
        *,
        ids: Sequence[str | None] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Each passage's id: a named metadata key, else its document id, else a content hash.

        Example:
            >>> rec = FeedbackRecorder(lambda line: None, id_keys=["doc_id"])
            >>> rec.ids_for(["a", "b", "c"], ids=[None, "x", "y"], metadata=[{}, {}, {"doc_id": 7}])
            ['sha1:86f7e437faa5a7fc', 'x', '7']
        """
        out: list[str] = []
        for i, text in enumerate(texts):
            meta = metadata[i] if metadata is not None and i < len(metadata) else None
            found: Any = None
            for key in self.id_keys:
                if meta is not None and meta.get(key) not in (None, ""):
                    found = meta[key]
                    break
            if found is None and ids is not None and i < len(ids) and ids[i] not in (None, ""):
                found = ids[i]
            out.append(str(found) if found is not None else content_id(str(text)))
        return out

    def shown_ids(self, record_id: str) -> list[str] | None:
        """The ids a recent record showed (``None``: not one of the last ``keep_records``)."""
        shown = self._shown.lookup([record_id])[0]
        return None if shown is None else list(shown)

    # --- records and events ----------------------------------------------------------------

    def record(
        self,
        query: str,
        texts: Sequence[str],
        *,
        scores: Sequence[float | None] | None = None,
        ids: Sequence[str | None] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        pipeline: str | None = None,
        record_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Log the passages shown for ``query`` (in the order shown); returns the record id.

        Args:
            query: The query they were reranked for.
            texts: The passages shown, best first (used for content-hash ids, and written
                only with ``store_texts=True``).
            scores: Their scores (non-finite ones are written as ``null``).
            ids: Their document ids (``None`` where a passage has none).
            metadata: Their metadata (for ``id_keys``).
            pipeline: The pipeline identity, instead of the recorder's.
            record_id: Use this id instead of a new one (an id the application already has).
            extra: More JSON fields for the record (e.g. a user or session id).

        Raises:
            ValueError: On an empty query, or ``scores`` of another length than ``texts``.
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError("FeedbackRecorder.record: query must be a non-empty string")
        texts = [str(t) for t in texts]
        if scores is not None and len(scores) != len(texts):
            raise ValueError(
                f"FeedbackRecorder.record: {len(scores)} scores for {len(texts)} passages"
            )
        shown = self.ids_for(texts, ids=ids, metadata=metadata)
        rid = record_id or f"r-{uuid.uuid4().hex}"
        line: dict[str, Any] = {"id": rid, "ts": round(time.time(), 3), "query": query}
        line["shown"] = shown
        if scores is not None:
            line["scores"] = [_score(s) for s in scores]
        if pipeline or self.pipeline:
            line["pipeline"] = pipeline or self.pipeline
        if self.store_texts:
            line["texts"] = texts
        if extra:
            line.update({k: v for k, v in extra.items() if k not in line})
        self._shown.put_many([(rid, tuple(shown))])
        self._emit(line)
        return rid

    def record_answer(
        self,
        query: str,
        texts: Sequence[str],
        answer: str | None,
        *,
        scores: Sequence[float | None] | None = None,
        ids: Sequence[str | None] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        pipeline: str | None = None,
        record_id: str | None = None,
    ) -> tuple[str, list[str]]:
        """Log what was shown for ``query`` and which of it ``answer`` cited, in one call.

        The citations are :func:`rerank_kit.citations.find_citations` of the answer against
        the passages (explicit markers first, else lexical overlap); a ``cited`` event is
        written when the answer cites any. What the adapters call.

        Returns:
            The record id and the cited ids (in the order shown).

        Example:
            >>> got = []
            >>> rid, cited = FeedbackRecorder(got.append).record_answer(
            ...     "loud fan", ["Clean the fan vents.", "Charge below 80%."], "Clean it [1].",
            ...     ids=["d5", "d4"])
            >>> cited, [line.get("event") for line in got]
            (['d5'], [None, 'cited'])
        """
        from rerank_kit.citations import find_citations

        rid = self.record(
            query,
            texts,
            scores=scores,
            ids=ids,
            metadata=metadata,
            pipeline=pipeline,
            record_id=record_id,
        )
        shown = self.ids_for([str(t) for t in texts], ids=ids, metadata=metadata)
        if not answer:
            return rid, []
        cited = [shown[i] for i in find_citations(answer, [str(t) for t in texts], ids=shown)]
        if cited:
            self.cited(rid, cited, answer=answer)
        return rid, cited

    def cite_answer(
        self, record_id: str, answer: str, texts: Sequence[str], ids: Sequence[str]
    ) -> list[str]:
        """Find which of a record's passages ``answer`` cited, and log them (the ids).

        For an answer that arrives after ``record`` (an agent's final message).
        """
        from rerank_kit.citations import find_citations

        if not answer:
            return []
        cited = [ids[i] for i in find_citations(answer, [str(t) for t in texts], ids=list(ids))]
        if cited:
            self.cited(record_id, cited, answer=answer)
        return cited

    def cited(self, record_id: str, ids: Sequence[str], *, answer: str | None = None) -> None:
        """Log that the answer cited these passages of the record.

        ``answer`` (the answer's text) is written only with ``store_texts=True``.
        """
        extra = {"answer": answer} if answer is not None and self.store_texts else {}
        self._event(record_id, "cited", ids, extra)

    def clicked(self, record_id: str, ids: Sequence[str]) -> None:
        """Log that the user clicked (opened, copied) these passages of the record."""
        self._event(record_id, "clicked", ids, {})

    def rated(self, record_id: str, ratings: Mapping[str, int]) -> None:
        """Log explicit grades (document id -> grade, 0 = not relevant): thumbs up/down.

        Example:
            >>> got = []
            >>> FeedbackRecorder(got.append).rated("r-1", {"d3": 0, "d7": 2})
            >>> got[0]["event"], got[0]["ratings"]
            ('rated', {'d3': 0, 'd7': 2})
        """
        checked: dict[str, int] = {}
        for doc_id, grade in ratings.items():
            if isinstance(grade, bool) or not isinstance(grade, int) or grade < 0:
                raise ValueError(f"rating of {doc_id!r} must be an int grade >= 0, got {grade!r}")
            checked[str(doc_id)] = grade
        self._check_record_id(record_id)
        line = {"record": record_id, "ts": round(time.time(), 3), "event": "rated"}
        self._emit({**line, "ratings": checked})

    def _event(self, record_id: str, kind: str, ids: Sequence[str], extra: dict[str, Any]) -> None:
        if isinstance(ids, str):
            raise ValueError(f"{kind}: ids must be a list of document ids, got the string {ids!r}")
        self._check_record_id(record_id)
        line = {"record": record_id, "ts": round(time.time(), 3), "event": kind}
        line["ids"] = [str(i) for i in ids]
        line.update(extra)
        self._emit(line)

    @staticmethod
    def _check_record_id(record_id: str) -> None:
        if not isinstance(record_id, str) or not record_id:
            raise ValueError(f"record_id must be the id record() returned, got {record_id!r}")

    # --- writing ---------------------------------------------------------------------------

    def _emit(self, line: dict[str, Any]) -> None:
        """Hand one line to the sink; never raises (a failure is logged and counted).

        One line at a time (a lock): the sink is called, or the file appended, by one thread
        at a time, and the counts stay exact.
        """
        with self._lock:
            try:
                if self._sink is not None:
                    self._sink(dict(line))
                else:
                    self._append((json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8"))
            except Exception as exc:  # recording must never fail the application
                self.dropped += 1
                level = logging.DEBUG if self._failed else logging.WARNING
                self._failed = True
                logger.log(
                    level,
                    "feedback recorder %s: could not write a line (%s: %s); %d dropped so far",
                    self.path or "sink",
                    type(exc).__name__,
                    exc,
                    self.dropped,
                )
                return
            self.written += 1

    def _append(self, data: bytes) -> None:
        """One ``write`` of one whole line on an ``O_APPEND`` descriptor (the lock is held)."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.max_bytes is not None:
            self._maybe_rotate(len(data))
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and _last_byte(fd, size) != b"\n":  # a torn last line: end it first
                data = b"\n" + data
            done = os.write(fd, data)
            while done < len(data):  # a short write (disk nearly full): the rest, in order
                done += os.write(fd, data[done:])
            now = time.monotonic()
            if self.fsync == "always" or (
                self.fsync == "interval" and now - self._last_sync >= self.fsync_interval
            ):
                os.fsync(fd)
                self._last_sync = now
        finally:
            os.close(fd)

    def _maybe_rotate(self, incoming: int) -> None:
        """Rotate when the next line would pass ``max_bytes``.

        Under a lock file, so that two processes never rotate the same file twice.
        """
        assert self.path is not None and self.max_bytes is not None
        try:
            if self.path.stat().st_size + incoming <= self.max_bytes:
                return
        except FileNotFoundError:
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            _lock(fd)
            try:  # another process may have rotated while this one waited
                if self.path.stat().st_size + incoming <= self.max_bytes:
                    return
            except FileNotFoundError:
                return
            for n in range(self.backups, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{n}")
                newer = self.path if n == 1 else self.path.with_name(f"{self.path.name}.{n - 1}")
                if newer.exists():
                    os.replace(newer, older)
            logger.info("feedback recorder %s: rotated (over %d bytes)", self.path, self.max_bytes)
        finally:
            os.close(fd)  # closing releases the lock


def _last_byte(fd: int, size: int) -> bytes:
    """The file's last byte (``pread`` where there is one; the append offset is unaffected)."""
    if hasattr(os, "pread"):
        return os.pread(fd, 1, size - 1)
    os.lseek(fd, size - 1, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, 1)  # pragma: no cover


def _lock(fd: int) -> None:
    """An exclusive advisory lock on ``fd`` (POSIX ``flock``; a no-op where there is none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: rotation is then single-process only
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
