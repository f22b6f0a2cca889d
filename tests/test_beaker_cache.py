"""Beaker's CacheManager and cache regions with type = lembro, and the manager contract itself."""

import os
import signal
import threading

import pytest
from beaker.cache import CacheManager
from beaker.util import parse_cache_config_options

from lembro_wsgi import LembroNamespaceManager, LembroStore, get_store, reset_stores
from lembro_wsgi.namespace import CACHE_GRACE


@pytest.fixture(autouse=True)
def fresh_registry():
    reset_stores()
    yield
    reset_stores()


def test_cached_function_results_and_clear():
    cache = CacheManager(type="lembro")
    calls = []

    @cache.cache("squares", expire=600)
    def square(x):
        calls.append(x)
        return x * x

    assert [square(3), square(3), square(4), square(3)] == [9, 9, 16, 9]
    assert calls == [3, 4]
    cache.invalidate(square, "squares", 3, expire=600)
    assert square(3) == 9 and calls == [3, 4, 3]
    cache.get_cache("plain").put("k", "v")
    plain = cache.get_cache("plain")
    assert plain.get("k") == "v" and "k" in plain
    plain.remove_value("k")
    assert "k" not in plain
    plain.put("a", 1)
    plain.put("b", 2)
    assert sorted(plain.namespace.keys()) == [b"a", b"b"]  # Beaker encodes cache keys
    plain.clear()
    assert plain.namespace.keys() == []
    assert square(4) == 16 and calls == [3, 4, 3]  # clearing one namespace leaves the others


def test_expire_is_honoured_by_the_store(clock):
    store = LembroStore(interval=None, clock=clock)
    cache = CacheManager(type="lembro", store=store)
    calls = []

    @cache.cache("slow", expire=10)
    def slow(x):
        calls.append(x)
        return x

    slow(1)
    clock.advance(9)
    slow(1)
    assert calls == [1]
    clock.advance(1 + CACHE_GRACE - 1)
    assert len(store) == 1  # past its expire (Beaker's own clock says when it is stale), kept for the dogpile
    clock.advance(1)
    assert len(store) == 0  # then gone from memory, not kept stale
    slow(1)
    assert calls == [1, 1]


def test_regions_from_ini_style_config():
    options = parse_cache_config_options({
        "cache.regions": "short, long",
        "cache.short.type": "lembro",
        "cache.short.expire": "60",
        "cache.short.max_size": "64K",
        "cache.long.type": "lembro",
        "cache.long.expire": "3600",
        "cache.long.max_size": "1M",
        "cache.long.interval": "30",
    })
    cache = CacheManager(**options)
    calls = []

    @cache.region("short", "greet")
    def greet(name):
        calls.append(name)
        return f"hi {name}"

    @cache.region("long")
    def shout(name):
        return name.upper()

    assert greet("ana") == greet("ana") == "hi ana" and calls == ["ana"]
    assert shout("bo") == "BO"
    assert len(get_store(60, "64K", name="caches")) == 1
    assert len(get_store(30, "1M", name="caches")) == 1


def test_cache_size_is_bounded():
    cache = CacheManager(type="lembro", max_size="32K")

    @cache.cache("pages", expire=600)
    def page(n):
        return "p" * 500 + str(n)

    page(0)
    store = get_store(60, "32K", name="caches")  # made by the cache's first call
    for n in range(2000):
        assert page(n).endswith(str(n))
        assert store.stats()["bytes"] <= 32 * 1024
    assert store.stats()["evictions"] > 1500


def test_bad_cache_option_names_itself():
    cache = CacheManager(type="lembro", max_sessions="many")
    with pytest.raises(ValueError, match="max_sessions.*'many'"):
        cache.get_cache("x").put("k", 1)


def test_manager_contract(clock):
    store = LembroStore(interval=None, clock=clock, timeout=100)
    ns = LembroNamespaceManager("ns", store=store, timeout="50", data_dir="/ignored")
    with pytest.raises(KeyError):
        ns["missing"]
    ns["a"] = {"x": 1}
    ns.set_value("b", 2, expiretime=5)
    assert "a" in ns and ns.has_key("b") and "c" not in ns
    assert ns["a"] == {"x": 1}
    assert sorted(ns.keys()) == ["a", "b"]
    assert LembroNamespaceManager("other", store=store).keys() == []
    clock.advance(50)
    assert "a" not in ns  # the manager's timeout, not the store's 100
    assert "b" in ns  # a cache value outlives its expiretime by CACHE_GRACE (Beaker's dogpile serves it)
    clock.advance(5 + CACHE_GRACE - 50)
    assert "b" not in ns
    ns["c"] = 3
    del ns["c"]
    with pytest.raises(KeyError):
        del ns["c"]
    ns["d"] = 4
    ns.remove()
    assert ns.keys() == []


def test_locks_are_real_within_the_process():
    store = LembroStore(interval=None)
    first = LembroNamespaceManager("same", store=store)
    second = LembroNamespaceManager("same", store=store)  # Beaker builds one per request
    other = LembroNamespaceManager("different", store=store)
    assert first.acquire_write_lock() is True
    result = {}
    thread = threading.Thread(target=lambda: result.update(
        same=second.acquire_write_lock(wait=False), other=other.acquire_write_lock(wait=False)))
    thread.start()
    thread.join()
    assert result == {"same": False, "other": True}
    first.release_write_lock()

    creation = first.get_creation_lock("key")
    assert creation.acquire()
    got = []
    thread = threading.Thread(target=lambda: got.append(second.get_creation_lock("key").acquire(wait=False)))
    thread.start()
    thread.join()
    assert got == [False]
    creation.release()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # forking so is the point
def test_child_after_fork_does_not_inherit_a_held_namespace_lock():
    store = LembroStore(interval=None)
    held, release = threading.Event(), threading.Event()

    def hold():  # another thread holds the lock across the fork: the child has no such thread
        holder = LembroNamespaceManager("busy", store=store)
        holder.acquire_write_lock()
        held.set()
        release.wait(10)
        holder.release_write_lock()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(5)
    pid = os.fork()
    if pid == 0:
        signal.alarm(5)
        child = LembroNamespaceManager("busy", store=store)
        ok = child.acquire_write_lock(wait=False)
        child["k"] = 1
        os._exit(0 if ok and child["k"] == 1 else 1)
    _, status = os.waitpid(pid, 0)
    release.set()
    thread.join()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_reads_never_wait_on_a_writer_and_writers_exclude_each_other():
    store = LembroStore(interval=None)
    writer = LembroNamespaceManager("ns", store=store)
    writer["k"] = 1
    assert writer.acquire_write_lock() is True  # as Beaker's session.lock() does
    seen = []

    def other_request():
        manager = LembroNamespaceManager("ns", store=store)
        manager.acquire_read_lock()
        seen.append(manager["k"])
        manager.release_read_lock()
        seen.append(manager.acquire_write_lock(wait=False))

    thread = threading.Thread(target=other_request)
    thread.start()
    thread.join(5)
    writer.release_write_lock()
    assert seen == [1, False]
