"""The Django session engine (``SESSION_ENGINE = "lembro_wsgi.django"``), through django.test.Client and
django.contrib.auth on sqlite: floods, logout, Redis by settings alone, clearsessions, the stats page, bad settings
and each session's own expiry. The project is tests/django_project.py, configured once for the whole run."""

import asyncio
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
import redis
import webtest
from django.contrib.sessions.backends import base as django_sessions
from django.contrib.sessions.backends.base import UpdateError
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client, override_settings

import lembro_wsgi.django
from lembro_wsgi import LembroStore
from lembro_wsgi.django import SessionStore
from tests.conftest import GATE
from tests.django_project import slow_request  # configures Django (once for the run)

LEMBRO, CACHE = "lembro_wsgi.django", "django.contrib.sessions.backends.cache"
USER, PASSWORD = "ana", "ana's password"
FLOOD = 600  # one-shot clients: ten times what a 64K lembro store holds of them
COOKIE = "sessionid"  # Django's SESSION_COOKIE_NAME


@pytest.fixture(scope="module", autouse=True)
def database():
    """django.contrib.auth's tables in the shared in-memory sqlite, and one user."""
    from django.contrib.auth.models import User  # a model: importable once Django is set up

    call_command("migrate", run_syncdb=True, verbosity=0)
    if not User.objects.filter(username=USER).exists():
        User.objects.create_user(USER, password=PASSWORD)


@pytest.fixture(autouse=True)
def configure():
    """``configure(**settings)``: override Django's settings for the test and make the engine read them again;
    before and after each test the engine forgets its configuration (and stops its store's thread)."""
    overrides = []
    lembro_wsgi.django._reset()

    def apply(**changes):
        override = override_settings(**changes)
        override.enable()
        overrides.append(override)
        lembro_wsgi.django._reset()

    yield apply
    lembro_wsgi.django._reset()
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def clocked(configure, make_store):
    """The engine on a LembroStore of the test's (``LEMBRO_SESSIONS = {"store": ...}``): a fake clock, no thread."""
    store = make_store()
    configure(LEMBRO_SESSIONS={"store": store})
    return store


@pytest.fixture(params=["lembro", "redis"])
def backend(request, configure):
    """The engine on a lembro store, or on a real redis-server by settings alone."""
    if request.param == "redis":
        configure(LEMBRO_SESSIONS={"type": "ext:redis", "url": request.getfixturevalue("redis_url")})
    else:
        configure(LEMBRO_SESSIONS={"interval": None})
    return request.param


def signed_in():
    """A client signed in through django.contrib.auth's login(), back once since (a returning user)."""
    client = Client()
    assert client.get("/").json()["visits"] == 1  # a session before signing in, as a visitor has
    assert client.post("/login", {"username": USER, "password": PASSWORD}).status_code == 200
    page = client.get("/").json()
    assert page["authenticated"] and page["user"] == USER and page["visits"] == 2  # login kept the data
    return client


def same_browser(client):
    """Another client holding ``client``'s cookies: the same browser, in a second tab."""
    other = Client()
    other.cookies[COOKIE] = key_of(client)
    return other


def key_of(client):
    return client.cookies[COOKIE].value


# a. A flood of one-shot clients: lembro keeps the signed-in user under its cap; Django's cache engine does not.

@pytest.mark.parametrize("engine", [LEMBRO, CACHE])
def test_a_signed_in_user_outlives_a_flood_ten_times_the_cap_and_the_cache_engine_loses_them(configure, engine):
    configure(SESSION_ENGINE=engine, LEMBRO_SESSIONS={"max_size": "64K"})
    caches["default"].clear()  # LocMemCache, Django's default MAX_ENTRIES (300)
    user = signed_in()
    anonymous = Client()
    anonymous.get("/fill")
    if engine == LEMBRO:
        store = lembro_wsgi.django.store()
        holds = store.max_size // store.stats()["one_shot_bytes"]  # ~500 bytes of data, and the record around it
        assert store.max_size == 64 * 1024 and 40 < holds <= FLOOD // 10, f"FLOOD: ten times {holds}, at least"
    for _ in range(FLOOD):
        anonymous.cookies.clear()  # a new client each time
        assert anonymous.get("/fill").status_code == 200
        assert COOKIE in anonymous.cookies
        if engine == LEMBRO:
            assert store.stats()["bytes"] <= store.max_size
    page = user.get("/").json()
    if engine == LEMBRO:
        assert page == {"visits": 3, "user": USER, "authenticated": True}
        stats = store.stats()
        assert stats["one_shot_evictions"] >= FLOOD + 1 - holds and stats["returning_evictions"] == 0
    else:  # the comparison: the cache engine evicted the user among the one-shot clients
        assert page == {"visits": 1, "user": None, "authenticated": False}


# b. Logout is final: a request that loaded the session before the logout cannot bring it back.

def test_logout_is_final_against_a_slow_request_of_the_same_session(backend):
    user = signed_in()
    key = key_of(user)
    tab = same_browser(user)
    with slow_request(tab) as answers:  # it has loaded the signed-in session
        assert user.post("/logout").status_code == 200
        assert not SessionStore().exists(key)
    slow = answers["response"]
    assert slow.status_code == 400  # SessionInterrupted, from SessionMiddleware: the engine raised UpdateError
    assert COOKIE not in slow.cookies  # no cookie handed back for the old key
    assert not SessionStore().exists(key)
    for client in (tab, user):  # the old cookie, and the browser's cookie after the logout
        assert client.get("/peek").json()["authenticated"] is False
    assert not SessionStore().exists(key)


def test_logout_is_final_at_the_engine_level_update_error(backend):
    user = signed_in()
    key = key_of(user)
    loaded = SessionStore(key)
    assert loaded["_auth_user_id"]  # loaded before the logout
    user.post("/logout")
    loaded["late"] = "change"
    with pytest.raises(UpdateError):
        loaded.save()
    assert not SessionStore().exists(key)
    assert same_browser(user).get("/peek").json() == {"authenticated": False, "visits": None}


# c. The same app on Redis by settings alone.

def test_the_same_app_on_redis_by_settings_alone(configure, redis_url):
    configure(LEMBRO_SESSIONS={"type": "ext:redis", "url": redis_url})
    assert lembro_wsgi.django.store() is None
    user = signed_in()
    for visits in (3, 4, 5):
        assert user.get("/").json() == {"visits": visits, "user": USER, "authenticated": True}
    client = redis.Redis.from_url(redis_url)
    key = key_of(user)
    stored = [name.decode() for name in client.keys("*:session")]  # beside it: its owner and the owner's index
    assert stored == [f"beaker_cache:django:{key}:session"]  # Beaker's key, under the engine's prefix
    assert 0 < client.ttl(stored[0]) <= 1209600  # Django's SESSION_COOKIE_AGE
    assert user.post("/logout").status_code == 200
    assert client.keys("*") == []
    assert same_browser(user).get("/peek").json()["authenticated"] is False
    # the stats page has no lembro store to show; clearsessions leaves expiry to Redis, without a complaint
    assert user.get("/lembro/").status_code == 404
    errors = StringIO()
    call_command("clearsessions", stderr=errors)
    assert errors.getvalue() == ""


# d. manage.py clearsessions purges the lembro store.

def test_clearsessions_purges_expired_sessions(configure, make_store, clock):
    expired = []
    store = make_store(on_evict=lambda sid, reason: expired.append(reason))
    configure(LEMBRO_SESSIONS={"store": store})
    for _ in range(3):
        assert Client().get("/expire?seconds=60").status_code == 200
    keeper = Client()
    keeper.get("/")  # SESSION_COOKIE_AGE: two weeks
    assert store.stats()["sessions"] == 4
    clock.advance(61)
    assert expired == []  # nothing has looked at the store since
    errors = StringIO()
    call_command("clearsessions", stderr=errors)
    assert errors.getvalue() == ""
    assert expired == ["expired"] * 3  # the purge removed them, not a later read
    stats = store.stats()
    assert stats["purges"] == 1 and stats["expirations"] == 3 and stats["sessions"] == 1
    assert keeper.get("/").json()["visits"] == 2


# e. The stats page.

def test_stats_view_shows_the_stores_figures_as_html_and_json(configure):
    configure(LEMBRO_SESSIONS={"max_size": "2M", "interval": None})
    for _ in range(3):
        Client().get("/fill")
    store = lembro_wsgi.django.store()
    viewer = Client()
    page = viewer.get("/lembro/")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert "<svg" in page.content.decode()
    figures = viewer.get("/lembro/?format=json")
    assert figures["Content-Type"] == "application/json"
    stats = store.stats()
    assert figures.json()["sessions"] == stats["sessions"] == 3  # the page itself stored no session
    assert figures.json()["bytes"] == stats["bytes"] > 1500
    assert figures.json()["max_size"] == 2 * 1024 * 1024
    assert viewer.get("/lembro/", headers={"Accept": "application/json"}).json()["sessions"] == 3
    assert viewer.post("/lembro/").status_code == 405
    assert COOKIE not in viewer.cookies


def test_stats_view_is_a_404_on_another_backend(configure, redis_url):
    configure(LEMBRO_SESSIONS={"type": "ext:redis", "url": redis_url})
    Client().get("/fill")
    answer = Client().get("/lembro/?format=json")
    assert answer.status_code == 404 and b"LEMBRO_SESSIONS" in answer.content


# f. A bad LEMBRO_SESSIONS fails on first use, naming the key.

@pytest.mark.parametrize("value, named", [
    ({"max_size": "lots"}, "LEMBRO_SESSIONS['max_size']"),
    ({"maxsize": 1}, "LEMBRO_SESSIONS['maxsize']"),
    ({"max_sessions": "many"}, "LEMBRO_SESSIONS['max_sessions']"),
    ({"interval": -1}, "LEMBRO_SESSIONS['interval']"),
    ({"timeout": 600}, "LEMBRO_SESSIONS['timeout']"),  # Django's SESSION_COOKIE_AGE and set_expiry decide it
    ({"cookie_name": "sid"}, "LEMBRO_SESSIONS['cookie_name']"),
    ({"store": "mine"}, "LEMBRO_SESSIONS['store']"),
    ({"type": "ext:redis"}, "LEMBRO_SESSIONS['url']"),
    ({"type": "ext:redis", "url": "redis://127.0.0.1:1/0", "max_size": "1M"}, "LEMBRO_SESSIONS['max_size']"),
    ([("max_size", "1M")], "LEMBRO_SESSIONS: expected a dict"),
    ("64M", "LEMBRO_SESSIONS: expected a dict"),
])
def test_a_bad_setting_is_improperly_configured_naming_the_key(configure, value, named):
    configure(LEMBRO_SESSIONS=value)  # read on first use, not before
    with pytest.raises(ImproperlyConfigured) as refused:
        Client().get("/")
    assert str(refused.value).startswith(named)
    configure(LEMBRO_SESSIONS={"interval": None})  # not stuck: the next configuration is read
    assert Client().get("/").json()["visits"] == 1


# g. Each session's own expiry is its lifetime in the store.

def max_age(client):
    return client.cookies[COOKIE]["max-age"]


@pytest.mark.parametrize("query, at_browser_close, lifetime, cookie_max_age", [
    ("?seconds=300", False, 300, 300),
    ("?seconds=300", True, 300, 300),  # an explicit expiry wins over SESSION_EXPIRE_AT_BROWSER_CLOSE
    ("?seconds=0", False, 1000, ""),  # at browser close: the store keeps it SESSION_COOKIE_AGE
    ("", True, 1000, ""),
    ("", False, 1000, 1000),
])
def test_each_sessions_expiry_is_its_lifetime_in_the_store(configure, clocked, clock, query, at_browser_close,
                                                           lifetime, cookie_max_age):
    configure(SESSION_COOKIE_AGE=1000, SESSION_EXPIRE_AT_BROWSER_CLOSE=at_browser_close)
    client = Client()
    assert client.get("/expire" + query).status_code == 200
    key = key_of(client)
    assert max_age(client) == cookie_max_age
    clock.advance(lifetime - 1)
    assert SessionStore().exists(key)
    clock.advance(1)
    assert not SessionStore().exists(key)
    assert client.get("/peek").json()["visits"] is None


def test_each_write_gives_the_session_its_new_lifetime_and_a_negative_expiry_ends_it(configure, clocked, clock):
    configure(SESSION_COOKIE_AGE=1000)
    shorter = Client()
    shorter.get("/expire?seconds=300")
    clock.advance(200)
    shorter.get("/expire?seconds=50")  # from now: over at 250, not at 300
    clock.advance(50)
    assert not SessionStore().exists(key_of(shorter))
    longer = Client()
    longer.get("/expire?seconds=30")
    clock.advance(20)
    longer.get("/expire?seconds=0")  # at browser close: SESSION_COOKIE_AGE in the store, from now
    clock.advance(999)
    assert SessionStore().exists(key_of(longer))
    clock.advance(1)
    assert not SessionStore().exists(key_of(longer))
    ended = Client()
    ended.get("/")
    key = key_of(ended)
    assert SessionStore().exists(key)
    ended.get("/expire?seconds=-1")  # over at once, as Django's own engines store it
    assert not SessionStore().exists(key) and clocked.stats()["sessions"] == 0
    assert max_age(ended) == -1  # and the browser drops the cookie
    Client().get("/expire?seconds=-1")  # a new session born expired is not stored at all
    assert clocked.stats()["sessions"] == 0


def test_a_session_expiring_at_a_date_is_not_extended_by_reads(clocked, clock):
    """set_expiry(timedelta): over at that time; a request that only reads does not push it back."""
    client = Client()
    client.get("/")
    key = key_of(client)
    session = SessionStore(key)
    session.set_expiry(timedelta(seconds=60))
    session.save()
    clock.advance(40)
    assert client.get("/peek").json()["visits"] == 1
    clock.advance(21)
    assert not SessionStore().exists(key)
    assert client.get("/peek").json()["visits"] is None


# The async API of the in-memory store runs in the event loop's thread: no sync_to_async.

def test_the_async_api_on_the_in_memory_store_needs_no_thread(clocked, monkeypatch):
    def no_thread(*args, **kwargs):
        raise AssertionError("sync_to_async: the in-memory store needs no thread")

    monkeypatch.setattr(django_sessions, "sync_to_async", no_thread)

    async def scenario():
        session = SessionStore()
        await session.aset("n", 1)
        await session.asave()
        key = session.session_key
        assert await SessionStore().aexists(key)
        again = SessionStore(key)
        assert await again.aget("n") == 1
        await again.aset("n", 2)
        await again.asave()
        await again.acycle_key()  # a new key, the old one gone
        assert again.session_key != key and not await SessionStore().aexists(key)
        assert await SessionStore(again.session_key).aget("n") == 2
        await again.adelete()
        assert not await SessionStore().aexists(again.session_key)
        await SessionStore.aclear_expired()
        return key

    assert asyncio.run(scenario())
    assert clocked.stats()["sessions"] == 0


def test_a_planted_or_unknown_id_is_never_adopted(backend):
    """No session fixation: a cookie naming no stored session gets a new key, on every backend."""
    planted = "abcdefghijklmnopqrstuvwxyz012345"  # shaped as Django's keys are
    client = Client()
    client.cookies[COOKIE] = planted
    assert client.get("/").json()["visits"] == 1
    assert key_of(client) != planted and not SessionStore().exists(planted)
    assert client.get("/").json()["visits"] == 2


def test_a_session_too_large_for_the_store_keeps_what_it_held(configure):
    configure(LEMBRO_SESSIONS={"max_size": "64K", "interval": None})
    client = Client()
    client.get("/")
    key = key_of(client)
    assert client.get("/big").status_code != 500  # Django's answer to UpdateError, not the store's exception
    assert key_of(client) == key and client.get("/").json()["visits"] == 2
    assert Client().get("/big").status_code != 500  # a new session too large: nothing stored
    assert lembro_wsgi.django.store().stats()["sessions"] == 1


def test_a_user_who_signs_in_right_before_a_flood_keeps_the_session(configure):
    """login() moves the session to a new key (cycle_key) keeping its standing: a returning visitor who signs in
    right before a flood of one-shot clients is not evicted first."""
    configure(LEMBRO_SESSIONS={"max_size": "64K", "interval": None})
    user = Client()
    for _ in range(3):
        user.get("/")  # a returning visitor
    assert user.post("/login", {"username": USER, "password": PASSWORD}).status_code == 200
    anonymous = Client()
    for _ in range(FLOOD):
        anonymous.cookies.clear()
        anonymous.get("/fill")
    assert user.get("/").json() == {"visits": 4, "user": USER, "authenticated": True}
    assert lembro_wsgi.django.store().stats()["returning_evictions"] == 0


@pytest.mark.parametrize("option", [{"secure": True}, {"httponly": False}, {"samesite": "Strict"}, {"path": "/app"},
                                    {"domain": "example.com"}, {"max_age": 60}])
def test_cookie_options_are_refused_naming_the_django_setting(configure, option):
    """Cookie options are Django's: each is refused in LEMBRO_SESSIONS, naming the Django setting to use."""
    configure(LEMBRO_SESSIONS=option)
    with pytest.raises(Exception, match=rf"LEMBRO_SESSIONS\['{next(iter(option))}'\].*SESSION_COOKIE"):
        Client().get("/")


def test_samesite_none_names_the_django_setting_not_lembros_secure(configure):
    configure(LEMBRO_SESSIONS={"samesite": "None"})
    with pytest.raises(Exception, match="SESSION_COOKIE"):  # says "unless secure=True": a lembro option
        Client().get("/")


def test_a_cycle_key_after_a_logout_does_not_sign_the_user_back_in(backend):
    """Logout is final through cycle_key() too (login() of a signed-in session, update_session_auth_hash()): a slow
    request that loaded the session before a logout does not bring it back under a new key."""
    user = Client()
    user.get("/")
    user.post("/login", {"username": USER, "password": PASSWORD})
    tab = Client()
    tab.cookies["sessionid"] = key_of(user)
    with slow_request(tab, "/rotate"):
        user.post("/logout")
    assert tab.get("/peek").json()["authenticated"] is False  # fails: signed in again under the new key


def test_cycle_key_of_a_session_logged_out_meanwhile_starts_again_empty(backend):
    user = Client()
    user.get("/")
    user.post("/login", {"username": USER, "password": PASSWORD})
    loaded = SessionStore(key_of(user))
    assert loaded["_auth_user_id"]
    old = loaded.session_key
    user.post("/logout")
    loaded.cycle_key()  # not an error in the view (a 500): the session starts again, empty, under a new key
    assert loaded.session_key != old and "_auth_user_id" not in loaded
    assert not SessionStore().exists(old)
    assert "_auth_user_id" not in SessionStore(loaded.session_key).load()


def test_a_session_too_large_is_answered_not_a_400_that_says_the_user_logged_out(configure):
    """A session too large for the store keeps what was stored, and the response goes out (no 400 blaming a
    concurrent logout)."""
    configure(LEMBRO_SESSIONS={"max_size": "64K", "interval": None})
    client = Client()
    client.get("/")
    assert client.get("/big").status_code == 200


def test_a_cookie_age_beyond_lembros_bound_is_capped_not_a_500(configure):
    configure(SESSION_COOKIE_AGE=40 * 365 * 86400, LEMBRO_SESSIONS={"interval": None})  # a common idiom
    client = Client()
    assert client.get("/").status_code == 200 and client.get("/").status_code == 200
    configure(SESSION_COOKIE_AGE=0)
    with pytest.raises(ImproperlyConfigured, match="^SESSION_COOKIE_AGE: "):
        SessionStore()


def test_saving_a_key_that_was_never_stored_is_an_update_error_sync_and_async(backend):
    with pytest.raises(UpdateError):
        SessionStore("neverstored0000000000000000000ab").save()

    async def asave():
        await SessionStore("neverstored0000000000000000000cd").asave()

    with pytest.raises(UpdateError):
        asyncio.run(asave())


def test_two_creates_of_one_key_one_wins(configure):
    """must_create is one step: of two threads creating the same key, exactly one gets CreateError."""
    from django.contrib.sessions.backends.base import CreateError

    configure(LEMBRO_SESSIONS={"interval": None})
    for round_ in range(50):
        key = f"samekey{round_:025d}"
        barrier, outcomes = threading.Barrier(2), []

        def create(value, key=key, barrier=barrier, outcomes=outcomes):
            session = SessionStore(key)
            session._session_cache = {"who": value}
            barrier.wait(GATE)
            try:
                session.save(must_create=True)
                outcomes.append("created")
            except CreateError:
                outcomes.append("refused")

        threads = [threading.Thread(target=create, args=(who,)) for who in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(GATE)
        assert sorted(outcomes) == ["created", "refused"]


def test_a_store_handed_in_is_shared_safely_and_left_running(configure):
    """A store shared with another app: Django's keys are under "django:", so neither adopts the other's
    sessions; forgetting the configuration leaves the app's store (and its purge thread) alone."""
    from lembro_wsgi import LembroMiddleware
    from tests.wsgi_apps import session_app

    shared = LembroStore(interval=0.05)
    try:
        other = webtest.TestApp(LembroMiddleware(session_app, store=shared))
        other.get("/login")
        other_id = other.cookies["lembro.sid"]
        configure(LEMBRO_SESSIONS={"store": shared})
        assert SessionStore(other_id).load() == {}
        lembro_wsgi.django._reset()
        before, deadline = shared.stats()["purges"], time.monotonic() + 5
        while shared.stats()["purges"] == before:  # real time: its purge thread still runs for the other app
            assert time.monotonic() < deadline, "the shared store's purge thread was stopped"
            time.sleep(0.01)
    finally:
        shared.close()
