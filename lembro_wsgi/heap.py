"""A binary min-heap of entries that know their own position.

Each item carries ``hkey`` (the key it is ordered by, any comparable value) and ``index`` (its slot
in the heap), so an item can be removed or re-keyed in O(log n) without a
search. The store keeps its sessions in such heaps, ordered by (expiry, write order)::

    heap = KeyedHeap()
    heap.push(entry)            # entry.hkey must be set
    heap.top()                  # the entry with the smallest hkey
    heap.rekey(entry, (42.0, 7))  # move it to its new place
    heap.remove(entry)
"""

from __future__ import annotations

from typing import Any


class KeyedHeap:
    """Min-heap of objects with ``hkey`` and ``index`` attributes."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        #: The heap array, smallest key first; read it, never change it.
        self.items: list[Any] = []

    def __len__(self) -> int:
        return len(self.items)

    def top(self) -> Any | None:
        """The item with the smallest key, or ``None`` when empty."""
        return self.items[0] if self.items else None

    def push(self, item: Any) -> None:
        items = self.items
        item.index = len(items)
        items.append(item)
        self._up(item.index)

    def remove(self, item: Any) -> None:
        """Take ``item`` out of the heap; it must be in it."""
        items = self.items
        last = items.pop()
        if last is not item:
            pos = item.index
            items[pos] = last
            last.index = pos
            self._down(pos)
            self._up(last.index)
        item.index = -1

    def rekey(self, item: Any, hkey: Any) -> None:
        """Give ``item`` a new key and restore the heap order."""
        old, item.hkey = item.hkey, hkey
        if hkey < old:
            self._up(item.index)
        else:
            self._down(item.index)

    def clear(self) -> None:
        for item in self.items:
            item.index = -1
        self.items = []

    def _up(self, pos: int) -> None:
        items = self.items
        item = items[pos]
        key = item.hkey
        while pos:
            parent_pos = (pos - 1) >> 1
            parent = items[parent_pos]
            if key >= parent.hkey:
                break
            items[pos] = parent
            parent.index = pos
            pos = parent_pos
        items[pos] = item
        item.index = pos

    def _down(self, pos: int) -> None:
        items = self.items
        size = len(items)
        item = items[pos]
        key = item.hkey
        while True:
            child_pos = 2 * pos + 1
            if child_pos >= size:
                break
            child = items[child_pos]
            right_pos = child_pos + 1
            if right_pos < size and items[right_pos].hkey < child.hkey:
                child_pos = right_pos
                child = items[right_pos]
            if key <= child.hkey:
                break
            items[pos] = child
            child.index = pos
            pos = child_pos
        items[pos] = item
        item.index = pos
