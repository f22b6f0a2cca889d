"""Beaker's own SessionMiddleware with session.type = lembro, configured by strings only."""

import itertools

import pytest
import webtest
from beaker.middleware import SessionMiddleware
from beaker.session import Session

from lembro_wsgi import LembroStore, get_store, reset_stores
from tests.conftest import run_threads


@pytest.fixture(autouse=True)
def fresh_registry():
    reset_stores()
    yield
    reset_stores()


def session_app(environ, start_response):
    """/ counts, /delete deletes, /invalidate and /regenerate do what they say, /peek reads only."""
    session = environ["beaker.session"]
    path = environ["PATH_INFO"]
    if path == "/delete":
        session.delete()
    elif path == "/invalidate":
        session.invalidate()
        session["count"] = 0
        session.save()
    elif path == "/regenerate":
        session.regenerate_id()
        session.save()
    elif path == "/big":
        session["blob"] = "b" * 1000
        session.save()
    elif path != "/peek":
        session["count"] = session.get("count", 0) + 1
        session.save()
    body = f"{session.id} {session.get('count', 0)}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


CONFIG = {"session.type": "lembro", "session.max_size": "4M", "session.interval": "60", "session.key": "sid"}


def make_app(**overrides):
    return webtest.TestApp(SessionMiddleware(session_app, {**CONFIG, **overrides}))


def reply(response):
    sid, count = response.text.split()
    return sid, int(count)


def test_counter_persists_and_clients_are_isolated():
    alice, bob = make_app(), make_app()
    assert reply(alice.get("/"))[1] == 1
    assert reply(alice.get("/"))[1] == 2
    assert reply(bob.get("/"))[1] == 1
    sid, count = reply(alice.get("/"))
    assert count == 3
    store = get_store(interval="60", max_size="4M")
    assert (sid, "session") in store
    assert len(store) == 2


def test_string_options_pick_one_shared_store_per_config():
    app = make_app()
    app.get("/")
    app.get("/")
    assert get_store(60, 4 * 1024**2) is get_store("60", "4M")
    assert get_store(60, "4M").stats()["sessions"] == 1
    other = make_app(**{"session.max_size": "256K"})
    other.get("/")
    assert get_store(60, "256K") is not get_store(60, "4M")
    assert get_store(60, "256K").stats()["sessions"] == 1


def test_delete_expires_the_cookie_and_starts_over():
    app = make_app()
    app.get("/")
    response = app.get("/delete")
    assert "expires=" in response.headers["Set-Cookie"]
    assert not app.cookies  # the browser dropped the expired cookie
    assert reply(app.get("/"))[1] == 1


@pytest.mark.parametrize("script", [
    ["/", "/", "/peek", "/regenerate", "/", "/invalidate", "/", "/delete", "/", "/"],
    ["/peek", "/", "/invalidate", "/invalidate", "/regenerate", "/regenerate", "/"],
])
def test_same_observable_behaviour_as_the_memory_backend(script):
    def run(backend):
        app = make_app(**{"session.type": backend})
        counts, ids = [], []
        for path in script:
            sid, count = reply(app.get(path))
            counts.append(count)
            ids.append(sid)
        changes = [a != b for a, b in itertools.pairwise(ids)]
        return counts, changes

    assert run("lembro") == run("memory")


def test_invalidate_issues_new_id_and_regenerate_keeps_data():
    app = make_app()
    app.get("/")
    old_sid, count = reply(app.get("/"))
    assert count == 2
    new_sid, count = reply(app.get("/regenerate"))
    assert new_sid != old_sid and count == 2
    assert reply(app.get("/"))[1] == 3
    fresh_sid, count = reply(app.get("/invalidate"))
    assert fresh_sid != new_sid and count == 0
    assert reply(app.get("/"))[1] == 1


def test_store_expiry_starts_a_new_session_not_an_error(clock):
    store = LembroStore(interval=None, clock=clock)
    app = make_app(**{"session.timeout": "60", "session.store": store})
    app.get("/")
    sid, count = reply(app.get("/"))
    assert count == 2
    clock.advance(60 + 120)  # Beaker forwards timeout + 120 s to the backend
    assert store.get((sid, "session")) is None
    response = app.get("/")
    assert response.status_int == 200
    assert reply(response)[1] == 1


def test_peek_only_reads():
    store = LembroStore(interval=None)
    app = make_app(**{"session.store": store, "session.save_accessed_time": False})  # else Beaker notes each visit
    sid = reply(app.get("/"))[0]
    stored = store.get((sid, "session"))
    assert reply(app.get("/peek"))[1] == 1
    assert store.get((sid, "session")) == stored  # not rewritten
    assert reply(app.get("/"))[1] == 2


def test_flood_of_new_clients_never_exceeds_the_cap():
    cap = 256 * 1024
    app_config = {**CONFIG, "session.max_size": "256K"}
    wsgi = SessionMiddleware(session_app, app_config)
    store = None
    peak = 0
    for _ in range(5000):
        webtest.TestApp(wsgi).get("/big")  # a new client each time, ~1 KB each
        store = store or get_store(60, "256K")
        peak = max(peak, store.stats()["bytes"])
    stats = store.stats()
    assert peak <= cap
    assert stats["evictions"] > 4000
    assert stats["sessions"] > 100


def test_bad_option_fails_with_its_name():
    app = make_app(**{"session.max_size": "lots"})
    with pytest.raises(ValueError, match=r"max_size.*'lots'"):
        app.get("/")
    app = make_app(**{"session.interval": "-1"})
    with pytest.raises(ValueError, match="interval"):
        app.get("/")


def test_bottle_app_under_beakers_middleware():
    import bottle

    app = bottle.Bottle()

    @app.route("/")
    def index():
        session = bottle.request.environ["beaker.session"]
        session["n"] = session.get("n", 0) + 1
        session.save()
        return str(session["n"])

    client = webtest.TestApp(SessionMiddleware(app, {"session.type": "lembro", "session.max_size": "64K"}))
    assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]
    assert len(get_store(60, "64K")) == 1


def test_no_beaker_timeout_falls_back_to_the_store_default(clock):
    store = LembroStore(interval=None, clock=clock)  # default lifetime 1800 s
    app = make_app(**{"session.store": store})
    sid = reply(app.get("/"))[0]
    clock.advance(1799)
    assert reply(app.get("/peek"))[:2] == (sid, 1)
    clock.advance(1800)
    assert reply(app.get("/peek"))[1] == 0


def test_a_session_evicted_for_size_starts_over():
    store = LembroStore(interval=None, max_sessions=2)
    first = make_app(**{"session.store": store})
    sid = reply(first.get("/"))[0]
    for _ in range(2):
        make_app(**{"session.store": store}).get("/")  # two newer clients push the cap
    assert (sid, "session") not in store
    response = first.get("/")
    assert response.status_int == 200 and reply(response)[1] == 1


def test_get_store_finds_and_never_makes_a_store():
    """The README's snippet finds the store its ini built (which also sets max_sessions), or says what exists."""
    with pytest.raises(KeyError, match="no 'sessions' store with interval='60', max_size='4M'.*none yet"):
        get_store(interval="60", max_size="4M")
    app = make_app(**{"session.max_sessions": "10000"})
    app.get("/")
    store = get_store(interval="60", max_size="4M")  # max_sessions not given: any
    assert store.max_sessions == 10000 and len(store) == 1
    with pytest.raises(KeyError, match="no 'sessions' store with max_size='8M'.*max_size=4194304 max_sessions=10000"):
        get_store(max_size="8M")
    make_app(**{"session.max_sessions": "20"}).get("/")
    with pytest.raises(KeyError, match="2 'sessions' stores match"):
        get_store(interval="60", max_size="4M")
    assert get_store(max_sessions=20) is not store


def test_concurrent_sessions_on_one_id_do_not_corrupt_the_store():
    store = LembroStore(interval=None)

    def worker(n):
        for i in range(200):
            session = Session({}, id="shared0123456789abcdef0123456789", type="lembro", store=store)
            session[f"t{n}"] = i
            session.save()

    assert run_threads(worker) == []
    assert len(store) == 1
    final = Session({}, id="shared0123456789abcdef0123456789", type="lembro", store=store)
    counters = {key: value for key, value in final.items() if key.startswith("t")}
    assert counters and set(counters) <= {f"t{n}" for n in range(8)}
    assert all(isinstance(value, int) and 0 <= value < 200 for value in counters.values())
    assert 199 in counters.values()  # the last save was someone's last write, whole
