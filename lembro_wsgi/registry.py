"""One LembroStore per process and configuration, shared by every manager that asks.

Beaker builds a namespace manager per session id on every request; they all
find their store here, keyed by a name and the parsed options, so ``'4M'`` and
``4194304`` share a store, two apps with different caps never do, and Beaker
sessions (``'sessions'``) never share one with Beaker caches (``'caches'``)::

    store = store_for(interval=60, max_size='4M')   # the same object each call: made at first use
    get_store(max_size='4M')                        # found, never made: KeyError lists the stores there are
    store.stats()
    reset_stores()                                   # tests: close and forget them all
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .options import UNSET, Unset, parse_count, parse_seconds, parse_size
from .store import LembroStore

_stores: dict[tuple[Any, ...], LembroStore] = {}
_named: dict[str, LembroStore] = {}
#: The stores Beaker sessions and caches get by default, one per configuration of caps.
DEFAULT_NAMES = ("sessions", "caches")  # stores asked for by a store_name: one each, whatever the caps
_by_raw: dict[tuple[Any, ...], LembroStore] = {}  # options as given, so a request need not parse them again
_lock = threading.Lock()


def _fresh_lock_after_fork() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_after_fork)


def store_key(interval: float | str | None = 60, max_size: int | str = "1M",
              max_sessions: int | str | None = None, name: str = "sessions") -> tuple[str, float | None, int, int | None]:
    """The name and parsed options that pick a store; raises ValueError naming a bad option."""
    return (
        name,
        parse_seconds(interval, "interval", allow_none=True),
        parse_size(max_size, "max_size"),
        parse_count(max_sessions, "max_sessions"),
    )


def store_for(interval: float | str | None = 60, max_size: int | str = "1M",
              max_sessions: int | str | None = None, name: str = "sessions") -> LembroStore:
    """The store that Beaker configurations with these options use (``'sessions'`` or ``'caches'``), made now
    if none has been: for the backend, and for a stats page built before the first request. Another
    ``name`` is a ``store_name``'s one store (see ``named_store``)."""
    if name not in DEFAULT_NAMES:
        return named_store(name, interval, max_size, max_sessions)
    raw = (name, type(interval), interval, type(max_size), max_size, type(max_sessions), max_sessions)  # True != 1
    try:
        store = _by_raw.get(raw)
    except TypeError:  # an unhashable option: store_key below names it
        store = None
    if store is not None:
        return store
    key = store_key(interval, max_size, max_sessions, name)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = LembroStore(interval=key[1], max_size=key[2], max_sessions=key[3], name=name)
        _by_raw[raw] = store  # hashable: store_key has accepted every part
        return store


def get_store(interval: float | str | None | Unset = UNSET, max_size: int | str | Unset = UNSET,
              max_sessions: int | str | None | Unset = UNSET, name: str = "sessions") -> LembroStore:
    """Find, never make, the store called ``name`` (``'sessions'``, ``'caches'`` or a ``store_name``) whose
    options are those given (the others may be anything). ``KeyError`` lists the stores there are when
    none matches, and asks for more options when several do."""
    wanted = {option: value for option, value in (("interval", interval), ("max_size", max_size),
                                                  ("max_sessions", max_sessions)) if not isinstance(value, Unset)}
    _, seconds, size, count = store_key(
        60 if isinstance(interval, Unset) else interval, "1M" if isinstance(max_size, Unset) else max_size,
        None if isinstance(max_sessions, Unset) else max_sessions, name,
    )
    parsed = {"interval": seconds, "max_size": size, "max_sessions": count}
    with _lock:
        stores = [*_stores.values(), *_named.values()]
    found = [store for store in stores if store.name == name
             and all(getattr(store, option) == parsed[option] for option in wanted)]
    if len(found) == 1:
        return found[0]
    asked = ", ".join(f"{option}={value!r}" for option, value in wanted.items()) or "any options"
    if not found:
        there = "; ".join(_describe(store) for store in stores) or "none yet (Beaker makes them at first use)"
        raise KeyError(f"no {name!r} store with {asked}. Stores: {there}")
    raise KeyError(f"{len(found)} {name!r} stores match {asked}: give interval, max_size or max_sessions. "
                   f"Stores: {'; '.join(_describe(store) for store in found)}")


def _describe(store: LembroStore) -> str:
    return (f"{store.name!r} interval={store.interval!r} max_size={store.max_size!r} "
            f"max_sessions={store.max_sessions!r}")


def named_store(name: str, interval: float | str | None = 60, max_size: int | str = "1M",
                max_sessions: int | str | None = None) -> LembroStore:
    """The one store called ``name`` (a ``store_name`` shared on purpose), made with these options by the
    first configuration that uses it; a later one must agree (two caps cannot be one store: ValueError
    says which differs)."""
    if name in DEFAULT_NAMES:
        raise ValueError(f"store_name: {name!r} is the name of the default store, which each configuration "
                         f"of its own caps gets: give a shared store another name")
    _, seconds, size, count = store_key(interval, max_size, max_sessions, name)
    with _lock:
        store = _named.get(name)
        if store is None:
            store = _named[name] = LembroStore(interval=seconds, max_size=size, max_sessions=count, name=name)
            return store
    for option, wanted in zip(("interval", "max_size", "max_sessions"), (seconds, size, count)):
        if getattr(store, option) != wanted:
            raise ValueError(f"store_name: {name!r} is one store, made with {option}={getattr(store, option)!r}; "
                             f"another configuration of it asks for {option}={wanted!r}: give them the same caps")
    return store


def reset_stores() -> None:
    """Close and forget every registered store (for tests and reloads)."""
    with _lock:
        stores = [*_stores.values(), *_named.values()]
        _stores.clear()
        _by_raw.clear()
        _named.clear()
    for store in stores:
        store.close()
