"""Length-sorted, token-budgeted batches: each call pads only to the longest of its neighbours."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["length_batches", "padded_width", "run_bucketed", "run_fixed_shapes"]


def length_batches(
    order: Any, lengths: Any, batch_size: int, max_batch_tokens: int | None
) -> Iterator[Any]:
    """Split indices sorted by length into runs of neighbours.

    A run ends at ``batch_size`` rows, or earlier when its padded size (rows x longest) would
    pass ``max_batch_tokens``: long inputs go in small batches, short ones in big ones, and no
    row is padded beyond the longest of its neighbours.

    Example:
        >>> [list(b) for b in length_batches([0, 1, 2], [2, 3, 4], 2, None)]
        [[0, 1], [2]]
        >>> [list(b) for b in length_batches([0, 1, 2, 3], [10, 10, 200, 300], 4, 400)]
        [[0, 1], [2], [3]]
    """
    start, n = 0, len(order)
    while start < n:
        end = min(n, start + batch_size)
        if max_batch_tokens is not None:
            # grow while (count x longest) fits; always take at least one row
            stop = start + 1
            while stop < end and (stop + 1 - start) * int(lengths[order[stop]]) <= max_batch_tokens:
                stop += 1
            end = stop
        yield order[start:end]
        start = end


def run_bucketed(
    run: Any,
    encodings: Sequence[Any],
    inputs: Sequence[str],
    pad_id: int,
    batch_size: int,
    max_batch_tokens: int | None,
) -> Any:
    """Run tokenized inputs in length-sorted, token-budgeted batches; rows in input order.

    ``encodings`` are ``tokenizers`` encodings (unpadded); ``inputs`` the graph's input names.
    Returns the first output as a 2-D float64 array, one row per encoding.
    """
    import numpy as np

    n = len(encodings)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
    order = np.argsort(lengths, kind="stable")
    rows_out: Any = None
    with_types = "token_type_ids" in inputs
    for rows in length_batches(order, lengths, batch_size, max_batch_tokens):
        width = int(lengths[rows[-1]])  # sorted: the last row is the longest
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64) if with_types else None
        for r, i in enumerate(rows):
            enc = encodings[i]
            k = len(enc.ids)
            ids[r, :k] = enc.ids
            mask[r, :k] = 1
            if types is not None:
                types[r, :k] = enc.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            feeds["token_type_ids"] = types
        out = np.asarray(run(feeds), dtype=np.float64).reshape(len(rows), -1)
        if rows_out is None:
            rows_out = np.empty((n, out.shape[1]), dtype=np.float64)
        rows_out[rows] = out
    return rows_out


def padded_width(length: int, step: int) -> int:
    """``length`` rounded up to a multiple of ``step``: the width a pair always runs at.

    Example:
        >>> [padded_width(k, 32) for k in (1, 32, 33, 200)]
        [32, 32, 64, 224]
    """
    return max(step, -(-int(length) // step) * step)


def run_fixed_shapes(
    run: Any,
    encodings: Sequence[Any],
    inputs: Sequence[str],
    pad_id: int,
    batch_size: int,
    max_batch_tokens: int | None,
    step: int,
    *,
    fixed_rows: bool = False,
) -> Any:
    """Run each pair padded to ``padded_width(its length, step)``, whatever its neighbours.

    Pairs of one width run together: at most ``batch_size`` rows and ``max_batch_tokens``
    padded tokens per call. A floating-point kernel's result for a row depends on the shapes it
    runs in (OpenVINO's bf16 kernels round an unpadded row differently from a padded one), not
    on the other rows' values, so a pair whose width is a function of its own length scores the
    same alone and in any batch. ``fixed_rows=True`` also fills every call up to its width's row
    count with copies of its last row, so the batch dimension is fixed too.

    Returns the first output as a 2-D float64 array, one row per encoding.

    Example:
        >>> import numpy as np
        >>> class E:
        ...     def __init__(self, n): self.ids, self.type_ids = [1] * n, [0] * n
        >>> shapes = []
        >>> def run(feeds):
        ...     shapes.append(feeds["input_ids"].shape)
        ...     return feeds["attention_mask"].sum(axis=1, keepdims=True)
        >>> run_fixed_shapes(run, [E(3), E(40), E(5)], ["input_ids"], 0, 8, None, 32)[:, 0]
        array([ 3., 40.,  5.])
        >>> shapes
        [(2, 32), (1, 64)]
    """
    import numpy as np

    n = len(encodings)
    widths = np.fromiter((padded_width(len(e.ids), step) for e in encodings), np.int64, count=n)
    with_types = "token_type_ids" in inputs
    rows_out: Any = None
    for width in sorted(set(widths.tolist())):
        members = np.flatnonzero(widths == width)
        per_call = batch_size
        if max_batch_tokens is not None:
            per_call = max(1, min(batch_size, max_batch_tokens // width))
        for start in range(0, len(members), per_call):
            rows = members[start : start + per_call]
            count = per_call if fixed_rows else len(rows)
            ids = np.full((count, width), pad_id, dtype=np.int64)
            mask = np.zeros((count, width), dtype=np.int64)
            types = np.zeros((count, width), dtype=np.int64) if with_types else None
            for r in range(count):
                enc = encodings[rows[min(r, len(rows) - 1)]]  # filler rows: the last row again
                k = len(enc.ids)
                ids[r, :k] = enc.ids
                mask[r, :k] = 1
                if types is not None:
                    types[r, :k] = enc.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask}
            if types is not None:
                feeds["token_type_ids"] = types
            out = np.asarray(run(feeds), dtype=np.float64).reshape(count, -1)[: len(rows)]
            if rows_out is None:
                rows_out = np.empty((n, out.shape[1]), dtype=np.float64)
            rows_out[rows] = out
    return rows_out
