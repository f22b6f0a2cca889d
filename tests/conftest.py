"""Shared fixtures: a fake clock so no test sleeps for expiry, and stores that get closed."""

import threading

import pytest

from lembro_wsgi import LembroStore

#: How long a test waits for another thread's step (a gate, a join) before failing: far beyond any healthy run
#: under load, so a slow machine never makes a gate give way early; a hang fails the test instead of the suite.
GATE = 60


def selectable_id(text: str) -> str:
    """A test id pytest can select again by its node id (as mutmut does): no '[', ']' or '::' inside, and ASCII
    with no backslash (pytest would escape one again)."""
    text = text.replace("::", ":").replace("[", "(").replace("]", ")").replace("\\", "/")
    return text.encode("ascii", "replace").decode("ascii")


def pytest_make_parametrize_id(config, val, argname):
    """String parameters get selectable ids (see selectable_id); other values keep pytest's."""
    return selectable_id(val) if isinstance(val, str) and ("[" in val or "]" in val or "::" in val) else None


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make_store(clock):
    """Build LembroStores on the fake clock with no background thread; all closed afterwards."""
    stores = []

    def build(**options):
        options.setdefault("clock", clock)
        options.setdefault("interval", None)
        store = LembroStore(**options)
        stores.append(store)
        return store

    yield build
    for store in stores:
        store.close()


def run_threads(worker, count=8):
    """Run ``worker(i)`` for i in range(count) on real threads; return the exceptions they raised."""
    errors = []

    def guarded(i):
        try:
            worker(i)
        except Exception as exc:  # noqa: BLE001 - handed back to the test to assert on
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session's tests (see tests/redis_server.py)."""
    from tests.redis_server import RedisServer

    server = RedisServer.start_or_skip()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The shared server's URL, emptied before each test."""
    import redis

    redis.Redis.from_url(redis_server.url).flushdb()
    return redis_server.url
