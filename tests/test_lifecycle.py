"""The session lifecycle rules where requests, logins, deploys and floods meet (DESIGN: "The session lifecycle").

Each test names the rule it keeps; tests/README.md maps the README's promises to them.
"""

import logging
import os
import pickle
import signal
import sys
import threading
import time
import types

import bottle
import pytest
import webtest
from beaker.cache import Cache
from beaker.synchronization import NameLock
from webob import Request

from lembro_wsgi import LembroMiddleware, LembroNamespaceManager, LembroStore
from lembro_wsgi.bottle import LembroPlugin
from tests.conftest import GATE
from tests.wsgi_apps import session_app

OLD_SECRET, NEW_SECRET = "the old secret, long enough", "the new secret, long enough"


def cookie_of(response, name="lembro.sid"):
    """The value a response sets for the session cookie, or None when it sets none."""
    values = [v.split(";")[0].split("=", 1)[1] for k, v in response.headerlist
              if k == "Set-Cookie" and v.startswith(name + "=")]
    assert len(values) <= 1
    return values[0] if values else None


def call(middleware, path, cookie=None):
    """One request straight through the middleware (no cookie jar): returns the WebOb response."""
    request = Request.blank(path)
    if cookie is not None:
        request.headers["Cookie"] = f"lembro.sid={cookie}"
    return request.get_response(middleware)


class SlowRequest:
    """A request that loads its session, waits for the test, then finishes: a request in two phases."""

    def __init__(self, middleware, path, cookie):
        self.loaded, self.proceed = threading.Event(), threading.Event()
        self.response = None
        middleware.gates[path] = self
        self.thread = threading.Thread(target=self._run, args=(middleware, path, cookie))
        self.thread.start()
        assert self.loaded.wait(GATE), "the slow request never loaded its session"

    def _run(self, middleware, path, cookie):
        self.response = call(middleware, path, cookie)

    def finish(self):
        self.proceed.set()
        self.thread.join(GATE)
        assert not self.thread.is_alive()
        return self.response


def gated_app(gates):
    """session_app, plus /slow-inc and /slow-read that pause after loading until the test lets them go."""

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path in ("/slow-inc", "/slow-read"):
            session = environ["lembro.session"]
            n = session.get("n", 0)
            gate = gates[path]
            gate.loaded.set()
            assert gate.proceed.wait(GATE)
            if path == "/slow-inc":
                session["n"] = n + 1
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"{n}".encode()]
        return session_app(environ, start_response)

    return app


def gated_middleware(**options):
    gates = {}
    middleware = LembroMiddleware(gated_app(gates), **options)
    middleware.gates = gates
    return middleware


def reply(response):
    sid, n, user, _ = response.text.split()
    return sid, int(n), user


def waiting_in_acquire(thread):
    """Whether ``thread`` is inside a lock's ``acquire`` now (its own frames, read from the outside)."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == "acquire":
            return True
        frame = frame.f_back
    return False


# -- 1. Logout is final -------------------------------------------------------

def test_logout_is_final_on_the_file_backend_even_for_a_read_only_request(tmp_path):
    """Rule "Logout is final" on type='file', where a touch rewrites the record."""
    middleware = gated_middleware(type="file", data_dir=str(tmp_path), timeout=600)
    sid = cookie_of(call(middleware, "/inc"))
    slow = SlowRequest(middleware, "/slow-read", sid)
    call(middleware, "/logout", sid)
    assert slow.finish().status_int == 200
    assert middleware.sessions.backend.load(sid) is None
    assert reply(call(middleware, "/", sid))[1] == 0


def test_a_session_that_expires_while_a_request_runs_is_not_written_back(clock):
    """Rule "Logout is final" also covers expiry and eviction during the request."""
    store = LembroStore(interval=None, clock=clock, timeout=60)
    middleware = gated_middleware(store=store, timeout=60)
    sid = cookie_of(call(middleware, "/inc"))
    slow = SlowRequest(middleware, "/slow-inc", sid)
    clock.advance(61)
    assert len(store) == 0
    assert cookie_of(slow.finish()) is None
    assert len(store) == 0


def test_a_file_session_that_expires_while_a_request_runs_is_not_written_back(tmp_path, monkeypatch):
    """Rule "Logout is final" on type='file': the check before the rewrite also looks at the record's age."""
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])  # the file backend ages records by wall-clock time
    middleware = gated_middleware(type="file", data_dir=str(tmp_path), timeout=100)
    sid = cookie_of(call(middleware, "/inc"))
    now[0] += 90
    slow = SlowRequest(middleware, "/slow-read", sid)  # loaded with 10 s to live
    now[0] += 20                                        # and finishes after the session expired
    assert cookie_of(slow.finish()) is None
    assert reply(call(middleware, "/", sid))[1] == 0


def test_a_read_only_request_never_undoes_a_concurrent_write_on_the_file_backend(tmp_path):
    """A read-only request refreshes the timer (a rewrite on type='file'); it never writes back the data it loaded.

    The lembro and Redis backends are held to it in test_backends_suite.py."""
    middleware = gated_middleware(type="file", data_dir=str(tmp_path))
    sid = cookie_of(call(middleware, "/inc"))
    slow = SlowRequest(middleware, "/slow-read", sid)
    call(middleware, "/inc", sid)
    slow.finish()
    assert reply(call(middleware, "/", sid))[1] == 2


def test_two_live_requests_last_writer_wins():
    """Plain lost updates between two live requests stay as they are (documented): last writer wins."""
    middleware = gated_middleware(interval=None)
    sid = cookie_of(call(middleware, "/inc"))
    slow = SlowRequest(middleware, "/slow-inc", sid)  # read n=1
    call(middleware, "/inc", sid)                      # n=2
    slow.finish()                                      # writes n=1+1
    assert reply(call(middleware, "/", sid))[1] == 2


def test_logout_racing_a_slow_request_on_a_real_threaded_server():
    """Rule "Logout is final" through waitress on 127.0.0.1: the slow request ends after the logout."""
    import urllib.request

    from tests.servers import serve

    middleware = gated_middleware(interval=None)
    with serve(middleware) as base:
        with urllib.request.urlopen(f"{base}/inc", timeout=5) as response:
            sid = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        gate = middleware.gates["/slow-inc"] = types.SimpleNamespace(
            loaded=threading.Event(), proceed=threading.Event())
        results = {}

        def slow():
            request = urllib.request.Request(f"{base}/slow-inc", headers={"Cookie": f"lembro.sid={sid}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                results["slow"] = response.headers.get_all("Set-Cookie")

        thread = threading.Thread(target=slow)
        thread.start()
        assert gate.loaded.wait(GATE)
        request = urllib.request.Request(f"{base}/logout", headers={"Cookie": f"lembro.sid={sid}"})
        urllib.request.urlopen(request, timeout=5).close()
        gate.proceed.set()
        thread.join(10)
        assert results["slow"] is None
        request = urllib.request.Request(f"{base}/", headers={"Cookie": f"lembro.sid={sid}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.read().split()[1] == b"0"


# -- 2. Login keeps the user's standing ----------------------------------------

def test_login_by_regenerate_keeps_returning_users_through_a_flood(clock):
    """Rule "Login keeps the user's standing": regenerate() right before a flood of one-shot clients."""
    store = LembroStore(interval=None, clock=clock, max_size="64K", timeout=1800)
    middleware = LembroMiddleware(session_app, store=store)
    users = [webtest.TestApp(middleware) for _ in range(20)]
    for user in users:
        user.get("/inc")
        clock.advance(0.01)
    for user in users:
        user.get("/")  # they came back: returning users
    for i, user in enumerate(users):
        user.get(f"/login?user=u{i}")  # login: new id, same standing
    for _ in range(400):  # a flood of new clients, many times the cap
        webtest.TestApp(middleware).get("/inc")
        clock.advance(0.01)
    assert store.stats()["evictions"] > 0
    for i, user in enumerate(users):
        assert reply(user.get("/"))[1:] == (1, f"u{i}"), f"user {i} lost at login"


def test_an_explicit_save_is_not_the_client_coming_back(clock):
    """Rule "Login keeps the user's standing": one-shot clients of an app that calls save() stay one-shot,
    so a flood of them evicts none of the users who came back."""
    store = LembroStore(interval=None, clock=clock, max_size="64K", timeout=1800)
    middleware = LembroMiddleware(session_app, store=store)
    users = [webtest.TestApp(middleware) for _ in range(10)]
    for user in users:
        user.get("/inc-save")
        user.get("/inc-save")  # came back
    clock.advance(60)
    for _ in range(400):
        webtest.TestApp(middleware).get("/inc-save")
        clock.advance(0.01)
    assert store.stats()["evictions"] > 0
    assert [reply(user.get("/"))[1] for user in users] == [2] * 10


@pytest.mark.parametrize("path", ["/read-late", "/read-stream"])
def test_a_session_first_read_after_the_response_started_restarts_its_idle_timer(clock, path):
    """Rule: a session that was only read has its idle timer refreshed, whenever in the request it was read."""
    store = LembroStore(interval=None, clock=clock, timeout=1800)
    client = webtest.TestApp(LembroMiddleware(session_app, store=store))
    client.get("/inc")
    for _ in range(3):  # active every 1000 s, under an 1800 s idle timeout: never logged out
        clock.advance(1000)
        assert client.get(path).text.endswith("1")
    assert "lembro.sid" not in client.get(path).headers.get("Set-Cookie", "")  # a refresh sends no cookie


# -- 3. Ties go oldest first ------------------------------------------------------

def test_ties_are_evicted_oldest_write_first_with_a_frozen_clock(clock):
    """Rule "Ties go oldest first": with a clock that never moves, the earliest writes go first."""
    store = LembroStore(interval=None, clock=clock, max_sessions=10, timeout=60)
    for i in range(11):
        store.set(f"s{i}", {"i": i})
    assert sorted(store.ids(), key=lambda s: int(s[1:])) == [f"s{i}" for i in range(4, 11)]  # 7 = 75% of 10


def test_users_signing_in_in_one_clock_tick_survive_their_own_round(clock):
    """Rule "Ties go oldest first" through the middleware: a round of sign-ins on one tick is not lost on arrival."""
    store = LembroStore(interval=None, clock=clock, max_sessions=40, timeout=1800)
    middleware = LembroMiddleware(session_app, store=store)
    for _ in range(60):  # one-shot clients, all on the same tick
        webtest.TestApp(middleware).get("/inc")
    users = [webtest.TestApp(middleware) for _ in range(10)]
    for user in users:  # the newest arrivals, same tick
        user.get("/inc")
    assert [reply(user.get("/"))[1] for user in users] == [1] * 10


# -- 4. Duplicated cookies are no session ------------------------------------------

@pytest.mark.parametrize("secret", [None, NEW_SECRET])
@pytest.mark.parametrize("order", ["valid-first", "valid-last", "both-valid", "same-twice", "quoted-toss",
                                   "quoted-toss-reversed"])
def test_duplicated_session_cookies_are_no_session(secret, order):
    """Rule "Duplicated cookies are no session", whatever their order or validity."""
    middleware = LembroMiddleware(session_app, interval=None, secret=secret)
    a = cookie_of(call(middleware, "/inc"))
    b = cookie_of(call(middleware, "/inc"))
    pairs = {"valid-first": (a, "forged"), "valid-last": ("forged", a), "both-valid": (a, b), "same-twice": (a, a),
             "quoted-toss": (a, b), "quoted-toss-reversed": (b, a)}
    first, second = pairs[order]
    # A quoted value of another cookie must not hide the second session cookie from the parser.
    middle = '; q="; ' if order.startswith("quoted") else "; other=1; "
    tail = '; z="' if order.startswith("quoted") else ""
    request = Request.blank("/")
    request.headers["Cookie"] = f"lembro.sid={first}{middle}lembro.sid={second}{tail}"
    response = request.get_response(middleware)
    assert response.status_int == 200
    sid, n, _ = reply(response)
    assert n == 0 and sid not in (a.split(".")[0], b.split(".")[0])
    assert len(middleware.store) == 2  # neither session was touched or destroyed


# -- 5. Undecodable is absent ------------------------------------------------------

def _deployable_module():
    module = types.ModuleType("lembro_deploy_test")
    module.Cart = type("Cart", (), {"__module__": module.__name__, "__init__": lambda self, items: None})
    sys.modules[module.__name__] = module
    return module


def cart_app(module):
    def app(environ, start_response):
        session = environ["lembro.session"]
        path = environ["PATH_INFO"]
        if path == "/add":
            session["cart"] = module.Cart([1, 2])
        elif path == "/logout":
            session.invalidate()
        body = f"{session.id} {'cart' in session}"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]

    return app


def test_a_file_session_that_no_longer_unpickles_is_no_session(tmp_path, caplog):
    """Rule "Undecodable is absent" on type='file': a class renamed in a deploy gives a fresh session, logged,
    record destroyed (the lembro and Redis backends: test_backends_suite.py)."""
    module = _deployable_module()
    middleware = LembroMiddleware(cart_app(module), type="file", data_dir=str(tmp_path))
    try:
        app = webtest.TestApp(middleware)
        sid = app.get("/add").text.split()[0]
        pickle.loads(pickle.dumps(module.Cart([])))  # loads before the deploy
        module.Basket = module.__dict__.pop("Cart")  # the deploy renames the class
        with caplog.at_level(logging.WARNING, logger="lembro_wsgi"):
            response = app.get("/logout")  # even logout works
        assert response.status_int == 200
        assert response.text.split()[1] == "False"
        assert any(sid[:6] in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
        assert sid not in caplog.text  # only the short id is logged
        assert middleware.sessions.backend.load(sid) is None
        again = webtest.TestApp(middleware)
        again.set_cookie("lembro.sid", sid)
        assert again.get("/").text.split() [0] != sid
    finally:
        del sys.modules[module.__name__]


# -- 6. A refused write after regenerate() keeps the old session ----------------------

@pytest.mark.parametrize("then_write", [False, True], ids=["refused", "refused-then-written"])
def test_a_refused_write_after_regenerate_keeps_the_old_id_and_a_pending_regenerate(then_write):
    """Rule "Login keeps the user's standing": the old id is destroyed only after the new one is stored;
    a refused write keeps the old session, and a later write still goes to a new id (no fixation)."""
    middleware = LembroMiddleware(session_app, interval=None, max_size="8K")
    app = webtest.TestApp(middleware)
    pre_login = reply(app.get("/inc"))[0]

    def login(environ, start_response):
        session = environ["lembro.session"]
        session.regenerate()
        session["blob"] = "x" * 20000
        if then_write:
            session.save()  # refused: too large
            del session["blob"]
            session["user"] = "victim"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    response = call(LembroMiddleware(login, store=middleware.store), "/", pre_login)
    assert response.status_int == 200
    if not then_write:
        assert cookie_of(response) is None  # the client keeps its cookie
        assert reply(app.get("/"))[:2] == (pre_login, 1)  # and its data
        return
    new = cookie_of(response)
    assert new and new != pre_login
    assert reply(call(middleware, "/", pre_login))[1:] == (0, "-")  # the pre-login id knows nothing
    assert reply(call(middleware, "/", new))[1:] == (1, "victim")


def test_after_a_dropped_write_invalidate_starts_a_session_that_is_stored():
    """A write dropped because another request logged out does not stop a fresh session being stored."""
    middleware = gated_middleware(interval=None)
    sid = cookie_of(call(middleware, "/inc"))

    def relogin(environ, start_response):
        session = environ["lembro.session"]
        session.get("n")
        call(middleware, "/logout", sid)  # another tab logs out meanwhile
        session["n"] = 5
        session.save()  # dropped: the session is gone
        session.invalidate()
        session["user"] = "bob"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    response = call(LembroMiddleware(relogin, store=middleware.store), "/", sid)
    fresh = cookie_of(response)
    assert fresh and fresh != sid
    assert reply(call(middleware, "/", fresh))[1:] == (0, "bob")
    assert reply(call(middleware, "/", sid))[1] == 0


# -- 7. Rotation re-signs ---------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/nothing", "/inc"])
def test_a_cookie_verified_by_an_older_secret_is_re_signed_with_the_newest(path):
    """Rule "Rotation re-signs": read-only and untouched requests too, so the old secret can be dropped."""
    store = LembroStore(interval=None)
    before = LembroMiddleware(session_app, store=store, secret=OLD_SECRET)
    rotating = LembroMiddleware(session_app, store=store, secret=[NEW_SECRET, OLD_SECRET])
    after = LembroMiddleware(session_app, store=store, secret=NEW_SECRET)
    old_cookie = cookie_of(call(before, "/inc"))
    resigned = cookie_of(call(rotating, path, old_cookie))
    assert resigned is not None and resigned != old_cookie
    assert resigned.split(".")[0] == old_cookie.split(".")[0]
    assert reply(call(after, "/", resigned))[:2] == (old_cookie.split(".")[0], 2 if path == "/inc" else 1)
    assert cookie_of(call(rotating, "/", resigned)) is None  # signed with the newest: nothing more to send
    assert reply(call(after, "/", old_cookie))[1] == 0  # the old signature alone no longer works


def test_no_re_signing_for_a_session_that_is_gone():
    store = LembroStore(interval=None)
    before = LembroMiddleware(session_app, store=store, secret=OLD_SECRET)
    rotating = LembroMiddleware(session_app, store=store, secret=[NEW_SECRET, OLD_SECRET])
    old_cookie = cookie_of(call(before, "/inc"))
    store.clear()
    assert cookie_of(call(rotating, "/nothing", old_cookie)) is None


# -- 8. Bottle routes that return their own response ---------------------------------------

def test_bottle_routes_returning_their_own_response_keep_the_cookie(tmp_path):
    """A route returning HTTPResponse or static_file(): the cookie goes onto the response actually sent."""
    (tmp_path / "hello.txt").write_text("hello")
    app = bottle.Bottle()
    app.install(LembroPlugin(interval=None))

    @app.route("/login")
    def login(session):
        session["user"] = "ana"
        return bottle.HTTPResponse("logged in", status=201, headers={"X-Own": "yes"})

    @app.route("/file")
    def file(session):
        session["seen_file"] = True
        return bottle.static_file("hello.txt", root=str(tmp_path))

    @app.route("/whoami")
    def whoami(session):
        return f"{session.get('user', 'nobody')} {session.get('seen_file', False)}"

    client = webtest.TestApp(app)
    response = client.get("/login", status=201)
    assert response.headers["X-Own"] == "yes" and "lembro.sid=" in response.headers["Set-Cookie"]
    assert client.get("/whoami").text == "ana False"
    other = webtest.TestApp(app)
    assert "lembro.sid=" in other.get("/file").headers["Set-Cookie"]
    assert other.get("/whoami").text == "nobody True"


def test_bottle_generator_routes_keep_changes_made_while_streaming():
    """The plugin finishes the session after Bottle has sent a streamed body, as the middleware does."""
    app = bottle.Bottle()
    app.install(LembroPlugin(interval=None))

    @app.route("/stream")
    def stream(session):
        session["user"] = "ana"
        yield "first "
        session["streamed"] = True
        yield "second"

    @app.route("/whoami")
    def whoami(session):
        return f"{session.get('user')} {session.get('streamed')}"

    client = webtest.TestApp(app)
    assert client.get("/stream").text == "first second"
    assert client.get("/whoami").text == "ana True"


# -- 9 and 10. Beaker Cache: fork and creation locks -----------------------------------------

@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # forking so is the point
def test_a_cache_built_before_fork_never_waits_on_a_lock_a_parent_thread_held():
    """A Beaker Cache used in a parent thread at fork time works in the child (gunicorn --preload)."""
    store = LembroStore(interval=None)
    cache = Cache("forked", type="lembro", store=store)
    cache.put("k", 1)
    held, release = threading.Event(), threading.Event()

    def hold():
        cache.namespace.acquire_write_lock()  # the very manager the Cache keeps
        held.set()
        release.wait(10)
        cache.namespace.release_write_lock()

    def hold_creation():  # a parent thread computing a cached value, inside Beaker's lock registry
        with NameLock.locks.mutex:
            lock = cache.namespace.get_creation_lock("n")
            lock.acquire()
            held.set()
            release.wait(10)
            lock.release()

    threads = [threading.Thread(target=hold), threading.Thread(target=hold_creation)]
    for thread in threads:
        held.clear()
        thread.start()
        assert held.wait(GATE)
    pid = os.fork()
    if pid == 0:
        signal.alarm(5)  # a deadlock kills the child: the test then fails on its status
        ok = cache.get("k") == 1 and cache.get_value("n", createfunc=lambda: 7) == 7
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    release.set()
    for thread in threads:
        thread.join()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def test_creation_lock_is_the_same_for_str_and_bytes_keys():
    """Beaker's Cache turns str keys into bytes: get_creation_lock('k') must still guard get_value('k')."""
    cache = Cache("dogpile", type="lembro", store=LembroStore(interval=None))
    manager = cache.namespace
    assert isinstance(manager, LembroNamespaceManager)
    for key in ("k", "é", "a/b"):
        held = manager.get_creation_lock(key)
        held.acquire()
        other = []
        probe = threading.Thread(target=lambda key=key, other=other: other.append(
            manager.get_creation_lock(key.encode("ascii", "backslashreplace")).acquire(wait=False)))
        probe.start()
        probe.join(GATE)
        held.release()
        assert other == [False], key  # the bytes key names the lock this thread holds
    created, started = [], threading.Event()
    lock = manager.get_creation_lock("k")
    lock.acquire()

    def compute():
        started.set()
        created.append(cache.get_value("k", createfunc=lambda: created.append("ran") or 42))

    thread = threading.Thread(target=compute)
    thread.start()
    assert started.wait(GATE)
    deadline = time.monotonic() + GATE
    while not waiting_in_acquire(thread):  # the worker has reached the lock, not merely been slow to start
        assert time.monotonic() < deadline, "the worker never waited on the creation lock"
        time.sleep(0.001)
    assert created == []  # waiting on the lock we hold: dogpile protection works
    lock.release()
    thread.join(GATE)
    assert created == ["ran", 42]
