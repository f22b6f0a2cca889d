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
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from .backend import BackendUnavailable, Record, SessionBackend
from .cookie import EXPIRE, new_session_id
from .store import SessionTooLarge, short_id

log = logging.getLogger("lembro_wsgi")


class Session(MutableMapping[str, Any]):
    """Dict-like session with ``id``, ``new``, ``created``, ``accessed``, ``invalidate()``, ``regenerate()``.

    ``cookie_sid`` is the well-formed id the client sent (or ``None``); it is
    used only if the backend knows it, so a planted id is never adopted.
    ``rolling`` re-sends the cookie on every use (persistent cookies);
    ``resign`` re-sends it because an older secret verified it.

    One request's lifecycle is three ids, and every rule reads off them:

    - ``_stored``: the id the backend holds this session's record under (as
      loaded, or as this request last wrote it), else ``None``. Writes to it
      are conditional: if it vanished meanwhile (logout, expiry, eviction),
      the write is dropped and the session is *gone* for this request.
    - ``_client``: the id the client's cookie holds, as far as we know.
    - ``_id``: the id the data will be stored under; a new one after
      ``regenerate()``, which moves the record from ``_stored`` only once the
      new id is stored.
    """

    # Per-request state starts as these class defaults: a session is built on every request.
    _id: str = ""  # set when loaded
    _loaded = False
    _committed = False
    _dirty = False
    _modified = False  # changed in this request; unlike _dirty, a save does not reset it
    _gone = False
    _refreshed = False  # written or touched in this request: its idle timer has restarted
    _stored: str | None = None
    _client: str | None = None
    #: Seconds this session lives on the server; ``None``: the backend's ``timeout``.
    lifetime: float | None = None

    def __init__(self, backend: SessionBackend, cookie_sid: str | None, rolling: bool = False,
                 resign: bool = False) -> None:
        self._backend = backend
        self._cookie_sid = cookie_sid
        self._rolling = rolling
        self._resign = resign

    # -- loading ------------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        sid = self._cookie_sid
        record = self._backend.load(sid) if sid else None
        self._loaded = True  # only now: a backend error leaves the session unloaded, to raise again if used
        if record is None or sid is None:
            self._start_fresh()
        else:
            self._id = self._client = self._stored = sid
            self._data: dict[str, Any] = record["data"]
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
        if not self._loaded:
            self._load()
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:  # Mapping's get raises and catches a KeyError on a miss
        if not self._loaded:
            self._load()
        return self._data.get(key, default)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass's own ``__getitem__`` is honoured by ``get``, as with any Mapping."""
        super().__init_subclass__(**kwargs)
        if cls.__getitem__ is not Session.__getitem__ and cls.get is Session.get:  # its own, or a mixin's
            cls.get = Mapping.get  # type: ignore[method-assign,assignment]

    def __setitem__(self, key: str, value: Any) -> None:
        if not self._loaded:
            self._load()
        self._data[key] = value
        self._dirty = self._modified = True

    def __delitem__(self, key: str) -> None:
        self._load()
        del self._data[key]
        self._dirty = self._modified = True

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
        self._dirty = self._modified = True

    def invalidate(self) -> None:
        """Drop all data, destroy the stored session now and start a new one under a new id (logout)."""
        self._load()
        self._destroy_stored()
        self._start_fresh()
        self._dirty = False
        self._modified = True
        self._gone = False  # a brand-new id: nothing of the old session can come back through it

    def clear(self) -> None:
        """Empty the session as a logout: ``invalidate()``, so a request still running cannot bring it back."""
        self.invalidate()

    def regenerate(self) -> None:
        """Keep the data under a new id (at login); the old id is destroyed once the new one is stored."""
        self._load()
        self._id = new_session_id()
        self._dirty = self._modified = True
        if self._stored is not None and self._backend.owner_key is not None:  # revoke(keep=session.id) keeps it
            self._backend.regenerating[self._id] = self

    def save(self) -> None:
        """Store the session now; never needed for ordinary use, where the response saves it."""
        self._load()
        self._persist()

    def _destroy_stored(self) -> None:
        if self._stored is not None:
            self._backend.destroy(self._stored)
            self._stored = None

    def _record(self) -> Record:
        record = {"created": self._created, "accessed": time.time(), "data": self._data}
        if self.lifetime is not None:
            record["lifetime"] = self.lifetime
        return record

    def _persist(self) -> None:
        self._dirty = False
        if self._gone:
            return
        if not self._data:  # an empty session is no session
            self._destroy_stored()
            return
        stored, record = self._stored, self._record()
        try:
            if stored is None:  # a brand-new id: nobody else can hold it
                self._backend.save(self._id, record, self.lifetime)
                written = True
            elif stored == self._id:
                written = self._backend.replace(stored, record, self.lifetime)
            else:
                written = self._backend.move(stored, self._id, record, self.lifetime)
        except SessionTooLarge:  # logged by the store; what it held is unchanged, and so is the client's id.
            return  # A pending regenerate() stays pending: the next write still goes to the new id.
        if written:
            self._stored = self._id
            self._refreshed = True
        else:
            self._lose()

    def _lose(self) -> None:
        """The stored session vanished while this request ran: never write it back, send no cookie."""
        log.debug(
            "session %s was destroyed, expired or evicted during the request; its write is dropped",
            short_id(self._stored),
        )
        self._gone = True
        self._stored = self._client = None

    @property
    def loaded(self) -> bool:
        """Whether the session has been read from the backend in this request."""
        return self._loaded

    def load(self) -> None:
        """Read the session from the backend now, rather than on first use."""
        self._load()

    def commit(self, resend: bool = False) -> str | None:
        """Save or touch at response time; returns the cookie to send: an id, ``EXPIRE`` or ``None``.

        ``resend`` sends the id of a stored session even when unchanged (a cookie that is rolled forward).
        """
        self._committed = True
        if not self._loaded:  # untouched; but a cookie signed with an old secret is re-signed while it lives
            return self._cookie_sid if self._resign and self._still_there(self._cookie_sid) else None
        if self._dirty:
            self._persist()
        else:
            self._refresh()
        if self._stored is not None:
            send = self._stored != self._client or self._rolling or self._resign or resend
            self._client = self._stored
            return self._stored if send else None
        if self._client is not None:  # this request destroyed the id the client holds
            self._client = None
            return EXPIRE
        return None

    def _refresh(self) -> None:
        """Restart the idle timer of a stored session that was only read; one written in this request
        only needs to be still there (a touch would count as the client coming back, and rank it so)."""
        if self._stored is None:
            return
        try:
            if self._refreshed:
                live = self._backend.exists(self._stored)
            else:
                live = self._backend.touch(self._stored, self.lifetime)
                self._refreshed = True
        except BackendUnavailable:  # a read-only replica, say: the page had its data; the timer restarts on a
            return  # later request (the backend has logged the refusal)
        if not live:
            self._lose()

    def _still_there(self, sid: str | None) -> bool:
        """Whether ``sid`` is live, for re-signing only: a request that never used its session never
        fails because the backend is down (the backend has logged that)."""
        try:
            return sid is not None and self._backend.exists(sid)
        except BackendUnavailable:
            return False

    def finish(self) -> None:
        """After the body: save changes made once the cookie had gone, if the client holds this id;
        a session first read after that restarts its idle timer then."""
        if not self._committed or self._gone or not self._loaded:
            return
        if not self._dirty:
            if not self._refreshed:
                self._refresh()
            return
        if self._id == self._client:
            try:
                self._persist()
            except BackendUnavailable:  # the body has gone out: the client must get it whole (logged by the backend)
                log.warning("session %s: changes made while the body was sent are lost: the backend refused them",
                            short_id(self._id))
        else:
            log.warning(
                "session %s changed after the response started, with no cookie sent for it; "
                "the change is dropped", short_id(self._id),
            )
            self._dirty = False  # said once; a later change is said again
