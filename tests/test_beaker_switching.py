"""Switching Beaker from ``memory`` to ``lembro`` is configuration only: each test runs the same code on both
through real Beaker (SessionMiddleware, CacheManager, decorators) and expects what ``memory`` does, where
``memory`` behaves well (it never drops anything, so for bounds the promise is lembro's own)."""

import threading
import time

import beaker.cache
import beaker.container
import pytest
import webtest
from beaker.cache import CacheManager
from beaker.middleware import SessionMiddleware

from lembro_wsgi import LembroMiddleware, LembroStore, StatsApp, get_store, reset_stores
from lembro_wsgi.namespace import CACHE_GRACE

BACKENDS = ["memory", "lembro"]


@pytest.fixture(autouse=True)
def fresh_registry():
    reset_stores()
    yield
    reset_stores()


def session_app(environ, start_response):
    session = environ["beaker.session"]
    path = environ["PATH_INFO"]
    if path == "/login":
        session["user"] = environ["QUERY_STRING"] or "alice"
        session.save()
    elif path == "/big":
        session["blob"] = "x" * int(environ["QUERY_STRING"])
        session.save()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(session.get("user")).encode()]


def beaker_sessions(backend, **config):
    options = {"session.type": backend, "session.key": "sid", **{f"session.{k}": v for k, v in config.items()}}
    return webtest.TestApp(SessionMiddleware(session_app, options))


@pytest.mark.parametrize("backend", BACKENDS)
def test_caching_never_signs_users_out(backend):
    """Sessions and caches with the same (default) caps: on lembro they are two stores, as on memory."""
    users = [beaker_sessions(backend) for _ in range(100)]
    for i, user in enumerate(users):
        user.get(f"/login?user{i}")
    cache = CacheManager(type=backend)

    @cache.cache("reports", expire=3600)
    def report(n):
        return f"{n}:" + "r" * 2000

    for n in range(600):
        assert report(n) == report(n)
    cache.get_cache("big").put("one value", "v" * 970_000)
    assert [user.get("/").text for user in users] == [f"user{i}" for i in range(100)]
    if backend == "lembro":
        assert get_store(name="caches").stats()["evictions"] > 0  # the caches' own store did the evicting
        assert get_store(name="sessions").stats()["evictions"] == 0


def test_one_store_for_sessions_and_caches_when_asked_for_by_name():
    with pytest.raises(KeyError, match="'shared'"):
        get_store(name="shared")  # found, never made, by a name alone
    user = beaker_sessions("lembro", store_name="shared", max_size="4M")
    user.get("/login")
    CacheManager(type="lembro", store_name="shared", max_size="4M").get_cache("c").put("k", "v")
    shared = get_store(name="shared")
    assert len(shared) == 2 and shared.max_size == 4 * 1024 * 1024
    for name in ("sessions", "caches"):
        with pytest.raises(KeyError, match=f"no '{name}' store"):
            get_store(name=name)  # neither default store was made
    with pytest.raises(ValueError, match="store_name: 'shared' is one store.*max_size=4194304.*max_size=1048576"):
        CacheManager(type="lembro", store_name="shared").get_cache("d").put("k", "v")  # another cap: refused
    with pytest.raises(ValueError, match="store_name"):
        CacheManager(type="lembro", store_name=" ").get_cache("c").put("k", "v")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_value_the_cache_cannot_keep_is_still_returned(backend):
    cache = CacheManager(type=backend, max_size="1M") if backend == "lembro" else CacheManager(type=backend)
    calls = []

    @cache.cache("huge", expire=600)
    def huge():
        calls.append(1)
        return "h" * 2_000_000

    assert len(huge()) == len(huge()) == 2_000_000
    cache.get_cache("direct").put("k", "v" * 2_000_000)  # refused by lembro, quietly: nothing raises
    if backend == "lembro":
        assert len(calls) == 2 and len(get_store(max_size="1M", name="caches")) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_session_too_large_still_answers_and_keeps_what_was_stored(backend, caplog):
    config = {"max_size": "64K"} if backend == "lembro" else {}
    user = beaker_sessions(backend, **config)
    user.get("/login")
    response = user.get("/big?100000")
    assert response.status_int == 200
    if backend == "lembro":
        assert user.get("/").text == "alice"  # the earlier session, intact
        assert sum("refused" in r.getMessage() for r in caplog.records) == 1


def test_reading_pages_keeps_a_session_without_save_accessed_time(clock):
    """With save_accessed_time=False Beaker writes only changed sessions; reads are activity all the same."""
    store = LembroStore(interval=None, clock=clock)  # the store's default timeout, 1800 s, as Beaker sets none
    user = webtest.TestApp(SessionMiddleware(session_app, {
        "session.type": "lembro", "session.key": "sid", "session.save_accessed_time": False,
        "session.store": store,
    }))
    user.get("/login")
    for _ in range(6):  # an hour, a page every ten minutes
        clock.advance(600)
        assert user.get("/").text == "alice"


class _Later:
    """Beaker's own clock (``time`` in beaker.container), moved forward: Beaker checks a value's age itself."""

    def __init__(self, seconds):
        self.seconds = seconds

    def time(self):
        return time.time() + self.seconds


@pytest.mark.parametrize("backend", BACKENDS)
def test_while_one_thread_recreates_an_expired_value_the_others_get_the_old_one(backend, monkeypatch, clock):
    store = LembroStore(interval=None, clock=clock)
    cache = CacheManager(type=backend, store=store) if backend == "lembro" else CacheManager(type=backend)
    reports = cache.get_cache(f"dogpile-{backend}", expire=60)
    assert reports.get("k", createfunc=lambda: "old") == "old"
    monkeypatch.setattr(beaker.container, "time", _Later(61))  # stale for Beaker...
    clock.advance(61)  # ...and in the store, past expire but within the grace
    creating, release = threading.Event(), threading.Event()
    results = {}

    def recreate():
        creating.set()
        assert release.wait(10)
        return "new"

    def reader(i):
        results[i] = reports.get("k", createfunc=recreate)

    creator = threading.Thread(target=reader, args=(0,))
    creator.start()
    assert creating.wait(10)
    others = [threading.Thread(target=reader, args=(i,)) for i in range(1, 8)]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(5)
    served_stale = sorted(i for i, value in results.items() if value == "old")
    release.set()
    creator.join(10)
    for thread in others:
        thread.join(10)
    assert served_stale == list(range(1, 8))  # none of the seven waited for the recreation
    assert results[0] == "new"
    if backend == "lembro":
        clock.advance(60 + CACHE_GRACE - 1)
        assert len(store) == 1  # the new value, kept for its own expire and grace
        clock.advance(1)
        assert len(store) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cache_value_with_no_expire_is_kept(backend, clock):
    store = LembroStore(interval=None, clock=clock)
    cache = CacheManager(type=backend, store=store) if backend == "lembro" else CacheManager(type=backend)
    calls = []

    @cache.cache("settings")
    def settings():
        calls.append(1)
        return {"theme": "dark"}

    settings()
    clock.advance(10 * 86400)
    store.purge()
    assert settings() == {"theme": "dark"} and calls == [1]


def test_a_store_handed_to_get_cache_is_memoised_once():
    """Beaker memoises caches by ``namespace + str(options)``: the store's repr must not change as it fills."""
    store = LembroStore(interval=None)
    cache = CacheManager()
    for n in range(200):
        cache.get_cache("memo", type="lembro", store=store).put(f"k{n}", "v" * n)
    assert sum(key.startswith("memo{") for key in beaker.cache.cache_managers) == 1
    assert len(store) == 200


def test_the_stats_page_names_what_a_store_holds():
    beaker_sessions("lembro").get("/login")
    page = webtest.TestApp(StatsApp(get_store(name="sessions"))).get("/").text
    assert "Store &#x27;sessions&#x27;" in page  # which store it is
    assert "Beaker caches are kept in a store of their own" in page
    plain = LembroMiddleware(session_app, interval=None)
    assert "Beaker" not in webtest.TestApp(StatsApp(plain.store)).get("/").text  # only where it applies


@pytest.mark.parametrize("backend", BACKENDS)
def test_settings_memory_takes_never_fail_a_request(backend):
    """A negative expire (stale at once) and a session timeout past the store's bound (~31 years)."""
    cache = CacheManager(type=backend)
    cache.get_cache("odd", expire=-500).put("k", "v")
    user = beaker_sessions(backend, timeout=9_999_999_999)
    assert user.get("/login").status_int == 200 and user.get("/").text == "alice"


def test_a_refused_cache_value_is_logged_by_namespace_and_key(caplog):
    cache = CacheManager(type="lembro", max_size="64K")
    for key in ("first-report", "second-report"):
        cache.get_cache("reports").put(key, "r" * 100_000)
    logged = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(logged) == 2 and "reports/first-report" in logged[0] and "reports/second-report" in logged[1]
