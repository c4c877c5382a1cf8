"""A bounded, thread-safe least-recently-used map that counts hits and misses.

The score cache (pair scores) and the bi-encoder's passage-embedding cache both keep one.

Example:
    >>> lru = LRU(2)
    >>> lru.put("a", 1); lru.put("b", 2); lru.put("c", 3)
    >>> lru.lookup(["a", "c"])
    [None, 3]
    >>> lru.info()
    {'size': 2, 'max_size': 2, 'hits': 1, 'misses': 1}
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

__all__ = ["LRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``max_size`` entries; the least recently used goes first.

    Args:
        max_size: Entries kept (``0`` keeps none).
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.lock = threading.Lock()
        self._data: OrderedDict[K, V] = OrderedDict()
        self._hits = 0
        self._misses = 0

    def lookup(self, keys: Iterable[K]) -> list[V | None]:
        """Each key's value (``None`` where absent), counted as hits and misses."""
        out: list[V | None] = []
        with self.lock:
            for key in keys:
                value = self._data.get(key)
                if value is None:
                    self._misses += 1
                else:
                    self._hits += 1
                    self._data.move_to_end(key)
                out.append(value)
        return out

    def count_hits(self, n: int) -> None:
        """Count ``n`` more hits (repeats within one call, served by its first look-up)."""
        with self.lock:
            self._hits += n

    def peek(self, key: K) -> V | None:
        """The value of ``key`` without counting or touching its age."""
        with self.lock:
            return self._data.get(key)

    def put(self, key: K, value: V) -> None:
        """Store one entry (the newest), dropping the oldest beyond ``max_size``."""
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[K, V]]) -> None:
        """Store entries in order (the last is the newest), then drop the oldest."""
        with self.lock:
            for key, value in items:
                self._data[key] = value
                self._data.move_to_end(key)
            while len(self._data) > self.max_size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def info(self) -> dict[str, int]:
        """Entries, capacity, hits and misses (since the last clear)."""
        with self.lock:
            return {
                "size": len(self._data),
                "max_size": self.max_size,
                "hits": self._hits,
                "misses": self._misses,
            }

    def clear(self) -> None:
        """Forget every entry and reset the counts."""
        with self.lock:
            self._data.clear()
            self._hits = self._misses = 0
