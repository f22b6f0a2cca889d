"""LembroStore: a bounded, periodically purged, thread-safe in-memory store.

It keeps pickled session data per id (bytes and ASCII str values as they
are: they cannot change, so they need no copy), drops expired sessions every
``interval`` seconds (and on access), and caps total memory::

    store = LembroStore(interval=60, max_size='4M', timeout=1800)
    store.set('sid', {'user': 42})
    store.get('sid')          # {'user': 42}, a fresh copy every time
    store.touch('sid')        # slide the idle timer, data untouched
    store.stats()['bytes']    # what the cap is measured against

A write over the cap evicts at once what it needs to fit, and the store
then comes down to 75% of the cap a bounded chunk at a time (each write
takes one more, the purge thread the rest): first sessions never read back
since they were written (crawlers, one-shot clients), then returning ones,
nearest expiry first within each group, and among equal expiries the
earliest written first. Expired sessions go in chunks too, and are never
served while they wait. No call holds the lock for more than a chunk.
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import os
import pickle
import sys
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypedDict

from .eviction import LOW_WATER, EvictionOrder
from .options import MAX_SECONDS, parse_count, parse_seconds, parse_size, unknown_option
from .purger import Purger

log = logging.getLogger("lembro_wsgi")

#: Bytes each stored session costs besides its pickled data and its id: the
#: entry object, its dict slot, its heap slot, the timestamps and the (expiry, write order) key it holds
#: (measured with tracemalloc by benchmarks/store_memory.py).
ENTRY_OVERHEAD = 352

#: Bytes an owned session costs besides its owner's text (``id_size`` of it, counted per session as each
#: write brings its own): its slot in its owner's dict of ids, and, counted for each session as if every owner
#: had one (the worst case), that dict itself and its slot in the store's index of owners (measured with
#: tracemalloc by benchmarks/store_memory.py --owners).
OWNER_OVERHEAD = 208

#: Sessions removed per hold of the store's lock (expired or evicted beyond what a write needs); a chunk takes
#: one or two milliseconds at 1M sessions (whose heaps miss the CPU caches), so a concurrent request never waits
#: much longer.
CHUNK = 128

#: Seconds the store's lock is left free between two chunks: long enough for a thread waiting for it to wake
#: and take it (a zero-length sleep let the same thread win it back again and again).
PAUSE = 0.0002

#: Samples kept by ``history()``: one per purge, so an hour at the default interval.
HISTORY = 60

_getsizeof = sys.getsizeof
_BYTES_HEADER = _getsizeof(b"")
_ASCII_HEADER = _getsizeof("")
_TUPLE_HEADER = _getsizeof(())
_TUPLE_SLOT = _getsizeof((None,)) - _TUPLE_HEADER
_UNDECODABLE = object()  # what _unpickle gives for data that no longer loads (a stored None is data)
_PICKLE = pickle.HIGHEST_PROTOCOL
_INF = math.inf
_loads = pickle.loads
_REFUSED_MAX = 1024
_STORE_OPTIONS = ("interval", "max_size", "max_sessions", "timeout", "clock", "on_evict", "name")

Removed = list[tuple[Hashable, str]]


class StoreStats(TypedDict):
    """What ``LembroStore.stats()`` returns. Each ``returning_*`` and ``one_shot_*`` pair adds up to its total:
    returning sessions were read back since written, one-shot ones never were (and are evicted first)."""

    sessions: int
    bytes: int
    max_size: int
    max_sessions: int | None
    evictions: int
    expirations: int
    purges: int
    returning_sessions: int
    returning_bytes: int
    returning_evictions: int
    one_shot_sessions: int
    one_shot_bytes: int
    one_shot_evictions: int
    owners: int
    owned_sessions: int


class SessionTooLarge(ValueError):
    """A single session is larger than the store's whole ``max_size``."""


class _Entry:
    __slots__ = ("blob", "expires", "heap", "hkey", "index", "owner", "plain", "seq", "sid", "size", "timeout", "used",
                 "warm")
    blob: Any  # the pickle (bytes), or the str or bytes value itself when plain
    expires: float
    heap: Any  # heap, hkey and index belong to the EvictionOrder
    hkey: tuple[float, int]
    index: int
    owner: str | tuple[str, str] | None  # the owner's key (see owner_text) in the store's index of owners
    plain: bool  # blob is the value itself (a str or bytes), not its pickle
    seq: int
    sid: Hashable
    size: int
    timeout: float | None
    used: float
    warm: bool


def id_size(sid: Hashable) -> int:
    """Bytes an id holds: the object, plus its parts for a tuple such as ``(namespace, key)``.

    ASCII strings and tuples are sized from their length, as ``sys.getsizeof``
    would size them but without its slow generic call: an id is sized on every write.
    """
    if type(sid) is str and sid.isascii():
        return _ASCII_HEADER + len(sid)
    if type(sid) is tuple:
        size = _TUPLE_HEADER + _TUPLE_SLOT * len(sid)
        for part in sid:  # Beaker's (namespace, key): two ASCII strs, sized here without a call each
            size += _ASCII_HEADER + len(part) if type(part) is str and part.isascii() else id_size(part)
        return size
    return _getsizeof(sid)


def blob_bytes(blob: Any) -> int:
    """Bytes a stored value holds: its pickle, or the bytes or ASCII str kept as it is."""
    return _BYTES_HEADER + len(blob) if type(blob) is bytes else _getsizeof(blob)


#: An owner as the store takes it: a str or an int (compared as text), or a ``(scope, owner)`` pair, which
#: is another owner than the bare one (an app's key prefix in a store it shares with others).
Owner = str | int | tuple[str, str | int] | None


def owner_text(owner: object) -> str | None:
    """The text an owner is known by: a str as it is, an int in decimal (``42`` and ``'42'`` are one
    owner), ``None`` for no owner; anything else (a bool too) raises ``ValueError`` naming ``owner``."""
    if owner is None or type(owner) is str:
        return owner
    if isinstance(owner, str):
        return str.__str__(owner)  # a plain str copy: a subclass's own __str__ must not pick the owner
    if isinstance(owner, int) and not isinstance(owner, bool):
        return int.__repr__(owner)  # decimal digits, whatever an int subclass (an IntEnum) prints
    raise ValueError(f"owner: expected a str, an int or None, got {type(owner).__name__} {owner!r:.60}")


def _owner_key(owner: object) -> str | tuple[str, str] | None:
    """The key an owner is indexed under: its text, or ``(scope, text)`` for a scoped owner."""
    if type(owner) is tuple and len(owner) == 2 and type(owner[0]) is str and owner[1] is not None:
        text = owner_text(owner[1])
        return None if text is None else (owner[0], text)
    return owner_text(owner)


def owner_cost(text: str | tuple[str, str]) -> int:
    """Bytes a session's owner adds to its size: its text, and its place in the index of owners."""
    return id_size(text) + OWNER_OVERHEAD


def short_id(sid: object) -> str:
    """The first characters of a session id, safe to log; a Beaker id ``(namespace, key)`` as ``namespace/key``.

    A session's namespace is its id, after any ``key_prefix`` ending in a colon: 6 characters of the id are
    shown, as for any id. A cache's namespace and key are names, not secrets, but may be long: cut at 12 and 24.
    """
    if type(sid) is tuple and len(sid) == 2:
        namespace, key = sid
        if key == "session" and isinstance(namespace, str):
            prefix, colon, ident = namespace.rpartition(":")
            return f"{prefix}{colon}{_first(ident, 6)}/session"
        return f"{_first(namespace, 12)}/{_first(key, 24)}"
    return _first(sid, 6)


def _first(value: object, count: int) -> str:
    text = value.decode("ascii", "backslashreplace") if isinstance(value, bytes) else str(value)
    return text[:count] + "…" if len(text) > count else text


class LembroStore:
    """In-memory session store with a byte cap, an optional count cap and periodic purges.

    ``timeout`` is the default idle lifetime in seconds (``None``: no expiry);
    ``interval`` is the seconds between background purges (``None``: no
    background thread, call ``purge()`` yourself); ``clock`` returns seconds
    and must not go backwards; ``on_evict(sid, reason)`` is called outside the
    store's lock with reason ``'expired'`` or ``'size'``; ``name`` says what it
    holds (``'sessions'``, ``'caches'``), for its repr and stats page.
    """

    #: Set when a server said it runs several worker processes (``wsgi.multiprocess``), each with a store of
    #: its own: SessionFactory warns, and StatsApp shows it.
    multiprocess = False

    def __init__(
        self,
        interval: float | str | None = 60,
        max_size: int | str = "1M",
        max_sessions: int | str | None = None,
        timeout: float | str | None = 1800,
        clock: Callable[[], float] = time.monotonic,
        on_evict: Callable[[Hashable, str], Any] | None = None,
        name: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise unknown_option(next(iter(unknown)), _STORE_OPTIONS, "not a LembroStore option (" +
                                 ", ".join(_STORE_OPTIONS) + ")")
        if name is not None and not (isinstance(name, str) and name):
            raise ValueError(f"name: expected None or a non-empty str, got {name!r}")
        self.name = name
        self.interval = parse_seconds(interval, "interval", allow_none=True)
        self.max_size = parse_size(max_size, "max_size")
        self.max_sessions = parse_count(max_sessions, "max_sessions")
        self.timeout = parse_seconds(timeout, "timeout", allow_none=True)
        if not callable(clock):
            raise ValueError(f"clock: expected a callable returning seconds, got {clock!r}")
        if on_evict is not None and not callable(on_evict):
            raise ValueError(f"on_evict: expected a callable or None, got {on_evict!r}")
        self.clock = clock
        self.on_evict = on_evict
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._entries: dict[Hashable, _Entry] = {}
        self._order = EvictionOrder()
        self._bytes = 0
        self._warm_bytes = 0  # the part of _bytes held by returning sessions (entry.warm); the rest is one-shot
        self._draining = False  # over the low-water mark since going over a cap: writes and purges evict a chunk
        self._spared: Hashable | None = None  # the session whose write went over a cap: the way down spares it
        self._evictions = self._expirations = self._purges = 0
        self._warm_evictions = 0  # the part of _evictions that were returning sessions
        self._closed = False
        self._history: collections.deque[dict[str, float | int]] = collections.deque(maxlen=HISTORY)
        self._sampled = (0, 0, 0)  # evictions, expirations and returning evictions at the last sample
        self._purger: Purger | None = None
        self._refused: dict[Hashable, None] = {}  # ids refused lately: warned once each, not at every retry
        # The owners' index: each owner's text to its sessions' ids (a dict as an ordered set), kept exact by
        # _own and _forget; an owner leaves it with its last session. _owned counts the ids it holds.
        self._owners: dict[str | tuple[str, str], dict[Hashable, None]] = {}
        self._owned = 0
        self._revoking: list[set[Hashable]] = []  # the ids of owners a revoke is going through: they cannot move
        self._start_purger()
        _live_stores.add(self)

    def __repr__(self) -> str:
        """Stable: options only, no live figures (Beaker memoises caches by a key that holds this repr)."""
        named = f" {self.name!r}" if self.name else ""
        return (f"<LembroStore{named} max_size={self.max_size} max_sessions={self.max_sessions} "
                f"interval={self.interval} timeout={self.timeout} at {id(self):#x}>")

    # -- public API -------------------------------------------------------

    def get(self, sid: Hashable, touch: bool = False) -> Any:
        """A copy of the session's data, or ``None`` when it is absent, expired or no longer loads.

        ``touch`` also restarts its idle timer, in the same step: a read that is the client's activity.
        """
        lock = self._lock  # not `with`: this is a hot path, and acquire/release is cheaper
        lock.acquire()
        try:
            now = self.clock()
            removed = self._expire(now) if now >= self._order.due else []
            entry = self._entries.get(sid)
            if entry is not None and entry.expires <= now:  # due, not yet removed: never served
                self._lapse(entry, removed)
                entry = None
            if entry is not None:
                if touch:
                    self._renew(entry, entry.timeout, now, warm=True)
                elif not entry.warm:
                    self._tier(entry, True)
                    self._order.place(entry)
                blob, plain = entry.blob, entry.plain
        finally:
            lock.release()
        if removed:
            self._report(removed)
        if entry is None:
            return None
        if plain:
            return blob
        try:  # _unpickle, uncalled: get is the hottest path
            return _loads(blob)
        except Exception as exc:  # noqa: BLE001 - whatever unpickling raises, the record is unusable
            self._undecodable(sid, blob, exc)
            return None

    def set(self, sid: Hashable, data: Any, timeout: float | str | None = None, *, owner: Owner = None,
            max_per_owner: int | None = None) -> None:
        """Store a copy of ``data`` under ``sid``; ``timeout`` overrides the default lifetime (``math.inf``:
        no expiry; the caps still apply); ``owner`` (a str or an int, compared as text) lists it under
        ``owned_by(owner)`` (a ``(scope, owner)`` pair is another owner than the bare one: an app's own, in a
        store it shares), and ``None`` leaves it, or makes it, unowned. With ``max_per_owner``, the
        owner's least recently used other sessions are destroyed, in the same step, until that many are left.

        Raises ``SessionTooLarge`` (leaving any earlier value intact) when the
        session alone is larger than ``max_size``, and ``ValueError`` (nothing
        changed) for an owner of another type.
        """
        self._write(sid, data, timeout, None, owner, max_per_owner)

    def replace(self, sid: Hashable, data: Any, timeout: float | str | None = None, *,
                owner: Owner = None, max_per_owner: int | None = None) -> bool:
        """``set``, but only while ``sid`` is live; returns whether it was written.

        A session destroyed (logout, ``revoke``), expired or evicted since it
        was read is not brought back by a request that was still holding it.
        """
        return self._write(sid, data, timeout, sid, owner, max_per_owner)

    def move(self, old: Hashable, new: Hashable, data: Any, timeout: float | str | None = None, *,
             owner: Owner = None, max_per_owner: int | None = None) -> bool:
        """Store ``data`` under ``new`` in place of ``old``, which is removed; returns whether it was done.

        One atomic step: ``new`` keeps ``old``'s eviction tier (not its owner:
        ``owner`` is ``new``'s), and nothing changes when ``old`` is gone or
        the data is refused (``SessionTooLarge``).
        """
        return self._write(new, data, timeout, old, owner, max_per_owner)

    def owned_by(self, owner: Owner) -> list[tuple[Hashable, float, Any]]:
        """The live sessions of ``owner`` as ``(sid, used, data)``, most recently used first; ``used`` is the
        store's clock at the session's last write or touch, ``data`` a copy read in the same step as the
        rest. ``None`` and an unknown owner give ``[]``. Nothing listed is touched or made returning.

        It looks only at that owner's sessions (through the owners' index), however many others the store
        holds, a chunk per hold of the lock (an owner of more than a chunk is read over several, and a
        session moving to a new id meanwhile may be left out); one found expired and not yet removed is
        removed now, as expired, and not listed.
        """
        text = _owner_key(owner)
        if text is None:
            return []
        found: list[tuple[float, int, Hashable, Any, bool]] = []
        self._each_owned(text, lambda entry: found.append((entry.used, entry.seq, entry.sid, entry.blob, entry.plain)))
        found.sort(reverse=True)  # by last use, then write order (unique: the rest is never compared)
        listed = ((sid, used, blob if plain else self._unpickle(sid, blob)) for used, _, sid, blob, plain in found)
        return [item for item in listed if item[2] is not _UNDECODABLE]

    def revoke(self, owner: Owner, keep: Hashable | None = None) -> list[Hashable]:
        """Destroy every live session of ``owner`` but ``keep`` (sign out everywhere else); returns their ids.

        A chunk per hold of the lock. It stays final for the sessions the owner
        had when it started: none can move to a new id (a sign-in) until it is
        done, and the move fails as a write of a logged-out session does. Like
        ``destroy()``, the sessions revoked are not reported to ``on_evict``
        (one found expired meanwhile is, as expired, and is not in the list).
        """
        text = _owner_key(owner)
        if text is None:
            return []
        revoked: list[Hashable] = []

        def revoke(entry: _Entry) -> None:
            if entry.sid != keep:
                self._drop(entry)
                revoked.append(entry.sid)

        self._each_owned(text, revoke, keep=keep, guard=True)
        return revoked

    def _each_owned(self, text: str | tuple[str, str], visit: Callable[[_Entry], None], keep: Hashable = None,
                    guard: bool = False) -> None:
        """``visit`` each live session of the owner ``text``, from the ids it has in the first hold of the
        lock, a chunk per hold. ``guard``: none of those ids but ``keep`` can move to a new id meanwhile."""
        sids: list[Hashable] = []
        guarded: set[Hashable] | None = None
        start = 0
        try:
            while True:
                removed: Removed = []
                with self._lock:
                    if not start:
                        sids = list(self._owners.get(text, ()))  # a C-level copy: fast even for a huge owner
                        if guard and len(sids) > CHUNK:
                            guarded = set(sids)
                            guarded.discard(keep)
                            self._revoking.append(guarded)
                    now = self.clock()
                    for sid in sids[start:start + CHUNK]:
                        entry = self._live(sid, now, removed)
                        if entry is not None and entry.owner == text:
                            visit(entry)
                self._report(removed)
                start += CHUNK
                if start >= len(sids):
                    break
                _pause()
        finally:
            if guarded is not None:
                with self._lock:
                    self._revoking.remove(guarded)

    def touch(self, sid: Hashable, timeout: float | str | None = None) -> bool:
        """Restart the idle timer of a live session (with its own or a new ``timeout``).

        Returns whether the session was there to touch.
        """
        lifetime = None if timeout is None else parse_seconds(timeout, "timeout")
        lock = self._lock  # not `with`: this is a hot path, and acquire/release is cheaper
        lock.acquire()
        try:
            now = self.clock()
            removed = self._expire(now) if now >= self._order.due else []
            entry = self._live(sid, now, removed)
            if entry is not None:
                self._renew(entry, entry.timeout if lifetime is None else lifetime, now, warm=True)
        finally:
            lock.release()
        if removed:
            self._report(removed)
        return entry is not None

    def destroy(self, sid: Hashable) -> bool:
        """Remove a session; returns whether it was there (and live)."""
        with self._lock:
            now = self.clock()
            removed = self._expire(now)
            entry = self._live(sid, now, removed)
            if entry is not None:
                self._drop(entry)
        self._report(removed)
        return entry is not None

    def clear(self) -> None:
        """Remove every session."""
        with self._lock:
            self._entries.clear()
            self._order.clear()
            self._owners.clear()
            self._owned = 0
            self._bytes = self._warm_bytes = 0
            self._draining = False

    def __len__(self) -> int:
        self._catch_up()
        with self._lock:
            removed = self._expire(self.clock())
            count = len(self._entries)
        self._report(removed)
        return count

    def __contains__(self, sid: Hashable) -> bool:
        with self._lock:
            now = self.clock()
            removed = self._expire(now)
            found = self._live(sid, now, removed) is not None
        self._report(removed)
        return found

    def ids(self) -> list[Hashable]:
        """The ids of every live session (a snapshot; the data is not copied)."""
        self._catch_up()
        with self._lock:
            removed = self._expire(self.clock())
            ids = list(self._entries)
        self._report(removed)
        return ids

    def all(self) -> dict[Hashable, Any]:
        """A dict of every live session id to a copy of its data."""
        self._catch_up()
        with self._lock:
            removed = self._expire(self.clock())
            blobs = [(sid, entry.blob, entry.plain) for sid, entry in self._entries.items()]
        self._report(removed)
        loaded = ((sid, blob if plain else self._unpickle(sid, blob)) for sid, blob, plain in blobs)
        return {sid: data for sid, data in loaded if data is not _UNDECODABLE}  # a stored None is kept

    def purge(self) -> int:
        """Remove expired sessions now, finish coming down to the low-water mark after going over a cap, and
        sample the history ring; returns how many expired sessions went.

        It works a chunk at a time, letting other threads take the lock between chunks.
        """
        expired = self._work(sample=True)
        if expired:
            log.debug("purge removed %d expired sessions", expired)
        return expired

    def _finish_draining(self) -> None:
        """The purge thread's work when woken by a write over a cap: expired sessions, then the way down to
        75%, chunk by chunk; not a purge of the schedule (no history sample)."""
        self._work(sample=False)

    def _work(self, sample: bool) -> int:
        """Remove what expired, then drain to the low-water mark, a chunk per hold of the lock; returns how
        many expired sessions went. ``sample``: count a purge and sample the history with the last chunk."""
        expired = 0
        more = True
        while more:
            with self._lock:
                now = self.clock()
                removed = self._expire(now)
                expired += len(removed)
                more = now >= self._order.due
                if not more and self._draining:
                    removed += self._drain(now)
                    more = self._draining
                if not more and sample:
                    self._purges += 1
                    self._sample()
            self._report(removed)
            if more:
                _pause()
        return expired

    def stats(self) -> StoreStats:
        """Counts for monitoring: sessions, bytes, max_size, max_sessions, evictions, expirations, purges,
        and the two eviction tiers apart: ``returning_*`` (read back since written) and ``one_shot_*`` (never
        read back) ``sessions``, ``bytes`` and ``evictions``, each pair adding up to the total.

        A returning session evicted means the cap is too small for the users who come back.
        """
        self._catch_up()
        with self._lock:
            removed = self._expire(self.clock())
            warm_sessions = self._order.returning()
            stats: StoreStats = {
                "sessions": len(self._entries),
                "bytes": self._bytes,
                "max_size": self.max_size,
                "max_sessions": self.max_sessions,
                "evictions": self._evictions,
                "expirations": self._expirations,
                "purges": self._purges,
                "returning_sessions": warm_sessions,
                "returning_bytes": self._warm_bytes,
                "returning_evictions": self._warm_evictions,
                "one_shot_sessions": len(self._entries) - warm_sessions,
                "one_shot_bytes": self._bytes - self._warm_bytes,
                "one_shot_evictions": self._evictions - self._warm_evictions,
                "owners": len(self._owners),
                "owned_sessions": self._owned,
            }
        self._report(removed)
        return stats

    def history(self) -> list[dict[str, float | int]]:
        """Recent samples, oldest first, one per purge (the last ``HISTORY``): ``time`` (seconds since
        the epoch), ``bytes``, ``sessions``, and the ``evictions`` (split into ``returning_evictions`` and
        ``one_shot_evictions``) and ``expirations`` since the sample before."""
        with self._lock:
            return [dict(sample) for sample in self._history]

    def close(self) -> None:
        """Stop the background purge; the store stays usable with lazy purging. Idempotent."""
        self._closed = True
        if self._purger is not None:
            self._purger.stop()
            self._purger = None

    def __enter__(self) -> LembroStore:  # noqa: PYI034 - no typing_extensions dependency for Self
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals (called with the lock held, except _report, _write, _unpickle and _undecodable)

    def _write(self, sid: Hashable, data: Any, timeout: float | str | None, source_sid: Hashable | None,
               owner: Owner, max_per_owner: int | None = None) -> bool:
        """Store ``data`` under ``sid`` for ``owner``; with ``source_sid``, only while that session is live,
        taking its place; ``max_per_owner`` then bounds the owner's sessions."""
        text = owner if owner is None or type(owner) is str else _owner_key(owner)  # checked before any change
        if timeout is None:
            lifetime = self.timeout
        elif type(timeout) is float and 0 < timeout <= MAX_SECONDS:  # parse_seconds's own fast path, uncalled
            lifetime = timeout
        elif timeout == _INF:
            lifetime = None
        else:
            lifetime = parse_seconds(timeout, "timeout")
        # Kept as they are (they cannot change): bytes, and ASCII str, whose size never grows (a non-ASCII
        # str caches its UTF-8 form inside itself the first time C code asks for it).
        plain = type(data) is bytes or (type(data) is str and data.isascii())
        blob = data if plain else pickle.dumps(data, _PICKLE)
        blob_size = blob_bytes(blob)
        removed: Removed = []
        lock = self._lock  # not `with`: this is a hot path, and acquire/release is cheaper
        lock.acquire()
        try:
            now = self.clock()
            if now >= self._order.due:
                removed = self._expire(now)
            entries = self._entries
            entry = entries.get(sid)
            if entry is not None and entry.expires <= now:  # due, not yet removed: written as new
                self._lapse(entry, removed)
                entry = None
            # A rewritten entry keeps its id object (a dict keeps the first key), so its id's size is known.
            fixed = id_size(sid) + ENTRY_OVERHEAD if entry is None else entry.size - blob_bytes(entry.blob)
            if entry is not None and entry.owner is not None:
                fixed -= owner_cost(entry.owner)
            if text is not None:
                fixed += owner_cost(text)
            size = blob_size + fixed
            refused = size > self.max_size  # then nothing changes, and the error is raised unlocked
            written = not refused
            if written and source_sid is not None:
                source = entry if source_sid == sid else self._live(source_sid, now, removed)
                written = source is not None and not (
                    self._revoking and source is not entry and any(source_sid in ids for ids in self._revoking))
            else:
                source = None
            if written:
                if entry is None:
                    entry = entries[sid] = _Entry()
                    entry.sid, entry.warm, entry.heap, entry.size, entry.owner = sid, False, None, 0, None
                if source is not None and source is not entry:
                    self._drop(source)
                grown = size - entry.size
                self._bytes += grown
                if entry.warm:  # the returning tier's share (_tier moves it when the tier changes)
                    self._warm_bytes += grown
                entry.blob, entry.plain, entry.size = blob, plain, size
                if entry.owner != text:
                    self._own(entry, text)
                self._renew(entry, lifetime, now, entry.warm if source is None else source.warm)
                if max_per_owner is not None and text is not None and len(self._owners[text]) > max_per_owner:
                    self._limit(entry, text, max_per_owner, now, removed)
                if self._draining or self._bytes > self.max_size or len(entries) > (self.max_sessions or _INF):
                    removed += self._shrink(entry, now)
        finally:
            lock.release()
            if removed:  # even when sizing the id failed: what expired is gone, and on_evict hears of it
                self._report(removed)
        if refused:
            warn = sid not in self._refused
            if warn:
                if len(self._refused) >= _REFUSED_MAX:
                    self._refused.clear()
                self._refused[sid] = None
            (log.warning if warn else log.debug)(
                "refused session %s: %d bytes is over max_size %d", short_id(sid), size, self.max_size)
            raise SessionTooLarge(f"session of {size} bytes is larger than max_size {self.max_size}")
        return written

    def _unpickle(self, sid: Hashable, blob: bytes) -> Any:
        """The data in ``blob``; one that no longer loads (a class renamed in a deploy) is dropped: ``_UNDECODABLE``."""
        try:
            return _loads(blob)
        except Exception as exc:  # noqa: BLE001 - whatever unpickling raises, the record is unusable
            self._undecodable(sid, blob, exc)
        return _UNDECODABLE

    def _undecodable(self, sid: Hashable, blob: bytes, exc: Exception) -> None:
        """Log and drop a record that no longer loads, unless it was rewritten meanwhile."""
        log.warning(
            "dropped session %s: its stored data no longer loads (%s: %s)",
            short_id(sid), type(exc).__name__, exc,
        )
        with self._lock:
            entry = self._entries.get(sid)
            if entry is not None and entry.blob is blob:
                self._drop(entry)

    def _sample(self) -> None:
        evictions, expirations, warm_evictions = self._sampled
        self._history.append({
            "time": time.time(),
            "bytes": self._bytes,
            "sessions": len(self._entries),
            "evictions": self._evictions - evictions,
            "expirations": self._expirations - expirations,
            "returning_evictions": self._warm_evictions - warm_evictions,
            "one_shot_evictions": self._evictions - evictions - (self._warm_evictions - warm_evictions),
        })
        self._sampled = (self._evictions, self._expirations, self._warm_evictions)

    def _renew(self, entry: _Entry, lifetime: float | None, now: float, warm: bool) -> None:
        entry.timeout = lifetime
        entry.expires = _INF if lifetime is None else now + lifetime
        entry.used = now
        entry.seq = next(self._seq)
        if entry.warm != warm:
            self._tier(entry, warm)
        order = self._order
        if entry.heap is not order.heaps[2 * warm + (lifetime is None)] or entry.expires < entry.hkey[0]:
            order.place(entry)  # it changed heap or expires sooner; else it stays put, its key lagging its rank

    def _tier(self, entry: _Entry, warm: bool) -> None:
        """Move the entry's bytes to the tier ``warm`` names (the per-tier counts are the order's)."""
        if entry.warm != warm:
            self._warm_bytes += entry.size if warm else -entry.size
            entry.warm = warm

    def _drop(self, entry: _Entry) -> None:
        entry.heap.remove(entry)  # self._order.remove(entry), uncalled: each eviction drops one
        entry.heap = None
        self._forget(entry)

    def _forget(self, entry: _Entry) -> None:
        """Remove an entry already out of the eviction order from the mapping, the owners' index and the
        accounting: the one way out of the store, so the index stays exact on every path."""
        del self._entries[entry.sid]
        self._bytes -= entry.size
        if entry.warm:
            self._warm_bytes -= entry.size
        if entry.owner is not None:
            self._disown(entry, entry.owner)

    def _own(self, entry: _Entry, text: str | tuple[str, str] | None) -> None:
        """Index ``entry`` under the owner ``text`` (``None``: no owner) in place of its current owner (its
        size already counts the new owner's cost)."""
        if entry.owner is not None:
            self._disown(entry, entry.owner)
        if text is not None:
            sids = self._owners.get(text)
            if sids is None:
                sids = self._owners[text] = {}
            sids[entry.sid] = None
            self._owned += 1
        entry.owner = text

    def _disown(self, entry: _Entry, owner: str | tuple[str, str]) -> None:
        """Take ``entry`` out of the index of ``owner``, its owner; an owner with no session left leaves it."""
        sids = self._owners[owner]
        del sids[entry.sid]
        if not sids:
            del self._owners[owner]
        self._owned -= 1
        entry.owner = None

    def _owned_entries(self, text: str | tuple[str, str], now: float, removed: Removed) -> list[_Entry]:
        """The live entries of the owner ``text``; those found expired are removed (as expired) meanwhile."""
        sids = self._owners.get(text)
        if sids is None:
            return []
        entries = self._entries
        owned = [entries[sid] for sid in sids]
        live = [entry for entry in owned if entry.expires > now]
        if len(live) < len(owned):
            for entry in owned:
                if entry.expires <= now:
                    self._lapse(entry, removed)
        return live

    def _limit(self, keep: _Entry, text: str | tuple[str, str], most: int, now: float, removed: Removed) -> None:
        """Destroy the least recently used live sessions of ``text`` but ``keep`` until ``most`` are left."""
        others = [entry for entry in self._owned_entries(text, now, removed) if entry is not keep]
        others.sort(key=_recency)
        for entry in others[:max(len(others) + 1 - most, 0)]:
            self._drop(entry)

    def _expire(self, now: float, limit: int | None = None) -> Removed:
        """Remove up to ``limit`` (a chunk) of the sessions expired at ``now``.

        Nothing has expired while ``now < self._order.due``; hot paths check that before calling.
        """
        removed: Removed = []
        for entry in self._order.pop_expired(now, CHUNK if limit is None else limit):
            self._forget(entry)
            removed.append((entry.sid, "expired"))
        self._expirations += len(removed)
        return removed

    def _lapse(self, entry: _Entry, removed: Removed) -> None:
        """Remove an entry found expired before a chunk reached it (it counts as expired, like the others)."""
        self._drop(entry)
        self._expirations += 1
        removed.append((entry.sid, "expired"))

    def _live(self, sid: Hashable, now: float, removed: Removed) -> _Entry | None:
        """The entry of ``sid`` unless it is absent or expired (then removed)."""
        entry = self._entries.get(sid)
        if entry is not None and entry.expires <= now:
            self._lapse(entry, removed)
            return None
        return entry

    def _catch_up(self) -> None:
        """Remove every expired session, a chunk per hold of the lock, before a call that reads them all."""
        while self.clock() >= self._order.due:  # read unlocked: a stale value costs one more (locked) look
            with self._lock:
                removed = self._expire(self.clock())
            self._report(removed)
            _pause()

    def _over(self, size_goal: float, count_goal: float) -> bool:
        return self._bytes > size_goal or len(self._entries) > count_goal

    def _shrink(self, keep: _Entry, now: float) -> Removed:
        """Evict what the caps need now (all of it: the cap is never exceeded), then a chunk more toward the
        low-water mark; ``keep``, the session written, is spared, now and by the rest of the way down."""
        self._spared = keep.sid
        self._order.remove(keep)
        try:
            removed = self._evict(now, self.max_size, self.max_sessions or _INF, _INF)
            removed += self._drain_chunk(now)
        finally:
            self._order.place(keep)
        return removed

    def _drain(self, now: float) -> Removed:
        """A chunk more of the way down to the low-water mark, sparing the session whose write went over."""
        spared = self._entries.get(self._spared) if self._spared is not None else None
        if spared is not None:
            self._order.remove(spared)
        try:
            return self._drain_chunk(now)
        finally:
            if spared is not None:
                self._order.place(spared)

    def _drain_chunk(self, now: float) -> Removed:
        """Evict a chunk toward the low-water mark of both caps; ``_draining`` says whether more is to go (and
        can go: what is spared is not in the order)."""
        size_goal, count_goal = self.max_size * LOW_WATER, (self.max_sessions or _INF) * LOW_WATER
        removed = self._evict(now, size_goal, count_goal, CHUNK)
        self._draining = self._over(size_goal, count_goal) and self._order.coldest() is not None
        purger = self._purger  # read once: close() may clear it meanwhile, without the lock
        if self._draining and purger is not None:
            purger.wake()
        return removed

    def _evict(self, now: float, size_goal: float, count_goal: float, limit: float) -> Removed:
        """Evict, coldest first (any session expired at ``now`` before them), until under both goals or
        ``limit`` sessions went."""
        removed: Removed = []
        order, entries = self._order, self._entries
        evicted = warm = 0  # sessions evicted, and how many of them were returning
        while len(removed) < limit and (self._bytes > size_goal or len(entries) > count_goal):  # _over, uncalled
            if now >= order.due:
                lapsed = self._expire(now, 1)  # expired, awaiting its chunk: it goes first, as expired
                if lapsed:
                    removed += lapsed
                    continue
            victim = order.coldest()
            if victim is None:
                break
            evicted += 1
            warm += victim.warm
            self._drop(victim)
            removed.append((victim.sid, "size"))
        self._evictions += evicted
        self._warm_evictions += warm
        if evicted:
            log.debug("evicted %d sessions for size, now %d bytes of %d", evicted, self._bytes, self.max_size)
        return removed

    def _report(self, removed: Removed) -> None:
        """Tell ``on_evict`` about removed sessions; runs without the lock."""
        if self.on_evict is None:
            return
        for sid, reason in removed:
            try:
                self.on_evict(sid, reason)
            except Exception:
                log.exception("on_evict callback failed for %s", short_id(sid))

    def _start_purger(self) -> None:
        if self.interval is not None and not self._closed:
            self._purger = Purger(self, self.interval)

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._revoking = []  # a revoke of the parent's runs on in the parent only
        self._purger = None
        self._start_purger()


def _recency(entry: _Entry) -> tuple[float, int]:
    """Sort key of ``owned_by``: last use, then write order (the later of two uses in the same tick first)."""
    return (entry.used, entry.seq)


def _pause() -> None:
    """Let other threads run (and take the store's lock) between two chunks."""
    time.sleep(PAUSE)


_live_stores: weakref.WeakSet[LembroStore] = weakref.WeakSet()


_held_for_fork: list[threading.Lock] = []


def _before_fork() -> None:
    """Hold every store's lock across fork() so the child never copies a half-done change."""
    for store in list(_live_stores):
        store._lock.acquire()
        _held_for_fork.append(store._lock)


def _after_fork_in_parent() -> None:
    while _held_for_fork:
        _held_for_fork.pop().release()


def _after_fork_in_child() -> None:
    _held_for_fork.clear()
    for store in list(_live_stores):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )
