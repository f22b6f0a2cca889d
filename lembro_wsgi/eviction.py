"""EvictionOrder: which stored session goes first when a cap is reached, and which have expired.

Four heaps, taken in this order: sessions never read back since written
(one-shot: crawlers, clients that never return) that expire, then one-shot
ones that never expire, then returning sessions that expire, then returning
ones that never expire. Within a heap, nearest expiry first (last use, for
those that never expire), and among equal times the earliest written first::

    order = EvictionOrder()
    order.place(entry)            # after its tier, lifetime or times changed
    order.coldest()               # the next session to evict, or None
    order.pop_expired(now, 128)   # up to 128 expired sessions, taken out
    order.remove(entry)

An entry carries ``warm`` (read back since written), ``timeout`` (``None``:
never expires), ``expires``, ``used``, ``seq`` (write order), and the order's
own ``heap``, ``hkey`` and ``index``. A touch or write only raises an entry's
rank, so it stays where it is and is moved once, when it reaches the top of
its heap: a touch costs O(1), not O(log n).
"""

from __future__ import annotations

import math
from typing import Any

from .heap import KeyedHeap

#: After going over a cap, the store comes down to this fraction of it (a chunk at a time).
LOW_WATER = 0.75

_INF = math.inf


def rank(entry: Any) -> tuple[float, int]:
    """An entry's place within its heap: expiry (last use, if it never expires), then write order."""
    return (entry.expires if entry.timeout is not None else entry.used, entry.seq)


class EvictionOrder:
    """The eviction order of a store's entries, and the earliest time one of them can expire (``due``)."""

    __slots__ = ("cold", "cold_eternal", "due", "heaps", "warm", "warm_eternal")

    def __init__(self) -> None:
        self.cold, self.cold_eternal = KeyedHeap(), KeyedHeap()
        self.warm, self.warm_eternal = KeyedHeap(), KeyedHeap()
        #: Eviction order: one-shot before returning, expiring before eternal.
        self.heaps = (self.cold, self.cold_eternal, self.warm, self.warm_eternal)
        #: No entry can have expired before this time (it may be earlier than the true first expiry).
        self.due = _INF

    def returning(self) -> int:
        """How many entries are in the returning tier."""
        return len(self.warm) + len(self.warm_eternal)

    def place(self, entry: Any) -> None:
        """Put ``entry`` in the heap its tier and lifetime call for; a key is only ever lowered here."""
        heap = self.heaps[2 * entry.warm + (entry.timeout is None)]
        key = (entry.expires if entry.timeout is not None else entry.used, entry.seq)  # rank(entry), uncalled
        if entry.heap is not heap:
            if entry.heap is not None:
                entry.heap.remove(entry)
            entry.hkey = key
            entry.heap = heap
            heap.push(entry)
        elif key < entry.hkey:
            heap.rekey(entry, key)
        else:
            return
        if key[0] < self.due and entry.timeout is not None:
            self.due = key[0]

    def remove(self, entry: Any) -> None:
        entry.heap.remove(entry)
        entry.heap = None

    def clear(self) -> None:
        for heap in self.heaps:
            heap.clear()
        self.due = _INF

    def coldest(self) -> Any | None:
        """The entry to evict next, or ``None`` when there is none."""
        for heap in self.heaps:
            if heap.items:
                return self._settle(heap)
        return None

    def pop_expired(self, now: float, limit: int) -> list[Any]:
        """Take out up to ``limit`` entries expired at ``now``, one-shot first, nearest expiry first in each tier.

        When fewer than ``limit`` are found, none is left, and ``due`` becomes the earliest expiry left.
        """
        if now < self.due:
            return []
        found: list[Any] = []
        for heap in (self.cold, self.warm):
            items = heap.items
            while items and items[0].hkey[0] <= now and len(found) < limit:
                top = self._settle(heap)
                if top is None or top.expires > now:
                    break
                heap.remove(top)
                top.heap = None
                found.append(top)
        if len(found) < limit:
            cold, warm = self.cold.items, self.warm.items
            self.due = min(cold[0].hkey[0] if cold else _INF, warm[0].hkey[0] if warm else _INF)
        return found

    @staticmethod
    def _settle(heap: KeyedHeap) -> Any | None:
        """The heap's true minimum, after moving down entries whose key lags behind their rank."""
        entry = heap.top()
        while entry is not None and entry.hkey < rank(entry):
            heap.rekey(entry, rank(entry))
            entry = heap.top()
        return entry
