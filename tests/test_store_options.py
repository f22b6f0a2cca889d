"""LembroStore's options: the README's defaults, a bad value refused with its option named first, a stable repr."""

import re

import beaker.cache
import pytest
from beaker.cache import CacheManager

from lembro_wsgi import LembroStore, reset_stores

SECONDS = "a positive number of seconds up to 1,000,000,000 or None"
OPTIONS = "interval, max_size, max_sessions, timeout, clock, on_evict, name"


def test_defaults_follow_the_readme(clock):
    store = LembroStore(clock=clock)
    try:
        assert (store.interval, store.max_size, store.max_sessions, store.timeout) == (60, 1024**2, None, 1800)
        store.set("a", 1)
        clock.advance(1799.9)
        assert store.get("a") == 1  # read back: its idle timer restarts only on touch, so 1800 s from the write
        clock.advance(0.1)
        assert store.get("a") is None
        assert store.stats()["max_size"] == 1024**2 and store.stats()["max_sessions"] is None
    finally:
        store.close()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"interval": "often"}, rf"^interval: expected {SECONDS}, got 'often'$"),
        ({"interval": ""}, r"^interval: expected .* \(spelt 'none'\), got ''$"),
        ({"max_size": "lots"}, r"^max_size: expected a positive byte count .*, got 'lots'$"),
        ({"max_sessions": "x"}, r"^max_sessions: expected a positive whole number or None, got 'x'$"),
        ({"timeout": "forever"}, rf"^timeout: expected {SECONDS}, got 'forever'$"),
        ({"timeout": ""}, r"^timeout: expected .* \(spelt 'none'\), got ''$"),
        ({"clock": 5}, r"^clock: expected a callable returning seconds, got 5$"),
        ({"on_evict": "print"}, r"^on_evict: expected a callable or None, got 'print'$"),
        ({"name": ""}, r"^name: expected None or a non-empty str, got ''$"),
        ({"name": 7}, r"^name: expected None or a non-empty str, got 7$"),
        ({"foo": 1}, rf"^foo: not a LembroStore option \({OPTIONS}\)$"),
        ({"maxSize": "4M"}, r"^maxSize: not an option; did you mean 'max_size'\?$"),
    ],
)
def test_a_bad_option_is_refused_naming_the_option_and_the_value(options, message):
    with pytest.raises(ValueError, match=message):
        LembroStore(**{"interval": None, **options})


def test_none_is_no_purge_thread_no_count_cap_and_no_expiry(clock):
    store = LembroStore(interval=None, max_sessions=None, timeout=None, on_evict=None, name=None, clock=clock)
    assert (store.interval, store.max_sessions, store.timeout, store.name) == (None, None, None, None)
    store.set("a", 1)
    clock.advance(10**9)
    assert store.get("a") == 1
    store.close()


def test_the_repr_shows_the_options_and_the_name_only_when_given():
    plain = LembroStore(interval=None, max_size="4K", max_sessions=10, timeout=30)
    named = LembroStore(interval=None, name="caches")
    assert re.fullmatch(r"<LembroStore max_size=4096 max_sessions=10 interval=None timeout=30(\.0)? at 0x[0-9a-f]+>",
                        repr(plain)), repr(plain)
    assert re.fullmatch(r"<LembroStore 'caches' max_size=1048576 max_sessions=None interval=None timeout=1800(\.0)? "
                        r"at 0x[0-9a-f]+>", repr(named)), repr(named)
    assert repr(plain).endswith(f" at {id(plain):#x}>")


def test_two_stores_with_the_same_options_are_two_caches_for_beaker():
    """Beaker memoises caches by their options' text: each store's repr must tell it apart from its twin."""
    reset_stores()
    try:
        memoised = sum(key.startswith("twins{") for key in beaker.cache.cache_managers)
        first, second = LembroStore(interval=None), LembroStore(interval=None)
        assert repr(first) != repr(second)
        before = repr(first)
        cache = CacheManager()
        cache.get_cache("twins", type="lembro", store=first).put("k", "first")
        cache.get_cache("twins", type="lembro", store=second).put("k", "second")
        assert repr(first) == before  # the figures changed, the repr did not
        assert cache.get_cache("twins", type="lembro", store=first).get("k") == "first"
        assert cache.get_cache("twins", type="lembro", store=second).get("k") == "second"
        assert len(first) == len(second) == 1
        assert sum(key.startswith("twins{") for key in beaker.cache.cache_managers) == memoised + 2
    finally:
        reset_stores()
