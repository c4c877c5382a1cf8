"""Reading a feedback log: torn lines skipped and counted, events joined to their records.

A log holds records (``{"query", "shown", ...}``, with an ``"id"`` when
``rerank_kit.recorder.FeedbackRecorder`` wrote them) and event lines (``{"record": ID,
"event": "cited" | "clicked" | "rated", ...}``). :func:`load_feedback` reads the file, and the
files it was rotated into (``log.1`` ... oldest first), and folds each event into its record:
``cited`` and ``clicked`` ids are added to the record's lists, ``rated`` grades to its
``ratings`` (a later rating of a document replaces an earlier one). Records written by hand
(``cited``, ``clicked``, ``ratings`` inline, no id) pass through as they are.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["load_feedback", "log_files"]

logger = logging.getLogger(__name__)

_ROTATED = re.compile(r"\.(\d+)$")


def log_files(path: str | Path) -> list[Path]:
    """The log and the files it was rotated into, oldest first (``log.3``, ``log.2``, ...).

    Example:
        >>> [p.name for p in log_files("/nonexistent/feedback.jsonl")]
        ['feedback.jsonl']
    """
    p = Path(path)
    rotated: list[tuple[int, Path]] = []
    if p.parent.is_dir():
        for other in p.parent.glob(p.name + ".*"):
            match = _ROTATED.search(other.name)
            if match and other.name == f"{p.name}.{match.group(1)}":
                rotated.append((int(match.group(1)), other))
    return [other for _, other in sorted(rotated, reverse=True)] + [p]


def _lines(path: Path, report: Counter[str], first_bad: list[str]) -> list[dict[str, Any]]:
    """The JSON objects of one file; a line that is not JSON (torn) is skipped and counted."""
    out: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            report["lines"] += 1
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (ValueError, RecursionError):  # a torn write, bad UTF-8, garbage
                report["torn"] += 1
                if not first_bad:
                    first_bad.append(f"{path}:{lineno}")
                continue
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object per line")
            out.append(obj)
    return out


def _fold(record: dict[str, Any], event: dict[str, Any], where: str) -> None:
    kind = event.get("event")
    if kind in ("cited", "clicked"):
        ids = event.get("ids") or []
        if isinstance(ids, str) or not isinstance(ids, list):
            raise ValueError(f"{where}: 'ids' of a {kind} event must be a list of document ids")
        have = record.setdefault(kind, [])
        have.extend(str(i) for i in ids if str(i) not in have)
    elif kind == "rated":
        ratings = event.get("ratings") or {}
        if not isinstance(ratings, dict):
            raise ValueError(f"{where}: 'ratings' of a rated event must be an object")
        record.setdefault("ratings", {}).update(ratings)
    else:
        raise ValueError(f"{where}: unknown event {kind!r} (cited, clicked or rated)")


def load_feedback(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Read a feedback log (and its rotated files): the joined records, and what was read.

    Returns:
        The records in the order written, each with its events folded in (new dicts), and
        a report: ``files``, ``lines``, ``records``, ``events``, ``torn`` (lines that are not
        JSON: skipped, logged once), ``orphan_events`` (events whose record is in no file
        read: dropped).

    Raises:
        ValueError: A line that is JSON but not an object, or a malformed event (named by
            file and line).

    Example:
        >>> records, report = load_feedback("feedback.jsonl")  # doctest: +SKIP
        >>> report["torn"]  # doctest: +SKIP
        1
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"feedback log {p} does not exist")
    report: Counter[str] = Counter(files=0, lines=0, records=0, events=0, torn=0)
    report["orphan_events"] = 0
    first_bad: list[str] = []
    records: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for file in log_files(p):
        if not file.exists():
            continue
        report["files"] += 1
        for n, obj in enumerate(_lines(file, report, first_bad), start=1):
            if "event" in obj or "record" in obj:
                report["events"] += 1
                target = by_id.get(str(obj.get("record")))
                if target is None:
                    report["orphan_events"] += 1
                    continue
                _fold(target, obj, f"{file}: event {n}")
                continue
            record = dict(obj)
            report["records"] += 1
            records.append(record)
            if "id" in record:
                by_id[str(record["id"])] = record
    if report["torn"]:  # once per read, however many
        logger.warning(
            "feedback log %s: skipped %d torn line(s) that are not JSON (first at %s)",
            p,
            report["torn"],
            first_bad[0],
        )
    if report["orphan_events"]:
        logger.info("feedback log %s: %d event(s) without their record", p, report["orphan_events"])
    return records, dict(report)
