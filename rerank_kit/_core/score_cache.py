"""The score cache: a bounded, thread-safe LRU of pair scores, optionally kept in a JSON-lines file."""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from rerank_kit._core.lru import LRU

__all__ = ["FILE_CACHE_SIZE", "MAX_LINE_BYTES", "ScoreCache", "make_score_cache", "read_line"]

logger = logging.getLogger(__name__)

#: Longest line read from (or written to) a cache file, in bytes: a longer line is skipped
#: unread (it is never held in memory whole). 32 MiB holds a pair of 10^6-character texts
#: in any script (``json.dumps`` writes at most 12 bytes per character).
MAX_LINE_BYTES = 32 * 2**20
_CHUNK = 2**20  # bytes read at a time while skipping an over-long line
_BATCH = 10_000  # entries handed to the LRU at a time while loading
_SURROGATE = re.compile("[\ud800-\udfff]")
_DECODER = json.JSONDecoder()

Entry = tuple[tuple[str, str, str], tuple[float, bool]]


class ScoreCache:
    """A bounded, thread-safe LRU of scores keyed by model, query and passage text.

    Opt-in for rerankers whose score depends on the (query, passage) pair (cross-encoders):
    repeated questions (chat applications, evaluation sweeps, tuning runs) are scored once.
    Pass ``score_cache=N`` to a reranker for a private cache of ``N`` pairs, or one
    ``ScoreCache`` to several rerankers to share it (the key includes the reranker's name).
    Each entry costs about the size of its query and passage text plus ~200 bytes.

    With ``path``, the cache also lives on disk: entries already in the file (JSON lines of
    ``[model, query, passage, score, truncated]``) are loaded on construction, and every new
    entry is appended as soon as it is scored, so an interrupted evaluation or tuning run keeps
    what it paid for and the next run scores only what is new. The file is keyed by the
    reranker's ``name`` (for ``load_reranker`` specs, the spec), holds the passage text in clear
    and only grows (``clear()`` empties memory, not the file: delete the file to start over).
    Every line read is checked (``read_line``: exact shape and types, a finite score, at most
    ``MAX_LINE_BYTES``, bounded nesting); a bad line (a run killed mid-write, a wrong type, a
    NaN score) is skipped, never the file, with one warning per load that counts them. A write
    that fails (read-only or full disk) never fails the call: see ``put``.

    Args:
        max_size: Pairs kept in memory (least recently used dropped first); must be >= 1.
        path: Optional JSON-lines file to load from and append to.

    Example:
        >>> cache = ScoreCache(1000)
        >>> cache.put("m", "q", ["a"], [0.5], [False])
        >>> cache.get("m", "q", ["a", "b"])
        [(0.5, False), None]
        >>> cache.info()
        {'size': 1, 'max_size': 1000, 'hits': 1, 'misses': 1}
    """

    def __init__(self, max_size: int, path: str | os.PathLike[str] | None = None) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"ScoreCache max_size must be an int >= 1, got {max_size!r}")
        self.max_size = max_size
        self._lru: LRU[tuple[str, str, str], tuple[float, bool]] = LRU(max_size)
        self.path: Path | None = None if path is None else Path(path)
        self._newline_first = False
        self._unsaved: list[str] = []  # JSON lines scored but not yet in the file
        self._write_failed = False
        if self.path is not None:
            self._load(self.path)

    def _load(self, path: Path) -> None:
        if path.is_dir():
            raise ValueError(f"ScoreCache path {path} is a folder; give a file name")
        if not path.exists():
            return
        entries: list[Entry] = []
        skipped, first_bad = 0, ""
        with path.open("rb") as fh:
            for number, line in enumerate(_lines(fh), start=1):
                if line is None:
                    entry, why = None, f"longer than {MAX_LINE_BYTES} bytes"
                else:
                    entry, why = read_line(line)
                if entry is not None:
                    entries.append(entry)
                    if len(entries) >= _BATCH:
                        self._lru.put_many(entries)
                        entries.clear()
                elif why:  # a blank line has no reason: passed over silently
                    skipped += 1
                    first_bad = first_bad or f"line {number}: {why}"
            self._newline_first = _ends_without_newline(fh)
        self._lru.put_many(entries)
        if skipped:  # one warning per file load, however many lines are bad
            logger.warning(
                "score cache %s: skipped %d unreadable line(s) (first at %s)",
                path,
                skipped,
                first_bad,
            )
        logger.info("score cache %s: loaded %d entries", path, len(self._lru))

    def get(self, model: str, query: str, texts: Sequence[str]) -> list[tuple[float, bool] | None]:
        """The cached ``(score, truncated)`` of each text, or ``None`` where there is none."""
        return self._lru.lookup((model, query, text) for text in texts)

    def put(
        self,
        model: str,
        query: str,
        texts: Sequence[str],
        scores: Sequence[float],
        truncated: Sequence[bool],
    ) -> None:
        """Store the scores and truncation flags of ``texts`` for ``query``.

        Only finite scores are kept (a pair with a NaN or infinite score is scored again next
        time). With a ``path``, the new entries are appended to the file; a write that fails
        (a read-only or full disk) is tried once more, then logged (a warning the first time)
        and the entries stay in memory, marked unsaved: they are written with the next write
        that succeeds, or by ``flush()``. Nothing raises here for a failed write.
        """
        entries: list[Entry] = []
        for text, score, cut in zip(texts, scores, truncated, strict=True):
            value = _finite(score)
            if value is not None:
                entries.append(((model, query, text), (value, bool(cut))))
        self._lru.put_many(entries)
        if self.path is None or not entries:
            return
        lines = [line for line in map(_dump, entries) if line is not None]
        with self._lru.lock:  # one writer at a time keeps lines whole
            self._unsaved.extend(lines)
            if len(self._unsaved) > self.max_size:  # bounded, like the memory it mirrors
                dropped = len(self._unsaved) - self.max_size
                del self._unsaved[:dropped]
                logger.warning(
                    "score cache %s: %d unsaved entries dropped (the file is still not "
                    "writable; at most max_size=%d are kept)",
                    self.path,
                    dropped,
                    self.max_size,
                )
            self._write()

    def flush(self) -> bool:
        """Write the entries a failed write left unsaved; True when the file has them all.

        Example:
            >>> ScoreCache(10).flush()  # no file: nothing to write
            True
        """
        with self._lru.lock:
            return self._write()

    @property
    def unsaved(self) -> int:
        """Entries scored but not yet in the file (a write failed; see ``put``)."""
        return len(self._unsaved)

    def _write(self) -> bool:
        """Append the unsaved lines (the lock is held): True on success (or nothing to do)."""
        if self.path is None or not self._unsaved:
            return True
        count = len(self._unsaved)
        data = (("\n" if self._newline_first else "") + "\n".join(self._unsaved) + "\n").encode()
        error: OSError | None = None
        for _ in range(2):  # the first try and one retry
            try:
                self._append(data)
            except OSError as exc:
                error = exc
                continue
            self._unsaved.clear()
            self._newline_first = False
            if self._write_failed:
                self._write_failed = False
                logger.warning("score cache %s: the file is writable again", self.path)
            return True
        level = logging.DEBUG if self._write_failed else logging.WARNING
        self._write_failed = True
        logger.log(
            level,
            "score cache %s: could not write %d entries (%s: %s); they stay in memory and are "
            "written with the next write that succeeds (or ScoreCache.flush())",
            self.path,
            count,
            type(error).__name__,
            error,
        )
        return False

    def _append(self, data: bytes) -> None:
        """One ``write`` of whole lines; a partial write (disk full) is rolled back."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab", buffering=0) as fh:
            start = os.fstat(fh.fileno()).st_size
            done = 0
            try:
                while done < len(data):
                    done += fh.write(data[done:]) or 0
            except OSError:
                if done and not self._roll_back(fh.fileno(), start + done, start):
                    self._newline_first = True  # the torn tail ends before the next line
                raise

    def _roll_back(self, fd: int, end: int, start: int) -> bool:
        """Cut a partial write off the file (unless another writer appended since)."""
        try:
            if os.fstat(fd).st_size == end:
                os.ftruncate(fd, start)
                return True
        except OSError:
            pass
        return False

    def info(self) -> dict[str, int]:
        """Entries, capacity, hits and misses (since the last clear)."""
        return self._lru.info()

    def clear(self) -> None:
        """Forget every entry held in memory and reset the counts (a ``path`` file is kept)."""
        self._lru.clear()


def read_line(line: bytes) -> tuple[Entry | None, str]:
    """One cache-file line as an entry, or ``(None, why)`` (``why`` is empty for a blank line).

    A line must be exactly ``[model, query, passage, score, truncated]``: three strings (no
    lone surrogates), a finite number within float range and a JSON ``true``/``false``.
    Nesting is bounded: a deeply nested line is refused, never a ``RecursionError``.

    Example:
        >>> read_line(b'["m", "q", "p", 0.5, false]')
        ((('m', 'q', 'p'), (0.5, False)), '')
        >>> read_line(b'["m", "q", "p", NaN, false]')[1]
        'the score is not a finite number'
    """
    text = line.strip()
    if not text:
        return None, ""
    if not text.startswith(b'["'):
        return None, "not a [model, query, passage, score, truncated] list"
    try:
        record = _DECODER.decode(text.decode("utf-8"))
    except RecursionError:
        return None, "nested too deeply"
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, an int of too many digits
        return None, "not valid JSON"
    if type(record) is not list or len(record) != 5:
        return None, "not a [model, query, passage, score, truncated] list"
    model, query, passage, score, cut = record
    if type(model) is not str or type(query) is not str or type(passage) is not str:
        return None, "model, query and passage must be strings"
    if (b"\\ud" in text or b"\\uD" in text) and (
        _SURROGATE.search(model) or _SURROGATE.search(query) or _SURROGATE.search(passage)
    ):  # strict UTF-8 refuses raw surrogate bytes: only an escape can spell one
        return None, "a lone surrogate in the text"
    value = _finite(score) if type(score) in (int, float) else None
    if value is None:
        return None, "the score is not a finite number"
    if type(cut) is not bool:
        return None, "truncated must be true or false"
    return ((model, query, passage), (value, cut)), ""


def _finite(score: Any) -> float | None:
    """``score`` as a finite float, or ``None`` (NaN, infinite, out of range, not a number)."""
    if isinstance(score, (bool, str, bytes)):
        return None
    try:
        value = float(score)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _dump(entry: Entry) -> str | None:
    """The file line of one entry (ASCII JSON), or ``None`` if it is over ``MAX_LINE_BYTES``."""
    (model, query, text), (score, cut) = entry
    line = json.dumps([model, query, text, score, cut])
    if len(line) >= MAX_LINE_BYTES:  # never write a line the reader would skip
        logger.debug("score cache: an entry of %d bytes is kept in memory only", len(line))
        return None
    return line


def _lines(fh: IO[bytes]) -> Iterator[bytes | None]:
    """The file's lines, ``None`` for one over ``MAX_LINE_BYTES`` (skipped in bounded chunks)."""
    limit = MAX_LINE_BYTES
    while True:
        line = fh.readline(limit + 1)
        if not line:
            return
        if line.endswith(b"\n") or len(line) <= limit:
            yield line
            continue
        while True:  # the rest of an over-long line, read and dropped a chunk at a time
            rest = fh.readline(_CHUNK)
            if not rest or rest.endswith(b"\n"):
                break
        yield None


def _ends_without_newline(fh: IO[bytes]) -> bool:
    """True if the file's last byte is not a newline (a torn last line)."""
    size = fh.seek(0, os.SEEK_END)
    if not size:
        return False
    fh.seek(size - 1)
    return fh.read(1) != b"\n"


#: Pairs kept in memory by a cache built from a file name (``score_cache="scores.jsonl"``).
FILE_CACHE_SIZE = 1_000_000


def make_score_cache(score_cache: Any) -> ScoreCache | None:
    """``score_cache`` as rerankers take it: ``0``/``None`` (off), a size, a file, a ``ScoreCache``.

    A file name (``str`` or path) gives a persistent ``ScoreCache(FILE_CACHE_SIZE, path=...)``.
    """
    if score_cache is None or isinstance(score_cache, ScoreCache):
        return score_cache
    if isinstance(score_cache, (str, os.PathLike)):
        return ScoreCache(FILE_CACHE_SIZE, path=score_cache)
    if isinstance(score_cache, bool) or not isinstance(score_cache, int) or score_cache < 0:
        raise ValueError(
            f"score_cache must be an int >= 0 (pairs kept; 0 = off), a file name or a "
            f"ScoreCache, got {score_cache!r}"
        )
    return ScoreCache(score_cache) if score_cache else None
