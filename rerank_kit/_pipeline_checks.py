"""The checks a pipeline config passes when it is read: every field, by name, as ``ValueError``.

``PipelineConfig.from_dict`` and ``PipelineConfig.load`` call these before building anything,
so a bad file fails when it is loaded (naming the field), never at the first ``rerank``.

Example:
    >>> check_config({"reranker": "x:y", "top_n": "ten"})
    Traceback (most recent call last):
    ValueError: pipeline config field 'top_n' must be a positive int or null, got 'ten'
    >>> read_config_bytes(b"[" * 100_000, "p.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: p.json: not valid JSON (nested too deeply...)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from rerank_kit._core.assembly.order import ORDERS
from rerank_kit._core.checks import check_encodable
from rerank_kit._core.fusion import FUSION_METHODS

__all__ = ["FORMATS", "MAX_DEPTH", "MAX_FILE_BYTES", "check_config", "read_config_bytes"]

#: The file formats this version reads; ``PipelineConfig.to_dict`` writes the last one.
FORMATS = ("rerank-kit-pipeline/1", "rerank-kit-pipeline/2")
#: Largest ``depth`` (candidates retrieved and reranked per query) a config may ask for.
MAX_DEPTH = 100_000
#: Largest pipeline config file read.
MAX_FILE_BYTES = 8 * 2**20
#: Deepest nesting of lists and objects in a config (a valid one needs 4: boosts' values).
MAX_NESTING = 32


def _field(name: str, need: str, value: Any) -> ValueError:
    return ValueError(f"pipeline config field {name!r} must be {need}, got {value!r}")


def _is_number(value: Any) -> bool:
    """A finite int or float within float range (``True``/``False`` are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_nesting(data: Any) -> None:
    """Refuse lists/objects nested deeper than ``MAX_NESTING`` (iteratively: no recursion)."""
    stack: list[tuple[Any, int, str]] = [(data, 0, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_NESTING:
            raise ValueError(
                f"pipeline config is nested more than {MAX_NESTING} levels deep "
                f"(at {where.lstrip('.')})"
            )
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1, f"{where}.{k}") for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(value))


def _check_format(data: Mapping[str, Any]) -> None:
    if "format" not in data:  # a dict built by hand; files always say it
        return
    fmt = data["format"]
    if fmt in FORMATS:
        return
    if isinstance(fmt, str) and fmt.startswith("rerank-kit-pipeline/"):
        raise ValueError(
            f"pipeline config format {fmt!r} is not one this rerank-kit reads "
            f"({', '.join(FORMATS)}); a newer rerank-kit wrote it: upgrade rerank-kit"
        )
    raise _field("format", f"one of {', '.join(FORMATS)}", fmt)


def _check_text(data: Mapping[str, Any], name: str, *, optional: bool) -> None:
    if name not in data or (optional and data[name] is None):
        return
    value = data[name]
    if not isinstance(value, str) or not value.strip():
        raise _field(name, "a non-empty string" + (" or null" if optional else ""), value)
    check_encodable(value, f"pipeline config field {name!r}")


def _check_numbers(data: Mapping[str, Any]) -> None:
    """The numeric fields: type, finiteness and range, each named."""
    for name in ("fusion", "fusion_weight", "fusion_long"):
        value = data.get(name)
        if value is not None and not (_is_number(value) and 0.0 <= float(value) <= 1.0):
            raise _field(name, "the fusion weight, a number in [0, 1] or null", value)
    for name in ("dedupe", "diversity"):  # their ranges: Assembly.build, as for rerank()
        value = data.get(name)
        if value is not None and not _is_number(value):
            raise _field(name, "a finite number or null", value)
    value = data.get("score_threshold")
    if value is not None and not _is_number(value):
        raise _field("score_threshold", "a finite number or null", value)
    if "depth" in data:
        value = data["depth"]
        if not (_is_int(value) and 1 <= value <= MAX_DEPTH):
            raise _field("depth", f"an int from 1 to {MAX_DEPTH}", value)
    value = data.get("min_probability")
    if value is not None and not (_is_number(value) and 0.0 <= float(value) <= 1.0):
        raise _field("min_probability", "a probability in [0, 1] or null", value)
    value = data.get("expected_share")
    if value is not None and not (_is_number(value) and 0.0 < float(value) <= 1.0):
        raise _field("expected_share", "a share in (0, 1] or null", value)
    calibration = data.get("calibration")
    if calibration is not None and not isinstance(calibration, Mapping):
        raise _field(
            "calibration", "a calibration (an object, as rerank-kit calibrate writes)", calibration
        )
    for name, low in (
        ("top_n", 1),
        ("token_budget", 1),
        ("long_query_tokens", 0),
        ("min_n", 0),
    ):
        value = data.get(name)
        if value is not None and not (_is_int(value) and value >= low):
            need = "a positive int" if low else "an int >= 0"
            raise _field(name, f"{need} or null", value)


def check_config(data: Any) -> None:
    """Check a pipeline config's fields (as ``PipelineConfig.to_dict`` writes them).

    Raises:
        ValueError: Naming the field: a wrong type, a NaN or infinite number, a value out of
            range, an unknown ``format``, nesting deeper than ``MAX_NESTING``. (Unknown keys
            and the context-assembly details are checked by ``PipelineConfig.from_dict``.)
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"a pipeline config is a dict (a JSON object), got {type(data).__name__}")
    _check_nesting(data)
    for key in data:
        if not isinstance(key, str):
            raise ValueError(f"pipeline config keys must be strings, got {key!r}")
    _check_format(data)
    if "reranker" not in data:
        raise ValueError("pipeline config needs 'reranker', a load_reranker spec")
    _check_text(data, "reranker", optional=False)
    _check_text(data, "first_stage", optional=False)
    _check_text(data, "similarity_model", optional=True)
    if "fusion_method" in data and data["fusion_method"] not in FUSION_METHODS:
        raise _field("fusion_method", f"one of {', '.join(FUSION_METHODS)}", data["fusion_method"])
    if "order" in data and data["order"] not in ORDERS:
        raise _field("order", f"one of {', '.join(ORDERS)}", data["order"])
    boosts = data.get("boosts")
    if boosts is not None and not isinstance(boosts, (Mapping, list, tuple)):
        raise _field("boosts", "a dict, a list of dicts or null", boosts)
    _check_numbers(data)


def read_config_bytes(raw: bytes, where: str) -> dict[str, Any]:
    """A config file's bytes as a dict: UTF-8 JSON of an object, at most ``MAX_FILE_BYTES``.

    Raises:
        ValueError: Starting with ``where``: too large, not UTF-8, not JSON (nesting included:
            never a ``RecursionError``), not an object.
    """
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"{where}: larger than {MAX_FILE_BYTES} bytes; not a pipeline config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg})") from exc
    except RecursionError:
        raise ValueError(f"{where}: not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an int of more digits than Python converts
        raise ValueError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object")
    return data
