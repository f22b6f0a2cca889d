"""SessionBackend's record contract on each kind of backend: lifetimes (the backend's, a write's own, a record's
own), and conditional writes (``replace``, ``move``, ``touch``) that never bring back a session that is gone.

lembro runs on the FakeClock; the file backend keeps ``time.time()`` in its records, so its idle records are
written with an ``accessed`` time in the past rather than waited for.
"""

import logging
import os
import pickle
import sys
import time
import types

import pytest
import redis
from beaker.container import FileNamespaceManager

from lembro_wsgi import BackendUnavailable
from lembro_wsgi.backend import SessionBackend
from lembro_wsgi.store import short_id


def record(accessed=None, **data):
    now = time.time() if accessed is None else accessed
    return {"created": now, "accessed": now, "data": data}


# -- lembro: lifetimes on the store's clock --------------------------------------------------------------------

def test_the_default_session_lifetime_is_thirty_minutes(make_store, clock):
    store = make_store(timeout=None)  # the store's own default plays no part: the backend's lifetime is written
    backend = SessionBackend(store=store)
    backend.save("kept", record(n=1))
    backend.save("gone", record(n=2))
    clock.advance(1799.5)
    assert backend.load("kept")["data"] == {"n": 1}  # the read restarts its timer
    clock.advance(1.0)
    assert backend.load("gone") is None  # idle 1800.5 s


def test_type_lembro_is_the_given_store(make_store):
    store = make_store()
    backend = SessionBackend(type="lembro", store=store)
    backend.save("sid", record(n=1))
    assert len(store) == 1
    assert SessionBackend(store=store).load("sid")["data"] == {"n": 1}


def test_no_key_prefix_by_default(make_store):
    store = make_store()
    SessionBackend(store=store).save("sid", record(n=1))
    assert SessionBackend(store=store, key_prefix="").load("sid")["data"] == {"n": 1}
    assert SessionBackend(store=store, key_prefix="other:").load("sid") is None


@pytest.mark.parametrize("write", ["replace", "touch", "move"])
def test_a_writes_own_timeout_is_the_lifetime_it_gives(make_store, clock, write):
    """What Flask's permanent sessions use: the lifetime of one write, not the backend's 1800 s."""
    backend = SessionBackend(store=make_store(timeout=None))
    backend.save("old", record(n=1))
    if write == "replace":
        assert backend.replace("old", record(n=2), timeout=60)
    elif write == "touch":
        assert backend.touch("old", timeout=60)
    else:
        assert backend.move("old", "new", record(n=2), timeout=60)
    sid = "new" if write == "move" else "old"
    clock.advance(59)
    assert backend.exists(sid)
    clock.advance(2)  # idle 61 s: past the write's lifetime, far within the backend's
    assert not backend.exists(sid) and backend.load(sid) is None


# -- file: what Beaker's file backend does not do itself -------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    return SessionBackend(type="file", data_dir=str(tmp_path), timeout=600)


def test_a_records_own_lifetime_decides_its_expiry_on_the_file_backend(files):
    files.save("short", {**record(accessed=time.time() - 100, n=1), "lifetime": 60})
    files.save("long", {**record(accessed=time.time() - 700, n=2), "lifetime": 3600})
    assert files.load("short") is None  # idle 100 s, its own lifetime 60 s; the backend's 600 s does not save it
    assert files.load("long")["data"] == {"n": 2}  # idle 700 s, its own lifetime 3600 s


def test_a_session_idle_exactly_its_timeout_is_expired_on_the_file_backend_as_in_a_store(files, make_store, clock,
                                                                                          monkeypatch):
    """The boundary is the same everywhere: idle ``timeout`` seconds, the session is gone."""
    store = make_store(timeout=600)
    store.set("sid", {"n": 1})
    clock.advance(600)
    assert store.get("sid") is None
    now = 1_700_000_000.0
    files.save("sid", record(accessed=now, n=1))
    monkeypatch.setattr(time, "time", lambda: now + 599.5)
    assert files.load("sid")["data"] == {"n": 1}
    monkeypatch.setattr(time, "time", lambda: now + 600)
    assert files.load("sid") is None and files.touch("sid") is False


def test_on_the_file_backend_an_unknown_id_is_never_written_by_replace_touch_or_move(files):
    assert files.replace("unknown", record(n=1)) is False
    assert files.touch("unknown") is False
    assert files.move("unknown", "new", record(n=1)) is False
    assert files.load("unknown") is None and files.load("new") is None


def test_on_the_file_backend_a_session_idle_past_its_timeout_is_never_written_back(files):
    for sid in ("a", "b", "c"):
        files.save(sid, record(accessed=time.time() - 601, n=1))
    assert files.replace("a", record(n=2)) is False
    assert files.touch("b") is False
    assert files.move("c", "new", record(n=2)) is False
    assert [files.load(sid) for sid in ("a", "b", "c", "new")] == [None] * 4


def test_reading_an_unknown_id_on_the_file_backend_writes_no_session_file(files, tmp_path):
    """Rule "Nothing stored for nobody": a forged or stale cookie's id is looked up, never written to disk."""
    assert files.load("unknown") is None
    assert not files.exists("unknown")
    assert list(tmp_path.rglob("*.cache")) == []


def test_touch_on_the_file_backend_restarts_the_idle_timer_and_keeps_the_data(files):
    idle = time.time() - 500
    files.save("sid", record(accessed=idle, n=1))
    assert files.touch("sid") is True
    stored = files.load("sid")
    assert stored["data"] == {"n": 1} and stored["created"] == idle
    assert stored["accessed"] > time.time() - 5


def test_replace_and_move_on_the_file_backend_write_a_live_session(files):
    files.save("sid", record(n=1))
    assert files.replace("sid", record(n=2)) is True
    assert files.load("sid")["data"] == {"n": 2}
    assert files.move("sid", "new", record(n=3)) is True
    assert files.load("sid") is None and files.load("new")["data"] == {"n": 3}


@pytest.fixture
def deploy():
    module = types.ModuleType("lembro_backend_deploy_test")
    module.Cart = type("Cart", (), {"__module__": module.__name__})
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_on_the_file_backend_a_record_that_no_longer_unpickles_is_not_live(files, deploy):
    """A class renamed in a deploy: the conditional writes say "gone" rather than raise, and write nothing."""
    for sid in ("a", "b", "c"):
        files.save(sid, record(cart=deploy.Cart()))
    pickle.loads(pickle.dumps(deploy.Cart()))
    deploy.Basket = deploy.__dict__.pop("Cart")
    assert files.replace("a", record(n=2)) is False
    assert files.touch("b") is False
    assert files.move("c", "new", record(n=2)) is False
    assert files.load("new") is None


@pytest.mark.parametrize("write", ["replace", "touch", "move"])
def test_on_the_file_backend_a_session_file_that_cannot_be_read_is_backend_unavailable(files, tmp_path, write):
    """A disk error is the backend not serving, not a session that is gone (which would be False)."""
    files.save("sid", record(n=1))
    path = FileNamespaceManager("sid", data_dir=str(tmp_path)).file
    FileNamespaceManager("sid", data_dir=str(tmp_path)).do_remove()
    os.mkdir(path)  # where the session's file was, a folder: reading it fails with an OSError, root or not
    calls = {"replace": lambda: files.replace("sid", record(n=2)), "touch": lambda: files.touch("sid"),
             "move": lambda: files.move("sid", "new", record(n=2))}
    with pytest.raises(BackendUnavailable, match=r"^session backend 'file' at .* is unavailable \(builtins\.IsADir"):
        calls[write]()


# -- Redis: a write's own timeout is the key's TTL -------------------------------------------------------------

def test_on_redis_a_moved_session_gets_the_moves_own_timeout_as_its_ttl(redis_url):
    backend = SessionBackend(type="ext:redis", url=redis_url, timeout=600)
    backend.save("old", record(n=1))
    assert backend.move("old", "new", record(n=2), timeout=60) is True
    client = redis.Redis.from_url(redis_url)
    (key,) = client.keys("*")
    assert b"new" in key and 50 <= client.ttl(key) <= 60


# -- A stored value that is no session record ------------------------------------------------------------------

@pytest.mark.parametrize("value", [{"user": 1}, {"data": {"n": 1}}, {"data": {}, "created": 0.0}, "a string"])
@pytest.mark.parametrize("kind", ["lembro", "file"])
def test_a_stored_value_that_is_no_session_record_is_no_session_logged_with_a_short_id(
        make_store, tmp_path, caplog, kind, value):
    """Rule "Undecodable is absent", for a foreign value under the session's key: no session, logged at
    WARNING with the short id only, and destroyed."""
    sid = "F" * 43
    backend = (SessionBackend(store=make_store()) if kind == "lembro"
               else SessionBackend(type="file", data_dir=str(tmp_path), timeout=600))
    backend.save(sid, value)
    with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
        assert backend.load(sid) is None
    (logged,) = [r for r in caplog.records if r.name == "lembro_wsgi"]
    assert logged.levelno == logging.WARNING and short_id(sid) in logged.getMessage()
    assert sid not in caplog.text
    assert not backend.exists(sid)


def test_on_redis_the_keys_ttl_alone_decides_expiry(redis_url):
    """A session kept alive by reads (``EXPIRE``) keeps the ``accessed`` time of its last write: Redis, not that
    time, says whether it is live."""
    backend = SessionBackend(type="ext:redis", url=redis_url, timeout=600)
    backend.save("sid", record(accessed=time.time() - 700, n=1))
    assert backend.load("sid")["data"] == {"n": 1}
    assert backend.exists("sid")
