"""Length-sorted, token-budgeted batches: each call pads only to the longest of its neighbours."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["length_batches", "run_bucketed"]


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
