"""The session object handed to the app: a lazy dict that saves itself at response time.

Nothing is read from the backend until the app first touches the session::

    session = environ['lembro.session']
    session['user'] = 'ana'       # saved when the response starts
    session.regenerate()          # new id, same data: do this at login
    session.invalidate()          # drop everything: do this at logout
    session['cart'].append(3)
    session.changed()             # a nested change is invisible: say so
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

from .backend import Record, SessionBackend
from .cookie import EXPIRE, new_session_id
from .store import SessionTooLarge, short_id

log = logging.getLogger("lembro_wsgi")


class Session(MutableMapping):
    """Dict-like session with ``id``, ``new``, ``created``, ``accessed``, ``invalidate()``, ``regenerate()``.

    ``cookie_sid`` is the well-formed id the client sent (or ``None``); it is
    used only if the backend knows it, so a planted id is never adopted.
    ``rolling`` re-sends the cookie on every use (persistent cookies).
    """

    def __init__(self, backend: SessionBackend, cookie_sid: str | None, rolling: bool = False) -> None:
        self._backend = backend
        self._cookie_sid = cookie_sid
        self._rolling = rolling
        self._loaded = False
        self._committed = False
        self._client_sid: str | None = None  # the stored id the client holds, once known
        self._stored_sid: str | None = None  # the id under which the backend holds our data
        self._dirty = False

    # -- loading ------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        record = self._backend.load(self._cookie_sid) if self._cookie_sid else None
        if record is None:
            self._start_fresh()
        else:
            self._id = self._client_sid = self._stored_sid = self._cookie_sid
            self._data: dict = record["data"]
            self._created: float = record["created"]
            self._accessed: float | None = record["accessed"]
            self._new = False

    def _start_fresh(self) -> None:
        self._id = new_session_id()
        self._data = {}
        self._created = time.time()
        self._accessed = None
        self._new = True

    @property
    def id(self) -> str:
        self._load()
        return self._id

    @property
    def new(self) -> bool:
        """True until the session has been stored and the client came back with it."""
        self._load()
        return self._new

    @property
    def created(self) -> float:
        """When the session was created (seconds since the epoch)."""
        self._load()
        return self._created

    @property
    def accessed(self) -> float | None:
        """When the session was last saved before this request (``None`` for a new one)."""
        self._load()
        return self._accessed

    # -- the mapping --------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self._load()
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._load()
        self._data[key] = value
        self._dirty = True

    def __delitem__(self, key: str) -> None:
        self._load()
        del self._data[key]
        self._dirty = True

    def __contains__(self, key: object) -> bool:
        self._load()
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._data))

    def __len__(self) -> int:
        self._load()
        return len(self._data)

    def __repr__(self) -> str:
        if not self._loaded:
            return "<Session (not loaded)>"
        return f"<Session {short_id(self._id)} {self._data!r}>"

    # -- lifecycle ----------------------------------------------------------

    def changed(self) -> None:
        """Mark the session dirty after mutating a value in place."""
        self._load()
        self._dirty = True

    def invalidate(self) -> None:
        """Drop all data, destroy the stored session and start a new one under a new id."""
        self._load()
        self._destroy_stored()
        self._start_fresh()
        self._dirty = False

    def regenerate(self) -> None:
        """Keep the data under a new id and destroy the old one (call it when privileges change)."""
        self._load()
        self._destroy_stored()
        self._id = new_session_id()
        self._dirty = True

    def save(self) -> None:
        """Store the session now; never needed for ordinary use, where the response saves it."""
        self._load()
        self._persist()

    def _destroy_stored(self) -> None:
        if self._stored_sid is not None:
            self._backend.destroy(self._stored_sid)
            self._stored_sid = None

    def _record(self) -> Record:
        return {"created": self._created, "accessed": time.time(), "data": self._data}

    def _persist(self) -> None:
        self._dirty = False
        if not self._data:  # an empty session is no session
            self._destroy_stored()
            return
        try:
            self._backend.save(self._id, self._record())
        except SessionTooLarge:  # the store has logged it; what it held for this id is unchanged
            return
        self._stored_sid = self._id

    def commit(self) -> str | None:
        """Save or touch at response time; returns the cookie to send: an id, ``EXPIRE`` or ``None``."""
        self._committed = True
        if not self._loaded:
            return None
        if self._dirty:
            self._persist()
        elif self._stored_sid is not None:
            self._backend.touch(self._stored_sid, self._record)
        if self._stored_sid is not None:
            send = self._stored_sid != self._client_sid or self._rolling
            self._client_sid = self._stored_sid
            return self._stored_sid if send else None
        if self._client_sid is not None:
            self._client_sid = None
            return EXPIRE
        return None

    def finish(self) -> None:
        """After the body: save changes made once the cookie had gone, if the client holds this id."""
        if not (self._committed and self._dirty):
            return
        if self._id == self._client_sid:
            self._persist()
        else:
            log.warning(
                "lembro_wsgi: session %s changed after the response started, with no cookie sent for it; "
                "the change is dropped", short_id(self._id),
            )
